/** ARM action matching, missing actions of a role, and the summary's markdown. */
import * as assert from 'node:assert/strict';
import { actionMatches, allows, missingActions, Permission } from '../../tasks/core/azure/arm';
import { renderSummary, logLines, writeSummary } from '../../tasks/core/agent/summary';
import { vstokenRetirementApplies } from '../../tasks/core/devops/claims';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ACR_PUSH = { id: '/x/8311e382-0749-4cb8-b61a-304f252e45ec', name: '8311e382-0749-4cb8-b61a-304f252e45ec', roleName: 'AcrPush', permissions: [{ actions: ['Microsoft.ContainerRegistry/registries/pull/read', 'Microsoft.ContainerRegistry/registries/push/write'], notActions: [] }] };

describe('ARM permissions', () => {
  it('matches actions with wildcards, case-insensitively', () => {
    assert.ok(actionMatches('*', 'Microsoft.ContainerRegistry/registries/push/write'));
    assert.ok(actionMatches('*/read', 'Microsoft.ContainerRegistry/registries/pull/read'));
    assert.ok(actionMatches('Microsoft.ContainerRegistry/*', 'microsoft.containerregistry/registries/push/write'));
    assert.ok(!actionMatches('*/read', 'Microsoft.ContainerRegistry/registries/push/write'));
  });

  it('subtracts notActions within the same role', () => {
    const contributor: Permission[] = [{ actions: ['*'], notActions: ['Microsoft.Authorization/*/Write', 'Microsoft.Authorization/*/Delete'] }];
    assert.ok(allows(contributor, 'Microsoft.ContainerRegistry/registries/push/write'));
    assert.ok(!allows(contributor, 'Microsoft.Authorization/roleAssignments/write'));
  });

  it('names each action of a role the caller lacks', () => {
    const pullOnly: Permission[] = [{ actions: ['Microsoft.ContainerRegistry/registries/pull/read'], notActions: [] }, { actions: ['*/read'], notActions: [] }];
    assert.deepEqual(missingActions(ACR_PUSH, pullOnly), ['Microsoft.ContainerRegistry/registries/push/write']);
    assert.deepEqual(missingActions(ACR_PUSH, [{ actions: ['*'], notActions: [] }]), []);
  });
});

describe('validation summary', () => {
  const rows = [
    { check: 'Scheme', status: 'pass' as const, summary: 'Workload identity federation.', evidence: [] },
    { check: 'Entra ID exchange', status: 'fail' as const, summary: 'AADSTS700213 | pipes <b>', evidence: ['subject: sc://a/b/c'], fix: 'Copy the subject.', links: [{ title: 'App (credentials)', url: 'https://portal.azure.com/#view/x' }] },
  ];

  it('renders a table a person can read, escaping what services sent', () => {
    const md = renderSummary({ title: 'Service connection prod', status: 'error', facts: [['Tenant', 't-1']], links: [{ title: 'Azure DevOps', url: 'https://dev.azure.com/o/p/_settings/adminservices?resourceId=1' }] }, rows);
    assert.match(md, /^## Service connection prod$/m);
    assert.match(md, /\*\*✖ The connection has problems that will fail deployments\.\*\*/);
    assert.match(md, /^\| Check \| Result \| What was found \| Fix \|$/m);
    assert.match(md, /^\| Entra ID exchange \| ✖ fail \| AADSTS700213 \\\| pipes &lt;b&gt;<br>subject: `sc:\/\/a\/b\/c` \| Copy the subject\.<br>\[App \(credentials\)\]\(https:\/\/portal\.azure\.com\/#view\/x\) \|$/m);
    assert.match(md, /\[Azure DevOps\]\(https:\/\/dev\.azure\.com\/o\/p\/_settings\/adminservices\?resourceId=1\)/);
  });

  it('a name from outside cannot make a link: markdown rendered by marked holds only the summary\'s own links', async () => {
    const evil = 'x](https://evil.example) [y www.evil.example';
    const md = renderSummary({ title: `Service connection ${evil}`, status: 'error', facts: [['Name', evil]], links: [] }, [{ check: evil, status: 'fail' as const, summary: evil, evidence: [evil], fix: evil }]);
    const { marked } = (await import('marked')) as typeof import('marked');
    const html = await marked.parse(md);
    assert.doesNotMatch(html, /href=/, html);
    assert.ok(html.replace(/<[^>]*>/g, '').includes(evil), `the text is still shown: ${html}`);
  });

  it('logs one line per check', () => {
    assert.deepEqual(logLines(rows), ['PASS     Scheme: Workload identity federation.', 'FAIL     Entra ID exchange: AADSTS700213 | pipes <b>  Fix: Copy the subject.']);
  });

  it('names the checks that could not run under the verdict', () => {
    const notRun = [...rows, { check: 'Secret expiry', status: 'skipped' as const, summary: 'Could not run: Microsoft Graph could not be reached.', evidence: [], notRun: true }];
    assert.match(renderSummary({ title: 't', status: 'error', facts: [], links: [] }, notRun), /^Could not be checked in this run \(see each row for why\): Secret expiry\.$/m);
    assert.doesNotMatch(renderSummary({ title: 't', status: 'error', facts: [], links: [] }, rows), /Could not be checked/);
  });

  it('writes the file in the directory given, with a name that cannot leave it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-unit-summary-'));
    try {
      const file = writeSummary(dir, 'service-connection-../../x y', '# t\n');
      assert.equal(path.dirname(file), dir);
      assert.equal(path.basename(file), 'service-connection-______x_y.md');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('vstoken issuer retirement', () => {
  it('applies to the vstoken issuer on the public cloud only', () => {
    const vstoken = 'https://vstoken.dev.azure.com/5b1c6b0e-7d3a-4f0e-9c52-1d8e2f4a6b71';
    assert.ok(vstokenRetirementApplies(vstoken, 'AzureCloud'));
    assert.ok(!vstokenRetirementApplies(vstoken, 'AzureUSGovernment'));
    assert.ok(!vstokenRetirementApplies(vstoken, 'AzureChinaCloud'));
    assert.ok(!vstokenRetirementApplies(vstoken, 'AzureStack'));
    assert.ok(!vstokenRetirementApplies('https://login.microsoftonline.com/t/v2.0', 'AzureCloud'));
  });
});
