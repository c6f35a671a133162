/**
 * What the agent hands a task: variables, the job's access token, the proxy and CA settings.
 * Read once, at the start, so that the rest of the core never touches the environment.
 */
import tl = require('azure-pipelines-task-lib/task');
import { _knownVariableMap } from 'azure-pipelines-task-lib/internal';
import { mask } from './variables';
import { HttpClient, HttpPolicy, ProxySettings, TlsSettings } from '../http/http';
import { readProxy, readTls } from './agent-settings';
import { TaskFailure } from '../http/failures';
import { AzureDevOpsHosts, azureDevOpsHosts } from '../http/token-hosts';
import { logRetry } from './output';
import { httpPolicy, variable } from './pipeline-variables';

export { numberVariable } from './pipeline-variables';

export interface PipelineContext {
  collectionUri: string;
  teamProjectId: string;
  teamProject: string;
  hostType: string;
  planId: string;
  jobId: string;
  /** System.OidcRequestUri, where the agent sets it. */
  oidcRequestUri?: string;
  /**
   * This organisation's Azure DevOps (azureDevOpsHosts): the only places the job's access token is
   * sent, anchored at the SystemVssConnection endpoint, which no pipeline variable can move.
   */
  azureDevOps?: AzureDevOpsHosts;
  /** Agent.TempDirectory: cleaned by the agent after each job. */
  tempDirectory: string;
  proxy?: ProxySettings;
  /** Pipeline variables that set where msal-node sends managed identity requests (see managedIdentityVariables). */
  managedIdentityVariables?: string[];
  tls: TlsSettings;
  policy: HttpPolicy;
  /** The job's OAuth token (SystemVssConnection), masked. Read lazily: only the Oidctoken call needs it. */
  jobAccessToken(): string;
  http: HttpClient;
}



/** The environment variables msal-node reads to find a managed identity endpoint (its ManagedIdentityEnvironmentVariableNames). */
export const MANAGED_IDENTITY_ENVIRONMENT = ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'IDENTITY_SERVER_THUMBPRINT', 'IMDS_ENDPOINT', 'MSI_ENDPOINT', 'MSI_SECRET', 'AZURE_POD_IDENTITY_AUTHORITY_HOST', 'DEFAULT_IDENTITY_CLIENT_ID'];

/**
 * The names of public pipeline variables that would set one of them. The agent passes every public
 * variable to the task as an environment variable (NAME, '.' as '_', upper case), so a variable set
 * in the pipeline, at queue time or by an earlier step would choose where the managed identity
 * request goes. The machine's own settings (Azure Arc, AKS pod identity) are not variables.
 * task-lib keeps the names the agent listed (VSTS_PUBLIC_VARIABLES), keyed as environment variables;
 * getVariables() is not used because it writes every value to the debug log.
 */
export function managedIdentityVariables(): string[] {
  return Object.entries(_knownVariableMap)
    .filter(([key, v]) => !v.secret && MANAGED_IDENTITY_ENVIRONMENT.includes(key))
    .map(([, v]) => v.name);
}

export function readPipelineContext(): PipelineContext {
  let collectionUri = variable('System.CollectionUri') ?? variable('System.TeamFoundationCollectionUri') ?? variable('System.TeamFoundationServerUri') ?? '';
  if (collectionUri && !collectionUri.endsWith('/')) collectionUri += '/';
  const proxy = readProxy();
  // The agent's client certificate goes only to its own server: the system connection's host, not a variable's.
  const tlsSettings = readTls(systemVssConnectionUrl() ?? '');
  const policy = httpPolicy();
  const http = new HttpClient(policy, proxy, tlsSettings, undefined, undefined, logRetry(policy.retries));
  let token: string | undefined;
  return {
    collectionUri,
    teamProjectId: variable('System.TeamProjectId') ?? '',
    teamProject: variable('System.TeamProject') ?? '',
    hostType: variable('System.HostType') ?? 'build',
    planId: variable('System.PlanId') ?? '',
    jobId: variable('System.JobId') ?? '',
    oidcRequestUri: variable('System.OidcRequestUri'),
    azureDevOps: azureDevOpsHosts(systemVssConnectionUrl()),
    tempDirectory: variable('Agent.TempDirectory') ?? '',
    proxy,
    managedIdentityVariables: managedIdentityVariables(),
    tls: tlsSettings,
    policy,
    http,
    jobAccessToken() {
      if (token === undefined) token = readJobAccessToken();
      return token;
    },
  };
}

/**
 * The SystemVssConnection endpoint's URL. The agent writes it as ENDPOINT_URL_SYSTEMVSSCONNECTION
 * (Handler.cs upper-cases the system connection's name), and task-lib reads the environment without
 * folding case: on Linux and macOS only the upper-case name finds it; on Windows both do.
 */
export function systemVssConnectionUrl(): string | undefined {
  return tl.getEndpointUrl('SYSTEMVSSCONNECTION', true) || tl.getEndpointUrl('SystemVssConnection', true) || undefined;
}

/**
 * The job's OAuth token. The SystemVssConnection endpoint always carries it, even in classic
 * pipelines where System.AccessToken is not exposed. getEndpointAuthorization (unlike
 * getEndpointAuthorizationParameter) does not write the value to the debug log.
 */
export function readJobAccessToken(): string {
  const auth = tl.getEndpointAuthorization('SystemVssConnection', true);
  // No fallback to the System.AccessToken variable: task-lib's getVariable writes values, secret
  // ones included, to the debug log.
  const value = auth?.parameters?.AccessToken ?? auth?.parameters?.accesstoken;
  if (!value) {
    throw new TaskFailure({
      what: 'The job\'s access token (SystemVssConnection) is not available to the task.',
      cause: 'The task is not running inside an Azure Pipelines job, or the agent is too old.',
      fix: 'Run the task in an Azure Pipelines job on a supported agent (3.x or later).',
      code: 'NO_JOB_TOKEN',
    });
  }
  mask(value);
  return value;
}
