/**
 * GcpAuthFederated@1 end to end: the bundled task reaches Azure DevOps, Google STS and the IAM
 * Credentials API by their public names (dev.azure.com, sts.googleapis.com,
 * iamcredentials.googleapis.com), which do not resolve here: only the agent's proxy (a test-owned
 * mapping CONNECT proxy) reaches the emulator, which serves each service only at its own names.
 * A later step then uses Google's own google-auth-library with the credentials file the task wrote.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { startEmulator, Emulator, gcpPrincipal } from '../emulator/index';
import { JobOptions, PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { addFederatedConnection, E2eRuns, FederatedConnection, isAlive, postJobEnv, TENANT, wif } from '../helpers/e2e';
import { MappingProxy, proxyToEmulator } from '../helpers/connect-proxy';
import { TaskRun } from '../helpers/task-process';

const PROVIDER = { projectNumber: '123456789012', poolId: 'azure-pipelines', providerId: 'contoso' };
const NAME = `projects/${PROVIDER.projectNumber}/locations/global/workloadIdentityPools/${PROVIDER.poolId}/providers/${PROVIDER.providerId}`;
const SA = 'deployer@contoso-prod.iam.gserviceaccount.com';
const MAPPED = [PUBLIC_COLLECTION_HOST, 'sts.googleapis.com', 'iamcredentials.googleapis.com'];
const PROXY_USER = 'build-agent';
const PROXY_PASSWORD = `Pr0xy-${crypto.randomBytes(6).toString('hex')}`;
const GOOGLE_STEP = path.resolve(__dirname, '..', 'helpers', 'google-auth-step.js');

/**
 * The credentials file Google documents (protocols.md section 9), field by field: what
 * `gcloud iam workload-identity-pools create-cred-config <provider> --service-account=<e-mail>
 * --credential-source-file=<token file> --credential-source-type=text --output-file=...` writes,
 * the e-mail in the impersonation URL as it is (a plain @).
 */
function createCredConfig(provider: string, tokenFile: string, serviceAccount?: string): Record<string, unknown> {
  return {
    universe_domain: 'googleapis.com',
    type: 'external_account',
    audience: `//iam.googleapis.com/${provider}`,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: 'https://sts.googleapis.com/v1/token',
    credential_source: { file: tokenFile, format: { type: 'text' } },
    ...(serviceAccount ? { service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${serviceAccount}:generateAccessToken` } : {}),
  };
}

describe('E2E GcpAuthFederated@1 (bundled task, Google STS and IAM Credentials through the agent proxy, google-auth-library)', function () {
  this.timeout(120_000);
  let emu: Emulator;
  let proxy: MappingProxy;
  let conn: FederatedConnection;
  const e2e = new E2eRuns(() => emu);

  before(async () => {
    emu = await startEmulator();
    proxy = await proxyToEmulator(emu, MAPPED, { credentials: `${PROXY_USER}:${PROXY_PASSWORD}` });
    conn = addFederatedConnection(emu, 'gcp-deploy');
    emu.addGcpProvider({ ...PROVIDER, issuerUri: conn.expected.issuer, allowedAudiences: ['api://AzureADTokenExchange'], attributeCondition: `assertion.sub == '${conn.expected.subject}'` });
    emu.addGcpServiceAccount({ email: SA, members: [gcpPrincipal(PROVIDER, conn.expected.subject)] });
  });
  after(async () => {
    await proxy?.stop();
    await emu?.stop();
  });
  afterEach(function () {
    // The agent masks the proxy password (task-lib debug-logs it); the task's own words never hold it.
    for (const r of e2e.pending()) assert.doesNotMatch([r.log, ...r.errors, ...r.warnings].join('\n'), new RegExp(PROXY_PASSWORD));
    e2e.endTest(this.currentTest?.title);
    proxy.connects.length = 0;
  });

  const proxyEnv = (): Record<string, string> => ({ AGENT_PROXYURL: proxy.url, AGENT_PROXYUSERNAME: PROXY_USER, SECRET_AGENT_PROXYPASSWORD: PROXY_PASSWORD });
  const job = (): JobOptions => ({ publicHosts: true, tempDirectory: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-job-')) });
  const total = () => Object.values(emu.counts()).reduce((a, b) => a + b, 0);

  function auth(c: FederatedConnection, inputs: Record<string, string> = {}, j: JobOptions = job(), env: Record<string, string> = {}, entry = 'index.js', node?: string): Promise<TaskRun> {
    return e2e.run({ task: 'GcpAuthFederatedV1', conn: { ...wif(c), authorityUrl: null }, inputs: { workloadIdentityProvider: NAME, ...inputs }, job: j, env: { ...proxyEnv(), ...env }, entry, node });
  }

  /** Every request went through the proxy, at its service's public name. */
  function assertThroughProxy(authorities: string[]): void {
    const hosts = emu.requestHosts();
    assert.ok(hosts.length > 0);
    for (const h of hosts) assert.ok(MAPPED.includes(h.host), `${h.route} was asked for at ${h.host}`);
    assert.equal(emu.counts().misdirected, 0);
    for (const c of proxy.connects) assert.equal(c.status, 200, `CONNECT ${c.authority}`);
    assert.deepEqual([...new Set(proxy.connects.map((c) => c.authority))].sort(), authorities.map((a) => `${a}:443`).sort());
  }

  /** A later step with Google's own library: GOOGLE_APPLICATION_CREDENTIALS and HTTPS_PROXY, nothing else of the task's. */
  function googleStep(run: TaskRun): Promise<{ token?: string; clientEmail?: string; error?: string; output?: string }> {
    const proxyUrl = new URL(proxy.url);
    proxyUrl.username = PROXY_USER;
    proxyUrl.password = PROXY_PASSWORD;
    // The job variables the task set reach the step's environment, as the agent passes them.
    const jobVars = Object.fromEntries(['GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', 'GOOGLE_CLOUD_PROJECT', 'CLOUDSDK_CORE_PROJECT'].filter((k) => run.variables[k]).map((k) => [k, run.variables[k].value]));
    const env = { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...jobVars, HTTPS_PROXY: proxyUrl.href, NODE_EXTRA_CA_CERTS: emu.caCertPath };
    return new Promise((resolve) => {
      execFile(process.execPath, [GOOGLE_STEP], { env, timeout: 60_000 }, (_err, stdout, stderr) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve({ ...(JSON.parse(line) as { token?: string; clientEmail?: string; error?: string }), output: stdout + stderr });
        } catch {
          resolve({ error: `no JSON from the step: ${stdout} ${stderr}` });
        }
      });
    });
  }

  it('direct access: 2 requests through the proxy; the credentials file, its fresh token file and the variables; google-auth-library gets a token; post-job removes it all', async () => {
    const j = job();
    const r = await auth(conn, { projectId: 'contoso-prod' }, j);
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('gcp.sts.token'), emu.count('gcp.iam.generateAccessToken'), total()], [1, 1, 0, 2]);
    assertThroughProxy([PUBLIC_COLLECTION_HOST, 'sts.googleapis.com']);
    const v = r.variables;
    const file = v.GOOGLE_APPLICATION_CREDENTIALS.value;
    assert.equal(v.CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE.value, file);
    assert.equal(v.credentialsFilePath.value, file);
    assert.deepEqual([v.GOOGLE_CLOUD_PROJECT.value, v.CLOUDSDK_CORE_PROJECT.value, v.projectId.value], ['contoso-prod', 'contoso-prod', 'contoso-prod']);
    assert.equal(v.accessToken, undefined, 'tokenFormat none: no access token output');
    assert.ok(file.startsWith(j.tempDirectory!));
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const creds = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown> & { credential_source: { file: string; format: { type: string } } };
    const tokenFile = creds.credential_source.file;
    assert.deepEqual(creds, createCredConfig(NAME, tokenFile));
    assert.equal(path.dirname(tokenFile), path.dirname(file));
    assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600);
    assert.ok(emu.issuedTokens().includes(fs.readFileSync(tokenFile, 'utf8')), 'the token file holds an idToken');
    const text = fs.readFileSync(file, 'utf8');
    for (const s of [...emu.issuedTokens(), emu.jobAccessToken]) assert.ok(!text.includes(s), 'no secret in the credentials file');
    assert.doesNotMatch(text, /executable|command/);

    emu.resetCounts();
    proxy.connects.length = 0;
    const g = await googleStep(r);
    assert.ok(g.token, JSON.stringify({ ...g, connects: proxy.connects }));
    const issued = emu.gcpTokens().find((t) => t.token === g.token);
    assert.equal(issued?.kind, 'federated');
    assert.equal(issued?.principal, gcpPrincipal(PROVIDER, conn.expected.subject));
    assertThroughProxy(['sts.googleapis.com']);
    assert.equal(g.clientEmail, undefined, 'no service account: none read from the file');

    const refresher = JSON.parse(r.taskVariables['WorkloadIdentity.GcpAuth.TokenFile.Refresher'] ?? 'null') as { pid: number } | null;
    assert.ok(refresher && isAlive(refresher.pid), 'a refresher keeps the token file fresh');
    const post = await auth(conn, {}, j, postJobEnv(r), 'post.js');
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.ok(!fs.existsSync(file) && !fs.existsSync(tokenFile));
    assert.ok(!isAlive(refresher.pid), 'the post-job step stopped the refresher');
    assert.match(post.log, /Stopped the token refresher/);
  });

  it('impersonation: 3 requests; the secret output accessToken; google-auth-library impersonates through the file', async () => {
    const r = await auth(conn, { serviceAccount: SA, projectId: 'contoso-prod', tokenFormat: 'access_token', accessTokenLifetime: '1800', keepTokenFileFresh: 'false' });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('gcp.sts.token'), emu.count('gcp.iam.generateAccessToken'), total()], [1, 1, 1, 3]);
    assertThroughProxy([PUBLIC_COLLECTION_HOST, 'sts.googleapis.com', 'iamcredentials.googleapis.com']);
    const v = r.variables;
    assert.ok(v.accessToken.secret);
    const issued = emu.gcpTokens().find((t) => t.token === v.accessToken.value);
    assert.equal(issued?.principal, `serviceAccount:${SA}`);
    assert.ok(Math.abs(Date.parse(v.accessTokenExpiresOn.value) - Date.now() - 1800_000) < 10_000);
    const file = v.GOOGLE_APPLICATION_CREDENTIALS.value;
    const creds = JSON.parse(fs.readFileSync(file, 'utf8')) as { credential_source: { file: string } };
    assert.deepEqual(creds, createCredConfig(NAME, creds.credential_source.file, SA), 'the file create-cred-config writes, with the e-mail as it is');
    // The task's own call may name the account either way (Google takes both); it gives it as the file does.
    assert.deepEqual(emu.requestLog().filter((l) => l.route === 'gcp.iam.generateAccessToken').map((l) => l.path), [`/v1/projects/-/serviceAccounts/${SA}:generateAccessToken`]);
    assert.equal(r.taskVariables['WorkloadIdentity.GcpAuth.TokenFile.Refresher'], undefined, 'keepTokenFileFresh false: no refresher');
    const g = await googleStep(r);
    assert.ok(g.token, JSON.stringify({ ...g, connects: proxy.connects }));
    assert.equal(emu.gcpTokens().find((t) => t.token === g.token)?.principal, `serviceAccount:${SA}`);
    assert.equal(g.clientEmail, SA, 'google-auth-library reads the plain e-mail from the file (getCredentials().client_email)');
    const post = await auth(conn, {}, job(), postJobEnv(r), 'post.js');
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.ok(!fs.existsSync(file));
  });

  it('runs on Node 24, as the agent\'s Node24 handler does: impersonation in 3 requests, the 0600 file; post-job on Node 24 too', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const node24 = (require('../../../scripts/node24.cjs') as { ensureNode24(): string }).ensureNode24();
    const j = job();
    const r = await auth(conn, { serviceAccount: SA, tokenFormat: 'access_token' }, j, {}, 'index.js', node24);
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('gcp.sts.token'), emu.count('gcp.iam.generateAccessToken'), total()], [1, 1, 1, 3]);
    assertThroughProxy([PUBLIC_COLLECTION_HOST, 'sts.googleapis.com', 'iamcredentials.googleapis.com']);
    assert.ok(r.variables.accessToken.secret);
    assert.ok(r.secrets.includes(r.variables.accessToken.value), 'masked with task.setsecret');
    assert.equal(emu.gcpTokens().find((t) => t.token === r.variables.accessToken.value)?.principal, `serviceAccount:${SA}`);
    const file = r.variables.GOOGLE_APPLICATION_CREDENTIALS.value;
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const creds = JSON.parse(fs.readFileSync(file, 'utf8')) as { credential_source: { file: string } };
    assert.deepEqual(creds, createCredConfig(NAME, creds.credential_source.file, SA));
    const refresher = JSON.parse(r.taskVariables['WorkloadIdentity.GcpAuth.TokenFile.Refresher'] ?? 'null') as { pid: number } | null;
    assert.ok(refresher && isAlive(refresher.pid), 'a refresher keeps the token file fresh');
    const post = await auth(conn, {}, j, postJobEnv(r), 'post.js', node24);
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.match(post.log, /Stopped the token refresher/);
    assert.ok(!isAlive(refresher.pid));
    assert.ok(!fs.existsSync(file) && !fs.existsSync(creds.credential_source.file));
  });

  it('a long job: google-auth-library still gets a token after the idToken\'s 20-second life, from the file the refresher keeps fresh', async () => {
    emu.idTokenLifetimeSeconds = 20;
    const j = job();
    const r = await auth(conn, { serviceAccount: SA, projectId: 'contoso-prod' }, j);
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    const file = r.variables.GOOGLE_APPLICATION_CREDENTIALS.value;
    await new Promise((res) => setTimeout(res, 23_000));
    const g = await googleStep(r);
    assert.ok(g.token, JSON.stringify({ ...g, connects: proxy.connects }));
    assert.equal(emu.gcpTokens().find((t) => t.token === g.token)?.principal, `serviceAccount:${SA}`);
    const post = await auth(conn, {}, j, postJobEnv(r), 'post.js');
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.ok(!fs.existsSync(file));
  });

  it('explains each refusal with its fix: audience, issuer (Entra), unknown provider, attribute condition, getAccessToken denied', async () => {
    const provider = (providerId: string) => NAME.replace(/contoso$/, providerId);
    emu.addGcpProvider({ ...PROVIDER, providerId: 'no-audience', issuerUri: conn.expected.issuer });
    let r = await auth(conn, { workloadIdentityProvider: provider('no-audience') });
    let msg = r.errors.join('\n');
    assert.equal(r.result, 'Failed');
    assert.match(msg, /rejected the idToken's audience .*\(invalid_grant\)/);
    assert.match(msg, /allowed audiences do not list api:\/\/AzureADTokenExchange/);
    assert.match(msg, /update-oidc no-audience --project=123456789012 --location=global --workload-identity-pool=azure-pipelines --allowed-audiences=api:\/\/AzureADTokenExchange/);

    const entra = addFederatedConnection(emu, 'gcp-entra');
    emu.addServiceConnection({ id: entra.id, name: 'gcp-entra', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: entra.clientId, issuerMode: 'entra' });
    const entraIssuer = emu.expectedFederation(entra.id).issuer;
    r = await auth(entra);
    msg = r.errors.join('\n');
    assert.match(msg, /rejected the idToken's issuer/);
    assert.ok(msg.includes(`Issuer URI to configure: ${entraIssuer}`), msg);
    assert.ok(msg.includes(`--issuer-uri=${entraIssuer}`), msg);
    assert.match(msg, /uses the Entra issuer/);

    r = await auth(conn, { workloadIdentityProvider: provider('deleted') });
    assert.match(r.errors.join('\n'), /does not know the workload identity provider .*\(invalid_target\)[\s\S]*disabled, or was deleted/);

    const other = addFederatedConnection(emu, 'gcp-other');
    r = await auth(other);
    msg = r.errors.join('\n');
    assert.match(msg, /attribute condition does not accept it \(unauthorized_client\)/);
    assert.ok(msg.includes(`assertion.sub == '${other.expected.subject}'`), msg);

    emu.addGcpProvider({ ...PROVIDER, providerId: 'open', issuerUri: conn.expected.issuer, allowedAudiences: ['api://AzureADTokenExchange'] });
    r = await auth(other, { workloadIdentityProvider: provider('open'), serviceAccount: SA });
    msg = r.errors.join('\n');
    assert.match(msg, /did not let the federated principal impersonate .* \(PERMISSION_DENIED\)/);
    assert.match(msg, /roles\/iam\.workloadIdentityUser/);
    assert.ok(msg.includes(`--member=${gcpPrincipal(PROVIDER, other.expected.subject)}`), msg);
  });

  it('503 then success (2 STS requests); 429 at IAM Credentials retried', async () => {
    emu.inject('gcp.sts.token', { kind: 'status', status: 503 });
    emu.inject('gcp.iam.generateAccessToken', { kind: '429', retryAfterSeconds: 1 });
    const r = await auth(conn, { serviceAccount: SA, createCredentialsFile: 'false' });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.deepEqual([emu.count('gcp.sts.token'), emu.count('gcp.iam.generateAccessToken')], [2, 2]);
    assert.equal(r.variables.GOOGLE_APPLICATION_CREDENTIALS, undefined, 'createCredentialsFile false: no file');
  });

  it('bad inputs name the input, with no request', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ workloadIdentityProvider: '' }, /Input 'workloadIdentityProvider': no provider is given/],
      [{ workloadIdentityProvider: 'projects/contoso-prod/locations/global/workloadIdentityPools/p1/providers/x' }, /Input 'workloadIdentityProvider': .*is not a workload identity provider name[\s\S]*project number/],
      [{ serviceAccount: 'deployer@contoso.com' }, /Input 'serviceAccount': 'deployer@contoso.com' is not a service account e-mail/],
      [{ projectId: '123' }, /Input 'projectId': '123' is not a Google Cloud project id/],
      [{ accessTokenLifetime: '99999' }, /Input 'accessTokenLifetime': '99999' is not a whole number of seconds from 300 to 43200/],
      [{ accessTokenScopes: 'https://evil.example/auth/x' }, /Input 'accessTokenScopes': .* is not a Google OAuth scope/],
      [{ tokenFormat: 'id_token' }, /Input 'tokenFormat'/],
      [{ createCredentialsFile: 'yes' }, /Input 'createCredentialsFile'/],
    ];
    for (const [inputs, message] of cases) {
      const r = await auth(conn, inputs);
      assert.equal(r.result, 'Failed', r.stdout);
      assert.match(r.errors.join('\n'), message);
    }
    assert.equal(total(), 0);
    assert.equal(proxy.connects.length, 0);
  });
});
