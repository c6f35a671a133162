// HashiCorp Vault's HTTP API as a pipeline task meets it, written from Vault's documentation and
// source: the JWT auth method's login (hashicorp/vault-plugin-auth-jwt path_login.go, claims.go,
// path_role.go; tokens validated as hashicorp/cap/jwt validates them), the KV secrets engine's reads
// (hashicorp/vault-plugin-secrets-kv: passthrough.go for v1, path_data.go and backend.go for v2), a
// leasing engine (database creds), sys/internal/ui/mounts (vault/logical_system.go
// pathInternalUIMountRead), token lookup-self and revoke-self, ACL policies and Vault Enterprise
// namespaces, with Vault's statuses and error texts (sdk/logical/response_util.go,
// vault/request_handling.go, vault/router.go, http/handler.go). A text that could not be found in
// Vault's source says so where it is made. Served only at https://vault.fabrikam.com:8200
// (index.ts SERVICE_HOSTS).
import * as crypto from 'node:crypto';
import type { Answer, RequestContext, Router } from './server';
import type {
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
import { decodeJwt, verifyJwtSignature } from './jwt';
import type { World } from './state';

export const VAULT_HOST = 'vault.fabrikam.com';
/** host:port, as a client CONNECTs to it and as the proxy maps it */
export const VAULT_AUTHORITY = `${VAULT_HOST}:8200`;
export const VAULT_ADDRESS = `https://${VAULT_AUTHORITY}`;

/** 768h: Vault's default lease TTL (system default_lease_ttl), what a KV v1 read reports. */
const DEFAULT_LEASE_TTL_SECONDS = 2764800;
/** cap/jwt: ClockSkewLeeway defaults to go-jose's jwt.DefaultLeeway (1 minute), path_role.go clock_skew_leeway too. */
const DEFAULT_CLOCK_SKEW_LEEWAY = 60;
/** cap/jwt DefaultLeewaySeconds: what a missing exp (or nbf) is derived with. */
const DEFAULT_EXP_NBF_LEEWAY = 150;
const EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

// ---------------------------------------------------------------------------------------------
// Vault's error texts

/** go-multierror's ListFormatFunc: how Vault's core errors reach the client. */
function multiError(...errors: string[]): string {
  if (errors.length === 1) return `1 error occurred:\n\t* ${errors[0]}\n\n`;
  return `${errors.length} errors occurred:\n\t${errors.map((e) => `* ${e}`).join('\n\t')}\n\n`;
}

// sdk/logical/error.go
const PERMISSION_DENIED = 'permission denied';
const INVALID_TOKEN = 'invalid token';
const UNSUPPORTED_PATH = 'unsupported path';
const UNSUPPORTED_OPERATION = 'unsupported operation';

/**
 * Go's encoding/json as Vault writes (json.NewEncoder, HTML escaping on): <, > and & inside strings
 * are \u003c, \u003e and \u0026, U+2028 and U+2029 escaped, a newline at the end.
 */
function goJson(value: unknown): string {
  return `${JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

function vaultAnswer(status: number, body: unknown, headers: Record<string, string> = {}): Answer {
  // http/handler.go sets Cache-Control: no-store on every answer.
  return { status, contentType: 'application/json', body: body === undefined ? '' : goJson(body), headers: { 'Cache-Control': 'no-store', ...headers } };
}

/** logical.RespondError: {"errors":[...]} */
function errorsAnswer(status: number, ...errors: string[]): Answer {
  return vaultAnswer(status, { errors });
}

/** The JSON a logical response is written as (sdk/logical/translate_response.go HTTPResponse). */
function envelope(e: { data?: unknown; leaseId?: string; renewable?: boolean; leaseDuration?: number; auth?: unknown; warnings?: string[] | null; mountType: string }): Record<string, unknown> {
  return {
    request_id: crypto.randomUUID(),
    lease_id: e.leaseId ?? '',
    renewable: e.renewable ?? false,
    lease_duration: e.leaseDuration ?? 0,
    data: e.data ?? null,
    wrap_info: null,
    warnings: e.warnings ?? null,
    auth: e.auth ?? null,
    mount_type: e.mountType,
  };
}

/**
 * logical.RespondWithStatusCode: a whole response marshalled as the raw body of another status. It
 * is made inside the backend, before the router names the mount, so mount_type is empty.
 */
function rawAnswer(status: number, e: { data?: unknown; warnings?: string[] }): Answer {
  return vaultAnswer(status, envelope({ ...e, mountType: '' }));
}

/** Go's time.RFC1123 in UTC, as the rate limit quota writes Retry-After (sethvargo/go-limiter style). */
function rfc1123(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, 'UTC');
}

// ---------------------------------------------------------------------------------------------
// State

interface StoredRole {
  name: string;
  roleType: 'jwt' | 'oidc';
  boundAudiences: string[];
  boundSubject: string;
  boundClaims: Record<string, unknown>;
  boundClaimsType: 'string' | 'glob';
  userClaim: string;
  policies: string[];
  ttlSeconds: number;
  leewaySeconds: number;
}

interface JwtMount {
  /** 'jwt/' */
  path: string;
  accessor: string;
  boundIssuer: string;
  discoveryUrl: string;
  keys: 'reachable' | 'unreachable';
  defaultRole: string;
  roles: Map<string, StoredRole>;
}

interface Kv2Version {
  data: Record<string, unknown>;
  createdTime: string;
  deletionTime: string;
  destroyed: boolean;
}

interface SecretMount {
  /** 'secret/' */
  path: string;
  type: string;
  accessor: string;
  uuid: string;
  kvVersion?: 1 | 2;
  noVersionOption: boolean;
  kv1: Map<string, Record<string, unknown>>;
  kv2: Map<string, { versions: Map<number, Kv2Version>; current: number; customMetadata: Record<string, string> | null }>;
  roles?: Set<string>;
  leaseSeconds: number;
}

interface Namespace {
  /** '' for the root, else 'team-a/' or 'team-a/dev/' (Vault's form) */
  path: string;
  /** 'root', or five characters as Vault Enterprise makes them */
  id: string;
  policies: Map<string, VaultPolicyRule[]>;
  auth: Map<string, JwtMount>;
  secrets: Map<string, SecretMount>;
}

interface StoredToken {
  token: string;
  accessor: string;
  ns: Namespace;
  /** 'auth/jwt/' */
  mount: string;
  role: string;
  policies: string[];
  claims: Record<string, unknown>;
  displayName: string;
  entityId: string;
  issuedAtMs: number;
  ttlSeconds: number;
  expiresAtMs: number;
  revoked: boolean;
}

interface StoredLease {
  leaseId: string;
  ns: Namespace;
  tokenAccessor: string;
  username: string;
  issuedAtMs: number;
  expiresAtMs: number;
  revoked: boolean;
}

/** Vault's built-in "default" policy, the parts a token's own requests meet (vault/policy_store.go). */
const DEFAULT_POLICY: VaultPolicyRule[] = [
  { path: 'auth/token/lookup-self', capabilities: ['read'] },
  { path: 'auth/token/renew-self', capabilities: ['update'] },
  { path: 'auth/token/revoke-self', capabilities: ['update'] },
  { path: 'sys/capabilities-self', capabilities: ['update'] },
  { path: 'sys/internal/ui/resultant-acl', capabilities: ['read'] },
  { path: 'sys/renew', capabilities: ['update'] },
  { path: 'sys/leases/renew', capabilities: ['update'] },
  { path: 'sys/leases/lookup', capabilities: ['update'] },
  { path: 'cubbyhole/*', capabilities: ['create', 'read', 'update', 'delete', 'list'] },
];

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function base62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of crypto.randomBytes(length)) {
      if (b < 248 && out.length < length) out += BASE62[b % 62];
    }
  }
  return out;
}

/** 'team-a' or '/team-a/dev/' -> 'team-a/dev/'; '' and 'root' -> '' (the root namespace). */
function namespacePath(ns: string | undefined): string {
  const trimmed = String(ns ?? '').replace(/^\/+|\/+$/g, '');
  return trimmed === '' || trimmed === 'root' ? '' : `${trimmed}/`;
}

/** 'secret', '/secret/' -> 'secret/' */
function mountPath(path: string): string {
  const trimmed = String(path ?? '').replace(/^\/+|\/+$/g, '');
  if (!trimmed) throw new TypeError('a mount needs a path');
  return `${trimmed}/`;
}

/** policyutil.SanitizePolicies: trimmed, lower case, "default" added unless asked not to, no duplicates, sorted. */
function sanitizePolicies(policies: string[], addDefault: boolean): string[] {
  const set = new Set(policies.map((p) => p.trim().toLowerCase()).filter(Boolean));
  if (addDefault && !set.has('root')) set.add('default');
  return [...set].sort();
}

export class VaultState {
  sealed = false;
  private readonly namespaces = new Map<string, Namespace>();
  readonly tokens: StoredToken[] = [];
  readonly leases: StoredLease[] = [];
  private readonly byToken = new Map<string, StoredToken>();
  private readonly entities = new Map<string, string>();

  constructor(readonly devopsIssuer: string) {
    this.namespaces.set('', { path: '', id: 'root', policies: new Map(), auth: new Map(), secrets: new Map() });
  }

  get root(): Namespace {
    return this.namespaces.get('')!;
  }

  addNamespace(path: string): Namespace {
    const full = namespacePath(path);
    let parent = this.root;
    let acc = '';
    for (const part of full.split('/').filter(Boolean)) {
      if (!/^[A-Za-z0-9._-]+$/.test(part) || part === 'root' || part === 'sys' || part === 'audit' || part === 'auth' || part === 'cubbyhole' || part === 'identity') {
        throw new TypeError(`not a namespace name Vault accepts: ${JSON.stringify(part)}`);
      }
      acc += `${part}/`;
      let ns = this.namespaces.get(acc);
      if (!ns) {
        ns = { path: acc, id: base62(5), policies: new Map(), auth: new Map(), secrets: new Map() };
        this.namespaces.set(acc, ns);
      }
      parent = ns;
    }
    return parent;
  }

  /** The namespace by path; it must exist (the test-facing API names existing namespaces). */
  namespace(path: string | undefined): Namespace {
    const ns = this.namespaces.get(namespacePath(path));
    if (!ns) throw new TypeError(`no Vault namespace ${JSON.stringify(path)}: addNamespace() it first`);
    return ns;
  }

  /**
   * Where a request goes: the X-Vault-Namespace header joined with the path, and the deepest
   * namespace that is a prefix of that; the rest is the path in it. A namespace that does not exist
   * thus becomes part of the path in its parent (Vault Enterprise answers "no handler for route
   * 'b/sys/...'" for a missing namespace a/b: terraform-provider-vault issue #670).
   */
  resolve(header: string | undefined, path: string): { ns: Namespace; path: string } {
    return this.deepest(`${namespacePath(header)}${path}`);
  }

  private deepest(full: string): { ns: Namespace; path: string } {
    let best = this.root;
    for (const ns of this.namespaces.values()) {
      if (ns.path && full.startsWith(ns.path) && ns.path.length > best.path.length) best = ns;
    }
    return { ns: best, path: full.slice(best.path.length) };
  }

  /** A path relative to `ns` resolved to the namespace it falls in (a child namespace's path prefix included). */
  within(ns: Namespace, path: string): { ns: Namespace; path: string } {
    return this.deepest(`${ns.path}${path}`);
  }

  findToken(token: string | undefined): StoredToken | undefined {
    return token ? this.byToken.get(token) : undefined;
  }

  /** The token as Vault's token store finds it: unknown, revoked and expired tokens are not there. */
  liveToken(token: string | undefined): StoredToken | undefined {
    const t = this.findToken(token);
    return t && !t.revoked && Date.now() < t.expiresAtMs ? t : undefined;
  }

  addToken(t: StoredToken): void {
    this.tokens.push(t);
    this.byToken.set(t.token, t);
  }

  entityFor(ns: Namespace, mount: JwtMount, alias: string): string {
    const key = `${ns.id} ${mount.accessor} ${alias}`;
    let id = this.entities.get(key);
    if (!id) {
      id = crypto.randomUUID();
      this.entities.set(key, id);
    }
    return id;
  }

  /** The secrets engine mount a path (relative to ns) falls under: the longest mount path that prefixes it. */
  secretMount(ns: Namespace, path: string): { mount: SecretMount; rest: string } | undefined {
    let best: SecretMount | undefined;
    for (const m of ns.secrets.values()) {
      if ((path.startsWith(m.path) || `${path}/` === m.path) && (!best || m.path.length > best.path.length)) best = m;
    }
    return best && { mount: best, rest: path.slice(best.path.length) };
  }

  authMount(ns: Namespace, path: string): { mount: JwtMount; rest: string } | undefined {
    if (!path.startsWith('auth/')) return undefined;
    const sub = path.slice('auth/'.length);
    let best: JwtMount | undefined;
    for (const m of ns.auth.values()) {
      if (sub.startsWith(m.path) && (!best || m.path.length > best.path.length)) best = m;
    }
    return best && { mount: best, rest: sub.slice(best.path.length) };
  }
}

// ---------------------------------------------------------------------------------------------
// ACL (vault/acl.go)

interface Pattern {
  path: string;
  caps: Set<VaultCapability>;
}

function mergedRules(ns: Namespace, policies: string[]): Pattern[] {
  const merged = new Map<string, Set<VaultCapability>>();
  for (const name of policies) {
    const rules = ns.policies.get(name) ?? (name === 'default' ? DEFAULT_POLICY : undefined);
    for (const rule of rules ?? []) {
      const caps = merged.get(rule.path) ?? new Set<VaultCapability>();
      for (const c of rule.capabilities) caps.add(c);
      merged.set(rule.path, caps);
    }
  }
  return [...merged].map(([path, caps]) => ({ path, caps: caps.has('deny') ? new Set<VaultCapability>(['deny']) : caps }));
}

const isSegmentWildcard = (p: string) => p.split('/').includes('+');

function segmentMatch(pattern: string, path: string, bareMount = false): boolean {
  const isPrefix = pattern.endsWith('*');
  const parts = (isPrefix ? pattern.slice(0, -1) : pattern).split('/');
  const pathParts = path.split('/');
  if (bareMount) {
    // hasMountAccess: does the pattern reach under the mount? Compare only the mount's own segments.
    const n = Math.min(parts.length, pathParts.length);
    for (let i = 0; i < n; i++) {
      const last = i === parts.length - 1;
      if (parts[i] === '+' || parts[i] === pathParts[i] || (pathParts[i] === '' && i === pathParts.length - 1) || (isPrefix && last && pathParts[i].startsWith(parts[i]))) continue;
      return false;
    }
    return true;
  }
  if (pathParts.length < parts.length || (!isPrefix && pathParts.length !== parts.length)) return false;
  return parts.every((part, i) => part === '+' || part === pathParts[i] || (isPrefix && i === parts.length - 1 && pathParts[i].startsWith(part)));
}

/** Vault's priority of two matching non-exact rules (the policies documentation): true when a is lower. */
function lowerPriority(a: string, b: string): boolean {
  const firstWildcard = (p: string) => {
    const segments = p.split('/');
    let at = 0;
    for (const s of segments) {
      if (s === '+') return at;
      at += s.length + 1;
    }
    return p.endsWith('*') ? p.length - 1 : p.length;
  };
  if (firstWildcard(a) !== firstWildcard(b)) return firstWildcard(a) < firstWildcard(b);
  if (a.endsWith('*') !== b.endsWith('*')) return a.endsWith('*');
  const plus = (p: string) => p.split('/').filter((s) => s === '+').length;
  if (plus(a) !== plus(b)) return plus(a) > plus(b);
  if (a.length !== b.length) return a.length < b.length;
  return a < b;
}

/** The capabilities the rule that decides for `path` grants: an exact rule, else the highest priority glob or segment rule. */
function capabilitiesFor(rules: Pattern[], path: string): Set<VaultCapability> {
  const exact = rules.find((r) => !r.path.endsWith('*') && !isSegmentWildcard(r.path) && r.path === path);
  if (exact) return exact.caps;
  let best: Pattern | undefined;
  for (const r of rules) {
    const matches = isSegmentWildcard(r.path) ? segmentMatch(r.path, path) : r.path.endsWith('*') && path.startsWith(r.path.slice(0, -1));
    if (matches && (!best || lowerPriority(best.path, r.path))) best = r;
  }
  return best?.caps ?? new Set();
}

const grants = (caps: Set<VaultCapability>) => caps.size > 0 && !caps.has('deny');

/** vault/logical_system.go hasMountAccess: any capability on the mount or on a path under it. */
function hasMountAccess(rules: Pattern[], mount: string): boolean {
  if (grants(capabilitiesFor(rules, mount))) return true;
  return rules.some((r) => {
    if (!grants(r.caps)) return false;
    if (isSegmentWildcard(r.path)) return segmentMatch(r.path, mount, true);
    return r.path.startsWith(mount);
  });
}

/** The path as the token's policies see it: relative to the token's namespace, or undefined outside it. */
function aclPath(token: StoredToken, ns: Namespace, path: string): string | undefined {
  if (!ns.path.startsWith(token.ns.path)) return undefined;
  return `${ns.path.slice(token.ns.path.length)}${path}`;
}

function allowed(token: StoredToken, ns: Namespace, path: string, method: string): boolean {
  const p = aclPath(token, ns, path);
  if (p === undefined) return false;
  const caps = capabilitiesFor(mergedRules(token.ns, token.policies), p);
  if (!grants(caps)) return false;
  switch (method) {
    case 'GET':
    case 'HEAD':
      return caps.has('read');
    case 'POST':
    case 'PUT':
      return caps.has('update') || caps.has('create');
    case 'PATCH':
      return caps.has('patch');
    case 'DELETE':
      return caps.has('delete');
    default:
      return caps.has('list');
  }
}

// ---------------------------------------------------------------------------------------------
// The HTTP side

function tokenOf(ctx: RequestContext): string | undefined {
  const header = ctx.req.headers['x-vault-token'];
  if (typeof header === 'string' && header) return header;
  const auth = ctx.req.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim() || undefined;
  return undefined;
}

function namespaceHeader(ctx: RequestContext): string | undefined {
  const h = ctx.req.headers['x-vault-namespace'];
  return typeof h === 'string' ? h : undefined;
}

function logicalPath(ctx: RequestContext): string {
  return ctx.url.pathname
    .replace(/^\/v1\//, '')
    .split('/')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    })
    .join('/');
}

/** What the request log keeps of a Vault request. */
export function vaultRequestDetails(world: World, ctx: RequestContext): VaultRequestDetails {
  const token = tokenOf(ctx);
  const accessor = world.vault.findToken(token)?.accessor;
  return { namespaceHeader: namespaceHeader(ctx), tokenPresent: token !== undefined, ...(accessor ? { accessor } : {}) };
}

/** The answer of a token check that failed (vault/request_handling.go fetchACLTokenEntryAndEntity), or undefined when the token is live. */
function refuseToken(world: World, token: string | undefined): Answer | undefined {
  // No token: logical.ErrPermissionDenied on its own.
  if (!token) return errorsAnswer(403, PERMISSION_DENIED);
  // Unknown, revoked or expired: permission denied and invalid token (Vault 1.15 on; Vault's tests
  // check both, the docs (PR #26687) name both; the layout is go-multierror's).
  if (!world.vault.liveToken(token)) return errorsAnswer(403, multiError(PERMISSION_DENIED, INVALID_TOKEN));
  return undefined;
}

async function handle(ctx: RequestContext, world: World): Promise<void> {
  const state = world.vault;
  // http/handler.go: a sealed Vault answers everything with consts.ErrSealed, 503.
  if (state.sealed) return ctx.send(errorsAnswer(503, 'Vault is sealed'));
  const method = ctx.req.method ?? 'GET';
  const token = tokenOf(ctx);
  let { ns, path } = state.resolve(namespaceHeader(ctx), logicalPath(ctx));

  // sys/internal/ui/mounts/* is one of the sys backend's unauthenticated paths: the handler checks
  // the token itself.
  if (method === 'GET' && path.startsWith('sys/internal/ui/mounts/')) return mountsRead(ctx, world, ns, path.slice('sys/internal/ui/mounts/'.length), token);

  // A login path (the auth method's unauthenticated "login"): no token needed, any token ignored.
  const auth = state.authMount(ns, path);
  if (auth && auth.rest === 'login') {
    if (method !== 'POST' && method !== 'PUT') return ctx.send(errorsAnswer(405, UNSUPPORTED_OPERATION));
    return login(ctx, world, ns, auth.mount);
  }

  // Every other path needs a live token whose policies allow the operation. The -self paths always
  // go to the token's own namespace (request_handling.go handleCancelableRequest).
  const live = state.liveToken(token);
  if (live && (path === 'auth/token/lookup-self' || path === 'auth/token/revoke-self' || path === 'auth/token/renew-self')) ns = live.ns;
  const refused = refuseToken(world, token);
  if (refused) return ctx.send(refused);
  if (!allowed(live!, ns, path, method)) return ctx.send(errorsAnswer(403, multiError(PERMISSION_DENIED)));

  if (path === 'auth/token/lookup-self' && method === 'GET') return ctx.send(vaultAnswer(200, lookupSelf(live!)));
  if (path === 'auth/token/revoke-self' && (method === 'POST' || method === 'PUT')) {
    revoke(state, live!);
    return ctx.send(vaultAnswer(204, undefined));
  }
  if (path.startsWith('auth/token/') || path.startsWith('sys/') || auth) {
    return ctx.send(errorsAnswer(500, `the Vault emulator does not serve ${method} ${path}`));
  }
  const secret = state.secretMount(ns, path);
  // vault/router.go: no mount for the path.
  if (!secret) return ctx.send(errorsAnswer(404, `no handler for route ${JSON.stringify(path)}. route entry not found.`));
  return engine(ctx, world, ns, live!, secret.mount, secret.rest, method);
}

function mountInfo(mount: SecretMount): Record<string, unknown> {
  return {
    accessor: mount.accessor,
    config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
    description: '',
    external_entropy_access: false,
    local: false,
    options: mount.kvVersion && !mount.noVersionOption ? { version: String(mount.kvVersion) } : null,
    path: mount.path,
    plugin_version: '',
    running_plugin_version: mount.type === 'kv' ? 'v0.24.0+builtin' : 'v1.20.0+builtin.vault',
    running_sha256: '',
    seal_wrap: false,
    type: mount.type,
    uuid: mount.uuid,
  };
}

function mountsRead(ctx: RequestContext, world: World, ns: Namespace, raw: string, token: string | undefined): void {
  // sanitizeMountPath: a trailing slash, no leading one.
  const p = `${raw.replace(/^\/+/, '')}${raw.endsWith('/') ? '' : '/'}`;
  const denied = errorsAnswer(403, `preflight capability check returned 403, please ensure client's policies grant access to path ${JSON.stringify(p)}`);
  const target = world.vault.within(ns, p);
  const found = world.vault.secretMount(target.ns, target.path);
  // No mount: the same 403 as a denial, so that the path cannot list mounts (whatever the token).
  if (!found) return ctx.send(denied);
  const refused = refuseToken(world, token);
  if (refused) return ctx.send(refused);
  const live = world.vault.liveToken(token)!;
  const mountAcl = aclPath(live, target.ns, found.mount.path);
  if (mountAcl === undefined || !hasMountAccess(mergedRules(live.ns, live.policies), mountAcl)) return ctx.send(denied);
  const data = mountInfo(found.mount);
  if (target.ns !== ns) data.path = `${target.ns.path}${found.mount.path}`;
  ctx.send(vaultAnswer(200, envelope({ data, mountType: 'system' })));
}

function lookupSelf(t: StoredToken): Record<string, unknown> {
  const now = Date.now();
  return envelope({
    data: {
      accessor: t.accessor,
      creation_time: Math.floor(t.issuedAtMs / 1000),
      creation_ttl: t.ttlSeconds,
      display_name: t.displayName,
      entity_id: t.entityId,
      expire_time: new Date(t.expiresAtMs).toISOString(),
      explicit_max_ttl: 0,
      id: t.token,
      issue_time: new Date(t.issuedAtMs).toISOString(),
      meta: { role: t.role },
      num_uses: 0,
      orphan: true,
      path: `${t.mount}login`,
      policies: t.policies,
      renewable: true,
      ttl: Math.max(0, Math.round((t.expiresAtMs - now) / 1000)),
      type: 'service',
      // Vault Enterprise names a token's namespace in its lookup (inferred from `vault token lookup` output).
      ...(t.ns.path ? { namespace_path: t.ns.path } : {}),
    },
    mountType: 'token',
  });
}

/** revoke-self: the token, and every lease it made, are gone. */
function revoke(state: VaultState, t: StoredToken): void {
  t.revoked = true;
  for (const l of state.leases) if (l.tokenAccessor === t.accessor) l.revoked = true;
}

function notImplemented(ctx: RequestContext, method: string, path: string): void {
  ctx.send(errorsAnswer(500, `the Vault emulator does not serve ${method} ${path}`));
}

function engine(ctx: RequestContext, world: World, ns: Namespace, token: StoredToken, mount: SecretMount, rest: string, method: string): void {
  const full = `${mount.path}${rest}`;
  if (mount.kvVersion === 1) {
    if (method !== 'GET') return notImplemented(ctx, method, full);
    const data = mount.kv1.get(rest);
    // A missing secret: nil response to a read, 404 with no errors.
    if (!data) return ctx.send(errorsAnswer(404));
    const ttl = typeof data.ttl === 'string' || typeof data.ttl === 'number' ? parseTtl(data.ttl) : undefined;
    return ctx.send(vaultAnswer(200, envelope({ data, leaseDuration: ttl ?? DEFAULT_LEASE_TTL_SECONDS, mountType: 'kv' })));
  }
  if (mount.kvVersion === 2) return kv2(ctx, mount, rest, method);
  if (mount.type === 'database') {
    const m = /^creds\/([^/]+)$/.exec(rest);
    if (!m || method !== 'GET') return ctx.send(errorsAnswer(404, multiError(UNSUPPORTED_PATH)));
    const role = m[1];
    // The database engine's answer for a role it does not have (inferred from path_creds_create.go's wording, not checked).
    if (mount.roles && !mount.roles.has(role)) return ctx.send(errorsAnswer(400, `unknown role: ${role}`));
    const now = Date.now();
    const clean = (x: string) => x.slice(0, 8).replace(/[^A-Za-z0-9-]/g, '-');
    // The database engines' default username template: v-{{.DisplayName | truncate 8}}-{{.RoleName | truncate 8}}-{{random 20}}-{{unix_time}}.
    const username = `v-${clean(token.displayName)}-${clean(role)}-${base62(20)}-${Math.floor(now / 1000)}`;
    const password = `${base62(19)}-`;
    const lease: StoredLease = {
      leaseId: `${full}/${base62(24)}${ns.path ? `.${ns.id}` : ''}`,
      ns,
      tokenAccessor: token.accessor,
      username,
      issuedAtMs: now,
      expiresAtMs: now + mount.leaseSeconds * 1000,
      revoked: false,
    };
    world.vault.leases.push(lease);
    world.recordSecret(password);
    return ctx.send(vaultAnswer(200, envelope({ data: { username, password }, leaseId: lease.leaseId, renewable: true, leaseDuration: mount.leaseSeconds, mountType: 'database' })));
  }
  // Any other engine: a path its backend does not have (logical.ErrUnsupportedPath, 404).
  ctx.send(errorsAnswer(404, multiError(UNSUPPORTED_PATH)));
}

function parseTtl(v: string | number): number | undefined {
  if (typeof v === 'number') return v;
  const m = /^(\d+)([smhd]?)$/.exec(v.trim());
  if (!m) return undefined;
  return Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[m[2]];
}

function kv2(ctx: RequestContext, mount: SecretMount, rest: string, method: string): void {
  const full = `${mount.path}${rest}`;
  // backend.go pathInvalid: the text goes in warnings, with a 404, as a raw response.
  if (['metadata', 'data', 'delete', 'undelete', 'destroy'].includes(rest)) {
    return ctx.send(rawAnswer(404, { warnings: ['Non-listing operations on the root of a K/V v2 mount are not supported.'] }));
  }
  const api = /^(data|metadata|delete|undelete|destroy|subkeys)\//.exec(rest)?.[1] ?? (rest === 'config' ? 'config' : undefined);
  if (!api) {
    const sub = ({ GET: 'get', POST: 'put', PUT: 'put', PATCH: 'patch', DELETE: 'delete' } as Record<string, string>)[method] ?? 'list';
    return ctx.send(rawAnswer(404, { warnings: [`Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv ${sub}' for this operation.`] }));
  }
  if (api !== 'data' || method !== 'GET') return notImplemented(ctx, method, full);
  const entry = mount.kv2.get(rest.slice('data/'.length));
  if (!entry) return ctx.send(errorsAnswer(404));
  const asked = Number(ctx.query('version') ?? 0);
  const number = Number.isInteger(asked) && asked > 0 ? asked : entry.current;
  const v = entry.versions.get(number);
  if (!v) return ctx.send(errorsAnswer(404));
  const metadata = { created_time: v.createdTime, custom_metadata: entry.customMetadata, deletion_time: v.deletionTime, destroyed: v.destroyed, version: number };
  // path_data.go: a deleted (or destroyed) version answers its metadata, data null, with a 404.
  if ((v.deletionTime && Date.parse(v.deletionTime) <= Date.now()) || v.destroyed) return ctx.send(rawAnswer(404, { data: { data: null, metadata } }));
  ctx.send(vaultAnswer(200, envelope({ data: { data: v.data, metadata }, mountType: 'kv' })));
}

// ---------------------------------------------------------------------------------------------
// Login (vault-plugin-auth-jwt path_login.go)

class LoginError extends Error {}

async function login(ctx: RequestContext, world: World, ns: Namespace, mount: JwtMount): Promise<void> {
  const raw = await ctx.body();
  let body: Record<string, unknown> = {};
  const type = String(ctx.req.headers['content-type'] ?? '');
  if (/^application\/x-www-form-urlencoded\b/i.test(type) && !/^\s*[[{]/.test(raw)) {
    body = Object.fromEntries(new URLSearchParams(raw));
  } else if (raw.trim()) {
    try {
      const parsed = JSON.parse(raw) as unknown;
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
      else throw new SyntaxError('not an object');
    } catch (e) {
      // http/logical.go parseJSONRequest ("failed to parse JSON input: <Go's decoder error>"; the decoder's own words differ).
      return ctx.send(errorsAnswer(400, `failed to parse JSON input: ${(e as Error).message}`));
    }
  }
  const jwt = typeof body.jwt === 'string' ? body.jwt : '';
  world.recordSecret(jwt);
  try {
    const roleName = (typeof body.role === 'string' ? body.role : '').toLowerCase() || mount.defaultRole;
    if (!roleName) throw new LoginError('missing role');
    const role = mount.roles.get(roleName);
    if (!role) throw new LoginError(`role ${JSON.stringify(roleName)} could not be found`);
    if (role.roleType === 'oidc') throw new LoginError('role with oidc role_type is not allowed');
    if (!jwt) throw new LoginError('missing token');
    if (mount.keys === 'unreachable') {
      // jwtValidator -> cap/jwt NewOIDCDiscoveryKeySet: the discovery document is fetched first. Go's
      // net/http error for a name that does not resolve (the resolver's address left out).
      const url = `${mount.discoveryUrl.replace(/\/+$/, '')}/.well-known/openid-configuration`;
      throw new LoginError(`error configuring token validator: keyset configuration error: Get ${JSON.stringify(url)}: dial tcp: lookup ${new URL(url).hostname}: no such host`);
    }
    const claims = validate(world, jwt, role, mount);
    // Without bound audiences, a token that carries one is refused.
    if (role.boundAudiences.length === 0) {
      const aud = claims.aud;
      if ((Array.isArray(aud) && aud.length > 0) || (typeof aud === 'string' && aud !== '')) throw new LoginError('audience claim found in JWT but no audiences bound to the role');
    }
    const user = claims[role.userClaim];
    if (user === undefined || user === null) throw new LoginError(`claim ${JSON.stringify(role.userClaim)} not found in token`);
    if (typeof user !== 'string') throw new LoginError(`claim ${JSON.stringify(role.userClaim)} could not be converted to string`);
    const claimsError = validateBoundClaims(role, claims);
    if (claimsError) throw new LoginError(`error validating claims: ${claimsError}`);
    const t = issueToken(world, ns, mount, role, claims, user);
    ctx.send(
      vaultAnswer(
        200,
        envelope({
          auth: {
            client_token: t.token,
            accessor: t.accessor,
            policies: t.policies,
            token_policies: t.policies,
            metadata: { role: role.name },
            lease_duration: t.ttlSeconds,
            renewable: true,
            entity_id: t.entityId,
            token_type: 'service',
            orphan: true,
            mfa_requirement: null,
            num_uses: 0,
          },
          mountType: '',
        }),
      ),
    );
  } catch (e) {
    // logical.ErrorResponse with no error: 400 and the text.
    if (e instanceof LoginError) return ctx.send(errorsAnswer(400, e.message));
    throw e;
  }
}

const REGISTERED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti'];
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'];

/** cap/jwt Validator.Validate, as path_login.go calls it; its errors prefixed "error validating token: ". */
function validate(world: World, jwt: string, role: StoredRole, mount: JwtMount): Record<string, unknown> {
  const fail = (text: string): never => {
    throw new LoginError(`error validating token: ${text}`);
  };
  const decoded = decodeJwt(jwt);
  // The discovery key set verifies with go-oidc's RemoteKeySet (go-jose v4 parses the JWS first).
  if (!decoded) {
    if (jwt.split('.').length !== 3) fail('error verifying token signature: oidc: malformed jwt: go-jose/go-jose: compact JWS format must have three parts');
    fail('error verifying token signature: failed to verify id token signature');
  }
  const jws = decoded!;
  if (!ALGORITHMS.includes(String(jws.header.alg)) || !verifyJwtSignature(jws, world.pki.devops.publicKey)) {
    fail('error verifying token signature: failed to verify id token signature');
  }
  const claims = jws.payload;
  for (const key of Object.keys(claims)) {
    const twin = REGISTERED_CLAIMS.find((r) => r !== key && r.toLowerCase() === key.toLowerCase());
    if (twin) fail(`ambiguous claim: key ${JSON.stringify(key)} collides with registered claim ${JSON.stringify(twin)} under case folding`);
  }
  if (mount.boundIssuer && claims.iss !== mount.boundIssuer) fail('invalid issuer (iss) claim');
  if (role.boundSubject && claims.sub !== role.boundSubject) fail('invalid subject (sub) claim');
  const aud = Array.isArray(claims.aud) ? claims.aud : typeof claims.aud === 'string' ? [claims.aud] : [];
  if (role.boundAudiences.length && !role.boundAudiences.some((a) => aud.includes(a))) fail('invalid audience (aud) claim: audience claim does not match any expected audience');
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : 0);
  const iat = num(claims.iat);
  let exp = num(claims.exp);
  let nbf = num(claims.nbf);
  if (!iat && !exp && !nbf) fail('no issued at (iat), not before (nbf), or expiration time (exp) claims in token');
  if (!exp) exp = Math.max(iat, nbf) + DEFAULT_EXP_NBF_LEEWAY;
  if (!nbf) nbf = iat || exp - DEFAULT_EXP_NBF_LEEWAY;
  const leeway = role.leewaySeconds < 0 ? 0 : role.leewaySeconds;
  const now = Date.now() / 1000;
  if (now + leeway < nbf) fail('invalid not before (nbf) claim: token not yet valid');
  if (now - leeway > exp) fail('invalid expiration time (exp) claim: token is expired');
  if (iat && now + leeway < iat) fail('invalid issued at (iat) claim: token issued in the future');
  return claims;
}

/** A claim value as Vault compares it: strings as strings, numbers (json.Number) and booleans by their text and kind. */
function normalizeList(v: unknown): { kind: string; text: string }[] | undefined {
  const one = (x: unknown) => {
    if (typeof x === 'string') return { kind: 'string', text: x };
    if (typeof x === 'number') return { kind: 'number', text: String(Math.trunc(x)) };
    if (typeof x === 'boolean') return { kind: 'bool', text: String(x) };
    return { kind: 'other', text: JSON.stringify(x) };
  };
  if (Array.isArray(v)) return v.map(one);
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return [one(v)];
  return undefined;
}

/** ryanuber/go-glob: * matches any run of characters; nothing else is special. */
function goGlob(pattern: string, subject: string): boolean {
  if (pattern === '') return subject === pattern;
  if (pattern === '*') return true;
  const parts = pattern.split('*');
  if (parts.length === 1) return subject === pattern;
  const leadingGlob = pattern.startsWith('*');
  const trailingGlob = pattern.endsWith('*');
  const end = parts.length - 1;
  let s = subject;
  for (let i = 0; i < end; i++) {
    const idx = s.indexOf(parts[i]);
    if (i === 0) {
      if (!leadingGlob && idx !== 0) return false;
    } else if (idx < 0) {
      return false;
    }
    s = s.slice(idx + parts[i].length);
  }
  return trailingGlob || s.endsWith(parts[end]);
}

/** claims.go validateBoundClaims: undefined when every bound claim matches. */
function validateBoundClaims(role: StoredRole, claims: Record<string, unknown>): string | undefined {
  for (const [claim, expected] of Object.entries(role.boundClaims)) {
    const actual = claim.startsWith('/') ? pointer(claims, claim) : claims[claim];
    if (actual === undefined || actual === null) return `claim ${JSON.stringify(claim)} is missing`;
    const actVals = normalizeList(actual);
    if (!actVals) return `received claim is not a string, bool, int or list: ${String(actual)}`;
    const expVals = normalizeList(expected) ?? [];
    const found = expVals.some((e) =>
      actVals.some((a) => (role.boundClaimsType === 'glob' ? a.kind === 'string' && goGlob(e.text, a.text) : a.kind === e.kind && a.text === e.text)),
    );
    if (!found) return `claim ${JSON.stringify(claim)} does not match any associated bound claim values`;
  }
  return undefined;
}

/** A JSON pointer (/a/b) into the claims, as bound_claims keys starting with / are read. */
function pointer(claims: Record<string, unknown>, p: string): unknown {
  let cur: unknown = claims;
  for (const raw of p.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function issueToken(world: World, ns: Namespace, mount: JwtMount, role: StoredRole, claims: Record<string, unknown>, user: string): StoredToken {
  const now = Date.now();
  // Service tokens: hvs. and base62; in a namespace other than the root Vault appends .<namespace id>.
  const suffix = ns.path ? `.${ns.id}` : '';
  const t: StoredToken = {
    token: `hvs.${base62(90)}${suffix}`,
    accessor: `${base62(24)}${suffix}`,
    ns,
    mount: `auth/${mount.path}`,
    role: role.name,
    policies: [...role.policies],
    claims: structuredClone(claims),
    // request_handling.go: the mount path (auth/ removed, / to -) before the alias name.
    displayName: `${mount.path.replace(/\//g, '-')}${user}`,
    entityId: world.vault.entityFor(ns, mount, user),
    issuedAtMs: now,
    ttlSeconds: role.ttlSeconds,
    expiresAtMs: now + role.ttlSeconds * 1000,
    revoked: false,
  };
  world.vault.addToken(t);
  world.recordSecret(t.token);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Faults

/** The answer a Vault route gives for an injected status with no body. */
function vaultFaultAnswer(world: World, status: number, ctx: RequestContext): Answer {
  switch (status) {
    case 429: {
      // http/util.go rateLimitQuotaWrapping: the logical path (in its namespace).
      const { path } = world.vault.resolve(namespaceHeader(ctx), logicalPath(ctx));
      return errorsAnswer(429, `request path ${JSON.stringify(path)}: rate limit quota exceeded`);
    }
    case 503:
      return errorsAnswer(503, 'Vault is sealed');
    case 500:
      return errorsAnswer(500, multiError('internal error'));
    case 403:
      return errorsAnswer(403, multiError(PERMISSION_DENIED));
    case 400:
      return errorsAnswer(400, multiError('invalid request'));
    case 412:
      return errorsAnswer(412, 'required index state not present');
    default:
      return errorsAnswer(status);
  }
}

/**
 * A rate limit quota with enable_rate_limit_response_headers (off by default: then Vault sends no
 * Retry-After at all): Retry-After and X-Ratelimit-Reset are the reset time as Go's RFC1123 in UTC.
 */
function vaultRetryAfter(seconds: number): Record<string, string> {
  const reset = rfc1123(Date.now() + seconds * 1000);
  return { 'Retry-After': reset, 'X-Ratelimit-Remaining': '0', 'X-Ratelimit-Reset': reset };
}

export function registerVault(router: Router, world: World): void {
  const common = {
    handle: (ctx: RequestContext) => handle(ctx, world),
    errorAnswer: (status: number, ctx: RequestContext) => vaultFaultAnswer(world, status, ctx),
    retryAfterHeaders: vaultRetryAfter,
    truncatedBody: '{"request_id":"',
  };
  // The names only count and fault requests; every Vault request is handled by the same code. A
  // namespace may come first in the path (/v1/team-a/auth/...).
  const ns = '(?:.+/)?';
  router.add({ name: 'vault.mounts', method: 'GET', path: new RegExp(`^/v1/${ns}sys/internal/ui/mounts/.+$`), ...common });
  router.add({ name: 'vault.lookup-self', method: 'GET', path: new RegExp(`^/v1/${ns}auth/token/lookup-self$`), ...common });
  for (const method of ['POST', 'PUT']) router.add({ name: 'vault.revoke-self', method, path: new RegExp(`^/v1/${ns}auth/token/revoke-self$`), ...common });
  for (const method of ['POST', 'PUT']) router.add({ name: 'vault.login', method, path: new RegExp(`^/v1/${ns}auth/.+/login$`), ...common });
  router.add({ name: 'vault.read', method: 'GET', path: /^\/v1\/.*$/, ...common });
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) router.add({ name: 'vault.other', method, path: /^\/v1\/.*$/, ...common });
}

// ---------------------------------------------------------------------------------------------
// The test-facing handle

export class VaultHandle implements VaultEmulator {
  readonly address = VAULT_ADDRESS;

  constructor(private readonly world: World) {}

  private get state(): VaultState {
    return this.world.vault;
  }

  configureJwtAuth(config: VaultJwtAuthConfig = {}): void {
    const ns = this.state.namespace(config.namespace);
    const path = mountPath(config.mount ?? 'jwt');
    const boundIssuer = config.boundIssuer ?? this.state.devopsIssuer;
    const existing = ns.auth.get(path);
    ns.auth.set(path, {
      path,
      accessor: existing?.accessor ?? `auth_jwt_${crypto.randomBytes(4).toString('hex')}`,
      boundIssuer,
      discoveryUrl: config.oidcDiscoveryUrl ?? (boundIssuer || this.state.devopsIssuer),
      keys: config.keys ?? 'reachable',
      defaultRole: (config.defaultRole ?? '').toLowerCase(),
      roles: existing?.roles ?? new Map(),
    });
  }

  addJwtRole(role: VaultJwtRole): void {
    const ns = this.state.namespace(role.namespace);
    const path = mountPath(role.mount ?? 'jwt');
    const mount = ns.auth.get(path);
    if (!mount) throw new TypeError(`no JWT auth method at auth/${path} in namespace ${JSON.stringify(ns.path)}: configureJwtAuth() first`);
    const name = String(role.name ?? '').toLowerCase();
    if (!name) throw new TypeError('a role needs a name');
    const roleType = role.roleType ?? 'jwt';
    const boundAudiences = role.boundAudiences ?? [EXCHANGE_AUDIENCE];
    const boundClaims = structuredClone(role.boundClaims ?? {});
    const boundClaimsType = role.boundClaimsType ?? 'string';
    // path_role.go's checks, with its words.
    if (roleType === 'jwt' && boundAudiences.length === 0 && !role.boundSubject && Object.keys(boundClaims).length === 0) {
      throw new TypeError('must have at least one bound constraint when creating/updating a role');
    }
    if (boundClaimsType === 'glob') {
      for (const v of Object.values(boundClaims)) {
        for (const x of Array.isArray(v) ? v : [v]) if (typeof x !== 'string') throw new TypeError(`claim is not a string: ${String(x)}`);
      }
    }
    const userClaim = role.userClaim ?? 'sub';
    if (!userClaim) throw new TypeError('a user claim must be defined on the role');
    const ttl = role.tokenTtlSeconds ?? 900;
    if (!(Number.isInteger(ttl) && ttl >= 0)) throw new RangeError(`tokenTtlSeconds must be a whole number of seconds, got ${ttl}`);
    mount.roles.set(name, {
      name,
      roleType,
      boundAudiences: [...boundAudiences],
      boundSubject: role.boundSubject ?? '',
      boundClaims,
      boundClaimsType,
      userClaim,
      policies: sanitizePolicies(role.tokenPolicies ?? [], !role.tokenNoDefaultPolicy),
      ttlSeconds: ttl || DEFAULT_LEASE_TTL_SECONDS,
      leewaySeconds: role.clockSkewLeewaySeconds ?? DEFAULT_CLOCK_SKEW_LEEWAY,
    });
  }

  addKvMount(mount: VaultKvMount): void {
    if (mount.version !== 1 && mount.version !== 2) throw new TypeError(`version must be 1 or 2, got ${String(mount.version)}`);
    if (mount.noVersionOption && mount.version !== 1) throw new TypeError('only a version 1 mount can lack the version option');
    this.mount(mount.namespace, mount.path, 'kv', { kvVersion: mount.version, noVersionOption: mount.noVersionOption === true });
  }

  addMount(mount: VaultMount): void {
    if (mount.type === 'kv') throw new TypeError('a KV mount is added with addKvMount()');
    this.mount(mount.namespace, mount.path, mount.type, { roles: mount.roles && new Set(mount.roles), leaseSeconds: mount.leaseSeconds ?? 3600 });
  }

  private mount(namespace: string | undefined, path: string, type: string, extra: Partial<SecretMount>): void {
    const ns = this.state.namespace(namespace);
    const p = mountPath(path);
    if (p.startsWith('auth/') || p.startsWith('sys/')) throw new TypeError(`${p} is reserved`);
    ns.secrets.set(p, {
      path: p,
      type,
      accessor: `${type}_${crypto.randomBytes(4).toString('hex')}`,
      uuid: crypto.randomUUID(),
      noVersionOption: false,
      kv1: new Map(),
      kv2: new Map(),
      leaseSeconds: 3600,
      ...extra,
    });
  }

  private kvMount(mount: string, namespace: string | undefined): SecretMount {
    const ns = this.state.namespace(namespace);
    const m = ns.secrets.get(mountPath(mount));
    if (!m || !m.kvVersion) throw new TypeError(`no KV mount ${JSON.stringify(mount)} in namespace ${JSON.stringify(ns.path)}`);
    return m;
  }

  putSecret(mount: string, path: string, data: Record<string, unknown>, options: { namespace?: string; customMetadata?: Record<string, string> } = {}): number {
    const m = this.kvMount(mount, options.namespace);
    const key = String(path).replace(/^\/+/, '');
    if (!key) throw new TypeError('a secret needs a path');
    this.recordValues(data);
    if (m.kvVersion === 1) {
      m.kv1.set(key, structuredClone(data));
      return 1;
    }
    const entry = m.kv2.get(key) ?? { versions: new Map<number, Kv2Version>(), current: 0, customMetadata: null };
    entry.current += 1;
    entry.versions.set(entry.current, { data: structuredClone(data), createdTime: new Date().toISOString(), deletionTime: '', destroyed: false });
    if (options.customMetadata) entry.customMetadata = { ...options.customMetadata };
    m.kv2.set(key, entry);
    return entry.current;
  }

  deleteLatestVersion(mount: string, path: string, options: { namespace?: string } = {}): void {
    const m = this.kvMount(mount, options.namespace);
    if (m.kvVersion !== 2) throw new TypeError('only a KV v2 secret has versions to delete');
    const entry = m.kv2.get(String(path).replace(/^\/+/, ''));
    const v = entry?.versions.get(entry.current);
    if (!v) throw new TypeError(`no secret ${JSON.stringify(path)} in ${m.path}`);
    v.deletionTime = new Date().toISOString();
  }

  addPolicy(name: string, rules: VaultPolicyRule[], options: { namespace?: string } = {}): void {
    const ns = this.state.namespace(options.namespace);
    const key = String(name ?? '').trim().toLowerCase();
    if (!key || key === 'root') throw new TypeError(`not a policy name that can be written: ${JSON.stringify(name)}`);
    const known = new Set(['create', 'read', 'update', 'patch', 'delete', 'list', 'sudo', 'deny']);
    for (const r of rules) {
      if (typeof r.path !== 'string' || !r.path) throw new TypeError('every rule needs a path');
      for (const c of r.capabilities) if (!known.has(c)) throw new TypeError(`not a capability: ${JSON.stringify(c)}`);
    }
    ns.policies.set(key, rules.map((r) => ({ path: r.path.replace(/^\/+/, ''), capabilities: [...r.capabilities] as VaultCapability[] })));
  }

  addNamespace(path: string): void {
    if (!namespacePath(path)) throw new TypeError('the root namespace always exists');
    this.state.addNamespace(path);
  }

  setSealed(sealed: boolean): void {
    this.state.sealed = sealed;
  }

  tokens(): VaultTokenRecord[] {
    return this.state.tokens.map((t) => ({
      token: t.token,
      accessor: t.accessor,
      namespace: t.ns.path,
      mount: t.mount,
      role: t.role,
      policies: [...t.policies],
      claims: structuredClone(t.claims),
      displayName: t.displayName,
      entityId: t.entityId,
      issuedAt: new Date(t.issuedAtMs).toISOString(),
      expiresAt: new Date(t.expiresAtMs).toISOString(),
      revoked: t.revoked,
    }));
  }

  leases(): VaultLeaseRecord[] {
    return this.state.leases.map((l) => ({
      leaseId: l.leaseId,
      namespace: l.ns.path,
      tokenAccessor: l.tokenAccessor,
      username: l.username,
      issuedAt: new Date(l.issuedAtMs).toISOString(),
      expiresAt: new Date(l.expiresAtMs).toISOString(),
      revoked: l.revoked,
    }));
  }

  isValid(token: string): boolean {
    return this.state.liveToken(token) !== undefined;
  }

  expireToken(tokenOrAccessor?: string): number {
    const past = Date.now() - 1000;
    let n = 0;
    for (const t of this.state.tokens) {
      if (tokenOrAccessor !== undefined && t.token !== tokenOrAccessor && t.accessor !== tokenOrAccessor) continue;
      t.expiresAtMs = Math.min(t.expiresAtMs, past);
      n++;
    }
    return n;
  }

  reinstateToken(tokenOrAccessor: string): number {
    let n = 0;
    for (const t of this.state.tokens) {
      if (t.token !== tokenOrAccessor && t.accessor !== tokenOrAccessor) continue;
      if (t.revoked) n++;
      t.revoked = false;
      for (const l of this.state.leases) if (l.tokenAccessor === t.accessor) l.revoked = false;
    }
    return n;
  }

  // A secret printed to a log must be found by the leak scans: every string value of 6 or more
  // characters, and each line of 40 or more of a multi-line one (a PEM body line).
  private recordValues(data: Record<string, unknown>): void {
    for (const v of Object.values(data)) {
      if (typeof v !== 'string' || v.length < 6) continue;
      this.world.recordSecret(v);
      if (v.includes('\n')) for (const line of v.split(/\r?\n/)) if (line.length >= 40) this.world.recordSecret(line);
    }
  }
}
