/** Google Cloud federation: input validation, the credentials file, and Google's answers explained with the fix. */
import * as assert from 'node:assert/strict';
import * as sinon from 'sinon';
import * as tl from 'azure-pipelines-task-lib/task';
import { CLOUD_PLATFORM_SCOPE, exchangeIdToken, explainStsError, externalAccountFile, GcpProvider, impersonate, impersonationUrl, isGoogleTokenHost } from '../../tasks/core/google/gcp';
import { InputError, TaskFailure } from '../../tasks/core/http/failures';
import { lifetimeInput, projectIdInput, providerInput, scopesInput, serviceAccountInput } from '../../tasks/GcpAuthFederatedV1/inputs';
import type { PipelineContext } from '../../tasks/core/agent/pipeline-context';

const NAME = 'projects/123456789012/locations/global/workloadIdentityPools/azure-pipelines/providers/contoso';
const P: GcpProvider = { name: NAME, projectNumber: '123456789012', poolId: 'azure-pipelines', providerId: 'contoso' };
const SA = 'deployer@my-project.iam.gserviceaccount.com';
const VSTOKEN = { iss: 'https://vstoken.dev.azure.com/8f2a0000-0000-4000-8000-000000000001', sub: 'sc://contoso/web/gcp', aud: 'api://AzureADTokenExchange', exp: 1 };
const ENTRA = { ...VSTOKEN, iss: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0', sub: '/eid1/c/pub/t/v4a/a/b/sc/c' };
const answer = (status: number, body: unknown) => ({ status, headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), url: '', attempts: 1 });
const ctx = (stub: sinon.SinonStub) => ({ http: { request: stub } }) as unknown as PipelineContext;

function withInputs(inputs: Record<string, string>): void {
  sinon.stub(tl, 'getInput').callsFake((name: string) => inputs[name]);
}

function refusal(fn: () => unknown, input: string, patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InputError, String(e));
    assert.equal(e.input, input);
    assert.match(e.message, new RegExp(`^Input '${input}': `));
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

describe('GcpAuthFederated inputs', () => {
  afterEach(() => sinon.restore());

  describe('workloadIdentityProvider', () => {
    it('takes the full name, and the //iam.googleapis.com/ and https: forms of it', () => {
      for (const v of [NAME, `//iam.googleapis.com/${NAME}`, `https://iam.googleapis.com/${NAME}`, `  ${NAME}  `]) {
        sinon.restore();
        withInputs({ workloadIdentityProvider: v });
        assert.deepEqual(providerInput(), P, v);
      }
    });

    it('refuses an empty provider, with an example', () => {
      withInputs({});
      refusal(() => providerInput(), 'workloadIdentityProvider', [/no provider is given/, /Fix: Set workloadIdentityProvider to the provider's full name, e\.g\. projects\/123456789012\/locations\/global/]);
    });

    it('refuses a project id where the number belongs, and says so', () => {
      withInputs({ workloadIdentityProvider: 'projects/my-project/locations/global/workloadIdentityPools/azure-pipelines/providers/contoso' });
      refusal(() => providerInput(), 'workloadIdentityProvider', [/is not a workload identity provider name/, /It takes the project number \(digits\), not the project id\./]);
    });

    const bad = [
      'projects/123/locations/us-east1/workloadIdentityPools/azure-pipelines/providers/contoso',
      'projects/123/locations/global/workloadIdentityPools/ab/providers/contoso',
      'projects/123/locations/global/workloadIdentityPools/Azure-Pipelines/providers/contoso',
      'projects/123/locations/global/workloadIdentityPools/azure-pipelines/providers/contoso-',
      'projects/123/locations/global/workloadIdentityPools/azure-pipelines',
      `${NAME}/extra`,
      'https://evil.example/projects/123/locations/global/workloadIdentityPools/azure-pipelines/providers/contoso',
    ];
    for (const v of bad) {
      it(`refuses ${v}`, () => {
        withInputs({ workloadIdentityProvider: v });
        refusal(() => providerInput(), 'workloadIdentityProvider', [/is not a workload identity provider name/, /Fix: Use projects\/<project number>\/locations\/global\/workloadIdentityPools\/<pool id>\/providers\/<provider id>/]);
      });
    }
  });

  describe('serviceAccount', () => {
    it('is optional', () => {
      withInputs({ serviceAccount: '  ' });
      assert.equal(serviceAccountInput(), undefined);
    });
    for (const v of [SA, '123456789012-compute@developer.gserviceaccount.com', 'contoso-prod@appspot.gserviceaccount.com', 'contoso-prod.example.com@appspot.gserviceaccount.com', 'service-123456789012@gcp-sa-cloudbuild.iam.gserviceaccount.com']) {
      it(`takes '${v}'`, () => {
        withInputs({ serviceAccount: v });
        assert.equal(serviceAccountInput(), v);
      });
    }
    // It stands in the generateAccessToken URL as it is: nothing a URL path would change or end at.
    for (const v of ['deployer', 'deployer@my-project.iam.example.com', 'Deployer@my-project.iam.gserviceaccount.com', 'a b@x.iam.gserviceaccount.com', '@my-project.iam.gserviceaccount.com',
      'a_b@x.iam.gserviceaccount.com', 'a..b@x.iam.gserviceaccount.com', '.a@x.iam.gserviceaccount.com', 'a@x..iam.gserviceaccount.com', 'a@b@x.iam.gserviceaccount.com', 'a%40b@x.iam.gserviceaccount.com',
      'a/b@x.iam.gserviceaccount.com', 'a?b@x.iam.gserviceaccount.com', 'a#b@x.iam.gserviceaccount.com', 'a:b@x.iam.gserviceaccount.com', 'a@x.iam.gserviceaccount.com:generateIdToken', `${'a'.repeat(65)}@x.iam.gserviceaccount.com`, `a@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.iam.gserviceaccount.com`]) {
      it(`refuses '${v}'`, () => {
        withInputs({ serviceAccount: v });
        refusal(() => serviceAccountInput(), 'serviceAccount', [/is not a service account e-mail/, /Fix: Use the e-mail of the service account, e\.g\. deployer@my-project\.iam\.gserviceaccount\.com, or leave it empty/]);
      });
    }
  });

  describe('projectId', () => {
    it('takes a project id, also a domain-scoped one', () => {
      for (const v of ['contoso-prod', 'example.com:contoso-prod']) {
        sinon.restore();
        withInputs({ projectId: v });
        assert.equal(projectIdInput(), v);
      }
    });
    for (const v of ['123456789012', 'Contoso Prod', 'abc', 'contoso-']) {
      it(`refuses '${v}'`, () => {
        withInputs({ projectId: v });
        refusal(() => projectIdInput(), 'projectId', [/is not a Google Cloud project id/, /Fix: Use the project id \(6 to 30 lower-case letters/]);
      });
    }
  });

  describe('accessTokenLifetime', () => {
    const cases: [string | undefined, number][] = [[undefined, 3600], ['300', 300], ['3600s', 3600], ['43200', 43200]];
    for (const [v, n] of cases) {
      it(`reads ${v ?? '(default)'} as ${n}`, () => {
        withInputs(v === undefined ? {} : { accessTokenLifetime: v });
        assert.equal(lifetimeInput(), n);
      });
    }
    for (const v of ['299', '43201', '1h', '3600.5', '-300', '0']) {
      it(`refuses '${v}'`, () => {
        withInputs({ accessTokenLifetime: v });
        refusal(() => lifetimeInput(), 'accessTokenLifetime', [/is not a whole number of seconds from 300 to 43200/, /Fix: Set accessTokenLifetime from 300 to 3600 seconds \(up to 43200 where the organization policy constraints\/iam\.allowServiceAccountCredentialLifetimeExtension lists the service account\)/]);
      });
    }
  });

  describe('accessTokenScopes', () => {
    it('defaults to cloud-platform', () => {
      withInputs({});
      assert.deepEqual(scopesInput(), [CLOUD_PLATFORM_SCOPE]);
    });
    it('expands short names, splits on commas and new lines, drops repeats', () => {
      withInputs({ accessTokenScopes: 'cloud-platform,\nhttps://www.googleapis.com/auth/cloud-platform, userinfo.email\n devstorage.read_only' });
      assert.deepEqual(scopesInput(), [CLOUD_PLATFORM_SCOPE, 'https://www.googleapis.com/auth/userinfo.email', 'https://www.googleapis.com/auth/devstorage.read_only']);
    });
    for (const v of ['http://www.googleapis.com/auth/cloud-platform', 'https://evil.example/auth/x', 'https://www.googleapis.com/cloud-platform', 'https://www.googleapis.com/auth/x?y=1', 'openid/profile']) {
      it(`refuses '${v}'`, () => {
        withInputs({ accessTokenScopes: v });
        refusal(() => scopesInput(), 'accessTokenScopes', [/is not a Google OAuth scope/, /Fix: Give scopes such as https:\/\/www\.googleapis\.com\/auth\/cloud-platform \(or just cloud-platform\), separated by commas or new lines\./]);
      });
    }
  });
});

describe('Google Cloud federation (core/google/gcp)', () => {
  beforeEach(() => { sinon.stub(tl, 'setSecret'); sinon.stub(console, 'log'); });
  afterEach(() => sinon.restore());

  it('sends tokens only to Google\'s two token hosts, over https', () => {
    assert.ok(isGoogleTokenHost('https://sts.googleapis.com/v1/token'));
    assert.ok(isGoogleTokenHost(impersonationUrl(SA)));
    for (const u of ['http://sts.googleapis.com/v1/token', 'https://sts.googleapis.com.evil.example/v1/token', 'https://iam.googleapis.com/', 'https://sts.googleapis.com:8443/v1/token', 'not a url']) assert.ok(!isGoogleTokenHost(u), u);
  });

  it('writes the external_account file of protocols.md section 9, with impersonation', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(externalAccountFile(P, '/agent/_temp/gcp/oidc-token', SA))), {
      type: 'external_account',
      audience: `//iam.googleapis.com/${NAME}`,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: 'https://sts.googleapis.com/v1/token',
      service_account_impersonation_url: 'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/deployer@my-project.iam.gserviceaccount.com:generateAccessToken',
      credential_source: { file: '/agent/_temp/gcp/oidc-token', format: { type: 'text' } },
      universe_domain: 'googleapis.com',
    });
  });

  it('leaves service_account_impersonation_url out without a service account; nothing secret in it', () => {
    const f = externalAccountFile(P, '/t/oidc-token');
    assert.ok(!('service_account_impersonation_url' in f));
    assert.deepEqual(Object.keys(f).sort(), ['audience', 'credential_source', 'subject_token_type', 'token_url', 'type', 'universe_domain']);
  });

  it('exchanges the idToken at STS with the form of section 9, and masks the token', async () => {
    const stub = sinon.stub().resolves(answer(200, { access_token: 'ya29.federated', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3599 }));
    const t = await exchangeIdToken(ctx(stub), P, 'id-token', VSTOKEN);
    assert.equal(t.token, 'ya29.federated');
    assert.ok(Math.abs(t.expiresOn.getTime() - Date.now() - 3599_000) < 5000);
    const req = stub.firstCall.args[0];
    assert.equal(req.url, 'https://sts.googleapis.com/v1/token');
    assert.deepEqual(Object.fromEntries(new URLSearchParams(req.body)), {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      audience: `//iam.googleapis.com/${NAME}`,
      scope: CLOUD_PLATFORM_SCOPE,
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      subject_token: 'id-token',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });
    sinon.assert.calledWith(tl.setSecret as sinon.SinonStub, 'ya29.federated');
  });

  it('impersonates with the federated token, scopes and lifetime, and masks the token', async () => {
    const stub = sinon.stub().resolves(answer(200, { accessToken: 'ya29.sa', expireTime: '2030-01-01T00:00:00Z' }));
    const t = await impersonate(ctx(stub), P, 'ya29.federated', SA, [CLOUD_PLATFORM_SCOPE], 900, VSTOKEN);
    assert.equal(t.token, 'ya29.sa');
    assert.equal(t.expiresOn.toISOString(), '2030-01-01T00:00:00.000Z');
    const req = stub.firstCall.args[0];
    assert.equal(req.url, impersonationUrl(SA));
    assert.equal(req.headers.Authorization, 'Bearer ya29.federated');
    assert.deepEqual(JSON.parse(req.body), { scope: [CLOUD_PLATFORM_SCOPE], lifetime: '900s' });
    sinon.assert.calledWith(tl.setSecret as sinon.SinonStub, 'ya29.sa');
  });

  it('refuses an answer without a token', async () => {
    const stub = sinon.stub().resolves(answer(200, { token_type: 'Bearer' }));
    await assert.rejects(exchangeIdToken(ctx(stub), P, 'id-token', VSTOKEN), (e: unknown) => e instanceof TaskFailure && e.code === 'GCP_NO_TOKEN' && /Fix: Check the agent's proxy/.test(e.message));
  });

  const update = 'gcloud iam workload-identity-pools providers update-oidc contoso --project=123456789012 --location=global --workload-identity-pool=azure-pipelines';
  const sts: [string, string, string, typeof VSTOKEN, string, RegExp[]][] = [
    ['audience', 'invalid_grant', 'The audience in ID Token [api://AzureADTokenExchange] does not match the expected audience.', VSTOKEN, 'GCP_audience', [
      /rejected the idToken's audience for projects\/123456789012\/.*\/providers\/contoso \(invalid_grant\)/,
      /Likely cause: The provider's allowed audiences do not list api:\/\/AzureADTokenExchange/,
      /Fix: Add the audience to the provider \(Workload Identity Federation > the provider > Edit > Audiences > Allowed audiences\), or:/,
      new RegExp(`${update.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')} --allowed-audiences=api://AzureADTokenExchange`),
      /Token audience \(aud\): api:\/\/AzureADTokenExchange/,
      /Google said: invalid_grant: The audience in ID Token/,
    ]],
    ['issuer mismatch, vstoken issuer', 'invalid_grant', 'The issuer in ID Token https://vstoken.dev.azure.com/8f2a does not match the expected issuer.', VSTOKEN, 'GCP_issuer', [
      /rejected the idToken's issuer/,
      /Likely cause: The provider's issuer URI is not the token's issuer\. This connection uses the Azure DevOps issuer \(vstoken\.dev\.azure\.com\/<organization id>\); once it is converted to the Entra issuer, the issuer URI becomes https:\/\/login\.microsoftonline\.com\/<tenant id>\/v2\.0 and the provider must be updated again\./,
      /Fix: Set the provider's issuer URI to https:\/\/vstoken\.dev\.azure\.com\/8f2a0000-0000-4000-8000-000000000001 \(Workload Identity Federation > the provider > Edit > Issuer \(URL\)\), or:/,
      /update-oidc contoso .* --issuer-uri=https:\/\/vstoken\.dev\.azure\.com\/8f2a0000-0000-4000-8000-000000000001/,
      /Issuer URI to configure: https:\/\/vstoken\.dev\.azure\.com\/8f2a0000-0000-4000-8000-000000000001/,
    ]],
    ['issuer mismatch, Entra issuer', 'invalid_grant', 'The issuer in ID Token does not match the expected issuer.', ENTRA, 'GCP_issuer', [
      /Likely cause: The provider's issuer URI is not the token's issuer\. This connection uses the Entra issuer \(login\.microsoftonline\.com\/<tenant id>\/v2\.0\); a provider made for the older issuer \(https:\/\/vstoken\.dev\.azure\.com\/<organization id>\) does not match it\./,
      /Fix: Set the provider's issuer URI to https:\/\/login\.microsoftonline\.com\/72f988bf-86f1-41af-91ab-2d7cd011db47\/v2\.0 /,
      /--issuer-uri=https:\/\/login\.microsoftonline\.com\/72f988bf-86f1-41af-91ab-2d7cd011db47\/v2\.0/,
      /Token subject \(sub\):  \/eid1\/c\/pub\/t\/v4a\/a\/b\/sc\/c/,
    ]],
    ['unknown or disabled provider', 'invalid_target', 'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.', VSTOKEN, 'GCP_invalid_target', [
      /does not know the workload identity provider projects\/123456789012\/.*\/providers\/contoso \(invalid_target\)/,
      /Likely cause: The pool or the provider does not exist, is disabled, or was deleted \(a deleted one can be undeleted for 30 days\); or the project number is wrong/,
      /Fix: Check workloadIdentityProvider against IAM & Admin > Workload Identity Federation; enable or undelete the pool and the provider, or:/,
      /gcloud iam workload-identity-pools providers describe contoso --project=123456789012 --location=global --workload-identity-pool=azure-pipelines/,
    ]],
    ['attribute condition', 'unauthorized_client', 'The given credential is rejected by the attribute condition.', VSTOKEN, 'GCP_unauthorized_client', [
      /the provider's attribute condition does not accept it \(unauthorized_client\)/,
      /Fix: Correct the attribute condition; one that accepts exactly this connection:/,
      /^ {2}assertion\.sub == 'sc:\/\/contoso\/web\/gcp'$/m,
      /update-oidc contoso .* --attribute-condition="assertion\.sub == 'sc:\/\/contoso\/web\/gcp'"/,
      /Google said: unauthorized_client: The given credential is rejected by the attribute condition\./,
    ]],
  ];
  for (const [title, error, description, claims, code, patterns] of sts) {
    it(`explains STS ${title}, with the fix`, async () => {
      const stub = sinon.stub().resolves(answer(400, { error, error_description: description }));
      await assert.rejects(exchangeIdToken(ctx(stub), P, 'id-token-secret', claims), (e: unknown) => {
        assert.ok(e instanceof TaskFailure);
        assert.equal(e.code, code);
        for (const p of patterns) assert.match(e.message, p);
        assert.doesNotMatch(e.message, /id-token-secret/);
        return true;
      });
      sinon.assert.calledOnce(stub);
    });
  }

  it('explains an expired idToken, and anything else with the claims to compare', () => {
    assert.match(explainStsError('invalid_grant', 'ID Token has expired.', P, VSTOKEN).message, /Fix: Re-run the step; for long jobs keep createCredentialsFile and keepTokenFileFresh on/);
    const other = explainStsError('invalid_request', 'odd', P, VSTOKEN);
    assert.equal(other.code, 'GCP_invalid_request');
    assert.match(other.message, /Fix: Compare the provider's issuer, allowed audiences, attribute mapping and condition with the token's claims below\./);
  });

  it('explains getAccessToken denied: the binding to grant, for this principal', async () => {
    const stub = sinon.stub().resolves(answer(403, { error: { code: 403, message: 'Permission \'iam.serviceAccounts.getAccessToken\' denied on resource (or it may not exist).', status: 'PERMISSION_DENIED' } }));
    await assert.rejects(impersonate(ctx(stub), P, 'ya29.federated', SA, [CLOUD_PLATFORM_SCOPE], 3600, VSTOKEN), (e: unknown) => {
      assert.ok(e instanceof TaskFailure);
      assert.equal(e.code, 'GCP_PERMISSION_DENIED');
      assert.match(e.message, /did not let the federated principal impersonate deployer@my-project\.iam\.gserviceaccount\.com \(PERMISSION_DENIED\)/);
      assert.match(e.message, /Likely cause: The principal lacks roles\/iam\.workloadIdentityUser on the service account/);
      assert.match(e.message, /Fix: Grant it once \(IAM & Admin > Service Accounts > the account > Principals with access > Grant access\), or:/);
      assert.match(e.message, /gcloud iam service-accounts add-iam-policy-binding deployer@my-project\.iam\.gserviceaccount\.com --role=roles\/iam\.workloadIdentityUser --member=principal:\/\/iam\.googleapis\.com\/projects\/123456789012\/locations\/global\/workloadIdentityPools\/azure-pipelines\/subject\/sc:\/\/contoso\/web\/gcp/);
      assert.doesNotMatch(e.message, /ya29\.federated/);
      return true;
    });
  });

  // Google's refusals other than its own error codes: the advice is Google's, never Azure DevOps's.
  const googleStatuses: [string, () => Promise<unknown>, number, object, RegExp, RegExp][] = [
    ['STS 403 (API disabled or an organisation policy)', () => exchangeIdToken(ctx(sinon.stub().resolves(answer(403, { error: { code: 403, message: 'Security Token Service API has not been used in project 123456789012 before or it is disabled.', status: 'PERMISSION_DENIED' } }))), P, 'id-token', VSTOKEN), 403, {}, /Security Token Service API is disabled in the project of the workload identity pool/, /gcloud services enable sts\.googleapis\.com/],
    ['STS 404 (no such provider)', () => exchangeIdToken(ctx(sinon.stub().resolves(answer(404, { error: { code: 404, message: 'Not found', status: 'NOT_FOUND' } }))), P, 'id-token', VSTOKEN), 404, {}, /Google does not know the workload identity provider 'projects\/123456789012\//, /Check workloadIdentityProvider: projects\/<project number>/],
    ['IAM 403 (API disabled)', () => impersonate(ctx(sinon.stub().resolves(answer(403, { error: { code: 403, message: 'IAM Service Account Credentials API has not been used in project 42 before or it is disabled.', status: 'PERMISSION_DENIED' } }))), P, 'ya29.federated', SA, [CLOUD_PLATFORM_SCOPE], 3600, VSTOKEN), 403, {}, /IAM Service Account Credentials API is disabled in the service account's project/, /gcloud services enable iamcredentials\.googleapis\.com/],
    ['IAM 404 (no such service account)', () => impersonate(ctx(sinon.stub().resolves(answer(404, { error: { code: 404, message: 'Not found; Gaia id not found for email deployer@my-project.iam.gserviceaccount.com', status: 'NOT_FOUND' } }))), P, 'ya29.federated', SA, [CLOUD_PLATFORM_SCOPE], 3600, VSTOKEN), 404, {}, /The service account 'deployer@my-project\.iam\.gserviceaccount\.com' does not exist/, /Check serviceAccount/],
    ['IAM 401 (federated token refused)', () => impersonate(ctx(sinon.stub().resolves(answer(401, { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } }))), P, 'ya29.federated', SA, [CLOUD_PLATFORM_SCOPE], 3600, VSTOKEN), 401, {}, /did not accept the federated access token/, /check that the pool and provider are enabled/],
  ];
  for (const [title, call, status, , cause, fix] of googleStatuses) {
    it(`explains ${title} with Google's cause and fix, not Azure DevOps's`, async () => {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof TaskFailure);
        assert.equal(e.code, `HTTP_${status}`);
        assert.match(e.message, cause);
        assert.match(e.message, fix);
        assert.doesNotMatch(e.message, /service connection > Security|job authorization scope|status\.dev\.azure\.com/);
        return true;
      });
    });
  }

  it('points a 503 that outlasts the retries at Google\'s status page', async () => {
    await assert.rejects(exchangeIdToken(ctx(sinon.stub().resolves(answer(503, { error: { code: 503, message: 'unavailable', status: 'UNAVAILABLE' } }))), P, 'id-token', VSTOKEN), (e: unknown) => {
      assert.ok(e instanceof TaskFailure);
      assert.match(e.message, /https:\/\/status\.cloud\.google\.com/);
      assert.doesNotMatch(e.message, /status\.dev\.azure\.com/);
      return true;
    });
  });
});
