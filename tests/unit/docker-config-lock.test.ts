/**
 * The user's docker config lock never spins: a `config.json.lock` that is not a lock this task
 * makes (a dangling symlink, a symlink loop, a folder, a FIFO) is waited for with backoff up to the
 * configured wait, then reported with its path, what it is and the fix, at near-zero CPU; a stale
 * lock of ours is still broken. Each case runs withConfigLock in a child process, which measures its
 * own CPU time (process.cpuUsage) over the call: a busy loop could not be ended from inside, and
 * the child is killed if it does not finish in time.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const MODULE = path.resolve(__dirname, '..', '..', 'tasks', 'core', 'acr', 'docker-config-file.js');

interface LockRun {
  ok: boolean;
  value?: string;
  message?: string;
  code?: string;
  elapsedMs: number;
  cpuMs: number;
  stdout: string;
}

/** withConfigLock on `file` in a child process; killed (and failed) if it runs past `killMs`. */
function lockInChild(file: string, waitMs: number, killMs = waitMs + 5000, onOutput?: (stdout: string) => void): Promise<LockRun> {
  const script = `
    const { withConfigLock, resolveConfigTarget } = require(${JSON.stringify(MODULE)});
    const t = resolveConfigTarget(${JSON.stringify(file)});
    const c0 = process.cpuUsage();
    const t0 = Date.now();
    const out = (r) => {
      const c = process.cpuUsage(c0);
      process.stdout.write('\\nRESULT ' + JSON.stringify({ ...r, elapsedMs: Date.now() - t0, cpuMs: (c.user + c.system) / 1000 }) + '\\n');
    };
    withConfigLock(t, { waitMs: ${waitMs} }, () => 'ran').then((value) => out({ ok: true, value }), (e) => out({ ok: false, message: e.message, code: e.code }));
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      onOutput?.(stdout);
    });
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`withConfigLock did not return within ${killMs} ms (a wait of ${waitMs} ms)\n${stdout.slice(-500)}\n${stderr.slice(-500)}`));
    }, killMs);
    child.on('close', () => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) return reject(new Error(`no result: ${stdout.slice(-500)}\n${stderr.slice(-500)}`));
      resolve({ ...(JSON.parse(line.slice(7)) as Omit<LockRun, 'stdout'>), stdout });
    });
  });
}

describe('docker config lock: a lock file that is not a lock never makes the task spin', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-lock-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const WAIT_MS = 1500;
  const cases: [string, (lock: string) => void, RegExp][] = [
    ['a dangling symlink', (lock) => fs.symlinkSync(path.join(dir, 'nowhere'), lock), /is a symlink to .*nowhere that leads nowhere/],
    ['a symlink loop', (lock) => { fs.symlinkSync(`${lock}.b`, lock); fs.symlinkSync(lock, `${lock}.b`); }, /is a symlink loop/],
    ['a symlink to a regular file', (lock) => { fs.writeFileSync(path.join(dir, 'elsewhere'), '{}'); fs.symlinkSync(path.join(dir, 'elsewhere'), lock); }, /is a symlink to .*elsewhere/],
    ['a folder', (lock) => fs.mkdirSync(lock), /is a folder/],
    ['a FIFO', (lock) => execFileSync('mkfifo', [lock]), /is a named pipe \(FIFO\)/],
  ];
  for (const [what, make, kind] of cases) {
    it(`${what}: waited for up to the configured wait at near-zero CPU, then reported with its path and the fix`, async () => {
      const file = path.join(dir, 'config.json');
      fs.writeFileSync(file, '{}');
      const lock = `${file}.lock`;
      make(lock);
      const r = await lockInChild(file, WAIT_MS);
      assert.equal(r.ok, false, `the lock was taken: ${r.value}`);
      assert.equal(r.code, 'DOCKER_CONFIG_LOCK_NOT_OURS', r.message);
      assert.ok(r.message!.includes(lock), r.message);
      assert.match(r.message!, kind);
      assert.match(r.message!, /not a lock file this task makes/);
      assert.match(r.message!, new RegExp(`remove ${lock.replace(/[.]/g, '\\.')}`, 'i'));
      assert.match(r.message!, /configScope: job/);
      assert.ok(r.elapsedMs >= WAIT_MS - 50 && r.elapsedMs < WAIT_MS + 1000, `waited ${r.elapsedMs} ms for a wait of ${WAIT_MS} ms`);
      // A spinning loop burns the whole wait; backoff sleeps burn a few milliseconds.
      assert.ok(r.cpuMs < WAIT_MS * 0.1, `${r.cpuMs} ms of CPU in a ${r.elapsedMs} ms wait`);
      assert.match(r.stdout, /Waiting for the lock/);
      assert.ok(fs.lstatSync(lock), 'the thing in the lock\'s place is left as it is');
      assert.equal(fs.readFileSync(file, 'utf8'), '{}');
    });
  }

  it('one that goes away within the wait: the lock is then taken, and released', async () => {
    const file = path.join(dir, 'config.json');
    const lock = `${file}.lock`;
    fs.symlinkSync(path.join(dir, 'nowhere'), lock);
    // Removed 700 ms after the task says it waits for it.
    let removal: NodeJS.Timeout | undefined;
    const r = await lockInChild(file, 5000, 10_000, (out) => {
      if (!removal && /Waiting for the lock/.test(out)) removal = setTimeout(() => fs.rmSync(lock), 700);
    });
    assert.ok(removal, 'the task said it waits for the lock');
    assert.equal(r.ok, true, r.message);
    assert.equal(r.value, 'ran');
    assert.ok(r.elapsedMs >= 700 && r.elapsedMs < 2500, `${r.elapsedMs} ms`);
    assert.ok(r.cpuMs < 150, `${r.cpuMs} ms of CPU in ${r.elapsedMs} ms`);
    assert.ok(!fs.existsSync(lock));
  });

  it('a stale lock of ours (its process gone) is still broken at once', async () => {
    const file = path.join(dir, 'config.json');
    const lock = `${file}.lock`;
    fs.writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname(), time: new Date().toISOString(), id: 'gone' }));
    const r = await lockInChild(file, 5000);
    assert.equal(r.ok, true, r.message);
    assert.ok(r.elapsedMs < 1000, `${r.elapsedMs} ms`);
    assert.match(r.stdout, /Broke the stale lock .*its process \d+ on this host is gone/);
    assert.ok(!fs.existsSync(lock));
  });

  it('a live lock of ours still fails after the wait, naming its holder, at near-zero CPU', async () => {
    const file = path.join(dir, 'config.json');
    const lock = `${file}.lock`;
    fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: os.hostname(), time: new Date().toISOString(), id: 'held' }));
    const r = await lockInChild(file, WAIT_MS);
    assert.equal(r.code, 'DOCKER_CONFIG_LOCKED', r.message);
    assert.match(r.message!, new RegExp(`locked by another job \\(.*config\\.json\\.lock: process ${process.pid} on`));
    assert.ok(r.elapsedMs >= WAIT_MS - 50 && r.elapsedMs < WAIT_MS + 1000, `${r.elapsedMs} ms`);
    assert.ok(r.cpuMs < WAIT_MS * 0.1, `${r.cpuMs} ms of CPU`);
    assert.ok(fs.existsSync(lock));
  });
});
