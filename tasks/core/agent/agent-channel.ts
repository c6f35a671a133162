/**
 * How a step talks to the agent: the logging commands it writes and the variables it reads back.
 *
 * A main step loads azure-pipelines-task-lib anyway (inputs, connections, the proxy and CA) and goes
 * through it. A post-job step only reads its task variables (and, to revoke a Vault token, the
 * agent's proxy and CA variables: agent-settings.ts) and writes a few commands, masks among them;
 * loading all of task-lib for that (its vault with node:crypto, semver, 180 KiB of code) doubled
 * the step's start-up. So a post-job step formats the same commands with task-lib's own `TaskCommand` and reads
 * its variables where task-lib reads them, in the environment the agent sets for the step, with
 * task-lib's rules: `VSTS_TASKVARIABLE_<NAME>` for task variables, `<NAME>` for public pipeline
 * variables (`.` and spaces as `_`, upper case; a secret one from `SECRET_<NAME>`), task variables
 * trimmed, debug lines as task-lib writes them.
 * A post-job step starts no process, so the environment it leaves is nobody's to inherit.
 */
import os = require('node:os');
import { TaskCommand } from 'azure-pipelines-task-lib/taskcommand';

export type StepResult = 'Succeeded' | 'SucceededWithIssues' | 'Failed';

export interface AgentChannel {
  debug(message: string): void;
  warning(message: string): void;
  /** task-lib's setResult: a debug line, an error or warning issue with the message, task.complete. */
  setResult(result: StepResult, message: string): void;
  /** `secret`: the value is not written to the debug log (task-lib writes every value there). */
  getTaskVariable(name: string, secret?: boolean): string | undefined;
  /** A pipeline variable (a secret one from where the agent put it). */
  getVariable(name: string): string | undefined;
  /** task-lib's setSecret: task.setsecret, so the agent masks the value in every later line. */
  setSecret(value: string): void;
}

type TaskLib = typeof import('azure-pipelines-task-lib/task');

/** Required on first use, so that a step on the post-job channel never loads it. */
export function taskLib(): TaskLib {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('azure-pipelines-task-lib/task') as TaskLib;
}

const taskLibChannel: AgentChannel = {
  debug: (m) => taskLib().debug(m),
  warning: (m) => taskLib().warning(m),
  setResult: (r, m) => taskLib().setResult(taskLib().TaskResult[r], m),
  getTaskVariable: (n) => taskLib().getTaskVariable(n),
  getVariable: (n) => taskLib().getVariable(n),
  setSecret: (v) => taskLib().setSecret(v),
};

/**
 * A job variable later steps should not change: task.setvariable with isreadonly=true, which
 * task-lib's setVariable cannot write. The agent refuses a later task.setvariable of it where the
 * organisation turned on agent.readOnlyVariables, and warns elsewhere. Main steps only.
 */
export function setReadOnlyJobVariable(name: string, value: string): void {
  taskLib().command('task.setvariable', { variable: name, isOutput: 'false', issecret: 'false', isreadonly: 'true' }, value);
}

/** task-lib's _getVariableKey: how the agent names a variable in the environment. */
export function environmentKey(name: string): string {
  return name.replace(/\./g, '_').replace(/ /g, '_').toUpperCase();
}

function postJobChannel(): AgentChannel {
  // task-lib keeps the agent's correlation id for its issues and removes it from the environment.
  const correlationId = process.env.COMMAND_CORRELATION_ID ?? '';
  delete process.env.COMMAND_CORRELATION_ID;
  const write = (command: string, properties: Record<string, string> | null, message: string) =>
    process.stdout.write(new TaskCommand(command, properties, message).toString() + os.EOL);
  const read = (key: string) => process.env[key] || undefined;
  // task-lib's debug switch: every debug line is written unless the agent asks to skip them outside debug mode.
  const skipDebug = read('DISTRIBUTEDTASK_TASKS_NODE_SKIPDEBUGLOGSWHENDEBUGMODEOFF')?.toLowerCase() === 'true'
    && read('SYSTEM_DEBUG')?.toLowerCase() !== 'true';
  const debug = (m: string) => { if (!skipDebug) write('task.debug', null, m); };
  const issue = (type: 'error' | 'warning', m: string) => write('task.issue', { type, source: 'TaskInternal', correlationId }, m);
  // task-lib's record of which variables are secret: SECRET_<NAME> in the environment (older agents),
  // then the agent's lists of public and of secret names; a secret's value is read from SECRET_<NAME>.
  const names = (list: string): string[] => {
    try {
      const v = JSON.parse(process.env[list] || '[]') as unknown;
      return Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string') : [];
    } catch {
      return [];
    }
  };
  const secret = new Map<string, boolean>();
  for (const k of Object.keys(process.env)) if (k.startsWith('SECRET_') && k.length > 7) secret.set(environmentKey(k.slice(7)), true);
  for (const n of names('VSTS_PUBLIC_VARIABLES')) secret.set(environmentKey(n), false);
  for (const n of names('VSTS_SECRET_VARIABLES')) secret.set(environmentKey(n), true);
  return {
    debug,
    warning: (m) => issue('warning', m),
    setResult: (r, m) => {
      debug(`task result: ${r}`);
      if (m && r === 'Failed') issue('error', m);
      else if (m && r === 'SucceededWithIssues') issue('warning', m);
      write('task.complete', { result: r }, m);
    },
    getTaskVariable: (n, secret) => {
      const v = read(`VSTS_TASKVARIABLE_${environmentKey(n)}`)?.trim();
      debug(`task variable: ${n}=${secret && v ? '***' : v}`);
      return v;
    },
    getVariable: (n) => {
      const key = environmentKey(n);
      const v = read(secret.get(key) ? `SECRET_${key}` : key);
      debug(`${n}=${v}`);
      return v;
    },
    setSecret: (v) => {
      if (!v) return;
      // task-lib's words (LIB_MultilineSecret); the agent masks line by line.
      if (/\r|\n/.test(v) && `${process.env.SYSTEM_UNSAFEALLOWMULTILINESECRET}`.toUpperCase() !== 'TRUE') throw new Error('Secrets cannot contain multiple lines');
      write('task.setsecret', {}, v);
    },
  };
}

let channel: AgentChannel = taskLibChannel;

export function agent(): AgentChannel {
  return channel;
}

/** For a post-job step's entry, before anything is logged or read. */
export function usePostJobChannel(): void {
  channel = postJobChannel();
}
