// Azure Resource Manager, the reads a connection check needs: a subscription, the caller's
// effective permissions at a scope (Microsoft.Authorization/permissions), and role definitions.
// Served on the emulator's own host: a connection's resource-manager URL is `${emu.url}/`.
import * as crypto from 'node:crypto';
import type { Answer, RequestContext, Router } from './server';
import type { RolePermission } from './types';
import { checkBearer, principalIds, type AccessTokenClaims, type BearerFailure, ARM_AUDIENCES } from './bearer';
import { isGuid } from './jwt';
import { BUILT_IN_ROLES, findRole, normalizeScope, scopeCovers } from './roles';
import { sameId, type World } from './state';

// ARM of every cloud, with and without the trailing slash (the emulator plays whichever cloud a
// connection names). The error message lists the public cloud's, as ARM there does.
const PUBLIC_ARM_AUDIENCES = ['https://management.core.windows.net/', 'https://management.core.windows.net', 'https://management.azure.com/', 'https://management.azure.com'];
const SUBSCRIPTION_API_VERSIONS = ['2022-12-01', '2021-01-01', '2020-01-01', '2019-11-01', '2019-06-01', '2018-06-01', '2016-06-01', '2015-11-01', '2014-04-01-preview'];
const AUTHORIZATION_API_VERSIONS = ['2022-05-01-preview', '2022-04-01', '2018-07-01', '2018-01-01-preview', '2017-05-01', '2015-07-01'];
const READ_ACTION = 'Microsoft.Resources/subscriptions/read';

type ArmRoute = 'arm.subscription' | 'arm.permissions' | 'arm.roleDefinitions';

export function registerArm(router: Router, world: World): void {
  router.add({
    name: 'arm.subscription',
    method: 'GET',
    path: /^\/subscriptions\/(?<subscriptionId>[^/]+)\/?$/i,
    handle: (ctx) => subscription(ctx, world),
    errorAnswer: (status, ctx) => armFaultAnswer(status, ctx, 'arm.subscription'),
    truncatedBody: '{"id":"/subscriptions/',
  });
  router.add({
    name: 'arm.permissions',
    method: 'GET',
    path: /^(?<scope>.*)\/providers\/Microsoft\.Authorization\/permissions\/?$/i,
    handle: (ctx) => permissions(ctx, world),
    errorAnswer: (status, ctx) => armFaultAnswer(status, ctx, 'arm.permissions'),
    truncatedBody: '{"value":[{"actions":["Microsoft.ContainerRegistry/regis',
  });
  router.add({
    name: 'arm.roleDefinitions',
    method: 'GET',
    path: /^(?<scope>.*)\/providers\/Microsoft\.Authorization\/roleDefinitions(?:\/(?<roleId>[^/]+))?\/?$/i,
    handle: (ctx) => roleDefinitions(ctx, world),
    errorAnswer: (status, ctx) => armFaultAnswer(status, ctx, 'arm.roleDefinitions'),
    truncatedBody: '{"value":[{"properties":{"roleName":"AcrP',
  });
}

// --- GET /subscriptions/{id} ---------------------------------------------------------------------

function subscription(ctx: RequestContext, world: World): void {
  const caller = authenticate(ctx, world);
  if (!caller || !apiVersionOk(ctx, SUBSCRIPTION_API_VERSIONS)) return;
  const id = ctx.params.subscriptionId;
  const sub = checkSubscription(ctx, world, caller, id);
  if (!sub) return;
  const scope = `/subscriptions/${id}`;
  if (!world.roleAssignments().some((a) => principalIds(caller).includes(a.principalId.toLowerCase()) && scopeCovers(a.scope, scope))) {
    const oid = caller.oid ?? caller.appid ?? '';
    return armError(
      ctx,
      403,
      'AuthorizationFailed',
      `The client '${oid}' with object id '${oid}' does not have authorization to perform action '${READ_ACTION}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      subscriptionHeaders(),
    );
  }
  armJson(
    ctx,
    200,
    {
      id: `/subscriptions/${sub.subscriptionId}`,
      authorizationSource: 'RoleBased',
      managedByTenants: [],
      subscriptionId: sub.subscriptionId,
      tenantId: sub.tenantId,
      displayName: sub.displayName ?? `Subscription ${sub.subscriptionId.slice(0, 8)}`,
      state: sub.state ?? 'Enabled',
      subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' },
    },
    subscriptionHeaders(),
  );
}

// --- GET {scope}/providers/Microsoft.Authorization/permissions ------------------------------------

function permissions(ctx: RequestContext, world: World): void {
  const caller = authenticate(ctx, world);
  if (!caller || !apiVersionOk(ctx, AUTHORIZATION_API_VERSIONS)) return;
  const scope = checkScope(ctx, world, caller);
  if (scope === undefined) return;
  // One entry per role the caller holds at the scope or above it, in the order assigned.
  const ids = principalIds(caller);
  const seen = new Set<string>();
  const value: RolePermission[] = [];
  for (const a of world.roleAssignments()) {
    if (!ids.includes(a.principalId.toLowerCase()) || !scopeCovers(a.scope, scope) || seen.has(a.roleDefinitionId)) continue;
    seen.add(a.roleDefinitionId);
    const role = findRole(a.roleDefinitionId);
    if (role) value.push(...structuredClone(role.permissions));
  }
  armJson(ctx, 200, { value }, readHeaders(scope));
}

// --- GET {scope}/providers/Microsoft.Authorization/roleDefinitions[/{id}] ------------------------

function roleDefinitions(ctx: RequestContext, world: World): void {
  const caller = authenticate(ctx, world);
  if (!caller || !apiVersionOk(ctx, AUTHORIZATION_API_VERSIONS)) return;
  const scope = checkScope(ctx, world, caller);
  if (scope === undefined) return;
  const roleId = ctx.params.roleId;
  if (roleId) {
    const role = isGuid(roleId) ? findRole(roleId) : undefined;
    if (!role) return armError(ctx, 404, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${roleId}' does not exist.`, readHeaders(scope));
    return armJson(ctx, 200, roleDefinitionJson(role, scope), readHeaders(scope));
  }
  const filter = ctx.query('$filter');
  let roles = [...BUILT_IN_ROLES];
  if (filter !== undefined && filter.trim() !== '') {
    const parsed = parseRoleFilter(filter);
    if (!parsed) {
      return armError(
        ctx,
        400,
        'BadRequest',
        `The filter '${filter}' is not supported. Supported filters are either roleName eq '{value}' or type eq 'BuiltInRole|CustomRole'.`,
        readHeaders(scope),
      );
    }
    if (parsed.roleName !== undefined) roles = roles.filter((r) => r.roleName.toLowerCase() === parsed.roleName!.toLowerCase());
    if (parsed.type !== undefined) roles = parsed.type.toLowerCase() === 'builtinrole' ? roles : [];
  }
  armJson(ctx, 200, { value: roles.map((r) => roleDefinitionJson(r, scope)) }, readHeaders(scope));
}

function parseRoleFilter(filter: string): { roleName?: string; type?: string } | undefined {
  const m = /^\s*(roleName|type)\s+eq\s+'((?:[^']|'')*)'\s*$/i.exec(filter);
  if (!m) return undefined;
  const value = m[2].replace(/''/g, "'");
  return m[1].toLowerCase() === 'rolename' ? { roleName: value } : { type: value };
}

type BuiltInRole = (typeof BUILT_IN_ROLES)[number];

function roleDefinitionJson(role: BuiltInRole, scope: string): unknown {
  // ARM names built-in definitions under the subscription of the scope they were read at, or the tenant.
  const sub = /^\/subscriptions\/([^/]+)/i.exec(scope)?.[1];
  return {
    properties: {
      roleName: role.roleName,
      type: 'BuiltInRole',
      description: role.description,
      assignableScopes: ['/'],
      permissions: structuredClone(role.permissions),
      createdOn: role.createdOn,
      updatedOn: role.updatedOn,
      createdBy: null,
      updatedBy: null,
    },
    id: `${sub ? `/subscriptions/${sub}` : ''}/providers/Microsoft.Authorization/roleDefinitions/${role.id}`,
    type: 'Microsoft.Authorization/roleDefinitions',
    name: role.id,
  };
}

// --- shared checks -------------------------------------------------------------------------------

/** The caller's claims, or undefined once ARM's 401 has been sent. */
function authenticate(ctx: RequestContext, world: World): AccessTokenClaims | undefined {
  const check = checkBearer(ctx, world, ARM_AUDIENCES);
  if (check.ok) return check;
  const { code, message, description } = authFailure(check);
  ctx.send(
    armErrorAnswer(ctx, 401, code, message, {
      'WWW-Authenticate': `Bearer authorization_uri="${world.url}/", error="invalid_token", error_description="${description}"`,
    }),
  );
  return undefined;
}

function authFailure(f: BearerFailure): { code: string; message: string; description: string } {
  switch (f.reason) {
    case 'missing':
      return { code: 'AuthenticationFailed', message: "Authentication failed. The 'Authorization' header is missing.", description: "The authentication failed because of missing 'Authorization' header." };
    case 'scheme':
      return {
        code: 'AuthenticationFailed',
        message: "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        description: "The authentication failed because of invalid 'Authorization' header.",
      };
    case 'expired': {
      const message = `The access token expiry UTC time '${dotnetUsTime(f.exp * 1000)}' is earlier than current UTC time '${dotnetUsTime(Date.now())}'.`;
      return { code: 'ExpiredAuthenticationToken', message, description: 'The access token expiry UTC time is earlier than current UTC time.' };
    }
    case 'audience': {
      const message = `The access token has been obtained for wrong audience or resource '${f.audience}'. It should exactly match with one of the allowed audiences ${PUBLIC_ARM_AUDIENCES.map((a) => `'${a}'`).join(',')}.`;
      return { code: 'InvalidAuthenticationTokenAudience', message, description: 'The access token has been obtained from wrong audience or resource.' };
    }
    case 'issuer':
      return { code: 'InvalidAuthenticationTokenTenant', message: `The access token is from the wrong issuer '${f.issuer}'.`, description: 'The access token is from the wrong issuer.' };
    default:
      // malformed, bad signature, missing claims, not yet valid
      return { code: 'InvalidAuthenticationToken', message: 'The access token is invalid.', description: 'The access token is invalid.' };
  }
}

function apiVersionOk(ctx: RequestContext, supported: string[]): boolean {
  const version = ctx.query('api-version');
  if (version === undefined || version === '') {
    armError(ctx, 400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
    return false;
  }
  if (!/^\d{4}-\d{2}-\d{2}(-(preview|beta|alpha|privatepreview))?$/i.test(version)) {
    armError(ctx, 400, 'InvalidApiVersionParameter', `The api-version '${version}' is invalid. The supported versions are '${supported.join(',')}'.`);
    return false;
  }
  return true;
}

/** The subscription, once its id is well formed, it exists and the token is of its tenant; else the error is sent. */
function checkSubscription(ctx: RequestContext, world: World, caller: AccessTokenClaims, id: string) {
  if (!isGuid(id)) {
    armError(ctx, 400, 'InvalidSubscriptionId', `The provided subscription identifier '${id}' is malformed or invalid.`);
    return undefined;
  }
  const sub = world.findSubscription(id);
  if (!sub) {
    armError(ctx, 404, 'SubscriptionNotFound', `The subscription '${id}' could not be found.`);
    return undefined;
  }
  if (!sameId(caller.tid, sub.tenantId)) {
    const t = sub.tenantId.toLowerCase();
    ctx.send(
      armErrorAnswer(
        ctx,
        401,
        'InvalidAuthenticationTokenTenant',
        `The access token is from the wrong issuer '${caller.iss}'. It must match the tenant 'https://sts.windows.net/${t}/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/${t}' to get the token. Note, if the subscription is transferred to another tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). If you just transferred your subscription and see this error message, please try back later.`,
        { 'WWW-Authenticate': `Bearer authorization_uri="${world.url}/${t}", error="invalid_token", error_description="The access token is from the wrong issuer."` },
      ),
    );
    return undefined;
  }
  return sub;
}

/** The request's scope, normalized ('/' for the tenant root), or undefined once the error is sent. */
function checkScope(ctx: RequestContext, world: World, caller: AccessTokenClaims): string | undefined {
  const scope = normalizeScope(ctx.params.scope ?? '');
  if (scope === '/') return scope;
  const sub = /^\/subscriptions\/([^/]+)(\/.*)?$/i.exec(scope);
  if (!sub) {
    armError(ctx, 400, 'MissingSubscription', 'The request did not have a subscription or a valid tenant level resource provider.');
    return undefined;
  }
  return checkSubscription(ctx, world, caller, sub[1]) ? scope : undefined;
}

// --- answers -------------------------------------------------------------------------------------

function armHeaders(ctx: RequestContext): Record<string, string> {
  const given = ctx.req.headers['x-ms-correlation-request-id'];
  const correlation = typeof given === 'string' && given ? given : crypto.randomUUID();
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return {
    'Cache-Control': 'no-cache',
    Pragma: 'no-cache',
    Expires: '-1',
    'x-ms-request-id': crypto.randomUUID(),
    'x-ms-correlation-request-id': correlation,
    'x-ms-routing-request-id': `WESTEUROPE:${stamp}:${correlation}`,
    'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
    'X-Content-Type-Options': 'nosniff',
  };
}

function subscriptionHeaders(): Record<string, string> {
  return { 'x-ms-ratelimit-remaining-subscription-reads': '11999' };
}

function readHeaders(scope: string): Record<string, string> {
  return scope.toLowerCase().startsWith('/subscriptions/')
    ? { 'x-ms-ratelimit-remaining-subscription-reads': '11999' }
    : { 'x-ms-ratelimit-remaining-tenant-reads': '11999' };
}

function armJson(ctx: RequestContext, status: number, value: unknown, headers: Record<string, string> = {}): void {
  ctx.json(status, value, { ...armHeaders(ctx), ...headers });
}

/** ARM's error shape: {"error":{"code","message"}}. */
function armError(ctx: RequestContext, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  ctx.send(armErrorAnswer(ctx, status, code, message, headers));
}

function armErrorAnswer(ctx: RequestContext, status: number, code: string, message: string, headers: Record<string, string> = {}): Answer {
  return {
    status,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify({ error: { code, message } }),
    headers: { ...armHeaders(ctx), ...headers },
  };
}

function armFaultAnswer(status: number, ctx: RequestContext, route: ArmRoute): Answer {
  const headers = armHeaders(ctx);
  const correlation = headers['x-ms-correlation-request-id'];
  const sub = /\/subscriptions\/([^/?]+)/i.exec(ctx.url.pathname)?.[1] ?? '';
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const rp = route === 'arm.subscription' ? 'Microsoft.Resources' : 'Microsoft.Authorization';
  let code: string;
  let message: string;
  if (status === 429) {
    if (route === 'arm.subscription') {
      code = 'SubscriptionRequestsThrottled';
      message = `Number of 'read' requests for subscription '${sub}' actor '${crypto.randomUUID()}' exceeded. Please try again after '5' seconds after additional '0' requests`;
    } else {
      code = 'TooManyRequests';
      message = 'The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00. For more information, refer to - https://aka.ms/rbacthrottle';
    }
  } else if (status === 504) {
    code = 'GatewayTimeout';
    message = `The gateway did not receive a response from '${rp}' within the specified time period.`;
  } else if (status === 503) {
    code = 'ServiceUnavailable';
    message = 'The server is currently unable to handle the request due to a temporary overloading or maintenance of the server. Please try again later.';
  } else if (status === 502) {
    code = 'BadGateway';
    message = `The gateway received an invalid response from '${rp}'.`;
  } else if (status >= 500) {
    code = 'InternalServerError';
    message = `Encountered internal server error. Diagnostic information: timestamp '${stamp}', subscription id '${sub}', tracking id '${crypto.randomUUID()}', request correlation id '${correlation}'.`;
  } else if (status === 401) {
    code = 'InvalidAuthenticationToken';
    message = 'The access token is invalid.';
  } else if (status === 403) {
    code = 'AuthorizationFailed';
    message = `The client does not have authorization to perform this action over scope '${ctx.url.pathname}' or the scope is invalid. If access was recently granted, please refresh your credentials.`;
  } else if (status === 404) {
    code = 'NotFound';
    message = `The requested resource '${ctx.url.pathname}' was not found.`;
  } else {
    code = 'BadRequest';
    message = `The request failed (HTTP ${status}).`;
  }
  return armErrorAnswer(ctx, status, code, message, headers);
}

/** DateTime.ToString() in en-US, as ARM words times in its messages: 1/2/2025 3:04:05 PM. */
function dotnetUsTime(ms: number): string {
  const d = new Date(ms);
  const h = d.getUTCHours();
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()} ${h % 12 === 0 ? 12 : h % 12}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${h < 12 ? 'AM' : 'PM'}`;
}
