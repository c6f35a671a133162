/**
 * VaultSecretsFederated@1 end to end: the bundled task reaches Azure DevOps (dev.azure.com) and
 * HashiCorp Vault (vault.fabrikam.com:8200) by names that do not resolve here: only the agent's
 * proxy (a test-owned mapping CONNECT proxy) reaches the emulator, whose Vault validates the
 * idToken's signature, issuer, audience, subject and expiry as Vault's JWT auth method does. A
 * later step uses node-vault, an independent client, with the exported VAULT_TOKEN, and is refused
 * once the post-job step has revoked it.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { startEmulator, Emulator } from '../emulator/index';
import { endpointEnv, EndpointEnv, JobOptions, PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { JOB_KINDS } from '../helpers/agent-job';
import { E2eRuns, postJobEnv } from '../helpers/e2e';
import { MappingProxy, proxyToEmulator, startCanary } from '../helpers/connect-proxy';
import { TaskRun } from '../helpers/task-process';

const VAULT_HOST = 'vault.fabrikam.com:8200';
const VAULT = `https://${VAULT_HOST}`;
const MAPPED = [PUBLIC_COLLECTION_HOST, VAULT_HOST];
const STEP = path.resolve(__dirname, '..', 'helpers', 'node-vault-step.js');
const PEM = `-----BEGIN PRIVATE KEY-----\n${crypto.randomBytes(48).toString('base64')}\n${crypto.randomBytes(48).toString('base64')}\n-----END PRIVATE KEY-----\n`;
const SECRETS = {
  db: { user: 'app', password: `pw-${crypto.randomBytes(8).toString('hex')}` },
  api: { token: `tok-${crypto.randomBytes(8).toString('hex')}` },
  tls: { key: PEM },
};

interface VaultConnection {
  name: string;
  env: EndpointEnv;
  subject: string;
}

describe('E2E VaultSecretsFederated@1 (bundled task, Vault through the agent proxy, node-vault in a later step)', function () {
  this.timeout(120_000);
  let emu: Emulator;
  let proxy: MappingProxy;
  const e2e = new E2eRuns(() => emu);

  before(async () => {
    emu = await startEmulator();
    proxy = await proxyToEmulator(emu, MAPPED);
    emu.vault.configureJwtAuth({});
    emu.vault.addKvMount({ path: 'secret', version: 2 });
    emu.vault.addKvMount({ path: 'kv', version: 1 });
    emu.vault.putSecret('secret', 'ci/db', SECRETS.db);
    emu.vault.putSecret('secret', 'ci/tls', SECRETS.tls);
    emu.vault.putSecret('kv', 'ci/api', SECRETS.api);
    emu.vault.addPolicy('ci-read', [{ path: 'secret/data/ci/*', capabilities: ['read'] }, { path: 'kv/ci/*', capabilities: ['read'] }]);
    emu.vault.addPolicy('db-only', [{ path: 'secret/data/ci/db', capabilities: ['read'] }]);
    for (const v of ['P', 'U', 'DB', 'TOKEN', 'API_TOKEN', 'TLS_KEY']) e2e.namedVariables.add(v);
  });
  after(async () => {
    await proxy?.stop();
    await emu?.stop();
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
    proxy.connects.length = 0;
  });

  const jobTemp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'wit-job-'));
  const job = (o: JobOptions = {}): JobOptions => ({ publicHosts: true, tempDirectory: jobTemp(), ...o });
  const vaultRoutes = () => emu.requestLog().filter((q) => q.route.startsWith('vault.'));

  /** A HashiCorp Vault connection in the emulator's organisation, a role bound to its subject, and what the agent hands a task for it. */
  function vaultConnection(parameters: Record<string, string> = {}, policies = ['ci-read'], role = `ci-${crypto.randomBytes(3).toString('hex')}`): VaultConnection {
    const id = crypto.randomUUID();
    const name = `vault-${crypto.randomBytes(3).toString('hex')}`;
    const all = { authMount: 'jwt', role, ...parameters };
    emu.addServiceConnection({ id, name, type: 'WorkloadIdentityVault', scheme: 'None', tenantId: '', clientId: '', url: VAULT, parameters: all });
    const subject = emu.expectedFederation(id).subject;
    emu.vault.addJwtRole({ name: role, boundSubject: subject, tokenPolicies: policies, ...(parameters.namespace ? { namespace: parameters.namespace } : {}), ...(parameters.authMount ? { mount: parameters.authMount } : {}) });
    return { name, env: { id, url: VAULT, scheme: 'None', parameters: all }, subject };
  }

  function run(endpoints: EndpointEnv[], inputs: Record<string, string>, j: JobOptions = job(), env: Record<string, string> = {}, node?: string): Promise<TaskRun> {
    // As the agent hands a YAML step that sets only vaultConnection: connectionType at its default.
    const all: Record<string, string> = { INPUT_CONNECTIONTYPE: 'vault', INPUT_MULTILINEVALUES: 'file', INPUT_EXPORTTOKEN: 'false', AGENT_PROXYURL: proxy.url, ...env };
    for (const e of endpoints) Object.assign(all, endpointEnv(e));
    return e2e.run({ task: 'VaultSecretsFederatedV1', inputs, job: j, env: all, node });
  }

  function post(r: TaskRun, j: JobOptions = {}, node?: string): Promise<TaskRun> {
    return e2e.run({ task: 'VaultSecretsFederatedV1', job: { publicHosts: true, ...j, tempDirectory: r.agentTempDirectory }, env: { ...postJobEnv(r), AGENT_PROXYURL: proxy.url }, entry: 'post.js', node });
  }

  /** A later step: node-vault with the variables the task exported, as the agent passes them (the secret one mapped explicitly). */
  function nodeVault(r: TaskRun, secretPath: string): Promise<{ data?: Record<string, unknown>; error?: string; status?: number }> {
    const v = r.variables;
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), VAULT_ADDR: v.VAULT_ADDR.value, VAULT_TOKEN: v.VAULT_TOKEN.value, STEP_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: emu.caCertPath };
    if (v.VAULT_NAMESPACE) env.VAULT_NAMESPACE = v.VAULT_NAMESPACE.value;
    return new Promise((resolve) => {
      execFile(process.execPath, [STEP, secretPath], { env, timeout: 60_000 }, (_err, stdout, stderr) => {
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as { data?: Record<string, unknown> });
        } catch {
          resolve({ error: `no JSON from the step: ${stdout} ${stderr}` });
        }
      });
    });
  }

  /** Every request went through the proxy, at its service's public name. */
  function assertThroughProxy(): void {
    for (const h of emu.requestHosts()) assert.ok([PUBLIC_COLLECTION_HOST, VAULT_HOST].includes(h.host), `${h.route} was asked for at ${h.host}`);
    assert.equal(emu.counts().misdirected, 0);
    assert.ok(proxy.connects.length > 0);
    for (const c of proxy.connects) assert.ok([`${PUBLIC_COLLECTION_HOST}:443`, VAULT_HOST].includes(c.authority), `CONNECT ${c.authority}`);
  }

  it('a HashiCorp Vault connection: KV v2 (both forms) and v1, a whole secret, exportToken; 5 requests through the proxy; node-vault reads with the exported token until the post-job step revokes it', async () => {
    const c = vaultConnection();
    const r = await run([c.env], {
      vaultConnection: c.env.id,
      exportToken: 'true',
      secrets: 'secret/ci/db password | P ;\nsecret/data/ci/db user | U\n# whole\nsecret/ci/db | DB\nkv/ci/api token',
    });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('vault.login'), emu.count('vault.mounts'), emu.count('vault.read')], [1, 1, 2, 2], 'one login, one lookup per mount, one read per secret');
    assertThroughProxy();
    const v = r.variables;
    assert.deepEqual([v.P.value, v.U.value, JSON.parse(v.DB.value), v.TOKEN.value], [SECRETS.db.password, SECRETS.db.user, SECRETS.db, SECRETS.api.token]);
    for (const k of ['P', 'U', 'DB', 'TOKEN', 'VAULT_TOKEN']) assert.ok(v[k].secret, `${k} is secret`);
    assert.deepEqual([v.VAULT_ADDR.value, v.VAULT_ADDR.secret, v.VAULT_NAMESPACE], [VAULT, false, undefined]);
    for (const s of [SECRETS.db.password, SECRETS.db.user, SECRETS.api.token, v.DB.value, v.VAULT_TOKEN.value]) assert.ok(r.secrets.includes(s), 'masked');
    const tokens = emu.vault.tokens();
    const token = tokens.find((t) => t.token === v.VAULT_TOKEN.value);
    assert.ok(token, 'the exported token is the one Vault issued');
    assert.equal(token.claims.sub, c.subject);
    assert.equal(r.taskVariables['WorkloadIdentity.Vault.Token'], token.token, 'the post-job step gets the token');
    for (const q of vaultRoutes()) assert.equal(q.vault?.namespaceHeader, undefined, 'no namespace header without a namespace');
    assert.match(r.log, new RegExp(`Subject \\(sub\\): {2}sc://contoso/web/${c.name}`));
    e2e.extraSecrets.push(SECRETS.db.password, SECRETS.api.token);

    const later = await nodeVault(r, 'secret/data/ci/db');
    assert.deepEqual(later.data?.data, SECRETS.db, JSON.stringify(later));

    const p = await post(r);
    assert.equal(p.result, 'Succeeded', p.stdout + p.stderr);
    assert.match(p.log, /Revoked the Vault token at https:\/\/vault\.fabrikam\.com:8200/);
    assert.equal(emu.vault.isValid(token.token), false, 'revoked in Vault');
    const after = await nodeVault(r, 'secret/data/ci/db');
    assert.equal(after.status, 403, JSON.stringify(after));
  });

  it('a multi-line value: a 0600 file by default, its path the variable, every line masked; the post-job step removes it; multilineValues variable: the value itself', async () => {
    const c = vaultConnection();
    const r = await run([c.env], { vaultConnection: c.env.id, secrets: 'secret/ci/tls key | TLS_KEY' });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    const file = r.variables.TLS_KEY.value;
    assert.equal(r.variables.TLS_KEY.secret, false);
    assert.ok(file.startsWith(r.agentTempDirectory!), file);
    assert.equal(fs.readFileSync(file, 'utf8'), PEM);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    for (const line of PEM.split('\n').filter(Boolean)) assert.ok(r.secrets.includes(line), `line masked: ${line.slice(0, 20)}`);
    const p = await post(r);
    assert.equal(p.result, 'Succeeded', p.stdout + p.stderr);
    assert.equal(fs.existsSync(path.dirname(file)), false, 'removed');

    const m = await run([c.env], { vaultConnection: c.env.id, secrets: 'secret/ci/tls key | TLS_KEY', multilineValues: 'variable' });
    assert.equal(m.result, 'Succeeded', m.stdout + m.stderr);
    const knob = m.commands.findIndex((x) => x.name === 'task.setvariable' && x.properties.variable === 'SYSTEM_UNSAFEALLOWMULTILINESECRET');
    const value = m.commands.findIndex((x) => x.name === 'task.setvariable' && x.properties.variable === 'TLS_KEY');
    assert.ok(knob >= 0 && knob < value, 'the agent allows multi-line secrets before the value arrives');
    assert.deepEqual([m.variables.TLS_KEY.value, m.variables.TLS_KEY.secret], [PEM, true]);
    await post(m);
  });

  it('a namespace and an auth method of its own on the connection: every request carries X-Vault-Namespace; VAULT_NAMESPACE exported; node-vault reads in the namespace', async () => {
    emu.vault.addNamespace('team-a');
    emu.vault.configureJwtAuth({ namespace: 'team-a', mount: 'azure-devops' });
    emu.vault.addKvMount({ path: 'secret', version: 2, namespace: 'team-a' });
    emu.vault.putSecret('secret', 'ci/db', { password: 'team-a-only' }, { namespace: 'team-a' });
    emu.vault.addPolicy('ci-read', [{ path: 'secret/data/ci/*', capabilities: ['read'] }], { namespace: 'team-a' });
    const c = vaultConnection({ namespace: 'team-a', authMount: 'azure-devops' });
    const r = await run([c.env], { vaultConnection: c.env.id, exportToken: 'true', secrets: 'secret/ci/db password | P' });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.equal(r.variables.P.value, 'team-a-only');
    assert.equal(r.variables.VAULT_NAMESPACE.value, 'team-a');
    for (const q of vaultRoutes()) assert.equal(q.vault?.namespaceHeader, 'team-a', q.path);
    assert.ok(vaultRoutes().some((q) => q.path.startsWith('/v1/auth/azure-devops/login')));
    assert.deepEqual((await nodeVault(r, 'secret/data/ci/db')).data?.data, { password: 'team-a-only' });
    await post(r);
  });

  it('the pipeline\'s own token (connectionType pipeline, vaultAddress): a role bound to its claims', async () => {
    emu.vault.addJwtRole({ name: 'pipeline-web', boundClaims: { sub: 'p://contoso/web/*' }, boundClaimsType: 'glob', tokenPolicies: ['db-only'] });
    const r = await run([], { connectionType: 'pipeline', vaultAddress: `${VAULT}/`, role: 'pipeline-web', secrets: 'secret/ci/db password | P' });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.equal(r.variables.P.value, SECRETS.db.password);
    const login = emu.vault.tokens().at(-1)!;
    assert.match(String(login.claims.sub), /^p:\/\/contoso\/web\//);
    assert.equal(new URL(emu.requestLog().find((q) => q.route === 'oidctoken')!.path, 'https://x').searchParams.get('serviceConnectionId'), null, 'no connection: the pipeline token');
    await post(r);
  });

  it('refusals are explained with the token\'s claims and the vault command that fixes them; a denied read sets no variable; the post-job step still revokes the token', async () => {
    const c = vaultConnection();
    // An input contradicting the connection: refused before any request.
    const contra = await run([c.env], { vaultConnection: c.env.id, role: 'someone-else', secrets: 'secret/ci/db password | P' });
    assert.equal(contra.result, 'Failed');
    assert.match(contra.errors.join('\n'), /Input 'role': 'someone-else' differs from the role of service connection/);
    assert.equal(emu.requestLog().length, 0);

    // A role the auth method does not have.
    const other = vaultConnection({ role: 'no-such-role' }, ['ci-read'], 'exists');
    const missing = await run([other.env], { vaultConnection: other.env.id, secrets: 'secret/ci/db password | P' });
    assert.equal(missing.result, 'Failed');
    const m = missing.errors.join('\n');
    assert.match(m, /refused the login at auth\/jwt as role 'no-such-role' \(HTTP 400\)/);
    assert.match(m, new RegExp(`vault write auth/jwt/role/no-such-role role_type=jwt user_claim=sub bound_audiences=api://AzureADTokenExchange bound_subject='${other.subject}'`));
    assert.match(m, /Vault said: role "no-such-role" could not be found/);
    assert.match(m, new RegExp(`sub: ${other.subject}`));

    // A read the policy does not grant: nothing is set, and the token is still revoked at the end.
    const narrow = vaultConnection({}, ['db-only']);
    const denied = await run([narrow.env], { vaultConnection: narrow.env.id, secrets: 'secret/ci/db password | P\nsecret/ci/tls key | TLS_KEY\nkv/ci/api token | API_TOKEN' });
    assert.equal(denied.result, 'Failed');
    const d = denied.errors.join('\n');
    assert.match(d, /2 of 3 secrets could not be read, so no variable was set/);
    // Under a mount the policy grants something: Vault's own permission denied, and the policy line.
    assert.match(d, /Line 2 .*permission denied reading secret\/data\/ci\/tls: the Vault token's policies \(db-only, default\) lack the read capability/);
    assert.match(d, /path "secret\/data\/ci\/tls" \{ capabilities = \["read"\] \}/);
    // Under a mount it grants nothing under: Vault's preflight answers as for no mount at all.
    assert.match(d, /Line 3 .*no secrets engine is mounted at the start of kv\/ci\/api, or the Vault token's policies \(db-only, default\) grant nothing under it/);
    assert.equal(denied.variables.P, undefined, 'all or nothing');
    const token = denied.taskVariables['WorkloadIdentity.Vault.Token'];
    assert.ok(token && emu.vault.isValid(token));
    const p = await post(denied);
    assert.equal(p.result, 'Succeeded', p.stdout + p.stderr);
    assert.equal(emu.vault.isValid(token), false);
  });

  it('the Vault token goes only to the Vault address: a standby\'s redirect is not followed (a canary sees no connection); 429 with Retry-After is retried', async () => {
    const canary = await startCanary();
    try {
      const c = vaultConnection();
      emu.inject('vault.read', { kind: 'redirect', to: canary.url });
      const r = await run([c.env], { vaultConnection: c.env.id, secrets: 'secret/ci/db password | P' });
      assert.equal(r.result, 'Failed');
      assert.match(r.errors.join('\n'), /answered HTTP 307, a redirect; it was not followed/);
      assert.equal(canary.connections(), 0);
      await post(r);
    } finally {
      await canary.stop();
    }
    emu.clearFaults();
    emu.resetCounts();
    const c = vaultConnection();
    emu.inject('vault.login', { kind: '429', retryAfterSeconds: 1 });
    const t = await run([c.env], { vaultConnection: c.env.id, secrets: 'secret/ci/db password | P' });
    assert.equal(t.result, 'Succeeded', t.stdout + t.stderr);
    assert.equal(emu.count('vault.login'), 2);
    assert.match(t.log, /HashiCorp Vault: HTTP 429[^\n]*; retrying in \d+\.\d s \(attempt 2 of 4\)/, 'the retry is in the log');
    await post(t);
  });

  for (const kind of JOB_KINDS) {
    // The classic release on the Node24 handler's Node.js, main and post-job step.
    const node24 = kind === 'release';
    it(`a ${kind} job, as the agent lays it out${node24 ? ', on Node 24' : ''}: the secret, and the token revoked by the post-job step`, async () => {
      const node = node24 ? (require('../../../scripts/node24.cjs') as { ensureNode24(): string }).ensureNode24() : undefined;
      const c = vaultConnection();
      const r = await run([c.env], { vaultConnection: c.env.id, secrets: 'secret/ci/db password | P' }, job({ kind }), {}, node);
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      assert.equal(r.variables.P.value, SECRETS.db.password);
      assertThroughProxy();
      const token = r.taskVariables['WorkloadIdentity.Vault.Token'];
      const p = await post(r, { kind }, node);
      assert.equal(p.result, 'Succeeded', p.stdout + p.stderr);
      assert.equal(emu.vault.isValid(token), false);
    });
  }
});
