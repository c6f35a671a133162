/**
 * The emulator's HashiCorp Vault, reached as a task reaches it: at https://vault.fabrikam.com:8200,
 * a name that does not resolve here, through a CONNECT proxy that maps it (and only it) to the
 * emulator. Every refusal is checked with Vault's status and words.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import NodeVault from 'node-vault';
import { startEmulator, VAULT_ADDRESS, VAULT_AUTHORITY, type Emulator } from './index';
import { nowSeconds, signJwt } from './jwt';
import { coversPublicNames } from './pki';
import { httpsRequest, type Reply } from './test-client';
import { proxyToEmulator, tunnelAgent, type MappingProxy } from '../helpers/connect-proxy';

const TENANT = '4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a';
const CLIENT = '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b';
const CONN = 'ad000000-0000-4000-8000-000000000001';
const OTHER_CONN = 'ad000000-0000-4000-8000-000000000002';
const PERMISSION_DENIED = ['permission denied'];
const POLICY_DENIED = ['1 error occurred:\n\t* permission denied\n\n'];
const INVALID_TOKEN = ['2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n'];

interface Body {
  request_id?: string;
  errors?: string[];
  warnings?: string[] | null;
  data?: Record<string, unknown> | null;
  auth?: Record<string, unknown> | null;
  lease_id?: string;
  lease_duration?: number;
  renewable?: boolean;
  mount_type?: string;
}

describe('emulator: HashiCorp Vault', function () {
  this.timeout(30_000);
  let emu: Emulator;
  let ca: string;
  let proxy: MappingProxy;
  let agent: https.Agent;
  let subject: string;
  let otherSubject: string;
  let issuer: string;

  /** A request to Vault's address, through the mapping proxy. */
  function vault(method: string, p: string, options: { token?: string; namespace?: string; json?: unknown; headers?: Record<string, string> } = {}): Promise<Reply & { json: Body }> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers['X-Vault-Token'] = options.token;
    if (options.namespace !== undefined) headers['X-Vault-Namespace'] = options.namespace;
    const body = options.json === undefined ? undefined : JSON.stringify(options.json);
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return new Promise((resolve, reject) => {
      const req = https.request(new URL(p, VAULT_ADDRESS), { method, headers, agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: (text ? JSON.parse(text) : {}) as Body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async function idToken(connectionId: string): Promise<string> {
    const r = await httpsRequest(new URL(`${emu.collectionUri}${emu.projectId}/_apis/distributedtask/hubs/build/plans/${emu.planId}/jobs/${emu.jobId}/oidctoken?api-version=7.1-preview.1&serviceConnectionId=${connectionId}`), {
      method: 'POST',
      ca,
      headers: { Authorization: `Bearer ${emu.jobAccessToken}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { oidcToken: string }).oidcToken;
  }

  /** A token signed with the emulator's Azure DevOps key (from its PKI folder), with the claims given. */
  function devopsSigned(claims: Record<string, unknown>): string {
    const key = crypto.createPrivateKey(fs.readFileSync(path.join(path.dirname(emu.caCertPath), 'devops-signing-key.pem')));
    return signJwt({ typ: 'JWT', kid: emu.signingKeys().devops.kid }, { iss: issuer, sub: subject, aud: 'api://AzureADTokenExchange', ...claims }, key);
  }

  const login = async (role: string | undefined, jwt: string | undefined, options: { mount?: string; namespace?: string; prefix?: string } = {}) =>
    vault('POST', `/v1/${options.prefix ?? ''}auth/${options.mount ?? 'jwt'}/login`, { namespace: options.namespace, json: { ...(role === undefined ? {} : { role }), ...(jwt === undefined ? {} : { jwt }) } });

  /** Logs in and returns the client token. */
  async function tokenFor(role: string, options: { mount?: string; namespace?: string; conn?: string } = {}): Promise<string> {
    const r = await login(role, await idToken(options.conn ?? CONN), options);
    assert.equal(r.status, 200, r.body);
    return r.json.auth!.client_token as string;
  }

  /** A login refused with 400 and exactly this text. */
  async function refused(r: Reply & { json: Body }, text: string): Promise<void> {
    assert.equal(r.status, 400, r.body);
    assert.deepEqual(r.json, { errors: [text] });
  }

  before(async function () {
    emu = await startEmulator();
    ca = fs.readFileSync(emu.caCertPath, 'utf8');
    proxy = await proxyToEmulator(emu, [VAULT_AUTHORITY]);
    agent = tunnelAgent(proxy.url, { ca });
    emu.addServiceConnection({ id: CONN, name: 'vault-prod', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: CLIENT });
    emu.addServiceConnection({ id: OTHER_CONN, name: 'vault-other', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: CLIENT });
    ({ issuer, subject } = emu.expectedFederation(CONN));
    otherSubject = emu.expectedFederation(OTHER_CONN).subject;

    const v = emu.vault;
    v.configureJwtAuth();
    v.addJwtRole({ name: 'deploy', boundSubject: subject, tokenPolicies: ['kv-read'] });
    v.addKvMount({ path: 'secret', version: 2 });
    v.addKvMount({ path: 'kv', version: 1 });
    v.addKvMount({ path: 'legacy', version: 1, noVersionOption: true });
    v.addKvMount({ path: 'other-kv', version: 2 });
    v.addMount({ path: 'database', type: 'database', roles: ['readonly'] });
    v.addPolicy('kv-read', [
      { path: 'secret/data/app/*', capabilities: ['read'] },
      { path: 'secret/data/app/forbidden', capabilities: ['deny'] },
      { path: 'kv/app/*', capabilities: ['read'] },
      { path: 'legacy/*', capabilities: ['read'] },
      { path: 'database/creds/*', capabilities: ['read'] },
    ]);
    v.putSecret('secret', 'app/config', { username: 'svc-deploy', password: 'first<version>&1' });
    v.putSecret('secret', 'app/config', { username: 'svc-deploy', password: 'p@ss<word>&more' }, { customMetadata: { owner: 'platform' } });
    v.putSecret('kv', 'app/legacy', { api_key: 'kv1-api-key-value' });
  });

  after(async function () {
    agent?.destroy();
    await proxy?.stop();
    await emu?.stop();
  });

  beforeEach(function () {
    emu.clearFaults();
    emu.resetCounts();
    emu.idTokenLifetimeSeconds = 600;
    emu.vault.setSealed(false);
  });

  it('is served at vault.fabrikam.com:8200 only, reached through the mapping proxy', async function () {
    const r = await login('deploy', await idToken(CONN));
    assert.equal(r.status, 200, r.body);
    assert.ok(proxy.connects.some((c) => c.authority === VAULT_AUTHORITY && c.status === 200), JSON.stringify(proxy.connects));
    assert.equal(VAULT_ADDRESS, 'https://vault.fabrikam.com:8200');
    assert.equal(emu.vault.address, VAULT_ADDRESS);
    // The proxy maps that port only; the emulator serves Vault at that name and port only.
    const elsewhere = tunnelAgent(proxy.url, { ca });
    await assert.rejects(
      new Promise((resolve, reject) => https.request('https://vault.fabrikam.com/v1/sys/health', { agent: elsewhere }, resolve).on('error', reject).end()),
      /the proxy answered CONNECT vault\.fabrikam\.com:443 with 403/,
    );
    elsewhere.destroy();
    const port = Number(emu.host.split(':')[1]);
    for (const host of ['vault.fabrikam.com', 'sts.googleapis.com:8200']) {
      const misdirected = await httpsRequest({ host: '127.0.0.1', port, path: '/v1/auth/jwt/login', servername: 'vault.fabrikam.com', headers: { Host: host } }, { method: 'POST', ca, body: '{}' });
      assert.equal(misdirected.status, 421, host);
    }
    assert.equal(emu.counts().misdirected, 2);
    // A path another service uses at its own host (Google STS's POST /v1/token) is Vault's here.
    const token = String(r.json.auth!.client_token);
    const own = await vault('POST', '/v1/token', { token, json: {} });
    assert.deepEqual([own.status, own.json], [403, { errors: POLICY_DENIED }]);
    assert.deepEqual([emu.count('vault.other'), emu.count('gcp.sts.token'), emu.counts().misdirected], [1, 0, 2]);
  });

  describe('login (JWT auth method)', function () {
    it('answers a token of the role\'s policies, and records it', async function () {
      const jwt = await idToken(CONN);
      const r = await login('deploy', jwt);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.match(String(r.json.request_id), /^[0-9a-f-]{36}$/);
      assert.deepEqual([r.json.lease_id, r.json.renewable, r.json.lease_duration, r.json.data, r.json.warnings], ['', false, 0, null, null]);
      const auth = r.json.auth!;
      assert.match(String(auth.client_token), /^hvs\.[A-Za-z0-9]{90}$/);
      assert.match(String(auth.accessor), /^[A-Za-z0-9]{24}$/);
      assert.deepEqual(auth.policies, ['default', 'kv-read']);
      assert.deepEqual(auth.token_policies, ['default', 'kv-read']);
      assert.deepEqual(auth.metadata, { role: 'deploy' });
      assert.equal(auth.lease_duration, 900);
      assert.equal(auth.renewable, true);
      assert.match(String(auth.entity_id), /^[0-9a-f-]{36}$/);
      assert.equal(auth.token_type, 'service');
      assert.equal(auth.orphan, true);
      const record = emu.vault.tokens().find((t) => t.token === auth.client_token)!;
      assert.equal(record.accessor, auth.accessor);
      assert.deepEqual([record.namespace, record.mount, record.role, record.displayName, record.revoked], ['', 'auth/jwt/', 'deploy', `jwt-${subject}`, false]);
      assert.deepEqual(record.policies, ['default', 'kv-read']);
      assert.equal(record.claims.sub, subject);
      assert.equal(record.claims.iss, issuer);
      const lifetime = Date.parse(record.expiresAt) - Date.parse(record.issuedAt);
      assert.equal(lifetime, 900_000);
      assert.ok(emu.vault.isValid(String(auth.client_token)));
      assert.ok(emu.issuedTokens().includes(String(auth.client_token)));
      // The same alias is the same entity.
      const again = await login('deploy', await idToken(CONN));
      assert.equal(again.json.auth!.entity_id, auth.entity_id);
      const logged = emu.requestLog().filter((l) => l.route === 'vault.login');
      assert.equal(logged.length, 2);
      assert.deepEqual(logged[0].vault, { namespaceHeader: undefined, tokenPresent: false });
      assert.equal(logged[0].host, VAULT_AUTHORITY);
      assert.equal(logged[0].status, 200);
      assert.equal(emu.count('vault.login'), 2);
    });

    it('refuses a role it does not have, no role, no token, an oidc role, as Vault words it', async function () {
      const jwt = await idToken(CONN);
      await refused(await login('nope', jwt), 'role "nope" could not be found');
      await refused(await login(undefined, jwt), 'missing role');
      await refused(await login('deploy', undefined), 'missing token');
      emu.vault.addJwtRole({ name: 'browser', roleType: 'oidc', tokenPolicies: ['kv-read'] });
      await refused(await login('browser', jwt), 'role with oidc role_type is not allowed');
      // Role names are lower case.
      assert.equal((await login('DEPLOY', jwt)).status, 200);
      // A mount's default_role serves a login that names none.
      emu.vault.configureJwtAuth({ mount: 'azure-devops', defaultRole: 'pipelines' });
      emu.vault.addJwtRole({ mount: 'azure-devops', name: 'pipelines', boundSubject: subject, tokenPolicies: ['kv-read'] });
      const r = await login(undefined, jwt, { mount: 'azure-devops' });
      assert.equal(r.status, 200, r.body);
      assert.equal(emu.vault.tokens().at(-1)!.mount, 'auth/azure-devops/');
      assert.equal(emu.vault.tokens().at(-1)!.displayName, `azure-devops-${subject}`);
      assert.throws(() => emu.vault.addJwtRole({ name: 'loose', boundAudiences: [], tokenPolicies: [] }), /^TypeError: must have at least one bound constraint when creating\/updating a role$/);
    });

    it('refuses a token that is not signed by the Azure DevOps key, or not a JWT', async function () {
      await refused(await login('deploy', 'not-a-jwt'), 'error validating token: error verifying token signature: oidc: malformed jwt: go-jose/go-jose: compact JWS format must have three parts');
      const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const forged = signJwt({ typ: 'JWT', kid: emu.signingKeys().devops.kid }, { iss: issuer, sub: subject, aud: 'api://AzureADTokenExchange', iat: nowSeconds(), exp: nowSeconds() + 600 }, stranger);
      await refused(await login('deploy', forged), 'error validating token: error verifying token signature: failed to verify id token signature');
    });

    it('refuses when Vault cannot reach the issuer\'s discovery document', async function () {
      emu.vault.configureJwtAuth({ mount: 'offline', keys: 'unreachable' });
      emu.vault.addJwtRole({ mount: 'offline', name: 'deploy', boundSubject: subject, tokenPolicies: ['kv-read'] });
      await refused(
        await login('deploy', await idToken(CONN), { mount: 'offline' }),
        `error configuring token validator: keyset configuration error: Get "${issuer}/.well-known/openid-configuration": dial tcp: lookup vstoken.dev.azure.com: no such host`,
      );
    });

    it('checks bound_issuer, bound_audiences, bound_subject', async function () {
      const jwt = await idToken(CONN);
      emu.vault.configureJwtAuth({ mount: 'elsewhere', boundIssuer: 'https://vstoken.dev.azure.com/00000000-0000-4000-8000-000000000000' });
      emu.vault.addJwtRole({ mount: 'elsewhere', name: 'deploy', boundSubject: subject, tokenPolicies: [] });
      await refused(await login('deploy', jwt, { mount: 'elsewhere' }), 'error validating token: invalid issuer (iss) claim');
      emu.vault.addJwtRole({ name: 'vault-audience', boundAudiences: ['https://vault.fabrikam.com'], tokenPolicies: [] });
      await refused(await login('vault-audience', jwt), 'error validating token: invalid audience (aud) claim: audience claim does not match any expected audience');
      emu.vault.addJwtRole({ name: 'no-audience', boundAudiences: [], boundSubject: subject, tokenPolicies: [] });
      await refused(await login('no-audience', jwt), 'audience claim found in JWT but no audiences bound to the role');
      await refused(await login('deploy', await idToken(OTHER_CONN)), 'error validating token: invalid subject (sub) claim');
    });

    it('checks bound_claims (string or glob, a value or a list) and user_claim', async function () {
      const jwt = await idToken(CONN);
      const role = (name: string, extra: Partial<Parameters<Emulator['vault']['addJwtRole']>[0]>) => emu.vault.addJwtRole({ name, tokenPolicies: ['kv-read'], ...extra });
      role('exact', { boundClaims: { sub: subject } });
      assert.equal((await login('exact', jwt)).status, 200);
      role('listed', { boundClaims: { sub: [otherSubject, subject] } });
      assert.equal((await login('listed', jwt)).status, 200);
      role('other', { boundClaims: { sub: otherSubject } });
      await refused(await login('other', jwt), 'error validating claims: claim "sub" does not match any associated bound claim values');
      role('missing', { boundClaims: { def_id: '17' } });
      await refused(await login('missing', jwt), 'error validating claims: claim "def_id" is missing');
      role('glob', { boundClaimsType: 'glob', boundClaims: { sub: 'sc://contoso/web/*' } });
      assert.equal((await login('glob', jwt)).status, 200);
      role('no-glob', { boundClaims: { sub: 'sc://contoso/web/*' } });
      await refused(await login('no-glob', jwt), 'error validating claims: claim "sub" does not match any associated bound claim values');
      role('glob-prod', { boundClaimsType: 'glob', boundClaims: { sub: ['sc://contoso/prod/*', '*/staging-*'] } });
      await refused(await login('glob-prod', jwt), 'error validating claims: claim "sub" does not match any associated bound claim values');
      role('user', { boundSubject: subject, userClaim: 'preferred_username' });
      await refused(await login('user', jwt), 'claim "preferred_username" not found in token');
      role('user-number', { boundSubject: subject, userClaim: 'iat' });
      await refused(await login('user-number', jwt), 'claim "iat" could not be converted to string');
    });

    it('checks exp, nbf and iat with the default 60 s clock skew leeway', async function () {
      emu.idTokenLifetimeSeconds = -30;
      assert.equal((await login('deploy', await idToken(CONN))).status, 200);
      emu.idTokenLifetimeSeconds = -90;
      await refused(await login('deploy', await idToken(CONN)), 'error validating token: invalid expiration time (exp) claim: token is expired');
      const now = nowSeconds();
      assert.equal((await login('deploy', devopsSigned({ iat: now, nbf: now + 30, exp: now + 600 }))).status, 200);
      await refused(await login('deploy', devopsSigned({ iat: now, nbf: now + 120, exp: now + 600 })), 'error validating token: invalid not before (nbf) claim: token not yet valid');
      // Without nbf, cap takes iat for it: a future iat is a future nbf first.
      await refused(await login('deploy', devopsSigned({ iat: now + 120, exp: now + 600 })), 'error validating token: invalid not before (nbf) claim: token not yet valid');
      await refused(await login('deploy', devopsSigned({ iat: now + 120, nbf: now, exp: now + 600 })), 'error validating token: invalid issued at (iat) claim: token issued in the future');
      await refused(await login('deploy', devopsSigned({})), 'error validating token: no issued at (iat), not before (nbf), or expiration time (exp) claims in token');
      emu.vault.addJwtRole({ name: 'strict', boundSubject: subject, tokenPolicies: [], clockSkewLeewaySeconds: -1 });
      emu.idTokenLifetimeSeconds = -5;
      await refused(await login('strict', await idToken(CONN)), 'error validating token: invalid expiration time (exp) claim: token is expired');
    });

    it('a login at a mount that does not exist needs a token: permission denied without one, no handler with one', async function () {
      const jwt = await idToken(CONN);
      const r = await login('deploy', jwt, { mount: 'nope' });
      assert.deepEqual([r.status, r.json], [403, { errors: PERMISSION_DENIED }]);
      emu.vault.addPolicy('auth-writer', [{ path: 'auth/*', capabilities: ['update'] }]);
      emu.vault.addJwtRole({ name: 'auth-writer', boundSubject: subject, tokenPolicies: ['auth-writer'] });
      const token = await tokenFor('auth-writer');
      const withToken = await vault('POST', '/v1/auth/nope/login', { token, json: { role: 'deploy', jwt } });
      assert.deepEqual([withToken.status, withToken.json], [404, { errors: ['no handler for route "auth/nope/login". route entry not found.'] }]);
      // A login path ignores a token it is sent, even one that is not valid.
      const ignored = await vault('POST', '/v1/auth/jwt/login', { token: 'hvs.not-a-token', json: { role: 'deploy', jwt } });
      assert.equal(ignored.status, 200, ignored.body);
    });
  });

  describe('sys/internal/ui/mounts', function () {
    it('answers the mount of a path the token may reach: its path, type and options.version', async function () {
      const token = await tokenFor('deploy');
      const cases: [string, string, unknown][] = [
        ['secret/app/config', 'secret/', { version: '2' }],
        ['secret', 'secret/', { version: '2' }],
        ['kv/app/legacy', 'kv/', { version: '1' }],
        ['legacy/anything', 'legacy/', null],
        ['database/creds/readonly', 'database/', null],
      ];
      for (const [p, mount, options] of cases) {
        const r = await vault('GET', `/v1/sys/internal/ui/mounts/${p}`, { token });
        assert.equal(r.status, 200, r.body);
        assert.equal(r.json.data!.path, mount, p);
        assert.equal(r.json.data!.type, mount === 'database/' ? 'database' : 'kv');
        assert.deepEqual(r.json.data!.options, options, p);
        assert.equal(r.json.mount_type, 'system');
      }
      assert.equal(emu.count('vault.mounts'), cases.length);
    });

    it('refuses a mount the policies do not reach and a path under no mount alike; checks the token', async function () {
      const token = await tokenFor('deploy');
      const preflight = (p: string) => [`preflight capability check returned 403, please ensure client's policies grant access to path "${p}"`];
      let r = await vault('GET', '/v1/sys/internal/ui/mounts/other-kv/app', { token });
      assert.deepEqual([r.status, r.json], [403, { errors: preflight('other-kv/app/') }]);
      r = await vault('GET', '/v1/sys/internal/ui/mounts/nowhere/x', { token });
      assert.deepEqual([r.status, r.json], [403, { errors: preflight('nowhere/x/') }]);
      // No mount is answered before the token is looked at.
      r = await vault('GET', '/v1/sys/internal/ui/mounts/nowhere/x');
      assert.deepEqual([r.status, r.json], [403, { errors: preflight('nowhere/x/') }]);
      r = await vault('GET', '/v1/sys/internal/ui/mounts/secret/app');
      assert.deepEqual([r.status, r.json], [403, { errors: PERMISSION_DENIED }]);
      r = await vault('GET', '/v1/sys/internal/ui/mounts/secret/app', { token: 'hvs.unknown' });
      assert.deepEqual([r.status, r.json], [403, { errors: INVALID_TOKEN }]);
    });
  });

  describe('reads', function () {
    it('KV v2: data and metadata, a version by number, Go\'s JSON escaping', async function () {
      const token = await tokenFor('deploy');
      const r = await vault('GET', '/v1/secret/data/app/config', { token });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json.mount_type, 'kv');
      const data = r.json.data as { data: Record<string, string>; metadata: Record<string, unknown> };
      assert.deepEqual(data.data, { username: 'svc-deploy', password: 'p@ss<word>&more' });
      assert.ok(r.body.includes('p@ss\\u003cword\\u003e\\u0026more'), r.body);
      assert.ok(r.body.endsWith('}\n'));
      assert.equal(data.metadata.version, 2);
      assert.deepEqual(data.metadata.custom_metadata, { owner: 'platform' });
      assert.deepEqual([data.metadata.deletion_time, data.metadata.destroyed], ['', false]);
      assert.match(String(data.metadata.created_time), /^\d{4}-\d\d-\d\dT/);
      const first = await vault('GET', '/v1/secret/data/app/config?version=1', { token });
      assert.equal((first.json.data as { data: Record<string, string> }).data.password, 'first<version>&1');
      assert.ok(emu.issuedTokens().includes('p@ss<word>&more'));
    });

    it('KV v2: missing, soft-deleted, and a path without data/', async function () {
      const token = await tokenFor('deploy');
      let r = await vault('GET', '/v1/secret/data/app/missing', { token });
      assert.deepEqual([r.status, JSON.parse(r.body)], [404, { errors: [] }]);
      emu.vault.putSecret('secret', 'app/retired', { value: 'retired-value' });
      emu.vault.deleteLatestVersion('secret', 'app/retired');
      r = await vault('GET', '/v1/secret/data/app/retired', { token });
      assert.equal(r.status, 404);
      assert.equal(r.json.errors, undefined);
      const deleted = r.json.data as { data: unknown; metadata: { deletion_time: string; version: number; destroyed: boolean } };
      assert.equal(deleted.data, null);
      assert.ok(Date.parse(deleted.metadata.deletion_time) <= Date.now());
      assert.deepEqual([deleted.metadata.version, deleted.metadata.destroyed, r.json.mount_type], [1, false, '']);
      // Without data/ the policies decide first (kv-read does not reach secret/app/...), then the engine.
      r = await vault('GET', '/v1/secret/app/config', { token });
      assert.deepEqual([r.status, r.json], [403, { errors: POLICY_DENIED }]);
      emu.vault.addPolicy('secret-all', [{ path: 'secret/*', capabilities: ['read'] }]);
      emu.vault.addJwtRole({ name: 'secret-all', boundSubject: subject, tokenPolicies: ['secret-all'] });
      r = await vault('GET', '/v1/secret/app/config', { token: await tokenFor('secret-all') });
      assert.equal(r.status, 404);
      assert.equal(r.json.errors, undefined);
      assert.equal(r.json.data, null);
      assert.deepEqual(r.json.warnings, ["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."]);
    });

    it('KV v1: the data and the default lease duration; missing is 404 with no errors', async function () {
      const token = await tokenFor('deploy');
      let r = await vault('GET', '/v1/kv/app/legacy', { token });
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(r.json.data, { api_key: 'kv1-api-key-value' });
      assert.deepEqual([r.json.lease_duration, r.json.lease_id, r.json.renewable, r.json.mount_type], [2764800, '', false, 'kv']);
      r = await vault('GET', '/v1/kv/app/missing', { token });
      assert.deepEqual([r.status, JSON.parse(r.body)], [404, { errors: [] }]);
    });

    it('a large multi-line value (100 KiB PEM) comes back byte for byte', async function () {
      const line = () => crypto.randomBytes(48).toString('base64');
      const pem = `-----BEGIN PRIVATE KEY-----\n${Array.from({ length: 1600 }, line).join('\n')}\n-----END PRIVATE KEY-----\n`;
      assert.ok(pem.length > 100 * 1024);
      emu.vault.putSecret('secret', 'app/tls', { key: pem, crlf: 'a\r\nb\u2028c' });
      const r = await vault('GET', '/v1/secret/data/app/tls', { token: await tokenFor('deploy') });
      assert.equal(r.status, 200);
      assert.deepEqual((r.json.data as { data: unknown }).data, { key: pem, crlf: 'a\r\nb\u2028c' });
      assert.ok(emu.issuedTokens().includes(pem.split('\n')[5]), 'each line of a multi-line secret is scanned for');
    });

    it('a database engine: credentials under a lease of the token; other paths as Vault answers them', async function () {
      const token = await tokenFor('deploy');
      let r = await vault('GET', '/v1/database/creds/readonly', { token });
      assert.equal(r.status, 200, r.body);
      assert.match(String(r.json.lease_id), /^database\/creds\/readonly\/[A-Za-z0-9]{24}$/);
      assert.deepEqual([r.json.renewable, r.json.lease_duration, r.json.mount_type], [true, 3600, 'database']);
      const creds = r.json.data as { username: string; password: string };
      assert.match(creds.username, /^v-jwt-sc---readonly-[A-Za-z0-9]{20}-\d+$/);
      assert.ok(emu.issuedTokens().includes(creds.password));
      const lease = emu.vault.leases().find((l) => l.leaseId === r.json.lease_id)!;
      assert.equal(lease.tokenAccessor, emu.vault.tokens().find((t) => t.token === token)!.accessor);
      assert.equal(lease.revoked, false);
      r = await vault('GET', '/v1/database/creds/admin', { token });
      assert.deepEqual([r.status, r.json], [400, { errors: ['unknown role: admin'] }]);
      emu.vault.addPolicy('everything', [{ path: '*', capabilities: ['read'] }]);
      emu.vault.addJwtRole({ name: 'everything', boundSubject: subject, tokenPolicies: ['everything'] });
      const broad = await tokenFor('everything');
      r = await vault('GET', '/v1/database/config/main', { token: broad });
      assert.deepEqual([r.status, r.json], [404, { errors: ['1 error occurred:\n\t* unsupported path\n\n'] }]);
      r = await vault('GET', '/v1/nowhere/x', { token: broad });
      assert.deepEqual([r.status, r.json], [404, { errors: ['no handler for route "nowhere/x". route entry not found.'] }]);
    });

    it('policies: a path not granted, a deny, + segments, the most specific rule', async function () {
      const token = await tokenFor('deploy');
      let r = await vault('GET', '/v1/secret/data/other/x', { token });
      assert.deepEqual([r.status, r.json], [403, { errors: POLICY_DENIED }]);
      emu.vault.putSecret('secret', 'app/forbidden', { value: 'forbidden-value' });
      r = await vault('GET', '/v1/secret/data/app/forbidden', { token });
      assert.deepEqual([r.status, r.json], [403, { errors: POLICY_DENIED }]);
      emu.vault.putSecret('secret', 'team/shared', { value: 'shared-value' });
      emu.vault.putSecret('secret', 'team/deep/shared', { value: 'deep-value' });
      emu.vault.addPolicy('segments', [
        { path: 'secret/data/+/shared', capabilities: ['read'] },
        { path: 'secret/data/*', capabilities: ['list'] },
      ]);
      emu.vault.addJwtRole({ name: 'segments', boundSubject: subject, tokenPolicies: ['segments'] });
      const seg = await tokenFor('segments');
      assert.equal((await vault('GET', '/v1/secret/data/team/shared', { token: seg })).status, 200);
      // secret/data/* (only list) decides for the deeper path: + matches one segment.
      assert.equal((await vault('GET', '/v1/secret/data/team/deep/shared', { token: seg })).status, 403);
      // Without a token, or with one Vault does not know: its two refusals.
      r = await vault('GET', '/v1/secret/data/app/config');
      assert.deepEqual([r.status, r.json], [403, { errors: PERMISSION_DENIED }]);
      r = await vault('GET', '/v1/secret/data/app/config', { token: 'hvs.CAESIunknown' });
      assert.deepEqual([r.status, r.json], [403, { errors: INVALID_TOKEN }]);
      // Authorization: Bearer is a token too.
      r = await vault('GET', '/v1/secret/data/app/config', { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
    });
  });

  describe('tokens', function () {
    it('lookup-self describes the token; revoke-self ends it and its leases', async function () {
      const token = await tokenFor('deploy');
      let r = await vault('GET', '/v1/auth/token/lookup-self', { token });
      assert.equal(r.status, 200, r.body);
      const d = r.json.data as Record<string, unknown>;
      assert.equal(d.id, token);
      assert.deepEqual(d.policies, ['default', 'kv-read']);
      assert.deepEqual(d.meta, { role: 'deploy' });
      assert.deepEqual([d.display_name, d.path, d.type, d.orphan, d.renewable, d.creation_ttl, d.num_uses], [`jwt-${subject}`, 'auth/jwt/login', 'service', true, true, 900, 0]);
      assert.ok(Number(d.ttl) > 890 && Number(d.ttl) <= 900, String(d.ttl));
      assert.equal(d.namespace_path, undefined);
      assert.equal(r.json.mount_type, 'token');
      const lease = await vault('GET', '/v1/database/creds/readonly', { token });
      assert.equal(lease.status, 200);

      r = await vault('POST', '/v1/auth/token/revoke-self', { token });
      assert.deepEqual([r.status, r.body], [204, '']);
      assert.equal(emu.vault.isValid(token), false);
      assert.equal(emu.vault.tokens().find((t) => t.token === token)!.revoked, true);
      assert.equal(emu.vault.leases().find((l) => l.leaseId === lease.json.lease_id)!.revoked, true);
      for (const [method, p] of [['GET', '/v1/auth/token/lookup-self'], ['GET', '/v1/secret/data/app/config'], ['POST', '/v1/auth/token/revoke-self']]) {
        r = await vault(method, p, { token });
        assert.deepEqual([r.status, r.json], [403, { errors: INVALID_TOKEN }], p);
      }
      const logged = emu.requestLog().filter((l) => l.route === 'vault.revoke-self');
      assert.equal(logged.length, 2);
      assert.deepEqual(logged[0].vault, { namespaceHeader: undefined, tokenPresent: true, accessor: emu.vault.tokens().find((t) => t.token === token)!.accessor });
      assert.equal(emu.count('vault.lookup-self'), 2);
      assert.equal(emu.count('vault.read'), 2);
    });

    it('reinstateToken: a revoked token and its leases live again (the bench repeats a post-job step), by token or accessor', async function () {
      const token = await tokenFor('deploy');
      const lease = await vault('GET', '/v1/database/creds/readonly', { token });
      assert.equal(emu.vault.reinstateToken(token), 0, 'a live token is not counted');
      for (const by of [token, emu.vault.tokens().find((t) => t.token === token)!.accessor]) {
        assert.equal((await vault('POST', '/v1/auth/token/revoke-self', { token })).status, 204);
        assert.equal(emu.vault.isValid(token), false);
        assert.equal(emu.vault.reinstateToken(by), 1);
        assert.equal(emu.vault.isValid(token), true);
        assert.equal(emu.vault.leases().find((l) => l.leaseId === lease.json.lease_id)!.revoked, false);
        assert.equal((await vault('GET', '/v1/auth/token/lookup-self', { token })).status, 200);
      }
      assert.equal(emu.vault.reinstateToken('hvs.unknown'), 0);
    });

    it('an expired token, no token, a token without the default policy', async function () {
      const token = await tokenFor('deploy');
      assert.equal(emu.vault.expireToken(token), 1);
      let r = await vault('GET', '/v1/auth/token/lookup-self', { token });
      assert.deepEqual([r.status, r.json], [403, { errors: INVALID_TOKEN }]);
      r = await vault('GET', '/v1/auth/token/lookup-self');
      assert.deepEqual([r.status, r.json], [403, { errors: PERMISSION_DENIED }]);
      emu.vault.addJwtRole({ name: 'bare', boundSubject: subject, tokenPolicies: ['kv-read'], tokenNoDefaultPolicy: true });
      const bare = await tokenFor('bare');
      assert.deepEqual(emu.vault.tokens().at(-1)!.policies, ['kv-read']);
      r = await vault('GET', '/v1/auth/token/lookup-self', { token: bare });
      assert.deepEqual([r.status, r.json], [403, { errors: POLICY_DENIED }]);
    });
  });

  describe('namespaces (Vault Enterprise)', function () {
    before(function () {
      const v = emu.vault;
      v.addNamespace('team-a/dev');
      v.configureJwtAuth({ namespace: 'team-a' });
      v.addJwtRole({ namespace: 'team-a', name: 'deploy', boundSubject: subject, tokenPolicies: ['team'] });
      v.addKvMount({ namespace: 'team-a', path: 'secret', version: 2 });
      v.addKvMount({ namespace: 'team-a/dev', path: 'secret', version: 2 });
      v.addPolicy('team', [
        { path: 'secret/data/*', capabilities: ['read'] },
        { path: 'dev/secret/data/*', capabilities: ['read'] },
      ], { namespace: 'team-a' });
      v.putSecret('secret', 'app/config', { value: 'team-a-value' }, { namespace: 'team-a' });
      v.putSecret('secret', 'app/config', { value: 'team-a-dev-value' }, { namespace: 'team-a/dev' });
    });

    it('logs in and reads in a namespace, by header or by path', async function () {
      const jwt = await idToken(CONN);
      const byHeader = await login('deploy', jwt, { namespace: 'team-a' });
      assert.equal(byHeader.status, 200, byHeader.body);
      const token = String(byHeader.json.auth!.client_token);
      assert.match(token, /^hvs\.[A-Za-z0-9]{90}\.[A-Za-z0-9]{5}$/);
      assert.deepEqual(byHeader.json.auth!.policies, ['default', 'team']);
      assert.equal(emu.vault.tokens().find((t) => t.token === token)!.namespace, 'team-a/');
      const byPath = await login('deploy', jwt, { prefix: 'team-a/' });
      assert.equal(byPath.status, 200, byPath.body);
      for (const [p, ns] of [['/v1/secret/data/app/config', 'team-a'], ['/v1/team-a/secret/data/app/config', undefined], ['/v1/secret/data/app/config', 'team-a/']] as const) {
        const r = await vault('GET', p, { token, namespace: ns });
        assert.equal(r.status, 200, `${p} ${ns}: ${r.body}`);
        assert.equal((r.json.data as { data: { value: string } }).data.value, 'team-a-value');
      }
      // A child namespace: the token's policies reach it by the child's path.
      let r = await vault('GET', '/v1/secret/data/app/config', { token, namespace: 'team-a/dev' });
      assert.equal((r.json.data as { data: { value: string } }).data.value, 'team-a-dev-value');
      r = await vault('GET', '/v1/sys/internal/ui/mounts/dev/secret/app', { token, namespace: 'team-a' });
      assert.equal(r.json.data!.path, 'team-a/dev/secret/');
      // The root namespace's secret is outside the token's namespace; so is team-a's for a root token.
      r = await vault('GET', '/v1/secret/data/app/config', { token });
      assert.deepEqual([r.status, r.json], [403, { errors: POLICY_DENIED }]);
      const rootToken = await tokenFor('deploy');
      r = await vault('GET', '/v1/secret/data/app/config', { token: rootToken, namespace: 'team-a' });
      assert.deepEqual([r.status, r.json], [403, { errors: POLICY_DENIED }]);
      // lookup-self always goes to the token's own namespace.
      r = await vault('GET', '/v1/auth/token/lookup-self', { token });
      assert.equal(r.status, 200, r.body);
      assert.equal((r.json.data as Record<string, unknown>).namespace_path, 'team-a/');
      const logged = emu.requestLog().filter((l) => l.route === 'vault.login').slice(0, 2);
      assert.deepEqual(logged.map((l) => l.vault?.namespaceHeader), ['team-a', undefined]);
      assert.deepEqual(logged.map((l) => l.path), ['/v1/auth/jwt/login', '/v1/team-a/auth/jwt/login']);
    });

    it('a namespace that does not exist is part of the path in its parent', async function () {
      const jwt = await idToken(CONN);
      let r = await login('deploy', jwt, { namespace: 'team-b' });
      assert.deepEqual([r.status, r.json], [403, { errors: PERMISSION_DENIED }]);
      r = await login('deploy', jwt, { prefix: 'team-a/qa/' });
      assert.deepEqual([r.status, r.json], [403, { errors: PERMISSION_DENIED }]);
      // A token that may write there learns that Vault has no route for it.
      emu.vault.addPolicy('anything', [{ path: '*', capabilities: ['update', 'read'] }], { namespace: 'team-a' });
      emu.vault.addJwtRole({ namespace: 'team-a', name: 'anything', boundSubject: subject, tokenPolicies: ['anything'] });
      const token = await tokenFor('anything', { namespace: 'team-a' });
      r = await vault('POST', '/v1/auth/jwt/login', { token, namespace: 'team-a/qa', json: { role: 'deploy', jwt } });
      assert.deepEqual([r.status, r.json], [404, { errors: ['no handler for route "qa/auth/jwt/login". route entry not found.'] }]);
    });
  });

  describe('sealed, quotas, faults, standby', function () {
    it('a sealed Vault answers 503 "Vault is sealed" to everything', async function () {
      const token = await tokenFor('deploy');
      emu.vault.setSealed(true);
      for (const [method, p] of [['POST', '/v1/auth/jwt/login'], ['GET', '/v1/secret/data/app/config'], ['GET', '/v1/sys/internal/ui/mounts/secret'], ['GET', '/v1/auth/token/lookup-self'], ['POST', '/v1/auth/token/revoke-self']]) {
        const r = await vault(method, p, { token, json: method === 'POST' ? {} : undefined });
        assert.deepEqual([r.status, r.json], [503, { errors: ['Vault is sealed'] }], p);
      }
      emu.vault.setSealed(false);
      assert.ok(emu.vault.isValid(token));
    });

    it('429 from a rate limit quota, with Retry-After, N times; 503 once; a reset', async function () {
      emu.inject('vault.login', { kind: '429', retryAfterSeconds: 5 }, 2);
      const jwt = await idToken(CONN);
      for (let i = 0; i < 2; i++) {
        const r = await login('deploy', jwt, { namespace: 'team-a' });
        assert.deepEqual([r.status, r.json], [429, { errors: ['request path "auth/jwt/login": rate limit quota exceeded'] }]);
        const wait = Date.parse(String(r.headers['retry-after'])) - Date.now();
        assert.ok(wait > 3000 && wait <= 6000, String(r.headers['retry-after']));
        assert.match(String(r.headers['retry-after']), /^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d UTC$/);
        assert.equal(r.headers['x-ratelimit-remaining'], '0');
      }
      assert.equal((await login('deploy', jwt)).status, 200);
      const token = await tokenFor('deploy');
      emu.inject('vault.read', { kind: 'status', status: 503 });
      let r = await vault('GET', '/v1/secret/data/app/config', { token });
      assert.deepEqual([r.status, r.json], [503, { errors: ['Vault is sealed'] }]);
      r = await vault('GET', '/v1/secret/data/app/config', { token });
      assert.equal(r.status, 200);
      emu.inject('vault.mounts', { kind: 'reset' });
      await assert.rejects(vault('GET', '/v1/sys/internal/ui/mounts/secret', { token }), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET');
      assert.equal((await vault('GET', '/v1/sys/internal/ui/mounts/secret', { token })).status, 200);
      assert.deepEqual([emu.count('vault.login'), emu.count('vault.read'), emu.count('vault.mounts')], [4, 2, 2]);
    });

    it('a standby node answers 307 to the active node, path and query kept, with no body', async function () {
      emu.inject('vault.read', { kind: 'redirect', to: 'https://vault-2.fabrikam.com:8200' });
      const token = await tokenFor('deploy');
      const r = await vault('GET', '/v1/secret/data/app/config?version=1', { token });
      assert.equal(r.status, 307);
      assert.equal(r.headers.location, 'https://vault-2.fabrikam.com:8200/v1/secret/data/app/config?version=1');
      assert.equal(r.body, '');
      assert.equal(proxy.connects.filter((c) => c.authority.startsWith('vault-2.')).length, 0);
      assert.throws(() => emu.inject('vault.read', { kind: 'redirect', to: 'https://vault-2.fabrikam.com:8200/v1' }), /a redirect goes to an origin/);
    });
  });

  describe('node-vault, an independent client, through the proxy', function () {
    it('logs in with an Azure DevOps idToken, reads KV v2 and v1, and is refused after revoke-self', async function () {
      const before = proxy.connects.length;
      const client = NodeVault({ endpoint: VAULT_ADDRESS, requestOptions: { httpsAgent: agent } });
      const out = (await client.jwtLogin({ role: 'deploy', jwt: await idToken(CONN) })) as { auth: { client_token: string } };
      assert.equal(client.token, out.auth.client_token);
      assert.ok(emu.vault.isValid(client.token));
      const v2 = (await client.read('secret/data/app/config')) as { data: { data: Record<string, string> } };
      assert.deepEqual(v2.data.data, { username: 'svc-deploy', password: 'p@ss<word>&more' });
      const v1 = (await client.read('kv/app/legacy')) as { data: Record<string, string>; lease_duration: number };
      assert.deepEqual(v1.data, { api_key: 'kv1-api-key-value' });
      const self = (await client.tokenLookupSelf()) as { data: { policies: string[] } };
      assert.deepEqual(self.data.policies, ['default', 'kv-read']);
      await client.tokenRevokeSelf();
      assert.equal(emu.vault.isValid(client.token), false);
      await assert.rejects(client.read('secret/data/app/config'), (e: { message: string; response: { statusCode: number } }) => {
        assert.equal(e.response.statusCode, 403);
        assert.equal(e.message, INVALID_TOKEN[0]);
        return true;
      });
      // Every request went through the proxy to Vault's address.
      const connects = proxy.connects.slice(before);
      assert.ok(connects.length >= 6, JSON.stringify(connects));
      assert.ok(connects.every((c) => c.authority === VAULT_AUTHORITY && c.status === 200));
      // In a namespace too (X-Vault-Namespace from its config).
      const teamClient = NodeVault({ endpoint: VAULT_ADDRESS, namespace: 'team-a', requestOptions: { httpsAgent: agent } });
      await teamClient.jwtLogin({ role: 'deploy', jwt: await idToken(CONN) });
      const team = (await teamClient.read('secret/data/app/config')) as { data: { data: { value: string } } };
      assert.equal(team.data.data.value, 'team-a-value');
    });
  });

  describe('the server certificate', function () {
    it('names vault.fabrikam.com; a PKI folder cached before Vault was added gets a new one from the same CA', async function () {
      assert.ok(coversPublicNames(fs.readFileSync(path.join(path.dirname(emu.caCertPath), 'server.pem'), 'utf8')));
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-vault-pki-'));
      let again: Emulator | undefined;
      let againProxy: MappingProxy | undefined;
      try {
        await (await startEmulator({ dir })).stop();
        const file = (name: string) => path.join(dir, name);
        const caBefore = fs.readFileSync(file('ca.pem'), 'utf8');
        // What an earlier version wrote: the same CA and key, a certificate without Vault's name.
        const old = execFileSync('openssl', ['req', '-x509', '-new', '-key', file('server-key.pem'), '-sha256', '-CA', file('ca.pem'), '-CAkey', file('ca-key.pem'), '-days', '7', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:dev.azure.com'], { encoding: 'utf8' });
        fs.writeFileSync(file('server.pem'), old);
        assert.equal(coversPublicNames(old), false);
        again = await startEmulator({ dir });
        const renewed = fs.readFileSync(file('server.pem'), 'utf8');
        assert.notEqual(renewed, old);
        assert.ok(coversPublicNames(renewed));
        assert.equal(fs.readFileSync(file('ca.pem'), 'utf8'), caBefore);
        againProxy = await proxyToEmulator(again, [VAULT_AUTHORITY]);
        const client = tunnelAgent(againProxy.url, { ca: caBefore });
        const status = await new Promise<number>((resolve, reject) => https.request(`${VAULT_ADDRESS}/v1/sys/internal/ui/mounts/secret`, { agent: client }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject).end());
        client.destroy();
        assert.equal(status, 403);
      } finally {
        await againProxy?.stop();
        await again?.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
