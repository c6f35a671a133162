/** FetchOidcToken@1 post-job: removes the token file the main step wrote. Safe to run twice. */
import * as tl from 'azure-pipelines-task-lib/task';
import { removeSecretPath } from '../core/secret-files';
import { getTaskState } from '../core/variables';
import { runTask } from '../core/task-runner';
import { TOKEN_DIR_STATE } from './state';

async function post(): Promise<void> {
  const dir = getTaskState(TOKEN_DIR_STATE);
  if (!dir) {
    tl.debug('No token file to remove.');
    return;
  }
  console.log(removeSecretPath(dir) ? `Removed the token file folder ${dir}.` : `The token file folder ${dir} was already gone.`);
}

void runTask('FetchOidcToken (post-job)', post);
