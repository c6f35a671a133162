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
import { startEmulator, Emulator, SECRET_ROTATION_FAILED } from '../emulator/index';
import { ConnectionEnv, PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { addFederatedConnection, E2eRuns, TENANT } from '../helpers/e2e';
import { TaskRun } from '../helpers/task-process';
import { chromiumBinary, summaryPicture } from '../helpers/screenshot';
import { MappingProxy, proxyToEmulator } from '../helpers/connect-proxy';

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
    graphProxy = await proxyToEmulator(emu, ['graph.microsoft.com']);
    emu.addSubscription({ subscriptionId: SUB, tenantId: TENANT, displayName: 'Contoso Production' });
  });
  after(async () => {
    await graphProxy?.stop();
    await emu?.stop();
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
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
    // As a reader sees it: markdown's backslash escapes (of ':' in URLs, brackets, pipes) removed.
    return summaryOf(r).replace(/\\([!-/:-@[-`{-~])/g, '$1');
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
    assert.ok(md.includes(`subject:  \`${c.expected.subject}\``), md);
    // Azure DevOps expects what it presents: one sentence says so, not a second identical block.
    assert.doesNotMatch(md, /Expected \(the service connection in Azure DevOps\):/);
    assert.match(md, /The service connection in Azure DevOps expects this same issuer and subject: Azure DevOps is consistent, so the mismatch is in the federated credential in Microsoft Entra ID, not in Azure DevOps\./);
    assert.ok(md.includes(`The federated credential in Microsoft Entra ID must carry exactly the subject Azure DevOps presents (case-sensitive): \`${c.expected.subject}\``), md);
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

  it('Microsoft Graph unreachable (the proxy refuses graph.microsoft.com): Secret expiry skipped with the reason, every other check runs, summary and validationStatus', async () => {
    const refusing = await proxyToEmulator(emu, []);
    try {
      const r = await validate(secretConnection(200, 'graph-unreachable'), { scope: `/subscriptions/${SUB}`, requiredRoles: 'Reader' }, { AGENT_PROXYURL: refusing.url });
      assert.equal(r.result, 'SucceededWithIssues', r.stdout);
      assert.deepEqual(checks(r), ['Scheme', 'Connection in Azure DevOps', 'idToken', 'Entra ID exchange', 'Subscription', 'Role Reader', 'Secret expiry']);
      const expiry = row(r, 'Secret expiry');
      assert.match(expiry, /^SKIPPED +Secret expiry: Could not run: Microsoft Graph could not be reached: .*graph\.microsoft\.com/);
      assert.match(expiry, /proxy http:\/\/127\.0\.0\.1:\d+/);
      assert.match(expiry, /check the end date in the Azure portal/);
      assert.match(row(r, 'Entra ID exchange'), /^PASS/);
      assert.match(row(r, 'Subscription'), /^PASS/);
      assert.match(row(r, 'Role Reader'), /^PASS/);
      const md = reported(r, 'warning');
      assert.match(md, /^Could not be checked in this run \(see each row for why\): Secret expiry\.$/m);
      assert.match(md, /^\| Secret expiry \| ○ skipped \| Could not run: Microsoft Graph could not be reached/m);
      assert.deepEqual(refusing.connects.map((c) => [c.authority, c.status]), [['graph.microsoft.com:443', 403]]);
    } finally {
      await refusing.stop();
    }
  });

  it('Microsoft Graph hangs (timeout): Secret expiry skipped naming the timeout, the rest reported', async () => {
    emu.inject('graph.application', { kind: 'hang' }, Infinity);
    const r = await validate(secretConnection(200, 'graph-hangs'), {}, { WORKLOADIDENTITY_HTTPTIMEOUTSECONDS: '1', WORKLOADIDENTITY_HTTPRETRIES: '1' });
    assert.equal(r.result, 'SucceededWithIssues', r.stdout);
    assert.match(row(r, 'Secret expiry'), /^SKIPPED +Secret expiry: Could not run: Microsoft Graph could not be reached: Microsoft Graph at graph\.microsoft\.com did not answer within 1 s \(2 attempts\)/);
    assert.deepEqual(checks(r), ['Scheme', 'Connection in Azure DevOps', 'idToken', 'Entra ID exchange', 'Subscription', 'Roles', 'Secret expiry']);
    reported(r, 'warning');
    assert.equal(emu.count('graph.application'), 2);
  });

  it('Microsoft Graph refuses (403): Secret expiry skipped naming Application.Read.All', async () => {
    const c = secretConnection(200, 'graph-forbidden');
    emu.addApp({ ...emu.getApp(c.clientId!)!, graphAccess: 'forbidden' });
    const r = await validate(c);
    assert.equal(r.result, 'SucceededWithIssues', r.stdout);
    assert.match(row(r, 'Secret expiry'), /^SKIPPED +Secret expiry: Could not run: Microsoft Graph did not let the identity read its app registration \(HTTP 403, Authorization_RequestDenied\); it needs the Microsoft Graph application permission Application\.Read\.All \(or to own its app registration\)\./);
    const md = reported(r, 'warning');
    // A dotted name is written as code in the summary (nothing in it can become a link).
    assert.match(md, /^\| Secret expiry \| ○ skipped \| Could not run: .*`Application\.Read\.All`.* \| To have this checked, grant the app the Microsoft Graph application permission `Application\.Read\.All`/m);
  });

  it('Resource Manager refuses the permissions read (403): the role row is skipped naming Microsoft.Authorization/permissions/read', async () => {
    const c = addFederatedConnection(emu);
    emu.assignRole({ principalId: c.clientId, scope: `/subscriptions/${SUB}`, role: 'Contributor' });
    emu.inject('arm.permissions', { kind: 'status', status: 403 }, Infinity);
    const r = await validate(conn(c), { scope: REGISTRY, requiredRoles: 'AcrPush, AcrPull' });
    assert.notEqual(r.result, 'Failed', r.stdout);
    for (const role of ['Role AcrPush', 'Role AcrPull']) {
      assert.match(row(r, role), /^SKIPPED +Role Acr\w+: Could not run: the identity may not read its own permissions on \/subscriptions\/.*\/registries\/contosoimages \(HTTP 403, AuthorizationFailed\); it needs the permission Microsoft\.Authorization\/permissions\/read there\./);
    }
    assert.match(row(r, 'Subscription'), /^PASS/);
    assert.deepEqual(checks(r), ['Scheme', 'Connection in Azure DevOps', 'idToken', 'Entra ID exchange', 'Subscription', 'Role AcrPush', 'Role AcrPull', 'Secret expiry']);
    assert.match(reported(r, 'warning'), /Could not be checked in this run \(see each row for why\): Role AcrPush, Role AcrPull\./);
  });

  it('Resource Manager keeps answering 503 for the subscription: that row says so after the retries, the roles are still checked', async () => {
    const c = addFederatedConnection(emu);
    emu.assignRole({ principalId: c.clientId, scope: `/subscriptions/${SUB}`, role: 'Contributor' });
    emu.inject('arm.subscription', { kind: 'status', status: 503 }, Infinity);
    const r = await validate(conn(c), { scope: REGISTRY, requiredRoles: 'AcrPush' }, { WORKLOADIDENTITY_HTTPRETRIES: '1' });
    assert.notEqual(r.result, 'Failed', r.stdout);
    assert.match(row(r, 'Subscription'), /^SKIPPED +Subscription: Could not run: Azure Resource Manager answered HTTP 503, ServiceUnavailable for subscription [0-9a-f-]+ \(2 attempts\)\..*Fix: Re-run the job later/);
    assert.match(row(r, 'Role AcrPush'), /^PASS/);
    assert.equal(emu.count('arm.subscription'), 2, 'retried once');
    reported(r, 'warning');
  });

  it('Azure DevOps fails to give the connection (500, then a reset): a warning row, every other check still runs and reports', async () => {
    for (const fault of [{ kind: 'status', status: 500 } as const, { kind: 'reset' } as const]) {
      const c = addFederatedConnection(emu);
      emu.assignRole({ principalId: c.clientId, scope: `/subscriptions/${SUB}`, role: 'Reader' });
      emu.inject('serviceendpoint', fault, Infinity);
      const r = await validate(conn(c), {}, { WORKLOADIDENTITY_HTTPRETRIES: '0' });
      assert.equal(r.result, 'SucceededWithIssues', r.stdout);
      assert.match(row(r, 'Connection in Azure DevOps'), fault.kind === 'status' ? /^WARNING .*Azure DevOps could not give the connection's details \(HTTP 500\); the other checks still run\..*status\.dev\.azure\.com/ : /^WARNING .*Could not read the connection from Azure DevOps: The connection to the Azure DevOps service endpoints API at 127\.0\.0\.1:\d+ failed: .*; the other checks still run\./);
      assert.deepEqual(checks(r), ['Scheme', 'Connection in Azure DevOps', 'idToken', 'Entra ID exchange', 'Subscription', 'Roles', 'Secret expiry']);
      assert.match(row(r, 'Subscription'), /^PASS/);
      reported(r, 'warning');
      emu.clearFaults();
    }
  });

  it('a connection the task cannot read: the summary with the failing row and its fix, validationStatus error, then the task fails', async () => {
    const c = addFederatedConnection(emu);
    // The agent passes no such connection (a name it does not know).
    const unknown = await validate(conn(c), {}, { INPUT_CONNECTEDSERVICENAMEARM: 'no-such-connection' });
    assert.equal(unknown.result, 'Failed');
    assert.match(unknown.errors.join('\n'), /Input 'azureSubscription': the agent passed no service connection 'no-such-connection'/);
    assert.deepEqual(checks(unknown), ['Service connection']);
    const md = reported(unknown, 'error');
    assert.match(md, /^## Service connection no-such-connection$/m);
    assert.match(md, /^\| Service connection \| ✖ fail \| Input 'azureSubscription': the agent passed no service connection 'no-such-connection' to the task\. \| Check the connection's name/m);
    // A secret connection whose secret the agent did not pass.
    const noSecret = await validate({ ...conn(c), scheme: 'ServicePrincipal', authenticationType: 'spnKey' });
    assert.equal(noSecret.result, 'Failed');
    assert.match(row(noSecret, 'Service connection'), /^FAIL .*uses a client secret, but the agent passed none\..*Fix: Convert the connection to workload identity federation/);
    reported(noSecret, 'error');
    assert.equal(Object.values(emu.counts()).reduce((a, b) => a + b, 0), 0, 'no request for a connection that cannot be read');
  });

  it('a US Government connection with the vstoken issuer: no retirement warning (it applies to the public cloud only)', async () => {
    const c = addFederatedConnection(emu, 'usgov-deploy');
    emu.assignRole({ principalId: c.clientId, scope: `/subscriptions/${SUB}`, role: 'Reader' });
    const r = await validate(conn(c), {}, { [`ENDPOINT_DATA_${c.id}_ENVIRONMENT`]: 'AzureUSGovernment', [`ENDPOINT_DATA_${c.id}_ACTIVEDIRECTORYSERVICEENDPOINTRESOURCEID`]: 'https://management.azure.com/' });
    assert.match(c.expected.issuer, /^https:\/\/vstoken\.dev\.azure\.com\//);
    assert.match(row(r, 'idToken'), /^PASS/);
    assert.doesNotMatch(r.stdout, /2027/);
    assert.doesNotMatch(summaryOf(r), /2027|retire/);
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

  // npm test writes the picture into build/screenshots (no tracked file changes); `npm run
  // screenshots` runs this test with SCREENSHOT_DIR=images to refresh the marketplace picture. The run
  // addresses Azure DevOps, Entra ID, Resource Manager and Microsoft Graph by their public names
  // (through a proxy that maps them to the emulator), so the summary names them as a user's would.
  it('renders a summary in headless Chromium for the marketplace page (validate-summary.png)', async function () {
    if (!chromiumBinary()) assert.fail('chromium is not installed: apt-get install -y chromium (.ci/run does this)');
    const c = addFederatedConnection(emu, 'prod-deploy-2');
    emu.assignRole({ principalId: c.clientId, scope: `/subscriptions/${SUB}`, role: 'Reader' });
    emu.assignRole({ principalId: c.clientId, scope: REGISTRY, role: 'AcrPull' });
    const proxy = await proxyToEmulator(emu, [PUBLIC_COLLECTION_HOST, 'login.microsoftonline.com', 'management.azure.com', 'graph.microsoft.com']);
    try {
      const r = await e2e.run({
        task: 'ValidateServiceConnectionV1',
        conn: conn(c, { authorityUrl: null, armUrl: 'https://management.azure.com/' }),
        inputs: { scope: REGISTRY, requiredRoles: 'AcrPush' },
        job: { publicHosts: true },
        env: { AGENT_PROXYURL: proxy.url },
      });
      assert.equal(r.variables.validationStatus?.value, 'error', r.stdout);
      assert.ok(proxy.connects.length > 0 && proxy.connects.every((x) => x.status === 200), 'every service reached by its public name');
      const file = r.commands.find((x) => x.name === 'task.uploadsummary')?.value;
      assert.ok(file, 'a summary is uploaded');
      assert.match(fs.readFileSync(file, 'utf8'), /\(https:\/\/dev\.azure\.com\/contoso\/web\/_settings\/adminservices\?resourceId=/);
      const picture = await summaryPicture(file, 'validate-summary.png', [emu.host]);
      assert.ok(picture.height > 500, `the whole summary: ${picture.height} px`);
    } finally {
      await proxy.stop();
    }
  });
});
