import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

// Large enough for any form or JSON a task sends; small enough that a runaway client cannot eat memory.
const MAX_BODY_BYTES = 1024 * 1024;

export interface Answer {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** named groups of the route's path pattern, percent-decoded */
  readonly params: Record<string, string>;
  /** query parameter by name, case-insensitively (ASP.NET and Entra ignore case in names) */
  query(name: string): string | undefined;
  body(): Promise<string>;
  form(): Promise<URLSearchParams>;
  send(answer: Answer): void;
  json(status: number, value: unknown, headers?: Record<string, string>): void;
}

export interface Route {
  name: string;
  method: string;
  /** matched against the raw (still percent-encoded) path, without the query */
  path: RegExp;
  handle(ctx: RequestContext): void | Promise<void>;
  /** the service's own error answer, used for injected status faults that bring no body */
  errorAnswer?(status: number, ctx: RequestContext): Answer;
  /** the start of a plausible success body, cut short: the invalid-json fault */
  truncatedBody?: string;
  /** the headers of the service's 429 for a client to wait `seconds` (default: Retry-After in seconds) */
  retryAfterHeaders?(seconds: number): Record<string, string>;
}

/** Runs before a matched route's handler; returns true when it has answered (or deliberately will not). */
export type Interceptor = (route: Route, ctx: RequestContext) => boolean;

export class Router {
  private readonly routes: Route[] = [];

  add(route: Route): void {
    this.routes.push(route);
  }

  names(): string[] {
    return [...new Set(this.routes.map((r) => r.name))];
  }

  /**
   * A path that matches with another method still names the route, so the attempt is counted there.
   * Routes `preferred` (those served at the request's host) are tried first, so two services may use
   * the same path at their own hosts; when none of them matches, every route is tried in order.
   */
  match(method: string, pathname: string, preferred?: (routeName: string) => boolean): { route: Route; params: Record<string, string>; methodAllowed: boolean } | undefined {
    if (preferred) {
      const own = this.matchAmong(this.routes.filter((r) => preferred(r.name)), method, pathname);
      if (own) return own;
    }
    return this.matchAmong(this.routes, method, pathname);
  }

  private matchAmong(routes: Route[], method: string, pathname: string): { route: Route; params: Record<string, string>; methodAllowed: boolean } | undefined {
    let pathOnly: { route: Route; params: Record<string, string> } | undefined;
    for (const route of routes) {
      const m = route.path.exec(pathname);
      if (!m) continue;
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.groups ?? {})) params[k] = safeDecode(v ?? '');
      if (route.method === method) return { route, params, methodAllowed: true };
      pathOnly ??= { route, params };
    }
    return pathOnly && { ...pathOnly, methodAllowed: false };
  }
}

export interface ServerOptions {
  key: string;
  cert: string;
  router: Router;
  intercept: Interceptor;
  onUnmatched(ctx: RequestContext): void;
  /** whether a route is served at a Host (lower case): its routes are matched first (Router.match) */
  servedAt?(routeName: string, host: string): boolean;
  /** milliseconds each request waits before it is handled (simulated network latency) */
  latencyMs?(): number;
  /** Called when a request arrives (before any latency) and when its answer is done or the connection closes. */
  inFlight?: { enter(): void; leave(): void };
}

export class EmulatorServer {
  private readonly server: https.Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly options: ServerOptions) {
    this.server = https.createServer({ key: options.key, cert: options.cert }, (req, res) => {
      void this.dispatch(req, res);
    });
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    // A client that gives up (timeouts, reset faults) must not crash the emulator.
    this.server.on('clientError', (_err, socket) => socket.destroy());
    this.server.on('tlsClientError', () => undefined);
  }

  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        const address = this.server.address();
        if (address === null || typeof address === 'string') reject(new Error('no TCP address'));
        else resolve(address.port);
      });
    });
  }

  /** Closes the listener and every connection, including ones held open by hang faults. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const socket of this.sockets) socket.destroy();
      this.sockets.clear();
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const tracker = this.options.inFlight;
    if (tracker) {
      tracker.enter();
      let left = false;
      const leave = () => {
        if (!left) tracker.leave();
        left = true;
      };
      // Left when the answer is written, not on 'finish': on a kept-alive connection the client can
      // read the answer and send its next request before 'finish' fires, which would count one
      // connection twice.
      const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
      res.end = ((...args: unknown[]) => {
        leave();
        return end(...args);
      }) as typeof res.end;
      res.once('close', leave);
    }
    const latency = this.options.latencyMs?.() ?? 0;
    if (latency > 0) await new Promise((r) => setTimeout(r, latency));
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const host = String(req.headers.host ?? '').toLowerCase();
    const servedAt = this.options.servedAt;
    const match = this.options.router.match(req.method ?? 'GET', url.pathname, servedAt && ((name) => servedAt(name, host)));
    const ctx = createContext(req, res, url, match?.params ?? {});
    try {
      if (!match) {
        this.options.onUnmatched(ctx);
        ctx.json(404, { error: 'not_found', message: `The emulator has no route for ${req.method} ${url.pathname}` });
        return;
      }
      if (this.options.intercept(match.route, ctx)) return;
      if (!match.methodAllowed) {
        ctx.json(405, { error: 'method_not_allowed', message: `${req.method} is not allowed on ${url.pathname}` }, { Allow: match.route.method });
        return;
      }
      await match.route.handle(ctx);
    } catch (e) {
      if (!res.headersSent && !res.destroyed) {
        ctx.json(500, { error: 'emulator_error', message: e instanceof Error ? e.message : String(e) });
      } else {
        res.destroy();
      }
    }
  }
}

function createContext(req: IncomingMessage, res: ServerResponse, url: URL, params: Record<string, string>): RequestContext {
  let bodyPromise: Promise<string> | undefined;
  const send = (answer: Answer) => {
    if (res.headersSent || res.destroyed) return;
    const body = Buffer.from(answer.body, 'utf8');
    // Header names are case-insensitive: a fault's 'content-type' must replace, not duplicate, ours.
    const headers = new Map<string, [string, string]>();
    for (const [k, v] of Object.entries({ 'Content-Type': answer.contentType, ...answer.headers })) headers.set(k.toLowerCase(), [k, v]);
    headers.set('content-length', ['Content-Length', String(body.length)]);
    res.writeHead(answer.status, Object.fromEntries(headers.values()));
    res.end(body);
  };
  return {
    req,
    res,
    url,
    params,
    query(name) {
      const lower = name.toLowerCase();
      for (const [k, v] of url.searchParams) if (k.toLowerCase() === lower) return v;
      return undefined;
    },
    body() {
      bodyPromise ??= readBody(req);
      return bodyPromise;
    },
    async form() {
      return new URLSearchParams(await this.body());
    },
    send,
    json(status, value, headers) {
      send({ status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(value), headers });
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
