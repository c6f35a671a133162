/**
 * Reads a JWT's claims so that users can compare them with their federated credential.
 * The signature is not verified: the task cannot (it does not hold the issuer's trust), and
 * Microsoft Entra ID or AWS STS verify it anyway. The token itself is never logged.
 */
import { TaskFailure } from '../http/failures';
import { neutralize, safe } from '../agent/output';

export interface JwtClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  [claim: string]: unknown;
}

function decodeSegment(segment: string): unknown {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

export function decodeJwt(token: string, what: string): { header: Record<string, unknown>; claims: JwtClaims } {
  const parts = token.split('.');
  if (parts.length !== 3) {
    throw new TaskFailure({ what: `${what} is not a JSON Web Token (it has ${parts.length} parts, not 3).`, cause: 'The service answered with something other than a token.', fix: 'Re-run the job; report it if it persists.', code: 'NOT_A_JWT' });
  }
  try {
    const header = decodeSegment(parts[0]) as Record<string, unknown>;
    const claims = decodeSegment(parts[1]) as JwtClaims;
    if (!claims || typeof claims !== 'object') throw new Error('claims are not an object');
    return { header, claims };
  } catch {
    throw new TaskFailure({ what: `${what} could not be decoded as a JSON Web Token.`, cause: 'The service answered with a malformed token.', fix: 'Re-run the job; report it if it persists.', code: 'NOT_A_JWT' });
  }
}

export function expiresOn(claims: JwtClaims): Date | undefined {
  return typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : undefined;
}

export function audienceText(aud: string | string[] | undefined): string {
  return Array.isArray(aud) ? aud.join(', ') : aud ?? '(none)';
}

/** Which issuer family an idToken comes from: the vstoken one retires on 2027-07-01. */
export function issuerKind(iss: string | undefined): 'vstoken' | 'entra' | 'other' {
  if (!iss) return 'other';
  if (/^https:\/\/vstoken\.(dev\.azure\.com|visualstudio\.com)\//i.test(iss)) return 'vstoken';
  if (/^https:\/\/login\.(microsoftonline\.(com|us)|chinacloudapi\.cn)\/[^/]+\/v2\.0$/i.test(iss)) return 'entra';
  return 'other';
}

/**
 * Whether the vstoken issuer's retirement (2027-07-01) applies to a connection whose idToken has
 * this issuer: Azure public cloud connections only (protocols.md section 8). Azure Government,
 * Azure China (21Vianet) and Azure Stack connections are excluded, and so are multitenant apps;
 * neither the agent's data nor the service endpoint says whether an app is multitenant, so that
 * case is named in the advice instead.
 */
export function vstokenRetirementApplies(iss: string | undefined, cloudName: string): boolean {
  return issuerKind(iss) === 'vstoken' && cloudName.toLowerCase() === 'azurecloud';
}

/** The advice, one sentence, for FetchOidcToken's log and the validation row alike. */
export const VSTOKEN_RETIREMENT =
  'the connection uses the vstoken.dev.azure.com issuer, which Azure DevOps retires on 2027-07-01 for Azure public cloud connections (multitenant apps excepted)';

/** The lines a task logs about an idToken: enough to fill in a federated credential. */
export function describeIdToken(claims: JwtClaims, now = Date.now()): string[] {
  const exp = expiresOn(claims);
  const left = exp ? Math.round((exp.getTime() - now) / 1000) : undefined;
  return [
    safe`  Issuer (iss):   ${claims.iss ?? '(none)'}`,
    safe`  Subject (sub):  ${claims.sub ?? '(none)'}`,
    `  Audience (aud): ${neutralize(audienceText(claims.aud))}`,
    `  Expires (exp):  ${exp ? `${exp.toISOString()} (in ${left} s)` : '(none)'}`,
  ];
}

/** The pipeline token's claims a verifier binds to (sub p://<org>/<project>/<pipeline>), in this order. */
export const PIPELINE_CLAIMS: readonly [string, string][] = [
  ['org_id', 'organisation id'],
  ['prj_id', 'project id'],
  ['def_id', 'pipeline (definition) id'],
  ['rpo_id', 'repository id'],
  ['rpo_uri', 'repository'],
  ['rpo_ver', 'commit'],
  ['rpo_ref', 'ref'],
  ['run_id', 'run id'],
];

/** The lines for the pipeline token's own claims, those present only (none for a connection's token). */
export function describePipelineClaims(claims: JwtClaims): string[] {
  return PIPELINE_CLAIMS.filter(([c]) => claims[c] !== undefined && claims[c] !== null).map(([c, what]) => {
    const v = claims[c];
    return `  ${`${what} (${c}): `.padEnd(36)}${neutralize(typeof v === 'string' ? v : JSON.stringify(v))}`;
  });
}
