/**
 * Environment that lets other tools authenticate by themselves in later steps: Terraform's
 * azurerm/azuread/azapi providers (ARM_*) and the Azure SDKs' WorkloadIdentityCredential (AZURE_*).
 */
import { Connection } from '../devops/connection';
import { PipelineContext } from '../agent/pipeline-context';
import { InputError } from '../http/failures';
import { TokenFile, writeTokenFile } from '../files/fresh-token-file';
import { setJobVariable } from '../agent/variables';
import { setReadOnlyJobVariable } from '../agent/agent-channel';
import { oidcRequestBaseUrl } from '../http/token-hosts';

const TERRAFORM_ENVIRONMENT: Record<string, string> = { azurecloud: 'public', azureusgovernment: 'usgovernment', azurechinacloud: 'china' };

/**
 * Sets ARM_* so that Terraform fetches fresh idTokens itself for as long as the job runs,
 * instead of a fixed ARM_OIDC_TOKEN that dies after ten minutes. Returns the names set.
 */
export function exportTerraformEnv(ctx: PipelineContext, conn: Connection, inputName: string): string[] {
  const set: string[] = [];
  const put = (name: string, value: string | undefined, secret = false) => {
    if (value === undefined || value === '') return;
    setJobVariable(name, value, secret);
    set.push(name + (secret ? ' (secret)' : ''));
  };
  put('ARM_TENANT_ID', conn.tenantId);
  put('ARM_SUBSCRIPTION_ID', conn.subscriptionId);
  put('ARM_ENVIRONMENT', TERRAFORM_ENVIRONMENT[conn.cloud.name.toLowerCase()]);
  switch (conn.scheme) {
    case 'WorkloadIdentityFederation': {
      // Terraform sends the job's token to this URL for as long as it runs: it passes the same
      // check as every request the task makes with that token, whether or not the task itself
      // calls it (it does not when the agent supplied the idToken with the endpoint).
      const { url } = oidcRequestBaseUrl(ctx);
      put('ARM_CLIENT_ID', conn.clientId);
      put('ARM_USE_OIDC', 'true');
      setReadOnlyJobVariable('ARM_OIDC_REQUEST_URL', url);
      set.push('ARM_OIDC_REQUEST_URL');
      put('ARM_OIDC_REQUEST_TOKEN', ctx.jobAccessToken(), true);
      // azurerm and azuread read the first, azapi the second.
      put('ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID', conn.id);
      put('ARM_OIDC_AZURE_SERVICE_CONNECTION_ID', conn.id);
      break;
    }
    case 'ManagedServiceIdentity':
      put('ARM_USE_MSI', 'true');
      put('ARM_CLIENT_ID', conn.clientId || undefined);
      break;
    case 'ServicePrincipalSecret':
      put('ARM_CLIENT_ID', conn.clientId);
      put('ARM_CLIENT_SECRET', conn.clientSecret, true);
      break;
    case 'ServicePrincipalCertificate':
      throw new InputError(
        inputName,
        'exportTerraformEnv needs a federated, managed identity or secret connection; this one uses a certificate',
        'Convert the connection to workload identity federation (the "Convert" action on the connection), then Terraform fetches its own tokens.',
      );
  }
  return set;
}

/**
 * Writes the idToken to an owner-only file (kept fresh until the job ends with keepFresh) and
 * points the Azure SDKs' WorkloadIdentityCredential at it.
 */
export async function exportAzureIdentityEnv(ctx: PipelineContext, conn: Connection, idToken: string, keepFresh: boolean, stateKey: string): Promise<TokenFile> {
  const tf = await writeTokenFile(ctx, conn, 'FetchOidcToken', 'azure-identity', 'federated-token', idToken, keepFresh, stateKey);
  setJobVariable('AZURE_CLIENT_ID', conn.clientId);
  setJobVariable('AZURE_TENANT_ID', conn.tenantId);
  setJobVariable('AZURE_FEDERATED_TOKEN_FILE', tf.file);
  if (conn.authorityHost !== 'https://login.microsoftonline.com/') setJobVariable('AZURE_AUTHORITY_HOST', conn.authorityHost);
  return tf;
}
