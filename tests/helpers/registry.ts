/**
 * A real registry (Debian's docker-registry, the CNCF distribution server 2.8) on loopback behind
 * the emulator: it trusts the registry access tokens the emulator issues, and the emulator proxies
 * /v2/* to it once the caller registers it:
 *
 *   const reg = await startRegistry(emu);
 *   emu.addRegistry({ loginServer: reg.loginServer, tenantId, upstream: reg.upstream });
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Emulator } from '../emulator/index';
import { freePort } from './ports';

export interface RunningRegistry {
  /** http://127.0.0.1:<port>: what emu.addRegistry's upstream takes */
  upstream: string;
  /** the host:port clients use (the token service, the realm's host) */
  loginServer: string;
  stop(): Promise<void>;
  /** docker-registry's own log (warnings and errors: e.g. why it refused a token) */
  logs(): string;
}

export function registryBinary(): string | undefined {
  if (fs.existsSync('/usr/bin/docker-registry')) return '/usr/bin/docker-registry';
  const which = spawnSync('sh', ['-c', 'command -v docker-registry'], { encoding: 'utf8' });
  return which.stdout?.trim() || undefined;
}

export async function startRegistry(emu: Emulator, options: { loginServer?: string } = {}): Promise<RunningRegistry> {
  const bin = registryBinary();
  if (!bin) throw new Error('docker-registry is not installed: apt-get install -y docker-registry');
  const loginServer = (options.loginServer ?? emu.host).toLowerCase();
  const signer = emu.registryTokenSigner();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-registry-'));
  const logFile = path.join(dir, 'registry.log');
  try {
    // A port found free may be taken before docker-registry binds it; then try another.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const config = path.join(dir, 'config.yml');
      fs.writeFileSync(config, configYaml({ dir, port, loginServer, issuer: signer.issuer, rootCertBundle: signer.certificatePath }));
      const logFd = fs.openSync(logFile, 'a');
      let child: ChildProcess;
      try {
        child = spawn(bin, ['serve', config], { stdio: ['ignore', logFd, logFd], cwd: dir });
      } finally {
        fs.closeSync(logFd);
      }
      const exited = new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once('exit', () => resolve());
      });
      child.once('error', () => undefined);
      const ready = await waitUntilAnswering(port, exited, Date.now() + 10_000);
      if (ready) {
        const upstream = `http://127.0.0.1:${port}`;
        let stopping: Promise<void> | undefined;
        return {
          upstream,
          loginServer,
          logs: () => readLog(logFile),
          stop: () => {
            stopping ??= stopChild(child, exited).then(() => fs.rmSync(dir, { recursive: true, force: true }));
            return stopping;
          },
        };
      }
      await stopChild(child, exited);
      const log = readLog(logFile);
      if (attempt >= 3 || !/address already in use/i.test(log)) {
        throw new Error(`docker-registry did not start on 127.0.0.1:${port}:\n${log}`);
      }
    }
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function configYaml(c: { dir: string; port: number; loginServer: string; issuer: string; rootCertBundle: string }): string {
  const q = (s: string) => JSON.stringify(s); // a JSON string is a YAML double-quoted scalar
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  formatter: text',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(path.join(c.dir, 'storage'))}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${q(`127.0.0.1:${c.port}`)}`,
    `  secret: ${q(crypto.randomBytes(24).toString('hex'))}`,
    // Location headers relative to the request, so that they point at the emulator, not at us.
    '  relativeurls: true',
    'auth:',
    '  token:',
    `    realm: ${q(`https://${c.loginServer}/oauth2/token`)}`,
    `    service: ${q(c.loginServer)}`,
    `    issuer: ${q(c.issuer)}`,
    `    rootcertbundle: ${q(c.rootCertBundle)}`,
    'health:',
    '  storagedriver:',
    '    enabled: false',
    '',
  ].join('\n');
}

function readLog(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}


/** true once GET /v2/ gets any HTTP answer (401: auth is on), false if the process exits or time runs out */
async function waitUntilAnswering(port: number, exited: Promise<void>, deadline: number): Promise<boolean> {
  let gone = false;
  void exited.then(() => (gone = true));
  while (Date.now() < deadline && !gone) {
    const status = await new Promise<number | undefined>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v2/', agent: false, timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(undefined));
    });
    if (status !== undefined) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** SIGTERM to our child's PID, SIGKILL if it lingers. */
async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
