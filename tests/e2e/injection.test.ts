/**
 * No logging-command injection: every bundled task, main and post-job step, run with logging
 * commands hidden in what comes from outside (the connection's name and creator, a subscription's
 * name, Entra, AWS STS, ACR, Google STS and IAM Credentials error texts, echoed inputs), some
 * behind characters the agent's culture-sensitive match ignores. The output is parsed exactly as
 * the agent parses it (see task-process.ts); the scan in afterEach (e2e.ts) fails on any command
 * the tasks did not mean.
 * Each test also finds the payload in its defused form, so it proves neutralisation, not omission.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, Emulator, gcpPrincipal, stsFault } from '../emulator/index';
import { ConnectionEnv } from '../helpers/agent';
import { MappingProxy, proxyToEmulator } from '../helpers/connect-proxy';
import { E2eRuns, postJobEnv, TENANT, unintendedOutput, trustInAws } from '../helpers/e2e';
import { TaskRun } from '../helpers/task-process';

const SUB = '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const ACCOUNT = '123456789012';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/azure-pipelines-deploy`;
const GCP_PROVIDER = { projectNumber: '123456789012', poolId: 'azure-pipelines', providerId: 'contoso' };
const GCP_PROVIDER_NAME = `projects/${GCP_PROVIDER.projectNumber}/locations/global/workloadIdentityPools/${GCP_PROVIDER.poolId}/providers/${GCP_PROVIDER.providerId}`;
const GCP_SA = 'deployer@contoso-prod.iam.gserviceaccount.com';

/** Each payload and what a user sees instead (written out here, not computed by the product). */
const INJECT = 'x ##vso[task.setvariable variable=INJECTED]1';
const INJECT_SHOWN = 'x ##vso%5Btask.setvariable variable=INJECTED]1';
const CREATOR = 'Mallory\r##vso[task.prependpath]/tmp/evil';
const CREATOR_SHOWN = 'Mallory\\r##vso%5Btask.prependpath]/tmp/evil';
const LINE = '\n##vso[task.setvariable variable=INJECTED]1';
const HIDDEN: [string, string][] = [
  ['#\u00AD#vso[task.setvariable variable=INJECTED]1', '#\\u{AD}#vso%5Btask.setvariable variable=INJECTED]1'],
  ['##v\u200Bso[task.prependpath]/tmp/evil', '##v\\u{200B}so%5Btask.prependpath]/tmp/evil'],
  ['\u2060##vso\uFEFF[task.prependpath]/tmp/evil', '\\u{2060}##vso\\u{FEFF}%5Btask.prependpath]/tmp/evil'],
  ['\uFEFF##[group]forged', '\\u{FEFF}##%5Bgroup]forged'],
];
const ALL: [string, string][] = [[INJECT, INJECT_SHOWN], [CREATOR, CREATOR_SHOWN], ...HIDDEN];

/**
 * What must be visible of a payload given as an input: inputs are trimmed (U+FEFF too) and lists
 * split on commas and line breaks, so the part from the defused prefix on.
 */
const fromPrefix = (shown: string) => shown.slice(shown.indexOf('#'));
/**
 * The same for a list split on white space as well (GcpAuthFederated's accessTokenScopes): the
 * word from the defused prefix on. U+FEFF is white space to JavaScript, so it ends a word too.
 */
const wordFromPrefix = (shown: string) => fromPrefix(shown).split(/ |\\u\{FEFF\}/)[0];

describe('E2E no logging-command injection (every bundled task, outside text carrying commands)', function () {
  this.timeout(120_000);
  let emu: Emulator;
  const e2e = new E2eRuns(() => emu);
  let summaries: string[] = [];

  before(async () => {
    emu = await startEmulator();
    emu.addSubscription({ subscriptionId: SUB, tenantId: TENANT, displayName: `Prod ${INJECT}${LINE} ${CREATOR}` });
    emu.addRegistry({ loginServer: emu.host, tenantId: TENANT });
  });
  after(async () => emu?.stop());
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
    summaries = [];
  });

  /** A federated connection with an outside name and creator; its subject claim carries the name. */
  function connection(name: string, extra: { createdBy?: string; mismatch?: boolean; failed?: string } = {}): ConnectionEnv {
    const id = crypto.randomUUID();
    const clientId = crypto.randomUUID();
    emu.addServiceConnection({
      id, name, scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId, subscriptionId: SUB,
      createdBy: extra.createdBy ? { displayName: extra.createdBy, uniqueName: `${extra.createdBy}@contoso.com` } : undefined,
      ...(extra.failed ? { isReady: false, operationStatus: { state: 'Failed', statusMessage: extra.failed } } : {}),
    });
    const expected = emu.expectedFederation(id);
    emu.addApp({ clientId, tenantId: TENANT, federatedCredentials: [{ issuer: expected.issuer, subject: extra.mismatch ? `${expected.subject}-old` : expected.subject, audiences: ['api://AzureADTokenExchange'] }] });
    emu.assignRole({ principalId: clientId, scope: `/subscriptions/${SUB}`, role: 'Contributor' });
    return { id, scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId, subscriptionId: SUB, armUrl: `${emu.url}/`, scopeLevel: 'Subscription' };
  }

  async function run(task: string, conn: ConnectionEnv, inputs: Record<string, string>, entry = 'index.js', env: Record<string, string> = {}): Promise<TaskRun> {
    const job = { tempDirectory: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-inject-')) };
    const r = await e2e.run({ task, conn, inputs, entry, job, env: { WORKLOADIDENTITY_GRAPHURL: emu.url, DOCKER_CONFIG: job.tempDirectory, ...env } });
    const summary = r.commands.find((c) => c.name === 'task.uploadsummary');
    if (summary) summaries.push(fs.readFileSync(summary.value, 'utf8'));
    return r;
  }

  /** Checked here as well as in the scan, so each test names what it proves. */
  function assertInert(r: TaskRun, shown: string[]): void {
    assert.deepEqual(unintendedOutput(r), [], 'no command the tasks did not mean');
    assert.equal(r.variables.INJECTED, undefined, 'no variable INJECTED');
    assert.ok(!r.commands.some((c) => c.name === 'task.prependpath'), 'no task.prependpath');
    const seen = [r.log, ...r.errors, ...r.warnings, ...summaries].join('\n');
    for (const s of shown) assert.ok(seen.includes(s), `the payload is visible, defused, as ${JSON.stringify(s)}:\n${seen}`);
  }


  for (const [payload, shown] of ALL) {
    it(`FetchOidcToken@1 and its post-job step: a connection named ${JSON.stringify(payload)} (in the subject claim)`, async () => {
      const c = connection(payload);
      const r = await run('FetchOidcTokenV1', c, { accessTokenScope: 'https://management.azure.com/.default', exportAzureIdentityEnv: 'true', keepTokenFileFresh: 'false' });
      assert.equal(r.result, 'Succeeded', r.stdout);
      assertInert(r, [shown]);
      const post = await run('FetchOidcTokenV1', c, {}, 'post.js', postJobEnv(r));
      assert.equal(post.result, 'Succeeded', post.stdout);
      assertInert(post, []);
    });
  }

  it('FetchOidcToken@1: the federated credential does not match (AADSTS700213 names the subject, Azure DevOps the connection)', async () => {
    const c = connection(INJECT, { mismatch: true });
    const r = await run('FetchOidcTokenV1', c, { accessTokenScope: 'https://management.azure.com/.default' });
    assert.equal(r.result, 'Failed', r.stdout);
    assert.match(r.errors.join('\n'), /AADSTS700213/);
    assertInert(r, [INJECT_SHOWN]);
  });

  it('FetchOidcToken@1: an Entra error_description carrying commands, after a CR and a LF', async () => {
    const c = connection('plain');
    emu.inject('entra.token', { kind: 'status', status: 400, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ error: 'invalid_client', error_description: `AADSTS7000215: Invalid client secret. ${INJECT} ${CREATOR}${LINE}\r\nTrace ID: 1`, trace_id: `t${LINE}`, correlation_id: CREATOR }) }, 5);
    const r = await run('FetchOidcTokenV1', c, { accessTokenScope: 'https://management.azure.com/.default' });
    assert.equal(r.result, 'Failed', r.stdout);
    // A service's text is quoted to its first line only: what follows a line break is not shown at all.
    assertInert(r, [`Invalid client secret. ${INJECT_SHOWN} Mallory`]);
    assert.ok(!r.log.includes('/tmp/evil'), 'nothing after the first line break of a service text');
  });

  for (const [payload, shown] of ALL) {
    it(`FetchOidcToken@1: the input accessTokenScope ${JSON.stringify(payload)} is echoed defused`, async () => {
      const r = await run('FetchOidcTokenV1', connection('plain'), { accessTokenScope: payload });
      assert.equal(r.result, 'Failed', r.stdout);
      assertInert(r, [fromPrefix(shown)]);
    });
  }

  it('ValidateServiceConnection@1: connection name, creator, failed rotation message, subscription name, scope and requiredRoles', async () => {
    const c = connection(INJECT, { createdBy: CREATOR, failed: `Secret rotation failed ${CREATOR}${LINE}` });
    const scope = `/subscriptions/${SUB}/resourceGroups/rg-${HIDDEN[0][0]}`;
    // The '#' in the scope ends the path of ARM's URL (a 404), so the roles are checked in the next tests.
    const r = await run('ValidateServiceConnectionV1', c, { scope, requiredRoles: `AcrPush, ${INJECT}` });
    assert.equal(r.result, 'Failed', r.stdout);
    assertInert(r, [INJECT_SHOWN, CREATOR_SHOWN, HIDDEN[0][1], `Prod ${INJECT_SHOWN}\\n##vso%5Btask.setvariable variable=INJECTED]1 ${CREATOR_SHOWN}`]);
    assert.equal(summaries.length, 1, 'a summary was uploaded');
    assert.ok(!/##vso\[|##\[|\r/.test(summaries[0]), `the summary holds no command and no CR:\n${summaries[0]}`);
  });

  for (const [payload, shown] of ALL) {
    it(`ValidateServiceConnection@1: the inputs scope and requiredRoles ${JSON.stringify(payload)} are echoed defused`, async () => {
      const c = connection('plain');
      const bad = await run('ValidateServiceConnectionV1', c, { scope: payload });
      assert.equal(bad.result, 'Failed', bad.stdout);
      assertInert(bad, [fromPrefix(shown)]);
      const roles = await run('ValidateServiceConnectionV1', c, { scope: `/subscriptions/${SUB}`, requiredRoles: payload });
      assertInert(roles, [fromPrefix(shown)]);
      const days = await run('ValidateServiceConnectionV1', c, { secretExpiryWarningDays: payload });
      assertInert(days, [fromPrefix(shown)]);
    });
  }

  describe('AwsAssumeRoleFederated@1', () => {
    let conn: ConnectionEnv;
    before(() => {
      conn = connection(INJECT);
      const expected = emu.expectedFederation(conn.id);
      trustInAws(emu, expected, ROLE, 7200);
    });
    const aws = (inputs: Record<string, string>, entry = 'index.js', env: Record<string, string> = {}) =>
      run('AwsAssumeRoleFederatedV1', conn, { roleArn: ROLE, stsEndpoint: `${emu.url}/`, ...inputs }, entry, env);

    it('a connection named with a command, and its post-job step', async () => {
      const r = await aws({ exportWebIdentityFile: 'true', keepTokenFileFresh: 'false' });
      assert.equal(r.result, 'Succeeded', r.stdout);
      assertInert(r, [INJECT_SHOWN]);
      const post = await aws({}, 'post.js', postJobEnv(r));
      assert.equal(post.result, 'Succeeded', post.stdout);
      assertInert(post, []);
    });

    it('an STS error message and code carrying commands', async () => {
      emu.inject('sts.assumeRoleWithWebIdentity', stsFault(403, 'AccessDenied', `Not authorized ${INJECT} ${CREATOR}${LINE}`), 1);
      const denied = await aws({});
      assert.equal(denied.result, 'Failed', denied.stdout);
      assertInert(denied, [`Not authorized ${INJECT_SHOWN} Mallory`]);
      emu.inject('sts.assumeRoleWithWebIdentity', stsFault(400, `Odd${HIDDEN[1][0]}`, 'm'), 1);
      const odd = await aws({});
      assert.equal(odd.result, 'Failed', odd.stdout);
      // A code that is not shaped like an STS error code is not quoted at all.
      assertInert(odd, []);
      assert.ok(!odd.log.includes('prependpath'), odd.log);
    });

    for (const [payload, shown] of ALL) {
      it(`the inputs roleArn, stsEndpoint and roleSessionName ${JSON.stringify(payload)} are echoed defused`, async () => {
        for (const inputs of <Record<string, string>[]>[{ roleArn: payload }, { stsEndpoint: payload }, { stsEndpoint: `http://sts.example/${payload}` }, { roleSessionName: payload }, { durationSeconds: payload }]) {
          const r = await aws(inputs);
          assert.equal(r.result, 'Failed', r.stdout);
          assertInert(r, [fromPrefix(shown)]);
        }
      });
    }

    it('an stsEndpoint whose fragment carries a command is logged defused', async () => {
      const r = await aws({ stsEndpoint: `${emu.url}/#${INJECT}` });
      assert.equal(r.result, 'Succeeded', r.stdout);
      assertInert(r, ['##vso%5Btask.setvariable']);
    });
  });

  describe('AcrLoginFederated@1', () => {
    it('a connection named with a command, a registry error text carrying commands, and the post-job step', async () => {
      const c = connection(INJECT);
      const ok = await run('AcrLoginFederatedV1', c, { registries: emu.host, trustedRegistryHosts: emu.host });
      assert.equal(ok.result, 'Succeeded', ok.stdout);
      assertInert(ok, [INJECT_SHOWN]);
      const post = await run('AcrLoginFederatedV1', c, {}, 'post.js', postJobEnv(ok));
      assert.equal(post.result, 'Succeeded', post.stdout);
      assertInert(post, []);
      emu.inject('acr.exchange', { kind: 'status', status: 401, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: `denied ${INJECT} ${CREATOR}${LINE}`, detail: null }] }) }, 1);
      const refused = await run('AcrLoginFederatedV1', c, { registries: emu.host, trustedRegistryHosts: emu.host });
      assert.equal(refused.result, 'Failed', refused.stdout);
      assertInert(refused, [`denied ${INJECT_SHOWN} Mallory`]);
    });

    for (const [payload, shown] of ALL) {
      it(`the inputs registries, trustedRegistryHosts, configScope and tokenAudience ${JSON.stringify(payload)} are echoed defused`, async () => {
        const c = connection('plain');
        for (const inputs of <Record<string, string>[]>[{ registries: payload }, { registries: emu.host, trustedRegistryHosts: payload }, { registries: emu.host, trustedRegistryHosts: emu.host, configScope: payload }, { registries: emu.host, trustedRegistryHosts: emu.host, tokenAudience: payload }]) {
          const r = await run('AcrLoginFederatedV1', c, inputs);
          assert.equal(r.result, 'Failed', r.stdout);
          assertInert(r, [fromPrefix(shown)]);
        }
      });
    }
  });

  describe('GcpAuthFederated@1', () => {
    let conn: ConnectionEnv;
    let proxy: MappingProxy;
    // Google's hosts are reached only through the agent's proxy, which maps their names to the
    // emulator; Azure DevOps (the emulator's own address) bypasses it, as an agent's .proxybypass says.
    const proxyEnv = (): Record<string, string> => ({ AGENT_PROXYURL: proxy.url, AGENT_PROXYBYPASSLIST: JSON.stringify(['^https://127\\.0\\.0\\.1[:/]']) });
    before(async () => {
      proxy = await proxyToEmulator(emu, ['sts.googleapis.com', 'iamcredentials.googleapis.com']);
      conn = connection(INJECT);
      const expected = emu.expectedFederation(conn.id);
      emu.addGcpProvider({ ...GCP_PROVIDER, issuerUri: expected.issuer, allowedAudiences: ['api://AzureADTokenExchange'] });
      emu.addGcpServiceAccount({ email: GCP_SA, members: [gcpPrincipal(GCP_PROVIDER, expected.subject)] });
    });
    after(async () => proxy?.stop());
    const gcp = (inputs: Record<string, string>, entry = 'index.js', env: Record<string, string> = {}) =>
      run('GcpAuthFederatedV1', conn, { workloadIdentityProvider: GCP_PROVIDER_NAME, ...inputs }, entry, { ...proxyEnv(), ...env });
    const googleError = (status: number, message: string, statusName: string) =>
      ({ kind: 'status' as const, status, headers: { 'Content-Type': 'application/json; charset=UTF-8' }, body: JSON.stringify({ error: { code: status, message, status: statusName } }) });

    it('a connection named with a command (in the subject and the principal), and its post-job step', async () => {
      const r = await gcp({ serviceAccount: GCP_SA, projectId: 'contoso-prod', tokenFormat: 'access_token', keepTokenFileFresh: 'false' });
      assert.equal(r.result, 'Succeeded', r.stdout);
      assert.deepEqual([emu.count('gcp.sts.token'), emu.count('gcp.iam.generateAccessToken')], [1, 1], 'Google STS and IAM Credentials, through the proxy');
      assert.ok(r.variables.accessToken?.secret, 'an access token');
      assertInert(r, [INJECT_SHOWN]);
      assert.ok(r.log.split('\n').some((l) => l.includes('principal principal://') && l.includes(INJECT_SHOWN)), r.log);
      const post = await gcp({}, 'post.js', postJobEnv(r));
      assert.equal(post.result, 'Succeeded', post.stdout);
      assertInert(post, []);
      assert.ok(!fs.existsSync(r.variables.GOOGLE_APPLICATION_CREDENTIALS.value), 'the post-job step removed the credentials file');
    });

    it('Google STS error codes and error_description texts carrying commands, after a CR and a LF', async () => {
      const json = { 'Content-Type': 'application/json; charset=utf-8' };
      // invalid_grant about the audience: explained, and Google's words quoted (their first line only).
      emu.inject('gcp.sts.token', { kind: 'status', status: 400, headers: json, body: JSON.stringify({ error: 'invalid_grant', error_description: `The audience in ID Token [api://AzureADTokenExchange] does not match the expected audience. ${INJECT} ${CREATOR}${LINE}` }) }, 1);
      const audience = await gcp({});
      assert.equal(audience.result, 'Failed', audience.stdout);
      assert.match(audience.errors.join('\n'), /allowed audiences do not list/);
      assertInert(audience, [`does not match the expected audience. ${INJECT_SHOWN} Mallory`]);
      assert.ok(!audience.log.includes('/tmp/evil'), 'nothing after the first line break of a service text');
      // An error code of Google's own the task does not know, itself carrying commands.
      emu.inject('gcp.sts.token', { kind: 'status', status: 400, headers: json, body: JSON.stringify({ error: `invalid_request ${INJECT}${LINE}`, error_description: `Bad ${HIDDEN[1][0]}` }) }, 1);
      const odd = await gcp({});
      assert.equal(odd.result, 'Failed', odd.stdout);
      assertInert(odd, [`(invalid_request ${INJECT_SHOWN}\\n##vso%5Btask.setvariable variable=INJECTED]1)`, `Bad ${HIDDEN[1][1]}`]);
      // Google's API error shape ({error: {code, message, status}}) at STS: the message is quoted.
      emu.inject('gcp.sts.token', googleError(403, `Denied ${INJECT} ${CREATOR}${LINE}`, `PERMISSION_DENIED${LINE}`), 1);
      const denied = await gcp({});
      assert.equal(denied.result, 'Failed', denied.stdout);
      assertInert(denied, [`Denied ${INJECT_SHOWN} Mallory`]);
      assert.ok(!denied.log.includes('/tmp/evil'), denied.log);
    });

    it('IAM Credentials error messages and statuses carrying commands, after a CR and a LF', async () => {
      // The getAccessToken denial: explained with its fix, Google's message quoted.
      emu.inject('gcp.iam.generateAccessToken', googleError(403, `Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist). ${INJECT} ${CREATOR}${LINE}`, `PERMISSION_DENIED ${INJECT}${LINE}`), 1);
      const denied = await gcp({ serviceAccount: GCP_SA });
      assert.equal(denied.result, 'Failed', denied.stdout);
      assert.match(denied.errors.join('\n'), /roles\/iam\.workloadIdentityUser/);
      assertInert(denied, [`(or it may not exist). ${INJECT_SHOWN} Mallory`]);
      assert.ok(!denied.log.includes('/tmp/evil'), denied.log);
      // Any other refusal: the message of Google's error shape is quoted, behind a hidden character and before a CR LF.
      emu.inject('gcp.iam.generateAccessToken', googleError(400, `Invalid scope ${HIDDEN[0][0]}\r\n${CREATOR}`, `INVALID_ARGUMENT${LINE}`), 1);
      const invalid = await gcp({ serviceAccount: GCP_SA });
      assert.equal(invalid.result, 'Failed', invalid.stdout);
      assertInert(invalid, [`Invalid scope ${HIDDEN[0][1]}`]);
      assert.ok(!invalid.log.includes('/tmp/evil'), 'nothing after the first line break of a service text');
    });

    for (const [payload, shown] of ALL) {
      it(`the inputs azureSubscription, workloadIdentityProvider, serviceAccount, projectId, accessTokenLifetime, accessTokenScopes, tokenFormat and the booleans ${JSON.stringify(payload)} are echoed defused`, async () => {
        const cases: [Record<string, string>, string][] = [
          [{ connectedServiceNameARM: payload }, fromPrefix(shown)],
          [{ workloadIdentityProvider: payload }, fromPrefix(shown)],
          [{ workloadIdentityProvider: `${GCP_PROVIDER_NAME}/${payload}` }, fromPrefix(shown)],
          [{ serviceAccount: payload }, fromPrefix(shown)],
          [{ projectId: payload }, fromPrefix(shown)],
          [{ accessTokenLifetime: payload }, fromPrefix(shown)],
          [{ accessTokenScopes: payload }, wordFromPrefix(shown)],
          [{ tokenFormat: payload }, fromPrefix(shown)],
          [{ createCredentialsFile: payload }, fromPrefix(shown)],
          [{ keepTokenFileFresh: payload }, fromPrefix(shown)],
        ];
        const connects = proxy.connects.length;
        for (const [inputs, visible] of cases) {
          const r = await gcp(inputs);
          assert.equal(r.result, 'Failed', `${JSON.stringify(inputs)}: ${r.stdout}`);
          assertInert(r, [visible]);
        }
        assert.equal(emu.count('gcp.sts.token') + emu.count('gcp.iam.generateAccessToken'), 0, 'no request to Google with a bad input');
        assert.equal(proxy.connects.length, connects, 'no tunnel to Google either');
      });
    }
  });
});
