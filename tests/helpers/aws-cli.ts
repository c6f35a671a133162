/**
 * A later pipeline step that runs the real AWS CLI: Debian's `awscli` package (aws-cli v2), at
 * /usr/bin/aws. Another `aws` may come first on PATH (a pip-installed v1 behind pyenv shims), so
 * the path is fixed. The step's environment is what the agent gives a script step by default: the
 * public variables the task set, never its secret ones (the agent maps those only when the step's
 * `env:` names them).
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TaskRun } from './task-process';

export const DEBIAN_AWS_CLI = '/usr/bin/aws';

/** Why Debian's AWS CLI v2 cannot be used here, or undefined when it can. */
export function awsCliMissing(): string | undefined {
  if (!fs.existsSync(DEBIAN_AWS_CLI)) return `${DEBIAN_AWS_CLI} is absent (Debian package awscli: sudo apt-get install -y awscli)`;
  const v = spawnSync(DEBIAN_AWS_CLI, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: os.tmpdir() }, timeout: 60_000 });
  const version = `${v.stdout ?? ''}${v.stderr ?? ''}`.trim();
  if (v.status !== 0 || !/^aws-cli\/2\./.test(version)) return `${DEBIAN_AWS_CLI} is not the AWS CLI v2 (${version || `exit ${v.status}`})`;
  return undefined;
}

/** The agent's name for a variable in a process environment: upper case, '.' and ' ' as '_'. */
export function environmentName(variable: string): string {
  return variable.replace(/[. ]/g, '_').toUpperCase();
}

/**
 * The variables a run set that the agent puts in a later script step's environment by itself:
 * every one not set with issecret=true; an output variable under `<step name>.<name>`.
 */
export function mappedByDefault(run: Pick<TaskRun, 'variables'>, stepName = 'assume'): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, v] of Object.entries(run.variables)) {
    if (v.secret) continue;
    env[environmentName(v.output ? `${stepName}.${name}` : name)] = v.value;
  }
  return env;
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs /usr/bin/aws with only `env` and a PATH, in a HOME of its own (no ~/.aws of this machine, no
 * credentials cached by an earlier call).
 */
export function runAwsCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-aws-home-'));
  return new Promise((resolve) => {
    execFile(DEBIAN_AWS_CLI, args, { env: { PATH: '/usr/bin:/bin', HOME: home, ...env }, timeout: 90_000 }, (err, stdout, stderr) => {
      fs.rmSync(home, { recursive: true, force: true });
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
