/**
 * A later pipeline step that uses the Azure SDK's own WorkloadIdentityCredential (from
 * @azure/identity): it reads AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE and
 * AZURE_AUTHORITY_HOST as any step would, and prints the token's expiry or the error.
 */
import { WorkloadIdentityCredential } from '@azure/identity';

async function main(): Promise<void> {
  // Instance discovery would ask login.microsoftonline.com about the emulator's host: only
  // 127.0.0.1 is reached in tests, as it would be for a private authority.
  const credential = new WorkloadIdentityCredential({ authorityHost: process.env.AZURE_AUTHORITY_HOST, disableInstanceDiscovery: true });
  const token = await credential.getToken(process.argv[2] ?? 'https://management.azure.com/.default');
  console.log(`ok ${new Date(token.expiresOnTimestamp).toISOString()}`);
}

main().catch((e) => {
  console.log(`error ${(e as Error).message}`);
  process.exitCode = 1;
});
