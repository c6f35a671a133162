/**
 * The checks of a service connection, in order, each a row: pass, warning, fail or skipped, with
 * its evidence and the fix. Each check is independent: whatever stops one (a refusal, a timeout, a
 * DNS or TLS failure, a 5xx after the retries, an unexpected error) becomes that check's row,
 * naming the permission where it is one, and the other checks still run. Nothing here throws.
 */
import crypto = require('node:crypto');
import { Connection, conversionAdvice, describeScheme } from '../devops/connection';
import { PipelineContext } from '../agent/pipeline-context';
import { lookupServiceEndpoint, ServiceEndpointInfo } from '../devops/service-endpoint';
import { OidcTokenClient, IdToken } from '../devops/oidc-token';
import { acquireAccessToken, AccessToken, loadMsalWhile } from './entra';
import { audienceText, describeIdToken, issuerKind, VSTOKEN_RETIREMENT, vstokenRetirementApplies } from '../devops/claims';
import { quoteServiceText, TaskFailure } from '../http/failures';
import { debug, failureMessage, neutralize, safe } from '../agent/output';
import { getPermissions, getRoleDefinition, getSubscription, missingActions, Permission } from './arm';
import { getApplicationCredentials, graphScope, graphUrl } from './graph';

export type RowStatus = 'pass' | 'warning' | 'fail' | 'skipped';

export interface Link {
  title: string;
  url: string;
}

export interface Row {
  check: string;
  status: RowStatus;
  /** One line for the log. */
  summary: string;
  /** Further lines for the build summary. */
  evidence: string[];
  fix?: string;
  links?: Link[];
  /** Set when the check could not run (a failure on the way, not a finding): the verdict says so. */
  notRun?: boolean;
  /**
   * Multi-line text to paste (a trust policy, commands): shown after the summary's table, each in a
   * code block (a table cell cannot hold one), and in the log after the row's line.
   */
  details?: RowDetail[];
}

export interface RowDetail {
  title: string;
  /** The code block's language (json, sh), or none. */
  language?: string;
  lines: string[];
}

export interface ValidationOptions {
  scope?: string;
  requiredRoles: string[];
  secretExpiryWarningDays: number;
  /** The connection's Resource Manager URL (its endpoint URL). */
  armUrl: string;
  /** The audience of Resource Manager tokens. */
  armResource: string;
  /** The connection's scope level (Subscription, ResourceGroup, ManagementGroup, ...). */
  scopeLevel?: string;
}

export interface ValidationResult {
  rows: Row[];
  endpoint?: ServiceEndpointInfo;
  status: 'ok' | 'warning' | 'error';
}

const DAY = 86_400_000;

export function failureLines(e: unknown): { summary: string; evidence: string[]; fix?: string } {
  if (e instanceof TaskFailure) {
    // Rebuilt from the details, each made one line, so a service's line break cannot shift them.
    const lines = failureMessage(e).split('\n');
    const fix = lines.find((l) => l.startsWith('Fix: '))?.slice(5);
    return { summary: lines[0], evidence: lines.slice(1).filter((l) => !l.startsWith('Fix: ')), fix };
  }
  debug(neutralize((e as Error)?.stack ?? String(e)));
  return { summary: `an unexpected error: ${neutralize((e as Error)?.message ?? String(e))}`, evidence: [], fix: 'Re-run with the variable system.debug=true and report the log (without secrets) to the extension\'s issue tracker.' };
}

/** A failed check's row from whatever it threw: what failed, its evidence and its fix. */
export function failureRow(check: string, e: unknown): Row {
  const f = failureLines(e);
  return { check, status: 'fail', summary: f.summary, evidence: f.evidence, fix: f.fix };
}

/** The row of a check that a failure stopped: skipped, saying why and what to do. */
function notRunRow(check: string, e: unknown, lead = 'Could not run'): Row {
  const f = failureLines(e);
  return { check, status: 'skipped', summary: `${lead}: ${f.summary}`, evidence: f.evidence, fix: f.fix ?? 'Re-run the job.', notRun: true };
}

/** Runs one check; whatever it throws becomes its row, so the other checks still run. */
export async function guarded(check: string, run: () => Promise<Row[]>, lead?: string): Promise<Row[]> {
  try {
    return await run();
  } catch (e) {
    return [notRunRow(check, e, lead)];
  }
}

/** A service's answer that was not a finding: throttled or failing after the retries. */
function unavailable(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/** ' (2 attempts)' where the HTTP layer retried, for a failing service's row. */
function attemptsText(attempts: number | undefined): string {
  return attempts && attempts > 1 ? ` (${attempts} attempts)` : '';
}

const RETRY_LATER = 'Re-run the job later; if it persists, check https://azure.status.microsoft and the agent\'s network.';

export function portalLinks(conn: Connection, ctx: PipelineContext): Link[] {
  const links: Link[] = [];
  if (ctx.collectionUri && (ctx.teamProject || ctx.teamProjectId)) {
    links.push({ title: 'Service connection in Azure DevOps', url: `${ctx.collectionUri}${encodeURIComponent(ctx.teamProject || ctx.teamProjectId)}/_settings/adminservices?resourceId=${encodeURIComponent(conn.id)}` });
  }
  if (conn.clientId && conn.scheme !== 'ManagedServiceIdentity') {
    links.push({ title: 'App registration: credentials', url: `https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/${conn.clientId}` });
  }
  return links;
}

function schemeRow(conn: Connection): Row {
  if (conn.scheme === 'WorkloadIdentityFederation') {
    return { check: 'Scheme', status: 'pass', summary: 'Workload identity federation: no secret to expire or rotate.', evidence: [] };
  }
  const advice = conversionAdvice(conn);
  if (advice) {
    return {
      check: 'Scheme',
      status: 'warning',
      summary: `${describeScheme(conn.scheme)}: a stored ${conn.scheme === 'ServicePrincipalSecret' ? 'client secret' : 'certificate'} that expires (client secrets made by Azure DevOps last 2 years and are rotated automatically only while the connection's creator can do it).`,
      evidence: [],
      fix: 'Convert to workload identity federation: Project settings > Service connections > the connection > "Convert" (or create a new Azure Resource Manager connection with workload identity federation).',
    };
  }
  return { check: 'Scheme', status: 'pass', summary: `${describeScheme(conn.scheme)}: no stored secret (the agent's managed identity).`, evidence: [] };
}

/** The connection as Azure DevOps records it (isReady, operationStatus): any type of connection, by its id. */
export async function endpointRow(ctx: PipelineContext, conn: { id: string }): Promise<{ row: Row; endpoint?: ServiceEndpointInfo }> {
  try {
    return await endpointRowUnguarded(ctx, conn);
  } catch (e) {
    const f = failureLines(e);
    return { row: { check: 'Connection in Azure DevOps', status: 'warning', summary: `Could not read the connection from Azure DevOps: ${f.summary.replace(/\.$/, '')}; the other checks still run.`, evidence: f.evidence, fix: f.fix, notRun: true } };
  }
}

async function endpointRowUnguarded(ctx: PipelineContext, conn: { id: string }): Promise<{ row: Row; endpoint?: ServiceEndpointInfo }> {
  const check = 'Connection in Azure DevOps';
  let lookup;
  try {
    lookup = await lookupServiceEndpoint(ctx, conn.id);
  } catch (e) {
    const f = failureLines(e);
    return { row: { check, status: 'warning', summary: `Could not read the connection from Azure DevOps: ${f.summary.replace(/\.$/, '')}; the other checks still run.`, evidence: f.evidence, fix: f.fix, notRun: true } };
  }
  if (!lookup.ok) {
    const denied = lookup.status === 401 || lookup.status === 403 || lookup.status === 203;
    const failing = lookup.status !== undefined && unavailable(lookup.status);
    return {
      row: {
        check,
        status: 'warning',
        summary: failing
          ? `Azure DevOps could not give the connection's details (${lookup.reason}${lookup.attempts && lookup.attempts > 1 ? `, ${lookup.attempts} attempts` : ''}); the other checks still run.`
          : `Azure DevOps did not let this job read the connection's details (${lookup.reason}); the other checks still run.`,
        evidence: [],
        fix: denied
          ? 'Give the pipeline\'s build service identity (e.g. "<project> Build Service (<organization>)") the Reader role on this connection: Project settings > Service connections > the connection > Security.'
          : failing
            ? 'Re-run the job later; if it persists, check https://status.dev.azure.com and the agent\'s network.'
            : 'Re-run the job; check the connection id.',
        notRun: true,
      },
    };
  }
  const e = lookup.endpoint;
  const evidence: string[] = [];
  if (e.federationIssuer) evidence.push(safe`Issuer the federated credential must have: ${e.federationIssuer}`);
  if (e.federationSubject) evidence.push(safe`Subject the federated credential must have: ${e.federationSubject}`);
  const state = e.operationStatus?.state;
  if (e.isReady === false || /fail/i.test(state ?? '')) {
    const raw = e.operationStatus?.statusMessage;
    const message = typeof raw === 'string' ? neutralize(quoteServiceText(raw)) : '';
    return {
      endpoint: e,
      row: {
        check,
        status: 'fail',
        summary: `The connection is not ready (state: ${neutralize(state ?? 'unknown')})${message ? `: ${message}` : ''}`,
        evidence: [...(e.createdBy?.displayName ? [safe`Created by: ${e.createdBy.displayName}` + (e.createdBy.uniqueName ? safe` (${e.createdBy.uniqueName})` : '')] : []), ...evidence],
        fix: /rotat/i.test(message)
          ? `Azure DevOps could not rotate the connection's secret, typically because the connection's creator${e.createdBy?.displayName ? safe` (${e.createdBy.displayName})` : ''} has left the organization or lacks rights in Microsoft Graph. Convert the connection to workload identity federation (no secret to rotate), or create a new service connection with the same settings and re-run the pipeline.`
          : 'Open the connection in Project settings > Service connections, fix what it reports, and save it again (or convert it to workload identity federation).',
      },
    };
  }
  return { endpoint: e, row: { check, status: 'pass', summary: `Ready${e.name ? safe`: '${e.name}'` : ''}${e.createdBy?.displayName ? safe`, created by ${e.createdBy.displayName}` : ''}.`, evidence } };
}

function idTokenRow(t: IdToken, endpoint: ServiceEndpointInfo | undefined, conn: Connection, now: number): Row {
  const c = t.claims;
  const evidence = describeIdToken(c, now).map((l) => l.trim());
  const problems: { status: RowStatus; text: string; fix: string }[] = [];
  if (endpoint?.federationIssuer && endpoint.federationIssuer !== c.iss) {
    problems.push({ status: 'fail', text: safe`issuer '${c.iss}' differs from the connection's issuer '${endpoint.federationIssuer}'`, fix: 'Re-save the connection in Azure DevOps so its issuer and the tokens agree, then update the federated credential.' });
  }
  if (endpoint?.federationSubject && endpoint.federationSubject !== c.sub) {
    problems.push({ status: 'fail', text: safe`subject '${c.sub}' differs from the connection's subject '${endpoint.federationSubject}'`, fix: 'Re-save the connection, then copy its subject into the federated credential.' });
  }
  const kind = issuerKind(c.iss);
  const subKind = /^sc:\/\//.test(c.sub ?? '') ? 'vstoken' : /^\/eid1\//.test(c.sub ?? '') ? 'entra' : 'other';
  if (kind !== 'other' && subKind !== 'other' && kind !== subKind) {
    problems.push({ status: 'warning', text: `the subject's format (${subKind}) does not go with the issuer (${kind})`, fix: 'Re-save the connection so that Azure DevOps issues a consistent issuer and subject.' });
  }
  if (vstokenRetirementApplies(c.iss, conn.cloud.name)) {
    problems.push({
      status: 'warning',
      text: VSTOKEN_RETIREMENT,
      fix: 'Move the connection to the Entra issuer (edit and save it in Azure DevOps, which offers the new issuer and subject), then update the app\'s federated credential with the new issuer and subject.',
    });
  }
  const aud = Array.isArray(c.aud) ? c.aud : [c.aud ?? ''];
  if (kind === 'vstoken' && !aud.includes('api://AzureADTokenExchange')) {
    problems.push({ status: 'warning', text: safe`the audience is '${audienceText(c.aud)}', not api://AzureADTokenExchange`, fix: 'Check the federated credential\'s audience: it must equal the token\'s.' });
  }
  const left = typeof c.exp === 'number' ? c.exp * 1000 - now : undefined;
  if (left !== undefined && left < 60_000) {
    problems.push({ status: left <= 0 ? 'fail' : 'warning', text: left <= 0 ? 'the token has already expired' : `the token expires in ${Math.round(left / 1000)} s`, fix: 'Check the agent\'s clock; re-run the job.' });
  }
  const worst = problems.some((p) => p.status === 'fail') ? 'fail' : problems.length ? 'warning' : 'pass';
  return {
    check: 'idToken',
    status: worst,
    summary: problems.length ? `Fetched; ${problems.map((p) => p.text).join('; ')}.` : `Fetched: issuer and subject match the connection, audience ${neutralize(audienceText(c.aud))}, valid for ${left !== undefined ? Math.round(left / 1000) : '?'} s.`,
    evidence,
    fix: problems.length ? problems.map((p) => p.fix).join(' ') : undefined,
  };
}

function skipped(check: string, why: string): Row {
  return { check, status: 'skipped', summary: why, evidence: [] };
}

function certificateThumbprint(pem: string | undefined): string | undefined {
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem ?? '');
  if (!m) return undefined;
  try {
    return new crypto.X509Certificate(m[0]).fingerprint.replace(/:/g, '').toUpperCase();
  } catch {
    return undefined;
  }
}

export async function validateConnection(ctx: PipelineContext, conn: Connection, options: ValidationOptions, now: () => number = Date.now): Promise<ValidationResult> {
  const rows: Row[] = [];
  rows.push(...(await guarded('Scheme', async () => [schemeRow(conn)])));
  // The connection as Azure DevOps sees it and the idToken do not depend on each other: both
  // requests leave at once, and MSAL compiles while they are in flight.
  const oidc = new OidcTokenClient(ctx, conn);
  const federated = conn.scheme === 'WorkloadIdentityFederation';
  const endpointPending = endpointRow(ctx, conn);
  const idTokenPending = federated ? oidc.fetch().then((t): { t: IdToken } | { e: unknown } => ({ t }), (e: unknown) => ({ e })) : undefined;
  const { row: epRow, endpoint } = await loadMsalWhile(endpointPending);
  rows.push(epRow);

  // idToken.
  let idToken: IdToken | undefined;
  if (idTokenPending) {
    const fetched = await idTokenPending;
    if ('t' in fetched) idToken = fetched.t;
    else {
      // No idToken, no federation: a deployment would fail the same way.
      const f = failureLines(fetched.e);
      rows.push({ check: 'idToken', status: 'fail', summary: f.summary, evidence: f.evidence, fix: f.fix });
    }
    if (idToken) {
      const t = idToken;
      rows.push(...(await guarded('idToken', async () => [idTokenRow(t, endpoint, conn, now())], 'Fetched, but could not be checked')));
    }
  } else {
    rows.push(skipped('idToken', `Not a federated connection (${describeScheme(conn.scheme)}).`));
  }

  // Entra exchange, for a Resource Manager token.
  let arm: AccessToken | undefined;
  let entraCode: string | undefined;
  let noArm = '';
  const expected = endpoint ? { issuer: endpoint.federationIssuer, subject: endpoint.federationSubject } : undefined;
  if (conn.scheme === 'WorkloadIdentityFederation' && !idToken) {
    rows.push(skipped('Entra ID exchange', 'Not run: there is no idToken to exchange (see the idToken row).'));
    noArm = 'Not run: it needs a Resource Manager token, and without an idToken there was no Entra ID exchange (see the idToken row).';
  } else {
    let first = idToken;
    const assertions = { fetch: async () => { const t = first ?? (await oidc.fetch()); first = undefined; return t; } };
    try {
      arm = await acquireAccessToken(ctx, conn, `${options.armResource.replace(/\/+$/, '')}/.default`, conn.scheme === 'WorkloadIdentityFederation' ? assertions : undefined, { expected });
      rows.push({ check: 'Entra ID exchange', status: 'pass', summary: `Access token for Azure Resource Manager, valid until ${arm.expiresOn.toISOString()}.`, evidence: [] });
    } catch (e) {
      entraCode = e instanceof TaskFailure ? e.code ?? 'ENTRA' : 'UNEXPECTED';
      const f = failureLines(e);
      rows.push({ check: 'Entra ID exchange', status: 'fail', summary: f.summary, evidence: f.evidence, fix: f.fix });
      noArm = 'Not run: it needs a Resource Manager token, which the Entra ID exchange did not give (see that row).';
    }
  }

  // The subscription and the roles on the scope are read at the same time; their rows keep this order.
  const subscriptionRows = (async (): Promise<Row[]> => {
    if (!conn.subscriptionId) return [skipped('Subscription', `The connection has no subscription (scope level ${options.scopeLevel ?? 'unknown'}).`)];
    if (!arm) return [skipped('Subscription', noArm)];
    const token = arm.token;
    return guarded('Subscription', async () => [await subscriptionRow(ctx, conn, options, token)]);
  })();
  const roleCheckRows = (async (): Promise<Row[]> => {
    if (!options.scope) return [skipped('Roles', 'No scope given (inputs scope and requiredRoles).')];
    if (!arm) return roleChecks(options).map((check) => skipped(check, noArm));
    try {
      return await roleRows(ctx, conn, options, options.scope, arm.token);
    } catch (e) {
      // The permissions read itself failed (network, timeout, ...): every role says so.
      const row = notRunRow('Roles', e);
      return roleChecks(options).map((check) => ({ ...row, check }));
    }
  })();
  rows.push(...(await subscriptionRows), ...(await roleCheckRows));

  // Secret or certificate expiry.
  rows.push(...(await guarded('Secret expiry', async () => [await expiryRow(ctx, conn, options, entraCode, now())])));

  const status = rows.some((r) => r.status === 'fail') ? 'error' : rows.some((r) => r.status === 'warning') ? 'warning' : 'ok';
  return { rows, endpoint, status };
}

async function subscriptionRow(ctx: PipelineContext, conn: Connection, options: ValidationOptions, token: string): Promise<Row> {
  const subscriptionId = conn.subscriptionId!;
  const s = await getSubscription(ctx, options.armUrl, token, subscriptionId);
  if (s.ok) {
    const enabled = !s.value.state || /^enabled$/i.test(s.value.state);
    return {
      check: 'Subscription',
      status: enabled ? 'pass' : 'warning',
      summary: safe`Readable: '${s.value.displayName ?? subscriptionId}' (${subscriptionId}), state ${s.value.state ?? 'unknown'}.`,
      evidence: [],
      fix: enabled ? undefined : 'The subscription is not enabled: deployments to it will fail until it is re-enabled.',
      links: [{ title: 'Subscription in the Azure portal', url: `https://portal.azure.com/#@${conn.tenantId}/resource/subscriptions/${subscriptionId}/overview` }],
    };
  }
  if (unavailable(s.status)) {
    return { check: 'Subscription', status: 'skipped', summary: safe`Could not run: Azure Resource Manager answered HTTP ${s.status}${s.code ? `, ${s.code}` : ''} for subscription ${subscriptionId}${attemptsText(s.attempts)}.`, evidence: s.message ? [neutralize(s.message)] : [], fix: RETRY_LATER, notRun: true };
  }
  const rgScoped = /resourcegroup|managementgroup/i.test(options.scopeLevel ?? '');
  return {
    check: 'Subscription',
    status: s.status === 403 && rgScoped ? 'warning' : 'fail',
    summary: s.status === 404 ? safe`Subscription ${subscriptionId} was not found (${s.code ?? 'HTTP 404'}).` : safe`The identity cannot read subscription ${subscriptionId} (HTTP ${s.status}${s.code ? `, ${s.code}` : ''}).`,
    evidence: s.message ? [neutralize(s.message)] : [],
    fix: s.status === 404
      ? 'Check the subscription id and that it belongs to the connection\'s tenant.'
      : `Assign the identity (client ${conn.clientId}) at least the Reader role on the subscription (or on the resource groups it deploys to, for a connection scoped to a resource group).`,
  };
}

/** The row of an ARM read that could not be made: a permission it lacks (named), or the service failing. */
function armNotRun(check: string, what: string, answer: { status: number; code?: string; message?: string; attempts?: number }, permission: string, scope: string, clientId: string): Row {
  const evidence = answer.message ? [neutralize(answer.message)] : [];
  const http = `HTTP ${answer.status}${answer.code ? `, ${answer.code}` : ''}`;
  if (answer.status === 401 || answer.status === 403) {
    return {
      check,
      status: 'skipped',
      summary: safe`Could not run: the identity may not read ${what} on ${scope} (${http}); it needs the permission ${permission} there.`,
      evidence,
      fix: safe`Assign the identity (client ${clientId || 'the managed identity'}) a role that includes ${permission} on ${scope} or above (Reader has it), or check its roles in the portal: Access control (IAM) > Check access.`,
      notRun: true,
    };
  }
  if (unavailable(answer.status)) {
    return { check, status: 'skipped', summary: safe`Could not run: Azure Resource Manager answered ${http} when reading ${what} on ${scope}${attemptsText(answer.attempts)}.`, evidence, fix: RETRY_LATER, notRun: true };
  }
  return { check, status: 'warning', summary: safe`Could not read ${what} on ${scope} (${http}).`, evidence, fix: answer.status === 404 ? 'Check the scope: the resource does not exist, or is in another subscription.' : 'Check the scope; the identity needs a role assignment at or above it.' };
}

/** The rows the role check gives: one per required role, or one 'Roles' row. */
function roleChecks(options: ValidationOptions): string[] {
  return options.requiredRoles.length ? options.requiredRoles.map((r) => safe`Role ${r}`) : ['Roles'];
}

async function roleRows(ctx: PipelineContext, conn: Connection, options: ValidationOptions, scope: string, token: string): Promise<Row[]> {
  const rows: Row[] = [];
  const roleCheck = (role: string) => safe`Role ${role}`;
  const effective = await getPermissions(ctx, options.armUrl, token, scope);
  if (!effective.ok) {
    const row = armNotRun('Roles', 'its own permissions', effective, 'Microsoft.Authorization/permissions/read', scope, conn.clientId);
    // Each required role gets the same row, so none disappears from the summary.
    return roleChecks(options).map((check) => ({ ...row, check }));
  }
  const iam: Link = { title: 'Access control (IAM) of the scope', url: `https://portal.azure.com/#@${conn.tenantId}/resource${scope}/users` };
  if (!options.requiredRoles.length) {
    const actions = effective.value.flatMap((p: Permission) => p.actions);
    rows.push({ check: 'Roles', status: 'pass', summary: safe`Effective permissions on ${scope}: ${actions.length ? actions.join(', ') : 'none'}.`, evidence: [], links: [iam] });
  }
  for (const role of options.requiredRoles) {
    rows.push(...(await guarded(roleCheck(role), async () => [await roleRow(ctx, conn, options, scope, token, role, effective.value, iam)])));
  }
  return rows;
}

async function roleRow(ctx: PipelineContext, conn: Connection, options: ValidationOptions, scope: string, token: string, role: string, effective: Permission[], iam: Link): Promise<Row> {
  const def = await getRoleDefinition(ctx, options.armUrl, token, scope, role);
  if (!def.ok) {
    const row = armNotRun(safe`Role ${role}`, 'role definitions', def, 'Microsoft.Authorization/roleDefinitions/read', scope, conn.clientId);
    return row.status === 'warning' ? { ...row, summary: safe`Could not read the role definition (HTTP ${def.status}${def.code ? `, ${def.code}` : ''}).`, fix: 'Check the role name or id.' } : row;
  }
  if (!def.value) {
    return { check: safe`Role ${role}`, status: 'fail', summary: safe`No role named '${role}' exists at ${scope}.`, evidence: [], fix: 'Use a built-in role name (e.g. AcrPush, Contributor) or a role definition id.' };
  }
  const missing = missingActions(def.value, effective);
  return missing.length
    ? {
        check: safe`Role ${def.value.roleName}`,
        status: 'fail',
        summary: safe`Missing on ${scope}: ${missing.join(', ')}.`,
        evidence: [],
        fix: safe`Assign ${def.value.roleName} to the identity (client ${conn.clientId || 'the managed identity'}) on ${scope}: Access control (IAM) > Add role assignment. Assignments take a few minutes to apply.`,
        links: [iam],
      }
    : { check: safe`Role ${def.value.roleName}`, status: 'pass', summary: safe`Every action of ${def.value.roleName} is allowed on ${scope}.`, evidence: [] };
}

const GRAPH_PERMISSION = 'Application.Read.All';

async function expiryRow(ctx: PipelineContext, conn: Connection, options: ValidationOptions, entraCode: string | undefined, now: number): Promise<Row> {
  const check = 'Secret expiry';
  if (conn.scheme !== 'ServicePrincipalSecret' && conn.scheme !== 'ServicePrincipalCertificate') return skipped(check, `Nothing expires: ${describeScheme(conn.scheme)}.`);
  const what = conn.scheme === 'ServicePrincipalSecret' ? 'client secret' : 'certificate';
  const convert = 'Convert the connection to workload identity federation (the "Convert" action on the connection), so nothing expires again.';
  const portal: Link = { title: 'App registration: certificates & secrets', url: `https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/${conn.clientId}` };
  const inPortal = 'check the end date in the Azure portal (link).';
  const orPortal = (fix: string | undefined) => (fix ? `${fix} Or ${inPortal}` : `Re-run the job, or ${inPortal}`);
  if (entraCode === 'AADSTS7000222') return { check, status: 'fail', summary: `The ${what} has expired (AADSTS7000222).`, evidence: [], fix: convert };
  if (entraCode?.startsWith('AADSTS')) return { ...skipped(check, `Not run: it needs a token from Microsoft Entra ID, which refused the connection's credential (${entraCode}; see the Entra ID exchange row).`), links: [portal] };
  if (entraCode) return { ...skipped(check, 'Not run: it needs a token from Microsoft Entra ID, and the Entra ID exchange failed (see that row).'), links: [portal] };
  const base = graphUrl(conn.cloud);
  if (!base) return skipped(check, `Microsoft Graph is known only for AzureCloud, AzureUSGovernment and AzureChinaCloud, not ${neutralize(conn.cloud.name)}; check the end date in your cloud's portal.`);
  let token: AccessToken;
  try {
    token = await acquireAccessToken(ctx, conn, graphScope(base));
  } catch (e) {
    const f = failureLines(e);
    return { check, status: 'skipped', summary: `Could not run: no Microsoft Graph token: ${f.summary}`, evidence: f.evidence, fix: orPortal(f.fix), links: [portal], notRun: true };
  }
  let app;
  try {
    app = await getApplicationCredentials(ctx, base, token.token, conn.clientId);
  } catch (e) {
    // Graph unreachable (DNS, proxy, timeout, TLS, ...): say so, and where to look instead.
    const f = failureLines(e);
    return { check, status: 'skipped', summary: `Could not run: Microsoft Graph could not be reached: ${f.summary}`, evidence: f.evidence, fix: orPortal(f.fix), links: [portal], notRun: true };
  }
  if (!app.ok) {
    const http = `HTTP ${app.status}${app.code ? `, ${app.code}` : ''}`;
    if (app.status === 401 || app.status === 403) {
      return {
        check,
        status: 'skipped',
        summary: safe`Could not run: Microsoft Graph did not let the identity read its app registration (${http}); it needs the Microsoft Graph application permission ${GRAPH_PERMISSION} (or to own its app registration).`,
        evidence: app.message ? [neutralize(app.message)] : [],
        fix: `To have this checked, grant the app the Microsoft Graph application permission ${GRAPH_PERMISSION} (admin consent), or make it an owner of its own app registration; or ${inPortal}`,
        links: [portal],
        notRun: true,
      };
    }
    if (unavailable(app.status)) {
      return { check, status: 'skipped', summary: `Could not run: Microsoft Graph answered ${http}${attemptsText(app.attempts)}.`, evidence: app.message ? [neutralize(app.message)] : [], fix: `Re-run the job later, or ${inPortal}`, links: [portal], notRun: true };
    }
    return {
      check,
      status: 'skipped',
      summary: app.status === 404 ? safe`Could not run: Microsoft Graph found no app registration with client id ${conn.clientId} in the tenant (${http}).` : `Could not run: Microsoft Graph answered ${http}.`,
      evidence: app.message ? [neutralize(app.message)] : [],
      fix: app.status === 404 ? `The app registration may live in another tenant (a multitenant app): ${inPortal}` : `Re-run the job, or ${inPortal}`,
      links: [portal],
      notRun: true,
    };
  }
  const kind = conn.scheme === 'ServicePrincipalSecret' ? 'secret' : 'certificate';
  const own = kind === 'secret' ? conn.clientSecret?.slice(0, 3) : certificateThumbprint(conn.clientCertificatePem);
  const candidates = app.credentials.filter((c) => c.kind === kind);
  const mine = candidates.filter((c) => own && c.hint && c.hint.toUpperCase() === own.toUpperCase());
  const pool = mine.length ? mine : candidates;
  const dated = pool.filter((c) => c.endDateTime && !Number.isNaN(Date.parse(c.endDateTime))).sort((a, b) => Date.parse(b.endDateTime!) - Date.parse(a.endDateTime!));
  if (!dated.length) return { check, status: 'warning', summary: `The app registration has no ${what} with an end date.`, evidence: [], fix: convert };
  const cred = dated[0];
  const end = Date.parse(cred.endDateTime!);
  const days = Math.floor((end - now) / DAY);
  const which = `${mine.length ? 'The connection\'s' : 'The app\'s latest'} ${what}${cred.displayName ? safe` '${cred.displayName}'` : ''}`;
  const links = [portal];
  if (end <= now) return { check, status: 'fail', summary: `${which} expired on ${new Date(end).toISOString().slice(0, 10)}.`, evidence: [], fix: convert, links };
  if (days <= options.secretExpiryWarningDays) {
    return { check, status: 'warning', summary: `${which} expires on ${new Date(end).toISOString().slice(0, 10)}, in ${days} days.`, evidence: [], fix: `${convert} Otherwise renew the ${what} before then and update the connection.`, links };
  }
  return { check, status: 'pass', summary: `${which} expires on ${new Date(end).toISOString().slice(0, 10)}, in ${days} days.`, evidence: [], links };
}
