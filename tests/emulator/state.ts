import * as crypto from 'node:crypto';
import type { Pki } from './pki';
import type { AppRegistration, ManagedIdentity, RegistryRegistration, ServiceConnection, TokenRequestRecord } from './types';
import { isGuid, randomSecret } from './jwt';

// Fixed so that subjects, URLs and recorded expectations stay the same from run to run.
export const ORGANIZATION = { name: 'contoso', id: '5b1c6b0e-7d3a-4f0e-9c52-1d8e2f4a6b71' } as const;
export const DEFAULT_PROJECT = { name: 'web', id: '0c3e9a57-2f61-4b8d-a4e2-7b9f1c5d3e80' } as const;
export const PIPELINE_NAME = 'workload-identity-demo';
export const EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

export interface RegisteredApp extends AppRegistration {
  /** object id of the app's service principal: the oid of its access tokens */
  servicePrincipalObjectId: string;
}

export interface Project {
  name: string;
  id: string;
}

/** Everything the service modules share: registrations, issued secrets, the last token request. */
export class World {
  url = '';
  host = '';
  idTokenLifetimeSeconds = 600;
  lastTokenRequest: TokenRequestRecord | undefined;

  private readonly apps: RegisteredApp[] = [];
  private readonly connections = new Map<string, ServiceConnection>();
  private readonly identities: ManagedIdentity[] = [];
  private readonly registries = new Map<string, RegistryRegistration>();
  private readonly projects = new Map<string, Project>([[DEFAULT_PROJECT.name, { ...DEFAULT_PROJECT }]]);
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
    const existing = this.findApp(app.tenantId, app.clientId);
    const registered: RegisteredApp = {
      ...structuredClone(app),
      servicePrincipalObjectId: existing?.servicePrincipalObjectId ?? crypto.randomUUID(),
    };
    if (existing) this.apps.splice(this.apps.indexOf(existing), 1);
    this.apps.push(registered);
    for (const s of app.secrets ?? []) this.recordSecret(s.value);
  }

  findApp(tenantId: string, clientId: string): RegisteredApp | undefined {
    return this.apps.find((a) => sameId(a.tenantId, tenantId) && sameId(a.clientId, clientId));
  }

  findAppAnyTenant(clientId: string): RegisteredApp | undefined {
    return this.apps.find((a) => sameId(a.clientId, clientId));
  }

  addServiceConnection(sc: ServiceConnection): void {
    requireGuid(sc.id, 'id');
    requireGuid(sc.tenantId, 'tenantId');
    requireGuid(sc.clientId, 'clientId');
    const projectName = sc.projectName ?? DEFAULT_PROJECT.name;
    if (!this.findProject(projectName)) {
      this.projects.set(projectName.toLowerCase(), { name: projectName, id: deterministicGuid(`project:${projectName.toLowerCase()}`) });
    }
    this.connections.set(sc.id.toLowerCase(), structuredClone(sc));
    this.recordSecret(sc.servicePrincipalKey);
  }

  findConnection(id: string): ServiceConnection | undefined {
    return this.connections.get(id.toLowerCase());
  }

  findProject(nameOrId: string): Project | undefined {
    const key = nameOrId.toLowerCase();
    for (const p of this.projects.values()) if (p.name.toLowerCase() === key || p.id === key) return p;
    return undefined;
  }

  addManagedIdentity(mi: ManagedIdentity): void {
    requireGuid(mi.clientId, 'clientId');
    requireGuid(mi.tenantId, 'tenantId');
    const i = this.identities.findIndex((x) => sameId(x.clientId, mi.clientId));
    const entry = { ...mi, objectId: mi.objectId ?? crypto.randomUUID() };
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

  /** A tenant exists once anything registered lives in it. */
  knowsTenant(tenantId: string): boolean {
    const t = tenantId.toLowerCase();
    return (
      this.apps.some((a) => a.tenantId.toLowerCase() === t) ||
      [...this.connections.values()].some((c) => c.tenantId.toLowerCase() === t) ||
      this.identities.some((m) => m.tenantId.toLowerCase() === t) ||
      [...this.registries.values()].some((r) => r.tenantId.toLowerCase() === t)
    );
  }
}

export function sameId(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function requireGuid(value: string, field: string): void {
  if (typeof value !== 'string' || !isGuid(value)) throw new TypeError(`${field} must be a GUID, got ${JSON.stringify(value)}`);
}

function deterministicGuid(seed: string): string {
  const h = crypto.createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
