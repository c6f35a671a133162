/** L0 tests for AwsAssumeRoleFederated@1 and its post-job step, with the task-lib's MockTestRunner. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { postJobEnv, runL0, setVariableOf } from './federated-harness';

const runner = path.join(__dirname, 'aws-runner.js');
const ROLE = 'arn:aws:iam::123456789012:role/deploy';

const run = (inputs: Record<string, string>, env: Record<string, string> = {}) => runL0(runner, 'AwsAssumeRoleFederatedV1', inputs, env);
const variable = setVariableOf;

describe('L0 AwsAssumeRoleFederated@1', function () {
  this.timeout(20_000);

  it('sets the credentials for later steps: the secret key and session token as secrets', async () => {
    const tr = await run({ roleArn: ROLE, region: 'eu-west-2' });
    assert.ok(tr.succeeded, tr.stdout);
    assert.match(tr.stdout, /L0: STS https:\/\/sts\.eu-west-2\.amazonaws\.com\/ arn:aws:iam::123456789012:role\/deploy session=azp-Deploy-web-CI-main-4711 duration=3600/);
    assert.match(variable(tr.stdout, 'AWS_SECRET_ACCESS_KEY')!.line, /issecret=true/);
    assert.match(variable(tr.stdout, 'AWS_SESSION_TOKEN')!.line, /issecret=true/);
    assert.match(variable(tr.stdout, 'AWS_ACCESS_KEY_ID')!.line, /issecret=false/);
    assert.equal(variable(tr.stdout, 'AWS_REGION')!.value, 'eu-west-2');
    assert.equal(variable(tr.stdout, 'AWS_DEFAULT_REGION')!.value, 'eu-west-2');
    assert.match(variable(tr.stdout, 'awsExpiration')!.line, /isOutput=true/);
    assert.equal(variable(tr.stdout, 'awsAssumedRoleArn')!.value, 'arn:aws:sts::123456789012:assumed-role/deploy/x');
    assert.ok(tr.stdout.indexOf('##vso[task.setsecret]l0SecretAccessKey') < tr.stdout.indexOf('variable=AWS_SECRET_ACCESS_KEY'), 'masked first');
    assert.equal(variable(tr.stdout, 'AWS_WEB_IDENTITY_TOKEN_FILE'), undefined);
    assert.match(variable(tr.stdout, 'awsAccessKeyId')!.line, /isOutput=true;issecret=false;\]ASIAL0TESTKEY0000001$/);
    assert.match(variable(tr.stdout, 'awsSecretAccessKey')!.line, /isOutput=true;issecret=true;\]l0SecretAccessKey/);
    assert.match(variable(tr.stdout, 'awsSessionToken')!.line, /isOutput=true;issecret=true;\]l0SessionToken$/);
  });

  it('exportWebIdentityFile: a 0600 token file and the variables the SDKs read, no key variable; the post-job step removes it', async () => {
    const tr = await run({ roleArn: ROLE, exportWebIdentityFile: 'true', roleSessionName: 'release-42', durationSeconds: '900', stsEndpoint: 'https://vpce-1.sts.us-east-1.vpce.amazonaws.com' });
    assert.ok(tr.succeeded, tr.stdout);
    assert.match(tr.stdout, /L0: STS https:\/\/vpce-1\.sts\.us-east-1\.vpce\.amazonaws\.com\/ .* session=release-42 duration=900/);
    const file = variable(tr.stdout, 'AWS_WEB_IDENTITY_TOKEN_FILE')!.value;
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(variable(tr.stdout, 'AWS_ROLE_ARN')!.value, ROLE);
    assert.equal(variable(tr.stdout, 'AWS_ROLE_SESSION_NAME')!.value, 'release-42');
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) assert.equal(variable(tr.stdout, k), undefined, `${k} is not set: the CLI would stop at a partial key pair`);
    assert.equal(variable(tr.stdout, 'AWS_REGION')!.value, 'us-east-1');
    assert.match(variable(tr.stdout, 'awsSecretAccessKey')!.line, /isOutput=true;issecret=true;/);
    assert.match(tr.stdout, /L0: refresher started for AwsAssumeRoleFederated-a5500000/);
    const post = await run({}, postJobEnv(tr.stdout));
    assert.ok(post.succeeded, post.stdout);
    assert.match(post.stdout, /L0: refresher 434343 \(instance l0-instance\) stopped/, 'the post-job step hands over the whole record, instance id included');
    assert.ok(!fs.existsSync(file));
  });

  const bad: [Record<string, string>, RegExp, Record<string, string>?][] = [
    [{}, /Input 'roleArn': no role is given/],
    [{ roleArn: 'arn:aws:iam::12345:role/x' }, /Input 'roleArn': 'arn:aws:iam::12345:role\/x' is not an IAM role ARN/],
    [{ roleArn: 'arn:aws:iam::123456789012:user/bob' }, /is not an IAM role ARN/],
    [{ roleArn: ROLE, region: 'Europe' }, /Input 'region': 'europe' is not an AWS region code/],
    [{ roleArn: ROLE, durationSeconds: '60' }, /Input 'durationSeconds': '60' is not a whole number of seconds from 900 to 43200/],
    [{ roleArn: ROLE, roleSessionName: 'has space' }, /Input 'roleSessionName': 'has space' is not a valid role session name/],
    [{ roleArn: ROLE, stsEndpoint: 'http://sts.local/' }, /Input 'stsEndpoint': 'http:\/\/sts\.local\/' is not https/],
    [{ roleArn: ROLE }, /Input 'azureSubscription': .*uses managed identity, which has no idToken for AWS/, { L0_SCHEME: 'ManagedServiceIdentity' }],
  ];
  for (const [inputs, message, env] of bad) {
    it(`refuses before any request: ${JSON.stringify({ ...inputs, ...(env ?? {}) })}`, async () => {
      const tr = await run(inputs, env);
      assert.ok(tr.failed, tr.stdout);
      assert.match(tr.errorIssues[0], message);
      assert.doesNotMatch(tr.stdout, /L0: STS/);
    });
  }
});
