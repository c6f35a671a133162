/**
 * Checks a pipeline YAML snippet of the docs against the tasks as they are: each `- task:` names one
 * of our tasks at a major version it has; its inputs are input names or aliases of its task.json,
 * pick lists hold an allowed option, booleans are true or false; the Vault `secrets` input parses
 * as the task parses it; `$(step.output)` names an output the step's task declares (and, for the
 * outputs set only with some input, that input); `$(VARIABLE)` is a variable a step of ours before
 * it sets (with the inputs that make it set it), a Vault secret's variable, or a predefined variable
 * of the agent. The docs' GitHub Actions and Kubernetes blocks are recognised and only parsed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSecretSpecs } from '../../tasks/core/vault/secret-specs';
import { agentJob, environmentName } from '../helpers/agent-job';

interface TaskInput {
  name: string;
  type: string;
  label?: string;
  aliases?: string[];
  options?: Record<string, string>;
  properties?: Record<string, string>;
  required?: boolean;
  visibleRule?: string;
  defaultValue?: string;
}

export interface TaskDef {
  name: string;
  major: number;
  contributionId: string;
  inputs: TaskInput[];
  outputs: string[];
  /** Source files of the task and the shared core, for the variables table's check. */
  sourceDir: string;
}

export function loadTasks(repo: string): Map<string, TaskDef> {
  const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'vss-extension.json'), 'utf8')) as {
    contributions: { id: string; type: string; properties: { name: string } }[];
  };
  const tasks = new Map<string, TaskDef>();
  for (const c of manifest.contributions.filter((x) => x.type === 'ms.vss-distributed-task.task')) {
    const dir = path.join(repo, c.properties.name);
    const t = JSON.parse(fs.readFileSync(path.join(dir, 'task.json'), 'utf8')) as {
      name: string; version: { Major: number }; inputs?: TaskInput[]; outputVariables?: { name: string }[];
    };
    tasks.set(t.name, {
      name: t.name, major: t.version.Major, contributionId: c.id, inputs: t.inputs ?? [],
      outputs: (t.outputVariables ?? []).map((o) => o.name), sourceDir: dir,
    });
  }
  return tasks;
}

/** `input=value` (value 'true' for a boolean): the condition a task sets something under. */
type When = Record<string, string | ((v: string | undefined) => boolean)>;

/**
 * Outputs a task sets only with some input (the task's index.ts): a reference to one from a step
 * without that input is a doc bug, the variable stays empty.
 */
export const CONDITIONAL_OUTPUTS: Record<string, Record<string, When>> = {
  FetchOidcToken: {
    accessToken: { accessTokenScope: (v) => !!v },
    accessTokenExpiresOn: { accessTokenScope: (v) => !!v },
  },
  GcpAuthFederated: {
    accessToken: { tokenFormat: 'access_token' },
    accessTokenExpiresOn: { tokenFormat: 'access_token' },
  },
};

/**
 * Job variables each task sets for later steps, and under which inputs (from the tasks' code; the
 * test checks that each name is in the task's or the core's source and in README). Secret ones
 * reach a script only when its env maps them, which is how the docs use them.
 */
export const JOB_VARIABLES: Record<string, { names: string[]; when?: When }[]> = {
  FetchOidcToken: [
    { names: ['ARM_TENANT_ID', 'ARM_SUBSCRIPTION_ID', 'ARM_ENVIRONMENT', 'ARM_CLIENT_ID', 'ARM_USE_OIDC', 'ARM_OIDC_REQUEST_URL', 'ARM_OIDC_REQUEST_TOKEN',
      'ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID', 'ARM_OIDC_AZURE_SERVICE_CONNECTION_ID', 'ARM_USE_MSI', 'ARM_CLIENT_SECRET'], when: { exportTerraformEnv: 'true' } },
    { names: ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_AUTHORITY_HOST'], when: { exportAzureIdentityEnv: 'true' } },
    { names: ['WORKLOAD_IDENTITY_TOKEN_FILE'], when: { writeTokenFile: 'true' } },
  ],
  AwsAssumeRoleFederated: [
    { names: ['AWS_REGION', 'AWS_DEFAULT_REGION'] },
    // With exportWebIdentityFile the task sets no key variable (index.ts): the SDKs read the file.
    { names: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'], when: { exportWebIdentityFile: 'false' } },
    { names: ['AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_ARN', 'AWS_ROLE_SESSION_NAME'], when: { exportWebIdentityFile: 'true' } },
  ],
  AcrLoginFederated: [{ names: ['DOCKER_CONFIG', 'REGISTRY_AUTH_FILE', 'HELM_REGISTRY_CONFIG'] }],
  GcpAuthFederated: [
    { names: ['GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE'], when: { createCredentialsFile: 'true' } },
    { names: ['GOOGLE_CLOUD_PROJECT', 'CLOUDSDK_CORE_PROJECT'] },
  ],
  VaultSecretsFederated: [{ names: ['VAULT_ADDR', 'VAULT_TOKEN', 'VAULT_NAMESPACE', 'VAULT_CACERT'], when: { exportToken: 'true' } }],
};

// Azure Pipelines' step keys (YAML schema: steps.task, steps.script, steps.bash, ...).
const COMMON_STEP_KEYS = ['name', 'displayName', 'condition', 'continueOnError', 'enabled', 'env', 'timeoutInMinutes', 'retryCountOnTaskFailure', 'target'];
const STEP_KEYS: Record<string, string[]> = {
  task: ['task', 'inputs'],
  script: ['script', 'workingDirectory', 'failOnStderr'],
  bash: ['bash', 'workingDirectory', 'failOnStderr', 'noProfile', 'noRc'],
  pwsh: ['pwsh', 'workingDirectory', 'failOnStderr', 'errorActionPreference', 'warningPreference', 'informationPreference', 'verbosePreference', 'debugPreference', 'progressPreference', 'ignoreLASTEXITCODE'],
  powershell: ['powershell', 'workingDirectory', 'failOnStderr', 'errorActionPreference', 'warningPreference', 'informationPreference', 'verbosePreference', 'debugPreference', 'progressPreference', 'ignoreLASTEXITCODE'],
  checkout: ['checkout', 'clean', 'fetchDepth', 'fetchFilter', 'fetchTags', 'lfs', 'persistCredentials', 'submodules', 'path', 'sparseCheckoutDirectories', 'sparseCheckoutPatterns', 'workspaceRepo'],
};
const PIPELINE_KEYS = ['name', 'appendCommitMessageToRunName', 'trigger', 'pr', 'schedules', 'resources', 'variables', 'parameters', 'pool',
  'stages', 'jobs', 'steps', 'extends', 'lockBehavior', 'workspace', 'container', 'services', 'strategy', 'timeoutInMinutes'];

export interface Problem {
  /** 1-based line in the block. */
  line: number;
  message: string;
}

export type YamlKind = 'pipeline' | 'github-actions' | 'kubernetes';

type Step = Record<string, unknown>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function classifyYaml(doc: unknown): YamlKind | undefined {
  if (isObject(doc) && 'apiVersion' in doc && 'kind' in doc) return 'kubernetes';
  const steps = stepsOf(doc);
  if (steps.some((s) => isObject(s) && ('uses' in s || 'run' in s))) return 'github-actions';
  if (steps.length > 0) return 'pipeline';
  return undefined;
}

/** The steps of a fragment (a list of steps), a job, or a pipeline with jobs or stages, in order. */
export function stepsOf(doc: unknown): unknown[] {
  if (Array.isArray(doc)) return doc;
  if (!isObject(doc)) return [];
  if (Array.isArray(doc.steps)) return doc.steps;
  const jobs = Array.isArray(doc.jobs) ? doc.jobs : Array.isArray(doc.stages) ? doc.stages.flatMap((s) => (isObject(s) && Array.isArray(s.jobs) ? s.jobs : [])) : [];
  return jobs.flatMap((j) => (isObject(j) && Array.isArray(j.steps) ? j.steps : []));
}

/** The string values anywhere under v. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap((x) => strings(x));
  if (isObject(v)) return Object.values(v).flatMap((x) => strings(x));
  return [];
}

const SCRIPT_KEYS = ['script', 'bash', 'pwsh', 'powershell', 'run'];

/** The names the pipeline's, its jobs' and stages' variables define. */
function variablesOf(doc: unknown): string[] {
  if (!isObject(doc)) return [];
  const own = doc.variables;
  const names = isObject(own) ? Object.keys(own) : Array.isArray(own) ? own.flatMap((v) => (isObject(v) && typeof v.name === 'string' ? [v.name] : [])) : [];
  const children = [...(Array.isArray(doc.jobs) ? doc.jobs : []), ...(Array.isArray(doc.stages) ? doc.stages : [])];
  return [...names, ...children.flatMap(variablesOf)].map(environmentName);
}

/** The scripts of the steps (script, bash, GitHub's run), for bash -n. */
export function scriptsOf(doc: unknown): { key: string; text: string; stepIndex: number }[] {
  return stepsOf(doc).flatMap((s, i) => {
    if (!isObject(s)) return [];
    return (['script', 'bash', 'run'] as const).filter((k) => typeof s[k] === 'string').map((k) => ({ key: k, text: s[k] as string, stepIndex: i }));
  });
}

function asText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : String(v);
}

function holds(when: When | undefined, task: TaskDef, inputs: Record<string, unknown>): boolean {
  if (!when) return true;
  return Object.entries(when).every(([input, want]) => {
    const def = task.inputs.find((i) => i.name === input);
    const given = Object.entries(inputs).find(([k]) => k === input || def?.aliases?.includes(k))?.[1];
    const v = asText(given) ?? def?.defaultValue;
    return typeof want === 'function' ? want(v === '' ? undefined : v) : v === want;
  });
}

export class PipelineChecker {
  private readonly predefined: Set<string>;

  constructor(private readonly tasks: Map<string, TaskDef>) {
    // The variables an agent gives a build job (tests/helpers/agent-job.ts, from Microsoft's
    // predefined-variable pages), as environment names.
    const job = agentJob({ collectionUri: 'https://dev.azure.com/contoso/', projectId: '00000000-0000-4000-8000-000000000000', projectName: 'web', accessToken: 'x', tempDirectory: '/agent/_work/_temp' });
    // Secret ones (System.AccessToken) are there as SECRET_<name>.
    this.predefined = new Set(Object.keys(job.env).map((k) => k.replace(/^SECRET_/, '')));
  }

  /** Every variable any task may set: what a fragment with no task step of its own may map. */
  private anyTaskVariable(name: string): boolean {
    return Object.values(JOB_VARIABLES).some((groups) => groups.some((g) => g.names.includes(name)));
  }

  check(doc: unknown, lines: string[]): Problem[] {
    const problems: Problem[] = [];
    const steps = stepsOf(doc);
    if (isObject(doc)) {
      for (const k of Object.keys(doc)) if (!PIPELINE_KEYS.includes(k)) problems.push({ line: lineOf(lines, new RegExp(`^${esc(k)}:`)), message: `'${k}' is not a key of a pipeline` });
    }
    const stepLines = stepLinesOf(lines);
    // Per step name: the task and inputs, for $(name.output).
    const named = new Map<string, { task?: TaskDef; inputs: Record<string, unknown> }>();
    // The pipeline's own variables (variables: a map, or a list of name/value).
    const setVariables = new Set<string>(variablesOf(doc));
    const hasOwnTask = steps.some((s) => isObject(s) && typeof s.task === 'string');

    steps.forEach((step, index) => {
      const line = stepLines[index] ?? 1;
      if (!isObject(step)) {
        problems.push({ line, message: `step ${index + 1} is not a mapping` });
        return;
      }
      const kind = Object.keys(STEP_KEYS).find((k) => k in step) ?? ['download', 'publish', 'template'].find((k) => k in step);
      if (!kind) {
        problems.push({ line, message: `step ${index + 1} is no kind of step (task, script, bash, ...): keys ${Object.keys(step).join(', ')}` });
        return;
      }
      // References first: a step sees only what the steps before it set.
      problems.push(...this.references(step as Step, lines, line, named, setVariables, hasOwnTask));
      if (STEP_KEYS[kind]) {
        for (const k of Object.keys(step)) {
          if (!STEP_KEYS[kind].includes(k) && !COMMON_STEP_KEYS.includes(k)) problems.push({ line: keyLine(lines, line, k), message: `'${k}' is not a key of a ${kind} step` });
        }
      }
      const name = step.name;
      if (name !== undefined) {
        if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) problems.push({ line: keyLine(lines, line, 'name'), message: `step name '${String(name)}' is not letters, digits and _` });
        else if (named.has(name)) problems.push({ line: keyLine(lines, line, 'name'), message: `step name '${name}' is used twice` });
      }
      if (kind !== 'task') {
        if (typeof name === 'string') named.set(name, { inputs: {} });
        return;
      }
      const ref = String(step.task);
      const m = /^(?:([A-Za-z0-9][\w.-]*)\.([A-Za-z0-9][\w-]*)\.([a-z0-9-]+)\.)?([A-Za-z][A-Za-z0-9]*)@(\d+)$/.exec(ref);
      const task = m ? this.tasks.get(m[4]) : undefined;
      if (!m || !task) {
        problems.push({ line, message: `task '${ref}' is not one of this extension's tasks (${[...this.tasks.keys()].join(', ')}) as Name@major` });
        return;
      }
      if (Number(m[5]) !== task.major) problems.push({ line, message: `${task.name}@${m[5]}: the task's major version is ${task.major}` });
      if (m[3] !== undefined && m[3] !== task.contributionId) problems.push({ line, message: `${ref}: ${task.name}'s contribution id is '${task.contributionId}' (vss-extension.json), not '${m[3]}'` });
      const inputs = step.inputs === undefined || step.inputs === null ? {} : step.inputs;
      if (!isObject(inputs)) {
        problems.push({ line: keyLine(lines, line, 'inputs'), message: `${task.name}: inputs is not a mapping` });
        return;
      }
      problems.push(...this.inputs(task, inputs, lines, line));
      if (typeof name === 'string') named.set(name, { task, inputs });
      for (const g of JOB_VARIABLES[task.name] ?? []) if (holds(g.when, task, inputs)) for (const n of g.names) setVariables.add(n);
      if (task.name === 'VaultSecretsFederated' && typeof inputs.secrets === 'string') {
        try {
          for (const s of parseSecretSpecs(inputs.secrets)) setVariables.add(environmentName(s.variable));
        } catch {
          /* reported by inputs() */
        }
      }
    });
    return problems;
  }

  private inputs(task: TaskDef, inputs: Record<string, unknown>, lines: string[], stepLine: number): Problem[] {
    const problems: Problem[] = [];
    const seen = new Map<string, string>();
    for (const [key, value] of Object.entries(inputs)) {
      const line = keyLine(lines, stepLine, key);
      const def = task.inputs.find((i) => i.name === key || i.aliases?.includes(key));
      if (!def) {
        const other = task.inputs.find((i) => i.name.toLowerCase() === key.toLowerCase() || i.aliases?.some((a) => a.toLowerCase() === key.toLowerCase()));
        problems.push({ line, message: `${task.name}@${task.major} has no input '${key}'${other ? ` (did you mean '${other.name}'?)` : ''}: its inputs are ${task.inputs.map((i) => i.name + (i.aliases?.length ? ` (alias ${i.aliases.join(', ')})` : '')).join(', ')}` });
        continue;
      }
      if (seen.has(def.name)) problems.push({ line, message: `${task.name}: '${key}' and '${seen.get(def.name)}' are the same input` });
      seen.set(def.name, key);
      if (value === null || typeof value === 'object') {
        problems.push({ line, message: `${task.name}: input '${key}' is not a scalar` });
        continue;
      }
      const text = String(value);
      if (def.type === 'boolean' && typeof value !== 'boolean' && !/^(true|false)$/.test(text)) {
        problems.push({ line, message: `${task.name}: input '${key}' is a boolean: true or false, not '${text}'` });
      }
      if (def.type === 'pickList' && def.options && def.properties?.EditableOptions !== 'True' && !(text in def.options)) {
        problems.push({ line, message: `${task.name}: input '${key}' is one of ${Object.keys(def.options).join(', ')}, not '${text}'` });
      }
      if (def.type.startsWith('connectedService') && !text.trim()) problems.push({ line, message: `${task.name}: input '${key}' names no service connection` });
      if (task.name === 'VaultSecretsFederated' && def.name === 'secrets') {
        try {
          parseSecretSpecs(text);
        } catch (e) {
          problems.push({ line, message: `${task.name}: the task refuses this secrets input: ${(e as Error).message}` });
        }
      }
    }
    for (const def of task.inputs) {
      if (def.required && !def.visibleRule && !seen.has(def.name)) problems.push({ line: stepLine, message: `${task.name}: the required input '${def.name}'${def.aliases?.length ? ` (${def.aliases.join(', ')})` : ''} is missing` });
    }
    return problems;
  }

  /** $(...) macros and variables['...'] in the step's values. */
  private references(step: Step, lines: string[], stepLine: number, named: Map<string, { task?: TaskDef; inputs: Record<string, unknown> }>, setVariables: Set<string>, hasOwnTask: boolean): Problem[] {
    const problems: Problem[] = [];
    // ref -> whether it is only in a script, where $(word) may be the shell's command substitution.
    const refs = new Map<string, boolean>();
    for (const [key, v] of Object.entries(step)) {
      const inScript = SCRIPT_KEYS.includes(key);
      for (const value of strings(v)) {
        // A macro is $(name) with a variable's characters; $(command args) is the shell's.
        for (const m of value.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g)) refs.set(m[1], (refs.get(m[1]) ?? true) && inScript);
        // Runtime expressions: variables['name'], dependencies.<job>.outputs['step.name'].
        for (const m of value.matchAll(/(?:variables|outputs)\[\s*'([^']+)'\s*\]/g)) refs.set(m[1], false);
      }
    }
    for (const [ref, onlyInScript] of refs) {
      const line = lineOf(lines, new RegExp(esc(ref)), stepLine - 1);
      if (ref.includes('.')) {
        const [stepName, ...rest] = ref.split('.');
        const output = rest.join('.');
        const target = named.get(stepName);
        if (target) {
          if (!target.task) {
            problems.push({ line, message: `$(${ref}): step '${stepName}' is not one of this extension's tasks, whose outputs this test knows` });
          } else if (!target.task.outputs.includes(output)) {
            const other = target.task.outputs.find((o) => o.toLowerCase() === output.toLowerCase());
            problems.push({ line, message: `$(${ref}): ${target.task.name} has no output variable '${output}'${other ? ` (did you mean '${other}'?)` : ''}; its outputs are ${target.task.outputs.join(', ') || 'none'}` });
          } else if (!holds(CONDITIONAL_OUTPUTS[target.task.name]?.[output], target.task, target.inputs)) {
            problems.push({ line, message: `$(${ref}): ${target.task.name} sets '${output}' only with ${describe(CONDITIONAL_OUTPUTS[target.task.name][output])}, which step '${stepName}' does not have` });
          }
        } else if (!this.predefined.has(environmentName(ref)) && !setVariables.has(environmentName(ref))) {
          problems.push({ line, message: `$(${ref}): no step '${stepName}' before this one in the block, and not a predefined variable of the agent` });
        }
        continue;
      }
      if (setVariables.has(environmentName(ref)) || this.predefined.has(environmentName(ref))) continue;
      if (onlyInScript && /^[a-z][a-z0-9]*$/.test(ref)) continue; // $(pwd), $(date) in a script: the shell's
      // A fragment with no task step of its own continues a step shown before it.
      if (!hasOwnTask && this.anyTaskVariable(ref)) continue;
      const setter = Object.entries(JOB_VARIABLES).flatMap(([t, gs]) => gs.filter((g) => g.names.includes(ref)).map((g) => `${t}${g.when ? ` with ${describe(g.when)}` : ''}`));
      problems.push({ line, message: `$(${ref}) is set by no step before it in this block${setter.length ? ` (${setter.join('; ')} sets it)` : ' and by none of the tasks'}` });
    }
    return problems;
  }
}

/** The 1-based line each step starts on, in order (a step starts with its kind's key). */
export function stepLinesOf(lines: string[]): number[] {
  return lines.map((l, i) => ({ l, i })).filter(({ l }) => /^\s*- (task|script|bash|pwsh|powershell|checkout|download|publish|template|uses|run)\s*:/.test(l)).map(({ i }) => i + 1);
}

function describe(when: When): string {
  return Object.entries(when).map(([k, v]) => (typeof v === 'function' ? k : `${k}: ${v}`)).join(', ');
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The 1-based line of the first line matching re at or after from (0-based). */
function lineOf(lines: string[], re: RegExp, from = 0): number {
  for (let i = Math.max(0, from); i < lines.length; i++) if (re.test(lines[i])) return i + 1;
  return Math.max(1, from + 1);
}

/** The line of `key:` at or after the step's line. */
function keyLine(lines: string[], stepLine: number, key: string): number {
  return lineOf(lines, new RegExp(`^\\s*(- )?${esc(key)}\\s*:`), stepLine - 1);
}
