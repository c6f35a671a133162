/**
 * Where a token may go. Every URL that receives a token is https and belongs to the connection's
 * cloud, to this organisation's Azure DevOps, or to a host the user named for that purpose in a task
 * input. Pipeline variables are not trusted for this: any earlier step can set one.
 */
import { TaskFailure } from './failures';

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
