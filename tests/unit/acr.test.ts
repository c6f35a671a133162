/** The ACR exchange's answers, explained; names normalised and checked before any request. */
import * as assert from 'node:assert/strict';
import * as sinon from 'sinon';
import * as tl from 'azure-pipelines-task-lib/task';
import { acrScope, exchangeForRefreshToken } from '../../tasks/core/acr/acr';
import { checkTrusted, splitList, toLoginServer } from '../../tasks/core/acr/registries';
import { CLOUDS } from '../../tasks/core/azure/clouds';
import { InputError, TaskFailure } from '../../tasks/core/http/failures';
import type { PipelineContext } from '../../tasks/core/agent/pipeline-context';

function ctx(request: sinon.SinonStub): PipelineContext {
  return { http: { request } } as unknown as PipelineContext;
}
const answer = (status: number, body: string) => ({ status, headers: { 'content-type': 'application/json' }, body, url: '', attempts: 1 });

describe('ACR exchange', () => {
  beforeEach(() => { sinon.stub(tl, 'setSecret'); sinon.stub(tl, 'debug'); });
  afterEach(() => sinon.restore());

  it('posts the Entra token to this registry only and returns the masked refresh token', async () => {
    const request = sinon.stub().resolves(answer(200, '{"refresh_token":"rt-123"}'));
    assert.equal(await exchangeForRefreshToken(ctx(request), 'myreg.azurecr.io', 'tenant-1', 'at-1', 'registry', 'client-1'), 'rt-123');
    const req = request.firstCall.args[0];
    assert.equal(req.url, 'https://myreg.azurecr.io/oauth2/exchange');
    assert.deepEqual(Object.fromEntries(new URLSearchParams(req.body)), { grant_type: 'access_token', service: 'myreg.azurecr.io', tenant: 'tenant-1', access_token: 'at-1' });
    sinon.assert.calledWith(tl.setSecret as sinon.SinonStub, 'rt-123');
  });

  it('explains a 401 with the audience used and the other one to try', async () => {
    const request = sinon.stub().resolves(answer(401, '{"errors":[{"code":"UNAUTHORIZED","message":"authentication-as-arm is disabled"}]}'));
    await assert.rejects(exchangeForRefreshToken(ctx(request), 'myreg.azurecr.io', 't', 'at', 'arm', 'client-1'), (e: unknown) => {
      assert.ok(e instanceof TaskFailure && e.code === 'ACR_UNAUTHORIZED');
      assert.match(e.message, /identity client-1 with the arm audience/);
      assert.match(e.message, /AcrPush.*AcrPull/);
      assert.match(e.message, /try tokenAudience: registry/);
      assert.match(e.message, /The registry said: UNAUTHORIZED: authentication-as-arm is disabled/);
      return true;
    });
  });

  it('explains 404, a name that does not resolve, and an answer without a refresh token', async () => {
    await assert.rejects(exchangeForRefreshToken(ctx(sinon.stub().resolves(answer(404, '{}'))), 'x.azurecr.io', 't', 'at', 'registry', 'c'), (e: unknown) => e instanceof TaskFailure && e.code === 'ACR_NOT_FOUND');
    const dns = sinon.stub().rejects(new TaskFailure({ what: 'w', cause: 'c', fix: 'f', code: 'DNS' }));
    await assert.rejects(exchangeForRefreshToken(ctx(dns), 'typo.azurecr.io', 't', 'at', 'registry', 'c'), (e: unknown) => e instanceof TaskFailure && e.code === 'ACR_NOT_FOUND' && /could not be found/.test(e.message));
    await assert.rejects(exchangeForRefreshToken(ctx(sinon.stub().resolves(answer(200, '{"refresh_token":'))), 'x.azurecr.io', 't', 'at', 'registry', 'c'), (e: unknown) => e instanceof TaskFailure && e.code === 'ACR_NO_REFRESH_TOKEN' && !/refresh_token":/.test(e.message));
  });

  it('maps the audiences to Entra scopes', () => {
    assert.equal(acrScope('registry', CLOUDS.azurecloud.resourceManager), 'https://containerregistry.azure.net/.default');
    assert.equal(acrScope('arm', CLOUDS.azureusgovernment.resourceManager), 'https://management.usgovcloudapi.net/.default');
  });
});

describe('registry names', () => {
  const cloud = CLOUDS.azurecloud;
  it('normalises names and login servers', () => {
    assert.deepEqual(splitList(' a, b\nb\r\n,c '), ['a', 'b', 'c']);
    assert.equal(toLoginServer('MyRegistry', cloud, 'registries').loginServer, 'myregistry.azurecr.io');
    assert.equal(toLoginServer('https://MyReg.AzureCR.io/', cloud, 'registries').loginServer, 'myreg.azurecr.io');
    assert.equal(toLoginServer('myreg', CLOUDS.azurechinacloud, 'registries').loginServer, 'myreg.azurecr.cn');
    assert.equal(toLoginServer('127.0.0.1:5443', cloud, 'registries').loginServer, '127.0.0.1:5443');
  });

  it('trusts ACR login servers of the cloud and listed hosts only', () => {
    const hosts = (...n: string[]) => n.map((x) => toLoginServer(x, cloud, 'registries'));
    assert.doesNotThrow(() => checkTrusted(hosts('myreg.azurecr.io', 'myreg-abc123.azurecr.io'), cloud, [], 'registries', 'trustedRegistryHosts'));
    assert.throws(() => checkTrusted(hosts('myreg.azurecr.io.evil.example'), cloud, [], 'registries', 'trustedRegistryHosts'), InputError);
    assert.throws(() => checkTrusted(hosts('myreg.azurecr.io:444'), cloud, [], 'registries', 'trustedRegistryHosts'), InputError);
    assert.doesNotThrow(() => checkTrusted(hosts('mirror.example.com:5000'), cloud, ['mirror.example.com:5000'], 'registries', 'trustedRegistryHosts'));
  });
});
