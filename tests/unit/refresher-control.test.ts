/**
 * A recorded pid is signalled only once it proves to be the task's own refresher: a real `sleep`
 * planted in the registry (plain pid, a fake instance id, a forged status file) survives a re-run,
 * while real refreshers, started as the tasks start them, are still found and stopped.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sinon from 'sinon';
import { startRefresher, stopRefresher } from '../../tasks/core/files/refresher-control';
import { checkOwnership, isAlive } from '../../tasks/core/files/refresher-ownership';
// The module object itself, so that a spy sees the product's calls.
import childProcess = require('node:child_process');
import type { RefresherStatus } from '../../tasks/core/files/token-refresher';

const SCRIPT = path.join(__dirname, '..', '..', 'tasks', 'FetchOidcTokenV1', 'refresher.js');
const LEFT_ALONE = /^Left pid (\d+) alone: it is not this task's token refresher \(stale or planted pid file: (.+)\)\.$/;
const jwt = (expSeconds: number) => `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + expSeconds })).toString('base64url')}.sig`;

/** A job: its Agent.TempDirectory and a token file whose idToken needs no refresh during the test. */
function job() {
  const tempDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-control-'));
  const tokenFile = path.join(tempDirectory, 'token');
  fs.writeFileSync(tokenFile, jwt(3600), { mode: 0o600 });
  const statusFile = `${tokenFile}.status.json`;
  // Nothing listens on port 9: a refresh (none is due for half an hour) would only fail.
  const config = { oidcUrl: 'http://127.0.0.1:9/oidctoken', jobAccessToken: 'job', tokenFile, statusFile, policy: { timeoutMs: 1000, retries: 0, maxRetryAfterMs: 1000, backoffBaseMs: 1 }, tls: {}, maxLifetimeMs: 3_600_000, maxFailures: 3, minDelayMs: 60_000 };
  const registry = path.join(tempDirectory, 'workload-identity-refreshers', 'FetchOidcToken-c1.pid');
  const plant = (text: string) => {
    fs.mkdirSync(path.dirname(registry), { recursive: true, mode: 0o700 });
    fs.writeFileSync(registry, text);
  };
  return { ctx: { tempDirectory }, config, statusFile, registry, plant };
}

const status = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as RefresherStatus;

async function sleeper(): Promise<ChildProcess> {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return child;
}

describe('refresher control: only its own refresher is signalled', function () {
  this.timeout(30_000);
  let planted: ChildProcess;
  const started: number[] = [];

  beforeEach(async () => {
    planted = await sleeper();
  });
  afterEach(() => {
    planted.kill('SIGKILL');
    for (const pid of started.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* stopped by the test */
      }
    }
  });

  const cases: [string, (j: ReturnType<typeof job>, pid: number) => void, RegExp][] = [
    ['a plain pid (the old registry format)', (j, pid) => j.plant(String(pid)), /no instance id was recorded/],
    ['a fake instance id and no status file', (j, pid) => j.plant(JSON.stringify({ pid, instanceId: 'f'.repeat(32), statusFile: path.join(path.dirname(j.statusFile), 'missing.status.json') })), /does not exist/],
    ['a forged status file with another instance id', (j, pid) => {
      const forged = path.join(path.dirname(j.statusFile), 'forged.status.json');
      fs.writeFileSync(forged, JSON.stringify({ state: 'running', pid, instanceId: 'b'.repeat(32) }));
      j.plant(JSON.stringify({ pid, instanceId: 'a'.repeat(32), statusFile: forged }));
    }, /another refresher instance/],
  ];
  if (fs.existsSync('/proc/self/cmdline')) {
    cases.push(['a forged status file with the same pid and instance id (Linux: the command line)', (j, pid) => {
      const forged = path.join(path.dirname(j.statusFile), 'forged.status.json');
      fs.writeFileSync(forged, JSON.stringify({ state: 'running', pid, instanceId: 'a'.repeat(32) }));
      j.plant(JSON.stringify({ pid, instanceId: 'a'.repeat(32), statusFile: forged }));
    }, /command line does not run refresher\.js/]);
  }

  for (const [name, plant, reason] of cases) {
    it(`a re-run leaves a planted sleep alone: ${name}`, async () => {
      const j = job();
      plant(j, planted.pid!);
      const log: string[] = [];
      const record = await startRefresher(j.ctx, 'FetchOidcToken-c1', SCRIPT, j.config, (l) => log.push(l));
      started.push(record.pid);
      assert.ok(isAlive(planted.pid!), 'the planted sleep is still running');
      assert.equal(planted.exitCode, null);
      assert.equal(planted.signalCode, null);
      assert.equal(log.length, 1, log.join('\n'));
      const m = LEFT_ALONE.exec(log[0]);
      assert.ok(m, log[0]);
      assert.equal(Number(m[1]), planted.pid);
      assert.match(m[2], reason);
      // The new refresher took the registry over, and is found and stopped.
      assert.deepEqual(JSON.parse(fs.readFileSync(j.registry, 'utf8')), record);
      assert.equal(fs.statSync(j.registry).mode & 0o777, 0o600);
      assert.deepEqual(await stopRefresher(record), { kind: 'stopped' });
      assert.ok(!isAlive(record.pid));
    });

    it(`the post-job stop leaves a planted sleep alone: ${name}`, async () => {
      const j = job();
      plant(j, planted.pid!);
      const record = JSON.parse(fs.readFileSync(j.registry, 'utf8').replace(/^(\d+)$/, '{"pid":$1}'));
      const outcome = await stopRefresher(record);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(isAlive(planted.pid!), 'the planted sleep is still running');
      assert.equal(planted.signalCode, null);
      assert.equal(outcome.kind, 'not-ours');
      assert.match(outcome.kind === 'not-ours' ? outcome.line : '', reason);
    });
  }

  it('a real refresher announces itself at once, is replaced by a re-run, and stops with state "stopped"', async () => {
    const j = job();
    const first = await startRefresher(j.ctx, 'FetchOidcToken-c1', SCRIPT, j.config, assert.fail);
    started.push(first.pid);
    assert.match(first.instanceId, /^[0-9a-f]{32}$/);
    // startRefresher returns once the status exists: the record can be verified at once.
    assert.deepEqual([status(j.statusFile).state, status(j.statusFile).pid, status(j.statusFile).instanceId], ['running', first.pid, first.instanceId]);
    assert.ok(fs.existsSync(`/proc/${first.pid}/cmdline`) ? !fs.readFileSync(`/proc/${first.pid}/cmdline`, 'utf8').includes(first.instanceId) : true, 'the instance id is not on the command line');

    const second = await startRefresher(j.ctx, 'FetchOidcToken-c1', SCRIPT, j.config, assert.fail);
    started.push(second.pid);
    assert.notEqual(second.instanceId, first.instanceId);
    assert.ok(!isAlive(first.pid), 'the first refresher was stopped');
    assert.ok(isAlive(second.pid));
    assert.deepEqual(await stopRefresher(second), { kind: 'stopped' });
    assert.ok(!isAlive(second.pid));
    assert.equal(status(j.statusFile).state, 'stopped');
    assert.equal(status(j.statusFile).reason, 'stopped by the post-job step');
    assert.equal(status(j.statusFile).instanceId, second.instanceId);
    assert.deepEqual(await stopRefresher(second), { kind: 'gone' }, 'safe to run twice');
    assert.ok(isAlive(planted.pid!));
  });

  it('starts the refresher detached and hidden (windowsHide), its stdout and stderr going nowhere', async () => {
    const j = job();
    const spy = sinon.spy(childProcess, 'spawn');
    try {
      const record = await startRefresher(j.ctx, 'FetchOidcToken-c1', SCRIPT, j.config, assert.fail);
      started.push(record.pid);
      assert.equal(spy.callCount, 1);
      const options = spy.firstCall.args[2] as childProcess.SpawnOptions;
      assert.deepEqual([options.detached, options.windowsHide, options.stdio], [true, true, ['pipe', 'ignore', 'ignore']]);
      assert.deepEqual(await stopRefresher(record), { kind: 'stopped' });
    } finally {
      spy.restore();
    }
  });

  it('a refresher ended without running its handlers (as on Windows) is still stopped, and its status is set to "stopped" for it', async () => {
    const j = job();
    // A refresher that, like one on Windows, never writes its final state: it ignores SIGTERM and is killed.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-mute-'));
    const mute = path.join(dir, 'refresher.js');
    fs.writeFileSync(mute, `const fs = require('fs');
process.on('SIGTERM', () => {});
let input = '';
process.stdin.on('data', (d) => (input += d)).on('end', () => {
  const c = JSON.parse(input);
  fs.writeFileSync(c.statusFile, JSON.stringify({ state: 'running', pid: process.pid, instanceId: c.instanceId }));
  setInterval(() => {}, 1000);
});
`);
    try {
      const record = await startRefresher(j.ctx, 'FetchOidcToken-c1', mute, j.config, assert.fail);
      started.push(record.pid);
      assert.equal(status(j.statusFile).state, 'running');
      assert.deepEqual(await stopRefresher(record, 300), { kind: 'stopped' });
      assert.ok(!isAlive(record.pid), 'ended although it ran no handler');
      const st = status(j.statusFile);
      assert.deepEqual([st.state, st.pid, st.instanceId], ['stopped', record.pid, record.instanceId]);
      assert.match(st.reason ?? '', /^stopped by the post-job step/);
      assert.equal(fs.statSync(j.statusFile).mode & 0o777, 0o600);
      // A later check (a re-run, a second post-job step) no longer takes that pid for a running refresher.
      assert.deepEqual(checkOwnership(record), { kind: 'gone' });
      assert.deepEqual(await stopRefresher(record), { kind: 'gone' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
