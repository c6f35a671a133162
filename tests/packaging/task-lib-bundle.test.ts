/**
 * task-lib as the tasks carry it (dist/tasks/<Task>/task-lib.js with its seldom-used parts in
 * task-lib-extras.js, see scripts/shims/task-lib-lazy.mjs), judged by task-lib itself: the same
 * calls through the bundle and through node_modules/azure-pipelines-task-lib, each in a fresh Node
 * process, print the same lines: task-lib's own messages, its errors, tool lookup, matching and its
 * handler of unexpected errors; and what it does when it loads in a job's environment (laid out by
 * tests/helpers/agent-job.ts, with a connection, inputs and a task variable): its debug lines, the
 * secrets in its vault and gone from the environment, every way of reading them back, its map of
 * known variables, assertAgent (semver) and its check of the Node version.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { agentJob } from '../helpers/agent-job';

const root = path.resolve(__dirname, '..', '..', '..');
const DIST = path.join(root, 'dist', 'tasks');

// `tl` is task-lib's task module, `im` its internal one; every line is printed, thrown messages included.
const CALLS = `
const out = (label, f) => { try { process.stdout.write(label + ': ' + JSON.stringify(f()) + '\\n'); } catch (e) { process.stdout.write(label + ' threw: ' + e.message + '\\n'); } };
process.stdout.write('--- calls\\n');
out('left in the environment', () => Object.keys(process.env).filter((k) => /^(INPUT_|ENDPOINT_AUTH_|SECRET_|VSTS_)/.test(k)).sort());
out('vault', () => Object.keys(im._vault._store).sort().map((k) => k + '=' + im._vault.retrieveSecret(k)));
out('key file', () => require('fs').existsSync(require('path').join(process.env.AGENT_TEMPDIRECTORY, '.taskkey')));
out('known variables', () => Object.entries(im._knownVariableMap).sort(([a], [b]) => a.localeCompare(b)));
out('variables', () => tl.getVariables().map((v) => v.name + '=' + v.value + (v.secret ? ' (secret)' : '')).sort());
out('input', () => tl.getInput('connectedServiceNameARM', true));
out('endpoint', () => tl.getEndpointAuthorization(process.env.TEST_CONNECTION, false));
out('endpoint scheme', () => tl.getEndpointAuthorizationScheme('SystemVssConnection', false));
out('endpoint parameter', () => tl.getEndpointAuthorizationParameter('SystemVssConnection', 'AccessToken', false));
out('secret variable', () => tl.getVariable('System.AccessToken'));
out('task variable', () => tl.getTaskVariable('WorkloadIdentity.Test.Dir'));
out('secret set later', () => (tl.setVariable('Later.Secret', 'later-value', true), tl.getVariable('Later.Secret')));
out('assertAgent 2.104.1', () => tl.assertAgent('2.104.1'));
out('assertAgent 2.0.0', () => tl.assertAgent('2.0.0'));
out('assertAgent 9.0.0', () => tl.assertAgent('9.0.0'));
out('loc', () => tl.loc('LIB_InputRequired', 'x'));
out('required input', () => tl.getInput('missing', true));
out('endpoint url', () => tl.getEndpointUrl('nope', false));
out('endpoint auth', () => tl.getEndpointAuthorization('nope', false));
out('which', () => tl.which('definitely-not-a-tool-here', true));
out('match', () => tl.match(['a.txt', 'b.js'], '*.js'));
out('multi-line secret', () => tl.setSecret('a\\nb'));
out('tool runner', () => typeof tl.ToolRunner);
process.on('exit', () => process.stdout.write('--- exit\\n'));
setTimeout(() => { throw new Error('unexpected'); }, 0);
`;

/** task-lib from node_modules, and as a task folder carries it: its task and internal modules. */
const REAL = { tl: `require(${JSON.stringify(require.resolve('azure-pipelines-task-lib/task'))})`, im: `require(${JSON.stringify(require.resolve('azure-pipelines-task-lib/internal'))})` };
const bundled = (folder: string) => {
  const file = JSON.stringify(path.join(DIST, folder, 'task-lib.js'));
  return { tl: `require(${file}).task`, im: `require(${file}).internal` };
};

/** A build job's environment (about 100 variables, System.AccessToken secret), a connection, inputs and a task variable. */
function jobEnvironment(temp: string): Record<string, string> {
  const job = agentJob({ collectionUri: 'https://dev.azure.com/contoso/', projectId: '0c3e9a57-2f61-4b8d-a4e2-7b9f1c5d3e80', projectName: 'web', accessToken: 'job-access-token', tempDirectory: temp, planId: 'c4413791-7e46-4f86-9aa1-9b100e5d9d9f', jobId: 'e83e5340-ea80-4ed3-ad0c-6933e95c31e6', debug: false, variables: { 'WorkloadIdentity.HttpTimeoutSeconds': '5' }, secretVariables: { 'Deploy.Password': 'p@ss' } });
  const id = '3b96a05d-e537-40c2-9b5d-86f62e5c7d4b';
  const parameters = { tenantid: 'e1f24d15-0d83-452e-a6d3-9cc805ff7004', serviceprincipalid: 'c8fb060a-7aee-4e8f-8aa5-66ac68536812' };
  return {
    ...job.env,
    [`ENDPOINT_URL_${id}`]: 'https://management.azure.com/',
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ parameters, scheme: 'WorkloadIdentityFederation' }),
    [`ENDPOINT_AUTH_SCHEME_${id}`]: 'WorkloadIdentityFederation',
    [`ENDPOINT_AUTH_PARAMETER_${id}_TENANTID`]: parameters.tenantid,
    [`ENDPOINT_AUTH_PARAMETER_${id}_SERVICEPRINCIPALID`]: parameters.serviceprincipalid,
    INPUT_CONNECTEDSERVICENAMEARM: id,
    INPUT_EMPTY: '',
    VSTS_TASKVARIABLE_WORKLOADIDENTITY_TEST_DIR: ' /tmp/x ',
    TEST_CONNECTION: id,
  };
}

function run(load: { tl: string; im: string }, temp: string, env: Record<string, string> = { AGENT_TEMPDIRECTORY: temp }): string[] {
  // One path for both runs: the unexpected error's stack names it.
  const script = path.join(temp, 'calls.js');
  fs.writeFileSync(script, `const tl = ${load.tl};\nconst im = ${load.im};\n${CALLS}`);
  const r = spawnSync(process.execPath, [script], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
  // What task-lib printed when it loaded, then the calls.
  return r.stdout.split(os.EOL);
}

/** task-lib loaded as if Node were `version`: its load-time check of the Node version (older than 4.2.0?). */
function loadAs(version: string, tl: string, temp: string): string {
  const r = spawnSync(process.execPath, ['-e', `Object.defineProperty(process, 'versions', { value: { ...process.versions, node: ${JSON.stringify(version)} } }); ${tl}; process.stdout.write('loaded\\n');`], { cwd: root, env: { PATH: process.env.PATH ?? '', AGENT_TEMPDIRECTORY: temp }, encoding: 'utf8' });
  return `${version}: exit ${r.status}, ${r.stdout.includes('loaded') ? 'loaded' : 'did not load'}${/Cannot read properties of undefined \(reading 'write'\)/.test(r.stderr) ? ', its warning written before its output stream is set' : ''}`;
}

describe('task-lib as bundled in each task folder, judged by task-lib', function () {
  this.timeout(60_000);
  let temp: string;
  before(() => (temp = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-task-lib-'))));
  after(() => fs.rmSync(temp, { recursive: true, force: true }));

  const folders = fs.existsSync(DIST) ? fs.readdirSync(DIST).filter((d) => fs.existsSync(path.join(DIST, d, 'task-lib.js'))) : [];

  it('every task folder carries task-lib.js and task-lib-extras.js', () => {
    assert.ok(folders.length >= 6, `task folders with task-lib.js under ${DIST}: ${folders.join(', ')}`);
    for (const f of folders) assert.ok(fs.existsSync(path.join(DIST, f, 'task-lib-extras.js')), `${f}/task-lib-extras.js`);
  });

  for (const folder of ['FetchOidcTokenV1', 'ValidateServiceConnectionV1']) {
    it(`${folder}: its messages, errors, which, match and the unexpected-error handler are task-lib's, line for line`, () => {
      const expected = run(REAL, temp);
      const actual = run(bundled(folder), temp);
      assert.ok(expected.includes('loc: "Input required: x"'), `task-lib's own output: ${expected.join('\n')}`);
      assert.ok(expected.some((l) => l.includes('Unhandled: unexpected')), 'task-lib reported the unexpected error');
      assert.deepEqual(actual, expected);
    });

    it(`${folder}: in a job's environment, its load (debug lines, vault, known variables) and every read of a secret are task-lib's, line for line`, () => {
      const env = jobEnvironment(temp);
      const expected = run(REAL, temp, env);
      const actual = run(bundled(folder), temp, env);
      // What task-lib must do, as task-lib does it: the secrets in the vault and out of the environment.
      assert.ok(expected.includes('##vso[task.debug]loading SECRET_SYSTEM_ACCESSTOKEN'), `task-lib's own output: ${expected.join('\n')}`);
      assert.ok(expected.includes('##vso[task.debug]loaded 11'), 'eleven secrets loaded (the connection\'s four, the job\'s three, System.AccessToken, Deploy.Password, an input, the task variable; the empty input not)');
      assert.ok(expected.includes('left in the environment: ["INPUT_EMPTY"]'), 'every secret gone from the environment (an empty input stays: task-lib stores no empty value)');
      assert.ok(expected.includes('secret variable: "job-access-token"'), 'System.AccessToken read back from the vault');
      assert.ok(expected.includes('assertAgent 2.0.0 threw: assertAgent() requires the parameter to be 2.104.1 or higher'));
      assert.ok(expected.includes('assertAgent 9.0.0 threw: Agent version 9.0.0 or higher is required. Detected Agent version: 4.266.2'));
      assert.deepEqual(actual, expected);
    });
  }

  it("task-lib's load-time check of the Node version answers as semver does, bundled without semver", () => {
    const versions = ['4.1.9', '4.2.0-pre', '4.2.0', '4.10.0', '20.0.0', process.versions.node];
    const expected = versions.map((v) => loadAs(v, REAL.tl, temp));
    const actual = versions.map((v) => loadAs(v, bundled('FetchOidcTokenV1').tl, temp));
    assert.equal(expected[0], '4.1.9: exit 1, did not load, its warning written before its output stream is set');
    assert.equal(expected[2], '4.2.0: exit 0, loaded');
    assert.deepEqual(actual, expected);
  });
});
