/**
 * Google Cloud workload identity federation (protocols.md section 9): the connection's idToken goes
 * to Google's Security Token Service for a federated access token, and optionally on to the IAM
 * Credentials API to impersonate a service account. The token goes only to Google's own hosts:
 * both URLs are constants here, never taken from an input or a variable.
 */
import { PipelineContext } from '../agent/pipeline-context';
import { JwtClaims, issuerKind } from '../devops/claims';
import { explainHttpStatus, quoteServiceText, StatusAdvice, TaskFailure } from '../http/failures';
import { header } from '../http/http';
import { mask } from '../agent/variables';
import { neutralize, safe } from '../agent/output';

export const GOOGLE_STS_URL = 'https://sts.googleapis.com/v1/token';
export const GOOGLE_IAM_CREDENTIALS = 'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/';
export const GOOGLE_STS_SERVICE = 'Google Security Token Service';
export const GOOGLE_IAM_SERVICE = 'Google IAM Credentials API';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/** Google's token hosts: the only places the idToken or a Google token is ever sent. */
export function isGoogleTokenHost(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' && (u.host === 'sts.googleapis.com' || u.host === 'iamcredentials.googleapis.com');
  } catch {
    return false;
  }
}

function requireGoogleHost(url: string): string {
  if (!isGoogleTokenHost(url)) {
    throw new TaskFailure({ what: 'A token was about to go to a host that is not Google\'s token service; refused.', cause: 'A defect in the task.', fix: 'Report it.', code: 'TOKEN_HOST' });
  }
  return url;
}

export interface GcpProvider {
  /** projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider> */
  name: string;
  projectNumber: string;
  poolId: string;
  providerId: string;
}

export function principalFor(p: GcpProvider, subject: string): string {
  return `principal://iam.googleapis.com/projects/${p.projectNumber}/locations/global/workloadIdentityPools/${p.poolId}/subject/${subject}`;
}

/** What an external_account credentials file says (protocols.md section 9); nothing in it is secret. */
export function externalAccountFile(p: GcpProvider, tokenFile: string, serviceAccount?: string): Record<string, unknown> {
  return {
    type: 'external_account',
    audience: `//iam.googleapis.com/${p.name}`,
    subject_token_type: JWT_TYPE,
    token_url: GOOGLE_STS_URL,
    ...(serviceAccount ? { service_account_impersonation_url: impersonationUrl(serviceAccount) } : {}),
    credential_source: { file: tokenFile, format: { type: 'text' } },
    universe_domain: 'googleapis.com',
  };
}

/**
 * The generateAccessToken URL, with the e-mail as it is: what `gcloud iam workload-identity-pools
 * create-cred-config` writes (a plain @), which Google client libraries also read back as the
 * account's e-mail (client_email). serviceAccountInput admits only characters a URL path keeps as
 * they are (letters, digits, '-', '.', one '@').
 */
export function impersonationUrl(serviceAccount: string): string {
  return `${GOOGLE_IAM_CREDENTIALS}${serviceAccount}:generateAccessToken`;
}

export interface GoogleToken {
  token: string;
  expiresOn: Date;
}

const GOOGLE_STATUS = 'https://status.cloud.google.com';

/** Google STS's other refusals: its own errors come as 400 with an OAuth error code (explainStsError). */
const GOOGLE_STS_ADVICE: StatusAdvice = {
  unauthorized: {
    cause: 'The token exchange carries no credential but the idToken in its body, so a 401 comes from something in between: the agent\'s proxy or a gateway.',
    fix: 'Check that the agent\'s proxy lets requests to sts.googleapis.com through unchanged.',
  },
  forbidden: {
    cause: 'Google refused the exchange: the Security Token Service API is disabled in the project of the workload identity pool, or an organisation policy (VPC Service Controls, constraints/iam.workloadIdentityPoolProviders) blocks this provider.',
    fix: 'Enable the API once (gcloud services enable sts.googleapis.com --project=<the pool\'s project>) and check the organisation policies that restrict workload identity federation.',
  },
  notFound: (c) => ({
    cause: `Google does not know the workload identity provider '${c.connectionName}' (a deleted pool or provider, or a wrong project number).`,
    fix: 'Check workloadIdentityProvider: projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>, as gcloud iam workload-identity-pools providers describe shows it.',
  }),
  statusPages: GOOGLE_STATUS,
};

/** IAM Credentials' refusals other than the missing roles/iam.workloadIdentityUser binding. */
const GOOGLE_IAM_ADVICE: StatusAdvice = {
  unauthorized: {
    cause: 'Google did not accept the federated access token that its Security Token Service had just issued (the pool or provider was disabled meanwhile, or a proxy changed the request).',
    fix: 'Re-run the job; if it persists, check that the pool and provider are enabled (gcloud iam workload-identity-pools providers describe).',
  },
  forbidden: {
    cause: 'The IAM Service Account Credentials API is disabled in the service account\'s project, or an organisation policy blocks impersonation from this pool.',
    fix: 'Enable the API once (gcloud services enable iamcredentials.googleapis.com --project=<the service account\'s project>); the principal also needs roles/iam.workloadIdentityUser on the service account.',
  },
  notFound: (c) => ({
    cause: `The service account '${c.connectionName}' does not exist, or was deleted.`,
    fix: 'Check serviceAccount: its e-mail as IAM & Admin > Service Accounts shows it.',
  }),
  statusPages: GOOGLE_STATUS,
};

/** STS v1 token: the idToken for a federated access token. */
export async function exchangeIdToken(ctx: PipelineContext, p: GcpProvider, idToken: string, claims: JwtClaims): Promise<GoogleToken> {
  const body = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    audience: `//iam.googleapis.com/${p.name}`,
    scope: CLOUD_PLATFORM_SCOPE,
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    subject_token: idToken,
    subject_token_type: JWT_TYPE,
  }).toString();
  const res = await ctx.http.request({ method: 'POST', url: requireGoogleHost(GOOGLE_STS_URL), service: GOOGLE_STS_SERVICE, headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' }, body });
  if (res.status === 200) {
    const out = parseJson(res.body) as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (typeof out?.access_token !== 'string' || !out.access_token) throw noToken(GOOGLE_STS_SERVICE, res.body.length);
    mask(out.access_token);
    const seconds = typeof out.expires_in === 'number' && out.expires_in > 0 ? out.expires_in : 3600;
    return { token: out.access_token, expiresOn: new Date(Date.now() + seconds * 1000) };
  }
  const err = parseJson(res.body) as { error?: unknown; error_description?: unknown } | undefined;
  if (res.status === 400 && typeof err?.error === 'string') {
    throw explainStsError(err.error, typeof err.error_description === 'string' ? err.error_description : '', p, claims);
  }
  throw explainHttpStatus(GOOGLE_STS_SERVICE, GOOGLE_STS_URL, res.status, res.body, header(res, 'content-type'), { connectionName: p.name }, res.retryAfterTooLong, GOOGLE_STS_ADVICE);
}

/** IAM Credentials generateAccessToken: the federated token for the service account's access token. */
export async function impersonate(ctx: PipelineContext, p: GcpProvider, federated: string, serviceAccount: string, scopes: string[], lifetimeSeconds: number, claims: JwtClaims): Promise<GoogleToken> {
  const url = requireGoogleHost(impersonationUrl(serviceAccount));
  const res = await ctx.http.request({
    method: 'POST',
    url,
    service: GOOGLE_IAM_SERVICE,
    headers: { Authorization: `Bearer ${federated}`, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ scope: scopes, lifetime: `${lifetimeSeconds}s` }),
  });
  if (res.status === 200) {
    const out = parseJson(res.body) as { accessToken?: unknown; expireTime?: unknown } | undefined;
    if (typeof out?.accessToken !== 'string' || !out.accessToken) throw noToken(GOOGLE_IAM_SERVICE, res.body.length);
    mask(out.accessToken);
    const exp = typeof out.expireTime === 'string' ? Date.parse(out.expireTime) : NaN;
    return { token: out.accessToken, expiresOn: new Date(Number.isFinite(exp) ? exp : Date.now() + lifetimeSeconds * 1000) };
  }
  const err = (parseJson(res.body) as { error?: { message?: unknown; status?: unknown } } | undefined)?.error;
  const message = typeof err?.message === 'string' ? err.message : '';
  if (res.status === 403 && /iam\.serviceAccounts\.getAccessToken/.test(message)) {
    const principal = principalFor(p, claims.sub ?? '<subject>');
    return Promise.reject(
      new TaskFailure({
        what: safe`The ${GOOGLE_IAM_SERVICE} did not let the federated principal impersonate ${serviceAccount} (PERMISSION_DENIED).`,
        cause: 'The principal lacks roles/iam.workloadIdentityUser on the service account (or the service account does not exist in that project).',
        fix: 'Grant it once (IAM & Admin > Service Accounts > the account > Principals with access > Grant access), or:',
        evidence: [
          safe`  gcloud iam service-accounts add-iam-policy-binding ${serviceAccount} --role=roles/iam.workloadIdentityUser --member=${principal}`,
          safe`  Principal: ${principal}`,
          safe`  Google said: ${quoteServiceText(message)}`,
        ],
        code: 'GCP_PERMISSION_DENIED',
      }),
    );
  }
  throw explainHttpStatus(GOOGLE_IAM_SERVICE, url, res.status, res.body, header(res, 'content-type'), { connectionName: serviceAccount }, res.retryAfterTooLong, GOOGLE_IAM_ADVICE);
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

function noToken(service: string, bytes: number): TaskFailure {
  return new TaskFailure({ what: `${service} answered without a token (${bytes} bytes).`, cause: 'A proxy altered the answer.', fix: 'Check the agent\'s proxy; re-run the job.', code: 'GCP_NO_TOKEN' });
}

function audience(c: JwtClaims): string {
  return Array.isArray(c.aud) ? c.aud.join(', ') : c.aud ?? '';
}

/** The gcloud command that updates the provider (its flags), for a fix line. */
function updateProvider(p: GcpProvider, flags: string): string {
  return `  gcloud iam workload-identity-pools providers update-oidc ${p.providerId} --project=${p.projectNumber} --location=global --workload-identity-pool=${p.poolId} ${flags}`;
}

export function explainStsError(error: string, description: string, p: GcpProvider, c: JwtClaims): TaskFailure {
  const said = safe`  Google said: ${error}: ${quoteServiceText(description)}`;
  const claimLines = [safe`  Token issuer (iss):   ${c.iss ?? '(none)'}`, safe`  Token subject (sub):  ${c.sub ?? '(none)'}`, safe`  Token audience (aud): ${audience(c) || '(none)'}`];
  const issuerNote =
    issuerKind(c.iss) === 'vstoken'
      ? 'This connection uses the Azure DevOps issuer (vstoken.dev.azure.com/<organization id>); once it is converted to the Entra issuer, the issuer URI becomes https://login.microsoftonline.com/<tenant id>/v2.0 and the provider must be updated again.'
      : issuerKind(c.iss) === 'entra'
        ? 'This connection uses the Entra issuer (login.microsoftonline.com/<tenant id>/v2.0); a provider made for the older issuer (https://vstoken.dev.azure.com/<organization id>) does not match it.'
        : '';
  if (error === 'invalid_target') {
    return new TaskFailure({
      what: safe`${GOOGLE_STS_SERVICE} does not know the workload identity provider ${p.name} (invalid_target).`,
      cause: 'The pool or the provider does not exist, is disabled, or was deleted (a deleted one can be undeleted for 30 days); or the project number is wrong (it is the number, not the project id).',
      fix: 'Check workloadIdentityProvider against IAM & Admin > Workload Identity Federation; enable or undelete the pool and the provider, or:',
      evidence: [`  gcloud iam workload-identity-pools providers describe ${p.providerId} --project=${p.projectNumber} --location=global --workload-identity-pool=${p.poolId}`, said],
      code: 'GCP_invalid_target',
    });
  }
  if (error === 'unauthorized_client') {
    return new TaskFailure({
      what: safe`${GOOGLE_STS_SERVICE} rejected the connection's idToken: the provider's attribute condition does not accept it (unauthorized_client).`,
      cause: 'The attribute condition of the provider does not match this token\'s claims (the subject changes when the organization, project or connection is renamed).',
      fix: 'Correct the attribute condition; one that accepts exactly this connection:',
      evidence: [safe`  assertion.sub == '${c.sub ?? ''}'`, updateProvider(p, neutralize(`--attribute-condition="assertion.sub == '${c.sub ?? ''}'"`)), ...claimLines, said],
      code: 'GCP_unauthorized_client',
    });
  }
  if (error === 'invalid_grant' && /audience/i.test(description)) {
    return new TaskFailure({
      what: safe`${GOOGLE_STS_SERVICE} rejected the idToken's audience for ${p.name} (invalid_grant).`,
      cause: 'The provider\'s allowed audiences do not list api://AzureADTokenExchange, the audience of every Azure DevOps idToken (with no allowed audiences Google accepts only the provider\'s own URL).',
      fix: 'Add the audience to the provider (Workload Identity Federation > the provider > Edit > Audiences > Allowed audiences), or:',
      evidence: [updateProvider(p, '--allowed-audiences=api://AzureADTokenExchange'), ...claimLines, said],
      code: 'GCP_audience',
    });
  }
  if (error === 'invalid_grant' && /issuer/i.test(description)) {
    return new TaskFailure({
      what: safe`${GOOGLE_STS_SERVICE} rejected the idToken's issuer for ${p.name} (invalid_grant).`,
      cause: `The provider's issuer URI is not the token's issuer. ${issuerNote}`.trim(),
      fix: safe`Set the provider's issuer URI to ${c.iss ?? '(the token issuer)'} (Workload Identity Federation > the provider > Edit > Issuer (URL)), or:`,
      evidence: [updateProvider(p, neutralize(`--issuer-uri=${c.iss ?? '<issuer>'}`)), safe`  Issuer URI to configure: ${c.iss ?? '(none)'}`, ...claimLines, said],
      code: 'GCP_issuer',
    });
  }
  if (error === 'invalid_grant' && /expired|stale/i.test(description)) {
    return new TaskFailure({
      what: `${GOOGLE_STS_SERVICE} refused the idToken as expired (invalid_grant).`,
      cause: 'The idToken lives about 10 minutes; it expired before it reached Google, or the agent\'s clock is wrong.',
      fix: 'Re-run the step; for long jobs keep createCredentialsFile and keepTokenFileFresh on, so Google clients fetch tokens themselves.',
      evidence: [...claimLines, said],
      code: 'GCP_expired',
    });
  }
  return new TaskFailure({
    what: safe`${GOOGLE_STS_SERVICE} refused the token exchange for ${p.name} (${error}).`,
    cause: 'See Google\'s message below.',
    fix: 'Compare the provider\'s issuer, allowed audiences, attribute mapping and condition with the token\'s claims below.',
    evidence: [...claimLines, said],
    code: `GCP_${error.replace(/\W/g, '')}`,
  });
}
