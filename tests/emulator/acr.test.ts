import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, type Emulator } from './index';
import { startRegistry, type RunningRegistry } from '../helpers/registry';
import { makeOciLayout, pullDigest, push, skopeo, certDirFor } from '../helpers/oci';
import { httpsRequest, Reply } from './test-client';

const TENANT = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const OTHER_TENANT = '9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a';
const APP = 'c0a1b2c3-d4e5-4f60-8a71-b2c3d4e5f607';
const FOREIGN_APP = 'd1b2c3d4-e5f6-4a71-9b82-c3d4e5f60718';
const MI_CLIENT = 'e2c3d4e5-f6a7-4b82-8c93-d4e5f6071829';
const REGISTRY_SCOPE = 'https://containerregistry.azure.net/.default';
const ARM_SCOPE = 'https://management.azure.com/.default';
const ACR_USER = '00000000-0000-0000-0000-000000000000';
// Reached with TLS server name localhost (the certificate's SAN) and this Host header.
const RESTRICTED = 'restricted.azurecr.io';
const UNKNOWN = 'nosuchregistry.azurecr.io';


interface AcrError {
  errors: { code: string; message: string; detail?: unknown }[];
}

describe('emulator: Azure Container Registry', function () {
  this.timeout(30_000);
  let emu: Emulator;
  let ca: string;
  let secret: string;
  let foreignSecret: string;
  let registry: RunningRegistry;
  let localhost: string;
  let work: string;

  function request(
    method: string,
    pathname: string,
    options: { host?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<Reply> {
    // The certificate names 127.0.0.1 and localhost; other registries go by Host header only.
    const target = { host: '127.0.0.1', port: Number(emu.host.split(':')[1]), path: pathname, servername: 'localhost', headers: { Host: options.host ?? emu.host } };
    return httpsRequest(target, { method, ca, headers: options.headers, body: options.body });
  }

  const form = (fields: Record<string, string | string[]>) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) for (const x of [v].flat()) p.append(k, x);
    return { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: p.toString() };
  };

  async function entraToken(scope: string, tenant = TENANT, clientId = APP, clientSecret = secret): Promise<string> {
    const r = await request('POST', `/${tenant}/oauth2/v2.0/token`, {
      ...form({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope }),
    });
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { access_token: string }).access_token;
  }

  function exchange(host: string, accessToken: string, extra: Record<string, string> = {}): Promise<Reply> {
    return request('POST', '/oauth2/exchange', {
      host,
      ...form({ grant_type: 'access_token', service: host, tenant: TENANT, access_token: accessToken, ...extra }),
    });
  }

  async function refreshToken(host: string): Promise<string> {
    const r = await exchange(host, await entraToken(REGISTRY_SCOPE));
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { refresh_token: string }).refresh_token;
  }

  function decode(jwt: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
    const [h, p] = jwt.split('.');
    const json = (s: string) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Record<string, unknown>;
    return { header: json(h), claims: json(p) };
  }

  function signedBySigner(jwt: string): boolean {
    const [h, p, s] = jwt.split('.');
    const key = new crypto.X509Certificate(emu.registryTokenSigner().certificatePem).publicKey;
    return crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
  }

  /** the token with claims changed, signed again with a key the emulator keeps next to its CA */
  function resign(jwt: string, keyFile: string, changes: Record<string, unknown>): string {
    const [h, p] = jwt.split('.');
    const claims = { ...(JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>), ...changes };
    const input = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const key = fs.readFileSync(path.join(path.dirname(emu.caCertPath), keyFile), 'utf8');
    return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
  }

  function acrError(r: Reply, status: number, code: string): string {
    assert.equal(r.status, status, r.body);
    const body = JSON.parse(r.body) as AcrError;
    assert.equal(body.errors.length, 1);
    assert.equal(body.errors[0].code, code);
    assert.ok('detail' in body.errors[0]);
    return body.errors[0].message;
  }

  function writeAuthFile(name: string, auths: Record<string, { auth: string }>): string {
    const file = path.join(work, name);
    fs.writeFileSync(file, JSON.stringify({ auths }), { mode: 0o600 });
    return file;
  }

  before(async function () {
    emu = await startEmulator();
    ca = fs.readFileSync(emu.caCertPath, 'utf8');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-acr-test-'));
    localhost = `localhost:${emu.host.split(':')[1]}`;
    secret = `acr~${crypto.randomBytes(24).toString('base64url')}`;
    foreignSecret = `acr~${crypto.randomBytes(24).toString('base64url')}`;
    const end = new Date(Date.now() + 86400_000).toISOString();
    emu.addApp({ clientId: APP, tenantId: TENANT, displayName: 'acr-pusher', secrets: [{ value: secret, endDateTime: end }] });
    emu.addApp({ clientId: FOREIGN_APP, tenantId: OTHER_TENANT, secrets: [{ value: foreignSecret, endDateTime: end }] });
    emu.addManagedIdentity({ clientId: MI_CLIENT, tenantId: TENANT });

    registry = await startRegistry(emu);
    // emu.host: the real registry behind it, ARM tokens refused (the setting the task's default copes with).
    emu.addRegistry({ loginServer: registry.loginServer, tenantId: TENANT, authenticationAsArmDisabled: true, upstream: registry.upstream });
    // localhost:<port>: no registry behind, ARM tokens accepted.
    emu.addRegistry({ loginServer: localhost, tenantId: TENANT });
    emu.addRegistry({ loginServer: RESTRICTED, tenantId: TENANT, allowedClientIds: [crypto.randomUUID()] });
  });

  after(async function () {
    await registry?.stop();
    await emu?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  beforeEach(function () {
    emu.clearFaults();
    emu.resetCounts();
  });

  describe('/oauth2/exchange', function () {
    it('exchanges a registry-audience Entra token for a refresh token signed by the registry signer', async function () {
      const at = await entraToken(REGISTRY_SCOPE);
      assert.equal(decode(at).claims.aud, 'https://containerregistry.azure.net');
      const r = await exchange(emu.host, at);
      assert.equal(r.status, 200, r.body);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      const { refresh_token: rt } = JSON.parse(r.body) as { refresh_token: string };
      const { header, claims } = decode(rt);
      assert.equal(header.alg, 'RS256');
      assert.equal(claims.grant_type, 'refresh_token');
      assert.equal(claims.tenant, TENANT);
      assert.equal(claims.service, emu.host);
      assert.equal(claims.aud, emu.host);
      assert.equal(claims.iss, emu.registryTokenSigner().issuer);
      assert.equal(claims.sub, decode(at).claims.oid);
      const life = (claims.exp as number) - Math.floor(Date.now() / 1000);
      assert.ok(life > 2.9 * 3600 && life <= 3 * 3600, `lifetime ${life}`);
      assert.ok(signedBySigner(rt));
      assert.ok(emu.issuedTokens().includes(rt));
      assert.equal(emu.count('acr.exchange'), 1);
    });

    it('refuses an ARM-audience token where authentication-as-arm is disabled, and takes it elsewhere', async function () {
      const arm = await entraToken(ARM_SCOPE);
      const message = acrError(await exchange(emu.host, arm), 401, 'UNAUTHORIZED');
      assert.match(message, /audience is not allowed: authentication-as-arm is disabled for this registry/);
      assert.equal((await exchange(localhost, arm)).status, 200);
      // neither kind of registry takes a token for some other resource
      const graph = await entraToken('https://graph.microsoft.com/.default');
      assert.match(acrError(await exchange(localhost, graph), 401, 'UNAUTHORIZED'), /audience 'https:\/\/graph\.microsoft\.com' is not allowed/);
    });

    it('takes a managed identity token', async function () {
      const r = await request('GET', `/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent('https://containerregistry.azure.net')}`, {
        headers: { Metadata: 'true' },
      });
      assert.equal(r.status, 200, r.body);
      assert.equal((await exchange(emu.host, (JSON.parse(r.body) as { access_token: string }).access_token)).status, 200);
    });

    it('refuses tokens of another tenant, forged or expired tokens and identities without access', async function () {
      const foreign = await entraToken(REGISTRY_SCOPE, OTHER_TENANT, FOREIGN_APP, foreignSecret);
      assert.match(acrError(await exchange(emu.host, foreign), 401, 'UNAUTHORIZED'), /tenant/);
      assert.match(acrError(await exchange(emu.host, foreign, { tenant: OTHER_TENANT }), 401, 'UNAUTHORIZED'), /not the tenant of registry/);
      const own = await entraToken(REGISTRY_SCOPE);
      assert.match(acrError(await exchange(emu.host, own, { tenant: OTHER_TENANT }), 401, 'UNAUTHORIZED'), /not the requested tenant/);

      const [h, p] = own.split('.');
      const forged = `${h}.${p}.${crypto.randomBytes(256).toString('base64url')}`;
      assert.match(acrError(await exchange(emu.host, forged), 401, 'UNAUTHORIZED'), /signature/);
      // expired, and properly signed with the Entra key from the emulator's PKI directory
      const expired = resign(own, 'entra-signing-key.pem', { exp: Math.floor(Date.now() / 1000) - 10 });
      assert.match(acrError(await exchange(emu.host, expired), 401, 'UNAUTHORIZED'), /the access token is expired/);

      assert.match(acrError(await exchange(RESTRICTED, own), 401, 'UNAUTHORIZED'), /the identity has no access to the registry/);
    });

    it('answers 404 for a registry it does not know, 400 for a malformed request', async function () {
      const own = await entraToken(REGISTRY_SCOPE);
      const unknown = await exchange(UNKNOWN, own);
      acrError(unknown, 404, 'NAME_UNKNOWN');
      acrError(await exchange(emu.host, own, { service: localhost }), 400, 'UNSUPPORTED');
      acrError(await exchange(emu.host, own, { grant_type: 'password' }), 400, 'UNSUPPORTED');
      acrError(await request('POST', '/oauth2/exchange', { ...form({ grant_type: 'access_token', service: emu.host }) }), 400, 'UNSUPPORTED');
      assert.equal(emu.count('acr.exchange'), 4);
    });
  });

  describe('/oauth2/token', function () {
    it('issues access tokens for the asked scopes, by POST with the refresh token and by GET with Basic auth', async function () {
      const rt = await refreshToken(emu.host);
      const post = await request('POST', '/oauth2/token', {
        ...form({ grant_type: 'refresh_token', service: emu.host, scope: ['repository:app:pull,push', 'repository:other:pull registry:catalog:*'], refresh_token: rt }),
      });
      assert.equal(post.status, 200, post.body);
      const body = JSON.parse(post.body) as Record<string, string>;
      assert.deepEqual(Object.keys(body), ['access_token']);
      const { header, claims } = decode(body.access_token);
      assert.equal(header.alg, 'RS256');
      const signerDer = new crypto.X509Certificate(emu.registryTokenSigner().certificatePem).raw.toString('base64');
      assert.deepEqual(header.x5c, [signerDer]);
      assert.equal(claims.iss, 'Azure Container Registry');
      assert.equal(claims.aud, emu.host);
      assert.equal(claims.sub, decode(rt).claims.sub);
      for (const k of ['exp', 'nbf', 'iat']) assert.equal(typeof claims[k], 'number');
      assert.equal(typeof claims.jti, 'string');
      assert.deepEqual(claims.access, [
        { type: 'repository', name: 'app', actions: ['pull', 'push'] },
        { type: 'repository', name: 'other', actions: ['pull'] },
        { type: 'registry', name: 'catalog', actions: ['*'] },
      ]);
      assert.ok(signedBySigner(body.access_token));
      assert.ok(emu.issuedTokens().includes(body.access_token));

      const basic = Buffer.from(`${ACR_USER}:${rt}`).toString('base64');
      const get = await request('GET', `/oauth2/token?service=${encodeURIComponent(emu.host)}&scope=${encodeURIComponent('repository:app:pull')}`, {
        headers: { Authorization: `Basic ${basic}` },
      });
      assert.equal(get.status, 200, get.body);
      const g = JSON.parse(get.body) as { access_token: string; token: string };
      assert.equal(g.token, g.access_token);
      assert.deepEqual(decode(g.token).claims.access, [{ type: 'repository', name: 'app', actions: ['pull'] }]);
      assert.ok(emu.issuedTokens().includes(g.token));
      // docker login asks for no scope at all
      const none = await request('GET', `/oauth2/token?service=${encodeURIComponent(emu.host)}`, { headers: { Authorization: `Basic ${basic}` } });
      assert.deepEqual(decode((JSON.parse(none.body) as { token: string }).token).claims.access, []);
      assert.equal(emu.count('acr.token'), 3);
    });

    it('refuses missing, invalid, foreign and misused refresh tokens', async function () {
      const rt = await refreshToken(emu.host);
      const svc = encodeURIComponent(emu.host);
      assert.match(acrError(await request('GET', `/oauth2/token?service=${svc}&scope=repository:app:pull`), 401, 'UNAUTHORIZED'), /authentication required/);
      const withPassword = (user: string, password: string) =>
        request('GET', `/oauth2/token?service=${svc}&scope=repository:app:pull`, { headers: { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } });
      acrError(await withPassword(ACR_USER, 'not-a-token'), 401, 'UNAUTHORIZED');
      acrError(await withPassword('admin', rt), 401, 'UNAUTHORIZED');
      // a refresh token of another registry
      assert.match(acrError(await withPassword(ACR_USER, await refreshToken(localhost)), 401, 'UNAUTHORIZED'), /issued for/);
      // an access token is no refresh token
      const at = (JSON.parse((await withPassword(ACR_USER, rt)).body) as { token: string }).token;
      acrError(await withPassword(ACR_USER, at), 401, 'UNAUTHORIZED');
      // an expired one, signed with the registry signer's key from the emulator's PKI directory
      const stale = resign(rt, 'registry-signing-key.pem', { exp: Math.floor(Date.now() / 1000) - 10 });
      assert.ok(signedBySigner(stale));
      const refused = await request('POST', '/oauth2/token', { ...form({ grant_type: 'refresh_token', service: emu.host, scope: 'repository:app:pull', refresh_token: stale }) });
      assert.match(acrError(refused, 401, 'UNAUTHORIZED'), /the refresh token is expired/);
      acrError(await request('POST', '/oauth2/token', { ...form({ grant_type: 'client_credentials', service: emu.host, refresh_token: rt }) }), 400, 'UNSUPPORTED');
      acrError(await request('POST', '/oauth2/token', { ...form({ grant_type: 'refresh_token', service: emu.host, scope: 'app', refresh_token: rt }) }), 400, 'UNSUPPORTED');
      acrError(await request('GET', `/oauth2/token?service=${svc}`, { host: UNKNOWN }), 404, 'NAME_UNKNOWN');
    });
  });

  describe('/v2/', function () {
    it('challenges with a Bearer realm on this registry when no real registry is behind it', async function () {
      const r = await request('GET', '/v2/', { host: localhost });
      assert.equal(r.status, 401);
      assert.equal(r.headers['www-authenticate'], `Bearer realm="https://${localhost}/oauth2/token",service="${localhost}"`);
      assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
      acrError(r, 401, 'UNAUTHORIZED');
      const put = await request('PUT', '/v2/team/app/manifests/v1', { host: localhost });
      assert.equal(put.headers['www-authenticate'], `Bearer realm="https://${localhost}/oauth2/token",service="${localhost}",scope="repository:team/app:pull,push"`);
      const rt = await refreshToken(localhost);
      const token = await request('POST', '/oauth2/token', { host: localhost, ...form({ grant_type: 'refresh_token', service: localhost, refresh_token: rt }) });
      const at = (JSON.parse(token.body) as { access_token: string }).access_token;
      const ok = await request('GET', '/v2/', { host: localhost, headers: { Authorization: `Bearer ${at}` } });
      assert.equal(ok.status, 200, ok.body);
      assert.equal(emu.count('acr.v2'), 3);
    });

    it('proxies to the real registry, whose challenge names the emulator', async function () {
      const r = await request('GET', '/v2/');
      assert.equal(r.status, 401);
      assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
      assert.equal(r.headers['www-authenticate'], `Bearer realm="https://${emu.host}/oauth2/token",service="${emu.host}"`);
      const rt = await refreshToken(emu.host);
      const token = await request('POST', '/oauth2/token', { ...form({ grant_type: 'refresh_token', service: emu.host, scope: 'registry:catalog:*', refresh_token: rt }) });
      const at = (JSON.parse(token.body) as { access_token: string }).access_token;
      const root = await request('GET', '/v2/', { headers: { Authorization: `Bearer ${at}` } });
      assert.equal(root.status, 200, `${root.body}\n${registry.logs()}`);
      const catalog = await request('GET', '/v2/_catalog', { headers: { Authorization: `Bearer ${at}` } });
      assert.equal(catalog.status, 200, catalog.body);
      assert.ok(Array.isArray((JSON.parse(catalog.body) as { repositories: string[] }).repositories));
      // a token of another service is refused by docker-registry itself
      const other = await request('POST', '/oauth2/token', { host: localhost, ...form({ grant_type: 'refresh_token', service: localhost, scope: 'registry:catalog:*', refresh_token: await refreshToken(localhost) }) });
      const foreign = (JSON.parse(other.body) as { access_token: string }).access_token;
      assert.equal((await request('GET', '/v2/_catalog', { headers: { Authorization: `Bearer ${foreign}` } })).status, 401);
      assert.equal(emu.count('acr.v2'), 4);
    });
  });

  describe('faults', function () {
    it('injects status, 429, invalid-json and reset faults on the ACR routes and counts them', async function () {
      const at = await entraToken(REGISTRY_SCOPE);
      emu.inject('acr.exchange', { kind: 'status', status: 503 });
      assert.equal(acrError(await exchange(emu.host, at), 503, 'UNAVAILABLE'), 'service unavailable');
      emu.inject('acr.exchange', { kind: '429', retryAfterSeconds: 4 });
      const limited = await exchange(emu.host, at);
      acrError(limited, 429, 'TOOMANYREQUESTS');
      assert.equal(limited.headers['retry-after'], '4');
      assert.equal((await exchange(emu.host, at)).status, 200);

      emu.inject('acr.token', { kind: 'invalid-json' });
      const broken = await request('POST', '/oauth2/token', { ...form({ grant_type: 'refresh_token', service: emu.host, refresh_token: 'x' }) });
      assert.equal(broken.status, 200);
      assert.throws(() => JSON.parse(broken.body) as unknown);

      emu.inject('acr.v2', { kind: 'reset' });
      await assert.rejects(request('GET', '/v2/'), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET');
      assert.deepEqual([emu.count('acr.exchange'), emu.count('acr.token'), emu.count('acr.v2')], [3, 1, 1]);
    });
  });

  describe('skopeo against docker-registry behind the emulator', function () {
    it('pushes an OCI image with the refresh token as password and pulls the same digest back', async function () {
      const { layout, manifestDigest } = makeOciLayout(path.join(work, 'image'));
      const rt = await refreshToken(emu.host);
      emu.resetCounts();
      const authfile = writeAuthFile('auth.json', { [emu.host]: { auth: Buffer.from(`${ACR_USER}:${rt}`).toString('base64') } });
      assert.equal(fs.statSync(authfile).mode & 0o777, 0o600);

      const pushed = await push(emu, layout, `${emu.host}/app:v1`, authfile);
      assert.equal(pushed.code, 0, `${pushed.stderr}\n--- docker-registry:\n${registry.logs()}`);
      assert.equal(await pullDigest(emu, `${emu.host}/app:v1`, authfile), manifestDigest);

      const inspected = await skopeo(['inspect', '--raw', `docker://${emu.host}/app:v1`], { authfile, certDir: certDirFor(emu) });
      assert.equal(inspected.code, 0, inspected.stderr);
      assert.equal(`sha256:${crypto.createHash('sha256').update(inspected.stdout).digest('hex')}`, manifestDigest);

      assert.equal(emu.count('acr.exchange'), 0);
      assert.ok(emu.count('acr.token') >= 2, JSON.stringify(emu.counts()));
      assert.ok(emu.count('acr.v2') >= 6, JSON.stringify(emu.counts()));
      // the access tokens skopeo got are recorded for leak scans
      const pushTokens = emu.issuedTokens().filter((t) => {
        const parts = t.split('.');
        if (parts.length !== 3) return false;
        try {
          const c = decode(t).claims as { access?: { name: string; actions: string[] }[] };
          return c.access?.some((a) => a.name === 'app' && a.actions.includes('push'));
        } catch {
          return false;
        }
      });
      assert.ok(pushTokens.length >= 1);
      assert.ok(emu.issuedTokens().includes(rt));
    });

    it('fails to push without credentials', async function () {
      const { layout } = makeOciLayout(path.join(work, 'image2'), 'v2');
      const authfile = writeAuthFile('empty.json', {});
      const r = await push(emu, layout, `${emu.host}/app:v2`, authfile, 'v2');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /401|unauthorized|authentication required/i);
      assert.ok(emu.count('acr.token') >= 1);
    });
  });
});
