/** The HTTP layer against a local server: retries, Retry-After, timeouts, no retry on 4xx. */
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpClient, HttpPolicy, isRetryableStatus, retryAfterMs } from '../../tasks/core/http';
import { TaskFailure } from '../../tasks/core/failures';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

async function serve(handler: Handler): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => handler(req, res, ++n));
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/x`,
    hits: () => n,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

function client(policy: Partial<HttpPolicy>, sleeps: number[] = []): HttpClient {
  return new HttpClient({ timeoutMs: 2000, retries: 3, maxRetryAfterMs: 60_000, backoffBaseMs: 100, ...policy }, undefined, {}, async (ms) => { sleeps.push(ms); }, () => 0.5);
}

describe('HTTP layer', () => {
  it('retries a 503 once and returns the success (2 requests)', async () => {
    const s = await serve((_q, res, n) => { res.statusCode = n === 1 ? 503 : 200; res.end(n === 1 ? 'busy' : '{"ok":true}'); });
    try {
      const res = await client({}).request({ method: 'GET', url: s.url, service: 'test' });
      assert.equal(res.status, 200);
      assert.equal(res.attempts, 2);
      assert.equal(s.hits(), 2);
    } finally { await s.close(); }
  });

  it('honours Retry-After on 429', async () => {
    const sleeps: number[] = [];
    const s = await serve((_q, res, n) => { if (n === 1) { res.writeHead(429, { 'Retry-After': '3' }); res.end(); } else res.end('ok'); });
    try {
      const res = await client({}, sleeps).request({ method: 'GET', url: s.url, service: 'test' });
      assert.equal(res.status, 200);
      assert.deepEqual(sleeps, [3000]);
    } finally { await s.close(); }
  });

  it('gives up on a Retry-After longer than the cap, returning the 429', async () => {
    const s = await serve((_q, res) => { res.writeHead(429, { 'Retry-After': '3600' }); res.end(); });
    try {
      const res = await client({}).request({ method: 'GET', url: s.url, service: 'test' });
      assert.equal(res.status, 429);
      assert.equal(s.hits(), 1);
    } finally { await s.close(); }
  });

  it('never retries configuration errors (400, 401, 403, 404)', async () => {
    for (const status of [400, 401, 403, 404]) {
      const s = await serve((_q, res) => { res.statusCode = status; res.end('{}'); });
      try {
        const res = await client({}).request({ method: 'POST', url: s.url, service: 'test', body: 'a=b' });
        assert.equal(res.status, status);
        assert.equal(s.hits(), 1, `status ${status}`);
      } finally { await s.close(); }
    }
  });

  it('stops after the bounded number of retries with exponential backoff', async () => {
    const sleeps: number[] = [];
    const s = await serve((_q, res) => { res.statusCode = 500; res.end(); });
    try {
      const res = await client({ retries: 3 }, sleeps).request({ method: 'GET', url: s.url, service: 'test' });
      assert.equal(res.status, 500);
      assert.equal(s.hits(), 4);
      assert.deepEqual(sleeps, [75, 150, 300]);
    } finally { await s.close(); }
  });

  it('ends a hanging request at the per-attempt timeout and explains it', async () => {
    const s = await serve(() => { /* never answer */ });
    const started = Date.now();
    try {
      await assert.rejects(client({ timeoutMs: 300, retries: 1 }).request({ method: 'GET', url: s.url, service: 'the test service' }), (e: unknown) => {
        assert.ok(e instanceof TaskFailure);
        assert.equal(e.code, 'TIMEOUT');
        assert.match(e.message, /the test service at 127\.0\.0\.1:\d+ did not answer within 300 ms \(2 attempts\)/);
        assert.match(e.message, /WorkloadIdentity\.HttpTimeoutSeconds/);
        return true;
      });
      assert.equal(s.hits(), 2);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    } finally { await s.close(); }
  });

  it('retries a connection reset', async () => {
    const s = await serve((req, res, n) => { if (n === 1) req.socket.destroy(); else res.end('ok'); });
    try {
      const res = await client({}).request({ method: 'GET', url: s.url, service: 'test' });
      assert.equal(res.status, 200);
      assert.equal(s.hits(), 2);
    } finally { await s.close(); }
  });

  it('explains a refused connection after its retries', async () => {
    const s = await serve(() => undefined);
    const url = s.url;
    await s.close();
    await assert.rejects(client({ retries: 1 }).request({ method: 'GET', url, service: 'test' }), (e: unknown) => e instanceof TaskFailure && e.code === 'ECONNREFUSED');
  });

  it('classifies statuses and parses Retry-After', () => {
    assert.ok(isRetryableStatus(429) && isRetryableStatus(503) && isRetryableStatus(500));
    assert.ok(!isRetryableStatus(400) && !isRetryableStatus(401) && !isRetryableStatus(404) && !isRetryableStatus(501));
    assert.equal(retryAfterMs('2'), 2000);
    assert.equal(retryAfterMs(new Date(Date.now() + 5000).toUTCString(), Date.now()) !== undefined, true);
    assert.equal(retryAfterMs('soon'), undefined);
  });
});
