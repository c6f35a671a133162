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
 * This organisation's Azure DevOps: the only places the job's access token may go. In a build job
 * every Azure DevOps URL is on one origin; in a classic release or deployment-group job the
 * SystemVssConnection endpoint and System.TeamFoundationServerUri are the Release Management host
 * (https://vsrm.dev.azure.com/<org>/) while System.CollectionUri is the collection
 * (https://dev.azure.com/<org>/), and System.OidcRequestUri may be on either.
 */
export interface AzureDevOpsHosts {
  /** The organisation's name, where the URL says it (the cloud); undefined on Azure DevOps Server. */
  organization?: string;
  /** Each allowed place: an origin and, on the cloud's shared hosts, the organisation's own path. */
  places: { origin: string; path: string }[];
  /** Where the rule is anchored, for messages. */
  anchor: string;
}

/**
 * The rule is anchored at the SystemVssConnection endpoint: the agent writes it from the job
 * message, and no pipeline variable can set an ENDPOINT_* value (the agent drops variables whose
 * names start with "endpoint"). System.CollectionUri is a variable an earlier step can change, so it
 * is never the anchor: without the endpoint's URL nothing receives the token. From the anchor: in
 * the cloud, the same organisation's collection and Release Management hosts in both URL forms
 * (dev.azure.com/<org>, vsrm.dev.azure.com/<org>, <org>.visualstudio.com, <org>.vsrm.visualstudio.com);
 * on Azure DevOps Server, which serves both from one server, the server's own origin.
 */
export function azureDevOpsHosts(systemVssConnectionUrl: string | undefined): AzureDevOpsHosts | undefined {
  const anchor = originOf(systemVssConnectionUrl) ? systemVssConnectionUrl! : undefined;
  if (!anchor) return undefined;
  const u = new URL(anchor);
  const host = u.hostname.toLowerCase();
  let organization: string | undefined;
  if (u.protocol === 'https:' && !u.port && (host === 'dev.azure.com' || host === 'vsrm.dev.azure.com')) {
    organization = u.pathname.split('/').filter(Boolean)[0]?.toLowerCase();
  } else {
    const m = u.protocol === 'https:' && !u.port ? /^([a-z0-9][a-z0-9-]*)\.(?:vsrm\.)?visualstudio\.com$/.exec(host) : null;
    organization = m?.[1];
  }
  if (organization && /^[a-z0-9][a-z0-9._-]*$/.test(organization)) {
    return {
      organization,
      anchor: originOf(anchor)!,
      places: [
        { origin: 'https://dev.azure.com', path: `/${organization}/` },
        { origin: 'https://vsrm.dev.azure.com', path: `/${organization}/` },
        { origin: `https://${organization}.visualstudio.com`, path: '/' },
        { origin: `https://${organization}.vsrm.visualstudio.com`, path: '/' },
      ],
    };
  }
  return { anchor: u.origin, places: [{ origin: u.origin.toLowerCase(), path: '/' }] };
}

/** How the allowed places read in a message. */
export function describeAzureDevOps(hosts: AzureDevOpsHosts | undefined): string {
  if (!hosts) return 'none known';
  return hosts.organization ? `https://dev.azure.com/${hosts.organization}/ and its Release Management host https://vsrm.dev.azure.com/${hosts.organization}/ (or the ${hosts.organization}.visualstudio.com forms)` : hosts.anchor;
}

/** Whether `url` is one of this organisation's Azure DevOps places. */
export function isAzureDevOpsUrl(url: string, hosts: AzureDevOpsHosts | undefined): boolean {
  if (!hosts) return false;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  const origin = u.origin.toLowerCase();
  const path = `${u.pathname.toLowerCase().replace(/\/?$/, '/')}`;
  return hosts.places.some((p) => p.origin === origin && path.startsWith(p.path));
}

/**
 * The job's access token goes only to this organisation's Azure DevOps (azureDevOpsHosts). Every
 * URL that carries it, or that is handed to a tool together with it, passes here first.
 */
export function checkAzureDevOpsUrl(url: string, hosts: AzureDevOpsHosts | undefined, source: string): string {
  const origin = originOf(url);
  if (!origin) {
    throw new TaskFailure({
      what: `${source} is not an http(s) URL, so the job's access token cannot be sent to it.`,
      cause: 'The variable was changed by a pipeline variable or an earlier step, or the agent is misconfigured.',
      fix: `Remove any pipeline variable named ${source}; the agent sets it.`,
      code: 'TOKEN_HOST',
    });
  }
  if (!hosts) {
    throw new TaskFailure({
      what: `The task cannot tell this organization's Azure DevOps: the agent did not give the SystemVssConnection endpoint's URL (ENDPOINT_URL_SYSTEMVSSCONNECTION), so the job's access token is not sent to ${origin}.`,
      cause: 'The task is not running in an Azure Pipelines job, or the agent is very old.',
      fix: 'Run the task in an Azure Pipelines job on a current agent.',
      code: 'TOKEN_HOST',
    });
  }
  if (!isAzureDevOpsUrl(url, hosts)) {
    const u = new URL(url);
    const org = u.pathname.split('/').filter(Boolean)[0];
    const shown = hosts.organization && org && /(^|\.)dev\.azure\.com$/i.test(u.hostname) ? `${origin}/${org}/` : origin;
    throw new TaskFailure({
      what: `${source} points at ${shown}, not at this organization's Azure DevOps (${describeAzureDevOps(hosts)}); the job's access token is sent only there.`,
      cause: `A pipeline variable or an earlier step set ${source}.`,
      fix: `Remove the pipeline variable or the step that sets ${source}; the agent sets it for every job.`,
      code: 'TOKEN_HOST',
    });
  }
  // An encoded '/', '\\' or '.' in the path could name another organisation's API once the
  // server decodes it; the agent never writes one.
  const parsed = new URL(url);
  if (/%2f|%5c|%2e/i.test(parsed.pathname)) {
    throw new TaskFailure({
      what: `${source} has an encoded '/', '\\' or '.' in its path (${shownPath(parsed)}), which the agent never writes; the job's access token is not sent there.`,
      cause: `A pipeline variable or an earlier step set ${source}.`,
      fix: `Remove the pipeline variable or the step that sets ${source}; the agent sets it for every job.`,
      code: 'TOKEN_HOST',
    });
  }
  // The URL as parsed, never the raw text: what is checked is what is sent.
  return parsed.href;
}

function shownPath(u: URL): string {
  return `${u.origin}${u.pathname}`.slice(0, 200);
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

/**
 * The Oidctoken API's URL without its query: System.OidcRequestUri, or the URL built from the job's
 * variables (hub = System.HostType: build, release, or deployment in a deployment-group job, as
 * Microsoft's own tasks call it). Either must be this organisation's Azure DevOps: the URL is
 * checked here, before it is called or handed to a tool together with the job's token.
 */
export function oidcRequestBaseUrl(ctx: PipelineContext): { url: string; source: string } {
  if (ctx.oidcRequestUri) {
    const url = checkAzureDevOpsUrl(ctx.oidcRequestUri, ctx.azureDevOps, 'System.OidcRequestUri');
    const u = new URL(url);
    // Only the Oidctoken API of a job receives the token from here; the query is ours to write.
    if (!OIDC_PATH.test(u.pathname)) {
      throw new TaskFailure({
        what: `System.OidcRequestUri (${shownPath(u)}) is not an Oidctoken URL of a job (…/_apis/distributedtask/hubs/<hub>/plans/<plan>/jobs/<job>/oidctoken); the job's access token is not sent there.`,
        cause: 'A pipeline variable or an earlier step set System.OidcRequestUri.',
        fix: 'Remove the pipeline variable or the step that sets System.OidcRequestUri; the agent sets it for every job.',
        code: 'TOKEN_HOST',
      });
    }
    return { url: `${u.origin}${u.pathname}`, source: 'System.OidcRequestUri' };
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
  // The agent gives GUIDs and a one-word hub; anything else would change the URL's path.
  const malformed = (
    [
      ['System.TeamProjectId', ctx.teamProjectId, GUID],
      ['System.PlanId', ctx.planId, GUID],
      ['System.JobId', ctx.jobId, GUID],
      ['System.HostType', ctx.hostType, /^[a-z]+$/i],
    ] as const
  ).filter(([, v, re]) => !re.test(v)).map(([n]) => n);
  if (malformed.length) {
    throw new TaskFailure({
      what: `The task cannot build the Oidctoken URL: ${malformed.join(', ')} ${malformed.length > 1 ? 'are' : 'is'} not what the agent sets (a GUID; a word for System.HostType).`,
      cause: 'A pipeline variable or an earlier step set it.',
      fix: `Remove the pipeline variable or the step that sets ${malformed.join(', ')}; the agent sets ${malformed.length > 1 ? 'them' : 'it'} for every job.`,
      code: 'TOKEN_HOST',
    });
  }
  const url = `${ctx.collectionUri}${ctx.teamProjectId}/_apis/distributedtask/hubs/${ctx.hostType}/plans/${ctx.planId}/jobs/${ctx.jobId}/oidctoken`;
  return { url: checkAzureDevOpsUrl(url, ctx.azureDevOps, 'System.CollectionUri'), source: 'System.CollectionUri' };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const OIDC_PATH = /\/_apis\/distributedtask\/hubs\/[a-z]+\/plans\/[\w-]+\/jobs\/[\w-]+\/oidctoken$/i;

/**
 * The Oidctoken API's URL for one connection, checked (oidcRequestBaseUrl); with no connection id,
 * the URL of the pipeline's own token (no serviceConnectionId parameter at all).
 */
export function oidcRequestUrl(ctx: PipelineContext, connectionId: string | undefined): string {
  const { url, source } = oidcRequestBaseUrl(ctx);
  const u = new URL(url);
  if (source === 'System.OidcRequestUri') u.searchParams.set('api-version', '7.1');
  if (connectionId !== undefined) u.searchParams.set('serviceConnectionId', connectionId);
  if (source !== 'System.OidcRequestUri') u.searchParams.set('api-version', '7.1-preview.1');
  return u.href;
}
