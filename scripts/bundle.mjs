// Bundles each task's entry points (the targets its task.json executes) into one file each,
// and lays the task folders out under dist/tasks/ as the .vsix carries them.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.join(root, 'dist', 'tasks');
fs.rmSync(out, { recursive: true, force: true });

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
  const dest = path.join(out, name);
  fs.mkdirSync(dest, { recursive: true });
  for (const target of targets) {
    const entry = path.join(src, target.replace(/\.js$/, '.ts'));
    await build({
      entryPoints: [entry],
      outfile: path.join(dest, target),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      minify: true,
      legalComments: 'eof',
      logLevel: 'warning',
      // Keep the shape of task-lib's require of its own resources, which esbuild cannot see.
      mainFields: ['main', 'module'],
    });
  }
  fs.copyFileSync(path.join(src, 'task.json'), path.join(dest, 'task.json'));
  const icon = fs.existsSync(path.join(src, 'icon.png')) ? path.join(src, 'icon.png') : path.join(root, 'images', 'task-icon.png');
  fs.copyFileSync(icon, path.join(dest, 'icon.png'));
  const sizes = [...targets].map((t) => `${t} ${(fs.statSync(path.join(dest, t)).size / 1024).toFixed(0)} KiB`).join(', ');
  console.log(`bundled ${name}: ${sizes}`);
}
