/**
 * npm run demo: runs the bundled FetchOidcToken@1 against the local emulator as a pipeline would,
 * and shows what the pipeline sees: the log, the variables (secrets masked), a failure explained.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator } from '../emulator/index';
import { connectionEnv, jobEnv } from '../helpers/agent';
import { runTaskProcess, TaskRun } from '../helpers/task-process';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

/** What the agent would show: secrets it was told about become ***. */
function masked(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('***');
  return out;
}

function show(title: string, r: TaskRun): void {
  console.log(`\n${bold(`== ${title}: ${r.result} (${r.durationMs} ms)`)}`);
  const lines = r.stdout.split(/\r?\n/);
  for (const line of lines) {
    if (line.startsWith('##vso[task.issue type=error')) console.log(`##[error]${masked(line.slice(line.indexOf(']') + 1), r.secrets).replace(/%0A/g, '\n         ')}`);
    else if (line.startsWith('##vso[task.issue type=warning')) console.log(`##[warning]${masked(line.slice(line.indexOf(']') + 1), r.secrets).replace(/%0A/g, '\n           ')}`);
    else if (line && !line.startsWith('##vso[')) console.log(masked(line, r.secrets));
  }
  const vars = Object.entries(r.variables);
  if (vars.length) {
    console.log(bold('-- variables for later steps'));
    for (const [name, v] of vars) console.log(`  ${v.output ? `fetch.${name}` : name}${' '.repeat(Math.max(1, 40 - name.length))}${v.secret ? '*** (secret)' : v.value}`);
  }
}

async function main(): Promise<void> {
  const emu = await startEmulator();
  try {
    const tenantId = crypto.randomUUID();
    const id = crypto.randomUUID();
    const clientId = crypto.randomUUID();
    emu.addServiceConnection({ id, name: 'prod-deploy', scheme: 'WorkloadIdentityFederation', tenantId, clientId, subscriptionId: crypto.randomUUID() });
    const fed = emu.expectedFederation(id);
    emu.addApp({ clientId, tenantId, federatedCredentials: [{ issuer: fed.issuer, subject: fed.subject, audiences: ['api://AzureADTokenExchange'] }] });
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-demo-'));
    const env = { ...jobEnv(emu, { tempDirectory: temp, debug: false }), ...connectionEnv(emu, { id, scheme: 'WorkloadIdentityFederation', tenantId, clientId, subscriptionId: '0b1c2d3e-0000-4000-8000-000000000001' }), INPUT_CONNECTEDSERVICENAMEARM: id };
    console.log(`Emulator at ${emu.url} (Azure DevOps, Entra ID); service connection 'prod-deploy' = ${id}.`);
    console.log('The task runs from the build output, as the agent runs it:');
    console.log('  - task: FetchOidcToken@1\n    name: fetch\n    inputs:\n      azureSubscription: prod-deploy\n      accessTokenScope: https://management.azure.com/.default\n      exportTerraformEnv: true');

    const ok = await runTaskProcess('FetchOidcTokenV1', 'index.js', { env: { ...env, INPUT_ACCESSTOKENSCOPE: 'https://management.azure.com/.default', INPUT_EXPORTTERRAFORMENV: 'true' } });
    show('FetchOidcToken@1', ok);
    console.log(`  requests: ${JSON.stringify(Object.fromEntries(Object.entries(emu.counts()).filter(([, n]) => n)))}`);

    // The same connection after someone renamed it: its federated credential still names the old subject.
    const renamed = crypto.randomUUID();
    const renamedClient = crypto.randomUUID();
    emu.addServiceConnection({ id: renamed, name: 'prod-deploy-2024', scheme: 'WorkloadIdentityFederation', tenantId, clientId: renamedClient });
    emu.addApp({ clientId: renamedClient, tenantId, federatedCredentials: [{ issuer: fed.issuer, subject: 'sc://contoso/web/prod-deploy-old', audiences: ['api://AzureADTokenExchange'] }] });
    const bad = await runTaskProcess('FetchOidcTokenV1', 'index.js', {
      env: { ...env, ...connectionEnv(emu, { id: renamed, scheme: 'WorkloadIdentityFederation', tenantId, clientId: renamedClient }), INPUT_CONNECTEDSERVICENAMEARM: renamed, INPUT_ACCESSTOKENSCOPE: 'https://management.azure.com/.default' },
    });
    show('FetchOidcToken@1 with a renamed connection', bad);
    fs.rmSync(temp, { recursive: true, force: true });
  } finally {
    await emu.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
