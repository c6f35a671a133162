/**
 * AwsAssumeRoleFederated@1 with awsConnection and GcpAuthFederated@1 with gcpConnection (issue 20):
 * connections of the extension's own types (scheme None) and no Azure Resource Manager connection at
 * all in the job. The bundled tasks run as the agent runs them, handed the connection as the agent
 * hands it (ENDPOINT_URL/AUTH/AUTH_SCHEME, tests/helpers/agent.ts endpointEnv); the emulator issues
 * the connection's idToken (sub sc://contoso/web/<name>), its AWS STS and Google STS trust that
 * subject, and clients that share no code with the tasks consume what they set: the AWS SDK
 * (GetCallerIdentity with the keys; the web identity file), the real AWS CLI in a later step through
 * a mapping proxy, google-auth-library through the credentials file.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { GetCallerIdentityCommand, STSClient, STSClientConfig } from '@aws-sdk/client-sts';
import { fromTokenFile } from '@aws-sdk/credential-provider-web-identity';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startEmulator, Emulator, gcpPrincipal } from '../emulator/index';
import { endpointEnv, EndpointEnv, JobOptions, PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { E2eRuns, postJobEnv, trustInAws } from '../helpers/e2e';
import { MappingProxy, proxyToEmulator } from '../helpers/connect-proxy';
import { awsCliMissing, mappedByDefault, runAwsCli } from '../helpers/aws-cli';
import { TaskRun } from '../helpers/task-process';

const ACCOUNT = '123456789012';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/aws-only-deploy`;
const OTHER_ROLE = `arn:aws:iam::${ACCOUNT}:role/someone-elses`;
const KEY_VARIABLES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];
const STS_HOST = 'sts.us-east-1.amazonaws.com';
const GCP = { projectNumber: '210987654321', poolId: 'azure-pipelines', providerId: 'contoso-web' };
const GCP_PROVIDER = `projects/${GCP.projectNumber}/locations/global/workloadIdentityPools/${GCP.poolId}/providers/${GCP.providerId}`;
const GCP_SA = 'web-deploy@contoso-web.iam.gserviceaccount.com';
const MAPPED = [PUBLIC_COLLECTION_HOST, STS_HOST, 'sts.googleapis.com', 'iamcredentials.googleapis.com'];
const GOOGLE_STEP = path.resolve(__dirname, '..', 'helpers', 'google-auth-step.js');

interface OwnConnection {
  name: string;
  env: EndpointEnv;
  subject: string;
}

describe('E2E AwsAssumeRoleFederated@1 and GcpAuthFederated@1 with connections of their own type, no Azure connection', function () {
  this.timeout(120_000);
  let emu: Emulator;
  let proxy: MappingProxy;
  let handler: NodeHttpHandler;
  const clients: STSClient[] = [];
  const e2e = new E2eRuns(() => emu);
  const savedWarning = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;

  before(async () => {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    emu = await startEmulator();
    proxy = await proxyToEmulator(emu, MAPPED);
    handler = new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: fs.readFileSync(emu.caCertPath) }) });
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await proxy?.stop();
    await emu?.stop();
    if (savedWarning === undefined) delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    else process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = savedWarning;
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
    proxy.connects.length = 0;
  });

  /** A connection of an own type in the emulator's organisation, and what the agent hands a task for it. */
  function ownConnection(type: 'WorkloadIdentityAws' | 'WorkloadIdentityGcp', parameters: Record<string, string>): OwnConnection {
    const id = crypto.randomUUID();
    const name = `${type === 'WorkloadIdentityAws' ? 'aws' : 'gcp'}-only-${crypto.randomBytes(3).toString('hex')}`;
    emu.addServiceConnection({ id, name, type, scheme: 'None', tenantId: '', clientId: '', url: '', parameters });
    return { name, env: { id, url: '', scheme: 'None', parameters }, subject: emu.expectedFederation(id).subject };
  }

  /** The AWS account trusts the connection: an OIDC provider for the issuer, a role whose trust names the connection's subject. */
  function awsConnection(parameters: Record<string, string> = {}, maxSessionDurationSeconds = 7200): OwnConnection {
    const c = ownConnection('WorkloadIdentityAws', { roleArn: ROLE, region: 'us-east-1', maxSessionDuration: '7200', ...parameters });
    assert.equal(c.subject, `sc://contoso/web/${c.name}`);
    trustInAws(emu, { issuer: emu.expectedFederation(c.env.id).issuer, subject: c.subject }, parameters.roleArn ?? ROLE, maxSessionDurationSeconds);
    return c;
  }

  /**
   * A task run with only the own connection in the job: no ENDPOINT_*_ of an Azure connection, an
   * empty azureSubscription and connectionType at its default, as the agent hands a YAML step that
   * sets only awsConnection / gcpConnection.
   */
  function run(task: string, endpoints: EndpointEnv[], inputs: Record<string, string>, job: JobOptions = {}, env: Record<string, string> = {}, entry = 'index.js'): Promise<TaskRun> {
    const all: Record<string, string> = { INPUT_CONNECTIONTYPE: 'azureResourceManager', INPUT_CONNECTEDSERVICENAMEARM: '', BUILD_DEFINITIONNAME: 'web deploy', BUILD_BUILDID: '812', ...env };
    for (const e of endpoints) Object.assign(all, endpointEnv(e));
    return e2e.run({ task, inputs, job, env: all, entry });
  }

  const total = () => Object.values(emu.counts()).reduce((a, b) => a + b, 0);
  const oidcConnectionIds = () => emu.requestLog().filter((q) => q.route === 'oidctoken').map((q) => new URL(q.path, 'https://x').searchParams.get('serviceConnectionId'));
  const jobTemp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'wit-job-'));

  function sdk(credentials?: STSClientConfig['credentials']): STSClient {
    const c = new STSClient({ region: 'us-east-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1, credentials });
    clients.push(c);
    return c;
  }

  describe('AwsAssumeRoleFederated@1 with awsConnection', () => {
    it('the connection alone: its idToken, its role, region and STS endpoint; the AWS SDK signs GetCallerIdentity with the keys the task set', async () => {
      const c = awsConnection({ stsEndpoint: `${emu.url}/` });
      const r = await run('AwsAssumeRoleFederatedV1', [c.env], { awsConnection: c.env.id });
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      assert.deepEqual([emu.count('oidctoken'), emu.count('sts.assumeRoleWithWebIdentity'), emu.count('entra.token'), total()], [1, 1, 0, 2]);
      assert.deepEqual(oidcConnectionIds(), [c.env.id], 'the idToken of the AWS connection');
      const session = emu.awsSessions().at(-1)!;
      const claims = JSON.parse(Buffer.from(session.webIdentityToken.split('.')[1], 'base64url').toString()) as { sub: string; aud: string };
      assert.deepEqual([claims.sub, claims.aud], [`sc://contoso/web/${c.name}`, 'api://AzureADTokenExchange']);
      assert.equal(session.roleArn, ROLE);
      const v = r.variables;
      assert.ok(v.AWS_SECRET_ACCESS_KEY.secret && v.AWS_SESSION_TOKEN.secret && !v.AWS_ACCESS_KEY_ID.secret);
      assert.deepEqual([v.AWS_REGION.value, v.AWS_DEFAULT_REGION.value], ['us-east-1', 'us-east-1']);
      assert.equal(v.awsAssumedRoleArn.value, `arn:aws:sts::${ACCOUNT}:assumed-role/aws-only-deploy/azp-web-deploy-812`);
      const life = Date.parse(v.awsExpiration.value) - Date.now();
      assert.ok(life > 3500_000 && life <= 3600_000, `the default session: 3600 s (${life} ms)`);
      const who = await sdk({ accessKeyId: v.AWS_ACCESS_KEY_ID.value, secretAccessKey: v.AWS_SECRET_ACCESS_KEY.value, sessionToken: v.AWS_SESSION_TOKEN.value }).send(new GetCallerIdentityCommand({}));
      assert.deepEqual([who.Arn, who.Account], [v.awsAssumedRoleArn.value, ACCOUNT]);
      assert.match(r.log, new RegExp(`Subject \\(sub\\): {2}sc://contoso/web/${c.name}`));
      assert.match(r.log, /AWS \(workload identity federation\), role arn:aws:iam::123456789012:role\/aws-only-deploy, region us-east-1/);
    });

    it('exportWebIdentityFile, a shorter session, the same role as an input: no key variable; the SDK assumes the role from the file; post-job removes it', async () => {
      const c = awsConnection({ stsEndpoint: `${emu.url}/` });
      const r = await run('AwsAssumeRoleFederatedV1', [c.env], { awsConnection: c.env.id, roleArn: ROLE, durationSeconds: '900', exportWebIdentityFile: 'true', roleSessionName: 'sdk-from-file' });
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      const v = r.variables;
      for (const k of KEY_VARIABLES) assert.equal(v[k], undefined, `${k} is not set`);
      assert.deepEqual([v.AWS_ROLE_ARN.value, v.AWS_ROLE_SESSION_NAME.value], [ROLE, 'sdk-from-file']);
      assert.ok(Date.parse(v.awsExpiration.value) - Date.now() <= 900_000, 'durationSeconds 900 reached STS');
      const file = v.AWS_WEB_IDENTITY_TOKEN_FILE.value;
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      const credentials = fromTokenFile({ webIdentityTokenFile: file, roleArn: v.AWS_ROLE_ARN.value, roleSessionName: v.AWS_ROLE_SESSION_NAME.value, clientConfig: { region: 'us-east-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1 } });
      const who = await sdk(credentials).send(new GetCallerIdentityCommand({}));
      assert.equal(who.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/aws-only-deploy/sdk-from-file`);
      const post = await run('AwsAssumeRoleFederatedV1', [c.env], {}, {}, postJobEnv(r), 'post.js');
      assert.equal(post.result, 'Succeeded', post.stdout);
      assert.ok(!fs.existsSync(file));
    });

    it('the real AWS CLI in a later step, with only what the agent maps: it assumes the connection\'s role from the token file at sts.us-east-1.amazonaws.com', async function () {
      const missing = awsCliMissing();
      if (missing) {
        if (process.env.CI) throw new Error(`The AWS CLI tests must run in CI, but ${missing}`);
        console.log(`    AWS CLI test skipped: ${missing}`);
        this.skip();
      }
      // No stsEndpoint in the connection: the regional endpoint, reached by its public name through the agent's proxy.
      const c = awsConnection();
      const r = await run('AwsAssumeRoleFederatedV1', [c.env], { awsConnection: c.env.id, exportWebIdentityFile: 'true', keepTokenFileFresh: 'false', roleSessionName: 'cli-from-file' }, { publicHosts: true, tempDirectory: jobTemp() }, { AGENT_PROXYURL: proxy.url });
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      const token = fs.readFileSync(r.variables.AWS_WEB_IDENTITY_TOKEN_FILE.value, 'utf8');
      emu.resetCounts();
      proxy.connects.length = 0;
      const env = mappedByDefault(r);
      for (const k of KEY_VARIABLES) assert.equal(env[k], undefined, `${k} is not in a later step's environment`);
      const cli = await runAwsCli(['sts', 'get-caller-identity', '--output', 'json'], { ...env, HTTPS_PROXY: proxy.url, AWS_CA_BUNDLE: emu.caCertPath });
      assert.equal(cli.code, 0, cli.stdout + cli.stderr);
      assert.equal((JSON.parse(cli.stdout) as { Arn: string }).Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/aws-only-deploy/cli-from-file`);
      const sessions = emu.awsSessions().filter((s) => /^aws-cli\/2\./.test(s.userAgent) && s.roleSessionName === 'cli-from-file');
      assert.equal(sessions.length, 1);
      assert.equal(sessions[0].webIdentityToken, token, 'the CLI sent the connection\'s idToken from the file');
      assert.deepEqual([...new Set(emu.requestHosts().map((h) => h.host))], [STS_HOST]);
      const post = await run('AwsAssumeRoleFederatedV1', [c.env], {}, {}, postJobEnv(r), 'post.js');
      assert.equal(post.result, 'Succeeded', post.stdout);
    });

    it('a classic release job: the connection\'s idToken from the release hub; CloudTrail names the release and stage', async () => {
      const c = awsConnection();
      const r = await run('AwsAssumeRoleFederatedV1', [c.env], { awsConnection: c.env.id }, { kind: 'release', publicHosts: true, tempDirectory: jobTemp() }, { AGENT_PROXYURL: proxy.url });
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      const asked = emu.requestLog().filter((q) => q.route === 'oidctoken');
      assert.equal(asked.length, 1);
      assert.match(asked[0].path, /\/_apis\/distributedtask\/hubs\/release\/plans\//);
      assert.equal(new URL(asked[0].path, 'https://x').searchParams.get('serviceConnectionId'), c.env.id);
      assert.match(emu.awsSessions().at(-1)!.roleSessionName, /^azp-web-deploy-Production-\d+$/);
      assert.match(r.variables.awsAssumedRoleArn.value, /assumed-role\/aws-only-deploy\/azp-web-deploy-Production-\d+$/);
    });

    it('refusals name the input, both values and the fix, and make no request', async () => {
      const c = awsConnection({ stsEndpoint: `${emu.url}/` });
      const cases: [Record<string, string>, RegExp[]][] = [
        [{ roleArn: OTHER_ROLE }, [new RegExp(`Input 'roleArn': '${OTHER_ROLE}' differs from the role of service connection '${c.env.id}' \\('${ROLE}'\\)`), /Fix: Remove roleArn: the connection's role is assumed\. To use another role, region or STS endpoint, use a service connection made for it/]],
        [{ durationSeconds: '10800' }, [new RegExp(`Input 'durationSeconds': 10800 seconds is longer than the maximum session duration of service connection '${c.env.id}' \\(7200 seconds\\)`), /Fix: Set durationSeconds to 7200 or less/]],
        [{ stsEndpoint: 'https://sts.attacker.example/' }, [/Input 'stsEndpoint': 'https:\/\/sts\.attacker\.example\/' differs from the STS endpoint of service connection/, /Fix: Remove stsEndpoint: the idToken goes only to the connection's STS endpoint/]],
        [{ region: 'eu-west-1' }, [/Input 'region': 'eu-west-1' differs from the region of service connection .* \('us-east-1'\)/]],
        // Both connections: an Azure Resource Manager one handed by the agent too.
        [{ connectedServiceNameARM: 'b0000000-0000-4000-8000-0000000000a1' }, [/Input 'azureSubscription': azureSubscription and awsConnection are both set/, /Fix: Keep one: awsConnection/]],
      ];
      for (const [inputs, messages] of cases) {
        const r = await run('AwsAssumeRoleFederatedV1', [c.env], { awsConnection: c.env.id, ...inputs });
        assert.equal(r.result, 'Failed', r.stdout);
        for (const m of messages) assert.match(r.errors.join('\n'), m);
      }
      assert.equal(total(), 0, 'no request at all');
    });
  });

  describe('GcpAuthFederated@1 with gcpConnection', () => {
    let gcp: OwnConnection;
    before(() => {
      gcp = ownConnection('WorkloadIdentityGcp', { workloadIdentityProvider: GCP_PROVIDER, serviceAccount: GCP_SA, projectId: 'contoso-web' });
      emu.addGcpProvider({ ...GCP, issuerUri: emu.expectedFederation(gcp.env.id).issuer, allowedAudiences: ['api://AzureADTokenExchange'], attributeCondition: `assertion.sub == '${gcp.subject}'` });
      emu.addGcpServiceAccount({ email: GCP_SA, members: [gcpPrincipal(GCP, gcp.subject)] });
    });

    /** A later step with Google's own library: GOOGLE_APPLICATION_CREDENTIALS and HTTPS_PROXY, nothing else of the task's. */
    function googleStep(r: TaskRun): Promise<{ token?: string; clientEmail?: string; error?: string }> {
      const jobVars = Object.fromEntries(['GOOGLE_APPLICATION_CREDENTIALS', 'GOOGLE_CLOUD_PROJECT'].filter((k) => r.variables[k]).map((k) => [k, r.variables[k].value]));
      const env = { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...jobVars, HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: emu.caCertPath };
      return new Promise((resolve) => {
        execFile(process.execPath, [GOOGLE_STEP], { env, timeout: 60_000 }, (_err, stdout, stderr) => {
          try {
            resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as { token?: string; clientEmail?: string; error?: string });
          } catch {
            resolve({ error: `no JSON from the step: ${stdout} ${stderr}` });
          }
        });
      });
    }

    it('the connection alone: Google STS accepts its idToken, the connection\'s account is impersonated; google-auth-library through the credentials file; post-job removes it', async () => {
      const j = { publicHosts: true, tempDirectory: jobTemp() };
      const r = await run('GcpAuthFederatedV1', [gcp.env], { gcpConnection: gcp.env.id, tokenFormat: 'access_token' }, j, { AGENT_PROXYURL: proxy.url });
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      assert.deepEqual([emu.count('oidctoken'), emu.count('gcp.sts.token'), emu.count('gcp.iam.generateAccessToken'), emu.count('entra.token'), total()], [1, 1, 1, 0, 3]);
      assert.deepEqual(oidcConnectionIds(), [gcp.env.id]);
      const v = r.variables;
      assert.equal(emu.gcpTokens().find((t) => t.token === v.accessToken.value)?.principal, `serviceAccount:${GCP_SA}`);
      assert.deepEqual([v.GOOGLE_CLOUD_PROJECT.value, v.projectId.value], ['contoso-web', 'contoso-web']);
      const file = v.GOOGLE_APPLICATION_CREDENTIALS.value;
      const creds = JSON.parse(fs.readFileSync(file, 'utf8')) as { audience: string; service_account_impersonation_url: string; credential_source: { file: string } };
      assert.equal(creds.audience, `//iam.googleapis.com/${GCP_PROVIDER}`);
      assert.match(creds.service_account_impersonation_url, new RegExp(`/serviceAccounts/${GCP_SA}:generateAccessToken$`));
      assert.match(r.log, new RegExp(`Subject \\(sub\\): {2}sc://contoso/web/${gcp.name}`));
      emu.resetCounts();
      const g = await googleStep(r);
      assert.ok(g.token, JSON.stringify(g));
      assert.equal(emu.gcpTokens().find((t) => t.token === g.token)?.principal, `serviceAccount:${GCP_SA}`);
      assert.equal(g.clientEmail, GCP_SA);
      const post = await run('GcpAuthFederatedV1', [gcp.env], {}, j, postJobEnv(r), 'post.js');
      assert.equal(post.result, 'Succeeded', post.stdout);
      assert.ok(!fs.existsSync(file) && !fs.existsSync(creds.credential_source.file));
    });

    it('refusals name the input, both values and the fix, and make no request', async () => {
      const otherProvider = 'projects/123456789012/locations/global/workloadIdentityPools/azure-pipelines/providers/contoso';
      const cases: [Record<string, string>, RegExp[]][] = [
        [{ workloadIdentityProvider: otherProvider }, [new RegExp(`Input 'workloadIdentityProvider': '${otherProvider}' differs from the workload identity provider of service connection '${gcp.env.id}' \\('${GCP_PROVIDER}'\\)`), /Fix: Remove workloadIdentityProvider: the idToken goes to the connection's provider/]],
        [{ serviceAccount: 'owner@contoso-web.iam.gserviceaccount.com' }, [/Input 'serviceAccount': 'owner@contoso-web\.iam\.gserviceaccount\.com' differs from the service account of service connection .* \('web-deploy@contoso-web\.iam\.gserviceaccount\.com'\)/, /Fix: Remove serviceAccount/]],
        [{ connectedServiceNameARM: 'b0000000-0000-4000-8000-0000000000a1' }, [/Input 'azureSubscription': azureSubscription and gcpConnection are both set/]],
      ];
      for (const [inputs, messages] of cases) {
        const r = await run('GcpAuthFederatedV1', [gcp.env], { gcpConnection: gcp.env.id, ...inputs }, { publicHosts: true, tempDirectory: jobTemp() }, { AGENT_PROXYURL: proxy.url });
        assert.equal(r.result, 'Failed', r.stdout);
        for (const m of messages) assert.match(r.errors.join('\n'), m);
      }
      assert.equal(total(), 0, 'no request at all');
    });
  });
});
