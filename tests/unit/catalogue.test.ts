/** The failure catalogue: every AADSTS code of protocols.md explained, claims quoted, no token. */
import * as assert from 'node:assert/strict';
import { AADSTS, aadstsCode, explainEntraError, explainHttpStatus, explainNetworkError, summarizeBody } from '../../tasks/core/http/failures';

const ctx = {
  connectionName: 'conn-1',
  tenantId: 'tenant-1',
  clientId: 'client-1',
  presented: { iss: 'https://vstoken.dev.azure.com/org', sub: 'sc://contoso/web/renamed', aud: 'api://AzureADTokenExchange', exp: 1_800_000_000 },
  expected: { issuer: 'https://vstoken.dev.azure.com/org', subject: 'sc://contoso/web/prod' },
};

describe('failure catalogue', () => {
  it('knows every AADSTS code of protocols.md', () => {
    for (const code of [70021, 700211, 700213, 700212, 700024, 70025, 7000215, 7000222, 700016, 90002, 7000112]) {
      assert.ok(AADSTS[code], `AADSTS${code}`);
      const f = explainEntraError(`AADSTS${code}: something.\r\nTrace ID: t\r\nCorrelation ID: c`, ctx);
      assert.equal(f.code, `AADSTS${code}`);
      assert.match(f.message, /Likely cause: .+/);
      assert.match(f.message, /Fix: .+/);
      assert.doesNotMatch(f.message, /Trace ID: t\r?\n/, 'trace lines are folded into one evidence line');
    }
  });

  it('quotes presented and expected subjects side by side for AADSTS700213', () => {
    const f = explainEntraError("AADSTS700213: No matching federated identity record found for presented assertion subject 'sc://contoso/web/renamed'.", ctx);
    assert.match(f.message, /Presented \(the idToken from Azure DevOps\):\n {4}issuer: {3}https:\/\/vstoken\.dev\.azure\.com\/org\n {4}subject: {2}sc:\/\/contoso\/web\/renamed/);
    assert.match(f.message, /Expected \(the service connection in Azure DevOps\):\n {4}issuer: {3}https:\/\/vstoken\.dev\.azure\.com\/org {2}\(same as presented\)\n {4}subject: {2}sc:\/\/contoso\/web\/prod\n/);
  });

  it('advises conversion to federation for an expired secret', () => {
    const f = explainEntraError('AADSTS7000222: The provided client secret keys for app are expired.', ctx);
    assert.match(f.message, /Convert the service connection to workload identity federation/);
  });

  it('reads AADSTS codes from text', () => {
    assert.equal(aadstsCode('AADSTS700024: Client assertion is not within its valid time range.'), 700024);
    assert.equal(aadstsCode('no code'), undefined);
  });

  it('explains an unknown AADSTS code with its lookup link', () => {
    const f = explainEntraError('AADSTS123456: odd', ctx);
    assert.match(f.message, /login\.microsoftonline\.com\/error\?code=123456/);
  });

  it('explains HTTP 203 with HTML, 401, 403, 404 and exhausted 5xx', () => {
    const html = '<html><head><title>Azure DevOps Services | Sign In</title></head></html>';
    assert.match(explainHttpStatus('svc', 'https://x/a?b=c', 203, html, 'text/html', ctx).message, /HTML sign-in page.*\n.*access token/);
    assert.match(explainHttpStatus('svc', 'https://x/a?b=c', 203, html, 'text/html', ctx).message, /Response: an HTML page \(\d+ bytes, not shown\)/);
    assert.equal(explainHttpStatus('svc', 'https://x/a', 401, '', undefined, ctx).code, 'HTTP_401');
    assert.match(explainHttpStatus('svc', 'https://x/a', 403, '', undefined, ctx).message, /Security/);
    assert.match(explainHttpStatus('svc', 'https://x/a', 404, '{"message":"not found"}', 'application/json', ctx).message, /Response: not found/);
    assert.match(explainHttpStatus('svc', 'https://x/a', 503, '', undefined, ctx).message, /after retries/);
    assert.doesNotMatch(explainHttpStatus('svc', 'https://x/a?serviceConnectionId=1', 404, '', undefined, ctx).message, /serviceConnectionId/);
  });

  it('explains TLS, DNS and proxy errors', () => {
    const tls = explainNetworkError('svc', 'https://h/x', Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }));
    assert.equal(tls.code, 'TLS');
    assert.match(tls.message, /Agent\.CAInfo|sslcacert/);
    assert.equal(explainNetworkError('svc', 'https://h/x', Object.assign(new Error('getaddrinfo ENOTFOUND h'), { code: 'ENOTFOUND' })).code, 'DNS');
    const proxy = explainNetworkError('svc', 'https://h/x', Object.assign(new Error('the proxy answered 407 Proxy Authentication Required'), { code: 'PROXY_CONNECT', proxyPhase: true, proxyStatus: 407 }), 'http://proxy:3128');
    assert.match(proxy.message, /credentials/);
  });

  describe('never prints a raw body', () => {
    const MARKERS = ['SECRET-MARKER', '##vso[', 'task.setvariable'];
    const hostile = [
      ['text/plain', 'SECRET-MARKER ##vso[task.setvariable variable=X]1'],
      [undefined, 'oops SECRET-MARKER\n##vso[task.setvariable variable=X]1'],
      ['text/html', '<html><head><title>SECRET-MARKER ##vso[task.setvariable variable=X]1</title></head></html>'],
      ['application/octet-stream', '<title>##vso[task.setvariable variable=X]1</title>SECRET-MARKER'],
      ['application/json', '{"unknown":"SECRET-MARKER ##vso[task.setvariable variable=X]1"}'],
      ['application/json', '{"message":{"nested":"SECRET-MARKER"},"error":["##vso[task.setvariable variable=X]1"]}'],
      ['application/json', '["SECRET-MARKER"]'],
      ['application/json', '"SECRET-MARKER ##vso[task.setvariable variable=X]1"'],
      ['application/json', '{"message":"ok"'], // cut off: not JSON
      ['text/plain; ##vso[task.setvariable variable=X]1', 'SECRET-MARKER'],
      ['application/xml', '<Error><Code>SECRET-MARKER</Code><Message>##vso[task.setvariable variable=X]1</Message></Error>'],
    ] as const;

    // Titles hold no body: mocha prints them, and a runner on an agent would obey a ##vso[ in them.
    hostile.forEach(([type, body], i) => {
      it(`hostile body ${i + 1} of ${hostile.length}`, () => {
        for (const status of [400, 404, 418, 500, 503, 203]) {
          const m = explainHttpStatus('svc', 'https://x/a', status, body, type, ctx).message;
          // On failure, show the message with its ## broken up, so a runner on an agent does not obey it.
          for (const marker of MARKERS) assert.ok(!m.includes(marker), `HTTP ${status}: ${marker} in\n${m.replace(/##/g, '# #')}`);
          assert.match(m, /Response: (an HTML page |[a-z]+\/[a-z+-]+ |)\(\d+ bytes, not shown\)/);
        }
      });
    });

    it('quotes only a string error field of a known shape, first line, capped', () => {
      assert.equal(summarizeBody('{"message":"not found\\nat Trace.x"}', 'application/json'), 'not found');
      assert.equal(summarizeBody('{"error_description":"AADSTS700016: no app.\\r\\nTrace ID: 1"}', 'application/json'), 'AADSTS700016: no app.');
      assert.equal(summarizeBody('{"error":"invalid_request"}', 'application/json'), 'invalid_request');
      assert.equal(summarizeBody('{"error":{"code":"AuthorizationFailed","message":"no access"}}', 'application/json'), 'AuthorizationFailed: no access');
      assert.equal(summarizeBody('{"Message":"The job token is not valid"}', 'application/json'), 'The job token is not valid');
      assert.equal(summarizeBody('{"errors":[{"code":"UNAUTHORIZED","message":"auth required"}]}', 'application/json'), 'UNAUTHORIZED: auth required');
      const long = summarizeBody(JSON.stringify({ message: 'a'.repeat(5000) }), 'application/json');
      assert.ok(long.length <= 303, `${long.length} chars`);
      assert.equal(summarizeBody('{"message":"a\\u0007b\\u001b[31mc"}', 'application/json'), 'a b [31mc');
      assert.equal(summarizeBody('', 'text/plain'), '');
    });

    it('caps and flattens the Entra error description it quotes', () => {
      const f = explainEntraError(`AADSTS700016: ${'x'.repeat(5000)}\r\nTrace ID: t`, ctx, { trace_id: 'y'.repeat(5000), correlation_id: 'c' });
      assert.ok(f.message.length < 3000, `${f.message.length} chars`);
    });

    it('explains an answer over the size cap with what, cause and fix', () => {
      const f = explainNetworkError('svc', 'https://h/x', Object.assign(new Error('too large'), { code: 'RESPONSE_TOO_LARGE', limitBytes: 4 * 1024 * 1024, attempts: 1 }));
      assert.equal(f.code, 'RESPONSE_TOO_LARGE');
      assert.match(f.message, /^svc at h answered with more than 4 MiB; the task stopped reading the answer\.\nLikely cause: .*captive portal.*\nFix: .*proxy/);
    });
  });
});
