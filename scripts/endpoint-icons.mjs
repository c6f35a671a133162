// Draws the contributed service connection types' icons (images/endpoints/*.png, 32x32 RGBA):
// a rounded square in the target's colour with a white key ring, the badge of "no stored secret".
// Run: node scripts/endpoint-icons.mjs. No image tool needed: PNG written with node:zlib.
import { png } from './png.mjs';
import { mkdirSync, writeFileSync } from 'node:fs';

const SIZE = 32;
const ICONS = { aws: [0xff, 0x99, 0x00], gcp: [0x42, 0x85, 0xf4], oidc: [0x2e, 0x7d, 0x32], vault: [0x14, 0x14, 0x14] };

function draw([r, g, b], kind) {
  return png(SIZE, (u, v) => {
    const x = Math.floor(u * SIZE), y = Math.floor(v * SIZE);
    // Rounded square (radius 6).
    const cx = Math.min(Math.max(x, 6), SIZE - 7), cy = Math.min(Math.max(y, 6), SIZE - 7);
    const inside = Math.hypot(x - cx, y - cy) <= 6;
    // A key: ring at (12,16) and a shaft to the right with two teeth.
    const d = Math.hypot(x - 11.5, y - 15.5);
    const ring = d >= 3 && d <= 6;
    const shaft = x >= 17 && x <= 27 && y >= 14 && y <= 17;
    const teeth = (x >= 21 && x <= 22 && y >= 18 && y <= 21) || (kind !== 'oidc' && x >= 25 && x <= 26 && y >= 18 && y <= 20);
    if (!inside) return [0, 0, 0, 0];
    return ring || shaft || teeth ? [255, 255, 255, 255] : [r, g, b, 255];
  });
}

mkdirSync('images/endpoints', { recursive: true });
for (const [kind, colour] of Object.entries(ICONS)) writeFileSync(`images/endpoints/${kind}.png`, draw(colour, kind));
