// Azure Instance Metadata Service, the managed identity token endpoint only. msal-node's
// ManagedIdentityApplication reaches it at ${AZURE_POD_IDENTITY_AUTHORITY_HOST}/metadata/identity/oauth2/token
// with api-version=2018-02-01, resource, and client_id / object_id / msi_res_id for a user-assigned identity.
import type { Answer, RequestContext, Router } from './server';
import type { ManagedIdentity } from './types';
import { mintAccessToken } from './entra';
import { graphRolesClaim } from './graph';
import { sameId, World } from './state';

// IMDS hands out day-long tokens.
const MI_TOKEN_LIFETIME = 86399;

export function registerImds(router: Router, world: World): void {
  router.add({
    name: 'imds',
    method: 'GET',
    path: /^\/metadata\/identity\/oauth2\/token\/?$/, // msal-node appends a slash
    handle: (ctx) => imdsToken(ctx, world),
    errorAnswer: imdsFaultAnswer,
    truncatedBody: '{"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6',
  });
}

function imdsToken(ctx: RequestContext, world: World): void {
  const bad = (description: string) => ctx.json(400, { error: 'invalid_request', error_description: description }, imdsHeaders());
  // IMDS refuses anything without this header, so that a server-side request forgery cannot reach it.
  if (String(ctx.req.headers.metadata ?? '').toLowerCase() !== 'true') return bad('Required metadata header not specified');
  if (ctx.req.headers['x-forwarded-for']) return bad('Request contains X-Forwarded-For header');
  if (!ctx.query('api-version')) {
    return ctx.json(
      400,
      { error: 'Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds', 'newest-versions': ['2023-07-01', '2021-12-13', '2021-11-15'] },
      imdsHeaders(),
    );
  }
  const resource = ctx.query('resource');
  if (!resource) return bad('Required audience parameter not specified');

  const clientId = ctx.query('client_id');
  const objectId = ctx.query('object_id');
  const resourceId = ctx.query('msi_res_id');
  const all = world.managedIdentities();
  let identity: ManagedIdentity | undefined;
  if (clientId) identity = all.find((m) => sameId(m.clientId, clientId));
  else if (objectId) identity = all.find((m) => m.objectId !== undefined && sameId(m.objectId, objectId));
  else if (resourceId) identity = undefined; // identities here have no ARM resource id
  else if (all.length > 1) {
    return bad('Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request');
  } else identity = all[0];
  if (!identity) return bad('Identity not found');

  const audience = resource.endsWith('/.default') ? resource.slice(0, -'/.default'.length) : resource;
  const { token, exp, iat } = mintAccessToken(world, {
    tenantId: identity.tenantId,
    appId: identity.clientId,
    objectId: identity.objectId ?? identity.clientId,
    audience,
    appidacr: '2',
    lifetimeSeconds: MI_TOKEN_LIFETIME,
    extraClaims: graphRolesClaim(audience, identity.graphAccess),
  });
  // IMDS sends the numbers as strings.
  ctx.json(
    200,
    {
      access_token: token,
      client_id: identity.clientId,
      expires_in: String(MI_TOKEN_LIFETIME),
      expires_on: String(exp),
      ext_expires_in: String(MI_TOKEN_LIFETIME),
      not_before: String(iat),
      resource,
      token_type: 'Bearer',
    },
    imdsHeaders(),
  );
}

function imdsHeaders(): Record<string, string> {
  return { Server: 'IMDS/150.870.65.1544' };
}

function imdsFaultAnswer(status: number): Answer {
  const body =
    status === 429
      ? { error: 'too_many_requests', error_description: 'Too many requests. Retry after the time given in the Retry-After header.' }
      : status >= 500
        ? { error: 'unknown_error', error_description: 'An unexpected error occured while fetching the AAD Token.' }
        : { error: 'invalid_request', error_description: `The request failed (HTTP ${status}).` };
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(body), headers: imdsHeaders() };
}
