/** Runs after the other end-to-end suites: nothing they started may still be running. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { DIST } from '../helpers/task-process';

describe('E2E leftovers', () => {
  it('no token refresher of this build is still running', function () {
    if (!fs.existsSync('/proc')) this.skip();
    const running: string[] = [];
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
        if (cmd.includes(DIST) && cmd.includes('refresher.js')) running.push(`${pid}: ${cmd}`);
      } catch {
        /* gone meanwhile */
      }
    }
    assert.deepEqual(running, []);
  });
});
