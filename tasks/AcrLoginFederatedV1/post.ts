/** AcrLoginFederated@1 post-job: removes this job's registry logins. Safe to run twice, or after a failed main step. */
import { isJobTempFolder, removeSecretPath } from '../core/files/secret-files';
import { variable } from '../core/agent/pipeline-variables';
import { restoreUserConfig, UserConfigState } from '../core/acr/registry-auth';
import { getTaskState } from '../core/agent/variables';
import { runPostJob } from '../core/agent/task-runner';
import { debug, log, neutralize, safe, warn } from '../core/agent/output';
import { dockerConfigLock, JOB_DIR_STATE, USER_BACKUP_STATE } from './state';

async function post(): Promise<void> {
  const temp = variable('Agent.TempDirectory');
  const notOurs = (path: string, name: string) => warn(safe`Left ${path} alone: it is not a folder under Agent.TempDirectory, so this task did not make it (the task variable ${name} was set by something else).`);
  const dir = getTaskState(JOB_DIR_STATE);
  if (dir && !isJobTempFolder(dir, temp)) notOurs(dir, JOB_DIR_STATE);
  else if (dir) log(removeSecretPath(dir) ? safe`Removed this job's registry logins (${dir}).` : safe`This job's registry logins (${dir}) were already removed.`);
  const backup = getTaskState(USER_BACKUP_STATE);
  const state = backup ? userConfigState(backup) : undefined;
  if (backup && (!state || !isJobTempFolder(state.backupDir, temp))) notOurs(state?.backupDir ?? backup, USER_BACKUP_STATE);
  else if (state) for (const line of await restoreUserConfig(state, dockerConfigLock())) log(neutralize(line));
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
