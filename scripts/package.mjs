// Packs dist/ into a .vsix with tfx. The publisher and extension id can be overridden for a
// private install:  npm run package -- --publisher my-org --extension-id wit-private
//   (or PUBLISHER=my-org EXTENSION_ID=wit-private npm run package); --out-dir DIR writes the
//   .vsix elsewhere than dist/. --repository-url URL (or REPOSITORY_URL) names the Git repository
//   that holds the project: the Marketplace page's links and each task's "Learn more" point into it
//   (scripts/links.cjs); without it they point at the extension's own Marketplace page.
// A private build gets its own task GUIDs (UUID v5 of publisher, extension id and task name), so it
// installs next to the public extension. tfx's task.json validation runs on every task, and every
// warning tfx prints is shown; any warning about a task.json fails the packaging.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const { docLinks, hasPlaceholder } = createRequire(import.meta.url)('./links.cjs');

// Namespace of the private builds' task GUIDs. Changing it changes every private build's GUIDs,
// which orphans the tasks of private extensions already installed: keep it.
const PRIVATE_TASK_NAMESPACE = '94eef0b5-f8a4-4894-9b76-6a75be27ab59';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const args = process.argv.slice(2);
function option(name, env) {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && args[i + 1]) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  if (eq) return eq.slice(name.length + 3);
  return process.env[env] || undefined;
}

const manifest = JSON.parse(fs.readFileSync(path.join(root, 'vss-extension.json'), 'utf8'));
const publisher = option('publisher', 'PUBLISHER') ?? manifest.publisher;
const extensionId = option('extension-id', 'EXTENSION_ID') ?? manifest.id;
for (const [what, v] of [['publisher', publisher], ['extension id', extensionId]]) {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v)) {
    console.error(`The ${what} '${v}' is not valid: use letters, digits, '.', '_' and '-'.`);
    process.exit(2);
  }
}
// The repository: the option, else the manifest's own once it holds a URL instead of the placeholder.
const committedRepository = manifest.repository?.uri;
const repositoryUrl = option('repository-url', 'REPOSITORY_URL') ?? (committedRepository && !hasPlaceholder(committedRepository) ? committedRepository : undefined);
let links;
try {
  links = docLinks({ publisher, extensionId, repositoryUrl });
} catch (err) {
  console.error(err.message);
  process.exit(2);
}
// The manifest's paths are those of the package: stage the built tasks, images and overview so.
const dist = path.join(root, 'dist');
const outDir = path.resolve(option('out-dir', 'VSIX_OUT_DIR') ?? dist);
fs.mkdirSync(dist, { recursive: true });
const stage = fs.mkdtempSync(path.join(dist, 'extension-'));
process.on('exit', () => fs.rmSync(stage, { recursive: true, force: true }));
for (const f of ['overview.md', 'LICENSE', 'PRIVACY.md', 'CHANGELOG.md']) fs.copyFileSync(path.join(root, f), path.join(stage, f));
// The manifest with this build's links: no `repository` when none was given (none is invented).
const staged = { ...manifest };
if (!links.repository) delete staged.repository;
fs.writeFileSync(path.join(stage, 'vss-extension.json'), links.resolve(JSON.stringify(staged, null, 2)) + '\n');
fs.cpSync(path.join(root, 'images'), path.join(stage, 'images'), { recursive: true });
fs.cpSync(path.join(dist, 'tasks'), path.join(stage, 'tasks'), { recursive: true });
for (const file of manifest.files) {
  if (!fs.existsSync(path.join(stage, file.path))) {
    console.error(`${file.path} is missing from the build: run npm run build first.`);
    process.exit(2);
  }
}
const taskJsons = manifest.contributions
  .filter((c) => c.type === 'ms.vss-distributed-task.task')
  .map((c) => path.join(stage, c.properties.name, 'task.json'));

// Each task's help links (helpUrl, "Learn more"): resolved in the text, so that every other byte of
// task.json stays as built (release/tasks.json records the built folder).
for (const file of taskJsons) fs.writeFileSync(file, links.resolve(fs.readFileSync(file, 'utf8')));
for (const file of [path.join(stage, 'vss-extension.json'), ...taskJsons]) {
  if (hasPlaceholder(fs.readFileSync(file, 'utf8'))) {
    console.error(`${path.relative(stage, file)} still holds a {docs}, {repository} or {support} placeholder after resolving.`);
    process.exit(1);
  }
}
console.log(links.repository ? `Links: the repository ${links.repository}` : `Links: the Marketplace page ${links.page} (no --repository-url, so no repository link)`);

// Private build: the public GUIDs stay with the public extension (they are a contract); a private
// one gets GUIDs of its own, the same on every build for the same publisher and extension id.
const isPrivate = publisher.toLowerCase() !== manifest.publisher.toLowerCase() || extensionId.toLowerCase() !== manifest.id.toLowerCase();
if (isPrivate) {
  console.log(`Private build: task GUIDs for ${publisher}.${extensionId}`);
  for (const file of taskJsons) {
    const task = JSON.parse(fs.readFileSync(file, 'utf8'));
    const id = privateTaskId(publisher, extensionId, task.name);
    console.log(`  ${task.name}: ${task.id} -> ${id}`);
    task.id = id;
    fs.writeFileSync(file, JSON.stringify(task, null, 2) + '\n');
  }
}

// tfx's own task.json validation, on every task (tfx itself reports only the first invalid one).
const tfxRequire = createRequire(path.join(root, 'node_modules', 'tfx-cli', 'package.json'));
const { validateTask } = tfxRequire('./_build/lib/jsonvalidate.js');
const taskIssues = [];
for (const file of taskJsons) {
  const [, ...issues] = validateTask(file, JSON.parse(fs.readFileSync(file, 'utf8')));
  for (const issue of issues) taskIssues.push(`${path.relative(stage, file)}: ${issue}`);
}

fs.mkdirSync(outDir, { recursive: true });
for (const f of fs.readdirSync(outDir)) if (f.endsWith('.vsix')) fs.rmSync(path.join(outDir, f));
const tfx = path.join(root, 'node_modules', 'tfx-cli', '_build', 'tfx-cli.js');
// tfx reads an --output-path with an extension as a file name, so a folder named like 'out.v2' would
// fail (EISDIR): it is given the file, named as tfx names it (publisher.extension-version.vsix).
const vsixFile = path.join(outDir, `${publisher}.${extensionId}-${manifest.version}.vsix`);
const cmd = ['extension', 'create', '--root', stage, '--manifest-globs', 'vss-extension.json', '--output-path', vsixFile, '--publisher', publisher, '--extension-id', extensionId, '--no-prompt', '--no-color', '--json'];
const run = spawnSync(process.execPath, [tfx, ...cmd], { cwd: stage, encoding: 'utf8', env: { ...process.env, TFX_TRACE: '' } });
// tfx writes its warnings ("warning: " on each line) to stdout, before the JSON result; errors to stderr.
const lines = (run.stdout ?? '').split(/\r?\n/);
const jsonStart = lines.findIndex((l) => l.startsWith('{'));
const before = jsonStart < 0 ? lines : lines.slice(0, jsonStart);
const warnings = before.filter((l) => l.startsWith('warning: ')).map((l) => l.slice('warning: '.length).replaceAll(stage + path.sep, ''));
const other = before.filter((l) => l.trim() && !l.startsWith('warning: '));
for (const l of other) console.log(`tfx: ${l}`);
for (const w of warnings) console.error(`tfx warning: ${w}`);
for (const i of taskIssues) console.error(`tfx task.json validation: ${i}`);
if (run.status !== 0 || jsonStart < 0) {
  if (run.stderr) process.stderr.write(run.stderr);
  console.error(`tfx extension create failed (exit ${run.status ?? run.signal}).`);
  process.exit(1);
}
// Everything tfx says about a task (its task.json, its runner, a contribution without task.json).
const aboutTasks = warnings.filter((w) => /task\.json|task runner|build task|invalid task/i.test(w));
if (taskIssues.length > 0 || aboutTasks.length > 0) {
  console.error('No .vsix: tfx finds fault with task.json (above); fix it, as tfx will treat this as an error.');
  for (const f of fs.readdirSync(outDir)) if (f.endsWith('.vsix')) fs.rmSync(path.join(outDir, f));
  process.exit(1);
}
const result = JSON.parse(lines.slice(jsonStart).join('\n'));
const size = fs.statSync(result.path).size;
console.log(`${path.relative(root, result.path)}: ${(size / 1024).toFixed(0)} KiB, publisher ${publisher}, extension ${extensionId}, version ${manifest.version}${warnings.length ? `, ${warnings.length} tfx warning line(s) above` : ''}`);

/** The GUID of a task in a private build: UUID v5 (RFC 4122 section 4.3, SHA-1) in a fixed namespace. */
function privateTaskId(publisher, extensionId, taskName) {
  return uuidV5(PRIVATE_TASK_NAMESPACE, `${publisher}.${extensionId}.${taskName}`.toLowerCase());
}
function uuidV5(namespace, name) {
  const hash = createHash('sha1').update(Buffer.from(namespace.replaceAll('-', ''), 'hex')).update(name, 'utf8').digest();
  hash[6] = (hash[6] & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8] & 0x3f) | 0x80; // RFC 4122 variant
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
