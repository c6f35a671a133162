import { GcpState } from './gcp';
import { VaultState } from './vault';
import * as crypto from 'node:crypto';
import type { Pki } from './pki';
import type {
  AppRegistration,
  AwsOidcProvider,
  AwsRole,
  AwsSession,
  ManagedIdentity,
  RegistryRegistration,
  ServiceConnection,
  SubscriptionRegistration,
  TokenRequestRecord,
  Fault,
  IdentityRegistration,
  ProjectRegistration,
  PipelineRun,
} from './types';
import { isGuid, randomSecret } from './jwt';

// Fixed so that subjects, URLs and recorded expectations stay the same from run to run.
export const ORGANIZATION = { name: 'contoso', id: '5b1c6b0e-7d3a-4f0e-9c52-1d8e2f4a6b71' } as const;
export const DEFAULT_PROJECT = { name: 'web', id: '0c3e9a57-2f61-4b8d-a4e2-7b9f1c5d3e80' } as const;
export const PIPELINE_NAME = 'workload-identity-demo';
export const EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';
/** The run the pipeline's own token describes (run_id matches the demo job's Build.BuildId). */
export const DEFAULT_PIPELINE_RUN: PipelineRun = {
  definitionId: '17',
  repositoryId: 'e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b',
  repositoryUri: `https://dev.azure.com/contoso/web/_git/web`,
  repositoryVersion: '3f1c2a9e8b7d6c5f4e3a2b1c0d9e8f7a6b5c4d3e',
  repositoryRef: 'refs/heads/main',
  runId: '1042',
};

export interface RegisteredApp extends AppRegistration {
  /** object id of the application object: Graph's id */
  objectId: string;
  /** object id of the app's service principal: the oid of its access tokens */
  servicePrincipalObjectId: string;
  /** when it was (first) added: the default start of its secrets, Graph's createdDateTime */
  createdDateTime: string;
}

/** A role assignment as ARM keeps it: the role resolved to its definition GUID, the scope normalized. */
export interface StoredRoleAssignment {
  principalId: string;
  scope: string;
  roleDefinitionId: string;
}

/** An IAM role as STS keeps it: the ARN taken apart, the defaults filled in. */
export interface StoredAwsRole {
  arn: string;
  accountId: string;
  /** the last part of the ARN (after any path) */
  name: string;
  maxSessionDurationSeconds: number;
  trust: { issuer: string; sub?: string; aud?: string };
}

/** arn:aws:iam::<account>:role/<optional path/><name>; IAM's name characters, up to 64 of them. */
const ROLE_ARN = /^arn:aws:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/;

export function parseRoleArn(arn: string): { accountId: string; name: string } | undefined {
  const m = ROLE_ARN.exec(arn);
  return m ? { accountId: m[1], name: m[2] } : undefined;
}

/** A provider url as IAM keeps it: without the scheme. */
export function awsProviderUrl(url: string): string {
  return url.replace(/^https:\/\//i, '');
}

export interface Project {
  name: string;
  id: string;
  /** what every request about the project answers with, while set */
  fault?: Fault;
}

/** Everything the service modules share: registrations, issued secrets, the last token request. */
export class World {
  readonly gcp = new GcpState();
  /** HashiCorp Vault: namespaces, auth methods, mounts, policies, tokens, leases */
  readonly vault = new VaultState(`https://vstoken.dev.azure.com/${ORGANIZATION.id}`);
  url = '';
  host = '';
  idTokenLifetimeSeconds = 600;
  pipelineTokenLifetimeSeconds: number | undefined;
  readonly pipelineRun: PipelineRun = { ...DEFAULT_PIPELINE_RUN };
  latencyMs = 0;
  projectPageSize = 100;
  endpointPageSize = 100;
  /**
   * The projects (names, any case) the identity reading the organisation may see; undefined: every
   * project. Like Azure DevOps, the project list leaves the others out and a read about one answers
   * 404, as for a project that does not exist.
   */
  visibleProjects: string[] | undefined;
  identityServiceUrl: string | undefined;
  lastTokenRequest: TokenRequestRecord | undefined;

  private readonly registeredApps: RegisteredApp[] = [];
  private readonly connections = new Map<string, ServiceConnection>();
  private readonly identities: ManagedIdentity[] = [];
  private readonly registries = new Map<string, RegistryRegistration>();
  private readonly subscriptions = new Map<string, SubscriptionRegistration>();
  private readonly assignments: StoredRoleAssignment[] = [];
  private readonly awsProviders = new Map<string, AwsOidcProvider>();
  private readonly awsRoles = new Map<string, StoredAwsRole>();
  private readonly awsSessionList: AwsSession[] = [];
  private readonly projects = new Map<string, Project>([[DEFAULT_PROJECT.name, { ...DEFAULT_PROJECT }]]);
  private readonly identityMap = new Map<string, IdentityRegistration>();
  private readonly members = new Set<string>();
  /** Plans the tests' jobs registered, by id (lower case): the hub each lives in (build, release, deployment). */
  readonly plans = new Map<string, string>();
  // Insertion-ordered and de-duplicated; read by leak scans.
  private readonly secrets = new Set<string>();
  private currentJobToken: string;

  constructor(readonly pki: Pki) {
    this.currentJobToken = randomSecret();
    this.secrets.add(this.currentJobToken);
  }

  get jobAccessToken(): string {
    return this.currentJobToken;
  }

  set jobAccessToken(value: string) {
    this.currentJobToken = value;
    if (value) this.secrets.add(value);
  }

  recordSecret(value: string | undefined): void {
    if (value) this.secrets.add(value);
  }

  allSecrets(): string[] {
    return [...this.secrets];
  }

  addApp(app: AppRegistration): void {
    requireGuid(app.clientId, 'clientId');
    requireGuid(app.tenantId, 'tenantId');
    if (app.objectId !== undefined) requireGuid(app.objectId, 'objectId');
    if (app.servicePrincipalObjectId !== undefined) requireGuid(app.servicePrincipalObjectId, 'servicePrincipalObjectId');
    const existing = this.findApp(app.tenantId, app.clientId);
    const registered: RegisteredApp = {
      ...structuredClone(app),
      objectId: (app.objectId ?? existing?.objectId ?? crypto.randomUUID()).toLowerCase(),
      servicePrincipalObjectId: (app.servicePrincipalObjectId ?? existing?.servicePrincipalObjectId ?? crypto.randomUUID()).toLowerCase(),
      createdDateTime: existing?.createdDateTime ?? new Date().toISOString(),
    };
    if (existing) this.registeredApps.splice(this.registeredApps.indexOf(existing), 1);
    this.registeredApps.push(registered);
    for (const s of app.secrets ?? []) this.recordSecret(s.value);
  }

  findApp(tenantId: string, clientId: string): RegisteredApp | undefined {
    return this.registeredApps.find((a) => sameId(a.tenantId, tenantId) && sameId(a.clientId, clientId));
  }

  apps(): readonly RegisteredApp[] {
    return this.registeredApps;
  }

  findAppAnyTenant(clientId: string): RegisteredApp | undefined {
    return this.registeredApps.find((a) => sameId(a.clientId, clientId));
  }

  addServiceConnection(sc: ServiceConnection): void {
    requireGuid(sc.id, 'id');
    if (sc.scheme !== 'None' && sc.scheme !== 'UsernamePassword') {
      // An Azure Resource Manager connection: an Entra app or identity behind it.
      requireGuid(sc.tenantId, 'tenantId');
      requireGuid(sc.clientId, 'clientId');
    }
    for (const projectName of [sc.projectName ?? DEFAULT_PROJECT.name, ...(sc.sharedWith ?? [])]) {
      if (!this.findProject(projectName)) {
        this.projects.set(projectName.toLowerCase(), { name: projectName, id: deterministicGuid(`project:${projectName.toLowerCase()}`) });
      }
    }
    this.connections.set(sc.id.toLowerCase(), structuredClone(sc));
    this.recordSecret(sc.servicePrincipalKey);
  }

  findConnection(id: string): ServiceConnection | undefined {
    return this.connections.get(id.toLowerCase());
  }

  /** The connections a project sees: its own and those shared with it, in the order added. */
  connectionsOf(project: Project): ServiceConnection[] {
    const name = project.name.toLowerCase();
    return [...this.connections.values()].filter((c) => (c.projectName ?? DEFAULT_PROJECT.name).toLowerCase() === name || (c.sharedWith ?? []).some((p) => p.toLowerCase() === name));
  }

  addProject(p: ProjectRegistration): void {
    if (typeof p.name !== 'string' || !p.name.trim()) throw new TypeError('a project needs a name');
    if (p.id !== undefined) requireGuid(p.id, 'id');
    const existing = this.findProject(p.name);
    this.projects.set(p.name.toLowerCase(), { name: p.name, id: (p.id ?? existing?.id ?? deterministicGuid(`project:${p.name.toLowerCase()}`)).toLowerCase(), fault: p.fault && structuredClone(p.fault) });
  }

  /** Every project, sorted by name (as _apis/projects lists them). */
  projectList(): Project[] {
    return [...this.projects.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  addIdentity(i: IdentityRegistration): void {
    requireGuid(i.id, 'id');
    this.identityMap.set(i.id.toLowerCase(), { ...i });
  }

  /** An identity by id: a registered one, or a connection's creator (active unless createdBy.inactive). */
  findIdentity(id: string): IdentityRegistration | undefined {
    const key = id.toLowerCase();
    const known = this.identityMap.get(key);
    if (known) return known;
    for (const c of this.connections.values()) {
      const by = c.createdBy;
      if (by && (by.id ?? deterministicGuid(`identity:${by.displayName}`)).toLowerCase() === key) return { id: key, displayName: by.displayName, isActive: !by.inactive };
    }
    return undefined;
  }

  addMember(id: string): void {
    requireGuid(id, 'clientIdOrObjectId');
    this.members.add(id.toLowerCase());
  }

  isMember(ids: string[]): boolean {
    return ids.some((i) => this.members.has(i.toLowerCase()));
  }

  findProject(nameOrId: string): Project | undefined {
    const key = nameOrId.toLowerCase();
    for (const p of this.projects.values()) if (p.name.toLowerCase() === key || p.id.toLowerCase() === key) return p;
    return undefined;
  }

  addManagedIdentity(mi: ManagedIdentity): void {
    requireGuid(mi.clientId, 'clientId');
    requireGuid(mi.tenantId, 'tenantId');
    const i = this.identities.findIndex((x) => sameId(x.clientId, mi.clientId));
    if (mi.objectId !== undefined) requireGuid(mi.objectId, 'objectId');
    const entry = { ...mi, objectId: mi.objectId ?? (i >= 0 ? this.identities[i].objectId : undefined) ?? crypto.randomUUID() };
    if (i >= 0) this.identities.splice(i, 1, entry);
    else this.identities.push(entry);
  }

  managedIdentities(): ManagedIdentity[] {
    return this.identities;
  }

  addRegistry(registry: RegistryRegistration): void {
    const loginServer = String(registry.loginServer ?? '').toLowerCase();
    if (!/^[a-z0-9.-]+(:\d{1,5})?$/.test(loginServer)) {
      throw new TypeError(`loginServer must be host or host:port as clients see it, got ${JSON.stringify(registry.loginServer)}`);
    }
    requireGuid(registry.tenantId, 'tenantId');
    if (registry.upstream !== undefined) {
      let u: URL | undefined;
      try {
        u = new URL(registry.upstream);
      } catch {
        u = undefined;
      }
      // Only loopback traffic: the emulator never forwards anywhere else.
      if (!u || u.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) || (u.pathname !== '/' && u.pathname !== '')) {
        throw new TypeError(`upstream must be http://127.0.0.1:<port> (a local registry), got ${JSON.stringify(registry.upstream)}`);
      }
    }
    for (const id of registry.allowedClientIds ?? []) requireGuid(id, 'allowedClientIds[]');
    this.registries.set(loginServer, { ...structuredClone(registry), loginServer });
  }

  findRegistry(loginServer: string): RegistryRegistration | undefined {
    return this.registries.get(loginServer.toLowerCase());
  }

  addSubscription(subscription: SubscriptionRegistration): void {
    requireGuid(subscription.subscriptionId, 'subscriptionId');
    requireGuid(subscription.tenantId, 'tenantId');
    this.subscriptions.set(subscription.subscriptionId.toLowerCase(), structuredClone(subscription));
  }

  findSubscription(subscriptionId: string): SubscriptionRegistration | undefined {
    return this.subscriptions.get(subscriptionId.toLowerCase());
  }

  addRoleAssignment(a: StoredRoleAssignment): void {
    requireGuid(a.principalId, 'principalId');
    if (!this.assignments.some((x) => sameAssignment(x, a))) this.assignments.push({ ...a });
  }

  removeRoleAssignment(a: StoredRoleAssignment): number {
    let removed = 0;
    for (let i = this.assignments.length - 1; i >= 0; i--) {
      if (sameAssignment(this.assignments[i], a)) {
        this.assignments.splice(i, 1);
        removed++;
      }
    }
    return removed;
  }

  roleAssignments(): readonly StoredRoleAssignment[] {
    return this.assignments;
  }

  addAwsOidcProvider(provider: AwsOidcProvider): void {
    const url = awsProviderUrl(String(provider.url ?? ''));
    if (!url || /\s/.test(url) || /^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
      throw new TypeError(`url must be the issuer without https://, e.g. 'vstoken.dev.azure.com/<org id>', got ${JSON.stringify(provider.url)}`);
    }
    if (!Array.isArray(provider.clientIds) || provider.clientIds.some((c) => typeof c !== 'string' || !c)) {
      throw new TypeError(`clientIds must be an array of audiences, got ${JSON.stringify(provider.clientIds)}`);
    }
    requireAccountId(provider.accountId);
    this.awsProviders.set(`${provider.accountId} ${url.toLowerCase()}`, { url, clientIds: [...provider.clientIds], accountId: provider.accountId });
  }

  /** IAM compares provider urls without regard to case in the host; the emulator ignores case throughout. */
  findAwsOidcProvider(accountId: string, url: string): AwsOidcProvider | undefined {
    return this.awsProviders.get(`${accountId} ${url.toLowerCase()}`);
  }

  addAwsRole(role: AwsRole): void {
    const parsed = parseRoleArn(String(role.arn ?? ''));
    if (!parsed) throw new TypeError(`arn must be arn:aws:iam::<12 digits>:role/<name>, got ${JSON.stringify(role.arn)}`);
    const max = role.maxSessionDurationSeconds ?? 3600;
    if (!Number.isInteger(max) || max < 3600 || max > 43200) {
      throw new RangeError(`maxSessionDurationSeconds must be an integer from 3600 to 43200 (IAM's MaxSessionDuration), got ${max}`);
    }
    if (!role.trust || typeof role.trust.issuer !== 'string' || !role.trust.issuer) {
      throw new TypeError('trust.issuer (the provider url) is required');
    }
    this.awsRoles.set(role.arn.toLowerCase(), {
      arn: role.arn,
      ...parsed,
      maxSessionDurationSeconds: max,
      trust: { ...role.trust, issuer: awsProviderUrl(role.trust.issuer) },
    });
  }

  /** IAM role names are unique without regard to case. */
  findAwsRole(arn: string): StoredAwsRole | undefined {
    return this.awsRoles.get(arn.toLowerCase());
  }

  addAwsSession(session: AwsSession): void {
    this.awsSessionList.push(session);
    // The access key id is not a secret (tasks print it as an output); the other two are.
    this.recordSecret(session.secretAccessKey);
    this.recordSecret(session.sessionToken);
  }

  findAwsSession(accessKeyId: string): AwsSession | undefined {
    return this.awsSessionList.find((s) => s.accessKeyId === accessKeyId);
  }

  awsSessions(): readonly AwsSession[] {
    return this.awsSessionList;
  }

  /** A tenant exists once anything registered lives in it. */
  knowsTenant(tenantId: string): boolean {
    const t = tenantId.toLowerCase();
    return (
      this.registeredApps.some((a) => a.tenantId.toLowerCase() === t) ||
      [...this.connections.values()].some((c) => c.tenantId.toLowerCase() === t) ||
      this.identities.some((m) => m.tenantId.toLowerCase() === t) ||
      [...this.registries.values()].some((r) => r.tenantId.toLowerCase() === t) ||
      [...this.subscriptions.values()].some((s) => s.tenantId.toLowerCase() === t)
    );
  }
}

export function sameId(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function sameAssignment(a: StoredRoleAssignment, b: StoredRoleAssignment): boolean {
  return sameId(a.principalId, b.principalId) && a.scope.toLowerCase() === b.scope.toLowerCase() && sameId(a.roleDefinitionId, b.roleDefinitionId);
}

function requireAccountId(value: string): void {
  if (typeof value !== 'string' || !/^\d{12}$/.test(value)) throw new TypeError(`accountId must be 12 digits, got ${JSON.stringify(value)}`);
}

function requireGuid(value: string, field: string): void {
  if (typeof value !== 'string' || !isGuid(value)) throw new TypeError(`${field} must be a GUID, got ${JSON.stringify(value)}`);
}

export function deterministicGuid(seed: string): string {
  const h = crypto.createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
