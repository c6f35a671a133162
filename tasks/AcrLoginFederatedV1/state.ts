/** Names of the task variables the main step leaves for its post-job step, and the lock's wait. */
import { numberVariable } from '../core/agent/pipeline-variables';
import { LockOptions } from '../core/acr/docker-config-file';

export const JOB_DIR_STATE = 'WorkloadIdentity.AcrLogin.JobConfigDir';
export const USER_BACKUP_STATE = 'WorkloadIdentity.AcrLogin.UserBackup';

/** How long main and post-job wait for the user's docker config lock (another job changing it). */
export function dockerConfigLock(): LockOptions {
  return { waitMs: numberVariable('WorkloadIdentity.DockerConfigLockWaitSeconds', 30, 1, 600) * 1000 };
}
