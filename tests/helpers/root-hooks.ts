/**
 * Loaded by mocha before any spec file (.mocharc.json `require`). Every temp folder the suite makes
 * (jobs' Agent.TempDirectory, docker homes, proxies' and registries' configs, screenshots) goes
 * under one scratch folder of this run, removed when the run ends, pass or fail: `npm test` leaves
 * nothing in TMPDIR. Tasks run as child processes with the environment the agent would give them,
 * without TMPDIR: anything the product wrote to the system's temp folder would show up there, and
 * the last test (tests/zz) asserts that nothing did.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const SYSTEM_TMPDIR = os.tmpdir();
/** The system temp folder's entries before the suite started. */
export const SYSTEM_TMPDIR_BEFORE: ReadonlySet<string> = new Set(fs.readdirSync(SYSTEM_TMPDIR));
export const SCRATCH = fs.mkdtempSync(path.join(SYSTEM_TMPDIR, 'wit-test-run-'));
// Searchable by others, like the system temp folder itself: one test runs a task as another user.
fs.chmodSync(SCRATCH, 0o755);

// os.tmpdir() reads these on every call: from here on the suite's own temp folders go to SCRATCH.
process.env.TMPDIR = SCRATCH;
process.env.TMP = SCRATCH;
process.env.TEMP = SCRATCH;

export const mochaHooks = {
  afterAll(): void {
    fs.rmSync(SCRATCH, { recursive: true, force: true });
  },
};
