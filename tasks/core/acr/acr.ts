/**
 * Azure Container Registry: an Entra access token is exchanged at the registry's
 * /oauth2/exchange for an ACR refresh token, which docker, podman, skopeo and helm use as the
 * password of the user 00000000-0000-0000-0000-000000000000.
 */
import { PipelineContext } from '../agent/pipeline-context';
import { explainHttpStatus, serviceErrorText, TaskFailure } from '../http/failures';
import { safe } from '../agent/output';
import { header, parseJson } from '../http/http';
import { mask } from '../agent/variables';

export const ACR_SERVICE = 'Azure Container Registry';

export type TokenAudience = 'registry' | 'arm';

/** The Entra scope for each audience: the registry audience works even when authentication-as-arm is disabled. */
export function acrScope(audience: TokenAudience, resourceManager: string): string {
  return audience === 'registry' ? 'https://containerregistry.azure.net/.default' : `${resourceManager.replace(/\/+$/, '')}/.default`;
}

/** Exchanges the Entra token for the registry's refresh token; the token goes to this host only. */
export async function exchangeForRefreshToken(
  ctx: PipelineContext,
  loginServer: string,
  tenantId: string,
  accessToken: string,
  audience: TokenAudience,
  clientId: string,
): Promise<string> {
  const url = `https://${loginServer}/oauth2/exchange`;
  let res;
  try {
    res = await ctx.http.request({
      method: 'POST',
      url,
      service: `${ACR_SERVICE} ${loginServer}`,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'access_token', service: loginServer, tenant: tenantId, access_token: accessToken }).toString(),
    });
  } catch (e) {
    if (e instanceof TaskFailure && e.code === 'DNS') {
      throw new TaskFailure({
        what: `The registry ${loginServer} could not be found (its name does not resolve).`,
        cause: 'The registry name is wrong, the registry was deleted, or it is in another cloud than the service connection.',
        fix: 'Check the name in the Azure portal (Container registries > the registry > Login server) and the connection\'s environment.',
        code: 'ACR_NOT_FOUND',
      });
    }
    throw e;
  }
  // Only an error field of a known shape (errors[0], error_description, ...), first line, capped.
  const said = serviceErrorText(res.body);
  const evidence = said ? [safe`  The registry said: ${said}`] : [];
  if (res.status === 401 || res.status === 403) {
    const other: TokenAudience = audience === 'registry' ? 'arm' : 'registry';
    throw new TaskFailure({
      what: `${loginServer} refused the token exchange (HTTP ${res.status}) for identity ${clientId || '(managed identity)'} with the ${audience} audience.`,
      cause: `The identity has no AcrPush or AcrPull role on the registry, or the registry does not accept tokens of the ${audience} audience` +
        (audience === 'arm' ? ' (authentication-as-arm is disabled on the registry).' : '.'),
      fix: `Grant the identity AcrPush (to push) or AcrPull (to pull) on the registry (Access control (IAM) > Add role assignment); role assignments take a few minutes to apply. If the roles are there, try tokenAudience: ${other}.`,
      evidence,
      code: 'ACR_UNAUTHORIZED',
    });
  }
  if (res.status === 404) {
    throw new TaskFailure({
      what: `${loginServer} answered 404 to the token exchange.`,
      cause: 'The host is not an Azure Container Registry, the registry name is wrong, or it is in another cloud than the service connection.',
      fix: 'Check the login server in the Azure portal (Container registries > the registry > Login server).',
      evidence,
      code: 'ACR_NOT_FOUND',
    });
  }
  if (res.status !== 200) {
    throw explainHttpStatus(`${ACR_SERVICE} ${loginServer}`, url, res.status, res.body, header(res, 'content-type'), { connectionName: clientId }, res.retryAfterTooLong);
  }
  const json = parseJson<{ refresh_token?: string }>(res.body);
  const token = json && typeof json === 'object' ? json.refresh_token : undefined;
  if (typeof token !== 'string' || !token) {
    throw new TaskFailure({
      what: `${loginServer} answered the token exchange without a refresh token (${res.body.length} bytes${json ? '' : ', not JSON'}).`,
      cause: 'A proxy altered the answer, or the host is not an Azure Container Registry.',
      fix: 'Re-run the job; check the agent\'s proxy settings and the login server.',
      code: 'ACR_NO_REFRESH_TOKEN',
    });
  }
  mask(token);
  return token;
}
