// AWS Security Token Service: AssumeRoleWithWebIdentity (an idToken for temporary credentials) and
// GetCallerIdentity (SigV4-signed with those credentials), with AWS's query protocol and XML.
//
// Both actions are `POST /` with a form body, so the one router route ('sts', internal) reads the
// form first and then hands the request to the action's own route, which is what is counted and
// where faults are injected ('sts.assumeRoleWithWebIdentity', 'sts.getCallerIdentity').
import * as crypto from 'node:crypto';
import type { Answer, Interceptor, RequestContext, Route, Router } from './server';
import type { AwsSession, Fault } from './types';
import { decodeJwt, nowSeconds, verifyJwtSignature } from './jwt';
import { awsProviderUrl, parseRoleArn, type World } from './state';

export const STS_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';
export const STS_VERSION = '2011-06-15';
/** The router's name for `POST /` before the Action is known; never counted, never faulted. */
export const STS_ENDPOINT_ROUTE = 'sts';
export const STS_ROUTE_NAMES = ['sts.assumeRoleWithWebIdentity', 'sts.getCallerIdentity'] as const;

const MIN_DURATION = 900;
const MAX_DURATION = 43200;
const DEFAULT_DURATION = 3600;
// SigV4: a request's X-Amz-Date may be this far from the server's clock.
const SIGNATURE_SKEW_MS = 15 * 60 * 1000;
const ALGORITHM = 'AWS4-HMAC-SHA256';

const INVALID_TOKEN_TEXT = 'The security token included in the request is invalid.';
const SIGNATURE_MISMATCH_TEXT =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

export class StsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** AWS's query-protocol error document (Type Sender for 4xx, Receiver for 5xx). */
export function stsErrorBody(code: string, message: string, options: { type?: 'Sender' | 'Receiver'; requestId?: string } = {}): string {
  const requestId = options.requestId ?? crypto.randomUUID();
  return (
    `<ErrorResponse xmlns="${STS_NAMESPACE}">\n` +
    `  <Error>\n` +
    `    <Type>${options.type ?? 'Sender'}</Type>\n` +
    `    <Code>${xml(code)}</Code>\n` +
    `    <Message>${xml(message)}</Message>\n` +
    `  </Error>\n` +
    `  <RequestId>${requestId}</RequestId>\n` +
    `</ErrorResponse>\n`
  );
}

/**
 * A 'status' fault that answers as STS does, e.g. stsFault(400, 'Throttling', 'Rate exceeded') or
 * stsFault(400, 'IDPCommunicationError', ...): text/xml and an x-amzn-RequestId matching the body.
 */
export function stsFault(status: number, code: string, message: string): Fault {
  const requestId = crypto.randomUUID();
  return {
    kind: 'status',
    status,
    body: stsErrorBody(code, message, { type: status >= 500 ? 'Receiver' : 'Sender', requestId }),
    headers: { 'Content-Type': 'text/xml', 'x-amzn-RequestId': requestId },
  };
}

/** What STS says for an injected status without a body. */
function stsFaultAnswer(status: number): Answer {
  let code: string;
  let message: string;
  if (status === 400 || status === 429) {
    code = 'Throttling';
    message = 'Rate exceeded';
  } else if (status === 403) {
    code = 'AccessDenied';
    message = 'User is not authorized to perform this action.';
  } else if (status === 503) {
    code = 'ServiceUnavailable';
    message = 'The request has failed due to a temporary failure of the server.';
  } else if (status >= 500) {
    code = 'InternalFailure';
    message = 'The request processing has failed because of an unknown error, exception or failure.';
  } else {
    code = 'InvalidRequest';
    message = `The request failed with status code ${status}.`;
  }
  return errorAnswer(new StsError(status, code, message));
}

function errorAnswer(e: StsError): Answer {
  const requestId = crypto.randomUUID();
  return {
    status: e.status,
    contentType: 'text/xml',
    body: stsErrorBody(e.code, e.message, { type: e.status >= 500 ? 'Receiver' : 'Sender', requestId }),
    headers: { 'x-amzn-RequestId': requestId },
  };
}

function sendResult(ctx: RequestContext, action: string, result: string): void {
  const requestId = crypto.randomUUID();
  ctx.send({
    status: 200,
    contentType: 'text/xml',
    body:
      `<${action}Response xmlns="${STS_NAMESPACE}">\n` +
      `  <${action}Result>\n${result}  </${action}Result>\n` +
      `  <ResponseMetadata>\n    <RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n` +
      `</${action}Response>\n`,
    headers: { 'x-amzn-RequestId': requestId },
  });
}

type Handler = (ctx: RequestContext, world: World, params: URLSearchParams) => void | Promise<void>;

/**
 * intercept: counts a request at the action's route and applies its faults (true: answered).
 * onUnknownAction: counts a request for no action this emulator serves (as unmatched).
 */
export function registerSts(router: Router, world: World, intercept: Interceptor, onUnknownAction: () => void): void {
  const actions = new Map<string, { route: Route; handler: Handler }>();
  const action = (name: (typeof STS_ROUTE_NAMES)[number], actionName: string, handler: Handler, truncatedBody: string) => {
    const route: Route = {
      name,
      method: 'POST',
      path: /^\/$/,
      handle: () => undefined, // reached only through the endpoint route below
      errorAnswer: stsFaultAnswer,
      truncatedBody,
    };
    actions.set(actionName, { route, handler });
  };
  action(
    'sts.assumeRoleWithWebIdentity',
    'AssumeRoleWithWebIdentity',
    assumeRoleWithWebIdentity,
    `<AssumeRoleWithWebIdentityResponse xmlns="${STS_NAMESPACE}">\n  <AssumeRoleWithWebIdentityResult>\n    <Credentials>\n      <AccessKeyId>ASIA`,
  );
  action('sts.getCallerIdentity', 'GetCallerIdentity', getCallerIdentity, `<GetCallerIdentityResponse xmlns="${STS_NAMESPACE}">\n  <GetCallerIdentityRes`);

  router.add({
    name: STS_ENDPOINT_ROUTE,
    method: 'POST',
    path: /^\/$/,
    handle: async (ctx) => {
      // AWS's query protocol: parameters in the query string and, for a form post, in the body.
      const params = new URLSearchParams(ctx.url.search);
      const body = await ctx.body();
      if (/^application\/x-www-form-urlencoded\b/i.test(ctx.req.headers['content-type'] ?? '')) {
        for (const [k, v] of new URLSearchParams(body)) params.append(k, v);
      }
      const name = params.get('Action');
      const version = params.get('Version');
      const found = name ? actions.get(name) : undefined;
      if (!found || version !== STS_VERSION) onUnknownAction();
      if (!name) {
        return ctx.send(errorAnswer(new StsError(400, 'MissingAction', 'The request is missing an action or a required parameter.')));
      }
      if (!found || version !== STS_VERSION) {
        return ctx.send(errorAnswer(new StsError(400, 'InvalidAction', `Could not find operation ${name} for version ${version || 'NO_VERSION_SPECIFIED'}`)));
      }
      if (intercept(found.route, ctx)) return;
      try {
        await found.handler(ctx, world, params);
      } catch (e) {
        if (e instanceof StsError) ctx.send(errorAnswer(e));
        else throw e;
      }
    },
    errorAnswer: stsFaultAnswer,
  });
}

// ---------------------------------------------------------------------------------------------
// AssumeRoleWithWebIdentity

async function assumeRoleWithWebIdentity(ctx: RequestContext, world: World, params: URLSearchParams): Promise<void> {
  const roleArn = params.get('RoleArn');
  const sessionName = params.get('RoleSessionName');
  const token = params.get('WebIdentityToken');
  const durationText = params.get('DurationSeconds');
  const policy = params.get('Policy');
  const policyArns = memberList(params, 'PolicyArns', 'arn');
  // A presented token is a credential: leak scans look for it in task output.
  world.recordSecret(token ?? undefined);

  // The model's constraints, reported together as AWS's validation layer does.
  const problems: string[] = [];
  // A sensitive member (the token, the policy) is named without its value.
  const at = (v: string | null, member: string, constraint: string, sensitive = false) =>
    problems.push(`Value ${v === null ? 'null ' : sensitive ? '' : `'${v}' `}at '${member}' failed to satisfy constraint: ${constraint}`);
  if (roleArn === null) at(null, 'roleArn', 'Member must not be null');
  else if (roleArn.length < 20) at(roleArn, 'roleArn', 'Member must have length greater than or equal to 20');
  else if (roleArn.length > 2048) at(roleArn, 'roleArn', 'Member must have length less than or equal to 2048');
  if (sessionName === null) at(null, 'roleSessionName', 'Member must not be null');
  else {
    if (!/^[\w+=,.@-]*$/.test(sessionName)) at(sessionName, 'roleSessionName', 'Member must satisfy regular expression pattern: [\\w+=,.@-]*');
    if (sessionName.length < 2) at(sessionName, 'roleSessionName', 'Member must have length greater than or equal to 2');
    if (sessionName.length > 64) at(sessionName, 'roleSessionName', 'Member must have length less than or equal to 64');
  }
  if (token === null) at(null, 'webIdentityToken', 'Member must not be null');
  else if (token.length < 4) at(token, 'webIdentityToken', 'Member must have length greater than or equal to 4', true);
  else if (token.length > 20000) at(token, 'webIdentityToken', 'Member must have length less than or equal to 20000', true);
  let duration = DEFAULT_DURATION;
  if (durationText !== null) {
    duration = /^-?\d+$/.test(durationText) ? Number(durationText) : NaN;
    if (Number.isNaN(duration)) at(durationText, 'durationSeconds', 'Member must be a number');
    else if (duration < MIN_DURATION) at(durationText, 'durationSeconds', `Member must have value greater than or equal to ${MIN_DURATION}`);
    else if (duration > MAX_DURATION) at(durationText, 'durationSeconds', `Member must have value less than or equal to ${MAX_DURATION}`);
  }
  if (policy !== null) {
    if (policy.length < 1) at(policy, 'policy', 'Member must have length greater than or equal to 1', true);
    else if (policy.length > 2048) at(policy, 'policy', 'Member must have length less than or equal to 2048', true);
    if (!/^[\u0009\u000A\u000D\u0020-\u00FF]*$/.test(policy)) at(policy, 'policy', 'Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+', true);
  }
  if (policyArns.length > 10) at(`[${policyArns.join(', ')}]`, 'policyArns', 'Member must have length less than or equal to 10');
  policyArns.forEach((arn, i) => {
    if (arn.length < 20) at(arn, `policyArns.${i + 1}.member.arn`, 'Member must have length greater than or equal to 20');
  });
  if (problems.length > 0) {
    throw new StsError(400, 'ValidationError', `${problems.length} validation error${problems.length > 1 ? 's' : ''} detected: ${problems.join('; ')}`);
  }
  const role = parseRoleArn(roleArn!);
  if (!role || policyArns.some((a) => !/^arn:aws:iam::(\d{12}|aws):policy\/\S+$/.test(a))) throw new StsError(400, 'ValidationError', 'Request ARN is invalid');
  if (policy !== null && !isJsonObject(policy)) {
    throw new StsError(400, 'MalformedPolicyDocument', 'The policy is not in the valid JSON format.');
  }

  // The token: a JWT from a provider registered in the role's account, signed by that provider's
  // key (the emulator's Azure DevOps issuer key signs every idToken), not expired, for one of the
  // provider's client ids.
  const jwt = decodeJwt(token!);
  if (!jwt) throw new StsError(400, 'InvalidIdentityToken', 'The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)');
  const { iss, sub, exp } = jwt.payload;
  if (typeof iss !== 'string' || !iss) throw new StsError(400, 'InvalidIdentityToken', 'Missing a required claim: iss');
  const provider = /^https:\/\//i.test(iss) ? world.findAwsOidcProvider(role.accountId, awsProviderUrl(iss)) : undefined;
  if (!provider) throw new StsError(400, 'InvalidIdentityToken', `No OpenIDConnect provider found in your account for ${iss}`);
  if (!verifyJwtSignature(jwt, world.pki.devops.publicKey) || jwt.header.alg !== 'RS256') {
    const knownKid = jwt.header.kid === world.pki.devops.kid;
    throw new StsError(
      400,
      'InvalidIdentityToken',
      knownKid
        ? 'The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.'
        : "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements",
    );
  }
  if (typeof exp !== 'number') throw new StsError(400, 'InvalidIdentityToken', 'Missing a required claim: exp');
  const now = nowSeconds();
  if (exp <= now) {
    throw new StsError(400, 'ExpiredTokenException', `Token expired: current date/time ${now} must be before the expiration date/time ${Math.floor(exp)}`);
  }
  const audience = audiences(jwt.payload.aud).find((a) => provider.clientIds.includes(a));
  if (audience === undefined) throw new StsError(400, 'InvalidIdentityToken', 'Incorrect token audience');
  if (typeof sub !== 'string' || !sub) throw new StsError(400, 'InvalidIdentityToken', 'Missing a required claim: sub');

  // The role and its trust policy: Federated principal of this provider, StringEquals on sub and aud.
  const stored = world.findAwsRole(roleArn!);
  const trusted =
    stored !== undefined &&
    stored.trust.issuer.toLowerCase() === provider.url.toLowerCase() &&
    (stored.trust.sub === undefined || stored.trust.sub === sub) &&
    (stored.trust.aud === undefined || stored.trust.aud === audience);
  if (!stored || !trusted) throw new StsError(403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
  if (duration > stored.maxSessionDurationSeconds) {
    throw new StsError(400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
  }

  const issuedAt = new Date(now * 1000);
  const roleId = roleUniqueId(stored.arn);
  const session: AwsSession = {
    accessKeyId: `ASIA${randomChars(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}`,
    secretAccessKey: randomChars(40, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'),
    // Real session tokens are base64 of a binary blob, several hundred characters long.
    sessionToken: `IQoJb3JpZ2luX2VjE${crypto.randomBytes(600).toString('base64')}`,
    expiration: isoSeconds(new Date((now + duration) * 1000)),
    issuedAt: isoSeconds(issuedAt),
    durationSeconds: duration,
    roleArn: stored.arn,
    roleSessionName: sessionName!,
    assumedRoleArn: `arn:aws:sts::${stored.accountId}:assumed-role/${stored.name}/${sessionName}`,
    assumedRoleId: `${roleId}:${sessionName}`,
    accountId: stored.accountId,
    subject: sub,
    audience,
    provider: provider.url,
    ...(policy === null ? {} : { policy }),
    policyArns,
    webIdentityToken: token!,
    userAgent: String(ctx.req.headers['user-agent'] ?? ''),
  };
  world.addAwsSession(session);

  sendResult(
    ctx,
    'AssumeRoleWithWebIdentity',
    `    <Credentials>\n` +
      `      <AccessKeyId>${session.accessKeyId}</AccessKeyId>\n` +
      `      <SecretAccessKey>${xml(session.secretAccessKey)}</SecretAccessKey>\n` +
      `      <SessionToken>${xml(session.sessionToken)}</SessionToken>\n` +
      `      <Expiration>${session.expiration}</Expiration>\n` +
      `    </Credentials>\n` +
      `    <SubjectFromWebIdentityToken>${xml(sub)}</SubjectFromWebIdentityToken>\n` +
      `    <AssumedRoleUser>\n` +
      `      <AssumedRoleId>${xml(session.assumedRoleId)}</AssumedRoleId>\n` +
      `      <Arn>${xml(session.assumedRoleArn)}</Arn>\n` +
      `    </AssumedRoleUser>\n` +
      // What STS answers for an IAM OIDC provider: its ARN (the docs say "the iss field").
      `    <Provider>arn:aws:iam::${provider.accountId}:oidc-provider/${xml(provider.url)}</Provider>\n` +
      `    <Audience>${xml(audience)}</Audience>\n`,
  );
}

/** AWS query lists: Name.member.1.field=..., Name.member.2.field=... (an empty list is sent as Name=). */
function memberList(params: URLSearchParams, name: string, field: string): string[] {
  const items: { index: number; value: string }[] = [];
  const pattern = new RegExp(`^${name}\\.member\\.(\\d+)\\.${field}$`);
  for (const [k, v] of params) {
    const m = pattern.exec(k);
    if (m) items.push({ index: Number(m[1]), value: v });
  }
  return items.sort((a, b) => a.index - b.index).map((i) => i.value);
}

function audiences(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

function isJsonObject(s: string): boolean {
  try {
    const v = JSON.parse(s) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** A role's unique id (AROA + 17), stable for its ARN so that assumed-role ids repeat from run to run. */
function roleUniqueId(arn: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const h = crypto.createHash('sha256').update(`aws-role:${arn.toLowerCase()}`).digest();
  let id = 'AROA';
  for (let i = 0; i < 17; i++) id += alphabet[h[i] % alphabet.length];
  return id;
}

function randomChars(n: number, alphabet: string): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[crypto.randomInt(alphabet.length)];
  return s;
}

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------------------------------------
// GetCallerIdentity and SigV4

async function getCallerIdentity(ctx: RequestContext, world: World): Promise<void> {
  const session = await authenticate(ctx, world);
  sendResult(
    ctx,
    'GetCallerIdentity',
    `    <Arn>${xml(session.assumedRoleArn)}</Arn>\n` + `    <UserId>${xml(session.assumedRoleId)}</UserId>\n` + `    <Account>${session.accountId}</Account>\n`,
  );
}

interface SigV4Authorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminal: string;
  signedHeaders: string[];
  signature: string;
}

/**
 * Verifies a SigV4 Authorization header against a session the emulator issued, in the order AWS
 * reports problems: the key, its session token, expiry, then the signature itself.
 */
async function authenticate(ctx: RequestContext, world: World): Promise<AwsSession> {
  const header = ctx.req.headers.authorization;
  if (!header) {
    throw new StsError(403, 'MissingAuthenticationToken', 'The request must contain either a valid (registered) AWS access key ID or X.509 certificate.');
  }
  const auth = parseAuthorization(header);
  const session = world.findAwsSession(auth.accessKeyId);
  const token = ctx.req.headers['x-amz-security-token'];
  if (!session || token !== session.sessionToken) {
    if (typeof token === 'string') world.recordSecret(token);
    throw new StsError(403, 'InvalidClientTokenId', INVALID_TOKEN_TEXT);
  }
  if (Date.parse(session.expiration) <= Date.now()) throw new StsError(403, 'ExpiredToken', 'The security token included in the request is expired');

  const amzDate = ctx.req.headers['x-amz-date'];
  if (typeof amzDate !== 'string' || !/^\d{8}T\d{6}Z$/.test(amzDate)) {
    throw new StsError(400, 'IncompleteSignature', `Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=${header}`);
  }
  if (!auth.signedHeaders.includes('host')) {
    throw new StsError(400, 'IncompleteSignature', `'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization. Authorization=${header}`);
  }
  if (auth.service !== 'sts' || auth.terminal !== 'aws4_request') {
    throw new StsError(403, 'SignatureDoesNotMatch', "Credential should be scoped to correct service: 'sts'.");
  }
  if (auth.date !== amzDate.slice(0, 8)) {
    throw new StsError(403, 'SignatureDoesNotMatch', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`);
  }
  const signedAt = Date.parse(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const now = Date.now();
  if (signedAt < now - SIGNATURE_SKEW_MS) {
    throw new StsError(403, 'SignatureDoesNotMatch', `Signature expired: ${amzDate} is now earlier than ${amzStamp(now - SIGNATURE_SKEW_MS)} (${amzStamp(now)} - 15 min.)`);
  }
  if (signedAt > now + SIGNATURE_SKEW_MS) {
    throw new StsError(403, 'SignatureDoesNotMatch', `Signature not yet current: ${amzDate} is still later than ${amzStamp(now + SIGNATURE_SKEW_MS)} (${amzStamp(now)} + 15 min.)`);
  }

  const body = Buffer.from(await ctx.body(), 'utf8');
  const bodyHash = sha256Hex(body);
  const declared = ctx.req.headers['x-amz-content-sha256'];
  if (typeof declared === 'string' && declared !== bodyHash && declared !== 'UNSIGNED-PAYLOAD') {
    throw new StsError(403, 'SignatureDoesNotMatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  const payloadHash = typeof declared === 'string' ? declared : bodyHash;
  const expected = sigV4Signature(ctx, auth, amzDate, payloadHash, session.secretAccessKey);
  const presented = Buffer.from(auth.signature.toLowerCase(), 'utf8');
  if (presented.length !== expected.length || !crypto.timingSafeEqual(presented, Buffer.from(expected, 'utf8'))) {
    throw new StsError(403, 'SignatureDoesNotMatch', SIGNATURE_MISMATCH_TEXT);
  }
  return session;
}

function parseAuthorization(header: string): SigV4Authorization {
  const m = /^(\S+)\s+(.*)$/s.exec(header.trim());
  if (!m || m[1] !== ALGORITHM) {
    throw new StsError(400, 'IncompleteSignature', `Unsupported AWS 'algorithm': '${m ? m[1] : header}'`);
  }
  const fields = new Map<string, string>();
  for (const part of m[2].split(',')) {
    const i = part.indexOf('=');
    if (i > 0) fields.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((k) => !fields.get(k));
  if (missing.length > 0) {
    throw new StsError(400, 'IncompleteSignature', `${missing.map((k) => `Authorization header requires '${k}' parameter.`).join(' ')} Authorization=${header}`);
  }
  const scope = fields.get('Credential')!.split('/');
  if (scope.length !== 5 || scope.some((s) => !s)) {
    throw new StsError(400, 'IncompleteSignature', `Credential should be of the form <access key>/<date>/<region>/<service>/aws4_request. Authorization=${header}`);
  }
  const [accessKeyId, date, region, service, terminal] = scope;
  return {
    accessKeyId,
    date,
    region,
    service,
    terminal,
    signedHeaders: fields.get('SignedHeaders')!.split(';').map((h) => h.trim().toLowerCase()),
    signature: fields.get('Signature')!,
  };
}

/** The signature SigV4 gives this request: canonical request, string to sign, derived signing key. */
function sigV4Signature(ctx: RequestContext, auth: SigV4Authorization, amzDate: string, payloadHash: string, secret: string): string {
  const rawUrl = ctx.req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  const rawQuery = q >= 0 ? rawUrl.slice(q + 1) : '';
  const distinct = ctx.req.headersDistinct;
  const canonicalHeaders = auth.signedHeaders
    .map((name) => `${name}:${(distinct[name] ?? []).map((v) => v.trim().replace(/\s+/g, ' ')).join(',')}\n`)
    .join('');
  const canonicalRequest = [
    ctx.req.method ?? 'POST',
    canonicalUri(rawPath),
    canonicalQuery(rawQuery),
    canonicalHeaders,
    auth.signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${auth.date}/${auth.region}/${auth.service}/${auth.terminal}`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(Buffer.from(canonicalRequest, 'utf8'))].join('\n');
  let key: Buffer = hmac(Buffer.from(`AWS4${secret}`, 'utf8'), auth.date);
  for (const part of [auth.region, auth.service, 'aws4_request']) key = hmac(key, part);
  return hmac(key, stringToSign).toString('hex');
}

/** Non-S3 services: dot segments removed, empty segments dropped, each segment URI-encoded (again). */
function canonicalUri(rawPath: string): string {
  const segments: string[] = [];
  for (const s of rawPath.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') segments.pop();
    else segments.push(s);
  }
  if (segments.length === 0) return '/';
  return `/${segments.map(uriEncode).join('/')}${rawPath.endsWith('/') ? '/' : ''}`;
}

function canonicalQuery(rawQuery: string): string {
  if (!rawQuery) return '';
  const pairs = rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      const k = i >= 0 ? p.slice(0, i) : p;
      const v = i >= 0 ? p.slice(i + 1) : '';
      return [uriEncode(safeDecode(k)), uriEncode(safeDecode(v))] as const;
    })
    .filter(([k]) => k !== 'X-Amz-Signature');
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function hmac(key: Buffer, data: string): Buffer {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256Hex(data: Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

function amzStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

function xml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}
