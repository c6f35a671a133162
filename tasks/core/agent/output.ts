/**
 * The one way a task writes to its log, its warnings, its debug lines and its result.
 *
 * The agent reads every line a task prints (stdout and stderr) as a possible logging command: it
 * looks for `##vso[` anywhere in the line, not only at its start, and it ends a line at `\n`, at
 * `\r\n` and at a bare `\r`. Its match is .NET's culture-sensitive IndexOf, which skips
 * default-ignorable characters, so `##v<U+200B>so[` is a command to it too. A line starting with
 * `##[` is a formatting command (`##[group]`, `##[error]`, ...). Text from outside (connection
 * names, display names, claims, service error texts, input values) therefore never reaches the log
 * as it is: `neutralize` makes it one inert line, visibly changed, never silently shortened.
 *
 * What users see instead:
 * - a control character becomes a visible escape: `\r`, `\n`, `\x1b`, ... (a tab stays a tab);
 * - an invisible format or default-ignorable character (U+200B, U+00AD, U+2060, U+FEFF, variation
 *   selectors, Hangul fillers, U+2028, U+2029, ...) becomes `\u{200B}` and the like;
 * - `##vso[` and `##[` (any case, with any non-printable-ASCII characters between their letters)
 *   get their `[` written as `%5B`: `##vso%5Btask.setvariable ...]`, `##%5Bgroup]`. The agent
 *   unescapes `%5D`, `%3B`, `%0D` and `%0A` in command data but never `%5B`, so the change stays
 *   visible wherever the text ends up. A backslash is left alone (Windows paths stay readable), so a
 *   literal `\r` in the original reads the same as an escaped carriage return.
 *
 * Nothing is inserted invisibly: the agent's match would skip an invisible character anyway.
 */
import { agent, StepResult } from './agent-channel';
import { formatFailure, TaskFailure } from '../http/failures';

// Anything between the letters of a command prefix that is not printable ASCII may be ignored by
// the agent's culture-sensitive match, so the patterns tolerate it there.
const GAP = '[^\\x20-\\x7E]*';
const COMMAND_PREFIX = new RegExp(`#${GAP}#(?:${GAP}v${GAP}s${GAP}o)?${GAP}\\[`, 'giu');

// Control characters (tab excepted), format characters, line and paragraph separators, and every
// default-ignorable code point (which covers U+034F, variation selectors, Hangul fillers, tags).
const INVISIBLE = /(?!\t)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu;

const NAMED: Record<string, string> = { '\r': '\\r', '\n': '\\n', '\0': '\\0' };

function escapeInvisible(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const cp = c.codePointAt(0) ?? 0;
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return `\\x${cp.toString(16).padStart(2, '0')}`;
  return `\\u{${cp.toString(16).toUpperCase()}}`;
}

/** A value from outside, made one inert line (see above). Idempotent. */
export function neutralize(value: unknown): string {
  const text = typeof value === 'string' ? value : value === undefined ? '' : String(value);
  // Defuse first, on the raw text, so a prefix hidden by invisible characters is caught too; the
  // escapes added afterwards hold neither '#' nor '['.
  return text.replace(COMMAND_PREFIX, (m) => `${m.slice(0, -1)}%5B`).replace(INVISIBLE, escapeInvisible);
}

/**
 * A tagged template for our own messages: the literal parts are ours, every interpolated value is
 * outside text and is neutralised where it is put in. `safe\`Connection '${name}'\``.
 */
export function safe(strings: TemplateStringsArray, ...values: unknown[]): string {
  let out = strings[0];
  values.forEach((v, i) => (out += neutralize(v) + strings[i + 1]));
  return out;
}

/** Our own multi-line text: kept as lines (split on our `\n`), each line made inert. */
function lines(text: string): string[] {
  return text.split('\n').map(neutralize);
}

/** Log lines of our own; outside values in them should already be neutralised where they were put in. */
export function log(text: string): void {
  for (const line of lines(text)) console.log(line);
}

/** How an HTTP client's retry shows in the log: the service, why, and the wait (never a body). */
export function logRetry(retries: number): (req: { service: string }, attempt: number, reason: string, delayMs: number) => void {
  return (req, attempt, reason, delayMs) => log(safe`${req.service}: ${reason}; retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${retries + 1}).`);
}

/** A warning (an issue on the run and a yellow log line); task-lib escapes the line breaks we keep. */
export function warn(text: string): void {
  agent().warning(lines(text).join('\n'));
}

export function debug(text: string): void {
  agent().debug(lines(text).join('\n'));
}

/** The only place `##[group]` is written: a collapsible section of the log. */
export function group(title: string): void {
  console.log(`##[group]${neutralize(title)}`);
}

export function endGroup(): void {
  console.log('##[endgroup]');
}

/**
 * A failure's text with every field made one inert line: what, cause, fix and each evidence line
 * are single lines by construction, but they carry service texts and inputs, so an outside line
 * break cannot add a line of its own (a forged "Fix: ...") nor a command.
 */
export function failureMessage(e: TaskFailure): string {
  const d = e.details;
  return formatFailure({ ...d, what: neutralize(d.what), cause: neutralize(d.cause), fix: neutralize(d.fix), evidence: d.evidence?.map(neutralize) });
}

/** The step's result; its message is shown as an issue and in the run's summary. */
export function setResult(result: StepResult, message: string): void {
  agent().setResult(result, lines(message).join('\n'));
}
