/**
 * Starting and stopping a task's token refresher: one per task and connection in a job (a re-run
 * replaces it), its pid kept in a registry under Agent.TempDirectory.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PipelineContext } from './pipeline-context';
import { RefresherConfig } from './token-refresher';

export const REFRESHER_SCRIPT = 'refresher.js';

function registryFile(ctx: PipelineContext, key: string): string {
  const dir = path.join(ctx.tempDirectory, 'workload-identity-refreshers');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return path.join(dir, `${key.replace(/[^\w.-]+/g, '_')}.pid`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Stops a refresher: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
export async function stopRefresher(pid: number, graceMs = 2000): Promise<boolean> {
  if (!pid || !isAlive(pid)) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  return true;
}

/**
 * Starts the refresher detached (it outlives this step), handing it its configuration, job token
 * included, on stdin: never on a command line, never in a file. Returns its pid.
 */
export async function startRefresher(ctx: PipelineContext, key: string, script: string, config: RefresherConfig): Promise<number> {
  const registry = registryFile(ctx, key);
  if (fs.existsSync(registry)) {
    const old = Number(fs.readFileSync(registry, 'utf8'));
    if (old) await stopRefresher(old);
  }
  const child = spawn(process.execPath, [script], { detached: true, stdio: ['pipe', 'ignore', 'ignore'], cwd: path.dirname(script), env: { ...process.env } });
  child.stdin!.end(JSON.stringify(config));
  child.unref();
  if (!child.pid) throw new Error('the token refresher did not start');
  fs.writeFileSync(registry, String(child.pid), { mode: 0o600 });
  return child.pid;
}
