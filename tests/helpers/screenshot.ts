/**
 * The marketplace pictures: a summary a task uploaded (task.uploadsummary) as Azure DevOps shows it
 * under the run's Extensions tab, taken with Debian's headless Chromium. The agent names the
 * attachment after the file (Path.GetFileName) and the Extensions tab titles the section with that
 * name without its `.md`; the markdown is rendered by markdown-it (what Azure DevOps renders
 * markdown with), HTML and linkify on, as tests/helpers/markdown-links.ts does. Nothing else is
 * drawn: no tab bar, no other UI. The picture is as tall as the page's content, so no row is cut off,
 * and neither the markdown nor the page may hold an emulator's address.
 */
import { spawn } from 'node:child_process';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export function chromiumBinary(): string | undefined {
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (fs.existsSync(p)) return p;
  return undefined;
}

/** The width of the pictures: the marketplace shows them at most this wide. */
export const PICTURE_WIDTH = 1200;

const CSS = `
html, body { margin: 0; background: #fff; }
body { font-family: "Segoe UI", "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; font-size: 13px; line-height: 1.45; color: #201f1e; }
main { padding: 16px 20px 20px; }
.section-title { font-size: 15px; font-weight: 600; margin: 0 0 10px; }
.markdown h2 { font-size: 18px; font-weight: 600; margin: 4px 0 10px; }
.markdown h3 { font-size: 15px; font-weight: 600; margin: 16px 0 8px; }
.markdown p { margin: 8px 0; }
.markdown table { border-collapse: collapse; margin: 10px 0; }
.markdown th, .markdown td { border: 1px solid #d1d1d1; padding: 4px 8px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
.markdown th { font-weight: 600; background: #f4f4f4; }
.markdown code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
.markdown a { color: #0078d4; text-decoration: none; }
`;

/** Anything that would name a test machine rather than Azure DevOps and the clouds. */
export const EMULATOR_ADDRESS = /127\.0\.0\.1|localhost|\[::1\]|0\.0\.0\.0/i;

/** The title the Extensions tab gives an uploaded summary: its file name without `.md`. */
export function summaryTitle(summaryFile: string): string {
  return path.basename(summaryFile).replace(/\.md$/i, '');
}

interface MarkdownIt {
  render(src: string): string;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The page: the section's title, then the rendered markdown. A script writes the content's size
 * into the body's data-content-size (read back with --dump-dom); it draws nothing.
 */
export function renderSummaryHtml(markdown: string, title: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const markdownIt = require('markdown-it') as (options: Record<string, unknown>) => MarkdownIt;
  const body = markdownIt({ html: true, linkify: true }).render(markdown);
  const measure = `<script>const r = document.querySelector('main').getBoundingClientRect(); document.body.dataset.contentSize = Math.ceil(Math.max(r.right, document.documentElement.scrollWidth)) + 'x' + Math.ceil(r.bottom);</script>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${CSS}</style></head><body><main><div class="section-title">${escapeHtml(title)}</div><div class="markdown">${body}</div></main>${measure}</body></html>`;
}

function runChromium(html: string, args: string[], collect: boolean): Promise<string> {
  const chromium = chromiumBinary();
  if (!chromium) throw new Error('chromium is not installed: apt-get install -y chromium');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-shot-'));
  const page = path.join(dir, 'summary.html');
  fs.writeFileSync(page, html);
  const all = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--hide-scrollbars', '--force-device-scale-factor=1', `--user-data-dir=${path.join(dir, 'profile')}`,
    ...args, `file://${page}`,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(chromium, all, { stdio: ['ignore', collect ? 'pipe' : 'ignore', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      if (code === 0) resolve(out);
      else reject(new Error(`chromium exited ${code}: ${err.slice(-1000)}`));
    });
  });
}

/** The content's width and height at a window `width` wide, as laid out by Chromium. */
export async function contentSize(html: string, width: number): Promise<{ width: number; height: number }> {
  const dom = await runChromium(html, [`--window-size=${width},800`, '--dump-dom'], true);
  const m = /data-content-size="(\d+)x(\d+)"/.exec(dom);
  assert.ok(m, `the page reported its size:\n${dom.slice(0, 500)}`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

export async function screenshot(html: string, pngFile: string, size: { width: number; height: number }): Promise<void> {
  await runChromium(html, [`--window-size=${size.width},${size.height}`, `--screenshot=${pngFile}`], false);
  if (!fs.existsSync(pngFile)) throw new Error(`chromium wrote no ${pngFile}`);
}

/** A PNG's width and height, from its IHDR chunk. */
export function pngSize(png: Buffer): { width: number; height: number } {
  assert.equal(png.subarray(1, 4).toString(), 'PNG', 'a PNG');
  assert.equal(png.subarray(12, 16).toString(), 'IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

export interface Picture {
  file: string;
  width: number;
  height: number;
  content: { width: number; height: number };
}

/**
 * Takes the picture of the summary `summaryFile` (what the task uploaded) into `pngName` under
 * SCREENSHOT_DIR (npm run screenshots: images/) or build/screenshots (npm test: no tracked file
 * changes). Asserts that neither the markdown nor the page names an emulator address (nor any of
 * `forbidden`, such as the emulator's host:port), that the content fits the width, and that the
 * picture is as tall as the whole content.
 */
export async function summaryPicture(summaryFile: string, pngName: string, forbidden: string[] = []): Promise<Picture> {
  const markdown = fs.readFileSync(summaryFile, 'utf8');
  const title = summaryTitle(summaryFile);
  const html = renderSummaryHtml(markdown, title);
  for (const [what, text] of [['summary markdown', markdown], ['rendered page', html]] as const) {
    assert.doesNotMatch(text, EMULATOR_ADDRESS, `the ${what} of the picture names a test machine`);
    for (const f of forbidden) assert.ok(!text.includes(f), `the ${what} of the picture holds ${f}`);
  }
  const content = await contentSize(html, PICTURE_WIDTH);
  assert.ok(content.width <= PICTURE_WIDTH, `the content (${content.width} px wide) fits the picture's ${PICTURE_WIDTH} px`);
  const root = path.resolve(__dirname, '..', '..', '..');
  const dir = path.resolve(root, process.env.SCREENSHOT_DIR ?? path.join('build', 'screenshots'));
  fs.mkdirSync(dir, { recursive: true });
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-shot-out-'));
  try {
    const tmp = path.join(tmpDir, pngName);
    await screenshot(html, tmp, { width: PICTURE_WIDTH, height: content.height });
    const png = fs.readFileSync(tmp);
    const size = pngSize(png);
    assert.equal(size.width, PICTURE_WIDTH);
    assert.ok(size.height >= content.height, `the picture (${size.height} px) covers the whole content (${content.height} px): every row visible`);
    assert.ok(png.length > 10_000, `a real picture, not a blank page (${png.length} bytes)`);
    const file = path.join(dir, pngName);
    fs.copyFileSync(tmp, file);
    return { file, ...size, content };
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}
