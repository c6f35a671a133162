// Azure DevOps organisation reads (protocols.md section 8), what an audit of service connections
// needs: projects (paged with x-ms-continuationtoken), a project's service endpoints, a
// connection's execution history, the resource area of the identity service, and identities.
// Read with the job's access token, or with an Entra access token for Azure DevOps
// (aud 499b84ac-1321-427f-aa17-267ca6975798) of an identity that is a member of the organisation.
import type { RequestContext, Router } from './server';
import type { Project, World } from './state';
import { ORGANIZATION } from './state';
import { checkBearer, principalIds } from './bearer';
import { isGuid } from './jwt';
import {
  DEFAULT_CREATOR,
  authorized,
  devopsErrorBody,
  devopsFaultAnswer,
  hasApiVersion,
  sendDevOpsJson,
  sendProjectNotFound,
  sendVersionMissing,
  serviceEndpointJson,
  signInPageAnswer,
} from './devops';
import { applyFault } from './faults';

/** The Azure DevOps resource: the audience of Entra tokens for its REST API. */
export const DEVOPS_RESOURCE = '499b84ac-1321-427f-aa17-267ca6975798';
const DEVOPS_AUDIENCES: ReadonlySet<string> = new Set([DEVOPS_RESOURCE, `api://${DEVOPS_RESOURCE}`]);
/** The identity service's resource area (IMS). */
export const IDENTITY_AREA = '8a3d49b8-91f0-46ef-b33d-dda338c25db3';

export function registerDevOpsOrganization(router: Router, world: World): void {
  const org = ORGANIZATION.name;
  const route = (name: string, path: RegExp, handle: (ctx: RequestContext) => void | Promise<void>) =>
    router.add({ name, method: 'GET', path, handle, errorAnswer: devopsFaultAnswer, truncatedBody: '{"count":2,"value":[{"id":"' });
  route('devops.projects', new RegExp(`^/${org}/_apis/projects/?$`, 'i'), (ctx) => projects(ctx, world));
  route('devops.endpoints', new RegExp(`^/${org}/(?<project>[^/]+)/_apis/serviceendpoint/endpoints/?$`, 'i'), (ctx) => endpoints(ctx, world));
  route('devops.executionHistory', new RegExp(`^/${org}/(?<project>[^/]+)/_apis/serviceendpoint/(?<id>[^/]+)/executionhistory/?$`, 'i'), (ctx) => history(ctx, world));
  route('devops.resourceArea', new RegExp(`^/${org}/_apis/resourceAreas/(?<area>[^/]+)$`, 'i'), (ctx) => resourceArea(ctx, world));
  route('devops.identities', new RegExp(`^/${org}/_apis/identities/?$`, 'i'), (ctx) => identities(ctx, world));
}

/** The job's token, or an Entra token for Azure DevOps of a member; otherwise the sign-in page (203), as Azure DevOps answers. */
function reader(ctx: RequestContext, world: World): boolean {
  if (authorized(ctx, world)) return true;
  const check = checkBearer(ctx, world, DEVOPS_AUDIENCES);
  if (check.ok && world.isMember(principalIds(check))) return true;
  if (check.ok) {
    // A valid token of an identity that is not in the organisation.
    sendDevOpsJson(ctx, 401, devopsErrorBody(`TF400813: The user '${check.oid ?? check.appid}' is not authorized to access this resource.`, 'Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, Microsoft.TeamFoundation.Framework.Server', 'UnauthorizedRequestException'));
    return false;
  }
  ctx.send(signInPageAnswer());
  return false;
}

function guard(ctx: RequestContext, world: World): boolean {
  if (!reader(ctx, world)) return false;
  if (!hasApiVersion(ctx)) {
    sendVersionMissing(ctx);
    return false;
  }
  return true;
}

/** Whether the identity reading the organisation may see the project (World.visibleProjects). */
function visible(world: World, p: Project): boolean {
  return !world.visibleProjects || world.visibleProjects.some((n) => n.toLowerCase() === p.name.toLowerCase() || n.toLowerCase() === p.id.toLowerCase());
}

/** The project a request names, answering 404 (as for one that does not exist when the identity may not see it) or the project's fault when there is one. */
function projectOf(ctx: RequestContext, world: World): Project | undefined {
  const found = world.findProject(ctx.params.project);
  const project = found && visible(world, found) ? found : undefined;
  if (!project) {
    sendProjectNotFound(ctx);
    return undefined;
  }
  if (project.fault) {
    const f = project.fault;
    if (f.kind === 'status' && f.status === 403 && f.body === undefined) {
      sendDevOpsJson(ctx, 403, devopsErrorBody(`TF50309: The following account does not have sufficient permissions to complete the operation: Build Service. The following permissions are needed: View project-level information (GENERIC_READ) on project ${project.name}.`, 'Microsoft.TeamFoundation.Framework.Server.AccessCheckException, Microsoft.TeamFoundation.Framework.Server', 'AccessCheckException'));
    } else {
      applyFault(f, { name: 'project', method: 'GET', path: /./, handle: () => undefined, errorAnswer: devopsFaultAnswer }, ctx);
    }
    return undefined;
  }
  return project;
}

function projects(ctx: RequestContext, world: World): void {
  if (!guard(ctx, world)) return;
  const all = world.projectList().filter((p) => visible(world, p));
  const top = Math.max(1, Math.min(Number(ctx.query('$top') ?? world.projectPageSize) || world.projectPageSize, world.projectPageSize));
  const skip = Number(ctx.query('continuationToken') ?? 0) || 0;
  const page = all.slice(skip, skip + top);
  const headers: Record<string, string> = {};
  if (skip + top < all.length) headers['x-ms-continuationtoken'] = String(skip + top);
  const value = page.map((p) => ({ id: p.id, name: p.name, url: `${world.url}/${ORGANIZATION.name}/_apis/projects/${p.id}`, state: 'wellFormed', revision: 12, visibility: 'private', lastUpdateTime: '2026-05-04T09:12:00Z' }));
  ctx.send({ status: 200, contentType: 'application/json; charset=utf-8; api-version=7.1', body: JSON.stringify({ count: value.length, value }), headers });
}

function endpoints(ctx: RequestContext, world: World): void {
  if (!guard(ctx, world)) return;
  const project = projectOf(ctx, world);
  if (!project) return;
  const type = ctx.query('type')?.toLowerCase();
  const includeFailed = /^true$/i.test(ctx.query('includeFailed') ?? '');
  const list = world
    .connectionsOf(project)
    .filter((c) => !type || (c.type ?? 'azurerm').toLowerCase() === type)
    .filter((c) => includeFailed || (c.isReady ?? true))
    .map((c) => serviceEndpointJson(c, project, (n) => world.findProject(n)));
  // Paged like the project list: the token is where the next page starts.
  const skip = Number(ctx.query('continuationToken') ?? 0) || 0;
  const page = list.slice(skip, skip + world.endpointPageSize);
  const headers: Record<string, string> = {};
  if (skip + world.endpointPageSize < list.length) headers['x-ms-continuationtoken'] = String(skip + world.endpointPageSize);
  sendDevOpsJson(ctx, 200, { count: page.length, value: page }, headers);
}

function history(ctx: RequestContext, world: World): void {
  if (!guard(ctx, world)) return;
  const project = projectOf(ctx, world);
  if (!project) return;
  const sc = isGuid(ctx.params.id) ? world.findConnection(ctx.params.id) : undefined;
  if (!sc || !world.connectionsOf(project).includes(sc)) {
    return sendDevOpsJson(ctx, 404, devopsErrorBody(`Service connection with id '${ctx.params.id}' does not exist.`, 'Microsoft.TeamFoundation.DistributedTask.WebApi.ServiceEndpointNotFoundException, Microsoft.TeamFoundation.DistributedTask.WebApi', 'ServiceEndpointNotFoundException'));
  }
  const top = Number(ctx.query('top') ?? 50) || 50;
  const u = sc.lastUsed;
  const value = u && top > 0
    ? [{
        endpointId: sc.id,
        data: {
          id: 4711,
          planType: 'Build',
          owner: { id: 1234, name: u.runName ?? '20260501.1', _links: { web: { href: `${world.url}/${ORGANIZATION.name}/${project.id}/_build/results?buildId=1234` } } },
          definition: { id: 17, name: u.pipeline, _links: { web: { href: `${world.url}/${ORGANIZATION.name}/${project.id}/_build/definition?definitionId=17` } } },
          startTime: new Date(Date.parse(u.finishTime) - 120_000).toISOString(),
          finishTime: u.finishTime,
          result: u.result,
        },
      }]
    : [];
  sendDevOpsJson(ctx, 200, { count: value.length, value });
}

function resourceArea(ctx: RequestContext, world: World): void {
  if (!guard(ctx, world)) return;
  if (ctx.params.area.toLowerCase() !== IDENTITY_AREA) {
    return sendDevOpsJson(ctx, 404, devopsErrorBody(`The resource area ${ctx.params.area} was not found.`, 'Microsoft.VisualStudio.Services.WebApi.ResourceAreaNotFoundException, Microsoft.VisualStudio.Services.WebApi', 'ResourceAreaNotFoundException'));
  }
  // In the cloud: https://vssps.dev.azure.com/<org>/. Here: the collection at the host the request came to.
  const host = String(ctx.req.headers.host ?? world.host);
  const locationUrl = world.identityServiceUrl ?? `https://${host}/${ORGANIZATION.name}/`;
  sendDevOpsJson(ctx, 200, { id: IDENTITY_AREA, name: 'IMS', locationUrl });
}

function identities(ctx: RequestContext, world: World): void {
  if (!guard(ctx, world)) return;
  const ids = (ctx.query('identityIds') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (!ids.length) return sendDevOpsJson(ctx, 400, devopsErrorBody('One of the following query parameters must be specified: descriptors, identityIds, subjectDescriptors, searchFilter.', 'Microsoft.VisualStudio.Services.Identity.IdentityServiceException', 'IdentityServiceException'));
  // Like the service: one entry per id asked, null for an unknown one.
  const value = ids.map((id) => {
    const i = id.toLowerCase() === DEFAULT_CREATOR.id ? { id: DEFAULT_CREATOR.id, displayName: DEFAULT_CREATOR.displayName, isActive: true } : isGuid(id) ? world.findIdentity(id) : undefined;
    return i ? { id: i.id, descriptor: `Microsoft.IdentityModel.Claims.ClaimsIdentity;${i.id}`, providerDisplayName: i.displayName, isActive: i.isActive ?? true, isContainer: false, properties: {} } : null;
  });
  sendDevOpsJson(ctx, 200, { count: value.length, value });
}
