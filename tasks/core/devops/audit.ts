/**
 * The audit of service connections: every connection of a project or of the organisation, one row
 * each with what was found and one recommended action with its exact fix. Read-only. Whatever one
 * read fails with becomes part of a row (the reason and the permission it needs): the audit goes on.
 */
import { Credential, getApplicationCredentials, GraphAnswer, GRAPH_SERVICE } from '../azure/graph';
import { TaskFailure } from '../http/failures';
import { PipelineContext } from '../agent/pipeline-context';
import { EndpointJson, IDENTITY_BATCH, IdentityState, LastUse, OrganizationReader, ProjectRef, Read } from './organization';

export type Action = 'cannot-read' | 'fix-rotation' | 'remove-unused' | 'renew-secret' | 'convert-issuer' | 'convert-to-federation' | 'none';
export type Severity = 'error' | 'warning' | 'ok';

/** Actions in the order the summary counts them (most urgent first). */
export const ACTIONS: readonly Action[] = ['fix-rotation', 'renew-secret', 'convert-issuer', 'convert-to-federation', 'remove-unused', 'cannot-read', 'none'];

export const ACTION_TITLES: Record<Action, string> = {
  'fix-rotation': 'Fix the failed secret rotation',
  'renew-secret': 'Renew the secret or certificate',
  'convert-issuer': 'Convert to the Entra issuer (vstoken retires 2027-07-01)',
  'convert-to-federation': 'Convert to workload identity federation',
  'remove-unused': 'Remove the unused connection',
  'cannot-read': 'Could not be read',
  none: 'Nothing to do',
};

/** The vstoken issuer is retired on this day (protocols.md section 8). */
export const VSTOKEN_RETIREMENT = Date.UTC(2027, 6, 1);

export interface AuditRow {
  project: string;
  sharedWith: string[];
  id: string;
  name: string;
  type: string;
  scheme: string;
  /** 'vstoken', 'Entra ID', or '' when not federated */
  issuer: string;
  environment: string;
  isReady?: boolean;
  operationStatus: string;
  creationMode: string;
  creator: string;
  /** 'active', 'inactive', or 'unknown: <why>' */
  creatorState: string;
  /** 'never', the last run, or 'unknown: <why>' */
  lastUse: string;
  lastUseDate?: string;
  /** the latest end date of the app's secrets or certificates, or why it is not known */
  credentialEnd: string;
  action: Action;
  severity: Severity;
  /** what was found that calls for the action */
  why: string;
  fix: string;
  /** the permission a read needed, for rows that could not be read */
  permission?: string;
  link?: string;
  /** For the extension's own types (AWS, Google Cloud, OpenID Connect): what its target must trust, to review there. */
  review?: string;
}

/** The extension's own connection types (lower case), whose idTokens carry the Azure DevOps issuer. */
export const OWN_TYPES: Record<string, string> = { workloadidentityaws: 'AWS', workloadidentitygcp: 'Google Cloud', workloadidentityoidc: 'OpenID Connect', workloadidentityvault: 'HashiCorp Vault' };

export function isOwnType(ep: EndpointJson): boolean {
  return (ep.type ?? '').toLowerCase() in OWN_TYPES;
}

/**
 * Issuer honesty (issue 20): what is known of the issuer of the extension's own types. The
 * 2027-07-01 retirement concerns Azure Resource Manager connections (Entra-backed); nothing is
 * announced for other types. No date is invented.
 */
export const OWN_TYPE_ISSUER =
  'Its idTokens carry the Azure DevOps issuer (vstoken.dev.azure.com/<organization id>); the 2027-07-01 retirement announced by Microsoft concerns the issuer of Azure Resource Manager connections (backed by Microsoft Entra ID), and nothing is announced for connections of other types.';

/** What to review at the target of one of the extension's own connections, from its settings as the list API returns them. */
export function reviewOf(ep: EndpointJson, subject: string): string {
  const p = ep.authorization?.parameters ?? {};
  const get = (k: string) => {
    const key = Object.keys(p).find((x) => x.toLowerCase() === k.toLowerCase());
    const v = key ? p[key] : undefined;
    return typeof v === 'string' && v.trim() ? v.trim() : undefined;
  };
  const trust = `the issuer https://vstoken.dev.azure.com/<organization id>, audience api://AzureADTokenExchange and subject ${subject}`;
  switch ((ep.type ?? '').toLowerCase()) {
    case 'workloadidentityaws':
      return `AWS role ${get('roleArn') ?? '(no role ARN set)'} (region ${get('region') ?? 'us-east-1'}${get('stsEndpoint') ? `, STS ${get('stsEndpoint')}` : ''}): its account's IAM OIDC provider and the role's trust policy must name ${trust}.`;
    case 'workloadidentitygcp':
      return `Google workload identity provider ${get('workloadIdentityProvider') ?? '(none set)'}${get('serviceAccount') ? ` and service account ${get('serviceAccount')} (roles/iam.workloadIdentityUser for the principal)` : ' (no service account: roles granted to the principal directly)'}: the provider must accept ${trust}.`;
    case 'workloadidentityvault': {
      const ns = get('namespace');
      const mount = (get('authMount') ?? 'jwt').replace(/^\/*(auth\/)?|\/+$/g, '');
      return `HashiCorp Vault ${ep.url || '(no address set)'}${ns ? ` namespace ${ns}` : ''}, auth/${mount} role ${get('role') ?? '(none set)'}: the auth method's config (oidc_discovery_url, bound_issuer) and the role (bound_audiences, bound_subject) must accept ${trust}.`;
    }
    default:
      return `OpenID Connect service ${ep.url || '(no URL set)'}: it must trust ${trust}, with keys from https://vstoken.dev.azure.com/.well-known/jwks (shared by every organisation: it must check the issuer too).`;
  }
}

/** How secret end dates are read: from Microsoft Graph with the auditing identity's token, or skipped saying why. */
export type GraphAccess =
  | { enabled: true; baseUrl: string; cloud: string; tenantId: string; token: () => Promise<string> }
  | { enabled: false; reason: string };

export interface AuditOptions {
  scope: 'project' | 'organization';
  /** organization scope: only these projects (names), without listing the organisation's */
  projects: string[];
  /** connection types to audit (lower case), or undefined for every type */
  types?: string[];
  unusedDays: number;
  secretExpiryWarningDays: number;
  graph: GraphAccess;
  now: number;
  /** How the auditing identity is given sight of more projects (reachOf): said wherever a project is not visible. */
  reach: string;
}

export interface AuditResult {
  rows: AuditRow[];
  projectsAudited: number;
  /** the worst of the rows, and at least 'warning' when the coverage is not full */
  status: Severity;
  coverage: Coverage;
}

/**
 * What an audit covered. The identity sees only what it may see: Azure DevOps answers a project it
 * may not see as one that does not exist (HTTP 404), leaves it out of the project list, and lists only
 * the connections it may view. So the audit compares with what it was asked for (the pipeline's
 * project, the projects named), and for the whole organisation says how many projects the identity
 * saw and that those it cannot see are not covered.
 */
export interface CoverageFacts {
  scope: 'project' | 'organization';
  /** the projects named in the input projects (organization scope), or the pipeline's project (project scope) */
  named: string[];
  /** organization scope without names: the projects the identity's project list showed; undefined when the list failed */
  projectsVisible?: number;
  /** organization scope without names: the project list could not be read */
  listFailed?: string;
  /** projects whose connections were listed (all of them or in part) */
  projectsRead: string[];
  /** projects Azure DevOps answered 404 for: not found, or not visible to the identity */
  projectsNotFound: string[];
  /** projects whose connections could not be listed (any other failure) */
  projectsUnreadable: string[];
  /** projects whose list of connections stopped early */
  projectsIncomplete: string[];
  /** connection types audited (lower case), undefined for every type */
  types?: string[];
  /** connections audited, each with the reads it needs */
  connectionsRead: number;
  /** connections listed that could not be read: listed without an id, or whose last use could not be read */
  connectionsUnread: number;
}

export interface Coverage extends CoverageFacts {
  /** full; partial: something asked for or listed was not read; empty: no project or no connection read */
  extent: 'full' | 'partial' | 'empty';
  /** what the audit covered, for the log, the summary and the reports (outside names in it as they are: neutralise where shown) */
  statement: string;
  /** one sentence per gap; none when the coverage is full */
  warnings: string[];
}

/** How the identity that reads the organisation gets to see a project (README: AuditServiceConnections@1, Coverage). */
export function reachOf(identity: 'job' | 'connection', organization: string, project: string): string {
  return identity === 'job'
    ? `The job's token sees what the pipeline's build service identity may see: '${project} Build Service (${organization})' when the job authorization scope is limited to the current project (Organization or Project settings > Pipelines > Settings), which usually sees this project only; 'Project Collection Build Service (${organization})' when it is not. It sees a project where it has View project-level information (Project settings > Permissions, e.g. the Readers group); or set azureDevOpsConnection to an identity that is a member of every project to audit.`
    : `The identity of azureDevOpsConnection sees a project where it has View project-level information: add it to each project to audit (Project settings > Permissions, e.g. the Readers group), or to Project Collection Administrators for every project.`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The extent of an audit, what it says about it and its warnings, from what was read. */
export function assessCoverage(f: CoverageFacts, reach: string): Coverage {
  const warnings: string[] = [];
  const names = (list: string[]) => list.map((n) => `'${n}'`).join(', ');
  const connections = f.connectionsRead + f.connectionsUnread;
  const types = f.types ? f.types.join(', ') : 'every type';
  let projects: string;
  if (f.scope === 'project') {
    const name = f.named[0] ?? '(this project)';
    projects = f.projectsNotFound.length ? `the pipeline's project '${name}', not found or not visible to the identity` : f.projectsUnreadable.length ? `the pipeline's project '${name}', whose connections could not be listed` : `the pipeline's project '${name}'`;
    if (f.projectsNotFound.length) warnings.push(`The pipeline's project '${name}' was not found or is not visible to the identity: the audit covers nothing. ${reach}`);
  } else if (f.named.length) {
    projects = `${f.projectsRead.length} of ${plural(f.named.length, 'named project')} read`;
    if (f.projectsNotFound.length) {
      projects += `; not found or not visible to the identity: ${names(f.projectsNotFound)}`;
      warnings.push(`${f.projectsNotFound.length} of ${plural(f.named.length, 'named project')} ${f.projectsNotFound.length === 1 ? 'was' : 'were'} not found or ${f.projectsNotFound.length === 1 ? 'is' : 'are'} not visible to the identity, and not audited: ${names(f.projectsNotFound)}. Check the names in the input projects. ${reach}`);
    }
  } else if (f.listFailed !== undefined) {
    projects = "the organization's project list could not be read: no project audited";
    warnings.push(`The organization's project list could not be read (${f.listFailed}): the audit covers nothing.`);
  } else {
    projects = `${plural(f.projectsVisible ?? 0, 'project')} visible to the identity, ${f.projectsRead.length} read; projects the identity cannot see are not in its list and not covered`;
    if (!f.projectsVisible) warnings.push(`No project of the organization is visible to the identity: the audit covers nothing. ${reach}`);
  }
  if (f.scope === 'organization' && f.projectsUnreadable.length) {
    warnings.push(`The service connections of ${plural(f.projectsUnreadable.length, 'project')} could not be listed, and are not covered: ${names(f.projectsUnreadable)} (their rows give the reason and the permission).`);
  } else if (f.projectsUnreadable.length) {
    warnings.push(`The service connections of the pipeline's project could not be listed: the audit covers nothing (its row gives the reason and the permission).`);
  }
  if (f.projectsIncomplete.length) warnings.push(`The service connections of ${plural(f.projectsIncomplete.length, 'project')} were listed only in part: ${names(f.projectsIncomplete)} (their rows say why).`);
  if (f.connectionsUnread) warnings.push(`${plural(f.connectionsUnread, 'connection')} could not be read (their rows give the reason and the permission).`);
  if (f.projectsRead.length && !connections) {
    warnings.push(`No service connection was read in the ${plural(f.projectsRead.length, 'project')} read: ${f.projectsRead.length === 1 ? 'it holds' : 'they hold'} none of the types audited (${types}), or the identity may not view ${f.projectsRead.length === 1 ? 'its' : 'their'} connections (Reader on the project's service connections: Project settings > Service connections > Security).`);
  }
  const empty = !f.projectsRead.length || !f.connectionsRead;
  const extent = empty ? 'empty' : warnings.length ? 'partial' : 'full';
  const conns = `${plural(f.connectionsRead, 'connection')} read${f.connectionsUnread ? `, ${f.connectionsUnread} could not be read` : ''} (types: ${types})`;
  // The whole organisation: the identity's list is all there is to compare with, so say how it sees more (once: a warning says it when it sees none).
  const seesSome = f.scope === 'organization' && !f.named.length && f.listFailed === undefined && !!f.projectsVisible;
  const statement = `Coverage ${extent}: projects: ${projects}; connections: ${conns}.${seesSome ? ` ${reach}` : ''}`;
  return { ...f, extent, statement, warnings };
}

const DAY = 86_400_000;

interface Seen {
  ep: EndpointJson & { id: string };
  /** the projects whose list showed it */
  listedIn: string[];
  history: Promise<Read<LastUse | undefined>>;
}

export async function runAudit(ctx: PipelineContext, reader: OrganizationReader, o: AuditOptions): Promise<AuditResult> {
  const rows: AuditRow[] = [];
  const identityUrl = reader.identityServiceUrl();

  const facts: CoverageFacts = {
    scope: o.scope, named: [], projectsRead: [], projectsNotFound: [], projectsUnreadable: [], projectsIncomplete: [], types: o.types, connectionsRead: 0, connectionsUnread: 0,
  };
  let projects: ProjectRef[];
  if (o.scope === 'project') {
    projects = [{ id: ctx.teamProjectId || ctx.teamProject, name: ctx.teamProject || ctx.teamProjectId }];
    facts.named = [projects[0].name];
  } else if (o.projects.length) {
    projects = o.projects.map((name) => ({ id: name, name }));
    facts.named = [...o.projects];
  } else {
    const listed = await reader.projects();
    if (!listed.ok) {
      rows.push(unreadableRow('(organization)', '(all projects)', `The organization's projects could not be listed: ${listed.reason}.`, listed.permission ?? 'View instance-level information (members of Project Collection Valid Users have it)'));
      await identityUrl;
      facts.listFailed = listed.reason;
      return finish(rows, 0, assessCoverage(facts, o.reach));
    }
    projects = listed.value;
    facts.projectsVisible = projects.length;
  }

  // One request per project (per page of its list); each connection's history starts as soon as a list shows it.
  const typeParam = o.types?.length === 1 ? o.types[0] : undefined;
  const seen = new Map<string, Seen>();
  await Promise.all(
    projects.map(async (p) => {
      const list = await reader.endpoints(p.id, typeParam);
      if (!list.ok) {
        (list.status === 404 ? facts.projectsNotFound : facts.projectsUnreadable).push(p.name);
        rows.push(unreadableRow(p.name, '(project)', `The project's service connections could not be read: ${list.reason}.`, list.permission ?? 'Reader on the project\'s service connections, once the service answers again'));
        return;
      }
      const { endpoints, incomplete } = list.value;
      facts.projectsRead.push(p.name);
      if (incomplete) {
        facts.projectsIncomplete.push(p.name);
        rows.push(unreadableRow(p.name, '(project)', `Not all of the project's service connections could be read: ${incomplete.reason}; the connections on the pages read are audited.`, incomplete.permission ?? 'Reader on the project\'s service connections, once the service answers again'));
      }
      for (const ep of endpoints) {
        const type = (ep.type ?? '').toLowerCase();
        if (o.types && !o.types.includes(type)) continue;
        if (typeof ep.id !== 'string' || !ep.id) {
          rows.push(unreadableRow(p.name, ep.name ?? '(unnamed)', 'Azure DevOps listed a connection without an id.', 'none: report it'));
          facts.connectionsUnread++;
          continue;
        }
        const key = ep.id.toLowerCase();
        const known = seen.get(key);
        if (known) known.listedIn.push(p.name);
        else seen.set(key, { ep: ep as Seen['ep'], listedIn: [p.name], history: reader.lastUse(p.id, ep.id) });
      }
    }),
  );

  const entries = [...seen.values()];
  const creators = [...new Set(entries.map((e) => e.ep.createdBy?.id?.toLowerCase()).filter((x): x is string => !!x))];
  const [identities, credentials] = await Promise.all([readIdentities(reader, identityUrl, creators), readCredentials(ctx, reader, o.graph, entries)]);

  for (const e of entries) {
    const history = await e.history;
    const row = connectionRow(ctx, e, history, identities, credentials, o);
    if (row.action === 'cannot-read') facts.connectionsUnread++;
    else facts.connectionsRead++;
    rows.push(row);
  }
  for (const list of [facts.projectsRead, facts.projectsNotFound, facts.projectsUnreadable, facts.projectsIncomplete]) list.sort((a, b) => a.localeCompare(b));
  return finish(rows, projects.length, assessCoverage(facts, o.reach));
}

/** The status of an audit: its worst row, and at least a warning when it did not cover everything it was asked to. */
export function auditStatus(rows: AuditRow[], coverage: Coverage): Severity {
  const worst: Severity = rows.some((r) => r.severity === 'error') ? 'error' : rows.some((r) => r.severity === 'warning') ? 'warning' : 'ok';
  return worst === 'ok' && coverage.extent !== 'full' ? 'warning' : worst;
}

function finish(rows: AuditRow[], projectsAudited: number, coverage: Coverage): AuditResult {
  rows.sort((a, b) => ACTIONS.indexOf(a.action) - ACTIONS.indexOf(b.action) || a.project.localeCompare(b.project) || a.name.localeCompare(b.name));
  return { rows, projectsAudited, status: auditStatus(rows, coverage), coverage };
}

/** `unread`: the ids of batches that failed, with why (their state is unknown, not inactive). */
type Identities = { ok: true; states: Map<string, IdentityState>; unread: Map<string, string> } | { ok: false; reason: string };

async function readIdentities(reader: OrganizationReader, url: Promise<Read<string>>, ids: string[]): Promise<Identities> {
  const base = await url;
  if (!base.ok) return { ok: false, reason: `the identity service could not be found: ${base.reason}` };
  const states = new Map<string, IdentityState>();
  const unread = new Map<string, string>();
  const failures: string[] = [];
  const batches: string[][] = [];
  for (let i = 0; i < ids.length; i += IDENTITY_BATCH) batches.push(ids.slice(i, i + IDENTITY_BATCH));
  await Promise.all(
    batches.map(async (batch) => {
      const r = await reader.identities(base.value, batch);
      if (r.ok) for (const [k, v] of r.value) states.set(k, v);
      else {
        const why = `${r.reason}${r.permission ? ` (needs ${r.permission})` : ''}`;
        failures.push(why);
        for (const id of batch) unread.set(id, `identities could not be read: ${why}`);
      }
    }),
  );
  return failures.length && !states.size ? { ok: false, reason: `identities could not be read: ${failures[0]}` } : { ok: true, states, unread };
}

type Credentials = Map<string, GraphAnswer | { ok: false; status: 0; message: string; skipped: true }>;

/** One Graph read per app registration behind a secret or certificate connection. */
async function readCredentials(ctx: PipelineContext, reader: OrganizationReader, graph: GraphAccess, entries: Seen[]): Promise<Credentials | string> {
  if (!graph.enabled) return graph.reason;
  const apps = new Set<string>();
  for (const e of entries) {
    const p = e.ep.authorization?.parameters ?? {};
    if (!isSecretBased(e.ep) || !p.serviceprincipalid) continue;
    if (environmentOf(e.ep).toLowerCase() !== graph.cloud.toLowerCase() || (p.tenantid ?? '').toLowerCase() !== graph.tenantId.toLowerCase()) continue;
    apps.add(p.serviceprincipalid.toLowerCase());
  }
  const out: Credentials = new Map();
  if (!apps.size) return out;
  let token: string;
  try {
    token = await graph.token();
  } catch (e) {
    return `no Microsoft Graph token for the auditing identity: ${e instanceof TaskFailure ? e.details.what : (e as Error).message}`;
  }
  const gate = reader.gates.for(graph.baseUrl, GRAPH_SERVICE);
  await Promise.all(
    [...apps].map(async (appId) => {
      reader.requests.graph = (reader.requests.graph ?? 0) + 1;
      try {
        out.set(appId, await reader.pool.run(() => getApplicationCredentials(ctx, graph.baseUrl, token, appId, gate)));
      } catch (e) {
        out.set(appId, { ok: false, status: 0, message: e instanceof TaskFailure ? e.details.what : (e as Error).message, skipped: true });
      }
    }),
  );
  return out;
}

function isSecretBased(ep: EndpointJson): boolean {
  return (ep.authorization?.scheme ?? '').toLowerCase() === 'serviceprincipal';
}

function environmentOf(ep: EndpointJson): string {
  return ep.data?.environment || 'AzureCloud';
}

export function issuerOf(ep: EndpointJson): string {
  if (isOwnType(ep)) return 'vstoken';
  if ((ep.authorization?.scheme ?? '').toLowerCase() !== 'workloadidentityfederation') return '';
  const p = ep.authorization?.parameters ?? {};
  const type = (p.workloadIdentityFederationIssuerType ?? '').toLowerCase();
  if (type === 'azuredevops') return 'vstoken';
  if (type === 'entraid') return 'Entra ID';
  const iss = (p.workloadIdentityFederationIssuer ?? '').toLowerCase();
  if (iss.includes('vstoken.')) return 'vstoken';
  if (iss) return 'Entra ID';
  return 'unknown';
}

function schemeOf(ep: EndpointJson): string {
  const scheme = ep.authorization?.scheme ?? '(none)';
  if (scheme.toLowerCase() !== 'serviceprincipal') return scheme;
  const t = (ep.authorization?.parameters?.authenticationType ?? 'spnKey').toLowerCase();
  return t === 'spncertificate' ? 'ServicePrincipal (certificate)' : 'ServicePrincipal (secret)';
}

export function connectionLink(collectionUri: string, project: string, id: string): string {
  return `${collectionUri}${encodeURIComponent(project)}/_settings/adminservices?resourceId=${encodeURIComponent(id)}`;
}

function unreadableRow(project: string, name: string, why: string, permission: string): AuditRow {
  return {
    project, sharedWith: [], id: '', name, type: '', scheme: '', issuer: '', environment: '', operationStatus: '', creationMode: '', creator: '', creatorState: '', lastUse: '', credentialEnd: '',
    action: 'cannot-read', severity: 'warning', why, fix: `Grant the auditing identity: ${permission}; then re-run the audit.`, permission,
  };
}

function credentialText(ep: EndpointJson, credentials: Credentials | string, graph: GraphAccess, warnDays: number, now: number): { text: string; end?: number } {
  if (!isSecretBased(ep)) return { text: 'none (no secret)' };
  if (typeof credentials === 'string') return { text: `skipped: ${credentials}` };
  const p = ep.authorization?.parameters ?? {};
  const appId = (p.serviceprincipalid ?? '').toLowerCase();
  const answer = credentials.get(appId);
  if (!answer) {
    const env = environmentOf(ep);
    if (graph.enabled && env.toLowerCase() !== graph.cloud.toLowerCase()) return { text: `skipped: the connection is in ${env}, the auditing identity in ${graph.cloud}` };
    if (graph.enabled) return { text: `skipped: the app is in tenant ${p.tenantid ?? '(none)'}, the auditing identity in ${graph.tenantId}` };
    return { text: 'skipped' };
  }
  if (!answer.ok) {
    if (answer.status === 403) return { text: 'skipped: the auditing identity may not read app registrations (needs Microsoft Graph Application.Read.All, or ownership of the app)' };
    if (answer.status === 404) return { text: `skipped: no app registration ${appId} in the tenant (deleted?)` };
    return { text: `skipped: Microsoft Graph ${answer.status ? `HTTP ${answer.status}` : 'unreachable'}${answer.message ? `: ${answer.message}` : ''}` };
  }
  const certificate = schemeOf(ep).includes('certificate');
  const kind: Credential['kind'] = certificate ? 'certificate' : 'secret';
  const ends = answer.credentials.filter((c) => c.kind === kind && c.endDateTime).map((c) => Date.parse(c.endDateTime!)).filter((n) => Number.isFinite(n));
  if (!ends.length) return { text: `no ${kind} on the app registration` };
  const end = Math.max(...ends);
  const days = Math.floor((end - now) / DAY);
  const date = new Date(end).toISOString().slice(0, 10);
  const state = end <= now ? 'expired' : days < warnDays ? `expires in ${days} days` : 'valid';
  return { text: `${date} (${state}; latest of ${ends.length} ${kind}${ends.length === 1 ? '' : 's'})`, end };
}

function connectionRow(ctx: PipelineContext, e: Seen, history: Read<LastUse | undefined>, identities: Identities, credentials: Credentials | string, o: AuditOptions): AuditRow {
  const ep = e.ep;
  const refs = (ep.serviceEndpointProjectReferences ?? []).map((r) => r.projectReference?.name).filter((n): n is string => typeof n === 'string');
  // The connection's own project: its first project reference (where it was created); else where it was listed.
  const project = refs[0] ?? e.listedIn[0];
  const sharedWith = [...new Set([...refs, ...e.listedIn])].filter((p) => p.toLowerCase() !== project.toLowerCase());
  const p = ep.authorization?.parameters ?? {};
  const scheme = schemeOf(ep);
  const issuer = issuerOf(ep);
  const environment = environmentOf(ep);
  const creationMode = ep.data?.creationMode ?? '';
  const op = ep.operationStatus;
  const operationStatus = op?.state ? `${op.state}${op.statusMessage ? `: ${op.statusMessage}` : ''}` : '';
  const creatorId = ep.createdBy?.id?.toLowerCase();
  const creator = ep.createdBy?.displayName ?? ep.createdBy?.uniqueName ?? '(unknown)';
  let creatorState: string;
  if (!creatorId) creatorState = 'unknown: no creator recorded';
  else if (!identities.ok) creatorState = `unknown: ${identities.reason}`;
  else {
    const s = identities.states.get(creatorId);
    const unread = identities.unread.get(creatorId);
    creatorState = s ? (s.active ? 'active' : 'inactive') : unread ? `unknown: ${unread}` : 'inactive (not found in the organization)';
  }
  let lastUse: string;
  let lastUseDate: string | undefined;
  let historyProblem: string | undefined;
  if (!history.ok) {
    lastUse = `unknown: ${history.reason}`;
    historyProblem = `${history.reason}${history.permission ? ` (needs ${history.permission})` : ''}`;
  } else if (!history.value) lastUse = 'never';
  else {
    const u = history.value;
    lastUseDate = u.finishTime;
    lastUse = `${u.finishTime?.slice(0, 10) ?? '(no date)'}: ${u.pipeline ?? '(pipeline)'} run ${u.run ?? '?'}, ${u.result ?? 'no result'}`;
  }
  const cred = credentialText(ep, credentials, o.graph, o.secretExpiryWarningDays, o.now);
  const own = isOwnType(ep);

  const row: AuditRow = {
    project, sharedWith, id: ep.id, name: ep.name ?? '(unnamed)', type: ep.type ?? '', scheme, issuer, environment, isReady: ep.isReady, operationStatus, creationMode, creator, creatorState,
    lastUse, lastUseDate, credentialEnd: cred.text, action: 'none', severity: 'ok', why: 'Nothing found that needs action.', fix: '', link: connectionLink(ctx.collectionUri, project, ep.id),
  };
  if (own) {
    row.environment = '';
    row.review = reviewOf(ep, `sc://${ctx.collectionUri.replace(/\/+$/, '').split('/').pop() ?? '<organization>'}/${project}/${row.name}`);
  }
  const org = ctx.collectionUri.replace(/\/+$/, '');
  const cli = `--id ${ep.id} --org ${org} --project "${project}"`;
  const appId = p.serviceprincipalid ?? '(the app)';
  const secretBased = isSecretBased(ep);
  const failed = ep.isReady === false || /^failed$/i.test(op?.state ?? '');
  const unused = history.ok && (!history.value || (lastUseDate !== undefined && o.now - Date.parse(lastUseDate) > o.unusedDays * DAY));

  if (failed) {
    row.action = 'fix-rotation';
    row.severity = 'error';
    const who = creatorState === 'active' ? `its creator ${creator} is still active` : `its creator ${creator} is ${creatorState.startsWith('inactive') ? 'no longer active (the rotation needs the creator\'s rights)' : creatorState}`;
    row.why = `Not ready (${operationStatus || 'state Failed'}); ${who}. Deployments fail once the current secret expires.`;
    row.fix = secretBased
      ? `Convert it to workload identity federation (Project settings > Service connections > ${row.name} > Convert): nothing left to rotate. Or have an admin with rights on app ${appId} edit and save the connection so that Azure DevOps rotates the secret with their rights.`
      : own
        ? `Open the connection (Project settings > Service connections > ${row.name}), fix what its status names and save it.`
        : `Open the connection (Project settings > Service connections > ${row.name}), fix what its status names and save it; an admin with rights on app ${appId} may have to do it.`;
  } else if (unused) {
    row.action = 'remove-unused';
    row.severity = 'warning';
    row.why = history.ok && history.value ? `Last used ${lastUseDate?.slice(0, 10)}, more than ${o.unusedDays} days ago.` : 'Never used by a pipeline.';
    row.fix = `If no pipeline needs it, remove it: az devops service-endpoint delete ${cli} --yes (or its Delete button). A connection nobody uses is a credential nobody watches.`;
  } else if (secretBased && cred.end !== undefined && cred.end - o.now < o.secretExpiryWarningDays * DAY) {
    row.action = 'renew-secret';
    row.severity = cred.end <= o.now ? 'error' : 'warning';
    const what = scheme.includes('certificate') ? 'certificate' : 'secret';
    row.why = cred.end <= o.now ? `The ${what} expired on ${new Date(cred.end).toISOString().slice(0, 10)}: deployments fail with AADSTS7000222.` : `The ${what} expires on ${new Date(cred.end).toISOString().slice(0, 10)}.`;
    row.fix = `Convert it to workload identity federation (the connection's Convert button) so nothing expires; or renew it: az ad app credential reset --id ${appId} --append${what === 'certificate' ? ' --create-cert' : ''}, then edit the connection with the new ${what}.`;
  } else if (isOwnType(ep)) {
    row.why = `Nothing found that needs action. ${OWN_TYPE_ISSUER}`;
  } else if (issuer === 'vstoken' && environment.toLowerCase() === 'azurecloud') {
    row.action = 'convert-issuer';
    row.severity = o.now >= VSTOKEN_RETIREMENT ? 'error' : 'warning';
    row.why = `Federated on the vstoken issuer, which Azure DevOps retires on 2027-07-01 (Azure public cloud; multitenant apps are excepted, which nothing here shows).`;
    row.fix = `Convert the issuer: the connection's Update button (Project settings > Service connections > ${row.name}), or for many connections az devops service-endpoint convert --org ${org} --project "${project}" naming connection ${ep.id} (its --help gives the argument for the connection)${creationMode.toLowerCase() === 'manual' ? `; a manual connection's app owner first adds the issuer https://login.microsoftonline.com/${p.tenantid ?? '<tenant>'}/v2.0 and the subject the connection shows as a federated credential on app ${appId}` : ''}. Then tell AWS and any other relying party that trusts the vstoken issuer about the new issuer and subject.`;
  } else if (secretBased && environment.toLowerCase() !== 'azurestack') {
    row.action = 'convert-to-federation';
    row.severity = 'warning';
    row.why = `Uses a stored ${scheme.includes('certificate') ? 'certificate' : 'secret'}, which expires and must be rotated.`;
    row.fix = creationMode.toLowerCase() === 'manual'
      ? `Convert it to workload identity federation: add the issuer and subject the connection's Convert dialog shows as a federated credential on app ${appId}, then choose Convert (Project settings > Service connections > ${row.name}).`
      : `Convert it to workload identity federation: Project settings > Service connections > ${row.name} > Convert (Azure DevOps adds the federated credential to app ${appId}).`;
  }
  if (own && row.action !== 'none') row.why = `${row.why} ${OWN_TYPE_ISSUER}`;
  if (historyProblem && row.action === 'none') {
    row.action = 'cannot-read';
    row.severity = 'warning';
    row.why = `Its last use could not be read: ${historyProblem}.`;
    row.fix = `Grant the auditing identity ${history.ok ? '' : history.permission ?? 'Reader on the connection'}; then re-run the audit.`;
    row.permission = history.ok ? undefined : history.permission;
  }
  return row;
}
