/**
 * FetchOidcToken@1 with the connections of our own (WorkloadIdentityAws, WorkloadIdentityGcp,
 * WorkloadIdentityOidc, scheme None), Microsoft's generic connection and the pipeline's own token:
 * the bundled task, run as the agent runs it, against the emulator over HTTPS. Each idToken is
 * checked by a verifier that shares no code with the task: node:crypto against the emulator's
 * signing key (its JWKS entry), then iss, aud and sub.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { startEmulator, Emulator } from '../emulator/index';
import { endpointEnv, EndpointEnv, JobOptions } from '../helpers/agent';
import { E2eRuns, postJobEnv } from '../helpers/e2e';
import { TaskRun } from '../helpers/task-process';

const ORG_ID = '5b1c6b0e-7d3a-4f0e-9c52-1d8e2f4a6b71';
const ISSUER = `https://vstoken.dev.azure.com/${ORG_ID}`;
const AUDIENCE = 'api://AzureADTokenExchange';

type Kind = 'aws' | 'gcp' | 'oidc' | 'generic';
const TYPE: Record<Kind, string> = { aws: 'WorkloadIdentityAws', gcp: 'WorkloadIdentityGcp', oidc: 'WorkloadIdentityOidc', generic: 'generic' };
const INPUT: Record<Kind, string> = { aws: 'awsConnection', gcp: 'gcpConnection', oidc: 'oidcConnection', generic: 'genericConnection' };

describe('E2E FetchOidcToken@1 with connections of other types and the pipeline token', function () {
  this.timeout(60_000);
  let emu: Emulator;
  const e2e = new E2eRuns(() => emu);

  before(async () => {
    emu = await startEmulator();
  });
  after(async () => {
    await emu?.stop();
  });
  afterEach(function () {
    emu.pipelineTokenLifetimeSeconds = undefined;
    e2e.endTest(this.currentTest?.title);
  });

  /** A connection of the type in the emulator's organisation, and what the agent hands a task for it. */
  function connection(kind: Kind, name = `${kind}-${crypto.randomBytes(3).toString('hex')}`): { env: EndpointEnv; name: string } {
    const id = crypto.randomUUID();
    const parameters: Record<string, string> =
      kind === 'aws' ? { roleArn: 'arn:aws:iam::123456789012:role/deploy', region: 'eu-west-1', maxSessionDuration: '3600' }
        : kind === 'gcp' ? { workloadIdentityProvider: 'projects/123456789012/locations/global/workloadIdentityPools/ado/providers/contoso', serviceAccount: 'deploy@contoso.iam.gserviceaccount.com' }
          : kind === 'oidc' ? { description: 'Vault at vault.contoso.com' }
            : { username: '', password: '' };
    const url = kind === 'oidc' ? 'https://vault.contoso.com/' : kind === 'generic' ? 'https://artifactory.contoso.com/' : '';
    emu.addServiceConnection({ id, name, type: TYPE[kind], scheme: kind === 'generic' ? 'UsernamePassword' : 'None', tenantId: '', clientId: '', url, parameters });
    return { name, env: { id, url, scheme: kind === 'generic' ? 'UsernamePassword' : 'None', parameters } };
  }

  function run(endpoints: EndpointEnv[], inputs: Record<string, string>, job: JobOptions = {}, env: Record<string, string> = {}, entry = 'index.js'): Promise<TaskRun> {
    // No Azure Resource Manager connection: the agent still hands connectionType's default.
    const all: Record<string, string> = { INPUT_CONNECTIONTYPE: 'azureResourceManager', INPUT_CONNECTEDSERVICENAMEARM: '', ...env };
    for (const e of endpoints) Object.assign(all, endpointEnv(e));
    return e2e.run({ task: 'FetchOidcTokenV1', inputs, job, env: all, entry });
  }

  /** The serviceConnectionId of every Oidctoken request so far (null: the parameter was not sent). */
  function connectionIdsAsked(): (string | null)[] {
    return emu.requestLog().filter((q) => q.route === 'oidctoken').map((q) => new URL(q.path, 'https://x').searchParams.get('serviceConnectionId'));
  }

  /** An independent verifier: RS256 against the emulator's JWKS key, then the claims a relying party binds. */
  function verify(token: string, sub: string | RegExp): Record<string, unknown> {
    const [h, p, s] = token.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg: string; kid: string };
    const jwk = emu.signingKeys().devops;
    assert.equal(header.alg, 'RS256');
    assert.equal(header.kid, jwk.kid);
    const key = crypto.createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e }, format: 'jwk' });
    assert.ok(crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')), 'signature verifies against the JWKS');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.aud, AUDIENCE);
    if (typeof sub === 'string') assert.equal(claims.sub, sub);
    else assert.match(String(claims.sub), sub);
    assert.ok((claims.exp as number) * 1000 > Date.now());
    return claims;
  }

  for (const kind of ['aws', 'gcp', 'oidc', 'generic'] as Kind[]) {
    it(`${TYPE[kind]}: inferred from ${INPUT[kind]}; the idToken a verifier accepts, as a secret output, claims logged`, async () => {
      const c = connection(kind);
      const r = await run([c.env], { [INPUT[kind]]: c.env.id });
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      assert.equal(emu.count('oidctoken'), 1);
      assert.equal(emu.count('entra.token'), 0);
      assert.equal(connectionIdsAsked().at(-1), c.env.id);
      const id = r.variables.idToken;
      assert.ok(id?.secret && id.output, 'a secret output');
      assert.ok(r.secrets.includes(id.value), 'masked');
      verify(id.value, `sc://contoso/web/${c.name}`);
      assert.match(r.log, new RegExp(`Subject \\(sub\\): {2}sc://contoso/web/${c.name}`));
      assert.match(r.log, /Issuer \(iss\): {3}https:\/\/vstoken\.dev\.azure\.com\/5b1c6b0e/);
      assert.match(r.log, /Audience \(aud\): api:\/\/AzureADTokenExchange/);
      assert.ok(new Date(r.variables.idTokenExpiresOn.value).getTime() > Date.now());
      assert.equal(r.variables.servicePrincipalId, undefined, 'ARM outputs only for ARM');
      if (kind === 'aws') assert.match(r.log, /roleArn arn:aws:iam::123456789012:role\/deploy, region eu-west-1/);
      if (kind === 'oidc') assert.match(r.log, /URL https:\/\/vault\.contoso\.com\//);
    });
  }

  it('the pipeline token (connectionType: pipeline): no serviceConnectionId, 300-second life, run claims logged and verified', async () => {
    emu.pipelineTokenLifetimeSeconds = 300;
    const r = await run([], { connectionType: 'pipeline' });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.equal(emu.count('oidctoken'), 1);
    assert.equal(connectionIdsAsked().at(-1), null, 'no serviceConnectionId parameter at all');
    const claims = verify(r.variables.idToken.value, 'p://contoso/web/workload-identity-demo');
    assert.equal((claims.exp as number) - (claims.iat as number), 300);
    const run0 = emu.pipelineRun;
    assert.deepEqual(
      [claims.org_id, claims.def_id, claims.rpo_ref, claims.rpo_uri, claims.run_id],
      [ORG_ID, run0.definitionId, run0.repositoryRef, run0.repositoryUri, run0.runId],
    );
    for (const [claim, value] of [['prj_id', emu.projectId], ['def_id', run0.definitionId], ['rpo_ref', run0.repositoryRef], ['rpo_uri', run0.repositoryUri], ['run_id', run0.runId]]) {
      assert.match(r.log, new RegExp(`\\(${claim}\\): +${value.replace(/[/.]/g, '\\$&')}$`, 'm'), claim);
    }
    const expires = new Date(r.variables.idTokenExpiresOn.value).getTime();
    assert.ok(Math.abs(expires - (claims.exp as number) * 1000) < 1000, 'idTokenExpiresOn read from exp');
  });

  it('a pipeline token claim from outside never reaches stdout as a command', async () => {
    emu.pipelineRun.repositoryRef = 'refs/heads/x\n##vso[task.setvariable variable=INJECTED]1';
    try {
      const r = await run([], { connectionType: 'pipeline' });
      assert.equal(r.result, 'Succeeded', r.stdout);
      assert.ok(!r.commands.some((c) => Object.values(c.properties).includes('INJECTED')), 'neutralized');
    } finally {
      emu.pipelineRun.repositoryRef = 'refs/heads/main';
    }
  });

  it('writeTokenFile with an OIDC connection: a 0600 file kept fresh by the refresher, removed by the post-job step', async function () {
    this.timeout(90_000);
    const c = connection('oidc');
    emu.idTokenLifetimeSeconds = 12;
    const job = { tempDirectory: fs.mkdtempSync(`${os.tmpdir()}/wit-job-`) };
    const r = await run([c.env], { oidcConnection: c.env.id, writeTokenFile: 'true' }, job);
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    const file = r.variables.WORKLOAD_IDENTITY_TOKEN_FILE.value;
    assert.equal(r.variables.WORKLOAD_IDENTITY_TOKEN_FILE.output, false, 'a job variable for later steps');
    assert.equal(r.variables.tokenFilePath.value, file);
    assert.ok(r.variables.tokenFilePath.output, 'and an output');
    assert.ok(file.startsWith(job.tempDirectory), file);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const first = fs.readFileSync(file, 'utf8');
    assert.equal(first, r.variables.idToken.value);
    const deadline = Date.now() + 30_000;
    let now = first;
    while (now === first && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 500));
      now = fs.readFileSync(file, 'utf8');
    }
    assert.notEqual(now, first, 'the refresher rewrote the file');
    verify(now, `sc://contoso/web/${c.name}`);
    const post = await run([c.env], {}, job, postJobEnv(r), 'post.js');
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.match(post.log, /Stopped the token refresher/);
    assert.ok(!fs.existsSync(file), 'token file removed');
  });

  it('writeTokenFile with the pipeline token: the refresher asks for the pipeline token again', async function () {
    this.timeout(90_000);
    emu.pipelineTokenLifetimeSeconds = 12;
    const job = { tempDirectory: fs.mkdtempSync(`${os.tmpdir()}/wit-job-`) };
    const r = await run([], { connectionType: 'pipeline', writeTokenFile: 'true' }, job);
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    const file = r.variables.WORKLOAD_IDENTITY_TOKEN_FILE.value;
    const first = fs.readFileSync(file, 'utf8');
    const deadline = Date.now() + 30_000;
    let now = first;
    while (now === first && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 500));
      now = fs.readFileSync(file, 'utf8');
    }
    assert.notEqual(now, first, 'the refresher rewrote the file');
    verify(now, 'p://contoso/web/workload-identity-demo');
    const post = await run([], {}, job, postJobEnv(r), 'post.js');
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.ok(!fs.existsSync(file), 'token file removed');
  });

  it('in a classic release job: the OIDC connection and the pipeline token through the release hub', async () => {
    const c = connection('oidc');
    const r = await run([c.env], { connectionType: 'oidc', oidcConnection: c.env.id }, { kind: 'release' });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    verify(r.variables.idToken.value, `sc://contoso/web/${c.name}`);
    const p = await run([], { connectionType: 'pipeline' }, { kind: 'release', withoutOidcRequestUri: true });
    assert.equal(p.result, 'Succeeded', p.stdout + p.stderr);
    verify(p.variables.idToken.value, /^p:\/\/contoso\/web\//);
  });

  it('input errors name the input and the fix, and nothing is fetched', async () => {
    const aws = connection('aws');
    const gcp = connection('gcp');
    const cases: [EndpointEnv[], Record<string, string>, RegExp][] = [
      [[aws.env, gcp.env], { awsConnection: aws.env.id, gcpConnection: gcp.env.id }, /Input 'awsConnection': awsConnection and gcpConnection are both set.*Fix: Keep one of awsConnection, gcpConnection/s],
      [[aws.env], { awsConnection: aws.env.id, exportTerraformEnv: 'true' }, /Input 'exportTerraformEnv': .*has no Entra app.*Fix: Remove exportTerraformEnv.*writeTokenFile: true/s],
      [[aws.env], { awsConnection: aws.env.id, accessTokenScope: 'https://management.azure.com/.default' }, /Input 'accessTokenScope': .*Microsoft Entra ID/s],
      [[], { connectionType: 'pipeline', exportAzureIdentityEnv: 'true' }, /Input 'exportAzureIdentityEnv': .*pipeline's own token/s],
      [[], { connectionType: 'oidc' }, /Input 'oidcConnection': no service connection is given/],
      [[], { oidcConnection: 'not-passed-by-the-agent' }, /Input 'oidcConnection': the agent passed no service connection/],
      [[], { connectionType: 'vault' }, /Input 'connectionType': 'vault' is not a connection type/],
    ];
    for (const [endpoints, inputs, message] of cases) {
      const r = await run(endpoints, inputs);
      assert.equal(r.result, 'Failed', r.stdout);
      assert.match(r.errors.join('\n'), message);
    }
    assert.equal(emu.count('oidctoken'), 0, 'no request for a bad input');
  });
});
