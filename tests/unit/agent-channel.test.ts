/**
 * The post-job channel writes the agent's commands without loading task-lib's task module. Judged
 * by task-lib itself: the same calls, in the same environment, through azure-pipelines-task-lib and
 * through the channel, each in a fresh Node process, must print the same lines (task-lib's own
 * start-up debug lines, and its agent version check, aside).
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const channelModule = path.resolve(__dirname, '..', '..', 'tasks', 'core', 'agent', 'agent-channel.js');

// Each script prints a marker after loading, then makes the calls; `api` is task-lib or the channel.
const CALLS = `
process.stdout.write('--- calls\\n');
api.warning('a warning with ] ; % and\\na second line');
api.debug('a debug line\\r\\nwith a CRLF');
process.stdout.write('value=' + JSON.stringify(getTaskVariable('WorkloadIdentity.Some.State')) + '\\n');
process.stdout.write('absent=' + JSON.stringify(getTaskVariable('WorkloadIdentity.Not.Set')) + '\\n');
process.stdout.write('variable=' + JSON.stringify(getVariable('WorkloadIdentity.LockWaitSeconds')) + '\\n');
api.setSecret('a secret; with ] and %');
api.setSecret('');
setResult(process.env.L_RESULT, 'the result; with ] and %\\nsecond line');
process.stdout.write('correlation id left in the environment: ' + (process.env.COMMAND_CORRELATION_ID ?? 'no') + '\\n');
`;

const TASK_LIB = `
const api = require('azure-pipelines-task-lib/task');
const getTaskVariable = (n) => api.getTaskVariable(n);
const getVariable = (n) => api.getVariable(n);
const setResult = (r, m) => api.setResult(api.TaskResult[r], m);
${CALLS}`;

const CHANNEL = `
const c = require(${JSON.stringify(channelModule)});
c.usePostJobChannel();
const api = c.agent();
const getTaskVariable = (n) => api.getTaskVariable(n);
const getVariable = (n) => api.getVariable(n);
const setResult = (r, m) => api.setResult(r, m);
${CALLS}`;

function run(script: string, env: Record<string, string>, temp: string): string[] {
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: path.resolve(__dirname, '..', '..', '..'),
    env: { PATH: process.env.PATH ?? '', AGENT_TEMPDIRECTORY: temp, AGENT_VERSION: '4.255.0', ...env },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split(os.EOL);
  // task-lib's getTaskVariable checks the agent version first, and logs it.
  return lines.slice(lines.indexOf('--- calls')).filter((l) => !/Agent\.Version=/.test(l));
}

describe('the post-job agent channel, judged by task-lib', () => {
  let temp: string;
  before(() => (temp = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-channel-'))));
  after(() => fs.rmSync(temp, { recursive: true, force: true }));

  const base = {
    VSTS_TASKVARIABLE_WORKLOADIDENTITY_SOME_STATE: '  /agent/_temp/state; with ] and %  ',
    WORKLOADIDENTITY_LOCKWAITSECONDS: ' 45 ',
    COMMAND_CORRELATION_ID: 'c0ffee00-0000-4000-8000-000000000001',
  };
  const cases: [string, Record<string, string>][] = [
    ['Failed, debug lines on', { ...base, L_RESULT: 'Failed' }],
    ['SucceededWithIssues', { ...base, L_RESULT: 'SucceededWithIssues' }],
    ['Succeeded', { ...base, L_RESULT: 'Succeeded' }],
    ['debug lines skipped outside debug mode', { ...base, L_RESULT: 'Failed', DISTRIBUTEDTASK_TASKS_NODE_SKIPDEBUGLOGSWHENDEBUGMODEOFF: 'true' }],
    ['debug mode on with the skip switch', { ...base, L_RESULT: 'Succeeded', DISTRIBUTEDTASK_TASKS_NODE_SKIPDEBUGLOGSWHENDEBUGMODEOFF: 'true', SYSTEM_DEBUG: 'True' }],
    ['no correlation id', { VSTS_TASKVARIABLE_WORKLOADIDENTITY_SOME_STATE: 'x', L_RESULT: 'Failed' }],
    ['a secret pipeline variable, listed by the agent', { ...base, WORKLOADIDENTITY_LOCKWAITSECONDS: '', SECRET_WORKLOADIDENTITY_LOCKWAITSECONDS: '120', VSTS_SECRET_VARIABLES: '["WorkloadIdentity.LockWaitSeconds"]', VSTS_PUBLIC_VARIABLES: '["Some.Other"]', L_RESULT: 'Succeeded' }],
    ['a secret pipeline variable from an older agent (SECRET_ only)', { ...base, WORKLOADIDENTITY_LOCKWAITSECONDS: '', SECRET_WORKLOADIDENTITY_LOCKWAITSECONDS: '90', L_RESULT: 'Succeeded' }],
    ['a name the agent lists as public, with a SECRET_ of the same name', { ...base, SECRET_WORKLOADIDENTITY_LOCKWAITSECONDS: '90', VSTS_PUBLIC_VARIABLES: '["WorkloadIdentity.LockWaitSeconds"]', L_RESULT: 'Succeeded' }],
  ];
  for (const [name, env] of cases) {
    it(`${name}: the same commands, byte for byte`, () => {
      const expected = run(TASK_LIB, env, temp);
      const actual = run(CHANNEL, env, temp);
      assert.ok(expected.some((l) => l.startsWith('##vso[task.complete')), 'task-lib completed the step');
      assert.deepEqual(actual, expected);
    });
  }

  it('setSecret refuses a multi-line secret as task-lib does, unless SYSTEM_UNSAFEALLOWMULTILINESECRET is true', () => {
    const script = (api: string) => `${api}\ntry { api.setSecret('line 1\\nline 2'); } catch (e) { process.stdout.write('--- calls\\nthrown: ' + e.message + '\\n'); }`;
    for (const allow of ['', 'true']) {
      const env: Record<string, string> = allow ? { SYSTEM_UNSAFEALLOWMULTILINESECRET: allow } : {};
      const expected = run(script("const api = require('azure-pipelines-task-lib/task');"), env, temp);
      const actual = run(script(`const c = require(${JSON.stringify(channelModule)}); c.usePostJobChannel(); const api = c.agent();`), env, temp);
      assert.deepEqual(actual, expected);
    }
  });

  describe("the agent's proxy and CA settings (agent-settings.ts): what task-lib's getHttpProxyConfiguration and getHttpCertConfiguration read, in a main step and in a post-job step", () => {
    const settingsModule = path.resolve(__dirname, '..', '..', 'tasks', 'core', 'agent', 'agent-settings.js');
    // The values as one line, to be the same whichever way they were read; the CA as its file's name when its content was read.
    const READ_TASK_LIB = `
const tl = require('azure-pipelines-task-lib/task');
process.stdout.write('--- calls\\n');
const p = tl.getHttpProxyConfiguration();
if (p && p.proxyPassword) tl.setSecret(p.proxyPassword);
const c = tl.getHttpCertConfiguration();
process.stdout.write('values=' + JSON.stringify({ proxy: p ? [p.proxyUrl, p.proxyUsername || null, p.proxyPassword || null, p.proxyBypassHosts] : null, ca: c ? c.caFile : null }) + '\\n');`;
    const readSettings = (post: boolean) => `
const c = require(${JSON.stringify(channelModule)});
${post ? 'c.usePostJobChannel();' : "require('azure-pipelines-task-lib/task');"}
const s = require(${JSON.stringify(settingsModule)});
process.stdout.write('--- calls\\n');
const p = s.readProxy();
const t = s.readTls('');
const ca = t.ca && t.ca[0] === require('node:fs').readFileSync(process.env.AGENT_CAINFO, 'utf8') ? process.env.AGENT_CAINFO : t.ca ? 'other content' : null;
process.stdout.write('values=' + JSON.stringify({ proxy: p ? [p.url, p.username || null, p.password || null, p.bypass.map((r) => r.source)] : null, ca }) + '\\n');
${post ? '' : "process.stdout.write('task-lib loaded: ' + Object.keys(require.cache).some((k) => /azure-pipelines-task-lib[\\\\/]task\\.js$/.test(k)) + '\\n');"}`;

    const cases: [string, Record<string, string>][] = [
      ['no proxy, no CA', {}],
      ['a proxy without credentials, a bypass list, the agent\'s CA', { AGENT_PROXYURL: 'http://proxy.corp:3128', AGENT_PROXYBYPASSLIST: '["\\\\.internal\\\\.corp$","localhost"]', VSTS_PUBLIC_VARIABLES: '["Agent.ProxyUrl","Agent.ProxyBypassList","Agent.CAInfo"]' }],
      ['a proxy with a user and a secret password as the agent passes them', { AGENT_PROXYURL: 'http://proxy.corp:3128', AGENT_PROXYUSERNAME: 'svc-build', SECRET_AGENT_PROXYPASSWORD: 'p@ss; with ] and %', VSTS_PUBLIC_VARIABLES: '["Agent.ProxyUrl","Agent.ProxyUsername"]', VSTS_SECRET_VARIABLES: '["Agent.ProxyPassword"]' }],
    ];
    for (const [name, env] of cases) {
      it(`${name}: the same values, debug lines and masks as task-lib's`, () => {
        const caFile = path.join(temp, 'agent-ca.pem');
        fs.writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
        const all = { ...env, ...(env.VSTS_PUBLIC_VARIABLES?.includes('Agent.CAInfo') ? { AGENT_CAINFO: caFile } : {}) };
        const expected = run(READ_TASK_LIB, all, temp);
        const main = run(readSettings(false), all, temp);
        const post = run(readSettings(true), all, temp);
        assert.equal(main.splice(main.indexOf('task-lib loaded: true'), 1).length, 1, 'task-lib was loaded in the main step');
        assert.deepEqual(main, expected, 'in a main step (task-lib)');
        assert.deepEqual(post, expected, 'in a post-job step (the channel)');
        if (env.SECRET_AGENT_PROXYPASSWORD) assert.ok(expected.includes(`##vso[task.setsecret]${env.SECRET_AGENT_PROXYPASSWORD.replace(/%/g, '%AZP25')}`), expected.join('\n'));
      });
    }

    it('a post-job step that reads them does not load task-lib', () => {
      const script = path.join(temp, 'settings-loaded.js');
      fs.writeFileSync(script, `${readSettings(true)}\nprocess.stdout.write(JSON.stringify({ taskLib: Object.keys(require.cache).filter((k) => /azure-pipelines-task-lib[\\\\/](task|internal|vault)\\.js$/.test(k)) }) + '\\n');`);
      const r = spawnSync(process.execPath, [script], {
        cwd: path.resolve(__dirname, '..', '..', '..'),
        env: { PATH: process.env.PATH ?? '', AGENT_TEMPDIRECTORY: temp, AGENT_PROXYURL: 'http://proxy.corp:3128', NODE_PATH: path.resolve(__dirname, '..', '..', '..', 'node_modules') },
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout.trim().split(os.EOL).pop() ?? ''), { taskLib: [] });
    });
  });

  it('the channel loads neither task-lib\'s task module nor node:crypto', () => {
    // A script file: node -e loads node:crypto for its own use.
    const script = path.join(temp, 'loaded.js');
    fs.writeFileSync(script, `${CHANNEL}\nprocess.stdout.write(JSON.stringify({ taskLib: Object.keys(require.cache).filter((k) => /azure-pipelines-task-lib[\\\\/](task|internal|vault)\\.js$/.test(k)), crypto: process.moduleLoadList.includes('NativeModule crypto') }) + '\\n');`);
    const r = spawnSync(process.execPath, [script], {
      cwd: path.resolve(__dirname, '..', '..', '..'),
      env: { PATH: process.env.PATH ?? '', AGENT_TEMPDIRECTORY: temp, L_RESULT: 'Succeeded', NODE_PATH: path.resolve(__dirname, '..', '..', '..', 'node_modules') },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split(os.EOL).pop() ?? ''), { taskLib: [], crypto: false });
  });

  it('what a post-job step imports to remove its files loads neither task-lib nor the HTTP layer (node:http, node:https, node:tls, node:crypto)', () => {
    const core = path.resolve(__dirname, '..', '..', 'tasks', 'core');
    const modules = ['agent/task-runner.js', 'agent/output.js', 'agent/variables.js', 'agent/pipeline-variables.js', 'files/secret-files.js', 'files/fresh-token-file.js'].map((m) => path.join(core, m));
    const script = path.join(temp, 'post-imports.js');
    fs.writeFileSync(script, `${modules.map((m) => `require(${JSON.stringify(m)});`).join('\n')}\nrequire(${JSON.stringify(channelModule)}).usePostJobChannel();\nrequire(${JSON.stringify(path.join(core, 'agent/pipeline-variables.js'))}).httpPolicy();\nprocess.stdout.write(JSON.stringify({ taskLib: Object.keys(require.cache).filter((k) => /azure-pipelines-task-lib[\\\\/](task|internal|vault)\\.js$/.test(k)), builtins: ['http', 'https', 'tls', 'crypto'].filter((m) => process.moduleLoadList.includes('NativeModule ' + m)) }) + '\\n');`);
    const r = spawnSync(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', AGENT_TEMPDIRECTORY: temp }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split(os.EOL).pop() ?? ''), { taskLib: [], builtins: [] });
  });

  it('a post-job step\'s error outside its awaited chain still ends the step as failed, neutralised, nothing on stderr', () => {
    const runner = path.resolve(__dirname, '..', '..', 'tasks', 'core', 'agent', 'task-runner.js');
    const script = path.join(temp, 'late-error.js');
    fs.writeFileSync(script, `require(${JSON.stringify(runner)}).runPostJob('X (post-job)', async () => { setTimeout(() => { throw new Error('late\\r\\n##vso[task.setvariable variable=INJECTED]1'); }, 0); });`);
    const r = spawnSync(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', AGENT_TEMPDIRECTORY: temp }, encoding: 'utf8' });
    assert.equal(r.stderr, '');
    const complete = r.stdout.split(os.EOL).filter((l) => l.startsWith('##vso[task.complete'));
    assert.equal(complete.at(-1), '##vso[task.complete result=Failed;]X (post-job) failed unexpectedly: late\\r\\n##vso%AZP255Btask.setvariable variable=INJECTED]1');
    assert.ok(!r.stdout.split(os.EOL).some((l) => /##vso\[task\.setvariable/.test(l)), r.stdout);
  });
});
