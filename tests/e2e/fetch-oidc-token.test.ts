/**
 * FetchOidcToken@1 end to end: the bundled task, run as the agent runs it, against the emulator
 * over HTTPS. Every run's output is scanned for every token the emulator issued.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { startEmulator, Emulator } from '../emulator/index';
import { connectionEnv, ConnectionEnv, jobEnv, JobOptions } from '../helpers/agent';
import { addFederatedConnection, E2eRuns, postJobEnv, TENANT, wif } from '../helpers/e2e';
import { runTaskProcess, TaskRun } from '../helpers/task-process';
import { startCanary } from '../helpers/connect-proxy';

const ARM = 'https://management.azure.com/.default';

describe('E2E FetchOidcToken@1 (bundled task against the emulator)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  const e2e = new E2eRuns(() => emu);
  const extraSecrets = e2e.extraSecrets;

  before(async () => {
    emu = await startEmulator();
  });
  after(async () => {
    await emu?.stop();
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
  });

  const federated = (name?: string, fic?: Parameters<typeof addFederatedConnection>[2]) => addFederatedConnection(emu, name, fic);

  function run(conn: ConnectionEnv, inputs: Record<string, string> = {}, job: JobOptions = {}, extraEnv: Record<string, string> = {}, entry = 'index.js', node?: string): Promise<TaskRun> {
    return e2e.run({ task: 'FetchOidcTokenV1', conn, inputs, job, env: extraEnv, entry, node });
  }

  it('federation: one request, idToken as a secret output, claims logged', async () => {
    const c = federated('prod-deploy');
    const r = await run(wif(c));
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.count('oidctoken'), 1);
    assert.equal(emu.count('entra.token'), 0);
    const id = r.variables.idToken;
    assert.ok(id?.secret && id.output);
    assert.ok(r.secrets.includes(id.value), 'masked with task.setsecret');
    assert.ok(emu.issuedTokens().includes(id.value));
    assert.ok(r.stdout.indexOf('##vso[task.setsecret]') < r.stdout.indexOf('##vso[task.setvariable variable=idToken'), 'masked before it is set');
    assert.match(r.log, new RegExp(`Subject \\(sub\\): {2}${c.expected.subject.replace(/[/.]/g, '\\$&')}`));
    assert.match(r.log, /Audience \(aud\): api:\/\/AzureADTokenExchange/);
    assert.equal(r.variables.tenantId.value, TENANT);
    assert.equal(r.variables.servicePrincipalId.value, c.clientId);
    assert.ok(new Date(r.variables.idTokenExpiresOn.value).getTime() > Date.now());
  });

  it('runs on Node 24, as the agent\'s Node24 handler does', async function () {
    this.timeout(120_000);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const node24 = (require('../../../scripts/node24.cjs') as { ensureNode24(): string }).ensureNode24();
    const c = federated();
    const r = await run(wif(c), { accessTokenScope: ARM, exportAzureIdentityEnv: 'true' }, {}, {}, 'index.js', node24);
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('entra.token')], [1, 1]);
    assert.ok(r.variables.accessToken?.secret);
    const file = r.variables.AZURE_FEDERATED_TOKEN_FILE.value;
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    // The post-job step on Node 24 too: the refresher stopped, the file gone.
    const state = postJobEnv(r);
    const post = await run(wif(c), {}, {}, state, 'post.js', node24);
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.match(post.log, /Stopped the token refresher/);
    assert.ok(!fs.existsSync(file));
  });

  it('federation without System.OidcRequestUri builds the URL from the collection, project, plan and job', async () => {
    const c = federated();
    const r = await run(wif(c), {}, { withoutOidcRequestUri: true });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.count('oidctoken'), 1);
  });

  it('uses the idToken the agent supplied with the endpoint, with no request', async () => {
    const c = federated();
    // A token the emulator issued for this connection, handed over as the agent would.
    const first = await run(wif(c));
    const supplied = first.variables.idToken.value;
    emu.resetCounts();
    const r = await run({ ...wif(c), parameters: { idToken: supplied } });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.count('oidctoken'), 0);
    assert.equal(r.variables.idToken.value, supplied);
  });

  it('accessTokenScope: exactly 2 requests (idToken, Entra), no discovery', async () => {
    const c = federated();
    const r = await run(wif(c), { accessTokenScope: ARM });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.deepEqual([emu.count('oidctoken'), emu.count('entra.token'), emu.count('entra.openid'), emu.count('entra.discovery')], [1, 1, 0, 0]);
    const at = r.variables.accessToken;
    assert.ok(at?.secret && emu.issuedTokens().includes(at.value));
    const claims = JSON.parse(Buffer.from(at.value.split('.')[1], 'base64url').toString());
    assert.equal(claims.aud, 'https://management.azure.com');
    assert.equal(emu.lastTokenRequest()?.assertionKind, 'federated');
  });

  it('accessTokenScope for the Azure DevOps REST API (a GUID resource)', async () => {
    const c = federated();
    const r = await run(wif(c), { accessTokenScope: '499b84ac-1321-427f-aa17-267ca6975798/.default' });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.lastTokenRequest()?.scope, '499b84ac-1321-427f-aa17-267ca6975798/.default');
  });

  it('client secret: access token, and a warning that says how to convert', async () => {
    const id = crypto.randomUUID();
    const clientId = crypto.randomUUID();
    const secret = `s3cr3t~${crypto.randomBytes(12).toString('base64url')}`;
    extraSecrets.push(secret);
    emu.addApp({ clientId, tenantId: TENANT, secrets: [{ value: secret, endDateTime: new Date(Date.now() + 86400_000 * 90).toISOString() }] });
    const r = await run({ id, scheme: 'ServicePrincipal', authenticationType: 'spnKey', tenantId: TENANT, clientId, secret }, { accessTokenScope: ARM });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.lastTokenRequest()?.assertionKind, 'secret');
    assert.ok(r.variables.accessToken?.secret);
    assert.ok(r.warnings.some((w) => /Convert it to workload identity federation/.test(w)), r.stdout);
    assert.equal(r.variables.idToken, undefined);
  });

  it('certificate: a signed client assertion', async () => {
    const id = crypto.randomUUID();
    const clientId = crypto.randomUUID();
    const cert = emu.makeClientCertificate('wit-e2e');
    emu.addApp({ clientId, tenantId: TENANT, certificates: [{ certificatePem: cert.certificatePem }] });
    const r = await run({ id, scheme: 'ServicePrincipal', authenticationType: 'spnCertificate', tenantId: TENANT, clientId, certificatePem: cert.certificatePem + cert.privateKeyPem }, { accessTokenScope: ARM });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.lastTokenRequest()?.assertionKind, 'certificate');
    assert.ok(r.variables.accessToken?.secret);
  });

  it('managed identity through msal-node (IMDS endpoint override)', async () => {
    const id = crypto.randomUUID();
    const miClientId = crypto.randomUUID();
    emu.addManagedIdentity({ clientId: miClientId, tenantId: TENANT });
    const r = await run({ id, scheme: 'ManagedServiceIdentity', tenantId: TENANT, msiClientId: miClientId }, { accessTokenScope: ARM }, {}, { AZURE_POD_IDENTITY_AUTHORITY_HOST: emu.url });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.count('imds'), 1);
    assert.ok(r.variables.accessToken?.secret && emu.issuedTokens().includes(r.variables.accessToken.value));
  });

  for (const variable of ['IDENTITY_ENDPOINT', 'MSI_ENDPOINT', 'AZURE_POD_IDENTITY_AUTHORITY_HOST']) {
    it(`managed identity: a pipeline variable ${variable} cannot move the identity endpoint (the canary sees nothing)`, async () => {
      const canary = await startCanary();
      try {
        const id = crypto.randomUUID();
        const miClientId = crypto.randomUUID();
        emu.addManagedIdentity({ clientId: miClientId, tenantId: TENANT });
        // As the agent passes a pipeline variable: in the environment, and its name in VSTS_PUBLIC_VARIABLES.
        const r = await run({ id, scheme: 'ManagedServiceIdentity', tenantId: TENANT, msiClientId: miClientId }, { accessTokenScope: ARM }, {}, {
          AZURE_POD_IDENTITY_AUTHORITY_HOST: emu.url,
          [variable]: `${canary.url}/metadata/identity/oauth2/token`,
          IDENTITY_HEADER: 'h',
          VSTS_PUBLIC_VARIABLES: JSON.stringify([variable.toLowerCase().replace(/_/g, '.')]),
        });
        assert.equal(r.result, 'Failed', r.stdout);
        assert.equal(canary.connections(), 0, 'the canary was reached');
        assert.equal(emu.count('imds'), 0);
        const msg = r.errors.join('\n');
        assert.ok(msg.includes(`pipeline variable ${variable.toLowerCase().replace(/_/g, '.')}`), msg);
        assert.match(msg, /Fix: Remove the pipeline variable/);
      } finally {
        await canary.stop();
      }
    });
  }

  it('subject mismatch (AADSTS700213): the token\'s iss/sub and the expected ones side by side', async () => {
    const c = federated('renamed-conn', (e) => ({ issuer: e.issuer, subject: 'sc://contoso/web/old-name' }));
    const r = await run(wif(c), { accessTokenScope: ARM });
    assert.equal(r.result, 'Failed');
    const msg = r.errors.join('\n');
    assert.match(msg, /AADSTS700213: no federated credential matches the subject/);
    assert.ok(msg.includes(`Presented (the idToken from Azure DevOps):\n    issuer:   ${c.expected.issuer}\n    subject:  ${c.expected.subject}\n`), msg);
    // Azure DevOps expects what it presents: said in one sentence, not as a second identical block.
    assert.ok(msg.includes('The service connection in Azure DevOps expects this same issuer and subject: Azure DevOps is consistent, so the mismatch is in the federated credential in Microsoft Entra ID, not in Azure DevOps.'), msg);
    assert.doesNotMatch(msg, /Expected \(the service connection in Azure DevOps\):/);
    assert.ok(msg.includes(`The federated credential in Microsoft Entra ID must carry exactly the subject Azure DevOps presents (case-sensitive): ${c.expected.subject}`), msg);
    assert.match(msg, /Fix: Set the subject of the federated credential .* to exactly the subject Azure DevOps presents/);
    assert.equal(emu.count('serviceendpoint'), 1, 'the expected subject comes from Azure DevOps');
    assert.equal(emu.count('entra.token'), 1, 'configuration errors are not retried');
  });

  it('the vstoken issuer\'s retirement note: for a public cloud connection, not for a US Government one', async () => {
    const c = federated();
    const pub = await run(wif(c));
    assert.equal(pub.result, 'Succeeded', pub.stdout);
    assert.match(pub.log, /Note: the connection uses the vstoken\.dev\.azure\.com issuer, which Azure DevOps retires on 2027-07-01 for Azure public cloud connections/);
    const gov = await run(wif(c), {}, {}, { [`ENDPOINT_DATA_${c.id}_ENVIRONMENT`]: 'AzureUSGovernment' });
    assert.equal(gov.result, 'Succeeded', gov.stdout);
    assert.match(gov.log, /cloud AzureUSGovernment/);
    assert.doesNotMatch(gov.stdout, /2027|retire/);
  });

  it('expired assertion (AADSTS700024)', async () => {
    const c = federated();
    emu.idTokenLifetimeSeconds = -120;
    const r = await run(wif(c), { accessTokenScope: ARM });
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), /AADSTS700024.*\n.*idToken had expired/);
  });

  it('expired secret (AADSTS7000222): advises converting to federation', async () => {
    const id = crypto.randomUUID();
    const clientId = crypto.randomUUID();
    const secret = `old~${crypto.randomBytes(12).toString('base64url')}`;
    extraSecrets.push(secret);
    emu.addApp({ clientId, tenantId: TENANT, secrets: [{ value: secret, endDateTime: '2025-01-01T00:00:00Z' }] });
    const r = await run({ id, scheme: 'ServicePrincipal', authenticationType: 'spnKey', tenantId: TENANT, clientId, secret }, { accessTokenScope: ARM });
    assert.equal(r.result, 'Failed');
    const msg = r.errors.join('\n');
    assert.match(msg, /AADSTS7000222: the client secret has expired/);
    assert.match(msg, /Convert the service connection to workload identity federation/);
  });

  it('HTTP 203 with an HTML sign-in page', async () => {
    const c = federated();
    emu.inject('oidctoken', { kind: 'html203' });
    const r = await run(wif(c));
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), /answered HTTP 203 .* with an HTML sign-in page/);
    assert.equal(emu.count('oidctoken'), 1);
  });

  it('null oidcToken: a clear error, not a crash', async () => {
    const c = federated();
    emu.inject('oidctoken', { kind: 'null-oidc' });
    const r = await run(wif(c));
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), /answered without an idToken \("oidcToken": null\)/);
    assert.doesNotMatch(r.stdout + r.stderr, /Cannot read properties/);
  });

  it('invalid JSON: says so without echoing the body', async () => {
    const c = federated();
    emu.inject('oidctoken', { kind: 'invalid-json' }, Infinity);
    const r = await run(wif(c));
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), /not valid JSON/);
  });

  it('one 503, then success: exactly 2 requests', async () => {
    const c = federated();
    emu.inject('oidctoken', { kind: 'status', status: 503 });
    const r = await run(wif(c));
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.count('oidctoken'), 2);
    assert.match(r.log, /HTTP 503; retrying in/);
  });

  it('429 with Retry-After on the Entra token endpoint is honoured', async () => {
    const c = federated();
    emu.inject('entra.token', { kind: '429', retryAfterSeconds: 1 });
    const r = await run(wif(c), { accessTokenScope: ARM });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.count('entra.token'), 2);
    assert.match(r.log, /HTTP 429; retrying in 1\.0 s/);
  });

  it('a 64 MiB answer fails at once with what, cause and fix, not retried, chunked or announced', async () => {
    const c = federated();
    for (const contentLength of [false, true]) {
      emu.resetCounts();
      emu.inject('oidctoken', { kind: 'huge-body', contentLength }, Infinity);
      const started = Date.now();
      const r = await run(wif(c));
      const took = Date.now() - started;
      emu.clearFaults();
      const errors = r.errors.join('\n');
      assert.equal(r.result, 'Failed', r.stdout);
      assert.match(errors, /the Azure DevOps Oidctoken API at 127\.0\.0\.1:\d+ answered with more than 4 MiB/);
      if (contentLength) assert.match(errors, /it announced 64 MiB/);
      assert.match(errors, /Likely cause: .*captive portal/);
      assert.doesNotMatch(r.stdout + r.stderr, /failed unexpectedly|heap|Invalid string length/i);
      assert.equal(emu.count('oidctoken'), 1, 'not retried');
      // A process start plus one request; reading 64 MiB would take far longer on this machine.
      assert.ok(took < 5000, `took ${took} ms`);
    }
  });

  it('a Retry-After longer than the task waits is reported as such, not as failed retries', async () => {
    const c = federated();
    emu.inject('entra.token', { kind: '429', retryAfterSeconds: 3600 }, Infinity);
    const r = await run(wif(c), { accessTokenScope: ARM });
    assert.equal(r.result, 'Failed', r.stdout);
    assert.equal(emu.count('entra.token'), 1);
    const errors = r.errors.join('\n');
    assert.match(errors, /answered HTTP 429 .* asked to wait 3600 s \(about 60 min\) before trying again \(Retry-After\), longer than the task waits \(60 s\)/);
    assert.doesNotMatch(errors, /kept failing after retries/);
  });

  it('a connection reset is retried', async () => {
    const c = federated();
    emu.inject('oidctoken', { kind: 'reset' });
    const r = await run(wif(c));
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.count('oidctoken'), 2);
  });

  it('a hang is ended by the timeout, inside its bound', async () => {
    const c = federated();
    emu.inject('oidctoken', { kind: 'hang' }, Infinity);
    const started = Date.now();
    const r = await run(wif(c), {}, {}, { WORKLOADIDENTITY_HTTPTIMEOUTSECONDS: '1', WORKLOADIDENTITY_HTTPRETRIES: '1' });
    const took = Date.now() - started;
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), /did not answer within 1 s \(2 attempts\)/);
    assert.equal(emu.count('oidctoken'), 2);
    // 2 attempts of 1 s, one backoff of at most 0.5 s, and the process start.
    assert.ok(took < 4500, `took ${took} ms`);
  });

  it('bad inputs: each message names the input', async () => {
    const c = federated();
    const cases: [Partial<ConnectionEnv> | null, Record<string, string>, RegExp][] = [
      [null, {}, /Input 'azureSubscription': no service connection is given/],
      [{ scheme: 'UsernamePassword' as never }, {}, /Input 'azureSubscription': .*'UsernamePassword'/],
      [{}, { accessTokenScope: 'https://management.azure.com/' }, /Input 'accessTokenScope': .*not a valid scope.*Did you mean 'https:\/\/management\.azure\.com\/\.default'/s],
      [{}, { accessTokenScope: 'https://management.azure.com/.default https://graph.microsoft.com/.default' }, /Input 'accessTokenScope': .*more than one scope/],
      [{}, { exportAzureIdentityEnv: 'maybe' }, /Input 'exportAzureIdentityEnv': 'maybe' is not a boolean/],
    ];
    for (const [override, inputs, message] of cases) {
      const conn = { ...wif(c), ...(override ?? {}) };
      const r = await run(conn, inputs, {}, override === null ? { INPUT_CONNECTEDSERVICENAMEARM: '' } : {});
      assert.equal(r.result, 'Failed', r.stdout);
      assert.match(r.errors.join('\n'), message);
    }
    assert.equal(emu.count('oidctoken'), 0, 'no request for a bad input');
  });

  it('exportAzureIdentityEnv: a 0600 token file, removed by the post-job step', async () => {
    const c = federated();
    const job = { tempDirectory: fs.mkdtempSync(`${os.tmpdir()}/wit-job-`) };
    const r = await run(wif(c), { exportAzureIdentityEnv: 'true', exportTerraformEnv: 'true' }, job);
    assert.equal(r.result, 'Succeeded', r.stdout);
    const file = r.variables.AZURE_FEDERATED_TOKEN_FILE.value;
    assert.ok(file.startsWith(job.tempDirectory));
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(file, 'utf8'), r.variables.idToken.value);
    assert.equal(r.variables.AZURE_CLIENT_ID.value, c.clientId);
    assert.equal(r.variables.ARM_USE_OIDC.value, 'true');
    assert.ok(r.variables.ARM_OIDC_REQUEST_TOKEN.secret);
    assert.equal(r.variables.ARM_OIDC_REQUEST_URL.value.split('?')[0], r.variables.ARM_OIDC_REQUEST_URL.value);
    // The post-job step gets the task variables the main step set, as the agent passes them.
    const state = postJobEnv(r);
    const post = await run(wif(c), {}, job, state, 'post.js');
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.ok(!fs.existsSync(file), 'token file removed');
    const again = await run(wif(c), {}, job, state, 'post.js');
    assert.equal(again.result, 'Succeeded', 'a second post-job run is harmless');
  });

  it('a proxy that is down is explained', async () => {
    const c = federated();
    const r = await run(wif(c), {}, {}, { AGENT_PROXYURL: 'http://127.0.0.1:9', WORKLOADIDENTITY_HTTPRETRIES: '0' });
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), /The proxy http:\/\/127\.0\.0\.1:9 refused the connection/);
  });

  it('a CA the agent does not trust is explained as a TLS problem', async () => {
    const c = federated();
    const env: Record<string, string> = { ...jobEnv(emu), ...connectionEnv(emu, wif(c)), INPUT_CONNECTEDSERVICENAMEARM: c.id };
    delete env.NODE_EXTRA_CA_CERTS;
    const r = e2e.record(await runTaskProcess('FetchOidcTokenV1', 'index.js', { env }));
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), /TLS connection .* failed.*\n.*not trusted/);
  });
});
