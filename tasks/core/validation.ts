/**
 * The checks of a service connection, in order, each a row: pass, warning, fail or skipped, with
 * its evidence and the fix. A check that cannot run for lack of permission says which permission;
 * nothing here throws for a refusal.
 */
import * as crypto from 'node:crypto';
import { Connection, conversionAdvice, describeScheme } from './connection';
import { PipelineContext } from './pipeline-context';
import { lookupServiceEndpoint, ServiceEndpointInfo } from './service-endpoint';
import { OidcTokenClient, IdToken } from './oidc-token';
import { acquireAccessToken, AccessToken } from './entra';
import { audienceText, describeIdToken, issuerKind } from './claims';
import { quoteServiceText, TaskFailure } from './failures';
import { failureMessage, neutralize, safe } from './output';
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

function failureLines(e: unknown): { summary: string; evidence: string[]; fix?: string } {
  if (e instanceof TaskFailure) {
    // Rebuilt from the details, each made one line, so a service's line break cannot shift them.
    const lines = failureMessage(e).split('\n');
    const fix = lines.find((l) => l.startsWith('Fix: '))?.slice(5);
    return { summary: lines[0], evidence: lines.slice(1).filter((l) => !l.startsWith('Fix: ')), fix };
  }
  return { summary: neutralize((e as Error)?.message ?? String(e)), evidence: [] };
}

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

async function endpointRow(ctx: PipelineContext, conn: Connection): Promise<{ row: Row; endpoint?: ServiceEndpointInfo }> {
  const check = 'Connection in Azure DevOps';
  let lookup;
  try {
    lookup = await lookupServiceEndpoint(ctx, conn.id);
  } catch (e) {
    const f = failureLines(e);
    return { row: { check, status: 'warning', summary: `Could not read the connection from Azure DevOps: ${f.summary}`, evidence: f.evidence, fix: f.fix } };
  }
  if (!lookup.ok) {
    const denied = lookup.status === 401 || lookup.status === 403 || lookup.status === 203;
    return {
      row: {
        check,
        status: 'warning',
        summary: `Azure DevOps did not let this job read the connection's details (${lookup.reason}); the other checks still run.`,
        evidence: [],
        fix: denied
          ? 'Give the pipeline\'s build service identity (e.g. "<project> Build Service (<organization>)") the Reader role on this connection: Project settings > Service connections > the connection > Security.'
          : 'Re-run the job; check the connection id.',
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

function idTokenRow(t: IdToken, endpoint: ServiceEndpointInfo | undefined, now: number): Row {
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
  if (kind === 'vstoken') {
    problems.push({
      status: 'warning',
      text: 'the connection uses the vstoken.dev.azure.com issuer, which Azure DevOps retires on 2027-07-01',
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
  const rows: Row[] = [schemeRow(conn)];
  const { row: epRow, endpoint } = await endpointRow(ctx, conn);
  rows.push(epRow);

  // idToken.
  let idToken: IdToken | undefined;
  const oidc = new OidcTokenClient(ctx, conn);
  if (conn.scheme === 'WorkloadIdentityFederation') {
    try {
      idToken = await oidc.fetch();
      rows.push(idTokenRow(idToken, endpoint, now()));
    } catch (e) {
      const f = failureLines(e);
      rows.push({ check: 'idToken', status: 'fail', summary: f.summary, evidence: f.evidence, fix: f.fix });
    }
  } else {
    rows.push(skipped('idToken', `Not a federated connection (${describeScheme(conn.scheme)}).`));
  }

  // Entra exchange, for a Resource Manager token.
  let arm: AccessToken | undefined;
  let entraCode: string | undefined;
  const expected = endpoint ? { issuer: endpoint.federationIssuer, subject: endpoint.federationSubject } : undefined;
  if (conn.scheme === 'WorkloadIdentityFederation' && !idToken) {
    rows.push(skipped('Entra ID exchange', 'No idToken to exchange.'));
  } else {
    let first = idToken;
    const assertions = { fetch: async () => { const t = first ?? (await oidc.fetch()); first = undefined; return t; } };
    try {
      arm = await acquireAccessToken(ctx, conn, `${options.armResource.replace(/\/+$/, '')}/.default`, conn.scheme === 'WorkloadIdentityFederation' ? assertions : undefined, { expected });
      rows.push({ check: 'Entra ID exchange', status: 'pass', summary: `Access token for Azure Resource Manager, valid until ${arm.expiresOn.toISOString()}.`, evidence: [] });
    } catch (e) {
      entraCode = e instanceof TaskFailure ? e.code : undefined;
      const f = failureLines(e);
      rows.push({ check: 'Entra ID exchange', status: 'fail', summary: f.summary, evidence: f.evidence, fix: f.fix });
    }
  }

  // Subscription.
  if (!conn.subscriptionId) rows.push(skipped('Subscription', `The connection has no subscription (scope level ${options.scopeLevel ?? 'unknown'}).`));
  else if (!arm) rows.push(skipped('Subscription', 'Needs the Resource Manager token, which could not be had.'));
  else {
    const s = await getSubscription(ctx, options.armUrl, arm.token, conn.subscriptionId);
    if (s.ok) {
      const enabled = !s.value.state || /^enabled$/i.test(s.value.state);
      rows.push({
        check: 'Subscription',
        status: enabled ? 'pass' : 'warning',
        summary: safe`Readable: '${s.value.displayName ?? conn.subscriptionId}' (${conn.subscriptionId}), state ${s.value.state ?? 'unknown'}.`,
        evidence: [],
        fix: enabled ? undefined : 'The subscription is not enabled: deployments to it will fail until it is re-enabled.',
        links: [{ title: 'Subscription in the Azure portal', url: `https://portal.azure.com/#@${conn.tenantId}/resource/subscriptions/${conn.subscriptionId}/overview` }],
      });
    } else {
      const rgScoped = /resourcegroup|managementgroup/i.test(options.scopeLevel ?? '');
      rows.push({
        check: 'Subscription',
        status: s.status === 403 && rgScoped ? 'warning' : 'fail',
        summary: s.status === 404 ? safe`Subscription ${conn.subscriptionId} was not found (${s.code ?? 'HTTP 404'}).` : safe`The identity cannot read subscription ${conn.subscriptionId} (HTTP ${s.status}${s.code ? `, ${s.code}` : ''}).`,
        evidence: s.message ? [neutralize(s.message)] : [],
        fix: s.status === 404
          ? 'Check the subscription id and that it belongs to the connection\'s tenant.'
          : `Assign the identity (client ${conn.clientId}) at least the Reader role on the subscription (or on the resource groups it deploys to, for a connection scoped to a resource group).`,
      });
    }
  }

  // Roles on the scope.
  if (!options.scope) rows.push(skipped('Roles', 'No scope given (inputs scope and requiredRoles).'));
  else if (!arm) rows.push(skipped('Roles', 'Needs the Resource Manager token, which could not be had.'));
  else {
    const effective = await getPermissions(ctx, options.armUrl, arm.token, options.scope);
    if (!effective.ok) {
      rows.push({ check: 'Roles', status: 'warning', summary: safe`Could not read the identity's permissions on ${options.scope} (HTTP ${effective.status}${effective.code ? `, ${effective.code}` : ''}).`, evidence: effective.message ? [neutralize(effective.message)] : [], fix: 'Check the scope; the identity needs a role assignment at or above it.' });
    } else {
      const iam: Link = { title: 'Access control (IAM) of the scope', url: `https://portal.azure.com/#@${conn.tenantId}/resource${options.scope}/users` };
      if (!options.requiredRoles.length) {
        const actions = effective.value.flatMap((p: Permission) => p.actions);
        rows.push({ check: 'Roles', status: 'pass', summary: safe`Effective permissions on ${options.scope}: ${actions.length ? actions.join(', ') : 'none'}.`, evidence: [], links: [iam] });
      }
      for (const role of options.requiredRoles) {
        const def = await getRoleDefinition(ctx, options.armUrl, arm.token, options.scope, role);
        if (!def.ok) {
          rows.push({ check: safe`Role ${role}`, status: 'warning', summary: safe`Could not read the role definition (HTTP ${def.status}${def.code ? `, ${def.code}` : ''}).`, evidence: def.message ? [neutralize(def.message)] : [], fix: 'Check the role name or id.' });
          continue;
        }
        if (!def.value) {
          rows.push({ check: safe`Role ${role}`, status: 'fail', summary: safe`No role named '${role}' exists at ${options.scope}.`, evidence: [], fix: 'Use a built-in role name (e.g. AcrPush, Contributor) or a role definition id.' });
          continue;
        }
        const missing = missingActions(def.value, effective.value);
        rows.push(
          missing.length
            ? {
                check: safe`Role ${def.value.roleName}`,
                status: 'fail',
                summary: safe`Missing on ${options.scope}: ${missing.join(', ')}.`,
                evidence: [],
                fix: safe`Assign ${def.value.roleName} to the identity (client ${conn.clientId || 'the managed identity'}) on ${options.scope}: Access control (IAM) > Add role assignment. Assignments take a few minutes to apply.`,
                links: [iam],
              }
            : { check: safe`Role ${def.value.roleName}`, status: 'pass', summary: safe`Every action of ${def.value.roleName} is allowed on ${options.scope}.`, evidence: [] },
        );
      }
    }
  }

  // Secret or certificate expiry.
  rows.push(await expiryRow(ctx, conn, options, entraCode, now()));

  const status = rows.some((r) => r.status === 'fail') ? 'error' : rows.some((r) => r.status === 'warning') ? 'warning' : 'ok';
  return { rows, endpoint, status };
}

async function expiryRow(ctx: PipelineContext, conn: Connection, options: ValidationOptions, entraCode: string | undefined, now: number): Promise<Row> {
  const check = 'Secret expiry';
  if (conn.scheme !== 'ServicePrincipalSecret' && conn.scheme !== 'ServicePrincipalCertificate') return skipped(check, `Nothing expires: ${describeScheme(conn.scheme)}.`);
  const what = conn.scheme === 'ServicePrincipalSecret' ? 'client secret' : 'certificate';
  const convert = 'Convert the connection to workload identity federation (the "Convert" action on the connection), so nothing expires again.';
  if (entraCode === 'AADSTS7000222') return { check, status: 'fail', summary: `The ${what} has expired (AADSTS7000222).`, evidence: [], fix: convert };
  if (entraCode) return skipped(check, 'Needs a token from Microsoft Entra ID, which refused the connection\'s credential.');
  const base = graphUrl(conn.cloud);
  if (!base) return skipped(check, `Microsoft Graph is known only for AzureCloud, AzureUSGovernment and AzureChinaCloud, not ${conn.cloud.name}; check the end date in your cloud's portal.`);
  let token: AccessToken;
  try {
    token = await acquireAccessToken(ctx, conn, graphScope(base));
  } catch (e) {
    return skipped(check, `No Microsoft Graph token: ${neutralize(failureLines(e).summary)}`);
  }
  const app = await getApplicationCredentials(ctx, base, token.token, conn.clientId);
  if (!app.ok) {
    return {
      ...skipped(check, safe`Microsoft Graph did not let the identity read its app registration (HTTP ${app.status}${app.code ? `, ${app.code}` : ''}).`),
      fix: 'To have this checked, grant the app the Microsoft Graph application permission Application.Read.All (admin consent), or make it an owner of its own app registration; or check the end date in the Azure portal (link).',
      links: [{ title: 'App registration: certificates & secrets', url: `https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/${conn.clientId}` }],
    };
  }
  const kind = conn.scheme === 'ServicePrincipalSecret' ? 'secret' : 'certificate';
  const own = kind === 'secret' ? conn.clientSecret?.slice(0, 3) : certificateThumbprint(conn.clientCertificatePem);
  const candidates = app.credentials.filter((c) => c.kind === kind);
  const mine = candidates.filter((c) => own && c.hint && c.hint.toUpperCase() === own.toUpperCase());
  const pool = mine.length ? mine : candidates;
  const dated = pool.filter((c) => c.endDateTime).sort((a, b) => Date.parse(b.endDateTime!) - Date.parse(a.endDateTime!));
  if (!dated.length) return { check, status: 'warning', summary: `The app registration has no ${what} with an end date.`, evidence: [], fix: convert };
  const cred = dated[0];
  const end = Date.parse(cred.endDateTime!);
  const days = Math.floor((end - now) / DAY);
  const which = `${mine.length ? 'The connection\'s' : 'The app\'s latest'} ${what}${cred.displayName ? safe` '${cred.displayName}'` : ''}`;
  const links = [{ title: 'App registration: certificates & secrets', url: `https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/${conn.clientId}` }];
  if (end <= now) return { check, status: 'fail', summary: `${which} expired on ${new Date(end).toISOString().slice(0, 10)}.`, evidence: [], fix: convert, links };
  if (days <= options.secretExpiryWarningDays) {
    return { check, status: 'warning', summary: `${which} expires on ${new Date(end).toISOString().slice(0, 10)}, in ${days} days.`, evidence: [], fix: `${convert} Otherwise renew the ${what} before then and update the connection.`, links };
  }
  return { check, status: 'pass', summary: `${which} expires on ${new Date(end).toISOString().slice(0, 10)}, in ${days} days.`, evidence: [], links };
}
