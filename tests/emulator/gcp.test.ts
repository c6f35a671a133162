import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { startEmulator, gcpPoolPrincipalSet, gcpPrincipal, type Emulator } from './index';
import { httpsRequest, Reply } from './test-client';

const TENANT = '4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a';
const CLIENT = '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b';
const CONN = 'ac000000-0000-4000-8000-000000000001';
const OTHER_CONN = 'ac000000-0000-4000-8000-000000000002';
const PROVIDER = { projectNumber: '123456789012', poolId: 'azure-pipelines', providerId: 'contoso' };
const NAME = `projects/${PROVIDER.projectNumber}/locations/global/workloadIdentityPools/${PROVIDER.poolId}/providers/${PROVIDER.providerId}`;
const SA = 'deployer@contoso-prod.iam.gserviceaccount.com';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';

describe('emulator: Google STS and IAM Credentials', function () {
  this.timeout(20_000);
  let emu: Emulator;
  let ca: string;
  let issuer: string;
  let subject: string;

  const request = (method: string, path: string, headers: Record<string, string> = {}, body?: string, host?: string): Promise<Reply> => {
    const u = new URL(path, emu.url);
    return host ? httpsRequest({ host: '127.0.0.1', port: Number(u.port), path: u.pathname, servername: host, headers: { Host: host } }, { method, ca, headers, body }) : httpsRequest(u, { method, ca, headers, body });
  };

  async function idToken(connectionId: string): Promise<string> {
    const r = await request('POST', `${emu.collectionUri}${emu.projectId}/_apis/distributedtask/hubs/build/plans/${emu.planId}/jobs/${emu.jobId}/oidctoken?api-version=7.1-preview.1&serviceConnectionId=${connectionId}`, { Authorization: `Bearer ${emu.jobAccessToken}`, 'Content-Type': 'application/json' }, '{}');
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { oidcToken: string }).oidcToken;
  }

  const exchange = async (fields: Record<string, string>, json = false) =>
    request('POST', '/v1/token', { 'Content-Type': json ? 'application/json' : 'application/x-www-form-urlencoded' }, json ? JSON.stringify(fields) : new URLSearchParams(fields).toString());

  const stsFields = async (conn = CONN, audience = `//iam.googleapis.com/${NAME}`) => ({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    audience,
    scope: 'https://www.googleapis.com/auth/cloud-platform',
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    subject_token: await idToken(conn),
    subject_token_type: JWT,
  });

  const impersonate = (token: string, email = SA, body: unknown = { scope: ['https://www.googleapis.com/auth/cloud-platform'], lifetime: '1800s' }) =>
    request('POST', `/v1/projects/-/serviceAccounts/${email}:generateAccessToken`, { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, JSON.stringify(body));

  before(async () => {
    emu = await startEmulator();
    ca = fs.readFileSync(emu.caCertPath, 'utf8');
    emu.addApp({ clientId: CLIENT, tenantId: TENANT, federatedCredentials: [] });
    emu.addServiceConnection({ id: CONN, name: 'gcp', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: CLIENT });
    emu.addServiceConnection({ id: OTHER_CONN, name: 'other', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: CLIENT });
    ({ issuer, subject } = emu.expectedFederation(CONN));
    emu.addGcpProvider({ ...PROVIDER, issuerUri: issuer, allowedAudiences: ['api://AzureADTokenExchange'], attributeCondition: `assertion.sub == '${subject}'` });
    emu.addGcpServiceAccount({ email: SA, members: [gcpPrincipal(PROVIDER, subject)] });
  });
  after(() => emu?.stop());
  afterEach(() => {
    emu.clearFaults();
    emu.resetCounts();
  });

  it('exchanges an idToken (form or JSON) for a federated token, then impersonates the service account', async () => {
    for (const json of [false, true]) {
      const r = await exchange(await stsFields(), json);
      assert.equal(r.status, 200, r.body);
      const body = JSON.parse(r.body) as { access_token: string; issued_token_type: string; token_type: string; expires_in: number };
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
      assert.equal(body.expires_in, 3600);
      // Google takes the e-mail with a plain @ (as gcloud's credentials files give it) or percent-encoded.
      const i = await impersonate(body.access_token, json ? encodeURIComponent(SA) : SA);
      assert.equal(i.status, 200, i.body);
      const out = JSON.parse(i.body) as { accessToken: string; expireTime: string };
      assert.match(out.accessToken, /^ya29\.c\./);
      assert.ok(Math.abs(Date.parse(out.expireTime) - Date.now() - 1800_000) < 5_000);
      assert.ok(emu.issuedTokens().includes(out.accessToken) && emu.issuedTokens().includes(body.access_token));
    }
    assert.deepEqual([emu.count('gcp.sts.token'), emu.count('gcp.iam.generateAccessToken')], [2, 2]);
    const tokens = emu.gcpTokens();
    assert.equal(tokens[0].principal, gcpPrincipal(PROVIDER, subject));
    assert.equal(tokens[1].principal, `serviceAccount:${SA}`);
    assert.equal(tokens[3].principal, `serviceAccount:${SA}`);
  });

  it('answers Google\'s errors: audience, issuer, unknown or disabled provider, attribute condition', async () => {
    const said = (r: Reply) => JSON.parse(r.body) as { error: string; error_description: string };
    let r = await exchange(await stsFields(CONN, `//iam.googleapis.com/${NAME.replace('contoso', 'missing')}`));
    assert.equal(r.status, 400);
    assert.equal(said(r).error, 'invalid_target');
    assert.match(said(r).error_description, /pool or provider is disabled or deleted or because it doesn't exist/);
    emu.addGcpProvider({ ...PROVIDER, providerId: 'no-audience', issuerUri: issuer });
    r = await exchange(await stsFields(CONN, `//iam.googleapis.com/${NAME.replace('contoso', 'no-audience')}`));
    assert.deepEqual([r.status, said(r).error], [400, 'invalid_grant']);
    assert.match(said(r).error_description, /^The audience in ID Token \[api:\/\/AzureADTokenExchange\] does not match the expected audience https:\/\/iam\.googleapis\.com\/projects\//);
    emu.addGcpProvider({ ...PROVIDER, providerId: 'other-issuer', issuerUri: 'https://login.microsoftonline.com/x/v2.0', allowedAudiences: ['api://AzureADTokenExchange'] });
    r = await exchange(await stsFields(CONN, `//iam.googleapis.com/${NAME.replace('contoso', 'other-issuer')}`));
    assert.equal(said(r).error, 'invalid_grant');
    assert.equal(said(r).error_description, `The issuer in ID Token ${issuer} does not match the expected ones: https://login.microsoftonline.com/x/v2.0`);
    emu.addGcpProvider({ ...PROVIDER, providerId: 'disabled', issuerUri: issuer, allowedAudiences: ['api://AzureADTokenExchange'], state: 'DISABLED' });
    r = await exchange(await stsFields(CONN, `//iam.googleapis.com/${NAME.replace('contoso', 'disabled')}`));
    assert.equal(said(r).error, 'invalid_target');
    r = await exchange(await stsFields(OTHER_CONN));
    assert.deepEqual([r.status, said(r).error, said(r).error_description], [400, 'unauthorized_client', 'The given credential is rejected by the attribute condition.']);
  });

  it('generateAccessToken: 403 PERMISSION_DENIED without roles/iam.workloadIdentityUser, 401 without a Google token; a principalSet grants the pool', async () => {
    emu.addGcpProvider({ ...PROVIDER, providerId: 'open', issuerUri: issuer, allowedAudiences: ['api://AzureADTokenExchange'] });
    const r = await exchange(await stsFields(OTHER_CONN, `//iam.googleapis.com/${NAME.replace('contoso', 'open')}`));
    const token = (JSON.parse(r.body) as { access_token: string }).access_token;
    const denied = await impersonate(token);
    assert.equal(denied.status, 403);
    const e = (JSON.parse(denied.body) as { error: { code: number; message: string; status: string } }).error;
    assert.deepEqual([e.code, e.status, e.message], [403, 'PERMISSION_DENIED', "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."]);
    assert.equal((await impersonate('ya29.not-issued')).status, 401);
    emu.addGcpServiceAccount({ email: 'pool@contoso-prod.iam.gserviceaccount.com', members: [gcpPoolPrincipalSet(PROVIDER)] });
    assert.equal((await impersonate(token, 'pool@contoso-prod.iam.gserviceaccount.com')).status, 200);
    assert.equal((await impersonate(token, SA, { scope: ['https://www.googleapis.com/auth/cloud-platform'], lifetime: '3600' })).status, 400);
  });

  it('is served only at sts.googleapis.com and iamcredentials.googleapis.com; faults answer Google\'s shape', async () => {
    const body = new URLSearchParams(await stsFields()).toString();
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    assert.equal((await request('POST', '/v1/token', form, body, 'sts.googleapis.com')).status, 200);
    assert.equal((await request('POST', '/v1/token', form, body, 'iamcredentials.googleapis.com')).status, 421);
    assert.equal((await request('POST', '/v1/token', form, body, 'sts.amazonaws.com')).status, 421);
    assert.equal(emu.counts().misdirected, 2);
    emu.inject('gcp.sts.token', { kind: 'status', status: 503 });
    const r = await request('POST', '/v1/token', form, body, 'sts.googleapis.com');
    assert.equal(r.status, 503);
    assert.equal((JSON.parse(r.body) as { error: { status: string } }).error.status, 'UNAVAILABLE');
  });
});
