/**
 * What the L0 suites of the idToken tasks (AwsAssumeRoleFederated, GcpAuthFederated,
 * VaultSecretsFederated) share: the test side runs a runner under MockTestRunner with its variables
 * set; the runner side builds a TaskMockRunner for the task's main or post-job entry with a
 * federated connection and a mocked Oidctoken client.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { agentJob, JobKind, OidcRequestHost } from '../helpers/agent-job';

export const L0_CONNECTION = 'a5500000-0000-4000-8000-0000000000a5';
/** A connection of the extension's own type (WorkloadIdentityAws/Gcp/Oidc/Vault, scheme None), handed when the test sets L0_OWN. */
export const L0_OWN_CONNECTION = 'a5500000-0000-4000-8000-00000000c0aa';

/** L0_OWN: a connection of the task's own type the agent hands, and whether azureSubscription is set too (L0_ARM, default '1'). */
export interface OwnConnection {
  /** the task.json input that names it, e.g. awsConnection */
  input: string;
  /** the scheme's parameters an admin set */
  parameters: Record<string, string>;
  /** the connection's URL (ENDPOINT_URL_<id>), for a type that has one (the Vault address); default '' */
  url?: string;
}

/** The agent's Node handlers a task.json names; L0_HANDLER picks one (default Node20_1): its target runs on its Node. */
export type L0Handler = 'Node20_1' | 'Node24';

/** The Node binary of a handler: this Node (20) for Node20_1, the Node 24 of scripts/node24.cjs for Node24. */
function nodeOf(handler: L0Handler): string {
  if (handler === 'Node20_1') return process.execPath;
  return (require(path.resolve(__dirname, '..', '..', '..', 'scripts', 'node24.cjs')) as { ensureNode24(): string }).ensureNode24();
}

/**
 * Runs `runner` for `taskFolder`; every variable the runner reads is set (other L0 suites leave some behind) and removed after.
 * The run's Agent.TempDirectory is `tempDir` (env.L0_TEMP, or a new folder), for a post-job run of the same job.
 */
export async function runL0(runner: string, taskFolder: string, inputs: Record<string, string>, env: Record<string, string> = {}): Promise<MockTestRunner & { tempDir: string }> {
  const keys = ['L0_TEMP', 'L0_INPUTS', 'L0_SCENARIO', 'L0_SCHEME', 'L0_OWN', 'L0_ARM', 'L0_HANDLER', ...Object.keys(env)];
  const tempDir = env.L0_TEMP ?? fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-'));
  Object.assign(process.env, { L0_TEMP: tempDir, L0_INPUTS: JSON.stringify(inputs), L0_SCENARIO: 'main', L0_SCHEME: 'WorkloadIdentityFederation' }, env);
  const tr = new MockTestRunner(runner, path.resolve(__dirname, '..', '..', '..', 'tasks', taskFolder, 'task.json'));
  tr.nodePath = nodeOf((env.L0_HANDLER as L0Handler | undefined) ?? 'Node20_1');
  try {
    await tr.runAsync();
  } finally {
    for (const k of keys) delete process.env[k];
  }
  return Object.assign(tr, { tempDir });
}

/**
 * What the agent gives the post-job step of a run: its task variables as VSTS_TASKVARIABLE_* and the
 * same Agent.TempDirectory (the post-job step removes only folders directly inside it).
 */
export function postJobEnv(stdout: string): Record<string, string> {
  const state: Record<string, string> = { L0_SCENARIO: 'post' };
  for (const m of stdout.matchAll(/##vso\[task\.settaskvariable variable=([^;]+);[^\]]*\](.*)/g)) {
    // The agent unescapes the command's data (TaskCommand's escaping) before it sets the variable.
    const value = m[2].replace(/%3B/g, ';').replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%5D/g, ']').replace(/%AZP25/g, '%');
    state[`VSTS_TASKVARIABLE_${m[1].replace(/\./g, '_').toUpperCase()}`] = value;
    if (m[1].endsWith('.Dir')) state.L0_TEMP = path.dirname(value);
  }
  return state;
}

/** A task.setvariable command of the run, by variable name. */
export function setVariableOf(stdout: string, name: string): { value: string; line: string } | undefined {
  const line = stdout.split(/\r?\n/).find((l) => l.startsWith(`##vso[task.setvariable variable=${name};`));
  return line ? { value: line.slice(line.indexOf(']') + 1), line } : undefined;
}

/**
 * Runner side: the agent's environment for a job (tests/helpers/agent-job.ts), the kind chosen by the
 * test with L0_JOB_KIND (build by default) and L0_OIDC_HOST; variables the runner sets after this win.
 */
export function layL0Job(): void {
  const job = agentJob({
    kind: (process.env.L0_JOB_KIND as JobKind | undefined) ?? 'build',
    collectionUri: 'https://dev.azure.com/contoso/',
    projectId: '0c3e9a57-2f61-4b8d-a4e2-7b9f1c5d3e80',
    projectName: 'web',
    accessToken: 'l0-job-access-token',
    tempDirectory: process.env.L0_TEMP ?? '',
    oidcRequestHost: (process.env.L0_OIDC_HOST as OidcRequestHost | undefined) ?? 'collection',
    debug: false,
  });
  Object.assign(process.env, job.env);
}

/**
 * Runner side: the task's entry (L0_SCENARIO main or post: the target task.json gives the L0_HANDLER
 * handler for execution or postjobexecution), its connection and an Oidctoken client that returns an
 * idToken with `subject`.
 */
export function federatedTaskMock(taskFolder: string, subject: string): { tmr: TaskMockRunner; token: string } {
  const scenario = process.env.L0_SCENARIO ?? 'main';
  const handler = process.env.L0_HANDLER ?? 'Node20_1';
  const taskJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'tasks', taskFolder, 'task.json'), 'utf8')) as Record<string, Record<string, { target: string }> | undefined>;
  const target = taskJson[scenario === 'post' ? 'postjobexecution' : 'execution']?.[handler]?.target;
  if (!target) throw new Error(`task.json of ${taskFolder} has no ${handler} handler for ${scenario === 'post' ? 'postjobexecution' : 'execution'}`);
  console.log(`L0: ${handler} runs ${target} on Node ${process.version}`);
  const tmr = new TaskMockRunner(path.join(__dirname, '..', '..', 'tasks', taskFolder, target));
  layL0Job();
  process.env[`ENDPOINT_AUTH_${L0_CONNECTION}`] = JSON.stringify({ parameters: { tenantid: 'tenant-1', serviceprincipalid: 'client-1' }, scheme: process.env.L0_SCHEME ?? 'WorkloadIdentityFederation' });
  if ((process.env.L0_ARM ?? '1') === '1') tmr.setInput('connectedServiceNameARM', L0_CONNECTION);
  if (process.env.L0_OWN) {
    // As the agent hands a connection of scheme None (tests/helpers/agent.ts endpointEnv).
    const own = JSON.parse(process.env.L0_OWN) as OwnConnection;
    process.env[`ENDPOINT_URL_${L0_OWN_CONNECTION}`] = own.url ?? '';
    process.env[`ENDPOINT_AUTH_${L0_OWN_CONNECTION}`] = JSON.stringify({ parameters: own.parameters, scheme: 'None' });
    process.env[`ENDPOINT_AUTH_SCHEME_${L0_OWN_CONNECTION}`] = 'None';
    tmr.setInput(own.input, L0_OWN_CONNECTION);
  }
  for (const [k, v] of Object.entries(JSON.parse(process.env.L0_INPUTS ?? '{}') as Record<string, string>)) tmr.setInput(k, v);
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const token = `${b64({ alg: 'RS256' })}.${b64({ iss: 'https://vstoken.dev.azure.com/org', sub: subject, aud: 'api://AzureADTokenExchange', exp: Math.floor(Date.now() / 1000) + 600 })}.c2ln`;
  tmr.registerMock('../core/devops/oidc-token', {
    OidcTokenClient: class {
      constructor(_ctx: unknown, private readonly subject: { id?: string }) {}
      async fetch() {
        console.log(`L0: idToken requested for ${this.subject.id}`);
        return { token, claims: JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()), source: 'oidctoken-api' };
      }
    },
  });
  return { tmr, token };
}
