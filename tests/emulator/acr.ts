// Azure Container Registry: the Entra token exchange (/oauth2/exchange), registry tokens
// (/oauth2/token) and the distribution API (/v2/*), which is proxied to a real registry
// (docker-registry) when one is configured. A registry is told apart by the request's Host header,
// which is also the token service.
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import type { Answer, RequestContext, Router } from './server';
import type { RegistryRegistration, RegistryTokenSigner } from './types';
import { decodeJwt, nowSeconds, signJwt, verifyJwtSignature } from './jwt';
import { sameId, World } from './state';
import { ARM_AUDIENCES } from './bearer';

/** ACR's tokens say this as iss; docker-registry's auth.token.issuer must say the same. */
export const REGISTRY_TOKEN_ISSUER = 'Azure Container Registry';
/** the user name that goes with a refresh token as password (docker login -u 0000... -p <refresh token>) */
export const ACR_TOKEN_USERNAME = '00000000-0000-0000-0000-000000000000';
export const REGISTRY_AUDIENCE = 'https://containerregistry.azure.net';

const REGISTRY_AUDIENCES = new Set([REGISTRY_AUDIENCE, `${REGISTRY_AUDIENCE}/`]);
// ACR refresh tokens live three hours, access tokens 75 minutes.
const REFRESH_TOKEN_LIFETIME = 3 * 3600;
const ACCESS_TOKEN_LIFETIME = 75 * 60;
const KNOWN_ACTIONS: Record<string, Set<string>> = {
  repository: new Set(['pull', 'push', 'delete', '*', 'metadata_read', 'metadata_write']),
  registry: new Set(['*']),
};
const V2_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
// Hop-by-hop headers (RFC 9110 7.6.1) stay on their own hop; Node frames each side's body itself.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

interface AcrErrorBody {
  errors: { code: string; message: string; detail: unknown }[];
}

export function registerAcr(router: Router, world: World): void {
  router.add({
    name: 'acr.exchange',
    method: 'POST',
    path: /^\/oauth2\/exchange\/?$/,
    handle: (ctx) => exchange(ctx, world),
    errorAnswer: acrFaultAnswer,
    truncatedBody: '{"refresh_token":"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJqdGkiOi',
  });
  for (const method of ['POST', 'GET']) {
    router.add({
      name: 'acr.token',
      method,
      path: /^\/oauth2\/token\/?$/,
      handle: (ctx) => token(ctx, world),
      errorAnswer: acrFaultAnswer,
      truncatedBody: '{"access_token":"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6',
    });
  }
  for (const method of V2_METHODS) {
    router.add({
      name: 'acr.v2',
      method,
      path: /^\/v2(\/.*)?$/,
      handle: (ctx) => v2(ctx, world),
      errorAnswer: acrFaultAnswer,
      truncatedBody: '{"repositories":["',
    });
  }
}

export function registryTokenSigner(world: World): RegistryTokenSigner {
  return { certificatePem: world.pki.registry.certPem, certificatePath: world.pki.registry.certPath, issuer: REGISTRY_TOKEN_ISSUER };
}

// --- /oauth2/exchange -------------------------------------------------------------------------

async function exchange(ctx: RequestContext, world: World): Promise<void> {
  const registry = hostRegistry(ctx, world);
  const form = await ctx.form();
  if (!registry) return unknownRegistry(ctx);

  const grantType = form.get('grant_type');
  if (!grantType) return acrError(ctx, 400, 'UNSUPPORTED', 'grant_type is required');
  if (grantType !== 'access_token' && grantType !== 'access_token_refresh_token') {
    return acrError(ctx, 400, 'UNSUPPORTED', `grant type '${grantType}' is not supported: use grant_type=access_token`);
  }
  const service = form.get('service');
  if (!service) return acrError(ctx, 400, 'UNSUPPORTED', 'service is required');
  if (service.toLowerCase() !== registry.loginServer) {
    return acrError(ctx, 400, 'UNSUPPORTED', `service '${service}' does not name this registry; expected '${registry.loginServer}'`);
  }
  const accessToken = form.get('access_token');
  if (!accessToken) return acrError(ctx, 400, 'UNSUPPORTED', 'access_token is required');
  world.recordSecret(accessToken);
  const tenant = form.get('tenant');

  const jwt = decodeJwt(accessToken);
  if (!jwt) return unauthorized(ctx, 'the access token is not a valid JWT');
  if (!verifyJwtSignature(jwt, world.pki.entra.publicKey)) {
    return unauthorized(ctx, 'the access token signature is invalid: it was not issued by Microsoft Entra ID');
  }
  const { exp, nbf, aud, tid, oid } = jwt.payload;
  const now = nowSeconds();
  if (typeof exp !== 'number' || exp <= now) return unauthorized(ctx, 'the access token is expired');
  if (typeof nbf === 'number' && nbf > now + 300) return unauthorized(ctx, 'the access token is not yet valid');

  const audience = typeof aud === 'string' ? aud : '';
  const isArm = ARM_AUDIENCES.has(audience.toLowerCase());
  if (isArm && registry.authenticationAsArmDisabled) {
    return unauthorized(
      ctx,
      `the access token audience is not allowed: authentication-as-arm is disabled for this registry (audience '${audience}'); request the token for ${REGISTRY_AUDIENCE}/.default`,
      { audience },
    );
  }
  if (!isArm && !REGISTRY_AUDIENCES.has(audience.toLowerCase())) {
    return unauthorized(
      ctx,
      `the access token audience '${audience}' is not allowed: request the token for ${REGISTRY_AUDIENCE}/.default` +
        (registry.authenticationAsArmDisabled ? '' : ' or https://management.azure.com/.default'),
      { audience },
    );
  }

  const tokenTenant = typeof tid === 'string' ? tid : '';
  if (tenant && !sameId(tenant, tokenTenant)) {
    return unauthorized(ctx, `the access token was issued for tenant '${tokenTenant}', not the requested tenant '${tenant}'`);
  }
  if (!sameId(tokenTenant, registry.tenantId)) {
    return unauthorized(ctx, `the access token's tenant '${tokenTenant}' is not the tenant of registry ${registry.loginServer}`);
  }

  const appId = stringClaim(jwt.payload.appid) ?? stringClaim(jwt.payload.azp);
  const objectId = stringClaim(oid) ?? stringClaim(jwt.payload.sub) ?? '';
  if (!identityAllowed(world, registry, appId, objectId)) {
    return unauthorized(
      ctx,
      `the identity has no access to the registry: '${appId ?? objectId}' has no role assignment on ${registry.loginServer} (assign AcrPush or AcrPull)`,
    );
  }

  const iat = nowSeconds();
  const refreshToken = signJwt(
    { typ: 'JWT', kid: world.pki.registry.kid },
    {
      jti: crypto.randomUUID(),
      sub: objectId,
      nbf: iat,
      exp: iat + REFRESH_TOKEN_LIFETIME,
      iat,
      iss: REGISTRY_TOKEN_ISSUER,
      aud: registry.loginServer,
      version: '1.0',
      rid: crypto.randomBytes(16).toString('hex'),
      grant_type: 'refresh_token',
      appid: appId,
      oid: objectId,
      tenant: tokenTenant.toLowerCase(),
      service: registry.loginServer,
      permissions: { actions: ['read', 'write'], notActions: null },
      roles: [],
    },
    world.pki.registry.privateKey,
  );
  world.recordSecret(refreshToken);
  ctx.json(200, { refresh_token: refreshToken }, acrHeaders());
}

// --- /oauth2/token ----------------------------------------------------------------------------

async function token(ctx: RequestContext, world: World): Promise<void> {
  const registry = hostRegistry(ctx, world);
  const isGet = ctx.req.method === 'GET';
  const form = isGet ? ctx.url.searchParams : await ctx.form();
  if (!registry) return unknownRegistry(ctx);

  const service = form.get('service');
  if (isGet ? service !== null && service.toLowerCase() !== registry.loginServer : !service || service.toLowerCase() !== registry.loginServer) {
    return acrError(ctx, 400, 'UNSUPPORTED', service ? `service '${service}' does not name this registry; expected '${registry.loginServer}'` : 'service is required');
  }
  const scopes = form.getAll('scope').flatMap((s) => s.split(/\s+/)).filter(Boolean);
  const access = parseScopes(scopes);
  if (typeof access === 'string') return acrError(ctx, 400, 'UNSUPPORTED', access);

  let refreshToken: string | undefined;
  if (isGet) {
    const basic = /^Basic\s+(\S+)\s*$/i.exec(ctx.req.headers.authorization ?? '');
    if (!basic) {
      return unauthorized(ctx, 'authentication required, visit https://aka.ms/acr/authorization for more information.');
    }
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    refreshToken = colon < 0 ? '' : decoded.slice(colon + 1);
    if (refreshToken) world.recordSecret(refreshToken);
    if (user !== ACR_TOKEN_USERNAME) {
      return unauthorized(ctx, `invalid username '${user}': sign in with ${ACR_TOKEN_USERNAME} and an ACR refresh token as password`);
    }
  } else {
    const grantType = form.get('grant_type');
    if (grantType === 'refresh_token') {
      refreshToken = form.get('refresh_token') ?? '';
    } else if (grantType === 'password') {
      refreshToken = form.get('password') ?? '';
      if (form.get('username') !== ACR_TOKEN_USERNAME) {
        return unauthorized(ctx, `invalid username '${form.get('username') ?? ''}': sign in with ${ACR_TOKEN_USERNAME} and an ACR refresh token as password`);
      }
    } else {
      return acrError(ctx, 400, 'UNSUPPORTED', grantType ? `grant type '${grantType}' is not supported: use grant_type=refresh_token` : 'grant_type is required');
    }
    if (!refreshToken) return acrError(ctx, 400, 'UNSUPPORTED', grantType === 'password' ? 'password is required' : 'refresh_token is required');
    world.recordSecret(refreshToken);
  }

  const claims = checkRefreshToken(world, registry, refreshToken);
  if (typeof claims === 'string') return unauthorized(ctx, claims);

  const iat = nowSeconds();
  const accessToken = signJwt(
    { typ: 'JWT', kid: world.pki.registry.kid, x5c: [new crypto.X509Certificate(world.pki.registry.certPem).raw.toString('base64')] },
    {
      jti: crypto.randomUUID(),
      sub: claims.sub,
      nbf: iat,
      exp: iat + ACCESS_TOKEN_LIFETIME,
      iat,
      iss: REGISTRY_TOKEN_ISSUER,
      aud: registry.loginServer,
      version: '1.0',
      rid: claims.rid,
      access,
      roles: [],
      grant_type: 'access_token',
      appid: claims.appid,
      tenant: claims.tenant,
    },
    world.pki.registry.privateKey,
  );
  world.recordSecret(accessToken);
  // Docker clients read "token", OAuth2 clients "access_token".
  ctx.json(200, isGet ? { access_token: accessToken, token: accessToken } : { access_token: accessToken }, acrHeaders());
}

interface RefreshClaims {
  sub: string;
  rid: unknown;
  appid: unknown;
  tenant: unknown;
}

function checkRefreshToken(world: World, registry: RegistryRegistration, refreshToken: string): RefreshClaims | string {
  const jwt = decodeJwt(refreshToken);
  if (!jwt || !verifyJwtSignature(jwt, world.pki.registry.publicKey)) return 'the refresh token is invalid';
  const p = jwt.payload;
  if (p.grant_type !== 'refresh_token') return 'the token is not a refresh token';
  if (typeof p.exp !== 'number' || p.exp <= nowSeconds()) return 'the refresh token is expired';
  if (typeof p.aud !== 'string' || p.aud.toLowerCase() !== registry.loginServer) {
    return `the refresh token was issued for ${String(p.aud)}, not for ${registry.loginServer}`;
  }
  if (!identityAllowed(world, registry, stringClaim(p.appid), stringClaim(p.sub) ?? '')) {
    return 'the identity has no access to the registry';
  }
  return { sub: String(p.sub ?? ''), rid: p.rid, appid: p.appid, tenant: p.tenant };
}

type Access = { type: string; name: string; actions: string[] }[];

/** 'repository:app:pull,push', 'registry:catalog:*'; repeated names are merged. */
function parseScopes(scopes: string[]): Access | string {
  const access: Access = [];
  for (const scope of scopes) {
    const parts = scope.split(':');
    if (parts.length < 3) return `invalid scope '${scope}'`;
    const type = parts[0].replace(/\(.*\)$/, '');
    const name = parts.slice(1, -1).join(':');
    const known = KNOWN_ACTIONS[type];
    if (!known || !name) return `invalid scope '${scope}'`;
    const actions = parts[parts.length - 1].split(',').filter((a) => known.has(a));
    const existing = access.find((a) => a.type === type && a.name === name);
    if (existing) existing.actions = [...new Set([...existing.actions, ...actions])];
    else access.push({ type, name, actions: [...new Set(actions)] });
  }
  return access;
}

// --- /v2/ -------------------------------------------------------------------------------------

function v2(ctx: RequestContext, world: World): void {
  const registry = hostRegistry(ctx, world);
  if (!registry) return unknownRegistry(ctx);
  if (registry.upstream) return proxy(ctx, registry.upstream);

  // No real registry behind: the challenge, and an empty API root for a valid access token.
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(ctx.req.headers.authorization ?? '');
  if (bearer && validAccessToken(world, registry, bearer[1])) {
    if (/^\/v2\/?$/.test(ctx.url.pathname)) {
      ctx.send({ status: 200, contentType: 'application/json; charset=utf-8', body: '{}', headers: acrHeaders() });
    } else {
      acrError(ctx, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
    }
    return;
  }
  // As docker-registry does: the root gets realm and service, a repository path the scope it needs.
  const repository = /^\/v2\/(?<name>.+?)\/(?:manifests|blobs|tags)\//.exec(ctx.url.pathname)?.groups?.name;
  const actions = ['GET', 'HEAD'].includes(ctx.req.method ?? 'GET') ? 'pull' : ctx.req.method === 'DELETE' ? 'delete' : 'pull,push';
  const challenge =
    `Bearer realm="https://${registry.loginServer}/oauth2/token",service="${registry.loginServer}"` +
    (repository ? `,scope="repository:${repository}:${actions}"` : '');
  acrError(ctx, 401, 'UNAUTHORIZED', 'authentication required, visit https://aka.ms/acr/authorization for more information.', null, {
    'WWW-Authenticate': challenge,
  });
}

function validAccessToken(world: World, registry: RegistryRegistration, token: string): boolean {
  const jwt = decodeJwt(token);
  if (!jwt || !verifyJwtSignature(jwt, world.pki.registry.publicKey)) return false;
  const { aud, exp, access } = jwt.payload;
  return typeof exp === 'number' && exp > nowSeconds() && aud === registry.loginServer && Array.isArray(access);
}

/** Streams the request to the real registry and its answer back, headers and status as they are. */
function proxy(ctx: RequestContext, upstream: string): void {
  const { req, res } = ctx;
  const target = new URL(req.url ?? '/', upstream);
  const headers: http.OutgoingHttpHeaders = {};
  const connectionTokens = new Set(String(req.headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()));
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || connectionTokens.has(name)) continue;
    headers[name] = value;
  }
  const upstreamReq = http.request(target, { method: req.method, headers, agent: false }, (up) => {
    const out: string[] = [];
    for (let i = 0; i < up.rawHeaders.length; i += 2) {
      if (!HOP_BY_HOP.has(up.rawHeaders[i].toLowerCase())) out.push(up.rawHeaders[i], up.rawHeaders[i + 1]);
    }
    if (res.destroyed) {
      up.destroy();
      return;
    }
    res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
    up.pipe(res);
    up.on('error', () => res.destroy());
  });
  upstreamReq.on('error', (e) => {
    if (!res.headersSent && !res.destroyed) {
      acrError(ctx, 502, 'UNAVAILABLE', `the registry behind the emulator (${upstream}) did not answer: ${e.message}`);
    } else {
      res.destroy();
    }
  });
  // A client that goes away mid-transfer takes the upstream request with it.
  res.on('close', () => {
    if (!res.writableFinished) upstreamReq.destroy();
  });
  req.pipe(upstreamReq);
}

// --- shared -----------------------------------------------------------------------------------

function hostRegistry(ctx: RequestContext, world: World): RegistryRegistration | undefined {
  const host = String(ctx.req.headers.host ?? '').toLowerCase();
  return host ? world.findRegistry(host) : undefined;
}

function identityAllowed(world: World, registry: RegistryRegistration, appId: string | undefined, objectId: string): boolean {
  const ids = [appId, objectId].filter((x): x is string => Boolean(x));
  if (registry.allowedClientIds) return registry.allowedClientIds.some((allowed) => ids.some((id) => sameId(id, allowed)));
  return Boolean(appId && (world.findAppAnyTenant(appId) || world.managedIdentities().some((m) => sameId(m.clientId, appId))));
}

function stringClaim(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

function unknownRegistry(ctx: RequestContext): void {
  const host = String(ctx.req.headers.host ?? '');
  acrError(ctx, 404, 'NAME_UNKNOWN', `registry '${host}' not found: no registry with this login server exists`);
}

function unauthorized(ctx: RequestContext, message: string, detail: unknown = null): void {
  acrError(ctx, 401, 'UNAUTHORIZED', message, detail);
}

function acrError(ctx: RequestContext, status: number, code: string, message: string, detail: unknown = null, headers: Record<string, string> = {}): void {
  ctx.send(acrErrorAnswer(status, code, message, detail, headers));
}

function acrErrorAnswer(status: number, code: string, message: string, detail: unknown = null, headers: Record<string, string> = {}): Answer {
  const body: AcrErrorBody = { errors: [{ code, message, detail }] };
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(body), headers: { ...acrHeaders(), ...headers } };
}

function acrHeaders(): Record<string, string> {
  return {
    'Docker-Distribution-Api-Version': 'registry/2.0',
    'X-Ms-Correlation-Request-Id': crypto.randomUUID(),
    'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  };
}

function acrFaultAnswer(status: number): Answer {
  if (status === 429) return acrErrorAnswer(429, 'TOOMANYREQUESTS', 'too many requests, retry after the time given in the Retry-After header');
  if (status === 401) return acrErrorAnswer(401, 'UNAUTHORIZED', 'authentication required, visit https://aka.ms/acr/authorization for more information.');
  if (status === 403) return acrErrorAnswer(403, 'DENIED', 'requested access to the resource is denied');
  if (status === 404) return acrErrorAnswer(404, 'NAME_UNKNOWN', 'repository name not known to registry');
  if (status === 503) return acrErrorAnswer(503, 'UNAVAILABLE', 'service unavailable');
  if (status >= 500) return acrErrorAnswer(status, 'UNKNOWN', 'unknown error');
  return acrErrorAnswer(status, 'UNSUPPORTED', `the request failed (HTTP ${status})`);
}
