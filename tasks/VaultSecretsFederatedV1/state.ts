/** Names of the task variables the main step leaves for its post-job step. */
/** The Vault token (a secret task variable), revoked by the post-job step. */
export const VAULT_TOKEN_STATE = 'WorkloadIdentity.Vault.Token';
/** Where and how to revoke it: JSON of VaultSession (no secret in it). */
export const VAULT_SESSION_STATE = 'WorkloadIdentity.Vault.Session';
/** The folder of multi-line values written to files. */
export const VAULT_FILES_STATE = 'WorkloadIdentity.Vault.Files';

export interface VaultSession {
  address: string;
  namespace?: string;
  caCertificate?: string;
  /** When the token expires by itself (ISO 8601); none for a token without a TTL. */
  expiresOn?: string;
  accessor?: string;
}
