/** AwsAssumeRoleFederated@1 post-job: removes the web identity token file. Safe to run twice. */
import * as tl from 'azure-pipelines-task-lib/task';
import { removeSecretPath } from '../core/secret-files';
import { getTaskState } from '../core/variables';
import { runTask } from '../core/task-runner';
import { TOKEN_DIR_STATE } from './state';

async function post(): Promise<void> {
  const dir = getTaskState(TOKEN_DIR_STATE);
  if (!dir) return tl.debug('No web identity token file to remove.');
  console.log(removeSecretPath(dir) ? `Removed the web identity token file folder ${dir}.` : `The web identity token file folder ${dir} was already gone.`);
}

void runTask('AwsAssumeRoleFederated (post-job)', post);
