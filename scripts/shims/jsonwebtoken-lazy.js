// msal-node requires jsonwebtoken when it loads, and jsonwebtoken's own start-up (a semver check
// of the Node version) costs about 14 ms, though only certificate credentials ever sign with it.
// The bundler points msal-node's import here; jsonwebtoken.js, bundled beside msal.js, loads on first use.
let real;
module.exports = {
  sign(...args) {
    real ??= require('./jsonwebtoken.js');
    return real.sign(...args);
  },
};
