/**
 * Every timeout ends the step: a request that stalls at any stage (the proxy's CONNECT answer, the
 * TLS handshake through the tunnel or directly, the service's answer) fails within the timeout, the
 * bundled task's process exits within the timeout per attempt plus a second (measured to its exit,
 * not only to its result), and the message names the stage that stalled. The stalling peers are
 * test-owned listeners that never close a connection themselves; each is stopped after its test.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, Emulator } from '../emulator/index';
import { proxyToEmulator } from '../helpers/connect-proxy';
import { PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { addFederatedConnection, E2eRuns, FederatedConnection, wif } from '../helpers/e2e';
import { TaskRun } from '../helpers/task-process';

/** A listener that holds every connection open and never closes one; `onData` may answer once. */
interface Staller {
  port: number;
  host: string;
  /** Connections accepted so far. */
  accepted(): number;
  /** Connections still open on the listener's side. */
  open(): number;
  stop(): Promise<void>;
}

async function startStaller(onData?: (socket: net.Socket, data: string) => void): Promise<Staller> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let seen = '';
    s.on('data', (d) => {
      seen += d.toString('latin1');
      onData?.(s, seen);
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
  return {
    port,
    host: `127.0.0.1:${port}`,
    accepted: () => accepted,
    open: () => sockets.size,
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Whether every connection to the staller has been closed by its client, within `ms`. */
async function closedByClient(s: Staller, ms = 1000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (s.open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return s.open() === 0;
}

const TIMEOUT_S = 2;
/** The process's wall time to its exit: the timeout of each attempt, plus a second. */
const BOUND_MS = (attempts: number) => TIMEOUT_S * 1000 * attempts + 1000;

describe('E2E stalls: every timeout ends the process and names the stage that stalled', function () {
  this.timeout(60_000);
  let emu: Emulator;
  let conn: FederatedConnection;
  const e2e = new E2eRuns(() => emu);
  const stallers: Staller[] = [];

  before(async () => {
    emu = await startEmulator();
    conn = addFederatedConnection(emu, 'stalls');
  });
  after(async () => {
    await emu?.stop();
  });
  afterEach(async function () {
    for (const s of stallers.splice(0)) await s.stop();
    e2e.scan(this.currentTest?.title);
    emu.clearFaults();
    emu.resetCounts();
  });

  const staller = async (onData?: (socket: net.Socket, data: string) => void) => {
    const s = await startStaller(onData);
    stallers.push(s);
    return s;
  };
  const job = (publicHosts: boolean) => ({ publicHosts, tempDirectory: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-job-')) });
  const limits = { WORKLOADIDENTITY_HTTPTIMEOUTSECONDS: String(TIMEOUT_S), WORKLOADIDENTITY_HTTPRETRIES: '0' };

  /** FetchOidcToken@1 (one request: the Oidctoken API), killed by the helper after 15 s if it never exits. */
  function fetch(env: Record<string, string>, publicHosts: boolean): Promise<TaskRun> {
    return e2e.run({ task: 'FetchOidcTokenV1', conn: wif(conn), job: job(publicHosts), env: { ...limits, ...env }, timeoutMs: 15_000 });
  }

  function assertEnded(r: TaskRun, attempts = 1): string {
    assert.equal(r.result, 'Failed', r.stdout + r.stderr);
    assert.ok(r.durationMs < BOUND_MS(attempts), `the process exited after ${r.durationMs} ms, not within ${BOUND_MS(attempts)} ms`);
    assert.ok(r.durationMs >= TIMEOUT_S * 1000 * attempts - 100, `failed after ${r.durationMs} ms, before the timeout`);
    return r.errors.join('\n');
  }

  it('a proxy that answers 200 to CONNECT, then forwards nothing and never closes: the TLS handshake through the tunnel is named, the proxy is not blamed', async () => {
    const proxy = await staller((s, seen) => {
      if (seen.includes('\r\n\r\n') && !s.writableEnded && !(s as { answered?: boolean }).answered) {
        (s as { answered?: boolean }).answered = true;
        s.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      }
    });
    const r = await fetch({ AGENT_PROXYURL: `http://${proxy.host}` }, true);
    const msg = assertEnded(r);
    assert.match(msg, new RegExp(`at ${PUBLIC_COLLECTION_HOST} did not complete the TLS handshake within ${TIMEOUT_S} s through the proxy http://127\\.0\\.0\\.1:${proxy.port}`), msg);
    assert.match(msg, /answered 200 to CONNECT/);
    assert.doesNotMatch(msg, /did not (open a tunnel|answer the CONNECT)|proxy [^ ]+ did not answer/, msg);
    assert.match(msg, /WorkloadIdentity\.HttpTimeoutSeconds/);
    assert.equal(proxy.accepted(), 1);
    assert.ok(await closedByClient(proxy), 'the task closed the tunnel it opened');
  });

  it('the same with a retry: each attempt\'s tunnel and TLS socket are closed, the process exits within 2 timeouts and a second', async () => {
    const proxy = await staller((s, seen) => {
      if (seen.includes('\r\n\r\n') && !(s as { answered?: boolean }).answered) {
        (s as { answered?: boolean }).answered = true;
        s.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      }
    });
    const r = await fetch({ AGENT_PROXYURL: `http://${proxy.host}`, WORKLOADIDENTITY_HTTPRETRIES: '1' }, true);
    // Two attempts and the backoff between them (at most 0.5 s).
    assert.equal(r.result, 'Failed', r.stdout + r.stderr);
    assert.ok(r.durationMs < BOUND_MS(2) + 500, `the process exited after ${r.durationMs} ms`);
    assert.match(r.errors.join('\n'), /did not complete the TLS handshake within 2 s through the proxy .*\(2 attempts\)/);
    assert.equal(proxy.accepted(), 2);
    assert.ok(await closedByClient(proxy));
  });

  it('a proxy that accepts the connection and never answers CONNECT: the proxy\'s CONNECT answer is named', async () => {
    const proxy = await staller();
    const r = await fetch({ AGENT_PROXYURL: `http://${proxy.host}` }, true);
    const msg = assertEnded(r);
    assert.match(msg, new RegExp(`The proxy http://127\\.0\\.0\\.1:${proxy.port} did not answer the CONNECT request for a tunnel to ${PUBLIC_COLLECTION_HOST}:443 within ${TIMEOUT_S} s`), msg);
    assert.doesNotMatch(msg, /TLS handshake/);
    assert.equal(proxy.accepted(), 1);
    assert.ok(await closedByClient(proxy), 'the task closed its connection to the proxy');
  });

  it('through a working proxy, a service that completes TLS and never answers: the service\'s answer is named', async () => {
    const proxy = await proxyToEmulator(emu, [PUBLIC_COLLECTION_HOST]);
    try {
      emu.inject('oidctoken', { kind: 'hang' }, Infinity);
      const r = await fetch({ AGENT_PROXYURL: proxy.url }, true);
      const msg = assertEnded(r);
      assert.match(msg, new RegExp(`at ${PUBLIC_COLLECTION_HOST} did not answer within ${TIMEOUT_S} s: the connection through the proxy ${proxy.url.replace(/[.:/]/g, '\\$&')} and the TLS handshake succeeded and the request was sent, but no answer came`), msg);
      assert.equal(emu.count('oidctoken'), 1, 'the request reached the service');
    } finally {
      await proxy.stop();
    }
  });

  it('direct, a service that completes TLS and never answers: the service\'s answer is named', async () => {
    emu.inject('oidctoken', { kind: 'hang' }, Infinity);
    const r = await fetch({}, false);
    const msg = assertEnded(r);
    assert.match(msg, new RegExp(`at ${emu.host.replace(/\./g, '\\.')} did not answer within ${TIMEOUT_S} s: the connection and the TLS handshake succeeded and the request was sent, but no answer came`), msg);
    assert.equal(emu.count('oidctoken'), 1);
  });

  it('direct, a listener that accepts the connection and never speaks TLS: the TLS handshake is named', async () => {
    const raw = await staller();
    // The organisation's URL (SystemVssConnection) and the Oidctoken URL at the listener: one origin, as the task demands.
    const collection = `https://${raw.host}/contoso/`;
    const r = await fetch({
      SYSTEM_COLLECTIONURI: collection,
      SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: collection,
      ENDPOINT_URL_SYSTEMVSSCONNECTION: collection,
      SYSTEM_OIDCREQUESTURI: `${collection}${emu.projectId}/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken`,
    }, false);
    const msg = assertEnded(r);
    assert.match(msg, new RegExp(`at ${raw.host.replace(/\./g, '\\.')} did not complete the TLS handshake within ${TIMEOUT_S} s: the connection was accepted, but no TLS answer came`), msg);
    assert.equal(raw.accepted(), 1);
    assert.ok(await closedByClient(raw), 'the task closed its connection');
  });
});
