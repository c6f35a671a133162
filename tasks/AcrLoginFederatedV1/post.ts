/** AcrLoginFederated@1 post-job: removes this job's registry logins. Safe to run twice, or after a failed main step. */
import { removeSecretPath } from '../core/files/secret-files';
import { restoreUserConfig, UserConfigState } from '../core/acr/registry-auth';
import { getTaskState } from '../core/agent/variables';
import { runPostJob } from '../core/agent/task-runner';
import { debug, log, neutralize, safe } from '../core/agent/output';
import { dockerConfigLock, JOB_DIR_STATE, USER_BACKUP_STATE } from './state';

async function post(): Promise<void> {
  const dir = getTaskState(JOB_DIR_STATE);
  if (dir) log(removeSecretPath(dir) ? safe`Removed this job's registry logins (${dir}).` : safe`This job's registry logins (${dir}) were already removed.`);
  const backup = getTaskState(USER_BACKUP_STATE);
  if (backup) for (const line of await restoreUserConfig(JSON.parse(backup) as UserConfigState, dockerConfigLock())) log(neutralize(line));
  if (!dir && !backup) debug('No registry login to remove.');
}

void runPostJob('AcrLoginFederated (post-job)', post);
