/**
 * Tokens that outlive the idToken: with idTokens that live 20 seconds, a later step reads the
 * token file a long while after the task ran and still gets in, at Entra ID through the Azure
 * SDK's own WorkloadIdentityCredential and at AWS STS through the AWS SDK's web-identity provider.
 * The post-job steps leave no process and no file behind; a refresher whose job token is refused
 * ends by itself.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromTokenFile } from '@aws-sdk/credential-provider-web-identity';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startEmulator, Emulator } from '../emulator/index';
import { addFederatedConnection, E2eRuns, isAlive, postJobEnv, wif, trustInAws } from '../helpers/e2e';
import { newTempDirectory } from '../helpers/agent';
import { TaskRun } from '../helpers/task-process';

const ACCOUNT = '123456789012';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/long-job`;



/** The pid in the refresher record the main step left for its post-job step. */
const refresherPid = (r: TaskRun, stateKey: string): number => JSON.parse(r.taskVariables[`${stateKey}.Refresher`]).pid;

const expiryOf = (file: string) => JSON.parse(Buffer.from(fs.readFileSync(file, 'utf8').split('.')[1], 'base64url').toString()).exp * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('E2E long jobs: token files kept fresh (keepTokenFileFresh)', function () {
  this.timeout(90_000);
  let emu: Emulator;
  const e2e = new E2eRuns(() => emu);
  const savedWarning = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;

  before(async () => {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    emu = await startEmulator();
  });
  after(async () => {
    await emu?.stop();
    if (savedWarning === undefined) delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    else process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = savedWarning;
  });
  afterEach(function () {
    e2e.scan(this.currentTest?.title);
    emu.idTokenLifetimeSeconds = 600;
  });

  it('a later step, 42 s after 20-second idTokens were issued, gets in at Entra ID and at STS; post-job leaves nothing behind', async () => {
    emu.idTokenLifetimeSeconds = 20;
    const job = { tempDirectory: newTempDirectory() };
    const azure = addFederatedConnection(emu, 'long-azure');
    const aws = addFederatedConnection(emu, 'long-aws');
    trustInAws(emu, aws.expected, ROLE);
    const started = Date.now();

    const first = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(azure), inputs: { exportAzureIdentityEnv: 'true' }, job });
    assert.equal(first.result, 'Succeeded', first.stdout);
    const firstPid = refresherPid(first, 'WorkloadIdentity.FetchOidcToken.TokenFile');
    // Re-running the task in the same job replaces its refresher.
    const fetch = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(azure), inputs: { exportAzureIdentityEnv: 'true' }, job });
    assert.equal(fetch.result, 'Succeeded', fetch.stdout);
    const azurePid = refresherPid(fetch, 'WorkloadIdentity.FetchOidcToken.TokenFile');
    assert.ok(!isAlive(firstPid), 'the first refresher was replaced');
    assert.ok(isAlive(azurePid));
    const assume = await e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: wif(aws), inputs: { roleArn: ROLE, stsEndpoint: `${emu.url}/`, exportWebIdentityFile: 'true' }, job });
    assert.equal(assume.result, 'Succeeded', assume.stdout);
    const awsPid = refresherPid(assume, 'WorkloadIdentity.AwsAssumeRole.TokenFile');
    assert.ok(isAlive(awsPid));
    const azureFile = fetch.variables.AZURE_FEDERATED_TOKEN_FILE.value;
    const awsFile = assume.variables.AWS_WEB_IDENTITY_TOKEN_FILE.value;
    assert.notEqual(azureFile, awsFile, 'two connections, two files');

    await sleep(Math.max(0, 42_000 - (Date.now() - started)));
    for (const file of [azureFile, awsFile]) {
      assert.ok(expiryOf(file) > Date.now(), `${path.basename(file)} holds an unexpired token`);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      const status = JSON.parse(fs.readFileSync(`${file}.status.json`, 'utf8'));
      assert.equal(status.state, 'running');
      assert.ok(status.refreshes >= 3, JSON.stringify(status));
    }

    // The later step: the Azure SDK, as a separate process with the variables the task set.
    const step = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [path.join(__dirname, '..', 'helpers', 'azure-identity-step.js')], {
        env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: emu.caCertPath, AZURE_CLIENT_ID: fetch.variables.AZURE_CLIENT_ID.value, AZURE_TENANT_ID: fetch.variables.AZURE_TENANT_ID.value, AZURE_FEDERATED_TOKEN_FILE: azureFile, AZURE_AUTHORITY_HOST: fetch.variables.AZURE_AUTHORITY_HOST.value },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('close', (code) => resolve({ code, out }));
    });
    assert.equal(step.code, 0, step.out);
    assert.match(step.out, /^ok /);
    assert.equal(emu.lastTokenRequest()?.assertionKind, 'federated');

    // And AWS, through the SDK's own web-identity provider reading the file.
    const handler = new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: fs.readFileSync(emu.caCertPath) }) });
    const credentials = fromTokenFile({ webIdentityTokenFile: awsFile, roleArn: ROLE, roleSessionName: 'later-step', clientConfig: { region: 'us-east-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1 } });
    const sts = new STSClient({ region: 'us-east-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1, credentials });
    try {
      const who = await sts.send(new GetCallerIdentityCommand({}));
      assert.equal(who.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/long-job/later-step`);
    } finally {
      sts.destroy();
    }

    // Post-job: no process, no file.
    const postAzure = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(azure), job, env: postJobEnv(fetch), entry: 'post.js' });
    const postAws = await e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: wif(aws), job, env: postJobEnv(assume), entry: 'post.js' });
    assert.equal(postAzure.result, 'Succeeded', postAzure.stdout);
    assert.equal(postAws.result, 'Succeeded', postAws.stdout);
    assert.match(postAzure.log, new RegExp(`Stopped the token refresher \\(pid ${azurePid}\\)`));
    for (const pid of [firstPid, azurePid, awsPid]) assert.ok(!isAlive(pid), `refresher ${pid} is gone`);
    for (const file of [azureFile, awsFile]) {
      assert.ok(!fs.existsSync(file) && !fs.existsSync(path.dirname(file)), `${file} is gone`);
    }
  });

  it('a refresher whose job token is refused (the job is over) ends by itself', async () => {
    emu.idTokenLifetimeSeconds = 12;
    const c = addFederatedConnection(emu, 'orphan');
    const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(c), inputs: { exportAzureIdentityEnv: 'true' } });
    assert.equal(r.result, 'Succeeded', r.stdout);
    const pid = refresherPid(r, 'WorkloadIdentity.FetchOidcToken.TokenFile');
    const file = r.variables.AZURE_FEDERATED_TOKEN_FILE.value;
    const token = emu.jobAccessToken;
    emu.jobAccessToken = 'the-job-is-over';
    try {
      const deadline = Date.now() + 15_000;
      while (isAlive(pid) && Date.now() < deadline) await sleep(200);
      assert.ok(!isAlive(pid), 'the refresher stopped by itself');
      const status = JSON.parse(fs.readFileSync(`${file}.status.json`, 'utf8'));
      assert.equal(status.state, 'stopped');
      assert.match(status.reason, /job's access token was refused \(HTTP 203\)/);
    } finally {
      emu.jobAccessToken = token;
    }
    const post = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(c), env: postJobEnv(r), entry: 'post.js' });
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.match(post.log, /had already stopped/);
  });
});
