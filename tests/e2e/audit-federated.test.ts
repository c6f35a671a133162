/**
 * AuditServiceConnections@1 with the extension's own connection types in the project: left out by
 * the default types, listed with connectionTypes `all` or by name (any case), each with the
 * Azure DevOps issuer, what to review at its target (from the settings the list API returns in
 * authorization.parameters and the URL), no secret to expire, and the action none unless not ready
 * or unused. The summary is rendered: only the product's own links.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { startEmulator, Emulator } from '../emulator/index';
import { E2eRuns, TENANT } from '../helpers/e2e';
import { TaskRun } from '../helpers/task-process';
import { assertOnlyOwnLinks, renderers, visibleText } from '../helpers/markdown-links';

const DAY = 86_400_000;
const iso = (days: number) => new Date(Date.now() + days * DAY).toISOString();
const ROLE = 'arn:aws:iam::123456789012:role/deploy';
const PROVIDER = 'projects/987654321098/locations/global/workloadIdentityPools/azure-pipelines/providers/contoso';
const SA = 'deployer@contoso-prod.iam.gserviceaccount.com';

interface Row { name: string; type: string; scheme: string; issuer: string; action: string; severity: string; why: string; fix: string; review?: string; credentialEnd: string; link?: string }

describe('E2E AuditServiceConnections@1 with AWS, Google Cloud and OpenID Connect connections', function () {
  this.timeout(60_000);
  let emu: Emulator;
  const e2e = new E2eRuns(() => emu);
  const used = { pipeline: 'deploy-prod', runName: '20260701.3', result: 'succeeded', finishTime: iso(-2) } as const;

  before(async () => {
    emu = await startEmulator();
    const add = (name: string, type: string, parameters: Record<string, string>, extra: Record<string, unknown> = {}) =>
      emu.addServiceConnection({ id: crypto.randomUUID(), name, type, scheme: 'None', tenantId: '', clientId: '', parameters, lastUsed: used, ...extra });
    add('aws-prod', 'WorkloadIdentityAws', { roleArn: ROLE, region: 'eu-west-1', maxSessionDuration: '3600' });
    add('gcp-prod', 'WorkloadIdentityGcp', { workloadIdentityProvider: PROVIDER, serviceAccount: SA });
    add('vault', 'WorkloadIdentityOidc', { description: 'Vault' }, { url: 'https://vault.contoso.com/' });
    add('vault-ci', 'WorkloadIdentityVault', { namespace: 'team-a', authMount: 'azure-devops', role: 'ci' }, { url: 'https://vault.contoso.com:8200' });
    add('aws-unused', 'WorkloadIdentityAws', { roleArn: ROLE }, { lastUsed: undefined });
    add('gcp-broken', 'WorkloadIdentityGcp', { workloadIdentityProvider: PROVIDER }, { isReady: false, operationStatus: { state: 'Failed', statusMessage: 'Could not save' } });
    emu.addServiceConnection({ id: crypto.randomUUID(), name: 'arm-fed', scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: crypto.randomUUID(), issuerMode: 'entra', lastUsed: used });
  });
  after(async () => {
    await emu?.stop();
  });
  afterEach(function () {
    e2e.endTest(this.currentTest?.title);
  });

  function audit(inputs: Record<string, string>): Promise<TaskRun> {
    return e2e.run({ task: 'AuditServiceConnectionsV1', inputs, env: { WORKLOADIDENTITY_HTTPRETRIES: '1' } });
  }
  function rows(r: TaskRun): Row[] {
    assert.ok(r.variables.reportJsonPath?.value, r.stdout + r.stderr);
    return (JSON.parse(fs.readFileSync(r.variables.reportJsonPath.value, 'utf8')) as { rows: Row[] }).rows;
  }
  const byName = (all: Row[], name: string) => {
    const row = all.find((x) => x.name === name);
    assert.ok(row, `a row for ${name}: ${all.map((x) => x.name).join(', ')}`);
    return row;
  };

  it('the default types leave them out', async () => {
    const r = await audit({});
    assert.deepEqual(rows(r).map((x) => x.name), ['arm-fed']);
  });

  it('connectionTypes all: each with the vstoken issuer, what to review, no secret, action none unless not ready or unused; the summary lists them with only own links', async () => {
    const r = await audit({ connectionTypes: 'all' });
    assert.equal(r.result, 'Succeeded', r.stdout + r.stderr);
    const all = rows(r);
    assert.equal(all.length, 7);
    const aws = byName(all, 'aws-prod');
    assert.deepEqual([aws.type, aws.scheme, aws.issuer, aws.action, aws.credentialEnd], ['WorkloadIdentityAws', 'None', 'vstoken', 'none', 'none (no secret)']);
    assert.match(aws.review ?? '', new RegExp(`^AWS role ${ROLE.replace(/[/.]/g, '\\$&')} \\(region eu-west-1\\): .*subject sc://contoso/web/aws-prod\\.$`));
    assert.match(aws.why, /the 2027-07-01 retirement announced by Microsoft concerns the issuer of Azure Resource Manager connections \(backed by Microsoft Entra ID\), and nothing is announced for connections of other types/);
    assert.doesNotMatch(aws.why, /retires on|convert/i, 'no conversion offered, no date invented for these');
    assert.match(byName(all, 'gcp-prod').review ?? '', new RegExp(`^Google workload identity provider ${PROVIDER.replace(/[/.]/g, '\\$&')} and service account ${SA.replace(/[.]/g, '\\.')}`));
    assert.match(byName(all, 'vault').review ?? '', /^OpenID Connect service https:\/\/vault\.contoso\.com\/: .*well-known\/jwks/);
    assert.equal(byName(all, 'vault').action, 'none');
    const vault = byName(all, 'vault-ci');
    assert.deepEqual([vault.type, vault.scheme, vault.issuer, vault.action, vault.credentialEnd], ['WorkloadIdentityVault', 'None', 'vstoken', 'none', 'none (no secret)']);
    assert.match(vault.review ?? '', /^HashiCorp Vault https:\/\/vault\.contoso\.com:8200 namespace team-a, auth\/azure-devops role ci: .*bound_subject\) must accept .*subject sc:\/\/contoso\/web\/vault-ci\.$/);
    assert.equal(byName(all, 'aws-unused').action, 'remove-unused');
    assert.match(byName(all, 'aws-unused').why, /Never used.*nothing is announced for connections of other types/);
    const broken = byName(all, 'gcp-broken');
    assert.deepEqual([broken.action, broken.severity], ['fix-rotation', 'error']);
    assert.doesNotMatch(broken.fix, /app/);
    assert.equal(byName(all, 'arm-fed').review, undefined);
    const csv = fs.readFileSync(r.variables.reportCsvPath.value, 'utf8');
    assert.match(csv.split('\r\n')[0], /,link,review$/);
    const md = fs.readFileSync(r.commands.find((c) => c.name === 'task.uploadsummary')!.value, 'utf8');
    assert.match(md, /^### AWS, Google Cloud, OpenID Connect and HashiCorp Vault connections: the trust to review at each target$/m);
    const links = [...all.filter((x) => x.link && x.action !== 'none'), ...all.filter((x) => x.link && x.review)].map((x) => x.link!);
    const html = assertOnlyOwnLinks(await renderers(), md, links);
    const text = visibleText(html.get('markdown-it (html, linkify)')!);
    assert.ok(text.includes(aws.review!), text);
  });

  it('explicit names, in any case: one type filtered by the service', async () => {
    const r = await audit({ connectionTypes: 'workloadidentityAWS' });
    assert.deepEqual(rows(r).map((x) => x.name).sort(), ['aws-prod', 'aws-unused']);
    const asked = emu.requestLog().filter((q) => q.route === 'devops.endpoints').map((q) => new URL(q.path, 'https://x').searchParams.get('type'));
    assert.deepEqual(asked, ['workloadidentityaws']);
    const r2 = await audit({ connectionTypes: 'WorkloadIdentityGcp, WorkloadIdentityOidc' });
    assert.deepEqual(rows(r2).map((x) => x.name).sort(), ['gcp-broken', 'gcp-prod', 'vault']);
  });
});
