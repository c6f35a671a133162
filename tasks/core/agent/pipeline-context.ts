/**
 * What the agent hands a task: variables, the job's access token, the proxy and CA settings.
 * Read once, at the start, so that the rest of the core never touches the environment.
 */
import fs = require('node:fs');
import tl = require('azure-pipelines-task-lib/task');
import { _knownVariableMap } from 'azure-pipelines-task-lib/internal';
import { mask } from './variables';
import { HttpClient, HttpPolicy, ProxySettings, TlsSettings } from '../http/http';
import { TaskFailure } from '../http/failures';
import { AzureDevOpsHosts, azureDevOpsHosts } from '../http/token-hosts';
import { log, safe, warn } from './output';
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

export function readProxy(): ProxySettings | undefined {
  const cfg = tl.getHttpProxyConfiguration();
  if (!cfg?.proxyUrl) return undefined;
  if (cfg.proxyPassword) mask(cfg.proxyPassword);
  // The agent passes what was configured: a bare host:port is an http proxy; credentials may sit in the URL.
  const raw = /^[a-z][a-z0-9+.-]*:\/\//i.test(cfg.proxyUrl) ? cfg.proxyUrl : `http://${cfg.proxyUrl}`;
  let url: URL;
  try {
    url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new TaskFailure({
      what: 'The agent\'s proxy setting (Agent.ProxyUrl) is not an http:// or https:// URL.',
      cause: 'The agent was configured with a malformed --proxyurl.',
      fix: 'Re-configure the agent with --proxyurl http://<host>:<port> (the .proxy file in the agent folder).',
      code: 'AGENT_CONFIG',
    });
  }
  let username = cfg.proxyUsername || undefined;
  let password = cfg.proxyPassword || undefined;
  if (!username && url.username) {
    username = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
    if (password) mask(password);
  }
  const bypass: RegExp[] = [];
  for (const pattern of cfg.proxyBypassHosts ?? []) {
    try {
      bypass.push(new RegExp(pattern, 'i'));
    } catch {
      warn(safe`Ignoring the agent proxy bypass entry '${pattern}': it is not a valid regular expression.`);
    }
  }
  return { url: `${url.protocol}//${url.host}`, username, password, bypass };
}

function readFileSetting(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TaskFailure({
      what: `The agent's ${what} file ${file} could not be read: ${(e as Error).message}.`,
      cause: 'The agent was configured with a certificate file that is missing or unreadable by the agent\'s account.',
      fix: 'Re-run the agent configuration with the right --sslcacert / --sslclientcert paths, or fix the file\'s permissions.',
      code: 'AGENT_CONFIG',
    });
  }
}

export function readTls(collectionUri: string): TlsSettings {
  const cfg = tl.getHttpCertConfiguration();
  const out: TlsSettings = {};
  if (cfg?.caFile) out.ca = [readFileSetting(cfg.caFile, 'CA certificate')];
  if (cfg?.certFile && cfg.keyFile && collectionUri) {
    if (cfg.passphrase) mask(cfg.passphrase);
    out.clientCert = {
      host: new URL(collectionUri).host,
      cert: readFileSetting(cfg.certFile, 'client certificate'),
      key: readFileSetting(cfg.keyFile, 'client certificate key'),
      passphrase: cfg.passphrase || undefined,
    };
  }
  return out;
}

export function readPipelineContext(): PipelineContext {
  let collectionUri = variable('System.CollectionUri') ?? variable('System.TeamFoundationCollectionUri') ?? variable('System.TeamFoundationServerUri') ?? '';
  if (collectionUri && !collectionUri.endsWith('/')) collectionUri += '/';
  const proxy = readProxy();
  // The agent's client certificate goes only to its own server: the system connection's host, not a variable's.
  const tlsSettings = readTls(systemVssConnectionUrl() ?? '');
  const policy = httpPolicy();
  const http = new HttpClient(policy, proxy, tlsSettings, undefined, undefined, (req, attempt, reason, delay) =>
    log(safe`${req.service}: ${reason}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${policy.retries + 1}).`),
  );
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
