// Azure built-in role definitions (the ones the tasks care about, with their real GUIDs and
// permissions) and ARM scope arithmetic: an assignment applies at its scope and below it.
import type { BuiltInRoleName, RoleDefinition } from './types';
import { isGuid } from './jwt';

interface BuiltIn extends RoleDefinition {
  roleName: BuiltInRoleName;
  /** as ARM reports them; cosmetic */
  createdOn: string;
  updatedOn: string;
}

const none = { notActions: [] as string[], dataActions: [] as string[], notDataActions: [] as string[] };

export const BUILT_IN_ROLES: readonly BuiltIn[] = [
  {
    id: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
    roleName: 'Owner',
    description: 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.',
    permissions: [{ actions: ['*'], ...none }],
    createdOn: '2015-02-02T21:55:09.8806423Z',
    updatedOn: '2021-11-11T20:13:45.8978856Z',
  },
  {
    id: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
    roleName: 'Contributor',
    description:
      'Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.',
    permissions: [
      {
        actions: ['*'],
        notActions: [
          'Microsoft.Authorization/*/Delete',
          'Microsoft.Authorization/*/Write',
          'Microsoft.Authorization/elevateAccess/Action',
          'Microsoft.Blueprint/blueprintAssignments/write',
          'Microsoft.Blueprint/blueprintAssignments/delete',
          'Microsoft.Compute/galleries/share/action',
          'Microsoft.Purview/consents/write',
          'Microsoft.Purview/consents/delete',
          'Microsoft.Resources/deploymentStacks/manageDenySetting/action',
          'Microsoft.Subscription/cancel/action',
          'Microsoft.Subscription/enable/action',
        ],
        dataActions: [],
        notDataActions: [],
      },
    ],
    createdOn: '2015-02-02T21:55:09.8806423Z',
    updatedOn: '2024-04-25T15:55:38.6203432Z',
  },
  {
    id: 'acdd72a7-3d48-4fa6-9a81-d4e3f7a1e4f8',
    roleName: 'Reader',
    description: 'View all resources, but does not allow you to make any changes.',
    permissions: [{ actions: ['*/read'], ...none }],
    createdOn: '2015-02-02T21:55:09.8806423Z',
    updatedOn: '2021-11-11T20:13:47.8628684Z',
  },
  {
    id: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
    roleName: 'User Access Administrator',
    description: 'Lets you manage user access to Azure resources.',
    permissions: [{ actions: ['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*'], ...none }],
    createdOn: '2015-02-02T21:55:09.8806423Z',
    updatedOn: '2021-11-11T20:13:48.6068687Z',
  },
  {
    id: '8311e382-0749-4cb8-b61a-304f252e45ec',
    roleName: 'AcrPush',
    description: 'acr push',
    permissions: [{ actions: ['Microsoft.ContainerRegistry/registries/pull/read', 'Microsoft.ContainerRegistry/registries/push/write'], ...none }],
    createdOn: '2018-10-29T19:44:21.0000000Z',
    updatedOn: '2021-11-11T20:13:33.0000000Z',
  },
  {
    id: '7f951dda-4ed3-4680-a7ca-43fe172d538d',
    roleName: 'AcrPull',
    description: 'acr pull',
    permissions: [{ actions: ['Microsoft.ContainerRegistry/registries/pull/read'], ...none }],
    createdOn: '2018-10-22T19:01:56.0000000Z',
    updatedOn: '2021-11-11T20:13:33.0000000Z',
  },
];

/** A built-in role by name (case-insensitive), GUID, or full role definition id. */
export function findRole(role: string): BuiltIn | undefined {
  const r = String(role ?? '').trim();
  const id = /\/roleDefinitions\/([^/]+)$/i.exec(r)?.[1] ?? r;
  if (isGuid(id)) return BUILT_IN_ROLES.find((d) => d.id === id.toLowerCase());
  return BUILT_IN_ROLES.find((d) => d.roleName.toLowerCase() === r.toLowerCase());
}

/** Public copies, without the cosmetic dates. */
export function builtInRoleCopies(): RoleDefinition[] {
  return BUILT_IN_ROLES.map(({ id, roleName, description, permissions }) => structuredClone({ id, roleName, description, permissions }));
}

/** '/' for the root; otherwise a leading slash, no trailing one, empty segments dropped. */
export function normalizeScope(scope: string): string {
  const segments = String(scope ?? '').split('/').filter(Boolean);
  return segments.length === 0 ? '/' : `/${segments.join('/')}`;
}

/** Whether an assignment at `assigned` applies at `scope`: the same resource id or a parent of it (segment-wise, case-insensitive). */
export function scopeCovers(assigned: string, scope: string): boolean {
  const a = normalizeScope(assigned).toLowerCase();
  const s = normalizeScope(scope).toLowerCase();
  return a === '/' || s === a || s.startsWith(`${a}/`);
}

/** The subscription GUID a scope lies in, if any (not validated). */
export function subscriptionOfScope(scope: string): string | undefined {
  return /^\/subscriptions\/([^/]+)/i.exec(normalizeScope(scope))?.[1];
}

/** A scope a role can be assigned at here: '/' or anything under /subscriptions/{guid}. */
export function checkAssignableScope(scope: string): string {
  const normalized = normalizeScope(scope);
  const sub = subscriptionOfScope(normalized);
  if (normalized !== '/' && !(sub && isGuid(sub))) {
    throw new TypeError(`scope must be '/' or an ARM resource id under /subscriptions/{guid}, got ${JSON.stringify(scope)}`);
  }
  return normalized;
}
