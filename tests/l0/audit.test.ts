/** L0 tests for AuditServiceConnections@1 with the task-lib's MockTestRunner (the audit itself mocked). */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';

const runner = path.join(__dirname, 'audit-runner.js');
const taskJson = path.resolve(__dirname, '..', '..', '..', 'tasks', 'AuditServiceConnectionsV1', 'task.json');

const row = (name: string, action: string, severity: string) => ({
  project: 'web', sharedWith: [], id: `id-${name}`, name, type: 'azurerm', scheme: 'WorkloadIdentityFederation', issuer: 'vstoken', environment: 'AzureCloud', operationStatus: 'Ready', creationMode: 'Automatic',
  creator: 'Alex', creatorState: 'active', lastUse: 'never', credentialEnd: 'none (no secret)', action, severity, why: `why ${name}`, fix: action === 'none' ? '' : `fix ${name}`, link: `https://dev.azure.com/contoso/web/_settings/adminservices?resourceId=id-${name}`,
});
const OK = row('fine', 'none', 'ok');
const WARN = row('old-issuer', 'convert-issuer', 'warning');
const ERR = row('rotation', 'fix-rotation', 'error');

async function run(rows: object[], inputs: Record<string, string> = {}, options: { noTemp?: boolean } = {}) {
  const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-audit-'));
  Object.assign(process.env, { L0_TEMP: options.noTemp ? '' : tempDir, L0_INPUTS: JSON.stringify(inputs), L0_ROWS: JSON.stringify(rows) });
  const tr = new MockTestRunner(runner, taskJson);
  tr.nodePath = process.execPath;
  const cwdBefore = fs.readdirSync(process.cwd());
  try {
    await tr.runAsync();
  } finally {
    for (const k of ['L0_TEMP', 'L0_INPUTS', 'L0_ROWS']) delete process.env[k];
  }
  if (!cwdBefore.includes('.taskkey')) fs.rmSync(path.join(process.cwd(), '.taskkey'), { force: true });
  const outputs = Object.fromEntries([...tr.stdout.matchAll(/##vso\[task\.setvariable variable=(\w+);[^\]]*\]([^\r\n]*)/g)].map((m) => [m[1], m[2]]));
  const files = outputs.reportJsonPath ? { json: fs.readFileSync(outputs.reportJsonPath, 'utf8'), csv: fs.readFileSync(outputs.reportCsvPath, 'utf8') } : undefined;
  const under = outputs.reportJsonPath ? !path.relative(tempDir, outputs.reportJsonPath).startsWith('..') : undefined;
  fs.rmSync(tempDir, { recursive: true, force: true });
  return Object.assign(tr, { outputs, files, under });
}

describe('L0 AuditServiceConnections@1', function () {
  this.timeout(20_000);

  it('nothing to do: succeeded, auditStatus ok, counts, reports under Agent.TempDirectory attached, a summary uploaded', async () => {
    const tr = await run([OK]);
    assert.ok(tr.succeeded, tr.stdout);
    assert.deepEqual([tr.outputs.auditStatus, tr.outputs.connectionsAudited, tr.outputs.connectionsNeedingAction], ['ok', '1', '0']);
    assert.equal(tr.under, true);
    assert.match(tr.files!.csv, /^project,name,id,type,scheme,issuer/);
    assert.equal(JSON.parse(tr.files!.json).rows.length, 1);
    assert.equal((tr.stdout.match(/##vso\[task\.addattachment type=WorkloadIdentity\.Audit;/g) ?? []).length, 2);
    assert.match(tr.stdout, /##vso\[task\.uploadsummary\]/);
    assert.match(tr.stdout, /L0: audit scope=project projects=- types=azurerm\+dockerregistry unused=90 warn=30 graph=off \(reading end dates needs azureDevOpsConnection/);
  });

  it('failOn: none reports warnings and errors and succeeds; warning fails on a warning; error only on an error', async () => {
    assert.ok((await run([OK, WARN, ERR])).succeeded);
    const w = await run([OK, WARN], { failOn: 'warning' });
    assert.ok(w.failed);
    assert.match(w.stdout, /1 of 2 rows need action/);
    assert.ok((await run([OK, WARN], { failOn: 'error' })).succeeded);
    const e = await run([ERR], { failOn: 'error' });
    assert.ok(e.failed);
    assert.equal(e.outputs.auditStatus, 'error');
  });

  it('inputs reach the audit: organization scope, listed projects, every type, days, checkSecretExpiry false', async () => {
    const tr = await run([OK], { scope: 'organization', projects: 'a, b', connectionTypes: 'all', unusedDays: '30', secretExpiryWarningDays: '7', checkSecretExpiry: 'false' });
    assert.match(tr.stdout, /L0: audit scope=organization projects=a\+b types=all unused=30 warn=7 graph=off \(checkSecretExpiry is false\)/);
  });

  for (const [inputs, input] of [
    [{ scope: 'tenant' }, 'scope'],
    [{ projects: 'a' }, 'projects'],
    [{ connectionTypes: 'azure rm' }, 'connectionTypes'],
    [{ unusedDays: '0' }, 'unusedDays'],
    [{ secretExpiryWarningDays: 'x' }, 'secretExpiryWarningDays'],
    [{ checkSecretExpiry: 'yes' }, 'checkSecretExpiry'],
    [{ failOn: 'always' }, 'failOn'],
  ] as [Record<string, string>, string][]) {
    it(`refuses ${JSON.stringify(inputs)} naming ${input}, before any audit`, async () => {
      const tr = await run([OK], inputs);
      assert.ok(tr.failed);
      assert.match(tr.stdout, new RegExp(`Input '${input}'`));
      assert.doesNotMatch(tr.stdout, /L0: audit/);
    });
  }

  it('no Agent.TempDirectory: fails naming it, before any audit', async () => {
    const tr = await run([OK], {}, { noTemp: true });
    assert.ok(tr.failed);
    assert.match(tr.stdout, /Agent\.TempDirectory is not set/);
    assert.doesNotMatch(tr.stdout, /L0: audit/);
  });
});
