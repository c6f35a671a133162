/**
 * Runs after every other suite (its folder sorts last): nothing the suite started may still run,
 * and nothing may have been left in the system's temp folder. The suite's own temp folders live in
 * one scratch folder (tests/helpers/root-hooks.ts), removed after this test.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { DIST } from '../helpers/task-process';
import { SCRATCH, SYSTEM_TMPDIR, SYSTEM_TMPDIR_BEFORE } from '../helpers/root-hooks';

function processes(): { pid: string; cmd: string }[] {
  const out: { pid: string; cmd: string }[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      out.push({ pid, cmd: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ') });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

describe('Leftovers of the whole suite', () => {
  it('no token refresher of this build is still running', function () {
    if (!fs.existsSync('/proc')) this.skip();
    const running = processes().filter((p) => p.cmd.includes(DIST) && p.cmd.includes('refresher.js'));
    assert.deepEqual(running.map((p) => `${p.pid}: ${p.cmd}`), []);
  });

  it('no process the suite started is still running (tinyproxy, docker-registry, chromium, tasks)', function () {
    if (!fs.existsSync('/proc')) this.skip();
    const running = processes().filter((p) => p.pid !== String(process.pid) && (p.cmd.includes(SCRATCH) || p.cmd.includes(DIST)));
    assert.deepEqual(running.map((p) => `${p.pid}: ${p.cmd}`), []);
  });

  it('nothing new in the system temp folder but this run\'s scratch folder', () => {
    const added = fs.readdirSync(SYSTEM_TMPDIR).filter((e) => !SYSTEM_TMPDIR_BEFORE.has(e) && `${SYSTEM_TMPDIR}/${e}` !== SCRATCH);
    assert.deepEqual(added, [], `left in ${SYSTEM_TMPDIR}`);
  });
});
