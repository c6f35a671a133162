/** The token refresher against a local server: refreshes, stops on a refused job token, never writes a bad token. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { nextDelay, RefresherStatus, SecretFileWriter, TokenRefresher } from '../../tasks/core/files/token-refresher';
import { writeSecretFile } from '../../tasks/core/files/secret-files';

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

/** A JWT whose exp (whole seconds, as in real tokens) is at least `ms` from now. */
const jwtIn = (ms: number) => `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ exp: Math.ceil((Date.now() + ms) / 1000) })).toString('base64url')}.sig${Math.random().toString(36).slice(2)}`;
const expOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { exp: number }).exp * 1000;

function setup(oidcUrl: string, first: string, overrides: Partial<ConstructorParameters<typeof TokenRefresher>[0]> = {}, writeFile?: SecretFileWriter) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-refresher-'));
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, first, { mode: 0o600 });
  const statusFile = `${tokenFile}.status.json`;
  const r = new TokenRefresher({ oidcUrl, jobAccessToken: 'job', tokenFile, statusFile, instanceId: 'instance-1', policy: { timeoutMs: 1000, retries: 0, maxRetryAfterMs: 1000, backoffBaseMs: 1 }, tls: {}, maxLifetimeMs: 60_000, maxFailures: 3, minDelayMs: 50, ...overrides }, Date.now, writeFile);
  return { r, dir, tokenFile, statusFile, status: () => JSON.parse(fs.readFileSync(statusFile, 'utf8')) as RefresherStatus };
}

const errno = (code: string) => Object.assign(new Error(`${code}: operation not permitted, rename '...' -> '...'`), { code });

/**
 * Writes as the refresher does (the real atomic write), except that `refuse(file)` may throw the
 * error Windows gives when the file is held open by another process; records every attempt.
 */
function refusingWriter(refuse: (file: string) => NodeJS.ErrnoException | undefined) {
  const attempts: { file: string; content: string; at: number; refused?: string }[] = [];
  const write: SecretFileWriter = (file, content) => {
    const e = refuse(file);
    attempts.push({ file, content, at: Date.now(), refused: e?.code });
    if (e) throw e;
    writeSecretFile(file, content);
  };
  return { write, attempts };
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

  describe('a token file another process holds open (Windows refuses to replace it)', () => {
    const retry = { initialMs: 10, maxMs: 40, safetyMarginMs: 30_000 };

    it('retries with a bounded backoff and writes the fresh token once it can, saying nothing while the current token stays good', async () => {
      const fresh = jwtIn(3_600_000);
      const s = await server(() => ({ status: 200, body: JSON.stringify({ oidcToken: fresh }) }));
      let refusals = 0;
      let tokenFile = '';
      const w = refusingWriter((file) => (file === tokenFile && refusals++ < 5 ? errno('EPERM') : undefined));
      const t = setup(s.url, jwtIn(3_600_000), { minDelayMs: 60_000, heldFileRetry: retry }, w.write);
      tokenFile = t.tokenFile;
      try {
        t.r.start();
        await t.r.refresh();
        await until(() => t.status().refreshes === 1);
        assert.equal(fs.readFileSync(t.tokenFile, 'utf8'), fresh);
        const tokenWrites = w.attempts.filter((a) => a.file === t.tokenFile);
        assert.deepEqual(tokenWrites.map((a) => a.refused ?? 'ok'), ['EPERM', 'EPERM', 'EPERM', 'EPERM', 'EPERM', 'ok']);
        // 10, 20, 40, 40, 40 ms: doubling, capped (a little early is the timers' rounding).
        const gaps = tokenWrites.slice(1).map((a, i) => a.at - tokenWrites[i].at);
        [10, 20, 40, 40, 40].forEach((min, i) => assert.ok(gaps[i] >= min - 2 && gaps[i] < min + 500, `gap ${i}: ${gaps[i]} ms, expected about ${min}`));
        assert.equal(s.hits(), 1, 'one idToken, kept in memory while the file was held');
        const st = t.status();
        assert.deepEqual([st.state, st.refreshes, st.failures, st.reason], ['running', 1, 0, undefined]);
        assert.ok(!w.attempts.some((a) => a.file === t.statusFile && /held open/.test(a.content)), 'nothing said while the current token stayed good');
        assert.deepEqual(fs.readdirSync(t.dir).filter((f) => f.endsWith('.tmp')), []);
      } finally {
        t.r.stop('stopped', 'test over');
        await s.close();
      }
    });

    it('says why in the status file once the current token would expire first, keeps retrying past its expiry, and clears the reason on success', async function () {
      this.timeout(20_000);
      const fresh = jwtIn(3_600_000);
      const s = await server(() => ({ status: 200, body: JSON.stringify({ oidcToken: fresh }) }));
      const first = jwtIn(2500);
      const margin = 1000;
      let held = true;
      let tokenFile = '';
      const w = refusingWriter((file) => (file === tokenFile && held ? errno('EPERM') : undefined));
      const t = setup(s.url, first, { minDelayMs: 60_000, heldFileRetry: { ...retry, safetyMarginMs: margin } }, w.write);
      tokenFile = t.tokenFile;
      try {
        t.r.start();
        await t.r.refresh();
        assert.equal(t.status().reason, undefined, 'quiet while the current token is good for longer than the margin');
        await until(() => /held open/.test(t.status().reason ?? ''), 10_000);
        const said = w.attempts.find((a) => a.file === t.statusFile && /held open/.test(a.content))!;
        assert.ok(said.at >= expOf(first) - margin - retry.maxMs - 5, `said ${expOf(first) - said.at} ms before expiry, margin ${margin} ms`);
        assert.match(t.status().reason!, /^the token file is held open by another process \(EPERM\): it cannot be replaced yet and the token in it expires at \d{4}-/);
        // Past the current token's expiry the refresher still runs, retrying, and never writes anything else.
        await until(() => Date.now() > expOf(first) + 300, 10_000);
        assert.deepEqual([t.status().state, t.status().refreshes], ['running', 0]);
        assert.equal(fs.readFileSync(t.tokenFile, 'utf8'), first);
        const before = w.attempts.filter((a) => a.file === t.tokenFile).length;
        await new Promise((r) => setTimeout(r, 200));
        assert.ok(w.attempts.filter((a) => a.file === t.tokenFile).length > before, 'still retrying');
        held = false;
        await until(() => t.status().refreshes === 1);
        assert.equal(fs.readFileSync(t.tokenFile, 'utf8'), fresh);
        const st = t.status();
        assert.deepEqual([st.state, st.failures, st.reason], ['running', 0, undefined]);
        assert.equal(s.hits(), 1);
        assert.deepEqual(fs.readdirSync(t.dir).filter((f) => f.endsWith('.tmp')), []);
      } finally {
        t.r.stop('stopped', 'test over');
        await s.close();
      }
    });

    it('writes its status again shortly when the status file is held open too', async () => {
      const s = await server(() => ({ status: 200, body: '{}' }));
      let held = 2;
      let statusFile = '';
      const w = refusingWriter((file) => (file === statusFile && held-- > 0 ? errno('EPERM') : undefined));
      const t = setup(s.url, jwtIn(3_600_000), { minDelayMs: 60_000 }, w.write);
      statusFile = t.statusFile;
      try {
        t.r.start();
        assert.equal(fs.existsSync(t.statusFile), false, 'both first writes refused');
        await until(() => fs.existsSync(t.statusFile), 3000);
        assert.equal(t.status().state, 'running');
        assert.ok(t.status().tokenExpiresAt, 'the latest status (after scheduling), not the first');
        assert.deepEqual(w.attempts.filter((a) => a.file === t.statusFile).map((a) => a.refused ?? 'ok'), ['EPERM', 'EPERM', 'ok']);
      } finally {
        t.r.stop('stopped', 'test over');
        await s.close();
      }
    });

    it('stops quietly when the token file\'s folder is gone (the job is over), without retrying', async () => {
      const s = await server(() => ({ status: 200, body: JSON.stringify({ oidcToken: jwtIn(3_600_000) }) }));
      const w = refusingWriter(() => undefined);
      const t = setup(s.url, jwtIn(3_600_000), { minDelayMs: 60_000, heldFileRetry: retry }, w.write);
      try {
        t.r.start();
        fs.rmSync(t.dir, { recursive: true, force: true });
        await t.r.refresh();
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(w.attempts.filter((a) => a.file === t.tokenFile).length, 1, 'no retry');
        const last = JSON.parse(w.attempts.filter((a) => a.file === t.statusFile).at(-1)!.content) as RefresherStatus;
        assert.deepEqual([last.state, last.reason], ['stopped', "the token file's folder is gone: the job is over"]);
        assert.equal(fs.existsSync(t.dir), false, 'nothing written back');
      } finally {
        t.r.stop('stopped', 'test over');
        await s.close();
      }
    });

    it('fails at once on another write error (ENOSPC), as before', async () => {
      const s = await server(() => ({ status: 200, body: JSON.stringify({ oidcToken: jwtIn(3_600_000) }) }));
      let tokenFile = '';
      const w = refusingWriter((file) => (file === tokenFile ? errno('ENOSPC') : undefined));
      const t = setup(s.url, jwtIn(3_600_000), { minDelayMs: 60_000, heldFileRetry: retry }, w.write);
      tokenFile = t.tokenFile;
      try {
        t.r.start();
        await t.r.refresh();
        assert.equal(w.attempts.filter((a) => a.file === t.tokenFile).length, 1);
        assert.equal(t.status().state, 'failed');
        assert.match(t.status().reason ?? '', /^could not write the token file: ENOSPC/);
      } finally {
        t.r.stop('stopped', 'test over');
        await s.close();
      }
    });
  });
});
