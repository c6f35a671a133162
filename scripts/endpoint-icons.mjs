// Draws the contributed service connection types' icons (images/endpoints/*.png, 32x32 RGBA):
// a rounded square in the target's colour with a white key ring, the badge of "no stored secret".
// Run: node scripts/endpoint-icons.mjs. No image tool needed: PNG written with node:zlib.
import { deflateSync } from 'node:zlib';
import { mkdirSync, writeFileSync } from 'node:fs';

const SIZE = 32;
const ICONS = { aws: [0xff, 0x99, 0x00], gcp: [0x42, 0x85, 0xf4], oidc: [0x2e, 0x7d, 0x32] };

function crc32(buf) {
  let c, crc = 0xffffffff;
  for (const b of buf) {
    c = (crc ^ b) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

function draw([r, g, b], kind) {
  const rows = [];
  for (let y = 0; y < SIZE; y++) {
    const row = [0];
    for (let x = 0; x < SIZE; x++) {
      // Rounded square (radius 6).
      const cx = Math.min(Math.max(x, 6), SIZE - 7), cy = Math.min(Math.max(y, 6), SIZE - 7);
      const inside = Math.hypot(x - cx, y - cy) <= 6;
      // A key: ring at (12,16) and a shaft to the right with two teeth.
      const d = Math.hypot(x - 11.5, y - 15.5);
      const ring = d >= 3 && d <= 6;
      const shaft = x >= 17 && x <= 27 && y >= 14 && y <= 17;
      const teeth = (x >= 21 && x <= 22 && y >= 18 && y <= 21) || (kind !== 'oidc' && x >= 25 && x <= 26 && y >= 18 && y <= 20);
      const white = ring || shaft || teeth;
      if (!inside) row.push(0, 0, 0, 0);
      else if (white) row.push(255, 255, 255, 255);
      else row.push(r, g, b, 255);
    }
    rows.push(Buffer.from(row));
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(SIZE, 0); ihdr.writeUInt32BE(SIZE, 4);
  ihdr[8] = 8; ihdr[9] = 6; // 8-bit RGBA
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.concat(rows), { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

mkdirSync('images/endpoints', { recursive: true });
for (const [kind, colour] of Object.entries(ICONS)) writeFileSync(`images/endpoints/${kind}.png`, draw(colour, kind));
