/** FetchOidcToken@1: an idToken for a service connection, and what it is exchanged for. */
import { readPipelineContext } from '../core/agent/pipeline-context';
import { conversionAdvice, describeScheme, readConnection } from '../core/devops/connection';
import { OidcTokenClient, IdToken } from '../core/devops/oidc-token';
import { acquireAccessToken, loadMsalWhile } from '../core/azure/entra';
import { describeIdToken, expiresOn, VSTOKEN_RETIREMENT, vstokenRetirementApplies } from '../core/devops/claims';
import { boolInput, scopeInput } from '../core/agent/inputs';
import { InputError } from '../core/http/failures';
import { exportAzureIdentityEnv, exportTerraformEnv } from '../core/azure/tool-env';
import { setOutput } from '../core/agent/variables';
import { runTask } from '../core/agent/task-runner';
import { log, neutralize, safe, warn } from '../core/agent/output';
import { TOKEN_FILE_STATE } from './state';

async function main(): Promise<string | void> {
  const ctx = readPipelineContext();
  const conn = readConnection('connectedServiceNameARM', 'azureSubscription');
  const scope = scopeInput('accessTokenScope');
  const terraform = boolInput('exportTerraformEnv', false);
  const azureIdentity = boolInput('exportAzureIdentityEnv', false);
  const keepFresh = boolInput('keepTokenFileFresh', true);
  const federated = conn.scheme === 'WorkloadIdentityFederation';
  if (azureIdentity && !federated) {
    throw new InputError('exportAzureIdentityEnv', `service connection '${conn.id}' uses ${describeScheme(conn.scheme)}, which has no idToken to put in a token file`, 'Convert the connection to workload identity federation, or set exportAzureIdentityEnv to false.');
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
  }
  return undefined;
}

void runTask('FetchOidcToken', main);
