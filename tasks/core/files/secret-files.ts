/**
 * Files that hold tokens: owner-only (0600) in owner-only folders (0700) under
 * Agent.TempDirectory, written atomically so a reader never sees half a token, and removed by the
 * task's post-job step.
 */
import fs = require('node:fs');
import path = require('node:path');
import { TaskFailure } from '../http/failures';
import { randomHex } from './lazy-crypto';

/** Creates a fresh owner-only folder under the agent's temp directory. */
export function makeSecretDir(tempDirectory: string, prefix: string): string {
  if (!tempDirectory) {
    throw new TaskFailure({
      what: 'The agent did not set Agent.TempDirectory, where the task keeps its token files.',
      cause: 'The task is not running inside an Azure Pipelines job.',
      fix: 'Run the task in an Azure Pipelines job.',
      code: 'NO_TEMP_DIR',
    });
  }
  fs.mkdirSync(tempDirectory, { recursive: true });
  const dir = fs.mkdtempSync(path.join(tempDirectory, `${prefix}-`));
  fs.chmodSync(dir, 0o700);
  return dir;
}

/** Writes `content` to `file` with mode 0600: a temp file beside it, then rename. */
export function writeSecretFile(file: string, content: string | Buffer): void {
  writeFileAtomic(file, content, 0o600);
}

/**
 * Writes `content` to `file` atomically: a new temp file beside it (O_EXCL, 0600 while written),
 * flushed, given `mode` (and, when running as root, the owner given), then renamed over `file`.
 * A reader sees the old bytes or the new ones, never half of them.
 */
export function writeFileAtomic(file: string, content: string | Buffer, mode: number, owner?: { uid: number; gid: number }): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomHex(6)}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    try {
      if (typeof content === 'string') fs.writeSync(fd, content);
      else fs.writeSync(fd, content);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // The umask cannot widen 0600, but a pre-existing target's mode must not survive the rename either.
    fs.chmodSync(tmp, mode);
    if (owner && process.getuid?.() === 0) fs.chownSync(tmp, owner.uid, owner.gid);
    fs.renameSync(tmp, file);
  } catch (e) {
    // The caller gets the write's own error (EPERM when Windows refuses the rename), never the clean-up's.
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* held by a scanner for a moment (Windows): its folder under Agent.TempDirectory goes at the end of the job */
    }
    throw e;
  }
}

/** Removes a file or folder; a missing one is fine (the post step may run twice). */
export function removeSecretPath(p: string): boolean {
  if (!p || !fs.existsSync(p)) return false;
  fs.rmSync(p, { recursive: true, force: true });
  return true;
}

/**
 * Whether `dir` can be a folder a main step of this job made with makeSecretDir: a folder directly
 * inside Agent.TempDirectory. A post-job step reads the paths it removes from task variables, which
 * reach it as environment variables that a pipeline variable of the same name can set too; it
 * removes nothing outside the job's temp folder.
 */
export function isJobTempFolder(dir: string, tempDirectory: string | undefined): boolean {
  if (!tempDirectory || !path.isAbsolute(dir) || !path.isAbsolute(tempDirectory)) return false;
  const norm = (p: string) => (process.platform === 'win32' ? path.resolve(p).toLowerCase() : path.resolve(p));
  const resolved = norm(dir);
  return path.dirname(resolved) === norm(tempDirectory) && path.basename(resolved) !== '';
}
