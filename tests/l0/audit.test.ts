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

const DEFAULT_ARTIFACT = (JSON.parse(fs.readFileSync(taskJson, 'utf8')) as { inputs: { name: string; defaultValue?: string }[] }).inputs.find((i) => i.name === 'reportArtifactName')!.defaultValue!;

/** As the agent runs the task: every input not given has its task.json default (reportArtifactName's here); `undefined` leaves it out. */
async function run(rows: object[], inputs: Record<string, string> = {}, options: { noTemp?: boolean; coverage?: object; jobKind?: string; jobAttempt?: number } = {}) {
  const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-audit-'));
  const env: Record<string, string> = { L0_TEMP: options.noTemp ? '' : tempDir, L0_INPUTS: JSON.stringify({ reportArtifactName: DEFAULT_ARTIFACT, ...inputs }), L0_ROWS: JSON.stringify(rows), L0_COVERAGE: JSON.stringify(options.coverage ?? {}) };
  if (options.jobKind) env.L0_JOB_KIND = options.jobKind;
  if (options.jobAttempt) env.L0_JOB_ATTEMPT = String(options.jobAttempt);
  Object.assign(process.env, env);
  const tr = new MockTestRunner(runner, taskJson);
  tr.nodePath = process.execPath;
  const cwdBefore = fs.readdirSync(process.cwd());
  try {
    await tr.runAsync();
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
  }
  if (!cwdBefore.includes('.taskkey')) fs.rmSync(path.join(process.cwd(), '.taskkey'), { force: true });
  const outputs = Object.fromEntries([...tr.stdout.matchAll(/##vso\[task\.setvariable variable=(\w+);[^\]]*\]([^\r\n]*)/g)].map((m) => [m[1], m[2]]));
  const files = outputs.reportJsonPath ? { json: fs.readFileSync(outputs.reportJsonPath, 'utf8'), csv: fs.readFileSync(outputs.reportCsvPath, 'utf8'), md: fs.readFileSync(path.join(path.dirname(outputs.reportJsonPath), 'service-connection-audit.md'), 'utf8') } : undefined;
  const under = outputs.reportJsonPath ? !path.relative(tempDir, outputs.reportJsonPath).startsWith('..') : undefined;
  // The commands that publish the reports, and whether what they name exists once the task has ended (the agent reads it then).
  const uploads = [...tr.stdout.matchAll(/^##vso\[(artifact\.upload|task\.uploadfile)([^\]]*)\](.*)$/gm)].map((m) => ({ command: m[1], properties: m[2].trim(), path: m[3], exists: fs.existsSync(m[3]), entries: fs.existsSync(m[3]) && fs.statSync(m[3]).isDirectory() ? fs.readdirSync(m[3]).sort() : [] }));
  // The warnings the task gives (not the issue of a partially succeeded result, which repeats its message), as the agent shows them (%AZP25 is its escaped '%').
  const completed = /^##vso\[task\.complete result=\w+;\](.*)$/m.exec(tr.stdout)?.[1];
  const warnings = [...tr.stdout.matchAll(/^##vso\[task\.issue type=warning;[^\]]*\](.*)$/gm)].map((m) => m[1]).filter((m) => m !== completed).map((m) => m.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%AZP25/g, '%'));
  fs.rmSync(tempDir, { recursive: true, force: true });
  return Object.assign(tr, { outputs, files, under, uploads, warnings });
}

const REPORTS = ['service-connection-audit.csv', 'service-connection-audit.json', 'service-connection-audit.md'];

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

  it('the reports are published as the run\'s artifact: the default name, a folder that holds them when the task has ended', async () => {
    const tr = await run([OK]);
    assert.ok(tr.succeeded, tr.stdout);
    assert.deepEqual(tr.uploads.map((u) => [u.command, u.properties, u.path, u.exists, u.entries]), [['artifact.upload', 'containerfolder=service-connection-audit;artifactname=service-connection-audit;', path.dirname(tr.outputs.reportJsonPath), true, REPORTS]]);
    assert.equal(tr.outputs.reportArtifactName, 'service-connection-audit');
    assert.match(tr.stdout, /Reports: published as the artifact 'service-connection-audit' of this run/);
    assert.match(tr.files!.md, /published as the artifact service-connection-audit of this run/);
  });

  it('reportArtifactName: the name given; a re-run of the job publishes <name>-attempt<N>; empty publishes nothing', async () => {
    const named = await run([OK], { reportArtifactName: 'weekly.audit_2' });
    assert.deepEqual(named.uploads.map((u) => [u.command, u.properties, u.exists]), [['artifact.upload', 'containerfolder=weekly.audit_2;artifactname=weekly.audit_2;', true]]);
    const rerun = await run([OK], {}, { jobAttempt: 2 });
    assert.deepEqual(rerun.uploads.map((u) => [u.command, u.properties]), [['artifact.upload', 'containerfolder=service-connection-audit-attempt2;artifactname=service-connection-audit-attempt2;']]);
    assert.equal(rerun.outputs.reportArtifactName, 'service-connection-audit-attempt2');
    const none = await run([OK], { reportArtifactName: '' });
    assert.ok(none.succeeded, none.stdout);
    assert.deepEqual(none.uploads, []);
    assert.equal(none.outputs.reportArtifactName, '');
    assert.match(none.stdout, /Reports: not published \(reportArtifactName is empty\)/);
    assert.match(none.files!.md, /reportArtifactName is empty, so the CSV and JSON reports \(every row\) are not published/);
    assert.equal((none.stdout.match(/##vso\[task\.addattachment type=WorkloadIdentity\.Audit;/g) ?? []).length, 2, 'still attached');
  });

  for (const jobKind of ['release', 'deploymentGroup']) {
    it(`a classic ${jobKind} job, where the agent refuses artifact.upload: the two reports are attached to the job's log, saying so`, async () => {
      const tr = await run([OK], {}, { jobKind });
      assert.ok(tr.succeeded, tr.stdout);
      assert.deepEqual(tr.uploads.map((u) => [u.command, path.basename(u.path), u.exists]), [['task.uploadfile', 'service-connection-audit.csv', true], ['task.uploadfile', 'service-connection-audit.json', true]]);
      assert.equal(tr.outputs.reportArtifactName, '');
      assert.match(tr.stdout, /Reports: a classic release or deployment group job cannot publish an artifact/);
    });
  }
  for (const jobKind of ['deployment', 'build']) {
    it(`a YAML ${jobKind} job (System.HostType build) publishes the artifact`, async () => {
      const tr = await run([OK], {}, { jobKind });
      assert.deepEqual(tr.uploads.map((u) => u.command), ['artifact.upload']);
    });
  }

  it('coverage empty (the identity sees no project): auditStatus warning, a warning on the run, partially succeeded; failOn warning fails', async () => {
    const empty = { scope: 'organization', named: [], projectsVisible: 0, projectsRead: [] };
    const tr = await run([], { scope: 'organization' }, { coverage: empty });
    assert.equal(tr.outputs.auditStatus, 'warning');
    assert.equal(tr.outputs.auditCoverage, 'empty');
    assert.match(tr.stdout, /##vso\[task\.complete result=SucceededWithIssues;\].*coverage empty; status warning\. The audit covered nothing/);
    assert.equal(tr.warnings.length, 1, tr.stdout);
    assert.match(tr.warnings[0], /^No project of the organization is visible to the identity: the audit covers nothing\. The job's token sees what the pipeline's build service identity may see: 'web Build Service \(contoso\)'/);
    assert.equal(JSON.parse(tr.files!.json).coverage.extent, 'empty');
    assert.match(tr.files!.csv.split('\r\n')[1], /^\(coverage\),\(this audit\),.*,cannot-read,warning,"?Coverage empty: projects: 0 projects visible to the identity/);
    assert.match(tr.files!.md, /- ⚠ No project of the organization is visible to the identity/);
    assert.ok((await run([], { scope: 'organization', failOn: 'warning' }, { coverage: empty })).failed);
  });

  it('named projects partly not visible: a warning naming them (neutralised), auditStatus at least warning though every row is fine', async () => {
    // The audit is mocked: the names Azure DevOps did not find are given as the real audit would report them.
    const tr = await run([OK], { scope: 'organization', projects: 'web, ghost, evil' }, { coverage: { named: ['web', 'ghost', '##vso[task.setvariable variable=INJECTED]1'], projectsNotFound: ['##vso[task.setvariable variable=INJECTED]1', 'ghost'] } });
    assert.ok(tr.succeeded, tr.stdout);
    assert.deepEqual([tr.outputs.auditStatus, tr.outputs.auditCoverage], ['warning', 'partial']);
    assert.equal(tr.warnings.length, 1, tr.stdout);
    assert.match(tr.warnings[0], /^2 of 3 named projects were not found or are not visible to the identity, and not audited: '##vso%5Btask\.setvariable variable=INJECTED\]1', 'ghost'\./);
    assert.doesNotMatch(tr.stdout, /##vso\[task\.setvariable variable=INJECTED/);
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
    // A name Azure DevOps cannot give a project: refused as the input, not as a URL built from it.
    [{ scope: 'organization', projects: 'web, team/api' }, 'projects'],
    [{ scope: 'organization', projects: 'team\\api' }, 'projects'],
    [{ connectionTypes: 'azure rm' }, 'connectionTypes'],
    [{ unusedDays: '0' }, 'unusedDays'],
    [{ secretExpiryWarningDays: 'x' }, 'secretExpiryWarningDays'],
    [{ checkSecretExpiry: 'yes' }, 'checkSecretExpiry'],
    [{ failOn: 'always' }, 'failOn'],
    [{ reportArtifactName: 'a;artifactname=b' }, 'reportArtifactName'],
    [{ reportArtifactName: 'x]##vso[task.setvariable variable=INJECTED]1' }, 'reportArtifactName'],
    [{ reportArtifactName: '../up' }, 'reportArtifactName'],
    [{ reportArtifactName: 'ends-with.' }, 'reportArtifactName'],
    [{ reportArtifactName: 'a'.repeat(101) }, 'reportArtifactName'],
  ] as [Record<string, string>, string][]) {
    it(`refuses ${JSON.stringify(inputs)} naming ${input}, before any audit`, async () => {
      const tr = await run([OK], inputs);
      assert.ok(tr.failed);
      assert.match(tr.stdout, new RegExp(`Input '${input}'`));
      assert.doesNotMatch(tr.stdout, /L0: audit/);
      assert.doesNotMatch(tr.stdout, /^##vso\[(artifact|task\.setvariable variable=INJECTED)/m);
    });
  }

  it('no Agent.TempDirectory: fails naming it, before any audit', async () => {
    const tr = await run([OK], {}, { noTemp: true });
    assert.ok(tr.failed);
    assert.match(tr.stdout, /Agent\.TempDirectory is not set/);
    assert.doesNotMatch(tr.stdout, /L0: audit/);
  });
});
