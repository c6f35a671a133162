/**
 * AcrLoginFederated@1 with configScope: user, the user's docker config shared by jobs of one agent
 * account: the bundled task's main and post-job steps, run as the agent runs them, interleaved and
 * concurrent against one file, with a symlink, a FIFO, a folder and an unreadable file in its place,
 * with stale and live locks next to it, and with things in the lock's place that are no lock
 * (symlinks, a folder, a FIFO), waited for without spinning.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, Emulator } from '../emulator/index';
import { addFederatedConnection, E2eRuns, FederatedConnection, postJobEnv, TENANT, wif } from '../helpers/e2e';
import { TaskRun } from '../helpers/task-process';

const ACR_USER = '00000000-0000-0000-0000-000000000000';
// Unrelated logins, a credential store and helpers, tabs, odd spacing, no final newline.
const ORIGINAL = '{\n\t"auths": {\n\t\t"registry.example.com": {\n\t\t\t"auth": "dXNlcjpwYXNzd29yZA=="\n\t\t},\n\t\t"docker.io" : { "auth":"ZG9ja2VyOmh1Yg==" }\n\t},\n  "credsStore": "pass",\n\t"credHelpers": { "gcr.io": "gcloud" },\n\t"HttpHeaders": {"User-Agent": "odd"}\n}';

describe('E2E AcrLoginFederated@1 user scope: one docker config shared by concurrent jobs', function () {
  this.timeout(90_000);
  let emu: Emulator;
  let second: string;
  const e2e = new E2eRuns(() => emu);
  const temps: string[] = [];

  before(async () => {
    emu = await startEmulator();
    emu.addRegistry({ loginServer: emu.host, tenantId: TENANT });
    second = `localhost:${emu.host.split(':')[1]}`;
    emu.addRegistry({ loginServer: second, tenantId: TENANT });
  });
  after(async () => {
    await emu?.stop();
    for (const t of temps) fs.rmSync(t, { recursive: true, force: true });
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
  });

  function temp(prefix: string): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    temps.push(d);
    return d;
  }


  interface Job {
    c: FederatedConnection;
    job: { tempDirectory: string };
    registries: string;
    main?: TaskRun;
  }

  function newJob(registries: string): Job {
    return { c: addFederatedConnection(emu), job: { tempDirectory: temp('wit-job-') }, registries };
  }

  async function main(j: Job, home: string, env: Record<string, string> = {}): Promise<TaskRun> {
    j.main = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(j.c), inputs: { registries: j.registries, trustedRegistryHosts: `${emu.host}, ${second}`, configScope: 'user' }, job: j.job, env: { DOCKER_CONFIG: home, ...env }, timeoutMs: 30_000 });
    return j.main;
  }

  async function post(j: Job, home: string, env: Record<string, string> = {}): Promise<TaskRun> {
    return e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(j.c), job: j.job, env: { DOCKER_CONFIG: home, ...postJobEnv(j.main!), ...env }, entry: 'post.js', timeoutMs: 30_000 });
  }

  function auths(file: string): Record<string, { auth?: string }> {
    return JSON.parse(fs.readFileSync(file, 'utf8')).auths ?? {};
  }

  function ours(entry: { auth?: string } | undefined): boolean {
    return !!entry?.auth && Buffer.from(entry.auth, 'base64').toString().startsWith(`${ACR_USER}:`);
  }

  /** No token of the emulator's, and no ACR login, anywhere in the folder. */
  function assertNoToken(dir: string): void {
    for (const name of fs.readdirSync(dir)) {
      const p = path.join(dir, name);
      if (!fs.statSync(p).isFile()) continue;
      const text = fs.readFileSync(p, 'utf8');
      for (const t of emu.issuedTokens()) assert.ok(!text.includes(t), `${name} holds a token`);
      assert.ok(!text.includes(Buffer.from(`${ACR_USER}:`).toString('base64').slice(0, 40)), `${name} holds an ACR login`);
    }
  }

  function assertOriginal(home: string, file = path.join(home, 'config.json'), mode = 0o644): void {
    assert.equal(fs.readFileSync(file, 'utf8'), ORIGINAL, 'byte for byte the original');
    assert.equal(fs.statSync(file).mode & 0o777, mode, 'the original mode');
    assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), [path.basename(file)], 'no lock, record or temp file left');
    assertNoToken(path.dirname(file));
  }

  function userHome(): { home: string; file: string } {
    const home = temp('wit-docker-home-');
    const file = path.join(home, 'config.json');
    fs.writeFileSync(file, ORIGINAL, { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    return { home, file };
  }

  it('A main, B main, A post, B post (two registries): B survives A\'s post; after B\'s post the original bytes, no token', async () => {
    const { home, file } = userHome();
    const a = newJob(emu.host);
    const b = newJob(second);
    assert.equal((await main(a, home)).result, 'Succeeded', a.main?.stdout);
    assert.ok(ours(auths(file)[emu.host]));
    assert.equal((await main(b, home)).result, 'Succeeded', b.main?.stdout);
    const afterB = auths(file);
    assert.ok(ours(afterB[emu.host]) && ours(afterB[second]), 'both logins');
    assert.equal(afterB['registry.example.com'].auth, 'dXNlcjpwYXNzd29yZA==');

    const ap = await post(a, home);
    assert.equal(ap.result, 'Succeeded', ap.stdout);
    const afterAPost = auths(file);
    assert.equal(afterAPost[emu.host], undefined, 'A\'s login is gone');
    assert.deepEqual(afterAPost[second], afterB[second], 'B\'s login survives A\'s post');
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).credsStore, 'pass');

    const bp = await post(b, home);
    assert.equal(bp.result, 'Succeeded', bp.stdout);
    assertOriginal(home);
    assert.match(bp.log, /Restored .*config\.json to its exact contents/);
    assert.equal((await post(b, home)).result, 'Succeeded', 'a second post-job run is harmless');
    assertOriginal(home);
  });

  it('one registry, both jobs: each post-job leaves the other\'s login; the user\'s own entry for it comes back', async () => {
    const { home, file } = userHome();
    const own = { auth: Buffer.from('admin:own-password').toString('base64') };
    const original = JSON.parse(ORIGINAL);
    original.auths[emu.host] = own;
    const originalText = JSON.stringify(original);
    fs.writeFileSync(file, originalText);

    // A main, B main, A post, B post.
    let a = newJob(emu.host);
    let b = newJob(emu.host);
    await main(a, home);
    await main(b, home);
    const bEntry = auths(file)[emu.host];
    assert.ok(ours(bEntry));
    assert.equal((await post(a, home)).result, 'Succeeded');
    assert.deepEqual(auths(file)[emu.host], bEntry, 'B\'s login survives A\'s post');
    const bp = await post(b, home);
    assert.equal(bp.result, 'Succeeded', bp.stdout);
    assert.equal(fs.readFileSync(file, 'utf8'), originalText, 'byte for byte, the user\'s own entry back, A\'s token not resurrected');

    // A main, B main, B post, A post.
    a = newJob(emu.host);
    b = newJob(emu.host);
    await main(a, home);
    const aEntry = auths(file)[emu.host];
    await main(b, home);
    await post(b, home);
    assert.deepEqual(auths(file)[emu.host], aEntry, 'A\'s login is back after B\'s post (A still runs)');
    await post(a, home);
    assert.equal(fs.readFileSync(file, 'utf8'), originalText);
    assert.deepEqual(fs.readdirSync(home), ['config.json']);
  });

  it('no file before: created by the first job, removed with its folder after the last', async () => {
    const home = path.join(temp('wit-docker-home-'), '.docker');
    const a = newJob(emu.host);
    const b = newJob(second);
    await main(a, home);
    await main(b, home);
    assert.equal(fs.statSync(path.join(home, 'config.json')).mode & 0o777, 0o600);
    await post(a, home);
    assert.deepEqual(Object.keys(auths(path.join(home, 'config.json'))), [second]);
    await post(b, home);
    assert.ok(!fs.existsSync(home), 'no file and no folder after');
  });

  it('a config.json that is a symlink stays a symlink; its target gets the changes and its original bytes back', async () => {
    const home = temp('wit-docker-home-');
    const real = path.join(temp('wit-dotfiles-'), 'docker-config.json');
    fs.writeFileSync(real, ORIGINAL);
    fs.chmodSync(real, 0o644);
    const link = path.join(home, 'config.json');
    fs.symlinkSync(path.relative(home, real), link);
    const a = newJob(emu.host);
    const r = await main(a, home);
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.ok(fs.lstatSync(link).isSymbolicLink(), 'still a symlink');
    assert.ok(ours(auths(real)[emu.host]), 'the target holds the login');
    assert.match(r.log, /is a symlink: the logins are written to its target/);
    assert.equal((await post(a, home)).result, 'Succeeded');
    assert.ok(fs.lstatSync(link).isSymbolicLink(), 'still a symlink');
    assertOriginal(path.dirname(real), real);
    assert.deepEqual(fs.readdirSync(home), ['config.json']);
  });

  for (const [what, make, message] of [
    ['a FIFO', (p: string) => execFileSync('mkfifo', [p]), /is a named pipe \(FIFO\), not a file; the task leaves it as it is/],
    ['a folder', (p: string) => fs.mkdirSync(p), /is a folder, not a file; the task leaves it as it is/],
  ] as const) {
    it(`config.json is ${what}: main fails at once with the path, before any token; so does a post-job that meets one`, async () => {
      const home = temp('wit-docker-home-');
      const file = path.join(home, 'config.json');
      make(file);
      const r = await main(newJob(emu.host), home);
      assert.equal(r.result, 'Failed', r.stdout);
      assert.ok(r.durationMs < 10_000, `${r.durationMs} ms`);
      const msg = r.errors.join('\n');
      assert.match(msg, message);
      assert.ok(msg.includes(file), msg);
      assert.match(msg, /configScope: job/);
      assert.doesNotMatch(msg, /failed unexpectedly/);
      assert.equal(Object.values(emu.counts()).reduce((x, y) => x + y, 0), 0, 'no request, no token');

      // A file that becomes one between main and post-job.
      const home2 = userHome();
      const j = newJob(emu.host);
      assert.equal((await main(j, home2.home)).result, 'Succeeded');
      fs.rmSync(home2.file);
      make(home2.file);
      const p = await post(j, home2.home);
      assert.equal(p.result, 'Failed', p.stdout);
      assert.match(p.errors.join('\n'), message);
      assert.doesNotMatch(p.errors.join('\n'), /failed unexpectedly/);
      assert.ok(!fs.existsSync(`${home2.file}.lock`), 'the lock is released');
    });
  }

  it('an unreadable config.json (mode 000, the task run as an unprivileged user) fails at once with the path', async function () {
    const nobody = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' });
    if (process.getuid?.() !== 0 || nobody.status !== 0) this.skip(); // root ignores mode 000; another user is needed
    const uid = Number(nobody.stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout.trim());
    const home = temp('wit-docker-home-');
    const file = path.join(home, 'config.json');
    fs.writeFileSync(file, ORIGINAL);
    fs.chmodSync(file, 0o000);
    fs.chownSync(home, uid, gid);
    fs.chownSync(file, uid, gid);
    const j = newJob(emu.host);
    fs.chmodSync(j.job.tempDirectory, 0o777);
    j.main = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(j.c), inputs: { registries: emu.host, trustedRegistryHosts: emu.host, configScope: 'user' }, job: j.job, env: { DOCKER_CONFIG: home, HOME: home }, user: { uid, gid } });
    const r = j.main;
    assert.equal(r.result, 'Failed', r.stdout + r.stderr);
    const msg = r.errors.join('\n');
    assert.match(msg, /cannot be read by the agent account \(EACCES\); the task leaves it as it is/);
    assert.ok(msg.includes(file), msg);
    assert.doesNotMatch(msg, /failed unexpectedly/);
    assert.equal(Object.values(emu.counts()).reduce((x, y) => x + y, 0), 0, 'no request, no token');
    fs.chmodSync(file, 0o644);
    assert.equal(fs.readFileSync(file, 'utf8'), ORIGINAL);
  });

  it('a stale lock is broken, saying so: its process gone, or older than 2 minutes', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    for (const lock of [
      { pid: dead, host: os.hostname(), time: new Date().toISOString(), id: 'dead-process' },
      { pid: 1, host: 'another-host', time: new Date(Date.now() - 10 * 60_000).toISOString(), id: 'old' },
    ]) {
      const { home, file } = userHome();
      fs.writeFileSync(`${file}.lock`, JSON.stringify(lock));
      const a = newJob(emu.host);
      const r = await main(a, home);
      assert.equal(r.result, 'Succeeded', r.stdout);
      assert.match(r.log, lock.id === 'old' ? /Broke the stale lock .*config\.json\.lock .*it is \d+ s old/ : new RegExp(`Broke the stale lock .*config\\.json\\.lock .*its process ${dead} on this host is gone`));
      assert.ok(ours(auths(file)[emu.host]));
      assert.equal((await post(a, home)).result, 'Succeeded');
      assertOriginal(home);
    }
  });

  it('a live lock held beyond the wait fails clearly within the bound; the file is untouched', async () => {
    const { home, file } = userHome();
    fs.writeFileSync(`${file}.lock`, JSON.stringify({ pid: process.pid, host: os.hostname(), time: new Date().toISOString(), id: 'held' }));
    const started = Date.now();
    const r = await main(newJob(emu.host), home, { WORKLOADIDENTITY_DOCKERCONFIGLOCKWAITSECONDS: '2' });
    const took = Date.now() - started;
    assert.equal(r.result, 'Failed', r.stdout);
    assert.ok(took >= 2000 && took < 8000, `${took} ms`);
    const msg = r.errors.join('\n');
    assert.match(msg, new RegExp(`is locked by another job \\(.*config\\.json\\.lock: process ${process.pid} on .*\\); the task waited 2 s`));
    assert.match(msg, /WorkloadIdentity\.DockerConfigLockWaitSeconds/);
    assert.doesNotMatch(msg, /failed unexpectedly/);
    assert.match(r.log, /Waiting for the lock/);
    assert.equal(fs.readFileSync(file, 'utf8'), ORIGINAL);
    assert.ok(fs.existsSync(`${file}.lock`), 'another holder\'s lock is not removed');
    fs.rmSync(`${file}.lock`);
  });

  /**
   * CPU time (user + system, ms) of this process's children that have ended, from /proc/self/stat
   * (cutime, cstime): around one task run, that run's process (the suite's other children live on).
   */
  function childrenCpuMs(): number {
    const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    // After "pid (comm) ", field 3 is fields[0]; cutime and cstime are fields 16 and 17.
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  }

  async function measured(run: () => Promise<TaskRun>): Promise<{ r: TaskRun; cpuMs: number }> {
    const before = childrenCpuMs();
    const r = await run();
    return { r, cpuMs: childrenCpuMs() - before };
  }

  const LOCK_WAIT_S = 2;
  for (const [what, make, kind] of [
    ['a dangling symlink', (lock: string) => fs.symlinkSync(path.join(path.dirname(lock), 'nowhere'), lock), /is a symlink to .*nowhere that leads nowhere/],
    ['a symlink loop', (lock: string) => { fs.symlinkSync(`${lock}.b`, lock); fs.symlinkSync(lock, `${lock}.b`); }, /is a symlink loop/],
    ['a folder', (lock: string) => fs.mkdirSync(lock), /is a folder/],
    ['a FIFO', (lock: string) => execFileSync('mkfifo', [lock]), /is a named pipe \(FIFO\)/],
  ] as const) {
    it(`config.json.lock is ${what}: main and post-job wait the configured ${LOCK_WAIT_S} s at near-zero CPU, then fail naming the path and the fix`, async function () {
      if (!fs.existsSync('/proc/self/stat')) this.skip();
      const env = { WORKLOADIDENTITY_DOCKERCONFIGLOCKWAITSECONDS: String(LOCK_WAIT_S) };
      const check = (r: TaskRun, cpuMs: number, lock: string, step: string) => {
        assert.equal(r.result, 'Failed', r.stdout);
        // The wait, then the step's own start and requests: not 100 % of a core for the wait.
        assert.ok(r.durationMs >= LOCK_WAIT_S * 1000 && r.durationMs < LOCK_WAIT_S * 1000 + 3000, `${step}: ${r.durationMs} ms`);
        assert.ok(cpuMs < LOCK_WAIT_S * 1000 * 0.25, `${step}: ${cpuMs} ms of CPU in ${r.durationMs} ms`);
        const msg = r.errors.join('\n');
        assert.ok(msg.includes(lock), msg);
        assert.match(msg, kind);
        assert.match(msg, /not a lock file this task makes; the task waited 2 s/);
        assert.match(msg, /remove .*config\.json\.lock/);
        assert.doesNotMatch(msg, /failed unexpectedly/);
        assert.match(r.log, /Waiting for the lock/);
        assert.ok(fs.lstatSync(lock), `${step}: what stands at the lock's path is left`);
        return `${step} ${r.durationMs} ms, CPU ${cpuMs} ms`;
      };
      const seen: string[] = [];

      const { home, file } = userHome();
      const lock = `${file}.lock`;
      make(lock);
      const m = await measured(() => main(newJob(emu.host), home, env));
      seen.push(check(m.r, m.cpuMs, lock, 'main'));
      assert.equal(fs.readFileSync(file, 'utf8'), ORIGINAL, 'the file is untouched');
      removeLockThing(lock);

      // A post-job step that meets one: its main's login stays until the thing is gone.
      const j = newJob(emu.host);
      assert.equal((await main(j, home)).result, 'Succeeded');
      make(lock);
      const p = await measured(() => post(j, home, env));
      seen.push(check(p.r, p.cpuMs, lock, 'post-job'));
      assert.ok(ours(auths(file)[emu.host]), 'the login is still there');
      removeLockThing(lock);
      assert.equal((await post(j, home)).result, 'Succeeded');
      assertOriginal(home);
      this.test!.title += ` [${seen.join('; ')}]`;
    });
  }

  function removeLockThing(lock: string): void {
    fs.rmSync(lock, { recursive: true, force: true });
    fs.rmSync(`${lock}.b`, { force: true });
  }

  it('concurrent: mains started together all end up in the file; posts together give back the original', async () => {
    // Two registries, two jobs at once.
    const { home, file } = userHome();
    const jobs = [newJob(emu.host), newJob(second)];
    const mains = await Promise.all(jobs.map((j) => main(j, home)));
    for (const m of mains) assert.equal(m.result, 'Succeeded', m.stdout);
    const both = auths(file);
    assert.ok(ours(both[emu.host]) && ours(both[second]), JSON.stringify(Object.keys(both)));
    const posts = await Promise.all(jobs.map((j) => post(j, home)));
    for (const p of posts) assert.equal(p.result, 'Succeeded', p.stdout);
    assertOriginal(home);

    // Four jobs on the same two registries at once, then their post-job steps at once.
    const four = [newJob(emu.host), newJob(second), newJob(`${emu.host}, ${second}`), newJob(emu.host)];
    for (const m of await Promise.all(four.map((j) => main(j, home)))) assert.equal(m.result, 'Succeeded', m.stdout);
    const all = auths(file);
    assert.ok(ours(all[emu.host]) && ours(all[second]));
    for (const p of await Promise.all(four.map((j) => post(j, home)))) assert.equal(p.result, 'Succeeded', p.stdout);
    assertOriginal(home);
  });
});
