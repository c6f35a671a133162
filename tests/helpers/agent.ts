/**
 * The environment the agent gives a task, pointed at the emulator through the settings a user has:
 * the connection's authority URL, System.CollectionUri / System.OidcRequestUri, the agent's CA.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Emulator } from '../emulator/index';

export interface ConnectionEnv {
  id: string;
  scheme: 'WorkloadIdentityFederation' | 'ServicePrincipal' | 'ManagedServiceIdentity';
  tenantId: string;
  clientId?: string;
  subscriptionId?: string;
  /** ServicePrincipal: spnKey or spnCertificate. */
  authenticationType?: 'spnKey' | 'spnCertificate';
  secret?: string;
  certificatePem?: string;
  msiClientId?: string;
  /** Extra auth parameters, e.g. a server-supplied idToken. */
  parameters?: Record<string, string>;
  /** The connection's Resource Manager URL (default: the public cloud's). */
  armUrl?: string;
  /** The connection's environmentAuthorityUrl: the emulator by default; null for none (the cloud's own authority). */
  authorityUrl?: string | null;
  scopeLevel?: string;
}

export interface JobOptions {
  /** How the task trusts the emulator's CA: NODE_EXTRA_CA_CERTS for the process, or the agent's Agent.CAInfo. */
  trust?: 'node-extra-ca' | 'agent-cainfo';
  /** Leave out System.OidcRequestUri so the task builds the URL itself. */
  withoutOidcRequestUri?: boolean;
  debug?: boolean;
  tempDirectory?: string;
  /**
   * Address Azure DevOps by its public name (https://dev.azure.com/<org>/), which does not resolve
   * here: only a proxy that maps it to the emulator reaches it.
   */
  publicHosts?: boolean;
}

export const PUBLIC_COLLECTION_HOST = 'dev.azure.com';

export function newTempDirectory(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'wit-agent-temp-'));
}

export function connectionEnv(emu: Emulator, c: ConnectionEnv): Record<string, string> {
  const parameters: Record<string, string> = { tenantid: c.tenantId, ...(c.parameters ?? {}) };
  if (c.clientId) parameters.serviceprincipalid = c.clientId;
  if (c.authenticationType) parameters.authenticationType = c.authenticationType;
  if (c.secret) parameters.serviceprincipalkey = c.secret;
  if (c.certificatePem) parameters.servicePrincipalCertificate = c.certificatePem;
  const env: Record<string, string> = {
    [`ENDPOINT_URL_${c.id}`]: c.armUrl ?? 'https://management.azure.com/',
    [`ENDPOINT_AUTH_${c.id}`]: JSON.stringify({ parameters, scheme: c.scheme }),
    [`ENDPOINT_AUTH_SCHEME_${c.id}`]: c.scheme,
    [`ENDPOINT_DATA_${c.id}_ENVIRONMENT`]: 'AzureCloud',
  };
  const authority = c.authorityUrl === undefined ? `${emu.url}/` : c.authorityUrl;
  if (authority !== null) env[`ENDPOINT_DATA_${c.id}_ENVIRONMENTAUTHORITYURL`] = authority;
  for (const [k, v] of Object.entries(parameters)) env[`ENDPOINT_AUTH_PARAMETER_${c.id}_${k.toUpperCase()}`] = v;
  if (c.subscriptionId) env[`ENDPOINT_DATA_${c.id}_SUBSCRIPTIONID`] = c.subscriptionId;
  if (c.msiClientId) env[`ENDPOINT_DATA_${c.id}_MSICLIENTID`] = c.msiClientId;
  if (c.scopeLevel) env[`ENDPOINT_DATA_${c.id}_SCOPELEVEL`] = c.scopeLevel;
  return env;
}

export function jobEnv(emu: Emulator, options: JobOptions = {}): Record<string, string> {
  const planId = crypto.randomUUID();
  const jobId = crypto.randomUUID();
  const collectionUri = options.publicHosts ? emu.collectionUri.replace(emu.url, `https://${PUBLIC_COLLECTION_HOST}`) : emu.collectionUri;
  const env: Record<string, string> = {
    SYSTEM_COLLECTIONURI: collectionUri,
    SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: collectionUri,
    SYSTEM_TEAMPROJECTID: emu.projectId,
    SYSTEM_TEAMPROJECT: 'web',
    SYSTEM_HOSTTYPE: 'build',
    SYSTEM_PLANID: planId,
    SYSTEM_JOBID: jobId,
    ENDPOINT_URL_SYSTEMVSSCONNECTION: collectionUri,
    ENDPOINT_AUTH_SYSTEMVSSCONNECTION: JSON.stringify({ parameters: { AccessToken: emu.jobAccessToken }, scheme: 'OAuth' }),
    AGENT_TEMPDIRECTORY: options.tempDirectory ?? newTempDirectory(),
    SYSTEM_DEBUG: options.debug === false ? 'false' : 'true',
    WORKLOADIDENTITY_HTTPTIMEOUTSECONDS: '5',
  };
  if (!options.withoutOidcRequestUri) {
    env.SYSTEM_OIDCREQUESTURI = `${collectionUri}${emu.projectId}/_apis/distributedtask/hubs/build/plans/${planId}/jobs/${jobId}/oidctoken`;
  }
  if (options.trust === 'agent-cainfo') env.AGENT_CAINFO = emu.caCertPath;
  else env.NODE_EXTRA_CA_CERTS = emu.caCertPath;
  return env;
}
