/**
 * Test-only, never shipped: preloaded into Windows node.exe under Wine (`node.exe -r <this>`) by
 * tests/helpers/wine.ts. Node under Wine 8 cannot open a Unix pipe as a stdio stream
 * (`Error: open EBADF` in createWritableStdioStream, on the first console.log), so before anything
 * touches them, process.stdout, process.stderr and process.stdin are replaced by plain streams that
 * read and write fds 0, 1 and 2 synchronously, which Wine passes through.
 */
import * as fs from 'node:fs';
import { Readable, Writable } from 'node:stream';

function writer(fd: number): Writable {
  const w = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      try {
        let off = 0;
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
        callback();
      } catch (e) {
        callback(e as Error);
      }
    },
  });
  Object.assign(w, { fd, isTTY: false, _isStdio: true });
  return w;
}

function reader(fd: number): Readable {
  const r = new Readable({
    read() {
      const buf = Buffer.alloc(65536);
      let n = 0;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null);
      } catch {
        n = 0;
      }
      this.push(n > 0 ? buf.subarray(0, n) : null);
    },
  });
  Object.assign(r, { fd, isTTY: false });
  return r;
}

const streams: Record<'stdin' | 'stdout' | 'stderr', () => Readable | Writable> = { stdin: () => reader(0), stdout: () => writer(1), stderr: () => writer(2) };
for (const [name, make] of Object.entries(streams)) {
  let stream: Readable | Writable | undefined;
  Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => (stream ??= make()) });
}
