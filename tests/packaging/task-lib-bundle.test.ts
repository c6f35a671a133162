/**
 * task-lib as the tasks carry it (dist/tasks/<Task>/task-lib.js with its seldom-used parts in
 * task-lib-extras.js, see scripts/shims/task-lib-lazy.mjs), judged by task-lib itself: the same
 * calls through the bundle and through node_modules/azure-pipelines-task-lib, each in a fresh Node
 * process, print the same lines: task-lib's own messages, its errors, tool lookup, matching and its
 * handler of unexpected errors.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..');
const DIST = path.join(root, 'dist', 'tasks');

// `tl` is task-lib's task module; every line is printed, thrown messages included.
const CALLS = `
const out = (label, f) => { try { process.stdout.write(label + ': ' + JSON.stringify(f()) + '\\n'); } catch (e) { process.stdout.write(label + ' threw: ' + e.message + '\\n'); } };
process.stdout.write('--- calls\\n');
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

function run(load: string, temp: string): string[] {
  // One path for both runs: the unexpected error's stack names it.
  const script = path.join(temp, 'calls.js');
  fs.writeFileSync(script, `const tl = ${load};\n${CALLS}`);
  const r = spawnSync(process.execPath, [script], { cwd: root, env: { PATH: process.env.PATH ?? '', AGENT_TEMPDIRECTORY: temp }, encoding: 'utf8' });
  const lines = r.stdout.split(os.EOL);
  return lines.slice(lines.indexOf('--- calls'));
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
      const expected = run(`require(${JSON.stringify(require.resolve('azure-pipelines-task-lib/task'))})`, temp);
      const actual = run(`require(${JSON.stringify(path.join(DIST, folder, 'task-lib.js'))}).task`, temp);
      assert.ok(expected.includes('loc: "Input required: x"'), `task-lib's own output: ${expected.join('\n')}`);
      assert.ok(expected.some((l) => l.includes('Unhandled: unexpected')), 'task-lib reported the unexpected error');
      assert.deepEqual(actual, expected);
    });
  }
});
