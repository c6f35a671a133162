/**
 * ValidateServiceConnection@1 with the extension's own connection types (WorkloadIdentityAws,
 * WorkloadIdentityGcp, WorkloadIdentityOidc): the bundled task, run as the agent runs it, against
 * the emulator's Azure DevOps, AWS STS (reached at its regional name, sts.eu-west-1.amazonaws.com),
 * Google STS and IAM Credentials (sts.googleapis.com, iamcredentials.googleapis.com), which do not
 * resolve here: only the agent's proxy (a mapping CONNECT proxy) reaches them. The emulator's STS
 * verifies the token against its IAM OIDC providers and role trust; Google's against the pool
 * provider's issuer, audiences and attribute condition. The summary is scanned for every secret
 * the emulator issued and rendered (marked, markdown-it linkify): only the product's own link.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { startEmulator, Emulator, gcpPrincipal } from '../emulator/index';
import { endpointEnv, EndpointEnv, JobOptions } from '../helpers/agent';
import { E2eRuns } from '../helpers/e2e';
import { MappingProxy, proxyToEmulator } from '../helpers/connect-proxy';
import { TaskRun } from '../helpers/task-process';
import { assertOnlyOwnLinks, Renderer, renderers, visibleText } from '../helpers/markdown-links';

const ORG_ID = '5b1c6b0e-7d3a-4f0e-9c52-1d8e2f4a6b71';
const ISSUER = `https://vstoken.dev.azure.com/${ORG_ID}`;
const PROVIDER_URL = `vstoken.dev.azure.com/${ORG_ID}`;
const AUD = 'api://AzureADTokenExchange';
const ACCOUNT = '123456789012';
const GCP = { projectNumber: '987654321098', poolId: 'azure-pipelines', providerId: 'contoso' };
const GCP_NAME = `projects/${GCP.projectNumber}/locations/global/workloadIdentityPools/${GCP.poolId}/providers/${GCP.providerId}`;
const SA = 'deployer@contoso-prod.iam.gserviceaccount.com';

type Kind = 'aws' | 'gcp' | 'oidc';
const TYPE: Record<Kind, string> = { aws: 'WorkloadIdentityAws', gcp: 'WorkloadIdentityGcp', oidc: 'WorkloadIdentityOidc' };
const INPUT: Record<Kind, string> = { aws: 'awsConnection', gcp: 'gcpConnection', oidc: 'oidcConnection' };

describe('E2E ValidateServiceConnection@1 with AWS, Google Cloud and OpenID Connect connections', function () {
  this.timeout(60_000);
  let emu: Emulator;
  let proxy: MappingProxy;
  let md: Renderer[];
  const e2e = new E2eRuns(() => emu);

  before(async () => {
    emu = await startEmulator();
    proxy = await proxyToEmulator(emu, ['sts.eu-west-1.amazonaws.com', 'sts.googleapis.com', 'iamcredentials.googleapis.com']);
    emu.addAwsOidcProvider({ url: PROVIDER_URL, clientIds: [AUD], accountId: ACCOUNT });
    md = await renderers();
  });
  after(async () => {
    await proxy?.stop();
    await emu?.stop();
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
  });

  function connection(kind: Kind, parameters: Record<string, string>, url = ''): { env: EndpointEnv; name: string; sub: string } {
    const id = crypto.randomUUID();
    const name = `${kind}-${crypto.randomBytes(3).toString('hex')}`;
    emu.addServiceConnection({ id, name, type: TYPE[kind], scheme: 'None', tenantId: '', clientId: '', url, parameters });
    return { name, sub: `sc://contoso/web/${name}`, env: { id, url, scheme: 'None', parameters } };
  }

  function validate(kind: Kind, c: { env: EndpointEnv }, job: JobOptions = {}): Promise<TaskRun> {
    // No Azure Resource Manager connection: the agent still hands connectionType's default.
    const env = {
      INPUT_CONNECTIONTYPE: 'azureResourceManager',
      INPUT_CONNECTEDSERVICENAMEARM: '',
      AGENT_PROXYURL: proxy.url,
      AGENT_PROXYBYPASSLIST: JSON.stringify(['^https://127\\.0\\.0\\.1[:/]']),
      ...endpointEnv(c.env),
    };
    return e2e.run({ task: 'ValidateServiceConnectionV1', inputs: { [INPUT[kind]]: c.env.id }, job, env });
  }

  function row(r: TaskRun, check: string): string {
    const line = r.log.split('\n').find((l) => new RegExp(`^(PASS|WARNING|FAIL|SKIPPED) +${check}:`).test(l));
    assert.ok(line, `a log line for ${check}:\n${r.log}`);
    return line;
  }

  /**
   * The uploaded summary: no secret the emulator issued (idTokens, AWS secret keys and session
   * tokens, Google tokens) and no AWS access key id in it; rendered, its only link is the
   * connection's page. Returns the text a reader sees.
   */
  function summary(r: TaskRun, id: string): string {
    const cmd = r.commands.find((c) => c.name === 'task.uploadsummary');
    assert.ok(cmd, `a summary is uploaded:\n${r.stdout}`);
    const text = fs.readFileSync(cmd.value, 'utf8');
    for (const s of [...emu.issuedTokens(), ...emu.awsSessions().map((x) => x.accessKeyId)]) {
      assert.ok(!text.includes(s), 'no secret or credential in the summary');
    }
    for (const a of emu.awsSessions()) assert.ok(!r.log.includes(a.accessKeyId), 'the access key id is not shown');
    const own = /\[Service connection in Azure DevOps\]\(([^)]+)\)/.exec(text)?.[1];
    assert.ok(own?.startsWith(emu.collectionUri) && own.endsWith(`resourceId=${id}`), `the connection's page: ${own}`);
    const html = assertOnlyOwnLinks(md, text, [own!]);
    return visibleText(html.get('markdown-it (html, linkify)')!);
  }

  for (const kind of ['build', 'release'] as const) {
    it(`AWS, ${kind} job: a role trusting the connection's subject: AssumeRoleWithWebIdentity passes, nothing kept, the issuer shown with what is (not) announced`, async () => {
      const roleArn = `arn:aws:iam::${ACCOUNT}:role/validate-${kind}`;
      const c = connection('aws', { roleArn, region: 'eu-west-1', maxSessionDuration: '3600' });
      emu.addAwsRole({ arn: roleArn, trust: { issuer: PROVIDER_URL, sub: c.sub, aud: AUD } });
      const r = await validate('aws', c, { kind });
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      assert.equal(r.variables.validationStatus?.value, 'ok');
      for (const check of ['Connection settings', 'Connection in Azure DevOps', 'idToken', 'AWS STS AssumeRoleWithWebIdentity']) assert.match(row(r, check), /^PASS/);
      assert.match(row(r, 'idToken'), new RegExp(`issuer ${ISSUER.replace(/[/.]/g, '\\$&')} \\(Azure DevOps\\), subject ${c.sub}`));
      assert.equal(emu.count('sts.assumeRoleWithWebIdentity'), 1);
      assert.equal(emu.awsSessions().at(-1)?.subject, c.sub);
      // No variable but validationStatus; the session's secrets masked.
      assert.deepEqual(Object.keys(r.variables), ['validationStatus']);
      const s = emu.awsSessions().at(-1)!;
      assert.ok(r.secrets.includes(s.secretAccessKey) && r.secrets.includes(s.sessionToken), 'masked');
      const text = summary(r, c.env.id);
      assert.match(text, /The retirement announced by Microsoft for 2027-07-01 concerns the issuer of Azure Resource Manager connections \(backed by Microsoft Entra ID\); nothing is announced for connections of other types/);
      assert.ok(proxy.connects.some((x) => x.authority.startsWith('sts.eu-west-1.amazonaws.com')), 'STS at its regional name, through the proxy');
    });
  }

  it('AWS: a role in an account without the OIDC provider fails, showing the provider to create and the trust policy JSON to paste', async () => {
    const roleArn = 'arn:aws:iam::210987654321:role/no-provider';
    const c = connection('aws', { roleArn, region: 'eu-west-1' });
    emu.addAwsRole({ arn: roleArn, trust: { issuer: PROVIDER_URL, sub: c.sub, aud: AUD } });
    const r = await validate('aws', c);
    assert.equal(r.result, 'Failed');
    assert.equal(r.variables.validationStatus?.value, 'error');
    assert.match(row(r, 'AWS STS AssumeRoleWithWebIdentity'), /^FAIL .*InvalidIdentityToken/);
    for (const check of ['Connection settings', 'Connection in Azure DevOps', 'idToken']) assert.match(row(r, check), /^PASS/, 'the other checks still ran');
    const text = summary(r, c.env.id);
    assert.ok(text.includes(`aws iam create-open-id-connect-provider --url ${ISSUER} --client-id-list ${AUD}`), text);
    const json = /```json\n([\s\S]*?)\n```/.exec(fs.readFileSync(r.commands.find((x) => x.name === 'task.uploadsummary')!.value, 'utf8'))?.[1];
    assert.ok(json, 'the trust policy in a json code block');
    assert.deepEqual(JSON.parse(json), {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Federated: `arn:aws:iam::210987654321:oidc-provider/${PROVIDER_URL}` }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringEquals: { [`${PROVIDER_URL}:sub`]: c.sub, [`${PROVIDER_URL}:aud`]: AUD } } }],
    });
    // The log has the same, line by line.
    assert.match(r.log, new RegExp(`^ +"${PROVIDER_URL.replace(/[/.]/g, '\\$&')}:sub": "${c.sub}",$`, 'm'));
  });

  it('AWS: invalid settings fail their row; the idToken and the Azure DevOps record are still checked, STS is skipped', async () => {
    const c = connection('aws', { roleArn: 'arn:aws:iam::12:user/x', region: 'Europe' });
    const r = await validate('aws', c);
    assert.equal(r.result, 'Failed');
    assert.match(row(r, 'Connection settings'), /^FAIL .*is not an IAM role ARN.*region 'Europe' is not an AWS region code/);
    assert.match(row(r, 'idToken'), /^PASS/);
    assert.match(row(r, 'AWS STS AssumeRoleWithWebIdentity'), /^SKIPPED .*settings are not valid/);
    assert.equal(emu.count('sts.assumeRoleWithWebIdentity'), 0);
    summary(r, c.env.id);
  });

  it('Google: a provider accepting the token passes the STS exchange and the impersonation', async () => {
    const c = connection('gcp', { workloadIdentityProvider: GCP_NAME, serviceAccount: SA, projectId: 'contoso-prod' });
    emu.addGcpProvider({ ...GCP, issuerUri: ISSUER, allowedAudiences: [AUD], attributeCondition: `assertion.sub == '${c.sub}'` });
    emu.addGcpServiceAccount({ email: SA, members: [gcpPrincipal(GCP, c.sub)] });
    const r = await validate('gcp', c);
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    for (const check of ['Connection settings', 'Connection in Azure DevOps', 'idToken', 'Google STS exchange', 'Service account impersonation']) assert.match(row(r, check), /^PASS/);
    assert.deepEqual([emu.count('gcp.sts.token'), emu.count('gcp.iam.generateAccessToken')], [1, 1]);
    assert.deepEqual(Object.keys(r.variables), ['validationStatus']);
    summary(r, c.env.id);
  });

  it('Google: a provider whose allowed audience is wrong fails, with the gcloud commands for the provider and the binding', async () => {
    const c = connection('gcp', { workloadIdentityProvider: GCP_NAME.replace('/contoso', '/wrongaud'), serviceAccount: SA });
    emu.addGcpProvider({ ...GCP, providerId: 'wrongaud', issuerUri: ISSUER, allowedAudiences: ['https://iam.googleapis.com/other'] });
    const r = await validate('gcp', c);
    assert.equal(r.result, 'Failed');
    assert.match(row(r, 'Google STS exchange'), /^FAIL .*audience/);
    assert.match(row(r, 'Service account impersonation'), /^SKIPPED /);
    const text = summary(r, c.env.id);
    const command = `gcloud iam workload-identity-pools providers create-oidc wrongaud --project=${GCP.projectNumber} --location=global --workload-identity-pool=${GCP.poolId} --issuer-uri=${ISSUER} --allowed-audiences=${AUD} --attribute-mapping=google.subject=assertion.sub --attribute-condition="assertion.sub=='${c.sub}'"`;
    assert.ok(text.includes(command), text);
    assert.ok(text.includes(`gcloud iam service-accounts add-iam-policy-binding ${SA} --role=roles/iam.workloadIdentityUser --member=principal://iam.googleapis.com/projects/${GCP.projectNumber}/locations/global/workloadIdentityPools/${GCP.poolId}/subject/${c.sub}`), text);
    assert.ok(r.log.includes(`    ${command}`), 'and in the log');
  });

  it('OpenID Connect: the claims and what the relying party must configure; the service URL is not called', async () => {
    const c = connection('oidc', { description: 'Vault at vault.contoso.com' }, 'https://vault.contoso.com/');
    const before = emu.requestLog().length;
    const r = await validate('oidc', c);
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.match(row(r, 'Relying party'), new RegExp(`^PASS .*issuer ${ISSUER.replace(/[/.]/g, '\\$&')}, audience ${AUD}, subject ${c.sub}`));
    const text = summary(r, c.env.id);
    assert.ok(text.includes('jwks_url:        https://vstoken.dev.azure.com/.well-known/jwks'), text);
    assert.ok(text.includes(`subject binding: sub == ${c.sub}`), text);
    assert.deepEqual(emu.requestLog().slice(before).map((q) => q.route).sort(), ['oidctoken', 'serviceendpoint']);
    assert.equal(proxy.connects.filter((x) => /vault/.test(x.authority)).length, 0);
  });
});
