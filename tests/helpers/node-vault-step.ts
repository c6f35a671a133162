/**
 * A later pipeline step that uses node-vault, the common Node.js Vault client, as a pipeline author
 * would: VAULT_ADDR, VAULT_TOKEN and VAULT_NAMESPACE from the environment (what the task exported),
 * the agent's proxy through a CONNECT-tunnelling https.Agent (axios, under node-vault, cannot tunnel
 * through a proxy by itself; users plug in a proxy agent the same way), the CA from NODE_EXTRA_CA_CERTS. Reads the path given as the first argument;
 * prints one JSON line: { data } or { error, status }.
 */
import vault = require('node-vault');
import { tunnelAgent } from './connect-proxy';

async function main(): Promise<void> {
  const path = process.argv[2];
  const proxy = process.env.STEP_PROXY;
  const client = vault({ requestOptions: proxy ? { httpsAgent: tunnelAgent(proxy) } : {} });
  const answer = (await client.read(path)) as { data?: unknown };
  process.stdout.write(`${JSON.stringify({ data: answer.data })}\n`);
}

main().catch((e: unknown) => {
  const err = e as { message?: string; response?: { statusCode?: number } };
  process.stdout.write(`${JSON.stringify({ error: err?.message ?? String(e), status: err?.response?.statusCode })}\n`);
  process.exitCode = 1;
});
