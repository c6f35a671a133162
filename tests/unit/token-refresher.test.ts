/** The token refresher against a local server: refreshes, stops on a refused job token, never writes a bad token. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { nextDelay, RefresherStatus, TokenRefresher } from '../../tasks/core/token-refresher';

const jwt = (expSeconds: number) => `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + expSeconds })).toString('base64url')}.sig${Math.random().toString(36).slice(2)}`;

async function server(answer: (n: number, req: http.IncomingMessage) => { status: number; body: string }) {
  let n = 0;
  const s = http.createServer((req, res) => {
    const a = answer(++n, req);
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(a.body);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/oidctoken?serviceConnectionId=x`, hits: () => n, close: () => new Promise<void>((r) => s.close(() => r())) };
}

function setup(oidcUrl: string, first: string, overrides: Partial<ConstructorParameters<typeof TokenRefresher>[0]> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-refresher-'));
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, first, { mode: 0o600 });
  const statusFile = `${tokenFile}.status.json`;
  const r = new TokenRefresher({ oidcUrl, jobAccessToken: 'job', tokenFile, statusFile, instanceId: 'instance-1', policy: { timeoutMs: 1000, retries: 0, maxRetryAfterMs: 1000, backoffBaseMs: 1 }, tls: {}, maxLifetimeMs: 60_000, maxFailures: 3, minDelayMs: 50, ...overrides });
  return { r, tokenFile, status: () => JSON.parse(fs.readFileSync(statusFile, 'utf8')) as RefresherStatus };
}

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('token refresher', () => {
  it('schedules at half the remaining life, never sooner than the minimum', () => {
    assert.equal(nextDelay(10_000 + 600_000, 10_000, 5000), 300_000);
    assert.equal(nextDelay(10_000 + 4000, 10_000, 5000), 5000);
    assert.equal(nextDelay(undefined, 0, 5000), 5000);
  });

  it('rewrites the file with fresh tokens (0600), with the job token, and reports in the status file', async () => {
    const auth: string[] = [];
    const s = await server((_n, req) => { auth.push(String(req.headers.authorization)); return { status: 200, body: JSON.stringify({ oidcToken: jwt(1) }) }; });
    const { r, tokenFile, status } = setup(s.url, jwt(0));
    try {
      r.start();
      await until(() => s.hits() >= 3);
      await until(() => status().refreshes >= 2);
      assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600);
      assert.ok(auth.every((a) => a === 'Bearer job'));
      assert.equal(status().state, 'running');
      assert.equal(status().instanceId, 'instance-1', 'kept in every write');
      assert.doesNotMatch(JSON.stringify(status()), /sig/, 'no token in the status file');
    } finally {
      r.stop('stopped', 'test over');
      await s.close();
    }
  });

  it('writes its status, with its pid and instance id, at start and in every later write, the stop included', async () => {
    const s = await server(() => ({ status: 200, body: JSON.stringify({ oidcToken: jwt(1) }) }));
    const { r, status } = setup(s.url, jwt(3600), { minDelayMs: 60_000 });
    try {
      r.start();
      // Synchronously: the task that started it may look for it at once.
      assert.deepEqual([status().state, status().pid, status().instanceId], ['running', process.pid, 'instance-1']);
      r.stop('stopped', 'stopped by the post-job step');
      assert.deepEqual([status().state, status().pid, status().instanceId], ['stopped', process.pid, 'instance-1']);
      assert.equal(s.hits(), 0);
    } finally {
      await s.close();
    }
  });

  it('stops by itself when the job token is refused', async () => {
    const s = await server(() => ({ status: 401, body: '{}' }));
    const { r, status } = setup(s.url, jwt(0));
    r.start();
    await until(() => status().state === 'stopped');
    assert.match(status().reason ?? '', /job's access token was refused \(HTTP 401\)/);
    await s.close();
  });

  it('never writes an expired or empty token, and gives up after bounded failures', async () => {
    const s = await server((n) => ({ status: 200, body: n % 2 ? JSON.stringify({ oidcToken: jwt(-60) }) : '{"oidcToken":null}' }));
    const first = jwt(0);
    const { r, tokenFile, status } = setup(s.url, first);
    r.start();
    await until(() => status().state === 'failed');
    assert.equal(fs.readFileSync(tokenFile, 'utf8'), first, 'the file still holds the last good token');
    assert.match(status().reason ?? '', /3 refreshes failed in a row/);
    assert.equal(s.hits(), 3);
    await s.close();
  });
});
