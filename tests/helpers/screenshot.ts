/**
 * Renders a build summary (markdown) to HTML styled like the Azure DevOps summary tab and takes a
 * screenshot with Debian's headless Chromium, so the marketplace page shows what users get.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export function chromiumBinary(): string | undefined {
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (fs.existsSync(p)) return p;
  return undefined;
}

const CSS = `
body { font-family: "Segoe UI", "Helvetica Neue", Arial, sans-serif; font-size: 14px; color: #201f1e; margin: 0; background: #f8f8f8; }
.tab { margin: 24px; background: #fff; border-radius: 4px; box-shadow: 0 1px 3px rgba(0,0,0,.2); padding: 8px 24px 24px; }
.tabbar { font-size: 14px; color: #605e5c; border-bottom: 1px solid #eaeaea; padding: 12px 0; margin-bottom: 8px; }
.tabbar b { color: #0078d4; border-bottom: 2px solid #0078d4; padding-bottom: 10px; }
h2 { font-size: 20px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 12px 0; table-layout: fixed; }
th, td { border: 1px solid #e1dfdd; padding: 6px 10px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th:nth-child(1) { width: 11%; } th:nth-child(2) { width: 9%; } th:nth-child(3) { width: 44%; } th:nth-child(4) { width: 36%; }
th { background: #f3f2f1; font-weight: 600; }
td:nth-child(2) { white-space: nowrap; }
a { color: #0078d4; text-decoration: none; }
`;

/** `extraCss` adjusts the layout for a summary of another shape (column widths). */
export async function renderSummaryHtml(markdown: string, tabName: string, extraCss = ''): Promise<string> {
  // marked is ESM-first; load it the way both Node 20 and 24 can.
  const { marked } = (await import('marked')) as typeof import('marked');
  const body = await marked.parse(markdown);
  return `<!doctype html><html><head><meta charset="utf-8"><style>${CSS}${extraCss}</style></head><body><div class="tab"><div class="tabbar">Summary &nbsp; Logs &nbsp; Tests &nbsp; <b>${tabName}</b></div>${body}</div></body></html>`;
}

export function screenshot(html: string, pngFile: string, size = { width: 1280, height: 900 }): Promise<void> {
  const chromium = chromiumBinary();
  if (!chromium) throw new Error('chromium is not installed: apt-get install -y chromium');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-shot-'));
  const page = path.join(dir, 'summary.html');
  fs.writeFileSync(page, html);
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--hide-scrollbars', `--user-data-dir=${path.join(dir, 'profile')}`,
    `--window-size=${size.width},${size.height}`, `--screenshot=${pngFile}`, `file://${page}`,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(chromium, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      if (code === 0 && fs.existsSync(pngFile)) resolve();
      else reject(new Error(`chromium exited ${code}: ${err.slice(-1000)}`));
    });
  });
}
