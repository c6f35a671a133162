import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import { startEmulator, addDemoScenario, agentEnvironment, type Emulator } from './index';
import { b64url, b64urlJson, guidToDotNetBytes } from './jwt';
import { httpsRequest, Reply } from './test-client';

const TENANT = '11f2e3d4-c5b6-4a79-8e8d-7c6b5a4f3e2d';
const FED_APP = '22a3b4c5-d6e7-4f80-9a1b-2c3d4e5f6a7b';
const ENTRA_APP = '33b4c5d6-e7f8-4a91-8b2c-3d4e5f6a7b8c';
const SECRET_APP = '44c5d6e7-f8a9-4b02-9c3d-4e5f6a7b8c9d';
const CERT_APP = '55d6e7f8-a9b0-4c13-8d4e-5f6a7b8c9d0e';
const BARE_APP = '66e7f8a9-b0c1-4d24-9e5f-6a7b8c9d0e1f';
const FED_CONN = 'aa000000-0000-4000-8000-000000000001';
const ENTRA_CONN = 'aa000000-0000-4000-8000-000000000002';
const UNMATCHED_CONN = 'aa000000-0000-4000-8000-000000000003';
const MI_CLIENT = '77f8a9b0-c1d2-4e35-8f6a-7b8c9d0e1f2a';
const ARM = 'https://management.azure.com/.default';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';


describe('emulator', function () {
  let emu: Emulator;
  let ca: string;
  let goodSecret: string;
  let expiredSecret: string;

  function request(
    method: string,
    pathOrUrl: string,
    options: { headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
  ): Promise<Reply> {
    return httpsRequest(new URL(pathOrUrl, emu.url), { method, ca, ...options });
  }

  const bearer = () => ({ Authorization: `Bearer ${emu.jobAccessToken}`, 'Content-Type': 'application/json' });
  const oidcPath = (connectionId?: string) =>
    `${emu.collectionUri}${emu.projectId}/_apis/distributedtask/hubs/build/plans/${crypto.randomUUID()}/jobs/${crypto.randomUUID()}/oidctoken?api-version=7.1-preview.1` +
    (connectionId === undefined ? '' : `&serviceConnectionId=${connectionId}`);

  async function idToken(connectionId: string): Promise<string> {
    const r = await request('POST', oidcPath(connectionId), { headers: bearer(), body: '{}' });
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { oidcToken: string }).oidcToken;
  }

  function tokenRequest(fields: Record<string, string>, tenant = TENANT): Promise<Reply> {
    return request('POST', `/${tenant}/oauth2/v2.0/token`, {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: ARM, ...fields }).toString(),
    });
  }

  const exchange = (clientId: string, assertion: string) =>
    tokenRequest({ client_id: clientId, client_assertion_type: JWT_BEARER, client_assertion: assertion });

  function claims(jwt: string): Record<string, unknown> {
    return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
  }

  function verifies(jwt: string, jwk: object): boolean {
    const [h, p, s] = jwt.split('.');
    const key = crypto.createPublicKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
    return crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
  }

  function assertAadsts(r: Reply, code: number, status = 400): { error: string; error_description: string } {
    assert.equal(r.status, status, r.body);
    const body = JSON.parse(r.body) as Record<string, unknown>;
    assert.deepEqual(body.error_codes, [code]);
    const description = String(body.error_description);
    assert.match(description, new RegExp(`^AADSTS${code}: `));
    assert.match(description, /\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    assert.equal(body.error_uri, `https://login.microsoftonline.com/error?code=${code}`);
    for (const k of ['timestamp', 'trace_id', 'correlation_id']) assert.equal(typeof body[k], 'string');
    return body as { error: string; error_description: string };
  }

  before(async function () {
    emu = await startEmulator();
    ca = fs.readFileSync(emu.caCertPath, 'utf8');
    emu.addServiceConnection({ id: FED_CONN, name: 'deploy-prod', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: FED_APP });
    emu.addServiceConnection({ id: ENTRA_CONN, name: 'deploy-entra', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: ENTRA_APP, issuerMode: 'entra' });
    emu.addServiceConnection({ id: UNMATCHED_CONN, name: 'renamed-connection', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: FED_APP });
    const fed = emu.expectedFederation(FED_CONN);
    emu.addApp({ clientId: FED_APP, tenantId: TENANT, displayName: 'deploy', federatedCredentials: [{ issuer: fed.issuer, subject: fed.subject, audiences: [fed.audience] }] });
    const entraFed = emu.expectedFederation(ENTRA_CONN);
    emu.addApp({ clientId: ENTRA_APP, tenantId: TENANT, federatedCredentials: [{ issuer: entraFed.issuer, subject: entraFed.subject, audiences: [entraFed.audience] }] });
    goodSecret = `good~${crypto.randomBytes(20).toString('base64url')}`;
    expiredSecret = `old~${crypto.randomBytes(20).toString('base64url')}`;
    emu.addApp({
      clientId: SECRET_APP,
      tenantId: TENANT,
      secrets: [
        { value: goodSecret, endDateTime: new Date(Date.now() + 86400_000).toISOString() },
        { value: expiredSecret, endDateTime: '2024-01-01T00:00:00Z' },
      ],
    });
    emu.addApp({ clientId: BARE_APP, tenantId: TENANT, displayName: 'bare' });
    emu.addManagedIdentity({ clientId: MI_CLIENT, tenantId: TENANT });
  });

  after(async function () {
    await emu?.stop();
  });

  beforeEach(function () {
    emu.clearFaults();
    emu.resetCounts();
    emu.idTokenLifetimeSeconds = 600;
  });

  it('serves HTTPS on 127.0.0.1 with a certificate for 127.0.0.1 and localhost', function () {
    assert.match(emu.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(emu.host, emu.url.slice('https://'.length));
    assert.equal(emu.collectionUri, `${emu.url}/contoso/`);
    const caCert = new crypto.X509Certificate(ca);
    assert.equal(caCert.ca, true);
    assert.equal(caCert.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  });

  describe('Azure DevOps', function () {
    it('issues a vstoken idToken for a connection, signed with the issuer key', async function () {
      const token = await idToken(FED_CONN);
      const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')) as Record<string, unknown>;
      assert.equal(header.alg, 'RS256');
      assert.equal(header.typ, 'JWT');
      assert.equal(header.kid, emu.signingKeys().devops.kid);
      const c = claims(token);
      assert.equal(c.iss, `https://vstoken.dev.azure.com/${emu.organization.id}`);
      assert.equal(c.sub, 'sc://contoso/web/deploy-prod');
      assert.equal(c.aud, 'api://AzureADTokenExchange');
      assert.equal(typeof c.jti, 'string');
      const now = Math.floor(Date.now() / 1000);
      assert.ok(Math.abs((c.exp as number) - (now + 600)) <= 2);
      assert.ok((c.iat as number) <= now && (c.nbf as number) <= now);
      assert.ok(verifies(token, emu.signingKeys().devops));
      assert.ok(!verifies(token, emu.signingKeys().entra));
      assert.deepEqual({ issuer: c.iss, subject: c.sub }, { issuer: emu.expectedFederation(FED_CONN).issuer, subject: emu.expectedFederation(FED_CONN).subject });
    });

    it('issues an Entra-issuer idToken with the eid1 subject', async function () {
      const c = claims(await idToken(ENTRA_CONN));
      assert.equal(c.iss, `https://login.microsoftonline.com/${TENANT}/v2.0`);
      const t = b64url(guidToDotNetBytes(TENANT));
      const a = b64url(guidToDotNetBytes(ENTRA_APP));
      assert.equal(c.sub, `/eid1/c/pub/t/${t}/a/${a}/sc/${emu.organization.id}/${ENTRA_CONN}`);
      assert.equal(c.aud, 'api://AzureADTokenExchange');
      // The published example: tenant 72f988bf-... is v4j5cvGGr0GRqy180BHbRw in such subjects.
      assert.equal(b64url(guidToDotNetBytes('72f988bf-86f1-41af-91ab-2d7cd011db47')), 'v4j5cvGGr0GRqy180BHbRw');
    });

    it('gives the pipeline token without a connection or for a non-GUID one', async function () {
      for (const path of [oidcPath(), oidcPath('not-a-guid')]) {
        const r = await request('POST', path, { headers: bearer(), body: '{}' });
        assert.equal(r.status, 200);
        assert.match(String(claims((JSON.parse(r.body) as { oidcToken: string }).oidcToken).sub), /^p:\/\/contoso\/web\/.+/);
      }
      const r = await request('POST', oidcPath(FED_CONN).replace('7.1-preview.1', '7.1'), { headers: bearer(), body: '{}' });
      assert.equal(r.status, 200);
    });

    it('answers a missing or wrong job token with 203 and a sign-in page', async function () {
      for (const headers of [{}, { Authorization: 'Bearer not-the-token' }] as Record<string, string>[]) {
        const r = await request('POST', oidcPath(FED_CONN), { headers, body: '{}' });
        assert.equal(r.status, 203);
        assert.match(String(r.headers['content-type']), /^text\/html/);
        assert.match(r.body, /Sign In/);
      }
      const r = await request('GET', `/contoso/web/_apis/serviceendpoint/endpoints/${FED_CONN}?api-version=7.1`);
      assert.equal(r.status, 203);
    });

    it('answers an unknown connection with 404 ServiceEndpointNotFoundException', async function () {
      const unknown = crypto.randomUUID();
      const r = await request('POST', oidcPath(unknown), { headers: bearer(), body: '{}' });
      assert.equal(r.status, 404);
      const body = JSON.parse(r.body) as Record<string, unknown>;
      assert.equal(body.$id, '1');
      assert.equal(body.innerException, null);
      assert.equal(body.typeKey, 'ServiceEndpointNotFoundException');
      assert.match(String(body.typeName), /^Microsoft\.TeamFoundation\.DistributedTask\.WebApi\.ServiceEndpointNotFoundException, /);
      assert.equal(body.errorCode, 0);
      assert.equal(body.eventId, 3000);
      assert.ok(String(body.message).includes(unknown));
    });

    it('returns the service endpoint with its federation issuer and subject', async function () {
      for (const project of ['web', emu.projectId]) {
        const r = await request('GET', `/contoso/${project}/_apis/serviceendpoint/endpoints/${FED_CONN}?api-version=7.1`, { headers: bearer() });
        assert.equal(r.status, 200, r.body);
        const ep = JSON.parse(r.body) as {
          id: string; type: string; url: string; isReady: boolean; owner: string;
          authorization: { scheme: string; parameters: Record<string, string> };
          data: Record<string, string>; serviceEndpointProjectReferences: { projectReference: { id: string } }[];
        };
        assert.equal(ep.id, FED_CONN);
        assert.equal(ep.type, 'azurerm');
        assert.equal(ep.url, 'https://management.azure.com/');
        assert.equal(ep.authorization.scheme, 'WorkloadIdentityFederation');
        assert.equal(ep.authorization.parameters.tenantid, TENANT);
        assert.equal(ep.authorization.parameters.serviceprincipalid, FED_APP);
        assert.equal(ep.authorization.parameters.workloadIdentityFederationSubject, 'sc://contoso/web/deploy-prod');
        assert.equal(ep.data.environment, 'AzureCloud');
        assert.equal(ep.isReady, true);
        assert.equal(ep.owner, 'library');
        assert.equal(ep.serviceEndpointProjectReferences[0].projectReference.id, emu.projectId);
      }
      const missing = await request('GET', `/contoso/web/_apis/serviceendpoint/endpoints/${crypto.randomUUID()}?api-version=7.1`, { headers: bearer() });
      assert.equal(missing.status, 404);
      assert.equal((JSON.parse(missing.body) as { typeKey: string }).typeKey, 'ServiceEndpointNotFoundException');
    });
  });

  describe('Entra', function () {
    it('publishes openid-configuration, instance discovery and keys', async function () {
      const oc = JSON.parse((await request('GET', `/${TENANT}/v2.0/.well-known/openid-configuration`)).body) as Record<string, string>;
      assert.equal(oc.token_endpoint, `${emu.url}/${TENANT}/oauth2/v2.0/token`);
      assert.equal(oc.issuer, `${emu.url}/${TENANT}/v2.0`);
      assert.equal(oc.jwks_uri, `${emu.url}/${TENANT}/discovery/v2.0/keys`);
      assert.ok(oc.authorization_endpoint && oc.end_session_endpoint);
      assertAadsts(await request('GET', `/${crypto.randomUUID()}/v2.0/.well-known/openid-configuration`), 90002);

      const d = await request('GET', `/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(`${emu.url}/${TENANT}/oauth2/v2.0/authorize`)}`);
      const disco = JSON.parse(d.body) as { tenant_discovery_endpoint: string; metadata: { preferred_network: string; aliases: string[] }[] };
      assert.equal(disco.tenant_discovery_endpoint, `${emu.url}/${TENANT}/v2.0/.well-known/openid-configuration`);
      assert.deepEqual(disco.metadata[0].aliases, [emu.host]);
      assert.equal(disco.metadata[0].preferred_network, emu.host);

      const jwks = JSON.parse((await request('GET', `/${TENANT}/discovery/v2.0/keys`)).body) as { keys: { kid: string }[] };
      assert.equal(jwks.keys[0].kid, emu.signingKeys().entra.kid);
    });

    it('exchanges a federated idToken for an access token signed with the Entra key', async function () {
      const r = await exchange(FED_APP, await idToken(FED_CONN));
      assert.equal(r.status, 200, r.body);
      const body = JSON.parse(r.body) as Record<string, unknown>;
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.expires_in, 3599);
      assert.equal(body.ext_expires_in, 3599);
      const at = String(body.access_token);
      const c = claims(at);
      assert.equal(c.aud, 'https://management.azure.com');
      assert.equal(c.iss, `https://sts.windows.net/${TENANT}/`);
      assert.equal(c.tid, TENANT);
      assert.equal(c.appid, FED_APP);
      assert.equal(typeof c.oid, 'string');
      const jwks = JSON.parse((await request('GET', `/${TENANT}/discovery/v2.0/keys`)).body) as { keys: object[] };
      assert.ok(verifies(at, jwks.keys[0]));
      assert.deepEqual(emu.lastTokenRequest(), { clientId: FED_APP, scope: ARM, grantType: 'client_credentials', assertionKind: 'federated' });
      assert.ok(emu.issuedTokens().includes(at));

      const devops = await tokenRequest({ client_id: FED_APP, client_assertion_type: JWT_BEARER, client_assertion: await idToken(FED_CONN), scope: '499b84ac-1321-427f-aa17-267ca6975798/.default' });
      assert.equal(claims(String((JSON.parse(devops.body) as Record<string, unknown>).access_token)).aud, '499b84ac-1321-427f-aa17-267ca6975798');
    });

    it('exchanges an Entra-issuer idToken', async function () {
      const r = await exchange(ENTRA_APP, await idToken(ENTRA_CONN));
      assert.equal(r.status, 200, r.body);
    });

    it('names the presented subject in AADSTS700213', async function () {
      const r = await exchange(FED_APP, await idToken(UNMATCHED_CONN));
      const body = assertAadsts(r, 700213, 401);
      assert.equal(body.error, 'invalid_client');
      assert.ok(body.error_description.includes("presented assertion subject 'sc://contoso/web/renamed-connection'"));
    });

    it('answers AADSTS700211 for an issuer no credential has', async function () {
      // FED_APP trusts the vstoken issuer only; an Entra-issuer token of the same app does not match.
      emu.addServiceConnection({ id: 'aa000000-0000-4000-8000-000000000004', name: 'new-issuer', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: FED_APP, issuerMode: 'entra' });
      const body = assertAadsts(await exchange(FED_APP, await idToken('aa000000-0000-4000-8000-000000000004')), 700211, 401);
      assert.ok(body.error_description.includes(`assertion issuer 'https://login.microsoftonline.com/${TENANT}/v2.0'`));
    });

    it('answers AADSTS70025 for an app without federated credentials', async function () {
      assertAadsts(await exchange(BARE_APP, await idToken(FED_CONN)), 70025, 401);
    });

    it('answers AADSTS700212 for an audience mismatch', async function () {
      const fed = emu.expectedFederation(FED_CONN);
      const app = 'aa111111-0000-4000-8000-000000000001';
      emu.addApp({ clientId: app, tenantId: TENANT, federatedCredentials: [{ issuer: fed.issuer, subject: fed.subject, audiences: ['api://SomethingElse'] }] });
      assertAadsts(await exchange(app, await idToken(FED_CONN)), 700212, 401);
    });

    it('answers AADSTS700024 for an expired idToken', async function () {
      emu.idTokenLifetimeSeconds = -60;
      const token = await idToken(FED_CONN);
      const c = claims(token);
      assert.ok((c.exp as number) < Date.now() / 1000);
      const body = assertAadsts(await exchange(FED_APP, token), 700024, 401);
      assert.match(body.error_description, /Current time: \S+Z, assertion valid from \S+Z, expiry time of assertion \S+Z/);
    });

    it('answers AADSTS50013 for an assertion not signed by the issuer', async function () {
      const token = await idToken(FED_CONN);
      const [h, p] = token.split('.');
      const forged = `${h}.${p}.${b64url(crypto.randomBytes(256))}`;
      assertAadsts(await exchange(FED_APP, forged), 50013, 401);
    });

    it('checks client secrets: AADSTS7000215 wrong, AADSTS7000222 expired', async function () {
      assert.equal((await tokenRequest({ client_id: SECRET_APP, client_secret: goodSecret })).status, 200);
      assert.equal(emu.lastTokenRequest()?.assertionKind, 'secret');
      assertAadsts(await tokenRequest({ client_id: SECRET_APP, client_secret: 'not-it' }), 7000215, 401);
      const body = assertAadsts(await tokenRequest({ client_id: SECRET_APP, client_secret: expiredSecret }), 7000222, 401);
      assert.ok(body.error_description.includes(`for app '${SECRET_APP}' are expired`));
    });

    it('rejects unknown tenants, unknown or disabled apps and bad scopes', async function () {
      assertAadsts(await tokenRequest({ client_id: SECRET_APP, client_secret: goodSecret }, crypto.randomUUID()), 90002);
      assert.equal(assertAadsts(await tokenRequest({ client_id: crypto.randomUUID(), client_secret: goodSecret }), 700016).error, 'unauthorized_client');
      for (const scope of ['', 'https://management.azure.com', `${ARM} https://graph.microsoft.com/.default`]) {
        assert.equal(assertAadsts(await tokenRequest({ client_id: SECRET_APP, client_secret: goodSecret, scope }), 70011).error, 'invalid_scope');
      }
      const disabled = 'aa222222-0000-4000-8000-000000000001';
      emu.addApp({ clientId: disabled, tenantId: TENANT, disabled: true, secrets: [{ value: goodSecret, endDateTime: '2999-01-01T00:00:00Z' }] });
      assertAadsts(await tokenRequest({ client_id: disabled, client_secret: goodSecret }), 7000112);
    });

    it('accepts a certificate assertion and rejects one signed by another key', async function () {
      const cert = emu.makeClientCertificate('contoso-cert-app');
      emu.addApp({ clientId: CERT_APP, tenantId: TENANT, certificates: [{ certificatePem: cert.certificatePem }] });
      const der = new crypto.X509Certificate(cert.certificatePem).raw;
      const now = Math.floor(Date.now() / 1000);
      const sign = (header: Record<string, unknown>, key: crypto.KeyLike) => {
        const input = `${b64urlJson({ alg: 'RS256', typ: 'JWT', ...header })}.${b64urlJson({
          aud: `${emu.url}/${TENANT}/oauth2/v2.0/token`, iss: CERT_APP, sub: CERT_APP, jti: crypto.randomUUID(), nbf: now, exp: now + 600,
        })}`;
        return `${input}.${b64url(crypto.sign('sha256', Buffer.from(input), key))}`;
      };
      const sha1 = b64url(crypto.createHash('sha1').update(der).digest());
      const sha256 = b64url(crypto.createHash('sha256').update(der).digest());
      for (const header of [{ x5t: sha1 }, { 'x5t#S256': sha256 }]) {
        const r = await exchange(CERT_APP, sign(header, cert.privateKeyPem));
        assert.equal(r.status, 200, r.body);
        assert.equal(emu.lastTokenRequest()?.assertionKind, 'certificate');
      }
      const otherKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const body = assertAadsts(await exchange(CERT_APP, sign({ x5t: sha1 }, otherKey)), 700027, 401);
      assert.ok(body.error_description.includes('Client assertion failed signature validation'));
      assert.ok(emu.issuedTokens().some((t) => cert.privateKeyPem.includes(t) && t.length === 64));
    });
  });

  describe('IMDS', function () {
    it('issues a managed identity token with the Metadata header and refuses without it', async function () {
      const path = `/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent('https://management.azure.com/')}`;
      for (const p of [path, `${path}&client_id=${MI_CLIENT}`]) {
        const r = await request('GET', p, { headers: { Metadata: 'true' } });
        assert.equal(r.status, 200, r.body);
        const body = JSON.parse(r.body) as Record<string, string>;
        assert.equal(body.token_type, 'Bearer');
        assert.equal(body.client_id, MI_CLIENT);
        assert.equal(body.resource, 'https://management.azure.com/');
        assert.match(body.expires_on, /^\d+$/);
        assert.match(body.expires_in, /^\d+$/);
        assert.equal(claims(body.access_token).aud, 'https://management.azure.com/');
        assert.ok(emu.issuedTokens().includes(body.access_token));
      }
      const bare = await request('GET', path);
      assert.equal(bare.status, 400);
      assert.equal((JSON.parse(bare.body) as { error: string }).error, 'invalid_request');
      const unknown = await request('GET', `${path}&client_id=${crypto.randomUUID()}`, { headers: { Metadata: 'true' } });
      assert.deepEqual(JSON.parse(unknown.body), { error: 'invalid_request', error_description: 'Identity not found' });
    });
  });

  describe('faults and counters', function () {
    it('injects status, 429 and html203 faults, each for the given number of requests', async function () {
      emu.inject('oidctoken', { kind: 'status', status: 503 }, 2);
      for (let i = 0; i < 2; i++) {
        const r = await request('POST', oidcPath(FED_CONN), { headers: bearer(), body: '{}' });
        assert.equal(r.status, 503);
        assert.equal((JSON.parse(r.body) as { $id: string }).$id, '1');
      }
      assert.equal((await request('POST', oidcPath(FED_CONN), { headers: bearer(), body: '{}' })).status, 200);

      emu.inject('entra.token', { kind: '429', retryAfterSeconds: 7 });
      const limited = await tokenRequest({ client_id: SECRET_APP, client_secret: goodSecret });
      assert.equal(limited.status, 429);
      assert.equal(limited.headers['retry-after'], '7');
      assert.ok(Array.isArray((JSON.parse(limited.body) as { error_codes: number[] }).error_codes));

      emu.inject('serviceendpoint', { kind: 'html203' });
      const page = await request('GET', `/contoso/web/_apis/serviceendpoint/endpoints/${FED_CONN}?api-version=7.1`, { headers: bearer() });
      assert.equal(page.status, 203);
      assert.match(String(page.headers['content-type']), /^text\/html/);

      emu.inject('entra.openid', { kind: 'status', status: 500, body: '{"oops":true}', headers: { 'x-test': 'yes' } });
      const custom = await request('GET', `/${TENANT}/v2.0/.well-known/openid-configuration`);
      assert.equal(custom.status, 500);
      assert.equal(custom.body, '{"oops":true}');
      assert.equal(custom.headers['x-test'], 'yes');
    });

    it('injects invalid JSON and a null oidcToken', async function () {
      emu.inject('oidctoken', { kind: 'invalid-json' });
      const r = await request('POST', oidcPath(FED_CONN), { headers: bearer(), body: '{}' });
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.throws(() => JSON.parse(r.body) as unknown);

      emu.inject('oidctoken', { kind: 'null-oidc' });
      const n = await request('POST', oidcPath(FED_CONN), { headers: bearer(), body: '{}' });
      assert.deepEqual(JSON.parse(n.body), { oidcToken: null });
      assert.throws(() => emu.inject('entra.token', { kind: 'null-oidc' }), TypeError);
    });

    it('streams a huge body of the given size, chunked or announced', async function () {
      emu.inject('oidctoken', { kind: 'huge-body', bytes: 300_000 });
      const chunked = await request('POST', oidcPath(FED_CONN), { headers: bearer(), body: '{}' });
      assert.equal(chunked.status, 200);
      assert.equal(chunked.headers['transfer-encoding'], 'chunked');
      assert.equal(Buffer.byteLength(chunked.body), 300_000);
      assert.match(chunked.body, /^\{"oidcToken":"AAAA/);
      emu.inject('oidctoken', { kind: 'huge-body', bytes: 300_000, contentLength: true, status: 502 });
      const announced = await request('POST', oidcPath(FED_CONN), { headers: bearer(), body: '{}' });
      assert.equal(announced.status, 502);
      assert.equal(announced.headers['content-length'], '300000');
      assert.equal(Buffer.byteLength(announced.body), 300_000);
    });

    it('resets the connection', async function () {
      emu.inject('imds', { kind: 'reset' });
      await assert.rejects(request('GET', '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x', { headers: { Metadata: 'true' } }), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET');
      assert.equal(emu.count('imds'), 1);
    });

    it('keeps Infinity faults until clearFaults()', async function () {
      emu.inject('entra.keys', { kind: 'status', status: 502 }, Infinity);
      for (let i = 0; i < 3; i++) assert.equal((await request('GET', `/${TENANT}/discovery/v2.0/keys`)).status, 502);
      emu.clearFaults();
      assert.equal((await request('GET', `/${TENANT}/discovery/v2.0/keys`)).status, 200);
    });

    it('counts requests per route, faulted ones too, and resets the counts', async function () {
      emu.inject('oidctoken', { kind: 'status', status: 500 });
      await request('POST', oidcPath(FED_CONN), { headers: bearer(), body: '{}' });
      await request('POST', oidcPath(FED_CONN), { headers: bearer(), body: '{}' });
      await request('GET', `/${TENANT}/v2.0/.well-known/openid-configuration`);
      const missing = await request('GET', '/no/such/path');
      assert.equal(missing.status, 404);
      assert.equal((JSON.parse(missing.body) as { error: string }).error, 'not_found');
      assert.equal(emu.count('oidctoken'), 2);
      assert.equal(emu.count('entra.openid'), 1);
      assert.equal(emu.count('entra.token'), 0);
      assert.equal(emu.counts().unmatched, 1);
      emu.resetCounts();
      assert.equal(emu.count('oidctoken'), 0);
    });

    it('records every issued secret, including each job token', async function () {
      const first = emu.jobAccessToken;
      const id = await idToken(FED_CONN);
      emu.jobAccessToken = `rotated-${crypto.randomBytes(24).toString('base64url')}`;
      const tokens = emu.issuedTokens();
      for (const t of [first, emu.jobAccessToken, id, goodSecret]) assert.ok(tokens.includes(t));
      // the old token no longer opens the API
      const r = await request('POST', oidcPath(FED_CONN), { headers: { Authorization: `Bearer ${first}` }, body: '{}' });
      assert.equal(r.status, 203);
      emu.jobAccessToken = first;
    });

    it('holds a hanging request until stop(), which still returns quickly', async function () {
      const own = await startEmulator();
      const ownCa = fs.readFileSync(own.caCertPath, 'utf8');
      own.inject('entra.token', { kind: 'hang' });
      const started = Date.now();
      const hung = new Promise<string>((resolve) => {
        const req = https.request(`${own.url}/${TENANT}/oauth2/v2.0/token`, { method: 'POST', ca: ownCa, agent: false }, () => resolve('answered'));
        req.setTimeout(300, () => {
          resolve('timeout');
          req.destroy();
        });
        req.on('error', () => undefined);
        req.end('grant_type=client_credentials');
      });
      assert.equal(await hung, 'timeout');
      assert.ok(Date.now() - started >= 290);
      // a second hanging request, still open while stopping
      own.inject('entra.token', { kind: 'hang' });
      const open = https.request(`${own.url}/${TENANT}/oauth2/v2.0/token`, { method: 'POST', ca: ownCa, agent: false });
      const closed = new Promise<void>((resolve) => open.on('error', () => resolve()).on('close', () => resolve()));
      open.end('grant_type=client_credentials');
      await new Promise((r) => setTimeout(r, 50));
      const stopStarted = Date.now();
      await own.stop();
      await closed;
      assert.ok(Date.now() - stopStarted < 500, `stop() took ${Date.now() - stopStarted} ms`);
      assert.equal(fs.existsSync(own.caCertPath), false);
    });
  });

  describe('scenario', function () {
    it('gives an agent environment that reaches a token through the demo scenario', async function () {
      const demo = addDemoScenario(emu);
      const env = agentEnvironment(emu, demo.federated.connectionId, { AGENT_TEMPDIRECTORY: '/tmp/x' });
      const id = demo.federated.connectionId;
      assert.equal(env.INPUT_CONNECTEDSERVICENAMEARM, id);
      assert.equal(env.NODE_EXTRA_CA_CERTS, emu.caCertPath);
      assert.equal(env.AGENT_TEMPDIRECTORY, '/tmp/x');
      assert.deepEqual(JSON.parse(env[`ENDPOINT_AUTH_${id}`]), {
        parameters: { tenantid: demo.tenantId, serviceprincipalid: demo.federated.clientId },
        scheme: 'WorkloadIdentityFederation',
      });
      assert.equal(env[`ENDPOINT_DATA_${id}_ENVIRONMENTAUTHORITYURL`], `${emu.url}/`);
      assert.equal((JSON.parse(env.ENDPOINT_AUTH_SYSTEMVSSCONNECTION) as { parameters: { AccessToken: string } }).parameters.AccessToken, emu.jobAccessToken);

      const r = await request('POST', `${env.SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId=${id}`, {
        headers: { Authorization: `Bearer ${env.ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN}`, 'Content-Type': 'application/json' },
        body: '{}',
      });
      assert.equal(r.status, 200, r.body);
      const assertion = (JSON.parse(r.body) as { oidcToken: string }).oidcToken;
      const x = await request('POST', `${env[`ENDPOINT_DATA_${id}_ENVIRONMENTAUTHORITYURL`]}${demo.tenantId}/oauth2/v2.0/token`, {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: demo.federated.clientId, scope: ARM, client_assertion_type: JWT_BEARER, client_assertion: assertion }).toString(),
      });
      assert.equal(x.status, 200, x.body);

      const secretEnv = agentEnvironment(emu, demo.secret.connectionId);
      assert.equal(secretEnv[`ENDPOINT_AUTH_PARAMETER_${demo.secret.connectionId}_SERVICEPRINCIPALKEY`], demo.secret.secret);
      assert.equal(secretEnv[`ENDPOINT_AUTH_SCHEME_${demo.secret.connectionId}`], 'ServicePrincipal');
    });
  });
});
