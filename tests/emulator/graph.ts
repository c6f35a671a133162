// Microsoft Graph, the reads a connection check needs: an app registration with the end dates of
// its secrets and certificates (never their values), and its service principal. Served on the
// emulator's own host under /v1.0/ (and /beta/). Reading either needs the application permission
// Application.Read.All (or Directory.Read.All ...), carried in the token's roles claim.
import * as crypto from 'node:crypto';
import type { Answer, RequestContext, Router } from './server';
import type { ManagedIdentity } from './types';
import { checkBearer, type AccessTokenClaims, type BearerFailure } from './bearer';
import { certificateThumbprints } from './pki';
import { isGuid } from './jwt';
import { deterministicGuid, sameId, type RegisteredApp, type World } from './state';

/** Graph's resource identifiers in every cloud (v1 tokens say the URL, v2 tokens the app id). */
export const GRAPH_AUDIENCES: ReadonlySet<string> = new Set(
  [
    'https://graph.microsoft.com',
    'https://graph.microsoft.us',
    'https://dod-graph.microsoft.us',
    'https://microsoftgraph.chinacloudapi.cn',
  ].flatMap((a) => [a, `${a}/`]).concat(['00000003-0000-0000-c000-000000000000']),
);
/** The app role a service principal with graphAccess 'read' holds on Graph. */
export const GRAPH_READ_ROLE = 'Application.Read.All';
// Any of these lets an app read applications and service principals.
const READ_ROLES = new Set(['application.read.all', 'application.readwrite.all', 'directory.read.all', 'directory.readwrite.all']);
const SECRET_DEFAULT_LIFETIME_MS = 180 * 86400_000;
const PUBLISHER_DOMAIN = 'contoso.onmicrosoft.com';

type EntitySet = 'applications' | 'servicePrincipals';

/** Extra access-token claims for a Graph token: the app roles the identity was granted. */
export function graphRolesClaim(audience: string, access: 'read' | 'forbidden' | undefined): Record<string, unknown> | undefined {
  if (access !== 'read' || ![...GRAPH_AUDIENCES].some((a) => a.toLowerCase() === audience.toLowerCase())) return undefined;
  return { roles: [GRAPH_READ_ROLE] };
}

export function registerGraph(router: Router, world: World): void {
  router.add({
    name: 'graph.application',
    method: 'GET',
    path: /^\/(?<version>v1\.0|beta)\/applications(?<rest>(?:\(|%28|\/).*)?$/i,
    handle: (ctx) => serve(ctx, world, 'applications'),
    errorAnswer: graphFaultAnswer,
    truncatedBody: '{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#applications(id,appId',
  });
  router.add({
    name: 'graph.servicePrincipal',
    method: 'GET',
    path: /^\/(?<version>v1\.0|beta)\/servicePrincipals(?<rest>(?:\(|%28|\/).*)?$/i,
    handle: (ctx) => serve(ctx, world, 'servicePrincipals'),
    errorAnswer: graphFaultAnswer,
    truncatedBody: '{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity","id":"',
  });
}

// --- the request ---------------------------------------------------------------------------------

type Target = { kind: 'list' } | { kind: 'appId'; value: string } | { kind: 'id'; value: string };

function serve(ctx: RequestContext, world: World, set: EntitySet): void {
  const caller = authenticate(ctx, world);
  if (!caller) return;

  const target = parseTarget(ctx);
  if (!target) return;
  const select = parseSelect(ctx, set);
  if (select === null) return;
  let filterAppId: string | undefined;
  if (target.kind === 'list') {
    const filter = ctx.query('$filter');
    if (filter !== undefined) {
      const m = /^\s*appId\s+eq\s+'([^']*)'\s*$/i.exec(filter);
      if (!m) return graphError(ctx, 400, 'Request_UnsupportedQuery', 'Unsupported Query.');
      filterAppId = m[1];
    }
  }

  if (!caller.roles.some((r) => READ_ROLES.has(r.toLowerCase()))) {
    return graphError(ctx, 403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
  }

  const all = set === 'applications' ? applicationsOf(world, caller.tid) : servicePrincipalsOf(world, caller.tid);
  const version = ctx.params.version.toLowerCase();
  const context = `${world.url}/${version}/$metadata#${set}${select ? `(${select.raw})` : ''}`;
  if (target.kind === 'list') {
    const value = all.filter((e) => filterAppId === undefined || sameId(String(e.appId), filterAppId)).map((e) => project(e, select));
    return graphJson(ctx, { '@odata.context': context, value });
  }
  const entity = all.find((e) => (target.kind === 'appId' ? sameId(String(e.appId), target.value) : sameId(String(e.id), target.value)));
  if (!entity) {
    return graphError(ctx, 404, 'Request_ResourceNotFound', `Resource '${target.value}' does not exist or one of its queried reference-property objects are not present.`);
  }
  graphJson(ctx, { '@odata.context': `${context}/$entity`, ...project(entity, select) });
}

/** What the path names: the collection, an entity by appId (alternate key) or by object id. */
function parseTarget(ctx: RequestContext): Target | undefined {
  const rest = ctx.params.rest ?? '';
  if (rest === '' || rest === '/') return { kind: 'list' };
  const key = /^\(\s*appId\s*=\s*'([^']*)'\s*\)\/?$/i.exec(rest);
  if (key) return { kind: 'appId', value: key[1] };
  const byId = /^(?:\/([^/()]+)|\('([^']*)'\)|\(([^'()]+)\))\/?$/.exec(rest);
  if (byId) {
    const id = byId[1] ?? byId[2] ?? byId[3];
    if (!isGuid(id)) {
      graphError(ctx, 400, 'Request_BadRequest', `Invalid object identifier '${id}'.`);
      return undefined;
    }
    return { kind: 'id', value: id };
  }
  const segment = rest.replace(/^[/(]+/, '').split(/[/()]/).filter(Boolean).pop() ?? rest;
  graphError(ctx, 400, 'BadRequest', `Resource not found for the segment '${segment}'.`);
  return undefined;
}

/** undefined: no $select; null: the 400 has been sent. */
function parseSelect(ctx: RequestContext, set: EntitySet): { raw: string; names: string[] } | undefined | null {
  const raw = ctx.query('$select');
  if (raw === undefined || raw.trim() === '') return undefined;
  const known = set === 'applications' ? APPLICATION_PROPERTIES : SERVICE_PRINCIPAL_PROPERTIES;
  const type = set === 'applications' ? 'application' : 'servicePrincipal';
  const names: string[] = [];
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const name = known.find((k) => k.toLowerCase() === part.toLowerCase());
    if (!name) {
      graphError(ctx, 400, 'Request_BadRequest', `Could not find a property named '${part}' on type 'microsoft.graph.${type}'.`);
      return null;
    }
    if (!names.includes(name)) names.push(name);
  }
  return { raw: raw.split(',').map((p) => p.trim()).filter(Boolean).join(','), names };
}

function project(entity: Record<string, unknown>, select: { names: string[] } | undefined): Record<string, unknown> {
  if (!select) return entity;
  // Graph answers with the selected properties in the type's order.
  return Object.fromEntries(Object.entries(entity).filter(([k]) => select.names.includes(k)));
}

// --- entities ------------------------------------------------------------------------------------

const APPLICATION_PROPERTIES = [
  'id', 'deletedDateTime', 'appId', 'applicationTemplateId', 'disabledByMicrosoftStatus', 'createdDateTime', 'displayName', 'description',
  'groupMembershipClaims', 'identifierUris', 'isDeviceOnlyAuthSupported', 'isFallbackPublicClient', 'notes', 'publisherDomain',
  'serviceManagementReference', 'signInAudience', 'tags', 'tokenEncryptionKeyId', 'defaultRedirectUri', 'keyCredentials',
  'passwordCredentials', 'requiredResourceAccess',
];

const SERVICE_PRINCIPAL_PROPERTIES = [
  'id', 'deletedDateTime', 'accountEnabled', 'alternativeNames', 'appDisplayName', 'appDescription', 'appId', 'applicationTemplateId',
  'appOwnerOrganizationId', 'appRoleAssignmentRequired', 'description', 'disabledByMicrosoftStatus', 'displayName', 'homepage',
  'loginUrl', 'logoutUrl', 'notes', 'preferredSingleSignOnMode', 'servicePrincipalNames', 'servicePrincipalType', 'signInAudience',
  'tags', 'keyCredentials', 'passwordCredentials',
];

function applicationsOf(world: World, tenantId: string): Record<string, unknown>[] {
  return world.apps().filter((a) => sameId(a.tenantId, tenantId)).map(applicationJson);
}

function applicationJson(app: RegisteredApp): Record<string, unknown> {
  return {
    id: app.objectId,
    deletedDateTime: null,
    appId: app.clientId,
    applicationTemplateId: null,
    disabledByMicrosoftStatus: null,
    createdDateTime: graphTime(Date.parse(app.createdDateTime)),
    displayName: app.displayName ?? app.clientId,
    description: null,
    groupMembershipClaims: null,
    identifierUris: [],
    isDeviceOnlyAuthSupported: null,
    isFallbackPublicClient: null,
    notes: null,
    publisherDomain: PUBLISHER_DOMAIN,
    serviceManagementReference: null,
    signInAudience: 'AzureADMyOrg',
    tags: [],
    tokenEncryptionKeyId: null,
    defaultRedirectUri: null,
    keyCredentials: keyCredentials(app),
    passwordCredentials: passwordCredentials(app),
    requiredResourceAccess: [],
  };
}

/** Secrets as Graph shows them: a three-character hint, never the value (secretText is null). */
function passwordCredentials(app: RegisteredApp): Record<string, unknown>[] {
  const created = Date.parse(app.createdDateTime);
  return (app.secrets ?? []).map((s, i) => {
    const end = Date.parse(s.endDateTime);
    const start = s.startDateTime ? Date.parse(s.startDateTime) : Math.min(created, end - SECRET_DEFAULT_LIFETIME_MS);
    return {
      customKeyIdentifier: null,
      displayName: s.displayName ?? null,
      endDateTime: graphTime(end),
      hint: s.value.slice(0, 3),
      keyId: (s.keyId ?? deterministicGuid(`password:${app.clientId.toLowerCase()}:${i}`)).toLowerCase(),
      secretText: null,
      startDateTime: graphTime(start),
    };
  });
}

/** Certificates: the public part's metadata; key is null unless asked for with $select=keyCredentials/key (not emulated). */
function keyCredentials(app: RegisteredApp): Record<string, unknown>[] {
  return (app.certificates ?? []).map((c) => {
    const x509 = new crypto.X509Certificate(c.certificatePem);
    const thumbprint = certificateThumbprints(c.certificatePem).sha1Hex;
    // .NET's X500DistinguishedName.Name: most specific first, comma-separated.
    const subject = x509.subject.split('\n').filter(Boolean).reverse().join(', ');
    return {
      customKeyIdentifier: thumbprint,
      displayName: c.displayName ?? subject,
      endDateTime: graphTime(c.endDateTime ? Date.parse(c.endDateTime) : Date.parse(x509.validTo)),
      key: null,
      keyId: (c.keyId ?? deterministicGuid(`key:${app.clientId.toLowerCase()}:${thumbprint}`)).toLowerCase(),
      startDateTime: graphTime(Date.parse(x509.validFrom)),
      type: 'AsymmetricX509Cert',
      usage: 'Verify',
    };
  });
}

function servicePrincipalsOf(world: World, tenantId: string): Record<string, unknown>[] {
  const apps = world.apps().filter((a) => sameId(a.tenantId, tenantId)).map((app) =>
    servicePrincipalJson({
      id: app.servicePrincipalObjectId,
      appId: app.clientId,
      displayName: app.displayName ?? app.clientId,
      tenantId: app.tenantId,
      enabled: !app.disabled,
      type: 'Application',
    }),
  );
  const identities = world
    .managedIdentities()
    .filter((m) => sameId(m.tenantId, tenantId))
    .map((m: ManagedIdentity) =>
      servicePrincipalJson({ id: m.objectId ?? m.clientId, appId: m.clientId, displayName: m.displayName ?? m.clientId, tenantId: m.tenantId, enabled: true, type: 'ManagedIdentity' }),
    );
  return [...apps, ...identities];
}

function servicePrincipalJson(sp: { id: string; appId: string; displayName: string; tenantId: string; enabled: boolean; type: 'Application' | 'ManagedIdentity' }): Record<string, unknown> {
  const managed = sp.type === 'ManagedIdentity';
  return {
    id: sp.id.toLowerCase(),
    deletedDateTime: null,
    accountEnabled: sp.enabled,
    alternativeNames: managed ? ['isExplicit=True'] : [],
    appDisplayName: managed ? null : sp.displayName,
    appDescription: null,
    appId: sp.appId,
    applicationTemplateId: null,
    appOwnerOrganizationId: managed ? 'f8cdef31-a31e-4b4a-93e4-5f571e91255a' : sp.tenantId.toLowerCase(),
    appRoleAssignmentRequired: false,
    description: null,
    disabledByMicrosoftStatus: null,
    displayName: sp.displayName,
    homepage: null,
    loginUrl: null,
    logoutUrl: null,
    notes: null,
    preferredSingleSignOnMode: null,
    servicePrincipalNames: [sp.appId],
    servicePrincipalType: sp.type,
    signInAudience: managed ? null : 'AzureADMyOrg',
    tags: [],
    keyCredentials: [],
    passwordCredentials: [],
  };
}

// --- authentication and answers ------------------------------------------------------------------

function authenticate(ctx: RequestContext, world: World): AccessTokenClaims | undefined {
  const check = checkBearer(ctx, world, GRAPH_AUDIENCES);
  if (check.ok) return check;
  ctx.send(
    graphErrorAnswer(ctx, 401, 'InvalidAuthenticationToken', authFailureMessage(check), {
      'WWW-Authenticate': `Bearer realm="", authorization_uri="${world.url}/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`,
    }),
  );
  return undefined;
}

function authFailureMessage(f: BearerFailure): string {
  switch (f.reason) {
    case 'missing':
    case 'scheme':
      return 'Access token is empty.';
    case 'malformed':
      return 'CompactToken parsing failed with error code: 80049217';
    case 'expired':
      return 'Lifetime validation failed, the token is expired.';
    case 'not-yet-valid':
      return 'Lifetime validation failed, the token is not yet valid.';
    case 'audience':
      return 'Access token validation failure. Invalid audience.';
    case 'issuer':
      return 'Access token validation failure. Invalid issuer.';
    default:
      return 'Access token validation failure.';
  }
}

function graphHeaders(ctx: RequestContext): Record<string, string> {
  const given = ctx.req.headers['client-request-id'];
  const requestId = crypto.randomUUID();
  return {
    'Cache-Control': 'no-cache',
    'Strict-Transport-Security': 'max-age=31536000',
    'request-id': requestId,
    'client-request-id': typeof given === 'string' && given ? given : requestId,
    'x-ms-ags-diagnostic': JSON.stringify({ ServerInfo: { DataCenter: 'West Europe', Slice: 'E', Ring: '5', ScaleUnit: '000', RoleInstance: 'AM2PEPF0001C77E' } }),
    'x-ms-resource-unit': '1',
  };
}

function graphJson(ctx: RequestContext, value: unknown): void {
  ctx.send({
    status: 200,
    contentType: 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8',
    body: JSON.stringify(value),
    headers: { ...graphHeaders(ctx), 'OData-Version': '4.0' },
  });
}

function graphError(ctx: RequestContext, status: number, code: string, message: string): void {
  ctx.send(graphErrorAnswer(ctx, status, code, message));
}

/** Graph's error shape, innerError with the date (no zone) and the request ids. */
function graphErrorAnswer(ctx: RequestContext, status: number, code: string, message: string, extraHeaders: Record<string, string> = {}): Answer {
  const headers = graphHeaders(ctx);
  const body = {
    error: {
      code,
      message,
      innerError: { date: new Date().toISOString().replace(/\.\d+Z$/, ''), 'request-id': headers['request-id'], 'client-request-id': headers['client-request-id'] },
    },
  };
  return { status, contentType: 'application/json', body: JSON.stringify(body), headers: { ...headers, ...extraHeaders } };
}

function graphFaultAnswer(status: number, ctx: RequestContext): Answer {
  if (status === 429) {
    const headers = graphHeaders(ctx);
    const body = {
      error: {
        code: 'TooManyRequests',
        message: 'Too many requests.',
        innerError: { code: '429', date: new Date().toISOString().replace(/\.\d+Z$/, ''), message: 'Please retry after', 'request-id': headers['request-id'], status: '429' },
      },
    };
    return { status, contentType: 'application/json', body: JSON.stringify(body), headers };
  }
  if (status === 401) return graphErrorAnswer(ctx, status, 'InvalidAuthenticationToken', 'Access token validation failure.');
  if (status === 403) return graphErrorAnswer(ctx, status, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
  if (status === 404) return graphErrorAnswer(ctx, status, 'Request_ResourceNotFound', `Resource '${ctx.url.pathname}' does not exist or one of its queried reference-property objects are not present.`);
  if (status === 503) return graphErrorAnswer(ctx, status, 'serviceNotAvailable', 'The service is temporarily unavailable. Please try again later.');
  if (status === 504) return graphErrorAnswer(ctx, status, 'UnknownError', '');
  if (status >= 500) return graphErrorAnswer(ctx, status, 'generalException', 'General exception while processing.');
  return graphErrorAnswer(ctx, status, 'BadRequest', `The request failed (HTTP ${status}).`);
}

/** Graph's DateTimeOffset: ISO 8601 in UTC, without a zero fraction. */
function graphTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
