/**
 * AuditServiceConnections@1 end to end: the bundled task against the emulator's Azure DevOps
 * organisation reads, Entra ID and Microsoft Graph (through the test-owned mapping proxy at
 * graph.microsoft.com). Each row kind, both scopes, both tokens, a 403 and a 500 project,
 * throttling, bounded concurrency, injection payloads, read-only, and the summary screenshot.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, Emulator, SECRET_ROTATION_FAILED, ServiceConnection } from '../emulator/index';
import { ConnectionEnv, PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { AUDIT_ARTIFACT, E2eRuns, TENANT, unintendedOutput } from '../helpers/e2e';
import { TaskRun } from '../helpers/task-process';
import { chromiumBinary, summaryPicture } from '../helpers/screenshot';
import { MappingProxy, proxyToEmulator } from '../helpers/connect-proxy';
import { assertOnlyOwnLinks, renderers, visibleText } from '../helpers/markdown-links';

const root = path.resolve(__dirname, '..', '..', '..');
const DAY = 86_400_000;
const iso = (days: number) => new Date(Date.now() + days * DAY).toISOString();
const DEVOPS_ROUTES = /^(devops\.|serviceendpoint$|oidctoken$)/;

interface CoverageJson {
  extent: string;
  statement: string;
  warnings: string[];
  named: string[];
  projectsVisible?: number;
  projectsRead: string[];
  projectsNotFound: string[];
  projectsUnreadable: string[];
  connectionsRead: number;
  connectionsUnread: number;
}

interface AuditRowJson {
  project: string;
  name: string;
  action: string;
  severity: string;
  why: string;
  fix: string;
  creatorState: string;
  lastUse: string;
  credentialEnd: string;
  sharedWith: string[];
  issuer: string;
  link?: string;
  permission?: string;
}

describe('E2E AuditServiceConnections@1 (bundled task against the emulator)', function () {
  this.timeout(120_000);
  let emu: Emulator;
  let graphProxy: MappingProxy;
  const e2e = new E2eRuns(() => emu);
  let auditor: ConnectionEnv;
  const ids: Record<string, string> = {};

  /** A connection in `project` (default web) and, for secret-based ones, its app with credentials. */
  function add(name: string, sc: Partial<ServiceConnection> & { scheme: ServiceConnection['scheme'] }, app: { secretEnds?: number; certificateEnds?: number } = {}): string {
    const id = crypto.randomUUID();
    const clientId = crypto.randomUUID();
    ids[name] = id;
    emu.addServiceConnection({ id, name, tenantId: TENANT, clientId, lastUsed: { pipeline: 'deploy-prod', runName: '20260701.3', result: 'succeeded', finishTime: iso(-2) }, ...sc });
    if (app.secretEnds !== undefined) {
      const secret = `${name.slice(0, 3)}~${crypto.randomBytes(16).toString('base64url')}`;
      e2e.extraSecrets.push(secret);
      emu.addApp({ clientId, tenantId: TENANT, secrets: [{ value: secret, endDateTime: iso(app.secretEnds) }] });
    }
    if (app.certificateEnds !== undefined) {
      const cert = emu.makeClientCertificate(name);
      emu.addApp({ clientId, tenantId: TENANT, certificates: [{ certificatePem: cert.certificatePem, endDateTime: iso(app.certificateEnds) }] });
    }
    return id;
  }

  before(async () => {
    emu = await startEmulator();
    graphProxy = await proxyToEmulator(emu, ['graph.microsoft.com']);
    // The project 'web' (the pipeline's): one connection of every kind.
    add('fed-vstoken', { scheme: 'WorkloadIdentityFederation' });
    add('fed-entra', { scheme: 'WorkloadIdentityFederation', issuerMode: 'entra', sharedWith: ['api'] });
    add('secret-auto', { scheme: 'ServicePrincipal' }, { secretEnds: 200 });
    add('secret-expiring', { scheme: 'ServicePrincipal', creationMode: 'Manual' }, { secretEnds: 10 });
    add('cert-expired', { scheme: 'ServicePrincipal', authenticationType: 'spnCertificate' }, { certificateEnds: -5 });
    add('managed-identity', { scheme: 'ManagedServiceIdentity' });
    add('rotation-failed', { scheme: 'ServicePrincipal', isReady: false, operationStatus: SECRET_ROTATION_FAILED, createdBy: { displayName: 'Dan Former', inactive: true } }, { secretEnds: 40 });
    add('unused', { scheme: 'WorkloadIdentityFederation', issuerMode: 'entra', lastUsed: undefined });
    add('stale', { scheme: 'WorkloadIdentityFederation', issuerMode: 'entra', lastUsed: { pipeline: 'old', result: 'succeeded', finishTime: iso(-200) } });
    add('acr-docker', { scheme: 'ServicePrincipal', type: 'dockerregistry' }, { secretEnds: 300 });
    add('usgov-vstoken', { scheme: 'WorkloadIdentityFederation', environment: 'AzureUSGovernment' });
    add('github-other-type', { scheme: 'WorkloadIdentityFederation', type: 'github' });
    // Other projects, for the organisation scope.
    add('api-fed', { scheme: 'WorkloadIdentityFederation', issuerMode: 'entra', projectName: 'api' });
    add('data-vstoken', { scheme: 'WorkloadIdentityFederation', projectName: 'data' });
    emu.addProject({ name: 'forbidden', fault: { kind: 'status', status: 403 } });
    emu.addProject({ name: 'broken', fault: { kind: 'status', status: 500 } });
    // The auditing identity: a federated connection whose app is a member with Graph's Application.Read.All.
    const auditId = crypto.randomUUID();
    const auditApp = crypto.randomUUID();
    emu.addServiceConnection({ id: auditId, name: 'org-auditor', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: auditApp, type: 'azurerm-auditor', issuerMode: 'entra' });
    const fed = emu.expectedFederation(auditId);
    emu.addApp({ clientId: auditApp, tenantId: TENANT, graphAccess: 'read', federatedCredentials: [{ issuer: fed.issuer, subject: fed.subject, audiences: ['api://AzureADTokenExchange'] }] });
    emu.addOrganizationMember(auditApp);
    auditor = { id: auditId, scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: auditApp };
  });
  after(async () => {
    await graphProxy?.stop();
    await emu?.stop();
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
    emu.latencyMs = 0;
    emu.projectPageSize = 100;
    emu.endpointPageSize = 100;
    emu.identityServiceUrl = undefined;
    emu.visibleProjects = undefined;
  });

  /** As the agent runs it: reportArtifactName is the task.json default unless the test gives one (the agent passes every input's default). */
  function audit(inputs: Record<string, string> = {}, options: { conn?: ConnectionEnv; env?: Record<string, string>; job?: Parameters<E2eRuns['run']>[0]['job'] } = {}): Promise<TaskRun> {
    const env: Record<string, string> = { AGENT_PROXYURL: graphProxy.url, AGENT_PROXYBYPASSLIST: JSON.stringify(['^https://127\\.0\\.0\\.1[:/]']), WORKLOADIDENTITY_HTTPRETRIES: '1', ...(options.env ?? {}) };
    if (options.conn) env.INPUT_AZUREDEVOPSCONNECTION = options.conn.id;
    if (inputs.reportArtifactName) e2e.namedArtifacts.add(inputs.reportArtifactName);
    return e2e.run({ task: 'AuditServiceConnectionsV1', conn: options.conn, inputs: { reportArtifactName: AUDIT_ARTIFACT, ...inputs }, env, job: options.job });
  }

  function report(r: TaskRun): { rows: AuditRowJson[]; requests: number; status: string; coverage: CoverageJson } {
    const file = r.variables.reportJsonPath?.value;
    assert.ok(file, `reportJsonPath is set:\n${r.stdout}\n${r.stderr}`);
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  }
  /** The CSV's rows as objects (RFC 4180, quoted fields with "" inside). */
  function csvRows(r: TaskRun): Record<string, string>[] {
    const text = fs.readFileSync(r.variables.reportCsvPath.value, 'utf8');
    const records: string[][] = [];
    let field = '';
    let record: string[] = [];
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
        else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') record.push(field), (field = '');
      else if (c === '\r' && text[i + 1] === '\n') record.push(field), records.push(record), (record = []), (field = ''), i++;
      else field += c;
    }
    const [head, ...rest] = records;
    return rest.map((x) => Object.fromEntries(head.map((h, i) => [h, x[i]])));
  }
  /** The one artifact.upload of a run: its properties exactly, and the folder it names, which holds the reports when the task has ended. */
  function artifactOf(r: TaskRun, name: string): string {
    const uploads = r.commands.filter((c) => c.name === 'artifact.upload');
    assert.equal(uploads.length, 1, r.stdout);
    assert.deepEqual(uploads[0].properties, { containerfolder: name, artifactname: name });
    const dir = uploads[0].value;
    assert.equal(path.dirname(r.variables.reportCsvPath.value), dir, 'the folder of the reports');
    assert.ok(!path.relative(r.agentTempDirectory!, dir).startsWith('..'), 'under Agent.TempDirectory, which the agent empties only after the job');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['service-connection-audit.csv', 'service-connection-audit.json', 'service-connection-audit.md']);
    assert.equal(r.variables.reportArtifactName.value, name);
    return dir;
  }
  const byName = (rows: AuditRowJson[], name: string) => {
    const row = rows.find((x) => x.name === name);
    assert.ok(row, `a row for ${name}: ${rows.map((x) => x.name).join(', ')}`);
    return row;
  };
  function summary(r: TaskRun): string {
    const cmd = r.commands.find((c) => c.name === 'task.uploadsummary');
    assert.ok(cmd, 'a summary is uploaded');
    assert.ok(!path.relative(os.tmpdir(), cmd.value).startsWith('..'), 'under Agent.TempDirectory');
    return fs.readFileSync(cmd.value, 'utf8');
  }
  /** Read-only: every request to an Azure DevOps route is a GET, but the Oidctoken POST of a federated azureDevOpsConnection (to get its idToken). */
  function assertReadOnly(federatedIdentity: boolean): void {
    const writes = emu.requestLog().filter((l) => (DEVOPS_ROUTES.test(l.route) || l.route === 'unmatched') && l.method !== 'GET');
    assert.deepEqual(writes.map((w) => `${w.method} ${w.route}`), federatedIdentity ? writes.map(() => 'POST oidctoken') : []);
    if (federatedIdentity) assert.ok(writes.length >= 1);
  }
  const devopsCounts = () => ({
    projects: emu.count('devops.projects'), endpoints: emu.count('devops.endpoints'), history: emu.count('devops.executionHistory'), area: emu.count('devops.resourceArea'), identities: emu.count('devops.identities'), graph: emu.count('graph.application'),
  });

  it('project scope with the job token: a row of each kind with its action and fix, Graph skipped naming azureDevOpsConnection, the minimum of requests, read-only', async () => {
    const r = await audit();
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    const { rows } = report(r);
    // Types azurerm and dockerregistry by default: the github connection is left out; 'web' sees 11 (and the shared one once).
    assert.equal(rows.length, 11, rows.map((x) => x.name).join(', '));
    assert.equal(r.variables.connectionsAudited.value, '11');
    assert.equal(byName(rows, 'fed-vstoken').action, 'convert-issuer');
    assert.match(byName(rows, 'fed-vstoken').fix, new RegExp(`Update button .*az devops service-endpoint convert --org ${emu.collectionUri.replace(/\/$/, '').replace(/[.]/g, '\\.')} --project "web" naming connection ${ids['fed-vstoken']}.*AWS`));
    assert.equal(byName(rows, 'fed-entra').action, 'none');
    assert.deepEqual(byName(rows, 'fed-entra').sharedWith, ['api']);
    assert.equal(byName(rows, 'secret-auto').action, 'convert-to-federation');
    assert.match(byName(rows, 'secret-auto').fix, /Convert \(Azure DevOps adds the federated credential/);
    assert.match(byName(rows, 'secret-expiring').fix, /add the issuer and subject .* as a federated credential/, 'manual: the owner adds the credential');
    assert.match(byName(rows, 'secret-auto').credentialEnd, /^skipped: reading end dates needs azureDevOpsConnection, whose identity has Microsoft Graph Application\.Read\.All/);
    assert.equal(byName(rows, 'managed-identity').action, 'none');
    const rot = byName(rows, 'rotation-failed');
    assert.equal(rot.action, 'fix-rotation');
    assert.equal(rot.severity, 'error');
    assert.equal(rot.creatorState, 'inactive');
    assert.match(rot.why, /One or more issues occurred while trying to rotate service endpoint secrets.*Dan Former is no longer active/);
    assert.equal(byName(rows, 'unused').action, 'remove-unused');
    assert.equal(byName(rows, 'unused').lastUse, 'never');
    assert.match(byName(rows, 'stale').why, /more than 90 days ago/);
    assert.match(byName(rows, 'stale').fix, /az devops service-endpoint delete --id .* --yes/);
    assert.equal(byName(rows, 'acr-docker').action, 'convert-to-federation');
    assert.equal(byName(rows, 'usgov-vstoken').action, 'none', 'the retirement applies only to the public cloud');
    assert.match(byName(rows, 'fed-vstoken').lastUse, /deploy-prod run 20260701\.3, succeeded/);
    assert.equal(byName(rows, 'fed-vstoken').creatorState, 'active');
    assert.equal(r.variables.auditStatus.value, 'error');
    assert.equal(r.variables.connectionsNeedingAction.value, String(rows.filter((x) => x.action !== 'none').length));
    // 1 resource area + 1 endpoint list + 11 histories + 1 identity batch; no project list, no Graph.
    assert.deepEqual(devopsCounts(), { projects: 0, endpoints: 1, history: 11, area: 1, identities: 1, graph: 0 });
    assertReadOnly(false);
    // The reports and the summary.
    const csv = fs.readFileSync(r.variables.reportCsvPath.value, 'utf8');
    assert.equal(csv.trim().split('\r\n').length, 13, 'the header, the coverage row, a row per connection');
    assert.deepEqual(Object.entries(csvRows(r)[0]).filter(([k]) => ['project', 'name', 'action', 'severity'].includes(k)), [['project', '(coverage)'], ['name', '(this audit)'], ['action', 'none'], ['severity', 'ok']]);
    assert.match(csvRows(r)[0].why, /^Coverage full: projects: the pipeline's project 'web'; connections: 11 connections read \(types: azurerm, dockerregistry\)\.$/);
    const { coverage } = report(r);
    assert.deepEqual([coverage.extent, coverage.connectionsRead, coverage.connectionsUnread, coverage.warnings], ['full', 11, 0, []]);
    assert.equal(r.variables.auditCoverage.value, 'full');
    assert.ok(r.commands.filter((c) => c.name === 'task.addattachment').length === 2);
    // Published as the run's artifact (a build job), the folder intact after the task ended.
    artifactOf(r, 'service-connection-audit');
    assert.match(r.log, /Reports: published as the artifact 'service-connection-audit' of this run/);
    const md = summary(r);
    assert.match(md, /^## Service connection audit: contoso$/m);
    const countsAt = md.indexOf('| Action | Connections |');
    const rowsAt = md.indexOf('### Needing action');
    assert.ok(countsAt > 0 && rowsAt > countsAt, 'counts by action first, then the rows');
    assert.match(md, /\| Fix the failed secret rotation \| 1 \|/);
    assert.match(md, new RegExp(`\\[rotation-failed\\]\\(https://127\\.0\\.0\\.1:\\d+/contoso/web/_settings/adminservices\\?resourceId=${ids['rotation-failed']}\\)`));
    assert.doesNotMatch(md.slice(rowsAt), /\[fed-entra\]/, 'rows with nothing to do are not in the summary');
  });

  it('organization scope with azureDevOpsConnection (federated): projects paged, a 403 and a 500 project as rows, Graph end dates (expired, expiring, fine), the minimum of requests', async () => {
    emu.projectPageSize = 3;
    const r = await audit({ scope: 'organization', failOn: 'error' }, { conn: auditor });
    assert.equal(r.result, 'Failed', r.stdout);
    assert.match(r.errors.join('\n'), /failOn is error/);
    const { rows } = report(r);
    const forbidden = byName(rows.filter((x) => x.project === 'forbidden'), '(project)');
    assert.equal(forbidden.action, 'cannot-read');
    assert.match(forbidden.why, /HTTP 403/);
    assert.match(forbidden.permission ?? '', /Reader on the project's service connections/);
    const broken = byName(rows.filter((x) => x.project === 'broken'), '(project)');
    assert.match(broken.why, /HTTP 500 after 2 attempts/);
    // Coverage: the projects the identity's list showed, the two whose connections could not be listed.
    const { coverage } = report(r);
    assert.equal(coverage.extent, 'partial');
    assert.equal(r.variables.auditCoverage.value, 'partial');
    assert.equal(coverage.projectsVisible, 5);
    assert.deepEqual(coverage.projectsUnreadable, ['broken', 'forbidden']);
    assert.match(coverage.statement, /^Coverage partial: projects: 5 projects visible to the identity, 3 read; projects the identity cannot see are not in its list and not covered; connections: \d+ connections read .* The identity of azureDevOpsConnection sees a project where it has View project-level information/);
    assert.deepEqual(r.warnings.filter((w) => /could not be listed/.test(w)), ["The service connections of 2 projects could not be listed, and are not covered: 'broken', 'forbidden' (their rows give the reason and the permission)."]);
    assert.equal(byName(rows, 'api-fed').project, 'api');
    assert.equal(byName(rows, 'data-vstoken').action, 'convert-issuer');
    // Shared: one row, in its own project.
    assert.equal(rows.filter((x) => x.name === 'fed-entra').length, 1);
    assert.equal(byName(rows, 'fed-entra').project, 'web');
    assert.equal(byName(rows, 'cert-expired').action, 'renew-secret');
    assert.equal(byName(rows, 'cert-expired').severity, 'error');
    assert.match(byName(rows, 'cert-expired').credentialEnd, /expired; latest of 1 certificate/);
    assert.equal(byName(rows, 'secret-expiring').action, 'renew-secret');
    assert.equal(byName(rows, 'secret-expiring').severity, 'warning');
    assert.match(byName(rows, 'secret-auto').credentialEnd, /\(valid; latest of 1 secret\)/);
    assert.equal(byName(rows, 'secret-auto').action, 'convert-to-federation');
    // api, broken, data, forbidden, web: 2 pages of 3, one endpoint list each.
    // The 500 project is asked twice (one retry): count distinct requests.
    const listed = new Set(emu.requestLog().filter((l) => l.route === 'devops.endpoints').map((l) => l.path)).size;
    const connections = rows.filter((x) => x.lastUse && x.name !== '(project)').length;
    const c = devopsCounts();
    assert.equal(c.projects, 2, 'pages of projects');
    assert.equal(listed, 5, 'every project once');
    assert.equal(c.history, connections, 'one history per connection');
    assert.deepEqual([c.area, c.identities], [1, 1]);
    assert.equal(c.graph, 5, 'one Graph read per secret or certificate app (not the US Government one)');
    assert.ok(emu.requestHosts().filter((h) => h.route === 'graph.application').every((h) => h.host === 'graph.microsoft.com'));
    assertReadOnly(true);
  });

  it('organization scope with listed projects: no project list, one request per listed project', async () => {
    const r = await audit({ scope: 'organization', projects: 'api, data', reportArtifactName: 'audit-api-data' }, { conn: auditor, env: { INPUT_CHECKSECRETEXPIRY: 'false' } });
    assert.equal(r.result, 'Succeeded', r.stdout);
    const { rows, coverage } = report(r);
    assert.deepEqual(rows.map((x) => x.name).sort(), ['api-fed', 'data-vstoken', 'fed-entra']);
    assert.equal(coverage.statement, 'Coverage full: projects: 2 of 2 named projects read; connections: 3 connections read (types: azurerm, dockerregistry).');
    artifactOf(r, 'audit-api-data');
    assert.equal(byName(rows, 'fed-entra').project, 'web', 'shared into api, shown in its own project');
    assert.deepEqual(devopsCounts(), { projects: 0, endpoints: 2, history: 3, area: 1, identities: 1, graph: 0 });
  });

  it('an identity that sees no project: coverage empty, auditStatus warning with the reason and the permission that gives sight, partially succeeded', async () => {
    emu.visibleProjects = [];
    const r = await audit({ scope: 'organization' });
    assert.equal(r.result, 'SucceededWithIssues', r.stdout);
    assert.equal(r.variables.auditStatus.value, 'warning');
    assert.equal(r.variables.auditCoverage.value, 'empty');
    assert.equal(r.variables.connectionsAudited.value, '0');
    const warning = "No project of the organization is visible to the identity: the audit covers nothing. The job's token sees what the pipeline's build service identity may see: 'web Build Service (contoso)' when the job authorization scope is limited to the current project";
    assert.equal(r.warnings.filter((w) => w.startsWith(warning)).length, 1, r.warnings.join('\n'));
    assert.match(r.warnings.join('\n'), /'Project Collection Build Service \(contoso\)' when it is not\. It sees a project where it has View project-level information/);
    const { coverage, status } = report(r);
    assert.deepEqual([status, coverage.extent, coverage.projectsVisible, coverage.projectsRead, coverage.connectionsRead], ['warning', 'empty', 0, [], 0]);
    assert.equal(coverage.statement, 'Coverage empty: projects: 0 projects visible to the identity, 0 read; projects the identity cannot see are not in its list and not covered; connections: 0 connections read (types: azurerm, dockerregistry).');
    const first = csvRows(r)[0];
    assert.deepEqual([first.project, first.action, first.severity], ['(coverage)', 'cannot-read', 'warning']);
    assert.ok(first.why.includes(warning), first.why);
    const md = summary(r);
    assert.match(md, /\*\*⚠ No row needs action, but the audit did not cover everything it was asked to \(coverage empty, 0 connections audited\)\.\*\*/);
    assert.match(md, /^- ⚠ No project of the organization is visible to the identity: the audit covers nothing\./m);
    assert.match(r.log, /Coverage empty: projects: 0 projects visible/);
    // Still published: an empty audit's report says so.
    artifactOf(r, 'service-connection-audit');
    // failOn warning fails it.
    const failing = await audit({ scope: 'organization', failOn: 'warning' });
    assert.equal(failing.result, 'Failed');
    assert.match(failing.errors.join('\n'), /coverage empty; status warning\. failOn is warning/);
  });

  it('named projects partly invisible: a warning names them, the others are audited; an org-wide audit says how many projects the identity sees', async () => {
    emu.visibleProjects = ['web', 'api'];
    const r = await audit({ scope: 'organization', projects: 'api, data, nowhere' }, { env: { INPUT_CHECKSECRETEXPIRY: 'false' } });
    assert.equal(r.result, 'Succeeded', r.stdout);
    const named = r.warnings.filter((w) => /named project/.test(w));
    assert.equal(named.length, 1, r.warnings.join('\n'));
    assert.match(named[0], /^2 of 3 named projects were not found or are not visible to the identity, and not audited: 'data', 'nowhere'\. Check the names in the input projects\. The job's token sees what the pipeline's build service identity may see/);
    const { coverage, rows, status } = report(r);
    assert.deepEqual([coverage.extent, coverage.projectsRead, coverage.projectsNotFound, status], ['partial', ['api'], ['data', 'nowhere'], 'warning']);
    assert.equal(r.variables.auditCoverage.value, 'partial');
    assert.deepEqual(rows.filter((x) => x.name !== '(project)').map((x) => x.name).sort(), ['api-fed', 'fed-entra']);
    assert.match(summary(r), /- ⚠ 2 of 3 named projects were not found or are not visible to the identity, and not audited: 'data', 'nowhere'\./);
    assert.match(csvRows(r)[0].why, /not found or not visible to the identity: 'data', 'nowhere'/);

    // The whole organisation, as this identity sees it: two projects, said plainly, with how it sees more.
    const org = await audit({ scope: 'organization' }, { env: { INPUT_CHECKSECRETEXPIRY: 'false' } });
    const c = report(org).coverage;
    assert.deepEqual([c.extent, c.projectsVisible, c.projectsRead], ['full', 2, ['api', 'web']]);
    assert.match(org.log, /Coverage full: projects: 2 projects visible to the identity, 2 read; projects the identity cannot see are not in its list and not covered; connections: \d+ connections read \(types: azurerm, dockerregistry\)\. The job's token sees what the pipeline's build service identity may see/);
    assert.deepEqual(org.warnings, []);
  });

  it("the pipeline's project not visible, or a project without connections: coverage empty, a warning each", async () => {
    emu.visibleProjects = ['api'];
    const hidden = await audit();
    assert.equal(hidden.result, 'SucceededWithIssues', hidden.stdout);
    assert.equal(hidden.variables.auditCoverage.value, 'empty');
    assert.match(hidden.warnings.join('\n'), /The pipeline's project 'web' was not found or is not visible to the identity: the audit covers nothing\. The job's token/);
    emu.visibleProjects = undefined;
    emu.addProject({ name: 'bare' });
    const bare = await audit({ scope: 'organization', projects: 'bare' });
    assert.equal(bare.result, 'SucceededWithIssues', bare.stdout);
    assert.equal(bare.variables.auditStatus.value, 'warning');
    // The gap, and the step's result (partially succeeded) saying the audit covered nothing.
    assert.deepEqual(bare.warnings, [
      "No service connection was read in the 1 project read: it holds none of the types audited (azurerm, dockerregistry), or the identity may not view its connections (Reader on the project's service connections: Project settings > Service connections > Security).",
      '0 of 0 rows need action (0 connections audited); coverage empty; status warning. The audit covered nothing: see the warnings.',
    ]);
  });

  it('reportArtifactName empty: nothing published, the reports stay on the agent', async () => {
    const r = await audit({ scope: 'organization', projects: 'api', reportArtifactName: '' });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.deepEqual(r.commands.filter((c) => c.name === 'artifact.upload' || c.name === 'task.uploadfile'), []);
    assert.equal(r.variables.reportArtifactName.value, '');
    assert.ok(fs.existsSync(r.variables.reportCsvPath.value));
    assert.match(r.log, /Reports: not published \(reportArtifactName is empty\)/);
  });

  it("the scan after each test lets through only the audit's own artifact and log files", () => {
    const run = (name: string, properties: Record<string, string>, value: string) => ({ commands: [{ name, properties, value, line: '' }], stderrCommands: [], stdout: '', stderr: '' }) as unknown as TaskRun;
    const folder = path.join(os.tmpdir(), 'agent-temp', 'service-connection-audit-Ab12Cd');
    const ok = (name: string, p: Record<string, string>, v: string, named: string[] = []) => unintendedOutput(run(name, p, v), new Set(), new Set(named));
    assert.deepEqual(ok('artifact.upload', { containerfolder: AUDIT_ARTIFACT, artifactname: AUDIT_ARTIFACT }, folder), []);
    assert.deepEqual(ok('artifact.upload', { containerfolder: `${AUDIT_ARTIFACT}-attempt3`, artifactname: `${AUDIT_ARTIFACT}-attempt3` }, folder), []);
    assert.deepEqual(ok('artifact.upload', { containerfolder: 'weekly', artifactname: 'weekly' }, folder, ['weekly']), []);
    assert.deepEqual(ok('task.uploadfile', {}, path.join(folder, 'service-connection-audit.csv')), []);
    for (const [name, p, v] of [
      ['artifact.upload', { containerfolder: 'evil', artifactname: 'evil' }, folder],
      ['artifact.upload', { containerfolder: 'other', artifactname: AUDIT_ARTIFACT }, folder],
      ['artifact.upload', { containerfolder: AUDIT_ARTIFACT, artifactname: AUDIT_ARTIFACT, artifacttype: 'filepath' }, folder],
      ['artifact.upload', { containerfolder: AUDIT_ARTIFACT, artifactname: AUDIT_ARTIFACT }, '/etc'],
      ['task.uploadfile', {}, '/etc/passwd'],
    ] as [string, Record<string, string>, string][]) {
      assert.equal(ok(name, p, v).length, 1, `${name} ${JSON.stringify(p)} ${v}`);
    }
  });

  it('throttling: a 429 with Retry-After 2 pauses every request to Azure DevOps until the time has passed', async () => {
    emu.inject('devops.endpoints', { kind: '429', retryAfterSeconds: 2 });
    emu.latencyMs = 20;
    const r = await audit({ scope: 'organization' });
    assert.equal(r.result, 'Succeeded', r.stdout);
    const log = emu.requestLog();
    const throttled = log.find((l) => l.status === 429);
    assert.ok(throttled, 'the 429 was served');
    // The answer left about `latency` after arrival; nothing reached Azure DevOps in the 2 s after it.
    const answeredAt = throttled.at;
    // Requests sent before the 429 reached the task may still arrive just after it (latency 20 ms).
    const early = log.filter((l) => DEVOPS_ROUTES.test(l.route) && l.at > answeredAt + 100 && l.at < answeredAt + 2000 - 50);
    assert.deepEqual(early.map((l) => `${l.route} +${l.at - answeredAt} ms`), []);
    assert.ok(log.some((l) => l.at >= answeredAt + 1950), 'the audit went on after the pause');
    assert.match(r.stdout, /throttled 1 time\(s\), requests paused as asked/);
    assert.equal(report(r).rows.filter((x) => x.action === 'cannot-read' && x.project !== 'forbidden' && x.project !== 'broken').length, 0);
  });

  it('bounded concurrency: at most 8 requests in flight, more than one at a time', async () => {
    for (let i = 0; i < 24; i++) emu.addProject({ name: `bulk-${String(i).padStart(2, '0')}` });
    emu.latencyMs = 40;
    const r = await audit({ scope: 'organization' });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.ok(emu.maxInFlight() <= 8, `in flight: ${emu.maxInFlight()}`);
    assert.ok(emu.maxInFlight() >= 4, `in flight: ${emu.maxInFlight()}`);
  });

  it('the identity service URL is checked before it gets the token: another host is refused, the creator column says why', async () => {
    emu.identityServiceUrl = 'https://vssps.example.net/contoso/';
    const r = await audit();
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.match(byName(report(r).rows, 'fed-vstoken').creatorState, /^unknown: the identity service could not be found: The identity service URL https:\/\/vssps\.example\.net .* is refused/);
    assert.equal(emu.count('devops.identities'), 0);
  });

  it('Graph refused (no Application.Read.All): the secret column says skipped, naming it', async () => {
    const id = crypto.randomUUID();
    const app = crypto.randomUUID();
    emu.addServiceConnection({ id, name: 'auditor-no-graph', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: app, type: 'azurerm-auditor', issuerMode: 'entra' });
    const fed = emu.expectedFederation(id);
    emu.addApp({ clientId: app, tenantId: TENANT, federatedCredentials: [{ issuer: fed.issuer, subject: fed.subject, audiences: ['api://AzureADTokenExchange'] }] });
    emu.addOrganizationMember(app);
    const r = await audit({}, { conn: { id, scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: app } });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.match(byName(report(r).rows, 'secret-auto').credentialEnd, /^skipped: .*Application\.Read\.All/);
  });

  it('failOn warning fails on any row needing action; bad inputs name the input', async () => {
    const r = await audit({ scope: 'organization', projects: 'data', failOn: 'warning' });
    assert.equal(r.result, 'Failed');
    emu.resetCounts();
    const bad = await audit({ unusedDays: 'soon' });
    assert.equal(bad.result, 'Failed');
    assert.match(bad.errors.join('\n'), /Input 'unusedDays': 'soon' is not a whole number of days/);
    assert.equal(emu.requestLog().length, 0, 'a bad input fails before any request');
  });

  it('250 connections in one project, listed in three pages (x-ms-continuationtoken): every one audited', async () => {
    const names: string[] = [];
    for (let i = 0; i < 250; i++) {
      const name = `many-${String(i).padStart(3, '0')}`;
      names.push(name);
      emu.addServiceConnection({ id: crypto.randomUUID(), name, projectName: 'many', scheme: 'WorkloadIdentityFederation', issuerMode: 'entra', tenantId: TENANT, clientId: crypto.randomUUID(), lastUsed: { pipeline: 'deploy', result: 'succeeded', finishTime: iso(-1) } });
    }
    emu.endpointPageSize = 100;
    const r = await audit({ scope: 'organization', projects: 'many' });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(r.variables.connectionsAudited.value, '250');
    const { rows } = report(r);
    assert.deepEqual(rows.map((x) => x.name).sort(), names);
    assert.ok(rows.every((x) => x.action === 'none'), 'no row says a page was missing');
    const lists = emu.requestLog().filter((l) => l.route === 'devops.endpoints').map((l) => new URL(l.path, emu.url).searchParams.get('continuationToken'));
    assert.deepEqual(lists, [null, '100', '200'], 'three pages, each after the token of the one before');
    assert.equal(emu.count('devops.executionHistory'), 250);
  });

  it('a list of connections whose continuation token comes back again ends with a row saying so, not a loop', async () => {
    const id = crypto.randomUUID();
    emu.addServiceConnection({ id, name: 'loop-conn', projectName: 'loop', scheme: 'WorkloadIdentityFederation', issuerMode: 'entra', tenantId: TENANT, clientId: crypto.randomUUID(), lastUsed: { pipeline: 'deploy', result: 'succeeded', finishTime: iso(-1) } });
    // Azure DevOps answering every page with the same token (and the same connection).
    const page = { count: 1, value: [{ id, name: 'loop-conn', type: 'azurerm', isReady: true, authorization: { scheme: 'WorkloadIdentityFederation', parameters: { workloadIdentityFederationIssuerType: 'EntraID' } }, data: { environment: 'AzureCloud' }, serviceEndpointProjectReferences: [{ projectReference: { name: 'loop' }, name: 'loop-conn' }] }] };
    emu.inject('devops.endpoints', { kind: 'status', status: 200, body: JSON.stringify(page), headers: { 'Content-Type': 'application/json; charset=utf-8', 'x-ms-continuationtoken': 'same' } }, 1000);
    const r = await audit({ scope: 'organization', projects: 'loop' });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.count('devops.endpoints'), 2, 'the second page, with the token seen before, ends the list');
    const { rows } = report(r);
    assert.equal(byName(rows, 'loop-conn').action, 'none', 'what was listed is audited');
    const stuck = byName(rows.filter((x) => x.project === 'loop'), '(project)');
    assert.equal(stuck.action, 'cannot-read');
    assert.match(stuck.why, /list of service connections did not end: Azure DevOps gave a continuation token it had given before/);
    assert.equal(r.variables.auditStatus.value, 'warning');
    assert.equal(r.variables.connectionsAudited.value, '1');
  });

  it('names and texts with logging commands: inert in the log, the summary and the reports', async () => {
    const payload = 'evil##vso[task.setvariable variable=INJECTED]1\r\n##[group]x\u200B##vso[task.complete result=Failed]';
    add(payload, { scheme: 'ServicePrincipal', projectName: 'inject', isReady: false, operationStatus: { state: 'Failed', statusMessage: `rotation ##vso[task.setvariable variable=INJECTED]1\n##vso[task.uploadsummary]/etc/passwd` }, createdBy: { displayName: '##vso[task.setvariable variable=INJECTED]1', inactive: true } });
    // A named project that does not exist, its name made to end the artifact command's properties and start another: in the coverage's warnings.
    const project = 'x;artifactname=evil]##vso[artifact.upload containerfolder=evil;artifactname=evil]etc';
    const r = await audit({ scope: 'organization', projects: `inject\n${project}` });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.match(r.stdout, /evil##vso%5Btask\.setvariable variable=INJECTED\]1\\r\\n##%5Bgroup\]x\\u\{200B\}##vso%5Btask\.complete/);
    const md = summary(r);
    assert.ok(!/##vso\[|##\[/.test(md), md);
    const row = byName(report(r).rows, payload);
    assert.equal(row.action, 'fix-rotation');
    assert.ok(r.warnings.some((w) => w.includes("not audited: 'x;artifactname=evil]##vso%5Bartifact.upload containerfolder=evil;artifactname=evil]etc'")), r.warnings.join('\n'));
    // One artifact command, its properties the input's name only, its folder the reports'.
    artifactOf(r, 'service-connection-audit');
  });

  it('outside text shaped like links (e-mail addresses, domains, URLs) in every field: the summary links only to connection pages (GFM and markdown-it linkify)', async () => {
    const evil = 'support@evil-phish.example www.evil.example evil.example.com https://evil.example/login [x](https://evil.example)';
    add(`Prod ${evil}`, { scheme: 'ServicePrincipal', projectName: 'www.evil-project.example', isReady: false, operationStatus: { state: 'Failed', statusMessage: `Rotation failed: mail ${evil}` }, createdBy: { displayName: `IT (${evil})`, uniqueName: 'support@evil-phish.example', inactive: true } });
    add('unused.evil.example.com', { scheme: 'WorkloadIdentityFederation', issuerMode: 'entra', projectName: 'www.evil-project.example', lastUsed: undefined, sharedWith: ['evil.example.org'] });
    emu.addProject({ name: 'denied.example.com', fault: { kind: 'status', status: 403, body: JSON.stringify({ $id: '1', innerException: null, message: `TF50309: Access denied. Ask ${evil}`, typeName: 'Microsoft.TeamFoundation.Framework.Server.AccessCheckException', typeKey: 'AccessCheckException', errorCode: 0, eventId: 3000 }) } });
    const r = await audit({ scope: 'organization', projects: 'www.evil-project.example, denied.example.com, evil.example.org' });
    assert.equal(r.result, 'Succeeded', r.stdout);
    const md = summary(r);
    const own = report(r).rows.filter((x) => x.action !== 'none' && x.link).map((x) => x.link!);
    assert.equal(own.length, 2, 'the failed rotation and the unused connection link to their pages');
    assert.ok(own.every((l) => l.startsWith(emu.collectionUri)));
    const html = assertOnlyOwnLinks(await renderers(), md, own);
    for (const h of html.values()) {
      const text = visibleText(h);
      assert.ok(text.includes(`Prod ${evil}`) && text.includes(`IT (${evil})`) && text.includes(`Ask ${evil}`) && text.includes('www.evil-project.example'), `still shown:\n${text}`);
    }
  });

  // npm test writes the picture into build/screenshots; `npm run screenshots` refreshes images/audit-summary.png.
  // The run addresses Azure DevOps (https://dev.azure.com/contoso/), Entra ID and Microsoft Graph by
  // their public names through a proxy that maps them to the emulator, so the summary's links and
  // commands name dev.azure.com as a user's would.
  it('renders the audit summary in headless Chromium (audit-summary.png)', async function () {
    if (!chromiumBinary()) this.skip();
    const proxy = await proxyToEmulator(emu, [PUBLIC_COLLECTION_HOST, 'vssps.dev.azure.com', 'login.microsoftonline.com', 'graph.microsoft.com']);
    try {
      const r = await e2e.run({
        task: 'AuditServiceConnectionsV1',
        conn: { ...auditor, authorityUrl: null },
        job: { publicHosts: true },
        // As the agent runs it: reportArtifactName at its task.json default.
        inputs: { reportArtifactName: AUDIT_ARTIFACT },
        env: { AGENT_PROXYURL: proxy.url, WORKLOADIDENTITY_HTTPRETRIES: '1', INPUT_AZUREDEVOPSCONNECTION: auditor.id },
      });
      assert.equal(r.variables.auditStatus?.value, 'error', r.stdout);
      assert.equal(r.variables.reportArtifactName?.value, AUDIT_ARTIFACT, 'the picture shows the reports published');
      assert.ok(proxy.connects.length > 0 && proxy.connects.every((x) => x.status === 200), 'every service reached by its public name');
      const md = summary(r);
      assert.match(md, /--org `https:\/\/dev\.azure\.com\/contoso`/);
      assert.ok(report(r).rows.filter((x) => x.link).every((x) => x.link!.startsWith('https://dev.azure.com/contoso/')), 'the rows link to dev.azure.com');
      const file = r.commands.find((c) => c.name === 'task.uploadsummary')!.value;
      const picture = await summaryPicture(file, 'audit-summary.png', [emu.host]);
      assert.ok(picture.height > 1000, `the whole summary: ${picture.height} px`);
    } finally {
      await proxy.stop();
    }
  });
});
