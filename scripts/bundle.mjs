// Bundles each task's entry points (the targets its task.json executes) into one file each,
// and lays the task folders out under dist/tasks/ as the .vsix carries them.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { taskLibExtras, taskLibLazy } from './shims/task-lib-lazy.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.join(root, 'dist', 'tasks');
fs.rmSync(out, { recursive: true, force: true });

// msal-node requires jsonwebtoken when it loads, though only certificate credentials sign with
// it: the bundler points that import at a shim that requires jsonwebtoken.js, bundled beside
// msal.js, on first use, so a federated or secret exchange never compiles it.
const lazyJsonwebtoken = {
  name: 'lazy-jsonwebtoken',
  setup(b) {
    b.onResolve({ filter: /^jsonwebtoken$/ }, () => ({ path: path.join(root, 'scripts', 'shims', 'jsonwebtoken-lazy.js') }));
    b.onResolve({ filter: /^\.\/jsonwebtoken\.js$/ }, () => ({ path: './jsonwebtoken.js', external: true }));
  },
};

// MSAL is a quarter of a task's code and only runs when a token is exchanged: it goes in its own
// file beside the entry points, which the entry requires on first use, so a run that never
// exchanges never compiles it.
const msalApart = {
  name: 'msal-apart',
  setup(b) {
    b.onResolve({ filter: /^@azure\/msal-node$/ }, () => ({ path: './msal.js', external: true }));
  },
};

// azure-pipelines-task-lib is most of each entry point (about 180 KiB of a post-job step's 187): a
// task folder carries it once, in task-lib.js beside its entry points, which each entry requires
// (its task and internal modules share state, so they go together), and the parts a step seldom
// uses in task-lib-extras.js (see shims/task-lib-lazy.mjs).
const taskLibApart = {
  name: 'task-lib-apart',
  setup(b) {
    b.onResolve({ filter: /^azure-pipelines-task-lib\/(task|internal)$/ }, (a) => ({ path: a.path.split('/')[1], namespace: 'task-lib-shim' }));
    b.onLoad({ filter: /.*/, namespace: 'task-lib-shim' }, (a) => ({ contents: `module.exports = require('./task-lib.js').${a.path};`, loader: 'js' }));
    b.onResolve({ filter: /^\.\/task-lib\.js$/ }, () => ({ path: './task-lib.js', external: true }));
  },
};

/** What tasks/core/azure/entra.ts takes from msal-node at run time (its other imports are types). */
const MSAL_EXPORTS = ['ConfidentialClientApplication', 'ManagedIdentityApplication'];

/** One CommonJS file per entry for the agent's Node 20 and Node 24 handlers; BUNDLE_MINIFY=0 to profile. */
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: process.env.BUNDLE_MINIFY !== '0',
  legalComments: 'eof',
  logLevel: 'warning',
  mainFields: ['main', 'module'],
};

const taskDirs = fs.readdirSync(path.join(root, 'tasks'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(root, 'tasks', d.name, 'task.json')))
  .map((d) => d.name);

for (const name of taskDirs) {
  const src = path.join(root, 'tasks', name);
  const task = JSON.parse(fs.readFileSync(path.join(src, 'task.json'), 'utf8'));
  const targets = new Set();
  for (const section of ['prejobexecution', 'execution', 'postjobexecution']) {
    for (const handler of Object.values(task[section] ?? {})) targets.add(handler.target);
  }
  // A token refresher is started by the task, not by the agent: bundled beside the entry points.
  if (fs.existsSync(path.join(src, 'refresher.ts'))) targets.add('refresher.js');
  const dest = path.join(out, name);
  fs.mkdirSync(dest, { recursive: true });
  for (const target of targets) {
    const entry = path.join(src, target.replace(/\.js$/, '.ts'));
    await build({ ...common, entryPoints: [entry], outfile: path.join(dest, target), plugins: [lazyJsonwebtoken, msalApart, taskLibApart] });
  }
  const usesTaskLib = [...targets].some((t) => fs.readFileSync(path.join(dest, t), 'utf8').includes('require("./task-lib.js")'));
  if (usesTaskLib) {
    targets.add('task-lib.js');
    await build({ ...common, stdin: { contents: "module.exports = { task: require('azure-pipelines-task-lib/task'), internal: require('azure-pipelines-task-lib/internal') };", resolveDir: root, loader: 'js' }, outfile: path.join(dest, 'task-lib.js'), plugins: [taskLibLazy] });
    targets.add('task-lib-extras.js');
    await build({ ...common, ...taskLibExtras, outfile: path.join(dest, 'task-lib-extras.js') });
  }
  const usesMsal = [...targets].some((t) => fs.readFileSync(path.join(dest, t), 'utf8').includes('require("./msal.js")'));
  if (usesMsal) {
    // From msal-node's ES module build, with only the classes tasks/core/azure/entra.ts uses, so that the
    // bundler leaves out what they never reach (5 ms less start-up than its CommonJS build).
    targets.add('msal.js');
    await build({ ...common, mainFields: ['module', 'main'], conditions: ['import'], stdin: { contents: `export { ${MSAL_EXPORTS.join(', ')} } from '@azure/msal-node';`, resolveDir: root, loader: 'js', sourcefile: 'msal-entry.mjs' }, outfile: path.join(dest, 'msal.js'), plugins: [lazyJsonwebtoken] });
    targets.add('jsonwebtoken.js');
    await build({ ...common, stdin: { contents: "module.exports = require('jsonwebtoken');", resolveDir: root, loader: 'js' }, outfile: path.join(dest, 'jsonwebtoken.js') });
  }
  fs.copyFileSync(path.join(src, 'task.json'), path.join(dest, 'task.json'));
  const icon = fs.existsSync(path.join(src, 'icon.png')) ? path.join(src, 'icon.png') : path.join(root, 'images', 'task-icon.png');
  fs.copyFileSync(icon, path.join(dest, 'icon.png'));
  const sizes = [...targets].map((t) => `${t} ${(fs.statSync(path.join(dest, t)).size / 1024).toFixed(0)} KiB`).join(', ');
  console.log(`bundled ${name}: ${sizes}`);
}
