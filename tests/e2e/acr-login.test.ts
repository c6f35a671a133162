/**
 * AcrLoginFederated@1 end to end: the bundled task, run as the agent runs it, logs in to the
 * emulator's ACR; Debian's skopeo then pushes to a real docker-registry (CNCF distribution) with
 * the auth file the task wrote, pulls the image back, and is refused once the post-job step ran.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, Emulator } from '../emulator/index';
import { addFederatedConnection, E2eRuns, postJobEnv, TENANT, wif } from '../helpers/e2e';
import { startRegistry, RunningRegistry } from '../helpers/registry';
import { makeOciLayout, pullDigest, push } from '../helpers/oci';

describe('E2E AcrLoginFederated@1 (bundled task, emulator, real registry, skopeo)', function () {
  this.timeout(90_000);
  let emu: Emulator;
  let registry: RunningRegistry;
  let second: string;
  const e2e = new E2eRuns(() => emu);

  before(async () => {
    emu = await startEmulator();
    registry = await startRegistry(emu);
    emu.addRegistry({ loginServer: emu.host, tenantId: TENANT, upstream: registry.upstream });
    // The same emulator under its other name: a second registry for the two-registry run.
    second = `localhost:${emu.host.split(':')[1]}`;
    emu.addRegistry({ loginServer: second, tenantId: TENANT });
  });
  after(async () => {
    await registry?.stop();
    await emu?.stop();
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
  });


  function dockerHome(): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), 'wit-docker-home-'));
  }

  it('logs in with no secret; skopeo pushes and pulls with the auth file; after the post-job step the push is refused', async () => {
    const c = addFederatedConnection(emu);
    const job = { tempDirectory: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-job-')) };
    const env = { DOCKER_CONFIG: dockerHome() };
    const r = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs: { registries: emu.host, trustedRegistryHosts: emu.host }, job, env });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual([emu.count('oidctoken'), emu.count('entra.token'), emu.count('acr.exchange')], [1, 1, 1]);
    assert.equal(emu.lastTokenRequest()?.scope, 'https://containerregistry.azure.net/.default');
    const authFile = r.variables.REGISTRY_AUTH_FILE.value;
    assert.equal(r.variables.HELM_REGISTRY_CONFIG.value, authFile);
    assert.equal(path.join(r.variables.DOCKER_CONFIG.value, 'config.json'), authFile);
    assert.equal(r.variables.dockerConfigPath.value, authFile);
    assert.ok(authFile.startsWith(job.tempDirectory));
    assert.equal(fs.statSync(authFile).mode & 0o777, 0o600);

    const image = makeOciLayout(fs.mkdtempSync(path.join(os.tmpdir(), 'wit-image-')));
    const pushed = await push(emu, image.layout, `${emu.host}/app:v1`, authFile);
    assert.equal(pushed.code, 0, `${pushed.stderr}\n${registry.logs()}`);
    assert.equal(await pullDigest(emu, `${emu.host}/app:v1`, authFile), image.manifestDigest);

    const post = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), job, env: { ...env, ...postJobEnv(r) }, entry: 'post.js' });
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.ok(!fs.existsSync(authFile), 'the auth file is gone');
    const again = await push(emu, image.layout, `${emu.host}/app:v2`, authFile);
    assert.notEqual(again.code, 0, 'the push fails without the login');
  });

  it('two registries: 1 idToken, 1 Entra token, 2 exchanges', async () => {
    const c = addFederatedConnection(emu);
    const r = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs: { registries: `${emu.host}\n${second}`, trustedRegistryHosts: `${emu.host}, ${second}` }, env: { DOCKER_CONFIG: dockerHome() } });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.deepEqual([emu.count('oidctoken'), emu.count('entra.token'), emu.count('acr.exchange')], [1, 1, 2]);
    const config = JSON.parse(fs.readFileSync(r.variables.REGISTRY_AUTH_FILE.value, 'utf8'));
    assert.deepEqual(Object.keys(config.auths).sort(), [emu.host, second].sort());
  });

  it('user scope: another registry and credsStore preserved byte for byte after the post-job step', async () => {
    const c = addFederatedConnection(emu);
    const home = dockerHome();
    const file = path.join(home, 'config.json');
    const original = '{\n\t"auths": {\n\t\t"registry.example.com": {\n\t\t\t"auth": "dXNlcjpwYXNzd29yZA=="\n\t\t}\n\t},\n\t"credsStore": "pass"\n}';
    fs.writeFileSync(file, original, { mode: 0o600 });
    const job = { tempDirectory: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-job-')) };
    const r = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs: { registries: emu.host, trustedRegistryHosts: emu.host, configScope: 'user' }, job, env: { DOCKER_CONFIG: home } });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(r.variables.dockerConfigPath.value, file);
    const merged = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(merged.auths['registry.example.com'].auth, 'dXNlcjpwYXNzd29yZA==');
    assert.equal(merged.credsStore, 'pass');
    assert.ok(merged.auths[emu.host].auth);
    assert.ok(r.warnings.some((w) => /credsStore "pass"/.test(w)), 'docker would ignore the login: said so');

    // skopeo reads the merged file (it does not use credsStore).
    const image = makeOciLayout(fs.mkdtempSync(path.join(os.tmpdir(), 'wit-image-')), 'user');
    const pushed = await push(emu, image.layout, `${emu.host}/user-scope:v1`, file, 'user');
    assert.equal(pushed.code, 0, pushed.stderr);

    const post = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), job, env: { DOCKER_CONFIG: home, ...postJobEnv(r) }, entry: 'post.js' });
    assert.equal(post.result, 'Succeeded', post.stdout);
    assert.equal(fs.readFileSync(file, 'utf8'), original);
  });

  it('a host that is not an ACR login server is refused with zero requests', async () => {
    const c = addFederatedConnection(emu);
    const r = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs: { registries: `${emu.host}, ${second}`, trustedRegistryHosts: emu.host }, env: { DOCKER_CONFIG: dockerHome() } });
    assert.equal(r.result, 'Failed');
    assert.match(r.errors.join('\n'), new RegExp(`'${second}' is not an Azure Container Registry login server of AzureCloud .*so no token is sent to it`));
    assert.equal(Object.values(emu.counts()).reduce((a, b) => a + b, 0), 0, JSON.stringify(emu.counts()));
  });

  it('401 from the exchange: names the identity and audience, suggests the role and the other audience', async () => {
    const c = addFederatedConnection(emu);
    const restricted = `${emu.host}`;
    emu.addRegistry({ loginServer: restricted, tenantId: TENANT, upstream: registry.upstream, allowedClientIds: ['11111111-2222-4333-8444-555555555555'] });
    try {
      const r = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs: { registries: restricted, trustedRegistryHosts: restricted }, env: { DOCKER_CONFIG: dockerHome() } });
      assert.equal(r.result, 'Failed');
      const msg = r.errors.join('\n');
      assert.match(msg, new RegExp(`refused the token exchange \\(HTTP 401\\) for identity ${c.clientId} with the registry audience`));
      assert.match(msg, /Grant the identity AcrPush/);
      assert.match(msg, /try tokenAudience: arm/);
      assert.equal(emu.count('acr.exchange'), 1, 'not retried');
    } finally {
      emu.addRegistry({ loginServer: emu.host, tenantId: TENANT, upstream: registry.upstream });
    }
  });

  it('authentication-as-arm disabled: the arm audience is refused, the default registry audience works', async () => {
    const c = addFederatedConnection(emu);
    emu.addRegistry({ loginServer: second, tenantId: TENANT, authenticationAsArmDisabled: true });
    const inputs = { registries: second, trustedRegistryHosts: second };
    const arm = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs: { ...inputs, tokenAudience: 'arm' }, env: { DOCKER_CONFIG: dockerHome() } });
    assert.equal(arm.result, 'Failed');
    assert.match(arm.errors.join('\n'), /with the arm audience.*\n.*authentication-as-arm is disabled/);
    assert.match(arm.errors.join('\n'), /try tokenAudience: registry/);
    const ok = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs, env: { DOCKER_CONFIG: dockerHome() } });
    assert.equal(ok.result, 'Succeeded', ok.stdout);
    emu.addRegistry({ loginServer: second, tenantId: TENANT });
  });

  it('a 503 from the exchange is retried (2 requests), a 404 explained', async () => {
    const c = addFederatedConnection(emu);
    emu.inject('acr.exchange', { kind: 'status', status: 503 });
    const r = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs: { registries: emu.host, trustedRegistryHosts: emu.host }, env: { DOCKER_CONFIG: dockerHome() } });
    assert.equal(r.result, 'Succeeded', r.stdout);
    assert.equal(emu.count('acr.exchange'), 2);

    emu.inject('acr.exchange', { kind: 'status', status: 404, body: '{"errors":[{"code":"NAME_UNKNOWN","message":"registry not found"}]}' });
    const missing = await e2e.run({ task: 'AcrLoginFederatedV1', conn: wif(c), inputs: { registries: emu.host, trustedRegistryHosts: emu.host }, env: { DOCKER_CONFIG: dockerHome() } });
    assert.equal(missing.result, 'Failed');
    assert.match(missing.errors.join('\n'), /answered 404 to the token exchange.*\n.*registry name is wrong, or it is in another cloud/);
  });
});
