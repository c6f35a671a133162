/**
 * How values leave the task: secrets are masked before anything prints them and set as secret
 * variables; outputs are step outputs (isOutput) so later jobs can read them too.
 */
import { agent, taskLib } from './agent-channel';
import { isJobTempFolder } from '../files/secret-files';
import { safe, warn } from './output';
import { variable } from './pipeline-variables';

const masked = new Set<string>();

/** Masks a value in every later log line; once per value, however many places hold it. */
export function mask(value: string | undefined): void {
  if (!value || masked.has(value)) return;
  masked.add(value);
  agent().setSecret(value);
}

export function setOutput(name: string, value: string | undefined, secret = false): void {
  if (value === undefined) return;
  if (secret) mask(value);
  taskLib().setVariable(name, value, secret, true);
}

/** A job variable for later steps; non-secret ones reach their environment as NAME. */
export function setJobVariable(name: string, value: string, secret = false): void {
  if (secret) mask(value);
  taskLib().setVariable(name, value, secret, false);
}

/** State the post-job step needs: task variables are scoped to this task instance. */
export function setTaskState(name: string, value: string, secret = false): void {
  if (secret) mask(value);
  taskLib().setTaskVariable(name, value, secret);
}

export function getTaskState(name: string): string | undefined {
  return agent().getTaskVariable(name) || undefined;
}

/**
 * For a post-job step: whether `dir`, named by the task variable `stateName`, is a folder this job's
 * main step made (directly inside Agent.TempDirectory, see isJobTempFolder). Any other is left
 * alone, saying so: a pipeline variable of the task variable's name can set it too.
 */
export function isOwnJobFolder(dir: string, stateName: string): boolean {
  if (isJobTempFolder(dir, variable('Agent.TempDirectory'))) return true;
  warn(safe`Left ${dir} alone: it is not a folder under Agent.TempDirectory, so this task did not make it (the task variable ${stateName} was set by something else).`);
  return false;
}
