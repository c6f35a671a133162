// Google Cloud: the Security Token Service's token exchange (POST https://sts.googleapis.com/v1/token,
// workload identity federation with an OIDC provider) and the IAM Credentials API's
// generateAccessToken (service account impersonation), with Google's own error shapes
// (protocols.md section 9). Served only at their public names (index.ts SERVICE_HOSTS).
import * as crypto from 'node:crypto';
import type { Answer, RequestContext, Router } from './server';
import type { GcpAccessToken, GcpProvider, GcpServiceAccount } from './types';
import { decodeJwt, nowSeconds, verifyJwtSignature } from './jwt';
import type { World } from './state';

export const GCP_STS_ROUTE = 'gcp.sts.token';
export const GCP_IAM_ROUTE = 'gcp.iam.generateAccessToken';
export const GOOGLE_CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TYPES = new Set(['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token']);
const STS_TOKEN_SECONDS = 3600;
const MAX_LIFETIME = 43200;
const DEFAULT_LIFETIME = 3600;
const PROVIDER_NAME = /^projects\/(\d+)\/locations\/global\/workloadIdentityPools\/([a-z0-9-]{4,32})\/providers\/([a-z0-9-]{4,32})$/;

/** The provider's full resource name: projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>. */
export function providerName(p: Pick<GcpProvider, 'projectNumber' | 'poolId' | 'providerId'>): string {
  return `projects/${p.projectNumber}/locations/global/workloadIdentityPools/${p.poolId}/providers/${p.providerId}`;
}

/** The principal a federated token stands for: principal://iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/subject/<sub>. */
export function gcpPrincipal(p: Pick<GcpProvider, 'projectNumber' | 'poolId'>, subject: string): string {
  return `principal://iam.googleapis.com/projects/${p.projectNumber}/locations/global/workloadIdentityPools/${p.poolId}/subject/${subject}`;
}

/** Every principal of a pool: principalSet://iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/*. */
export function gcpPoolPrincipalSet(p: Pick<GcpProvider, 'projectNumber' | 'poolId'>): string {
  return `principalSet://iam.googleapis.com/projects/${p.projectNumber}/locations/global/workloadIdentityPools/${p.poolId}/*`;
}

/**
 * The subset of CEL the emulator evaluates in an attribute condition: clauses joined by &&, each
 * `<attr> == '<text>'` or `<attr>.startsWith('<text>')`, where attr is assertion.<claim>,
 * google.subject or attribute.<name> (from the mapping).
 */
type Clause = { attr: string; op: '==' | 'startsWith'; value: string };

export function parseCondition(condition: string): Clause[] {
  return condition.split('&&').map((raw) => {
    const c = raw.trim().replace(/^\((.*)\)$/, '$1').trim();
    let m = /^([a-z_][\w.]*)\s*==\s*(['"])(.*)\2$/i.exec(c);
    if (m) return { attr: m[1], op: '==' as const, value: m[3] };
    m = /^([a-z_][\w.]*)\.startsWith\((['"])(.*)\2\)$/i.exec(c);
    if (m) return { attr: m[1], op: 'startsWith' as const, value: m[3] };
    throw new TypeError(`the emulator evaluates only 'attr == "x"' and 'attr.startsWith("x")' joined by &&, not ${JSON.stringify(c)}`);
  });
}

/** Evaluates a mapping expression of the form assertion.<claim> (the only form the emulator maps). */
function mapExpression(expr: string, claims: Record<string, unknown>): string | undefined {
  const m = /^assertion\.([\w]+)$/.exec(expr.trim());
  if (!m) throw new TypeError(`the emulator maps only assertion.<claim>, not ${JSON.stringify(expr)}`);
  const v = claims[m[1]];
  return typeof v === 'string' ? v : undefined;
}

interface StoredProvider extends Required<Omit<GcpProvider, 'attributeCondition'>> {
  attributeCondition?: string;
  clauses: Clause[];
}

/** The emulator's Google state: providers, service accounts, the tokens it issued. */
export class GcpState {
  private readonly providers = new Map<string, StoredProvider>();
  private readonly accounts = new Map<string, GcpServiceAccount>();
  readonly tokens: GcpAccessToken[] = [];

  addProvider(p: GcpProvider): void {
    const name = providerName(p);
    if (!PROVIDER_NAME.test(name)) throw new TypeError(`not a provider name: ${name}`);
    if (!/^https:\/\//.test(p.issuerUri)) throw new TypeError(`issuerUri must be https: ${p.issuerUri}`);
    const attributeMapping = p.attributeMapping ?? { 'google.subject': 'assertion.sub' };
    if (!attributeMapping['google.subject']) throw new TypeError('attributeMapping must map google.subject');
    this.providers.set(name, {
      ...p,
      allowedAudiences: p.allowedAudiences ?? [],
      attributeMapping,
      state: p.state ?? 'ACTIVE',
      clauses: p.attributeCondition ? parseCondition(p.attributeCondition) : [],
    });
  }

  findProvider(name: string): StoredProvider | undefined {
    return this.providers.get(name);
  }

  addServiceAccount(sa: GcpServiceAccount): void {
    this.accounts.set(sa.email.toLowerCase(), { email: sa.email.toLowerCase(), members: [...sa.members] });
  }

  findServiceAccount(email: string): GcpServiceAccount | undefined {
    return this.accounts.get(email.toLowerCase());
  }

  findToken(token: string): GcpAccessToken | undefined {
    return this.tokens.find((t) => t.token === token);
  }
}

// ---------------------------------------------------------------------------------------------
// Error shapes

/** STS: an OAuth 2.0 error (RFC 6749/8693), {error, error_description}. */
function oauthError(status: number, error: string, description: string): Answer {
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ error, error_description: description }) };
}

/** Google APIs (IAM Credentials, and STS for 5xx): {error: {code, message, status, details?}}. */
function googleError(code: number, message: string, status: string, details?: unknown[]): Answer {
  return { status: code, contentType: 'application/json; charset=UTF-8', body: JSON.stringify({ error: { code, message, status, ...(details ? { details } : {}) } }, null, 2) };
}

function statusName(status: number): string {
  return ({ 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' } as Record<number, string>)[status] ?? 'UNKNOWN';
}

export function gcpFaultAnswer(status: number): Answer {
  const message = status === 429 ? 'Quota exceeded.' : status === 503 ? 'The service is currently unavailable.' : status >= 500 ? 'Internal error encountered.' : `Request failed with status ${status}.`;
  return googleError(status, message, statusName(status));
}

class GcpError extends Error {
  constructor(readonly answer: Answer) {
    super(answer.body);
  }
}

// ---------------------------------------------------------------------------------------------
// STS v1 token

async function stsToken(ctx: RequestContext, world: World): Promise<void> {
  const type = String(ctx.req.headers['content-type'] ?? '');
  const raw = await ctx.body();
  let p: Record<string, unknown>;
  if (/^application\/json\b/i.test(type)) {
    try {
      p = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      throw new GcpError(oauthError(400, 'invalid_request', 'Invalid JSON payload received.'));
    }
  } else {
    p = Object.fromEntries(new URLSearchParams(raw));
  }
  const str = (k: string, alt?: string) => {
    const v = p[k] ?? (alt ? p[alt] : undefined);
    return typeof v === 'string' ? v : undefined;
  };
  const subjectToken = str('subject_token', 'subjectToken');
  world.recordSecret(subjectToken);
  const grantType = str('grant_type', 'grantType');
  if (grantType !== TOKEN_EXCHANGE) throw new GcpError(oauthError(400, 'unsupported_grant_type', `Unsupported grant type: ${grantType ?? ''}`));
  if ((str('requested_token_type', 'requestedTokenType') ?? ACCESS_TOKEN_TYPE) !== ACCESS_TOKEN_TYPE) throw new GcpError(oauthError(400, 'invalid_request', 'Invalid value for "requested_token_type".'));
  if (!SUBJECT_TYPES.has(str('subject_token_type', 'subjectTokenType') ?? '')) throw new GcpError(oauthError(400, 'invalid_request', 'Invalid value for "subject_token_type".'));
  if (!subjectToken) throw new GcpError(oauthError(400, 'invalid_request', 'The "subject_token" parameter is required.'));
  const audience = str('audience') ?? '';
  const name = audience.replace(/^\/\/iam\.googleapis\.com\//, '');
  const provider = audience.startsWith('//iam.googleapis.com/') ? world.gcp.findProvider(name) : undefined;
  if (!provider || provider.state !== 'ACTIVE') {
    throw new GcpError(oauthError(400, 'invalid_target', 'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.'));
  }
  const scopes = (str('scope') ?? '').split(/\s+/).filter(Boolean);

  const jwt = decodeJwt(subjectToken);
  if (!jwt) throw new GcpError(oauthError(400, 'invalid_grant', 'Unable to parse the ID Token.'));
  const claims = jwt.payload as Record<string, unknown>;
  const iss = typeof claims.iss === 'string' ? claims.iss : '';
  if (iss !== provider.issuerUri) {
    throw new GcpError(oauthError(400, 'invalid_grant', `The issuer in ID Token ${iss} does not match the expected ones: ${provider.issuerUri}`));
  }
  // Every idToken the emulator's Azure DevOps mints (either issuer) is signed with its key.
  if (!verifyJwtSignature(jwt, world.pki.devops.publicKey) || jwt.header.alg !== 'RS256') {
    throw new GcpError(oauthError(400, 'invalid_grant', 'Invalid ID Token: the signature could not be verified with the issuer\'s keys.'));
  }
  const now = nowSeconds();
  const exp = typeof claims.exp === 'number' ? claims.exp : 0;
  if (exp <= now) throw new GcpError(oauthError(400, 'invalid_grant', `ID Token expired at ${new Date(exp * 1000).toISOString()}.`));
  const tokenAud = Array.isArray(claims.aud) ? claims.aud.filter((a): a is string => typeof a === 'string') : typeof claims.aud === 'string' ? [claims.aud] : [];
  // With no allowed audiences, Google accepts only the provider's own resource URL.
  const allowed = provider.allowedAudiences.length ? provider.allowedAudiences : [`https://iam.googleapis.com/${name}`];
  if (!tokenAud.some((a) => allowed.includes(a))) {
    throw new GcpError(oauthError(400, 'invalid_grant', `The audience in ID Token [${tokenAud.join(', ')}] does not match the expected audience ${allowed.join(', ')}.`));
  }
  const attributes: Record<string, string> = {};
  for (const [key, expr] of Object.entries(provider.attributeMapping)) {
    const v = mapExpression(expr, claims);
    if (v !== undefined) attributes[key] = v;
  }
  const subject = attributes['google.subject'];
  if (!subject) throw new GcpError(oauthError(400, 'invalid_grant', 'The mapped attribute google.subject must not be empty.'));
  const value = (attr: string): string | undefined => {
    if (attr.startsWith('assertion.')) {
      const v = claims[attr.slice('assertion.'.length)];
      return typeof v === 'string' ? v : undefined;
    }
    return attributes[attr.replace(/^attribute\./, '')];
  };
  const passes = provider.clauses.every((c) => {
    const v = value(c.attr);
    return v !== undefined && (c.op === '==' ? v === c.value : v.startsWith(c.value));
  });
  if (!passes) throw new GcpError(oauthError(400, 'unauthorized_client', 'The given credential is rejected by the attribute condition.'));

  const issued: GcpAccessToken = {
    token: `ya29.d.${crypto.randomBytes(96).toString('base64url')}`,
    kind: 'federated',
    principal: gcpPrincipal(provider, subject),
    provider: name,
    scopes,
    expiresAt: new Date((now + STS_TOKEN_SECONDS) * 1000).toISOString(),
  };
  world.gcp.tokens.push(issued);
  world.recordSecret(issued.token);
  ctx.json(200, { access_token: issued.token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: STS_TOKEN_SECONDS });
}

// ---------------------------------------------------------------------------------------------
// IAM Credentials v1 generateAccessToken

async function generateAccessToken(ctx: RequestContext, world: World): Promise<void> {
  const auth = String(ctx.req.headers.authorization ?? '');
  const bearer = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
  world.recordSecret(bearer);
  const caller = bearer ? world.gcp.findToken(bearer) : undefined;
  if (!caller || Date.parse(caller.expiresAt) <= Date.now()) {
    throw new GcpError(googleError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.', 'UNAUTHENTICATED'));
  }
  const email = ctx.params.email;
  let body: { scope?: unknown; lifetime?: unknown; delegates?: unknown };
  try {
    body = JSON.parse((await ctx.body()) || '{}') as typeof body;
  } catch {
    throw new GcpError(googleError(400, 'Invalid JSON payload received.', 'INVALID_ARGUMENT'));
  }
  const scopes = Array.isArray(body.scope) ? body.scope.filter((s): s is string => typeof s === 'string') : [];
  if (!scopes.length) throw new GcpError(googleError(400, 'Scope required.', 'INVALID_ARGUMENT'));
  let lifetime = DEFAULT_LIFETIME;
  if (body.lifetime !== undefined) {
    const m = typeof body.lifetime === 'string' ? /^(\d+)(\.\d+)?s$/.exec(body.lifetime) : null;
    if (!m) throw new GcpError(googleError(400, `Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), Field 'lifetime', Illegal duration format; duration must end with 's'`, 'INVALID_ARGUMENT'));
    lifetime = Number(m[1]);
    if (lifetime < 1 || lifetime > MAX_LIFETIME) throw new GcpError(googleError(400, `The lifetime must be between 1 and ${MAX_LIFETIME} seconds.`, 'INVALID_ARGUMENT'));
  }
  const sa = world.gcp.findServiceAccount(email);
  const pool = caller.principal.replace(/\/subject\/.*$/, '/*').replace(/^principal:/, 'principalSet:');
  const granted = sa !== undefined && (caller.kind === 'federated' ? sa.members.includes(caller.principal) || sa.members.includes(pool) : false);
  if (!granted) {
    throw new GcpError(
      googleError(403, "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).", 'PERMISSION_DENIED', [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'IAM_PERMISSION_DENIED', domain: 'iam.googleapis.com', metadata: { permission: 'iam.serviceAccounts.getAccessToken' } },
      ]),
    );
  }
  const issued: GcpAccessToken = {
    token: `ya29.c.${crypto.randomBytes(120).toString('base64url')}`,
    kind: 'impersonated',
    principal: `serviceAccount:${sa!.email}`,
    provider: caller.provider,
    scopes,
    expiresAt: new Date(Date.now() + lifetime * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  world.gcp.tokens.push(issued);
  world.recordSecret(issued.token);
  ctx.json(200, { accessToken: issued.token, expireTime: issued.expiresAt });
}

export function registerGcp(router: Router, world: World): void {
  const wrap = (handler: (ctx: RequestContext, world: World) => Promise<void>) => async (ctx: RequestContext) => {
    try {
      await handler(ctx, world);
    } catch (e) {
      if (e instanceof GcpError) ctx.send(e.answer);
      else throw e;
    }
  };
  router.add({ name: GCP_STS_ROUTE, method: 'POST', path: /^\/v1\/token$/, handle: wrap(stsToken), errorAnswer: gcpFaultAnswer, truncatedBody: '{"access_token":"ya29.d.' });
  router.add({
    name: GCP_IAM_ROUTE,
    method: 'POST',
    path: /^\/v1\/projects\/-\/serviceAccounts\/(?<email>[^/:]+):generateAccessToken$/,
    handle: wrap(generateAccessToken),
    errorAnswer: gcpFaultAnswer,
    truncatedBody: '{\n  "accessToken": "ya29.c.',
  });
}
