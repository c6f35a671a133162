// Validation of the Entra access tokens that resource APIs (ARM, Microsoft Graph) receive as
// `Authorization: Bearer <token>`. Each service words its own errors; this says what is wrong.
import type { RequestContext } from './server';
import { decodeJwt, nowSeconds, verifyJwtSignature } from './jwt';
import type { World } from './state';

// Resource servers accept a little clock skew on nbf; expiry is checked exactly, like checkLifetime in entra.ts.
const NBF_SKEW_SECONDS = 300;

export interface AccessTokenClaims {
  aud: string;
  tid: string;
  iss: string;
  appid?: string;
  oid?: string;
  roles: string[];
  exp: number;
}

export type BearerFailure =
  | { reason: 'missing' }
  | { reason: 'scheme' }
  | { reason: 'malformed' }
  | { reason: 'signature' }
  | { reason: 'claims' }
  | { reason: 'expired'; exp: number }
  | { reason: 'not-yet-valid'; nbf: number }
  | { reason: 'audience'; audience: string }
  | { reason: 'issuer'; issuer: string };

export type BearerCheck = ({ ok: true } & AccessTokenClaims) | ({ ok: false } & BearerFailure);

/**
 * Checks the request's bearer token: an RS256 JWT signed by the emulator's Entra key, within its
 * lifetime, for one of the audiences (compared case-insensitively, as resource servers do), and
 * issued by the tenant it names (tid).
 */
export function checkBearer(ctx: RequestContext, world: World, audiences: ReadonlySet<string>): BearerCheck {
  const header = ctx.req.headers.authorization;
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'missing' };
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) return { ok: false, reason: 'scheme' };
  const token = m[1];
  // A presented token is a credential: leak scans look for it in task output.
  world.recordSecret(token);
  const jwt = decodeJwt(token);
  if (!jwt) return { ok: false, reason: 'malformed' };
  if (jwt.header.alg !== 'RS256' || !verifyJwtSignature(jwt, world.pki.entra.publicKey)) return { ok: false, reason: 'signature' };
  const { exp, nbf, aud, tid, iss, appid, oid, roles } = jwt.payload;
  if (typeof exp !== 'number' || typeof aud !== 'string' || typeof tid !== 'string' || typeof iss !== 'string') return { ok: false, reason: 'claims' };
  const now = nowSeconds();
  if (exp <= now) return { ok: false, reason: 'expired', exp };
  if (typeof nbf === 'number' && nbf > now + NBF_SKEW_SECONDS) return { ok: false, reason: 'not-yet-valid', nbf };
  if (![...audiences].some((a) => a.toLowerCase() === aud.toLowerCase())) return { ok: false, reason: 'audience', audience: aud };
  const t = tid.toLowerCase();
  const issuers = [`https://sts.windows.net/${t}/`, `${world.url}/${t}/v2.0`.toLowerCase(), `https://login.microsoftonline.com/${t}/v2.0`];
  if (!issuers.includes(iss.toLowerCase())) return { ok: false, reason: 'issuer', issuer: iss };
  return {
    ok: true,
    aud,
    tid: t,
    iss,
    appid: typeof appid === 'string' && appid ? appid : undefined,
    oid: typeof oid === 'string' && oid ? oid : undefined,
    roles: Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : [],
    exp,
  };
}

/** The ids a token's caller is known by in role assignments: its appid and oid. */
export function principalIds(claims: AccessTokenClaims): string[] {
  return [claims.appid, claims.oid].filter((x): x is string => Boolean(x)).map((x) => x.toLowerCase());
}

/** Resource Manager audiences of every cloud, with and without the trailing slash (ARM and ACR accept them). */
export const ARM_AUDIENCES: ReadonlySet<string> = new Set(
  [
    'https://management.azure.com',
    'https://management.core.windows.net',
    'https://management.usgovcloudapi.net',
    'https://management.core.usgovcloudapi.net',
    'https://management.chinacloudapi.cn',
    'https://management.core.chinacloudapi.cn',
  ].flatMap((a) => [a, `${a}/`]),
);
