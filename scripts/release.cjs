// The last release of the extension, recorded in release/tasks.json: its version and, for each task,
// the task's version and a SHA-256 of the task's folder as built (dist/tasks/<folder>: task.json, the
// bundles, the icon; every file the agent downloads). The packaging tests (tests/packaging/release.test.ts)
// fail when a task's folder differs from the recorded one while its version is the recorded one:
// every organisation that installed the extension would run the new code under the old version.
//
//   npm run release-record          builds, checks, and records the build as the release (a maintainer,
//                                   when releasing, after bumping versions and writing CHANGELOG.md)
//   node scripts/release.cjs check  the same check, on the current build, printing what is wrong
//
// The hash is the build's, before the package-time settings (a private build's GUIDs, the
// documentation links of scripts/links.cjs), which do not change what runs. esbuild's output is the
// same on every run and under Node 20 and 24 for the locked dependencies; BUNDLE_MINIFY=0 or other
// dependency versions give other bundles, and so other hashes.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const RECORD_FILE = path.join(root, 'release', 'tasks.json');

/**
 * SHA-256 of a task folder: every file, in the order of its path relative to the folder ('/'
 * separators, compared as bytes), as `<path>\0<size>\0<bytes>`. A .json file's CRLF line ends count
 * as LF (a task.json checked out on Windows with autocrlf). Anything but files and folders throws.
 */
function folderHash(dir) {
  const files = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) files.push(r);
      else throw new Error(`${path.join(dir, r)} is neither a file nor a folder`);
    }
  };
  walk('');
  files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const h = crypto.createHash('sha256');
  for (const f of files) {
    let data = fs.readFileSync(path.join(dir, f));
    if (f.endsWith('.json')) data = Buffer.from(data.toString('utf8').replace(/\r\n/g, '\n'), 'utf8');
    h.update(`${f}\0${data.length}\0`);
    h.update(data);
  }
  return h.digest('hex');
}

const versionOf = (v) => `${v.Major}.${v.Minor}.${v.Patch}`;

/** -1, 0 or 1, comparing 'a.b.c' versions numerically. */
function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

/**
 * What is about to ship: the extension's version (vss-extension.json, package.json), CHANGELOG.md,
 * and each task of the manifest as built under `tasksDir` (default dist/tasks).
 */
function currentState({ projectRoot = root, tasksDir = path.join(projectRoot, 'dist', 'tasks') } = {}) {
  const manifest = JSON.parse(fs.readFileSync(path.join(projectRoot, 'vss-extension.json'), 'utf8'));
  const pkg = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8'));
  const tasks = {};
  for (const c of manifest.contributions.filter((x) => x.type === 'ms.vss-distributed-task.task')) {
    const folder = path.basename(c.properties.name);
    const dir = path.join(tasksDir, folder);
    if (!fs.existsSync(path.join(dir, 'task.json'))) throw new Error(`${dir} has no task.json: run npm run build first.`);
    const task = JSON.parse(fs.readFileSync(path.join(dir, 'task.json'), 'utf8'));
    tasks[folder] = { name: task.name, version: versionOf(task.version), sha256: folderHash(dir) };
  }
  return { extension: manifest.version, packageVersion: pkg.version, changelog: fs.readFileSync(path.join(projectRoot, 'CHANGELOG.md'), 'utf8'), tasks };
}

/** The section of CHANGELOG.md for one extension version (from its '## <version>' heading to the next), or undefined. */
function changelogSection(changelog, version) {
  const lines = changelog.split(/\r?\n/);
  const start = lines.findIndex((l) => new RegExp(`^## ${version.replace(/\./g, '\\.')}(\\s|$)`).test(l));
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** What is wrong with shipping `current` after the release `record`: one message each, naming the fix. */
function releaseProblems(record, current) {
  const problems = [];
  if (current.packageVersion !== current.extension) {
    problems.push(`package.json's version ${current.packageVersion} differs from vss-extension.json's ${current.extension}: keep the two the same.`);
  }
  const changed = [];
  for (const [folder, r] of Object.entries(record.tasks)) {
    if (!current.tasks[folder]) {
      problems.push(`${r.name}@${r.version.split('.')[0]} (tasks/${folder}, released as ${r.version}) is no longer in the extension: every pipeline that uses it would break when the extension updates. Keep it (deprecate it instead); if its removal is meant, take it out of release/tasks.json too.`);
    }
  }
  for (const [folder, t] of Object.entries(current.tasks)) {
    const r = record.tasks[folder];
    const ref = `${t.name}@${t.version.split('.')[0]}`;
    if (!r) {
      changed.push(t);
      continue;
    }
    const cmp = compareVersions(t.version, r.version);
    if (cmp < 0) {
      problems.push(`${ref}: its version ${t.version} is lower than release ${record.extension}'s ${r.version}: agents keep the highest version they have, so a lower one never runs. Give it a version above ${r.version} in tasks/${folder}/task.json.`);
    } else if (cmp === 0 && t.sha256 !== r.sha256) {
      problems.push(`${ref}: its bundle (tasks/${folder} as built) differs from release ${record.extension}'s, but task.json still says version ${t.version}, so organisations that installed ${record.extension} would run different code under the same version. Bump Patch (a fix) or Minor (a new input or behaviour) in tasks/${folder}/task.json and add a CHANGELOG.md entry '${t.name} <new version>' under the extension's new version. (If no change is meant, rebuild with the locked dependencies and default settings: npm ci && npm run build.)`);
    } else if (cmp > 0) {
      changed.push(t);
    }
  }
  const extCmp = compareVersions(current.extension, record.extension);
  if (extCmp < 0) {
    problems.push(`The extension's version ${current.extension} is lower than the released ${record.extension}: the Marketplace takes only a higher one. Set vss-extension.json's and package.json's version above ${record.extension}.`);
  } else if (extCmp === 0 && changed.length > 0) {
    problems.push(`${changed.map((t) => `${t.name} ${t.version}`).join(', ')} changed since release ${record.extension}, but the extension's version is still ${record.extension}: the Marketplace refuses a version it has. Bump the version in vss-extension.json and package.json (e.g. to ${record.extension.replace(/\d+$/, (n) => `${Number(n) + 1}`)}).`);
  }
  const section = changelogSection(current.changelog, current.extension);
  if (!section) {
    problems.push(`CHANGELOG.md has no section '## ${current.extension}' for the extension's version: add one naming each task that changed ('<task> <version>') and what changed.`);
  } else {
    for (const t of changed) {
      if (!section.includes(`${t.name} ${t.version}`)) problems.push(`CHANGELOG.md's section '## ${current.extension}' does not name '${t.name} ${t.version}': add what changed in it.`);
    }
  }
  return problems;
}

function readRecord(file = RECORD_FILE) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** The record of `current` as release/tasks.json holds it. */
function recordOf(current) {
  const tasks = {};
  for (const folder of Object.keys(current.tasks).sort()) tasks[folder] = { ...current.tasks[folder] };
  return { extension: current.extension, tasks };
}

module.exports = { folderHash, compareVersions, currentState, changelogSection, releaseProblems, readRecord, recordOf, RECORD_FILE };

if (require.main === module) {
  const command = process.argv[2];
  if (command !== 'check' && command !== 'record') {
    console.error('Usage: node scripts/release.cjs check | record   (after npm run build)');
    process.exit(2);
  }
  const current = currentState();
  const previous = fs.existsSync(RECORD_FILE) ? readRecord() : { extension: '0.0.0', tasks: {} };
  const problems = releaseProblems(previous, current);
  for (const p of problems) console.error(`- ${p}`);
  if (problems.length > 0) {
    console.error(`${problems.length} problem(s) against release ${previous.extension} (release/tasks.json)${command === 'record' ? ': nothing recorded.' : '.'}`);
    process.exit(1);
  }
  if (command === 'check') {
    console.log(`Ready: every task whose bundle changed since release ${previous.extension} has a new version.`);
  } else {
    fs.mkdirSync(path.dirname(RECORD_FILE), { recursive: true });
    fs.writeFileSync(RECORD_FILE, `${JSON.stringify(recordOf(current), null, 2)}\n`);
    console.log(`Recorded release ${current.extension} in ${path.relative(root, RECORD_FILE)}: ${Object.values(current.tasks).map((t) => `${t.name} ${t.version}`).join(', ')}.`);
  }
}
