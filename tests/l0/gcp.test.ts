/** L0 tests for GcpAuthFederated@1 and its post-job step, with the task-lib's MockTestRunner. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { L0_CONNECTION, L0_OWN_CONNECTION, postJobEnv, runL0, setVariableOf } from './federated-harness';

const runner = path.join(__dirname, 'gcp-runner.js');
const PROVIDER = 'projects/123456789012/locations/global/workloadIdentityPools/azure-pipelines/providers/contoso';
const SA = 'deployer@my-project.iam.gserviceaccount.com';

const run = (inputs: Record<string, string>, env: Record<string, string> = {}) => runL0(runner, 'GcpAuthFederatedV1', inputs, env);
const variable = setVariableOf;

describe('L0 GcpAuthFederated@1', function () {
  this.timeout(20_000);

  it('impersonates, outputs the access token as a secret (masked first), and sets the project', async () => {
    const tr = await run({ workloadIdentityProvider: PROVIDER, serviceAccount: SA, projectId: 'contoso-prod', tokenFormat: 'access_token', accessTokenLifetime: '900', accessTokenScopes: 'cloud-platform, userinfo.email', createCredentialsFile: 'false' });
    assert.ok(tr.succeeded, tr.stdout);
    assert.match(tr.stdout, /L0: STS projects\/123456789012\/locations\/global\/workloadIdentityPools\/azure-pipelines\/providers\/contoso subject_token=the idToken/);
    assert.match(tr.stdout, /L0: IAM deployer@my-project\.iam\.gserviceaccount\.com bearer=l0-federated-token scopes=https:\/\/www\.googleapis\.com\/auth\/cloud-platform https:\/\/www\.googleapis\.com\/auth\/userinfo\.email lifetime=900/);
    const at = variable(tr.stdout, 'accessToken')!;
    assert.match(at.line, /issecret=true/);
    assert.match(at.line, /isOutput=true/);
    assert.ok(tr.stdout.includes('##vso[task.setsecret]l0-service-account-token'));
    assert.ok(tr.stdout.indexOf('##vso[task.setsecret]l0-service-account-token') < tr.stdout.indexOf('variable=accessToken;'), 'masked first');
    assert.equal(variable(tr.stdout, 'accessTokenExpiresOn')!.value, '2030-01-01T01:00:00.000Z');
    assert.match(variable(tr.stdout, 'accessTokenExpiresOn')!.line, /issecret=false/);
    assert.equal(variable(tr.stdout, 'GOOGLE_CLOUD_PROJECT')!.value, 'contoso-prod');
    assert.equal(variable(tr.stdout, 'CLOUDSDK_CORE_PROJECT')!.value, 'contoso-prod');
    assert.equal(variable(tr.stdout, 'projectId')!.value, 'contoso-prod');
    assert.equal(variable(tr.stdout, 'GOOGLE_APPLICATION_CREDENTIALS'), undefined);
    assert.doesNotMatch(tr.stdout, /L0: refresher started/);
  });

  it('direct access: no impersonation; without tokenFormat no accessToken output', async () => {
    const tr = await run({ workloadIdentityProvider: `//iam.googleapis.com/${PROVIDER}`, createCredentialsFile: 'false' });
    assert.ok(tr.succeeded, tr.stdout);
    assert.match(tr.stdout, /L0: STS projects\/123456789012\//);
    assert.doesNotMatch(tr.stdout, /L0: IAM/);
    assert.equal(variable(tr.stdout, 'accessToken'), undefined);
    assert.ok(!tr.stdout.includes('l0-federated-token'), 'the federated token is never printed');
  });

  it('the credentials file: 0600, external_account naming a 0600 token file, both variables; the post-job step removes it', async () => {
    const tr = await run({ workloadIdentityProvider: PROVIDER, serviceAccount: SA });
    assert.ok(tr.succeeded, tr.stdout);
    const file = variable(tr.stdout, 'GOOGLE_APPLICATION_CREDENTIALS')!;
    assert.match(file.line, /issecret=false/);
    assert.equal(variable(tr.stdout, 'CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE')!.value, file.value);
    assert.equal(variable(tr.stdout, 'credentialsFilePath')!.value, file.value);
    assert.match(variable(tr.stdout, 'credentialsFilePath')!.line, /isOutput=true/);
    assert.equal(fs.statSync(file.value).mode & 0o777, 0o600);
    const json = JSON.parse(fs.readFileSync(file.value, 'utf8')) as { type: string; audience: string; service_account_impersonation_url: string; credential_source: { file: string; format: { type: string } } };
    assert.equal(json.type, 'external_account');
    assert.equal(json.audience, `//iam.googleapis.com/${PROVIDER}`);
    assert.equal(json.service_account_impersonation_url, 'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/deployer@my-project.iam.gserviceaccount.com:generateAccessToken');
    assert.deepEqual(json.credential_source.format, { type: 'text' });
    assert.equal(fs.statSync(json.credential_source.file).mode & 0o777, 0o600);
    assert.equal(path.dirname(json.credential_source.file), path.dirname(file.value));
    assert.doesNotMatch(fs.readFileSync(file.value, 'utf8'), /l0-job-access-token|l0-federated-token|l0-service-account-token/);
    assert.match(tr.stdout, /L0: refresher started for GcpAuthFederated-a5500000/);
    const post = await run({}, postJobEnv(tr.stdout));
    assert.ok(post.succeeded, post.stdout);
    assert.match(post.stdout, /L0: refresher 434343 \(instance l0-instance\) stopped/);
    assert.ok(!fs.existsSync(file.value));
    assert.ok(!fs.existsSync(json.credential_source.file));
    const again = await run({}, postJobEnv(tr.stdout));
    assert.ok(again.succeeded, again.stdout);
  });

  it('keepTokenFileFresh false: the file, no refresher', async () => {
    const tr = await run({ workloadIdentityProvider: PROVIDER, keepTokenFileFresh: 'false' });
    assert.ok(tr.succeeded, tr.stdout);
    assert.ok(fs.existsSync(variable(tr.stdout, 'GOOGLE_APPLICATION_CREDENTIALS')!.value));
    assert.doesNotMatch(tr.stdout, /L0: refresher started/);
  });

  const bad: [Record<string, string>, RegExp, Record<string, string>?][] = [
    [{}, /Input 'workloadIdentityProvider': no provider is given/],
    [{ workloadIdentityProvider: 'projects/my-project/locations/global/workloadIdentityPools/azure-pipelines/providers/contoso' }, /Input 'workloadIdentityProvider': .* is not a workload identity provider name/],
    [{ workloadIdentityProvider: PROVIDER, serviceAccount: 'deployer' }, /Input 'serviceAccount': 'deployer' is not a service account e-mail/],
    [{ workloadIdentityProvider: PROVIDER, projectId: '123456789012' }, /Input 'projectId': '123456789012' is not a Google Cloud project id/],
    [{ workloadIdentityProvider: PROVIDER, accessTokenLifetime: '60' }, /Input 'accessTokenLifetime': '60' is not a whole number of seconds from 300 to 43200/],
    [{ workloadIdentityProvider: PROVIDER, accessTokenScopes: 'https://evil.example/auth/x' }, /Input 'accessTokenScopes': 'https:\/\/evil\.example\/auth\/x' is not a Google OAuth scope/],
    [{ workloadIdentityProvider: PROVIDER, createCredentialsFile: 'yes' }, /Input 'createCredentialsFile': 'yes' is not a boolean/],
    [{ workloadIdentityProvider: PROVIDER }, /Input 'azureSubscription': .*uses managed identity, which has no idToken for Google Cloud/, { L0_SCHEME: 'ManagedServiceIdentity' }],
  ];
  for (const [inputs, message, env] of bad) {
    it(`refuses before any request: ${JSON.stringify({ ...inputs, ...(env ?? {}) })}`, async () => {
      const tr = await run(inputs, env);
      assert.ok(tr.failed, tr.stdout);
      assert.match(tr.errorIssues[0], message);
      assert.doesNotMatch(tr.stdout, /L0: STS/);
    });
  }

  describe('with a Google Cloud (workload identity federation) connection: gcpConnection', () => {
    const CONN_PROVIDER = 'projects/210987654321/locations/global/workloadIdentityPools/ado-pool/providers/contoso-web';
    const CONN_SA = 'web-deploy@contoso-web.iam.gserviceaccount.com';
    const own = (parameters: Record<string, string> = {}, arm = false) => ({
      L0_OWN: JSON.stringify({ input: 'gcpConnection', parameters: { workloadIdentityProvider: CONN_PROVIDER, serviceAccount: CONN_SA, projectId: 'contoso-web', ...parameters } }),
      L0_ARM: arm ? '1' : '0',
    });

    it('inferred from gcpConnection: the provider, service account and project from the connection; the idToken is the connection\'s; the credentials file impersonates its account', async () => {
      const tr = await run({ tokenFormat: 'access_token' }, own());
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, new RegExp(`L0: idToken requested for ${L0_OWN_CONNECTION}`));
      assert.match(tr.stdout, /L0: STS projects\/210987654321\/locations\/global\/workloadIdentityPools\/ado-pool\/providers\/contoso-web subject_token=the idToken/);
      assert.match(tr.stdout, /L0: IAM web-deploy@contoso-web\.iam\.gserviceaccount\.com bearer=l0-federated-token/);
      assert.equal(variable(tr.stdout, 'GOOGLE_CLOUD_PROJECT')!.value, 'contoso-web');
      assert.equal(variable(tr.stdout, 'projectId')!.value, 'contoso-web');
      assert.match(variable(tr.stdout, 'accessToken')!.line, /issecret=true/);
      const json = JSON.parse(fs.readFileSync(variable(tr.stdout, 'GOOGLE_APPLICATION_CREDENTIALS')!.value, 'utf8')) as { audience: string; service_account_impersonation_url: string };
      assert.equal(json.audience, `//iam.googleapis.com/${CONN_PROVIDER}`);
      assert.match(json.service_account_impersonation_url, /serviceAccounts\/web-deploy@contoso-web\.iam\.gserviceaccount\.com:generateAccessToken$/);
      assert.match(tr.stdout, /L0: refresher started for GcpAuthFederated-a5500000-0000-4000-8000-00000000c0aa/);
    });

    it('the same values as inputs are accepted; projectId may be set where the connection has none; no service account: direct access', async () => {
      const tr = await run({ connectionType: 'gcp', workloadIdentityProvider: `//iam.googleapis.com/${CONN_PROVIDER}`, projectId: 'contoso-other', createCredentialsFile: 'false' }, own({ serviceAccount: '', projectId: '' }));
      assert.ok(tr.succeeded, tr.stdout);
      assert.doesNotMatch(tr.stdout, /L0: IAM/);
      assert.equal(variable(tr.stdout, 'GOOGLE_CLOUD_PROJECT')!.value, 'contoso-other');
    });

    it('azureSubscription alone still works as before', async () => {
      const tr = await run({ workloadIdentityProvider: PROVIDER, createCredentialsFile: 'false' });
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, new RegExp(`L0: idToken requested for ${L0_CONNECTION}`));
    });

    const refused: [string, Record<string, string>, Record<string, string>, RegExp[]][] = [
      ['both connections set', {}, own({}, true), [/Input 'azureSubscription': azureSubscription and gcpConnection are both set/]],
      ['no connection at all', { workloadIdentityProvider: PROVIDER }, { L0_ARM: '0' }, [/Input 'gcpConnection': no service connection is given/]],
      ['a different provider', { workloadIdentityProvider: PROVIDER }, own(), [new RegExp(`Input 'workloadIdentityProvider': '${PROVIDER}' differs from the workload identity provider of service connection '${L0_OWN_CONNECTION}' \\('${CONN_PROVIDER}'\\)`), /Fix: Remove workloadIdentityProvider/]],
      ['a different service account', { serviceAccount: SA }, own(), [/Input 'serviceAccount': 'deployer@my-project\.iam\.gserviceaccount\.com' differs from the service account of service connection .* \('web-deploy@contoso-web\.iam\.gserviceaccount\.com'\)/, /Fix: Remove serviceAccount/]],
      ['a service account where the connection has none', { serviceAccount: SA }, own({ serviceAccount: '' }), [/Input 'serviceAccount': .* differs from the service account of service connection .* \('\(none: direct resource access\)'\)/]],
      ['a different project', { projectId: 'contoso-other' }, own(), [/Input 'projectId': 'contoso-other' differs from the project id of service connection .* \('contoso-web'\)/]],
      ['a connection with a bad provider', {}, own({ workloadIdentityProvider: 'projects/contoso/locations/global/workloadIdentityPools/ado/providers/x1x1' }), [/Input 'gcpConnection': the Workload identity provider \(workloadIdentityProvider\) of service connection .* is not a workload identity provider name/, /Fix: Edit the service connection .* It takes the project number/]],
      ['a connection with a bad service account', {}, own({ serviceAccount: 'deployer' }), [/Input 'gcpConnection': the Service account \(serviceAccount\) of service connection .*: 'deployer' is not a service account e-mail/, /Fix: Edit the service connection/]],
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
