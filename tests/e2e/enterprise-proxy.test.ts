/**
 * Enterprise agents end to end: every bundled task, on Node 20 and Node 24, addresses the services
 * by their real public names (dev.azure.com, login.microsoftonline.com, management.azure.com,
 * <name>.azurecr.io, sts.<region>.amazonaws.com, graph.microsoft.com). Those names do not resolve
 * here, so a run can only succeed through the agent's proxy: a test-owned CONNECT proxy that demands
 * credentials and maps each name to the emulator, which refuses a route asked for at another
 * service's name. Then Debian's tinyproxy (BasicAuth) in front of it; the bypass list; the
 * proxy's failures explained; and tokens that must not go where a pipeline variable points (a
 * canary listener that must see no connection at all).
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmulator, Emulator } from '../emulator/index';
import { ConnectionEnv, JobOptions, PUBLIC_COLLECTION_HOST } from '../helpers/agent';
import { addFederatedConnection, E2eRuns, FederatedConnection, postJobEnv, TENANT, wif, trustInAws } from '../helpers/e2e';
import { startCanary, MappingProxy, proxyToEmulator } from '../helpers/connect-proxy';
import { startTinyproxy } from '../helpers/tinyproxy';

const ACCOUNT = '123456789012';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/azure-pipelines-deploy`;
const SUB = '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const REGISTRY = 'contosoimages.azurecr.io';
const PROXY_USER = 'build-agent';
const PROXY_PASSWORD = `Pr0xy-${crypto.randomBytes(6).toString('hex')}`;
const MAPPED = [PUBLIC_COLLECTION_HOST, 'login.microsoftonline.com', 'management.azure.com', 'graph.microsoft.com', REGISTRY, 'sts.us-east-1.amazonaws.com'];
const ARM_SCOPE = 'https://management.azure.com/.default';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const node24 = (): string => (require('../../../scripts/node24.cjs') as { ensureNode24(): string }).ensureNode24();
const HANDLERS: [string, () => string | undefined][] = [['Node 20', () => undefined], ['Node 24', node24]];

describe('E2E through the agent proxy: public host names only a proxy can reach', function () {
  this.timeout(120_000);
  let emu: Emulator;
  let proxy: MappingProxy;
  let conn: FederatedConnection;
  const e2e = new E2eRuns(() => emu);

  before(async () => {
    emu = await startEmulator();
    proxy = await proxyToEmulator(emu, MAPPED, { credentials: `${PROXY_USER}:${PROXY_PASSWORD}` });
    emu.addSubscription({ subscriptionId: SUB, tenantId: TENANT, displayName: 'Contoso Production' });
    emu.addRegistry({ loginServer: REGISTRY, tenantId: TENANT });
    conn = addFederatedConnection(emu, 'enterprise-deploy');
    emu.assignRole({ principalId: conn.clientId, scope: `/subscriptions/${SUB}`, role: 'Contributor' });
    trustInAws(emu, conn.expected, ROLE, 7200);
  });
  after(async () => {
    await proxy?.stop();
    await emu?.stop();
  });
  afterEach(function () {
    // The agent passes the proxy password as a secret variable and masks it wherever it appears
    // (task-lib writes it to the debug log when it loads); the task's own words never hold it.
    for (const r of e2e.pending()) assert.doesNotMatch([r.log, ...r.errors, ...r.warnings].join('\n'), new RegExp(PROXY_PASSWORD), 'the proxy password in a message');
    e2e.endTest(this.currentTest?.title);
    proxy.connects.length = 0;
  });

  /** The connection as a public-cloud connection: no authority override, the public Resource Manager. */
  const publicConn = (c: { id: string; clientId: string }, extra: Partial<ConnectionEnv> = {}): ConnectionEnv => ({ ...wif(c), subscriptionId: SUB, authorityUrl: null, armUrl: 'https://management.azure.com/', scopeLevel: 'Subscription', ...extra });
  const proxyEnv = (url = proxy.url): Record<string, string> => ({ AGENT_PROXYURL: url, AGENT_PROXYUSERNAME: PROXY_USER, SECRET_AGENT_PROXYPASSWORD: PROXY_PASSWORD });
  const job = (extra: JobOptions = {}): JobOptions => ({ publicHosts: true, tempDirectory: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-job-')), ...extra });


  /** Every request reached the emulator through the proxy, at the right service's name, with the agent's credentials. */
  function assertAllThroughProxy(expectedAuthorities: string[]): void {
    const hosts = emu.requestHosts();
    assert.ok(hosts.length > 0, 'the emulator was reached');
    for (const h of hosts) assert.ok(MAPPED.includes(h.host), `${h.route} was asked for at ${h.host}, not through the proxy by its public name`);
    assert.equal(emu.counts().misdirected, 0, 'no route was asked for at another service\'s name');
    assert.ok(proxy.connects.length > 0);
    for (const c of proxy.connects) {
      assert.equal(c.status, 200, `CONNECT ${c.authority} was refused`);
      assert.equal(c.credentials, `${PROXY_USER}:${PROXY_PASSWORD}`, 'Proxy-Authorization from Agent.ProxyUsername/ProxyPassword');
    }
    assert.deepEqual([...new Set(proxy.connects.map((c) => c.authority))].sort(), expectedAuthorities.map((a) => `${a}:443`).sort());
    // One tunnel per request, no more.
    assert.equal(proxy.connects.length, hosts.length, 'one CONNECT per request');
  }

  for (const [handler, nodeOf] of HANDLERS) {
    describe(handler, () => {
      it('FetchOidcToken: idToken, access token, token file kept fresh by a refresher that also goes through the proxy; post-job', async () => {
        const node = nodeOf();
        emu.idTokenLifetimeSeconds = 14; // the refresher renews at half the remaining life: about 7 s on
        const j = job();
        const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), inputs: { accessTokenScope: ARM_SCOPE, exportAzureIdentityEnv: 'true' }, job: j, env: proxyEnv(), node });
        assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
        assert.ok(r.variables.accessToken?.secret);
        assertAllThroughProxy([PUBLIC_COLLECTION_HOST, 'login.microsoftonline.com']);
        const file = r.variables.AZURE_FEDERATED_TOKEN_FILE.value;
        const first = fs.readFileSync(file, 'utf8');
        const deadline = Date.now() + 20_000;
        while (fs.readFileSync(file, 'utf8') === first && Date.now() < deadline) await new Promise((res) => setTimeout(res, 250));
        const refreshed = fs.readFileSync(file, 'utf8');
        assert.notEqual(refreshed, first, 'the refresher renewed the token file');
        assert.ok(emu.issuedTokens().includes(refreshed));
        const refresherConnects = proxy.connects.filter((c) => c.authority === `${PUBLIC_COLLECTION_HOST}:443`);
        assert.ok(refresherConnects.length >= 2, 'the refresher reached Azure DevOps through the proxy too');
        assertAllThroughProxy([PUBLIC_COLLECTION_HOST, 'login.microsoftonline.com']);
        const before = proxy.connects.length;
        const post = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), job: j, env: { ...proxyEnv(), ...postJobEnv(r) }, entry: 'post.js', node });
        assert.equal(post.result, 'Succeeded', post.stdout);
        assert.ok(!fs.existsSync(file));
        assert.equal(proxy.connects.length, before, 'the post-job step makes no request');
      });

      it('AcrLoginFederated: <name>.azurecr.io through the proxy', async () => {
        const r = await e2e.run({ task: 'AcrLoginFederatedV1', conn: publicConn(conn), inputs: { registries: 'contosoimages' }, job: job(), env: { ...proxyEnv(), DOCKER_CONFIG: fs.mkdtempSync(path.join(os.tmpdir(), 'wit-docker-home-')) }, node: nodeOf() });
        assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
        assert.deepEqual([emu.count('oidctoken'), emu.count('entra.token'), emu.count('acr.exchange')], [1, 1, 1]);
        assertAllThroughProxy([PUBLIC_COLLECTION_HOST, 'login.microsoftonline.com', REGISTRY]);
        const auth = JSON.parse(fs.readFileSync(r.variables.REGISTRY_AUTH_FILE.value, 'utf8')) as { auths: Record<string, unknown> };
        assert.ok(auth.auths[REGISTRY]);
      });

      it('ValidateServiceConnection: Azure DevOps, Entra ID, Resource Manager and Microsoft Graph through the proxy', async () => {
        const id = crypto.randomUUID();
        const clientId = crypto.randomUUID();
        const secret = `sec~${crypto.randomBytes(16).toString('base64url')}`;
        e2e.extraSecrets.push(secret);
        emu.addApp({ clientId, tenantId: TENANT, graphAccess: 'read', secrets: [{ value: secret, endDateTime: new Date(Date.now() + 200 * 86_400_000).toISOString(), displayName: 'azure-devops' }] });
        emu.addServiceConnection({ id, name: 'legacy-secret', scheme: 'ServicePrincipal', tenantId: TENANT, clientId, subscriptionId: SUB, servicePrincipalKey: secret });
        emu.assignRole({ principalId: clientId, scope: `/subscriptions/${SUB}`, role: 'Contributor' });
        const r = await e2e.run({ task: 'ValidateServiceConnectionV1', conn: publicConn({ id, clientId }, { scheme: 'ServicePrincipal', authenticationType: 'spnKey', secret }), job: job(), env: proxyEnv(), node: nodeOf() });
        assert.ok(r.variables.validationStatus, r.stdout);
        assert.match(r.log, /PASS +Secret expiry/, r.log);
        assert.match(r.log, /PASS +Subscription/, r.log);
        assert.equal(emu.count('graph.application'), 1);
        assertAllThroughProxy([PUBLIC_COLLECTION_HOST, 'login.microsoftonline.com', 'management.azure.com', 'graph.microsoft.com']);
      });

      it('AwsAssumeRoleFederated: the regional STS endpoint through the proxy, no warning', async () => {
        const r = await e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: publicConn(conn), inputs: { roleArn: ROLE }, job: job(), env: proxyEnv(), node: nodeOf() });
        assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
        assert.deepEqual(r.warnings, []);
        assert.equal(emu.count('sts.assumeRoleWithWebIdentity'), 1);
        assertAllThroughProxy([PUBLIC_COLLECTION_HOST, 'sts.us-east-1.amazonaws.com']);
      });
    });
  }

  it('Debian tinyproxy with BasicAuth in front, the CA trusted through Agent.CAInfo: an exchange ends in under 2 s and tinyproxy logs each CONNECT', async () => {
    // tinyproxy sends no credentials upstream: the mapping proxy behind it demands none.
    const inner = await proxyToEmulator(emu, MAPPED);
    const chained = await startTinyproxy({ basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD }, upstream: inner.url });
    try {
      const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), inputs: { accessTokenScope: ARM_SCOPE }, job: job({ trust: 'agent-cainfo' }), env: proxyEnv(chained.url) });
      assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
      // Before the tunnel was the request's socket, each request waited for tinyproxy's 30 s idle timeout.
      assert.ok(r.durationMs < 2000, `took ${r.durationMs} ms`);
      const log = chained.log();
      for (const host of [PUBLIC_COLLECTION_HOST, 'login.microsoftonline.com']) assert.match(log, new RegExp(`CONNECT ${host.replace(/\./g, '\\.')}:443`), log);
      assert.deepEqual(inner.connects.map((c) => c.authority).sort(), [`${PUBLIC_COLLECTION_HOST}:443`, 'login.microsoftonline.com:443']);

      const wrong = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), job: job(), env: { ...proxyEnv(chained.url), SECRET_AGENT_PROXYPASSWORD: 'not-the-password' } });
      assert.equal(wrong.result, 'Failed');
      const message = wrong.errors.join('\n');
      assert.match(message, new RegExp(`proxy ${chained.url.replace(/[.:/]/g, '\\$&')} refused to open a tunnel to ${PUBLIC_COLLECTION_HOST} .*requires authentication \\(HTTP 40[17]\\)`));
      assert.match(message, /proxy credentials/);
      assert.doesNotMatch([wrong.log, ...wrong.errors].join('\n'), /not-the-password/);
    } finally {
      await chained.stop();
      await inner.stop();
    }
  });

  it('the agent\'s bypass list (regular expressions on the whole URL): bypassed URLs go direct, the rest through the proxy', async () => {
    // Azure DevOps at the emulator's loopback address is on the bypass list; Entra ID is not.
    const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), inputs: { accessTokenScope: ARM_SCOPE }, job: { tempDirectory: job().tempDirectory }, env: { ...proxyEnv(), AGENT_PROXYBYPASSLIST: JSON.stringify([`^https://${emu.host.replace(/\./g, '\\.')}/`]) } });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    assert.deepEqual(emu.requestHosts().map((h) => `${h.route}@${h.host}`), [`oidctoken@${emu.host}`, 'entra.token@login.microsoftonline.com']);
    assert.deepEqual(proxy.connects.map((c) => c.authority), ['login.microsoftonline.com:443']);
  });

  it('a CONNECT the proxy refuses and a proxy that is not there are explained, naming the proxy and never its password', async () => {
    const strict = await proxyToEmulator(emu, [PUBLIC_COLLECTION_HOST]);
    try {
      const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), inputs: { accessTokenScope: ARM_SCOPE }, job: job(), env: { AGENT_PROXYURL: strict.url } });
      assert.equal(r.result, 'Failed');
      assert.match(r.errors.join('\n'), new RegExp(`proxy ${strict.url.replace(/[.:/]/g, '\\$&')} refused to open a tunnel to login\\.microsoftonline\\.com .*\\(HTTP 403\\)`));
      assert.equal(strict.connects.filter((c) => c.status === 403).length, 1, 'a refused CONNECT is not retried');
    } finally {
      await strict.stop();
    }
    const canary = await startCanary();
    await canary.stop(); // a port nothing listens on
    const down = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), job: job(), env: { ...proxyEnv(`http://${PROXY_USER}:${PROXY_PASSWORD}@${canary.host}`), WORKLOADIDENTITY_HTTPRETRIES: '0' } });
    assert.equal(down.result, 'Failed');
    assert.match(down.errors.join('\n'), new RegExp(`The proxy http://${canary.host.replace(/\./g, '\\.')} refused the connection, so the Azure DevOps Oidctoken API at ${PUBLIC_COLLECTION_HOST} could not be reached`));
  });

  describe('tokens go only to the hosts meant for them', () => {
    it('WorkloadIdentity.GraphUrl cannot redirect the Graph token: it goes to graph.microsoft.com, the canary sees nothing', async () => {
      const canary = await startCanary();
      try {
        const id = crypto.randomUUID();
        const clientId = crypto.randomUUID();
        const secret = `sec~${crypto.randomBytes(16).toString('base64url')}`;
        e2e.extraSecrets.push(secret);
        emu.addApp({ clientId, tenantId: TENANT, graphAccess: 'read', secrets: [{ value: secret, endDateTime: new Date(Date.now() + 200 * 86_400_000).toISOString() }] });
        emu.addServiceConnection({ id, name: 'graph-canary', scheme: 'ServicePrincipal', tenantId: TENANT, clientId, subscriptionId: SUB, servicePrincipalKey: secret });
        for (const graphUrl of [canary.url, `http://${canary.host}`]) {
          const r = await e2e.run({ task: 'ValidateServiceConnectionV1', conn: publicConn({ id, clientId }, { scheme: 'ServicePrincipal', authenticationType: 'spnKey', secret }), job: job(), env: { ...proxyEnv(), WORKLOADIDENTITY_GRAPHURL: graphUrl } });
          assert.match(r.log, /PASS +Secret expiry/, r.log);
          assert.ok(emu.requestHosts().some((h) => h.route === 'graph.application' && h.host === 'graph.microsoft.com'));
        }
        assert.equal(canary.connections(), 0, 'no connection to the URL a pipeline variable named');
      } finally {
        await canary.stop();
      }
    });

    it('System.OidcRequestUri pointing elsewhere than the organization: refused, the job token never leaves', async () => {
      const canary = await startCanary();
      try {
        const r = await e2e.run({ task: 'FetchOidcTokenV1', conn: publicConn(conn), job: job(), env: { ...proxyEnv(), SYSTEM_OIDCREQUESTURI: `${canary.url}/steal` } });
        assert.equal(r.result, 'Failed');
        assert.match(r.errors.join('\n'), /System\.OidcRequestUri points at https:\/\/127\.0\.0\.1:\d+, not at this organization's Azure DevOps \(https:\/\/dev\.azure\.com\/contoso\/ and its Release Management host/);
        assert.equal(canary.connections(), 0);
        assert.equal(proxy.connects.length, 0);
      } finally {
        await canary.stop();
      }
    });

    it('a connection whose Resource Manager URL is not https is refused before any request', async () => {
      const canary = await startCanary();
      try {
        const r = await e2e.run({ task: 'ValidateServiceConnectionV1', conn: publicConn(conn, { armUrl: `http://${canary.host}/` }), job: job(), env: proxyEnv() });
        assert.equal(r.result, 'Failed');
        assert.match(r.errors.join('\n'), /Input 'azureSubscription': the connection's Resource Manager URL 'http:\/\/127\.0\.0\.1:\d+\/' is not https/);
        assert.equal(canary.connections(), 0);
        assert.equal(emu.requestHosts().length, 0);
      } finally {
        await canary.stop();
      }
    });

    it('stsEndpoint: http is refused before any request; a host that is not AWS STS gets a warning naming it', async () => {
      const canary = await startCanary();
      try {
        const r = await e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: publicConn(conn), inputs: { roleArn: ROLE, stsEndpoint: `http://${canary.host}/` }, job: job(), env: proxyEnv() });
        assert.equal(r.result, 'Failed');
        assert.match(r.errors.join('\n'), /Input 'stsEndpoint': 'http:\/\/127\.0\.0\.1:\d+\/' is not https/);
        assert.equal(canary.connections(), 0);
        assert.equal(emu.requestHosts().length, 0);
      } finally {
        await canary.stop();
      }
      const warned = await e2e.run({ task: 'AwsAssumeRoleFederatedV1', conn: publicConn(conn), inputs: { roleArn: ROLE, stsEndpoint: `${emu.url}/` }, job: job(), env: { ...proxyEnv(), AGENT_PROXYBYPASSLIST: JSON.stringify(['^https://127\\.0\\.0\\.1']) } });
      assert.equal(warned.result, 'Succeeded', warned.stdout);
      assert.equal(warned.warnings.length, 1);
      assert.match(warned.warnings[0], new RegExp(`Input 'stsEndpoint': ${emu.host.replace(/\./g, '\\.')} is not an AWS STS host`));
    });

    it('a registry that is not an ACR login server gets no token, and no connection', async () => {
      const canary = await startCanary();
      try {
        const r = await e2e.run({ task: 'AcrLoginFederatedV1', conn: publicConn(conn), inputs: { registries: canary.host }, job: job(), env: proxyEnv() });
        assert.equal(r.result, 'Failed');
        assert.match(r.errors.join('\n'), /trustedRegistryHosts/);
        assert.equal(canary.connections(), 0);
        assert.equal(emu.requestHosts().length, 0);
      } finally {
        await canary.stop();
      }
    });
  });
});
