/**
 * AwsAssumeRoleFederated@1 end to end: the bundled task against the emulator's Azure DevOps and
 * AWS STS; the credentials it sets are then used by AWS's own SDK (@aws-sdk/client-sts), whose
 * SigV4-signed GetCallerIdentity the emulator answers only for sessions it issued, and by the real
 * AWS CLI (Debian's awscli, v2) in a later step that sees only what the agent maps by default,
 * reaching the emulator as sts.us-east-1.amazonaws.com through a mapping proxy.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetCallerIdentityCommand, STSClient, STSClientConfig } from '@aws-sdk/client-sts';
import { fromTokenFile } from '@aws-sdk/credential-provider-web-identity';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startEmulator, Emulator, stsFault } from '../emulator/index';
import { addFederatedConnection, E2eRuns, FederatedConnection, postJobEnv, wif, trustInAws } from '../helpers/e2e';
import { TaskRun } from '../helpers/task-process';
import { PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { MappingProxy, proxyToEmulator } from '../helpers/connect-proxy';
import { awsCliMissing, CliRun, mappedByDefault, runAwsCli } from '../helpers/aws-cli';

const ACCOUNT = '123456789012';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/azure-pipelines-deploy`;
const KEY_VARIABLES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const expiryOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as { exp: number }).exp * 1000;

describe('E2E AwsAssumeRoleFederated@1 (bundled task, emulated STS, the AWS SDK)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  let handler: NodeHttpHandler;
  let conn: FederatedConnection;
  const clients: STSClient[] = [];
  const e2e = new E2eRuns(() => emu);
  const savedWarning = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;

  before(async () => {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    emu = await startEmulator();
    handler = new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: fs.readFileSync(emu.caCertPath) }) });
    conn = addFederatedConnection(emu, 'aws-deploy');
    trustInAws(emu, conn.expected, ROLE, 7200);
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await emu?.stop();
    if (savedWarning === undefined) delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    else process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = savedWarning;
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
  });

  function assume(c: FederatedConnection, inputs: Record<string, string> = {}, env: Record<string, string> = {}, entry = 'index.js'): Promise<TaskRun> {
    return e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: wif(c), inputs: { roleArn: ROLE, stsEndpoint: `${emu.url}/`, ...inputs }, env: { BUILD_DEFINITIONNAME: 'web deploy', BUILD_BUILDID: '812', ...env }, entry });
  }

  function sdk(credentials?: STSClientConfig['credentials']): STSClient {
    const c = new STSClient({ region: 'us-east-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1, credentials });
    clients.push(c);
    return c;
  }

  it('assumes the role with no access key; the AWS SDK signs GetCallerIdentity with the credentials the task set', async () => {
    const r = await assume(conn, { durationSeconds: '7200' });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('sts.assumeRoleWithWebIdentity')], [1, 1]);
    const v = r.variables;
    assert.ok(v.AWS_SECRET_ACCESS_KEY.secret && v.AWS_SESSION_TOKEN.secret);
    assert.ok(!v.AWS_ACCESS_KEY_ID.secret);
    assert.equal(v.AWS_REGION.value, 'us-east-1');
    assert.deepEqual([v.awsAccessKeyId, v.awsSecretAccessKey, v.awsSessionToken], [
      { value: v.AWS_ACCESS_KEY_ID.value, secret: false, output: true },
      { value: v.AWS_SECRET_ACCESS_KEY.value, secret: true, output: true },
      { value: v.AWS_SESSION_TOKEN.value, secret: true, output: true },
    ]);
    assert.equal(v.AWS_WEB_IDENTITY_TOKEN_FILE, undefined);
    assert.equal(v.awsAssumedRoleArn.value, `arn:aws:sts::${ACCOUNT}:assumed-role/azure-pipelines-deploy/azp-web-deploy-812`);
    assert.ok(Date.parse(v.awsExpiration.value) - Date.now() > 7000_000, 'durationSeconds reached STS');
    const who = await sdk({ accessKeyId: v.AWS_ACCESS_KEY_ID.value, secretAccessKey: v.AWS_SECRET_ACCESS_KEY.value, sessionToken: v.AWS_SESSION_TOKEN.value }).send(new GetCallerIdentityCommand({}));
    assert.equal(who.Arn, v.awsAssumedRoleArn.value);
    assert.equal(who.Account, ACCOUNT);
    assert.match(r.log, new RegExp(`Subject \\(sub\\): {2}${conn.expected.subject.replace(/[/.]/g, '\\$&')}`));
  });

  it('exportWebIdentityFile: no key variable, the keys as outputs; the SDK assumes the role itself from the token file; the post-job step removes it', async () => {
    const r = await assume(conn, { exportWebIdentityFile: 'true', roleSessionName: 'sdk-from-file' });
    assert.equal(r.result, 'Succeeded', r.stdout);
    const v = r.variables;
    for (const k of KEY_VARIABLES) assert.equal(v[k], undefined, `${k} is not set`);
    assert.deepEqual([v.AWS_REGION.value, v.AWS_DEFAULT_REGION.value, v.AWS_ROLE_ARN.value, v.AWS_ROLE_SESSION_NAME.value], ['us-east-1', 'us-east-1', ROLE, 'sdk-from-file']);
    const session = emu.awsSessions().find((s) => s.accessKeyId === v.awsAccessKeyId.value);
    assert.ok(session && !v.awsAccessKeyId.secret && v.awsAccessKeyId.output);
    assert.deepEqual([v.awsSecretAccessKey, v.awsSessionToken], [{ value: session.secretAccessKey, secret: true, output: true }, { value: session.sessionToken, secret: true, output: true }]);
    const file = r.variables.AWS_WEB_IDENTITY_TOKEN_FILE.value;
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const credentials = fromTokenFile({ webIdentityTokenFile: file, roleArn: r.variables.AWS_ROLE_ARN.value, roleSessionName: r.variables.AWS_ROLE_SESSION_NAME.value, clientConfig: { region: 'us-east-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1 } });
    const who = await sdk(credentials).send(new GetCallerIdentityCommand({}));
    assert.equal(who.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/azure-pipelines-deploy/sdk-from-file`);
    const state = postJobEnv(r);
    const post = await assume(conn, {}, state, 'post.js');
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.ok(!fs.existsSync(file));
  });

  it('an untrusted subject: AccessDenied with the token\'s sub and aud and a trust policy that would match', async () => {
    const other = addFederatedConnection(emu, 'not-trusted');
    const r = await assume(other);
    assert.equal(r.result, 'Failed');
    const msg = r.errors.join('\n');
    assert.match(msg, /did not let the connection assume .* \(AccessDenied\)/);
    assert.ok(msg.includes(`Token subject (sub):  ${other.expected.subject}`), msg);
    assert.ok(msg.includes(`:sub": "${other.expected.subject}"`), msg);
    assert.match(msg, /"Action": "sts:AssumeRoleWithWebIdentity"/);
  });

  it('a missing OIDC provider: InvalidIdentityToken with the provider URL to create', async () => {
    const entraIssued = addFederatedConnection(emu, 'entra-issuer');
    emu.addServiceConnection({ id: entraIssued.id, name: 'entra-issuer', scheme: 'WorkloadIdentityFederation', tenantId: '8d1f3a3e-2f4b-4c8e-9a55-0c6f1e7b2a10', clientId: entraIssued.clientId, issuerMode: 'entra' });
    const r = await assume(entraIssued);
    assert.equal(r.result, 'Failed');
    const msg = r.errors.join('\n');
    assert.match(msg, /InvalidIdentityToken/);
    assert.match(msg, /Provider URL to create: login\.microsoftonline\.com\/[0-9a-f-]+\/v2\.0/);
    assert.match(msg, /aws iam create-open-id-connect-provider --url https:\/\/login\.microsoftonline\.com\/[0-9a-f-]+\/v2\.0 --client-id-list api:\/\/AzureADTokenExchange/);
  });

  it('an expired idToken: explained', async () => {
    emu.idTokenLifetimeSeconds = -60;
    const r = await assume(conn);
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), /refused the idToken as expired \(ExpiredTokenException\)/);
  });

  it('503 then success: 2 requests; IDPCommunicationError is retried too', async () => {
    emu.inject('sts.assumeRoleWithWebIdentity', { kind: 'status', status: 503 });
    const r = await assume(conn);
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.count('sts.assumeRoleWithWebIdentity'), 2);
    emu.resetCounts();
    emu.inject('sts.assumeRoleWithWebIdentity', stsFault(400, 'IDPCommunicationError', 'The identity provider could not be reached.'));
    const again = await assume(conn);
    assert.equal(again.result, 'Succeeded', again.stdout);
    assert.equal(emu.count('sts.assumeRoleWithWebIdentity'), 2);
    assert.match(again.log, /IDPCommunicationError; retrying in/);
  });

  it('a session longer than the role allows: ValidationError explained', async () => {
    const r = await assume(conn, { durationSeconds: '43200' });
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), /ValidationError.*\n.*longer than the role's maximum session duration/);
  });

  it('bad inputs name the input, with no request', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ roleArn: '' }, /Input 'roleArn': no role is given/],
      [{ roleArn: 'arn:aws:iam::123:role/x' }, /Input 'roleArn': .*is not an IAM role ARN/],
      [{ region: 'mars-1' }, /Input 'region': 'mars-1' is not an AWS region code/],
      [{ durationSeconds: '50000' }, /Input 'durationSeconds'/],
      [{ roleSessionName: 'x' }, /Input 'roleSessionName': 'x' is not a valid role session name/],
      [{ stsEndpoint: 'ftp://sts' }, /Input 'stsEndpoint': 'ftp:\/\/sts' is not https/],
    ];
    for (const [inputs, message] of cases) {
      const r = await assume(conn, inputs);
      assert.equal(r.result, 'Failed', r.stdout);
      assert.match(r.errors.join('\n'), message);
    }
    assert.equal(Object.values(emu.counts()).reduce((a, b) => a + b, 0), 0);
  });
  describe('a later script step with the AWS CLI (Debian\'s awscli, v2), given only what the agent maps by default', function () {
    const STS_HOST = 'sts.us-east-1.amazonaws.com';
    let proxy: MappingProxy;

    before(async function () {
      const missing = awsCliMissing();
      if (missing) {
        if (process.env.CI) throw new Error(`The AWS CLI tests must run in CI, but ${missing}`);
        console.log(`    AWS CLI tests skipped: ${missing}`);
        this.skip();
      }
      // The task and the CLI reach Azure DevOps and STS by their public names, only through this proxy.
      proxy = await proxyToEmulator(emu, [PUBLIC_COLLECTION_HOST, STS_HOST]);
    });
    after(async () => {
      await proxy?.stop();
    });
    afterEach(() => {
      if (proxy) proxy.connects.length = 0;
    });

    /** The task as the agent runs it: the regional endpoint (no stsEndpoint), through the agent's proxy. */
    const assumeAtAws = (inputs: Record<string, string>, tempDirectory?: string) =>
      e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: wif(conn), inputs: { roleArn: ROLE, ...inputs }, job: { publicHosts: true, tempDirectory }, env: { BUILD_DEFINITIONNAME: 'web deploy', BUILD_BUILDID: '812', AGENT_PROXYURL: proxy.url } });

    /** `aws sts get-caller-identity` in a later step: the variables the agent maps, plus the proxy and the CA the machine would have. */
    const callerIdentity = (run: TaskRun, mapped: Record<string, string> = {}): Promise<CliRun> =>
      runAwsCli(['sts', 'get-caller-identity', '--output', 'json'], { ...mappedByDefault(run), ...mapped, HTTPS_PROXY: proxy.url, AWS_CA_BUNDLE: emu.caCertPath });

    /** The sessions the CLI assumed itself (its User-Agent) as `sessionName`, in order. */
    const cliSessions = (sessionName: string) => emu.awsSessions().filter((s) => /^aws-cli\/2\./.test(s.userAgent) && s.roleSessionName === sessionName);

    it('exportWebIdentityFile: the CLI assumes the role from the token file at sts.us-east-1.amazonaws.com; GetCallerIdentity answers the assumed role', async () => {
      const r = await assumeAtAws({ exportWebIdentityFile: 'true', keepTokenFileFresh: 'false', roleSessionName: 'cli-from-file' });
      assert.equal(r.result, 'Succeeded', r.stdout);
      const token = fs.readFileSync(r.variables.AWS_WEB_IDENTITY_TOKEN_FILE.value, 'utf8');
      emu.resetCounts();
      proxy.connects.length = 0;

      const cli = await callerIdentity(r);
      assert.equal(cli.code, 0, cli.stdout + cli.stderr);
      const env = mappedByDefault(r);
      for (const k of KEY_VARIABLES) assert.equal(env[k], undefined, `${k} is not in a later step's environment`);
      const who = JSON.parse(cli.stdout) as { Arn: string; Account: string };
      assert.equal(who.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/azure-pipelines-deploy/cli-from-file`);
      assert.equal(who.Account, ACCOUNT);
      assert.deepEqual([emu.count('sts.assumeRoleWithWebIdentity'), emu.count('sts.getCallerIdentity')], [1, 1]);
      const sessions = cliSessions('cli-from-file');
      assert.equal(sessions.length, 1, JSON.stringify(emu.awsSessions().map((s) => s.userAgent)));
      assert.equal(sessions[0].webIdentityToken, token, 'the CLI sent the token from the file');
      assert.equal(sessions[0].roleArn, ROLE);
      assert.deepEqual([...new Set(emu.requestHosts().map((h) => h.host))], [STS_HOST]);
      assert.deepEqual([...new Set(proxy.connects.map((c) => `${c.authority} ${c.status}`))], [`${STS_HOST}:443 200`]);
      const post = await assume(conn, {}, postJobEnv(r), 'post.js');
      assert.equal(post.result, 'Succeeded', post.stdout);
    });

    it('without exportWebIdentityFile: the CLI stops at a partial key pair unless the step maps the two secret variables, as the README says', async () => {
      const r = await assumeAtAws({});
      assert.equal(r.result, 'Succeeded', r.stdout);
      const v = r.variables;
      const sessions = emu.awsSessions().length;
      const unmapped = await callerIdentity(r);
      assert.equal(unmapped.code, 255, unmapped.stdout + unmapped.stderr);
      assert.match(unmapped.stderr, /Partial credentials found in env, missing: AWS_SECRET_ACCESS_KEY/);
      // env: AWS_SECRET_ACCESS_KEY: $(AWS_SECRET_ACCESS_KEY), AWS_SESSION_TOKEN: $(AWS_SESSION_TOKEN)
      const mapped = await callerIdentity(r, { AWS_SECRET_ACCESS_KEY: v.AWS_SECRET_ACCESS_KEY.value, AWS_SESSION_TOKEN: v.AWS_SESSION_TOKEN.value });
      assert.equal(mapped.code, 0, mapped.stdout + mapped.stderr);
      assert.equal((JSON.parse(mapped.stdout) as { Arn: string }).Arn, v.awsAssumedRoleArn.value);
      assert.equal(emu.awsSessions().length, sessions, 'the CLI signed with the keys the task set: it assumed no role itself');
    });

    it('a long job: after the first idToken has expired, a second CLI call assumes the role with the token the refresher renewed', async function () {
      this.timeout(120_000);
      emu.idTokenLifetimeSeconds = 20;
      const job = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-job-'));
      const r = await assumeAtAws({ exportWebIdentityFile: 'true', roleSessionName: 'long-cli' }, job);
      assert.equal(r.result, 'Succeeded', r.stdout);
      const file = r.variables.AWS_WEB_IDENTITY_TOKEN_FILE.value;
      const first = fs.readFileSync(file, 'utf8');

      const early = await callerIdentity(r);
      assert.equal(early.code, 0, early.stdout + early.stderr);
      assert.equal(cliSessions('long-cli').at(-1)?.webIdentityToken, first);

      await sleep(Math.max(0, expiryOf(first) - Date.now() + 1_500));
      assert.ok(expiryOf(first) < Date.now(), 'the first idToken has expired');
      const renewed = fs.readFileSync(file, 'utf8');
      assert.notEqual(renewed, first, 'the refresher renewed the file');
      assert.ok(expiryOf(renewed) > Date.now() + 2_000);

      const late = await callerIdentity(r);
      assert.equal(late.code, 0, late.stdout + late.stderr);
      assert.equal((JSON.parse(late.stdout) as { Arn: string }).Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/azure-pipelines-deploy/long-cli`);
      const sessions = cliSessions('long-cli');
      assert.equal(sessions.length, 2);
      assert.notEqual(sessions[1].webIdentityToken, first);
      assert.ok(emu.issuedTokens().includes(sessions[1].webIdentityToken) && expiryOf(sessions[1].webIdentityToken) > Date.now(), 'a renewed idToken from the file');

      const post = await assume(conn, {}, postJobEnv(r), 'post.js');
      assert.equal(post.result, 'Succeeded', post.stdout);
      assert.ok(!fs.existsSync(file));
    });
  });
});
