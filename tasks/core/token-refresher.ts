/**
 * Keeps a federated token file fresh for the rest of the job. A detached process, started by a
 * task, rewrites the file (atomically, 0600) at about half the current idToken's remaining life,
 * with the job's access token, and stops by itself when that token is refused (the job is over),
 * after a bounded number of failures, or past its maximum lifetime. It prints nothing; its state is
 * in a status file beside the token file, for later steps to read. It never writes an expired or
 * empty token. This module has no task-lib: the agent's environment is gone once it runs.
 */
import * as fs from 'node:fs';
import { HttpClient, HttpPolicy, parseJson, ProxySettings, TlsSettings } from './http';
import { TaskFailure } from './failures';
import { writeSecretFile } from './secret-files';

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

  constructor(private readonly config: RefresherConfig, private readonly now: () => number = Date.now) {
    const proxy: ProxySettings | undefined = config.proxy ? { ...config.proxy, bypass: config.proxy.bypass.map((b) => new RegExp(b, 'i')) } : undefined;
    this.http = new HttpClient(config.policy, proxy, config.tls);
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
    this.schedule(nextDelay(current, this.now(), this.config.minDelayMs), current);
  }

  stop(state: 'stopped' | 'failed', reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.write({ state, reason, nextRefreshAt: undefined });
  }

  private schedule(delay: number, tokenExpiresAt: number | undefined): void {
    if (this.stopped) return;
    if (this.now() - this.started + delay > this.config.maxLifetimeMs) {
      this.timer = setTimeout(() => this.stop('stopped', 'reached its maximum lifetime'), Math.max(0, this.config.maxLifetimeMs - (this.now() - this.started)));
      return;
    }
    this.write({ tokenExpiresAt: tokenExpiresAt ? new Date(tokenExpiresAt).toISOString() : undefined, nextRefreshAt: new Date(this.now() + delay).toISOString() });
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
    try {
      writeSecretFile(this.config.tokenFile, token);
    } catch (e) {
      return this.stop('failed', `could not write the token file: ${(e as Error).message}`);
    }
    this.status.refreshes++;
    this.status.failures = 0;
    this.schedule(nextDelay(exp, this.now(), this.config.minDelayMs), exp);
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

  private write(patch: Partial<RefresherStatus>): void {
    this.status = { ...this.status, ...patch, updatedAt: new Date(this.now()).toISOString() };
    try {
      writeSecretFile(this.config.statusFile, JSON.stringify(this.status, null, 2) + '\n');
    } catch {
      /* the folder is gone: the post-job step removed it, and will stop us */
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
