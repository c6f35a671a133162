/**
 * Which idToken logs in, and where: a HashiCorp Vault connection (vaultConnection: the address,
 * namespace, auth mount, role and CA an admin set once), an OpenID Connect connection
 * (oidcConnection: its URL is the Vault address), or the pipeline's own token (the address an
 * input). The connection's values are the admin's: an input may fill a field the connection leaves
 * empty, and an input that contradicts it is refused, naming both, before any request.
 */
import { stringInput } from '../core/agent/inputs';
import { safe, warn } from '../core/agent/output';
import { InputError } from '../core/http/failures';
import { OidcSubject } from '../core/devops/oidc-token';
import { ENDPOINT_TYPE_LABELS, FederatedEndpoint, readFederatedEndpoint } from '../core/devops/federated-endpoint';
import { connectionFieldError, differsFromConnection } from '../core/devops/connection-choice';
import { asInput, DEFAULT_AUTH_MOUNT, parseAuthMount, parseCaCertificate, parseNamespace, parseRole, parseVaultAddress, Refuse, VaultTarget } from '../core/vault/vault-target';

export type VaultConnectionType = 'vault' | 'oidc' | 'pipeline';

export interface VaultSettings {
  type: VaultConnectionType;
  subject: OidcSubject;
  target: VaultTarget;
  /** For the log: where each setting came from. */
  description: string;
}

const CONNECTION_INPUT: Record<Exclude<VaultConnectionType, 'pipeline'>, string> = { vault: 'vaultConnection', oidc: 'oidcConnection' };
const ANOTHER = 'For another Vault, namespace, auth method or role, use a service connection made for it (an admin creates it and approves which pipelines may use it).';

/** connectionType as the classic editor sets it, or inferred in YAML from the one connection input that is set. */
export function chooseVaultConnection(): VaultConnectionType {
  const raw = stringInput('connectionType');
  const types: VaultConnectionType[] = ['vault', 'oidc', 'pipeline'];
  const explicit = raw === undefined ? undefined : types.find((t) => t === raw.toLowerCase());
  if (raw !== undefined && !explicit) {
    throw new InputError('connectionType', safe`'${raw}' is not a connection type of this task`, 'Set connectionType to vault (a HashiCorp Vault connection), oidc (an OpenID Connect connection) or pipeline (the pipeline\'s own token), or leave it out and set vaultConnection or oidcConnection.');
  }
  const vaultSet = stringInput('vaultConnection') !== undefined;
  const oidcSet = stringInput('oidcConnection') !== undefined;
  // The agent hands the default (vault) when YAML leaves connectionType out: with it, the connection
  // is inferred from the one input that is set, and both set is refused (as connection-choice.ts does).
  if (explicit === undefined || explicit === 'vault') {
    if (vaultSet && oidcSet) {
      throw new InputError('vaultConnection', 'vaultConnection and oidcConnection are both set; the task logs in with one connection\'s idToken', 'Keep one: vaultConnection (a HashiCorp Vault connection, which holds the Vault settings) or oidcConnection (an OpenID Connect connection whose URL is the Vault address).');
    }
    if (oidcSet) return 'oidc';
    if (!vaultSet) {
      throw new InputError('vaultConnection', 'no service connection is given', `Set vaultConnection to a service connection of type "${ENDPOINT_TYPE_LABELS.vault}" (or oidcConnection to an OpenID Connect connection), or set connectionType: pipeline to log in with the pipeline's own token (then vaultAddress is required).`);
    }
    return 'vault';
  }
  for (const [type, input] of Object.entries(CONNECTION_INPUT)) {
    if (type !== explicit && stringInput(input) !== undefined) warn(`connectionType is ${explicit}: ${input} is ignored.`);
  }
  return explicit;
}

/** One setting: the connection's (validated as its field), else the input's; both and different: refused. */
function merged<T>(ep: FederatedEndpoint | undefined, own: string | undefined, field: string, label: string, input: string, parse: (raw: string | undefined, refuse: Refuse) => T, same: (a: T, b: T) => boolean, why: string): T {
  const fromConnection = ep && own !== undefined ? parse(own, connectionFieldError(ep, field, label)) : undefined;
  const raw = stringInput(input);
  const fromInput = raw !== undefined ? parse(raw, asInput(input)) : undefined;
  if (ep && fromConnection !== undefined && fromInput !== undefined && !same(fromConnection, fromInput)) {
    throw differsFromConnection(ep, input, raw as string, String(fromConnection), label, `Remove ${input}: ${why} ${ANOTHER}`);
  }
  return (fromConnection ?? fromInput ?? parse(undefined, asInput(input))) as T;
}

const eq = <T>(a: T, b: T) => a === b;

export function vaultSettings(): VaultSettings {
  const type = chooseVaultConnection();
  const ep = type === 'pipeline' ? undefined : readFederatedEndpoint(CONNECTION_INPUT[type], type);
  const p = type === 'vault' && ep ? ep.parameters : {};
  const address = merged(ep, ep?.url, 'url', type === 'vault' ? 'Vault address' : 'Service URL', 'vaultAddress', (raw, refuse) => parseVaultAddress(raw, refuse), eq, 'the idToken and the Vault token go only to the connection\'s Vault.');
  const namespace = merged(ep, p.namespace, 'namespace', 'namespace', 'namespace', parseNamespace, eq, 'the connection\'s namespace is used.');
  const authMount = merged(ep, p.authMount, 'authMount', 'auth method path', 'authMount', parseAuthMount, eq, 'the connection\'s auth method is used.');
  const role = merged(ep, p.role, 'role', 'role', 'role', parseRole, eq, 'the connection\'s role is used.');
  const caCertificate = merged(ep, p.caCertificate, 'caCertificate', 'CA certificate', 'caCertificate', parseCaCertificate, eq, 'the connection\'s CA is trusted.');
  const target: VaultTarget = { address, authMount, ...(namespace ? { namespace } : {}), ...(role ? { role } : {}), ...(caCertificate ? { caCertificate } : {}) };

  const where = `Vault ${address}${namespace ? `, namespace ${namespace}` : ''}, auth/${authMount}${authMount === DEFAULT_AUTH_MOUNT && !p.authMount && !stringInput('authMount') ? ' (default)' : ''}, role ${role ?? '(the auth method\'s default_role)'}${caCertificate ? ', with its own CA' : ''}`;
  const description = type === 'pipeline'
    ? safe`${where}; logging in with the pipeline's own idToken (no service connection).`
    : safe`${where}; logging in with the idToken of service connection ${ep?.id} (${ENDPOINT_TYPE_LABELS[type]}).`;
  return { type, subject: ep ?? {}, target, description };
}
