/**
 * GcpAuthFederated@1 with a connection of type WorkloadIdentityGcp (gcpConnection): the workload
 * identity provider, the service account and the project come from the connection, which an admin
 * set and approves pipelines for. A workloadIdentityProvider or serviceAccount input that differs
 * from the connection's (a service account where the connection has none, too) is refused, naming
 * both, before any request. projectId only chooses later steps' default project: an input may set
 * one where the connection has none, but not contradict the connection's.
 */
import { stringInput } from '../core/agent/inputs';
import { FederatedEndpoint } from '../core/devops/federated-endpoint';
import { connectionFieldError, differsFromConnection } from '../core/devops/connection-choice';
import { GcpProvider } from '../core/google/gcp';
import { parseProjectId, parseProvider, parseServiceAccount, projectIdInput } from './inputs';

export interface GcpSettings {
  provider: GcpProvider;
  serviceAccount?: string;
  projectId?: string;
}

const ANOTHER = 'For another provider or service account, use a service connection made for it (an admin creates it and approves which pipelines may use it).';

export function gcpSettings(ep: FederatedEndpoint): GcpSettings {
  const p = ep.parameters;
  const provider = parseProvider(p.workloadIdentityProvider, connectionFieldError(ep, 'workloadIdentityProvider', 'Workload identity provider'));
  const serviceAccount = parseServiceAccount(p.serviceAccount, connectionFieldError(ep, 'serviceAccount', 'Service account'));
  const ownProject = parseProjectId(p.projectId, connectionFieldError(ep, 'projectId', 'Project id'));

  const providerRaw = stringInput('workloadIdentityProvider');
  if (providerRaw !== undefined && parseProvider(providerRaw).name !== provider.name) {
    throw differsFromConnection(ep, 'workloadIdentityProvider', providerRaw, provider.name, 'workload identity provider', `Remove workloadIdentityProvider: the idToken goes to the connection's provider. ${ANOTHER}`);
  }
  const saInput = stringInput('serviceAccount');
  if (saInput !== undefined && saInput.toLowerCase() !== serviceAccount?.toLowerCase()) {
    throw differsFromConnection(ep, 'serviceAccount', saInput, serviceAccount ?? '(none: direct resource access)', 'service account', `Remove serviceAccount: the connection's ${serviceAccount ? 'service account is impersonated' : 'federated principal accesses resources directly'}. ${ANOTHER}`);
  }
  const projectInput = projectIdInput();
  if (projectInput !== undefined && ownProject !== undefined && projectInput !== ownProject) {
    throw differsFromConnection(ep, 'projectId', projectInput, ownProject, 'project id', 'Remove projectId: later steps get the connection\'s project (GOOGLE_CLOUD_PROJECT). For a resource in another project, name the project in the step that uses it (e.g. gcloud --project).');
  }
  return { provider, serviceAccount, projectId: ownProject ?? projectInput };
}
