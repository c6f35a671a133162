/**
 * ValidateServiceConnection@1 end to end: the bundled task against the emulator's Azure DevOps,
 * Entra ID, Resource Manager and Microsoft Graph. The summary it uploads is asserted, and one is
 * rendered in headless Chromium into images/ for the marketplace page.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, Emulator, SECRET_ROTATION_FAILED } from '../emulator';
import { ConnectionEnv } from '../helpers/agent';
import { addFederatedConnection, E2eRuns, TENANT } from '../helpers/e2e';
import { TaskRun } from '../helpers/task-process';
import { chromiumBinary, renderSummaryHtml, screenshot } from '../helpers/screenshot';
import { startMappingProxy, MappingProxy } from '../helpers/connect-proxy';

const SUB = '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const REGISTRY = `/subscriptions/${SUB}/resourceGroups/build/providers/Microsoft.ContainerRegistry/registries/contosoimages`;
const root = path.resolve(__dirname, '..', '..', '..');

describe('E2E ValidateServiceConnection@1 (bundled task against the emulator)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  let graphProxy: MappingProxy;
  const e2e = new E2eRuns(() => emu);

  before(async () => {
    emu = await startEmulator();
    // Microsoft Graph is only ever reached at graph.microsoft.com, which does not resolve here: the
    // agent's proxy maps it to the emulator; everything else (at 127.0.0.1) is on the bypass list.
    graphProxy = await startMappingProxy({ targetPort: Number(emu.host.split(':')[1]), names: ['graph.microsoft.com'] });
    emu.addSubscription({ subscriptionId: SUB, tenantId: TENANT, displayName: 'Contoso Production' });
  });
  after(async () => {
    await graphProxy?.stop();
    await emu?.stop();
  });
  afterEach(function () {
    e2e.scan(this.currentTest?.title);
    emu.clearFaults();
    emu.resetCounts();
  });

  const conn = (c: { id: string; clientId: string }, extra: Partial<ConnectionEnv> = {}): ConnectionEnv => ({
    id: c.id, scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: c.clientId, subscriptionId: SUB, armUrl: `${emu.url}/`, scopeLevel: 'Subscription', ...extra,
  });

  function validate(c: ConnectionEnv, inputs: Record<string, string> = {}, env: Record<string, string> = {}): Promise<TaskRun> {
    return e2e.run({ task: 'ValidateServiceConnectionV1', conn: c, inputs, env: { AGENT_PROXYURL: graphProxy.url, AGENT_PROXYBYPASSLIST: JSON.stringify(['^https://127\\.0\\.0\\.1[:/]']), ...env } });
  }

  /** The checks of the log's rows, in order. */
  function checks(r: TaskRun): string[] {
    return r.log.split('\n').flatMap((l) => /^(?:PASS|WARNING|FAIL|SKIPPED) +([^:]+):/.exec(l)?.[1] ?? []);
  }

  /** What every run that read its inputs ends with: its summary uploaded (under Agent.TempDirectory) and validationStatus set. */
  function reported(r: TaskRun, status: 'ok' | 'warning' | 'error'): string {
    assert.equal(r.variables.validationStatus?.value, status, r.stdout);
    const cmd = r.commands.find((c) => c.name === 'task.uploadsummary');
    assert.ok(cmd, `a summary is uploaded:\n${r.stdout}`);
    assert.ok(!path.relative(os.tmpdir(), cmd.value).startsWith('..'), `the summary is under Agent.TempDirectory: ${cmd.value}`);
    return summaryOf(r);
  }

  function summaryOf(r: TaskRun): string {
    const cmd = r.commands.find((c) => c.name === 'task.uploadsummary');
    assert.ok(cmd, 'a summary is uploaded');
    return fs.readFileSync(cmd.value, 'utf8');
  }

  function row(r: TaskRun, check: string): string {
    const line = r.log.split('\n').find((l) => new RegExp(`^(PASS|WARNING|FAIL|SKIPPED) +${check.replace(/[()]/g, '\\$&')}:`).test(l));
    assert.ok(line, `a log line for ${check}:\n${r.log}`);
    return line;
  }

  /** A secret-based connection whose app's secret ends in `days` days. */
  function secretConnection(days: number, name: string) {
    const id = crypto.randomUUID();
    const clientId = crypto.randomUUID();
    const secret = `${name.slice(0, 3)}~${crypto.randomBytes(16).toString('base64url')}`;
    e2e.extraSecrets.push(secret);
    emu.addApp({ clientId, tenantId: TENANT, graphAccess: 'read', secrets: [{ value: secret, endDateTime: new Date(Date.now() + days * 86_400_000).toISOString(), displayName: 'azure-devops' }] });
    emu.addServiceConnection({ id, name, scheme: 'ServicePrincipal', tenantId: TENANT, clientId, subscriptionId: SUB, servicePrincipalKey: secret });
    emu.assignRole({ principalId: clientId, scope: `/subscriptions/${SUB}`, role: 'Contributor' });
    return conn({ id, clientId }, { scheme: 'ServicePrincipal', authenticationType: 'spnKey', secret });
  }

  it('a healthy federated connection: every check passes, summary uploaded, screenshot for the marketplace', async () => {
    const c = addFederatedConnection(emu, 'prod-deploy');
    emu.addServiceConnection({ id: c.id, name: 'prod-deploy', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: c.clientId, subscriptionId: SUB, issuerMode: 'entra', createdBy: { displayName: 'Alex Admin' } });
    const fed = emu.expectedFederation(c.id);
    emu.addApp({ clientId: c.clientId, tenantId: TENANT, federatedCredentials: [{ issuer: fed.issuer, subject: fed.subject, audiences: ['api://AzureADTokenExchange'] }] });
    emu.assignRole({ principalId: c.clientId, scope: `/subscriptions/${SUB}`, role: 'Contributor' });
    const r = await validate(conn(c), { scope: REGISTRY, requiredRoles: 'AcrPush' });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(r.variables.validationStatus.value, 'ok');
    for (const check of ['Scheme', 'Connection in Azure DevOps', 'idToken', 'Entra ID exchange', 'Subscription', 'Role AcrPush']) assert.match(row(r, check), /^PASS/);
    assert.match(row(r, 'Secret expiry'), /^SKIPPED/);
    assert.match(r.stdout, /^##\[group\]Service connection 'prod-deploy'/m);
    const md = summaryOf(r);
    assert.match(md, /^## Service connection prod-deploy$/m);
    assert.match(md, /\*\*✔ The connection works\.\*\*/);
    assert.match(md, /^\| Subscription \| ✔ pass \| Readable: 'Contoso Production'/m);
    assert.match(md, /^\| Role AcrPush \| ✔ pass \|/m);
    assert.match(md, /\[Service connection in Azure DevOps\]\(https:\/\/127\.0\.0\.1:\d+\/contoso\/web\/_settings\/adminservices\?resourceId=/);
    assert.deepEqual([emu.count('serviceendpoint'), emu.count('oidctoken'), emu.count('entra.token'), emu.count('arm.subscription'), emu.count('arm.permissions'), emu.count('arm.roleDefinitions')], [1, 1, 1, 1, 1, 1]);
  });

  it('the seed-000 connection: secret rotation failed, its creator gone', async () => {
    const id = crypto.randomUUID();
    const clientId = crypto.randomUUID();
    const secret = `old~${crypto.randomBytes(16).toString('base64url')}`;
    e2e.extraSecrets.push(secret);
    emu.addApp({ clientId, tenantId: TENANT, secrets: [{ value: secret, endDateTime: new Date(Date.now() + 200 * 86_400_000).toISOString() }] });
    emu.addServiceConnection({ id, name: 'legacy-prod', scheme: 'ServicePrincipal', tenantId: TENANT, clientId, subscriptionId: SUB, isReady: false, operationStatus: SECRET_ROTATION_FAILED, createdBy: { displayName: 'Former Employee', inactive: true } as never });
    emu.assignRole({ principalId: clientId, scope: `/subscriptions/${SUB}`, role: 'Reader' });
    const r = await validate(conn({ id, clientId }, { scheme: 'ServicePrincipal', authenticationType: 'spnKey', secret }));
    assert.equal(r.result, 'Failed');
    assert.equal(r.variables.validationStatus.value, 'error');
    assert.match(row(r, 'Scheme'), /^WARNING .*Convert to workload identity federation/);
    const ado = row(r, 'Connection in Azure DevOps');
    assert.match(ado, /^FAIL .*not ready \(state: Failed\): One or more issues occurred while trying to rotate service endpoint secrets/);
    assert.match(ado, /creator \(Former Employee\) has left the organization.*create a new service connection with the same settings/);
    assert.match(row(r, 'Secret expiry'), /^SKIPPED .*Application\.Read\.All/);
    assert.match(summaryOf(r), /Created by: Former Employee/);
  });

  it('a renamed connection whose sc:// subject no longer matches (AADSTS700213): the presented subject, which the credential must carry exactly; Azure DevOps agrees', async () => {
    const c = addFederatedConnection(emu, 'prod-deploy-renamed', (e) => ({ issuer: e.issuer, subject: 'sc://contoso/web/prod-deploy' }));
    const r = await validate(conn(c));
    assert.equal(r.result, 'Failed');
    const entra = row(r, 'Entra ID exchange');
    assert.match(entra, /^FAIL .*AADSTS700213.*Fix: Set the subject of the federated credential .* to exactly the subject Azure DevOps presents/);
    const md = reported(r, 'error');
    assert.ok(md.includes(`subject:  ${c.expected.subject}`), md);
    // Azure DevOps expects what it presents: one sentence says so, not a second identical block.
    assert.doesNotMatch(md, /Expected \(the service connection in Azure DevOps\):/);
    assert.match(md, /The service connection in Azure DevOps expects this same issuer and subject: Azure DevOps is consistent, so the mismatch is in the federated credential in Microsoft Entra ID, not in Azure DevOps\./);
    assert.ok(md.includes(`The federated credential in Microsoft Entra ID must carry exactly the subject Azure DevOps presents (case-sensitive): ${c.expected.subject}`), md);
    assert.match(row(r, 'idToken'), /^WARNING .*vstoken\.dev\.azure\.com issuer, which Azure DevOps retires on 2027-07-01/);
    assert.equal(emu.count('serviceendpoint'), 1, 'the expected subject is read once');
    assert.match(row(r, 'Subscription'), /^SKIPPED/);
  });

  it('a secret expiring in 10 days is a warning; an expired one fails with AADSTS7000222', async () => {
    const soon = await validate(secretConnection(10, 'soon-expiring'));
    assert.equal(soon.result, 'SucceededWithIssues', soon.stdout);
    assert.equal(soon.variables.validationStatus.value, 'warning');
    assert.match(row(soon, 'Secret expiry'), /^WARNING .*The connection's client secret 'azure-devops' expires on \d{4}-\d\d-\d\d, in (9|10) days/);
    assert.match(row(soon, 'Entra ID exchange'), /^PASS/);
    assert.equal(emu.count('graph.application'), 1);

    const expired = await validate(secretConnection(-3, 'expired-secret'));
    assert.equal(expired.result, 'Failed');
    assert.match(row(expired, 'Entra ID exchange'), /^FAIL .*AADSTS7000222/);
    assert.match(row(expired, 'Secret expiry'), /^FAIL .*has expired \(AADSTS7000222\).*Convert the connection to workload identity federation/);
  });

  it('failOn: warning fails on warnings', async () => {
    const r = await validate(secretConnection(10, 'strict-check'), { failOn: 'warning' });
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), /has warnings \(failOn: warning\): Scheme, Secret expiry/);
  });

  it('missing AcrPush on a registry scope names the missing push action', async () => {
    const c = addFederatedConnection(emu);
    emu.assignRole({ principalId: c.clientId, scope: `/subscriptions/${SUB}`, role: 'Reader' });
    emu.assignRole({ principalId: c.clientId, scope: REGISTRY, role: 'AcrPull' });
    const r = await validate(conn(c), { scope: REGISTRY, requiredRoles: 'AcrPull, AcrPush' });
    assert.equal(r.result, 'Failed');
    assert.match(row(r, 'Role AcrPull'), /^PASS/);
    const push = row(r, 'Role AcrPush');
    assert.match(push, /^FAIL +Role AcrPush: Missing on \/subscriptions\/.*\/registries\/contosoimages: Microsoft\.ContainerRegistry\/registries\/push\/write\./);
    assert.doesNotMatch(push, /pull\/read/);
    assert.match(push, /Assign AcrPush to the identity/);
  });

  it('Azure DevOps forbids reading the connection: a warning, and the other checks still run', async () => {
    const c = addFederatedConnection(emu);
    emu.addServiceConnection({ id: c.id, name: c.name, scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: c.clientId, subscriptionId: SUB, endpointAccess: 'forbidden' });
    emu.assignRole({ principalId: c.clientId, scope: `/subscriptions/${SUB}`, role: 'Reader' });
    const r = await validate(conn(c));
    assert.equal(r.result, 'SucceededWithIssues', r.stdout);
    assert.match(row(r, 'Connection in Azure DevOps'), /^WARNING .*HTTP 403.*the other checks still run.*Reader role on this connection/);
    assert.match(row(r, 'Entra ID exchange'), /^PASS/);
    assert.match(row(r, 'Subscription'), /^PASS/);
  });

  it('bad inputs name the input', async () => {
    const c = addFederatedConnection(emu);
    const cases: [Record<string, string>, RegExp][] = [
      [{ scope: 'contosoimages' }, /Input 'scope': 'contosoimages' is not an Azure resource id/],
      [{ requiredRoles: 'AcrPush' }, /Input 'requiredRoles': roles are given without a scope/],
      [{ secretExpiryWarningDays: 'soon' }, /Input 'secretExpiryWarningDays': 'soon' is not a whole number/],
      [{ failOn: 'never' }, /Input 'failOn': 'never' is not one of 'error', 'warning'/],
    ];
    for (const [inputs, message] of cases) {
      const r = await validate(conn(c), inputs);
      assert.equal(r.result, 'Failed');
      assert.match(r.errors.join('\n'), message);
    }
    assert.equal(Object.values(emu.counts()).reduce((a, b) => a + b, 0), 0, 'no request for a bad input');
  });

  it('renders a summary in headless Chromium for the marketplace page (images/validate-summary.png)', async function () {
    if (!chromiumBinary()) assert.fail('chromium is not installed: apt-get install -y chromium (.ci/run does this)');
    const c = addFederatedConnection(emu, 'prod-deploy-2');
    emu.assignRole({ principalId: c.clientId, scope: `/subscriptions/${SUB}`, role: 'Reader' });
    emu.assignRole({ principalId: c.clientId, scope: REGISTRY, role: 'AcrPull' });
    const r = await validate(conn(c), { scope: REGISTRY, requiredRoles: 'AcrPush' });
    const html = await renderSummaryHtml(summaryOf(r), 'Service connection');
    assert.match(html, /<table>/);
    const out = path.join(root, 'images', 'validate-summary.png');
    const tmp = `${out}.tmp.png`;
    await screenshot(html, tmp, { width: 1280, height: 760 });
    const png = fs.readFileSync(tmp);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.ok(png.length > 20_000, `a real picture, not a blank page (${png.length} bytes)`);
    fs.renameSync(tmp, out);
  });
});
