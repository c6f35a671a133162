/**
 * The service connection as Azure DevOps sees it (GET .../serviceendpoint/endpoints/{id}):
 * its name, state, and the issuer and subject its federated credential must have.
 */
import { PipelineContext } from '../agent/pipeline-context';
import { parseJson } from '../http/http';
import { checkAzureDevOpsUrl } from '../http/token-hosts';
import { debug, safe } from '../agent/output';

export const ENDPOINT_SERVICE = 'the Azure DevOps service endpoints API';

export interface ServiceEndpointInfo {
  name?: string;
  isReady?: boolean;
  operationStatus?: { state?: string; statusMessage?: string };
  createdBy?: { displayName?: string; id?: string; uniqueName?: string };
  federationIssuer?: string;
  federationSubject?: string;
  scheme?: string;
}

export type EndpointLookup = { ok: true; endpoint: ServiceEndpointInfo } | { ok: false; status?: number; reason: string; attempts?: number };

interface EndpointJson {
  name?: string;
  isReady?: boolean;
  operationStatus?: ServiceEndpointInfo['operationStatus'];
  createdBy?: ServiceEndpointInfo['createdBy'];
  authorization?: { scheme?: string; parameters?: Record<string, string> };
}

export function serviceEndpointUrl(ctx: PipelineContext, connectionId: string): string | undefined {
  const project = ctx.teamProjectId || ctx.teamProject;
  if (!ctx.collectionUri || !project) return undefined;
  return checkAzureDevOpsUrl(`${ctx.collectionUri}${encodeURIComponent(project)}/_apis/serviceendpoint/endpoints/${encodeURIComponent(connectionId)}?api-version=7.1`, ctx.azureDevOps, 'System.CollectionUri');
}

/** Reads the endpoint; never throws for a refusal: callers decide what a missing answer means. */
export async function lookupServiceEndpoint(ctx: PipelineContext, connectionId: string): Promise<EndpointLookup> {
  const url = serviceEndpointUrl(ctx, connectionId);
  if (!url) return { ok: false, reason: 'the agent did not set System.CollectionUri and System.TeamProjectId' };
  const res = await ctx.http.request({
    method: 'GET',
    url,
    service: ENDPOINT_SERVICE,
    headers: { Authorization: `Bearer ${ctx.jobAccessToken()}`, Accept: 'application/json' },
  });
  const json = res.status === 200 ? parseJson<EndpointJson>(res.body) : undefined;
  if (!json || typeof json !== 'object') {
    const reason = res.status === 200 ? 'the answer was not JSON' : res.status === 203 ? 'the job token was not accepted (HTTP 203 sign-in page)' : `HTTP ${res.status}`;
    debug(safe`Service endpoint lookup for ${connectionId}: ${reason}.`);
    return { ok: false, status: res.status, reason, attempts: res.attempts };
  }
  const p = json.authorization?.parameters ?? {};
  return {
    ok: true,
    endpoint: {
      name: json.name,
      isReady: json.isReady,
      operationStatus: json.operationStatus,
      createdBy: json.createdBy,
      federationIssuer: p.workloadIdentityFederationIssuer,
      federationSubject: p.workloadIdentityFederationSubject,
      scheme: json.authorization?.scheme,
    },
  };
}
