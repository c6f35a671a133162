/**
 * `npm run emulator` prints one command per task; each must work exactly as printed, pasted into
 * a shell (bash) in another folder, against the emulator the CLI keeps running.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const CLI = path.join(__dirname, 'cli.js');
const TASKS = ['FetchOidcToken@1', 'AcrLoginFederated@1', 'ValidateServiceConnection@1', 'AwsAssumeRoleFederated@1', 'AuditServiceConnections@1'];

function startCli(): Promise<{ child: ChildProcess; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => reject(new Error(`the emulator CLI printed no commands in 20 s:\n${output}`)), 20_000);
    child.stdout!.on('data', (d) => {
      output += d;
      if (output.includes('# Ctrl-C stops the emulator.')) {
        clearTimeout(timer);
        resolve({ child, output });
      }
    });
    child.on('exit', (code) => reject(new Error(`the emulator CLI exited (${code}):\n${output}`)));
  });
}

describe('npm run emulator: the printed commands', function () {
  this.timeout(120_000);

  it('prints a command for every task, and each works as printed', async () => {
    const { child, output } = await startCli();
    // The commands' `mktemp -d` and the tasks' files land here, and go with it.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-cli-'));
    try {
      const lines = output.split('\n');
      for (const task of TASKS) {
        const at = lines.indexOf(`# ${task}:`);
        assert.ok(at >= 0, `a command for ${task}:\n${output}`);
        const command = lines[at + 1];
        const run = spawnSync('bash', ['-c', command], { cwd: tmp, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, TMPDIR: tmp }, encoding: 'utf8', timeout: 60_000 });
        const complete = /^##vso\[task\.complete result=(\w+);/m.exec(run.stdout)?.[1];
        assert.ok(complete === 'Succeeded' || complete === 'SucceededWithIssues', `${task} as printed:\n${command}\n${run.stdout}\n${run.stderr}`);
        assert.equal(run.status, 0);
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
