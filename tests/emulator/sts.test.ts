import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AssumeRoleWithWebIdentityCommand,
  ExpiredTokenException,
  GetCallerIdentityCommand,
  IDPCommunicationErrorException,
  InvalidIdentityTokenException,
  MalformedPolicyDocumentException,
  STSClient,
  STSServiceException,
  type AssumeRoleWithWebIdentityCommandInput,
  type AssumeRoleWithWebIdentityCommandOutput,
} from '@aws-sdk/client-sts';
import { fromTokenFile } from '@aws-sdk/credential-provider-web-identity';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startEmulator, stsErrorBody, stsFault, STS_NAMESPACE, type Emulator } from './index';
import { signJwt, nowSeconds } from './jwt';
import { httpsRequest, Reply } from './test-client';

const TENANT = '4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a';
const CLIENT = '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b';
const AWS_CONN = 'ab000000-0000-4000-8000-000000000001'; // trusted by ROLE
const OTHER_CONN = 'ab000000-0000-4000-8000-000000000002'; // same issuer, a subject no role trusts
const ENTRA_CONN = 'ab000000-0000-4000-8000-000000000003'; // Entra-issuer idTokens
const ACCOUNT = '123456789012';
const OTHER_ACCOUNT = '210987654321'; // has a provider for the issuer, but with another client id
const EMPTY_ACCOUNT = '555555555555'; // has no provider at all
const ROLE = `arn:aws:iam::${ACCOUNT}:role/pipelines/deploy-prod`;
const LONG_ROLE = `arn:aws:iam::${ACCOUNT}:role/long-sessions`;
const ENTRA_ROLE = `arn:aws:iam::${ACCOUNT}:role/entra-deploy`;
const AUDIENCE = 'api://AzureADTokenExchange';


describe('emulator: AWS STS', function () {
  this.timeout(20_000);
  let emu: Emulator;
  let ca: string;
  let handler: NodeHttpHandler;
  let sts: STSClient;
  let issuer: string;
  let subject: string;
  const clients: STSClient[] = [];
  let savedWarning: string | undefined;

  function request(method: string, pathOrUrl: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
    return httpsRequest(new URL(pathOrUrl, emu.url), { method, ca, headers, body });
  }

  const form = (fields: Record<string, string>) =>
    request('POST', '/', { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' }, new URLSearchParams(fields).toString());

  async function idToken(connectionId: string): Promise<string> {
    const r = await request(
      'POST',
      `${emu.collectionUri}${emu.projectId}/_apis/distributedtask/hubs/build/plans/${emu.planId}/jobs/${emu.jobId}/oidctoken?api-version=7.1-preview.1&serviceConnectionId=${connectionId}`,
      { Authorization: `Bearer ${emu.jobAccessToken}`, 'Content-Type': 'application/json' },
      '{}',
    );
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { oidcToken: string }).oidcToken;
  }

  /** An STS client of the official SDK, trusting the emulator's CA; no retries unless asked. */
  function client(options: { credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }; maxAttempts?: number } = {}): STSClient {
    const c = new STSClient({
      region: 'us-east-1',
      endpoint: `${emu.url}/`,
      requestHandler: handler,
      maxAttempts: options.maxAttempts ?? 1,
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
    clients.push(c);
    return c;
  }

  const assume = (input: Partial<AssumeRoleWithWebIdentityCommandInput> & { WebIdentityToken: string }, c = sts): Promise<AssumeRoleWithWebIdentityCommandOutput> =>
    c.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE, RoleSessionName: 'ado-run-42', ...input }));

  const credentialsOf = (out: AssumeRoleWithWebIdentityCommandOutput) => ({
    accessKeyId: out.Credentials!.AccessKeyId!,
    secretAccessKey: out.Credentials!.SecretAccessKey!,
    sessionToken: out.Credentials!.SessionToken!,
  });

  /**
   * The SDK's error for a failed call, as its query-protocol parser read our XML: the wire code
   * (Code; the error's name is the SDK's class name for modeled errors), HTTP status, message.
   */
  async function sdkError(promise: Promise<unknown>, code: string, status: number, message?: RegExp | string): Promise<STSServiceException> {
    let caught: unknown;
    try {
      await promise;
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof STSServiceException, `expected ${code}, got ${String(caught)}`);
    const parsed = caught as STSServiceException & { Code?: string; Type?: string };
    assert.equal(parsed.Code, code, caught.message);
    assert.equal(parsed.Type, status >= 500 ? 'Receiver' : 'Sender');
    assert.equal(caught.$fault, status >= 500 ? 'server' : 'client');
    assert.equal(caught.$metadata.httpStatusCode, status);
    assert.match(caught.$metadata.requestId ?? '', /^[0-9a-f-]{36}$/);
    if (typeof message === 'string') assert.equal(caught.message, message);
    else if (message) assert.match(caught.message, message);
    return caught;
  }

  before(async function () {
    savedWarning = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    emu = await startEmulator();
    ca = fs.readFileSync(emu.caCertPath, 'utf8');
    handler = new NodeHttpHandler({ httpsAgent: new https.Agent({ ca, keepAlive: true }) });
    emu.addServiceConnection({ id: AWS_CONN, name: 'aws-prod', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: CLIENT });
    emu.addServiceConnection({ id: OTHER_CONN, name: 'aws-other', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: CLIENT });
    emu.addServiceConnection({ id: ENTRA_CONN, name: 'aws-entra', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: CLIENT, issuerMode: 'entra' });
    const fed = emu.expectedFederation(AWS_CONN);
    issuer = fed.issuer.replace(/^https:\/\//, '');
    subject = fed.subject;
    emu.addAwsOidcProvider({ url: issuer, clientIds: [fed.audience], accountId: ACCOUNT });
    emu.addAwsOidcProvider({ url: issuer, clientIds: ['sts.amazonaws.com'], accountId: OTHER_ACCOUNT });
    emu.addAwsRole({ arn: ROLE, trust: { issuer, sub: subject, aud: fed.audience } });
    emu.addAwsRole({ arn: `arn:aws:iam::${OTHER_ACCOUNT}:role/deploy`, trust: { issuer, sub: subject } });
    emu.addAwsRole({ arn: `arn:aws:iam::${EMPTY_ACCOUNT}:role/deploy`, trust: { issuer, sub: subject } });
    emu.addAwsRole({ arn: LONG_ROLE, maxSessionDurationSeconds: 43200, trust: { issuer } });
    sts = client();
  });

  after(async function () {
    for (const c of clients) c.destroy();
    handler?.destroy();
    await emu?.stop();
    if (savedWarning === undefined) delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    else process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = savedWarning;
  });

  beforeEach(function () {
    emu.clearFaults();
    emu.resetCounts();
    emu.idTokenLifetimeSeconds = 600;
  });

  describe('AssumeRoleWithWebIdentity', function () {
    it('exchanges a vstoken idToken for session credentials, as the SDK parses them', async function () {
      const token = await idToken(AWS_CONN);
      const before = Date.now();
      const out = await assume({ WebIdentityToken: token, DurationSeconds: 1800 });
      assert.equal(out.$metadata.httpStatusCode, 200);
      assert.match(out.$metadata.requestId ?? '', /^[0-9a-f-]{36}$/);
      const c = out.Credentials!;
      assert.match(c.AccessKeyId!, /^ASIA[A-Z0-9]{16}$/);
      assert.match(c.SecretAccessKey!, /^[A-Za-z0-9+/]{40}$/);
      assert.match(c.SessionToken!, /^[A-Za-z0-9+/=]{400,}$/);
      assert.ok(c.Expiration instanceof Date);
      const lifetime = c.Expiration.getTime() - before;
      assert.ok(lifetime > 1795_000 && lifetime <= 1801_000, String(lifetime));
      assert.equal(out.SubjectFromWebIdentityToken, subject);
      assert.equal(out.Audience, AUDIENCE);
      assert.equal(out.Provider, `arn:aws:iam::${ACCOUNT}:oidc-provider/${issuer}`);
      assert.equal(out.AssumedRoleUser!.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/deploy-prod/ado-run-42`);
      assert.match(out.AssumedRoleUser!.AssumedRoleId!, /^AROA[A-Z0-9]{17}:ado-run-42$/);

      const session = emu.awsSessions().find((s) => s.accessKeyId === c.AccessKeyId);
      assert.ok(session);
      assert.equal(session.roleArn, ROLE);
      assert.equal(session.roleSessionName, 'ado-run-42');
      assert.equal(session.durationSeconds, 1800);
      assert.equal(session.subject, subject);
      assert.equal(session.provider, issuer);
      assert.equal(session.expiration, c.Expiration.toISOString().replace('.000Z', 'Z'));
      assert.deepEqual(session.policyArns, []);
      const secrets = emu.issuedTokens();
      assert.ok(secrets.includes(c.SecretAccessKey!));
      assert.ok(secrets.includes(c.SessionToken!));
      assert.ok(!secrets.includes(c.AccessKeyId!), 'the access key id is printed by tasks as an output, so it is no secret');
      assert.equal(emu.count('sts.assumeRoleWithWebIdentity'), 1);
    });

    it('answers the real XML shape, without any signature, for a bare form post', async function () {
      const r = await form({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: ROLE, RoleSessionName: 'raw', WebIdentityToken: await idToken(AWS_CONN) });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['content-type'], 'text/xml');
      assert.match(r.body, new RegExp(`^<AssumeRoleWithWebIdentityResponse xmlns="${STS_NAMESPACE}">\\n  <AssumeRoleWithWebIdentityResult>\\n    <Credentials>\\n`));
      assert.match(r.body, /<Expiration>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/Expiration>/);
      const requestId = /<ResponseMetadata>\s*<RequestId>([0-9a-f-]{36})<\/RequestId>\s*<\/ResponseMetadata>\s*<\/AssumeRoleWithWebIdentityResponse>\s*$/.exec(r.body);
      assert.ok(requestId, r.body);
      assert.equal(r.headers['x-amzn-requestid'], requestId[1]);
      // default duration: one hour
      const session = emu.awsSessions().at(-1)!;
      assert.equal(session.durationSeconds, 3600);
    });

    it('takes an Entra-issuer idToken from a provider for login.microsoftonline.com', async function () {
      const entra = emu.expectedFederation(ENTRA_CONN);
      const url = entra.issuer.replace(/^https:\/\//, '');
      assert.equal(url, `login.microsoftonline.com/${TENANT}/v2.0`);
      const token = await idToken(ENTRA_CONN);
      emu.addAwsRole({ arn: ENTRA_ROLE, trust: { issuer: url, sub: entra.subject, aud: AUDIENCE } });
      await sdkError(assume({ RoleArn: ENTRA_ROLE, WebIdentityToken: token }), 'InvalidIdentityToken', 400, `No OpenIDConnect provider found in your account for ${entra.issuer}`);
      emu.addAwsOidcProvider({ url: `https://${url}`, clientIds: [AUDIENCE], accountId: ACCOUNT });
      const out = await assume({ RoleArn: ENTRA_ROLE, WebIdentityToken: token });
      assert.equal(out.SubjectFromWebIdentityToken, entra.subject);
      assert.equal(out.AssumedRoleUser!.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/entra-deploy/ado-run-42`);
    });

    it('passes session policies and policy ARNs through to the session record', async function () {
      const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] });
      const out = await assume({
        WebIdentityToken: await idToken(AWS_CONN),
        Policy: policy,
        PolicyArns: [{ arn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }, { arn: `arn:aws:iam::${ACCOUNT}:policy/deploy-limits` }],
      });
      const session = emu.awsSessions().find((s) => s.accessKeyId === out.Credentials!.AccessKeyId);
      assert.equal(session?.policy, policy);
      assert.deepEqual(session?.policyArns, ['arn:aws:iam::aws:policy/ReadOnlyAccess', `arn:aws:iam::${ACCOUNT}:policy/deploy-limits`]);
      const malformed = await sdkError(assume({ WebIdentityToken: await idToken(AWS_CONN), Policy: '{not json' }), 'MalformedPolicyDocument', 400);
      assert.ok(malformed instanceof MalformedPolicyDocumentException);
    });

    it('refuses tokens as AWS does: unknown provider, bad audience, bad signature, not a JWT, expired', async function () {
      const token = await idToken(AWS_CONN);
      const noProvider = await sdkError(
        assume({ RoleArn: `arn:aws:iam::${EMPTY_ACCOUNT}:role/deploy`, WebIdentityToken: token }),
        'InvalidIdentityToken',
        400,
        `No OpenIDConnect provider found in your account for https://${issuer}`,
      );
      assert.ok(noProvider instanceof InvalidIdentityTokenException);
      assert.equal(noProvider.name, 'InvalidIdentityTokenException');

      await sdkError(assume({ RoleArn: `arn:aws:iam::${OTHER_ACCOUNT}:role/deploy`, WebIdentityToken: token }), 'InvalidIdentityToken', 400, 'Incorrect token audience');

      const [h, p] = token.split('.');
      const strangerKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
      // the same header (kid) and claims, signed by another key
      const forged = signJwt(decode(h), decode(p), strangerKey);
      await sdkError(assume({ WebIdentityToken: forged }), 'InvalidIdentityToken', 400, /could not be validated by AWS/);
      const otherKid = signJwt({ typ: 'JWT', kid: 'someone-else' }, { iss: `https://${issuer}`, sub: subject, aud: AUDIENCE, exp: nowSeconds() + 600 }, strangerKey);
      await sdkError(assume({ WebIdentityToken: otherKid }), 'InvalidIdentityToken', 400, /^Couldn't retrieve verification key from your identity provider/);
      await sdkError(assume({ WebIdentityToken: 'not-a-jwt-at-all' }), 'InvalidIdentityToken', 400, /not a valid JWT/);

      emu.idTokenLifetimeSeconds = -120;
      const expired = await sdkError(
        assume({ WebIdentityToken: await idToken(AWS_CONN) }),
        'ExpiredTokenException',
        400,
        /^Token expired: current date\/time \d{10} must be before the expiration date\/time \d{10}$/,
      );
      assert.ok(expired instanceof ExpiredTokenException);
      assert.equal(emu.awsSessions().filter((s) => s.roleArn.startsWith(`arn:aws:iam::${EMPTY_ACCOUNT}`)).length, 0);
    });

    it('denies an untrusted subject or an unknown role with 403 AccessDenied', async function () {
      const denied = 'Not authorized to perform sts:AssumeRoleWithWebIdentity';
      await sdkError(assume({ WebIdentityToken: await idToken(OTHER_CONN) }), 'AccessDenied', 403, denied);
      await sdkError(assume({ RoleArn: `arn:aws:iam::${ACCOUNT}:role/no-such-role`, WebIdentityToken: await idToken(AWS_CONN) }), 'AccessDenied', 403, denied);
      // a role that trusts the issuer without conditions on sub takes any connection's token
      const out = await assume({ RoleArn: LONG_ROLE, WebIdentityToken: await idToken(OTHER_CONN), DurationSeconds: 43200 });
      assert.equal(out.AssumedRoleUser!.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/long-sessions/ado-run-42`);
    });

    it('validates parameters with ValidationError', async function () {
      const token = await idToken(AWS_CONN);
      await sdkError(assume({ WebIdentityToken: token, DurationSeconds: 7200 }), 'ValidationError', 400, 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
      await sdkError(
        assume({ WebIdentityToken: token, DurationSeconds: 600 }),
        'ValidationError',
        400,
        "1 validation error detected: Value '600' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
      );
      await sdkError(
        assume({ WebIdentityToken: token, RoleSessionName: 'my pipeline #7' }),
        'ValidationError',
        400,
        "1 validation error detected: Value 'my pipeline #7' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
      );
      await sdkError(
        assume({ WebIdentityToken: token, RoleSessionName: 'x'.repeat(65), DurationSeconds: 50000 }),
        'ValidationError',
        400,
        /^2 validation errors detected: Value 'x{65}' at 'roleSessionName' .*length less than or equal to 64; Value '50000' at 'durationSeconds' .*less than or equal to 43200$/,
      );
      await sdkError(assume({ WebIdentityToken: token, RoleArn: 'arn:aws:iam::123:role/deploy-prod' }), 'ValidationError', 400, 'Request ARN is invalid');

      const missing = await form({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleSessionName: 'x' });
      assert.equal(missing.status, 400);
      assert.match(missing.body, /<Code>ValidationError<\/Code>/);
      assert.match(missing.body, /3 validation errors detected: Value null at &apos;roleArn&apos; failed to satisfy constraint: Member must not be null; Value &apos;x&apos; at &apos;roleSessionName&apos;/);
      assert.match(missing.body, /Value null at &apos;webIdentityToken&apos;/);
      assert.equal(emu.awsSessions().filter((s) => s.roleSessionName.length > 64).length, 0);
    });

    it("lets the SDK's own web identity provider (AWS_WEB_IDENTITY_TOKEN_FILE) get and use credentials", async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-test-'));
      try {
        const file = path.join(dir, 'token');
        fs.writeFileSync(file, await idToken(AWS_CONN));
        const credentials = fromTokenFile({
          webIdentityTokenFile: file,
          roleArn: ROLE,
          roleSessionName: 'sdk-refresh',
          clientConfig: { region: 'us-east-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1 },
        });
        const c = new STSClient({ region: 'us-east-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1, credentials });
        clients.push(c);
        const who = await c.send(new GetCallerIdentityCommand({}));
        assert.equal(who.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/deploy-prod/sdk-refresh`);
        assert.equal(emu.count('sts.assumeRoleWithWebIdentity'), 1);
        assert.equal(emu.count('sts.getCallerIdentity'), 1);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('GetCallerIdentity', function () {
    let out: AssumeRoleWithWebIdentityCommandOutput;
    before(async function () {
      out = await assume({ WebIdentityToken: await idToken(AWS_CONN), RoleSessionName: 'whoami' });
    });

    it('answers a SigV4-signed call with the assumed-role identity', async function () {
      const who = await client({ credentials: credentialsOf(out) }).send(new GetCallerIdentityCommand({}));
      assert.equal(who.$metadata.httpStatusCode, 200);
      assert.equal(who.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/deploy-prod/whoami`);
      assert.equal(who.UserId, out.AssumedRoleUser!.AssumedRoleId);
      assert.equal(who.Account, ACCOUNT);
      // signed for another region's endpoint too (the scope's region is not checked)
      const eu = new STSClient({ region: 'eu-west-1', endpoint: `${emu.url}/`, requestHandler: handler, maxAttempts: 1, credentials: credentialsOf(out) });
      clients.push(eu);
      assert.equal((await eu.send(new GetCallerIdentityCommand({}))).Account, ACCOUNT);
      assert.equal(emu.count('sts.getCallerIdentity'), 2);
    });

    it('checks the signature, the key, the session token and expiry', async function () {
      const creds = credentialsOf(out);
      const tampered = { ...creds, secretAccessKey: `${creds.secretAccessKey.slice(0, -1)}${creds.secretAccessKey.endsWith('A') ? 'B' : 'A'}` };
      await sdkError(client({ credentials: tampered }).send(new GetCallerIdentityCommand({})), 'SignatureDoesNotMatch', 403, /^The request signature we calculated does not match the signature you provided\./);
      const forgedToken = `IQoJb3JpZ2luX2VjE${crypto.randomBytes(600).toString('base64')}`;
      await sdkError(client({ credentials: { ...creds, sessionToken: forgedToken } }).send(new GetCallerIdentityCommand({})), 'InvalidClientTokenId', 403, 'The security token included in the request is invalid.');
      await sdkError(client({ credentials: { ...creds, sessionToken: undefined } }).send(new GetCallerIdentityCommand({})), 'InvalidClientTokenId', 403);
      await sdkError(client({ credentials: { ...creds, accessKeyId: 'ASIAAAAAAAAAAAAAAAAA' } }).send(new GetCallerIdentityCommand({})), 'InvalidClientTokenId', 403);

      const unsigned = await form({ Action: 'GetCallerIdentity', Version: '2011-06-15' });
      assert.equal(unsigned.status, 403);
      assert.match(unsigned.body, /<Code>MissingAuthenticationToken<\/Code>/);

      const other = await assume({ WebIdentityToken: await idToken(AWS_CONN), RoleSessionName: 'soon-expired' });
      assert.equal(emu.expireAwsSession(other.Credentials!.AccessKeyId), 1);
      await sdkError(client({ credentials: credentialsOf(other) }).send(new GetCallerIdentityCommand({})), 'ExpiredToken', 403, 'The security token included in the request is expired');
      // the first session is untouched
      assert.equal((await client({ credentials: creds }).send(new GetCallerIdentityCommand({}))).Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/deploy-prod/whoami`);
    });

    it('verifies SigV4 itself: a signature over another body or an old date fails', async function () {
      const creds = credentialsOf(out);
      const body = 'Action=GetCallerIdentity&Version=2011-06-15';
      const sign = (amzDate: string, signedBody: string, secret = creds.secretAccessKey) => {
        const date = amzDate.slice(0, 8);
        const host = emu.host;
        const canonical = [
          'POST',
          '/',
          '',
          `content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:${host}\nx-amz-date:${amzDate}\nx-amz-security-token:${creds.sessionToken}\n`,
          'content-type;host;x-amz-date;x-amz-security-token',
          crypto.createHash('sha256').update(signedBody).digest('hex'),
        ].join('\n');
        const scope = `${date}/us-east-1/sts/aws4_request`;
        const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, crypto.createHash('sha256').update(canonical).digest('hex')].join('\n');
        let key = crypto.createHmac('sha256', `AWS4${secret}`).update(date).digest();
        for (const part of ['us-east-1', 'sts', 'aws4_request']) key = crypto.createHmac('sha256', key).update(part).digest();
        const signature = crypto.createHmac('sha256', key).update(toSign).digest('hex');
        return {
          'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
          'X-Amz-Date': amzDate,
          'X-Amz-Security-Token': creds.sessionToken,
          Authorization: `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=${signature}`,
        };
      };
      const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
      const ok = await request('POST', '/', sign(stamp(Date.now()), body), body);
      assert.equal(ok.status, 200, ok.body);
      assert.match(ok.body, new RegExp(`^<GetCallerIdentityResponse xmlns="${STS_NAMESPACE}">\\n  <GetCallerIdentityResult>\\n    <Arn>arn:aws:sts::${ACCOUNT}:assumed-role/deploy-prod/whoami</Arn>`));
      const otherBody = await request('POST', '/', sign(stamp(Date.now()), `${body}&x=1`), body);
      assert.equal(otherBody.status, 403);
      assert.match(otherBody.body, /<Code>SignatureDoesNotMatch<\/Code>/);
      const old = await request('POST', '/', sign(stamp(Date.now() - 20 * 60_000), body), body);
      assert.equal(old.status, 403);
      assert.match(old.body, /<Message>Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)<\/Message>/);
    });
  });

  describe('protocol, faults and counters', function () {
    it('answers unknown actions and versions with InvalidAction, counted as unmatched', async function () {
      const r = await form({ Action: 'GetSessionToken', Version: '2011-06-15' });
      assert.equal(r.status, 400);
      assert.equal(r.headers['content-type'], 'text/xml');
      const requestId = String(r.headers['x-amzn-requestid']);
      assert.equal(
        r.body,
        `<ErrorResponse xmlns="${STS_NAMESPACE}">\n  <Error>\n    <Type>Sender</Type>\n    <Code>InvalidAction</Code>\n    <Message>Could not find operation GetSessionToken for version 2011-06-15</Message>\n  </Error>\n  <RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`,
      );
      const noVersion = await form({ Action: 'GetCallerIdentity' });
      assert.match(noVersion.body, /Could not find operation GetCallerIdentity for version NO_VERSION_SPECIFIED/);
      assert.match((await form({})).body, /<Code>MissingAction<\/Code>/);
      // the body is read as a form only when it says it is one
      const json = await request('POST', '/', { 'Content-Type': 'application/json' }, JSON.stringify({ Action: 'GetCallerIdentity', Version: '2011-06-15' }));
      assert.equal(json.status, 400);
      assert.match(json.body, /<Code>MissingAction<\/Code>/);
      // the query string works as well
      const query = await request('POST', '/?Action=GetCallerIdentity&Version=2011-06-15');
      assert.match(query.body, /<Code>MissingAuthenticationToken<\/Code>/);
      assert.equal((await request('GET', '/')).status, 405);
      assert.equal(emu.counts().unmatched, 5);
      assert.equal(emu.count('sts.getCallerIdentity'), 1);
      emu.resetCounts();
      assert.equal(emu.count('sts.getCallerIdentity'), 0);
    });

    it('injects 503, Throttling and IDPCommunicationError faults; the SDK retries what AWS says is retryable', async function () {
      const token = await idToken(AWS_CONN);
      emu.inject('sts.assumeRoleWithWebIdentity', { kind: 'status', status: 503 });
      const retried = await assume({ WebIdentityToken: token }, client({ maxAttempts: 3 }));
      assert.equal(retried.$metadata.attempts, 2);
      assert.equal(emu.count('sts.assumeRoleWithWebIdentity'), 2);

      emu.inject('sts.assumeRoleWithWebIdentity', { kind: 'status', status: 503 });
      await sdkError(assume({ WebIdentityToken: token }), 'ServiceUnavailable', 503, 'The request has failed due to a temporary failure of the server.');

      emu.inject('sts.assumeRoleWithWebIdentity', stsFault(400, 'Throttling', 'Rate exceeded'));
      await sdkError(assume({ WebIdentityToken: token }), 'Throttling', 400, 'Rate exceeded');
      emu.inject('sts.assumeRoleWithWebIdentity', stsFault(400, 'Throttling', 'Rate exceeded'));
      assert.equal((await assume({ WebIdentityToken: token }, client({ maxAttempts: 2 }))).$metadata.attempts, 2);
      emu.inject('sts.assumeRoleWithWebIdentity', { kind: '429', retryAfterSeconds: 3 });
      await sdkError(assume({ WebIdentityToken: token }), 'Throttling', 429, 'Rate exceeded');

      emu.inject('sts.assumeRoleWithWebIdentity', stsFault(400, 'IDPCommunicationError', 'Couldn\'t retrieve verification key from your identity provider'));
      const idp = await sdkError(assume({ WebIdentityToken: token }), 'IDPCommunicationError', 400);
      assert.ok(idp instanceof IDPCommunicationErrorException);

      emu.inject('sts.getCallerIdentity', { kind: 'reset' });
      await assert.rejects(client({ credentials: { accessKeyId: 'ASIAAAAAAAAAAAAAAAAA', secretAccessKey: 'x'.repeat(40), sessionToken: 'y' } }).send(new GetCallerIdentityCommand({})), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET');
      assert.equal(emu.count('sts.getCallerIdentity'), 1);
      assert.equal(emu.count('sts.assumeRoleWithWebIdentity'), 8); // 2 + 1 + 1 + 2 + 1 + 1
      assert.equal(emu.counts().unmatched, 0);
      assert.throws(() => emu.inject('sts' as never, { kind: 'reset' }), TypeError);
    });

    it('exports the error body for hand-made faults', async function () {
      const body = stsErrorBody('RegionDisabledException', 'STS is not activated in this region for account:123456789012.', { requestId: '00000000-0000-4000-8000-000000000000' });
      assert.equal(
        body,
        `<ErrorResponse xmlns="${STS_NAMESPACE}">\n  <Error>\n    <Type>Sender</Type>\n    <Code>RegionDisabledException</Code>\n    <Message>STS is not activated in this region for account:123456789012.</Message>\n  </Error>\n  <RequestId>00000000-0000-4000-8000-000000000000</RequestId>\n</ErrorResponse>\n`,
      );
      emu.inject('sts.assumeRoleWithWebIdentity', { kind: 'status', status: 403, body, headers: { 'Content-Type': 'text/xml', 'x-amzn-RequestId': '00000000-0000-4000-8000-000000000000' } });
      await sdkError(assume({ WebIdentityToken: await idToken(AWS_CONN) }), 'RegionDisabledException', 403);
    });

    it('keeps every issued secret key and session token in issuedTokens()', function () {
      const secrets = new Set(emu.issuedTokens());
      const sessions = emu.awsSessions();
      assert.ok(sessions.length >= 8, String(sessions.length));
      for (const s of sessions) {
        assert.ok(secrets.has(s.secretAccessKey));
        assert.ok(secrets.has(s.sessionToken));
      }
    });

    it('rejects bad registrations', function () {
      assert.throws(() => emu.addAwsOidcProvider({ url: 'vstoken.dev.azure.com/x', clientIds: [AUDIENCE], accountId: '12345' }), TypeError);
      assert.throws(() => emu.addAwsOidcProvider({ url: 'http://vstoken.dev.azure.com/x', clientIds: [AUDIENCE], accountId: ACCOUNT }), TypeError);
      assert.throws(() => emu.addAwsRole({ arn: 'arn:aws:iam::123456789012:user/bob', trust: { issuer } }), TypeError);
      assert.throws(() => emu.addAwsRole({ arn: ROLE, maxSessionDurationSeconds: 900, trust: { issuer } }), RangeError);
    });
  });
});
