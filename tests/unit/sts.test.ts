/** STS answers, explained; transient ones retried; credentials masked. */
import * as assert from 'node:assert/strict';
import * as sinon from 'sinon';
import * as tl from 'azure-pipelines-task-lib/task';
import { assumeRoleWithWebIdentity, trustPolicyFor, xmlText } from '../../tasks/core/aws/sts';
import { TaskFailure } from '../../tasks/core/http/failures';
import type { PipelineContext } from '../../tasks/core/agent/pipeline-context';

const NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const error = (code: string, message: string) => `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`;
const OK = `<AssumeRoleWithWebIdentityResponse xmlns="${NS}"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAEXAMPLE000000001</AccessKeyId><SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey><SessionToken>FwoGZXIvYXdzE&amp;xyz</SessionToken><Expiration>2030-01-01T01:00:00Z</Expiration></Credentials><SubjectFromWebIdentityToken>sc://contoso/web/aws</SubjectFromWebIdentityToken><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/deploy/s</Arn><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser><Provider>vstoken.dev.azure.com/org</Provider></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`;
const answer = (status: number, body: string) => ({ status, headers: { 'content-type': 'text/xml' }, body, url: '', attempts: 1 });
const claims = { iss: 'https://vstoken.dev.azure.com/org', sub: 'sc://contoso/web/aws', aud: 'api://AzureADTokenExchange', exp: 1 };
const request = { endpoint: 'https://sts.us-east-1.amazonaws.com/', roleArn: 'arn:aws:iam::123456789012:role/deploy', roleSessionName: 's', durationSeconds: 3600, webIdentityToken: 'id-token', claims };
const ctx = (stub: sinon.SinonStub) => ({ http: { request: stub } }) as unknown as PipelineContext;
const noSleep = async () => undefined;

describe('AWS STS', () => {
  beforeEach(() => { sinon.stub(tl, 'setSecret'); sinon.stub(console, 'log'); });
  afterEach(() => sinon.restore());

  it('posts the form and returns masked credentials', async () => {
    const stub = sinon.stub().resolves(answer(200, OK));
    const c = await assumeRoleWithWebIdentity(ctx(stub), request, noSleep);
    assert.equal(c.sessionToken, 'FwoGZXIvYXdzE&xyz');
    assert.equal(c.assumedRoleArn, 'arn:aws:sts::123456789012:assumed-role/deploy/s');
    const form = Object.fromEntries(new URLSearchParams(stub.firstCall.args[0].body));
    assert.deepEqual(form, { Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: request.roleArn, RoleSessionName: 's', DurationSeconds: '3600', WebIdentityToken: 'id-token' });
    sinon.assert.calledWith(tl.setSecret as sinon.SinonStub, 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
    sinon.assert.calledWith(tl.setSecret as sinon.SinonStub, 'FwoGZXIvYXdzE&xyz');
  });

  it('retries IDPCommunicationError and Throttling (HTTP 400 at STS), then succeeds', async () => {
    const stub = sinon.stub();
    stub.onCall(0).resolves(answer(400, error('IDPCommunicationError', 'could not reach the IdP')));
    stub.onCall(1).resolves(answer(400, error('Throttling', 'Rate exceeded')));
    stub.onCall(2).resolves(answer(200, OK));
    await assumeRoleWithWebIdentity(ctx(stub), request, noSleep);
    sinon.assert.calledThrice(stub);
  });

  const cases: [string, RegExp[]][] = [
    ['InvalidIdentityToken', [/no IAM OIDC identity provider/, /provider URL https:\/\/vstoken\.dev\.azure\.com\/org/, /Provider URL to create: vstoken\.dev\.azure\.com\/org/]],
    ['AccessDenied', [/trust policy/, /"Federated": "arn:aws:iam::123456789012:oidc-provider\/vstoken\.dev\.azure\.com\/org"/, /"vstoken\.dev\.azure\.com\/org:sub": "sc:\/\/contoso\/web\/aws"/, /"vstoken\.dev\.azure\.com\/org:aud": "api:\/\/AzureADTokenExchange"/]],
    ['ExpiredTokenException', [/expired/, /exportWebIdentityFile/]],
    ['RegionDisabledException', [/Activate STS for the region/]],
  ];
  for (const [code, patterns] of cases) {
    it(`explains ${code}, without retrying`, async () => {
      const stub = sinon.stub().resolves(answer(code === 'AccessDenied' ? 403 : 400, error(code, 'nope')));
      await assert.rejects(assumeRoleWithWebIdentity(ctx(stub), request, noSleep), (e: unknown) => {
        assert.ok(e instanceof TaskFailure);
        for (const p of patterns) assert.match(e.message, p);
        assert.doesNotMatch(e.message, /id-token/);
        return true;
      });
      sinon.assert.calledOnce(stub);
    });
  }

  it('reads XML text with entities, and builds a matching trust policy', () => {
    assert.equal(xmlText('<a><Code>x&amp;y</Code></a>', 'Code'), 'x&y');
    assert.equal(JSON.parse(trustPolicyFor('arn:aws-us-gov:iam::123456789012:role/r', claims)).Principal.Federated, 'arn:aws-us-gov:iam::123456789012:oidc-provider/vstoken.dev.azure.com/org');
  });
});
