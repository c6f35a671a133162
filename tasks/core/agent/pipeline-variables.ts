/** Pipeline variables, read through the step's agent channel (task-lib in a main step). */
import { agent } from './agent-channel';
import { TaskFailure } from '../http/failures';
import { DEFAULT_POLICY, HttpPolicy } from '../http/policy';

export function variable(name: string): string | undefined {
  const v = agent().getVariable(name);
  return v && v.trim() ? v.trim() : undefined;
}

/** A positive number from a pipeline variable, with the variable named when it is not one. */
export function numberVariable(name: string, fallback: number, min: number, max: number): number {
  const raw = variable(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new TaskFailure({
      what: `The pipeline variable ${name} is '${raw}', which is not a number from ${min} to ${max}.`,
      cause: 'The variable is set in the pipeline or a variable group.',
      fix: `Set ${name} to a number from ${min} to ${max}, or remove it to use the default (${fallback}).`,
      code: 'INPUT',
    });
  }
  return n;
}

/** The HTTP policy, with the timeout and retries a pipeline may set (README: Settings every task honours). */
export function httpPolicy(): HttpPolicy {
  return {
    ...DEFAULT_POLICY,
    timeoutMs: numberVariable('WorkloadIdentity.HttpTimeoutSeconds', DEFAULT_POLICY.timeoutMs / 1000, 1, 600) * 1000,
    retries: numberVariable('WorkloadIdentity.HttpRetries', DEFAULT_POLICY.retries, 0, 10),
  };
}
