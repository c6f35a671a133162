/** AcrLoginFederated@1 post-job: removes this job's registry logins. Safe to run twice, or after a failed main step. */
import * as tl from 'azure-pipelines-task-lib/task';
import { removeSecretPath } from '../core/secret-files';
import { restoreUserConfig, UserConfigBackup } from '../core/registry-auth';
import { getTaskState } from '../core/variables';
import { runTask } from '../core/task-runner';
import { JOB_DIR_STATE, USER_BACKUP_STATE } from './state';

async function post(): Promise<void> {
  const dir = getTaskState(JOB_DIR_STATE);
  if (dir) console.log(removeSecretPath(dir) ? `Removed this job's registry logins (${dir}).` : `This job's registry logins (${dir}) were already removed.`);
  const backup = getTaskState(USER_BACKUP_STATE);
  if (backup) console.log(restoreUserConfig(JSON.parse(backup) as UserConfigBackup));
  if (!dir && !backup) tl.debug('No registry login to remove.');
}

void runTask('AcrLoginFederated (post-job)', post);
