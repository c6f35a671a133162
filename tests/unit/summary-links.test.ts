/**
 * No link from outside text in any summary: ValidateServiceConnection@1's (summary.ts) and
 * AuditServiceConnections@1's (audit-report.ts), every field that comes from outside filled with
 * hostile text, rendered with GitHub-flavoured markdown (marked) and with markdown-it's linkify
 * (Azure DevOps's renderer). Every <a> must be one of the product's own links; the hostile text
 * must still be there to read, unchanged.
 */
import * as assert from 'node:assert/strict';
import { renderSummary } from '../../tasks/core/agent/summary';
import { renderAuditSummary } from '../../tasks/core/devops/audit-report';
import { assessCoverage, type AuditRow } from '../../tasks/core/devops/audit';
import type { Row } from '../../tasks/core/azure/validation';
import { assertOnlyOwnLinks, Renderer, renderers, visibleText } from '../helpers/markdown-links';

const ORG = 'https://dev.azure.com/contoso/';
const PORTAL = 'https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/0f7d5a4c-1b2e-4c3d-8e9f-a0b1c2d3e4f5';

/** What a connection name, a display name, a service's message or a claim may hold. */
export const HOSTILE = [
  'support@evil-phish.example',
  'Contact IT (mailto:support@evil-phish.example) or support@evil.com now.',
  'evil.example.com',
  'www.evil.example',
  'WWW.EVIL.EXAMPLE/login',
  'https://evil.example/login?next=/x&y=1',
  'http://evil.example',
  'ftp://evil.example/f',
  'HTTPS://EVIL.EXAMPLE',
  '//evil.example.com/x',
  '//localhost:8080/x',
  'https://127.0.0.1:8443/x',
  '[click](https://evil.example)',
  '\\[click\\](https://evil.example)',
  'x](https://evil.example) [y',
  '![i](https://evil.example/i.png)',
  '<https://evil.example>',
  '<a href="https://evil.example">a</a>',
  '`https://evil.example`',
  '``x`` www.evil.example ``',
  'support&#64;evil-phish&#46;example',
  'evil&#46;example&#46;com',
  'https&#58;//evil.example',
  'xn--80ak6aa92e.com',
  'пример.рф',
  'a|https://evil.example|b',
  'evil.example.com\\',
  'https://evil.example/a_b_(c)',
  '*www.evil.example*',
  '_support@evil-phish.example_',
];
const ALL = HOSTILE.join(' ');

describe('Summaries: no link from outside text (GFM and markdown-it linkify)', () => {
  let all: Renderer[];
  before(async () => {
    all = await renderers();
  });

  it('renders a hostile e-mail address as text, not as a mailto: link (the case reported)', () => {
    const md = renderSummary({ title: 'Validate support@evil-phish.example', status: 'error', facts: [['Creator', 'support@evil-phish.example']], links: [] }, []);
    const html = assertOnlyOwnLinks(all, md, []);
    for (const h of html.values()) assert.ok(visibleText(h).includes('support@evil-phish.example'), h);
  });

  it('ValidateServiceConnection@1: every outside field hostile, only the product links', () => {
    const links = [{ title: 'Service connection in Azure DevOps', url: `${ORG}web/_settings/adminservices?resourceId=9a1b` }, { title: 'App registration: credentials', url: PORTAL }];
    const rows: Row[] = HOSTILE.map((h, i) => ({
      check: i % 2 ? `Role ${h}` : 'Connection in Azure DevOps',
      status: 'fail',
      summary: `Not ready (Failed: ${h}); its creator ${h} (${h}) is no longer active.`,
      evidence: [`iss: ${h}`, `sub: sc://contoso/web/${h}`, `Azure DevOps said: ${h}`],
      fix: `Open the connection ${h} and save it.`,
      links: i === 0 ? links : [],
      notRun: i === 1,
    }));
    const md = renderSummary({ title: `Service connection ${ALL}`, status: 'error', facts: [['Connection', ALL], ['Subscription', `Prod ${ALL}`], [HOSTILE[0], HOSTILE[2]]], links }, rows);
    const html = assertOnlyOwnLinks(all, md, [...links, ...links].map((l) => l.url));
    for (const [name, h] of html) {
      const text = visibleText(h);
      for (const payload of HOSTILE) assert.ok(text.includes(`Not ready (Failed: ${payload}); its creator ${payload} (${payload})`), `${name}: ${JSON.stringify(payload)} shown as it is:\n${text}`);
    }
  });

  it('ValidateServiceConnection@1: fixes to paste (trust policy, commands) after the table, hostile text in code blocks that no line can close', () => {
    const lines = [...HOSTILE, '```', '````` closed?', '~~~', '</code></pre><a href="https://evil.example">x</a>', '##vso[task.setvariable variable=x]y'];
    const rows: Row[] = [{ check: `AWS STS ${HOSTILE[0]}`, status: 'fail', summary: 'AccessDenied', evidence: [], fix: 'Paste the trust policy.', details: [{ title: `the trust policy ${HOSTILE[2]}`, language: 'json', lines }] }];
    const md = renderSummary({ title: 't', status: 'error', facts: [], links: [] }, rows);
    assert.match(md, /^`{6}json$/m, 'the fence is longer than any backtick run inside');
    const html = assertOnlyOwnLinks(all, md, []);
    for (const [name, h] of html) {
      const text = visibleText(h);
      for (const payload of HOSTILE) assert.ok(text.includes(payload), `${name}: ${JSON.stringify(payload)} shown as it is`);
      assert.ok(text.includes('##vso%5Btask.setvariable'), `${name}: the logging command defused`);
    }
  });

  it('AuditServiceConnections@1: every outside field hostile, only the connection pages link', () => {
    const rows: AuditRow[] = HOSTILE.map((h, i) => ({
      project: `proj ${h}`,
      sharedWith: [h, `other ${h}`],
      id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      name: h,
      type: `azurerm ${h}`,
      scheme: `ServicePrincipal ${h}`,
      issuer: `vstoken ${h}`,
      environment: `Cloud ${h}`,
      isReady: false,
      operationStatus: `Failed: ${h}`,
      creationMode: 'Automatic',
      creator: `${h} <${h}>`,
      creatorState: 'inactive',
      lastUse: `2026-05-01: ${h} run ${h}, succeeded`,
      credentialEnd: `skipped: Microsoft Graph HTTP 500: ${h}`,
      action: i % 3 ? 'fix-rotation' : 'cannot-read',
      severity: 'error',
      why: `Not ready (Failed: ${h}); its creator ${h} is no longer active. The project's service connections could not be read: HTTP 403: ${h}.`,
      fix: `Convert it (Project settings > Service connections > ${h} > Convert), or az devops service-endpoint delete --id x --org ${ORG} --project "proj ${h}" --yes.`,
      link: i % 3 ? `${ORG}${encodeURIComponent(`proj ${h}`)}/_settings/adminservices?resourceId=${i}` : undefined,
    }));
    // Named projects not visible, not listed, listed in part: the coverage says their names too.
    const coverage = assessCoverage(
      { scope: 'organization', named: [...HOSTILE, 'web'], projectsRead: ['web'], projectsNotFound: HOSTILE.map((h) => `gone ${h}`), projectsUnreadable: HOSTILE.map((h) => `denied ${h}`), projectsIncomplete: ['web'], types: ['azurerm'], connectionsRead: 2, connectionsUnread: 1 },
      'Add the identity to each project.',
    );
    const md = renderAuditSummary({ organization: `contoso ${ALL}`, scope: `organization ${ALL}`, identity: `service connection ${ALL}`, projectsAudited: 3, generatedAt: '2026-07-01T06:00:00.000Z', requests: 40 }, { rows, projectsAudited: 3, status: 'error', coverage });
    const html = assertOnlyOwnLinks(all, md, rows.flatMap((r) => (r.link ? [r.link] : [])));
    for (const [name, h] of html) {
      const text = visibleText(h);
      for (const payload of HOSTILE) assert.ok(text.includes(`its creator ${payload} is no longer active`), `${name}: ${JSON.stringify(payload)} shown as it is`);
      for (const payload of HOSTILE) assert.ok(text.includes(`'gone ${payload}'`) && text.includes(`'denied ${payload}'`), `${name}: ${JSON.stringify(payload)} shown as it is in the coverage`);
    }
  });
});
