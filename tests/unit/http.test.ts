/** The HTTP layer against a local server: retries, Retry-After, timeouts, no retry on 4xx. */
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpClient, HttpPolicy, isRetryableStatus, MAX_RESPONSE_BYTES, retryAfterMs } from '../../tasks/core/http/http';
import { explainHttpStatus, TaskFailure } from '../../tasks/core/http/failures';

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

const CHUNK = Buffer.alloc(64 * 1024, 'x');

/**
 * Streams `total` bytes from one reused buffer with back-pressure, so the server side holds
 * almost nothing; returns how many bytes it managed to hand to the socket.
 */
function streamBody(res: http.ServerResponse, total: number, announce: boolean): { sent: () => number } {
  res.writeHead(200, { 'Content-Type': 'text/plain', ...(announce ? { 'Content-Length': String(total) } : {}) });
  let sent = 0;
  const pump = (): void => {
    while (sent < total && !res.destroyed) {
      const chunk = CHUNK.subarray(0, Math.min(CHUNK.length, total - sent));
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    if (!res.destroyed) res.end();
  };
  pump();
  return { sent: () => sent };
}

/** Runs `fn` while sampling memory; returns the peak growth of RSS and of heap plus buffers. */
async function peakGrowth(fn: () => Promise<void>): Promise<{ rss: number; heap: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage();
  const peak = { rss: 0, heap: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss - base.rss);
    peak.heap = Math.max(peak.heap, m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers);
  };
  const timer = setInterval(sample, 5);
  try {
    await fn();
  } finally {
    clearInterval(timer);
    sample();
  }
  return peak;
}

const MiB = 1024 * 1024;

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

  it('fails at once where Node refuses to send the request (a line break in a header value), and its timer never fires later', async () => {
    const s = await serve((_q, res) => res.end('ok'));
    try {
      await assert.rejects(client({ timeoutMs: 100, retries: 0 }).request({ method: 'GET', url: s.url, service: 'test', headers: { 'X-Test': 'a\r\nX-Injected: 1' } }), (e: unknown) => e instanceof TaskFailure && e.code === 'ERR_INVALID_CHAR');
      // Past the per-attempt timeout: a timer left behind would throw now, failing this test.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(s.hits(), 0);
    } finally { await s.close(); }
  });

  it('classifies statuses', () => {
    assert.ok(isRetryableStatus(429) && isRetryableStatus(503) && isRetryableStatus(500));
    assert.ok(!isRetryableStatus(400) && !isRetryableStatus(401) && !isRetryableStatus(404) && !isRetryableStatus(501));
  });

  it('parses Retry-After strictly: delta-seconds or an HTTP date, nothing else', () => {
    const now = Date.UTC(1994, 10, 6, 8, 49, 7); // Sun, 06 Nov 1994 08:49:07 GMT
    const table: [string | string[] | undefined, number | undefined][] = [
      ['2', 2000],
      ['0', 0],
      [' 120 ', 120_000],
      [['7', '9'], 7000],
      ['Sun, 06 Nov 1994 08:49:37 GMT', 30_000], // IMF-fixdate
      ['Sun, 06 Nov 1994 08:49:37 UTC', 30_000], // as Vault's rate limit quotas write it (Go's RFC1123)
      ['Sunday, 06-Nov-94 08:49:37 GMT', 30_000], // RFC 850
      ['Sun Nov  6 08:49:37 1994', 30_000], // asctime, which is GMT too
      ['Sun, 06 Nov 1994 08:48:37 GMT', 0], // in the past
      ['-5', undefined],
      ['1.5', undefined],
      ['1.5e3', undefined],
      ['+5', undefined],
      ['0x10', undefined],
      ['5 seconds', undefined],
      ['', undefined],
      ['   ', undefined],
      ['abc', undefined],
      ['soon', undefined],
      ['2024-01-01T00:00:00Z', undefined], // ISO 8601 is not an HTTP date
      ['Sun, 06 Nov 1994 08:49:37', undefined], // no zone
      ['Sun, 06 Nov 1994 08:49:37 CET', undefined], // another zone
      ['Sun, 06 Nov 1994 25:49:37 GMT', undefined],
      ['Sun, 32 Nov 1994 08:49:37 GMT', undefined],
      [undefined, undefined],
    ];
    for (const [value, expected] of table) assert.equal(retryAfterMs(value, now), expected, JSON.stringify(value));
  });

  it('falls back to the normal backoff for a Retry-After of -5 or garbage', async () => {
    for (const value of ['-5', 'garbage', '1.5']) {
      const sleeps: number[] = [];
      const s = await serve((_q, res, n) => { if (n === 1) { res.writeHead(503, { 'Retry-After': value }); res.end(); } else res.end('ok'); });
      try {
        const res = await client({}, sleeps).request({ method: 'GET', url: s.url, service: 'test' });
        assert.equal(res.status, 200);
        assert.deepEqual(sleeps, [75], `Retry-After: ${value}`);
      } finally { await s.close(); }
    }
  });

  it('says that a too-long Retry-After was not waited for, not that retries failed', async () => {
    const sleeps: number[] = [];
    const s = await serve((_q, res) => { res.writeHead(429, { 'Retry-After': '3600', 'Content-Type': 'application/json' }); res.end('{"message":"slow down"}'); });
    try {
      const res = await client({}, sleeps).request({ method: 'GET', url: s.url, service: 'the test service' });
      assert.equal(res.status, 429);
      assert.deepEqual(res.retryAfterTooLong, { askedMs: 3_600_000, limitMs: 60_000 });
      assert.deepEqual(sleeps, []);
      const f = explainHttpStatus('the test service', res.url, res.status, res.body, 'application/json', { connectionName: 'c' }, res.retryAfterTooLong);
      assert.match(f.message, /answered HTTP 429 .* and asked to wait 3600 s \(about 60 min\) before trying again \(Retry-After\), longer than the task waits \(60 s\)/);
      assert.match(f.message, /Fix: Re-run the job once that time has passed/);
      assert.match(f.message, /Response: slow down/);
      assert.doesNotMatch(f.message, /kept failing after retries/);
    } finally { await s.close(); }
  });

  describe('bounded answers', function () {
    this.timeout(30_000);
    const expectTooLarge = (announced: boolean) => (e: unknown) => {
      assert.ok(e instanceof TaskFailure, String(e));
      assert.equal(e.code, 'RESPONSE_TOO_LARGE');
      assert.match(e.message, /^the test service at 127\.0\.0\.1:\d+ answered with more than 4 MiB/);
      if (announced) assert.match(e.message, /it announced 64 MiB/);
      assert.match(e.message, /Likely cause: .*proxy.*captive portal.*wrong host/);
      assert.match(e.message, /Fix: /);
      return true;
    };

    for (const announce of [false, true]) {
      it(`fails cleanly on a 64 MiB answer ${announce ? 'with Content-Length' : 'sent chunked'}, not retried, memory bounded`, async () => {
        let stream: { sent: () => number } | undefined;
        const s = await serve((_q, res) => { stream = streamBody(res, 64 * MiB, announce); });
        try {
          const started = Date.now();
          const growth = await peakGrowth(() => assert.rejects(client({ retries: 3 }).request({ method: 'GET', url: s.url, service: 'the test service' }), expectTooLarge(announce)));
          assert.equal(s.hits(), 1, 'not retried');
          assert.ok(growth.rss < 32 * MiB, `RSS grew by ${(growth.rss / MiB).toFixed(1)} MiB`);
          assert.ok(growth.heap < 32 * MiB, `heap and buffers grew by ${(growth.heap / MiB).toFixed(1)} MiB`);
          assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
          // The client hung up: the server could not push the whole answer into the socket.
          await new Promise((r) => setTimeout(r, 50));
          assert.ok(stream!.sent() < 64 * MiB, `the server sent ${stream!.sent()} bytes`);
        } finally { await s.close(); }
      });
    }

    it('reads an answer of exactly the cap, and fails one byte over it', async () => {
      const s = await serve((_q, res, n) => { streamBody(res, n === 1 ? MAX_RESPONSE_BYTES : MAX_RESPONSE_BYTES + 1, false); });
      try {
        const res = await client({}).request({ method: 'GET', url: s.url, service: 'the test service' });
        assert.equal(res.status, 200);
        assert.equal(res.body.length, MAX_RESPONSE_BYTES);
        await assert.rejects(client({}).request({ method: 'GET', url: s.url, service: 'the test service' }), expectTooLarge(false));
      } finally { await s.close(); }
    });

    it('reads an announced answer just under the cap', async () => {
      const s = await serve((_q, res) => { streamBody(res, MAX_RESPONSE_BYTES - 1, true); });
      try {
        const res = await client({}).request({ method: 'GET', url: s.url, service: 'the test service' });
        assert.equal(res.body.length, MAX_RESPONSE_BYTES - 1);
      } finally { await s.close(); }
    });
  });
});
