/**
 * A build summary rendered as Azure DevOps could render it, to find every link in it: GitHub-
 * flavoured markdown (marked, gfm on: it links `www.` hosts, http(s) and ftp URLs and e-mail
 * addresses by itself) and markdown-it with linkify (what Azure DevOps uses: it also links bare
 * domain names, `//host` and `mailto:`), both with HTML on (the summaries join lines with <br>).
 */
import * as assert from 'node:assert/strict';

export interface Renderer {
  name: string;
  render(markdown: string): string;
}

interface MarkdownIt {
  render(src: string): string;
}

export async function renderers(): Promise<Renderer[]> {
  // marked is ESM-first; load it the way both Node 20 and 24 can (as screenshot.ts does).
  const { marked } = (await import('marked')) as typeof import('marked');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const markdownIt = require('markdown-it') as (options: Record<string, unknown>) => MarkdownIt;
  const md = markdownIt({ html: true, linkify: true });
  return [
    { name: 'marked (GFM)', render: (s) => marked.parse(s, { gfm: true, async: false }) as string },
    { name: 'markdown-it (html, linkify)', render: (s) => md.render(s) },
  ];
}

/** The href of every <a> (and of every element with an href or src, which would be an image or the like). */
export function linkTargets(html: string): string[] {
  const out: string[] = [];
  for (const tag of html.match(/<[a-z][^>]*>/gi) ?? []) {
    if (!/^<a\b/i.test(tag) && !/\s(?:href|src)\s*=/i.test(tag)) continue;
    const href = /\s(?:href|src)\s*=\s*"([^"]*)"/i.exec(tag)?.[1];
    out.push(href === undefined ? tag : decode(href));
  }
  return out;
}

function decode(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** What a reader sees: the text with the tags taken out (a <br> is a line break) and the entities decoded. */
export function visibleText(html: string): string {
  return decode(html.replace(/<br\s*\/?>/gi, '\n').replace(/<[^>]*>/g, ''));
}

/**
 * The text outside code and outside the summary's own links, as a renderer that decodes entities
 * before it looks for links would see it (markdown-it before version 13 did): it must hold nothing
 * shaped like a link either (an e-mail address, '//', `www.`, a domain name).
 */
export function linkShapedOutsideCode(html: string): string[] {
  const text = visibleText(html.replace(/<code\b[^>]*>[\s\S]*?<\/code>/gi, ' ').replace(/<a\b[\s\S]*?<\/a>/gi, ' '));
  const shapes = [/[\p{L}\p{N}._+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+/gu, /\S*\/\/\S*/g, /\S*www\.\S*/gi, /[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.(?:[a-z]{2,}|xn--[a-z0-9-]+|рф)\b/giu];
  return shapes.flatMap((re) => text.match(re) ?? []);
}

/** A URL with its parentheses percent-encoded (as link() writes them), for comparing. */
const sameUrl = (url: string) => url.replace(/[()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Renders `markdown` with each renderer and asserts that every link in it is one of the product's
 * own (each `expected` target, as often as given), none from outside text, and that nothing in the
 * text outside code is shaped like a link. Returns the rendered HTML per renderer.
 */
export function assertOnlyOwnLinks(all: Renderer[], markdown: string, expected: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of all) {
    const html = r.render(markdown);
    out.set(r.name, html);
    assert.deepEqual(linkTargets(html).map(sameUrl).sort(), expected.map(sameUrl).sort(), `${r.name}: the only links are the product's own\n${markdown}\n---\n${html}`);
    assert.deepEqual(linkShapedOutsideCode(html), [], `${r.name}: nothing shaped like a link outside code\n${html}`);
  }
  return out;
}
