/**
 * The fixes ValidateServiceConnection@1 prints for AWS and Google Cloud: the IAM OIDC provider and
 * trust policy, and the gcloud commands. The JSON is parsed back; each command is split into its
 * arguments by a real POSIX shell (/bin/sh), so quoting of subjects with spaces, quotes and '$' is
 * what a user pasting it gets; the attribute condition is read by the emulator's CEL subset.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { awsTrustFix } from '../../tasks/core/aws/trust';
import { celString, gcpTrustFix } from '../../tasks/core/google/trust';
import { parseCondition } from '../emulator/gcp';

const ORG_ID = '5b1c6b0e-7d3a-4f0e-9c52-1d8e2f4a6b71';
const ISS = `https://vstoken.dev.azure.com/${ORG_ID}`;
const AUD = 'api://AzureADTokenExchange';
const PROVIDER = { name: 'projects/123456789012/locations/global/workloadIdentityPools/azure-pipelines/providers/contoso', projectNumber: '123456789012', poolId: 'azure-pipelines', providerId: 'contoso' };

/** Every word of a command line as a POSIX shell (/bin/sh) splits it: what a user pasting it runs. */
function words(command: string): string[] {
  return execFileSync('/bin/sh', ['-c', `set -- ${command}; for a in "$@"; do printf '%s\\0' "$a"; done`], { encoding: 'utf8' }).split('\0').slice(0, -1);
}

describe('Trust fixes: AWS provider and trust policy, gcloud commands', () => {
  it('AWS: the provider from the token issuer, the account and partition from the role ARN, the trust policy as JSON', () => {
    const f = awsTrustFix('arn:aws:iam::210987654321:role/ci/deploy', { iss: ISS, sub: 'sc://contoso/web/aws-prod', aud: AUD });
    assert.equal(f.providerUrl, `vstoken.dev.azure.com/${ORG_ID}`);
    assert.equal(f.providerArn, `arn:aws:iam::210987654321:oidc-provider/vstoken.dev.azure.com/${ORG_ID}`);
    assert.deepEqual(JSON.parse(f.trustPolicy), {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Federated: `arn:aws:iam::210987654321:oidc-provider/vstoken.dev.azure.com/${ORG_ID}` },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: { StringEquals: { [`vstoken.dev.azure.com/${ORG_ID}:sub`]: 'sc://contoso/web/aws-prod', [`vstoken.dev.azure.com/${ORG_ID}:aud`]: AUD } },
        },
      ],
    });
    assert.deepEqual(words(f.createProviderCommand), ['aws', 'iam', 'create-open-id-connect-provider', '--url', ISS, '--client-id-list', AUD]);
    assert.equal(awsTrustFix('arn:aws-us-gov:iam::210987654321:role/x', { iss: ISS, sub: 's', aud: [AUD] }).providerArn, `arn:aws-us-gov:iam::210987654321:oidc-provider/vstoken.dev.azure.com/${ORG_ID}`);
  });

  it('AWS: a subject with quotes and a backslash stays one JSON string', () => {
    const sub = 'sc://contoso/My "Project"/conn \\ $x';
    const f = awsTrustFix('arn:aws:iam::210987654321:role/deploy', { iss: ISS, sub, aud: AUD });
    const doc = JSON.parse(f.trustPolicy) as { Statement: { Condition: { StringEquals: Record<string, string> } }[] };
    assert.equal(doc.Statement[0].Condition.StringEquals[`vstoken.dev.azure.com/${ORG_ID}:sub`], sub);
  });

  it('Google: create-oidc with issuer, audience, mapping and a condition for exactly this subject; the binding for the service account', () => {
    const sub = 'sc://contoso/web/gcp-prod';
    const f = gcpTrustFix(PROVIDER, { iss: ISS, sub, aud: AUD }, 'deployer@contoso-prod.iam.gserviceaccount.com');
    assert.equal(
      f.providerCommand,
      `gcloud iam workload-identity-pools providers create-oidc contoso --project=123456789012 --location=global --workload-identity-pool=azure-pipelines --issuer-uri=${ISS} --allowed-audiences=${AUD} --attribute-mapping=google.subject=assertion.sub --attribute-condition="assertion.sub=='${sub}'"`,
    );
    const w = words(f.providerCommand);
    assert.equal(w.at(-1), `--attribute-condition=assertion.sub=='${sub}'`);
    assert.deepEqual(parseCondition(w.at(-1)!.slice('--attribute-condition='.length)), [{ attr: 'assertion.sub', op: '==', value: sub }]);
    assert.deepEqual(words(f.bindingCommand!), [
      'gcloud', 'iam', 'service-accounts', 'add-iam-policy-binding', 'deployer@contoso-prod.iam.gserviceaccount.com', '--role=roles/iam.workloadIdentityUser',
      `--member=principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/azure-pipelines/subject/${sub}`,
    ]);
    assert.equal(gcpTrustFix(PROVIDER, { iss: ISS, sub, aud: AUD }).bindingCommand, undefined);
  });

  it('Google: a subject with spaces, quotes, $ and backticks reaches gcloud as one argument, and CEL as the same string', () => {
    const sub = "sc://contoso/My Project/it's \"$HOME\" `id` \\x";
    const f = gcpTrustFix(PROVIDER, { iss: ISS, sub, aud: AUD }, 'deployer@contoso-prod.iam.gserviceaccount.com');
    const w = words(f.providerCommand);
    assert.equal(w.length, 13);
    assert.equal(w.at(-1), `--attribute-condition=assertion.sub==${celString(sub)}`);
    const member = words(f.bindingCommand!).at(-1)!;
    assert.equal(member, `--member=${f.principal}`);
    assert.ok(f.principal.endsWith(`/subject/${sub}`));
  });
});
