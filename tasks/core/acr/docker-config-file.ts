/**
 * The user's docker config file as a shared file: found through symlinks (which stay symlinks),
 * read without ever blocking (a FIFO, a folder or an unreadable file fails at once, naming it), and
 * changed only under a lock file next to it, so that jobs of one agent account do not undo each
 * other's changes.
 */
import fs = require('node:fs');
import os = require('node:os');
import path = require('node:path');
import { TaskFailure } from '../http/failures';
import { log, safe } from '../agent/output';
import { randomHex } from '../files/lazy-crypto';

export interface ConfigTarget {
  /** The path as docker finds it ($DOCKER_CONFIG/config.json, else .docker/config.json in the home folder). */
  file: string;
  /** Where its bytes live: the symlink's final target, in its real folder. */
  real: string;
  symlink: boolean;
}

export interface ConfigBytes {
  exists: boolean;
  bytes?: Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
}

const FIX_PATH = 'Make it a regular file that the agent account can read and write, remove it, or use configScope: job, which writes a separate file for this job and does not touch yours.';

function unusable(t: ConfigTarget, what: string, cause: string, code: string): TaskFailure {
  const where = t.symlink ? `${t.file} (a symlink to ${t.real})` : t.file;
  return new TaskFailure({ what: `The docker config ${where} ${what}; the task leaves it as it is.`, cause, fix: FIX_PATH, code });
}

/** Follows `file` through symlinks, dangling ones included, to where docker would write. */
export function resolveConfigTarget(file: string): ConfigTarget {
  let p = path.resolve(file);
  let symlink = false;
  for (let hops = 0; ; hops++) {
    if (hops > 40) throw unusable({ file, real: p, symlink }, 'is a chain of more than 40 symlinks', 'A symlink loop.', 'DOCKER_CONFIG_NOT_A_FILE');
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') break;
      if (code === 'ENOTDIR') throw unusable({ file, real: p, symlink }, 'is under a path that is not a folder', 'A file stands where a folder of the path should be.', 'DOCKER_CONFIG_NOT_A_FILE');
      throw unusable({ file, real: p, symlink }, `cannot be examined (${code ?? (e as Error).message})`, 'The agent account may not list its folder.', 'DOCKER_CONFIG_UNREADABLE');
    }
    if (!st.isSymbolicLink()) break;
    symlink = true;
    p = path.resolve(path.dirname(p), fs.readlinkSync(p));
  }
  // The folder's real path, so that two paths to one file share one lock.
  try {
    p = path.join(fs.realpathSync(path.dirname(p)), path.basename(p));
  } catch {
    /* the folder does not exist yet */
  }
  return { file, real: p, symlink };
}

function kind(st: fs.Stats): string {
  if (st.isDirectory()) return 'is a folder, not a file';
  if (st.isFIFO()) return 'is a named pipe (FIFO), not a file';
  if (st.isSocket()) return 'is a socket, not a file';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'is a device, not a file';
  return 'is not a regular file';
}

/**
 * The file's bytes, or that it does not exist. Never opens anything but a regular file for
 * reading, and opens it non-blocking, so a FIFO swapped in meanwhile cannot make the task hang.
 */
export function readConfigBytes(t: ConfigTarget): ConfigBytes {
  let st: fs.Stats;
  try {
    st = fs.statSync(t.real);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { exists: false };
    throw unusable(t, `cannot be examined (${code ?? (e as Error).message})`, 'The agent account may not reach its folder.', 'DOCKER_CONFIG_UNREADABLE');
  }
  if (!st.isFile()) throw unusable(t, kind(st), 'Something other than docker created it there.', 'DOCKER_CONFIG_NOT_A_FILE');
  let fd: number;
  try {
    fd = fs.openSync(t.real, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { exists: false };
    throw unusable(t, `cannot be read by the agent account (${code ?? (e as Error).message})`, 'Its permissions or owner do not let the agent account read it (another user created it, or its mode is 000).', 'DOCKER_CONFIG_UNREADABLE');
  }
  try {
    const now = fs.fstatSync(fd);
    if (!now.isFile()) throw unusable(t, kind(now), 'Something other than docker created it there.', 'DOCKER_CONFIG_NOT_A_FILE');
    return { exists: true, bytes: fs.readFileSync(fd), mode: now.mode & 0o777, uid: now.uid, gid: now.gid };
  } finally {
    fs.closeSync(fd);
  }
}

// ---- The lock ----

export const LOCK_STALE_MS = 2 * 60 * 1000;

interface LockInfo {
  pid?: number;
  host?: string;
  time?: string;
  id?: string;
}

/** What stands at the lock's path: nothing, a lock file (of ours, or of unknown content), or something no task makes. */
type LockState =
  | { kind: 'gone' }
  | { kind: 'lock'; info?: LockInfo; mtimeMs: number }
  | { kind: 'foreign'; what: string };

/**
 * Looks at the lock without following a symlink and without ever blocking: only a regular file is
 * read (opened non-blocking, not through a symlink), so a FIFO, a folder or a symlink in its place
 * is described, never opened.
 */
function readLock(lockPath: string): LockState {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(lockPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'gone' };
    return { kind: 'foreign', what: `cannot be examined (${code ?? (e as Error).message})` };
  }
  if (st.isSymbolicLink()) return { kind: 'foreign', what: describeSymlink(lockPath) };
  if (!st.isFile()) return { kind: 'foreign', what: kind(st).replace(/, not a file$/, '') };
  let fd: number;
  try {
    fd = fs.openSync(lockPath, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOFOLLOW ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Released meanwhile; or replaced by a symlink (ELOOP) or something else, judged on the next look.
    if (code === 'ENOENT') return { kind: 'gone' };
    return { kind: 'lock', mtimeMs: st.mtimeMs };
  }
  try {
    const now = fs.fstatSync(fd);
    if (!now.isFile()) return { kind: 'foreign', what: kind(now).replace(/, not a file$/, '') };
    let info: LockInfo | undefined;
    try {
      const parsed = JSON.parse(fs.readFileSync(fd, 'utf8')) as unknown;
      if (parsed && typeof parsed === 'object') info = parsed as LockInfo;
    } catch {
      /* being written, or not ours: judged by its age alone */
    }
    return { kind: 'lock', info, mtimeMs: now.mtimeMs };
  } finally {
    fs.closeSync(fd);
  }
}

/** A symlink where the lock should be: where it leads, if anywhere. */
function describeSymlink(lockPath: string): string {
  let target = '?';
  try {
    target = fs.readlinkSync(lockPath);
  } catch {
    /* gone meanwhile */
  }
  try {
    fs.statSync(lockPath);
    return `a symlink to ${target}`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return `a symlink loop (to ${target})`;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `a symlink to ${target} that leads nowhere`;
    return `a symlink to ${target} (${code ?? (e as Error).message})`;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function staleReason(lock: { info?: LockInfo; mtimeMs: number }, staleMs: number): string | undefined {
  const since = lock.info?.time ? Date.parse(lock.info.time) : NaN;
  const age = Date.now() - (Number.isFinite(since) ? Math.min(since, lock.mtimeMs) : lock.mtimeMs);
  if (age > staleMs) return `it is ${Math.round(age / 1000)} s old, more than ${staleMs / 1000} s`;
  const pid = lock.info?.pid;
  if (typeof pid === 'number' && Number.isInteger(pid) && pid > 0 && lock.info?.host === os.hostname() && !processAlive(pid)) return `its process ${pid} on this host is gone`;
  return undefined;
}

function holder(lock: { info?: LockInfo } | undefined): string {
  const i = lock?.info;
  return i ? `process ${i.pid ?? '?'} on ${i.host ?? '?'}, since ${i.time ?? '?'}` : 'a holder that did not say who it is';
}

/**
 * Moves a stale lock aside and deletes it, unless another task replaced it meanwhile. Says whether
 * the path is now free to try again at once; when the rename was refused (`refused`: its code), the
 * caller waits, as for a live lock, rather than try again and again.
 */
function breakLock(lockPath: string, judged: { info?: LockInfo; mtimeMs: number }): { free: boolean; refused?: string } {
  const aside = `${lockPath}.stale-${randomHex(4)}`;
  try {
    fs.renameSync(lockPath, aside);
  } catch (e) {
    // Already gone (someone else broke or released it): free. Refused (EPERM, EBUSY, ...): not.
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { free: true } : { free: false, refused: code ?? (e as Error).message };
  }
  const moved = readLock(aside);
  const same = moved.kind === 'lock' && (judged.info?.id ? moved.info?.id === judged.info.id : moved.mtimeMs === judged.mtimeMs);
  if (!same) {
    // A fresh lock was taken between our look and the rename: put it back.
    try {
      fs.linkSync(aside, lockPath);
    } catch {
      /* a third task holds it now */
    }
  }
  fs.rmSync(aside, { force: true });
  return { free: true };
}

function cannotLock(lockPath: string, file: string, e: NodeJS.ErrnoException): TaskFailure {
  return new TaskFailure({
    what: `The task could not create the lock file ${lockPath} for the docker config ${file} (${e.code ?? e.message}).`,
    cause: 'The agent account may not create files in that folder.',
    fix: `Let the agent account write to ${path.dirname(lockPath)}, or use configScope: job, which writes a separate file for this job.`,
    code: 'DOCKER_CONFIG_LOCK',
  });
}

/** Something in the lock's place that no task makes, still there after the wait: not ours to remove. */
function notALock(t: ConfigTarget, lockPath: string, what: string, waitMs: number): TaskFailure {
  return new TaskFailure({
    what: `The docker config ${t.file} cannot be locked: ${lockPath} is ${what}, not a lock file this task makes; the task waited ${Math.round(waitMs / 1000)} s for it to go and leaves it as it is.`,
    cause: 'Something other than this task made it there (the task\'s lock is a regular file holding a process id, host name and time), or a tool of your own uses that name.',
    fix: `If no job is using the docker config, remove ${lockPath} (it is not the config itself), or use configScope: job, which writes a separate file for this job and does not touch yours.`,
    code: 'DOCKER_CONFIG_LOCK_NOT_OURS',
  });
}

export interface LockOptions {
  waitMs: number;
  staleMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `fn` holding `<real>.lock` (created with O_EXCL, holding pid, host, time and a random id).
 * Waits with short backoff up to `waitMs`; a lock older than `staleMs` or whose process on this
 * host is gone is broken, saying so. Anything else in the lock's place (a symlink, dangling or a
 * loop, a folder, a FIFO) is no lock a task makes: it is waited for like a live lock, never
 * opened or removed, and named with the fix after the wait. Every try that fails is followed by a
 * sleep, but for a few made at once when the lock was just released or broken: the wait never
 * spins. Always released, and only if it is still ours.
 */
export async function withConfigLock<T>(t: ConfigTarget, options: LockOptions, fn: () => T): Promise<T> {
  const lockPath = `${t.real}.lock`;
  const staleMs = options.staleMs ?? LOCK_STALE_MS;
  const id = randomHex(12);
  const started = Date.now();
  let delay = 20;
  let waited = false;
  // Tries made at once, without a sleep (after a lock was released or broken meanwhile): bounded,
  // so that no state of the file system can turn the loop into a busy one.
  let atOnce = 0;
  let refusedSaid = false;
  for (;;) {
    try {
      const fd = fs.openSync(lockPath, 'wx', 0o600);
      try {
        fs.writeSync(fd, JSON.stringify({ pid: process.pid, host: os.hostname(), time: new Date().toISOString(), id }));
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw cannotLock(lockPath, t.file, e as NodeJS.ErrnoException);
    }
    const lock = readLock(lockPath);
    if (lock.kind === 'gone' && atOnce++ < 3) continue;
    if (lock.kind === 'lock') {
      const stale = staleReason(lock, staleMs);
      if (stale) {
        const broken = breakLock(lockPath, lock);
        if (!broken.refused) log(safe`Broke the stale lock ${lockPath} (${holder(lock)}): ${stale}.`);
        else if (!refusedSaid) {
          refusedSaid = true;
          log(safe`The stale lock ${lockPath} (${holder(lock)}: ${stale}) could not be removed (${broken.refused}); waiting for it as for a live one.`);
        }
        if (broken.free && atOnce++ < 3) continue;
      }
    }
    const left = started + options.waitMs - Date.now();
    if (left <= 0) {
      if (lock.kind === 'foreign') throw notALock(t, lockPath, lock.what, options.waitMs);
      throw new TaskFailure({
        what: `The docker config ${t.file} is locked by another job (${lockPath}: ${holder(lock.kind === 'lock' ? lock : undefined)}); the task waited ${Math.round(options.waitMs / 1000)} s for it.`,
        cause: 'Another job of this agent account is changing the same file, or the process that holds the lock hangs.',
        fix: `Re-run the job. A lock older than ${staleMs / 1000} s, or whose process on this host is gone, is broken by itself; if no job is running, delete ${lockPath}. The pipeline variable WorkloadIdentity.DockerConfigLockWaitSeconds sets the wait; configScope: job needs no shared file at all.`,
        code: 'DOCKER_CONFIG_LOCKED',
      });
    }
    if (!waited) {
      waited = true;
      if (lock.kind === 'foreign') log(safe`Waiting for the lock ${lockPath}: it is ${lock.what}, not a lock file this task makes.`);
      else log(safe`Waiting for the lock ${lockPath} (${holder(lock.kind === 'lock' ? lock : undefined)}).`);
    }
    await sleep(Math.min(left, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 500);
    atOnce = 0;
  }
  try {
    return fn();
  } finally {
    const now = readLock(lockPath);
    if (now.kind === 'lock' && now.info?.id === id) fs.rmSync(lockPath, { force: true });
    else log(safe`The lock ${lockPath} was no longer this task's when it was done (it was taken as stale); left to its holder.`);
  }
}
