import type { Socket } from 'node:net';
import type { Fault } from './types';
import type { Answer, RequestContext, Route } from './server';
import { signInPageAnswer } from './devops';

interface Queued {
  fault: Fault;
  remaining: number;
}

/** Faults wait per route in the order injected; each request consumes one use of the first. */
export class FaultQueue {
  private readonly queues = new Map<string, Queued[]>();

  add(route: string, fault: Fault, times: number): void {
    if (!(times > 0)) throw new RangeError(`times must be positive (or Infinity), got ${times}`);
    if (fault.kind === 'null-oidc' && route !== 'oidctoken') {
      throw new TypeError(`the null-oidc fault only makes sense on the oidctoken route, not ${route}`);
    }
    if (fault.kind === 'status' && !(Number.isInteger(fault.status) && fault.status >= 100 && fault.status <= 599)) {
      throw new RangeError(`not an HTTP status: ${fault.status}`);
    }
    if (fault.kind === 'redirect') {
      if (!/^https?:\/\/[^/?#]+\/?$/.test(String(fault.to))) throw new TypeError(`a redirect goes to an origin (https://host[:port]), got ${JSON.stringify(fault.to)}`);
      if (fault.status !== undefined && ![301, 302, 303, 307, 308].includes(fault.status)) throw new RangeError(`not a redirect status: ${fault.status}`);
    }
    const queue = this.queues.get(route) ?? [];
    queue.push({ fault, remaining: times });
    this.queues.set(route, queue);
  }

  take(route: string): Fault | undefined {
    const queue = this.queues.get(route);
    const head = queue?.[0];
    if (!queue || !head) return undefined;
    head.remaining -= 1;
    if (head.remaining <= 0) queue.shift();
    return head.fault;
  }

  clear(): void {
    this.queues.clear();
  }
}

export function applyFault(fault: Fault, route: Route, ctx: RequestContext): void {
  switch (fault.kind) {
    case 'status': {
      if (fault.body === undefined) {
        const answer = route.errorAnswer?.(fault.status, ctx) ?? genericError(fault.status);
        ctx.send({ ...answer, headers: { ...answer.headers, ...fault.headers } });
      } else {
        const contentType = looksLikeJson(fault.body) ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8';
        ctx.send({ status: fault.status, contentType, body: fault.body, headers: fault.headers });
      }
      return;
    }
    case '429': {
      const answer = route.errorAnswer?.(429, ctx) ?? genericError(429);
      const wait = route.retryAfterHeaders?.(fault.retryAfterSeconds) ?? { 'Retry-After': String(fault.retryAfterSeconds) };
      ctx.send({ ...answer, headers: { ...answer.headers, ...wait } });
      return;
    }
    case 'redirect': {
      // As a standby Vault node sends a client to the active one: the same path and query at another
      // origin, no body (http/handler.go respondStandby).
      const location = `${fault.to.replace(/\/+$/, '')}${ctx.url.pathname}${ctx.url.search}`;
      ctx.res.writeHead(fault.status ?? 307, { Location: location, 'Content-Length': '0' });
      ctx.res.end();
      return;
    }
    case 'reset':
      resetSocket(ctx.req.socket);
      return;
    case 'hang':
      // Nothing is sent; EmulatorServer.close() destroys the socket.
      return;
    case 'invalid-json':
      ctx.send({
        status: 200,
        contentType: 'application/json; charset=utf-8',
        body: route.truncatedBody ?? '{"$id":"1","value":[{"id":"',
      });
      return;
    case 'html203':
      ctx.send(signInPageAnswer());
      return;
    case 'null-oidc':
      ctx.json(200, { oidcToken: null });
      return;
    case 'huge-body':
      streamHugeBody(ctx, fault.bytes ?? HUGE_BODY_BYTES, fault.contentLength === true, fault.status ?? 200);
      return;
  }
}

export const HUGE_BODY_BYTES = 64 * 1024 * 1024;
const HUGE_CHUNK = Buffer.alloc(64 * 1024, 'A');

/** Writes `total` bytes honouring back-pressure, so the emulator's memory stays flat. */
function streamHugeBody(ctx: RequestContext, total: number, announce: boolean, status: number): void {
  const { res } = ctx;
  const headers: Record<string, string> = { 'Content-Type': 'application/json; charset=utf-8' };
  if (announce) headers['Content-Length'] = String(total);
  res.writeHead(status, headers);
  let sent = 0;
  const head = Buffer.from('{"oidcToken":"');
  const pump = (): void => {
    while (sent < total && !res.destroyed) {
      const chunk = sent === 0 ? Buffer.concat([head, HUGE_CHUNK]).subarray(0, Math.min(total, HUGE_CHUNK.length)) : HUGE_CHUNK.subarray(0, Math.min(HUGE_CHUNK.length, total - sent));
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

// A TCP reset rather than a TLS close, so clients see ECONNRESET as on a broken network. The TCP
// socket under a server-side TLS socket is only reachable through an internal property; where it is
// not there, a plain destroy still ends the connection without an answer.
function resetSocket(socket: Socket): void {
  const parent = (socket as Socket & { _parent?: Socket })._parent;
  if (parent && typeof parent.resetAndDestroy === 'function') {
    try {
      parent.resetAndDestroy();
      return;
    } catch {
      // fall through
    }
  }
  socket.destroy();
}

function genericError(status: number): Answer {
  return {
    status,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify({ error: status >= 500 ? 'server_error' : 'request_error', message: `HTTP ${status}` }),
  };
}

function looksLikeJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}
