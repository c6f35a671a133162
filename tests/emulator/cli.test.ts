/**
 * `npm run emulator` prints one command per task; each must work exactly as printed, pasted into
 * a shell (bash) in another folder, against the emulator the CLI keeps running. GcpAuthFederated@1
 * reaches Google's public names only through the mapping proxy the CLI runs, set by its command as
 * the agent's proxy.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const CLI = path.join(__dirname, 'cli.js');
const TASKS = ['FetchOidcToken@1', 'AcrLoginFederated@1', 'ValidateServiceConnection@1', 'AwsAssumeRoleFederated@1', 'AuditServiceConnections@1', 'GcpAuthFederated@1'];

/** The value a run set for a variable (its last task.setvariable), with its properties. */
function variable(stdout: string, name: string): { value: string; properties: string } | undefined {
  const all = [...stdout.matchAll(/^##vso\[task\.setvariable ([^\]]*)\](.*)$/gm)].filter((m) => new RegExp(`(^|;)variable=${name};`).test(`${m[1]};`));
  const last = all.pop();
  return last ? { value: last[2], properties: last[1] } : undefined;
}

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

  it('prints a command for every task (six), and each works as printed', async () => {
    const { child, output } = await startCli();
    // The commands' `mktemp -d` and the tasks' files land here, and go with it.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-cli-'));
    try {
      const lines = output.split('\n');
      assert.equal(lines.filter((l) => /^# \w+@1:$/.test(l)).length, TASKS.length, `one command per task:\n${output}`);
      for (const task of TASKS) {
        const at = lines.indexOf(`# ${task}:`);
        assert.ok(at >= 0, `a command for ${task}:\n${output}`);
        const command = lines[at + 1];
        const run = spawnSync('bash', ['-c', command], { cwd: tmp, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, TMPDIR: tmp }, encoding: 'utf8', timeout: 60_000 });
        const complete = /^##vso\[task\.complete result=(\w+);/m.exec(run.stdout)?.[1];
        assert.ok(complete === 'Succeeded' || complete === 'SucceededWithIssues', `${task} as printed:\n${command}\n${run.stdout}\n${run.stderr}`);
        assert.equal(run.status, 0);
        if (task === 'GcpAuthFederated@1') {
          // Through the proxy to Google STS and IAM Credentials: the service account's token, and the credentials file.
          assert.match(command, /\bAGENT_PROXYURL='http:\/\/127\.0\.0\.1:\d+'/, command);
          const token = variable(run.stdout, 'accessToken');
          assert.ok(token && /(^|;)issecret=true(;|$)/.test(token.properties) && token.value.startsWith('ya29.'), `a secret accessToken:\n${run.stdout}`);
          const file = variable(run.stdout, 'GOOGLE_APPLICATION_CREDENTIALS')?.value;
          assert.ok(file && file.startsWith(`${tmp}${path.sep}`) && fs.existsSync(file), `a credentials file in the job's temp folder: ${file}\n${run.stdout}`);
          const creds = JSON.parse(fs.readFileSync(file, 'utf8')) as { type: string; service_account_impersonation_url?: string; credential_source: { file: string } };
          assert.equal(creds.type, 'external_account');
          assert.match(creds.service_account_impersonation_url ?? '', /^https:\/\/iamcredentials\.googleapis\.com\/v1\/projects\/-\/serviceAccounts\/.+:generateAccessToken$/);
          assert.ok(fs.existsSync(creds.credential_source.file), 'the token file it names');
        }
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
