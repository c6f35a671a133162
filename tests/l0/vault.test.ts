/** L0 tests for VaultSecretsFederated@1 and its post-job step, with the task-lib's MockTestRunner. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { L0_OWN_CONNECTION, postJobEnv, runL0, setVariableOf } from './federated-harness';

const runner = path.join(__dirname, 'vault-runner.js');
const taskJson = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'tasks', 'VaultSecretsFederatedV1', 'task.json'), 'utf8')) as Record<string, Record<string, { target: string }>>;

const ADDRESS = 'https://vault.example.com:8200';
const TOKEN = 'hvs.CAESIL0TokenOfTheJob0000000000000000';
const ACCESSOR = 'L0AccessorOfTheJobToken0000';
const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvL0KeyLineOne\nMIIEvL0KeyLineTwo\n-----END PRIVATE KEY-----\n';
const DB_PASSWORD = 'l0-db-password-Zq9';

/** The Vault the runner's client answers from (vault-runner.ts VaultWorld). */
const WORLD = {
  token: TOKEN,
  accessor: ACCESSOR,
  policies: ['default', 'ci-read'],
  leaseDuration: 900,
  mounts: { secret: 2, kv1: 1 },
  secrets: {
    'secret/data/ci/db': { username: 'l0-db-user', password: DB_PASSWORD },
    'secret/data/ci/tls': { 'tls.key': KEY_PEM },
    'kv1/app': { api_key: 'l0-app-api-key', port: 8443 },
  },
  forbidden: ['secret/data/ci/forbidden'],
  revoke: 204,
};

/** What the agent hands when YAML leaves connectionType out: its default. */
const AGENT_DEFAULT = { connectionType: 'vault' };
const TOKEN_STATE = 'WorkloadIdentity.Vault.Token';
const SESSION_STATE = 'WorkloadIdentity.Vault.Session';
const FILES_STATE = 'WorkloadIdentity.Vault.Files';
/** Any request the task makes: the idToken, the login, Vault's mounts and reads. */
const ANY_REQUEST = /L0: (idToken requested|login|mount of|read|revoke-self)/;

const run = (inputs: Record<string, string>, env: Record<string, string> = {}, world: Partial<typeof WORLD> = {}) =>
  runL0(runner, 'VaultSecretsFederatedV1', inputs, { L0_ARM: '0', L0_VAULT: JSON.stringify({ ...WORLD, ...world }), ...env });
/** The post-job step of a main run: its task variables and its Agent.TempDirectory. */
const runPost = (main: { stdout: string; tempDir: string }, world: Partial<typeof WORLD> = {}, state: Record<string, string> = postJobEnv(main.stdout)) =>
  run({}, { ...state, L0_TEMP: main.tempDir }, world);

/** A HashiCorp Vault (workload identity federation) connection: its URL the Vault address. */
const vaultConnection = (parameters: Record<string, string> = {}, url = `${ADDRESS}/`) => ({
  L0_OWN: JSON.stringify({ input: 'vaultConnection', url, parameters: { namespace: 'admin/team-a', authMount: 'azure-devops', role: 'ci-reader', ...parameters } }),
});

const lines = (stdout: string) => stdout.split(/\r?\n/);
const count = (stdout: string, text: string) => stdout.split(text).length - 1;
const setvariable = (name: string, value: string, secret: boolean) => `##vso[task.setvariable variable=${name};isOutput=false;issecret=${secret};]${value}`;
const setsecret = (value: string) => `##vso[task.setsecret]${value}`;
/** The index of the line that is exactly `line` (-1: none). */
const lineOf = (stdout: string, line: string) => lines(stdout).indexOf(line);
/** The agent's escaping of a logging command's data (TaskCommand). */
const escaped = (v: string) => v.replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');

/** `value` is masked before the line that sets it, and no other line holds it. */
function assertSecretDelivered(stdout: string, name: string, value: string): void {
  const set = lineOf(stdout, setvariable(name, value, true));
  assert.ok(set >= 0, `${name} is set as a secret: ${setVariableOf(stdout, name)?.line}`);
  const mask = lineOf(stdout, setsecret(value));
  assert.ok(mask >= 0 && mask < set, `${name} is masked before it is set`);
  const holding = lines(stdout).filter((l) => l.includes(value));
  assert.deepEqual(holding.filter((l) => l !== setsecret(value) && l !== setvariable(name, value, true)), [], `${name}'s value is printed nowhere else`);
}

/** The Vault token: masked, kept as a secret task variable for the post-job step, and printed nowhere else. */
function assertTokenKept(stdout: string, alsoIn: string[] = []): void {
  const state = `##vso[task.settaskvariable variable=${TOKEN_STATE};issecret=true;]${TOKEN}`;
  const kept = lineOf(stdout, state);
  assert.ok(kept >= 0, 'the token is a secret task variable');
  const mask = lineOf(stdout, setsecret(TOKEN));
  assert.ok(mask >= 0 && mask < kept, 'the token is masked first');
  const holding = lines(stdout).filter((l) => l.includes(TOKEN));
  assert.deepEqual(holding.filter((l) => l !== state && l !== setsecret(TOKEN) && !alsoIn.includes(l)), [], 'the token is printed nowhere else');
}

function sessionOf(stdout: string): Record<string, string> {
  const line = lines(stdout).find((l) => l.startsWith(`##vso[task.settaskvariable variable=${SESSION_STATE};issecret=false;]`));
  assert.ok(line, 'the session is kept for the post-job step');
  return JSON.parse(line.slice(line.indexOf(']') + 1)) as Record<string, string>;
}

describe('L0 VaultSecretsFederated@1', function () {
  this.timeout(30_000);

  it('a HashiCorp Vault connection: the three forms of secrets become secret variables, each masked first; the token is a secret task variable', async () => {
    const secrets = 'secret/data/ci/db password | DB_PASSWORD\nsecret/ci/db username\n# the whole secret:\nkv1/app | APP_JSON;';
    const tr = await run({ ...AGENT_DEFAULT, secrets }, vaultConnection());
    assert.ok(tr.succeeded, tr.stdout);
    assert.match(tr.stdout, new RegExp(`L0: idToken requested for ${L0_OWN_CONNECTION}`));
    assert.ok(tr.stdout.includes('L0: login at https://vault.example.com:8200 namespace=admin/team-a auth/azure-devops role=ci-reader jwt=the idToken'), tr.stdout);
    // One mount lookup per mount, one read per secret however many keys are taken from it.
    assert.equal(count(tr.stdout, 'L0: mount of '), 2);
    assert.equal(count(tr.stdout, 'L0: mount of secret/data/ci/db with the Vault token'), 1);
    assert.equal(count(tr.stdout, 'L0: mount of kv1/app with the Vault token'), 1);
    assert.equal(count(tr.stdout, 'L0: read secret/data/ci/db with the Vault token'), 1);
    assert.equal(count(tr.stdout, 'L0: read kv1/app with the Vault token'), 1);
    assert.equal(count(tr.stdout, 'L0: read '), 2);

    assertSecretDelivered(tr.stdout, 'DB_PASSWORD', DB_PASSWORD);
    assertSecretDelivered(tr.stdout, 'USERNAME', 'l0-db-user');
    assertSecretDelivered(tr.stdout, 'APP_JSON', '{"api_key":"l0-app-api-key","port":8443}');
    assert.ok(lineOf(tr.stdout, setsecret('l0-app-api-key')) >= 0, 'each string inside the whole secret is masked too');
    assert.equal(count(tr.stdout, '##vso[task.setvariable '), 3, 'no other variable');

    assertTokenKept(tr.stdout);
    const session = sessionOf(tr.stdout);
    assert.equal(session.address, ADDRESS);
    assert.equal(session.namespace, 'admin/team-a');
    assert.equal(session.accessor, ACCESSOR);
    const ttl = Date.parse(session.expiresOn) - Date.now();
    assert.ok(ttl > 800_000 && ttl <= 900_000, session.expiresOn);
    assert.doesNotMatch(tr.stdout, /eyJhbGciOiJSUzI1NiJ9/, 'the idToken is never printed');
    assert.match(tr.stdout, /Read 3 secret values from Vault:/);
    assert.match(tr.stdout, /DB_PASSWORD \(secret\) = secret\/data\/ci\/db key password/);
    assert.match(tr.stdout, /APP_JSON \(secret\) = kv1\/app \(the whole secret, as JSON\)/);

    const post = await runPost(tr);
    assert.ok(post.succeeded, post.stdout);
    assert.ok(post.stdout.includes('L0: revoke-self at https://vault.example.com:8200 namespace=admin/team-a with the stored token'), post.stdout);
    assert.match(post.stdout, /Revoked the Vault token at https:\/\/vault\.example\.com:8200, and every lease it made\./);
    assert.deepEqual(post.warningIssues, []);
  });

  it('runs the target task.json gives each handler, Node20_1 on Node 20 and Node24 on Node 24, main and post-job step', async function () {
    this.timeout(60_000);
    assert.deepEqual(Object.keys(taskJson.execution), ['Node20_1', 'Node24']);
    assert.deepEqual(Object.keys(taskJson.postjobexecution), ['Node20_1', 'Node24']);
    for (const [handler, major] of [['Node20_1', 20], ['Node24', 24]] as const) {
      const tr = await run({ secrets: 'secret/data/ci/db password | DB_PASSWORD' }, { ...vaultConnection(), L0_HANDLER: handler });
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, new RegExp(`L0: ${handler} runs ${taskJson.execution[handler].target} on Node v${major}\\.`));
      assertSecretDelivered(tr.stdout, 'DB_PASSWORD', DB_PASSWORD);
      assertTokenKept(tr.stdout);
      const post = await runPost(tr, {}, { ...postJobEnv(tr.stdout), L0_HANDLER: handler });
      assert.ok(post.succeeded, post.stdout);
      assert.match(post.stdout, new RegExp(`L0: ${handler} runs ${taskJson.postjobexecution[handler].target} on Node v${major}\\.`));
      assert.match(post.stdout, /L0: revoke-self at .* with the stored token/);
    }
  });

  it('exportToken: VAULT_ADDR, VAULT_NAMESPACE and VAULT_TOKEN (a secret); no secret read', async () => {
    const tr = await run({ exportToken: 'true' }, vaultConnection());
    assert.ok(tr.succeeded, tr.stdout);
    assert.ok(lineOf(tr.stdout, setvariable('VAULT_ADDR', ADDRESS, false)) >= 0, tr.stdout);
    assert.ok(lineOf(tr.stdout, setvariable('VAULT_NAMESPACE', 'admin/team-a', false)) >= 0);
    const exported = setvariable('VAULT_TOKEN', TOKEN, true);
    assert.ok(lineOf(tr.stdout, exported) > lineOf(tr.stdout, setsecret(TOKEN)), 'VAULT_TOKEN is secret, masked first');
    assertTokenKept(tr.stdout, [exported]);
    assert.equal(setVariableOf(tr.stdout, 'VAULT_CACERT'), undefined);
    assert.doesNotMatch(tr.stdout, /L0: (mount of|read)/);
    assert.match(tr.stdout, /Set VAULT_ADDR, VAULT_NAMESPACE and VAULT_TOKEN \(secret\) for later steps/);
  });

  it('refuses to run with no secret and no exportToken, before any request', async () => {
    const tr = await run({}, vaultConnection());
    assert.ok(tr.failed, tr.stdout);
    assert.match(tr.errorIssues[0], /Input 'secrets': no secret is named, and exportToken is false/);
    assert.doesNotMatch(tr.stdout, ANY_REQUEST);
  });

  describe('the connection\'s settings and the inputs', () => {
    it('inputs fill what the connection leaves empty (namespace, role); the same address and auth method as inputs are accepted', async () => {
      const tr = await run({ namespace: '/admin/team-b/', role: 'CI-Writer', vaultAddress: ADDRESS, authMount: 'auth/azure-devops/', exportToken: 'true' }, vaultConnection({ namespace: '', role: '' }));
      assert.ok(tr.succeeded, tr.stdout);
      assert.ok(tr.stdout.includes('L0: login at https://vault.example.com:8200 namespace=admin/team-b auth/azure-devops role=ci-writer jwt=the idToken'), tr.stdout);
      assert.equal(setVariableOf(tr.stdout, 'VAULT_NAMESPACE')!.value, 'admin/team-b');
    });

    it('the connection\'s namespace, auth method and role where the inputs are empty; none: the root namespace, auth/jwt, the default role', async () => {
      const tr = await run({ exportToken: 'true' }, vaultConnection({ namespace: '', authMount: '', role: '' }));
      assert.ok(tr.succeeded, tr.stdout);
      assert.ok(tr.stdout.includes('L0: login at https://vault.example.com:8200 namespace=(root) auth/jwt role=(default)'), tr.stdout);
      assert.equal(setVariableOf(tr.stdout, 'VAULT_NAMESPACE'), undefined);
      assert.match(tr.stdout, /auth\/jwt \(default\), role \(the auth method's default_role\)/);
    });

    const contradictions: [string, Record<string, string>, RegExp][] = [
      ['vaultAddress', { vaultAddress: 'https://vault.other.example.com' }, /Input 'vaultAddress': 'https:\/\/vault\.other\.example\.com' differs from the Vault address of service connection 'a5500000-0000-4000-8000-00000000c0aa' \('https:\/\/vault\.example\.com:8200'\)/],
      ['namespace', { namespace: 'admin/team-b' }, /Input 'namespace': 'admin\/team-b' differs from the namespace of service connection .* \('admin\/team-a'\)/],
      ['authMount', { authMount: 'jwt' }, /Input 'authMount': 'jwt' differs from the auth method path of service connection .* \('azure-devops'\)/],
      ['role', { role: 'deployer' }, /Input 'role': 'deployer' differs from the role of service connection .* \('ci-reader'\)/],
    ];
    for (const [input, inputs, message] of contradictions) {
      it(`refuses an input that contradicts the connection, naming both, before any request: ${input}`, async () => {
        const tr = await run({ ...inputs, secrets: 'secret/data/ci/db password | DB_PASSWORD' }, vaultConnection());
        assert.ok(tr.failed, tr.stdout);
        assert.match(tr.errorIssues[0], message);
        assert.match(tr.errorIssues[0], new RegExp(`Fix: Remove ${input}:`));
        assert.doesNotMatch(tr.stdout, ANY_REQUEST);
      });
    }

    it('refuses a connection whose URL is not https, naming the connection\'s field, before any request', async () => {
      const tr = await run({ exportToken: 'true' }, vaultConnection({}, 'http://vault.example.com:8200'));
      assert.ok(tr.failed, tr.stdout);
      assert.match(tr.errorIssues[0], /Input 'vaultConnection': the Vault address \(url\) of service connection 'a5500000-0000-4000-8000-00000000c0aa': 'http:\/\/vault\.example\.com:8200' is not https/);
      assert.doesNotMatch(tr.stdout, ANY_REQUEST);
    });
  });

  describe('which connection: connectionType', () => {
    it('vaultConnection only, connectionType left out: the HashiCorp Vault connection', async () => {
      const tr = await run({ exportToken: 'true' }, vaultConnection());
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, new RegExp(`L0: idToken requested for ${L0_OWN_CONNECTION}`));
      assert.match(tr.stdout, /logging in with the idToken of service connection a5500000-0000-4000-8000-00000000c0aa \(HashiCorp Vault \(workload identity federation\)\)/);
    });

    for (const connectionType of ['vault', 'oidc']) {
      it(`oidcConnection only (connectionType ${connectionType}): its URL is the Vault address, the rest inputs`, async () => {
        const own = { L0_OWN: JSON.stringify({ input: 'oidcConnection', url: `${ADDRESS}/`, parameters: { description: 'Vault' } }) };
        const tr = await run({ connectionType, role: 'ci-reader', namespace: 'admin', exportToken: 'true' }, own);
        assert.ok(tr.succeeded, tr.stdout);
        assert.match(tr.stdout, new RegExp(`L0: idToken requested for ${L0_OWN_CONNECTION}`));
        assert.ok(tr.stdout.includes('L0: login at https://vault.example.com:8200 namespace=admin auth/jwt role=ci-reader jwt=the idToken'), tr.stdout);
        assert.match(tr.stdout, /\(OpenID Connect \(workload identity federation\)\)/);
      });
    }

    it('connectionType oidc ignores a vaultConnection left set, with a warning', async () => {
      const own = { L0_OWN: JSON.stringify({ input: 'oidcConnection', url: ADDRESS, parameters: {} }) };
      const tr = await run({ connectionType: 'oidc', vaultConnection: 'a5500000-0000-4000-8000-0000000001dc', exportToken: 'true' }, own);
      assert.ok(tr.succeeded, tr.stdout);
      assert.ok(tr.warningIssues.some((w) => /connectionType is oidc: vaultConnection is ignored/.test(w)), tr.stdout);
      assert.match(tr.stdout, new RegExp(`L0: idToken requested for ${L0_OWN_CONNECTION}`));
    });

    it('refuses an oidcConnection whose URL differs from vaultAddress', async () => {
      const own = { L0_OWN: JSON.stringify({ input: 'oidcConnection', url: ADDRESS, parameters: {} }) };
      const tr = await run({ connectionType: 'oidc', vaultAddress: 'https://vault.other.example.com', exportToken: 'true' }, own);
      assert.ok(tr.failed, tr.stdout);
      assert.match(tr.errorIssues[0], /Input 'vaultAddress': 'https:\/\/vault\.other\.example\.com' differs from the Service URL of service connection .* \('https:\/\/vault\.example\.com:8200'\)/);
      assert.doesNotMatch(tr.stdout, ANY_REQUEST);
    });

    it('connectionType pipeline: the pipeline\'s own idToken at vaultAddress', async () => {
      const tr = await run({ connectionType: 'pipeline', vaultAddress: `${ADDRESS}/`, role: 'pipeline-reader', exportToken: 'true' });
      assert.ok(tr.succeeded, tr.stdout);
      assert.match(tr.stdout, /L0: idToken requested for undefined/, 'no connection');
      assert.ok(tr.stdout.includes('L0: login at https://vault.example.com:8200 namespace=(root) auth/jwt role=pipeline-reader jwt=the idToken'), tr.stdout);
      assert.match(tr.stdout, /logging in with the pipeline's own idToken \(no service connection\)/);
    });

    it('connectionType pipeline ignores a vaultConnection left set, with a warning', async () => {
      const tr = await run({ connectionType: 'pipeline', vaultAddress: ADDRESS, exportToken: 'true' }, vaultConnection());
      assert.ok(tr.succeeded, tr.stdout);
      assert.ok(tr.warningIssues.some((w) => /connectionType is pipeline: vaultConnection is ignored/.test(w)), tr.stdout);
      assert.ok(tr.stdout.includes('L0: login at https://vault.example.com:8200 namespace=(root) auth/jwt role=(default)'), tr.stdout);
    });

    const refused: [string, Record<string, string>, Record<string, string>, RegExp][] = [
      ['both connections set (connectionType the agent\'s default)', { ...AGENT_DEFAULT, oidcConnection: 'a5500000-0000-4000-8000-0000000001dc', exportToken: 'true' }, vaultConnection(), /Input 'vaultConnection': vaultConnection and oidcConnection are both set/],
      ['both connections set (connectionType left out)', { oidcConnection: 'a5500000-0000-4000-8000-0000000001dc', exportToken: 'true' }, vaultConnection(), /Input 'vaultConnection': vaultConnection and oidcConnection are both set/],
      ['no connection at all', { ...AGENT_DEFAULT, exportToken: 'true' }, {}, /Input 'vaultConnection': no service connection is given/],
      ['connectionType pipeline without vaultAddress', { connectionType: 'pipeline', exportToken: 'true' }, {}, /Input 'vaultAddress': no Vault address is given/],
      ['connectionType not of this task', { connectionType: 'azureResourceManager', exportToken: 'true' }, vaultConnection(), /Input 'connectionType': 'azureResourceManager' is not a connection type of this task/],
    ];
    for (const [title, inputs, env, message] of refused) {
      it(`refuses before any request: ${title}`, async () => {
        const tr = await run(inputs, env);
        assert.ok(tr.failed, tr.stdout);
        assert.match(tr.errorIssues[0], message);
        assert.doesNotMatch(tr.stdout, ANY_REQUEST);
      });
    }
  });

  it('refuses a malformed secrets line, naming it, before any request', async () => {
    const tr = await run({ secrets: 'secret/data/ci/db password | DB_PASSWORD\n\nsecret/data/ci/db password | DB PASSWORD' }, vaultConnection());
    assert.ok(tr.failed, tr.stdout);
    assert.match(tr.errorIssues[0], /Input 'secrets': line 3 \('secret\/data\/ci\/db password \| DB PASSWORD'\): 'DB PASSWORD' is not one variable name/);
    assert.doesNotMatch(tr.stdout, ANY_REQUEST);
  });

  it('multilineValues file (default): a 0600 file under Agent.TempDirectory, the variable its path (not secret), every line masked; the post-job step removes it', async () => {
    const tr = await run({ secrets: 'secret/data/ci/tls tls.key | TLS_KEY\nsecret/data/ci/db password | DB_PASSWORD' }, vaultConnection());
    assert.ok(tr.succeeded, tr.stdout);
    const file = setVariableOf(tr.stdout, 'TLS_KEY')!;
    assert.match(file.line, /issecret=false/);
    const dir = path.dirname(file.value);
    assert.equal(path.dirname(dir), tr.tempDir, 'directly under Agent.TempDirectory');
    assert.equal(fs.statSync(file.value).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(file.value, 'utf8'), KEY_PEM);
    const set = lineOf(tr.stdout, file.line);
    for (const l of KEY_PEM.split('\n').filter(Boolean)) {
      const mask = lineOf(tr.stdout, setsecret(l));
      assert.ok(mask >= 0 && mask < set, `the line '${l}' is masked first`);
    }
    assert.doesNotMatch(tr.stdout, /##vso\[task\.setsecret\][^\n]*%0A/, 'no multi-line secret for the agent to refuse');
    assert.equal(setVariableOf(tr.stdout, 'SYSTEM_UNSAFEALLOWMULTILINESECRET'), undefined);
    assertSecretDelivered(tr.stdout, 'DB_PASSWORD', DB_PASSWORD);
    assert.ok(lineOf(tr.stdout, `##vso[task.settaskvariable variable=${FILES_STATE};issecret=false;]${dir}`) >= 0);
    assert.match(tr.stdout, /TLS_KEY = the path of a 0600 file holding secret\/data\/ci\/tls key tls\.key/);

    const post = await runPost(tr);
    assert.ok(post.succeeded, post.stdout);
    assert.ok(!fs.existsSync(dir), 'the files are removed');
    assert.match(post.stdout, /Removed the files of this task \(multi-line secret values\)\./);
    assert.match(post.stdout, /L0: revoke-self at .* with the stored token/);
    assert.deepEqual(post.warningIssues, []);
  });

  it('multilineValues variable: SYSTEM_UNSAFEALLOWMULTILINESECRET=true before the secret variable, every line masked first', async () => {
    const tr = await run({ secrets: 'secret/data/ci/tls tls.key | TLS_KEY', multilineValues: 'variable' }, vaultConnection());
    assert.ok(tr.succeeded, tr.stdout);
    const knob = lineOf(tr.stdout, setvariable('SYSTEM_UNSAFEALLOWMULTILINESECRET', 'true', false));
    const set = lineOf(tr.stdout, setvariable('TLS_KEY', escaped(KEY_PEM), true));
    assert.ok(knob >= 0, tr.stdout);
    assert.ok(set > knob, `the secret variable after the knob: ${setVariableOf(tr.stdout, 'TLS_KEY')?.line}`);
    for (const l of KEY_PEM.split('\n').filter(Boolean)) {
      const mask = lineOf(tr.stdout, setsecret(l));
      assert.ok(mask >= 0 && mask < knob, `the line '${l}' is masked first`);
    }
    assert.equal(lines(tr.stdout).find((l) => l.startsWith(`##vso[task.settaskvariable variable=${FILES_STATE};`)), undefined, 'no file');
    assert.match(tr.stdout, /Set SYSTEM_UNSAFEALLOWMULTILINESECRET=true for this job \(multilineValues: variable\): TLS_KEY hold line breaks/);
  });

  it('all or nothing: one read refused fails the task, no secret variable is set; the token was kept, and the post-job step revokes it', async () => {
    const secrets = 'secret/data/ci/db password | DB_PASSWORD\nsecret/data/ci/forbidden token | FORBIDDEN_TOKEN\nsecret/data/ci/tls tls.key | TLS_KEY';
    const tr = await run({ secrets, exportToken: 'true' }, vaultConnection());
    assert.ok(tr.failed, tr.stdout);
    assert.match(tr.stdout, /L0: read secret\/data\/ci\/forbidden with the Vault token/);
    assert.match(tr.errorIssues[0], /Vault at https:\/\/vault\.example\.com:8200: 1 of 3 secrets could not be read, so no variable was set \(all or nothing\)/);
    assert.match(tr.errorIssues[0], /Line 2 \('secret\/data\/ci\/forbidden token \| FORBIDDEN_TOKEN'\): permission denied reading secret\/data\/ci\/forbidden: the Vault token's policies \(default, ci-read\) lack the read capability on it/);
    assert.match(tr.errorIssues[0], /Fix: Add to one of the role's policies: path "secret\/data\/ci\/forbidden" \{ capabilities = \["read"\] \} \(VAULT_NAMESPACE=admin\/team-a vault policy write/);
    assert.equal(count(tr.stdout, '##vso[task.setvariable '), 0, 'no variable at all: neither the secrets nor the exported token');
    assert.equal(lines(tr.stdout).find((l) => l.startsWith(`##vso[task.settaskvariable variable=${FILES_STATE};`)), undefined, 'no file was written');
    assertTokenKept(tr.stdout);

    const post = await runPost(tr);
    assert.ok(post.succeeded, post.stdout);
    assert.match(post.stdout, /L0: revoke-self at https:\/\/vault\.example\.com:8200 namespace=admin\/team-a with the stored token/);
  });

  it('all or nothing: a missing key and a missing secret are reported together, each by its line', async () => {
    const tr = await run({ secrets: 'secret/data/ci/db pasword | DB_PASSWORD\nsecret/data/ci/nothing-here x | X\nkv1/app | APP_JSON' }, vaultConnection());
    assert.ok(tr.failed, tr.stdout);
    assert.match(tr.errorIssues[0], /2 of 3 secrets could not be read/);
    assert.match(tr.errorIssues[0], /Line 1 .*the secret secret\/data\/ci\/db has no key 'pasword'; its keys: username, password/);
    assert.match(tr.errorIssues[0], /Line 2 .*there is no secret at secret\/data\/ci\/nothing-here \(KV version 2 mount secret\)/);
    assert.equal(count(tr.stdout, '##vso[task.setvariable '), 0);
  });

  describe('post-job step', () => {
    it('a refused revoke before the token expires: SucceededWithIssues, a warning naming vault token revoke -accessor', async () => {
      const tr = await run({ exportToken: 'true' }, vaultConnection());
      assert.ok(tr.succeeded, tr.stdout);
      const post = await runPost(tr, { revoke: 403 });
      assert.ok(post.succeeded, post.stdout);
      assert.match(post.stdout, /L0: revoke-self at .* with the stored token/);
      assert.match(post.stdout, /##vso\[task\.complete result=SucceededWithIssues;\]/);
      assert.equal(post.warningIssues.length, 1, post.stdout);
      assert.match(post.warningIssues[0], /Vault at https:\/\/vault\.example\.com:8200 refused to revoke the job's Vault token \(HTTP 403: .*permission denied\)/);
      assert.match(post.warningIssues[0], new RegExp(`It stays valid until ${sessionOf(tr.stdout).expiresOn.replace(/\./g, '\\.')}; to revoke it now: vault token revoke -accessor ${ACCESSOR}\\.`));
      assert.ok(!post.stdout.includes(`Revoked the Vault token`));
    });

    it('a refused revoke after the token expired: a plain log line', async () => {
      const tr = await run({ exportToken: 'true' }, vaultConnection());
      const state = postJobEnv(tr.stdout);
      const key = `VSTS_TASKVARIABLE_${SESSION_STATE.replace(/\./g, '_').toUpperCase()}`;
      const expiresOn = new Date(Date.now() - 60_000).toISOString();
      state[key] = JSON.stringify({ ...JSON.parse(state[key]), expiresOn });
      const post = await runPost(tr, { revoke: 403 }, state);
      assert.ok(post.succeeded, post.stdout);
      assert.match(post.stdout, /L0: revoke-self at .* with the stored token/);
      assert.ok(post.stdout.includes(`The Vault token had expired at ${expiresOn}; nothing to revoke.`), post.stdout);
      assert.match(post.stdout, /##vso\[task\.complete result=Succeeded;\]/);
      assert.deepEqual(post.warningIssues, []);
    });

    it('no state (the main step failed before the login): nothing to do', async () => {
      const post = await run({}, { L0_SCENARIO: 'post' });
      assert.ok(post.succeeded, post.stdout);
      assert.doesNotMatch(post.stdout, ANY_REQUEST);
      assert.deepEqual(post.warningIssues, []);
      assert.match(post.stdout, /##vso\[task\.complete result=Succeeded;\]/);
    });
  });
});
