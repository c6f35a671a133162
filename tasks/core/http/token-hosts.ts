/**
 * Where a token may go. Every URL that receives a token is https and belongs to the connection's
 * cloud, to this organisation's Azure DevOps, or to a host the user named for that purpose in a task
 * input. Pipeline variables are not trusted for this: any earlier step can set one.
 */
import { TaskFailure } from './failures';
import type { PipelineContext } from '../agent/pipeline-context';

/** The origin (scheme://host[:port]) of a URL, or undefined when it is not one. */
export function originOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The job's access token goes only to this organisation's Azure DevOps: the origin of the
 * SystemVssConnection endpoint, which the agent sets from the job and no step can change. The
 * URL built from System.OidcRequestUri or System.CollectionUri must have that origin.
 */
export function checkAzureDevOpsUrl(url: string, azureDevOpsOrigin: string | undefined, source: string): string {
  const origin = originOf(url);
  if (!origin) {
    throw new TaskFailure({
      what: `${source} is not an http(s) URL, so the job's access token cannot be sent to it.`,
      cause: 'The variable was changed by a pipeline variable or an earlier step, or the agent is misconfigured.',
      fix: `Remove any pipeline variable named ${source}; the agent sets it.`,
      code: 'TOKEN_HOST',
    });
  }
  if (azureDevOpsOrigin && origin.toLowerCase() !== azureDevOpsOrigin.toLowerCase()) {
    throw new TaskFailure({
      what: `${source} points at ${origin}, not at this organization's Azure DevOps (${azureDevOpsOrigin}); the job's access token is sent only there.`,
      cause: `A pipeline variable or an earlier step set ${source}.`,
      fix: `Remove the pipeline variable or the step that sets ${source}; the agent sets it for every job.`,
      code: 'TOKEN_HOST',
    });
  }
  // Azure DevOps Server may be plain http; the agent itself already sends this token there.
  if (!origin.startsWith('https:') && azureDevOpsOrigin?.toLowerCase() !== origin.toLowerCase()) {
    throw new TaskFailure({
      what: `${source} (${origin}) is not https; the job's access token is never sent in clear.`,
      cause: 'The agent or a pipeline variable gave an http address.',
      fix: `Use the https address of the organization; remove any pipeline variable named ${source}.`,
      code: 'TOKEN_HOST',
    });
  }
  return url;
}

/**
 * AWS STS's own host names: sts[-fips].<region>.amazonaws.com(.cn), sts.amazonaws.com, the
 * dual-stack sts.<region>.api.aws, and interface VPC endpoints (...sts.<region>.vpce.amazonaws.com).
 */
export function isAwsStsHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (/^sts(-fips)?(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?$/.test(h)) return true;
  if (/^sts(-fips)?\.[a-z0-9-]+\.api\.aws$/.test(h)) return true;
  return /^[a-z0-9-]+(\.[a-z0-9-]+)*\.sts(-fips)?\.[a-z0-9-]+\.vpce\.amazonaws\.com(\.cn)?$/.test(h);
}

/**
 * The identity service's URL, as the resource-area lookup names it, receives the same token as
 * the organisation: it must be https and either on the organisation's own origin or the identity
 * service host of the same cloud (https://vssps.dev.azure.com/<org>/ for https://dev.azure.com/<org>/,
 * https://<org>.vssps.visualstudio.com/ for https://<org>.visualstudio.com/). Returns it with a
 * trailing slash.
 */
export function checkIdentityServiceUrl(locationUrl: string, collectionUri: string): string {
  let u: URL;
  let c: URL;
  try {
    u = new URL(locationUrl);
    c = new URL(collectionUri);
  } catch {
    throw refusedIdentityUrl(locationUrl, collectionUri, 'it is not a URL');
  }
  if (u.protocol !== 'https:') throw refusedIdentityUrl(locationUrl, collectionUri, 'it is not https');
  const host = u.host.toLowerCase();
  const own = c.host.toLowerCase();
  const orgSegment = c.pathname.split('/').filter(Boolean)[0]?.toLowerCase();
  const path = u.pathname.toLowerCase();
  const ok =
    host === own ||
    (own === 'dev.azure.com' && host === 'vssps.dev.azure.com' && !!orgSegment && (path === `/${orgSegment}` || path.startsWith(`/${orgSegment}/`))) ||
    (/^[a-z0-9-]+\.visualstudio\.com$/.test(own) && host === own.replace(/\.visualstudio\.com$/, '.vssps.visualstudio.com'));
  if (!ok) throw refusedIdentityUrl(locationUrl, collectionUri, 'its host is neither the organization\'s nor the identity service of the same cloud');
  return u.href.endsWith('/') ? u.href : `${u.href}/`;
}

function refusedIdentityUrl(locationUrl: string, collectionUri: string, why: string): TaskFailure {
  let shown = locationUrl;
  try {
    shown = new URL(locationUrl).origin;
  } catch {
    shown = '(not a URL)';
  }
  return new TaskFailure({
    what: `The identity service URL ${shown} that the resource-area lookup gave is refused: ${why}. The organization's token is sent only to ${originOf(collectionUri) ?? 'the organization'} and its identity service.`,
    cause: 'An unexpected answer from the resource-area lookup, or a proxy that rewrote it.',
    fix: 'Re-run; if it persists, report it. The creator column stays unknown meanwhile.',
    code: 'TOKEN_HOST',
  });
}

/** Where the Oidctoken API is: System.OidcRequestUri, or the URL built from the job's variables; either must be this organisation's Azure DevOps. */
export function oidcRequestUrl(ctx: PipelineContext, connectionId: string): string {
  const id = encodeURIComponent(connectionId);
  if (ctx.oidcRequestUri) {
    const sep = ctx.oidcRequestUri.includes('?') ? '&' : '?';
    return checkAzureDevOpsUrl(`${ctx.oidcRequestUri}${sep}api-version=7.1&serviceConnectionId=${id}`, ctx.azureDevOpsOrigin, 'System.OidcRequestUri');
  }
  const missing = (
    [
      ['System.CollectionUri', ctx.collectionUri],
      ['System.TeamProjectId', ctx.teamProjectId],
      ['System.PlanId', ctx.planId],
      ['System.JobId', ctx.jobId],
    ] as const
  ).filter(([, v]) => !v).map(([n]) => n);
  if (missing.length) {
    throw new TaskFailure({
      what: `The task cannot reach the Azure DevOps Oidctoken API: the agent did not set ${missing.join(', ')} (nor System.OidcRequestUri).`,
      cause: 'The task is not running in an Azure Pipelines job, or the agent is very old.',
      fix: 'Run the task in an Azure Pipelines job on a current agent.',
      code: 'NO_OIDC_URL',
    });
  }
  return checkAzureDevOpsUrl(
    `${ctx.collectionUri}${ctx.teamProjectId}/_apis/distributedtask/hubs/${encodeURIComponent(ctx.hostType)}/plans/${ctx.planId}/jobs/${ctx.jobId}/oidctoken?serviceConnectionId=${id}&api-version=7.1-preview.1`,
    ctx.azureDevOpsOrigin,
    'System.CollectionUri',
  );
}
