/** Microsoft Graph: the end dates of an app registration's secrets and certificates. */
import { Cloud } from './clouds';
import { PipelineContext } from '../agent/pipeline-context';
import { quoteServiceText } from '../http/failures';
import { parseJson, RequestGate } from '../http/http';

export const GRAPH_SERVICE = 'Microsoft Graph';

const GRAPH_BY_CLOUD: Record<string, string> = {
  azurecloud: 'https://graph.microsoft.com',
  azureusgovernment: 'https://graph.microsoft.us',
  azurechinacloud: 'https://microsoftgraph.chinacloudapi.cn',
};

/**
 * Graph's base URL, from the connection's cloud and nothing else: a Graph token goes only to the
 * cloud's own Graph host (no pipeline variable can point it elsewhere). Undefined for other clouds.
 */
export function graphUrl(cloud: Cloud): string | undefined {
  return GRAPH_BY_CLOUD[cloud.name.toLowerCase()];
}

/** The token audience for Graph: the cloud's Graph resource. */
export function graphScope(baseUrl: string): string {
  return `${baseUrl}/.default`;
}

export interface Credential {
  kind: 'secret' | 'certificate';
  displayName?: string;
  endDateTime?: string;
  /** Secrets: the first three characters of the value. Certificates: the SHA-1 thumbprint (hex). */
  hint?: string;
  keyId?: string;
}

interface ApplicationJson {
  displayName?: string;
  passwordCredentials?: { displayName?: string; endDateTime?: string; hint?: string; keyId?: string }[];
  keyCredentials?: { displayName?: string; endDateTime?: string; customKeyIdentifier?: string; keyId?: string }[];
}

export type GraphAnswer = { ok: true; displayName?: string; credentials: Credential[] } | { ok: false; status: number; code?: string; message?: string; attempts?: number };

export async function getApplicationCredentials(ctx: PipelineContext, baseUrl: string, token: string, clientId: string, gate?: RequestGate): Promise<GraphAnswer> {
  const url = `${baseUrl}/v1.0/applications(appId='${encodeURIComponent(clientId)}')?$select=id,appId,displayName,passwordCredentials,keyCredentials`;
  const res = await ctx.http.request({ method: 'GET', url, service: GRAPH_SERVICE, gate, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } });
  const json = parseJson<ApplicationJson & { error?: { code?: string; message?: string } }>(res.body);
  if (res.status !== 200 || !json || typeof json !== 'object') {
    const e = json && typeof json === 'object' ? json.error : undefined;
    return { ok: false, status: res.status, code: typeof e?.code === 'string' ? quoteServiceText(e.code) : undefined, message: typeof e?.message === 'string' ? quoteServiceText(e.message) : undefined, attempts: res.attempts };
  }
  return {
    ok: true,
    displayName: json.displayName,
    credentials: [
      ...(json.passwordCredentials ?? []).map((c): Credential => ({ kind: 'secret', displayName: c.displayName, endDateTime: c.endDateTime, hint: c.hint, keyId: c.keyId })),
      ...(json.keyCredentials ?? []).map((c): Credential => ({ kind: 'certificate', displayName: c.displayName, endDateTime: c.endDateTime, hint: c.customKeyIdentifier, keyId: c.keyId })),
    ],
  };
}
