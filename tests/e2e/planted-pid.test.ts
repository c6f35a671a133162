/**
 * A stale or planted pid never gets a signal: a real `sleep` whose pid is planted in the refresher
 * registry (a re-run) or in the post-job step's task state survives the bundled tasks, which log
 * one line and carry on; their own refreshers are still found and stopped.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startEmulator, Emulator } from '../emulator/index';
import { addFederatedConnection, E2eRuns, FederatedConnection, isAlive, postJobEnv, wif } from '../helpers/e2e';
import { newTempDirectory } from '../helpers/agent';

const leftAlone = (pid: number) => new RegExp(`^Left pid ${pid} alone: it is not this task's token refresher \\(stale or planted pid file: .+\\)\\.$`, 'm');


const stateEnv = (stateKey: string, values: Record<string, string>) =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [`VSTS_TASKVARIABLE_${`${stateKey}.${k}`.replace(/\./g, '_').toUpperCase()}`, v]));


describe('E2E planted refresher pids are never signalled', function () {
  this.timeout(90_000);
  let emu: Emulator;
  let conn: FederatedConnection;
  let planted: ChildProcess;
  /** Refreshers a test started: stopped here too if the test failed before its post-job step. */
  const refreshers: number[] = [];
  const e2e = new E2eRuns(() => emu);

  before(async () => {
    emu = await startEmulator();
    conn = addFederatedConnection(emu, 'planted-pid');
  });
  after(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    planted = spawn('sleep', ['60'], { stdio: 'ignore' });
    await new Promise((resolve, reject) => planted.once('spawn', resolve).once('error', reject));
  });
  afterEach(function () {
    planted.kill('SIGKILL');
    for (const pid of refreshers.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGTERM');
    e2e.scan(this.currentTest?.title);
  });

  it('a re-run with a planted registry entry leaves the sleep alone, starts its own refresher, and the post-job step stops that one', async () => {
    const job = { tempDirectory: newTempDirectory() };
    const registry = path.join(job.tempDirectory, 'workload-identity-refreshers', `FetchOidcToken-${conn.id}.pid`);
    fs.mkdirSync(path.dirname(registry), { recursive: true, mode: 0o700 });
    fs.writeFileSync(registry, JSON.stringify({ pid: planted.pid, instanceId: '0'.repeat(32), statusFile: path.join(job.tempDirectory, 'nowhere.status.json') }));

    const run = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(conn), inputs: { exportAzureIdentityEnv: 'true' }, job });
    const own = JSON.parse(run.taskVariables['WorkloadIdentity.FetchOidcToken.TokenFile.Refresher'] ?? '{}');
    if (own.pid) refreshers.push(own.pid);
    assert.equal(run.result, 'Succeeded', run.stdout);
    assert.ok(isAlive(planted.pid!), 'the planted sleep is still running');
    assert.match(run.log, leftAlone(planted.pid!));
    assert.notEqual(own.pid, planted.pid);
    assert.ok(isAlive(own.pid));
    assert.equal(JSON.parse(fs.readFileSync(registry, 'utf8')).pid, own.pid, 'the registry now names its own refresher');

    const post = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(conn), job, env: postJobEnv(run), entry: 'post.js' });
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.match(post.log, new RegExp(`Stopped the token refresher \\(pid ${own.pid}\\)`));
    assert.ok(!isAlive(own.pid), 'its own refresher is gone');
    assert.ok(isAlive(planted.pid!), 'the planted sleep is still running');
  });

  const forged = (dir: string, pid: number, instanceId: string) => {
    const file = path.join(dir, 'forged.status.json');
    fs.writeFileSync(file, JSON.stringify({ state: 'running', pid, instanceId }));
    return file;
  };
  const states: [string, string, (dir: string, pid: number) => Record<string, string>][] = [
    ['FetchOidcTokenV1', 'a plain pid (older versions)', (_dir, pid) => ({ RefresherPid: String(pid) })],
    ['FetchOidcTokenV1', 'a fake instance id, no status file', (dir, pid) => ({ Refresher: JSON.stringify({ pid, instanceId: 'f'.repeat(32), statusFile: path.join(dir, 'missing.status.json') }) })],
    ['AwsAssumeRoleFederatedV1', 'a forged status file with another instance id', (dir, pid) => ({ Refresher: JSON.stringify({ pid, instanceId: 'a'.repeat(32), statusFile: forged(dir, pid, 'b'.repeat(32)) }) })],
  ];
  if (fs.existsSync('/proc/self/cmdline')) {
    states.push(['AwsAssumeRoleFederatedV1', 'a forged status file with the same instance id (Linux: the command line)', (dir, pid) => ({ Refresher: JSON.stringify({ pid, instanceId: 'a'.repeat(32), statusFile: forged(dir, pid, 'a'.repeat(32)) }) })]);
  }
  for (const [task, name, state] of states) {
    it(`${task} post-job, task state with ${name}: the sleep survives, the files are removed, the step succeeds`, async () => {
      const job = { tempDirectory: newTempDirectory() };
      const dir = fs.mkdtempSync(path.join(job.tempDirectory, 'token-'));
      fs.writeFileSync(path.join(dir, 'token'), 'x', { mode: 0o600 });
      const stateKey = task === 'FetchOidcTokenV1' ? 'WorkloadIdentity.FetchOidcToken.TokenFile' : 'WorkloadIdentity.AwsAssumeRole.TokenFile';
      const post = await e2e.run({ task, conn: wif(conn), job, env: stateEnv(stateKey, { Dir: dir, ...state(dir, planted.pid!) }), entry: 'post.js' });
      assert.equal(post.result, 'Succeeded', post.stdout);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(isAlive(planted.pid!), 'the planted sleep is still running');
      assert.equal(planted.signalCode, null);
      assert.match(post.log, leftAlone(planted.pid!));
      assert.match(post.log, /Removed the token file folder/);
      assert.ok(!fs.existsSync(dir));
    });
  }
});
