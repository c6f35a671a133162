// Azure DevOps: the Oidctoken API (idTokens for service connections) and the service endpoint API.
import * as crypto from 'node:crypto';
import type { Answer, RequestContext, Router } from './server';
import type { ServiceConnection } from './types';
import { b64url, guidToDotNetBytes, isGuid, nowSeconds, signJwt } from './jwt';
import { DEFAULT_PROJECT, EXCHANGE_AUDIENCE, ORGANIZATION, PIPELINE_NAME, World, deterministicGuid } from './state';

export const DEFAULT_CREATOR = { displayName: 'Contoso Admin', id: '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d', uniqueName: 'admin@contoso.com' };

/**
 * The operationStatus Azure DevOps shows when it could not rotate an automatic connection's secret,
 * typically because the connection's creator has left (seed 000). Use with isReady: false.
 */
export const SECRET_ROTATION_FAILED = {
  state: 'Failed',
  statusMessage:
    'One or more issues occurred while trying to rotate service endpoint secrets. More details: Insufficient privileges to complete the operation in Microsoft Graph.',
} as const;

// The project build service identity that a job token stands for.
const BUILD_SERVICE_ID = `Build\\${DEFAULT_PROJECT.id}`;

export function registerDevOps(router: Router, world: World): void {
  const org = ORGANIZATION.name;
  router.add({
    name: 'oidctoken',
    method: 'POST',
    path: new RegExp(`^/${org}/(?<project>[^/]+)/_apis/distributedtask/hubs/(?<hostType>[^/]+)/plans/(?<planId>[^/]+)/jobs/(?<jobId>[^/]+)/oidctoken$`, 'i'),
    handle: (ctx) => oidcToken(ctx, world),
    errorAnswer: devopsFaultAnswer,
    truncatedBody: '{"oidcToken":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtp',
  });
  router.add({
    name: 'serviceendpoint',
    method: 'GET',
    path: new RegExp(`^/${org}/(?<project>[^/]+)/_apis/serviceendpoint/endpoints/(?<id>[^/]+)$`, 'i'),
    handle: (ctx) => serviceEndpoint(ctx, world),
    errorAnswer: devopsFaultAnswer,
    truncatedBody: '{"data":{"environment":"AzureCloud","scopeLevel":"Subscr',
  });
}

/** The issuer and subject an idToken for the connection carries. */
export function federationOf(sc: ServiceConnection): { issuer: string; subject: string; audience: typeof EXCHANGE_AUDIENCE } {
  if ((sc.issuerMode ?? 'vstoken') === 'entra') {
    const t = b64url(guidToDotNetBytes(sc.tenantId));
    const a = b64url(guidToDotNetBytes(sc.clientId));
    return {
      issuer: `https://login.microsoftonline.com/${sc.tenantId.toLowerCase()}/v2.0`,
      subject: `/eid1/c/pub/t/${t}/a/${a}/sc/${ORGANIZATION.id}/${sc.id.toLowerCase()}`,
      audience: EXCHANGE_AUDIENCE,
    };
  }
  return {
    issuer: `https://vstoken.dev.azure.com/${ORGANIZATION.id}`,
    subject: `sc://${ORGANIZATION.name}/${sc.projectName ?? DEFAULT_PROJECT.name}/${sc.name}`,
    audience: EXCHANGE_AUDIENCE,
  };
}

/** A connection without a subscription still answers with a stable one, like a connection made in the UI. */
export function subscriptionOf(sc: ServiceConnection): { id: string; name: string } {
  const h = crypto.createHash('sha256').update(`subscription:${sc.id.toLowerCase()}`).digest('hex');
  return {
    id: sc.subscriptionId ?? `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`,
    name: sc.subscriptionName ?? 'Contoso Production',
  };
}

/** Azure DevOps answers a missing or bad token with a sign-in page and 203, not 401. */
export function signInPageAnswer(): Answer {
  const body = `<!DOCTYPE html >
<html>
  <head>
    <title>Azure DevOps Services | Sign In</title>
    <meta http-equiv="X-UA-Compatible" content="IE=11;&#32;IE=10;&#32;IE=9;&#32;IE=8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <link rel="SHORTCUT ICON" href="/favicon.ico"/>
  </head>
  <body class="platform">
    <div class="header-bar"><span class="brand">Azure DevOps</span></div>
    <div class="content">
      <h1>Sign in to continue to Azure DevOps</h1>
      <p>Your session has expired or you are not signed in.</p>
      <a id="signin" href="https://app.vssps.visualstudio.com/_signin?realm=dev.azure.com&amp;reply_to=https%3A%2F%2Fdev.azure.com%2F${ORGANIZATION.name}%2F">Sign in</a>
    </div>
  </body>
</html>
`;
  return {
    status: 203,
    contentType: 'text/html; charset=utf-8',
    body,
    headers: { 'X-TFS-ProcessId': crypto.randomUUID(), 'X-VSS-E2EID': crypto.randomUUID(), ActivityId: crypto.randomUUID() },
  };
}

async function oidcToken(ctx: RequestContext, world: World): Promise<void> {
  if (!authorized(ctx, world)) return ctx.send(signInPageAnswer());
  if (!hasApiVersion(ctx)) return sendVersionMissing(ctx);
  const project = world.findProject(ctx.params.project);
  if (!project) return sendProjectNotFound(ctx);
  await ctx.body(); // the client sends {}; read it so keep-alive connections stay usable
  const hub = world.plans.get(ctx.params.planId.toLowerCase());
  if (hub && hub !== ctx.params.hostType.toLowerCase()) {
    return sendDevOpsJson(
      ctx,
      404,
      devopsErrorBody(
        `Orchestration plan with identifier ${ctx.params.planId} was not found in hub ${ctx.params.hostType}.`,
        'Microsoft.TeamFoundation.DistributedTask.WebApi.TaskOrchestrationPlanNotFoundException, Microsoft.TeamFoundation.DistributedTask.WebApi',
        'TaskOrchestrationPlanNotFoundException',
      ),
    );
  }
  const connectionId = ctx.query('serviceConnectionId');
  // Observed: a missing or non-GUID serviceConnectionId yields the pipeline's own token.
  if (!connectionId || !isGuid(connectionId)) {
    const run = world.pipelineRun;
    const claims = {
      org_id: ORGANIZATION.id,
      prj_id: project.id,
      def_id: run.definitionId,
      rpo_id: run.repositoryId,
      rpo_uri: run.repositoryUri,
      rpo_ver: run.repositoryVersion,
      rpo_ref: run.repositoryRef,
      run_id: run.runId,
    };
    const token = mintIdToken(world, `https://vstoken.dev.azure.com/${ORGANIZATION.id}`, `p://${ORGANIZATION.name}/${project.name}/${PIPELINE_NAME}`, claims, world.pipelineTokenLifetimeSeconds);
    return sendDevOpsJson(ctx, 200, { oidcToken: token });
  }
  const sc = world.findConnection(connectionId);
  if (!sc || (sc.projectName ?? DEFAULT_PROJECT.name).toLowerCase() !== project.name.toLowerCase()) {
    return sendEndpointNotFound(ctx, connectionId);
  }
  const fed = federationOf(sc);
  const extra: Record<string, unknown> =
    (sc.issuerMode ?? 'vstoken') === 'entra' ? { tid: sc.tenantId.toLowerCase(), ver: '2.0' } : {};
  sendDevOpsJson(ctx, 200, { oidcToken: mintIdToken(world, fed.issuer, fed.subject, extra) });
}

function mintIdToken(world: World, iss: string, sub: string, extra: Record<string, unknown>, lifetimeSeconds?: number): string {
  const now = nowSeconds();
  const lifetime = lifetimeSeconds ?? world.idTokenLifetimeSeconds;
  // An already expired token looks like one issued ten minutes before it expired, as a stale one would.
  const exp = now + lifetime;
  const iat = lifetime >= 0 ? now : exp - 600;
  const token = signJwt(
    { typ: 'JWT', kid: world.pki.devops.kid },
    { jti: crypto.randomUUID(), sub, aud: EXCHANGE_AUDIENCE, iss, iat, nbf: iat, exp, ...extra },
    world.pki.devops.privateKey,
  );
  world.recordSecret(token);
  return token;
}

function serviceEndpoint(ctx: RequestContext, world: World): void {
  if (!authorized(ctx, world)) return ctx.send(signInPageAnswer());
  if (!hasApiVersion(ctx)) return sendVersionMissing(ctx);
  const project = world.findProject(ctx.params.project);
  if (!project) return sendProjectNotFound(ctx);
  const sc = isGuid(ctx.params.id) ? world.findConnection(ctx.params.id) : undefined;
  if (!sc || (sc.projectName ?? DEFAULT_PROJECT.name).toLowerCase() !== project.name.toLowerCase()) {
    return sendEndpointNotFound(ctx, ctx.params.id);
  }
  const access = sc.endpointAccess ?? 'ok';
  if (access === 'unauthorized') return sendUnauthorized(ctx, world);
  if (access === 'forbidden') return sendEndpointForbidden(ctx, sc.id, project.name);
  sendDevOpsJson(ctx, 200, serviceEndpointJson(sc, project, (n) => world.findProject(n)));
}

/** The URL a contributed type declares when its connection has none (vss-extension.json: properties.url.value). */
const TYPE_URLS: Record<string, string> = { workloadidentityaws: 'https://sts.amazonaws.com/', workloadidentitygcp: 'https://sts.googleapis.com/' };

export function serviceEndpointJson(sc: ServiceConnection, project: { id: string; name: string }, projectOf: (name: string) => { id: string; name: string } | undefined = () => undefined): unknown {
  if (sc.scheme === 'None' || sc.scheme === 'UsernamePassword') return otherEndpointJson(sc, project, projectOf);
  const parameters: Record<string, string | null> = {
    tenantid: sc.tenantId,
    serviceprincipalid: sc.clientId,
  };
  if (sc.scheme === 'WorkloadIdentityFederation') {
    const fed = federationOf(sc);
    parameters.workloadIdentityFederationIssuer = sc.expectedIssuer ?? fed.issuer;
    parameters.workloadIdentityFederationSubject = sc.expectedSubject ?? fed.subject;
    parameters.workloadIdentityFederationIssuerType = (sc.issuerMode ?? 'vstoken') === 'entra' ? 'EntraID' : 'AzureDevOps';
  } else if (sc.scheme === 'ServicePrincipal') {
    const certificate = sc.authenticationType === 'spnCertificate' || (!sc.authenticationType && sc.servicePrincipalCertificate);
    parameters.authenticationType = certificate ? 'spnCertificate' : 'spnKey';
    // The REST API never returns secrets; it says the field exists with null.
    parameters[certificate ? 'servicePrincipalCertificate' : 'serviceprincipalkey'] = null;
  } else {
    delete parameters.serviceprincipalid;
  }
  const subscription = subscriptionOf(sc);
  const ready = sc.isReady ?? true;
  const type = sc.type ?? 'azurerm';
  const environment = sc.environment ?? 'AzureCloud';
  const data: Record<string, string> =
    type === 'dockerregistry'
      ? { registrytype: 'ACR', registryId: `/subscriptions/${subscription.id}/resourceGroups/build/providers/Microsoft.ContainerRegistry/registries/contosoimages`, subscriptionId: subscription.id, subscriptionName: subscription.name, environment }
      : { subscriptionId: subscription.id, subscriptionName: subscription.name, environment, scopeLevel: 'Subscription', creationMode: sc.creationMode ?? 'Automatic' };
  if (type === 'dockerregistry') data.creationMode = sc.creationMode ?? 'Automatic';
  const urls: Record<string, string> = { AzureCloud: 'https://management.azure.com/', AzureUSGovernment: 'https://management.usgovcloudapi.net/', AzureChinaCloud: 'https://management.chinacloudapi.cn/' };
  return endpointRecord(sc, project, projectOf, { data, type, url: type === 'dockerregistry' ? 'https://contosoimages.azurecr.io' : urls[environment] ?? 'https://management.local.azurestack.external/', parameters, ready });
}

/** What every service endpoint answer shares, given what its type puts in data, url and the scheme's parameters. */
function endpointRecord(
  sc: ServiceConnection,
  project: { id: string; name: string },
  projectOf: (name: string) => { id: string; name: string } | undefined,
  own: { data: Record<string, string>; type: string; url: string; parameters: Record<string, string | null>; ready: boolean },
): unknown {
  const home = projectOf(sc.projectName ?? DEFAULT_PROJECT.name) ?? project;
  const references = [home, ...(sc.sharedWith ?? []).map((p) => projectOf(p) ?? { id: deterministicGuid(`project:${p.toLowerCase()}`), name: p })];
  return {
    data: own.data,
    id: sc.id,
    name: sc.name,
    type: own.type,
    url: own.url,
    createdBy: sc.createdBy ? creatorOf(sc.createdBy) : DEFAULT_CREATOR,
    description: '',
    authorization: { parameters: own.parameters, scheme: sc.scheme },
    isShared: references.length > 1,
    isReady: own.ready,
    operationStatus: sc.operationStatus ?? { state: own.ready ? 'Ready' : 'Failed', statusMessage: '' },
    owner: 'library',
    serviceEndpointProjectReferences: references.map((p) => ({ projectReference: { id: p.id, name: p.name }, name: sc.name, description: '' })),
  };
}

/**
 * A connection that is not an Azure Resource Manager one (the extension's WorkloadIdentityAws/Gcp/Oidc,
 * scheme None, or a generic one): the authentication scheme's inputs are authorization.parameters,
 * as the admin entered them (a confidential input, a generic connection's password, is null: the
 * REST API never returns secrets); no subscription, environment or creation mode in data; the
 * connection's URL, or the one its type declares.
 */
function otherEndpointJson(sc: ServiceConnection, project: { id: string; name: string }, projectOf: (name: string) => { id: string; name: string } | undefined): unknown {
  const type = sc.type ?? 'generic';
  const parameters: Record<string, string | null> =
    sc.scheme === 'UsernamePassword' ? { username: sc.parameters?.username ?? '', password: null } : { ...(sc.parameters ?? {}) };
  return endpointRecord(sc, project, projectOf, { data: {}, type, url: sc.url || TYPE_URLS[type.toLowerCase()] || '', parameters, ready: sc.isReady ?? true });
}

function creatorOf(c: NonNullable<ServiceConnection['createdBy']>): Record<string, unknown> {
  return {
    displayName: c.displayName,
    id: c.id ?? deterministicGuid(`identity:${c.displayName}`),
    uniqueName: c.uniqueName ?? '',
    ...(c.inactive === undefined ? {} : { inactive: c.inactive }),
  };
}

// The job token arrives as a Bearer token, or as the password of Basic auth (what PAT-style clients send).
export function authorized(ctx: RequestContext, world: World): boolean {
  const header = ctx.req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(.+)$/i.exec(header);
  if (bearer) return bearer[1].trim() === world.jobAccessToken;
  const basic = /^Basic\s+(.+)$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1].trim(), 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1) === world.jobAccessToken;
  }
  return false;
}

export function hasApiVersion(ctx: RequestContext): boolean {
  return !!ctx.query('api-version') || /api-version=/i.test(String(ctx.req.headers.accept ?? ''));
}

function devopsHeaders(): Record<string, string> {
  return { ActivityId: crypto.randomUUID(), 'X-TFS-Session': crypto.randomUUID(), 'X-VSS-E2EID': crypto.randomUUID() };
}

export function sendDevOpsJson(ctx: RequestContext, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const version = ctx.query('api-version') ?? '7.1';
  ctx.send({
    status,
    contentType: `application/json; charset=utf-8; api-version=${version}`,
    body: JSON.stringify(value),
    headers: { ...devopsHeaders(), ...headers },
  });
}

/** The error body every Azure DevOps REST API uses. */
export function devopsErrorBody(message: string, typeName: string, typeKey: string, eventId = 3000): Record<string, unknown> {
  return { $id: '1', innerException: null, message, typeName, typeKey, errorCode: 0, eventId };
}

function sendEndpointNotFound(ctx: RequestContext, id: string): void {
  sendDevOpsJson(
    ctx,
    404,
    devopsErrorBody(
      `Service connection with id '${id}' does not exist or has not been authorized for use in this pipeline. For authorization details, refer to https://aka.ms/yamlauthz.`,
      'Microsoft.TeamFoundation.DistributedTask.WebApi.ServiceEndpointNotFoundException, Microsoft.TeamFoundation.DistributedTask.WebApi',
      'ServiceEndpointNotFoundException',
    ),
  );
}

/** The job's identity may use the connection but not view it (no Reader role on the endpoint). The wording is not verified against the service. */
function sendEndpointForbidden(ctx: RequestContext, id: string, projectName: string): void {
  sendDevOpsJson(
    ctx,
    403,
    devopsErrorBody(
      `${projectName} Build Service (${ORGANIZATION.name}) does not have permissions to view endpoint with id '${id}'.`,
      'Microsoft.TeamFoundation.DistributedTask.WebApi.ServiceEndpointException, Microsoft.TeamFoundation.DistributedTask.WebApi',
      'ServiceEndpointException',
    ),
  );
}

/** A 401 with a JSON body, as Azure DevOps answers a token it recognises but does not accept here. */
function sendUnauthorized(ctx: RequestContext, world: World): void {
  const version = ctx.query('api-version') ?? '7.1';
  ctx.send({
    status: 401,
    contentType: `application/json; charset=utf-8; api-version=${version}`,
    body: JSON.stringify(
      devopsErrorBody(
        `TF400813: The user '${BUILD_SERVICE_ID}' is not authorized to access this resource.`,
        'Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, Microsoft.TeamFoundation.Framework.Server',
        'UnauthorizedRequestException',
      ),
    ),
    headers: { ...devopsHeaders(), 'WWW-Authenticate': `Bearer authorization_uri=${world.url}/common, Basic realm="${world.url}/", TFS-Federated`, 'X-TFS-ProcessId': crypto.randomUUID() },
  });
}

export function sendProjectNotFound(ctx: RequestContext): void {
  sendDevOpsJson(
    ctx,
    404,
    devopsErrorBody(
      `TF200016: The following project does not exist: ${ctx.params.project}. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.`,
      'Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistWithNameException, Microsoft.TeamFoundation.Core.WebApi',
      'ProjectDoesNotExistWithNameException',
    ),
  );
}

export function sendVersionMissing(ctx: RequestContext): void {
  sendDevOpsJson(
    ctx,
    400,
    devopsErrorBody(
      `No api-version was supplied for the "${ctx.req.method}" request. The version must be supplied either as part of the Accept header (e.g. "application/json; api-version=1.0") or as a query parameter (e.g. "?api-version=1.0").`,
      'Microsoft.VisualStudio.Services.WebApi.VssVersionNotSpecifiedException, Microsoft.VisualStudio.Services.WebApi',
      'VssVersionNotSpecifiedException',
    ),
  );
}

export function devopsFaultAnswer(status: number): Answer {
  const activity = crypto.randomUUID();
  let body: Record<string, unknown>;
  if (status === 429) {
    body = devopsErrorBody(
      `TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource 'Concurrency' in namespace 'User'. For more information on why your request was blocked, see the topic "Rate limits" on the Microsoft Web site (https://go.microsoft.com/fwlink/?LinkId=823950).`,
      'Microsoft.VisualStudio.Services.WebApi.RequestBlockedException, Microsoft.VisualStudio.Services.WebApi',
      'RequestBlockedException',
    );
  } else if (status >= 500) {
    body = devopsErrorBody(
      status === 503
        ? `TF400898: The service is temporarily unavailable. Please retry the request. Activity Id: ${activity}.`
        : `TF400898: An Internal Error Occurred. Activity Id: ${activity}.`,
      'Microsoft.VisualStudio.Services.Common.VssServiceException, Microsoft.VisualStudio.Services.Common',
      'VssServiceException',
      0,
    );
  } else {
    body = devopsErrorBody(
      `The request failed with status code ${status}. Activity Id: ${activity}.`,
      'Microsoft.VisualStudio.Services.Common.VssServiceException, Microsoft.VisualStudio.Services.Common',
      'VssServiceException',
    );
  }
  return {
    status,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify(body),
    headers: { ...devopsHeaders(), ActivityId: activity },
  };
}
