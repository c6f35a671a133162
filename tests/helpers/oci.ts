/**
 * A small OCI image built with Node alone, and skopeo (Debian's, 1.9) to push it to and pull it
 * from a registry behind the emulator, with TLS verified against the emulator's CA.
 *
 * skopeo() is asynchronous: the emulator usually runs in the test's own process, and a synchronous
 * child would block the event loop that has to answer skopeo's requests.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Emulator } from '../emulator/index';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const SKOPEO_TIMEOUT_MS = 60_000;

export interface SkopeoResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SkopeoOptions {
  /** --authfile (a containers-auth.json / docker config.json: {"auths": {...}}) */
  authfile?: string;
  /** a directory with ca.crt: --src-cert-dir/--dest-cert-dir for copy, --cert-dir otherwise (see certDirFor) */
  certDir?: string;
  /** added to (and overriding) this process's environment */
  env?: Record<string, string>;
}

// --- the image --------------------------------------------------------------------------------

/**
 * Writes an OCI image layout to dir (created if missing): oci-layout, index.json naming the image
 * by tag, a config and one gzip'd tar layer with a small text file, all addressed by sha256. The
 * same tag gives the same bytes, so the same digest, every time.
 */
export function makeOciLayout(dir: string, tag = 'v1'): { layout: string; manifestDigest: string } {
  const blobs = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer) => {
    const hex = crypto.createHash('sha256').update(data).digest('hex');
    fs.writeFileSync(path.join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };

  const tar = tarArchive([{ name: 'hello.txt', content: Buffer.from(`Hello from Workload Identity Tasks (${tag})\n`) }]);
  const diffId = `sha256:${crypto.createHash('sha256').update(tar).digest('hex')}`;
  const layer = put(zlib.gzipSync(tar, { level: 9 }));
  const config = put(
    Buffer.from(
      JSON.stringify({
        created: '2024-01-01T00:00:00Z',
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/cat', '/hello.txt'] },
        rootfs: { type: 'layers', diff_ids: [diffId] },
        history: [{ created: '2024-01-01T00:00:00Z', created_by: 'tests/helpers/oci.ts makeOciLayout' }],
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, ...config },
        layers: [{ mediaType: OCI_LAYER_GZIP, ...layer }],
      }),
    ),
  );
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: OCI_MANIFEST, ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return { layout: dir, manifestDigest: manifest.digest };
}

/** A POSIX ustar archive of regular files (mode 0644, owner 0, mtime 0). */
function tarArchive(files: { name: string; content: Buffer }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    if (Buffer.byteLength(f.name) > 100) throw new Error(`tar name too long: ${f.name}`);
    const h = Buffer.alloc(512);
    const field = (offset: number, length: number, value: string) => h.write(value, offset, length, 'utf8');
    const octal = (offset: number, length: number, n: number) => field(offset, length, `${n.toString(8).padStart(length - 1, '0')}\0`);
    field(0, 100, f.name);
    octal(100, 8, 0o644);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, f.content.length);
    octal(136, 12, 0);
    field(148, 8, '        '); // checksum counts as spaces while it is summed
    field(156, 1, '0');
    field(257, 6, 'ustar\0');
    field(263, 2, '00');
    field(265, 32, 'root');
    field(297, 32, 'root');
    let sum = 0;
    for (const byte of h) sum += byte;
    field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    blocks.push(h, f.content, Buffer.alloc((512 - (f.content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

// --- skopeo -----------------------------------------------------------------------------------

export function skopeoBinary(): string | undefined {
  if (fs.existsSync('/usr/bin/skopeo')) return '/usr/bin/skopeo';
  const which = spawnSync('sh', ['-c', 'command -v skopeo'], { encoding: 'utf8' });
  return which.stdout?.trim() || undefined;
}

const certDirs = new WeakMap<Emulator, string>();

/**
 * A directory with the emulator's CA as ca.crt, which skopeo (containers/image) adds to the system
 * roots for the registry. It lives in the emulator's PKI directory, so emu.stop() removes it.
 */
export function certDirFor(emu: Emulator): string {
  let dir = certDirs.get(emu);
  if (!dir || !fs.existsSync(dir)) {
    dir = path.join(path.dirname(emu.caCertPath), 'registry-certs');
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(emu.caCertPath, path.join(dir, 'ca.crt'));
    certDirs.set(emu, dir);
  }
  return dir;
}

/**
 * Runs skopeo with args (subcommand first, e.g. ['copy', src, dst]); the auth file and the CA
 * directory go in after the subcommand. TLS is always verified. Signature policy: copy gets
 * --insecure-policy unless args bring --policy (the images are unsigned; nothing to do with TLS).
 */
export function skopeo(args: string[], options: SkopeoOptions = {}): Promise<SkopeoResult> {
  const bin = skopeoBinary();
  if (!bin) return Promise.reject(new Error('skopeo is not installed: apt-get install -y skopeo'));
  if (args.some((a) => /^--(src-|dest-)?tls-verify=(false|0|f)$/i.test(a))) {
    return Promise.reject(new Error('TLS verification stays on: give certDir instead of --tls-verify=false'));
  }
  const i = args.findIndex((a) => !a.startsWith('-'));
  if (i < 0) return Promise.reject(new Error('skopeo needs a subcommand'));
  const sub = args[i];
  const global = args.slice(0, i);
  const rest = args.slice(i + 1);
  const copying = sub === 'copy' || sub === 'sync';
  if (copying && !args.some((a) => a === '--policy' || a.startsWith('--policy='))) global.push('--insecure-policy');
  const added: string[] = [];
  if (options.authfile) added.push('--authfile', options.authfile);
  if (options.certDir) {
    if (copying) added.push('--src-cert-dir', options.certDir, '--dest-cert-dir', options.certDir);
    else added.push('--cert-dir', options.certDir);
  }
  const full = [...global, sub, ...added, ...rest];
  return new Promise((resolve, reject) => {
    const child = spawn(bin, full, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(skopeo killed after ${SKOPEO_TIMEOUT_MS} ms)`;
      child.kill('SIGKILL');
    }, SKOPEO_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

function dockerRef(ref: string): string {
  return ref.startsWith('docker://') ? ref : `docker://${ref}`;
}

/**
 * Pushes the image tagged srcTag in the OCI layout to ref (e.g. `${loginServer}/app:v1`, with or
 * without docker://). Resolves with skopeo's result whether or not it worked, so that a test can
 * also expect a refusal.
 */
export function push(emu: Emulator, layout: string, ref: string, authfile: string, srcTag = 'v1'): Promise<SkopeoResult> {
  return skopeo(['copy', `oci:${layout}:${srcTag}`, dockerRef(ref)], { authfile, certDir: certDirFor(emu) });
}

/**
 * Copies ref back into a fresh OCI layout and returns the digest of the manifest that came back
 * (to compare with makeOciLayout's manifestDigest). Throws with skopeo's stderr when it fails.
 */
export async function pullDigest(emu: Emulator, ref: string, authfile: string): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-oci-pull-'));
  try {
    const r = await skopeo(['copy', dockerRef(ref), `oci:${dir}:pulled`], { authfile, certDir: certDirFor(emu) });
    if (r.code !== 0) throw new Error(`skopeo copy ${ref} failed (exit ${r.code}):\n${r.stderr}`);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const digest = index.manifests[0]?.digest;
    if (!digest) throw new Error(`skopeo copied ${ref} but wrote no manifest`);
    // The layout verifies what skopeo wrote: the manifest blob must hash to its name.
    const blob = fs.readFileSync(path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    if (`sha256:${crypto.createHash('sha256').update(blob).digest('hex')}` !== digest) throw new Error(`manifest blob of ${ref} does not match ${digest}`);
    return digest;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
