/**
 * The environment the agent gives a task, pointed at the emulator through the settings a user has:
 * the connection's authority URL, System.CollectionUri / System.OidcRequestUri, the agent's CA.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Emulator } from '../emulator/index';
import { agentJob, JobKind, OidcRequestHost } from './agent-job';

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
  /** The kind of job (tests/helpers/agent-job.ts): build (the default), deployment, release or deploymentGroup. */
  kind?: JobKind;
  /** Where System.OidcRequestUri points (default: the collection), or 'none' to leave it out. */
  oidcRequestHost?: OidcRequestHost;
  /** 'windows': the names a case-insensitive (Windows) environment also answers. */
  casing?: 'posix' | 'windows';
  /** How the task trusts the emulator's CA: NODE_EXTRA_CA_CERTS for the process, or the agent's Agent.CAInfo. */
  trust?: 'node-extra-ca' | 'agent-cainfo';
  /** Leave out System.OidcRequestUri so the task builds the URL itself (as oidcRequestHost: 'none'). */
  withoutOidcRequestUri?: boolean;
  debug?: boolean;
  tempDirectory?: string;
  /**
   * Address Azure DevOps by its public names (https://dev.azure.com/<org>/ and, in a release,
   * https://vsrm.dev.azure.com/<org>/), which do not resolve here: only a proxy that maps them to
   * the emulator reaches them. Without it the emulator is Azure DevOps Server-like: one origin.
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

/** A connection of another type than AzureRM: the extension's own types, or Microsoft's generic one. */
export interface EndpointEnv {
  id: string;
  /** The connection's URL (ENDPOINT_URL_<id>); the agent writes one for every endpoint, '' where it has none. */
  url?: string;
  /** 'None' for WorkloadIdentityAws/Gcp/Oidc, 'UsernamePassword' for a generic connection. */
  scheme: 'None' | 'UsernamePassword' | (string & {});
  /** The authentication scheme's inputs: authorization.parameters. */
  parameters?: Record<string, string>;
  /** The type's top-level inputs: data. */
  data?: Record<string, string>;
}

/**
 * What the agent's Handler.cs AddEndpointsToEnvironment writes for a connection of any type:
 * ENDPOINT_URL_<id>, ENDPOINT_AUTH_<id> ({"parameters":{...},"scheme":"..."}), ENDPOINT_AUTH_SCHEME_<id>,
 * ENDPOINT_AUTH_PARAMETER_<id>_<KEY> and ENDPOINT_DATA_<id>_<KEY> (keys upper case).
 */
export function endpointEnv(e: EndpointEnv): Record<string, string> {
  const parameters = e.parameters ?? {};
  const env: Record<string, string> = {
    [`ENDPOINT_URL_${e.id}`]: e.url ?? '',
    [`ENDPOINT_AUTH_${e.id}`]: JSON.stringify({ parameters, scheme: e.scheme }),
    [`ENDPOINT_AUTH_SCHEME_${e.id}`]: e.scheme,
  };
  for (const [k, v] of Object.entries(parameters)) env[`ENDPOINT_AUTH_PARAMETER_${e.id}_${k.toUpperCase()}`] = v;
  for (const [k, v] of Object.entries(e.data ?? {})) env[`ENDPOINT_DATA_${e.id}_${k.toUpperCase()}`] = v;
  return env;
}

/** The agent's environment for a job of the emulator's organisation (see agent-job.ts), with the emulator's plan registered under its hub. */
export function jobEnv(emu: Emulator, options: JobOptions = {}): Record<string, string> {
  const collectionUri = options.publicHosts ? emu.collectionUri.replace(emu.url, `https://${PUBLIC_COLLECTION_HOST}`) : emu.collectionUri;
  const job = agentJob({
    kind: options.kind,
    collectionUri,
    projectId: emu.projectId,
    projectName: 'web',
    accessToken: emu.jobAccessToken,
    tempDirectory: options.tempDirectory ?? newTempDirectory(),
    oidcRequestHost: options.withoutOidcRequestUri ? 'none' : options.oidcRequestHost,
    casing: options.casing,
    debug: options.debug,
    variables: { 'WorkloadIdentity.HttpTimeoutSeconds': '5' },
  });
  emu.registerPlan(job.planId, job.hostType);
  const env = job.env;
  if (options.trust === 'agent-cainfo') env.AGENT_CAINFO = emu.caCertPath;
  else env.NODE_EXTRA_CA_CERTS = emu.caCertPath;
  return env;
}
