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
    azureDevOps: azureDevOpsHosts('https://dev.azure.com/contoso/', undefined),
    teamProjectId: 'proj-id',
    teamProject: 'web',
    hostType: 'build',
    planId: 'plan-id',
    jobId: 'job-id',
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
    const client = new OidcTokenClient(context({ oidcRequestUri: 'https://dev.azure.com/contoso/p/_apis/x/oidctoken' }, request), conn({ serverIdToken: jwt(now() + 30) }));
    assert.equal((await client.fetch()).token, fresh);
    assert.equal((await client.fetch()).token, fresh);
    sinon.assert.calledTwice(request);
    const call = request.firstCall.args[0];
    assert.equal(call.url, 'https://dev.azure.com/contoso/p/_apis/x/oidctoken?api-version=7.1&serviceConnectionId=conn-id');
    assert.equal(call.headers.Authorization, 'Bearer job-token');
    assert.equal(call.body, '{}');
    sinon.assert.calledWith(setSecret, fresh);
  });

  it('builds the URL from the collection, project, host type, plan and job without System.OidcRequestUri', () => {
    assert.equal(
      oidcRequestUrl(context({}, sinon.stub()), 'conn-id'),
      'https://dev.azure.com/contoso/proj-id/_apis/distributedtask/hubs/build/plans/plan-id/jobs/job-id/oidctoken?serviceConnectionId=conn-id&api-version=7.1-preview.1',
    );
    assert.throws(() => oidcRequestUrl(context({ planId: '', collectionUri: '' }, sinon.stub()), 'x'), /System\.CollectionUri, System\.PlanId/);
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
