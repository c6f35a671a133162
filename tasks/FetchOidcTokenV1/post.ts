/** FetchOidcToken@1 post-job: stops the token refresher and removes the token file. Safe to run twice. */
import { removeTokenFile } from '../core/files/fresh-token-file';
import { runPostJob } from '../core/agent/task-runner';
import { debug, log } from '../core/agent/output';
import { TOKEN_FILE_STATE } from './state';

async function post(): Promise<void> {
  const lines = await removeTokenFile(TOKEN_FILE_STATE);
  if (!lines.length) debug('No token file to remove.');
  for (const l of lines) log(l);
}

void runPostJob('FetchOidcToken (post-job)', post);
