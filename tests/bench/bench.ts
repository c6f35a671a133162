/**
 * npm run bench: issue 14's budget. Every task's main step within 1.5x of its dependency-free
 * baseline (tests/bench/baseline.ts: the same requests, the same ##vso commands), and every
 * post-job step within 1.5x of a dependency-free script deleting the same files and making the same
 * requests (tests/bench/post-baseline.ts: Vault's revoke-self), on Node 20 and Node 24: the median
 * of per-run wall-time ratios over at least 20 interleaved runs (task, baseline, `node -e 0`, the
 * order rotating each run), every process in the same environment with tests/bench/probe.ts
 * preloaded. Requests are counted at the emulator for the task and the baseline: both must make
 * exactly the case's number. Also peak RSS, the .vsix size and the organisation-scale audit.
 * Prints a table per Node version and a summary line, and exits 1 listing every budget missed; any
 * failure on the way (a process that fails, prints other commands than its baseline, or leaves
 * files behind) stops the emulators and proxies and exits 1 saying what failed.
 *
 * BENCH_PROFILE=1 replaces the timed runs (and the audit and the budgets) by CPU profiles: after the
 * same warm-up, each case's task and baseline run BENCH_PROFILE_RUNS times each (default 10) with
 * --cpu-prof, checked the same way, and a table per case says where the time goes, by category.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, Emulator, gcpPrincipal } from '../emulator/index';
import { connectionEnv, endpointEnv, jobEnv } from '../helpers/agent';
import type { JobKind } from '../helpers/agent-job';
import { proxyToEmulator } from '../helpers/connect-proxy';
import { DIST, parseCommands } from '../helpers/task-process';
import { attribute, CaseProfile, ownFiles, report as profileReport, takeProfile } from './profile';

const root = path.resolve(__dirname, '..', '..', '..');
const QUICK = process.env.BENCH_QUICK === '1';
/** BENCH_PROFILE=1: CPU profiles instead of the timed runs (tests/bench/profile.ts); judges no budget. */
const PROFILE = process.env.BENCH_PROFILE === '1';
const MIN_RUNS = 20;
// The .vsix budget is tests/packaging/vsix.test.ts's: 1 MiB held six tasks, seven take about 1.1 MiB.
const BUDGET = { ratio: 1.5, rssMiB: 80, vsixBytes: 1152 * 1024 };
// The organisation-scale audit: 100 projects x 20 connections, 20 ms per request.
const AUDIT = { projects: 100, perProject: 20, latencyMs: 20, creators: 150, runs: QUICK ? 1 : 3, budgetMs: 20_000, budgetRssMiB: 150 };
const CHILD_TIMEOUT_MS = 60_000;
const BASELINE = path.join(__dirname, 'baseline.js');
const POST_BASELINE = path.join(__dirname, 'post-baseline.js');
const PROBE = path.join(__dirname, 'probe.js');

/** A failure that makes the rest of the bench meaningless: reported as is, and the bench exits 1. */
class Abort extends Error {}

// ---- Clean-up: every path out (success, failure, exception, signal) stops what was started. ----
const cleanups: (() => unknown)[] = [];
const children = new Set<ChildProcess>();
let exiting = false;

async function exit(code: number, message?: string): Promise<never> {
  if (!exiting) {
    exiting = true;
    if (message) console.error(message);
    for (const c of children) c.kill('SIGKILL');
    while (cleanups.length) {
      try {
        await cleanups.pop()!();
      } catch (e) {
        console.error(`bench: clean-up failed: ${(e as Error).message}`);
      }
    }
    process.exit(code);
  }
  return new Promise<never>(() => undefined);
}
process.on('SIGINT', () => void exit(130, '\nbench: interrupted; the emulators and proxies are stopped.'));
process.on('SIGTERM', () => void exit(143, '\nbench: terminated; the emulators and proxies are stopped.'));
process.on('uncaughtException', (e) => void exit(1, `\nbench FAILED (uncaught): ${e.stack ?? e}`));
process.on('unhandledRejection', (e) => void exit(1, `\nbench FAILED (unhandled rejection): ${(e as Error)?.stack ?? e}`));

// ---- Processes ----
interface RunResult {
  ms: number;
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

function run(node: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(node, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Abort(`${path.basename(args[args.length - 1])} did not finish within ${CHILD_TIMEOUT_MS / 1000} s (killed). Output so far:\n${tail(stdout + stderr)}`));
    }, CHILD_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new Abort(`could not start ${node}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, stdout, stderr, code, signal });
    });
  });
}

const tail = (s: string) => s.trimEnd().split('\n').slice(-30).join('\n');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const totalRequests = (emu: Emulator) => Object.values(emu.counts()).reduce((a, b) => a + b, 0);

// ---- Output checks ----
/**
 * The commands a run printed that a baseline must print too, one key each: variables with their
 * output/secret flags, task variables, attachments, summaries, masking, the result. Debug lines and
 * warnings are the task's own words and are left out.
 */
function commandKeys(stdout: string): string[] {
  const keys = new Set<string>();
  for (const c of parseCommands(stdout)) {
    const p = (k: string) => Object.entries(c.properties).find(([key]) => key.toLowerCase() === k)?.[1];
    if (c.name === 'task.debug' || (c.name === 'task.issue' && p('type') === 'warning')) continue;
    let key = c.name;
    if (c.name === 'task.setvariable') key += ` ${p('variable')} output=${p('isoutput') ?? 'false'} secret=${p('issecret') ?? 'false'}`;
    else if (c.name === 'task.settaskvariable') key += ` ${p('variable')}`;
    else if (c.name === 'task.addattachment') key += ` ${p('type')} ${p('name')}`;
    else if (c.name === 'task.complete' || c.name === 'task.issue') key += ` ${p('result') ?? p('type')}`;
    keys.add(key);
  }
  return [...keys].sort();
}

/** Snapshot of a folder the main step left, restored before each measured post-job run. */
interface DirSnapshot {
  dir: string;
  mode: number;
  entries: { rel: string; dir: boolean; mode: number; data?: Buffer }[];
}

function snapshotDir(dir: string): DirSnapshot {
  const entries: DirSnapshot['entries'] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel))) {
      const r = path.join(rel, name);
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isDirectory()) {
        entries.push({ rel: r, dir: true, mode: st.mode & 0o777 });
        walk(r);
      } else entries.push({ rel: r, dir: false, mode: st.mode & 0o777, data: fs.readFileSync(path.join(dir, r)) });
    }
  };
  walk('');
  return { dir, mode: fs.statSync(dir).mode & 0o777, entries };
}

function restoreDir(s: DirSnapshot): void {
  fs.rmSync(s.dir, { recursive: true, force: true });
  fs.mkdirSync(s.dir, { mode: s.mode });
  fs.chmodSync(s.dir, s.mode);
  for (const e of s.entries) {
    const p = path.join(s.dir, e.rel);
    if (e.dir) fs.mkdirSync(p, { mode: e.mode });
    else fs.writeFileSync(p, e.data!, { mode: e.mode });
    fs.chmodSync(p, e.mode);
  }
}

/** The environment name the agent hands a task variable under (task-lib's getTaskVariable reads it). */
const taskVariableEnv = (name: string) => `VSTS_TASKVARIABLE_${name.replace(/\./g, '_').replace(/ /g, '_').toUpperCase()}`;

// ---- Cases ----
type Who = 'task' | 'baseline' | 'empty';
const WHO_NAME: Record<Who, string> = { task: 'task', baseline: 'baseline', empty: 'node -e 0' };

interface Case {
  label: string;
  kind: 'main' | 'post';
  script: string;
  baseline: string;
  env: Record<string, string>;
  /** Requests the task and its baseline each make, counted at the emulator. */
  requests: number;
  /** Lines the task's and the baseline's output must both hold. */
  expect: RegExp[];
  /** Before every run of the case (task, baseline and node -e 0 alike): the state the run starts from. */
  prepare?: () => void;
  /** Paths the task and the baseline must have removed. */
  gone?: string[];
}

interface Sample {
  ms: number;
  cpuMs: number;
  rssMiB: number;
  requests: number;
}

interface Failure {
  text: string;
  /** budget: a measured budget (ratio, RSS, time), judged only on a full run; exact: always. */
  kind: 'budget' | 'exact';
}

async function main(): Promise<void> {
  const started = Date.now();
  const profileRuns = process.env.BENCH_PROFILE_RUNS === undefined ? 10 : Number(process.env.BENCH_PROFILE_RUNS);
  if (PROFILE && process.env.BENCH_RUNS !== undefined) throw new Abort('BENCH_PROFILE=1 makes no timed runs: set BENCH_PROFILE_RUNS (default 10) for the number of profiled runs, not BENCH_RUNS.');
  if (PROFILE && (!Number.isInteger(profileRuns) || profileRuns < 1)) throw new Abort(`BENCH_PROFILE_RUNS=${process.env.BENCH_PROFILE_RUNS} is not a positive whole number.`);
  const requested = process.env.BENCH_RUNS === undefined ? (QUICK ? 5 : MIN_RUNS) : Number(process.env.BENCH_RUNS);
  if (!Number.isInteger(requested) || requested < 1) throw new Abort(`BENCH_RUNS=${process.env.BENCH_RUNS} is not a positive whole number.`);
  if (!QUICK && requested < MIN_RUNS) throw new Abort(`BENCH_RUNS=${requested}: the budget is judged on at least ${MIN_RUNS} runs. Set BENCH_QUICK=1 for a quick run that does not judge it.`);
  const RUNS = requested;

  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-bench-'));
  cleanups.push(() => fs.rmSync(temp, { recursive: true, force: true }));
  const caseTemp = (name: string) => {
    const d = path.join(temp, name);
    fs.mkdirSync(d, { recursive: true });
    return d;
  };

  const emu: Emulator = await startEmulator();
  cleanups.push(() => emu.stop());
  // Google's hosts and HashiCorp Vault only at their public names, through a CONNECT proxy that maps
  // them to the emulator.
  const proxy = await proxyToEmulator(emu, ['dev.azure.com', 'sts.googleapis.com', 'iamcredentials.googleapis.com', new URL(emu.vault.address).host]);
  cleanups.push(() => proxy.stop());

  // One federated connection for FetchOidcToken, AcrLoginFederated, AWS and Google.
  const tenantId = crypto.randomUUID();
  const id = crypto.randomUUID();
  const clientId = crypto.randomUUID();
  emu.addServiceConnection({ id, name: 'bench', scheme: 'WorkloadIdentityFederation', tenantId, clientId });
  const fed = emu.expectedFederation(id);
  emu.addApp({ clientId, tenantId, federatedCredentials: [{ issuer: fed.issuer, subject: fed.subject, audiences: ['api://AzureADTokenExchange'] }] });
  const conn = connectionEnv(emu, { id, scheme: 'WorkloadIdentityFederation', tenantId, clientId });
  // Every case runs in the environment the agent lays out for a job (tests/helpers/agent-job.ts):
  // about 100 pipeline variables and their VSTS_PUBLIC_VARIABLES / VSTS_SECRET_VARIABLES lists, the
  // SystemVssConnection endpoint, System.AccessToken as a secret in a build job, system.debug false
  // as on a normal run. The task, its baseline and node -e 0 get the same environment (Case.env);
  // the baseline reads only what it needs, task-lib loads all of it, and that cost is the task's.
  const env = (dir: string, inputs: Record<string, string> = {}, extra: Record<string, string> = {}, kind: JobKind = 'build') => ({
    ...jobEnv(emu, { tempDirectory: caseTemp(dir), debug: false, kind }),
    ...conn,
    INPUT_CONNECTEDSERVICENAMEARM: id,
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
    ...extra,
  });

  // AcrLoginFederated: the emulator's own host as the registry; an empty docker home.
  emu.addRegistry({ loginServer: emu.host, tenantId });
  const dockerHome = caseTemp('docker-home');

  // ValidateServiceConnection: a healthy connection, Entra issuer, subscription, AcrPush on a registry.
  const subscriptionId = crypto.randomUUID();
  const vId = crypto.randomUUID();
  const vClient = crypto.randomUUID();
  emu.addSubscription({ subscriptionId, tenantId, displayName: 'Bench' });
  emu.addServiceConnection({ id: vId, name: 'bench-validate', scheme: 'WorkloadIdentityFederation', tenantId, clientId: vClient, subscriptionId, issuerMode: 'entra' });
  const vFed = emu.expectedFederation(vId);
  emu.addApp({ clientId: vClient, tenantId, federatedCredentials: [{ issuer: vFed.issuer, subject: vFed.subject, audiences: ['api://AzureADTokenExchange'] }] });
  emu.assignRole({ principalId: vClient, scope: `/subscriptions/${subscriptionId}`, role: 'Contributor' });
  const validateEnv = {
    ...jobEnv(emu, { tempDirectory: caseTemp('validate'), debug: false }),
    ...connectionEnv(emu, { id: vId, scheme: 'WorkloadIdentityFederation', tenantId, clientId: vClient, subscriptionId, armUrl: `${emu.url}/` }),
    INPUT_CONNECTEDSERVICENAMEARM: vId,
    INPUT_SCOPE: `/subscriptions/${subscriptionId}/resourceGroups/build/providers/Microsoft.ContainerRegistry/registries/bench`,
    INPUT_REQUIREDROLES: 'AcrPush',
  };

  // AWS: a provider for the connection's issuer and a role trusting its subject.
  const awsProvider = fed.issuer.replace(/^https:\/\//, '');
  const roleArn = 'arn:aws:iam::123456789012:role/bench';
  emu.addAwsOidcProvider({ url: awsProvider, clientIds: ['api://AzureADTokenExchange'], accountId: '123456789012' });
  emu.addAwsRole({ arn: roleArn, trust: { issuer: awsProvider, sub: fed.subject, aud: 'api://AzureADTokenExchange' } });
  const awsInputs = { roleArn, stsEndpoint: `${emu.url}/` };

  // Google: a workload identity provider trusting the connection, a service account it may impersonate.
  const gcpProvider = { projectNumber: '123456789012', poolId: 'azure-pipelines', providerId: 'bench' };
  const providerName = `projects/${gcpProvider.projectNumber}/locations/global/workloadIdentityPools/${gcpProvider.poolId}/providers/${gcpProvider.providerId}`;
  const serviceAccount = 'deployer@bench-project.iam.gserviceaccount.com';
  emu.addGcpProvider({ ...gcpProvider, issuerUri: fed.issuer, allowedAudiences: ['api://AzureADTokenExchange'], attributeCondition: `assertion.sub == '${fed.subject}'` });
  emu.addGcpServiceAccount({ email: serviceAccount, members: [gcpPrincipal(gcpProvider, fed.subject)] });
  // Azure DevOps at its public name too: every request of the task goes through the agent's proxy.
  const gcpEnv = (dir: string, inputs: Record<string, string>) => ({
    ...jobEnv(emu, { tempDirectory: caseTemp(dir), debug: false, publicHosts: true }),
    ...connectionEnv(emu, { id, scheme: 'WorkloadIdentityFederation', tenantId, clientId, authorityUrl: null }),
    INPUT_CONNECTEDSERVICENAMEARM: id,
    INPUT_WORKLOADIDENTITYPROVIDER: providerName,
    INPUT_KEEPTOKENFILEFRESH: 'false',
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
    AGENT_PROXYURL: proxy.url,
  });

  // HashiCorp Vault at its public address (https://vault.fabrikam.com:8200), reached as the E2E tests
  // reach it: Azure DevOps and Vault by their public names through the agent's proxy, the baseline
  // tunnelling through it too. A HashiCorp Vault connection, a JWT role bound to its subject (a token
  // that lives an hour: the post-job case revokes the same token for the whole bench), a KV v2 mount
  // with one secret; the case reads two keys of it: the Oidctoken call, the login, one mount lookup,
  // one read (the fewest: the task reads a secret once however many keys it takes).
  emu.vault.configureJwtAuth({});
  emu.vault.addKvMount({ path: 'secret', version: 2 });
  emu.vault.putSecret('secret', 'ci/db', { user: 'bench-app', password: `pw-${crypto.randomBytes(8).toString('hex')}` });
  emu.vault.addPolicy('ci-read', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
  const vaultConn = { id: crypto.randomUUID(), url: emu.vault.address, scheme: 'None', parameters: { authMount: 'jwt', role: 'bench' } };
  emu.addServiceConnection({ id: vaultConn.id, name: 'bench-vault', type: 'WorkloadIdentityVault', scheme: 'None', tenantId: '', clientId: '', url: vaultConn.url, parameters: vaultConn.parameters });
  emu.vault.addJwtRole({ name: 'bench', boundSubject: emu.expectedFederation(vaultConn.id).subject, tokenPolicies: ['ci-read'], tokenTtlSeconds: 3600 });
  const vaultRequests = 4;
  const vaultEnv = (dir: string) => ({
    ...jobEnv(emu, { tempDirectory: caseTemp(dir), debug: false, publicHosts: true }),
    ...endpointEnv(vaultConn),
    // As the agent hands a YAML step that sets vaultConnection: connectionType and multilineValues at their defaults.
    INPUT_CONNECTIONTYPE: 'vault',
    INPUT_VAULTCONNECTION: vaultConn.id,
    INPUT_SECRETS: 'secret/ci/db user | DB_USER\nsecret/ci/db password | DB_PASSWORD',
    INPUT_EXPORTTOKEN: 'true',
    INPUT_MULTILINEVALUES: 'file',
    AGENT_PROXYURL: proxy.url,
  });

  // AuditServiceConnections, project scope with the job token: a project of 5 connections, 2 creators.
  const auditProject = { name: 'bench-audit', id: crypto.randomUUID() };
  emu.addProject(auditProject);
  const recently = new Date(Date.now() - 86_400_000).toISOString();
  const auditConnections: { scheme: 'WorkloadIdentityFederation' | 'ServicePrincipal'; issuerMode?: 'entra' | 'vstoken'; type?: string; used: boolean }[] = [
    { scheme: 'WorkloadIdentityFederation', issuerMode: 'vstoken', used: true },
    { scheme: 'WorkloadIdentityFederation', issuerMode: 'entra', used: true },
    { scheme: 'ServicePrincipal', used: true },
    { scheme: 'ServicePrincipal', used: false },
    { scheme: 'ServicePrincipal', type: 'dockerregistry', used: true },
  ];
  auditConnections.forEach((c, n) =>
    emu.addServiceConnection({
      id: crypto.randomUUID(), name: `audit-${n}`, projectName: auditProject.name, tenantId, clientId: crypto.randomUUID(), scheme: c.scheme,
      ...(c.issuerMode ? { issuerMode: c.issuerMode } : {}), ...(c.type ? { type: c.type } : {}),
      createdBy: { displayName: `Creator ${n % 2}`, inactive: n % 2 === 1 },
      ...(c.used ? { lastUsed: { pipeline: 'deploy', result: 'succeeded', finishTime: recently } } : {}),
    }),
  );
  // tasks/core/devops: the identity service's resource area, the project's list (both types at
  // once: no type filter), one execution history per connection, one identity batch per 100 creators.
  const auditRequests = 1 + 1 + auditConnections.length + Math.ceil(2 / 100);
  const auditEnv = {
    ...jobEnv(emu, { tempDirectory: caseTemp('audit'), debug: false }),
    SYSTEM_TEAMPROJECTID: auditProject.id,
    SYSTEM_TEAMPROJECT: auditProject.name,
    INPUT_SCOPE: 'project',
  };

  const task = (name: string, entry = 'index.js') => path.join(DIST, name, entry);
  const variable = (name: string) => new RegExp(`^##vso\\[task\\.setvariable variable=${name};`, 'm');
  const cases: Case[] = [
    { label: 'FetchOidcToken, idToken only', kind: 'main', script: task('FetchOidcTokenV1'), baseline: BASELINE, env: env('fetch'), requests: 1, expect: [variable('idToken')] },
    { label: 'FetchOidcToken, with exchange', kind: 'main', script: task('FetchOidcTokenV1'), baseline: BASELINE, env: env('fetch-scope', { accessTokenScope: 'https://management.azure.com/.default' }), requests: 2, expect: [variable('idToken'), variable('accessToken')] },
    { label: 'AcrLoginFederated, 1 registry', kind: 'main', script: task('AcrLoginFederatedV1'), baseline: BASELINE, env: env('acr', { registries: emu.host, trustedRegistryHosts: emu.host }, { DOCKER_CONFIG: dockerHome }), requests: 3, expect: [variable('DOCKER_CONFIG')] },
    // A classic release job: Release.* variables, no System.AccessToken, the SystemVssConnection on the
    // Release Management host (with the emulator on loopback, Azure DevOps Server-like, the collection).
    { label: 'FetchOidcToken, exchange, release', kind: 'main', script: task('FetchOidcTokenV1'), baseline: BASELINE, env: env('fetch-release', { accessTokenScope: 'https://management.azure.com/.default' }, {}, 'release'), requests: 2, expect: [variable('idToken'), variable('accessToken')] },
    { label: 'AcrLoginFederated, release', kind: 'main', script: task('AcrLoginFederatedV1'), baseline: BASELINE, env: env('acr-release', { registries: emu.host, trustedRegistryHosts: emu.host }, { DOCKER_CONFIG: dockerHome }, 'release'), requests: 3, expect: [variable('DOCKER_CONFIG')] },
    { label: 'ValidateServiceConnection, full', kind: 'main', script: task('ValidateServiceConnectionV1'), baseline: BASELINE, env: validateEnv, requests: 6, expect: [/^##vso\[task\.setvariable variable=validationStatus;[^\]]*\]ok$/m] },
    { label: 'AwsAssumeRoleFederated', kind: 'main', script: task('AwsAssumeRoleFederatedV1'), baseline: BASELINE, env: env('aws', awsInputs), requests: 2, expect: [variable('AWS_SECRET_ACCESS_KEY')] },
    { label: 'GcpAuthFederated, direct', kind: 'main', script: task('GcpAuthFederatedV1'), baseline: BASELINE, env: gcpEnv('gcp', {}), requests: 2, expect: [variable('GOOGLE_APPLICATION_CREDENTIALS')] },
    { label: 'GcpAuthFederated, impersonation', kind: 'main', script: task('GcpAuthFederatedV1'), baseline: BASELINE, env: gcpEnv('gcp-sa', { serviceAccount, tokenFormat: 'access_token' }), requests: 3, expect: [variable('GOOGLE_APPLICATION_CREDENTIALS'), variable('accessToken')] },
    { label: `AuditServiceConnections, project (${auditConnections.length})`, kind: 'main', script: task('AuditServiceConnectionsV1'), baseline: BASELINE, env: auditEnv, requests: auditRequests, expect: [variable('connectionsAudited'), /^##vso\[task\.uploadsummary\]/m] },
    { label: 'VaultSecretsFederated, 2 secrets (KV v2)', kind: 'main', script: task('VaultSecretsFederatedV1'), baseline: BASELINE, env: vaultEnv('vault'), requests: vaultRequests, expect: [variable('DB_USER'), variable('DB_PASSWORD'), variable('VAULT_TOKEN')] },
  ];

  /**
   * A post-job case: the main step run once (keepTokenFileFresh false: no refresher), the task
   * variables it set handed over as the agent does, its folders snapshotted and restored before
   * every run. `requests`: what the post-job step sends (revoke-self for Vault), and `restore`, what
   * else of the main step's state a run undoes (the Vault token it revokes, live again); a step with
   * requests may leave no folder.
   */
  async function postCase(label: string, taskName: string, caseEnv: Record<string, string>, more: { requests: number; restore: (state: Record<string, string>) => () => void } | undefined = undefined): Promise<Case> {
    const r = await run(process.execPath, [task(taskName)], caseEnv);
    if (r.code !== 0 || !/##vso\[task\.complete result=Succeeded/.test(r.stdout)) throw new Abort(`${label}: the main step that prepares the post-job state failed (exit ${r.code}):\n${tail(r.stdout + r.stderr)}`);
    const state: Record<string, string> = {};
    for (const c of parseCommands(r.stdout)) if (c.name === 'task.settaskvariable') state[c.properties.variable] = c.value;
    const dirs = Object.entries(state).filter(([k]) => /(\.Dir|JobConfigDir)$/.test(k)).map(([, v]) => v);
    if ((!more && !dirs.length) || dirs.some((d) => !fs.existsSync(d))) throw new Abort(`${label}: the main step left no folder for its post-job step (task variables: ${JSON.stringify(state)})`);
    const snapshots = dirs.map(snapshotDir);
    if (dirs.length && !snapshots.some((s) => s.entries.some((e) => !e.dir))) throw new Abort(`${label}: the main step's folders hold no file`);
    const stateEnv = Object.fromEntries(Object.entries(state).map(([k, v]) => [taskVariableEnv(k), v]));
    const restore = more?.restore(state);
    return {
      label, kind: 'post', script: task(taskName, 'post.js'), baseline: POST_BASELINE, env: { ...caseEnv, ...stateEnv }, requests: more?.requests ?? 0,
      expect: [/^##vso\[task\.complete result=Succeeded;/m], prepare: () => {
        snapshots.forEach(restoreDir);
        restore?.();
      }, gone: dirs,
    };
  }
  cases.push(
    await postCase('FetchOidcToken post-job, token file', 'FetchOidcTokenV1', env('fetch-post', { exportAzureIdentityEnv: 'true', keepTokenFileFresh: 'false' })),
    await postCase('AcrLoginFederated post-job', 'AcrLoginFederatedV1', env('acr-post', { registries: emu.host, trustedRegistryHosts: emu.host }, { DOCKER_CONFIG: dockerHome })),
    await postCase('AwsAssumeRoleFederated post-job, file', 'AwsAssumeRoleFederatedV1', env('aws-post', { ...awsInputs, exportWebIdentityFile: 'true', keepTokenFileFresh: 'false' })),
    await postCase('GcpAuthFederated post-job', 'GcpAuthFederatedV1', gcpEnv('gcp-post', {})),
    // revoke-self with the token the main step logged in with, made live again before every run (a
    // revoked token would be refused, and the step would end with a warning).
    await postCase('VaultSecretsFederated post-job', 'VaultSecretsFederatedV1', vaultEnv('vault-post'), {
      requests: 1,
      restore: (state) => {
        const token = state['WorkloadIdentity.Vault.Token'];
        if (!token || !emu.vault.isValid(token)) throw new Abort(`VaultSecretsFederated post-job: the main step left no live Vault token (task variables: ${Object.keys(state).join(', ')})`);
        return () => void emu.vault.reinstateToken(token);
      },
    }),
  );

  // The environment each case is measured in is the agent's for a job, as the comment on env() says.
  for (const c of cases) {
    const publicNames = JSON.parse(c.env.VSTS_PUBLIC_VARIABLES ?? '[]') as string[];
    if (c.env.SYSTEM_DEBUG !== 'false' || publicNames.length < 80 || !c.env.ENDPOINT_AUTH_SYSTEMVSSCONNECTION || !c.env.VSTS_SECRET_VARIABLES) {
      throw new Abort(`${c.label}: not a job's environment (system.debug=${c.env.SYSTEM_DEBUG}, ${publicNames.length} public variables): every case runs in one`);
    }
  }

  const nodes: [string, string][] = [['Node 20', process.execPath]];
  const failures: Failure[] = [];
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    nodes.push(['Node 24', (require(path.join(root, 'scripts', 'node24.cjs')) as { ensureNode24(): string }).ensureNode24()]);
  } catch (e) {
    failures.push({ kind: 'exact', text: `Node 24 is unavailable (${(e as Error).message}): the budget holds on both handlers` });
  }

  const probeFile = path.join(temp, 'probe.json');
  const report: string[] = [];
  const profiles: string[] = [];
  const summary: string[] = [];
  let maxRss = 0;

  for (const [label, node] of nodes) {
    const version = (await run(node, ['--version'], {})).stdout.trim();

    /** One measured run: state prepared, requests counted, output and files checked, probe read. */
    const measure = async (c: Case, who: Who, flags: string[] = []): Promise<Sample & { keys: string[] }> => {
      c.prepare?.();
      fs.rmSync(probeFile, { force: true });
      emu.resetCounts();
      const args = who === 'task' ? [c.script] : who === 'baseline' ? [c.baseline] : ['-e', '0'];
      const r = await run(node, [...flags, '-r', PROBE, ...args], { ...c.env, BENCH_PROBE_FILE: probeFile });
      const requests = totalRequests(emu);
      const what = `${label}, ${c.label}: the ${WHO_NAME[who]} (${who === 'empty' ? 'node -e 0' : path.relative(root, args[0])})`;
      if (r.code !== 0) throw new Abort(`${what} exited with ${r.code ?? r.signal}:\n${tail(r.stdout + r.stderr)}`);
      let keys: string[] = [];
      if (who !== 'empty') {
        if (!/^##vso\[task\.complete result=Succeeded;/m.test(r.stdout) || /result=Failed/.test(r.stdout + r.stderr)) throw new Abort(`${what} did not succeed:\n${tail(r.stdout + r.stderr)}`);
        const missing = c.expect.filter((re) => !re.test(r.stdout));
        if (missing.length) throw new Abort(`${what} printed none of ${missing.join(', ')}:\n${tail(r.stdout)}`);
        keys = commandKeys(r.stdout);
        const left = (c.gone ?? []).filter((p) => fs.existsSync(p));
        if (left.length) throw new Abort(`${what} left ${left.join(', ')} behind`);
      }
      if (!fs.existsSync(probeFile)) throw new Abort(`${what}: the probe wrote nothing (was it preloaded?)`);
      const p = JSON.parse(fs.readFileSync(probeFile, 'utf8')) as { cpuMicros: number; maxRssKiB: number };
      return { ms: r.ms, cpuMs: p.cpuMicros / 1000, rssMiB: p.maxRssKiB / 1024, requests, keys };
    };

    /** The triple of one iteration; the baseline must print the task's commands. */
    const triple = async (c: Case, i: number) => {
      const order: Who[] = ['task', 'baseline', 'empty'];
      const rotated = [...order.slice(i % 3), ...order.slice(0, i % 3)];
      const got = {} as Record<Who, Sample & { keys: string[] }>;
      for (const who of rotated) got[who] = await measure(c, who);
      if (got.task.keys.join('\n') !== got.baseline.keys.join('\n')) {
        const only = (a: string[], b: string[]) => a.filter((k) => !b.includes(k)).join('; ') || '(none)';
        throw new Abort(`${label}, ${c.label}: the baseline does not print the task's commands.\n  only the task: ${only(got.task.keys, got.baseline.keys)}\n  only the baseline: ${only(got.baseline.keys, got.task.keys)}`);
      }
      return got;
    };

    // A warm-up triple per case (checked like every run, not counted): file cache, and an early stop.
    for (const c of cases) await triple(c, 0);
    if (PROFILE) {
      profiles.push(...profileReport(label, version, profileRuns, await profileCases(label, cases, profileRuns, measure)));
      continue;
    }
    const samples = cases.map(() => ({ task: [] as Sample[], baseline: [] as Sample[], empty: [] as Sample[], ratio: [] as number[], ratioEmpty: [] as number[], ratioCpu: [] as number[] }));
    for (let i = 0; i < RUNS; i++) {
      for (const [n, c] of cases.entries()) {
        const got = await triple(c, i);
        const s = samples[n];
        for (const who of ['task', 'baseline', 'empty'] as Who[]) s[who].push(got[who]);
        s.ratio.push(got.task.ms / got.baseline.ms);
        s.ratioEmpty.push(got.task.ms / got.empty.ms);
        s.ratioCpu.push(got.task.cpuMs / got.baseline.cpuMs);
      }
      if (process.stderr.isTTY) process.stderr.write(`\r${label}: run ${i + 1} of ${RUNS}`);
    }
    process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}${label}: ${RUNS} runs of ${cases.length} cases done.\n`);

    const ms = (x: number) => `${x.toFixed(1)}`.padStart(6);
    const head = `  ${'Case'.padEnd(40)} ${'task'.padStart(6)} ${'base'.padStart(6)} ${'-e 0'.padStart(6)}  ${'x base'.padStart(6)} ${'x -e 0'.padStart(6)}   ${'cpu'.padStart(6)} ${'base'.padStart(6)} ${'x base'.padStart(6)}  ${'req'.padStart(5)}  ${'RSS MiB'.padStart(7)}`;
    report.push(
      '',
      `${label} (${version}): ${RUNS} interleaved runs per case (task, baseline, node -e 0; the order rotating each run)${QUICK ? ' [BENCH_QUICK: does not judge the budget]' : ''}.`,
      '  Wall and CPU in ms, medians; x base, x -e 0: the median of per-run ratios (x base is judged: at most 1.5).',
      '  The baseline of a main step makes the same requests; of a post-job step (marked *), it deletes the same files (and revokes the same Vault token).',
      head,
    );
    const ratios: { main: number[]; post: number[] } = { main: [], post: [] };
    let over = 0;
    for (const [n, c] of cases.entries()) {
      const s = samples[n];
      const m = (who: Who, k: 'ms' | 'cpuMs') => median(s[who].map((x) => x[k]));
      const ratio = median(s.ratio);
      const rss = Math.max(...s.task.map((x) => x.rssMiB));
      maxRss = Math.max(maxRss, rss);
      const reqTask = [...new Set(s.task.map((x) => x.requests))];
      const reqBase = [...new Set(s.baseline.map((x) => x.requests))];
      const reqEmpty = [...new Set(s.empty.map((x) => x.requests))];
      ratios[c.kind].push(ratio);
      const overRatio = ratio > BUDGET.ratio;
      if (overRatio) over++;
      report.push(
        `  ${`${c.kind === 'post' ? '* ' : ''}${c.label}`.padEnd(40)} ${ms(m('task', 'ms'))} ${ms(m('baseline', 'ms'))} ${ms(m('empty', 'ms'))}  ${ratio.toFixed(2).padStart(6)} ${median(s.ratioEmpty).toFixed(2).padStart(6)}   ${ms(m('task', 'cpuMs'))} ${ms(m('baseline', 'cpuMs'))} ${median(s.ratioCpu).toFixed(2).padStart(6)}  ${`${reqTask.join('/')}/${reqBase.join('/')}`.padStart(5)}  ${rss.toFixed(1).padStart(7)}${overRatio ? '  OVER' : ''}`,
      );
      const where = `${label}: ${c.label}${c.kind === 'post' ? ' (post-job)' : ''}`;
      if (overRatio) failures.push({ kind: 'budget', text: `${where}: ${ratio.toFixed(2)}x its ${c.kind === 'post' ? 'post-job script' : 'baseline'} (median of ${RUNS} per-run ratios) > ${BUDGET.ratio}` });
      if (reqTask.length !== 1 || reqTask[0] !== c.requests) failures.push({ kind: 'exact', text: `${where}: the task made ${reqTask.join(' or ')} requests, the case needs exactly ${c.requests}` });
      if (reqBase.length !== 1 || reqBase[0] !== c.requests) failures.push({ kind: 'exact', text: `${where}: the baseline made ${reqBase.join(' or ')} requests, the case needs exactly ${c.requests} (the yardstick is wrong)` });
      if (reqEmpty.some((x) => x !== 0)) failures.push({ kind: 'exact', text: `${where}: ${reqEmpty.join(' or ')} requests arrived during node -e 0 (something else talks to the emulator)` });
      if (rss > BUDGET.rssMiB) failures.push({ kind: 'budget', text: `${where}: peak RSS ${rss.toFixed(1)} MiB > ${BUDGET.rssMiB} MiB` });
    }
    report.push(`  req: the task's requests / the baseline's, counted at the emulator. ${over} of ${cases.length} cases over 1.5x.`);
    const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}x`;
    summary.push(`${label} (${version.replace(/^v/, '')}): main steps ${range(ratios.main)}, post-job ${range(ratios.post)} (${over} of ${cases.length} over)`);
  }
  await proxy.stop();
  await emu.stop();
  if (PROFILE) {
    console.log(profiles.join('\n'));
    console.log(`\nBENCH_PROFILE=1: ${profileRuns} profiled runs each of every task and its baseline on ${nodes.map(([l]) => l).join(' and ')}; no budget judged, no timed runs, no organisation audit.`);
    console.log(`(the bench took ${((Date.now() - started) / 1000).toFixed(0)} s)`);
    const exact = failures.filter((f) => f.kind === 'exact');
    if (exact.length) return exit(1, `\nbench FAILED:\n  ${exact.map((f) => f.text).join('\n  ')}`);
    return exit(0);
  }

  const audit = await benchAudit(nodes, temp, probeFile, failures);
  report.push('', ...audit.lines);

  const vsix = fs.existsSync(path.join(root, 'dist')) ? fs.readdirSync(path.join(root, 'dist')).find((f) => f.endsWith('.vsix')) : undefined;
  const vsixBytes = vsix ? fs.statSync(path.join(root, 'dist', vsix)).size : NaN;
  report.push('', `.vsix: ${vsix ? `${(vsixBytes / 1024).toFixed(0)} KiB (${vsix})` : 'not built (npm run bench packages it first)'}`);
  if (!(vsixBytes <= BUDGET.vsixBytes)) failures.push({ kind: 'exact', text: vsix ? `.vsix ${vsixBytes} bytes > ${BUDGET.vsixBytes}` : 'no .vsix in dist/' });

  console.log(report.join('\n'));
  console.log(
    `\nSummary: task / dependency-free baseline, median of ${RUNS} per-run wall-time ratios (budget 1.5x): ${summary.join('; ')}. ` +
      `Requests exact (${cases.filter((c) => c.kind === 'main').map((c) => c.requests).join(', ')}; post-job ${cases.filter((c) => c.kind === 'post').map((c) => c.requests).join(', ')}); peak RSS at most ${maxRss.toFixed(1)} MiB; .vsix ${vsix ? `${(vsixBytes / 1024).toFixed(0)} KiB` : 'not built'}; ${audit.summary}.`,
  );
  console.log(`(the bench took ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  const exact = failures.filter((f) => f.kind === 'exact');
  const budget = failures.filter((f) => f.kind === 'budget');
  if (QUICK) {
    if (budget.length) console.log(`\nBENCH_QUICK=1 (${RUNS} runs): this result does not judge the budget; these would be over it:\n  ${budget.map((f) => f.text).join('\n  ')}`);
    else console.log(`\nBENCH_QUICK=1 (${RUNS} runs): this result does not judge the budget.`);
    if (exact.length) return exit(1, `\nbench FAILED:\n  ${exact.map((f) => f.text).join('\n  ')}`);
    return exit(0);
  }
  if (failures.length) return exit(1, `\nbench FAILED, over budget:\n  ${failures.map((f) => f.text).join('\n  ')}`);
  console.log(`\nAll budgets met: every main step within 1.5x of its dependency-free baseline and every post-job step within 1.5x of its post-job script on Node 20 and Node 24, exact request counts, peak RSS at most 80 MiB, .vsix at most ${BUDGET.vsixBytes / 1024} KiB, the organisation audit under 20 s and 150 MiB with the minimum of requests.`);
  return exit(0);
}

/**
 * BENCH_PROFILE=1 on one Node version: each case's task and baseline `runs` times each, alternating,
 * checked as the timed runs are (and their requests exact), each with --cpu-prof into a temp folder of
 * its own that holds one profile at a time and is removed on every way out; every profile attributed
 * (tests/bench/profile.ts).
 */
async function profileCases(
  label: string,
  cases: Case[],
  runs: number,
  measure: (c: Case, who: Who, flags: string[]) => Promise<Sample & { keys: string[] }>,
): Promise<CaseProfile[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-bench-cpuprof-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const flags = ['--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', dir];
  const out: CaseProfile[] = [];
  for (const [n, c] of cases.entries()) {
    const own = { task: ownFiles(c.script, PROBE, true), baseline: ownFiles(c.baseline, PROBE, false) };
    const p: CaseProfile = { label: `${c.kind === 'post' ? '* ' : ''}${c.label}`, task: [], baseline: [], wall: { task: [], baseline: [] } };
    for (let i = 0; i < runs; i++) {
      const keys: Record<string, string> = {};
      for (const who of (i % 2 ? ['baseline', 'task'] : ['task', 'baseline']) as ('task' | 'baseline')[]) {
        const what = `${label}, ${c.label}: the ${who}'s profiled run ${i + 1}`;
        const s = await measure(c, who, flags);
        if (s.requests !== c.requests) throw new Abort(`${what} made ${s.requests} requests, the case needs exactly ${c.requests}`);
        keys[who] = s.keys.join('\n');
        try {
          p[who].push(attribute(takeProfile(dir, what), own[who]));
        } catch (e) {
          throw new Abort((e as Error).message);
        }
        p.wall[who].push(s.ms);
      }
      if (keys.task !== keys.baseline) throw new Abort(`${label}, ${c.label}: in profiled run ${i + 1}, the baseline does not print the task's commands`);
    }
    out.push(p);
    if (process.stderr.isTTY) process.stderr.write(`\r${label}: profiled case ${n + 1} of ${cases.length}`);
  }
  process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}${label}: ${runs} profiled runs each of the task and baseline of ${cases.length} cases done.\n`);
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

/**
 * AuditServiceConnections@1, organisation scope with the job token, against an emulator of its own
 * holding 100 projects x 20 connections and answering each request after 20 ms. The fewest requests
 * the API allows: 1 resource-area lookup + pages of projects + one list per project + one history per
 * connection + one identity request per 100 creators (no Graph reads with the job token).
 */
async function benchAudit(nodes: [string, string][], temp: string, probeFile: string, failures: Failure[]): Promise<{ lines: string[]; summary: string }> {
  const emu = await startEmulator();
  cleanups.push(() => emu.stop());
  const lines: string[] = [];
  const walls: string[] = [];
  const tenantId = crypto.randomUUID();
  for (let p = 0; p < AUDIT.projects; p++) {
    const projectName = `project-${String(p).padStart(3, '0')}`;
    emu.addProject({ name: projectName });
    for (let c = 0; c < AUDIT.perProject; c++) {
      const n = p * AUDIT.perProject + c;
      const kind = n % 4;
      emu.addServiceConnection({
        id: crypto.randomUUID(), name: `conn-${n}`, projectName, tenantId, clientId: crypto.randomUUID(),
        scheme: kind < 2 ? 'WorkloadIdentityFederation' : 'ServicePrincipal', issuerMode: kind === 1 ? 'entra' : 'vstoken',
        isReady: kind !== 3, ...(kind === 3 ? { operationStatus: { state: 'Failed', statusMessage: 'rotation failed' } } : {}),
        createdBy: { displayName: `Creator ${n % AUDIT.creators}`, inactive: n % AUDIT.creators === 7 },
        ...(n % 5 ? { lastUsed: { pipeline: 'deploy', result: 'succeeded', finishTime: new Date(Date.now() - 86_400_000).toISOString() } } : {}),
      });
    }
  }
  const projects = AUDIT.projects + 1; // and the default project, web
  const expected = 1 + Math.ceil(projects / 100) + projects + AUDIT.projects * AUDIT.perProject + Math.ceil(AUDIT.creators / 100);
  const dir = path.join(temp, 'org-audit');
  fs.mkdirSync(dir, { recursive: true });
  const env = { ...jobEnv(emu, { tempDirectory: dir, debug: false }), INPUT_SCOPE: 'organization', WORKLOADIDENTITY_HTTPRETRIES: '0' };
  const task = path.join(DIST, 'AuditServiceConnectionsV1', 'index.js');
  for (const [label, node] of nodes) {
    const samples: Sample[] = [];
    for (let i = 0; i < AUDIT.runs; i++) {
      emu.resetCounts();
      emu.latencyMs = AUDIT.latencyMs;
      fs.rmSync(probeFile, { force: true });
      const r = await run(node, ['-r', PROBE, task], { ...env, BENCH_PROBE_FILE: probeFile });
      emu.latencyMs = 0;
      if (r.code !== 0 || !/##vso\[task\.complete result=Succeeded/.test(r.stdout)) throw new Abort(`${label}: the organisation audit failed (exit ${r.code ?? r.signal}):\n${tail(r.stdout + r.stderr)}`);
      const p = JSON.parse(fs.readFileSync(probeFile, 'utf8')) as { cpuMicros: number; maxRssKiB: number };
      samples.push({ ms: r.ms, cpuMs: p.cpuMicros / 1000, rssMiB: p.maxRssKiB / 1024, requests: totalRequests(emu) });
      if (emu.maxInFlight() > 8) failures.push({ kind: 'exact', text: `${label}: the organisation audit had ${emu.maxInFlight()} requests in flight (at most 8)` });
    }
    const ms = median(samples.map((x) => x.ms));
    const rss = Math.max(...samples.map((x) => x.rssMiB));
    const requests = [...new Set(samples.map((x) => x.requests))].join('/');
    walls.push(`${(ms / 1000).toFixed(1)} s`);
    lines.push(`${label}: AuditServiceConnections, organisation of ${AUDIT.projects} projects x ${AUDIT.perProject} connections, ${AUDIT.latencyMs} ms per request: wall ${(ms / 1000).toFixed(2)} s (median of ${AUDIT.runs}), cpu ${(median(samples.map((x) => x.cpuMs)) / 1000).toFixed(2)} s, peak RSS ${rss.toFixed(1)} MiB, requests ${requests} (minimum ${expected})`);
    if (ms > AUDIT.budgetMs) failures.push({ kind: 'budget', text: `${label}: the organisation audit took ${(ms / 1000).toFixed(1)} s > ${AUDIT.budgetMs / 1000} s` });
    if (rss > AUDIT.budgetRssMiB) failures.push({ kind: 'budget', text: `${label}: the organisation audit peaked at ${rss.toFixed(1)} MiB > ${AUDIT.budgetRssMiB} MiB` });
    if (requests !== String(expected)) failures.push({ kind: 'exact', text: `${label}: the organisation audit made ${requests} requests, the minimum is ${expected}` });
  }
  await emu.stop();
  return { lines, summary: `organisation audit (${AUDIT.projects} x ${AUDIT.perProject}) ${walls.join(' / ')}` };
}

main().catch((e) => exit(1, `\nbench FAILED: ${e instanceof Abort ? e.message : (e as Error)?.stack ?? e}\n(The emulators and proxies are stopped.)`));
