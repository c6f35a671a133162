/** FetchOidcToken@1 post-job: stops the token refresher and removes the token file. Safe to run twice. */
import * as tl from 'azure-pipelines-task-lib/task';
import { removeTokenFile } from '../core/fresh-token-file';
import { runTask } from '../core/task-runner';
import { TOKEN_FILE_STATE } from './state';

async function post(): Promise<void> {
  const lines = await removeTokenFile(TOKEN_FILE_STATE);
  if (!lines.length) tl.debug('No token file to remove.');
  for (const l of lines) console.log(l);
}

void runTask('FetchOidcToken (post-job)', post);
