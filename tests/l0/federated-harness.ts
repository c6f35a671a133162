/**
 * What the L0 suites of the idToken tasks (AwsAssumeRoleFederated, GcpAuthFederated) share: the
 * test side runs a runner under MockTestRunner with its variables set; the runner side builds a
 * TaskMockRunner for the task's main or post-job entry with a federated connection and a mocked
 * Oidctoken client.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { agentJob, JobKind, OidcRequestHost } from '../helpers/agent-job';

export const L0_CONNECTION = 'a5500000-0000-4000-8000-0000000000a5';
/** A connection of the extension's own type (WorkloadIdentityAws/Gcp, scheme None), handed when the test sets L0_OWN. */
export const L0_OWN_CONNECTION = 'a5500000-0000-4000-8000-00000000c0aa';

/** L0_OWN: a connection of the task's own type the agent hands, and whether azureSubscription is set too (L0_ARM, default '1'). */
export interface OwnConnection {
  /** the task.json input that names it, e.g. awsConnection */
  input: string;
  /** the scheme's parameters an admin set */
  parameters: Record<string, string>;
}

/** Runs `runner` for `taskFolder`; every variable the runner reads is set (other L0 suites leave some behind) and removed after. */
export async function runL0(runner: string, taskFolder: string, inputs: Record<string, string>, env: Record<string, string> = {}): Promise<MockTestRunner> {
  const keys = ['L0_TEMP', 'L0_INPUTS', 'L0_SCENARIO', 'L0_SCHEME', 'L0_OWN', 'L0_ARM', ...Object.keys(env)];
  Object.assign(process.env, { L0_TEMP: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-')), L0_INPUTS: JSON.stringify(inputs), L0_SCENARIO: 'main', L0_SCHEME: 'WorkloadIdentityFederation' }, env);
  const tr = new MockTestRunner(runner, path.resolve(__dirname, '..', '..', '..', 'tasks', taskFolder, 'task.json'));
  tr.nodePath = process.execPath;
  try {
    await tr.runAsync();
  } finally {
    for (const k of keys) delete process.env[k];
  }
  return tr;
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

/** Runner side: the task's entry (L0_SCENARIO main or post), its connection and an Oidctoken client that returns an idToken with `subject`. */
export function federatedTaskMock(taskFolder: string, subject: string): { tmr: TaskMockRunner; token: string } {
  const scenario = process.env.L0_SCENARIO ?? 'main';
  const tmr = new TaskMockRunner(path.join(__dirname, '..', '..', 'tasks', taskFolder, scenario === 'post' ? 'post.js' : 'index.js'));
  layL0Job();
  process.env[`ENDPOINT_AUTH_${L0_CONNECTION}`] = JSON.stringify({ parameters: { tenantid: 'tenant-1', serviceprincipalid: 'client-1' }, scheme: process.env.L0_SCHEME ?? 'WorkloadIdentityFederation' });
  if ((process.env.L0_ARM ?? '1') === '1') tmr.setInput('connectedServiceNameARM', L0_CONNECTION);
  if (process.env.L0_OWN) {
    // As the agent hands a connection of scheme None (tests/helpers/agent.ts endpointEnv).
    const own = JSON.parse(process.env.L0_OWN) as OwnConnection;
    process.env[`ENDPOINT_URL_${L0_OWN_CONNECTION}`] = '';
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
