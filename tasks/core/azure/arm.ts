/**
 * Azure Resource Manager reads for validation: the subscription, the caller's effective
 * permissions on a scope, role definitions; and matching actions with ARM's wildcard rules.
 */
import { PipelineContext } from '../agent/pipeline-context';
import { quoteServiceText } from '../http/failures';
import { parseJson } from '../http/http';

export const ARM_SERVICE = 'Azure Resource Manager';

export interface Permission {
  actions: string[];
  notActions: string[];
  dataActions?: string[];
  notDataActions?: string[];
}

export interface RoleDefinition {
  id: string;
  name: string;
  roleName: string;
  permissions: Permission[];
}

export type ArmAnswer<T> = { ok: true; value: T } | { ok: false; status: number; code?: string; message?: string; attempts?: number };

interface ArmError {
  error?: { code?: string; message?: string };
}

async function armGet<T>(ctx: PipelineContext, armUrl: string, token: string, pathAndQuery: string): Promise<ArmAnswer<T>> {
  const res = await ctx.http.request({ method: 'GET', url: `${armUrl.replace(/\/+$/, '')}${pathAndQuery}`, service: ARM_SERVICE, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } });
  const json = parseJson<T & ArmError>(res.body);
  if (res.status === 200 && json && typeof json === 'object') return { ok: true, value: json };
  const message = typeof json?.error?.message === 'string' ? quoteServiceText(json.error.message) : undefined;
  const code = typeof json?.error?.code === 'string' ? quoteServiceText(json.error.code) : undefined;
  return { ok: false, status: res.status, code, message: message ?? (res.status === 200 ? 'the answer was not JSON' : undefined), attempts: res.attempts };
}

export interface Subscription {
  subscriptionId: string;
  displayName?: string;
  state?: string;
  tenantId?: string;
}

export function getSubscription(ctx: PipelineContext, armUrl: string, token: string, subscriptionId: string): Promise<ArmAnswer<Subscription>> {
  return armGet<Subscription>(ctx, armUrl, token, `/subscriptions/${encodeURIComponent(subscriptionId)}?api-version=2022-12-01`);
}

export async function getPermissions(ctx: PipelineContext, armUrl: string, token: string, scope: string): Promise<ArmAnswer<Permission[]>> {
  const a = await armGet<{ value?: Permission[] }>(ctx, armUrl, token, `${scope}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01`);
  return a.ok ? { ok: true, value: (a.value.value ?? []).map(normalizePermission) } : a;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface RoleDefinitionJson {
  id: string;
  name: string;
  properties?: { roleName?: string; permissions?: Permission[] };
}

function toRole(j: RoleDefinitionJson): RoleDefinition {
  return { id: j.id, name: j.name, roleName: j.properties?.roleName ?? j.name, permissions: (j.properties?.permissions ?? []).map(normalizePermission) };
}

/** A role by name (AcrPush), GUID, or full role definition id. */
export async function getRoleDefinition(ctx: PipelineContext, armUrl: string, token: string, scope: string, role: string): Promise<ArmAnswer<RoleDefinition | undefined>> {
  const id = /\/roleDefinitions\/([^/]+)$/i.exec(role)?.[1] ?? (GUID.test(role) ? role : undefined);
  if (id) {
    const a = await armGet<RoleDefinitionJson>(ctx, armUrl, token, `${scope}/providers/Microsoft.Authorization/roleDefinitions/${id}?api-version=2022-04-01`);
    if (!a.ok) return a.status === 404 ? { ok: true, value: undefined } : a;
    return { ok: true, value: toRole(a.value) };
  }
  const filter = encodeURIComponent(`roleName eq '${role.replace(/'/g, "''")}'`);
  const a = await armGet<{ value?: RoleDefinitionJson[] }>(ctx, armUrl, token, `${scope}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=${filter}`);
  if (!a.ok) return a;
  const hit = (a.value.value ?? []).find((r) => (r.properties?.roleName ?? '').toLowerCase() === role.toLowerCase());
  return { ok: true, value: hit ? toRole(hit) : undefined };
}

function normalizePermission(p: Partial<Permission>): Permission {
  return { actions: p.actions ?? [], notActions: p.notActions ?? [], dataActions: p.dataActions ?? [], notDataActions: p.notDataActions ?? [] };
}

/** ARM action patterns: case-insensitive, '*' matches any run of characters. */
export function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`, 'i');
  return re.test(action);
}

/** Whether the effective permissions (one entry per role assignment) allow an action. */
export function allows(effective: Permission[], action: string, data = false): boolean {
  return effective.some((p) => {
    const allow = data ? p.dataActions ?? [] : p.actions;
    const deny = data ? p.notDataActions ?? [] : p.notActions;
    return allow.some((a) => actionMatches(a, action)) && !deny.some((n) => actionMatches(n, action));
  });
}

/**
 * The concrete actions a role grants that the caller's effective permissions do not. A role's
 * wildcard action is checked as written ('*' is satisfied only by a '*' grant).
 */
export function missingActions(role: RoleDefinition, effective: Permission[]): string[] {
  const missing: string[] = [];
  for (const p of role.permissions) {
    for (const a of p.actions) if (!allows(effective, a)) missing.push(a);
    for (const a of p.dataActions ?? []) if (!allows(effective, a, true)) missing.push(`${a} (data action)`);
  }
  return missing;
}
