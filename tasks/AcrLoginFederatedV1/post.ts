/** AcrLoginFederated@1 post-job: removes this job's registry logins. Safe to run twice, or after a failed main step. */
import { removeSecretPath } from '../core/files/secret-files';
import { restoreUserConfig, UserConfigState } from '../core/acr/registry-auth';
import { getTaskState, isOwnJobFolder } from '../core/agent/variables';
import { runPostJob } from '../core/agent/task-runner';
import { debug, log, neutralize, safe, warn } from '../core/agent/output';
import { dockerConfigLock, JOB_DIR_STATE, USER_BACKUP_STATE } from './state';

async function post(): Promise<void> {
  const dir = getTaskState(JOB_DIR_STATE);
  if (dir && isOwnJobFolder(dir, JOB_DIR_STATE)) log(removeSecretPath(dir) ? safe`Removed this job's registry logins (${dir}).` : safe`This job's registry logins (${dir}) were already removed.`);
  const backup = getTaskState(USER_BACKUP_STATE);
  const state = backup ? userConfigState(backup) : undefined;
  if (state && isOwnJobFolder(state.backupDir, USER_BACKUP_STATE)) for (const line of await restoreUserConfig(state, dockerConfigLock())) log(neutralize(line));
  else if (backup && !state) warn(safe`Left the user's docker config alone: the task variable ${USER_BACKUP_STATE} is not the state this task writes, so something else set it.`);
  if (!dir && !backup) debug('No registry login to remove.');
}

/** The state the main step left for a user-scope login, or undefined when it is not that. */
function userConfigState(raw: string): UserConfigState | undefined {
  try {
    const s = JSON.parse(raw) as Partial<UserConfigState>;
    return typeof s.file === 'string' && typeof s.backupDir === 'string' ? (s as UserConfigState) : undefined;
  } catch {
    return undefined;
  }
}

void runPostJob('AcrLoginFederated (post-job)', post);
