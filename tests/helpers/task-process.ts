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
  /** Commands the agent would read from stderr (it parses both streams). */
  stderrCommands: VsoCommand[];
  /** Variables set with task.setvariable, by name. */
  variables: Record<string, { value: string; secret: boolean; output: boolean }>;
  taskVariables: Record<string, string>;
  /** The run's Agent.TempDirectory, which the agent gives its post-job step too. */
  agentTempDirectory?: string;
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

/** The agent's lines: it splits output on \r\n, \n and a bare \r. */
export function agentLines(text: string): string[] {
  return text.split(/\r\n|\n|\r/);
}

/**
 * The agent matches `##vso[` with .NET's culture-sensitive IndexOf, which (with ICU) skips
 * default-ignorable characters: model that by removing them before looking. Stricter than the
 * agent in one respect: the prefix is found in any case.
 */
const IGNORABLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}\u0000-\u0008\u000E-\u001F\u007F-\u009F]/gu;
export function visibleToAgent(line: string): string {
  return line.replace(IGNORABLE, '');
}

/**
 * Parses one line exactly as the agent's Command.TryParse does: the first `##vso[` anywhere in the
 * line, the first `]` after it ends the command info, `area.event` (two non-empty parts), then
 * properties split on `;` and each on its first `=`, and the data after the `]`.
 */
export function parseCommandLine(raw: string): VsoCommand | undefined {
  const line = visibleToAgent(raw);
  const prefix = line.toLowerCase().indexOf('##vso[');
  if (prefix < 0) return undefined;
  const rb = line.indexOf(']', prefix);
  if (rb < 0) return undefined;
  const info = line.slice(prefix + 6, rb);
  const space = info.indexOf(' ');
  const name = space < 0 ? info : info.slice(0, space);
  const parts = name.split('.').filter(Boolean);
  if (parts.length !== 2) return undefined;
  const properties: Record<string, string> = {};
  if (space > 0) {
    for (const pair of info.slice(space + 1).split(';').filter(Boolean)) {
      const i = pair.indexOf('=');
      if (i > 0 && i < pair.length - 1) properties[pair.slice(0, i)] = unescapeValue(pair.slice(i + 1));
    }
  }
  return { name: parts.join('.').toLowerCase(), properties, value: unescapeValue(line.slice(rb + 1)), line: raw };
}

export function parseCommands(output: string): VsoCommand[] {
  const out: VsoCommand[] = [];
  for (const line of agentLines(output)) {
    const c = parseCommandLine(line);
    if (c) out.push(c);
  }
  return out;
}

/** Lines the log viewer would read as a formatting command (`##[group]`, `##[error]`, ...). */
export function formattingLines(output: string): string[] {
  return agentLines(output).filter((l) => /^##\[/i.test(visibleToAgent(l).trimStart()));
}

export interface RunOptions {
  env: Record<string, string>;
  timeoutMs?: number;
  /** The Node binary; the agent's Node20_1 or Node24 handler. */
  node?: string;
  /** Run as another user (the tests run as root, which every file permission lets through). */
  user?: { uid: number; gid: number };
}

export function runTaskProcess(task: string, entry: string, options: RunOptions): Promise<TaskRun> {
  const script = path.join(DIST, task, entry);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env };
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(options.node ?? process.execPath, [script], { env, cwd: path.dirname(script), stdio: ['ignore', 'pipe', 'pipe'], ...(options.user ?? {}) });
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
      resolve(taskRunOf(code, stdout, stderr, Date.now() - started));
    });
  });
}

/** A finished run as the agent reads it: its ##vso commands from both streams, variables, result, log. */
export function taskRunOf(code: number | null, stdout: string, stderr: string, durationMs: number): TaskRun {
  // The agent reads commands from both streams.
  const commands = parseCommands(stdout);
  const stderrCommands = parseCommands(stderr);
  const variables: TaskRun['variables'] = {};
  const taskVariables: Record<string, string> = {};
  for (const c of commands) {
    if (c.name === 'task.setvariable') variables[c.properties.variable] = { value: c.value, secret: c.properties.issecret === 'true', output: c.properties.isOutput === 'true' };
    if (c.name === 'task.settaskvariable') taskVariables[c.properties.variable] = c.value;
  }
  const complete = commands.filter((c) => c.name === 'task.complete').pop();
  return {
    code,
    stdout,
    stderr,
    durationMs,
    commands,
    stderrCommands,
    variables,
    taskVariables,
    secrets: commands.filter((c) => c.name === 'task.setsecret').map((c) => c.value),
    result: complete?.properties.result,
    errors: commands.filter((c) => c.name === 'task.issue' && c.properties.type === 'error').map((c) => c.value),
    warnings: commands.filter((c) => c.name === 'task.issue' && c.properties.type === 'warning').map((c) => c.value),
    log: agentLines(stdout).filter((l) => !parseCommandLine(l) && !l.startsWith('##[debug]')).join('\n'),
  };
}

/**
 * Fails if any secret appears in the output anywhere but a setsecret command or the value of a
 * secret setvariable command. The agent masks those; everything else would reach the log.
 */
export function findLeaks(run: Pick<TaskRun, 'stdout' | 'stderr'>, secrets: string[]): string[] {
  const leaks: string[] = [];
  // A secret task variable (a main step's state for its post-job step, the agent keeps it masked) is allowed as a secret variable is.
  const allowed = (line: string) => /^##vso\[task\.setsecret\]/.test(line) || /^##vso\[task\.set(task)?variable [^\]]*issecret=true[^\]]*\]/.test(line);
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
