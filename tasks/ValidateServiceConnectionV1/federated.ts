/**
 * ValidateServiceConnection@1 for the extension's own connection types (WorkloadIdentityAws,
 * WorkloadIdentityGcp, WorkloadIdentityOidc): the connection's settings, its record in Azure DevOps,
 * the idToken (with the issuer it carries), and the target's exchange where there is one (AWS STS,
 * Google STS and IAM Credentials), each a row; a refusal's row carries the exact trust to configure
 * (the IAM OIDC provider and trust policy, the gcloud commands). Every check is independent: one
 * failing stops none of the others. Credentials a target issues are masked and never kept: no
 * variable is set and nothing but their expiry is shown.
 */
import { PipelineContext } from '../core/agent/pipeline-context';
import { FederatedEndpoint } from '../core/devops/federated-endpoint';
import { endpointRow, failureLines, guarded, Row, RowDetail, ValidationResult } from '../core/azure/validation';
import { IdToken, OidcTokenClient } from '../core/devops/oidc-token';
import { audienceText, describeIdToken, issuerKind, JwtClaims } from '../core/devops/claims';
import { assumeRoleWithWebIdentity } from '../core/aws/sts';
import { awsTrustFix, EXCHANGE_AUDIENCE } from '../core/aws/trust';
import { exchangeIdToken, GcpProvider, impersonate, CLOUD_PLATFORM_SCOPE, principalFor } from '../core/google/gcp';
import { gcpTrustFix } from '../core/google/trust';
import { isAwsStsHost } from '../core/http/token-hosts';
import { TaskFailure } from '../core/http/failures';
import { neutralize, safe } from '../core/agent/output';
import { REGION, ROLE_ARN } from '../core/aws/names';
import { PROJECT_ID, PROVIDER, SERVICE_ACCOUNT } from '../core/google/names';

export const JWKS_URL = 'https://vstoken.dev.azure.com/.well-known/jwks';

/**
 * Issuer honesty (issue 20, point 4): what is known of the future of the issuer these connections'
 * idTokens carry. Microsoft announced the retirement (2027-07-01) of the Azure DevOps issuer for
 * Azure Resource Manager connections backed by Microsoft Entra ID; nothing is announced for
 * connections of other types. No date is invented here.
 */
export const ISSUER_STATEMENT =
  'Connections of this type get idTokens from the Azure DevOps issuer (vstoken.dev.azure.com/<organization id>). The retirement announced by Microsoft for 2027-07-01 concerns the issuer of Azure Resource Manager connections (backed by Microsoft Entra ID); nothing is announced for connections of other types, so this issuer stays what the target must trust until Azure DevOps says otherwise.';

/** The shortest session STS grants: a validation keeps nothing, so it asks for no more. */
const VALIDATION_SESSION_SECONDS = 900;

interface AwsSettings {
  roleArn: string;
  endpoint: string;
}

interface GcpSettings {
  provider: GcpProvider;
  serviceAccount?: string;
}

interface SettingsCheck<T> {
  row: Row;
  settings?: T;
}

const EDIT = 'Edit the connection (Project settings > Service connections > the connection > Edit) and correct the settings named.';

function settingsRow(label: string, shown: string[], problems: string[], warnings: string[]): Row {
  const check = 'Connection settings';
  if (problems.length) return { check, status: 'fail', summary: `${label}: ${problems.join('; ')}.`, evidence: shown, fix: EDIT };
  if (warnings.length) return { check, status: 'warning', summary: `${label}: ${warnings.join('; ')}.`, evidence: shown, fix: 'Make sure the settings named are meant; the idToken is sent there.' };
  return { check, status: 'pass', summary: `${label}: the settings are valid.`, evidence: shown };
}

export function checkAwsSettings(e: FederatedEndpoint): SettingsCheck<AwsSettings> {
  const p = e.parameters;
  const problems: string[] = [];
  const warnings: string[] = [];
  const shown = [safe`Role ARN: ${p.roleArn ?? '(none)'}`, safe`Region: ${p.region ?? 'us-east-1 (default)'}`];
  if (!p.roleArn) problems.push('no role ARN (required)');
  else if (!ROLE_ARN.test(p.roleArn)) problems.push(safe`role ARN '${p.roleArn}' is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)`);
  const region = (p.region ?? 'us-east-1').toLowerCase();
  if (!REGION.test(region)) problems.push(safe`region '${p.region}' is not an AWS region code (e.g. us-east-1)`);
  if (p.maxSessionDuration !== undefined) {
    shown.push(safe`Maximum session duration: ${p.maxSessionDuration} s`);
    const n = Number(p.maxSessionDuration);
    if (!/^\d+$/.test(p.maxSessionDuration) || n < 900 || n > 43200) problems.push(safe`maximum session duration '${p.maxSessionDuration}' is not a whole number of seconds from 900 to 43200`);
  }
  let endpoint = `https://sts.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}/`;
  if (p.stsEndpoint !== undefined) {
    shown.push(safe`STS endpoint: ${p.stsEndpoint}`);
    let u: URL | undefined;
    try {
      u = new URL(p.stsEndpoint);
    } catch {
      u = undefined;
    }
    if (!u) problems.push(safe`STS endpoint '${p.stsEndpoint}' is not a URL`);
    else if (u.protocol !== 'https:') problems.push(safe`STS endpoint '${p.stsEndpoint}' is not https (the idToken is a credential)`);
    else {
      endpoint = u.href.endsWith('/') ? u.href : `${u.href}/`;
      if (!isAwsStsHost(u.hostname)) warnings.push(safe`the STS endpoint's host ${u.host} is not an AWS STS host (sts.<region>.amazonaws.com, a FIPS, dual-stack or VPC endpoint)`);
    }
  }
  const row = settingsRow('AWS (workload identity federation)', shown, problems, warnings);
  return { row, settings: problems.length ? undefined : { roleArn: p.roleArn!, endpoint } };
}

export function checkGcpSettings(e: FederatedEndpoint): SettingsCheck<GcpSettings> {
  const p = e.parameters;
  const problems: string[] = [];
  const shown = [safe`Workload identity provider: ${p.workloadIdentityProvider ?? '(none)'}`, safe`Service account: ${p.serviceAccount ?? '(none: direct resource access)'}`];
  if (p.projectId) shown.push(safe`Project id: ${p.projectId}`);
  let provider: GcpProvider | undefined;
  if (!p.workloadIdentityProvider) problems.push('no workload identity provider (required)');
  else {
    const name = p.workloadIdentityProvider.replace(/^(https:)?\/\/iam\.googleapis\.com\//, '');
    const m = PROVIDER.exec(name);
    if (m) provider = { name, projectNumber: m[1], poolId: m[2], providerId: m[3] };
    else problems.push(safe`workload identity provider '${p.workloadIdentityProvider}' is not a provider's resource name (projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>)${/^projects\/[a-z]/.test(name) ? '; it takes the project number, not the project id' : ''}`);
  }
  if (p.serviceAccount !== undefined && !SERVICE_ACCOUNT.test(p.serviceAccount)) problems.push(safe`service account '${p.serviceAccount}' is not a service account e-mail (<name>@<project>.iam.gserviceaccount.com)`);
  if (p.projectId !== undefined && !PROJECT_ID.test(p.projectId)) problems.push(safe`project id '${p.projectId}' is not a Google Cloud project id`);
  const row = settingsRow('Google Cloud (workload identity federation)', shown, problems, []);
  return { row, settings: problems.length || !provider ? undefined : { provider, serviceAccount: p.serviceAccount } };
}

export function checkOidcSettings(e: FederatedEndpoint): SettingsCheck<{ url: string }> {
  const problems: string[] = [];
  const shown = [safe`Service URL: ${e.url ?? '(none)'}`];
  if (e.parameters.description) shown.push(safe`Description: ${e.parameters.description}`);
  let u: URL | undefined;
  try {
    u = e.url ? new URL(e.url) : undefined;
  } catch {
    u = undefined;
  }
  if (!e.url) problems.push('no service URL (required)');
  else if (!u) problems.push(safe`service URL '${e.url}' is not a URL`);
  else if (u.protocol !== 'https:') problems.push(safe`service URL '${e.url}' is not https`);
  const row = settingsRow('OpenID Connect (workload identity federation)', shown, problems, []);
  return { row, settings: problems.length ? undefined : { url: e.url! } };
}

/** The idToken's row: the claims, the issuer it carries and what is known of that issuer's future. */
function idTokenRow(t: IdToken, now: number): Row {
  const c = t.claims;
  const evidence = [...describeIdToken(c, now).map((l) => l.trim()), ISSUER_STATEMENT];
  const problems: string[] = [];
  const kind = issuerKind(c.iss);
  if (kind !== 'vstoken') problems.push(safe`the issuer '${c.iss ?? '(none)'}' is not the Azure DevOps issuer (https://vstoken.dev.azure.com/<organization id>) these connections get`);
  const aud = Array.isArray(c.aud) ? c.aud : [c.aud ?? ''];
  if (!aud.includes(EXCHANGE_AUDIENCE)) problems.push(safe`the audience is '${audienceText(c.aud)}', not ${EXCHANGE_AUDIENCE}`);
  if (!/^sc:\/\//.test(c.sub ?? '')) problems.push(safe`the subject '${c.sub ?? '(none)'}' is not of the form sc://<organization>/<project>/<connection>`);
  const left = typeof c.exp === 'number' ? c.exp * 1000 - now : undefined;
  if (left !== undefined && left <= 0) problems.push('the token has already expired');
  const issuerText = kind === 'vstoken' ? safe`issuer ${c.iss} (Azure DevOps)` : safe`issuer ${c.iss ?? '(none)'}`;
  if (problems.length) {
    return { check: 'idToken', status: left !== undefined && left <= 0 ? 'fail' : 'warning', summary: `Fetched (${issuerText}); ${problems.join('; ')}.`, evidence, fix: 'Check the agent\'s clock and re-run the job; if it persists, compare the claims below with what the target trusts.' };
  }
  return { check: 'idToken', status: 'pass', summary: `Fetched: ${issuerText}, subject ${neutralize(c.sub)}, audience ${neutralize(audienceText(c.aud))}, valid for ${left !== undefined ? Math.round(left / 1000) : '?'} s.`, evidence };
}

function skipped(check: string, why: string): Row {
  return { check, status: 'skipped', summary: why, evidence: [] };
}

function failed(check: string, e: unknown, details: RowDetail[] = []): Row {
  const f = failureLines(e);
  return { check, status: 'fail', summary: f.summary, evidence: f.evidence, fix: f.fix, ...(details.length ? { details } : {}) };
}

/** A failure that is not a finding about the trust (the network, a service down): the check could not run. */
function notRun(check: string, e: unknown): Row {
  const f = failureLines(e);
  return { check, status: 'skipped', summary: `Could not run: ${f.summary}`, evidence: f.evidence, fix: f.fix ?? 'Re-run the job.', notRun: true };
}

function awsDetails(roleArn: string, claims: JwtClaims): RowDetail[] {
  const f = awsTrustFix(roleArn, claims);
  return [
    {
      title: `the IAM OIDC identity provider in account ${f.account}`,
      language: 'sh',
      lines: [
        `# IAM > Identity providers > Add provider > OpenID Connect: provider URL https://${f.providerUrl}, audience ${f.audience}`,
        f.createProviderCommand,
      ],
    },
    { title: 'the role\'s trust policy (IAM > Roles > the role > Trust relationships > Edit trust policy)', language: 'json', lines: f.trustPolicy.split('\n') },
  ];
}

const AWS_TRUST_CODES = new Set(['STS_InvalidIdentityToken', 'STS_AccessDenied', 'STS_IDPRejectedClaim']);

async function awsRow(ctx: PipelineContext, s: AwsSettings, t: IdToken): Promise<Row> {
  const check = 'AWS STS AssumeRoleWithWebIdentity';
  try {
    const creds = await assumeRoleWithWebIdentity(ctx, { endpoint: s.endpoint, roleArn: s.roleArn, roleSessionName: 'azure-devops-validation', durationSeconds: VALIDATION_SESSION_SECONDS, webIdentityToken: t.token, claims: t.claims });
    return {
      check,
      status: 'pass',
      summary: safe`Assumed ${creds.assumedRoleArn || s.roleArn} (${s.endpoint}); the temporary credentials, valid until ${creds.expiration}, were masked and not kept.`,
      evidence: [safe`Provider: ${creds.provider ?? awsTrustFix(s.roleArn, t.claims).providerUrl}`, safe`Subject: ${creds.subject ?? t.claims.sub ?? ''}`],
    };
  } catch (e) {
    if (e instanceof TaskFailure && AWS_TRUST_CODES.has(e.code ?? '')) return failed(check, e, awsDetails(s.roleArn, t.claims));
    if (e instanceof TaskFailure && /^STS_/.test(e.code ?? '')) return failed(check, e);
    return notRun(check, e);
  }
}

/** Google's refusals that are about the trust: the provider's issuer, audience or condition, or the binding. */
const GCP_TRUST_CODES = new Set(['GCP_audience', 'GCP_issuer', 'GCP_unauthorized_client', 'GCP_invalid_target', 'GCP_invalid_grant']);

function gcpProviderDetail(s: GcpSettings, claims: JwtClaims): RowDetail {
  const f = gcpTrustFix(s.provider, claims, s.serviceAccount);
  return {
    title: `the pool provider (workload identity pool ${s.provider.poolId} of project ${s.provider.projectNumber})`,
    language: 'sh',
    lines: ['# A provider that exists already: the same flags with update-oidc.', f.providerCommand],
  };
}

function gcpBindingDetail(s: GcpSettings, claims: JwtClaims): RowDetail | undefined {
  const f = gcpTrustFix(s.provider, claims, s.serviceAccount);
  return f.bindingCommand ? { title: safe`the service account binding (${s.serviceAccount})`, language: 'sh', lines: [f.bindingCommand] } : undefined;
}

async function gcpRows(ctx: PipelineContext, s: GcpSettings, t: IdToken): Promise<Row[]> {
  const sts = 'Google STS exchange';
  const iam = 'Service account impersonation';
  let federated;
  try {
    federated = await exchangeIdToken(ctx, s.provider, t.token, t.claims);
  } catch (e) {
    const binding = gcpBindingDetail(s, t.claims);
    const row = e instanceof TaskFailure && (GCP_TRUST_CODES.has(e.code ?? '') || /^GCP_/.test(e.code ?? ''))
      ? failed(sts, e, [gcpProviderDetail(s, t.claims), ...(binding ? [binding] : [])])
      : notRun(sts, e);
    return [row, skipped(iam, s.serviceAccount ? 'Not run: it needs the federated token, which the STS exchange did not give (see that row).' : 'No service account is set: the federated principal accesses resources directly.')];
  }
  const rows: Row[] = [{ check: sts, status: 'pass', summary: safe`Federated access token from ${s.provider.name}, valid until ${federated.expiresOn.toISOString()} (masked, not kept).`, evidence: [safe`Principal: ${principalFor(s.provider, t.claims.sub ?? '')}`] }];
  if (!s.serviceAccount) {
    rows.push(skipped(iam, safe`No service account is set: the federated principal ${principalFor(s.provider, t.claims.sub ?? '')} accesses resources directly (grant it roles on them).`));
    return rows;
  }
  try {
    const token = await impersonate(ctx, s.provider, federated.token, s.serviceAccount, [CLOUD_PLATFORM_SCOPE], 600, t.claims);
    rows.push({ check: iam, status: 'pass', summary: safe`Access token of ${s.serviceAccount}, valid until ${token.expiresOn.toISOString()} (masked, not kept).`, evidence: [] });
  } catch (e) {
    const binding = gcpBindingDetail(s, t.claims);
    rows.push(e instanceof TaskFailure && e.code === 'GCP_PERMISSION_DENIED' ? failed(iam, e, binding ? [binding] : []) : e instanceof TaskFailure && e.details.what.includes('Google') ? failed(iam, e) : notRun(iam, e));
  }
  return rows;
}

function oidcRow(url: string | undefined, t: IdToken): Row {
  const c = t.claims;
  const iss = c.iss ?? '(none)';
  const sub = c.sub ?? '(none)';
  const aud = audienceText(c.aud);
  return {
    check: 'Relying party',
    status: 'pass',
    summary: `What the service${url ? safe` at ${url}` : ''} must trust (not called: its API is not known to this task): issuer ${neutralize(iss)}, audience ${neutralize(aud)}, subject ${neutralize(sub)}.`,
    evidence: [
      safe`Issuer (iss): ${iss}`,
      `JWKS URL: ${JWKS_URL} (shared by every organisation: the verifier must check iss too)`,
      safe`Audience (aud): ${aud}`,
      safe`Subject (sub): ${sub} (changes when the organisation, project or connection is renamed)`,
    ],
    details: [
      {
        title: 'what to configure at the relying party',
        lines: [
          `issuer:          ${iss}`,
          `jwks_url:        ${JWKS_URL}   (one key set for every organisation: bind the issuer too)`,
          `audience:        ${aud}`,
          `subject binding: sub == ${sub}`,
        ],
      },
    ],
  };
}

/** Every check of a connection of the extension's own types; never throws. */
export async function validateFederatedEndpoint(ctx: PipelineContext, e: FederatedEndpoint, now: () => number = Date.now): Promise<ValidationResult> {
  const rows: Row[] = [];
  const aws = e.type === 'aws' ? checkAwsSettings(e) : undefined;
  const gcp = e.type === 'gcp' ? checkGcpSettings(e) : undefined;
  const oidc = e.type === 'oidc' ? checkOidcSettings(e) : undefined;
  const settings = aws ?? gcp ?? oidc;
  if (settings) rows.push(settings.row);

  // The record in Azure DevOps and the idToken do not depend on each other: both leave at once.
  const endpointPending = endpointRow(ctx, e);
  const tokenPending = new OidcTokenClient(ctx, e).fetch().then((t): { t: IdToken } | { e: unknown } => ({ t }), (err: unknown) => ({ e: err }));
  const { row: epRow, endpoint } = await endpointPending;
  rows.push(epRow);
  const fetched = await tokenPending;
  let token: IdToken | undefined;
  if ('t' in fetched) {
    token = fetched.t;
    const t = token;
    rows.push(...(await guarded('idToken', async () => [idTokenRow(t, now())], 'Fetched, but could not be checked')));
  } else {
    rows.push(failed('idToken', fetched.e));
  }

  const noToken = 'Not run: there is no idToken to present (see the idToken row).';
  const badSettings = 'Not run: the connection\'s settings are not valid (see the Connection settings row).';
  if (aws) {
    const check = 'AWS STS AssumeRoleWithWebIdentity';
    if (!aws.settings) rows.push(skipped(check, badSettings));
    else if (!token) rows.push(skipped(check, noToken));
    else {
      const s = aws.settings;
      const t = token;
      rows.push(...(await guarded(check, async () => [await awsRow(ctx, s, t)])));
    }
  }
  if (gcp) {
    if (!gcp.settings) rows.push(skipped('Google STS exchange', badSettings), skipped('Service account impersonation', badSettings));
    else if (!token) rows.push(skipped('Google STS exchange', noToken), skipped('Service account impersonation', noToken));
    else {
      const s = gcp.settings;
      const t = token;
      rows.push(...(await guarded('Google STS exchange', () => gcpRows(ctx, s, t))));
    }
  }
  if (oidc) {
    if (!token) rows.push(skipped('Relying party', noToken));
    else rows.push(oidcRow(oidc.settings?.url ?? e.url, token));
  }

  const status = rows.some((r) => r.status === 'fail') ? 'error' : rows.some((r) => r.status === 'warning') ? 'warning' : 'ok';
  return { rows, endpoint, status };
}
