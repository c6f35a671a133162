/**
 * Service connections that are not Azure Resource Manager ones but still get idTokens from the
 * Oidctoken API: the extension's own types (WorkloadIdentityAws, WorkloadIdentityGcp,
 * WorkloadIdentityOidc, WorkloadIdentityVault, scheme "None") and Microsoft's generic connection. Azure DevOps issues an
 * idToken for any connection a job references (iss https://vstoken.dev.azure.com/<org id>,
 * sub sc://<org>/<project>/<connection name>) [gravitational/teleport rfd/0211-azure-devops-joining.md;
 * aws-toolkit-azure-devops src/lib/awsConnectionParameters.ts].
 *
 * The agent hands such a connection as ENDPOINT_URL_<id>, ENDPOINT_AUTH_<id> ({parameters, scheme}:
 * the inputs of the authentication scheme), ENDPOINT_AUTH_SCHEME_<id> and ENDPOINT_DATA_<id>_<KEY>
 * (the type's top-level inputs) [azure-pipelines-agent Handler.cs AddEndpointsToEnvironment].
 * Authorization is read with tl.getEndpointAuthorization (which logs only whether it exists), never
 * with getEndpointAuthorizationParameter, which writes each value to the debug log.
 */
import tl = require('azure-pipelines-task-lib/task');
import { mask } from '../agent/variables';
import { endpointOfInput, param } from './connection';

export type FederatedEndpointType = 'aws' | 'gcp' | 'oidc' | 'vault' | 'generic';

/** The contributed types' names (vss-extension.json properties.name): a contract with task.json. */
export const ENDPOINT_TYPE_NAMES: Record<FederatedEndpointType, string> = {
  aws: 'WorkloadIdentityAws',
  gcp: 'WorkloadIdentityGcp',
  oidc: 'WorkloadIdentityOidc',
  vault: 'WorkloadIdentityVault',
  generic: 'generic',
};

export const ENDPOINT_TYPE_LABELS: Record<FederatedEndpointType, string> = {
  aws: 'AWS (workload identity federation)',
  gcp: 'Google Cloud (workload identity federation)',
  oidc: 'OpenID Connect (workload identity federation)',
  vault: 'HashiCorp Vault (workload identity federation)',
  generic: 'Generic',
};

/** The settings each type holds (not secrets); generic connections' username and password are never read. */
const SETTINGS: Record<FederatedEndpointType, readonly string[]> = {
  aws: ['roleArn', 'region', 'maxSessionDuration', 'stsEndpoint'],
  gcp: ['workloadIdentityProvider', 'serviceAccount', 'projectId'],
  oidc: ['description'],
  vault: ['namespace', 'authMount', 'role', 'caCertificate'],
  generic: [],
};

export interface FederatedEndpoint {
  id: string;
  /** The YAML input name that named the connection, for messages. */
  input: string;
  type: FederatedEndpointType;
  /** The connection's URL (ENDPOINT_URL_<id>), where it has one. */
  url?: string;
  /** The scheme the agent handed (None for our types, UsernamePassword for a generic connection). */
  scheme: string;
  /** The type's settings, from the scheme's parameters or the connection's data, trimmed; empty ones left out. */
  parameters: Record<string, string>;
  /** An idToken the agent supplied with the endpoint (newer agents); masked. */
  serverIdToken?: string;
}


/**
 * Resolves the connection named by `inputName` (YAML name `yamlName`) as a connection of `type`.
 * Throws InputError naming the input when it is missing or unknown to the agent.
 */
export function readFederatedEndpoint(inputName: string, type: FederatedEndpointType, yamlName = inputName): FederatedEndpoint {
  const { id, auth } = endpointOfInput(inputName, yamlName, `a service connection of type "${ENDPOINT_TYPE_LABELS[type]}"`);
  const scheme = (auth.scheme || tl.getEndpointAuthorizationScheme(id, true) || '').trim();
  const parameters: Record<string, string> = {};
  for (const key of SETTINGS[type]) {
    const v = param(auth.parameters, key) ?? tl.getEndpointDataParameter(id, key, true)?.trim();
    if (v) parameters[key] = v;
  }
  const url = tl.getEndpointUrl(id, true)?.trim() || undefined;
  const endpoint: FederatedEndpoint = { id, input: yamlName, type, scheme, parameters, ...(url ? { url } : {}) };
  const serverIdToken = param(auth.parameters, 'idToken');
  if (serverIdToken) {
    mask(serverIdToken);
    endpoint.serverIdToken = serverIdToken;
  }
  return endpoint;
}
