// Microsoft Entra ID: metadata, keys, and the client-credentials token endpoint with secret,
// certificate and federated (workload identity) client authentication.
import * as crypto from 'node:crypto';
import type { Answer, RequestContext, Router } from './server';
import type { FederatedCredential, Jwk } from './types';
import { certificateThumbprints } from './pki';
import { decodeJwt, isGuid, nowSeconds, signJwt, verifyJwtSignature, type DecodedJwt } from './jwt';
import { ORGANIZATION, World, type RegisteredApp } from './state';
import { graphRolesClaim } from './graph';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ACCESS_TOKEN_LIFETIME = 3599;
// Entra back-dates iat/nbf of access tokens by five minutes against clock skew at the resource.
const BACKDATE_SECONDS = 300;
// Accepted lateness of an assertion's nbf; exp gets none, so that a test's "expired by one second" holds.
const NBF_SKEW_SECONDS = 300;
const MULTI_TENANT_ALIASES = new Set(['common', 'organizations']);

type EntraErrorKind = 'invalid_request' | 'invalid_client' | 'unauthorized_client' | 'invalid_scope' | 'unsupported_grant_type' | 'invalid_tenant' | 'invalid_instance' | 'temporarily_unavailable';

export function registerEntra(router: Router, world: World): void {
  router.add({
    name: 'entra.discovery',
    method: 'GET',
    path: /^\/common\/discovery\/instance$/i,
    handle: (ctx) => discovery(ctx, world),
    errorAnswer: entraFaultAnswer,
    truncatedBody: '{"tenant_discovery_endpoint":"https://',
  });
  router.add({
    name: 'entra.openid',
    method: 'GET',
    path: /^\/(?<tenant>[^/]+)\/v2\.0\/\.well-known\/openid-configuration$/i,
    handle: (ctx) => openidConfiguration(ctx, world),
    errorAnswer: entraFaultAnswer,
    truncatedBody: '{"token_endpoint":"https://',
  });
  router.add({
    name: 'entra.keys',
    method: 'GET',
    path: /^\/(?<tenant>[^/]+)\/discovery\/v2\.0\/keys$/i,
    handle: (ctx) => keys(ctx, world),
    errorAnswer: entraFaultAnswer,
    truncatedBody: '{"keys":[{"kty":"RSA","use":"sig","kid":"',
  });
  router.add({
    name: 'entra.token',
    method: 'POST',
    path: /^\/(?<tenant>[^/]+)\/oauth2\/v2\.0\/token$/i,
    handle: (ctx) => token(ctx, world),
    errorAnswer: entraFaultAnswer,
    truncatedBody: '{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_tok',
  });
}

export function entraJwk(world: World, tenant?: string): Jwk {
  const key = world.pki.entra;
  const { n, e } = key.publicKey.export({ format: 'jwk' });
  const der = key.certPem ? new crypto.X509Certificate(key.certPem).raw.toString('base64') : undefined;
  return {
    kty: 'RSA',
    use: 'sig',
    kid: key.kid,
    x5t: key.x5t,
    n: String(n),
    e: String(e),
    ...(der ? { x5c: [der] } : {}),
    ...(tenant ? { issuer: `${world.url}/${tenant}/v2.0` } : {}),
  };
}

export function devopsJwk(world: World): Jwk {
  const key = world.pki.devops;
  const { n, e } = key.publicKey.export({ format: 'jwk' });
  return { kty: 'RSA', use: 'sig', kid: key.kid, n: String(n), e: String(e), issuer: `https://vstoken.dev.azure.com/${ORGANIZATION.id}` };
}

export interface AccessTokenSpec {
  tenantId: string;
  appId: string;
  objectId: string;
  audience: string;
  /** '1' secret, '2' certificate or federated assertion (and managed identities) */
  appidacr: '1' | '2';
  lifetimeSeconds: number;
  extraClaims?: Record<string, unknown>;
}

/** A v1 app-only access token as Entra issues for client credentials, signed with the Entra key. */
export function mintAccessToken(world: World, spec: AccessTokenSpec): { token: string; exp: number; iat: number } {
  const now = nowSeconds();
  const iat = now - BACKDATE_SECONDS;
  const exp = now + spec.lifetimeSeconds;
  const tid = spec.tenantId.toLowerCase();
  const iss = `https://sts.windows.net/${tid}/`;
  const token = signJwt(
    { typ: 'JWT', x5t: world.pki.entra.x5t, kid: world.pki.entra.kid },
    {
      aud: spec.audience,
      iss,
      iat,
      nbf: iat,
      exp,
      aio: crypto.randomBytes(48).toString('base64'),
      appid: spec.appId,
      appidacr: spec.appidacr,
      idp: iss,
      idtyp: 'app',
      oid: spec.objectId,
      rh: `0.${crypto.randomBytes(24).toString('base64url')}.`,
      sub: spec.objectId,
      tid,
      uti: crypto.randomBytes(16).toString('base64url'),
      ver: '1.0',
      ...spec.extraClaims,
    },
    world.pki.entra.privateKey,
  );
  world.recordSecret(token);
  return { token, exp, iat };
}

function discovery(ctx: RequestContext, world: World): void {
  const endpoint = ctx.query('authorization_endpoint');
  let tenant = 'common';
  if (endpoint) {
    let parsed: URL;
    try {
      parsed = new URL(endpoint);
    } catch {
      return entraError(ctx, 50049, 'invalid_instance', 'Unknown or invalid instance.');
    }
    if (parsed.host.toLowerCase() !== world.host) return entraError(ctx, 50049, 'invalid_instance', 'Unknown or invalid instance.');
    tenant = parsed.pathname.split('/').filter(Boolean)[0] ?? 'common';
  }
  ctx.json(
    200,
    {
      tenant_discovery_endpoint: `${world.url}/${tenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: world.host, preferred_cache: world.host, aliases: [world.host] }],
    },
    entraHeaders(ctx),
  );
}

function openidConfiguration(ctx: RequestContext, world: World): void {
  const requested = ctx.params.tenant;
  const multi = MULTI_TENANT_ALIASES.has(requested.toLowerCase());
  if (!multi && !knownTenant(world, requested)) return tenantNotFound(ctx, requested, 'invalid_tenant');
  // Multi-tenant metadata carries a placeholder that clients fill with the tenant they end up in.
  const t = multi ? '{tenantid}' : requested.toLowerCase();
  const base = `${world.url}/${t}`;
  ctx.json(
    200,
    {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${world.url}/${multi ? requested.toLowerCase() : t}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${base}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${world.url}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: multi ? null : 'EU',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: world.host,
      rbac_url: 'https://pas.windows.net',
    },
    entraHeaders(ctx),
  );
}

function keys(ctx: RequestContext, world: World): void {
  const requested = ctx.params.tenant;
  const multi = MULTI_TENANT_ALIASES.has(requested.toLowerCase());
  if (!multi && !knownTenant(world, requested)) return tenantNotFound(ctx, requested, 'invalid_tenant');
  ctx.json(200, { keys: [entraJwk(world, multi ? '{tenantid}' : requested.toLowerCase())] }, entraHeaders(ctx));
}

async function token(ctx: RequestContext, world: World): Promise<void> {
  const tenantInPath = ctx.params.tenant;
  const form = await ctx.form();
  if (!knownTenant(world, tenantInPath)) return tenantNotFound(ctx, tenantInPath, 'invalid_request');
  const tenantId = tenantInPath.toLowerCase();

  // client_secret_basic: the credentials may come in the Authorization header instead of the form.
  const basic = /^Basic\s+(.+)$/i.exec(ctx.req.headers.authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1].trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      form.set('client_id', decodeURIComponent(decoded.slice(0, colon)));
      form.set('client_secret', decodeURIComponent(decoded.slice(colon + 1)));
    }
  }

  const grantType = form.get('grant_type');
  if (!grantType) return missingParameter(ctx, 'grant_type');
  if (grantType !== 'client_credentials') {
    return entraError(ctx, 70003, 'unsupported_grant_type', `The app requested an unsupported grant type '${grantType}'.`);
  }
  const clientId = form.get('client_id');
  if (!clientId) return missingParameter(ctx, 'client_id');

  const scope = form.get('scope');
  if (!scope || !scope.trim()) return entraError(ctx, 70011, 'invalid_scope', "The provided request must include a 'scope' input parameter.");
  const scopes = scope.trim().split(/\s+/);
  if (scopes.length !== 1 || !scopes[0].endsWith('/.default') || scopes[0] === '/.default') {
    return entraError(
      ctx,
      70011,
      'invalid_scope',
      `The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid. Client credential flows must have exactly one scope value with /.default suffixed to the resource identifier (application ID URI).`,
    );
  }
  const resource = scopes[0].slice(0, -'/.default'.length);

  const app = isGuid(clientId) ? world.findApp(tenantId, clientId) : undefined;
  if (!app) {
    return entraError(
      ctx,
      700016,
      'unauthorized_client',
      `Application with identifier '${clientId}' was not found in the directory '${tenantInPath}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    );
  }
  if (app.disabled) {
    return entraError(ctx, 7000112, 'unauthorized_client', `Application '${app.clientId}'(${app.displayName ?? app.clientId}) is disabled.`);
  }

  const assertion = form.get('client_assertion');
  const secret = form.get('client_secret');
  let kind: 'federated' | 'certificate' | 'secret';
  if (assertion) {
    const assertionType = form.get('client_assertion_type');
    if (assertionType !== JWT_BEARER) {
      return entraError(
        ctx,
        900144,
        'invalid_request',
        `The request body must contain the following parameter: 'client_assertion_type' with the value '${JWT_BEARER}'.`,
      );
    }
    world.recordSecret(assertion);
    const jwt = decodeJwt(assertion);
    if (!jwt) return entraError(ctx, 50027, 'invalid_request', 'JWT token is invalid or malformed.');
    const isCertificate = typeof jwt.header.x5t === 'string' || typeof jwt.header['x5t#S256'] === 'string';
    const ok = isCertificate
      ? checkCertificateAssertion(ctx, world, app, jwt, tenantInPath)
      : checkFederatedAssertion(ctx, world, app, jwt);
    if (!ok) return;
    kind = isCertificate ? 'certificate' : 'federated';
  } else if (secret) {
    if (!checkSecret(ctx, app, secret)) return;
    kind = 'secret';
  } else {
    return entraError(ctx, 7000218, 'invalid_client', "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
  }

  const { token: accessToken } = mintAccessToken(world, {
    tenantId,
    appId: app.clientId,
    objectId: app.servicePrincipalObjectId,
    audience: resource,
    appidacr: kind === 'secret' ? '1' : '2',
    lifetimeSeconds: ACCESS_TOKEN_LIFETIME,
    extraClaims: graphRolesClaim(resource, app.graphAccess),
  });
  world.lastTokenRequest = { clientId, scope, grantType, assertionKind: kind };
  ctx.json(
    200,
    { token_type: 'Bearer', expires_in: ACCESS_TOKEN_LIFETIME, ext_expires_in: ACCESS_TOKEN_LIFETIME, access_token: accessToken },
    entraHeaders(ctx),
  );
}

function checkSecret(ctx: RequestContext, app: RegisteredApp, secret: string): boolean {
  const match = (app.secrets ?? []).filter((s) => s.value === secret);
  if (match.length === 0) {
    entraError(
      ctx,
      7000215,
      'invalid_client',
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`,
    );
    return false;
  }
  if (match.every((s) => Date.parse(s.endDateTime) <= Date.now())) {
    entraError(
      ctx,
      7000222,
      'invalid_client',
      `The provided client secret keys for app '${app.clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
    );
    return false;
  }
  return true;
}

function checkCertificateAssertion(ctx: RequestContext, world: World, app: RegisteredApp, jwt: DecodedJwt, tenantInPath: string): boolean {
  const x5t = typeof jwt.header.x5t === 'string' ? jwt.header.x5t : undefined;
  const x5tS256 = typeof jwt.header['x5t#S256'] === 'string' ? (jwt.header['x5t#S256'] as string) : undefined;
  const presented = Buffer.from(x5tS256 ?? x5t ?? '', 'base64url').toString('hex').toUpperCase();
  const cert = (app.certificates ?? []).find((c) => {
    const t = certificateThumbprints(c.certificatePem);
    return (x5t !== undefined && t.x5t === x5t) || (x5tS256 !== undefined && t.x5tS256 === x5tS256);
  });
  if (!cert) {
    entraError(
      ctx,
      700027,
      'invalid_client',
      `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${presented}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${app.clientId}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/${app.clientId}']`,
    );
    return false;
  }
  const x509 = new crypto.X509Certificate(cert.certificatePem);
  const end = cert.endDateTime ? Date.parse(cert.endDateTime) : Date.parse(x509.validTo);
  if (end <= Date.now()) {
    entraError(
      ctx,
      700027,
      'invalid_client',
      `Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '${presented}', Found key 'Start=${dotnetTime(Date.parse(x509.validFrom))}, End=${dotnetTime(end)}']`,
    );
    return false;
  }
  if (!verifyJwtSignature(jwt, x509.publicKey)) {
    entraError(
      ctx,
      700027,
      'invalid_client',
      `Client assertion failed signature validation. [Reason - Key was found, but use of the key to verify the signature failed., Thumbprint of key used by client: '${presented}']`,
    );
    return false;
  }
  const { iss, sub, aud } = jwt.payload;
  if (typeof iss !== 'string' || typeof sub !== 'string' || iss.toLowerCase() !== app.clientId.toLowerCase() || sub.toLowerCase() !== app.clientId.toLowerCase()) {
    entraError(ctx, 700021, 'invalid_client', "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .");
    return false;
  }
  const accepted = new Set(
    [tenantInPath, app.tenantId].flatMap((t) => [`${world.url}/${t}/oauth2/v2.0/token`, `${world.url}/${t}/oauth2/token`, `${world.url}/${t}/v2.0`].map((u) => u.toLowerCase())),
  );
  if (!audiences(aud).some((a) => accepted.has(a.toLowerCase()))) {
    entraError(ctx, 700023, 'invalid_client', 'Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .');
    return false;
  }
  return checkLifetime(ctx, jwt);
}

function checkFederatedAssertion(ctx: RequestContext, world: World, app: RegisteredApp, jwt: DecodedJwt): boolean {
  if (!verifyJwtSignature(jwt, world.pki.devops.publicKey)) {
    const kid = typeof jwt.header.kid === 'string' ? jwt.header.kid : '';
    const reason = kid === world.pki.devops.kid ? 'Key was found, but use of the key to verify the signature failed.' : 'The key was not found.';
    entraError(ctx, 50013, 'invalid_client', `Assertion failed signature validation. [Reason - ${reason}, Thumbprint of key used by client: '${kid}']`);
    return false;
  }
  if (!checkLifetime(ctx, jwt)) return false;

  const { iss, sub, aud } = jwt.payload;
  const creds: FederatedCredential[] = app.federatedCredentials ?? [];
  const auds = audiences(aud);
  if (creds.length === 0) {
    entraError(ctx, 70025, 'invalid_client', `The client application '${app.clientId}'(${app.displayName ?? app.clientId}) has no configured federated identity credentials.`);
    return false;
  }
  if (typeof iss !== 'string' || typeof sub !== 'string' || auds.length === 0) {
    entraError(
      ctx,
      70021,
      'invalid_request',
      `No matching federated identity record found for presented assertion. Assertion Issuer: '${String(iss ?? '')}'. Assertion Subject: '${String(sub ?? '')}'. Assertion Audience: '${auds.join(',')}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
    );
    return false;
  }
  // Matching is case-sensitive (Entra changed this in 2024; users do trip over it).
  const byIssuer = creds.filter((c) => c.issuer === iss);
  const tail = 'Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation';
  if (byIssuer.length === 0) {
    entraError(ctx, 700211, 'invalid_client', `No matching federated identity record found for presented assertion issuer '${iss}'. Please note that the matching is done using a case-sensitive comparison. ${tail}`);
    return false;
  }
  const bySubject = byIssuer.filter((c) => c.subject === sub);
  if (bySubject.length === 0) {
    entraError(ctx, 700213, 'invalid_client', `No matching federated identity record found for presented assertion subject '${sub}'. Please note that the matching is done using a case-sensitive comparison. ${tail}`);
    return false;
  }
  if (!bySubject.some((c) => c.audiences.some((a) => auds.includes(a)))) {
    entraError(ctx, 700212, 'invalid_client', `No matching federated identity record found for presented assertion audience '${auds.join(',')}'. Please note that the matching is done using a case-sensitive comparison. ${tail}`);
    return false;
  }
  return true;
}

function checkLifetime(ctx: RequestContext, jwt: DecodedJwt): boolean {
  const { exp, nbf, iat } = jwt.payload;
  if (typeof exp !== 'number') {
    entraError(ctx, 50027, 'invalid_request', 'JWT token is invalid or malformed. The assertion has no expiry claim.');
    return false;
  }
  const start = typeof nbf === 'number' ? nbf : typeof iat === 'number' ? iat : undefined;
  const now = Date.now();
  if (now >= exp * 1000 || (start !== undefined && start * 1000 > now + NBF_SKEW_SECONDS * 1000)) {
    entraError(
      ctx,
      700024,
      'invalid_client',
      `Client assertion is not within its valid time range. Current time: ${dotnetTime(now)}, assertion valid from ${start === undefined ? 'unknown' : dotnetTime(start * 1000)}, expiry time of assertion ${dotnetTime(exp * 1000)}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .`,
    );
    return false;
  }
  return true;
}

function audiences(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}

function knownTenant(world: World, tenant: string): boolean {
  return isGuid(tenant) && world.knowsTenant(tenant);
}

function tenantNotFound(ctx: RequestContext, tenant: string, kind: EntraErrorKind): void {
  entraError(
    ctx,
    90002,
    kind,
    `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
  );
}

function missingParameter(ctx: RequestContext, name: string): void {
  entraError(ctx, 900144, 'invalid_request', `The request body must contain the following parameter: '${name}'.`);
}

/** Entra's error shape; invalid_client is a 401, everything else a 400. */
function entraError(ctx: RequestContext, code: number, error: EntraErrorKind, text: string): void {
  ctx.send(entraErrorAnswer(ctx, error === 'invalid_client' ? 401 : 400, code, error, text));
}

function entraErrorAnswer(ctx: RequestContext, status: number, code: number, error: EntraErrorKind, text: string): Answer {
  const headers = entraHeaders(ctx);
  const traceId = headers['x-ms-request-id'];
  const correlationId = headers['client-request-id'];
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  const body = {
    error,
    error_description: `AADSTS${code}: ${text}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  };
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(body), headers };
}

// Entra echoes the client's client-request-id as the correlation id.
function entraHeaders(ctx: RequestContext): Record<string, string> {
  const requestId = ctx.req.headers['client-request-id'];
  return {
    'Cache-Control': 'no-store, no-cache',
    Pragma: 'no-cache',
    'x-ms-request-id': crypto.randomUUID(),
    'client-request-id': typeof requestId === 'string' && requestId ? requestId : crypto.randomUUID(),
  };
}

function entraFaultAnswer(status: number, ctx: RequestContext): Answer {
  if (status === 429) {
    return entraErrorAnswer(ctx, 429, 90055, 'temporarily_unavailable', "The number of requests exceeded the tenant's threshold. Retry after the time given in the Retry-After header.");
  }
  if (status >= 500) {
    return entraErrorAnswer(ctx, status, 90033, 'temporarily_unavailable', 'A transient error has occurred. Please try again.');
  }
  return entraErrorAnswer(ctx, status, 90100, 'invalid_request', `The request failed (HTTP ${status}).`);
}

/** .NET's round-trip format, seven fractional digits, as in Entra's messages. */
function dotnetTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, (_m, frac: string) => `.${frac}0000Z`);
}
