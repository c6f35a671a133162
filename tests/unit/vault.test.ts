/** HashiCorp Vault: the secrets syntax, the target's settings, Vault's refusals explained, and the reader's request plan. */
import * as assert from 'node:assert/strict';
import * as sinon from 'sinon';
import * as tl from 'azure-pipelines-task-lib/task';
import { InputError, TaskFailure } from '../../tasks/core/http/failures';
import { parseSecretSpecs, variableForKey } from '../../tasks/core/vault/secret-specs';
import { asInput, parseAuthMount, parseCaCertificate, parseNamespace, parseRole, parseVaultAddress } from '../../tasks/core/vault/vault-target';
import { explainLoginFailure, explainVaultStatus, vaultErrors } from '../../tasks/core/vault/vault-errors';
import { VaultClient } from '../../tasks/core/vault/vault-client';
import { readSecrets } from '../../tasks/core/vault/secret-reader';
import type { HttpClient, HttpRequest } from '../../tasks/core/http/http';

const CLAIMS = { iss: 'https://vstoken.dev.azure.com/8f2a0000-0000-4000-8000-000000000001', sub: 'sc://contoso/web/vault-ci', aud: 'api://AzureADTokenExchange', exp: 1 };
const T = { address: 'https://vault.example.com:8200', authMount: 'jwt', role: 'ci' };
const errors = (...e: string[]) => JSON.stringify({ errors: e });

function refusal(fn: () => unknown, input: string, patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InputError, String(e));
    assert.equal(e.input, input);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

describe('Vault: the secrets input', () => {
  it('reads vault-action\'s three forms, ; separators, comments and blank lines', () => {
    const specs = parseSecretSpecs('secret/data/ci/db password | DB_PASSWORD ;\n# a comment; with x/y k | Z in it\n\n  kv/app api-key ; secret/ci/tls | TLS_JSON\n/secret/ci/x/ user | U.NAME');
    assert.deepEqual(specs.map((s) => [s.line, s.path, s.key, s.variable]), [
      [1, 'secret/data/ci/db', 'password', 'DB_PASSWORD'],
      [4, 'kv/app', 'api-key', 'APIKEY'],
      [4, 'secret/ci/tls', undefined, 'TLS_JSON'],
      [5, 'secret/ci/x', 'user', 'U.NAME'],
    ]);
    assert.equal(variableForKey('1st.key'), '_1ST__KEY');
    assert.equal(variableForKey('api-key'), 'APIKEY', 'as vault-action names it');
  });

  it('refuses each malformed line, naming its line and the fix', () => {
    const cases: [string, RegExp][] = [
      ['secret/ci/db a b | X', /line 1 .*3 words before the \|/],
      ['secret/ci/db a | X | Y', /more than one \|/],
      ['secret/ci/db a |', /names no variable/],
      ['secret/ci/db', /neither a key nor a variable/],
      ['| X', /names no path/],
      ['db password | X', /'db' is not a secret's path/],
      ['secret/../sys/x k | X', /not a secret's path/],
      ['secret/ci?x=1 k | X', /not a secret's path/],
      ['secret/ci/db k | 9X', /'9X' is not a valid variable name/],
      ['secret/ci/db k | X;Y', /names no path|not a secret's path/],
      ['secret/ci/db k | System.AccessToken', /belongs to Azure Pipelines/],
      ['secret/ci/db k | vault_token', /belongs to Azure Pipelines or to exportToken/],
      ['secret/ci/db k | vault.token', /belongs to Azure Pipelines or to exportToken/],
      ['secret/ci/db k | Tf.Build.X', /belongs to Azure Pipelines/],
      ['secret/ci/db k | X\nsecret/ci/other k | x', /line 2 .*sets x, which line 1 .*sets already/],
      ['secret/ci/db k | A.B\nsecret/ci/other k | A_B', /line 2/],
    ];
    for (const [text, pattern] of cases) refusal(() => parseSecretSpecs(text), 'secrets', [pattern]);
  });
});

describe('Vault: the target\'s settings', () => {
  const r = asInput('x');
  it('normalises what users paste and refuses what would leak a token', () => {
    assert.equal(parseVaultAddress('https://vault.example.com:8200/', r), 'https://vault.example.com:8200');
    assert.equal(parseVaultAddress('https://example.com/vault/', r), 'https://example.com/vault');
    refusal(() => parseVaultAddress('http://vault.example.com:8200', r), 'x', [/is not https/]);
    refusal(() => parseVaultAddress('https://u:p@vault.example.com', r), 'x', [/user info/]);
    refusal(() => parseVaultAddress('https://vault.example.com/v1', r), 'x', [/Remove \/v1: use https:\/\/vault.example.com\./]);
    refusal(() => parseVaultAddress(undefined, r), 'x', [/no Vault address/]);
    assert.equal(parseNamespace('/admin/team-a/', r), 'admin/team-a');
    refusal(() => parseNamespace('admin/../root', r), 'x', [/not a Vault namespace/]);
    assert.equal(parseAuthMount(undefined, r), 'jwt');
    assert.equal(parseAuthMount('auth/azure-devops/', r), 'azure-devops');
    refusal(() => parseAuthMount('jwt?x', r), 'x', [/not an auth method path/]);
    assert.equal(parseRole('CI-Deploy', r), 'ci-deploy');
    refusal(() => parseRole('ci deploy', r), 'x', [/not a Vault role name/]);
    refusal(() => parseCaCertificate('not a pem', r), 'x', [/no PEM certificate/]);
    assert.match(parseCaCertificate('x\r\n-----BEGIN CERTIFICATE-----\r\nAAAA\r\n-----END CERTIFICATE-----\r\n', r) ?? '', /^-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n$/);
  });
});

describe('Vault: refusals explained', () => {
  const login = (status: number, body: string, t: typeof T & { namespace?: string } = T) => explainLoginFailure(t, status, body, 'application/json', CLAIMS, `${T.address}/v1/auth/jwt/login`);
  it('names the cause and prints the vault command that fixes it, with the token\'s claims', () => {
    const cases: [number, string, string, RegExp][] = [
      [400, 'role "ci" could not be found', 'VAULT_ROLE_NOT_FOUND', /vault write auth\/jwt\/role\/ci role_type=jwt user_claim=sub bound_audiences=api:\/\/AzureADTokenExchange bound_subject='sc:\/\/contoso\/web\/vault-ci'/],
      [400, 'missing role', 'VAULT_ROLE_MISSING', /default_role=<role>/],
      [400, 'error validating token: invalid audience (aud) claim: audience claim does not match any expected audience', 'VAULT_AUDIENCE', /role\/ci role_type=jwt bound_audiences=api:\/\/AzureADTokenExchange/],
      [400, 'sub claim does not match bound subject', 'VAULT_SUBJECT', /bound_subject='sc:\/\/contoso\/web\/vault-ci'/],
      [400, 'error validating claims: claim "sub" does not match any associated bound claim values', 'VAULT_BOUND_CLAIMS', /role_type=jwt bound_subject='sc:\/\/contoso\/web\/vault-ci'/],
      [400, 'error validating token: invalid issuer (iss) claim', 'VAULT_ISSUER', /oidc_discovery_url=https:\/\/vstoken.dev.azure.com\/8f2a/],
      [400, 'error validating token: invalid expiration time (exp) claim: token is expired', 'VAULT_EXPIRED', /clock/],
      [400, 'error fetching jwks keyset: Get "https://vstoken.dev.azure.com/x/.well-known/jwks": dial tcp: i/o timeout', 'VAULT_JWKS', /reach vstoken.dev.azure.com on 443/],
      [400, 'could not load configuration', 'VAULT_NOT_CONFIGURED', /vault write auth\/jwt\/config/],
      [403, '1 error occurred:\n\t* permission denied\n\n', 'VAULT_LOGIN_DENIED', /token_bound_cidrs/],
      [404, 'no handler for route "jwt2/login". route entry not found.', 'VAULT_AUTH_MOUNT', /vault auth enable -path=jwt jwt/],
    ];
    for (const [status, text, code, fix] of cases) {
      const f = login(status, errors(text));
      assert.equal(f.code, code, text);
      assert.match(f.message, fix, text);
      assert.match(f.message, /sub: sc:\/\/contoso\/web\/vault-ci/);
      assert.match(f.message, /aud: api:\/\/AzureADTokenExchange/);
    }
    assert.match(login(400, errors('role "ci" could not be found'), { ...T, namespace: 'admin/team' }).message, /VAULT_NAMESPACE=admin\/team vault write auth\/jwt\/role\/ci/);
  });
  it('reads Vault\'s multi-line errors as one line and never quotes a logging command', () => {
    assert.deepEqual(vaultErrors(errors('1 error occurred:\n\t* permission denied\n\n')), ['1 error occurred: * permission denied']);
    const f = login(400, errors('role "x" could not be found ##vso[task.setvariable variable=INJECTED]1'));
    assert.doesNotMatch(f.message, /##vso\[/);
    assert.deepEqual(vaultErrors('<html>'), []);
  });
  it('sealed, throttled and redirected', () => {
    assert.equal(explainVaultStatus(T, 503, errors('Vault is sealed'), 'application/json', T.address).code, 'VAULT_SEALED');
    assert.equal(explainVaultStatus(T, 429, errors('request path "secret/data/x": rate limit quota exceeded'), 'application/json', T.address).code, 'VAULT_429');
    assert.match(explainVaultStatus(T, 307, '', undefined, T.address).message, /was not followed/);
  });
});

describe('Vault: the reader', () => {
  afterEach(() => sinon.restore());
  function client(answers: Record<string, [number, unknown]>): { c: VaultClient; asked: HttpRequest[] } {
    sinon.stub(tl, 'setSecret');
    const asked: HttpRequest[] = [];
    const http = {
      request: async (req: HttpRequest) => {
        asked.push(req);
        const key = `${req.method} ${req.url.slice(`${T.address}/v1/`.length)}`;
        const [status, body] = answers[key] ?? [404, { errors: [] }];
        return { status, headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), url: req.url, attempts: 1 };
      },
    } as unknown as HttpClient;
    return { c: new VaultClient(http, { ...T, namespace: 'admin' }), asked };
  }
  const mount = (p: string, version: string | null) => [200, { data: { path: `${p}/`, type: 'kv', options: version ? { version } : null } }] as [number, unknown];

  it('asks each mount once and reads each secret once; KV v2 in both forms; v1; the namespace and token on every request', async () => {
    const { c, asked } = client({
      'GET sys/internal/ui/mounts/secret/ci/db': mount('secret', '2'),
      'GET sys/internal/ui/mounts/kv/app': mount('kv', null),
      'GET secret/data/ci/db': [200, { data: { data: { user: 'app', password: 'pa55' }, metadata: { version: 3 } } }],
      'GET kv/app': [200, { data: { token: 'k-1', n: 5 } }],
    });
    const specs = parseSecretSpecs('secret/ci/db password | P\nsecret/data/ci/db user | U\nsecret/ci/db | ALL\nkv/app token\nkv/app n');
    const values = await readSecrets(c, 'hvs.t', specs, ['ci']);
    assert.deepEqual(values.map((v) => [v.spec.variable, v.value, v.apiPath]), [
      ['P', 'pa55', 'secret/data/ci/db'], ['U', 'app', 'secret/data/ci/db'], ['ALL', '{"user":"app","password":"pa55"}', 'secret/data/ci/db'], ['TOKEN', 'k-1', 'kv/app'], ['N', '5', 'kv/app'],
    ]);
    assert.deepEqual(asked.map((q) => q.url.slice(T.address.length)), ['/v1/sys/internal/ui/mounts/secret/ci/db', '/v1/sys/internal/ui/mounts/kv/app', '/v1/secret/data/ci/db', '/v1/kv/app']);
    for (const q of asked) assert.deepEqual([q.headers?.['X-Vault-Token'], q.headers?.['X-Vault-Namespace']], ['hvs.t', 'admin']);
  });

  it('all or nothing: every failing line is reported with its fix, and nothing is returned', async () => {
    const { c } = client({
      'GET sys/internal/ui/mounts/secret/ci/db': mount('secret', '2'),
      'GET sys/internal/ui/mounts/nomount/x': [403, errors('preflight capability check returned 403, please ensure client\'s policies grant access to path "nomount/x/"')],
      'GET sys/internal/ui/mounts/kv/data/app': mount('kv', '1'),
      'GET secret/data/ci/db': [200, { data: { data: { user: 'app' } } }],
      'GET secret/data/ci/denied': [403, errors('1 error occurred:\n\t* permission denied\n\n')],
      'GET secret/data/ci/gone': [404, { data: { data: null, metadata: { deletion_time: '2026-12-01T00:00:00Z', destroyed: false, version: 4 } } }],
    });
    const specs = parseSecretSpecs('secret/ci/db user | U\nsecret/ci/db password | P\nsecret/ci/denied k | D\nnomount/x k | N\nkv/data/app k | K\nsecret/ci/gone k | G');
    await assert.rejects(readSecrets(c, 'hvs.t', specs, ['ci', 'default']), (e: unknown) => {
      assert.ok(e instanceof TaskFailure);
      const m = e.message;
      assert.match(m, /5 of 6 secrets could not be read, so no variable was set/);
      assert.deepEqual([...m.matchAll(/Line (\d)/g)].map((x) => x[1]), ['2', '3', '4', '5', '6'], 'in the order of the input');
      assert.match(m, /Line 2 .*no key 'password'; its keys: user/);
      assert.match(m, /Line 3 .*permission denied reading secret\/data\/ci\/denied: the Vault token's policies \(ci, default\) lack the read capability/);
      assert.match(m, /path "secret\/data\/ci\/denied" \{ capabilities = \["read"\] \}/);
      assert.match(m, /Line 4 .*no secrets engine is mounted .* or the Vault token's policies/);
      assert.match(m, /Line 5 .*kv is a KV version 1 mount, which has no data\/ segment: the secret is kv\/app/);
      assert.match(m, /Line 6 .*latest version \(4\) of secret\/ci\/gone was deleted [\s\S]*vault kv undelete -versions=4 secret\/ci\/gone/);
      return true;
    });
  });

  it('never sends anything outside the Vault address', () => {
    const { c } = client({});
    assert.equal(c.url('secret/data/x'), `${T.address}/v1/secret/data/x`);
    assert.throws(() => c.url('../../evil'), /leave the Vault address|refused/);
  });
});
