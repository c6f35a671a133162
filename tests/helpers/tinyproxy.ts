/** A real HTTP proxy (Debian's tinyproxy) on loopback, with its log, for the proxy path. */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './ports';

export interface Tinyproxy {
  url: string;
  log(): string;
  stop(): Promise<void>;
}

export function tinyproxyBinary(): string | undefined {
  for (const p of ['/usr/bin/tinyproxy', '/usr/sbin/tinyproxy']) if (fs.existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v tinyproxy'], { encoding: 'utf8' });
  return which.stdout.trim() || undefined;
}


async function waitForPort(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`tinyproxy did not listen on 127.0.0.1:${port}`);
}

export interface TinyproxyOptions {
  /** user:password tinyproxy demands (its BasicAuth), or none */
  basicAuth?: { user: string; password: string };
  /** http://127.0.0.1:<port> of an upstream proxy every request is sent on to */
  upstream?: string;
}

export async function startTinyproxy(options: TinyproxyOptions = {}): Promise<Tinyproxy> {
  const bin = tinyproxyBinary();
  if (!bin) throw new Error('tinyproxy is not installed: apt-get install -y tinyproxy (.ci/run does this)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-tinyproxy-'));
  const port = await freePort();
  const logFile = path.join(dir, 'tinyproxy.log');
  // No ConnectPort lines: CONNECT is allowed to any port, as the emulator's is ephemeral.
  fs.writeFileSync(path.join(dir, 'tinyproxy.conf'), [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 30',
    `LogFile "${logFile}"`,
    'LogLevel Connect',
    'MaxClients 50',
    'Allow 127.0.0.1',
    'DisableViaHeader Yes',
    ...(options.basicAuth ? [`BasicAuth ${options.basicAuth.user} ${options.basicAuth.password}`] : []),
    ...(options.upstream ? [`Upstream http ${new URL(options.upstream).host}`] : []),
    '',
  ].join('\n'));
  const child: ChildProcess = spawn(bin, ['-d', '-c', path.join(dir, 'tinyproxy.conf')], { stdio: 'ignore' });
  await waitForPort(port, Date.now() + 5000);
  return {
    url: `http://127.0.0.1:${port}`,
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => { fs.rmSync(dir, { recursive: true, force: true }); resolve(); });
      child.kill('SIGTERM');
    }),
  };
}
