/**
 * Where a Vault login goes and as whom: the Vault address, the Enterprise namespace, the JWT auth
 * method's mount and the role, and a CA for a Vault on a private PKI. Each is validated with the
 * same rules whether an admin set it on a HashiCorp Vault connection or a pipeline set it as an
 * input; a bad value is refused through `Refuse`, which names the input or the connection's field.
 */
import { InputError } from '../http/failures';
import { safe } from '../agent/output';

export interface VaultTarget {
  /** https://host[:port][/prefix], no trailing slash: VAULT_ADDR. The only place the Vault token goes. */
  address: string;
  /** Vault Enterprise namespace (X-Vault-Namespace), without leading or trailing slashes. */
  namespace?: string;
  /** The JWT auth method's path, without auth/ and slashes: default jwt. */
  authMount: string;
  /** The role to log in with; empty: the auth method's default_role. */
  role?: string;
  /** PEM certificates of a private CA that signed Vault's certificate, added to the agent's. */
  caCertificate?: string;
}

export type Refuse = (problem: string, fix: string) => InputError;
export const asInput = (name: string): Refuse => (problem, fix) => new InputError(name, problem, fix);

export const DEFAULT_AUTH_MOUNT = 'jwt';

/** A Vault address: https only (the idToken and the Vault token are credentials), no query, fragment or user info. */
export function parseVaultAddress(raw: string | undefined, refuse: Refuse): string {
  if (!raw) throw refuse('no Vault address is given', 'Set it to the address your Vault CLI uses (VAULT_ADDR), e.g. https://vault.example.com:8200.');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw refuse(safe`'${raw}' is not a URL`, 'Give the address your Vault CLI uses (VAULT_ADDR), e.g. https://vault.example.com:8200.');
  }
  if (u.protocol !== 'https:') {
    throw refuse(safe`'${raw}' is not https`, 'The idToken and the Vault token are credentials: Vault is only called over https. Use the https address of your Vault (its listener with TLS, or the load balancer in front of it).');
  }
  if (u.username || u.password || u.search || u.hash) {
    throw refuse(safe`'${raw}' holds user info, a query or a fragment`, 'Give only https://host[:port], and a path prefix if Vault is served under one.');
  }
  // A path prefix is kept (Vault behind a reverse proxy at /vault); a /v1 the user copied from an API URL is not part of the address.
  const path = u.pathname.replace(/\/+$/, '');
  if (/(^|\/)v1$/.test(path)) {
    throw refuse(safe`'${raw}' ends in /v1, which is the API's prefix, not part of the address`, safe`Remove /v1: use ${u.origin}${path.replace(/\/?v1$/, '')}.`);
  }
  return `${u.origin}${path}`;
}

const SEGMENT = /^[A-Za-z0-9_.-]+$/;

function segments(raw: string): string[] {
  return raw.replace(/^\/+|\/+$/g, '').split('/');
}

/** A namespace path such as admin/team-a (Vault Enterprise and HCP Vault); empty means the root namespace. */
export function parseNamespace(raw: string | undefined, refuse: Refuse): string | undefined {
  if (!raw) return undefined;
  const parts = segments(raw);
  if (parts.some((p) => !SEGMENT.test(p) || p === '.' || p === '..')) {
    throw refuse(safe`'${raw}' is not a Vault namespace path`, 'Give the namespace as Vault names it, e.g. admin or admin/team-a (letters, digits, - _ . separated by /), or leave it empty for the root namespace.');
  }
  return parts.join('/');
}

/** The auth method's path as `vault auth list` shows it, with or without auth/ and slashes. */
export function parseAuthMount(raw: string | undefined, refuse: Refuse): string {
  if (!raw) return DEFAULT_AUTH_MOUNT;
  const parts = segments(raw.replace(/^\/*auth\//, ''));
  if (parts.some((p) => !SEGMENT.test(p) || p === '.' || p === '..')) {
    throw refuse(safe`'${raw}' is not an auth method path`, 'Give the path of the JWT auth method as `vault auth list` shows it, e.g. jwt or azure-devops (default jwt).');
  }
  return parts.join('/');
}

// Vault's own pattern for role names (framework.GenericNameRegex): \w(([\w-.]+)?\w)?
const ROLE = /^\w(?:[\w.-]*\w)?$/;

export function parseRole(raw: string | undefined, refuse: Refuse): string | undefined {
  if (!raw) return undefined;
  if (!ROLE.test(raw) || raw.length > 256) {
    throw refuse(safe`'${raw}' is not a Vault role name`, 'Give the name of the role as `vault list auth/<mount>/role` shows it (letters, digits, _ - .).');
  }
  // Vault lower-cases role names on login (TypeLowerCaseString).
  return raw.toLowerCase();
}

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function parseCaCertificate(raw: string | undefined, refuse: Refuse): string | undefined {
  if (!raw) return undefined;
  const certs = raw.replace(/\r\n?/g, '\n').match(PEM);
  if (!certs) {
    throw refuse('it holds no PEM certificate', 'Paste the CA certificate that signed Vault\'s TLS certificate, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE----- (what VAULT_CACERT names), or leave it empty when the agent already trusts it.');
  }
  return `${certs.join('\n')}\n`;
}

/** `VAULT_NAMESPACE=... ` for the fix commands we print, where a namespace is in use. */
export function cliPrefix(t: Pick<VaultTarget, 'namespace'>): string {
  return t.namespace ? `VAULT_NAMESPACE=${t.namespace} ` : '';
}
