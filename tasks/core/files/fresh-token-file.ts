/**
 * A task's token file, optionally kept fresh by a refresher until the job ends (keepTokenFileFresh).
 * Shared by FetchOidcToken (AZURE_FEDERATED_TOKEN_FILE) and AwsAssumeRoleFederated
 * (AWS_WEB_IDENTITY_TOKEN_FILE).
 */
import path = require('node:path');
import { PipelineContext } from '../agent/pipeline-context';
import { oidcRequestUrl } from '../http/token-hosts';
import { makeSecretDir, removeSecretPath, writeSecretFile } from './secret-files';
import { REFRESHER_SCRIPT, startRefresher, stopRefresher } from './refresher-control';
import { formatRecord, parseRecord, RefresherRecord } from './refresher-ownership';
import { getTaskState, isOwnJobFolder, setTaskState } from '../agent/variables';
import { debug, log } from '../agent/output';

const HOURS = 3_600_000;

export interface TokenFile {
  dir: string;
  file: string;
  statusFile: string;
  refresher?: Required<RefresherRecord>;
}

/** Writes the idToken to an owner-only file; with keepFresh, starts its refresher. */
/** conn: the connection whose idToken the file holds; no id: the pipeline's own token. */
export async function writeTokenFile(ctx: PipelineContext, conn: { id?: string }, taskName: string, prefix: string, fileName: string, idToken: string, keepFresh: boolean, stateKey: string): Promise<TokenFile> {
  const dir = makeSecretDir(ctx.tempDirectory, prefix);
  setTaskState(`${stateKey}.Dir`, dir);
  const file = path.join(dir, fileName);
  const statusFile = `${file}.status.json`;
  writeSecretFile(file, idToken);
  const out: TokenFile = { dir, file, statusFile };
  if (keepFresh) {
    out.refresher = await startRefresher(ctx, `${taskName}-${conn.id ?? 'pipeline'}`, path.join(__dirname, REFRESHER_SCRIPT), {
      oidcUrl: oidcRequestUrl(ctx, conn.id),
      jobAccessToken: ctx.jobAccessToken(),
      tokenFile: file,
      statusFile,
      policy: ctx.policy,
      proxy: ctx.proxy ? { url: ctx.proxy.url, username: ctx.proxy.username, password: ctx.proxy.password, bypass: ctx.proxy.bypass.map((r) => r.source) } : undefined,
      tls: ctx.tls,
      maxLifetimeMs: 48 * HOURS,
      maxFailures: 5,
      minDelayMs: 5_000,
    }, (line) => log(line));
    setTaskState(`${stateKey}.Refresher`, formatRecord(out.refresher));
    debug(`Started the token refresher (pid ${out.refresher.pid}); its status is in ${statusFile}.`);
  }
  return out;
}

/** The post-job half: stops the refresher, removes the file and its status. Safe to run twice. */
export async function removeTokenFile(stateKey: string): Promise<string[]> {
  const lines: string[] = [];
  // RefresherPid: the plain pid older versions kept; it cannot be verified, so it is never signalled.
  const record = parseRecord(getTaskState(`${stateKey}.Refresher`) ?? getTaskState(`${stateKey}.RefresherPid`));
  if (record) {
    const outcome = await stopRefresher(record);
    lines.push(outcome.kind === 'stopped' ? `Stopped the token refresher (pid ${record.pid}).` : outcome.kind === 'gone' ? `The token refresher (pid ${record.pid}) had already stopped.` : outcome.line);
  }
  const dir = getTaskState(`${stateKey}.Dir`);
  if (dir && isOwnJobFolder(dir, `${stateKey}.Dir`)) lines.push(removeSecretPath(dir) ? `Removed the token file folder ${dir}.` : `The token file folder ${dir} was already gone.`);
  return lines;
}
