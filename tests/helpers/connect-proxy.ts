/**
 * A test-owned CONNECT proxy that maps the services' public host names to the emulator. The names
 * do not resolve on a test machine, so a task reaches them through this proxy or not at all: a test
 * that passes with it proves the request went through the proxy. It can demand Basic credentials
 * (407 otherwise), records every CONNECT, and refuses any name it was not told to map.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';

export interface ConnectRecord {
  /** host:port as the client asked for it */
  authority: string;
  /** the Proxy-Authorization header, decoded: user:password, or undefined */
  credentials?: string;
  /** the status the proxy answered */
  status: number;
}

export interface MappingProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  connects: ConnectRecord[];
  /** Plain (non-CONNECT) requests: a task must never send one through the proxy. */
  plainRequests: string[];
  stop(): Promise<void>;
}

export interface MappingProxyOptions {
  /** Port of the emulator on 127.0.0.1 that every mapped name leads to. */
  targetPort: number;
  /**
   * What the proxy maps; anything else gets 403. A name ('sts.googleapis.com', or a RegExp tested on
   * the name) is mapped at port 443 only; a 'name:port' string ('vault.fabrikam.com:8200') at that
   * port only.
   */
  names: (string | RegExp)[];
  /** user:password the proxy demands, or none. */
  credentials?: string;
  /** Serve the proxy itself over TLS (an https:// proxy) with this certificate. */
  tls?: { cert: string; key: string };
  /** Port on 127.0.0.1 to listen on (default 0: any free port). */
  port?: number;
}

export async function startMappingProxy(options: MappingProxyOptions): Promise<MappingProxy> {
  const connects: ConnectRecord[] = [];
  const plainRequests: string[] = [];
  const sockets = new Set<net.Socket>();
  const plain = (req: http.IncomingMessage, res: http.ServerResponse) => {
    plainRequests.push(`${req.method} ${req.url}`);
    res.writeHead(405, { 'Content-Type': 'text/plain' });
    res.end('this proxy only tunnels');
  };
  const server = options.tls ? https.createServer(options.tls, plain) : http.createServer(plain);
  server.on(options.tls ? 'secureConnection' : 'connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const authority = req.url ?? '';
    const auth = req.headers['proxy-authorization'];
    const credentials = typeof auth === 'string' && /^Basic /i.test(auth) ? Buffer.from(auth.slice(6), 'base64').toString('utf8') : undefined;
    const answer = (status: number, text: string, extra = '') => {
      connects.push({ authority, credentials, status });
      client.end(`HTTP/1.1 ${status} ${text}\r\n${extra}Content-Length: 0\r\n\r\n`);
    };
    client.on('error', () => undefined);
    if (options.credentials !== undefined && credentials !== options.credentials) return answer(407, 'Proxy Authentication Required', 'Proxy-Authenticate: Basic realm="test"\r\n');
    const m = /^([^:]+):(\d+)$/.exec(authority);
    const name = m?.[1].toLowerCase() ?? '';
    const port = m?.[2] ?? '';
    const mapped = (n: string | RegExp) => (typeof n !== 'string' ? port === '443' && n.test(name) : n.includes(':') ? n.toLowerCase() === `${name}:${port}` : port === '443' && n === name);
    if (!m || !options.names.some(mapped)) return answer(403, 'Forbidden');
    const upstream = net.connect(options.targetPort, '127.0.0.1', () => {
      connects.push({ authority, credentials, status: 200 });
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    connects,
    plainRequests,
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A mapping proxy in front of an emulator: the names given lead to it, and only they. */
export function proxyToEmulator(emu: { host: string }, names: (string | RegExp)[], extra: Omit<MappingProxyOptions, 'targetPort' | 'names'> = {}): Promise<MappingProxy> {
  return startMappingProxy({ targetPort: Number(emu.host.split(':')[1]), names, ...extra });
}

/**
 * An https.Agent whose every connection is a CONNECT tunnel through `proxyUrl` (an http:// proxy)
 * with TLS to the target inside it, verified against `ca`: what a client library is given so that it
 * reaches the public names only through the mapping proxy (node-vault takes it as its axios
 * httpsAgent). One tunnel per request.
 */
export function tunnelAgent(proxyUrl: string, options: { ca?: string | Buffer; credentials?: string } = {}): https.Agent {
  return new TunnelAgent(proxyUrl, options);
}

class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxyUrl: string,
    private readonly tunnelOptions: { ca?: string | Buffer; credentials?: string },
  ) {
    super({ keepAlive: false });
  }

  override createConnection(options: tls.ConnectionOptions & { host?: string; port?: number | string; servername?: string }, callback: (err: Error | null, socket?: Duplex) => void): Duplex | undefined {
    const p = new URL(this.proxyUrl);
    const host = String(options.host ?? 'localhost');
    const authority = `${host}:${options.port ?? 443}`;
    const headers: Record<string, string> = { Host: authority };
    if (this.tunnelOptions.credentials) headers['Proxy-Authorization'] = `Basic ${Buffer.from(this.tunnelOptions.credentials).toString('base64')}`;
    const req = http.request({ host: p.hostname, port: p.port || 80, method: 'CONNECT', path: authority, headers, agent: false });
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        callback(Object.assign(new Error(`the proxy answered CONNECT ${authority} with ${res.statusCode}`), { code: 'PROXY_CONNECT' }));
        return;
      }
      const secure = tls.connect({ socket, host, servername: net.isIP(host) ? undefined : (options.servername || host), ca: this.tunnelOptions.ca ?? options.ca });
      secure.once('close', () => socket.destroy());
      callback(null, secure);
    });
    req.once('error', (e) => callback(e));
    req.end();
    return undefined;
  }
}

/**
 * A listener that must never be used: a test points a path that must not be taken at it and
 * asserts it saw no connection at all (not even one that failed TLS).
 */
export interface Canary {
  url: string;
  host: string;
  connections(): number;
  stop(): Promise<void>;
}

export async function startCanary(): Promise<Canary> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    count++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.destroy();
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
  return {
    url: `https://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    connections: () => count,
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
