/**
 * Every task in every kind of job the agent runs, laid out as the agent lays it out
 * (tests/helpers/agent-job.ts): a build job, a YAML deployment job, a classic release job and a
 * deployment-group job. In a release the SystemVssConnection endpoint is the Release Management host
 * (https://vsrm.dev.azure.com/contoso/) and System.CollectionUri the collection
 * (https://dev.azure.com/contoso/); System.OidcRequestUri is on either or unset; the environment is
 * read with POSIX casing or as a case-insensitive (Windows) environment answers. Both names are
 * public, so they do not resolve here: only the test's CONNECT proxy, which maps them to the
 * emulator, reaches them, and the emulator serves the Oidctoken API at both. A plan is known to the
 * emulator under its hub: a request under the wrong hub is a 404. A third origin never gets a connection.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, Emulator, gcpPrincipal } from '../emulator/index';
import { ConnectionEnv, JobOptions, PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { JobKind, OidcRequestHost } from '../helpers/agent-job';
import { addFederatedConnection, AUDIT_ARTIFACT, E2eRuns, FederatedConnection, isAlive, postJobEnv, TENANT, wif, trustInAws } from '../helpers/e2e';
import { Canary, MappingProxy, proxyToEmulator, startCanary } from '../helpers/connect-proxy';
import { TaskRun } from '../helpers/task-process';

const RM_HOST = `vsrm.${PUBLIC_COLLECTION_HOST}`;
const ACCOUNT = '123456789012';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/azure-pipelines-deploy`;
const SUB = '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const REGISTRY = 'contosoreleases.azurecr.io';
const GCP = { projectNumber: '123456789012', poolId: 'azure-pipelines', providerId: 'contoso' };
const GCP_PROVIDER = `projects/${GCP.projectNumber}/locations/global/workloadIdentityPools/${GCP.poolId}/providers/${GCP.providerId}`;
const GCP_SA = 'deployer@contoso-prod.iam.gserviceaccount.com';
const MAPPED = [PUBLIC_COLLECTION_HOST, RM_HOST, `vssps.${PUBLIC_COLLECTION_HOST}`, 'login.microsoftonline.com', 'management.azure.com', REGISTRY, 'sts.us-east-1.amazonaws.com', 'sts.googleapis.com', 'iamcredentials.googleapis.com'];
const HUB: Record<JobKind, string> = { build: 'build', deployment: 'build', release: 'release', deploymentGroup: 'deployment' };

interface Layout {
  kind: JobKind;
  oidc: OidcRequestHost;
  casing: 'posix' | 'windows';
}

const LAYOUTS: Layout[] = (['release', 'deploymentGroup', 'build', 'deployment'] as JobKind[]).flatMap((kind) =>
  (['collection', 'releaseManagement', 'none'] as OidcRequestHost[])
    // In a build or YAML deployment job there is no Release Management host.
    .filter((oidc) => oidc !== 'releaseManagement' || kind === 'release' || kind === 'deploymentGroup')
    .flatMap((oidc) => (['posix', 'windows'] as const).map((casing) => ({ kind, oidc, casing }))),
);
const describeLayout = (l: Layout) => `${l.kind} job, System.OidcRequestUri ${l.oidc === 'none' ? 'unset' : `on the ${l.oidc === 'collection' ? 'collection' : 'Release Management'} host`}, ${l.casing === 'windows' ? 'Windows' : 'POSIX'} environment casing`;

describe('E2E in every kind of job: build, YAML deployment, classic release and deployment group', function () {
  this.timeout(180_000);
  let emu: Emulator;
  let proxy: MappingProxy;
  let conn: FederatedConnection;
  const e2e = new E2eRuns(() => emu);

  before(async () => {
    emu = await startEmulator();
    proxy = await proxyToEmulator(emu, MAPPED);
    emu.addSubscription({ subscriptionId: SUB, tenantId: TENANT, displayName: 'Contoso Production' });
    emu.addRegistry({ loginServer: REGISTRY, tenantId: TENANT });
    conn = addFederatedConnection(emu, 'release-deploy');
    emu.assignRole({ principalId: conn.clientId, scope: `/subscriptions/${SUB}`, role: 'Contributor' });
    trustInAws(emu, conn.expected, ROLE, 7200);
    emu.addGcpProvider({ ...GCP, issuerUri: conn.expected.issuer, allowedAudiences: ['api://AzureADTokenExchange'], attributeCondition: `assertion.sub == '${conn.expected.subject}'` });
    emu.addGcpServiceAccount({ email: GCP_SA, members: [gcpPrincipal(GCP, conn.expected.subject)] });
  });
  after(async () => {
    await proxy?.stop();
    await emu?.stop();
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
    proxy.connects.length = 0;
  });

  const publicConn = (c: { id: string; clientId: string }, extra: Partial<ConnectionEnv> = {}): ConnectionEnv => ({ ...wif(c), subscriptionId: SUB, authorityUrl: null, armUrl: 'https://management.azure.com/', scopeLevel: 'Subscription', ...extra });
  const jobOf = (l: Layout): JobOptions => ({ publicHosts: true, kind: l.kind, oidcRequestHost: l.oidc, casing: l.casing, debug: false, tempDirectory: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-job-')) });
  const proxyEnv = (): Record<string, string> => ({ AGENT_PROXYURL: proxy.url });

  /** Every Oidctoken request used the job's hub and the host System.OidcRequestUri names (the collection when it is unset); nothing went elsewhere. */
  function assertOidcRequests(l: Layout, atLeast: number): void {
    const calls = emu.requestLog().filter((r) => r.route === 'oidctoken');
    assert.ok(calls.length >= atLeast, `${calls.length} Oidctoken requests`);
    const host = l.oidc === 'releaseManagement' ? RM_HOST : PUBLIC_COLLECTION_HOST;
    for (const c of calls) {
      assert.equal(c.host, host, `the Oidctoken API at ${c.host}${c.path}`);
      assert.match(c.path, new RegExp(`^/contoso/[^/]+/_apis/distributedtask/hubs/${HUB[l.kind]}/plans/`), c.path);
      assert.equal(c.status, 200, `${c.path} answered ${c.status}`);
    }
    assert.equal(emu.counts().misdirected, 0);
    for (const h of emu.requestHosts()) assert.ok(MAPPED.includes(h.host), `${h.route} at ${h.host}`);
    for (const c of proxy.connects) assert.ok(MAPPED.includes(c.authority.replace(/:443$/, '')), `CONNECT ${c.authority}`);
  }

  const succeeded = (r: TaskRun, what: string) => assert.equal(r.result, 'Succeeded', `${what}:\n${r.stdout}\n${r.stderr}`);

  for (const l of LAYOUTS) {
    it(`every task and its post-job step: ${describeLayout(l)}`, async () => {
      const release = l.kind === 'release' || l.kind === 'deploymentGroup';
      const env = proxyEnv();
      const c = publicConn(conn);

      const fetch = await e2e.run({ task: 'FetchOidcTokenV1', conn: c, inputs: { accessTokenScope: 'https://management.azure.com/.default', exportAzureIdentityEnv: 'true', exportTerraformEnv: 'true', keepTokenFileFresh: 'false' }, job: jobOf(l), env });
      succeeded(fetch, 'FetchOidcToken');
      // Terraform gets the URL the task itself may call: this organization's, with the job's hub.
      const tfUrl = fetch.variables.ARM_OIDC_REQUEST_URL.value;
      // Read-only for later steps: where the organisation turns on agent.readOnlyVariables, no step can move it.
      assert.equal(fetch.commands.find((x) => x.name === 'task.setvariable' && x.properties.variable === 'ARM_OIDC_REQUEST_URL')?.properties.isreadonly, 'true');
      assert.match(tfUrl, new RegExp(`^https://${l.oidc === 'releaseManagement' ? RM_HOST : PUBLIC_COLLECTION_HOST}/contoso/[^/]+/_apis/distributedtask/hubs/${HUB[l.kind]}/plans/[^/]+/jobs/[^/]+/oidctoken$`), tfUrl);
      succeeded(await e2e.run({ task: 'FetchOidcTokenV1', conn: c, job: jobOf(l), env: { ...env, ...postJobEnv(fetch) }, entry: 'post.js' }), 'FetchOidcToken post-job');
      assert.ok(!fs.existsSync(fetch.variables.AZURE_FEDERATED_TOKEN_FILE.value), 'the post-job step removed the token file');

      const acr = await e2e.run({ task: 'AcrLoginFederatedV1', conn: c, inputs: { registries: REGISTRY }, job: jobOf(l), env });
      succeeded(acr, 'AcrLoginFederated');
      succeeded(await e2e.run({ task: 'AcrLoginFederatedV1', conn: c, job: jobOf(l), env: { ...env, ...postJobEnv(acr) }, entry: 'post.js' }), 'AcrLoginFederated post-job');

      const validate = await e2e.run({ task: 'ValidateServiceConnectionV1', conn: c, job: jobOf(l), env });
      assert.match(validate.result ?? '', /^Succeeded(WithIssues)?$/, `ValidateServiceConnection:\n${validate.stdout}`);
      // A vstoken connection in the public cloud gets the issuer retirement warning; nothing fails.
      assert.notEqual(validate.variables.validationStatus.value, 'error', validate.log);
      const summaryFile = validate.commands.find((x) => x.name === 'task.uploadsummary')?.value;
      assert.ok(summaryFile);
      const summary = fs.readFileSync(summaryFile, 'utf8');
      if (release) assert.match(summary, /\*\*Checked in:\*\* release 'Release-\d+' of 'web-deploy', stage 'Production'/, summary);
      else assert.match(summary, /\*\*Checked in:\*\* pipeline 'web-ci', run 20261207\.\d/, summary);
      // Validate reads the connection from the collection, whatever the job.
      assert.ok(emu.requestLog().some((r) => r.route === 'serviceendpoint' && r.host === PUBLIC_COLLECTION_HOST && r.status === 200));

      const aws = await e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: c, inputs: { roleArn: ROLE, exportWebIdentityFile: 'true', keepTokenFileFresh: 'false' }, job: jobOf(l), env });
      succeeded(aws, 'AwsAssumeRoleFederated');
      const session = emu.awsSessions().at(-1)!.roleSessionName;
      // CloudTrail names this run: in a release the release and its stage, not the artifact's build.
      if (release) assert.match(session, /^azp-web-deploy-Production-\d+$/, session);
      else assert.match(session, /^azp-web-ci-\d+$/, session);
      succeeded(await e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: c, job: jobOf(l), env: { ...env, ...postJobEnv(aws) }, entry: 'post.js' }), 'AwsAssumeRoleFederated post-job');

      const gcp = await e2e.run({ task: 'GcpAuthFederatedV1', conn: c, inputs: { workloadIdentityProvider: GCP_PROVIDER, serviceAccount: GCP_SA, keepTokenFileFresh: 'false' }, job: jobOf(l), env });
      succeeded(gcp, 'GcpAuthFederated');
      assert.match(gcp.log, release ? /for release 'Release-\d+' of 'web-deploy', stage 'Production'\./ : /for pipeline 'web-ci', run 20261207\.\d\./, gcp.log);
      succeeded(await e2e.run({ task: 'GcpAuthFederatedV1', conn: c, job: jobOf(l), env: { ...env, ...postJobEnv(gcp) }, entry: 'post.js' }), 'GcpAuthFederated post-job');

      // reportArtifactName as the agent passes it (its default): an artifact in a build job; in a classic release or deployment group job, where the agent refuses artifact.upload, the job's log.
      const audit = await e2e.run({ task: 'AuditServiceConnectionsV1', inputs: { reportArtifactName: AUDIT_ARTIFACT }, job: jobOf(l), env: { ...env, WORKLOADIDENTITY_HTTPRETRIES: '0' } });
      succeeded(audit, 'AuditServiceConnections');
      assert.ok(Number(audit.variables.connectionsAudited.value) >= 1);
      const published = audit.commands.filter((x) => x.name === 'artifact.upload' || x.name === 'task.uploadfile').map((x) => `${x.name} ${path.basename(x.value)}`);
      const folder = path.basename(path.dirname(audit.variables.reportCsvPath.value));
      assert.deepEqual(published, release ? ['task.uploadfile service-connection-audit.csv', 'task.uploadfile service-connection-audit.json'] : [`artifact.upload ${folder}`]);
      // The audit reads the organization at the collection with the job's token.
      assert.ok(emu.requestLog().some((r) => r.route === 'devops.endpoints' && r.host === PUBLIC_COLLECTION_HOST && r.status === 200));

      // FetchOidcToken, AcrLogin, Validate, AWS and GCP each asked for an idToken.
      assertOidcRequests(l, 5);
    });
  }

  describe('a third origin never gets the job token', () => {
    let canary: Canary;
    before(async () => {
      canary = await startCanary();
    });
    after(async () => {
      await canary?.stop();
    });
    const third = () => `https://${canary.host}/contoso/0c3e9a57-2f61-4b8d-a4e2-7b9f1c5d3e80/_apis/distributedtask/hubs/release/plans/p/jobs/j/oidctoken`;

    for (const l of LAYOUTS.filter((x) => x.oidc !== 'none')) {
      it(`System.OidcRequestUri moved by a pipeline variable, and with exportTerraformEnv an agent-supplied idToken: ${describeLayout(l)}`, async () => {
        const env = { ...proxyEnv(), SYSTEM_OIDCREQUESTURI: third() };
        const before = canary.connections();
        const fetch = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), job: jobOf(l), env });
        assert.equal(fetch.result, 'Failed', fetch.stdout);
        assert.match(fetch.errors.join('\n'), /System\.OidcRequestUri points at https:\/\/127\.0\.0\.1:\d+, not at this organization's Azure DevOps \(https:\/\/dev\.azure\.com\/contoso\/ and its Release Management host https:\/\/vsrm\.dev\.azure\.com\/contoso\//);
        // The agent supplied the idToken: the task calls no Oidctoken API, but Terraform would, with the job's token.
        const supplied = await mintSuppliedIdToken();
        const tf = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn, { parameters: { idToken: supplied } }), inputs: { exportTerraformEnv: 'true' }, job: jobOf(l), env });
        assert.equal(tf.result, 'Failed', tf.stdout);
        assert.match(tf.errors.join('\n'), /System\.OidcRequestUri points at https:\/\/127\.0\.0\.1:\d+, not at this organization's Azure DevOps/);
        assert.equal(tf.variables.ARM_OIDC_REQUEST_URL, undefined, 'no URL for Terraform');
        assert.equal(tf.variables.ARM_OIDC_REQUEST_TOKEN, undefined, 'no job token for Terraform');
        const validate = await e2e.run({ task: 'ValidateServiceConnectionV1', conn: publicConn(conn), job: jobOf(l), env });
        assert.notEqual(validate.variables.validationStatus?.value, 'ok');
        const aws = await e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: publicConn(conn), inputs: { roleArn: ROLE }, job: jobOf(l), env });
        assert.equal(aws.result, 'Failed');
        assert.equal(canary.connections(), before, 'the canary saw no connection');
        for (const c of proxy.connects) assert.ok(MAPPED.includes(c.authority.replace(/:443$/, '')), `CONNECT ${c.authority}`);
        assert.equal(emu.count('oidctoken'), 0);
      });
    }

    it('System.CollectionUri moved by a pipeline variable (a release job with no System.OidcRequestUri): refused before any connection', async () => {
      const l: Layout = { kind: 'release', oidc: 'none', casing: 'posix' };
      const env = { ...proxyEnv(), SYSTEM_COLLECTIONURI: `https://${canary.host}/contoso/` };
      const before = canary.connections();
      for (const task of ['FetchOidcTokenV1', 'AwsAssumeRoleFederatedV1', 'AuditServiceConnectionsV1']) {
        const r = await e2e.run({ task, conn: task === 'AuditServiceConnectionsV1' ? undefined : publicConn(conn), inputs: task === 'AwsAssumeRoleFederatedV1' ? { roleArn: ROLE } : {}, job: jobOf(l), env });
        assert.equal(r.result, 'Failed', `${task}: ${r.stdout}`);
        assert.match(r.errors.join('\n'), /System\.CollectionUri points at https:\/\/127\.0\.0\.1:\d+, not at this organization's Azure DevOps/, task);
      }
      assert.equal(canary.connections(), before);
      assert.equal(proxy.connects.length, 0);
    });
  });

  it('a release job on Windows casing with System.OidcRequestUri on the Release Management host: the refresher renews the token file there, through the proxy, past the first idToken', async () => {
    const l: Layout = { kind: 'release', oidc: 'releaseManagement', casing: 'windows' };
    emu.idTokenLifetimeSeconds = 12;
    const j = jobOf(l);
    const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), inputs: { exportAzureIdentityEnv: 'true' }, job: j, env: proxyEnv() });
    succeeded(r, 'FetchOidcToken');
    const file = r.variables.AZURE_FEDERATED_TOKEN_FILE.value;
    const first = fs.readFileSync(file, 'utf8');
    const deadline = Date.now() + 20_000;
    while (fs.readFileSync(file, 'utf8') === first && Date.now() < deadline) await new Promise((res) => setTimeout(res, 250));
    assert.notEqual(fs.readFileSync(file, 'utf8'), first, 'the refresher renewed the token file');
    assertOidcRequests(l, 2);
    const post = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), job: j, env: { ...proxyEnv(), ...postJobEnv(r) }, entry: 'post.js' });
    succeeded(post, 'post-job');
    const pid = (JSON.parse(r.taskVariables['WorkloadIdentity.FetchOidcToken.TokenFile.Refresher']) as { pid: number }).pid;
    assert.ok(!isAlive(pid), 'the refresher stopped');
  });

  /** An idToken the emulator issued, as the agent hands it over with the endpoint (ENDPOINT_AUTH_PARAMETER_<id>_IDTOKEN). */
  async function mintSuppliedIdToken(): Promise<string> {
    const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: wif(conn), job: { debug: false } });
    succeeded(r, 'minting an idToken');
    const token = r.variables.idToken.value;
    emu.resetCounts();
    return token;
  }
});
