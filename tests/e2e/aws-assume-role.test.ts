/**
 * AwsAssumeRoleFederated@1 end to end: the bundled task against the emulator's Azure DevOps and
 * AWS STS; the credentials it sets are then used by AWS's own SDK (@aws-sdk/client-sts), whose
 * SigV4-signed GetCallerIdentity the emulator answers only for sessions it issued.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import { GetCallerIdentityCommand, STSClient, STSClientConfig } from '@aws-sdk/client-sts';
import { fromTokenFile } from '@aws-sdk/credential-provider-web-identity';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startEmulator, Emulator, stsFault } from '../emulator/index';
import { addFederatedConnection, E2eRuns, FederatedConnection, postJobEnv, wif } from '../helpers/e2e';
import { TaskRun } from '../helpers/task-process';

const ACCOUNT = '123456789012';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/azure-pipelines-deploy`;

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
    const provider = conn.expected.issuer.replace(/^https:\/\//, '');
    emu.addAwsOidcProvider({ url: provider, clientIds: ['api://AzureADTokenExchange'], accountId: ACCOUNT });
    emu.addAwsRole({ arn: ROLE, maxSessionDurationSeconds: 7200, trust: { issuer: provider, sub: conn.expected.subject, aud: 'api://AzureADTokenExchange' } });
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await emu?.stop();
    if (savedWarning === undefined) delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    else process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = savedWarning;
  });
  afterEach(function () {
    e2e.scan(this.currentTest?.title);
    emu.clearFaults();
    emu.resetCounts();
    emu.idTokenLifetimeSeconds = 600;
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
    assert.equal(v.awsAssumedRoleArn.value, `arn:aws:sts::${ACCOUNT}:assumed-role/azure-pipelines-deploy/azp-web-deploy-812`);
    assert.ok(Date.parse(v.awsExpiration.value) - Date.now() > 7000_000, 'durationSeconds reached STS');
    const who = await sdk({ accessKeyId: v.AWS_ACCESS_KEY_ID.value, secretAccessKey: v.AWS_SECRET_ACCESS_KEY.value, sessionToken: v.AWS_SESSION_TOKEN.value }).send(new GetCallerIdentityCommand({}));
    assert.equal(who.Arn, v.awsAssumedRoleArn.value);
    assert.equal(who.Account, ACCOUNT);
    assert.match(r.log, new RegExp(`Subject \\(sub\\): {2}${conn.expected.subject.replace(/[/.]/g, '\\$&')}`));
  });

  it('exportWebIdentityFile: the SDK assumes the role itself from the token file; the post-job step removes it', async () => {
    const r = await assume(conn, { exportWebIdentityFile: 'true', roleSessionName: 'sdk-from-file' });
    assert.equal(r.result, 'Succeeded', r.stdout);
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
});
