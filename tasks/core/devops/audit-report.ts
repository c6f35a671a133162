/**
 * What an audit leaves: the build summary (counts by action first, then the rows that need action,
 * each linked to its connection's page), the log lines, and CSV and JSON reports. Text from the
 * service (names, status messages) is made inert in the summary and the log (output.ts); the CSV
 * guards spreadsheet formulas.
 */
import fs = require('node:fs');
import path = require('node:path');
import { cell, link } from '../agent/summary';
import { neutralize } from '../agent/output';
import { Action, ACTIONS, ACTION_TITLES, AuditResult, AuditRow, Coverage } from './audit';

export interface AuditHeader {
  organization: string;
  scope: string;
  identity: string;
  projectsAudited: number;
  generatedAt: string;
  requests: number;
}

const ICON: Record<AuditRow['severity'], string> = { error: '✖', warning: '⚠', ok: '✔' };

/**
 * Where the reports go besides the agent's disk: a build artifact of the run (artifact.upload), the
 * job's log download (task.uploadfile, in a classic release or deployment group job, where the agent
 * refuses artifact.upload), or nowhere (reportArtifactName empty).
 */
export type Publication = { kind: 'artifact'; name: string } | { kind: 'log' } | { kind: 'none' };

function publicationText(p: Publication): string {
  switch (p.kind) {
    case 'artifact':
      return `The CSV and JSON reports (every row) are published as the artifact ${p.name} of this run (the run's page: Related > Published); on the agent their paths are in the outputs reportCsvPath and reportJsonPath until the job ends.`;
    case 'log':
      return 'A classic release job cannot publish an artifact: the CSV and JSON reports (every row) are attached to this job\'s log (Download all logs); on the agent their paths are in the outputs reportCsvPath and reportJsonPath until the job ends.';
    default:
      return 'reportArtifactName is empty, so the CSV and JSON reports (every row) are not published: they are on the agent (outputs reportCsvPath and reportJsonPath) until the job ends.';
  }
}

export function countsByAction(rows: AuditRow[]): Map<Action, number> {
  const counts = new Map<Action, number>();
  for (const a of ACTIONS) counts.set(a, 0);
  for (const r of rows) counts.set(r.action, (counts.get(r.action) ?? 0) + 1);
  return counts;
}

export function needingAction(rows: AuditRow[]): AuditRow[] {
  return rows.filter((r) => r.action !== 'none');
}

export function renderAuditSummary(h: AuditHeader, result: AuditResult, publication: Publication = { kind: 'none' }): string {
  const rows = result.rows;
  const connections = rows.filter((r) => r.id);
  const needs = needingAction(rows);
  const coverage = result.coverage;
  const verdict =
    result.status === 'ok'
      ? `✔ No connection needs action (${connections.length} audited).`
      : needs.length
        ? `${ICON[result.status]} ${needs.length} of ${rows.length} rows need action (${connections.length} connections audited).`
        : `⚠ No row needs action, but the audit did not cover everything it was asked to (coverage ${coverage.extent}, ${connections.length} connections audited).`;
  const out = [`## Service connection audit: ${cell(h.organization)}`, '', `**${verdict}**`, ''];
  out.push(`**Scope:** ${cell(h.scope)} · **Projects:** ${h.projectsAudited} · **As:** ${cell(h.identity)} · **Requests:** ${h.requests} · **At:** ${cell(h.generatedAt)}`, '');
  out.push(`${coverage.extent === 'full' ? '✔' : '⚠'} ${cell(coverage.statement)}`, '');
  for (const w of coverage.warnings) out.push(`- ⚠ ${cell(w)}`);
  if (coverage.warnings.length) out.push('');
  out.push('| Action | Connections |', '| --- | ---: |');
  for (const [action, n] of countsByAction(rows)) if (n) out.push(`| ${cell(ACTION_TITLES[action])} | ${n} |`);
  out.push('');
  if (needs.length) {
    out.push('### Needing action', '', '| Connection | Project | Scheme | Found | Action and fix |', '| --- | --- | --- | --- | --- |');
    for (const r of needs) {
      const name = r.link ? link({ title: r.name, url: r.link }) : cell(r.name);
      const scheme = [r.scheme, r.issuer ? `issuer: ${r.issuer}` : '', r.environment && r.environment !== 'AzureCloud' ? r.environment : ''].filter(Boolean).map(cell).join('<br>');
      const found = [r.why, r.creator ? `Creator: ${r.creator} (${r.creatorState})` : '', r.lastUse ? `Last use: ${r.lastUse}` : '', r.credentialEnd && r.credentialEnd !== 'none (no secret)' ? `Secret: ${r.credentialEnd}` : '', r.sharedWith.length ? `Shared with: ${r.sharedWith.join(', ')}` : '']
        .filter(Boolean)
        .map(cell)
        .join('<br>');
      out.push(`| ${name} | ${cell(r.project)} | ${scheme} | ${found} | ${ICON[r.severity]} **${cell(ACTION_TITLES[r.action])}**<br>${cell(r.fix)} |`);
    }
    out.push('');
  }
  const own = rows.filter((r) => r.review);
  if (own.length) {
    out.push('### AWS, Google Cloud, OpenID Connect and HashiCorp Vault connections: the trust to review at each target', '');
    out.push(cell('Their idTokens carry the Azure DevOps issuer (vstoken.dev.azure.com/<organization id>). The 2027-07-01 retirement announced by Microsoft concerns the issuer of Azure Resource Manager connections (backed by Microsoft Entra ID); nothing is announced for connections of other types.'), '');
    out.push('| Connection | Project | Type | Issuer | Review |', '| --- | --- | --- | --- | --- |');
    for (const r of own) {
      const name = r.link ? link({ title: r.name, url: r.link }) : cell(r.name);
      out.push(`| ${name} | ${cell(r.project)} | ${cell(r.type)} | ${cell(r.issuer)} | ${ICON[r.severity]} ${cell(r.review ?? '')} |`);
    }
    out.push('');
  }
  out.push(cell(publicationText(publication)), '');
  return out.join('\n');
}

/** One line per row for the log, every value made inert. */
export function auditLogLines(rows: AuditRow[]): string[] {
  return rows.map((r) => {
    const head = `${r.severity === 'error' ? 'ERROR  ' : r.severity === 'warning' ? 'WARNING' : 'OK     '}  ${neutralize(r.project)} / ${neutralize(r.name)}`;
    const detail = r.id ? ` [${neutralize(r.scheme)}${r.issuer ? `, ${neutralize(r.issuer)}` : ''}]` : '';
    return `${head}${detail}: ${ACTION_TITLES[r.action]}. ${neutralize(r.why)}${r.fix ? `  Fix: ${neutralize(r.fix)}` : ''}`;
  });
}

export const CSV_COLUMNS: (keyof AuditRow)[] = [
  'project', 'name', 'id', 'type', 'scheme', 'issuer', 'environment', 'isReady', 'operationStatus', 'creationMode', 'creator', 'creatorState', 'lastUse', 'credentialEnd', 'sharedWith', 'action', 'severity', 'why', 'fix', 'permission', 'link', 'review',
];

/** RFC 4180 fields; a value a spreadsheet would run as a formula gets a leading apostrophe. */
function csvField(v: unknown): string {
  let s = Array.isArray(v) ? v.join('; ') : v === undefined || v === null ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The CSV's first row: what the audit covered (a CSV has no header of its own to say it). Project
 * '(coverage)', name '(this audit)'; 'Nothing to do' when the coverage is full, else 'Could not be
 * read' with the warnings.
 */
export function coverageRow(c: Coverage): AuditRow {
  const full = c.extent === 'full';
  return {
    project: '(coverage)', sharedWith: [], id: '', name: '(this audit)', type: '', scheme: '', issuer: '', environment: '', operationStatus: '', creationMode: '', creator: '', creatorState: '', lastUse: '', credentialEnd: '',
    action: full ? 'none' : 'cannot-read', severity: full ? 'ok' : 'warning', why: [c.statement, ...c.warnings].join(' '),
    fix: full ? '' : 'Give the auditing identity sight of what was not covered (the warnings say what and how), or correct the input projects; then re-run the audit.',
  };
}

export function renderCsv(rows: AuditRow[], coverage?: Coverage): string {
  const all = coverage ? [coverageRow(coverage), ...rows] : rows;
  return [CSV_COLUMNS.join(','), ...all.map((r) => CSV_COLUMNS.map((c) => csvField(r[c])).join(','))].join('\r\n') + '\r\n';
}

export function renderJson(h: AuditHeader, result: AuditResult): string {
  return JSON.stringify({ ...h, status: result.status, coverage: result.coverage, counts: Object.fromEntries(countsByAction(result.rows)), rows: result.rows }, null, 2);
}

export interface ReportFiles {
  dir: string;
  markdown: string;
  csv: string;
  json: string;
}

/**
 * Writes the three files into a new folder under `tempDirectory` (Agent.TempDirectory). The agent
 * empties that folder only when the job ends, after the step's artifact upload and the job's file
 * uploads have finished (azure-pipelines-agent StepsRunner.cs, JobRunner.cs CompleteJobAsync).
 */
export function writeReports(tempDirectory: string, h: AuditHeader, result: AuditResult, publication: Publication = { kind: 'none' }): ReportFiles {
  fs.mkdirSync(tempDirectory, { recursive: true });
  const dir = fs.mkdtempSync(path.join(tempDirectory, 'service-connection-audit-'));
  const files = { dir, markdown: path.join(dir, 'service-connection-audit.md'), csv: path.join(dir, 'service-connection-audit.csv'), json: path.join(dir, 'service-connection-audit.json') };
  fs.writeFileSync(files.markdown, renderAuditSummary(h, result, publication));
  fs.writeFileSync(files.csv, renderCsv(result.rows, result.coverage));
  fs.writeFileSync(files.json, renderJson(h, result));
  return files;
}
