/**
 * Keeps a federated token file fresh for the rest of the job. A detached process, started by a
 * task, rewrites the file (atomically, 0600) at about half the current idToken's remaining life,
 * with the job's access token, and stops by itself when that token is refused (the job is over),
 * after a bounded number of failures, or past its maximum lifetime. It prints nothing; its state is
 * in a status file beside the token file, for later steps to read. It never writes an expired or
 * empty token. This module has no task-lib: the agent's environment is gone once it runs.
 *
 * On Windows a file another process holds open (an SDK reading it, a scanner, an antivirus) cannot
 * be replaced: the rename fails with EPERM (or EACCES, EBUSY). Such a refusal is retried with a
 * short bounded backoff, the fresh token kept in memory, until the file can be replaced; the status
 * file says why only once the token in the file would expire first, and a later success clears it.
 */
import fs = require('node:fs');
import { HttpClient, HttpPolicy, parseJson, ProxySettings, TlsSettings } from '../http/http';
import { TaskFailure } from '../http/failures';
import { writeSecretFile } from './secret-files';

/** How a file another process holds open is retried (Windows refuses to replace it). */
export interface HeldFileRetry {
  /** The first wait after a refused replacement; doubled on each further refusal. */
  initialMs: number;
  /** The longest wait between two attempts. */
  maxMs: number;
  /** The status file says why once the token in the file expires within this margin and the file is still held. */
  safetyMarginMs: number;
}

export const HELD_FILE_RETRY: HeldFileRetry = { initialMs: 250, maxMs: 2000, safetyMarginMs: 30_000 };

/** Errors with which a replacement is refused while another process holds the file open (Windows). */
const HELD_CODES = new Set(['EPERM', 'EACCES', 'EBUSY']);

/** Writes a file atomically with mode 0600 (the seam tests use to refuse a replacement). */
export type SecretFileWriter = (file: string, content: string) => void;

export interface RefresherConfig {
  /** The Oidctoken URL, with api-version and serviceConnectionId. */
  oidcUrl: string;
  jobAccessToken: string;
  tokenFile: string;
  statusFile: string;
  /** Random, from the task that started it: echoed in every status write so the task can tell its refresher from a reused pid. */
  instanceId: string;
  policy: HttpPolicy;
  proxy?: { url: string; username?: string; password?: string; bypass: string[] };
  tls: TlsSettings;
  /** Stop after this long in any case (a job cannot run longer). */
  maxLifetimeMs: number;
  /** Stop after this many failed refreshes in a row. */
  maxFailures: number;
  /** Never wait less than this between refreshes. */
  minDelayMs: number;
  /** Retries of a token file that cannot be replaced because it is held open; HELD_FILE_RETRY when absent. */
  heldFileRetry?: HeldFileRetry;
}

export interface RefresherStatus {
  state: 'running' | 'stopped' | 'failed';
  pid: number;
  instanceId: string;
  startedAt: string;
  updatedAt: string;
  refreshes: number;
  failures: number;
  tokenExpiresAt?: string;
  nextRefreshAt?: string;
  reason?: string;
}

/** exp of a JWT in ms, or undefined; the token is not otherwise read. */
export function expiryOf(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** When to refresh: half the remaining life, never sooner than minDelay, never after expiry. */
export function nextDelay(expiresAt: number | undefined, now: number, minDelayMs: number): number {
  if (!expiresAt) return minDelayMs;
  return Math.max(minDelayMs, Math.floor((expiresAt - now) / 2));
}

export class TokenRefresher {
  private status: RefresherStatus;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly http: HttpClient;
  private readonly started = Date.now();
  /** Expiry of the token in the file (the one readers get now). */
  private fileExpiresAt?: number;
  /** A fresh token not yet written because the file is held open, and how often it was refused. */
  private pending?: { token: string; exp: number; refusals: number; reported: boolean };
  private statusRetry?: NodeJS.Timeout;

  constructor(
    private readonly config: RefresherConfig,
    private readonly now: () => number = Date.now,
    private readonly writeFile: SecretFileWriter = writeSecretFile,
  ) {
    const proxy: ProxySettings | undefined = config.proxy ? { ...config.proxy, bypass: config.proxy.bypass.map((b) => new RegExp(b, 'i')) } : undefined;
    // Refreshes come minutes apart: a kept-alive connection would have been closed by the server.
    this.http = new HttpClient({ ...config.policy, keepAlive: false }, proxy, config.tls);
    const t = new Date(this.now()).toISOString();
    this.status = { state: 'running', pid: process.pid, instanceId: config.instanceId, startedAt: t, updatedAt: t, refreshes: 0, failures: 0 };
  }

  start(): void {
    // First thing: until this status exists, the task cannot show that this pid is its refresher.
    this.write({});
    let current: number | undefined;
    try {
      current = expiryOf(fs.readFileSync(this.config.tokenFile, 'utf8'));
    } catch {
      current = undefined;
    }
    this.fileExpiresAt = current;
    this.schedule(nextDelay(current, this.now(), this.config.minDelayMs), current);
  }

  stop(state: 'stopped' | 'failed', reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.statusRetry) clearTimeout(this.statusRetry);
    this.pending = undefined;
    this.write({ state, reason, nextRefreshAt: undefined });
  }

  private schedule(delay: number, tokenExpiresAt: number | undefined): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const expires = tokenExpiresAt ? new Date(tokenExpiresAt).toISOString() : undefined;
    if (this.now() - this.started + delay > this.config.maxLifetimeMs) {
      // The last refresh's count and expiry are written even when none follows.
      this.write({ tokenExpiresAt: expires, nextRefreshAt: undefined });
      this.timer = setTimeout(() => this.stop('stopped', 'reached its maximum lifetime'), Math.max(0, this.config.maxLifetimeMs - (this.now() - this.started)));
      return;
    }
    this.write({ tokenExpiresAt: expires, nextRefreshAt: new Date(this.now() + delay).toISOString() });
    this.timer = setTimeout(() => void this.refresh(), delay);
  }

  async refresh(): Promise<void> {
    if (this.stopped) return;
    let res;
    try {
      res = await this.http.request({
        method: 'POST',
        url: this.config.oidcUrl,
        service: 'the Azure DevOps Oidctoken API',
        headers: { Authorization: `Bearer ${this.config.jobAccessToken}`, 'Content-Type': 'application/json', Accept: 'application/json' },
        body: '{}',
      });
    } catch (e) {
      return this.failed(e instanceof TaskFailure ? e.details.what : (e as Error).message);
    }
    if (res.status === 401 || res.status === 403 || res.status === 203 || /text\/html/i.test(String(res.headers['content-type'] ?? ''))) {
      return this.stop('stopped', `the job's access token was refused (HTTP ${res.status}): the job is over`);
    }
    if (res.status !== 200) return this.failed(`HTTP ${res.status}`);
    const token = parseJson<{ oidcToken?: string | null }>(res.body)?.oidcToken;
    const exp = typeof token === 'string' ? expiryOf(token) : undefined;
    if (!token || !exp || exp <= this.now()) return this.failed(token ? 'the new idToken had no future expiry' : 'the answer held no idToken');
    this.pending = { token, exp, refusals: this.pending?.refusals ?? 0, reported: this.pending?.reported ?? false };
    this.writeToken();
  }

  /** Writes the pending token; a replacement refused because the file is held open is retried. */
  private writeToken(): void {
    const p = this.pending;
    if (this.stopped || !p) return;
    const retry = this.config.heldFileRetry ?? HELD_FILE_RETRY;
    if (this.now() - this.started > this.config.maxLifetimeMs) return this.stop('stopped', 'reached its maximum lifetime');
    // Never write an expired token: one that expired while the file was held is fetched again.
    if (p.exp <= this.now()) {
      void this.refresh();
      return;
    }
    try {
      this.writeFile(this.config.tokenFile, p.token);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENOENT') return this.stop('stopped', 'the token file\'s folder is gone: the job is over');
      if (!HELD_CODES.has(code)) return this.stop('failed', `could not write the token file: ${(e as Error).message}`);
      p.refusals++;
      const delay = Math.min(retry.maxMs, retry.initialMs * 2 ** Math.min(p.refusals - 1, 16));
      // Quiet while the token readers have now stays good; said once it would expire first.
      if (!p.reported && (this.fileExpiresAt === undefined || this.now() + delay >= this.fileExpiresAt - retry.safetyMarginMs)) {
        p.reported = true;
        const expires = this.fileExpiresAt === undefined ? 'the token in it may already have expired' : `the token in it expires at ${new Date(this.fileExpiresAt).toISOString()}`;
        this.write({ reason: `the token file is held open by another process (${code}): it cannot be replaced yet and ${expires}; retrying every ${retry.maxMs} ms at most` });
      }
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.writeToken(), delay);
      return;
    }
    this.pending = undefined;
    this.fileExpiresAt = p.exp;
    this.status.refreshes++;
    this.status.failures = 0;
    this.status.reason = undefined;
    this.schedule(nextDelay(p.exp, this.now(), this.config.minDelayMs), p.exp);
  }

  private failed(reason: string): void {
    this.status.failures++;
    if (this.status.failures >= this.config.maxFailures) return this.stop('failed', `${this.status.failures} refreshes failed in a row; the last: ${reason}`);
    this.write({ reason: `refresh failed (${reason}); retrying` });
    let current: number | undefined;
    try {
      current = expiryOf(fs.readFileSync(this.config.tokenFile, 'utf8'));
    } catch {
      current = undefined;
    }
    // Retry sooner than a regular refresh, but not in a tight loop.
    const delay = Math.max(this.config.minDelayMs, Math.min(30_000, Math.floor(((current ?? this.now()) - this.now()) / 4)));
    this.schedule(delay, current);
  }

  private write(patch: Partial<RefresherStatus>, attempt = 0): void {
    if (attempt === 0) this.status = { ...this.status, ...patch, updatedAt: new Date(this.now()).toISOString() };
    if (this.statusRetry) clearTimeout(this.statusRetry);
    this.statusRetry = undefined;
    try {
      this.writeFile(this.config.statusFile, JSON.stringify(this.status, null, 2) + '\n');
    } catch (e) {
      // Held open by a reader (Windows): written again shortly, a few times, unless a newer write comes first.
      if (HELD_CODES.has((e as NodeJS.ErrnoException).code ?? '') && attempt < 5) {
        this.statusRetry = setTimeout(() => this.write({}, attempt + 1), 250 * 2 ** attempt);
        this.statusRetry.unref();
      }
      /* otherwise the folder is gone: the post-job step removed it, and will stop us */
    }
  }
}

/** The process entry: config from stdin (never the command line), then run until stopped. */
export function runRefresherProcess(): void {
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => (input += d));
  process.stdin.on('end', () => {
    let config: RefresherConfig;
    try {
      config = JSON.parse(input) as RefresherConfig;
    } catch {
      process.exit(2);
    }
    const refresher = new TokenRefresher(config);
    const quit = (reason: string) => {
      refresher.stop('stopped', reason);
      process.exit(0);
    };
    process.on('SIGTERM', () => quit('stopped by the post-job step'));
    process.on('SIGINT', () => quit('interrupted'));
    refresher.start();
  });
}
