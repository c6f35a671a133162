/**
 * Runs a bundled task exactly as the agent does: a child process of the build output with
 * INPUT_*, ENDPOINT_*, SYSTEM_* variables, and reads the ##vso commands it prints.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const DIST = path.resolve(__dirname, '..', '..', '..', 'dist', 'tasks');

export interface VsoCommand {
  name: string;
  properties: Record<string, string>;
  value: string;
  line: string;
}

export interface TaskRun {
  code: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  commands: VsoCommand[];
  /** Variables set with task.setvariable, by name. */
  variables: Record<string, { value: string; secret: boolean; output: boolean }>;
  taskVariables: Record<string, string>;
  secrets: string[];
  result?: string;
  errors: string[];
  warnings: string[];
  /** The task's own log lines: everything that is not a ##vso command or a debug line. */
  log: string;
}

function unescapeValue(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%5D/g, ']').replace(/%3B/g, ';').replace(/%AZP25/g, '%');
}

function unescapeProperty(s: string): string {
  return unescapeValue(s);
}

export function parseCommands(stdout: string): VsoCommand[] {
  const out: VsoCommand[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^##vso\[([\w.]+)(?: ([^\]]*))?\](.*)$/.exec(line);
    if (!m) continue;
    const properties: Record<string, string> = {};
    for (const pair of (m[2] ?? '').split(';')) {
      const i = pair.indexOf('=');
      if (i > 0) properties[pair.slice(0, i).trim()] = unescapeProperty(pair.slice(i + 1));
    }
    out.push({ name: m[1], properties, value: unescapeValue(m[3]), line });
  }
  return out;
}

export interface RunOptions {
  env: Record<string, string>;
  timeoutMs?: number;
  /** The Node binary; the agent's Node20_1 or Node24 handler. */
  node?: string;
}

export function runTaskProcess(task: string, entry: string, options: RunOptions): Promise<TaskRun> {
  const script = path.join(DIST, task, entry);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env };
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(options.node ?? process.execPath, [script], { env, cwd: path.dirname(script), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${task}/${entry} did not finish within ${options.timeoutMs ?? 60000} ms; output so far:\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const commands = parseCommands(stdout);
      const variables: TaskRun['variables'] = {};
      const taskVariables: Record<string, string> = {};
      for (const c of commands) {
        if (c.name === 'task.setvariable') variables[c.properties.variable] = { value: c.value, secret: c.properties.issecret === 'true', output: c.properties.isOutput === 'true' };
        if (c.name === 'task.settaskvariable') taskVariables[c.properties.variable] = c.value;
      }
      const complete = commands.filter((c) => c.name === 'task.complete').pop();
      resolve({
        code,
        stdout,
        stderr,
        durationMs: Date.now() - started,
        commands,
        variables,
        taskVariables,
        secrets: commands.filter((c) => c.name === 'task.setsecret').map((c) => c.value),
        result: complete?.properties.result,
        errors: commands.filter((c) => c.name === 'task.issue' && c.properties.type === 'error').map((c) => c.value),
        warnings: commands.filter((c) => c.name === 'task.issue' && c.properties.type === 'warning').map((c) => c.value),
        log: stdout.split(/\r?\n/).filter((l) => !l.startsWith('##vso[') && !l.startsWith('##[debug]')).join('\n'),
      });
    });
  });
}

/**
 * Fails if any secret appears in the output anywhere but a setsecret command or the value of a
 * secret setvariable command. The agent masks those; everything else would reach the log.
 */
export function findLeaks(run: Pick<TaskRun, 'stdout' | 'stderr'>, secrets: string[]): string[] {
  const leaks: string[] = [];
  const allowed = (line: string) => /^##vso\[task\.setsecret\]/.test(line) || /^##vso\[task\.setvariable [^\]]*issecret=true[^\]]*\]/.test(line);
  for (const [stream, text] of [['stdout', run.stdout], ['stderr', run.stderr]] as const) {
    text.split(/\r?\n/).forEach((line, i) => {
      if (stream === 'stdout' && allowed(line)) {
        // Allowed only as the whole value, not inside the command's properties.
        const value = line.slice(line.indexOf(']') + 1);
        const props = line.slice(0, line.indexOf(']'));
        for (const s of secrets) if (s && props.includes(s)) leaks.push(`${stream}:${i + 1} (inside command properties)`);
        void value;
        return;
      }
      for (const s of secrets) {
        if (s && s.length >= 8 && line.includes(s)) leaks.push(`${stream}:${i + 1}: ${line.replace(s, '<SECRET>').slice(0, 160)}`);
      }
    });
  }
  return leaks;
}
