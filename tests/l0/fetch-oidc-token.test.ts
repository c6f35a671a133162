/** L0 tests for FetchOidcToken@1 with the task-lib's MockTestRunner. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';

const runner = path.join(__dirname, 'fetch-oidc-token-runner.js');
const taskJson = path.resolve(__dirname, '..', '..', '..', 'tasks', 'FetchOidcTokenV1', 'task.json');

async function run(scenario: string): Promise<MockTestRunner & { tempDir: string }> {
  const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-'));
  process.env.L0_SCENARIO = scenario;
  process.env.L0_TEMP = tempDir;
  const tr = new MockTestRunner(runner, taskJson);
  tr.nodePath = process.execPath; // otherwise the runner downloads a Node build
  await tr.runAsync();
  return Object.assign(tr, { tempDir });
}

function setVariableLine(stdout: string, name: string): string | undefined {
  return stdout.split(/\r?\n/).find((l) => l.startsWith(`##vso[task.setvariable variable=${name};`));
}

describe('L0 FetchOidcToken@1', function () {
  this.timeout(20_000);

  it('federated connection: idToken as a secret output, claims logged, no exchange', async () => {
    const tr = await run('federated');
    assert.ok(tr.succeeded, tr.stdout);
    assert.match(setVariableLine(tr.stdout, 'idToken') ?? '', /issecret=true/);
    assert.match(setVariableLine(tr.stdout, 'idToken') ?? '', /isOutput=true/);
    assert.ok(setVariableLine(tr.stdout, 'idTokenExpiresOn'));
    assert.match(tr.stdout, /Subject \(sub\): {2}sc:\/\/contoso\/web\/prod/);
    assert.match(tr.stdout, /vstoken\.dev\.azure\.com issuer, which Azure DevOps retires on 2027-07-01/);
    assert.doesNotMatch(tr.stdout, /L0: access token requested/);
    assert.equal(setVariableLine(tr.stdout, 'accessToken'), undefined);
  });

  it('accessTokenScope: one idToken, then the exchange; access token as a secret output', async () => {
    const tr = await run('scope');
    assert.ok(tr.succeeded, tr.stdout);
    assert.equal(tr.stdout.split('L0: idToken requested').length - 1, 1, 'the first assertion reuses the idToken already fetched');
    assert.match(tr.stdout, /L0: access token requested for https:\/\/management\.azure\.com\/\.default with WorkloadIdentityFederation/);
    assert.match(setVariableLine(tr.stdout, 'accessToken') ?? '', /issecret=true/);
  });

  it('secret connection: warns how to convert, still gets an access token', async () => {
    const tr = await run('secret');
    assert.ok(tr.succeeded, tr.stdout);
    assert.ok(tr.warningIssues.some((w) => /Convert it to workload identity federation/.test(w)), tr.stdout);
    assert.match(tr.stdout, /with ServicePrincipalSecret/);
    assert.equal(setVariableLine(tr.stdout, 'idToken'), undefined);
  });

  it('exportTerraformEnv: ARM_* for self-refreshing OIDC, request token secret', async () => {
    const tr = await run('terraform');
    assert.ok(tr.succeeded, tr.stdout);
    assert.match(setVariableLine(tr.stdout, 'ARM_USE_OIDC') ?? '', /\]true$/);
    assert.match(setVariableLine(tr.stdout, 'ARM_OIDC_REQUEST_URL') ?? '', /\/oidctoken$/);
    assert.match(setVariableLine(tr.stdout, 'ARM_OIDC_REQUEST_TOKEN') ?? '', /issecret=true/);
    assert.match(setVariableLine(tr.stdout, 'ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID') ?? '', /b8a1c2d3/);
  });

  it('exportAzureIdentityEnv: a 0600 token file under Agent.TempDirectory', async () => {
    const tr = await run('azure-identity');
    assert.ok(tr.succeeded, tr.stdout);
    const line = setVariableLine(tr.stdout, 'AZURE_FEDERATED_TOKEN_FILE') ?? '';
    const file = line.slice(line.indexOf(']') + 1);
    assert.ok(file.startsWith(tr.tempDir), file);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.match(tr.stdout, /##vso\[task\.settaskvariable variable=WorkloadIdentity\.FetchOidcToken\.TokenFile\.Dir/);
    assert.match(tr.stdout, /L0: refresher started for FetchOidcToken-b8a1c2d3-0000-4000-8000-00000000c0de/, 'keepTokenFileFresh defaults to true');
    assert.match(tr.stdout, /##vso\[task\.settaskvariable variable=WorkloadIdentity\.FetchOidcToken\.TokenFile\.Refresher;[^\]]*\]\{"pid":424242,"instanceId":"l0-instance","statusFile":"[^"]+\.status\.json"\}/);
  });

  const failures: [string, RegExp][] = [
    ['missing-connection', /Input 'azureSubscription': no service connection is given/],
    ['unknown-connection', /Input 'azureSubscription': the agent passed no service connection/],
    ['unknown-scheme', /Input 'azureSubscription': .*'UsernamePassword', which this task does not support/],
    ['bad-scope', /Input 'accessTokenScope': 'https:\/\/management\.azure\.com' is not a valid scope.*Did you mean 'https:\/\/management\.azure\.com\/\.default'\?/s],
    ['bad-bool', /Input 'exportTerraformEnv': 'yes' is not a boolean/],
    ['secret-azure-identity', /Input 'exportAzureIdentityEnv': .*no idToken/],
  ];
  for (const [scenario, message] of failures) {
    it(`fails clearly: ${scenario}`, async () => {
      const tr = await run(scenario);
      assert.ok(tr.failed, tr.stdout);
      assert.equal(tr.errorIssues.length, 1, tr.stdout);
      assert.match(tr.errorIssues[0], message);
      assert.doesNotMatch(tr.stdout, /L0: idToken requested/, 'nothing is fetched when an input is wrong');
    });
  }

  describe('connections of other types and the pipeline token (issue 20)', () => {
    it('connectionType left at its default: the type is inferred from the one connection input set', async () => {
      const tr = await run('infer-aws');
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, /L0: idToken requested for c0ffee00-0000-4000-8000-0000000000a5/);
      assert.match(tr.stdout, /AWS \(workload identity federation\), roleArn arn:aws:iam::123456789012:role\/deploy, region eu-west-1/);
      assert.match(setVariableLine(tr.stdout, 'idToken') ?? '', /issecret=true/);
      assert.equal(setVariableLine(tr.stdout, 'servicePrincipalId'), undefined, 'no ARM outputs');
    });

    it('an explicit connectionType wins; a connection input of another type left set is ignored with a warning', async () => {
      const tr = await run('explicit-oidc-stale-arm');
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, /L0: idToken requested for b8a1c2d3-0000-4000-8000-00000000c1dc/);
      assert.ok(tr.warningIssues.some((w) => /connectionType is oidc: azureSubscription is ignored/.test(w)), tr.stdout);
    });

    it('connectionType: pipeline asks for the pipeline\'s own token (no connection id)', async () => {
      const tr = await run('pipeline');
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, /L0: idToken requested for \(the pipeline\)/);
    });

    const errors: [string, RegExp][] = [
      ['two-set', /Input 'awsConnection': awsConnection and gcpConnection are both set.*Keep one of awsConnection, gcpConnection/s],
      ['aws-terraform', /Input 'exportTerraformEnv': .*the connection in awsConnection \(AWS \(workload identity federation\)\) has no Entra app.*writeTokenFile: true/s],
      ['aws-scope', /Input 'accessTokenScope': an access token comes from Microsoft Entra ID/],
      ['pipeline-identity', /Input 'exportAzureIdentityEnv': .*the pipeline's own token/],
    ];
    for (const [scenario, message] of errors) {
      it(`fails clearly: ${scenario}`, async () => {
        const tr = await run(scenario);
        assert.ok(tr.failed, tr.stdout);
        assert.equal(tr.errorIssues.length, 1, tr.stdout);
        assert.match(tr.errorIssues[0], message);
        assert.doesNotMatch(tr.stdout, /L0: idToken requested/, 'nothing is fetched when an input is wrong');
      });
    }
  });

  it('post-job removes the token folder, and a second run is harmless', async () => {
    const tr = await run('post-with-dir');
    assert.ok(tr.succeeded, tr.stdout);
    assert.match(tr.stdout, /Removed the token file folder/);
    const again = await run('post');
    assert.ok(again.succeeded, again.stdout);
  });

  it('post-job leaves a folder outside Agent.TempDirectory alone, whatever the task variable says', async () => {
    const tr = await run('post-outside-temp');
    const outside = /L0: outside folder (.+)/.exec(tr.stdout)?.[1] ?? '';
    try {
      assert.ok(outside && fs.existsSync(path.join(outside, 'keep-me')), `the folder and its file are still there: ${tr.stdout}`);
      assert.match(tr.stdout, /##vso\[task\.issue type=warning;[^\]]*\]Left .+ alone: it is not a folder under Agent\.TempDirectory/);
      assert.doesNotMatch(tr.stdout, /Removed the token file folder/);
    } finally {
      if (outside) fs.rmSync(outside, { recursive: true, force: true });
    }
  });
});
