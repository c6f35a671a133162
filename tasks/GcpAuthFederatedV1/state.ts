/** Names of the task variables the main step leaves for its post-job step. */
export const TOKEN_FILE_STATE = 'WorkloadIdentity.GcpAuth.TokenFile';
