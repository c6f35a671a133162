/** The build summary (a markdown tab on the run) and the log lines of a validation. */
import fs = require('node:fs');
import path = require('node:path');
import { Link, Row, RowStatus } from '../azure/validation';
import { neutralize } from './output';

// Text symbols, not emoji: they render in any font, in the browser and in mail digests alike.
const ICON: Record<RowStatus, string> = { pass: '✔ pass', warning: '⚠ warning', fail: '✖ fail', skipped: '○ skipped' };
const LOG: Record<RowStatus, string> = { pass: 'PASS   ', warning: 'WARNING', fail: 'FAIL   ', skipped: 'SKIPPED' };

/**
 * Markdown table cells: one inert line (no line breaks, no logging commands, no invisible
 * characters: see output.ts), no pipes, no HTML from the services. Lines are joined with <br> by
 * the callers, never by the text.
 */
export function cell(text: string): string {
  // Text from outside never becomes a link: brackets are escaped (a name like
  // `x](https://evil.example) [`), and so are the ':' of a scheme and the '.' after 'www', which
  // GitHub-flavoured markdown would otherwise turn into links by themselves. The summary's own links
  // are written by link(), never from this text.
  return neutralize(text)
    .replace(/[<>]/g, (c) => (c === '<' ? '&lt;' : '&gt;'))
    .replace(/[|[\]]/g, (c) => `\\${c}`)
    .replace(/([a-z][a-z0-9+.-]*):\/\//gi, '$1\\://')
    .replace(/\bwww\./gi, (w) => `${w.slice(0, 3)}\\.`);
}

export function link(l: Link): string {
  return `[${cell(l.title)}](${neutralize(l.url).replace(/\)/g, '%29').replace(/ /g, '%20')})`;
}

export interface SummaryHeader {
  title: string;
  status: 'ok' | 'warning' | 'error';
  facts: [string, string][];
  links: Link[];
}

export function renderSummary(h: SummaryHeader, rows: Row[]): string {
  const verdict = h.status === 'ok' ? '✔ The connection works.' : h.status === 'warning' ? '⚠ The connection works, with warnings.' : '✖ The connection has problems that will fail deployments.';
  const out = [`## ${cell(h.title)}`, '', `**${verdict}**`, ''];
  const notRun = rows.filter((r) => r.notRun).map((r) => r.check);
  if (notRun.length) out.push(`Could not be checked in this run (see each row for why): ${notRun.map(cell).join(', ')}.`, '');
  if (h.facts.length) {
    out.push(h.facts.map(([k, v]) => `**${cell(k)}:** ${cell(v)}`).join(' · '), '');
  }
  out.push('| Check | Result | What was found | Fix |', '| --- | --- | --- | --- |');
  for (const r of rows) {
    const found = [r.summary, ...r.evidence].map(cell).join('<br>');
    const fix = [r.fix ? cell(r.fix) : '', ...(r.links ?? []).map(link)].filter(Boolean).join('<br>');
    out.push(`| ${cell(r.check)} | ${ICON[r.status]} | ${found} | ${fix} |`);
  }
  if (h.links.length) out.push('', h.links.map(link).join(' · '));
  out.push('');
  return out.join('\n');
}

export function logLines(rows: Row[]): string[] {
  // One line per row, whatever a service's text held.
  return rows.map((r) => `${LOG[r.status]}  ${neutralize(r.check)}: ${neutralize(r.summary)}${r.fix && r.status !== 'pass' ? `  Fix: ${neutralize(r.fix)}` : ''}`);
}

/**
 * Writes the summary under `dir` (Agent.TempDirectory, never the working directory), as
 * `<name>.md` with anything but letters, digits, '-' and '_' in the name replaced.
 */
export function writeSummary(dir: string, name: string, markdown: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 100)}.md`);
  fs.writeFileSync(file, markdown);
  return file;
}
