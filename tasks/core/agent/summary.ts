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
 * characters: see output.ts), no pipes, no HTML from the services, and no link. Lines are joined
 * with <br> by the callers, never by the text.
 *
 * Text from outside never becomes a link, in GitHub-flavoured markdown (which links `www.` hosts,
 * http(s) and ftp URLs and e-mail addresses by themselves) nor in markdown-it with linkify (which
 * Azure DevOps uses: it also links bare domain names such as `evil.example.com`, `//host` and
 * `mailto:`). Every word that could be read as a link (it holds an '@', a '//', `www.`, or a '.'
 * followed by a name of two or more characters starting with a letter) is written as inline code, which no
 * renderer links and which shows it unchanged; the words around it are plain text with every
 * character markdown gives a meaning to escaped (`\`, `&`, `<`, `>`, `[`, `]`, `|` and the backtick),
 * so no text from outside builds a link, an autolink, HTML or a code span of its own. The
 * summary's own links are written by link(), never from this text.
 */
export function cell(text: string): string {
  return neutralize(text).replace(WORD_OR_CHARACTER, (word) => {
    if (!LINKLIKE.test(word)) return plain(word);
    // Punctuation around the word stays plain text: '(evil.example.com).' shows as (`evil.example.com`).
    const [, lead, core, tail] = /^([("']*)(.*?)([.,;:!?'")]*)$/su.exec(word)!;
    return `${plain(lead)}\`${core}\`${plain(tail)}`;
  });
}

/**
 * A word (what lies between white space and the characters escaped outside code, none of which is
 * ever in a code span), or one of those characters.
 */
const WORD_OR_CHARACTER = /[^\s<>[\]|`]+|[\s\S]/gu;
// A domain name ends in a name that starts with a letter (a top-level domain, or its xn-- form).
const LINKLIKE = /@|\/\/|\bwww\.|[\p{L}\p{N}_-]\.\p{L}[\p{L}\p{N}_-]/iu;
const ESCAPED: Record<string, string> = { '\\': '\\\\', '&': '&amp;', '<': '&lt;', '>': '&gt;', '[': '\\[', ']': '\\]', '|': '\\|', '`': '&#96;' };

function plain(text: string): string {
  return text.replace(/[\\&<>[\]|`]/g, (c) => ESCAPED[c]);
}

/** One of the summary's own links; its URL is ours, with nothing in it that could end it early (parentheses, spaces, '<'). */
export function link(l: Link): string {
  return `[${cell(l.title)}](${neutralize(l.url).replace(/[() <>]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)})`;
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
    const fix = [r.fix ? cell(r.fix) : '', ...(r.details ?? []).map((d) => cell(`${d.title}: below the table.`)), ...(r.links ?? []).map(link)].filter(Boolean).join('<br>');
    out.push(`| ${cell(r.check)} | ${ICON[r.status]} | ${found} | ${fix} |`);
  }
  for (const r of rows) {
    for (const d of r.details ?? []) out.push('', `**${cell(r.check)}: ${cell(d.title)}**`, '', ...codeBlock(d.lines, d.language));
  }
  if (h.links.length) out.push('', h.links.map(link).join(' · '));
  out.push('');
  return out.join('\n');
}

/**
 * A fenced code block of outside text: each line made inert (output.ts: no control characters, no
 * logging command), fenced by more backticks than any run inside it, so no line can close it. In a
 * code block no renderer builds links, HTML or emphasis, and text shows as it is.
 */
export function codeBlock(lines: string[], language?: string): string[] {
  const body = lines.map((l) => neutralize(l));
  const longest = Math.max(0, ...body.map((l) => Math.max(0, ...(l.match(/`+/g) ?? []).map((m) => m.length))));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return [`${fence}${language && /^[a-z]+$/.test(language) ? language : ''}`, ...body, fence];
}

/** The lines of the rows' details for the log, after the rows: a title line, then each line indented. */
export function detailLines(rows: Row[]): string[] {
  return rows.flatMap((r) => (r.details ?? []).flatMap((d) => [`${neutralize(r.check)}: ${neutralize(d.title)}`, ...d.lines.map((l) => `    ${neutralize(l)}`)]));
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
