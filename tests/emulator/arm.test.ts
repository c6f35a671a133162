import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, SECRET_ROTATION_FAILED, type Emulator } from './index';
import { nowSeconds, signJwt } from './jwt';
import { httpsRequest, Reply } from './test-client';

const TENANT = '0b7c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4';
const OTHER_TENANT = '5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f70819';
const SUB = '2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f';
const FOREIGN_SUB = '3d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f60';
const RG = `/subscriptions/${SUB}/resourceGroups/build`;
const REGISTRY = `${RG}/providers/Microsoft.ContainerRegistry/registries/contosoacr`;
// Shares REGISTRY's name as a prefix: an assignment on one must not leak to the other.
const SIBLING_REGISTRY = `${RG}/providers/Microsoft.ContainerRegistry/registries/contosoacr2`;
const READER_APP = '4e5f6a7b-8c9d-4e0f-9a1b-2c3d4e5f6a7b'; // Reader on SUB, AcrPull on REGISTRY, Graph read
const PUSH_APP = '5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b8c'; // AcrPush on RG only, no Graph permission
const NOBODY_APP = '6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d'; // no role anywhere
const TARGET_APP = '7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e'; // whose credentials Graph shows
const FOREIGN_APP = '8c9d0e1f-2a3b-4c4d-9e5f-6a7b8c9d0e1f'; // lives in OTHER_TENANT
const MI_CLIENT = '9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a';
const MI_OBJECT = 'a0e1f2a3-b4c5-4d6e-9f7a-8b9c0d1e2f3a';
const CONN_ROTATION = 'cc000000-0000-4000-8000-000000000001';
const CONN_FORBIDDEN = 'cc000000-0000-4000-8000-000000000002';
const CONN_UNAUTHORIZED = 'cc000000-0000-4000-8000-000000000003';
const CONN_FEDERATED = 'cc000000-0000-4000-8000-000000000004';
const ARM_SCOPE = 'https://management.azure.com/.default';
const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
const ROLE_IDS = {
  Owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  Contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  Reader: 'acdd72a7-3d48-4fa6-9a81-d4e3f7a1e4f8',
  AcrPush: '8311e382-0749-4cb8-b61a-304f252e45ec',
  AcrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d',
};

interface ArmErrorBody {
  error: { code: string; message: string };
}
interface GraphErrorBody {
  error: { code: string; message: string; innerError: { date: string; 'request-id': string; 'client-request-id': string } };
}
interface Permission {
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
}
interface RoleDefinitionJson {
  id: string;
  name: string;
  type: string;
  properties: { roleName: string; type: string; description: string; assignableScopes: string[]; permissions: Permission[] };
}

describe('emulator: ARM and Microsoft Graph', function () {
  this.timeout(20_000);
  let emu: Emulator;
  let dir: string;
  let ca: string;
  const secrets: Record<string, string> = {};
  const tokens = new Map<string, string>();
  let certificatePem: string;

  function request(method: string, pathOrUrl: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
    return httpsRequest(new URL(pathOrUrl, emu.url), { method, ca, headers, body });
  }

  /** An access token from the emulator's own Entra, by client secret; cached per app and scope. */
  async function token(clientId: string, scope: string, tenant = TENANT): Promise<string> {
    const key = `${clientId} ${scope}`;
    const cached = tokens.get(key);
    if (cached) return cached;
    const r = await request(
      'POST',
      `/${tenant}/oauth2/v2.0/token`,
      { 'Content-Type': 'application/x-www-form-urlencoded' },
      new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secrets[clientId], scope }).toString(),
    );
    assert.equal(r.status, 200, r.body);
    const t = (JSON.parse(r.body) as { access_token: string }).access_token;
    tokens.set(key, t);
    return t;
  }

  async function miToken(resource: string): Promise<string> {
    const r = await request('GET', `/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent(resource)}&client_id=${MI_CLIENT}`, { Metadata: 'true' });
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { access_token: string }).access_token;
  }

  const get = (p: string, bearer?: string, headers: Record<string, string> = {}) =>
    request('GET', p, { ...(bearer === undefined ? {} : { Authorization: `Bearer ${bearer}` }), ...headers });
  const arm = async (p: string, clientId = READER_APP) => get(p, await token(clientId, ARM_SCOPE));
  const graph = async (p: string, clientId = READER_APP) => get(p, await token(clientId, GRAPH_SCOPE));
  const subscriptionPath = (id: string) => `/subscriptions/${id}?api-version=2022-12-01`;
  const permissionsPath = (scope: string) => `${scope}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01`;
  const appPath = (appId: string) => `/v1.0/applications(appId='${appId}')?$select=id,appId,displayName,passwordCredentials,keyCredentials`;

  function armError(r: Reply, status: number, code: string): string {
    assert.equal(r.status, status, r.body);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const body = JSON.parse(r.body) as ArmErrorBody;
    assert.deepEqual(Object.keys(body), ['error']);
    assert.deepEqual(Object.keys(body.error), ['code', 'message']);
    assert.equal(body.error.code, code);
    assert.match(String(r.headers['x-ms-correlation-request-id']), /^[0-9a-f-]{36}$/);
    return body.error.message;
  }

  function graphError(r: Reply, status: number, code: string): string {
    assert.equal(r.status, status, r.body);
    const body = JSON.parse(r.body) as GraphErrorBody;
    assert.equal(body.error.code, code);
    const inner = body.error.innerError;
    assert.match(inner.date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    assert.equal(inner['request-id'], r.headers['request-id']);
    assert.match(inner['client-request-id'], /^[0-9a-f-]{36}$/);
    return body.error.message;
  }

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-arm-test-'));
    emu = await startEmulator({ dir });
    ca = fs.readFileSync(emu.caCertPath, 'utf8');
    const year = new Date(Date.now() + 365 * 86400_000).toISOString();
    const add = (clientId: string, extra: Partial<Parameters<Emulator['addApp']>[0]> = {}, tenantId = TENANT) => {
      secrets[clientId] = `s${clientId.slice(0, 2)}~${crypto.randomBytes(24).toString('base64url')}`;
      emu.addApp({ clientId, tenantId, displayName: `app-${clientId.slice(0, 4)}`, secrets: [{ value: secrets[clientId], endDateTime: year }], ...extra });
    };
    add(READER_APP, { graphAccess: 'read' });
    add(PUSH_APP);
    add(NOBODY_APP);
    add(FOREIGN_APP, { graphAccess: 'read' }, OTHER_TENANT);
    certificatePem = emu.makeClientCertificate('contoso-deploy').certificatePem;
    emu.addApp({
      clientId: TARGET_APP,
      tenantId: TENANT,
      displayName: 'contoso-deploy',
      objectId: 'f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9',
      secrets: [
        { value: 'abcSecretValue~one', endDateTime: '2026-01-15T10:00:00Z', displayName: 'rotated by Azure DevOps' },
        { value: 'xyzSecretValue~two', endDateTime: '2024-03-01T00:00:00Z', startDateTime: '2023-09-01T00:00:00Z', keyId: 'D0C0FFEE-0000-4000-8000-000000000001' },
      ],
      certificates: [{ certificatePem }, { certificatePem, endDateTime: '2025-07-01T00:00:00Z', keyId: 'd0c0ffee-0000-4000-8000-000000000002' }],
    });
    emu.addManagedIdentity({ clientId: MI_CLIENT, tenantId: TENANT, objectId: MI_OBJECT, displayName: 'build-agents' });

    emu.addSubscription({ subscriptionId: SUB, tenantId: TENANT, displayName: 'Contoso Production' });
    emu.addSubscription({ subscriptionId: FOREIGN_SUB, tenantId: OTHER_TENANT });
    emu.assignRole({ principalId: READER_APP, scope: `/subscriptions/${SUB}`, role: 'Reader' });
    emu.assignRole({ principalId: READER_APP, scope: REGISTRY, role: 'AcrPull' });
    emu.assignRole({ principalId: PUSH_APP, scope: RG, role: ROLE_IDS.AcrPush });
    emu.assignRole({ principalId: MI_OBJECT, scope: '/', role: 'contributor' });

    emu.addServiceConnection({
      id: CONN_ROTATION, name: 'legacy-spn', scheme: 'ServicePrincipal', tenantId: TENANT, clientId: TARGET_APP,
      isReady: false, operationStatus: { ...SECRET_ROTATION_FAILED }, createdBy: { displayName: 'Dana Left' },
    });
    emu.addServiceConnection({ id: CONN_FORBIDDEN, name: 'hidden', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: READER_APP, endpointAccess: 'forbidden' });
    emu.addServiceConnection({ id: CONN_UNAUTHORIZED, name: 'locked', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: READER_APP, endpointAccess: 'unauthorized' });
    emu.addServiceConnection({
      id: CONN_FEDERATED, name: 'deploy', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: READER_APP,
      expectedSubject: 'sc://contoso/web/deploy-old-name',
    });
  });

  after(async function () {
    await emu?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(function () {
    emu.clearFaults();
    emu.resetCounts();
  });

  describe('ARM subscriptions', function () {
    it('reads a subscription for a caller with a role at or above it', async function () {
      const r = await arm(subscriptionPath(SUB));
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(JSON.parse(r.body), {
        id: `/subscriptions/${SUB}`,
        authorizationSource: 'RoleBased',
        managedByTenants: [],
        subscriptionId: SUB,
        tenantId: TENANT,
        displayName: 'Contoso Production',
        state: 'Enabled',
        subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' },
      });
      assert.equal(r.headers['x-ms-ratelimit-remaining-subscription-reads'], '11999');
      // A managed identity with Contributor at the root, known by its object id.
      const miAccess = await miToken('https://management.azure.com/');
      const mi = await get(subscriptionPath(SUB), miAccess);
      assert.equal(mi.status, 200, mi.body);
      // Apps and managed identities alike: appid is the client id, oid the service principal's object id.
      const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
      assert.deepEqual(
        [claimsOf(miAccess).appid, claimsOf(miAccess).oid, claimsOf(miAccess).tid],
        [MI_CLIENT, MI_OBJECT, TENANT],
      );
      const app = claimsOf(await token(READER_APP, ARM_SCOPE));
      assert.deepEqual([app.appid, app.oid, app.tid, app.aud], [READER_APP, emu.getApp(READER_APP)!.servicePrincipalObjectId, TENANT, 'https://management.azure.com']);
    });

    it('refuses a caller whose only role is below the subscription, or who has none', async function () {
      for (const app of [PUSH_APP, NOBODY_APP]) {
        const r = await arm(subscriptionPath(SUB), app);
        const oid = emu.getApp(app)!.servicePrincipalObjectId!;
        assert.match(oid, /^[0-9a-f-]{36}$/);
        assert.equal(
          armError(r, 403, 'AuthorizationFailed'),
          `The client '${oid}' with object id '${oid}' does not have authorization to perform action 'Microsoft.Resources/subscriptions/read' over scope '/subscriptions/${SUB}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
        );
      }
    });

    it('answers an unknown, malformed or foreign subscription and a missing api-version', async function () {
      const unknown = crypto.randomUUID();
      assert.equal(armError(await arm(subscriptionPath(unknown)), 404, 'SubscriptionNotFound'), `The subscription '${unknown}' could not be found.`);
      assert.match(armError(await arm(subscriptionPath('not-a-guid')), 400, 'InvalidSubscriptionId'), /'not-a-guid' is malformed/);
      const foreign = await arm(subscriptionPath(FOREIGN_SUB));
      assert.match(armError(foreign, 401, 'InvalidAuthenticationTokenTenant'), new RegExp(`wrong issuer 'https://sts.windows.net/${TENANT}/'.*tenant 'https://sts.windows.net/${OTHER_TENANT}/'`));
      assert.match(armError(await arm(`/subscriptions/${SUB}`), 400, 'MissingApiVersionParameter'), /api-version query parameter/);
    });
  });

  describe('ARM permissions', function () {
    it('merges the roles held at the scope and above it, and nothing from siblings', async function () {
      const at = async (scope: string) => {
        const r = await arm(permissionsPath(scope));
        assert.equal(r.status, 200, r.body);
        return (JSON.parse(r.body) as { value: Permission[] }).value;
      };
      const reader: Permission = { actions: ['*/read'], notActions: [], dataActions: [], notDataActions: [] };
      const pull: Permission = { actions: ['Microsoft.ContainerRegistry/registries/pull/read'], notActions: [], dataActions: [], notDataActions: [] };
      assert.deepEqual(await at(REGISTRY), [reader, pull]);
      assert.deepEqual(await at(REGISTRY.toUpperCase().replace(SUB.toUpperCase(), SUB)), [reader, pull], 'resource ids compare case-insensitively');
      assert.deepEqual(await at(`/subscriptions/${SUB}`), [reader]);
      assert.deepEqual(await at(SIBLING_REGISTRY), [reader]);
      assert.deepEqual(await at(`/subscriptions/${SUB}/resourceGroups/other`), [reader]);

      const push = await arm(permissionsPath(REGISTRY), PUSH_APP);
      assert.deepEqual((JSON.parse(push.body) as { value: Permission[] }).value, [
        { actions: ['Microsoft.ContainerRegistry/registries/pull/read', 'Microsoft.ContainerRegistry/registries/push/write'], notActions: [], dataActions: [], notDataActions: [] },
      ]);
      const none = await arm(permissionsPath(`/subscriptions/${SUB}`), PUSH_APP);
      assert.deepEqual(JSON.parse(none.body), { value: [] });

      const mi = await get(permissionsPath(RG), await miToken('https://management.core.windows.net/'));
      const contributor = (JSON.parse(mi.body) as { value: Permission[] }).value;
      assert.equal(contributor.length, 1);
      assert.deepEqual(contributor[0].actions, ['*']);
      for (const n of ['Microsoft.Authorization/*/Delete', 'Microsoft.Authorization/*/Write', 'Microsoft.Authorization/elevateAccess/Action']) {
        assert.ok(contributor[0].notActions.includes(n), n);
      }
    });

    it('refuses scopes outside a subscription and unknown subscriptions', async function () {
      assert.match(armError(await arm(permissionsPath('/foo/bar')), 400, 'MissingSubscription'), /did not have a subscription/);
      armError(await arm(permissionsPath(`/subscriptions/${crypto.randomUUID()}/resourceGroups/x`)), 404, 'SubscriptionNotFound');
    });
  });

  describe('ARM role definitions', function () {
    it('finds a role by name filter and by id, with its real GUID and actions', async function () {
      const filter = encodeURIComponent("roleName eq 'AcrPush'");
      const byName = await arm(`/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=${filter}`);
      assert.equal(byName.status, 200, byName.body);
      const [push, ...rest] = (JSON.parse(byName.body) as { value: RoleDefinitionJson[] }).value;
      assert.equal(rest.length, 0);
      assert.equal(push.name, ROLE_IDS.AcrPush);
      assert.equal(push.id, `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.AcrPush}`);
      assert.equal(push.type, 'Microsoft.Authorization/roleDefinitions');
      assert.equal(push.properties.roleName, 'AcrPush');
      assert.equal(push.properties.type, 'BuiltInRole');
      assert.deepEqual(push.properties.assignableScopes, ['/']);
      assert.deepEqual(push.properties.permissions, [
        { actions: ['Microsoft.ContainerRegistry/registries/pull/read', 'Microsoft.ContainerRegistry/registries/push/write'], notActions: [], dataActions: [], notDataActions: [] },
      ]);

      const byId = await arm(`${REGISTRY}/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.AcrPull}?api-version=2022-04-01`);
      assert.equal(byId.status, 200, byId.body);
      const pull = JSON.parse(byId.body) as RoleDefinitionJson;
      assert.equal(pull.properties.roleName, 'AcrPull');
      assert.deepEqual(pull.properties.permissions[0].actions, ['Microsoft.ContainerRegistry/registries/pull/read']);

      const all = await arm(`/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01`);
      const names = (JSON.parse(all.body) as { value: RoleDefinitionJson[] }).value.map((d) => [d.properties.roleName, d.name, d.id]);
      for (const [roleName, id] of Object.entries(ROLE_IDS)) {
        assert.deepEqual(names.find(([n]) => n === roleName), [roleName, id, `/providers/Microsoft.Authorization/roleDefinitions/${id}`]);
      }
      assert.deepEqual(
        emu.builtInRoles().filter((r) => r.roleName in ROLE_IDS).map((r) => [r.roleName, r.id]),
        Object.entries(ROLE_IDS),
      );
    });

    it('answers an unknown role with an empty list or 404, and refuses an unsupported filter', async function () {
      const base = `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions`;
      const none = await arm(`${base}?api-version=2022-04-01&$filter=${encodeURIComponent("roleName eq 'Nope'")}`);
      assert.deepEqual(JSON.parse(none.body), { value: [] });
      const missing = crypto.randomUUID();
      assert.equal(armError(await arm(`${base}/${missing}?api-version=2022-04-01`), 404, 'RoleDefinitionDoesNotExist'), `The specified role definition with ID '${missing}' does not exist.`);
      armError(await arm(`${base}?api-version=2022-04-01&$filter=${encodeURIComponent("startswith(roleName,'Acr')")}`), 400, 'BadRequest');
    });
  });

  describe('bearer tokens', function () {
    it('refuses a token for another audience with the real 401 bodies', async function () {
      const graphToken = await token(READER_APP, GRAPH_SCOPE);
      const r = await get(subscriptionPath(SUB), graphToken);
      assert.match(armError(r, 401, 'InvalidAuthenticationTokenAudience'), /^The access token has been obtained for wrong audience or resource 'https:\/\/graph.microsoft.com'\. It should exactly match with one of the allowed audiences 'https:\/\/management.core.windows.net\/'/);
      assert.match(String(r.headers['www-authenticate']), /^Bearer authorization_uri="[^"]+", error="invalid_token", error_description="/);

      const g = await get(appPath(TARGET_APP), await token(READER_APP, ARM_SCOPE));
      assert.equal(graphError(g, 401, 'InvalidAuthenticationToken'), 'Access token validation failure. Invalid audience.');
      assert.match(String(g.headers['www-authenticate']), /client_id="00000003-0000-0000-c000-000000000000"/);
    });

    it('refuses missing, malformed, forged and expired tokens', async function () {
      assert.match(armError(await get(subscriptionPath(SUB)), 401, 'AuthenticationFailed'), /'Authorization' header is missing/);
      assert.equal(armError(await get(subscriptionPath(SUB), 'not-a-jwt'), 401, 'InvalidAuthenticationToken'), 'The access token is invalid.');
      assert.equal(graphError(await get(appPath(TARGET_APP)), 401, 'InvalidAuthenticationToken'), 'Access token is empty.');
      assert.match(graphError(await get(appPath(TARGET_APP), 'not-a-jwt'), 401, 'InvalidAuthenticationToken'), /^CompactToken parsing failed/);

      // Same claims as a real token, signed by another key.
      const real = await token(READER_APP, ARM_SCOPE);
      const [h, p] = real.split('.');
      const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      const forged = `${h}.${p}.${crypto.sign('sha256', Buffer.from(`${h}.${p}`), privateKey).toString('base64url')}`;
      armError(await get(subscriptionPath(SUB), forged), 401, 'InvalidAuthenticationToken');

      // Signed with the emulator's Entra key, but an hour past its expiry.
      const entraKey = crypto.createPrivateKey(fs.readFileSync(path.join(dir, 'entra-signing-key.pem')));
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
      const expiredAt = nowSeconds() - 3600;
      const expired = (aud: string) =>
        signJwt(JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>, { ...claims, aud, iat: expiredAt - 3600, nbf: expiredAt - 3600, exp: expiredAt }, entraKey);
      assert.match(
        armError(await get(subscriptionPath(SUB), expired('https://management.azure.com')), 401, 'ExpiredAuthenticationToken'),
        /^The access token expiry UTC time '\d{1,2}\/\d{1,2}\/\d{4} \d{1,2}:\d\d:\d\d [AP]M' is earlier than current UTC time '\d{1,2}\/\d{1,2}\/\d{4} \d{1,2}:\d\d:\d\d [AP]M'\.$/,
      );
      assert.equal(graphError(await get(appPath(TARGET_APP), expired('https://graph.microsoft.com')), 401, 'InvalidAuthenticationToken'), 'Lifetime validation failed, the token is expired.');
      // The same key and claims with a live expiry pass: the refusals above were for the reasons named.
      const live = signJwt(JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>, { ...claims, exp: nowSeconds() + 600 }, entraKey);
      assert.equal((await get(subscriptionPath(SUB), live)).status, 200);
    });
  });

  describe('Microsoft Graph', function () {
    it('reads an app registration with its credentials end dates and no secret values', async function () {
      const r = await graph(appPath(TARGET_APP));
      assert.equal(r.status, 200, r.body);
      assert.match(String(r.headers['content-type']), /^application\/json;odata\.metadata=minimal/);
      for (const value of ['abcSecretValue~one', 'xyzSecretValue~two', 'SecretValue']) assert.ok(!r.body.includes(value), `${value} leaked`);
      const app = JSON.parse(r.body) as Record<string, unknown> & {
        passwordCredentials: Record<string, unknown>[];
        keyCredentials: Record<string, unknown>[];
      };
      assert.deepEqual(Object.keys(app), ['@odata.context', 'id', 'appId', 'displayName', 'keyCredentials', 'passwordCredentials']);
      assert.equal(app['@odata.context'], `${emu.url}/v1.0/$metadata#applications(id,appId,displayName,passwordCredentials,keyCredentials)/$entity`);
      assert.equal(app.id, 'f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9');
      assert.equal(app.appId, TARGET_APP);
      assert.equal(app.displayName, 'contoso-deploy');

      const [one, two] = app.passwordCredentials;
      assert.deepEqual(Object.keys(one), ['customKeyIdentifier', 'displayName', 'endDateTime', 'hint', 'keyId', 'secretText', 'startDateTime']);
      assert.equal(one.endDateTime, '2026-01-15T10:00:00Z');
      assert.equal(one.hint, 'abc');
      assert.equal(one.displayName, 'rotated by Azure DevOps');
      assert.equal(one.secretText, null);
      assert.equal(one.customKeyIdentifier, null);
      assert.match(String(one.keyId), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.ok(Date.parse(String(one.startDateTime)) < Date.parse(String(one.endDateTime)));
      assert.deepEqual(two, {
        customKeyIdentifier: null, displayName: null, endDateTime: '2024-03-01T00:00:00Z', hint: 'xyz',
        keyId: 'd0c0ffee-0000-4000-8000-000000000001', secretText: null, startDateTime: '2023-09-01T00:00:00Z',
      });

      const x509 = new crypto.X509Certificate(certificatePem);
      const thumbprint = x509.fingerprint.replace(/:/g, '');
      const [fromPem, overridden] = app.keyCredentials;
      assert.deepEqual(Object.keys(fromPem), ['customKeyIdentifier', 'displayName', 'endDateTime', 'key', 'keyId', 'startDateTime', 'type', 'usage']);
      assert.equal(fromPem.customKeyIdentifier, thumbprint);
      assert.equal(fromPem.displayName, 'CN=contoso-deploy');
      assert.equal(Date.parse(String(fromPem.endDateTime)), Date.parse(x509.validTo));
      assert.equal(Date.parse(String(fromPem.startDateTime)), Date.parse(x509.validFrom));
      assert.equal(fromPem.key, null);
      assert.equal(fromPem.type, 'AsymmetricX509Cert');
      assert.equal(fromPem.usage, 'Verify');
      assert.equal(overridden.endDateTime, '2025-07-01T00:00:00Z');
      assert.equal(overridden.keyId, 'd0c0ffee-0000-4000-8000-000000000002');
      assert.notEqual(fromPem.keyId, overridden.keyId);

      // The token says why it may: Application.Read.All, granted when it was issued.
      const claims = JSON.parse(Buffer.from((await token(READER_APP, GRAPH_SCOPE)).split('.')[1], 'base64url').toString('utf8')) as { roles?: string[] };
      assert.deepEqual(claims.roles, ['Application.Read.All']);
    });

    it('refuses a caller without Application.Read.All, and answers an unknown app with 404', async function () {
      assert.equal(graphError(await graph(appPath(TARGET_APP), PUSH_APP), 403, 'Authorization_RequestDenied'), 'Insufficient privileges to complete the operation.');
      const claims = JSON.parse(Buffer.from((await token(PUSH_APP, GRAPH_SCOPE)).split('.')[1], 'base64url').toString('utf8')) as { roles?: string[] };
      assert.equal(claims.roles, undefined);
      const unknown = crypto.randomUUID();
      assert.equal(
        graphError(await graph(appPath(unknown)), 404, 'Request_ResourceNotFound'),
        `Resource '${unknown}' does not exist or one of its queried reference-property objects are not present.`,
      );
      // An app of another tenant is not in the caller's directory.
      graphError(await graph(appPath(FOREIGN_APP)), 404, 'Request_ResourceNotFound');
      assert.match(graphError(await graph(`/v1.0/applications(appId='${TARGET_APP}')?$select=id,secretValue`), 400, 'Request_BadRequest'), /property named 'secretValue'/);
    });

    it('reads service principals of apps and managed identities, and applications by filter or object id', async function () {
      const sp = await graph(`/v1.0/servicePrincipals(appId='${READER_APP}')?$select=id,appId,displayName,accountEnabled`);
      assert.equal(sp.status, 200, sp.body);
      assert.deepEqual(JSON.parse(sp.body), {
        '@odata.context': `${emu.url}/v1.0/$metadata#servicePrincipals(id,appId,displayName,accountEnabled)/$entity`,
        id: emu.getApp(READER_APP)!.servicePrincipalObjectId,
        accountEnabled: true,
        appId: READER_APP,
        displayName: `app-${READER_APP.slice(0, 4)}`,
      });
      const mi = JSON.parse((await graph(`/v1.0/servicePrincipals(appId='${MI_CLIENT}')`)).body) as Record<string, unknown>;
      assert.equal(mi.id, MI_OBJECT);
      assert.equal(mi.servicePrincipalType, 'ManagedIdentity');
      graphError(await graph(`/v1.0/servicePrincipals(appId='${TARGET_APP}')`, NOBODY_APP), 403, 'Authorization_RequestDenied');

      const listed = JSON.parse((await graph(`/v1.0/applications?$filter=${encodeURIComponent(`appId eq '${TARGET_APP}'`)}&$select=id,appId`)).body) as { value: unknown[] };
      assert.deepEqual(listed.value, [{ id: 'f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9', appId: TARGET_APP }]);
      const byObjectId = await graph(`/v1.0/applications/f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9?$select=appId`);
      assert.equal((JSON.parse(byObjectId.body) as { appId: string }).appId, TARGET_APP);
      // Percent-encoded quotes and parentheses name the same app.
      const encoded = await graph(`/v1.0/applications%28appId=%27${TARGET_APP}%27%29?$select=appId`);
      assert.equal(encoded.status, 200, encoded.body);
    });
  });

  describe('Azure DevOps service endpoint states', function () {
    const endpoint = (id: string) =>
      request('GET', `/contoso/web/_apis/serviceendpoint/endpoints/${id}?api-version=7.1`, { Authorization: `Bearer ${emu.jobAccessToken}` });

    it('shows a failed secret rotation and a creator by name', async function () {
      const r = await endpoint(CONN_ROTATION);
      assert.equal(r.status, 200, r.body);
      const ep = JSON.parse(r.body) as { isReady: boolean; operationStatus: { state: string; statusMessage: string }; createdBy: { displayName: string; id: string; uniqueName: string } };
      assert.equal(ep.isReady, false);
      assert.deepEqual(ep.operationStatus, {
        state: 'Failed',
        statusMessage: 'One or more issues occurred while trying to rotate service endpoint secrets. More details: Insufficient privileges to complete the operation in Microsoft Graph.',
      });
      assert.equal(ep.createdBy.displayName, 'Dana Left');
      assert.match(ep.createdBy.id, /^[0-9a-f-]{36}$/);
    });

    it('records an expected subject that differs from the idToken', async function () {
      const ep = JSON.parse((await endpoint(CONN_FEDERATED)).body) as { authorization: { parameters: Record<string, string> } };
      assert.equal(ep.authorization.parameters.workloadIdentityFederationSubject, 'sc://contoso/web/deploy-old-name');
      assert.equal(ep.authorization.parameters.workloadIdentityFederationIssuer, emu.expectedFederation(CONN_FEDERATED).issuer);
      assert.equal(emu.expectedFederation(CONN_FEDERATED).subject, 'sc://contoso/web/deploy');
    });

    it('answers 403 ServiceEndpointException and 401 for a connection the job may not view', async function () {
      const forbidden = await endpoint(CONN_FORBIDDEN);
      assert.equal(forbidden.status, 403);
      const body = JSON.parse(forbidden.body) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body), ['$id', 'innerException', 'message', 'typeName', 'typeKey', 'errorCode', 'eventId']);
      assert.equal(body.typeKey, 'ServiceEndpointException');
      assert.equal(body.typeName, 'Microsoft.TeamFoundation.DistributedTask.WebApi.ServiceEndpointException, Microsoft.TeamFoundation.DistributedTask.WebApi');
      assert.match(String(body.message), new RegExp(`does not have permissions to view endpoint with id '${CONN_FORBIDDEN}'`));
      assert.equal(body.eventId, 3000);

      const unauthorized = await endpoint(CONN_UNAUTHORIZED);
      assert.equal(unauthorized.status, 401);
      assert.equal((JSON.parse(unauthorized.body) as { typeKey: string }).typeKey, 'UnauthorizedRequestException');
      assert.ok(unauthorized.headers['www-authenticate']);
    });
  });

  describe('faults and counts', function () {
    it('injects faults on the ARM and Graph routes and counts every request per route', async function () {
      emu.inject('arm.permissions', { kind: '429', retryAfterSeconds: 3 });
      const limited = await arm(permissionsPath(REGISTRY));
      assert.equal(limited.headers['retry-after'], '3');
      armError(limited, 429, 'TooManyRequests');
      assert.equal((await arm(permissionsPath(REGISTRY))).status, 200);

      emu.inject('arm.subscription', { kind: 'status', status: 500 }, 2);
      for (let i = 0; i < 2; i++) assert.match(armError(await arm(subscriptionPath(SUB)), 500, 'InternalServerError'), /Encountered internal server error/);
      assert.equal((await arm(subscriptionPath(SUB))).status, 200);

      emu.inject('arm.roleDefinitions', { kind: 'invalid-json' });
      const broken = await arm(`/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01`);
      assert.equal(broken.status, 200);
      assert.throws(() => JSON.parse(broken.body) as unknown);

      emu.inject('graph.application', { kind: 'status', status: 503 });
      graphError(await graph(appPath(TARGET_APP)), 503, 'serviceNotAvailable');
      emu.inject('graph.servicePrincipal', { kind: 'reset' });
      await assert.rejects(graph(`/v1.0/servicePrincipals(appId='${READER_APP}')`), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET');

      assert.equal(emu.count('arm.permissions'), 2);
      assert.equal(emu.count('arm.subscription'), 3);
      assert.equal(emu.count('arm.roleDefinitions'), 1);
      assert.equal(emu.count('graph.application'), 1);
      assert.equal(emu.count('graph.servicePrincipal'), 1);
      assert.equal(emu.counts().unmatched, 0);
      emu.resetCounts();
      assert.equal(emu.count('arm.subscription'), 0);
    });

    it('checks assignRole input and removes assignments', async function () {
      assert.throws(() => emu.assignRole({ principalId: NOBODY_APP, scope: '/subscriptions/x', role: 'Reader' }), TypeError);
      assert.throws(() => emu.assignRole({ principalId: NOBODY_APP, scope: `/subscriptions/${SUB}`, role: 'Chief' }), /unknown role/);
      emu.assignRole({ principalId: NOBODY_APP, scope: `/subscriptions/${SUB}/`, role: 'Owner' });
      assert.equal((await arm(subscriptionPath(SUB), NOBODY_APP)).status, 200);
      assert.equal(emu.unassignRole({ principalId: NOBODY_APP.toUpperCase(), scope: `/subscriptions/${SUB}`, role: ROLE_IDS.Owner }), 1);
      assert.equal((await arm(subscriptionPath(SUB), NOBODY_APP)).status, 403);
    });
  });
});
