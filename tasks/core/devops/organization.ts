/**
 * Azure DevOps organisation reads (protocols.md section 8): projects (paged), a project's service
 * connections, a connection's last use, and identities through the identity service's resource
 * area. Only GET: the audit never changes anything. A read never throws: it answers what it found
 * or why it could not, with the permission it needs, so one unreadable project stops nothing.
 */
import { quoteServiceText, serviceErrorText, TaskFailure } from '../http/failures';
import { header, HttpResponse, parseJson } from '../http/http';
import { PipelineContext } from '../agent/pipeline-context';
import { checkAzureDevOpsUrl, checkIdentityServiceUrl } from '../http/token-hosts';
import { Gates, Pool } from './throttle';

/** The Azure DevOps resource in Entra ID: the scope of a token for its REST API. */
export const DEVOPS_SCOPE = '499b84ac-1321-427f-aa17-267ca6975798/.default';
/** The identity service's resource area (IMS). */
export const IDENTITY_AREA = '8a3d49b8-91f0-46ef-b33d-dda338c25db3';
export const DEVOPS_SERVICE = 'the Azure DevOps REST API';
/** Identities asked for in one request (the ids go in the query string). */
export const IDENTITY_BATCH = 100;
/** Projects asked for per page. */
export const PROJECT_PAGE = 100;
/** Pages of a list followed at most (an organisation holds at most 1000 projects): a list that does not end is refused. */
export const MAX_PAGES = 100;

export type Read<T> = { ok: true; value: T } | { ok: false; status?: number; reason: string; permission?: string };

export interface ProjectRef {
  id: string;
  name: string;
}

/** A service endpoint as the list API returns it (secrets are never in it). */
export interface EndpointJson {
  id?: string;
  name?: string;
  type?: string;
  url?: string;
  isReady?: boolean;
  isShared?: boolean;
  operationStatus?: { state?: string; statusMessage?: string };
  authorization?: { scheme?: string; parameters?: Record<string, string | null> };
  data?: Record<string, string>;
  createdBy?: { id?: string; displayName?: string; uniqueName?: string };
  serviceEndpointProjectReferences?: { projectReference?: { id?: string; name?: string }; name?: string }[];
}

export interface LastUse {
  pipeline?: string;
  run?: string;
  result?: string;
  finishTime?: string;
  url?: string;
}

export interface IdentityState {
  active: boolean;
  name?: string;
}

/** The reads of one audit run, sharing a token, a pool of at most `pool.size` requests and the throttling gates. */
export class OrganizationReader {
  /** Requests made, by kind, for the log and the bench. */
  readonly requests: Record<string, number> = {};

  constructor(
    private readonly ctx: PipelineContext,
    private readonly token: string,
    readonly pool: Pool,
    readonly gates: Gates,
  ) {}

  private get collection(): string {
    return this.ctx.collectionUri;
  }

  private async get(kind: string, url: string, permission: string): Promise<Read<{ res: HttpResponse; json: unknown }>> {
    this.requests[kind] = (this.requests[kind] ?? 0) + 1;
    let res: HttpResponse;
    try {
      res = await this.pool.run(() =>
        this.ctx.http.request({ method: 'GET', url, service: DEVOPS_SERVICE, gate: this.gates.for(url, DEVOPS_SERVICE), headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json' } }),
      );
    } catch (e) {
      return { ok: false, reason: e instanceof TaskFailure ? e.details.what : (e as Error).message };
    }
    if (res.status === 200) {
      const json = parseJson<unknown>(res.body);
      if (json && typeof json === 'object') return { ok: true, value: { res, json } };
      return { ok: false, status: 200, reason: `the answer was not JSON (${res.body.length} bytes, ${header(res, 'content-type') ?? 'no content type'})` };
    }
    return { ok: false, status: res.status, ...refusal(res, permission) };
  }

  /**
   * Every page of a list: `url(token)` is the URL of the page after `token` (the first without
   * one); while an answer carries an x-ms-continuationtoken header, the next page is read with it.
   * A token given before, or more than MAX_PAGES pages, ends the list with a reason and `endless`
   * (what to do then): never a loop. `items` holds what the pages read gave, even when a later one failed.
   */
  private async pages<T>(
    list: { kind: string; what: string; permission: string; endless: string },
    url: (token?: string) => string,
    pick: (json: unknown) => T[],
  ): Promise<{ items: T[]; failure?: Exclude<Read<never>, { ok: true }> }> {
    const items: T[] = [];
    const followed = new Set<string>();
    let token: string | undefined;
    for (let page = 1; ; page++) {
      const r = await this.get(list.kind, url(token), list.permission);
      if (!r.ok) return { items, failure: r };
      items.push(...pick(r.value.json));
      token = header(r.value.res, 'x-ms-continuationtoken') || undefined;
      if (!token) return { items };
      if (followed.has(token) || page >= MAX_PAGES) {
        return {
          items,
          failure: {
            ok: false,
            reason: followed.has(token)
              ? `the ${list.what} did not end: Azure DevOps gave a continuation token it had given before (after ${items.length} read in ${page} pages)`
              : `the ${list.what} did not end after ${MAX_PAGES} pages (${items.length} read)`,
            permission: list.endless,
          },
        };
      }
      followed.add(token);
    }
  }

  /** Every project of the organisation, page by page (x-ms-continuationtoken). */
  async projects(): Promise<Read<ProjectRef[]>> {
    const listed = await this.pages(
      { kind: 'projects', what: 'project list', permission: 'View instance-level information (Project Collection Valid Users)', endless: 'none: list the projects to audit in the input projects, or re-run later' },
      (token) => checkAzureDevOpsUrl(`${this.collection}_apis/projects?api-version=7.1&$top=${PROJECT_PAGE}${token ? `&continuationToken=${encodeURIComponent(token)}` : ''}`, this.ctx.azureDevOps, 'System.CollectionUri'),
      (json) => {
        const out: ProjectRef[] = [];
        for (const p of (json as { value?: { id?: unknown; name?: unknown }[] }).value ?? []) if (typeof p?.id === 'string' && typeof p.name === 'string') out.push({ id: p.id, name: p.name });
        return out;
      },
    );
    return listed.failure ?? { ok: true, value: listed.items };
  }

  /**
   * A project's service connections of `type` (all types when undefined), failed ones included,
   * page by page while Azure DevOps sends x-ms-continuationtoken. `incomplete` says why the list
   * stopped early; `value` then holds the connections of the pages read before.
   */
  async endpoints(project: string, type?: string): Promise<Read<{ endpoints: EndpointJson[]; incomplete?: { reason: string; permission?: string } }>> {
    const listed = await this.pages(
      {
        kind: 'endpoints',
        what: 'list of service connections',
        permission: `Reader on the project's service connections (Project settings > Service connections > Security) and View project-level information on ${project}`,
        endless: 'none: re-run later; if it persists, report it to Azure DevOps (the connections listed were audited)',
      },
      (token) =>
        checkAzureDevOpsUrl(
          `${this.collection}${encodeURIComponent(project)}/_apis/serviceendpoint/endpoints?${type ? `type=${encodeURIComponent(type)}&` : ''}includeFailed=true&includeDetails=true&api-version=7.1${token ? `&continuationToken=${encodeURIComponent(token)}` : ''}`,
          this.ctx.azureDevOps,
          'System.CollectionUri',
        ),
      (json) => {
        const value = (json as { value?: unknown }).value;
        return Array.isArray(value) ? (value.filter((v) => v && typeof v === 'object') as EndpointJson[]) : [];
      },
    );
    if (!listed.failure) return { ok: true, value: { endpoints: listed.items } };
    // Nothing read: the project is a row of its own; else the connections read, and why the rest is missing.
    if (!listed.items.length) return listed.failure;
    return { ok: true, value: { endpoints: listed.items, incomplete: { reason: listed.failure.reason, permission: listed.failure.permission } } };
  }

  /**
   * The connection's most recent use, or undefined when it was never used. One record (`top=1`),
   * the newest, is all the audit needs: it is on the first page, so a continuation token is not followed.
   */
  async lastUse(project: string, endpointId: string): Promise<Read<LastUse | undefined>> {
    const url = checkAzureDevOpsUrl(
      `${this.collection}${encodeURIComponent(project)}/_apis/serviceendpoint/${encodeURIComponent(endpointId)}/executionhistory?top=1&api-version=7.1-preview.1`,
      this.ctx.azureDevOps,
      'System.CollectionUri',
    );
    const r = await this.get('executionHistory', url, 'Reader on the service connection (Project settings > Service connections > the connection > Security)');
    if (!r.ok) return r;
    const first = ((r.value.json as { value?: { data?: Record<string, any> }[] }).value ?? [])[0]?.data;
    if (!first || typeof first !== 'object') return { ok: true, value: undefined };
    const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);
    return {
      ok: true,
      value: { pipeline: str(first.definition?.name), run: str(first.owner?.name), result: str(first.result), finishTime: str(first.finishTime) ?? str(first.startTime), url: str(first.owner?._links?.web?.href) },
    };
  }

  /** The identity service's URL (resource area IMS), checked before it may receive the token. */
  async identityServiceUrl(): Promise<Read<string>> {
    const url = checkAzureDevOpsUrl(`${this.collection}_apis/resourceAreas/${IDENTITY_AREA}?api-version=7.1-preview.1`, this.ctx.azureDevOps, 'System.CollectionUri');
    const r = await this.get('resourceArea', url, 'View instance-level information');
    if (!r.ok) return r;
    const location = (r.value.json as { locationUrl?: unknown }).locationUrl;
    if (typeof location !== 'string') return { ok: false, status: 200, reason: 'the resource area answer had no locationUrl' };
    try {
      return { ok: true, value: checkIdentityServiceUrl(location, this.collection) };
    } catch (e) {
      return { ok: false, reason: e instanceof TaskFailure ? e.details.what : (e as Error).message };
    }
  }

  /** Whether each identity is active, for up to IDENTITY_BATCH ids in one request. */
  async identities(base: string, ids: string[]): Promise<Read<Map<string, IdentityState>>> {
    const url = `${base.endsWith('/') ? base : `${base}/`}_apis/identities?identityIds=${ids.map(encodeURIComponent).join(',')}&api-version=7.1`;
    const r = await this.get('identities', url, 'Read on identities (members of Project Collection Valid Users have it)');
    if (!r.ok) return r;
    const out = new Map<string, IdentityState>();
    for (const i of (r.value.json as { value?: ({ id?: unknown; isActive?: unknown; providerDisplayName?: unknown } | null)[] }).value ?? []) {
      if (i && typeof i.id === 'string') out.set(i.id.toLowerCase(), { active: i.isActive !== false, name: typeof i.providerDisplayName === 'string' ? i.providerDisplayName : undefined });
    }
    return { ok: true, value: out };
  }
}

/** Why Azure DevOps refused, and the permission that would let the audit read it. */
function refusal(res: HttpResponse, permission: string): { reason: string; permission?: string } {
  const said = quotedMessage(res.body);
  const tail = said ? `: ${said}` : '';
  if (res.retryAfterTooLong) return { reason: `throttled: HTTP ${res.status}, the service asked to wait ${Math.ceil(res.retryAfterTooLong.askedMs / 1000)} s` };
  switch (res.status) {
    case 203:
      return { reason: 'the token was not accepted (HTTP 203 sign-in page)', permission: 'a valid job token: re-run the job' };
    case 401:
      return { reason: `HTTP 401, the identity is not allowed in this organisation${tail}`, permission: 'add the identity to the organisation (Organization settings > Users) with at least Basic or Stakeholder access' };
    case 403:
      return { reason: `HTTP 403${tail}`, permission };
    case 404:
      return { reason: `HTTP 404, not found${tail}`, permission: 'check the project name, or that the identity can see the project' };
    default:
      return { reason: `HTTP ${res.status} after ${res.attempts} attempt${res.attempts === 1 ? '' : 's'}${tail}` };
  }
}

/** Azure DevOps's error message (first line, capped), from a known error shape only. */
function quotedMessage(body: string): string | undefined {
  const text = serviceErrorText(body);
  return text ? quoteServiceText(text) : undefined;
}
