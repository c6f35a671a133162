// azure-pipelines-task-lib requires, when it loads, modules that only some of its functions use:
// child_process (rmRF on Windows, exec), toolrunner (and with it q, events and child_process),
// externaloutput (and stream), minimatch (find and match), semver (assertAgent) and its own 63 KiB
// of localised messages. No task step here runs a tool or matches files, and a message is loaded
// only when task-lib shows one of its own. So task-lib.js carries task-lib without them, and each
// such require becomes a proxy that loads the module on first use (child_process from Node, the
// others from task-lib-extras.js beside it, so a run that never uses them does not even compile
// them); the messages, which task-lib inspects as data, are required where they are read. semver
// stays in task-lib.js, set up on first use: getTaskVariable and setTaskVariable assert the agent's
// version, and the steps that keep state for their post-job step call them. Every rewrite must find its text exactly once, so a task-lib release that
// changes these lines fails the build.
//
// Two rewrites change how task-lib does a thing, not what it does:
// - semver is also what task-lib's load-time check of the Node version calls (is it older than
//   4.2.0?), which would load it in every run: that one comparison is made on the numbers of
//   process.versions.node instead, with semver's answer (a pre-release is older than its release).
// - Its vault encrypts every secret it takes from the environment (INPUT_, ENDPOINT_AUTH_,
//   SECRET_, ...) with the key in its key file, and reads and hashes that file again for each one:
//   on an agent that is a dozen reads of the same file (a job's SystemVssConnection alone is three
//   secrets, System.AccessToken a fourth). _loadData reads the key once, on the first secret, and
//   passes it to each storeSecret of that loop; it is a local of _loadData, gone when the loop
//   ends, as the key of one storeSecret call is gone when the call ends. Each secret is still
//   encrypted with the file's key and removed from the environment; retrieveSecret still reads
//   the file for each read.
import fs from 'node:fs';
import path from 'node:path';

const LAZY_HELPER = `var __witLazy = (load) => {
  let real;
  const get = () => (real ??= load());
  return new Proxy(function () {}, {
    get: (_, key) => get()[key],
    has: (_, key) => key in get(),
    apply: (_, self, args) => Reflect.apply(get(), self, args),
    construct: (_, args) => Reflect.construct(get(), args),
  });
};
`;

const EXTRAS = './task-lib-extras.js';
const lazy = (spec, load = `require(${spec})`) => [`require(${spec})`, `__witLazy(() => ${load})`];
const extra = (spec, name) => lazy(spec, `require("${EXTRAS}").${name}`);
// Exports copied from a lazy module at load time become getters, so reading them is what loads it.
const getter = (name, from) => [`exports.${name} = ${from}.${name};`, `Object.defineProperty(exports, "${name}", { enumerable: true, get: () => ${from}.${name} });`];

// semver.lt(process.versions.node, '4.2.0') without semver: major, minor, patch compared as
// numbers, and a version with a pre-release tag ('-...') older than the same version without one.
const NODE_OLDER_THAN = `var __witNodeOlderThan = (min) => {
  const [release, pre] = process.versions.node.split('-');
  const v = release.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i] < min[i];
  return pre !== undefined;
};
`;
const nodeCheck = ["semver.lt(process.versions.node, '4.2.0')", '__witNodeOlderThan([4, 2, 0])'];

const REWRITES = {
  'task.js': [lazy('"child_process"'), extra('"minimatch"', 'minimatch'), extra('"./toolrunner"', 'toolrunner'), extra('"./externaloutput"', 'externaloutput'), lazy('"semver"'), nodeCheck, getter('ToolRunner', 'trm'), getter('defaultAllowedVsoCommands', 'eom')],
  // The messages are data that task-lib reads with hasOwnProperty, which a proxy cannot answer for:
  // the one place that reads them requires them from the extras instead.
  'internal.js': [
    extra('"minimatch"', 'minimatch'),
    lazy('"semver"'),
    nodeCheck,
    ["var libResource = require('./lib-resource');", ''],
    ['_loadEmbeddedLocStrings(libResource, _resourceCulture)', `_loadEmbeddedLocStrings(require("${EXTRAS}").libResource, _resourceCulture)`],
    // The vault's key, read once for the secrets of this loop (see above).
    ["    var loaded = 0;\n", "    var loaded = 0;\n    var loadKey;\n"],
    ['exports._vault.storeSecret(envvar, value);', 'exports._vault.storeSecret(envvar, value, loadKey || (loadKey = exports._vault.getKey()));'],
  ],
  'vault.js': [
    ['Vault.prototype.storeSecret = function (name, data) {', 'Vault.prototype.storeSecret = function (name, data, key) {'],
    ['var key = this.getKey();\n        var iv = crypto.randomBytes(16);', 'key = key || this.getKey();\n        var iv = crypto.randomBytes(16);'],
  ],
};
const HELPERS = { 'task.js': LAZY_HELPER + NODE_OLDER_THAN, 'internal.js': LAZY_HELPER + NODE_OLDER_THAN, 'vault.js': '' };

/** task-lib.js: task-lib's task and internal modules, with the rewrites above. */
export const taskLibLazy = {
  name: 'task-lib-lazy',
  setup(b) {
    b.onResolve({ filter: /^\.\/task-lib-extras\.js$/ }, () => ({ path: EXTRAS, external: true }));
    b.onLoad({ filter: /[\\/]azure-pipelines-task-lib[\\/](task|internal|vault)\.js$/ }, (a) => {
      const file = a.path.split(/[\\/]/).pop();
      let text = fs.readFileSync(a.path, 'utf8');
      for (const [from, to] of REWRITES[file]) {
        const at = text.indexOf(from);
        if (at < 0 || text.indexOf(from, at + from.length) >= 0) {
          throw new Error(`task-lib-lazy: expected exactly one '${from}' in azure-pipelines-task-lib/${file}; review the rewrite for this task-lib version`);
        }
        text = text.slice(0, at) + to + text.slice(at + from.length);
      }
      return { contents: HELPERS[file] + text, loader: 'js' };
    });
  },
};

/** task-lib-extras.js: the modules above, sharing task-lib.js's internal module (its state: vault, streams). */
export const taskLibExtras = {
  stdin: {
    contents: "exports.toolrunner = require('./toolrunner'); exports.externaloutput = require('./externaloutput'); exports.minimatch = require('minimatch'); exports.libResource = require('./lib-resource');",
    resolveDir: path.dirname(new URL(import.meta.resolve('azure-pipelines-task-lib/task')).pathname),
    loader: 'js',
  },
  plugins: [{
    name: 'task-lib-shared-internal',
    setup(b) {
      b.onResolve({ filter: /^\.\/(internal|task)$/ }, (a) => ({ path: a.path.slice(2), namespace: 'task-lib-shared' }));
      b.onLoad({ filter: /.*/, namespace: 'task-lib-shared' }, (a) => ({ contents: `module.exports = require('./task-lib.js').${a.path};`, loader: 'js' }));
      b.onResolve({ filter: /^\.\/task-lib\.js$/ }, () => ({ path: './task-lib.js', external: true }));
    },
  }],
};
