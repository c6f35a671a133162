/** L0 tests for ValidateServiceConnection@1 with the task-lib's MockTestRunner. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';

const runner = path.join(__dirname, 'validate-runner.js');
const taskJson = path.resolve(__dirname, '..', '..', '..', 'tasks', 'ValidateServiceConnectionV1', 'task.json');

const PASS = { check: 'Scheme', status: 'pass', summary: 'Workload identity federation.', evidence: [] };
const WARN = { check: 'idToken', status: 'warning', summary: 'vstoken issuer retires on 2027-07-01.', evidence: [], fix: 'Move to the Entra issuer.' };
const FAIL = { check: 'Entra ID exchange', status: 'fail', summary: 'AADSTS700213: no federated credential matches the subject.', evidence: ['subject: sc://contoso/web/x'], fix: 'Copy the subject.' };

async function run(rows: object[], inputs: Record<string, string> = {}, options: { noTemp?: boolean; noConnection?: boolean } = {}) {
  const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-validate-'));
  Object.assign(process.env, { L0_TEMP: options.noTemp ? '' : tempDir, L0_INPUTS: JSON.stringify(inputs), L0_ROWS: JSON.stringify(rows), L0_NO_CONNECTION: options.noConnection ? '1' : '' });
  const tr = new MockTestRunner(runner, taskJson);
  tr.nodePath = process.execPath;
  const cwdBefore = fs.readdirSync(process.cwd());
  try {
    await tr.runAsync();
  } finally {
    for (const k of ['L0_TEMP', 'L0_INPUTS', 'L0_ROWS', 'L0_NO_CONNECTION']) delete process.env[k];
  }
  // task-lib itself puts its vault key (.taskkey) in the working directory when Agent.TempDirectory is not set.
  const taskKey = path.join(process.cwd(), '.taskkey');
  if (!cwdBefore.includes('.taskkey')) fs.rmSync(taskKey, { force: true });
  const summaryLine = tr.stdout.split(/\r?\n/).find((l) => l.startsWith('##vso[task.uploadsummary]'));
  const summaryFile = summaryLine?.slice(summaryLine.indexOf(']') + 1);
  const summary = summaryFile ? fs.readFileSync(summaryFile, 'utf8') : undefined;
  fs.rmSync(tempDir, { recursive: true, force: true });
  return Object.assign(tr, { summary, summaryFile, tempDir, newInCwd: fs.readdirSync(process.cwd()).filter((f) => !cwdBefore.includes(f)) });
}

const status = (stdout: string) => /##vso\[task\.setvariable variable=validationStatus;[^\]]*\](\w+)/.exec(stdout)?.[1];

describe('L0 ValidateServiceConnection@1', function () {
  this.timeout(20_000);

  it('all pass: succeeded, validationStatus ok, one log line per check, a summary uploaded', async () => {
    const tr = await run([PASS], { scope: '/subscriptions/6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f/resourceGroups/rg', requiredRoles: 'AcrPush\nReader', secretExpiryWarningDays: '14' });
    assert.ok(tr.succeeded, tr.stdout);
    assert.equal(status(tr.stdout), 'ok');
    assert.match(tr.stdout, /L0: validate scope=\/subscriptions\/.*\/resourceGroups\/rg roles=AcrPush\+Reader days=14/);
    assert.match(tr.stdout, /^##\[group\]Service connection 'prod-deploy'/m);
    assert.match(tr.stdout, /^PASS {5}Scheme: Workload identity federation\.$/m);
    assert.match(tr.summary ?? '', /^\| Scheme \| ✔ pass \|/m);
  });

  it('a warning: succeeded with issues; with failOn warning: failed', async () => {
    const tr = await run([PASS, WARN]);
    assert.equal(status(tr.stdout), 'warning');
    assert.match(tr.stdout, /##vso\[task\.complete result=SucceededWithIssues;\]/);
    const strict = await run([PASS, WARN], { failOn: 'warning' });
    assert.ok(strict.failed);
    assert.match(strict.errorIssues[0], /has warnings \(failOn: warning\): idToken/);
  });

  it('a fail: failed, naming the failed checks; the summary carries the fix', async () => {
    const tr = await run([PASS, WARN, FAIL]);
    assert.ok(tr.failed);
    assert.equal(status(tr.stdout), 'error');
    assert.match(tr.errorIssues[0], /'prod-deploy' failed: Entra ID exchange; warnings: idToken/);
    assert.match(tr.stdout, /^FAIL {5}Entra ID exchange: AADSTS700213.*Fix: Copy the subject\.$/m);
    assert.match(tr.summary ?? '', /\| Entra ID exchange \| ✖ fail \| AADSTS700213: no federated credential matches the subject\.<br>subject: `sc:\/\/contoso\/web\/x` \| Copy the subject\. \|/);
  });

  it('the summary goes under Agent.TempDirectory, never the working directory', async () => {
    const tr = await run([PASS]);
    assert.ok(tr.summaryFile?.startsWith(tr.tempDir + path.sep), tr.summaryFile);
    assert.deepEqual(tr.newInCwd, []);
  });

  it('no Agent.TempDirectory: fails naming it, before any check and with no file in the working directory', async () => {
    const tr = await run([PASS], {}, { noTemp: true });
    assert.ok(tr.failed);
    assert.match(tr.errorIssues[0], /The pipeline variable Agent\.TempDirectory is not set/);
    assert.doesNotMatch(tr.stdout, /L0: validate/);
    assert.equal(tr.summary, undefined);
    assert.deepEqual(tr.newInCwd, []);
  });

  it('a connection the task cannot read: summary with the failing row and its fix, validationStatus error, failed', async () => {
    const tr = await run([PASS], {}, { noConnection: true });
    assert.ok(tr.failed);
    assert.equal(status(tr.stdout), 'error');
    assert.match(tr.errorIssues[0], /the agent passed no service connection 'a11ce000-/);
    assert.match(tr.stdout, /^FAIL {5}Service connection: Input 'azureSubscription': the agent passed no service connection .*Fix: Check the connection's name/m);
    assert.match(tr.summary ?? '', /^\| Service connection \| ✖ fail \| Input 'azureSubscription': the agent passed no service connection/m);
    assert.doesNotMatch(tr.stdout, /L0: validate/);
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ scope: 'my-registry' }, /Input 'scope': 'my-registry' is not an Azure resource id/],
    [{ requiredRoles: 'AcrPush' }, /Input 'requiredRoles': roles are given without a scope/],
    [{ secretExpiryWarningDays: '-1' }, /Input 'secretExpiryWarningDays': '-1' is not a whole number/],
    [{ failOn: 'always' }, /Input 'failOn': 'always' is not one of/],
  ];
  for (const [inputs, message] of bad) {
    it(`refuses ${JSON.stringify(inputs)} before any check`, async () => {
      const tr = await run([PASS], inputs);
      assert.ok(tr.failed);
      assert.match(tr.errorIssues[0], message);
      assert.doesNotMatch(tr.stdout, /L0: validate/);
    });
  }
});
