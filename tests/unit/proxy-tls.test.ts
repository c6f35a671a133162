/** TLS inside a CONNECT tunnel checks the target's identity, not the proxy's. */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { HttpClient } from '../../tasks/core/http/http';
import { TaskFailure } from '../../tasks/core/http/failures';
import { startMappingProxy } from '../helpers/connect-proxy';

/** A self-signed server certificate for DNS:localhost only (no IP address in it). */
function localhostOnlyCertificate(): { cert: string; key: string } {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-tunnel-tls-'));
  try {
    const key = path.join(work, 'key.pem');
    const cert = path.join(work, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
    return { cert: fs.readFileSync(cert, 'utf8'), key: fs.readFileSync(key, 'utf8') };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

describe('HTTP layer: TLS through the proxy', function () {
  this.timeout(20_000);

  it('refuses an IP-address target whose certificate names only the proxy\'s host', async () => {
    const { cert, key } = localhostOnlyCertificate();
    let served = 0;
    const server = https.createServer({ cert, key }, (_req, res) => { served++; res.end('{"token":"t"}'); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const proxy = await startMappingProxy({ targetPort: (server.address() as AddressInfo).port, names: [/^127\.0\.0\.1$/] });
    try {
      // The proxy is named "localhost": the name its certificate-less socket was opened to.
      const client = new HttpClient({ timeoutMs: 5000, retries: 0, maxRetryAfterMs: 60_000, backoffBaseMs: 10 }, { url: `http://localhost:${proxy.port}`, bypass: [] }, { ca: [cert] });
      // Direct, the certificate does not fit 127.0.0.1; through the tunnel it must not fit either.
      await assert.rejects(client.request({ method: 'GET', url: 'https://127.0.0.1/x', service: 'the test service' }), (e: unknown) => {
        assert.ok(e instanceof TaskFailure, String(e));
        assert.equal(e.code, 'TLS');
        assert.match(e.message, /127\.0\.0\.1/);
        return true;
      });
      assert.equal(proxy.connects.filter((c) => c.status === 200).length, 1, 'went through the proxy');
      assert.equal(served, 0, 'no request reached the server');
    } finally {
      await proxy.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('reaches an https:// proxy whose certificate comes from the agent\'s CA', async () => {
    const { cert, key } = localhostOnlyCertificate();
    const server = https.createServer({ cert, key }, (_req, res) => res.end('{"ok":true}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const proxy = await startMappingProxy({ targetPort: (server.address() as AddressInfo).port, names: ['localhost'], tls: { cert, key } });
    try {
      const client = new HttpClient({ timeoutMs: 5000, retries: 0, maxRetryAfterMs: 60_000, backoffBaseMs: 10 }, { url: `https://localhost:${proxy.port}`, bypass: [] }, { ca: [cert] });
      const res = await client.request({ method: 'GET', url: 'https://localhost/x', service: 'the test service' });
      assert.equal(res.status, 200);
      assert.deepEqual(proxy.connects.map((c) => [c.authority, c.status]), [['localhost:443', 200]]);
    } finally {
      await proxy.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
