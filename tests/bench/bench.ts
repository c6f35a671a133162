/**
 * npm run bench: the bundled FetchOidcToken against the emulator, alternating with `node -e 0`
 * and with a dependency-free script making the same requests, on Node 20 and Node 24.
 * Prints medians, ratios, peak RSS, requests per run and the .vsix size; fails on a budget.
 */
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, Emulator } from '../emulator';
import { connectionEnv, jobEnv } from '../helpers/agent';
import { DIST } from '../helpers/task-process';

const RUNS = Math.max(10, Number(process.env.BENCH_RUNS ?? 15));
const root = path.resolve(__dirname, '..', '..', '..');
// The audit case: an organisation of 100 projects x 20 connections, 20 ms per request.
const AUDIT = { projects: 100, perProject: 20, latencyMs: 20, creators: 150, runs: 3, budgetMs: 20_000, budgetRssMiB: 150 };
const BUDGET = { ratioWithExchange: 2.0, ratioAcr: 2.5, ratioValidate: 3.0, ratioAws: 2.0, rssMiB: 80, requestsWithout: 1, requestsWith: 2, requestsAcr: 3, requestsValidate: 6, requestsAws: 2, vsixBytes: 1024 * 1024 };

interface Sample { ms: number; cpuMs: number; rssMiB: number; requests?: number }

function run(node: string, args: string[], env: Record<string, string>, probeFile?: string): Promise<{ ms: number; out: string; code: number | null }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const fullEnv = { PATH: process.env.PATH ?? '', ...env, ...(probeFile ? { BENCH_PROBE_FILE: probeFile } : {}) };
    const child = spawn(node, args, { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, out, code }));
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function node24(): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(root, 'scripts', 'node24.cjs')) as { ensureNode24(): string };
    return mod.ensureNode24();
  } catch (e) {
    console.log(`Node 24 unavailable: ${(e as Error).message}`);
    return undefined;
  }
}

async function main(): Promise<void> {
  const emu: Emulator = await startEmulator();
  const tenantId = crypto.randomUUID();
  const id = crypto.randomUUID();
  const clientId = crypto.randomUUID();
  emu.addServiceConnection({ id, name: 'bench', scheme: 'WorkloadIdentityFederation', tenantId, clientId });
  const fed = emu.expectedFederation(id);
  emu.addApp({ clientId, tenantId, federatedCredentials: [{ issuer: fed.issuer, subject: fed.subject, audiences: ['api://AzureADTokenExchange'] }] });
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-bench-'));
  const base = { ...jobEnv(emu, { tempDirectory: temp, debug: false }), ...connectionEnv(emu, { id, scheme: 'WorkloadIdentityFederation', tenantId, clientId }), INPUT_CONNECTEDSERVICENAMEARM: id };
  const withScope = { ...base, INPUT_ACCESSTOKENSCOPE: 'https://management.azure.com/.default' };
  emu.addRegistry({ loginServer: emu.host, tenantId });
  const emptyDockerHome = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-bench-docker-'));
  const acrEnv = { ...base, INPUT_REGISTRIES: emu.host, INPUT_TRUSTEDREGISTRYHOSTS: emu.host, DOCKER_CONFIG: emptyDockerHome };
  const acrTask = path.join(DIST, 'AcrLoginFederatedV1', 'index.js');
  // A healthy connection for a full validation: Entra issuer, subscription, AcrPush on a registry.
  const subscriptionId = crypto.randomUUID();
  const vId = crypto.randomUUID();
  const vClient = crypto.randomUUID();
  emu.addSubscription({ subscriptionId, tenantId, displayName: 'Bench' });
  emu.addServiceConnection({ id: vId, name: 'bench-validate', scheme: 'WorkloadIdentityFederation', tenantId, clientId: vClient, subscriptionId, issuerMode: 'entra' });
  const vFed = emu.expectedFederation(vId);
  emu.addApp({ clientId: vClient, tenantId, federatedCredentials: [{ issuer: vFed.issuer, subject: vFed.subject, audiences: ['api://AzureADTokenExchange'] }] });
  const registryScope = `/subscriptions/${subscriptionId}/resourceGroups/build/providers/Microsoft.ContainerRegistry/registries/bench`;
  emu.assignRole({ principalId: vClient, scope: `/subscriptions/${subscriptionId}`, role: 'Contributor' });
  const validateEnv = {
    ...jobEnv(emu, { tempDirectory: temp, debug: false }),
    ...connectionEnv(emu, { id: vId, scheme: 'WorkloadIdentityFederation', tenantId, clientId: vClient, subscriptionId, armUrl: `${emu.url}/` }),
    INPUT_CONNECTEDSERVICENAMEARM: vId,
    INPUT_SCOPE: registryScope,
    INPUT_REQUIREDROLES: 'AcrPush',
  };
  const validateTask = path.join(DIST, 'ValidateServiceConnectionV1', 'index.js');
  // AWS: a provider for the connection's issuer and a role trusting its subject.
  const provider = fed.issuer.replace(/^https:\/\//, '');
  const roleArn = 'arn:aws:iam::123456789012:role/bench';
  emu.addAwsOidcProvider({ url: provider, clientIds: ['api://AzureADTokenExchange'], accountId: '123456789012' });
  emu.addAwsRole({ arn: roleArn, trust: { issuer: provider, sub: fed.subject, aud: 'api://AzureADTokenExchange' } });
  const awsEnv = { ...base, INPUT_ROLEARN: roleArn, INPUT_STSENDPOINT: `${emu.url}/` };
  const awsTask = path.join(DIST, 'AwsAssumeRoleFederatedV1', 'index.js');
  const task = path.join(DIST, 'FetchOidcTokenV1', 'index.js');
  const baseline = path.join(__dirname, 'baseline.js');
  const probe = path.join(__dirname, 'probe.js');
  const probeFile = path.join(temp, 'probe.json');

  const nodes: [string, string][] = [['Node 20', process.execPath]];
  const n24 = node24();
  if (n24) nodes.push(['Node 24', n24]);

  const vsix = fs.readdirSync(path.join(root, 'dist')).find((f) => f.endsWith('.vsix'));
  const vsixBytes = vsix ? fs.statSync(path.join(root, 'dist', vsix)).size : NaN;
  const failures: string[] = [];
  const rows: string[] = [];

  for (const [label, node] of nodes) {
    const version = (await run(node, ['--version'], {})).out.trim();
    const s: Record<string, Sample[]> = { empty: [], task: [], taskScope: [], base: [], baseScope: [], acr: [], baseAcr: [], validate: [], baseValidate: [], aws: [], baseAws: [] };
    const measure = async (key: string, args: string[], env: Record<string, string>, count: boolean) => {
      emu.resetCounts();
      fs.rmSync(probeFile, { force: true });
      const r = await run(node, ['-r', probe, ...args], env, probeFile);
      const requests = count ? Object.values(emu.counts()).reduce((a, b) => a + b, 0) : undefined;
      if (r.code !== 0 || /result=Failed/.test(r.out)) throw new Error(`${label} ${key} failed:\n${r.out.slice(-2000)}`);
      const p = JSON.parse(fs.readFileSync(probeFile, 'utf8')) as { cpuMicros: number; maxRssKiB: number };
      s[key].push({ ms: r.ms, cpuMs: p.cpuMicros / 1000, rssMiB: p.maxRssKiB / 1024, requests });
    };
    // Warm the file cache once, then alternate so drift hits every contender alike.
    await run(node, [task], base);
    for (let i = 0; i < RUNS; i++) {
      // Same environment as the task: NODE_EXTRA_CA_CERTS alone costs every Node process ~40 ms at start.
      await measure('empty', ['-e', '0'], base, false);
      await measure('task', [task], base, true);
      await measure('base', [baseline], base, true);
      await measure('taskScope', [task], withScope, true);
      await measure('baseScope', [baseline], withScope, true);
      await measure('acr', [acrTask], acrEnv, true);
      await measure('baseAcr', [baseline], acrEnv, true);
      await measure('validate', [validateTask], validateEnv, true);
      await measure('baseValidate', [baseline], validateEnv, true);
      await measure('aws', [awsTask], awsEnv, true);
      await measure('baseAws', [baseline], awsEnv, true);
    }
    const m = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v.map((x) => x.ms))]));
    const c = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v.map((x) => x.cpuMs))]));
    const rss = (k: string) => Math.max(...s[k].map((x) => x.rssMiB));
    const req = (k: string) => [...new Set(s[k].map((x) => x.requests))].join('/');
    const ratio = (a: number, b: number) => (a / b).toFixed(2);
    const row = (name: string, k: string, b: string) =>
      `  ${name.padEnd(32)} ${m[k].toFixed(1).padStart(6)} ms (${ratio(m[k], m.empty)}x, script ${ratio(m[k], m[b])}x)  cpu ${c[k].toFixed(1).padStart(5)} ms (${ratio(c[k], c.empty)}x, script ${ratio(c[k], c[b])}x)  ${req(k)} req  ${rss(k).toFixed(1)} MiB`;
    rows.push(
      `${label} (${version}), ${RUNS} runs each, medians; ratios to node -e 0 and to the dependency-free script:`,
      `  ${'node -e 0'.padEnd(32)} ${m.empty.toFixed(1).padStart(6)} ms                           cpu ${c.empty.toFixed(1).padStart(5)} ms`,
      `  ${'script, 1 / 2 / 3 / 6 requests'.padEnd(32)} ${[m.base, m.baseScope, m.baseAcr, m.baseValidate].map((x) => x.toFixed(1)).join(' / ')} ms  cpu ${[c.base, c.baseScope, c.baseAcr, c.baseValidate].map((x) => x.toFixed(1)).join(' / ')} ms`,
      row('FetchOidcToken (idToken only)', 'task', 'base'),
      row('FetchOidcToken (with exchange)', 'taskScope', 'baseScope'),
      row('AcrLoginFederated (1 registry)', 'acr', 'baseAcr'),
      row('ValidateServiceConnection (full)', 'validate', 'baseValidate'),
      row('AwsAssumeRoleFederated', 'aws', 'baseAws'),
    );
    const rssAws = rss('aws');
    if (m.aws / m.empty > BUDGET.ratioAws) failures.push(`${label}: AwsAssumeRoleFederated ratio ${ratio(m.aws, m.empty)} > ${BUDGET.ratioAws}`);
    if (rssAws > BUDGET.rssMiB) failures.push(`${label}: AwsAssumeRoleFederated peak RSS ${rssAws.toFixed(1)} MiB > ${BUDGET.rssMiB}`);
    if (req('aws') !== String(BUDGET.requestsAws)) failures.push(`${label}: AwsAssumeRoleFederated made ${req('aws')} requests, expected ${BUDGET.requestsAws}`);
    const rssValidate = rss('validate');
    if (m.validate / m.empty > BUDGET.ratioValidate) failures.push(`${label}: ValidateServiceConnection ratio ${ratio(m.validate, m.empty)} > ${BUDGET.ratioValidate}`);
    if (rssValidate > BUDGET.rssMiB) failures.push(`${label}: ValidateServiceConnection peak RSS ${rssValidate.toFixed(1)} MiB > ${BUDGET.rssMiB}`);
    if (req('validate') !== String(BUDGET.requestsValidate)) failures.push(`${label}: ValidateServiceConnection made ${req('validate')} requests, expected ${BUDGET.requestsValidate}`);
    const rssWith = rss('taskScope');
    const rssWithout = rss('task');
    const rssAcr = rss('acr');
    if (m.acr / m.empty > BUDGET.ratioAcr) failures.push(`${label}: AcrLoginFederated ratio ${ratio(m.acr, m.empty)} > ${BUDGET.ratioAcr}`);
    if (rssAcr > BUDGET.rssMiB) failures.push(`${label}: AcrLoginFederated peak RSS ${rssAcr.toFixed(1)} MiB > ${BUDGET.rssMiB}`);
    if (req('acr') !== String(BUDGET.requestsAcr)) failures.push(`${label}: AcrLoginFederated made ${req('acr')} requests, expected ${BUDGET.requestsAcr}`);
    if (m.taskScope / m.empty > BUDGET.ratioWithExchange) failures.push(`${label}: ratio with exchange ${ratio(m.taskScope, m.empty)} > ${BUDGET.ratioWithExchange}`);
    if (Math.max(rssWith, rssWithout) > BUDGET.rssMiB) failures.push(`${label}: peak RSS ${Math.max(rssWith, rssWithout).toFixed(1)} MiB > ${BUDGET.rssMiB}`);
    if (req('task') !== String(BUDGET.requestsWithout)) failures.push(`${label}: ${req('task')} requests without exchange, expected ${BUDGET.requestsWithout}`);
    if (req('taskScope') !== String(BUDGET.requestsWith)) failures.push(`${label}: ${req('taskScope')} requests with exchange, expected ${BUDGET.requestsWith}`);
  }
  await emu.stop();
  await benchAudit(nodes, temp, probe, probeFile, rows, failures);
  fs.rmSync(temp, { recursive: true, force: true });
  fs.rmSync(emptyDockerHome, { recursive: true, force: true });
  rows.push(`.vsix: ${(vsixBytes / 1024).toFixed(0)} KiB${vsix ? ` (${vsix})` : ' (not built: run npm run package)'}`);
  if (!(vsixBytes <= BUDGET.vsixBytes)) failures.push(`.vsix ${vsixBytes} bytes > ${BUDGET.vsixBytes}`);
  console.log(rows.join('\n'));
  console.log(failures.length ? `\nOver budget:\n  ${failures.join('\n  ')}` : '\nAll budgets met: ratios <= 2.0 (FetchOidcToken with exchange, AwsAssumeRoleFederated), 2.5 (AcrLoginFederated) and 3.0 (ValidateServiceConnection), peak RSS <= 80 MiB, exact request counts, .vsix <= 1 MiB; the audit of 100 x 20 connections under 20 s and 150 MiB with the minimum of requests.');
  process.exitCode = failures.length ? 1 : 0;
}

/**
 * AuditServiceConnections@1, organisation scope with the job token, against an emulator of its own
 * holding 100 projects x 20 connections and answering each request after 20 ms. The fewest requests
 * the API allows: 1 resource-area lookup + pages of projects + one list per project + one history per
 * connection + one identity request per 100 creators (no Graph reads with the job token).
 */
async function benchAudit(nodes: [string, string][], temp: string, probe: string, probeFile: string, rows: string[], failures: string[]): Promise<void> {
  const emu = await startEmulator();
  try {
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
    const env = { ...jobEnv(emu, { tempDirectory: temp, debug: false }), INPUT_SCOPE: 'organization', WORKLOADIDENTITY_HTTPRETRIES: '0' };
    const task = path.join(DIST, 'AuditServiceConnectionsV1', 'index.js');
    for (const [label, node] of nodes) {
      const samples: Sample[] = [];
      for (let i = 0; i < AUDIT.runs; i++) {
        emu.resetCounts();
        emu.latencyMs = AUDIT.latencyMs;
        fs.rmSync(probeFile, { force: true });
        const r = await run(node, ['-r', probe, task], env, probeFile);
        emu.latencyMs = 0;
        if (r.code !== 0 || /result=Failed/.test(r.out)) throw new Error(`${label} audit failed:\n${r.out.slice(-2000)}`);
        const p = JSON.parse(fs.readFileSync(probeFile, 'utf8')) as { cpuMicros: number; maxRssKiB: number };
        samples.push({ ms: r.ms, cpuMs: p.cpuMicros / 1000, rssMiB: p.maxRssKiB / 1024, requests: Object.values(emu.counts()).reduce((a, b) => a + b, 0) });
        if (emu.maxInFlight() > 8) failures.push(`${label}: the audit had ${emu.maxInFlight()} requests in flight (at most 8)`);
      }
      const ms = median(samples.map((x) => x.ms));
      const rss = Math.max(...samples.map((x) => x.rssMiB));
      const requests = [...new Set(samples.map((x) => x.requests))].join('/');
      rows.push(`${label}: AuditServiceConnections, ${AUDIT.projects} projects x ${AUDIT.perProject} connections, ${AUDIT.latencyMs} ms per request: wall ${(ms / 1000).toFixed(2)} s (median of ${AUDIT.runs}), cpu ${(median(samples.map((x) => x.cpuMs)) / 1000).toFixed(2)} s, peak RSS ${rss.toFixed(1)} MiB, requests ${requests} (minimum ${expected})`);
      if (ms > AUDIT.budgetMs) failures.push(`${label}: the audit took ${(ms / 1000).toFixed(1)} s > ${AUDIT.budgetMs / 1000} s`);
      if (rss > AUDIT.budgetRssMiB) failures.push(`${label}: the audit peaked at ${rss.toFixed(1)} MiB > ${AUDIT.budgetRssMiB} MiB`);
      if (requests !== String(expected)) failures.push(`${label}: the audit made ${requests} requests, the minimum is ${expected}`);
    }
  } finally {
    await emu.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
