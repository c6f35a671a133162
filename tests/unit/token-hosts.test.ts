import * as assert from 'node:assert/strict';
import { checkAzureDevOpsUrl, isAwsStsHost, originOf } from '../../tasks/core/http/token-hosts';
import { TaskFailure } from '../../tasks/core/http/failures';
import { redactProxyUrl } from '../../tasks/core/http/http';

describe('Where tokens may go', () => {
  it('AWS STS hosts: regional, global, FIPS, China, dual-stack and VPC endpoints; nothing else', () => {
    for (const h of ['sts.amazonaws.com', 'sts.us-east-1.amazonaws.com', 'sts-fips.us-gov-west-1.amazonaws.com', 'sts.cn-north-1.amazonaws.com.cn', 'sts.eu-west-1.api.aws', 'vpce-0123abcd-xyz.sts.eu-west-1.vpce.amazonaws.com', 'STS.US-EAST-1.AMAZONAWS.COM']) {
      assert.ok(isAwsStsHost(h), h);
    }
    for (const h of ['127.0.0.1', 'sts.amazonaws.com.evil.example', 'evilsts.amazonaws.com', 'sts.us-east-1.amazonaws.com.', 'amazonaws.com', 's3.amazonaws.com', 'sts.example.com']) {
      assert.ok(!isAwsStsHost(h), h);
    }
  });

  it('the job token goes only to the origin of the SystemVssConnection endpoint', () => {
    const org = 'https://dev.azure.com';
    assert.equal(checkAzureDevOpsUrl('https://dev.azure.com/contoso/_apis/x', org, 'System.OidcRequestUri'), 'https://dev.azure.com/contoso/_apis/x');
    assert.equal(checkAzureDevOpsUrl('https://DEV.azure.com/contoso/_apis/x', org, 'System.OidcRequestUri'), 'https://DEV.azure.com/contoso/_apis/x');
    for (const bad of ['https://dev.azure.com.evil.example/x', 'https://127.0.0.1:9/x', 'http://dev.azure.com/x', 'https://dev.azure.com:8443/x', 'file:///etc/passwd', 'not a url']) {
      assert.throws(() => checkAzureDevOpsUrl(bad, org, 'System.OidcRequestUri'), (e: unknown) => e instanceof TaskFailure && e.code === 'TOKEN_HOST' && /System\.OidcRequestUri/.test(e.message), bad);
    }
    // Azure DevOps Server over http: the agent's own server, so the same origin is allowed.
    assert.ok(checkAzureDevOpsUrl('http://tfs:8080/tfs/DefaultCollection/_apis/x', 'http://tfs:8080', 'System.CollectionUri'));
    // With no endpoint known, plain http is never allowed.
    assert.throws(() => checkAzureDevOpsUrl('http://tfs:8080/x', undefined, 'System.CollectionUri'), /not https/);
  });

  it('origins and proxy names carry no path and no credentials', () => {
    assert.equal(originOf('https://dev.azure.com/contoso/'), 'https://dev.azure.com');
    assert.equal(originOf('ftp://x/'), undefined);
    assert.equal(redactProxyUrl('http://user:s3cret@proxy.corp:3128/'), 'http://proxy.corp:3128');
    assert.doesNotMatch(redactProxyUrl('http://user:s3cret@proxy.corp:3128'), /s3cret|user/);
  });
});
