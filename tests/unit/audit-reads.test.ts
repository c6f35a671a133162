/** The audit's organisation reads against a scripted Azure DevOps: answers the emulator does not give. */
import * as assert from 'node:assert/strict';
import type { HttpRequest, HttpResponse } from '../../tasks/core/http/http';
import type { PipelineContext } from '../../tasks/core/agent/pipeline-context';
import { OrganizationReader } from '../../tasks/core/devops/organization';
import { Gates, Pool } from '../../tasks/core/devops/throttle';
import { runAudit } from '../../tasks/core/devops/audit';
import { azureDevOpsHosts } from '../../tasks/core/http/token-hosts';

const ORG = 'https://dev.azure.com/contoso/';

function reader(answer: (url: URL) => { status: number; body: unknown; headers?: Record<string, string> }): { r: OrganizationReader; ctx: PipelineContext; urls: string[] } {
  const urls: string[] = [];
  const ctx = {
    collectionUri: ORG,
    azureDevOps: azureDevOpsHosts(ORG),
    teamProject: 'web',
    teamProjectId: 'web',
    http: {
      request: async (req: HttpRequest): Promise<HttpResponse> => {
        urls.push(req.url);
        if (urls.length > 5000) throw new Error('too many requests: the reader loops');
        const a = answer(new URL(req.url));
        return { status: a.status, headers: a.headers ?? {}, body: JSON.stringify(a.body), url: req.url, attempts: 1 };
      },
    },
  } as unknown as PipelineContext;
  return { r: new OrganizationReader(ctx, 'token', new Pool(8), new Gates(60_000)), ctx, urls };
}

describe('Audit reads (scripted Azure DevOps)', () => {
  it('a project list whose continuation token comes back again ends with a reason, not a loop', async () => {
    const { r, urls } = reader(() => ({ status: 200, body: { count: 1, value: [{ id: 'p1', name: 'one' }] }, headers: { 'x-ms-continuationtoken': 'same' } }));
    const listed = await r.projects();
    assert.equal(listed.ok, false);
    assert.ok(!listed.ok && /continuation/i.test(listed.reason), JSON.stringify(listed));
    assert.ok(urls.length <= 3, `${urls.length} requests`);
  });

  it('a project\'s list of connections is followed page by page; a token that comes back again ends it, keeping what was read', async () => {
    const ep = (id: string) => ({ id, name: id, type: 'azurerm', authorization: { scheme: 'WorkloadIdentityFederation', parameters: {} } });
    const paged = reader((u) => {
      const token = u.searchParams.get('continuationToken');
      if (!token) return { status: 200, body: { count: 1, value: [ep('a')] }, headers: { 'x-ms-continuationtoken': 't1' } };
      if (token === 't1') return { status: 200, body: { count: 1, value: [ep('b')] }, headers: { 'x-ms-continuationtoken': 't2' } };
      return { status: 200, body: { count: 1, value: [ep('c')] } };
    });
    const all = await paged.r.endpoints('web');
    assert.ok(all.ok && !all.value.incomplete, JSON.stringify(all));
    assert.deepEqual(all.ok && all.value.endpoints.map((e) => e.id), ['a', 'b', 'c']);
    assert.deepEqual(paged.urls.map((x) => new URL(x).searchParams.get('continuationToken')), [null, 't1', 't2']);

    const looping = reader(() => ({ status: 200, body: { count: 1, value: [ep('a')] }, headers: { 'x-ms-continuationtoken': 'same' } }));
    const stuck = await looping.r.endpoints('web');
    assert.ok(stuck.ok && stuck.value.incomplete, JSON.stringify(stuck));
    assert.match(stuck.ok ? stuck.value.incomplete!.reason : '', /did not end: Azure DevOps gave a continuation token it had given before/);
    assert.equal(looping.urls.length, 2);
  });

  it('a creator whose identity batch failed is unknown with the reason, never "inactive"', async () => {
    const creators = Array.from({ length: 150 }, (_, i) => `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`);
    const { r, ctx } = reader((u) => {
      if (u.pathname.includes('/resourceAreas/')) return { status: 200, body: { id: 'x', name: 'IMS', locationUrl: 'https://vssps.dev.azure.com/contoso/' } };
      if (u.pathname.endsWith('/serviceendpoint/endpoints')) {
        return { status: 200, body: { count: creators.length, value: creators.map((c, i) => ({ id: `e${i}`, name: `c${i}`, type: 'azurerm', isReady: false, operationStatus: { state: 'Failed' }, authorization: { scheme: 'ServicePrincipal', parameters: {} }, createdBy: { id: c, displayName: `user ${i}` } })) } };
      }
      if (u.pathname.includes('/executionhistory')) return { status: 200, body: { count: 0, value: [] } };
      if (u.pathname.endsWith('/_apis/identities')) {
        const ids = (u.searchParams.get('identityIds') ?? '').split(',');
        // The batch with the first creator fails; the other answers every id as active.
        if (ids.includes(creators[0])) return { status: 500, body: { message: 'boom' } };
        return { status: 200, body: { count: ids.length, value: ids.map((id) => ({ id, isActive: true })) } };
      }
      return { status: 404, body: {} };
    });
    const result = await runAudit(ctx, r, { scope: 'project', projects: [], unusedDays: 90, secretExpiryWarningDays: 30, graph: { enabled: false, reason: 'off' }, now: Date.now(), reach: 'reach' });
    const byCreator = new Map(result.rows.map((row) => [row.creator, row]));
    const failedBatch = byCreator.get('user 0')!;
    assert.match(failedBatch.creatorState, /^unknown: /);
    assert.match(failedBatch.creatorState, /HTTP 500/);
    assert.doesNotMatch(failedBatch.why, /no longer active/);
    assert.equal(byCreator.get('user 149')!.creatorState, 'active');
  });
});
