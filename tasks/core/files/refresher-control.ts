/**
 * Starting and stopping a task's token refresher: one per task and connection in a job (a re-run
 * replaces it), its record kept in a registry under Agent.TempDirectory. No pid is signalled
 * before refresher-ownership has shown it to be the refresher that was started.
 */
import type { ChildProcess } from 'node:child_process';
import fs = require('node:fs');
import path = require('node:path');
import { PipelineContext } from '../agent/pipeline-context';
import { RefresherConfig } from './token-refresher';
import { writeSecretFile } from './secret-files';
import { randomHex } from './lazy-crypto';
import { checkOwnership, formatRecord, isAlive, leftAloneLine, parseRecord, RefresherRecord } from './refresher-ownership';

export { REFRESHER_SCRIPT } from './refresher-ownership';

/** How long a starting refresher may take to write its first status (Node's start-up on a busy agent). */
const ANNOUNCE_MS = 10_000;

function registryFile(ctx: Pick<PipelineContext, 'tempDirectory'>, key: string): string {
  const dir = path.join(ctx.tempDirectory, 'workload-identity-refreshers');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return path.join(dir, `${key.replace(/[^\w.-]+/g, '_')}.pid`);
}

export type StopOutcome = { kind: 'stopped' } | { kind: 'gone' } | { kind: 'not-ours'; line: string };

/**
 * Stops the refresher a record describes: SIGTERM, then SIGKILL if it is still there after
 * `graceMs`. A pid that cannot be shown to be that refresher is never signalled. Whether it stopped
 * is judged by its process being gone, not by its status file: on Windows a signal ends a process
 * without running its handlers, so it cannot write 'stopped' itself; then this does it for it.
 */
export async function stopRefresher(record: RefresherRecord, graceMs = 2000): Promise<StopOutcome> {
  const owner = checkOwnership(record);
  if (owner.kind === 'gone') return { kind: 'gone' };
  if (owner.kind === 'not-ours') return { kind: 'not-ours', line: leftAloneLine(record.pid, owner.reason) };
  const pid = record.pid;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return { kind: 'gone' };
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) {
      markStopped(record);
      return { kind: 'stopped' };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Checked again: in the grace period the refresher may have exited and its pid been reused.
  if (checkOwnership(record).kind !== 'ours') return { kind: 'stopped' };
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  for (let i = 0; i < 20 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  if (!isAlive(pid)) markStopped(record);
  return { kind: 'stopped' };
}

/**
 * After its process is gone: a status file that still says 'running' for this refresher (it was
 * ended without running its handlers: Windows, or SIGKILL) is set to 'stopped', so that no later
 * check takes a reused pid for it.
 */
function markStopped(record: RefresherRecord): void {
  if (!record.statusFile || !record.instanceId) return;
  try {
    const status = JSON.parse(fs.readFileSync(record.statusFile, 'utf8')) as Record<string, unknown>;
    if (status.state !== 'running' || status.instanceId !== record.instanceId || status.pid !== record.pid) return;
    const updatedAt = new Date().toISOString();
    writeSecretFile(record.statusFile, JSON.stringify({ ...status, state: 'stopped', reason: 'stopped by the post-job step (ended before it could say so)', nextRefreshAt: undefined, updatedAt }, null, 2) + '\n');
  } catch {
    /* no status file (its folder was removed), or it cannot be rewritten now: the process is gone either way */
  }
}

/** Resolves once the refresher has written its first status (so its record can be verified), has exited, or after ANNOUNCE_MS. */
async function announced(child: ChildProcess, statusFile: string, instanceId: string): Promise<void> {
  let exited = false;
  const onExit = () => (exited = true);
  child.once('exit', onExit);
  try {
    const deadline = Date.now() + ANNOUNCE_MS;
    while (!exited && Date.now() < deadline) {
      try {
        if (JSON.parse(fs.readFileSync(statusFile, 'utf8')).instanceId === instanceId) return;
      } catch {
        /* not written yet */
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    child.off('exit', onExit);
  }
}

/**
 * Starts the refresher detached (it outlives this step), handing it its configuration, job token
 * and instance id included, on stdin: never on a command line, in the environment or in a file.
 * A previous refresher of the same task and connection is stopped first, if it proves to be one.
 * `log` gets the line for a recorded pid left alone. Returns the new refresher's record.
 */
export async function startRefresher(ctx: Pick<PipelineContext, 'tempDirectory'>, key: string, script: string, config: Omit<RefresherConfig, 'instanceId'>, log: (line: string) => void): Promise<Required<RefresherRecord>> {
  const registry = registryFile(ctx, key);
  let previous: string | undefined;
  try {
    previous = fs.readFileSync(registry, 'utf8');
  } catch {
    previous = undefined;
  }
  const old = parseRecord(previous);
  if (old) {
    const outcome = await stopRefresher(old);
    if (outcome.kind === 'not-ours') log(outcome.line);
  }
  const instanceId = randomHex(16);
  // Detached (it outlives this step) and, on Windows, without a console window of its own; its
  // stdout and stderr go nowhere, so it holds no handle of the agent's.
  // Required here: only a run that keeps a token file fresh starts a process (node:child_process is ~4 ms to load).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  const child = spawn(process.execPath, [script], { detached: true, windowsHide: true, stdio: ['pipe', 'ignore', 'ignore'], cwd: path.dirname(script), env: { ...process.env } });
  child.stdin!.end(JSON.stringify({ ...config, instanceId } satisfies RefresherConfig));
  child.unref();
  if (!child.pid) throw new Error('the token refresher did not start');
  const record = { pid: child.pid, instanceId, statusFile: config.statusFile };
  // Atomic and 0600 even over a planted file, whose mode a plain write would keep.
  writeSecretFile(registry, formatRecord(record));
  await announced(child, config.statusFile, instanceId);
  return record;
}
