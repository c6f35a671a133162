import * as assert from 'node:assert/strict';
import { azureDevOpsHosts, checkAzureDevOpsUrl, isAwsStsHost, originOf } from '../../tasks/core/http/token-hosts';
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

  it('the job token goes only to this organization\'s Azure DevOps, anchored at the SystemVssConnection endpoint', () => {
    const build = azureDevOpsHosts('https://dev.azure.com/contoso/');
    // A classic release: the endpoint is the Release Management host, the collection is not.
    const release = azureDevOpsHosts('https://vsrm.dev.azure.com/contoso/');
    const oldStyle = azureDevOpsHosts('https://contoso.vsrm.visualstudio.com/');
    for (const hosts of [build, release, oldStyle]) {
      for (const ok of [
        'https://dev.azure.com/contoso/p/_apis/distributedtask/hubs/release/plans/x/jobs/y/oidctoken',
        'https://vsrm.dev.azure.com/contoso/p/_apis/distributedtask/hubs/release/plans/x/jobs/y/oidctoken',
        'https://DEV.azure.com/Contoso/_apis/x',
        'https://contoso.visualstudio.com/p/_apis/x',
        'https://contoso.vsrm.visualstudio.com/p/_apis/x',
      ]) {
        assert.equal(checkAzureDevOpsUrl(ok, hosts, 'System.OidcRequestUri'), new URL(ok).href);
      }
      for (const bad of [
        'https://dev.azure.com/fabrikam/p/_apis/x', // another organization on the shared host
        'https://vsrm.dev.azure.com/fabrikam/_apis/x',
        'https://dev.azure.com/contosoevil/_apis/x',
        'https://fabrikam.vsrm.visualstudio.com/x',
        'https://dev.azure.com.evil.example/contoso/x',
        'https://127.0.0.1:9/contoso/x',
        'http://dev.azure.com/contoso/x',
        'https://dev.azure.com:8443/contoso/x',
        'https://attacker.example/collect',
        'file:///etc/passwd',
        'not a url',
      ]) {
        assert.throws(() => checkAzureDevOpsUrl(bad, hosts, 'System.OidcRequestUri'), (e: unknown) => e instanceof TaskFailure && e.code === 'TOKEN_HOST' && /System\.OidcRequestUri/.test(e.message), bad);
      }
    }
    // The collection variable cannot move the anchor: a System.CollectionUri set by a pipeline
    // variable is refused, not trusted.
    const moved = azureDevOpsHosts('https://vsrm.dev.azure.com/contoso/');
    assert.throws(() => checkAzureDevOpsUrl('https://attacker.example/contoso/_apis/x', moved, 'System.CollectionUri'), /attacker\.example.*not at this organization's Azure DevOps/);
    // Azure DevOps Server serves the collection and Release Management from one server, maybe over http.
    const server = azureDevOpsHosts('http://tfs:8080/tfs/');
    assert.ok(checkAzureDevOpsUrl('http://tfs:8080/tfs/DefaultCollection/_apis/x', server, 'System.CollectionUri'));
    assert.throws(() => checkAzureDevOpsUrl('https://tfs:8080/x', server, 'System.CollectionUri'), /TOKEN|not at this organization/);
    assert.throws(() => checkAzureDevOpsUrl('http://other:8080/x', server, 'System.CollectionUri'), /not at this organization/);
    // With neither the endpoint nor the collection known, nothing receives the token.
    // Without the endpoint's URL nothing receives the token: System.CollectionUri is a variable.
    assert.equal(azureDevOpsHosts(undefined), undefined);
    assert.throws(() => checkAzureDevOpsUrl('https://dev.azure.com/contoso/x', undefined, 'System.CollectionUri'), /cannot tell this organization's Azure DevOps: the agent did not give the SystemVssConnection endpoint's URL/);
    // What is sent is what was checked: a URL that parsers read differently goes out as Node parsed it.
    const server2 = azureDevOpsHosts('http://localhost:18080/tfs/');
    assert.equal(checkAzureDevOpsUrl('http://localhost:18080\\@127.0.0.1:18081/tfs/x', server2, 'System.OidcRequestUri'), 'http://localhost:18080/@127.0.0.1:18081/tfs/x');
    // An encoded separator could name another organisation once the server decodes it.
    for (const bad of ['https://dev.azure.com/contoso/..%2Ffabrikam/_apis/x', 'https://dev.azure.com/contoso/%2e%2e/fabrikam/x', 'https://dev.azure.com/contoso/a%5C..%5Cb']) {
      assert.throws(() => checkAzureDevOpsUrl(bad, build, 'System.OidcRequestUri'), /encoded|not at this organization/, bad);
    }
  });

  it('origins and proxy names carry no path and no credentials', () => {
    assert.equal(originOf('https://dev.azure.com/contoso/'), 'https://dev.azure.com');
    assert.equal(originOf('ftp://x/'), undefined);
    assert.equal(redactProxyUrl('http://user:s3cret@proxy.corp:3128/'), 'http://proxy.corp:3128');
    assert.doesNotMatch(redactProxyUrl('http://user:s3cret@proxy.corp:3128'), /s3cret|user/);
  });
});
