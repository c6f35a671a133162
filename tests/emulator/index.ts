// Local emulator of Azure DevOps (Oidctoken, service endpoints), Microsoft Entra ID, Azure IMDS,
// Azure Container Registry (its token exchange; /v2/ proxied to a real registry), Azure Resource
// Manager (subscriptions, permissions, role definitions), Microsoft Graph (applications, service
// principals), AWS STS (AssumeRoleWithWebIdentity, GetCallerIdentity), Google STS and IAM Credentials
// and HashiCorp Vault (JWT login, KV, leases, namespaces) on one HTTPS server, so that tasks can be
// run end to end exactly as the agent runs them.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type {
  AppRegistration,
  AwsOidcProvider,
  AwsRole,
  AwsSession,
  Emulator,
  EmulatorOptions,
  Fault,
  GcpAccessToken,
  GcpProvider,
  GcpServiceAccount,
  IdentityRegistration,
  Jwk,
  ManagedIdentity,
  ProjectRegistration,
  RequestRecord,
  RegistryRegistration,
  RegistryTokenSigner,
  RoleAssignment,
  RoleDefinition,
  RouteName,
  ServiceConnection,
  PipelineRun,
  SubscriptionRegistration,
  TokenRequestRecord,
  VaultEmulator,
} from './types';
import { EmulatorServer, Router, type Interceptor } from './server';
import { FaultQueue, applyFault } from './faults';
import { loadOrCreatePki, makeSelfSignedCertificate } from './pki';
import { World, ORGANIZATION, DEFAULT_PROJECT } from './state';
import { federationOf, registerDevOps } from './devops';
import { registerDevOpsOrganization } from './devops-org';
import { devopsJwk, entraJwk, registerEntra } from './entra';
import { registerImds } from './imds';
import { registerAcr, registryTokenSigner } from './acr';
import { registerArm } from './arm';
import { registerGraph } from './graph';
import { builtInRoleCopies, checkAssignableScope, findRole } from './roles';
import { STS_ENDPOINT_ROUTE, registerSts } from './sts';
import { registerGcp } from './gcp';
import { VaultHandle, registerVault, vaultRequestDetails } from './vault';

export type {
  AppRegistration,
  AwsOidcProvider,
  AwsRole,
  AwsSession,
  Emulator,
  EmulatorOptions,
  Fault,
  FederatedCredential,
  GcpAccessToken,
  GcpProvider,
  GcpServiceAccount,
  IdentityRegistration,
  Jwk,
  ProjectRegistration,
  RequestRecord,
  ManagedIdentity,
  RegistryRegistration,
  RegistryTokenSigner,
  BuiltInRoleName,
  RoleAssignment,
  RoleDefinition,
  RolePermission,
  RouteName,
  ServiceConnection,
  PipelineRun,
  SubscriptionRegistration,
  TokenRequestRecord,
  VaultCapability,
  VaultEmulator,
  VaultJwtAuthConfig,
  VaultJwtRole,
  VaultKvMount,
  VaultLeaseRecord,
  VaultMount,
  VaultPolicyRule,
  VaultRequestDetails,
  VaultTokenRecord,
} from './types';
export { SECRET_ROTATION_FAILED } from './devops';
export { DEVOPS_RESOURCE, IDENTITY_AREA } from './devops-org';
export { GRAPH_READ_ROLE } from './graph';
export { ACR_TOKEN_USERNAME, REGISTRY_AUDIENCE, REGISTRY_TOKEN_ISSUER } from './acr';
export { addDemoScenario, agentEnvironment } from './scenario';
export { STS_NAMESPACE, stsErrorBody, stsFault } from './sts';
export { GOOGLE_CLOUD_PLATFORM_SCOPE, gcpPoolPrincipalSet, gcpPrincipal, providerName as gcpProviderName } from './gcp';
export { VAULT_ADDRESS, VAULT_AUTHORITY, VAULT_HOST } from './vault';

export const ROUTE_NAMES: readonly RouteName[] = [
  'oidctoken',
  'serviceendpoint',
  'devops.projects',
  'devops.endpoints',
  'devops.executionHistory',
  'devops.resourceArea',
  'devops.identities',
  'entra.token',
  'entra.openid',
  'entra.discovery',
  'entra.keys',
  'imds',
  'acr.exchange',
  'acr.token',
  'acr.v2',
  'arm.subscription',
  'arm.permissions',
  'arm.roleDefinitions',
  'graph.application',
  'graph.servicePrincipal',
  'sts.assumeRoleWithWebIdentity',
  'sts.getCallerIdentity',
  'gcp.sts.token',
  'gcp.iam.generateAccessToken',
  'vault.login',
  'vault.mounts',
  'vault.read',
  'vault.lookup-self',
  'vault.revoke-self',
  'vault.other',
];
/** counts() key for requests no route matched */
export const UNMATCHED = 'unmatched';
/** counts() key for requests that reached a route at a public host name that is not the route's service */
export const MISDIRECTED = 'misdirected';

/**
 * The public host names each service answers at. A request that comes through a proxy carries the
 * name the task asked for (its Host): the emulator answers a route only at its own service's names,
 * so a token sent to the wrong host is refused (421), not served. Loopback is the direct path that
 * most tests use.
 */
const SERVICE_HOSTS: [routePrefix: string, host: RegExp][] = [
  // In a classic release job System.OidcRequestUri may be on the Release Management host.
  ['oidctoken', /^(vsrm\.)?dev\.azure\.com$/],
  ['serviceendpoint', /^dev\.azure\.com$/],
  // vssps.dev.azure.com is the identity service's own host in the cloud.
  ['devops.', /^(vssps\.)?dev\.azure\.com$/],
  ['entra.', /^(login\.microsoftonline\.(com|us)|login\.chinacloudapi\.cn)$/],
  ['acr.', /^[a-z0-9]+\.azurecr\.(io|us|cn)$/],
  ['arm.', /^management\.(azure\.com|usgovcloudapi\.net|chinacloudapi\.cn)$/],
  ['graph.', /^(graph\.microsoft\.(com|us)|microsoftgraph\.chinacloudapi\.cn)$/],
  ['sts', /^sts(\.[a-z0-9-]+)?\.amazonaws\.com$/],
  ['gcp.sts.', /^sts\.googleapis\.com$/],
  ['gcp.iam.', /^iamcredentials\.googleapis\.com$/],
  // Vault's own port is part of its address (https://vault.fabrikam.com:8200).
  ['vault.', /^vault\.fabrikam\.com:8200$/],
];

function isLoopbackHost(host: string): boolean {
  return /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(host);
}

/** Whether `route` may be served at `host` (the request's Host header, lower case; :443 is dropped, another port is part of the name). */
export function servedAt(route: string, host: string): boolean {
  if (isLoopbackHost(host)) return true;
  const name = host.replace(/:443$/, '');
  return SERVICE_HOSTS.some(([prefix, re]) => (route === prefix || route.startsWith(prefix)) && re.test(name));
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'wit-emulator-'));
  try {
    const pki = await loadOrCreatePki(dir);
    const world = new World(pki);
    const router = new Router();
    const counters = new Map<string, number>();
    const hostsSeen: { route: string; host: string }[] = [];
    const log: RequestRecord[] = [];
    const inFlight = { now: 0, max: 0 };
    const record = (route: string, ctx: import('./server').RequestContext) => {
      const entry: RequestRecord = { route, method: ctx.req.method ?? '', host: String(ctx.req.headers.host ?? '').toLowerCase(), path: `${ctx.url.pathname}${ctx.url.search}`, at: Date.now() };
      if (route.startsWith('vault.')) entry.vault = vaultRequestDetails(world, ctx);
      // The status is known once the head is written, which may be before 'finish' is emitted.
      Object.defineProperty(entry, 'status', { enumerable: true, configurable: true, get: () => (ctx.res.headersSent ? ctx.res.statusCode : undefined) });
      log.push(entry);
    };
    const faults = new FaultQueue();
    // Counts the request at its route and applies the route's next fault, if any. STS's `POST /`
    // is only named once its form is read, so its module calls this itself with the action's route.
    const intercept: Interceptor = (route, ctx) => {
      counters.set(route.name, (counters.get(route.name) ?? 0) + 1);
      const fault = faults.take(route.name);
      if (!fault) return false;
      applyFault(fault, route, ctx);
      return true;
    };
    registerDevOps(router, world);
    registerDevOpsOrganization(router, world);
    registerEntra(router, world);
    registerImds(router, world);
    registerAcr(router, world);
    registerArm(router, world);
    registerGraph(router, world);
    registerGcp(router, world);
    registerVault(router, world);
    registerSts(router, world, intercept, () => counters.set(UNMATCHED, (counters.get(UNMATCHED) ?? 0) + 1));

    const routeNames = [...new Set([...ROUTE_NAMES, ...router.names()])].filter((n) => n !== STS_ENDPOINT_ROUTE);
    const resetCounters = () => {
      for (const name of [...routeNames, UNMATCHED, MISDIRECTED]) counters.set(name, 0);
      hostsSeen.length = 0;
      log.length = 0;
      inFlight.max = inFlight.now;
    };
    resetCounters();
    const server = new EmulatorServer({
      key: pki.serverKeyPem,
      cert: pki.serverCertPem,
      router,
      intercept: (route, ctx) => {
        const host = String(ctx.req.headers.host ?? '').toLowerCase();
        hostsSeen.push({ route: route.name, host });
        record(route.name, ctx);
        if (!servedAt(route.name, host)) {
          counters.set(MISDIRECTED, (counters.get(MISDIRECTED) ?? 0) + 1);
          ctx.json(421, { error: 'misdirected_request', message: `${host} does not serve ${route.name}` });
          return true;
        }
        if (route.name !== STS_ENDPOINT_ROUTE) return intercept(route, ctx);
        // Another method on `/`: no STS action; it is answered 405 and counted as unmatched.
        if (ctx.req.method !== 'POST') counters.set(UNMATCHED, (counters.get(UNMATCHED) ?? 0) + 1);
        return false;
      },
      servedAt,
      onUnmatched: (ctx) => {
        record(UNMATCHED, ctx);
        counters.set(UNMATCHED, (counters.get(UNMATCHED) ?? 0) + 1);
      },
      latencyMs: () => world.latencyMs,
      // From arrival, latency included: what the client has in flight.
      inFlight: {
        enter: () => {
          inFlight.now++;
          inFlight.max = Math.max(inFlight.max, inFlight.now);
        },
        leave: () => {
          inFlight.now--;
        },
      },
    });
    const port = await server.listen(options.port ?? 0);
    world.url = `https://127.0.0.1:${port}`;
    world.host = `127.0.0.1:${port}`;

    return new EmulatorImpl(world, server, faults, counters, resetCounters, routeNames, ownDir ? dir : undefined, hostsSeen, log, inFlight);
  } catch (e) {
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

class EmulatorImpl implements Emulator {
  readonly url: string;
  readonly host: string;
  readonly caCertPath: string;
  readonly organization = { name: ORGANIZATION.name, id: ORGANIZATION.id };
  readonly collectionUri: string;
  readonly projectId = DEFAULT_PROJECT.id;
  readonly planId = crypto.randomUUID();
  readonly jobId = crypto.randomUUID();
  readonly vault: VaultEmulator;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly world: World,
    private readonly server: EmulatorServer,
    private readonly faults: FaultQueue,
    private readonly counters: Map<string, number>,
    private readonly resetCounters: () => void,
    private readonly routeNames: string[],
    private readonly dirToRemove: string | undefined,
    private readonly hostsSeen: { route: string; host: string }[],
    private readonly log: RequestRecord[],
    private readonly inFlight: { now: number; max: number },
  ) {
    this.url = world.url;
    this.host = world.host;
    this.caCertPath = world.pki.caCertPath;
    this.collectionUri = `${world.url}/${ORGANIZATION.name}/`;
    this.vault = new VaultHandle(world);
  }

  get jobAccessToken(): string {
    return this.world.jobAccessToken;
  }

  set jobAccessToken(value: string) {
    this.world.jobAccessToken = value;
  }

  registerPlan(planId: string, hub: string): void {
    this.world.plans.set(planId.toLowerCase(), hub.toLowerCase());
  }

  get idTokenLifetimeSeconds(): number {
    return this.world.idTokenLifetimeSeconds;
  }

  set idTokenLifetimeSeconds(value: number) {
    this.world.idTokenLifetimeSeconds = value;
  }

  get pipelineTokenLifetimeSeconds(): number | undefined {
    return this.world.pipelineTokenLifetimeSeconds;
  }

  set pipelineTokenLifetimeSeconds(value: number | undefined) {
    this.world.pipelineTokenLifetimeSeconds = value;
  }

  get pipelineRun(): PipelineRun {
    return this.world.pipelineRun;
  }

  get latencyMs(): number {
    return this.world.latencyMs;
  }

  set latencyMs(value: number) {
    if (!(value >= 0)) throw new RangeError(`latencyMs must be 0 or more, got ${value}`);
    this.world.latencyMs = value;
  }

  get projectPageSize(): number {
    return this.world.projectPageSize;
  }

  set projectPageSize(value: number) {
    if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`projectPageSize must be a positive integer, got ${value}`);
    this.world.projectPageSize = value;
  }

  get endpointPageSize(): number {
    return this.world.endpointPageSize;
  }

  set endpointPageSize(value: number) {
    if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`endpointPageSize must be a positive integer, got ${value}`);
    this.world.endpointPageSize = value;
  }

  /** The projects the identity reading the organisation may see (undefined: every project); see World.visibleProjects. */
  get visibleProjects(): string[] | undefined {
    return this.world.visibleProjects;
  }

  set visibleProjects(value: string[] | undefined) {
    this.world.visibleProjects = value && [...value];
  }

  get identityServiceUrl(): string | undefined {
    return this.world.identityServiceUrl;
  }

  set identityServiceUrl(value: string | undefined) {
    this.world.identityServiceUrl = value;
  }

  addProject(project: ProjectRegistration): void {
    this.world.addProject(project);
  }

  addIdentity(identity: IdentityRegistration): void {
    this.world.addIdentity(identity);
  }

  addOrganizationMember(clientIdOrObjectId: string): void {
    this.world.addMember(clientIdOrObjectId);
  }

  requestLog(): RequestRecord[] {
    return this.log.map((r) => ({ ...r, ...(r.vault ? { vault: { ...r.vault } } : {}) }));
  }

  maxInFlight(): number {
    return this.inFlight.max;
  }

  addApp(app: AppRegistration): void {
    this.world.addApp(app);
  }

  addServiceConnection(sc: ServiceConnection): void {
    this.world.addServiceConnection(sc);
    if (sc.servicePrincipalCertificate) this.recordPem(sc.servicePrincipalCertificate);
  }

  addManagedIdentity(mi: ManagedIdentity): void {
    this.world.addManagedIdentity(mi);
  }

  addRegistry(registry: RegistryRegistration): void {
    this.world.addRegistry(registry);
  }

  registryTokenSigner(): RegistryTokenSigner {
    return registryTokenSigner(this.world);
  }

  addSubscription(subscription: SubscriptionRegistration): void {
    this.world.addSubscription(subscription);
  }

  assignRole(assignment: RoleAssignment): void {
    this.world.addRoleAssignment(this.storedAssignment(assignment));
  }

  unassignRole(assignment: RoleAssignment): number {
    return this.world.removeRoleAssignment(this.storedAssignment(assignment));
  }

  builtInRoles(): RoleDefinition[] {
    return builtInRoleCopies();
  }

  private storedAssignment(a: RoleAssignment): { principalId: string; scope: string; roleDefinitionId: string } {
    const role = findRole(a.role);
    if (!role) {
      throw new TypeError(`unknown role ${JSON.stringify(a.role)}; built-in roles: ${builtInRoleCopies().map((r) => `${r.roleName} (${r.id})`).join(', ')}`);
    }
    return { principalId: String(a.principalId ?? '').toLowerCase(), scope: checkAssignableScope(a.scope), roleDefinitionId: role.id };
  }

  getApp(clientId: string): AppRegistration | undefined {
    const app = this.world.findAppAnyTenant(clientId);
    return app && structuredClone(app);
  }

  getServiceConnection(id: string): ServiceConnection | undefined {
    const sc = this.world.findConnection(id);
    return sc && structuredClone(sc);
  }

  expectedFederation(connectionId: string): { issuer: string; subject: string; audience: 'api://AzureADTokenExchange' } {
    const sc = this.world.findConnection(connectionId);
    if (!sc) throw new Error(`no service connection ${connectionId} registered`);
    return federationOf(sc);
  }

  inject(route: RouteName, fault: Fault, times = 1): void {
    if (!this.routeNames.includes(route)) throw new TypeError(`unknown route ${route}; routes: ${this.routeNames.join(', ')}`);
    this.faults.add(route, fault, times);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  count(route: RouteName): number {
    return this.counters.get(route) ?? 0;
  }

  counts(): Record<string, number> {
    return Object.fromEntries(this.counters);
  }

  resetCounts(): void {
    this.resetCounters();
  }

  requestHosts(): { route: string; host: string }[] {
    return this.hostsSeen.map((h) => ({ ...h }));
  }

  issuedTokens(): string[] {
    return this.world.allSecrets();
  }

  lastTokenRequest(): TokenRequestRecord | undefined {
    return this.world.lastTokenRequest && { ...this.world.lastTokenRequest };
  }

  signingKeys(): { devops: Jwk; entra: Jwk } {
    return { devops: devopsJwk(this.world), entra: entraJwk(this.world) };
  }

  addAwsOidcProvider(provider: AwsOidcProvider): void {
    this.world.addAwsOidcProvider(provider);
  }

  addAwsRole(role: AwsRole): void {
    this.world.addAwsRole(role);
  }

  awsSessions(): AwsSession[] {
    return this.world.awsSessions().map((s) => structuredClone(s));
  }

  expireAwsSession(accessKeyId?: string): number {
    const now = new Date(Date.now() - 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    let n = 0;
    for (const s of this.world.awsSessions()) {
      if (accessKeyId !== undefined && s.accessKeyId !== accessKeyId) continue;
      s.expiration = now;
      n++;
    }
    return n;
  }

  addGcpProvider(provider: GcpProvider): void {
    this.world.gcp.addProvider(provider);
  }

  addGcpServiceAccount(account: GcpServiceAccount): void {
    this.world.gcp.addServiceAccount(account);
  }

  gcpTokens(): GcpAccessToken[] {
    return this.world.gcp.tokens.map((t) => structuredClone(t));
  }

  makeClientCertificate(commonName: string): { certificatePem: string; privateKeyPem: string } {
    const pair = makeSelfSignedCertificate(commonName);
    this.recordPem(pair.privateKeyPem);
    return pair;
  }

  stop(): Promise<void> {
    this.stopping ??= this.server.close().then(() => {
      if (this.dirToRemove) fs.rmSync(this.dirToRemove, { recursive: true, force: true });
    });
    return this.stopping;
  }

  // A key printed to a log arrives line by line, so besides the whole PEM one full base64 line of
  // each key block is recorded: finding it in output means the key leaked.
  private recordPem(pem: string): void {
    this.world.recordSecret(pem);
    for (const block of pem.matchAll(/-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n([\s\S]*?)-----END [A-Z ]*PRIVATE KEY-----/g)) {
      const lines = block[1].split(/\r?\n/).filter((l) => l.length === 64);
      this.world.recordSecret(lines[Math.min(2, lines.length - 1)]);
    }
  }
}
