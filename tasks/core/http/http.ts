/**
 * The one HTTP layer every call goes through: per-attempt timeouts, bounded retries with jitter
 * for 429, 5xx and connection resets (honouring Retry-After), the agent's proxy and CA, and a cap
 * on the size of an answer. Configuration errors (4xx) are returned to the caller at once, never
 * retried.
 */
import fs = require('node:fs');
import http = require('node:http');
import https = require('node:https');
import net = require('node:net');
import tls = require('node:tls');
import type { Duplex } from 'node:stream';
import { explainNetworkError } from './failures';
// The policy is a module of its own so that reading it (pipeline-variables.ts, which every post-job
// step imports) does not load node:http, node:https, node:tls and node:crypto with this one.
import { DEFAULT_POLICY } from './policy';
import type { HttpPolicy } from './policy';

export { DEFAULT_POLICY };
export type { HttpPolicy };

export interface ProxySettings {
  /** http://host:port of the agent's proxy. */
  url: string;
  username?: string;
  password?: string;
  /** Regular expressions of URLs that bypass the proxy (the agent's .proxybypass list). */
  bypass: RegExp[];
}

export interface TlsSettings {
  /** Extra CA certificates (PEM), added to Node's own roots. */
  ca?: string[];
  /** Client certificate and key for the Azure DevOps host (Agent.ClientCert). */
  clientCert?: { host: string; cert: string; key: string; passphrase?: string };
}

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  /** Names the service in messages: "the Azure DevOps Oidctoken API". */
  service: string;
  headers?: Record<string, string>;
  body?: string;
  /**
   * Shared by every request to one service: each attempt waits until the gate is open, and a
   * Retry-After the service sends closes it for all of them, not only for the request that got it.
   */
  gate?: RequestGate;
}

/** What a shared throttling gate offers the HTTP layer (see tasks/core/devops/throttle.ts). */
export interface RequestGate {
  /** Resolves when a request may be sent; rejects when the service asked for a wait longer than the policy allows. */
  wait(): Promise<void>;
  /** The service asked (Retry-After) for `ms` without requests. */
  pause(ms: number): void;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  url: string;
  attempts: number;
  /**
   * Set when the service asked (Retry-After) to wait longer than the policy allows, so the answer
   * was returned without waiting: the message can then say so instead of "kept failing".
   */
  retryAfterTooLong?: { askedMs: number; limitMs: number };
}

/**
 * The largest answer read. Every answer these services give is a few KiB (tokens, small JSON or
 * XML documents); anything far larger is a proxy's or portal's page or the wrong host, and
 * buffering it whole could exhaust the heap or the string length limit.
 */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** Statuses worth another attempt: throttling and server faults, never configuration errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || (status >= 500 && status !== 501 && status !== 505);
}

const RETRYABLE_NETWORK = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ETIMEDOUT_ATTEMPT', 'ECONNABORTED', 'EAI_AGAIN', 'ECONNREFUSED', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE']);

const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const WEEKDAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// The three HTTP-date forms of RFC 9110 section 5.6.7, all in GMT. Vault's rate limit quotas write
// the first with "UTC" for "GMT" (Go's time.RFC1123 of a UTC time): the same instant.
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} (?:GMT|UTC)$`);
const RFC850_DATE = new RegExp(`^${WEEKDAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/** An HTTP-date in milliseconds since the epoch, or undefined for anything else. */
export function parseHttpDate(value: string, now = Date.now()): number | undefined {
  let day: string, month: string, year: number, h: string, m: string, s: string;
  let match: RegExpExecArray | null;
  if ((match = IMF_FIXDATE.exec(value))) {
    [, day, month, , h, m, s] = match;
    year = Number(match[3]);
  } else if ((match = RFC850_DATE.exec(value))) {
    [, day, month, , h, m, s] = match;
    // Two-digit years: the most recent year with those digits that is not over 50 years ahead.
    year = 2000 + Number(match[3]);
    if (year > new Date(now).getUTCFullYear() + 50) year -= 100;
  } else if ((match = ASCTIME_DATE.exec(value))) {
    [, month, day, h, m, s] = match;
    year = Number(match[6]);
  } else {
    return undefined;
  }
  const [d, hh, mm, ss] = [Number(day.trim()), Number(h), Number(m), Number(s)];
  if (d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return undefined;
  return Date.UTC(year, MONTHS.indexOf(month), d, hh, mm, ss);
}

/**
 * Parses Retry-After into milliseconds: delta-seconds (digits only) or an HTTP-date. Anything
 * else ("-5", "1.5", "5 seconds", "") is undefined, so the normal backoff applies rather than a
 * wait the service never meant. A date in the past is 0.
 */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, Number.MAX_SAFE_INTEGER);
  const date = parseHttpDate(v, now);
  return date === undefined ? undefined : Math.max(0, date - now);
}

export class HttpClient {
  private readonly ca?: string[];
  /** Built once: a context with a few hundred CA certificates costs milliseconds to create. */
  private contexts = new Map<string, tls.SecureContext>();
  /** One keep-alive agent per origin: a TLS handshake per host, not per request. */
  private agents = new Map<string, http.Agent>();

  constructor(
    readonly policy: HttpPolicy = DEFAULT_POLICY,
    readonly proxy?: ProxySettings,
    readonly tlsSettings: TlsSettings = {},
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
    private readonly random: () => number = Math.random,
    /** Called before each retry, for the log: never receives a body. */
    private readonly onRetry?: (req: HttpRequest, attempt: number, reason: string, delayMs: number) => void,
  ) {
    // Passing `ca` replaces Node's roots, so add ours to them rather than replace them.
    this.ca = tlsSettings.ca?.length ? [...tls.rootCertificates, ...extraCaFromEnv(), ...tlsSettings.ca] : undefined;
  }

  proxyFor(url: string): ProxySettings | undefined {
    if (!this.proxy) return undefined;
    const u = new URL(url);
    // IMDS and loopback-bound link-local endpoints must never go through a proxy.
    if (u.hostname === '169.254.169.254') return undefined;
    return this.proxy.bypass.some((re) => re.test(url)) ? undefined : this.proxy;
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const maxAttempts = this.policy.retries + 1;
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse | undefined;
      let netErr: (NodeJS.ErrnoException & { attempts?: number; timeoutMs?: number }) | undefined;
      // Outside the try: a gate that refuses (a wait too long) is the caller's to explain, not a network error.
      await req.gate?.wait();
      try {
        res = { ...(await this.once(req)), attempts: attempt };
      } catch (e) {
        netErr = e as NodeJS.ErrnoException;
      }
      if (res && !isRetryableStatus(res.status)) return res;
      const retryable = res ? true : RETRYABLE_NETWORK.has(netErr?.code ?? '');
      let delay = this.backoff(attempt);
      if (res) {
        const ra = retryAfterMs(res.headers['retry-after']);
        if (ra !== undefined) req.gate?.pause(ra);
        if (ra !== undefined) {
          // Waiting that long would hold the job for nothing: return the answer at once, saying why.
          if (ra > this.policy.maxRetryAfterMs) return { ...res, retryAfterTooLong: { askedMs: ra, limitMs: this.policy.maxRetryAfterMs } };
          delay = ra;
        }
      }
      if (!retryable || attempt >= maxAttempts) {
        if (res) return res;
        netErr!.attempts = attempt;
        netErr!.timeoutMs = this.policy.timeoutMs;
        throw explainNetworkError(req.service, req.url, netErr!, proxyName(this.proxyFor(req.url)));
      }
      this.onRetry?.(req, attempt, res ? `HTTP ${res.status}` : netErr?.code ?? 'network error', delay);
      await this.sleep(delay);
    }
  }

  /** Node's default context, or one with the agent's CA and, for the Azure DevOps host, its client certificate. */
  private secureContextFor(host: string): tls.SecureContext | undefined {
    const cc = this.tlsSettings.clientCert;
    const withCert = !!cc && cc.host.toLowerCase() === host.toLowerCase();
    if (!this.ca && !withCert) return undefined;
    const key = withCert ? 'client-cert' : 'ca';
    let ctx = this.contexts.get(key);
    if (!ctx) {
      ctx = tls.createSecureContext({ ca: this.ca, ...(withCert ? { cert: cc!.cert, key: cc!.key, passphrase: cc!.passphrase } : {}) });
      this.contexts.set(key, ctx);
    }
    return ctx;
  }

  /**
   * The agent for a direct request: a keep-alive one per origin, or none (`false`: a connection
   * per request). Idle sockets of a keep-alive agent do not keep the process alive.
   */
  private directAgent(url: URL, isHttps: boolean): http.Agent | false {
    if (!this.policy.keepAlive) return false;
    let agent = this.agents.get(url.origin);
    if (!agent) {
      const options = { keepAlive: true, maxSockets: 8, scheduling: 'lifo' as const };
      agent = isHttps ? new https.Agent(options) : new http.Agent(options);
      this.agents.set(url.origin, agent);
    }
    return agent;
  }

  /** Exponential backoff with full jitter, capped at 8 s. */
  private backoff(attempt: number): number {
    const cap = Math.min(8_000, this.policy.backoffBaseMs * 2 ** (attempt - 1));
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }

  private async once(req: HttpRequest): Promise<Omit<HttpResponse, 'attempts'>> {
    const url = new URL(req.url);
    const proxy = this.proxyFor(req.url);
    const deadline = Date.now() + this.policy.timeoutMs;
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...req.headers };
    if (req.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(req.body));

    const isHttps = url.protocol === 'https:';
    const options: https.RequestOptions & { secureContext?: tls.SecureContext } = {
      method: req.method,
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (isHttps ? 443 : 80),
      // Without an agent Node would not know the default port and would add ':443' to Host.
      defaultPort: isHttps ? 443 : 80,
      path: `${url.pathname}${url.search}`,
      headers,
      agent: this.directAgent(url, isHttps),
    };
    if (isHttps) {
      options.servername = net.isIP(options.host as string) ? undefined : (options.host as string);
      options.secureContext = this.secureContextFor(url.host);
    }

    let tunnel: Duplex | undefined;
    if (proxy && isHttps) {
      tunnel = await this.connectTunnel(proxy, url, options, deadline);
      // The tunnel must be the request's socket. With an agent (even `agent: false`, for which Node
      // builds one) the request opens a direct connection and ignores createConnection; with no
      // agent at all, createConnection is used as is.
      delete options.agent;
      options.createConnection = () => tunnel as never;
    } else if (proxy) {
      // Plain HTTP through a proxy: absolute-form request line.
      const p = new URL(proxy.url);
      options.host = p.hostname.replace(/^\[|\]$/g, '');
      options.port = p.port || 80;
      options.path = url.href;
      options.agent = false;
      const auth = proxyAuthorization(proxy);
      if (auth) headers['Proxy-Authorization'] = auth;
    }

    return new Promise((resolve, reject) => {
      const mod = isHttps ? https : http;
      const remaining = Math.max(1, deadline - Date.now());
      let settled = false;
      // What the request waits for, for the message when it times out: the tunnel stands already.
      let stage: StallStage = tunnel ? 'answer' : 'connect';
      let r: http.ClientRequest | undefined;
      const finish = (err: Error | undefined, value?: Omit<HttpResponse, 'attempts'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // One tunnel per request: closed once the answer is in, so a proxy never holds it idle.
        tunnel?.destroy();
        if (err) {
          // Destroys the request's socket too (or the one it is about to get), so nothing keeps the process alive.
          r?.destroy();
          reject(err);
        } else resolve(value!);
      };
      const timer = setTimeout(() => finish(timeoutError(this.policy.timeoutMs, stage)), remaining);
      const onResponse = (res: http.IncomingMessage) => {
        // An announced size over the cap fails before a byte is read; chunked or unannounced
        // answers are counted as they arrive, and reading stops (the socket destroyed) at the cap.
        const announced = Number(res.headers['content-length']);
        if (announced > MAX_RESPONSE_BYTES) return finish(tooLargeError(announced));
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (settled) return;
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) return finish(tooLargeError());
          chunks.push(c);
        });
        res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), url: req.url }));
        res.on('error', (e) => finish(e));
        res.on('aborted', () => finish(Object.assign(new Error('the response was cut off'), { code: 'ECONNRESET' })));
      };
      try {
        r = mod.request(options, onResponse);
      } catch (e) {
        // Node refuses some requests before sending anything (a line break in a header value:
        // ERR_INVALID_CHAR): settled here, so the timer cannot fire later on a request never made.
        return finish(e as Error);
      }
      r.on('error', (e) => finish(e));
      r.on('socket', (socket) => {
        // A kept-alive socket (or the tunnel) is connected already; a new one connects, then shakes hands.
        if (tunnel || !socket.connecting) {
          stage = 'answer';
          return;
        }
        socket.once('connect', () => {
          if (stage === 'connect') stage = isHttps ? 'tls' : 'answer';
        });
        if (isHttps) socket.once('secureConnect', () => (stage = 'answer'));
      });
      if (req.body !== undefined) r.write(req.body);
      r.end();
    });
  }

  /**
   * Opens a CONNECT tunnel through the proxy and wraps it in TLS to the target: the proxy sees only
   * the target's name and port, and resolves the name itself.
   */
  private connectTunnel(proxy: ProxySettings, target: URL, options: https.RequestOptions & { secureContext?: tls.SecureContext }, deadline: number): Promise<Duplex> {
    const p = new URL(proxy.url);
    const authority = `${target.hostname}:${target.port || 443}`;
    const headers: Record<string, string> = { Host: authority };
    const auth = proxyAuthorization(proxy);
    if (auth) headers['Proxy-Authorization'] = auth;
    return new Promise((resolve, reject) => {
      let done = false;
      // What the tunnel waits for: the proxy to accept the connection, its answer to CONNECT, then
      // the TLS handshake with the target through it. A timeout names the stage it ended.
      let stage: StallStage = 'proxy-connect';
      let raw: Duplex | undefined;
      let secure: tls.TLSSocket | undefined;
      const fail = (e: NodeJS.ErrnoException) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        // Every socket this attempt opened: the request to the proxy, the tunnel it handed over
        // (no longer the request's once CONNECT is answered) and the TLS socket on top of it.
        connectReq.destroy();
        secure?.destroy();
        raw?.destroy();
        reject(e);
      };
      // Errors before the tunnel stands are the proxy's, whatever their code: say so.
      const proxyError = (e: NodeJS.ErrnoException) => fail(Object.assign(e, { proxyPhase: true }));
      const timer = setTimeout(() => {
        const e = timeoutError(this.policy.timeoutMs, stage);
        // A handshake that stalls after the proxy answered 200 is not the proxy refusing or not answering.
        if (stage === 'tunnel-tls') fail(e);
        else proxyError(e);
      }, Math.max(1, deadline - Date.now()));
      const proxyModule = p.protocol === 'https:' ? https : http;
      const proxyHost = p.hostname.replace(/^\[|\]$/g, '');
      // An https proxy is verified like any server: with the agent's CA added to Node's roots.
      const proxyTls = p.protocol === 'https:' ? { servername: net.isIP(proxyHost) ? undefined : proxyHost, secureContext: this.secureContextFor(p.host) } : {};
      const connectReq = proxyModule.request({ host: proxyHost, port: p.port || (p.protocol === 'https:' ? 443 : 80), method: 'CONNECT', path: authority, headers, agent: false, ...proxyTls });
      connectReq.on('socket', (socket) => {
        if (!socket.connecting) stage = 'proxy-answer';
        else socket.once(p.protocol === 'https:' ? 'secureConnect' : 'connect', () => (stage = 'proxy-answer'));
      });
      connectReq.on('connect', (res, socket) => {
        raw = socket;
        if (done) return socket.destroy();
        if (res.statusCode !== 200) {
          return proxyError(Object.assign(new Error(`the proxy answered ${res.statusCode} ${res.statusMessage ?? ''}`.trim()), { code: 'PROXY_CONNECT', proxyStatus: res.statusCode }));
        }
        stage = 'tunnel-tls';
        // `host` is the name the certificate must hold: without it Node checks an IP-address
        // target (no servername) against the host the socket was opened to, the proxy's.
        secure = tls.connect({ socket, host: options.host as string, servername: options.servername as string | undefined, secureContext: options.secureContext });
        // Whoever ends the TLS socket later (the request, once answered or timed out) ends the tunnel under it.
        secure.once('close', () => socket.destroy());
        secure.once('secureConnect', () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve(secure!);
        });
        // TLS errors are the target's (or a TLS-inspecting proxy's): explained as TLS, not proxy.
        secure.once('error', fail);
      });
      connectReq.on('error', proxyError);
      connectReq.end();
    });
  }
}

function proxyName(proxy: ProxySettings | undefined): string | undefined {
  return proxy ? redactProxyUrl(proxy.url) : undefined;
}

export const USER_AGENT = 'WorkloadIdentityTasks/1 (+azure-pipelines)';

/**
 * What a request was waiting for when its timeout ended it: the connection (to the proxy, or to the
 * service), the proxy's answer to CONNECT, the TLS handshake (through the tunnel, or direct), or the
 * service's answer to the request.
 */
export type StallStage = 'proxy-connect' | 'proxy-answer' | 'tunnel-tls' | 'connect' | 'tls' | 'answer';

const STALLED: Record<StallStage, string> = {
  'proxy-connect': 'the proxy did not accept the connection',
  'proxy-answer': 'the proxy did not answer CONNECT',
  'tunnel-tls': 'no TLS handshake through the tunnel',
  connect: 'the connection was not accepted',
  tls: 'no TLS handshake',
  answer: 'no answer',
};

function timeoutError(ms: number, stage: StallStage): NodeJS.ErrnoException & { stage: StallStage } {
  return Object.assign(new Error(`${STALLED[stage]} within ${ms} ms`), { code: 'ETIMEDOUT_ATTEMPT', stage });
}

function tooLargeError(announcedBytes?: number): NodeJS.ErrnoException & { limitBytes: number; announcedBytes?: number } {
  return Object.assign(new Error(`the answer was larger than ${MAX_RESPONSE_BYTES} bytes`), { code: 'RESPONSE_TOO_LARGE', limitBytes: MAX_RESPONSE_BYTES, announcedBytes });
}

function proxyAuthorization(proxy: ProxySettings): string | undefined {
  if (!proxy.username) return undefined;
  return 'Basic ' + Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64');
}

/** The proxy as messages name it: scheme, host and port, never credentials. */
export function redactProxyUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(the agent\'s proxy)';
  }
}

/** NODE_EXTRA_CA_CERTS is lost when `ca` is given explicitly; keep it. */
function extraCaFromEnv(): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [fs.readFileSync(file, 'utf8')];
  } catch {
    return [];
  }
}

/** Parses a JSON body, or returns undefined: callers explain a non-JSON answer themselves. */
export function parseJson<T>(body: string): T | undefined {
  try {
    return JSON.parse(body) as T;
  } catch {
    return undefined;
  }
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
