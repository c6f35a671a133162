/**
 * The service connection behind a task's connectedService:AzureRM input: its scheme, tenant,
 * client id, subscription and cloud. Secrets are read without going through the task-lib calls
 * that write values to the debug log.
 */
import tl = require('azure-pipelines-task-lib/task');
import { mask } from '../agent/variables';
import { Cloud, cloudByName } from '../azure/clouds';
import { InputError, TaskFailure } from '../http/failures';
import { debug, safe } from '../agent/output';

export type Scheme = 'WorkloadIdentityFederation' | 'ServicePrincipalSecret' | 'ServicePrincipalCertificate' | 'ManagedServiceIdentity';

export interface Connection {
  id: string;
  /** The YAML input name that named the connection, for messages. */
  input: string;
  scheme: Scheme;
  tenantId: string;
  /** Client (application) id; for a managed identity, the user-assigned identity's client id if any. */
  clientId: string;
  subscriptionId?: string;
  subscriptionName?: string;
  cloud: Cloud;
  /** Entra authority host with a trailing slash: the connection's own URL where it has one. */
  authorityHost: string;
  /** The connection's Resource Manager URL (its endpoint URL), https; the cloud's where the connection has none. */
  resourceManagerUrl: string;
  /** An idToken the agent supplied with the endpoint (newer agents); masked. */
  serverIdToken?: string;
  clientSecret?: string;
  /** PEM holding the certificate and its private key. */
  clientCertificatePem?: string;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A parameter by name, case-insensitively, trimmed; undefined when empty. */
export function param(parameters: Record<string, string> | undefined, key: string): string | undefined {
  if (!parameters) return undefined;
  const k = Object.keys(parameters).find((p) => p.toLowerCase() === key.toLowerCase());
  const v = k ? parameters[k] : undefined;
  return v && v.trim() ? v.trim() : undefined;
}

function data(id: string, key: string): string | undefined {
  const v = tl.getEndpointDataParameter(id, key, true);
  return v && v.trim() ? v.trim() : undefined;
}

function normalizeAuthority(url: string, source: string, yamlInput: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError(yamlInput, `the connection's ${source} '${url}' is not a URL`, 'Edit the service connection and correct its environment / authority URL.');
  }
  if (u.protocol !== 'https:') {
    throw new InputError(yamlInput, `the connection's ${source} '${url}' is not https`, 'Microsoft Entra ID is only reached over https: correct the authority URL in the service connection.');
  }
  return `${u.protocol}//${u.host}/`;
}

/** The connection's own URL receives Resource Manager tokens: it must be https. */
function readResourceManagerUrl(id: string, yamlInput: string): string | undefined {
  const raw = tl.getEndpointUrl(id, true)?.trim();
  if (!raw) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new InputError(yamlInput, `the connection's Resource Manager URL '${raw}' is not a URL`, 'Edit the service connection and correct its environment (the Resource Manager URL).');
  }
  if (u.protocol !== 'https:') {
    throw new InputError(yamlInput, `the connection's Resource Manager URL '${raw}' is not https`, 'Tokens are only sent over https: edit the service connection so that its Resource Manager URL is https (e.g. https://management.azure.com/).');
  }
  return u.href;
}

/**
 * Resolves the connection named by `inputName` (YAML name `yamlName`).
 * Throws InputError naming the input when it is missing, unknown to the agent, or of a scheme we do not know.
 */
/**
 * The connection a connectedService input names and its authorization as the agent handed it, or an
 * InputError naming the input: none given (`pick` says what to give), or none passed by the agent.
 */
export function endpointOfInput(inputName: string, yamlName: string, pick: string): { id: string; auth: tl.EndpointAuthorization } {
  const id = tl.getInput(inputName, false)?.trim();
  if (!id) throw new InputError(yamlName, 'no service connection is given', `Set ${yamlName} to the name or id of ${pick}.`);
  const auth = tl.getEndpointAuthorization(id, true);
  if (!auth) {
    throw new InputError(
      yamlName,
      `the agent passed no service connection '${id}' to the task`,
      'Check the connection\'s name (service connection names are case sensitive in YAML), that it exists in this project, and that this pipeline is authorized to use it (Project settings > Service connections > Security).',
    );
  }
  return { id, auth };
}

export function readConnection(inputName: string, yamlName = inputName): Connection {
  const { id, auth } = endpointOfInput(inputName, yamlName, 'an Azure Resource Manager service connection (in the classic editor: pick one under "Azure Resource Manager connection")');
  const p = auth.parameters ?? {};
  const rawScheme = (auth.scheme || tl.getEndpointAuthorizationScheme(id, true) || '').trim();
  let scheme: Scheme;
  switch (rawScheme.toLowerCase()) {
    case 'workloadidentityfederation':
      scheme = 'WorkloadIdentityFederation';
      break;
    case 'serviceprincipal': {
      const type = (param(p, 'authenticationType') ?? 'spnKey').toLowerCase();
      scheme = type === 'spncertificate' ? 'ServicePrincipalCertificate' : 'ServicePrincipalSecret';
      break;
    }
    case 'managedserviceidentity':
      scheme = 'ManagedServiceIdentity';
      break;
    default:
      throw new InputError(
        yamlName,
        `service connection '${id}' uses the authentication scheme '${rawScheme || '(none)'}', which this task does not support`,
        'Use an Azure Resource Manager connection with workload identity federation (recommended), a service principal or a managed identity.',
      );
  }

  const tenantId = param(p, 'tenantid') ?? '';
  const clientId = scheme === 'ManagedServiceIdentity' ? data(id, 'msiclientId') ?? param(p, 'serviceprincipalid') ?? '' : param(p, 'serviceprincipalid') ?? '';
  if (!tenantId) {
    throw new InputError(yamlName, `service connection '${id}' has no tenant id`, 'Edit the service connection and set its tenant (Directory) id.');
  }
  if (scheme !== 'ManagedServiceIdentity' && !clientId) {
    throw new InputError(yamlName, `service connection '${id}' has no service principal (client) id`, 'Edit the service connection and set its service principal / application (client) id.');
  }

  const environment = data(id, 'environment');
  const cloud = cloudByName(environment);
  const authorityUrl = data(id, 'environmentAuthorityUrl') ?? data(id, 'activeDirectoryAuthority');
  if (!cloud && !authorityUrl) {
    throw new InputError(yamlName, `service connection '${id}' is for the environment '${environment}', whose Microsoft Entra authority is unknown`, 'Set the environment\'s authority URL in the connection, or use AzureCloud, AzureUSGovernment or AzureChinaCloud.');
  }
  const authorityHost = authorityUrl ? normalizeAuthority(authorityUrl, 'authority URL', yamlName) : cloud!.authorityHost;
  const resourceManagerUrl = readResourceManagerUrl(id, yamlName) ?? cloud?.resourceManager ?? '';

  const conn: Connection = {
    id,
    input: yamlName,
    scheme,
    tenantId,
    clientId,
    subscriptionId: data(id, 'subscriptionid'),
    subscriptionName: data(id, 'subscriptionname'),
    cloud: cloud ?? { name: environment ?? 'AzureStack', authorityHost, resourceManager: resourceManagerUrl, acrSuffix: '' },
    authorityHost,
    resourceManagerUrl,
  };

  const serverIdToken = param(p, 'idToken');
  if (serverIdToken) {
    mask(serverIdToken);
    conn.serverIdToken = serverIdToken;
  }
  if (scheme === 'ServicePrincipalSecret') {
    conn.clientSecret = param(p, 'serviceprincipalkey');
    if (!conn.clientSecret) {
      throw new TaskFailure({
        what: `Service connection '${id}' uses a client secret, but the agent passed none.`,
        cause: 'The connection\'s secret is empty, or the connection is a federated one whose conversion did not finish.',
        fix: 'Convert the connection to workload identity federation (the "Convert" action on the connection), or edit it and enter a secret.',
        code: 'NO_SECRET',
      });
    }
    mask(conn.clientSecret);
  }
  if (scheme === 'ServicePrincipalCertificate') {
    conn.clientCertificatePem = param(p, 'servicePrincipalCertificate');
    if (!conn.clientCertificatePem) {
      throw new TaskFailure({
        what: `Service connection '${id}' uses a certificate, but the agent passed none.`,
        cause: 'The connection\'s certificate is empty.',
        fix: 'Convert the connection to workload identity federation, or edit it and paste the certificate with its private key (PEM).',
        code: 'NO_CERTIFICATE',
      });
    }
  }
  if (!GUID.test(tenantId)) debug(safe`Tenant '${tenantId}' is not a GUID; using it as a tenant domain name.`);
  return conn;
}

export function describeScheme(s: Scheme): string {
  switch (s) {
    case 'WorkloadIdentityFederation':
      return 'workload identity federation';
    case 'ServicePrincipalSecret':
      return 'service principal with a client secret';
    case 'ServicePrincipalCertificate':
      return 'service principal with a certificate';
    case 'ManagedServiceIdentity':
      return 'managed identity';
  }
}

/** The warning a connection with a stored secret gets: what expires, and how to convert. */
export function conversionAdvice(conn: Connection): string | undefined {
  if (conn.scheme === 'ServicePrincipalSecret' || conn.scheme === 'ServicePrincipalCertificate') {
    const what = conn.scheme === 'ServicePrincipalSecret' ? 'client secret' : 'certificate';
    return `Service connection '${conn.id}' authenticates with a stored ${what}, which expires and must be rotated. ` +
      'Convert it to workload identity federation: Project settings > Service connections > the connection > "Convert" (or create a new Azure Resource Manager connection with workload identity federation).';
  }
  return undefined;
}
