/**
 * AWS STS AssumeRoleWithWebIdentity: the connection's idToken for temporary AWS credentials.
 * The call is unsigned; the token is the credential, so it goes only to the STS endpoint.
 */
import { PipelineContext } from '../agent/pipeline-context';
import { JwtClaims } from '../devops/claims';
import { explainHttpStatus, quoteServiceText, TaskFailure, StatusAdvice } from '../http/failures';
import { header } from '../http/http';
import { mask } from '../agent/variables';
import { log, neutralize, safe } from '../agent/output';

export const STS_SERVICE = 'AWS STS';

export interface AssumeRoleRequest {
  endpoint: string;
  roleArn: string;
  roleSessionName: string;
  durationSeconds: number;
  webIdentityToken: string;
  /** The token's claims, for explaining a refusal. */
  claims: JwtClaims;
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: string;
  assumedRoleArn: string;
  subject?: string;
  provider?: string;
}

/** Text of the first <tag> element; STS answers are small, flat and well-formed. */
export function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m ? m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&').trim() : undefined;
}

/** STS answers these with HTTP 400, but they are transient: retried here, as the SDKs do. */
const TRANSIENT = new Set(['IDPCommunicationError', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded']);
const ATTEMPTS = 4;

/** AWS STS answers its own errors as XML with a code (explainStsError); a bare 401, 403 or 404 comes from elsewhere. */
const AWS_STS_ADVICE: StatusAdvice = {
  unauthorized: {
    cause: 'Something between the agent and AWS STS refused the request without an STS error document: the agent\'s proxy, a firewall, or an stsEndpoint that is not AWS STS.',
    fix: 'Check stsEndpoint, and that the agent\'s proxy lets requests to it through.',
  },
  forbidden: {
    cause: 'Something between the agent and AWS STS refused the request without an STS error document: the agent\'s proxy, a firewall, or an stsEndpoint that is not AWS STS.',
    fix: 'Check stsEndpoint, and that the agent\'s proxy lets requests to it through.',
  },
  notFound: () => ({
    cause: 'The stsEndpoint does not serve AssumeRoleWithWebIdentity.',
    fix: 'Give stsEndpoint an STS URL such as https://sts.eu-west-1.amazonaws.com/ or your VPC endpoint, or leave it empty for the regional endpoint.',
  }),
  statusPages: 'https://health.aws.amazon.com/health/status',
};

export async function assumeRoleWithWebIdentity(ctx: PipelineContext, r: AssumeRoleRequest, sleep = (ms: number) => new Promise((res) => setTimeout(res, ms))): Promise<AwsCredentials> {
  const body = new URLSearchParams({
    Action: 'AssumeRoleWithWebIdentity',
    Version: '2011-06-15',
    RoleArn: r.roleArn,
    RoleSessionName: r.roleSessionName,
    DurationSeconds: String(r.durationSeconds),
    WebIdentityToken: r.webIdentityToken,
  }).toString();
  for (let attempt = 1; ; attempt++) {
    const res = await ctx.http.request({ method: 'POST', url: r.endpoint, service: STS_SERVICE, headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8', Accept: 'application/xml' }, body });
    if (res.status === 200) return parseCredentials(res.body, r.endpoint);
    // STS error codes are single words; a <Code> of any other shape is not an STS error document.
    const rawCode = xmlText(res.body, 'Code');
    const code = rawCode && /^[A-Za-z][A-Za-z0-9.]{0,63}$/.test(rawCode) ? rawCode : undefined;
    const message = xmlText(res.body, 'Message') ?? '';
    if (code && TRANSIENT.has(code) && attempt < ATTEMPTS) {
      const delay = Math.min(8_000, 500 * 2 ** (attempt - 1));
      log(safe`${STS_SERVICE}: ${code}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${ATTEMPTS}).`);
      await sleep(delay);
      continue;
    }
    if (code) throw explainStsError(code, message, r, xmlText(res.body, 'RequestId'));
    throw explainHttpStatus(STS_SERVICE, r.endpoint, res.status, res.body, header(res, 'content-type'), { connectionName: r.roleArn }, res.retryAfterTooLong, AWS_STS_ADVICE);
  }
}

function parseCredentials(xml: string, endpoint: string): AwsCredentials {
  const get = (t: string) => xmlText(xml, t);
  const [accessKeyId, secretAccessKey, sessionToken, expiration] = ['AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration'].map(get);
  if (!accessKeyId || !secretAccessKey || !sessionToken || !expiration) {
    throw new TaskFailure({
      what: `${STS_SERVICE} at ${endpoint} answered without complete credentials (${xml.length} bytes).`,
      cause: 'The endpoint is not AWS STS, or a proxy altered the answer.',
      fix: 'Check stsEndpoint (leave it empty for the regional endpoint) and the agent\'s proxy.',
      code: 'STS_NO_CREDENTIALS',
    });
  }
  mask(secretAccessKey);
  mask(sessionToken);
  return { accessKeyId, secretAccessKey, sessionToken, expiration, assumedRoleArn: get('Arn') ?? '', subject: get('SubjectFromWebIdentityToken'), provider: get('Provider') };
}

function accountOf(roleArn: string): string {
  return /^arn:[^:]+:iam::(\d{12}):/.exec(roleArn)?.[1] ?? '<account id>';
}

function partitionOf(roleArn: string): string {
  return /^arn:([^:]+):/.exec(roleArn)?.[1] ?? 'aws';
}

function audience(claims: JwtClaims): string {
  return Array.isArray(claims.aud) ? claims.aud[0] ?? '' : claims.aud ?? '';
}

/** The trust policy statement that would let this token assume the role. */
export function trustPolicyFor(roleArn: string, claims: JwtClaims): string {
  const provider = (claims.iss ?? '').replace(/^https:\/\//, '');
  return JSON.stringify(
    {
      Effect: 'Allow',
      Principal: { Federated: `arn:${partitionOf(roleArn)}:iam::${accountOf(roleArn)}:oidc-provider/${provider}` },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: { StringEquals: { [`${provider}:sub`]: claims.sub ?? '', [`${provider}:aud`]: audience(claims) } },
    },
    null,
    2,
  );
}

export function explainStsError(code: string, message: string, r: AssumeRoleRequest, requestId?: string): TaskFailure {
  const c = r.claims;
  const said = `  AWS STS said: ${neutralize(code)}: ${neutralize(quoteServiceText(message))}${requestId ? safe` (request id ${quoteServiceText(requestId)})` : ''}`;
  const claimLines = [safe`  Token issuer (iss):   ${c.iss ?? '(none)'}`, safe`  Token subject (sub):  ${c.sub ?? '(none)'}`, safe`  Token audience (aud): ${audience(c) || '(none)'}`];
  const provider = (c.iss ?? '').replace(/^https:\/\//, '');
  switch (code) {
    case 'InvalidIdentityToken':
      return new TaskFailure({
        what: `AWS STS refused the connection's idToken for ${r.roleArn} (InvalidIdentityToken).`,
        cause: `The AWS account ${accountOf(r.roleArn)} has no IAM OIDC identity provider for the token's issuer, or the provider's audience (client id) or thumbprint does not match.`,
        fix: `Create the provider once: IAM > Identity providers > Add provider > OpenID Connect, provider URL ${c.iss ?? '(the token issuer)'}, audience ${audience(c) || 'api://AzureADTokenExchange'} (or: aws iam create-open-id-connect-provider --url ${c.iss ?? '<issuer>'} --client-id-list ${audience(c) || 'api://AzureADTokenExchange'}).`,
        evidence: [said, ...claimLines, `  Provider URL to create: ${provider}`],
        code: 'STS_InvalidIdentityToken',
      });
    case 'AccessDenied':
      return new TaskFailure({
        what: `AWS STS did not let the connection assume ${r.roleArn} (AccessDenied).`,
        cause: 'The role\'s trust policy does not allow this identity provider, subject or audience (the subject changes when the organization, project or connection is renamed).',
        fix: 'Add this statement to the role\'s trust policy (IAM > Roles > the role > Trust relationships), or correct its conditions:',
        evidence: [said, ...claimLines, ...trustPolicyFor(r.roleArn, c).split('\n').map((l) => `  ${l}`)],
        code: 'STS_AccessDenied',
      });
    case 'ExpiredToken':
    case 'ExpiredTokenException':
      return new TaskFailure({
        what: `AWS STS refused the idToken as expired (${code}).`,
        cause: 'The idToken lives about 10 minutes; it expired before it reached AWS, or the agent\'s clock is wrong.',
        fix: 'Re-run the step; for long jobs use exportWebIdentityFile so the AWS SDKs and CLI assume the role themselves.',
        evidence: [said, ...claimLines],
        code: 'STS_ExpiredToken',
      });
    case 'IDPRejectedClaim':
      return new TaskFailure({ what: `AWS STS rejected a claim of the idToken (IDPRejectedClaim).`, cause: 'A claim of the token is not accepted by the identity provider configuration.', fix: 'Compare the provider\'s audience and the role\'s conditions with the token\'s claims below.', evidence: [said, ...claimLines], code: 'STS_IDPRejectedClaim' });
    case 'IDPCommunicationError':
      return new TaskFailure({ what: 'AWS STS could not reach the identity provider to verify the idToken (IDPCommunicationError), after retries.', cause: 'AWS could not fetch the issuer\'s OpenID configuration or keys.', fix: 'Re-run the job later; check the AWS Health Dashboard.', evidence: [said], code: 'STS_IDPCommunicationError' });
    case 'RegionDisabledException':
    case 'RegionDisabled':
      return new TaskFailure({ what: `AWS STS is not activated in the region of ${r.endpoint} (${code}).`, cause: 'Regional STS endpoints must be activated per account.', fix: 'Activate STS for the region (IAM > Account settings > Security Token Service (STS) > Endpoints), or set region to one that is active.', evidence: [said], code: 'STS_RegionDisabled' });
    case 'ValidationError':
      return new TaskFailure({ what: `AWS STS refused the request (ValidationError).`, cause: /DurationSeconds/i.test(message) ? 'durationSeconds is longer than the role\'s maximum session duration.' : 'A parameter is not valid.', fix: /DurationSeconds/i.test(message) ? 'Lower durationSeconds, or raise the role\'s maximum session duration (IAM > Roles > the role > Edit).' : 'Check roleArn, roleSessionName and durationSeconds.', evidence: [said], code: 'STS_ValidationError' });
    default:
      return new TaskFailure({ what: safe`AWS STS refused AssumeRoleWithWebIdentity for ${r.roleArn} (${code}).`, cause: 'See the message from AWS below.', fix: 'Check the role, its trust policy and the identity provider.', evidence: [said, ...claimLines], code: `STS_${code}` });
  }
}
