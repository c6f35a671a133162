// Draws the extension's icons (a key inside a cloud-blue disc) as PNGs with no image library.
import fs from 'node:fs';
import path from 'node:path';
import { png } from './png.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

// Supersampled coverage of a shape gives smooth edges.
function draw(u, v) {
  const inDisc = (x, y) => (x - 0.5) ** 2 + (y - 0.5) ** 2 <= 0.47 ** 2;
  const inKey = (x, y) => {
    const ring = (x - 0.36) ** 2 + (y - 0.5) ** 2;
    if (ring <= 0.15 ** 2 && ring >= 0.07 ** 2) return true;
    if (x >= 0.49 && x <= 0.8 && Math.abs(y - 0.5) <= 0.035) return true;
    if (x >= 0.66 && x <= 0.71 && y >= 0.5 && y <= 0.62) return true;
    if (x >= 0.75 && x <= 0.8 && y >= 0.5 && y <= 0.66) return true;
    return false;
  };
  let disc = 0, key = 0;
  const n = 4;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    const x = u + (i - 1.5) / (n * 256), y = v + (j - 1.5) / (n * 256);
    if (inDisc(x, y)) { disc++; if (inKey(x, y)) key++; }
  }
  const d = disc / (n * n), k = key / (n * n);
  const blue = [0, 120, 212];
  const white = [255, 255, 255];
  const mix = blue.map((c, i) => Math.round(c * (1 - k / Math.max(d, 1e-9)) + white[i] * (k / Math.max(d, 1e-9))));
  return [...mix, Math.round(d * 255)];
}

fs.mkdirSync(path.join(root, 'images'), { recursive: true });
fs.writeFileSync(path.join(root, 'images', 'icon.png'), png(128, draw));
fs.writeFileSync(path.join(root, 'images', 'task-icon.png'), png(32, draw));
console.log('wrote images/icon.png (128 px) and images/task-icon.png (32 px)');
