// Draws the extension's icons (a key inside a cloud-blue disc) as PNGs with no image library.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

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
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

function png(size, pixel) {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      const [r, g, b, a] = pixel((x + 0.5) / size, (y + 0.5) / size);
      raw.set([r, g, b, a], y * (size * 4 + 1) + 1 + x * 4);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

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
