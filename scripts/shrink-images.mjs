// Shrinks the marketplace pictures that `npm run screenshots` renders: a page of dark text on white
// in 16 colours (4-bit, no dithering) is under a third of the size and looks the same, and the .vsix
// carries them. Uses Debian's pngquant when it is installed (apt-get install pngquant); otherwise
// leaves the pictures as they are.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const pictures = ['validate-summary.png', 'audit-summary.png'].map((f) => path.join(root, 'images', f));
if (spawnSync('pngquant', ['--version']).status !== 0) {
  console.log('pngquant is not installed (apt-get install pngquant): the pictures keep their full size.');
  process.exit(0);
}
for (const file of pictures) {
  if (!fs.existsSync(file)) continue;
  const before = fs.statSync(file).size;
  const r = spawnSync('pngquant', ['--force', '--skip-if-larger', '--nofs', '--speed', '1', '--ext', '.png', '16', file], { encoding: 'utf8' });
  // 98/99: the quality or size bound was not met; the picture is left as it was.
  if (r.status !== 0 && r.status !== 98 && r.status !== 99) {
    console.error(`pngquant failed on ${path.relative(root, file)}: ${r.stderr}`);
    process.exit(1);
  }
  console.log(`${path.relative(root, file)}: ${(before / 1024).toFixed(0)} KiB -> ${(fs.statSync(file).size / 1024).toFixed(0)} KiB`);
}
