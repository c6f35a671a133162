/** The emulator's organisation reads (protocols.md section 8): projects, endpoints, history, identities. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { startEmulator, SECRET_ROTATION_FAILED, DEVOPS_RESOURCE, IDENTITY_AREA, type Emulator } from './index';
import { httpsRequest, Reply } from './test-client';

const TENANT = '11f2e3d4-c5b6-4a79-8e8d-7c6b5a4f3e2d';
const APP = '22a3b4c5-d6e7-4f80-9a1b-2c3d4e5f6a7b';
const AUDITOR = '33b4c5d6-e7f8-4a91-8b2c-3d4e5f6a7b8c';
const OUTSIDER = '44c5d6e7-f8a9-4b02-9c3d-4e5f6a7b8c9d';
const LEFT = 'dd000000-0000-4000-8000-00000000000d';

describe('emulator: Azure DevOps organisation reads', function () {
  let emu: Emulator;
  let ca: string;
  const get = (path: string, token = emu.jobAccessToken): Promise<Reply> => httpsRequest(new URL(path, emu.url), { method: 'GET', ca, headers: { Authorization: `Bearer ${token}` } });
  const json = (r: Reply) => JSON.parse(r.body) as { count: number; value: Record<string, any>[] };

  before(async () => {
    emu = await startEmulator();
    ca = fs.readFileSync(emu.caCertPath, 'utf8');
    emu.addProject({ name: 'alpha' });
    emu.addProject({ name: 'beta' });
    emu.addProject({ name: 'gamma' });
    emu.addServiceConnection({ id: 'aa000000-0000-4000-8000-000000000001', name: 'fed-old', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: APP, projectName: 'alpha', sharedWith: ['beta'], lastUsed: { pipeline: 'deploy', result: 'succeeded', finishTime: '2026-06-01T10:00:00Z' } });
    emu.addServiceConnection({ id: 'aa000000-0000-4000-8000-000000000002', name: 'rotation', scheme: 'ServicePrincipal', tenantId: TENANT, clientId: APP, projectName: 'alpha', isReady: false, operationStatus: SECRET_ROTATION_FAILED, createdBy: { displayName: 'Dan Left', id: LEFT, inactive: true } });
    emu.addServiceConnection({ id: 'aa000000-0000-4000-8000-000000000003', name: 'acr', type: 'dockerregistry', scheme: 'ServicePrincipal', tenantId: TENANT, clientId: APP, projectName: 'alpha', environment: 'AzureUSGovernment', creationMode: 'Manual' });
    emu.addApp({ clientId: AUDITOR, tenantId: TENANT, secrets: [{ value: 'aud~secret-value-0123456789', endDateTime: '2030-01-01T00:00:00Z' }] });
    emu.addApp({ clientId: OUTSIDER, tenantId: TENANT, secrets: [{ value: 'out~secret-value-0123456789', endDateTime: '2030-01-01T00:00:00Z' }] });
    emu.addOrganizationMember(AUDITOR);
  });
  after(() => emu.stop());
  afterEach(() => {
    emu.clearFaults();
    emu.resetCounts();
    emu.projectPageSize = 100;
    emu.endpointPageSize = 100;
  });

  it('lists projects in pages, with x-ms-continuationtoken until the last', async () => {
    emu.projectPageSize = 2;
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await get(`/contoso/_apis/projects?api-version=7.1&$top=100${token ? `&continuationToken=${token}` : ''}`);
      assert.equal(r.status, 200, r.body);
      names.push(...json(r).value.map((p) => p.name as string));
      token = r.headers['x-ms-continuationtoken'] as string | undefined;
      pages++;
    } while (token);
    assert.deepEqual(names, ['alpha', 'beta', 'gamma', 'web']);
    assert.equal(pages, 2);
    assert.equal(emu.count('devops.projects'), 2);
  });

  it('lists a project\'s endpoints (its own and shared), filtered by type, failed ones with includeFailed', async () => {
    const all = json(await get('/contoso/alpha/_apis/serviceendpoint/endpoints?includeFailed=true&includeDetails=true&api-version=7.1')).value;
    assert.deepEqual(all.map((e) => e.name), ['fed-old', 'rotation', 'acr']);
    const fed = all[0];
    assert.equal(fed.authorization.parameters.workloadIdentityFederationIssuerType, 'AzureDevOps');
    assert.equal(fed.isShared, true);
    assert.deepEqual(fed.serviceEndpointProjectReferences.map((r: { projectReference: { name: string } }) => r.projectReference.name), ['alpha', 'beta']);
    assert.equal(all[1].operationStatus.state, 'Failed');
    assert.equal(all[1].createdBy.id, LEFT);
    assert.equal(all[2].type, 'dockerregistry');
    assert.equal(all[2].data.environment, 'AzureUSGovernment');
    assert.equal(all[2].data.creationMode, 'Manual');
    const noFailed = json(await get('/contoso/alpha/_apis/serviceendpoint/endpoints?api-version=7.1')).value;
    assert.deepEqual(noFailed.map((e) => e.name), ['fed-old', 'acr']);
    const docker = json(await get('/contoso/alpha/_apis/serviceendpoint/endpoints?type=dockerregistry&includeFailed=true&api-version=7.1')).value;
    assert.deepEqual(docker.map((e) => e.name), ['acr']);
    assert.deepEqual(json(await get('/contoso/beta/_apis/serviceendpoint/endpoints?includeFailed=true&api-version=7.1')).value.map((e) => e.name), ['fed-old']);
  });

  it('lists a project\'s endpoints in pages of endpointPageSize, with x-ms-continuationtoken until the last', async () => {
    emu.endpointPageSize = 2;
    const base = '/contoso/alpha/_apis/serviceendpoint/endpoints?includeFailed=true&includeDetails=true&api-version=7.1';
    const first = await get(base);
    assert.deepEqual(json(first).value.map((e) => e.name), ['fed-old', 'rotation']);
    assert.equal(json(first).count, 2);
    const token = first.headers['x-ms-continuationtoken'] as string;
    assert.ok(token, 'a continuation token on the first page');
    const last = await get(`${base}&continuationToken=${encodeURIComponent(token)}`);
    assert.deepEqual(json(last).value.map((e) => e.name), ['acr']);
    assert.equal(last.headers['x-ms-continuationtoken'], undefined, 'none on the last page');
    emu.endpointPageSize = 3;
    assert.equal((await get(base)).headers['x-ms-continuationtoken'], undefined, 'a list that fits one page has none');
  });

  it('execution history: the last run, or none for a connection never used', async () => {
    const used = json(await get('/contoso/alpha/_apis/serviceendpoint/aa000000-0000-4000-8000-000000000001/executionhistory?top=1&api-version=7.1-preview.1'));
    assert.equal(used.count, 1);
    assert.equal(used.value[0].data.definition.name, 'deploy');
    assert.equal(used.value[0].data.finishTime, '2026-06-01T10:00:00Z');
    assert.equal(json(await get('/contoso/alpha/_apis/serviceendpoint/aa000000-0000-4000-8000-000000000002/executionhistory?top=1&api-version=7.1-preview.1')).count, 0);
  });

  it('the identity service: resource area at the collection\'s own origin, identities with isActive, several per call', async () => {
    const area = JSON.parse((await get(`/contoso/_apis/resourceAreas/${IDENTITY_AREA}?api-version=7.1-preview.1`)).body) as { locationUrl: string };
    assert.equal(area.locationUrl, `${emu.collectionUri}`);
    const ids = json(await get(`/contoso/_apis/identities?identityIds=${LEFT},9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d,ee000000-0000-4000-8000-00000000000e&api-version=7.1`)).value;
    assert.equal(ids[0].isActive, false);
    assert.equal(ids[0].providerDisplayName, 'Dan Left');
    assert.equal(ids[1].isActive, true);
    assert.equal(ids[2], null);
  });

  it('an Entra token for Azure DevOps reads the organisation when its identity is a member; others are refused', async () => {
    const token = async (clientId: string, secret: string) => {
      const r = await httpsRequest(new URL(`/${TENANT}/oauth2/v2.0/token`, emu.url), { method: 'POST', ca, headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, scope: `${DEVOPS_RESOURCE}/.default` }).toString() });
      return (JSON.parse(r.body) as { access_token: string }).access_token;
    };
    assert.equal((await get('/contoso/_apis/projects?api-version=7.1', await token(AUDITOR, 'aud~secret-value-0123456789'))).status, 200);
    assert.equal((await get('/contoso/_apis/projects?api-version=7.1', await token(OUTSIDER, 'out~secret-value-0123456789'))).status, 401);
    assert.equal((await get('/contoso/_apis/projects?api-version=7.1', 'not-a-token')).status, 203);
  });

  it('per-project faults (403, 500), latency, the request log and the most requests in flight', async () => {
    emu.addProject({ name: 'gamma', fault: { kind: 'status', status: 403 } });
    emu.addProject({ name: 'beta', fault: { kind: 'status', status: 500 } });
    const r403 = await get('/contoso/gamma/_apis/serviceendpoint/endpoints?api-version=7.1');
    assert.equal(r403.status, 403);
    assert.match(r403.body, /View project-level information/);
    assert.equal((await get('/contoso/beta/_apis/serviceendpoint/endpoints?api-version=7.1')).status, 500);
    emu.addProject({ name: 'gamma' });
    emu.addProject({ name: 'beta' });
    assert.equal((await get('/contoso/gamma/_apis/serviceendpoint/endpoints?api-version=7.1')).status, 200);
    emu.resetCounts();
    emu.latencyMs = 100;
    const t0 = Date.now();
    await Promise.all([1, 2, 3].map(() => get('/contoso/_apis/projects?api-version=7.1')));
    emu.latencyMs = 0;
    assert.ok(Date.now() - t0 >= 100);
    const log = emu.requestLog();
    assert.deepEqual(log.map((l) => [l.route, l.method, l.status]), [['devops.projects', 'GET', 200], ['devops.projects', 'GET', 200], ['devops.projects', 'GET', 200]]);
    assert.ok(log.every((l) => l.at >= t0 + 100));
    assert.ok(emu.maxInFlight() >= 1 && emu.maxInFlight() <= 3);
  });

  it('429 with Retry-After on an organisation route', async () => {
    emu.inject('devops.endpoints', { kind: '429', retryAfterSeconds: 2 });
    const r = await get('/contoso/alpha/_apis/serviceendpoint/endpoints?api-version=7.1');
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after'], '2');
    assert.equal((await get('/contoso/alpha/_apis/serviceendpoint/endpoints?api-version=7.1')).status, 200);
  });
});
