/** What every end-to-end suite shares: connections in the emulator, bundled runs, the leak scan. */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Emulator } from '../emulator/index';
import { connectionEnv, ConnectionEnv, jobEnv, JobOptions } from './agent';
import { findLeaks, formattingLines, RunOptions, runTaskProcess, TaskRun, VsoCommand } from './task-process';

export const TENANT = '8d1f3a3e-2f4b-4c8e-9a55-0c6f1e7b2a10';

export interface FederatedConnection {
  id: string;
  clientId: string;
  name: string;
  expected: { issuer: string; subject: string };
}

/** A federated connection and its app; `fic` changes the federated credential (to provoke a mismatch). */
export function addFederatedConnection(emu: Emulator, name = `conn-${crypto.randomBytes(3).toString('hex')}`, fic?: (expected: { issuer: string; subject: string }) => { issuer: string; subject: string }): FederatedConnection {
  const id = crypto.randomUUID();
  const clientId = crypto.randomUUID();
  emu.addServiceConnection({ id, name, scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId, subscriptionId: crypto.randomUUID() });
  const expected = emu.expectedFederation(id);
  const cred = fic ? fic(expected) : expected;
  emu.addApp({ clientId, tenantId: TENANT, federatedCredentials: [{ issuer: cred.issuer, subject: cred.subject, audiences: ['api://AzureADTokenExchange'] }] });
  return { id, clientId, name, expected };
}

/** An AWS account that trusts the connection's idToken: an OIDC provider for its issuer and a role whose trust names its subject. */
export function trustInAws(emu: Emulator, expected: { issuer: string; subject: string }, roleArn: string, maxSessionDurationSeconds?: number): void {
  const provider = expected.issuer.replace(/^https:\/\//, '');
  emu.addAwsOidcProvider({ url: provider, clientIds: ['api://AzureADTokenExchange'], accountId: roleArn.split(':')[4] });
  emu.addAwsRole({ arn: roleArn, ...(maxSessionDurationSeconds ? { maxSessionDurationSeconds } : {}), trust: { issuer: provider, sub: expected.subject, aud: 'api://AzureADTokenExchange' } });
}

export const wif = (c: { id: string; clientId: string }): ConnectionEnv => ({ id: c.id, scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: c.clientId, subscriptionId: '0b1c2d3e-0000-4000-8000-000000000001' });

export interface BundledRun {
  task: string;
  /** The connection the agent passes (as connectedServiceNameARM unless the inputs name it otherwise); none for a task that needs none. */
  conn?: ConnectionEnv;
  inputs?: Record<string, string>;
  job?: JobOptions;
  env?: Record<string, string>;
  entry?: string;
  node?: string;
  user?: { uid: number; gid: number };
  timeoutMs?: number;
}

const TASKS_DIR = path.resolve(__dirname, '..', '..', '..', 'tasks');

/** The variables the tasks document: each task.json's outputVariables and the job variables of the README. */
export const DOCUMENTED_VARIABLES: ReadonlySet<string> = new Set([
  ...fs.readdirSync(TASKS_DIR).filter((d) => fs.existsSync(path.join(TASKS_DIR, d, 'task.json'))).flatMap((d) => {
    const task = JSON.parse(fs.readFileSync(path.join(TASKS_DIR, d, 'task.json'), 'utf8')) as { outputVariables?: { name: string }[] };
    return (task.outputVariables ?? []).map((o) => o.name);
  }),
  'ARM_USE_OIDC', 'ARM_CLIENT_ID', 'ARM_TENANT_ID', 'ARM_SUBSCRIPTION_ID', 'ARM_ENVIRONMENT', 'ARM_OIDC_REQUEST_URL', 'ARM_OIDC_REQUEST_TOKEN',
  'ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID', 'ARM_OIDC_AZURE_SERVICE_CONNECTION_ID', 'ARM_USE_MSI', 'ARM_CLIENT_SECRET',
  'AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_AUTHORITY_HOST', 'WORKLOAD_IDENTITY_TOKEN_FILE',
  'DOCKER_CONFIG', 'REGISTRY_AUTH_FILE', 'HELM_REGISTRY_CONFIG',
  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_DEFAULT_REGION',
  'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_ARN', 'AWS_ROLE_SESSION_NAME',
  'GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', 'GOOGLE_CLOUD_PROJECT', 'CLOUDSDK_CORE_PROJECT',
  'VAULT_ADDR', 'VAULT_NAMESPACE', 'VAULT_TOKEN', 'VAULT_CACERT', 'SYSTEM_UNSAFEALLOWMULTILINESECRET',
]);

/** AuditServiceConnections@1's report artifact by default (its task.json), the only artifact a task publishes. */
export const AUDIT_ARTIFACT: string = (JSON.parse(fs.readFileSync(path.join(TASKS_DIR, 'AuditServiceConnectionsV1', 'task.json'), 'utf8')) as { inputs: { name: string; defaultValue?: string }[] }).inputs.find((i) => i.name === 'reportArtifactName')!.defaultValue!;
/** The files AuditServiceConnections@1 attaches to the job's log in a classic release job. */
const AUDIT_REPORT_FILES = /[\\/]service-connection-audit-[^\\/]+[\\/]service-connection-audit\.(csv|json)$/;

/** Why a command is not one the product means to write, or undefined if it is. */
function unintended(c: VsoCommand, named: ReadonlySet<string>, artifacts: ReadonlySet<string>): string | undefined {
  const p = (k: string) => Object.entries(c.properties).find(([key]) => key.toLowerCase() === k.toLowerCase())?.[1];
  switch (c.name) {
    case 'artifact.upload': {
      // The audit's report folder, under the artifact name the test gave (or the default), in a container folder of that name; a re-run's name ends -attempt<N>.
      const name = p('artifactname') ?? '';
      const keys = Object.keys(c.properties).map((k) => k.toLowerCase()).sort().join(',');
      const base = name.replace(/-attempt\d+$/, '');
      if (keys !== 'artifactname,containerfolder' || p('containerfolder') !== name || !(base === AUDIT_ARTIFACT || artifacts.has(base))) return `an artifact the audit does not publish: ${JSON.stringify(c.properties)}`;
      return /[\\/]service-connection-audit-[^\\/]+$/.test(c.value) ? undefined : `an artifact of a folder the audit does not write: ${c.value}`;
    }
    case 'task.uploadfile':
      return AUDIT_REPORT_FILES.test(c.value) ? undefined : `a file the audit does not upload: ${c.value}`;
    case 'task.setsecret':
    case 'task.debug':
    case 'task.uploadsummary':
      return undefined;
    case 'task.setvariable':
      return DOCUMENTED_VARIABLES.has(p('variable') ?? '') || named.has(p('variable') ?? '') ? undefined : `a variable the tasks do not document: ${p('variable')}`;
    case 'task.settaskvariable':
      return /^WorkloadIdentity\.[\w.]+$/.test(p('variable') ?? '') ? undefined : `a task variable the tasks do not use: ${p('variable')}`;
    case 'task.addattachment':
      return p('type') === 'WorkloadIdentity.Audit' ? undefined : `an attachment of type ${p('type')}`;
    case 'task.issue':
      return /^(error|warning)$/.test(p('type') ?? '') ? undefined : `an issue of type ${p('type')}`;
    case 'task.complete':
      return /^(Succeeded|SucceededWithIssues|Failed)$/.test(p('result') ?? '') ? undefined : `a result ${p('result')}`;
    default:
      return `a command the tasks never write: ${c.name}`;
  }
}

/**
 * Every command the agent would read from a run, and every formatting line, that the product did
 * not mean to write: the output parsed as the agent parses it (see task-process.ts).
 */
export function unintendedOutput(run: TaskRun, named: ReadonlySet<string> = new Set(), artifacts: ReadonlySet<string> = new Set()): string[] {
  const found: string[] = [];
  for (const c of run.commands) {
    const why = unintended(c, named, artifacts);
    if (why) found.push(`stdout: ${why}: ${JSON.stringify(c.line).slice(0, 200)}`);
    if (c.name === 'task.prependpath') found.push(`stdout: task.prependpath: ${JSON.stringify(c.line).slice(0, 200)}`);
    if (Object.values(c.properties).includes('INJECTED')) found.push(`stdout: a variable INJECTED: ${JSON.stringify(c.line).slice(0, 200)}`);
  }
  for (const c of run.stderrCommands) found.push(`stderr (the agent reads it too): ${c.name}: ${JSON.stringify(c.line).slice(0, 200)}`);
  for (const l of formattingLines(run.stdout)) {
    if (!/^##\[(group\]|endgroup\]$)/.test(l)) found.push(`stdout: a formatting line the tasks never write: ${JSON.stringify(l).slice(0, 200)}`);
  }
  for (const l of formattingLines(run.stderr)) found.push(`stderr: a formatting line: ${JSON.stringify(l).slice(0, 200)}`);
  return found;
}

/** How a bundled task is started: runTaskProcess, or the Windows leg's node.exe under Wine (tests/helpers/wine.ts). */
export type TaskLauncher = (task: string, entry: string, options: RunOptions) => Promise<TaskRun>;

/**
 * Runs bundled tasks against the emulator and scans every run's output, after each test, for
 * every token the emulator issued (and their signatures alone) and for extra secrets.
 */
export class E2eRuns {
  private runs: TaskRun[] = [];
  readonly extraSecrets: string[] = [];
  /** Variables a test's inputs name (VaultSecretsFederated@1's `secrets`): the user's, so not a command the task did not mean. */
  readonly namedVariables = new Set<string>();
  /** Artifact names a test's inputs give AuditServiceConnections@1 (reportArtifactName), besides its default. */
  readonly namedArtifacts = new Set<string>();

  constructor(private readonly emu: () => Emulator, private readonly launch: TaskLauncher = runTaskProcess) {}

  async run(r: BundledRun): Promise<TaskRun> {
    const emu = this.emu();
    const env: Record<string, string> = { ...jobEnv(emu, r.job), ...(r.conn ? { ...connectionEnv(emu, r.conn), INPUT_CONNECTEDSERVICENAMEARM: r.conn.id } : {}), ...(r.env ?? {}) };
    for (const [k, v] of Object.entries(r.inputs ?? {})) env[`INPUT_${k.toUpperCase()}`] = v;
    const run = await this.launch(r.task, r.entry ?? 'index.js', { env, node: r.node, user: r.user, timeoutMs: r.timeoutMs });
    run.agentTempDirectory = env.AGENT_TEMPDIRECTORY;
    return this.record(run);
  }

  record(run: TaskRun): TaskRun {
    this.runs.push(run);
    return run;
  }

  /** The runs the next scan() will check. */
  pending(): readonly TaskRun[] {
    return this.runs;
  }

  /** Call from afterEach: scan() the test's runs, then give the next test the emulator as new (no faults, no counts, 600-second idTokens). */
  endTest(testTitle: string | undefined): void {
    const emu = this.emu();
    try {
      this.scan(testTitle);
    } finally {
      emu.clearFaults();
      emu.resetCounts();
      emu.idTokenLifetimeSeconds = 600;
    }
  }

  /** Call from afterEach: fails the test whose runs leaked a secret or wrote a command they did not mean to. */
  scan(testTitle: string | undefined): void {
    const emu = this.emu();
    const secrets = [...emu.issuedTokens(), emu.jobAccessToken, ...this.extraSecrets];
    for (const t of emu.issuedTokens()) {
      const sig = t.split('.')[2];
      if (sig && sig.length >= 16) secrets.push(sig);
    }
    for (const run of this.runs.splice(0)) {
      assert.deepEqual(findLeaks(run, secrets), [], `secrets leaked in "${testTitle}"`);
      assert.deepEqual(unintendedOutput(run, this.namedVariables, this.namedArtifacts), [], `output the agent would read as a command the tasks did not mean, in "${testTitle}"`);
    }
  }
}

/**
 * What the agent hands the post-job step of a main step: the task state it set (VSTS_TASKVARIABLE_*)
 * and the job's Agent.TempDirectory (a post-job step removes only folders directly inside it).
 */
export function postJobEnv(r: Pick<TaskRun, 'taskVariables' | 'agentTempDirectory'>): Record<string, string> {
  const state = Object.fromEntries(Object.entries(r.taskVariables).map(([k, v]) => [`VSTS_TASKVARIABLE_${k.replace(/\./g, '_').toUpperCase()}`, v]));
  return r.agentTempDirectory ? { ...state, AGENT_TEMPDIRECTORY: r.agentTempDirectory } : state;
}

/** Whether a process is still running (signal 0 checks without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
