/**
 * Versions (issue 22): release/tasks.json records the last release (each task's version and a hash
 * of its built folder); a task whose folder changed since must have a new version, the extension a
 * new version and CHANGELOG.md an entry for it (scripts/release.cjs). The hash is of the folder the
 * .vsix carries, and the same under Node 20 and Node 24.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readZip, ZipEntry } from '../helpers/zip';

const root = path.resolve(__dirname, '..', '..', '..');
const distTasks = path.join(root, 'dist', 'tasks');

interface TaskState { name: string; version: string; sha256: string }
interface State { extension: string; packageVersion: string; changelog: string; tasks: Record<string, TaskState> }
interface Record_ { extension: string; tasks: Record<string, TaskState> }
// eslint-disable-next-line @typescript-eslint/no-require-imports
const release = require(path.join(root, 'scripts', 'release.cjs')) as {
  folderHash(dir: string): string;
  currentState(o?: { projectRoot?: string; tasksDir?: string }): State;
  releaseProblems(record: Record_, current: State): string[];
  readRecord(): Record_;
  changelogSection(changelog: string, version: string): string | undefined;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { docLinks } = require(path.join(root, 'scripts', 'links.cjs')) as { docLinks(o: { publisher: string; extensionId: string }): { resolve(t: string): string } };

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('versions: the last release and the check against it (issue 22)', () => {
  let record: Record_;
  let current: State;
  let entries: ZipEntry[];

  before(() => {
    const vsix = fs.readdirSync(path.join(root, 'dist')).filter((f) => f.endsWith('.vsix'));
    assert.equal(vsix.length, 1, 'npm test packages first: exactly one .vsix in dist/');
    entries = readZip(path.join(root, 'dist', vsix[0]));
    record = release.readRecord();
    current = release.currentState();
  });

  it('finds nothing wrong with this build against release/tasks.json', () => {
    assert.deepEqual(release.releaseProblems(record, current), []);
    assert.deepEqual(Object.keys(current.tasks).sort(), Object.keys(record.tasks).sort(), 'every task of the manifest is recorded');
  });

  it('hashes the task folders the .vsix carries: every file, the same bytes (task.json before its package-time links)', () => {
    const links = docLinks({ publisher: 'workload-identity-tasks', extensionId: 'workload-identity-tasks' });
    for (const folder of Object.keys(current.tasks)) {
      const packed = entries.filter((e) => e.name.startsWith(`tasks/${folder}/`) && !e.name.endsWith('/'));
      const built: string[] = [];
      const walk = (rel: string): void => {
        for (const e of fs.readdirSync(path.join(distTasks, folder, rel), { withFileTypes: true })) {
          const r = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) walk(r);
          else built.push(r);
        }
      };
      walk('');
      assert.deepEqual(packed.map((e) => e.name.slice(`tasks/${folder}/`.length)).sort(), built.sort(), `${folder}: the same files`);
      for (const e of packed) {
        const file = fs.readFileSync(path.join(distTasks, folder, e.name.slice(`tasks/${folder}/`.length)));
        const expected = e.name.endsWith('/task.json') ? Buffer.from(links.resolve(file.toString('utf8'))) : file;
        assert.ok(e.data.equals(expected), `${e.name}: as built`);
      }
    }
  });

  it('hashes the same under Node 20 and Node 24', function () {
    const node24 = path.join(root, '.tmp', 'node24', 'package', 'bin', 'node');
    if (!fs.existsSync(node24)) {
      console.log('      (skipped: no Node 24 under .tmp/node24; scripts/node24.cjs fetches it)');
      this.skip();
    }
    const script = `const r = require(${JSON.stringify(path.join(root, 'scripts', 'release.cjs'))}); console.log(JSON.stringify(Object.fromEntries(Object.entries(r.currentState().tasks).map(([f, t]) => [f, t.sha256]))));`;
    const hashes = (node: string) => {
      const r = spawnSync(node, ['-e', script], { cwd: root, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as Record<string, string>;
    };
    const on24 = hashes(node24);
    assert.deepEqual(hashes(process.execPath), on24);
    assert.deepEqual(on24, Object.fromEntries(Object.entries(current.tasks).map(([f, t]) => [f, t.sha256])));
  });

  describe('a task whose bundle changed (a modified copy of a built task)', () => {
    let dir: string;
    let changed: State;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-release-'));
      fs.cpSync(path.join(distTasks, 'FetchOidcTokenV1'), path.join(dir, 'FetchOidcTokenV1'), { recursive: true });
      fs.appendFileSync(path.join(dir, 'FetchOidcTokenV1', 'index.js'), '\n// one more line\n');
      changed = clone(current);
      changed.tasks.FetchOidcTokenV1.sha256 = release.folderHash(path.join(dir, 'FetchOidcTokenV1'));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('without a version bump: fails, saying to bump Patch or Minor and to add a CHANGELOG entry', () => {
      assert.notEqual(changed.tasks.FetchOidcTokenV1.sha256, record.tasks.FetchOidcTokenV1.sha256);
      const problems = release.releaseProblems(record, changed);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0], /^FetchOidcToken@1: its bundle \(tasks\/FetchOidcTokenV1 as built\) differs from release 1\.0\.0's, but task\.json still says version 1\.0\.0/);
      assert.match(problems[0], /Bump Patch \(a fix\) or Minor \(a new input or behaviour\) in tasks\/FetchOidcTokenV1\/task\.json and add a CHANGELOG\.md entry/);
    });

    it('with the task bumped: the extension must be bumped and CHANGELOG.md name the new version, then it passes', () => {
      const bumped = clone(changed);
      bumped.tasks.FetchOidcTokenV1.version = '1.0.1';
      assert.deepEqual(release.releaseProblems(record, bumped), [
        "FetchOidcToken 1.0.1 changed since release 1.0.0, but the extension's version is still 1.0.0: the Marketplace refuses a version it has. Bump the version in vss-extension.json and package.json (e.g. to 1.0.1).",
        "CHANGELOG.md's section '## 1.0.0' does not name 'FetchOidcToken 1.0.1': add what changed in it.",
      ]);
      bumped.extension = '1.0.1';
      assert.match(release.releaseProblems(record, bumped).join('\n'), /package\.json's version 1\.0\.0 differs from vss-extension\.json's 1\.0\.1/);
      bumped.packageVersion = '1.0.1';
      assert.match(release.releaseProblems(record, bumped).join('\n'), /CHANGELOG\.md has no section '## 1\.0\.1'/);
      bumped.changelog = current.changelog.replace('## 1.0.0', '## 1.0.1\n\n- **FetchOidcToken 1.0.2**: a typo.\n\n## 1.0.0');
      assert.match(release.releaseProblems(record, bumped).join('\n'), /does not name 'FetchOidcToken 1\.0\.1'/);
      bumped.changelog = current.changelog.replace('## 1.0.0', '## 1.0.1\n\n- **FetchOidcToken 1.0.1**: a fix.\n\n## 1.0.0');
      assert.deepEqual(release.releaseProblems(record, bumped), []);
    });

    it('refuses a version lower than the release\'s, a lower extension version, and a released task left out', () => {
      const lower = clone(current);
      lower.tasks.GcpAuthFederatedV1.version = '0.9.9';
      assert.match(release.releaseProblems(record, lower).join('\n'), /GcpAuthFederated@0: its version 0\.9\.9 is lower than release 1\.0\.0's 1\.0\.0/);
      const older = clone(current);
      older.extension = older.packageVersion = '0.9.0';
      assert.match(release.releaseProblems(record, older).join('\n'), /The extension's version 0\.9\.0 is lower than the released 1\.0\.0/);
      const without = clone(current);
      delete without.tasks.AuditServiceConnectionsV1;
      assert.match(release.releaseProblems(record, without).join('\n'), /AuditServiceConnections@1 \(tasks\/AuditServiceConnectionsV1, released as 1\.0\.0\) is no longer in the extension/);
    });
  });

  it('gives each task releaseNotes for its version, and CHANGELOG.md names each task of release 1.0.0', () => {
    const section = release.changelogSection(current.changelog, '1.0.0');
    assert.ok(section, 'CHANGELOG.md has ## 1.0.0');
    for (const [folder, t] of Object.entries(current.tasks)) {
      const task = JSON.parse(fs.readFileSync(path.join(root, 'tasks', folder, 'task.json'), 'utf8')) as { releaseNotes?: string };
      assert.ok(task.releaseNotes?.startsWith(`${t.version}: `), `${folder}: releaseNotes start with its version ${t.version}`);
      assert.ok(section.includes(`${t.name} 1.0.0`), `CHANGELOG.md 1.0.0 names ${t.name}`);
    }
    for (const type of ['WorkloadIdentityAws', 'WorkloadIdentityGcp', 'WorkloadIdentityOidc', 'WorkloadIdentityVault']) assert.ok(section.includes(type), `CHANGELOG.md 1.0.0 names the connection type ${type}`);
  });
});
