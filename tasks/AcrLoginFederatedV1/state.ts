/** Names of the task variables the main step leaves for its post-job step. */
export const JOB_DIR_STATE = 'WorkloadIdentity.AcrLogin.JobConfigDir';
export const USER_BACKUP_STATE = 'WorkloadIdentity.AcrLogin.UserBackup';
