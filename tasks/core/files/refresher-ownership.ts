/**
 * Whether a recorded pid is still this task's token refresher. A pid file or task state can be
 * stale (the refresher ended and the pid was reused) or planted; signalling it blindly could kill
 * an unrelated process. The refresher proves itself with the random instance id it was started
 * with, which it echoes in its status file; on Linux its command line must also name its script.
 * On Windows (no /proc) the status file's random id is the whole proof.
 */
import fs = require('node:fs');
import path = require('node:path');

export const REFRESHER_SCRIPT = 'refresher.js';

/** What a task keeps about the refresher it started, in the registry file and in task state. */
export interface RefresherRecord {
  pid: number;
  /** Missing in records written before refreshers had one: such a pid cannot be verified. */
  instanceId?: string;
  statusFile?: string;
}

export function formatRecord(r: Required<RefresherRecord>): string {
  return JSON.stringify({ pid: r.pid, instanceId: r.instanceId, statusFile: r.statusFile });
}

/** Reads a record: the JSON one, or the plain pid of older versions; undefined if neither. */
export function parseRecord(text: string | undefined): RefresherRecord | undefined {
  const t = (text ?? '').trim();
  if (/^\d+$/.test(t)) return Number(t) > 0 ? { pid: Number(t) } : undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0) return undefined;
  return {
    pid: o.pid,
    instanceId: typeof o.instanceId === 'string' && o.instanceId ? o.instanceId : undefined,
    statusFile: typeof o.statusFile === 'string' && o.statusFile ? o.statusFile : undefined,
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The process's arguments from /proc, or undefined where they cannot be read (Windows, macOS,
 * /proc mounted with hidepid): there the status file is the whole check. Only on Linux: elsewhere a
 * path `/proc/<pid>` names something else (under Wine, the Linux process with that number, which
 * is not the Windows process with that pid).
 */
function commandLine(pid: number): string[] | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

export type Ownership =
  | { kind: 'ours' }
  /** Our refresher is gone (or says it has stopped): nothing to signal. */
  | { kind: 'gone' }
  /** A live process that cannot be shown to be ours: never signal it. */
  | { kind: 'not-ours'; reason: string };

/** Decides, without signalling anything, whether `record.pid` is the refresher that record describes. */
export function checkOwnership(record: RefresherRecord): Ownership {
  if (!isAlive(record.pid)) return { kind: 'gone' };
  if (!record.instanceId || !record.statusFile) return { kind: 'not-ours', reason: 'no instance id was recorded with it (an older version of the task wrote it), so it cannot be verified' };
  let status: { pid?: unknown; instanceId?: unknown; state?: unknown };
  try {
    status = JSON.parse(fs.readFileSync(record.statusFile, 'utf8'));
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    return { kind: 'not-ours', reason: `its status file ${record.statusFile} ${missing ? 'does not exist' : 'cannot be read as JSON'}` };
  }
  if (status?.pid !== record.pid) return { kind: 'not-ours', reason: `its status file names pid ${String(status?.pid)}` };
  if (status.instanceId !== record.instanceId) return { kind: 'not-ours', reason: 'its status file names another refresher instance' };
  // A refresher writes its final state just before it exits; the pid may already be someone else's.
  if (status.state !== 'running') return { kind: 'gone' };
  const args = commandLine(record.pid);
  if (args && !args.some((a) => path.basename(a) === REFRESHER_SCRIPT)) return { kind: 'not-ours', reason: `its command line does not run ${REFRESHER_SCRIPT}` };
  return { kind: 'ours' };
}

/** The one log line for a pid left alone. */
export function leftAloneLine(pid: number, reason: string): string {
  return `Left pid ${pid} alone: it is not this task's token refresher (stale or planted pid file: ${reason}).`;
}
