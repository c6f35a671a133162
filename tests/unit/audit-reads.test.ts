/** The audit's organisation reads against a scripted Azure DevOps: answers the emulator does not give. */
import * as assert from 'node:assert/strict';
import type { HttpRequest, HttpResponse } from '../../tasks/core/http';
import type { PipelineContext } from '../../tasks/core/pipeline-context';
import { OrganizationReader } from '../../tasks/core/devops/organization';
import { Gates, Pool } from '../../tasks/core/devops/throttle';

const ORG = 'https://dev.azure.com/contoso/';

function reader(answer: (url: URL) => { status: number; body: unknown; headers?: Record<string, string> }): { r: OrganizationReader; ctx: PipelineContext; urls: string[] } {
  const urls: string[] = [];
  const ctx = {
    collectionUri: ORG,
    azureDevOpsOrigin: 'https://dev.azure.com',
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
});
