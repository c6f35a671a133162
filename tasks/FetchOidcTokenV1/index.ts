/** FetchOidcToken@1: an idToken for a service connection, and what it is exchanged for. */
import { readPipelineContext } from '../core/agent/pipeline-context';
import { conversionAdvice, describeScheme, readConnection } from '../core/devops/connection';
import { OidcTokenClient, IdToken, OidcSubject } from '../core/devops/oidc-token';
import { acquireAccessToken, loadMsalWhile } from '../core/azure/entra';
import { describeIdToken, describePipelineClaims, expiresOn, VSTOKEN_RETIREMENT, vstokenRetirementApplies } from '../core/devops/claims';
import { boolInput, scopeInput, stringInput } from '../core/agent/inputs';
import { InputError } from '../core/http/failures';
import { exportAzureIdentityEnv, exportTerraformEnv } from '../core/azure/tool-env';
import { ENDPOINT_TYPE_LABELS, FederatedEndpoint, FederatedEndpointType, readFederatedEndpoint } from '../core/devops/federated-endpoint';
import { writeTokenFile } from '../core/files/fresh-token-file';
import { setJobVariable } from '../core/agent/variables';
import { PipelineContext } from '../core/agent/pipeline-context';
import { setOutput } from '../core/agent/variables';
import { runTask } from '../core/agent/task-runner';
import { log, neutralize, safe, warn } from '../core/agent/output';
import { TOKEN_FILE_STATE } from './state';

// A HashiCorp Vault connection's token is for VaultSecretsFederated@1, which logs in with it.
export type ConnectionType = 'azureResourceManager' | Exclude<FederatedEndpointType, 'vault'> | 'pipeline';

/** Each connection type's input (task.json name, YAML name). */
export const CONNECTION_INPUTS: Record<Exclude<ConnectionType, 'pipeline'>, { input: string; yaml: string }> = {
  azureResourceManager: { input: 'connectedServiceNameARM', yaml: 'azureSubscription' },
  aws: { input: 'awsConnection', yaml: 'awsConnection' },
  gcp: { input: 'gcpConnection', yaml: 'gcpConnection' },
  oidc: { input: 'oidcConnection', yaml: 'oidcConnection' },
  generic: { input: 'genericConnection', yaml: 'genericConnection' },
};
const TYPES = ['azureResourceManager', 'aws', 'gcp', 'oidc', 'generic', 'pipeline'] as const;

/** The job variable that names the token file of writeTokenFile (also the output tokenFilePath; README lists it). */
export const TOKEN_FILE_VARIABLE = 'WORKLOAD_IDENTITY_TOKEN_FILE';

/**
 * Which connection the task is for. connectionType is the classic editor's selector; the agent
 * hands its default (azureResourceManager) when YAML leaves it out, so with that value the type is
 * inferred from the one connection input that is set (two set: an error naming both). An explicit
 * other type wins, and a connection input of another type left set (a hidden input in the classic
 * editor) is ignored with a warning.
 */
function selectConnectionType(): ConnectionType {
  const raw = stringInput('connectionType') ?? 'azureResourceManager';
  const type = TYPES.find((t) => t.toLowerCase() === raw.toLowerCase());
  if (!type) throw new InputError('connectionType', `'${raw.replace(/[^\w -]/g, '?')}' is not a connection type`, `Set connectionType to one of ${TYPES.join(', ')}, or leave it out and set one connection input.`);
  const set = (Object.keys(CONNECTION_INPUTS) as (keyof typeof CONNECTION_INPUTS)[]).filter((t) => stringInput(CONNECTION_INPUTS[t].input) !== undefined);
  if (type !== 'azureResourceManager') {
    for (const other of set.filter((t) => t !== type)) {
      warn(`connectionType is ${type}: ${CONNECTION_INPUTS[other].yaml} is ignored.`);
    }
    return type;
  }
  if (set.length > 1) {
    const names = set.map((t) => CONNECTION_INPUTS[t].yaml);
    throw new InputError(names[0], `${names.join(' and ')} are both set; the task fetches the idToken of one connection`, `Keep one of ${names.join(', ')} (or run the task once per connection).`);
  }
  return set[0] ?? 'azureResourceManager';
}

/** Inputs that need a Microsoft Entra app, refused for the other types with the reason and the way to a token file. */
function refuseEntraInputs(type: string, fetchedFor: string): void {
  const fix = (input: string) => `Remove ${input}, or use an Azure Resource Manager connection (azureSubscription). For a token file any tool can read, set writeTokenFile: true (job variable ${TOKEN_FILE_VARIABLE}).`;
  if (stringInput('accessTokenScope') !== undefined) {
    throw new InputError('accessTokenScope', `an access token comes from Microsoft Entra ID, which needs the app of an Azure Resource Manager connection; ${fetchedFor} (${type}) has none`, fix('accessTokenScope'));
  }
  for (const input of ['exportTerraformEnv', 'exportAzureIdentityEnv']) {
    if (boolInput(input, false)) {
      throw new InputError(input, `${input} sets up tools to authenticate as the Entra app of an Azure Resource Manager connection; ${fetchedFor} (${type}) has no Entra app`, fix(input));
    }
  }
}

async function main(): Promise<string | void> {
  const ctx = readPipelineContext();
  const type = selectConnectionType();
  if (type !== 'azureResourceManager') return otherConnection(ctx, type);
  const conn = readConnection('connectedServiceNameARM', 'azureSubscription');
  const scope = scopeInput('accessTokenScope');
  const terraform = boolInput('exportTerraformEnv', false);
  const azureIdentity = boolInput('exportAzureIdentityEnv', false);
  const tokenFile = boolInput('writeTokenFile', false);
  const keepFresh = boolInput('keepTokenFileFresh', true);
  const federated = conn.scheme === 'WorkloadIdentityFederation';
  if (azureIdentity && !federated) {
    throw new InputError('exportAzureIdentityEnv', `service connection '${conn.id}' uses ${describeScheme(conn.scheme)}, which has no idToken to put in a token file`, 'Convert the connection to workload identity federation, or set exportAzureIdentityEnv to false.');
  }
  if (tokenFile && !federated) {
    throw new InputError('writeTokenFile', `service connection '${conn.id}' uses ${describeScheme(conn.scheme)}, which has no idToken to put in a token file`, 'Convert the connection to workload identity federation, or set writeTokenFile to false.');
  }
  log(safe`Service connection ${conn.id}: ${describeScheme(conn.scheme)}, tenant ${conn.tenantId}, client ${conn.clientId || '(system-assigned)'}${conn.subscriptionId ? `, subscription ${conn.subscriptionId}` : ''}, cloud ${conn.cloud.name}.`);
  const advice = conversionAdvice(conn);
  if (advice) warn(advice);

  setOutput('servicePrincipalId', conn.clientId || undefined);
  setOutput('tenantId', conn.tenantId);
  setOutput('subscriptionId', conn.subscriptionId);

  let idToken: IdToken | undefined;
  const oidc = new OidcTokenClient(ctx, conn);
  if (federated) {
    // With an exchange to come, MSAL compiles while the idToken request is in flight.
    idToken = scope ? await loadMsalWhile(oidc.fetch()) : await oidc.fetch();
    log(`idToken for the connection (${idToken.source === 'agent' ? 'supplied by the agent' : 'from the Oidctoken API'}); compare these claims with the app's federated credential:`);
    for (const line of describeIdToken(idToken.claims)) log(line);
    if (vstokenRetirementApplies(idToken.claims.iss, conn.cloud.name)) {
      log(`  Note: ${VSTOKEN_RETIREMENT}; re-save or convert the connection to move it to the Entra issuer.`);
    }
    setOutput('idToken', idToken.token, true);
    setOutput('idTokenExpiresOn', expiresOn(idToken.claims)?.toISOString());
  } else if (!scope) {
    log(`A ${describeScheme(conn.scheme)} connection has no idToken; set accessTokenScope to get an access token.`);
  }

  if (scope) {
    // The idToken just fetched is the first assertion; a retry of the exchange fetches a fresh one.
    let first = idToken;
    const assertions = { fetch: async () => { const t = first ?? (await oidc.fetch()); first = undefined; return t; } };
    const access = await acquireAccessToken(ctx, conn, scope, assertions);
    log(safe`Access token for ${scope}, valid until ${access.expiresOn.toISOString()}.`);
    setOutput('accessToken', access.token, true);
    setOutput('accessTokenExpiresOn', access.expiresOn.toISOString());
  }

  if (terraform) {
    const names = exportTerraformEnv(ctx, conn, 'exportTerraformEnv');
    log(`Set for Terraform in later steps: ${names.join(', ')}. Secret variables do not reach scripts by themselves: map them in the step's env (see the task's documentation).`);
  }
  if (azureIdentity && idToken) {
    const tf = await exportAzureIdentityEnv(ctx, conn, idToken.token, keepFresh, TOKEN_FILE_STATE);
    log(`Set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE (${neutralize(tf.file)}) for the Azure SDKs in later steps; ` +
      (tf.refresher ? `the file is kept fresh until the job ends (status: ${tf.statusFile}), then removed.` : 'the idToken in it expires in about 10 minutes; the file is removed when the job ends.'));
    if (tokenFile) {
      setJobVariable(TOKEN_FILE_VARIABLE, tf.file);
      setOutput('tokenFilePath', tf.file);
      log(`Set ${TOKEN_FILE_VARIABLE} to the same file.`);
    }
  } else if (tokenFile && idToken) {
    await exportTokenFile(ctx, conn, idToken, keepFresh);
  }
  return undefined;
}

/** writeTokenFile: the idToken in an owner-only file under the agent's temp folder, named by WORKLOAD_IDENTITY_TOKEN_FILE. */
async function exportTokenFile(ctx: PipelineContext, subject: { id?: string }, idToken: IdToken, keepFresh: boolean): Promise<void> {
  const tf = await writeTokenFile(ctx, subject, 'FetchOidcToken', 'oidc-token', 'id-token', idToken.token, keepFresh, TOKEN_FILE_STATE);
  setJobVariable(TOKEN_FILE_VARIABLE, tf.file);
  setOutput('tokenFilePath', tf.file);
  log(`Set ${TOKEN_FILE_VARIABLE} (${neutralize(tf.file)}) for later steps; ` +
    (tf.refresher ? `the file is kept fresh until the job ends (status: ${neutralize(tf.statusFile)}), then removed.` : `the idToken in it expires at ${expiresOn(idToken.claims)?.toISOString() ?? '(unknown)'}; the file is removed when the job ends.`));
}

/** Any other connection the job references (the extension's own types, generic), or the pipeline's own token. */
async function otherConnection(ctx: PipelineContext, type: Exclude<ConnectionType, 'azureResourceManager'>): Promise<void> {
  let subject: OidcSubject;
  let endpoint: FederatedEndpoint | undefined;
  if (type === 'pipeline') {
    refuseEntraInputs('connectionType: pipeline', 'the pipeline\'s own token');
    subject = {};
    log('The pipeline\'s own idToken (no service connection): its subject names the organisation, project and pipeline; bind a verifier to the claims below.');
  } else {
    const { input, yaml } = CONNECTION_INPUTS[type];
    refuseEntraInputs(ENDPOINT_TYPE_LABELS[type], `the connection in ${yaml}`);
    endpoint = readFederatedEndpoint(input, type, yaml);
    subject = endpoint;
    const settings = Object.entries(endpoint.parameters).map(([k, v]) => `${k} ${v}`);
    log(safe`Service connection ${endpoint.id}: ${ENDPOINT_TYPE_LABELS[type]}${endpoint.url ? `, URL ${endpoint.url}` : ''}${settings.length ? `, ${settings.join(', ')}` : ''}.`);
  }
  const tokenFile = boolInput('writeTokenFile', false);
  const keepFresh = boolInput('keepTokenFileFresh', true);
  const idToken = await new OidcTokenClient(ctx, subject).fetch();
  log(`idToken ${type === 'pipeline' ? 'of the pipeline' : 'for the connection'} (${idToken.source === 'agent' ? 'supplied by the agent' : 'from the Oidctoken API'}); the claims a verifier binds to:`);
  for (const line of describeIdToken(idToken.claims)) log(line);
  for (const line of describePipelineClaims(idToken.claims)) log(line);
  log(`  The JWKS of this issuer is https://vstoken.dev.azure.com/.well-known/jwks, shared by every organisation: a verifier must check iss too.`);
  setOutput('idToken', idToken.token, true);
  setOutput('idTokenExpiresOn', expiresOn(idToken.claims)?.toISOString());
  if (tokenFile) await exportTokenFile(ctx, subject, idToken, keepFresh);
}

void runTask('FetchOidcToken', main);
