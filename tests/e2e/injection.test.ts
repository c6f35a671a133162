/**
 * No logging-command injection: every bundled task, main and post-job step, run with logging
 * commands hidden in what comes from outside (the connection's name and creator, a subscription's
 * name, Entra, AWS STS, ACR, Google STS and IAM Credentials error texts, HashiCorp Vault's error
 * texts, warnings, keys, values and tokens, a post-job step's state, echoed inputs), some
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
import { ConnectionEnv, endpointEnv, EndpointEnv, PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { MappingProxy, proxyToEmulator, startCanary } from '../helpers/connect-proxy';
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
    assert.deepEqual(unintendedOutput(r, e2e.namedVariables), [], 'no command the tasks did not mean');
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

  describe('VaultSecretsFederated@1', () => {
    // Azure DevOps and Vault by their public names, reached only through the agent's proxy, which
    // maps them to the emulator (as in vault-secrets.test.ts).
    const VAULT_HOST = 'vault.fabrikam.com:8200';
    const VAULT = `https://${VAULT_HOST}`;
    const SESSION = 'VSTS_TASKVARIABLE_WORKLOADIDENTITY_VAULT_SESSION';
    const TASK = 'VaultSecretsFederatedV1';
    let proxy: MappingProxy;
    // Each value is unique to this run (the leak scan looks for it whole, and for each long line).
    const tag = crypto.randomBytes(4).toString('hex');
    const PREPEND_KEY = '##vso[task.prependpath]/tmp/evil';
    const VALUES = {
      inline: `v-${tag} ${INJECT}`,
      cr: `c-${tag}\r##vso[task.prependpath]/tmp/evil`,
      multi: `m-${tag}\n##vso[task.setvariable variable=INJECTED]1 m-${tag}\n${HIDDEN[0][0]} m-${tag}\n\u2028##vso[task.prependpath]/tmp/evil m-${tag}\n`,
    };
    const HOSTILE: Record<string, string> = {
      [INJECT]: `k1-${tag}`,
      [CREATOR]: `k2-${tag}`,
      [HIDDEN[1][0]]: `k3-${tag}`,
      [PREPEND_KEY]: `k4-${tag}`,
      [`k${LINE}`]: `k5-${tag}`,
      ...VALUES,
    };

    before(async () => {
      proxy = await proxyToEmulator(emu, [PUBLIC_COLLECTION_HOST, VAULT_HOST]);
      emu.vault.configureJwtAuth({});
      emu.vault.addKvMount({ path: 'secret', version: 2 });
      emu.vault.putSecret('secret', 'ci/db', { password: `pw-${tag}` });
      emu.vault.putSecret('secret', 'ci/hostile', HOSTILE);
      emu.vault.addPolicy('ci-read', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
      for (const v of ['P', 'K', 'CR', 'M', 'ALL']) e2e.namedVariables.add(v);
    });
    after(async () => proxy?.stop());
    afterEach(() => {
      proxy.connects.length = 0;
    });

    /** A HashiCorp Vault connection as the agent hands it; a role bound to its subject unless its settings are refused anyway. */
    function vaultConnection(name = `vault-${crypto.randomBytes(3).toString('hex')}`, parameters: Record<string, string> = {}, url = VAULT): EndpointEnv {
      const id = crypto.randomUUID();
      const role = `ci-${crypto.randomBytes(3).toString('hex')}`;
      const all = { authMount: 'jwt', role, ...parameters };
      emu.addServiceConnection({ id, name, type: 'WorkloadIdentityVault', scheme: 'None', tenantId: '', clientId: '', url: VAULT, parameters: all });
      if (!Object.keys(parameters).length) emu.vault.addJwtRole({ name: role, boundSubject: emu.expectedFederation(id).subject, tokenPolicies: ['ci-read'] });
      return { id, url, scheme: 'None', parameters: all };
    }
    const vault = (c: EndpointEnv | undefined, inputs: Record<string, string>, env: Record<string, string> = {}) =>
      e2e.run({
        task: TASK,
        inputs: { ...(c ? { vaultConnection: c.id } : {}), ...inputs },
        job: { publicHosts: true, tempDirectory: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-inject-')) },
        // As the agent hands a YAML step: connectionType, multilineValues and exportToken at their defaults.
        env: { INPUT_CONNECTIONTYPE: 'vault', INPUT_MULTILINEVALUES: 'file', INPUT_EXPORTTOKEN: 'false', AGENT_PROXYURL: proxy.url, ...(c ? endpointEnv(c) : {}), ...env },
      });
    const post = (r: TaskRun, env: Record<string, string> = {}) =>
      e2e.run({ task: TASK, entry: 'post.js', job: { publicHosts: true, tempDirectory: r.agentTempDirectory }, env: { ...postJobEnv(r), AGENT_PROXYURL: proxy.url, ...env } });
    const vaultRequests = () => emu.requestLog().filter((q) => q.route.startsWith('vault.') || q.route === 'oidctoken').length;
    const vaultError = (status: number, body: object) => ({ kind: 'status' as const, status, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

    // A line break too: the subject is quoted on its line of the log, where only its own neutralisation keeps it one line.
    for (const [payload, shown] of [...ALL, [`n${LINE}`, 'n\\n##vso%5Btask.setvariable variable=INJECTED]1']]) {
      it(`a HashiCorp Vault connection named ${JSON.stringify(payload)} (in the subject claim Vault binds), and its post-job step`, async () => {
        const c = vaultConnection(payload);
        const r = await vault(c, { secrets: 'secret/ci/db password | P' });
        assert.equal(r.result, 'Succeeded', r.stdout);
        assert.equal(r.variables.P.value, `pw-${tag}`);
        assertInert(r, [`Subject (sub):  sc://contoso/web/${shown}`]);
        const p = await post(r);
        assert.equal(p.result, 'Succeeded', p.stdout);
        assert.equal(emu.count('vault.revoke-self'), 1);
        assertInert(p, []);
      });
    }

    it('a refused login of a connection named with commands: the fix command quotes the subject, Vault the role', async () => {
      const r = await vault(vaultConnection(`${INJECT} ${CREATOR}`, { role: 'no-such-role' }), { secrets: 'secret/ci/db password | P' });
      assert.equal(r.result, 'Failed', r.stdout);
      assert.match(r.errors.join('\n'), /has no role 'no-such-role'/);
      assertInert(r, [`bound_subject='sc://contoso/web/${INJECT_SHOWN} ${CREATOR_SHOWN}'`, `sub: sc://contoso/web/${INJECT_SHOWN} ${CREATOR_SHOWN}`]);
    });

    // [entry, what the message shows of it (the entry quoted, and the part refused), whether it passes the input's checks and reaches Vault]
    const ENTRIES: [string, string, boolean][] = [
      ['secret/ci/db password | x ##vso[task.setvariable variable=INJECTED]1', `line 1 ('secret/ci/db password | ${INJECT_SHOWN}'): '${INJECT_SHOWN}' is not one variable name`, false],
      ['secret/ci/x ##vso[task.setvariable variable=INJECTED]1 | P', `line 1 ('secret/ci/${INJECT_SHOWN} | P'): has 3 words`, false],
      ['secret/ci/##vso[task.setvariable%20variable=INJECTED]x password | P', "line 1 ('secret/ci/##vso%5Btask.setvariable%20variable=INJECTED]x password | P'): 'secret/ci/##vso%5Btask.setvariable%20variable=INJECTED]x' is not a secret's path", false],
      ['secret/ci/db password | ##vso[task.prependpath]/tmp/evil', "line 1 ('secret/ci/db password | ##vso%5Btask.prependpath]/tmp/evil'): '##vso%5Btask.prependpath]/tmp/evil' is not a valid variable name", false],
      ['secret/ci/db pass;##vso[task.prependpath]/tmp/evil | P', "line 1 ('##vso%5Btask.prependpath]/tmp/evil | P'): '##vso%5Btask.prependpath]/tmp/evil' is not a secret's path", false],
      ['secret/ci/db password | P\rsecret/ci/db ##vso[task.setvariable variable=INJECTED]1', "line 2 ('secret/ci/db ##vso%5Btask.setvariable variable=INJECTED]1'): has 3 words", false],
      ['secret/ci/db password | P%0A##vso[task.prependpath]/tmp/evil', "line 1 ('secret/ci/db password | P%0A##vso%5Btask.prependpath]/tmp/evil'): 'P%0A##vso%5Btask.prependpath]/tmp/evil' is not a valid variable name", false],
      ['secret/ci/db password | P\u2028##vso[task.prependpath]/tmp/evil', "line 1 ('secret/ci/db password | P\\u{2028}##vso%5Btask.prependpath]/tmp/evil'): 'P\\u{2028}##vso%5Btask.prependpath]/tmp/evil' is not one variable name", false],
      ['secret/ci/db password | P\r\ntoo/many | words | here%0A##vso[task.prependpath]/tmp/evil', "line 2 ('too/many | words | here%0A##vso%5Btask.prependpath]/tmp/evil'): has more than one |", false],
      [`secret/ci/db password | P${HIDDEN[1][0]}`, `line 1 ('secret/ci/db password | P${HIDDEN[1][1]}'): 'P${HIDDEN[1][1]}' is not a valid variable name`, false],
      [`secret/ci/db ${HIDDEN[0][0]} | P`, `line 1 ('secret/ci/db ${HIDDEN[0][1]} | P'): has 3 words`, false],
      [`secret/ci/db password | ${HIDDEN[3][0]}`, "line 1 ('secret/ci/db password | \\u{FEFF}##%5Bgroup]forged'): '##%5Bgroup]forged' is not a valid variable name", false],
      // U+2029 is white space to the split: a key the input's checks accept, which the secret does not have.
      ['secret/ci/db\u2029##vso[task.prependpath]/tmp/evil | P', "Line 1 ('secret/ci/db\\u{2029}##vso%5Btask.prependpath]/tmp/evil | P'): the secret secret/data/ci/db has no key '##vso%5Btask.prependpath]/tmp/evil'", true],
    ];
    for (const [entry, shown, reaches] of ENTRIES) {
      it(`the secrets entry ${JSON.stringify(entry)} is refused, quoted defused${reaches ? '' : ', before any request'}`, async () => {
        const r = await vault(vaultConnection(), { secrets: entry });
        assert.equal(r.result, 'Failed', r.stdout);
        assertInert(r, [shown]);
        assert.equal(r.variables.P, undefined);
        if (!reaches) assert.equal(vaultRequests(), 0, 'no idToken and no Vault request with a bad entry');
      });
    }

    it('a command after a CR in secrets starts a line of its own, which starts with # and so is a comment: skipped, never printed', async () => {
      const r = await vault(vaultConnection(), { secrets: `secret/ci/db password | P\r${INJECT.slice(2)}\r${HIDDEN[3][0]}` });
      assert.equal(r.result, 'Succeeded', r.stdout);
      assert.equal(r.variables.P.value, `pw-${tag}`);
      assertInert(r, ['P (secret) = secret/data/ci/db key password']);
      await post(r);
    });

    it('the keys of a secret carrying commands: listed defused when a key is missing, quoted defused when one is taken', async () => {
      const c = vaultConnection();
      const missing = await vault(c, { secrets: 'secret/ci/hostile nokey | P' });
      assert.equal(missing.result, 'Failed', missing.stdout);
      assert.match(missing.errors.join('\n'), /the secret secret\/data\/ci\/hostile has no key 'nokey'; its keys: /);
      assertInert(missing, [`its keys: ${INJECT_SHOWN}, ${CREATOR_SHOWN}, ${HIDDEN[1][1]}, ##vso%5Btask.prependpath]/tmp/evil, k\\n##vso%5Btask.setvariable variable=INJECTED]1, inline, cr, multi.`]);
      const taken = await vault(c, { secrets: `secret/ci/hostile ${PREPEND_KEY} | K` });
      assert.equal(taken.result, 'Succeeded', taken.stdout);
      assert.equal(taken.variables.K.value, `k4-${tag}`);
      assertInert(taken, ['K (secret) = secret/data/ci/hostile key ##vso%5Btask.prependpath]/tmp/evil']);
      await post(taken);
    });

    /**
     * The value a variable is set to, as the agent reads it: one task.setvariable command whose line
     * starts with it, its data everything after the first ']' (properties escape theirs), unescaped
     * as the agent does; characters the agent's match ignores are kept in data.
     */
    function setOnce(r: TaskRun, name: string): string {
      const set = r.commands.filter((c) => c.name === 'task.setvariable' && c.properties.variable === name);
      assert.equal(set.length, 1, `one task.setvariable of ${name}`);
      const line = set[0].line;
      assert.ok(line.startsWith(`##vso[task.setvariable variable=${name};`), line);
      return line.slice(line.indexOf(']') + 1).replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%5D/g, ']').replace(/%3B/g, ';').replace(/%AZP25/g, '%');
    }

    it('values carrying commands, after a CR, a LF and U+2028 (multilineValues file): secret variables whose data task-lib escapes, multi-line ones in files; every line masked', async () => {
      const c = vaultConnection();
      const r = await vault(c, { secrets: `secret/ci/hostile inline | P\nsecret/ci/hostile cr | CR\nsecret/ci/hostile multi | M\nsecret/ci/hostile | ALL` });
      assert.equal(r.result, 'Succeeded', r.stdout);
      assert.deepEqual([setOnce(r, 'P'), r.variables.P.secret], [VALUES.inline, true]);
      assert.deepEqual([JSON.parse(setOnce(r, 'ALL')), r.variables.ALL.secret], [HOSTILE, true]);
      for (const [name, value] of [['CR', VALUES.cr], ['M', VALUES.multi]]) {
        const file = setOnce(r, name);
        assert.equal(r.variables[name].secret, false, 'a path');
        assert.ok(file.startsWith(r.agentTempDirectory!), file);
        assert.equal(fs.readFileSync(file, 'utf8'), value);
      }
      // Each line whole, as the data of a task.setsecret command (the characters the agent's match ignores kept).
      const masked = r.stdout.split('\n').filter((l) => l.startsWith('##vso[task.setsecret]')).map((l) => l.slice(21));
      for (const line of [VALUES.inline, ...VALUES.cr.split('\r'), ...VALUES.multi.split('\n').filter(Boolean)]) assert.ok(masked.includes(line), `masked: ${JSON.stringify(line)}`);
      assertInert(r, ['P (secret) = secret/data/ci/hostile key inline', 'M = the path of a 0600 file holding secret/data/ci/hostile key multi']);
      const p = await post(r);
      assert.equal(p.result, 'Succeeded', p.stdout);
      assert.equal(fs.existsSync(r.variables.M.value), false, 'removed');
      assertInert(p, []);
    });

    it('the same values with multilineValues variable: one setvariable line each, its line breaks escaped; SYSTEM_UNSAFEALLOWMULTILINESECRET first', async () => {
      const r = await vault(vaultConnection(), { secrets: `secret/ci/hostile inline | P\nsecret/ci/hostile cr | CR\nsecret/ci/hostile multi | M`, multilineValues: 'variable' });
      assert.equal(r.result, 'Succeeded', r.stdout);
      for (const [name, value] of [['P', VALUES.inline], ['CR', VALUES.cr], ['M', VALUES.multi]]) {
        assert.deepEqual([setOnce(r, name), r.variables[name].secret], [value, true]);
      }
      assert.ok(r.stdout.includes(`m-${tag}%0A##vso[task.setvariable variable=INJECTED]1 m-${tag}%0A`), 'the line breaks of M written as %0A');
      assert.ok(r.stdout.includes(`c-${tag}%0D##vso[task.prependpath]`), 'the CR of CR written as %0D');
      const knob = r.commands.findIndex((x) => x.name === 'task.setvariable' && x.properties.variable === 'SYSTEM_UNSAFEALLOWMULTILINESECRET');
      assert.ok(knob >= 0 && knob < r.commands.findIndex((x) => x.name === 'task.setvariable' && x.properties.variable === 'CR'));
      assertInert(r, ['M (secret) = secret/data/ci/hostile key multi']);
      await post(r);
    });

    it('Vault\'s error texts carrying commands, after a CR and a LF: at the login (a known refusal and an unknown one), the mount lookup and the read', async () => {
      const c = vaultConnection();
      const secrets = 'secret/ci/db password | P';
      emu.inject('vault.login', vaultError(400, { errors: [`role "ci" could not be found ${INJECT} ${CREATOR}${LINE}`] }));
      const role = await vault(c, { secrets });
      assert.equal(role.result, 'Failed', role.stdout);
      assert.match(role.errors.join('\n'), /has no role/);
      // Vault's white space, line breaks too, read as one space: the whole text is quoted, on one line.
      assertInert(role, [`Vault said: role "ci" could not be found ${INJECT_SHOWN} Mallory ##vso%5Btask.prependpath]/tmp/evil ##vso%5Btask.setvariable variable=INJECTED]1`]);

      emu.inject('vault.login', vaultError(400, { errors: [`Odd ${HIDDEN[0][0]}`, HIDDEN[2][0]] }));
      const odd = await vault(c, { secrets });
      assert.equal(odd.result, 'Failed', odd.stdout);
      assertInert(odd, [`Odd ${HIDDEN[0][1]}`]);

      emu.inject('vault.mounts', vaultError(403, { errors: [`1 error occurred:\n\t* permission denied ${INJECT}\r${CREATOR}\n\n`] }));
      const mounts = await vault(c, { secrets });
      assert.equal(mounts.result, 'Failed', mounts.stdout);
      assertInert(mounts, [`Vault said: 1 error occurred: * permission denied ${INJECT_SHOWN} Mallory ##vso%5Btask.prependpath]/tmp/evil`]);

      emu.inject('vault.read', vaultError(403, { errors: [`permission denied ${HIDDEN[1][0]}${LINE}`] }));
      const read = await vault(c, { secrets });
      assert.equal(read.result, 'Failed', read.stdout);
      assertInert(read, [`Vault said: permission denied ${HIDDEN[1][1]} ##vso%5Btask.setvariable variable=INJECTED]1`]);

      emu.inject('vault.read', vaultError(418, { errors: [`teapot ${INJECT}${LINE}`] }));
      const other = await vault(c, { secrets });
      assert.equal(other.result, 'Failed', other.stdout);
      assertInert(other, [`teapot ${INJECT_SHOWN}`]);
      for (const r of [role, odd, mounts, read, other]) assert.ok(!r.log.includes('/tmp/evil') || r.log.includes('##vso%5Btask.prependpath]/tmp/evil'), r.log);
    });

    it('Vault\'s warnings carrying commands after a CR and a LF (a 404 of a KV version 2 mount): quoted defused, each line break visible', async () => {
      emu.inject('vault.read', vaultError(404, { errors: [], warnings: [`Invalid path for a versioned K/V secrets engine. ${INJECT}${LINE}`, CREATOR, HIDDEN[3][0]] }));
      const r = await vault(vaultConnection(), { secrets: 'secret/ci/db password | P' });
      assert.equal(r.result, 'Failed', r.stdout);
      assert.match(r.errors.join('\n'), /is not one of its data paths/);
      assertInert(r, [`Vault said: Invalid path for a versioned K/V secrets engine. ${INJECT_SHOWN}\\n##vso%5Btask.setvariable variable=INJECTED]1 ${CREATOR_SHOWN} ${HIDDEN[3][1]}`]);
    });

    for (const [payload, shown] of ALL) {
      it(`the role, namespace, auth method and URL of a HashiCorp Vault connection ${JSON.stringify(payload)} are refused, quoted defused, before any request`, async () => {
        for (const c of [vaultConnection(undefined, { role: payload }), vaultConnection(undefined, { namespace: payload }), vaultConnection(undefined, { authMount: payload }), vaultConnection(undefined, {}, `${VAULT}/${payload}`)]) {
          const r = await vault(c, { secrets: 'secret/ci/db password | P' });
          assert.equal(r.result, 'Failed', `${JSON.stringify(c.parameters)} ${c.url}: ${r.stdout}`);
          assert.match(r.errors.join('\n'), new RegExp(`service connection '${c.id}'`));
          assertInert(r, [fromPrefix(shown)]);
        }
        assert.equal(vaultRequests(), 0, 'no idToken and no Vault request');
        assert.equal(proxy.connects.length, 0, 'no tunnel either');
      });

      it(`the inputs connectionType, vaultAddress, role, namespace, authMount, multilineValues and exportToken ${JSON.stringify(payload)} are echoed defused, before any request`, async () => {
        const pipeline = { connectionType: 'pipeline', vaultAddress: VAULT, secrets: 'secret/ci/db password | P' };
        for (const inputs of <Record<string, string>[]>[{ connectionType: payload }, { vaultAddress: payload }, { vaultAddress: `${VAULT}/${payload}` }, { role: payload }, { namespace: payload }, { authMount: payload }, { multilineValues: payload }, { exportToken: payload }]) {
          const r = await vault(undefined, { ...pipeline, ...inputs });
          assert.equal(r.result, 'Failed', `${JSON.stringify(inputs)}: ${r.stdout}`);
          assertInert(r, [fromPrefix(shown)]);
        }
        assert.equal(vaultRequests(), 0, 'no idToken and no Vault request');
      });
    }

    it('a Vault token carrying commands (Vault answering the login with it): masked, never printed; a role, accessor and policies carrying commands quoted defused; the post-job step too', async () => {
      const token = `hvs.${tag}${INJECT}`;
      const login = (client_token: string) => vaultError(200, { auth: { client_token, accessor: `acc-${tag} ${CREATOR}`, policies: [`ci ${INJECT}`], token_policies: [`ci ${INJECT}`], metadata: { role: `r ${HIDDEN[1][0]}` }, lease_duration: 600, renewable: true } });
      e2e.extraSecrets.push(token);
      emu.inject('vault.login', login(token));
      const r = await vault(vaultConnection(), { secrets: 'secret/ci/db password | P' });
      // Vault does not know the token: the read is refused, and the token kept for the post-job step.
      assert.equal(r.result, 'Failed', r.stdout);
      assert.ok(r.secrets.includes(token), 'the whole token masked: the data of one task.setsecret');
      assert.equal(r.taskVariables['WorkloadIdentity.Vault.Token'], token);
      assertInert(r, [`Logged in to Vault as role r ${HIDDEN[1][1]} with policies ci ${INJECT_SHOWN};`]);
      const p = await post(r);
      assert.equal(emu.count('vault.revoke-self'), 1);
      assert.equal(p.result, 'SucceededWithIssues', p.stdout);
      assertInert(p, [`vault token revoke -accessor acc-${tag} ${CREATOR_SHOWN}`]);

      // A token with a CR in it cannot be masked (the agent masks line by line): the step fails, printing none of it.
      const cr = `hvs.${tag}\r##vso[task.setvariable variable=INJECTED]1`;
      e2e.extraSecrets.push(cr);
      emu.inject('vault.login', login(cr));
      const refused = await vault(vaultConnection(), { secrets: 'secret/ci/db password | P' });
      assert.equal(refused.result, 'Failed', refused.stdout);
      assert.ok(!refused.stdout.includes(`hvs.${tag}`), refused.stdout);
      assertInert(refused, []);
    });

    it('the post-job step with a session state that is not https, not JSON, or carrying commands sends the token nowhere and prints none of it raw', async () => {
      const canary = await startCanary();
      try {
        const r = await vault(vaultConnection(), { secrets: 'secret/ci/db password | P' });
        assert.equal(r.result, 'Succeeded', r.stdout);
        const token = r.taskVariables['WorkloadIdentity.Vault.Token'];
        const http = canary.url.replace(/^https:/, 'http:');
        const sessions = [
          JSON.stringify({ address: http }),
          JSON.stringify({ address: `http://${VAULT_HOST}` }),
          JSON.stringify({ address: `HTTPS://${canary.host}` }),
          JSON.stringify({ address: ` https://${canary.host}` }),
          JSON.stringify({ address: `${http} ${INJECT}\r${CREATOR}${LINE}` }),
          JSON.stringify({ address: [`https://${canary.host}`] }),
          `${INJECT}\r${CREATOR}${LINE} ${HIDDEN[3][0]}`,
          `{"address": "https://${canary.host}"`,
        ];
        for (const session of sessions) {
          const p = await post(r, { [SESSION]: session });
          // Reported, not hidden: the token is left to expire, and the step says so.
          assert.equal(p.result, 'SucceededWithIssues', `${session}: ${p.stdout}`);
          assert.match(p.warnings.join('\n'), /The job's Vault token was not revoked: the main step's record of the Vault it came from is missing or unreadable, so the token is sent nowhere/);
          assertInert(p, []);
          // Only the debug line of the task variable (task-lib's format, its data escaped) holds the state as it is.
          for (const line of p.stdout.split('\n').filter((l) => /INJECTED|evil|forged/.test(l))) assert.match(line, /^##vso\[task\.debug\]task variable: WorkloadIdentity\.Vault\.Session=/, line);
        }
        assert.equal(emu.count('vault.revoke-self'), 0, 'no revoke anywhere');
        assert.equal(canary.connections(), 0, 'nothing reached the canary');
        assert.ok(proxy.connects.every((x) => x.authority === `${PUBLIC_COLLECTION_HOST}:443` || x.authority === VAULT_HOST), JSON.stringify(proxy.connects));
        assert.ok(emu.vault.isValid(token), 'the token was sent nowhere');

        // The Vault address of the main step, with hostile details beside it: a refused revoke quotes them defused.
        emu.inject('vault.revoke-self', vaultError(403, { errors: [`permission denied ${INJECT}${LINE}`] }));
        const state = JSON.parse(r.taskVariables['WorkloadIdentity.Vault.Session']) as Record<string, string>;
        const hostile = await post(r, { [SESSION]: JSON.stringify({ ...state, expiresOn: `2999-01-01T00:00:00Z${LINE}`, accessor: `acc ${CREATOR}${LINE}` }) });
        assert.equal(hostile.result, 'SucceededWithIssues', hostile.stdout);
        assertInert(hostile, [`HTTP 403: permission denied ${INJECT_SHOWN}`, `until 2999-01-01T00:00:00Z\\n##vso%5Btask.setvariable variable=INJECTED]1; to revoke it now: vault token revoke -accessor acc ${CREATOR_SHOWN}\\n##vso%5Btask.setvariable variable=INJECTED]1.`]);
        // A namespace that would split the request's headers: not a namespace, so no request is sent at all.
        const split = await post(r, { [SESSION]: JSON.stringify({ ...state, namespace: `team-a\r\nX-Injected: ${INJECT}` }) });
        assert.equal(split.result, 'SucceededWithIssues', split.stdout);
        assert.match(split.warnings.join('\n'), /record of the Vault it came from is missing or unreadable/);
        assertInert(split, []);
        assert.equal(emu.count('vault.revoke-self'), 1, 'only the revoke at the main step\'s address');
        assert.ok(emu.vault.isValid(token));
        // The main step's own state: revoked there.
        const own = await post(r);
        assert.equal(own.result, 'Succeeded', own.stdout);
        assert.equal(emu.vault.isValid(token), false);
      } finally {
        await canary.stop();
      }
    });
  });
});
