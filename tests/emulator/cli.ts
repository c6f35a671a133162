// node build/tests/emulator/cli.js [--port N] [--proxy-port N] [--dir PKI_DIR] [--connection federated|secret]
// Starts the emulator with the demo scenario in the foreground and prints, as shell exports, what a
// task needs to run against it; paste them into another shell and run a bundled task there.
// GcpAuthFederated@1 sends its tokens only to Google's own hosts (sts.googleapis.com,
// iamcredentials.googleapis.com), which do not lead here: a CONNECT proxy started alongside maps
// those names to the emulator, and its command sets that proxy as the agent does (Agent.ProxyUrl).
// The same proxy maps the emulator's HashiCorp Vault address (https://vault.fabrikam.com:8200).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VAULT_ADDRESS, VAULT_AUTHORITY, startEmulator } from './index';
import { addDemoScenario, agentEnvironment, demoTaskInputs } from './scenario';
import { proxyToEmulator } from '../helpers/connect-proxy';

interface CliOptions {
  port: number;
  proxyPort: number;
  dir?: string;
  connection: 'federated' | 'secret';
}

/** The tasks that take only a federated connection (an idToken), left out with --connection secret. */
const FEDERATED_ONLY = new Set(['AwsAssumeRoleFederatedV1', 'GcpAuthFederatedV1']);
/** The public names the mapping proxy leads to the emulator. */
const GOOGLE_HOSTS = ['sts.googleapis.com', 'iamcredentials.googleapis.com'];
const MAPPED = [...GOOGLE_HOSTS, VAULT_AUTHORITY];

function parseArgs(argv: string[]): CliOptions {
  const options: CliOptions = { port: 0, proxyPort: 0, connection: 'federated' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--port' || arg === '--proxy-port') {
      const port = Number(value());
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${arg} must be 0..65535`);
      if (arg === '--port') options.port = port;
      else options.proxyPort = port;
    } else if (arg === '--dir') {
      options.dir = value();
    } else if (arg === '--connection') {
      const c = value();
      if (c !== 'federated' && c !== 'secret') throw new Error('--connection must be federated or secret');
      options.connection = c;
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: cli.js [--port N] [--proxy-port N] [--dir PKI_DIR] [--connection federated|secret]\n');
      process.exit(0);
    } else {
      throw new Error(`unknown argument ${arg}`);
    }
  }
  return options;
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

// Node's env-file parser takes single-quoted values verbatim; backticks cover a value with a quote.
function dotenvQuote(value: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('`')) return `\`${value}\``;
  throw new Error(`cannot write ${JSON.stringify(value)} to an env file`);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const emu = await startEmulator({ port: options.port, dir: options.dir });
  const proxy = await proxyToEmulator(emu, MAPPED, { port: options.proxyPort }).catch(async (e: unknown) => {
    await emu.stop();
    throw e;
  });
  const demo = addDemoScenario(emu);
  const connectionId = options.connection === 'federated' ? demo.federated.connectionId : demo.secret.connectionId;
  const env = agentEnvironment(emu, connectionId);

  // The agent names endpoint variables after the connection GUID, which no shell can export; node
  // reads them from an env file instead.
  const envFile = path.join(path.dirname(emu.caCertPath), `agent-${options.connection}.env`);
  fs.writeFileSync(envFile, Object.entries(env).map(([k, v]) => `${k}=${dotenvQuote(v)}`).join('\n') + '\n', { mode: 0o600 });
  const exportable = Object.entries(env).filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
  const other = Object.entries(env).filter(([k]) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
  const dist = path.resolve(__dirname, '..', '..', '..', 'dist', 'tasks');
  // The agent's proxy, as an agent configured with --proxyurl and a .proxybypass file hands it to a
  // task: through the proxy to Google's names, straight to Azure DevOps (the emulator's address).
  const agentProxy: Record<string, Record<string, string>> = {
    GcpAuthFederatedV1: { AGENT_PROXYURL: proxy.url, AGENT_PROXYBYPASSLIST: JSON.stringify([`^${emu.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`]) },
  };
  // One command per task, each runnable as printed from any folder: the job's temp folder is a new
  // one (the agent gives every job its own), the task's inputs precede the env file, which Node
  // reads only for names the shell did not set. NODE_EXTRA_CA_CERTS must come from the shell:
  // Node reads it before the env file.
  const commands = Object.entries(demoTaskInputs(emu, demo))
    .filter(([task]) => options.connection === 'federated' || !FEDERATED_ONLY.has(task))
    .map(([task, inputs]) => [
      `# ${task.replace(/V1$/, '@1')}:`,
      `AGENT_TEMPDIRECTORY="$(mktemp -d)" ${Object.entries({ ...agentProxy[task], ...inputs }).map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ')} NODE_EXTRA_CA_CERTS=${shellQuote(emu.caCertPath)} ${shellQuote(process.execPath)} --env-file=${shellQuote(envFile)} ${shellQuote(path.join(dist, task, 'index.js'))}`,
    ].join('\n'));
  const out: string[] = [
    `# Workload identity emulator listening on ${emu.url}`,
    `# mapping proxy ${proxy.url}: CONNECT to ${GOOGLE_HOSTS.join(' and ')} leads to the emulator (Agent.ProxyUrl of the GcpAuthFederated@1 command)`,
    `# and CONNECT to ${VAULT_AUTHORITY} to its HashiCorp Vault (${VAULT_ADDRESS}; nothing is configured in it: no auth method, mount or policy)`,
    `# tenant ${demo.tenantId}`,
    `# federated connection ${demo.federated.connectionId} (app ${demo.federated.clientId})`,
    `# secret connection    ${demo.secret.connectionId} (app ${demo.secret.clientId})`,
    `# Run a bundled task against it (npm run build first) from another shell, with the ${options.connection} connection:`,
    ...commands,
    `# The environment for the ${options.connection} connection, as the agent would set it (also in ${envFile}):`,
    ...exportable.map(([k, v]) => `export ${k}=${shellQuote(v)}`),
    '# names a shell cannot export (they are in the env file):',
    ...other.map(([k, v]) => `#   ${k}=${shellQuote(v)}`),
    '# Ctrl-C stops the emulator.',
  ];
  process.stdout.write(`${out.join('\n')}\n`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping the emulator\n`);
    Promise.all([proxy.stop(), emu.stop()]).then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
