/** L0 tests for AwsAssumeRoleFederated@1 and its post-job step, with the task-lib's MockTestRunner. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { L0_CONNECTION, L0_OWN_CONNECTION, postJobEnv, runL0, setVariableOf } from './federated-harness';

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

  describe('with an AWS (workload identity federation) connection: awsConnection', () => {
    const CONN_ROLE = 'arn:aws:iam::210987654321:role/from-connection';
    const own = (parameters: Record<string, string> = {}, arm = false) => ({
      L0_OWN: JSON.stringify({ input: 'awsConnection', parameters: { roleArn: CONN_ROLE, region: 'eu-central-1', maxSessionDuration: '1800', ...parameters } }),
      L0_ARM: arm ? '1' : '0',
    });

    it('inferred from awsConnection (connectionType left at its default): the role, region and maximum from the connection; the idToken is the connection\'s', async () => {
      const tr = await run({}, own());
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, new RegExp(`L0: idToken requested for ${L0_OWN_CONNECTION}`));
      assert.match(tr.stdout, /L0: STS https:\/\/sts\.eu-central-1\.amazonaws\.com\/ arn:aws:iam::210987654321:role\/from-connection session=azp-Deploy-web-CI-main-4711 duration=1800/, 'the default duration cut to the connection\'s maximum');
      assert.equal(variable(tr.stdout, 'AWS_REGION')!.value, 'eu-central-1');
      assert.match(variable(tr.stdout, 'AWS_SECRET_ACCESS_KEY')!.line, /issecret=true/);
      assert.match(tr.stdout, /Service connection a5500000-0000-4000-8000-00000000c0aa: AWS \(workload identity federation\), role arn:aws:iam::210987654321:role\/from-connection, region eu-central-1/);
    });

    it('explicit connectionType aws; inputs narrow: a session name, a shorter session, the same role and region; exportWebIdentityFile names the connection\'s role', async () => {
      const tr = await run({ connectionType: 'aws', roleSessionName: 'narrowed', durationSeconds: '900', roleArn: CONN_ROLE, region: 'EU-CENTRAL-1', exportWebIdentityFile: 'true', keepTokenFileFresh: 'false' }, own());
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, /L0: STS https:\/\/sts\.eu-central-1\.amazonaws\.com\/ arn:aws:iam::210987654321:role\/from-connection session=narrowed duration=900/);
      assert.equal(variable(tr.stdout, 'AWS_ROLE_ARN')!.value, CONN_ROLE);
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) assert.equal(variable(tr.stdout, k), undefined, k);
    });

    it('the connection\'s STS endpoint; no maximum set: 3600', async () => {
      const tr = await run({ stsEndpoint: 'https://vpce-1.sts.eu-central-1.vpce.amazonaws.com' }, own({ stsEndpoint: 'https://vpce-1.sts.eu-central-1.vpce.amazonaws.com/', maxSessionDuration: '' }));
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, /L0: STS https:\/\/vpce-1\.sts\.eu-central-1\.vpce\.amazonaws\.com\/ .* duration=3600/);
    });

    it('connectionType aws wins over a stale azureSubscription, with a warning', async () => {
      const tr = await run({ connectionType: 'aws' }, own({}, true));
      assert.ok(tr.succeeded, tr.stdout);
      assert.ok(tr.warningIssues.some((w) => /connectionType is aws: azureSubscription is ignored/.test(w)), tr.stdout);
      assert.match(tr.stdout, new RegExp(`L0: idToken requested for ${L0_OWN_CONNECTION}`));
    });

    it('azureSubscription alone still works as before (connectionType azureResourceManager)', async () => {
      const tr = await run({ connectionType: 'azureResourceManager', roleArn: ROLE });
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, new RegExp(`L0: idToken requested for ${L0_CONNECTION}`));
    });

    const refused: [string, Record<string, string>, Record<string, string>, RegExp[]][] = [
      ['both connections set', {}, own({}, true), [/Input 'azureSubscription': azureSubscription and awsConnection are both set/, /Fix: Keep one: awsConnection/]],
      ['no connection at all', { roleArn: ROLE }, { L0_ARM: '0' }, [/Input 'awsConnection': no service connection is given/, /azureSubscription/]],
      ['a different role', { roleArn: ROLE }, own(), [new RegExp(`Input 'roleArn': '${ROLE}' differs from the role of service connection '${L0_OWN_CONNECTION}' \\('${CONN_ROLE}'\\)`), /Fix: Remove roleArn/]],
      ['a different region', { region: 'us-east-1' }, own(), [/Input 'region': 'us-east-1' differs from the region of service connection .* \('eu-central-1'\)/, /set AWS_REGION \(or --region\) in the step/]],
      ['a different STS endpoint', { stsEndpoint: 'https://sts.example.com/' }, own(), [/Input 'stsEndpoint': 'https:\/\/sts\.example\.com\/' differs from the STS endpoint of service connection .* \('https:\/\/sts\.eu-central-1\.amazonaws\.com\/'\)/, /Fix: Remove stsEndpoint/]],
      ['a longer session', { durationSeconds: '3600' }, own(), [/Input 'durationSeconds': 3600 seconds is longer than the maximum session duration of service connection .* \(1800 seconds\)/, /Fix: Set durationSeconds to 1800 or less/]],
      ['a connection with a bad role ARN', {}, own({ roleArn: 'arn:aws:iam::1:role/x' }), [/Input 'awsConnection': the Role ARN \(roleArn\) of service connection .*: 'arn:aws:iam::1:role\/x' is not an IAM role ARN/, /Fix: Edit the service connection .* and correct its Role ARN\. Use the form arn:aws:iam::<12-digit account id>/]],
      ['a connection with a bad region', {}, own({ region: 'mars' }), [/Input 'awsConnection': the Region \(region\) of service connection .*: 'mars' is not an AWS region code/, /Fix: Edit the service connection/]],
      ['a connection with a bad maximum', {}, own({ maxSessionDuration: '99999' }), [/Input 'awsConnection': the Maximum session duration \(maxSessionDuration\)/, /Fix: Edit the service connection/]],
      ['a connection with an http STS endpoint', {}, own({ stsEndpoint: 'http://sts.local/' }), [/Input 'awsConnection': the STS endpoint \(stsEndpoint\) .*is not https/]],
      ['connectionType not of this task', { connectionType: 'gcp' }, own(), [/Input 'connectionType': 'gcp' is not a connection type of this task/]],
    ];
    for (const [title, inputs, env, messages] of refused) {
      it(`refuses before any request: ${title}`, async () => {
        const tr = await run(inputs, env);
        assert.ok(tr.failed, tr.stdout);
        for (const m of messages) assert.match(tr.errorIssues[0], m);
        assert.doesNotMatch(tr.stdout, /L0: (STS|idToken requested)/);
      });
    }
  });
});
