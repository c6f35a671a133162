/** L0 tests for AcrLoginFederated@1 and its post-job step, with the task-lib's MockTestRunner. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';
import { postJobEnv } from './federated-harness';

const runner = path.join(__dirname, 'acr-login-runner.js');
const taskJson = path.resolve(__dirname, '..', '..', '..', 'tasks', 'AcrLoginFederatedV1', 'task.json');
const USER = '00000000-0000-0000-0000-000000000000';

async function run(scenario: string, inputs: Record<string, string>, env: Record<string, string> = {}, tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-acr-'))) {
  const saved = { ...process.env };
  Object.assign(process.env, { L0_SCENARIO: scenario, L0_TEMP: tempDir, L0_INPUTS: JSON.stringify(inputs) }, env);
  try {
    const tr = new MockTestRunner(runner, taskJson);
    tr.nodePath = process.execPath;
    await tr.runAsync();
    return Object.assign(tr, { tempDir });
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

function variable(stdout: string, name: string): string | undefined {
  const line = stdout.split(/\r?\n/).find((l) => l.startsWith(`##vso[task.setvariable variable=${name};`));
  return line?.slice(line.indexOf(']') + 1);
}


describe('L0 AcrLoginFederated@1', function () {
  this.timeout(20_000);

  it('job scope: one Entra token, an exchange per registry, a 0600 config exported for every tool', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-home-'));
    const tr = await run('job', { registries: 'myregistry1, Other.AzureCR.io/\nhttps://third.azurecr.io' }, { DOCKER_CONFIG: home });
    assert.ok(tr.succeeded, tr.stdout);
    assert.equal(tr.stdout.split('L0: Entra token for https://containerregistry.azure.net/.default').length - 1, 1);
    for (const h of ['myregistry1.azurecr.io', 'other.azurecr.io', 'third.azurecr.io']) assert.match(tr.stdout, new RegExp(`L0: exchange at ${h.replace(/\./g, '\\.')} for tenant tenant-1 with the registry audience`));
    const dir = variable(tr.stdout, 'DOCKER_CONFIG')!;
    const file = path.join(dir, 'config.json');
    assert.ok(dir.startsWith(tr.tempDir));
    assert.equal(variable(tr.stdout, 'REGISTRY_AUTH_FILE'), file);
    assert.equal(variable(tr.stdout, 'HELM_REGISTRY_CONFIG'), file);
    assert.equal(variable(tr.stdout, 'dockerConfigPath'), file);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const config = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(Buffer.from(config.auths['other.azurecr.io'].auth, 'base64').toString(), `${USER}:l0-refresh-token-for-other.azurecr.io`);

    const post = await run('post', {}, postJobEnv(tr.stdout), tr.tempDir);
    assert.ok(post.succeeded, post.stdout);
    assert.ok(!fs.existsSync(dir), 'the job config is removed');
    assert.ok((await run('post', {}, postJobEnv(tr.stdout), tr.tempDir)).succeeded, 'a second post-job run is harmless');
  });

  it('job scope keeps the user\'s other registries, without credsStore', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-home-'));
    fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify({ auths: { 'docker.io': { auth: 'dXNlcjpwYXNz' } }, credsStore: 'desktop', credHelpers: { 'myregistry1.azurecr.io': 'acr-env', 'gcr.io': 'gcloud' } }));
    const tr = await run('job', { registries: 'myregistry1' }, { DOCKER_CONFIG: home });
    assert.ok(tr.succeeded, tr.stdout);
    const config = JSON.parse(fs.readFileSync(variable(tr.stdout, 'REGISTRY_AUTH_FILE')!, 'utf8'));
    assert.equal(config.auths['docker.io'].auth, 'dXNlcjpwYXNz');
    assert.equal(config.credsStore, undefined);
    assert.deepEqual(config.credHelpers, { 'gcr.io': 'gcloud' });
    assert.match(tr.stdout, /leaves out credsStore "desktop"/);
  });

  it('user scope: merged, warnings for what would win, restored byte for byte', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-home-'));
    const file = path.join(home, 'config.json');
    const original = '{\n  "auths": {"docker.io": {"auth": "dXNlcjpwYXNz"}},\n  "credsStore": "desktop",\n  "credHelpers": {"myregistry1.azurecr.io": "acr-env"},\n  "HttpHeaders": {"User-Agent": "x"},\n  "unknownKey": [1, 2]\n}';
    fs.writeFileSync(file, original, { mode: 0o644 });
    const tr = await run('user', { registries: 'myregistry1', configScope: 'user' }, { DOCKER_CONFIG: home });
    assert.ok(tr.succeeded, tr.stdout);
    assert.equal(tr.warningIssues.length, 2, tr.stdout);
    assert.ok(tr.warningIssues.some((w) => /credHelpers sends myregistry1\.azurecr\.io to docker-credential-acr-env/.test(w)));
    assert.ok(tr.warningIssues.some((w) => /credsStore "desktop"/.test(w)));
    const merged = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(merged.HttpHeaders, { 'User-Agent': 'x' });
    assert.deepEqual(merged.unknownKey, [1, 2]);
    assert.equal(merged.credsStore, 'desktop');
    assert.ok(merged.auths['myregistry1.azurecr.io'].auth);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);

    const post = await run('post', {}, postJobEnv(tr.stdout), tr.tempDir);
    assert.ok(post.succeeded, post.stdout);
    assert.equal(fs.readFileSync(file, 'utf8'), original);
    assert.equal(fs.statSync(file).mode & 0o777, 0o644);
  });

  it('user scope with no config: created, then removed', async () => {
    const home = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-home-')), '.docker');
    const tr = await run('user', { registries: 'myregistry1', configScope: 'user' }, { DOCKER_CONFIG: home });
    assert.ok(tr.succeeded, tr.stdout);
    assert.ok(fs.existsSync(path.join(home, 'config.json')));
    assert.ok((await run('post', {}, postJobEnv(tr.stdout), tr.tempDir)).succeeded);
    assert.ok(!fs.existsSync(home));
  });

  it('a corrupt user config is never overwritten', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-home-'));
    fs.writeFileSync(path.join(home, 'config.json'), '{"auths": {');
    const tr = await run('user', { registries: 'myregistry1', configScope: 'user' }, { DOCKER_CONFIG: home });
    assert.ok(tr.failed);
    assert.match(tr.errorIssues[0], /could not be read .*leaves it as it is/);
    assert.equal(fs.readFileSync(path.join(home, 'config.json'), 'utf8'), '{"auths": {');
  });

  it('the arm audience asks Entra for an ARM token', async () => {
    const tr = await run('job', { registries: 'myregistry1', tokenAudience: 'arm' }, { DOCKER_CONFIG: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-home-')) });
    assert.ok(tr.succeeded, tr.stdout);
    assert.match(tr.stdout, /L0: Entra token for https:\/\/management\.azure\.com\/\.default/);
    assert.match(tr.stdout, /with the arm audience/);
  });

  const refused: [Record<string, string>, RegExp][] = [
    [{}, /Input 'registries': no registry is given/],
    [{ registries: 'registry.example.com' }, /Input 'registries': 'registry\.example\.com' is not an Azure Container Registry login server of AzureCloud.*trustedRegistryHosts/s],
    [{ registries: 'myreg.azurecr.us' }, /is a registry of AzureUSGovernment, but the service connection is for AzureCloud/],
    [{ registries: 'myregistry1.azurecr.io/team/app' }, /includes a repository path.*'myregistry1\.azurecr\.io'/s],
    [{ registries: 'http://myregistry1.azurecr.io' }, /uses http:\/\//],
    [{ registries: 'my_reg' }, /'my_reg' is not a valid Azure Container Registry name/],
    [{ registries: 'myregistry1', configScope: 'global' }, /Input 'configScope': 'global' is not one of 'job', 'user'/],
    [{ registries: 'myregistry1', tokenAudience: 'aad' }, /Input 'tokenAudience': 'aad' is not one of/],
  ];
  for (const [inputs, message] of refused) {
    it(`refuses before any token: ${JSON.stringify(inputs)}`, async () => {
      const tr = await run('job', inputs);
      assert.ok(tr.failed, tr.stdout);
      assert.match(tr.errorIssues[0], message);
      assert.doesNotMatch(tr.stdout, /L0: Entra token|L0: exchange/);
    });
  }

  it('a host listed in trustedRegistryHosts is allowed', async () => {
    const tr = await run('job', { registries: 'mirror.example.com:5000', trustedRegistryHosts: 'Mirror.Example.com:5000' }, { DOCKER_CONFIG: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-home-')) });
    assert.ok(tr.succeeded, tr.stdout);
    assert.match(tr.stdout, /L0: exchange at mirror\.example\.com:5000/);
  });

  it('post-job after a failed main step (no state) is harmless', async () => {
    assert.ok((await run('post', {})).succeeded);
  });

  it('post-job leaves folders outside Agent.TempDirectory alone, whatever the task variables say', async () => {
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-acr-'));
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-l0-not-the-tasks-'));
    fs.writeFileSync(path.join(outside, 'config.json'), '{}');
    try {
      const tr = await run('post', {}, {
        VSTS_TASKVARIABLE_WORKLOADIDENTITY_ACRLOGIN_JOBCONFIGDIR: outside,
        VSTS_TASKVARIABLE_WORKLOADIDENTITY_ACRLOGIN_USERBACKUP: JSON.stringify({ file: path.join(outside, 'config.json'), backupDir: outside }),
      }, temp);
      assert.ok(fs.existsSync(path.join(outside, 'config.json')), tr.stdout);
      assert.equal(tr.stdout.match(/##vso\[task\.issue type=warning;[^\]]*\]Left .+ alone: it is not a folder under Agent\.TempDirectory/g)?.length, 2, tr.stdout);
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });
});
