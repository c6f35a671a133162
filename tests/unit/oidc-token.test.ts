/** The Oidctoken client's order: the agent's idToken while fresh, System.OidcRequestUri, then the built URL. */
import * as assert from 'node:assert/strict';
import * as sinon from 'sinon';
import * as tl from 'azure-pipelines-task-lib/task';
import { OidcTokenClient } from '../../tasks/core/devops/oidc-token';
import { azureDevOpsHosts, oidcRequestUrl } from '../../tasks/core/http/token-hosts';
import type { PipelineContext } from '../../tasks/core/agent/pipeline-context';
import type { Connection } from '../../tasks/core/devops/connection';
import { CLOUDS } from '../../tasks/core/azure/clouds';
import { TaskFailure } from '../../tasks/core/http/failures';

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (exp: number) => `${b64({ alg: 'RS256' })}.${b64({ iss: 'https://vstoken.dev.azure.com/o', sub: 'sc://o/p/c', aud: 'api://AzureADTokenExchange', exp })}.sig-${exp}`;
const now = () => Math.floor(Date.now() / 1000);

function context(overrides: Partial<PipelineContext>, request: sinon.SinonStub): PipelineContext {
  return {
    collectionUri: 'https://dev.azure.com/contoso/',
    azureDevOps: azureDevOpsHosts('https://dev.azure.com/contoso/'),
    teamProjectId: '0c3e9a57-2f61-4b8d-a4e2-7b9f1c5d3e80',
    teamProject: 'web',
    hostType: 'build',
    planId: '11111111-2222-4333-8444-555555555555',
    jobId: '66666666-7777-4888-9999-aaaaaaaaaaaa',
    tempDirectory: '/tmp',
    tls: {},
    policy: { timeoutMs: 1000, retries: 0, maxRetryAfterMs: 1000, backoffBaseMs: 1 },
    jobAccessToken: () => 'job-token',
    http: { request } as never,
    ...overrides,
  };
}

const conn = (extra: Partial<Connection> = {}): Connection => ({
  id: 'conn-id', input: 'azureSubscription', scheme: 'WorkloadIdentityFederation', tenantId: 't', clientId: 'c', cloud: CLOUDS.azurecloud, authorityHost: 'https://login.microsoftonline.com/', resourceManagerUrl: 'https://management.azure.com/', ...extra,
});

describe('Oidctoken client', () => {
  let setSecret: sinon.SinonStub;
  beforeEach(() => {
    setSecret = sinon.stub(tl, 'setSecret');
    sinon.stub(tl, 'debug');
  });
  afterEach(() => sinon.restore());

  it('uses the idToken the agent supplied while it has more than two minutes to live, without a request', async () => {
    const request = sinon.stub();
    const token = jwt(now() + 600);
    const got = await new OidcTokenClient(context({}, request), conn({ serverIdToken: token })).fetch();
    assert.equal(got.token, token);
    assert.equal(got.source, 'agent');
    sinon.assert.notCalled(request);
  });

  it('fetches a fresh token when the supplied one is about to expire, and the second time', async () => {
    const fresh = jwt(now() + 600);
    const request = sinon.stub().resolves({ status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ oidcToken: fresh }), url: '', attempts: 1 });
    const client = new OidcTokenClient(context({ oidcRequestUri: 'https://dev.azure.com/contoso/0c3e9a57-2f61-4b8d-a4e2-7b9f1c5d3e80/_apis/distributedtask/hubs/build/plans/11111111-2222-4333-8444-555555555555/jobs/66666666-7777-4888-9999-aaaaaaaaaaaa/oidctoken' }, request), conn({ serverIdToken: jwt(now() + 30) }));
    assert.equal((await client.fetch()).token, fresh);
    assert.equal((await client.fetch()).token, fresh);
    sinon.assert.calledTwice(request);
    const call = request.firstCall.args[0];
    assert.equal(call.url, 'https://dev.azure.com/contoso/0c3e9a57-2f61-4b8d-a4e2-7b9f1c5d3e80/_apis/distributedtask/hubs/build/plans/11111111-2222-4333-8444-555555555555/jobs/66666666-7777-4888-9999-aaaaaaaaaaaa/oidctoken?api-version=7.1&serviceConnectionId=conn-id');
    assert.equal(call.headers.Authorization, 'Bearer job-token');
    assert.equal(call.body, '{}');
    sinon.assert.calledWith(setSecret, fresh);
  });

  it('builds the URL from the collection, project, host type, plan and job without System.OidcRequestUri', () => {
    assert.equal(
      oidcRequestUrl(context({}, sinon.stub()), 'conn-id'),
      'https://dev.azure.com/contoso/0c3e9a57-2f61-4b8d-a4e2-7b9f1c5d3e80/_apis/distributedtask/hubs/build/plans/11111111-2222-4333-8444-555555555555/jobs/66666666-7777-4888-9999-aaaaaaaaaaaa/oidctoken?serviceConnectionId=conn-id&api-version=7.1-preview.1',
    );
    assert.throws(() => oidcRequestUrl(context({ planId: '', collectionUri: '' }, sinon.stub()), 'x'), /System\.CollectionUri, System\.PlanId/);
  });

  it('sends the job token only to a job\'s Oidctoken API: the ids the agent gives, the path it writes, our own query', () => {
    // Ids that are not GUIDs would change the path: another API of the organisation gets the token.
    for (const bad of [{ teamProjectId: 'proj/_apis/build/builds?definitionId=7&x=' }, { jobId: '66666666-7777-4888-9999-aaaaaaaaaaaa#' }, { planId: '../x' }, { hostType: 'build/../../x' }]) {
      assert.throws(() => oidcRequestUrl(context(bad, sinon.stub()), 'conn-id'), /not what the agent sets/, JSON.stringify(bad));
    }
    assert.throws(() => oidcRequestUrl(context({ oidcRequestUri: 'https://dev.azure.com/contoso/_apis/anything' }, sinon.stub()), 'conn-id'), /is not an Oidctoken URL of a job/);
    // A query in System.OidcRequestUri cannot name another connection.
    const url = new URL(oidcRequestUrl(context({ oidcRequestUri: 'https://dev.azure.com/contoso/0c3e9a57-2f61-4b8d-a4e2-7b9f1c5d3e80/_apis/distributedtask/hubs/build/plans/11111111-2222-4333-8444-555555555555/jobs/66666666-7777-4888-9999-aaaaaaaaaaaa/oidctoken?serviceConnectionId=other#frag' }, sinon.stub()), 'conn-id'));
    assert.deepEqual(url.searchParams.getAll('serviceConnectionId'), ['conn-id']);
    assert.equal(url.hash, '');
  });

  it('turns a null oidcToken and a 404 into explained failures', async () => {
    const request = sinon.stub();
    request.onFirstCall().resolves({ status: 200, headers: {}, body: '{"oidcToken":null}', url: '', attempts: 1 });
    request.onSecondCall().resolves({ status: 404, headers: { 'content-type': 'application/json' }, body: '{"message":"Service connection not found"}', url: '', attempts: 1 });
    const client = new OidcTokenClient(context({}, request), conn());
    await assert.rejects(client.fetch(), (e: unknown) => e instanceof TaskFailure && e.code === 'NULL_OIDC_TOKEN');
    await assert.rejects(client.fetch(), (e: unknown) => e instanceof TaskFailure && e.code === 'HTTP_404' && /Service connection not found/.test(e.message));
    sinon.assert.notCalled(setSecret);
  });
});
