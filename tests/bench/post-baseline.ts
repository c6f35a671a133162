/**
 * The yardstick of a post-job step: a dependency-free Node script that deletes the same files and
 * makes the same requests. The agent hands the post-job step the state its main step left as
 * VSTS_TASKVARIABLE_<NAME> (the name upper-cased, dots and spaces as underscores); every folder named
 * there (…_DIR, the token file folders; …_JOBCONFIGDIR, AcrLoginFederated's registry logins) is
 * removed, and a Vault token (VaultSecretsFederated) is revoked: POST auth/token/revoke-self at the
 * session's address, through the agent's proxy when AGENT_PROXYURL is set (CONNECT, then TLS to
 * the public name, as the task does). Node's http, https and tls are loaded only for that.
 */
import * as fs from 'node:fs';

const env = process.env;

/** POST <address>/v1/auth/token/revoke-self with the token: Vault answers 204. */
function revokeSelf(address: string, token: string): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const http = require('node:http') as typeof import('node:http');
  const https = require('node:https') as typeof import('node:https');
  const tls = require('node:tls') as typeof import('node:tls');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const u = new URL(`${address}/v1/auth/token/revoke-self`);
  return new Promise((resolve, reject) => {
    const send = (socket?: import('node:tls').TLSSocket) => {
      const options: import('node:https').RequestOptions = { method: 'POST', headers: { 'X-Vault-Token': token, 'X-Vault-Request': 'true', 'Content-Length': '0' } };
      if (socket) Object.assign(options, { createConnection: () => socket, defaultPort: 443 });
      else options.agent = false;
      const req = https.request(u, options, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 204 ? resolve() : reject(new Error(`HTTP ${res.statusCode} from ${u.host}${u.pathname}`))));
      });
      req.on('error', reject);
      req.end();
    };
    const proxy = env.AGENT_PROXYURL;
    if (!proxy) return send();
    const p = new URL(proxy);
    const authority = `${u.hostname}:${u.port || 443}`;
    const connect = http.request({ host: p.hostname, port: p.port, method: 'CONNECT', path: authority, headers: { Host: authority }, agent: false });
    connect.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return reject(new Error(`CONNECT ${authority}: HTTP ${res.statusCode}`));
      }
      send(tls.connect({ socket, servername: u.hostname }));
    });
    connect.on('error', reject);
    connect.end();
  });
}

async function main(): Promise<void> {
  for (const [name, value] of Object.entries(env)) {
    if (value && /^VSTS_TASKVARIABLE_\w*(_DIR|JOBCONFIGDIR)$/.test(name)) fs.rmSync(value, { recursive: true, force: true });
  }
  const token = env.VSTS_TASKVARIABLE_WORKLOADIDENTITY_VAULT_TOKEN;
  const session = env.VSTS_TASKVARIABLE_WORKLOADIDENTITY_VAULT_SESSION;
  if (token && session) await revokeSelf((JSON.parse(session) as { address: string }).address, token);
}

main().then(
  () => process.stdout.write('##vso[task.complete result=Succeeded;]\n'),
  (e: Error) => {
    process.stdout.write(`##vso[task.complete result=Failed;]${e.message}\n`);
    process.exitCode = 1;
  },
);
