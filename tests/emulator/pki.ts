import * as crypto from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { b64url } from './jwt';

const execFileAsync = promisify(execFile);

// Certificates live a week: long enough for a cached PKI dir to be reused across runs of the CLI,
// short enough that a leaked test CA is worthless soon.
const VALIDITY_DAYS = 7;
// A cached certificate closer than this to its end is regenerated rather than reused.
const MIN_REMAINING_MS = 24 * 3600 * 1000;

export interface SigningKey {
  privateKey: crypto.KeyObject;
  publicKey: crypto.KeyObject;
  kid: string;
  /** self-signed certificate of the key, as Entra publishes in x5c (Entra key only) */
  certPem?: string;
  x5t?: string;
}

export interface Pki {
  dir: string;
  caCertPath: string;
  caCertPem: string;
  caKeyPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** signs idTokens (the Azure DevOps issuer) */
  devops: SigningKey;
  /** signs access tokens (Entra, and IMDS tokens) */
  entra: SigningKey;
  /** signs Azure Container Registry refresh and access tokens; its certificate is docker-registry's rootcertbundle */
  registry: SigningKey & { certPem: string; certPath: string };
}

interface Material {
  caCertPem: string;
  caKeyPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  devopsKeyPem: string;
  entraKeyPem: string;
  entraCertPem: string;
  registryKeyPem: string;
  registryCertPem: string;
}

const FILES: Record<keyof Material, string> = {
  caCertPem: 'ca.pem',
  caKeyPem: 'ca-key.pem',
  serverCertPem: 'server.pem',
  serverKeyPem: 'server-key.pem',
  devopsKeyPem: 'devops-signing-key.pem',
  entraKeyPem: 'entra-signing-key.pem',
  entraCertPem: 'entra-signing.pem',
  registryKeyPem: 'registry-signing-key.pem',
  registryCertPem: 'registry-signing.pem',
};

// OpenSSL reads its defaults from the system config, which differs between distributions; a config
// of our own makes the extensions the same everywhere.
// The services' real public names, so that a test can reach the emulator only through a proxy
// that maps them to it: those names do not resolve on a test machine, so nothing goes direct.
export const PUBLIC_HOST_NAMES = [
  'dev.azure.com', 'vsrm.dev.azure.com', 'vssps.dev.azure.com',
  'login.microsoftonline.com', 'login.microsoftonline.us', 'login.chinacloudapi.cn',
  'management.azure.com', 'management.usgovcloudapi.net', 'management.chinacloudapi.cn',
  'graph.microsoft.com', 'graph.microsoft.us', 'microsoftgraph.chinacloudapi.cn',
  '*.azurecr.io', '*.azurecr.us', '*.azurecr.cn',
  'sts.amazonaws.com', 'sts.us-east-1.amazonaws.com', 'sts.us-west-2.amazonaws.com', 'sts.eu-west-1.amazonaws.com', 'sts.eu-central-1.amazonaws.com',
  'sts.googleapis.com', 'iamcredentials.googleapis.com',
  'vault.fabrikam.com',
];
const PUBLIC_SANS = PUBLIC_HOST_NAMES.map((n) => `DNS:${n}`).join(', ');

const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, ${PUBLIC_SANS}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_signing]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
`;

// RSA key generation dominates start-up time; every emulator a test process starts reuses the first one's keys.
let generated: Promise<Material> | undefined;

export async function loadOrCreatePki(dir: string): Promise<Pki> {
  fs.mkdirSync(dir, { recursive: true });
  let material = readCached(dir);
  if (material && !coversPublicNames(material.serverCertPem)) {
    // Cached before a service's name was added (a dir reused across runs, the CLI's --dir): a new
    // server certificate from the same CA, so that whoever trusts the CA still does.
    material = { ...material, ...(await issueServerCertificate(material.caCertPem, material.caKeyPem)) };
    writeAtomically(path.join(dir, FILES.serverKeyPem), material.serverKeyPem, 0o600);
    writeAtomically(path.join(dir, FILES.serverCertPem), material.serverCertPem, 0o644);
  }
  if (!material) {
    generated ??= generate();
    try {
      material = await generated;
    } catch (e) {
      generated = undefined;
      throw e;
    }
    for (const [key, file] of Object.entries(FILES) as [keyof Material, string][]) {
      writeAtomically(path.join(dir, file), material[key], key.endsWith('KeyPem') ? 0o600 : 0o644);
    }
  }
  return toPki(dir, material);
}

function toPki(dir: string, m: Material): Pki {
  const devopsPrivate = crypto.createPrivateKey(m.devopsKeyPem);
  const devopsPublic = crypto.createPublicKey(devopsPrivate);
  const entraPrivate = crypto.createPrivateKey(m.entraKeyPem);
  const entraX5t = certificateThumbprints(m.entraCertPem).x5t;
  const registryPrivate = crypto.createPrivateKey(m.registryKeyPem);
  const registryPublic = crypto.createPublicKey(registryPrivate);
  return {
    dir,
    caCertPath: path.join(dir, FILES.caCertPem),
    caCertPem: m.caCertPem,
    caKeyPem: m.caKeyPem,
    serverCertPem: m.serverCertPem,
    serverKeyPem: m.serverKeyPem,
    devops: {
      privateKey: devopsPrivate,
      publicKey: devopsPublic,
      kid: b64url(crypto.createHash('sha1').update(devopsPublic.export({ type: 'spki', format: 'der' })).digest()),
    },
    entra: {
      privateKey: entraPrivate,
      publicKey: crypto.createPublicKey(entraPrivate),
      // Entra's keys use the certificate thumbprint as kid.
      kid: entraX5t,
      x5t: entraX5t,
      certPem: m.entraCertPem,
    },
    registry: {
      privateKey: registryPrivate,
      publicKey: registryPublic,
      kid: registryKid(registryPublic),
      x5t: certificateThumbprints(m.registryCertPem).x5t,
      certPem: m.registryCertPem,
      certPath: path.join(dir, FILES.registryCertPem),
    },
  };
}

function readCached(dir: string): Material | undefined {
  try {
    const m = {} as Material;
    for (const [key, file] of Object.entries(FILES) as [keyof Material, string][]) {
      m[key] = fs.readFileSync(path.join(dir, file), 'utf8');
    }
    const ca = new crypto.X509Certificate(m.caCertPem);
    const server = new crypto.X509Certificate(m.serverCertPem);
    const entra = new crypto.X509Certificate(m.entraCertPem);
    const registry = new crypto.X509Certificate(m.registryCertPem);
    const fresh = (c: crypto.X509Certificate) => Date.parse(c.validTo) - Date.now() > MIN_REMAINING_MS;
    if (![ca, server, entra, registry].every(fresh)) return undefined;
    if (!server.checkIssued(ca) || !server.verify(ca.publicKey)) return undefined;
    if (!ca.checkPrivateKey(crypto.createPrivateKey(m.caKeyPem))) return undefined;
    if (!server.checkPrivateKey(crypto.createPrivateKey(m.serverKeyPem))) return undefined;
    if (!entra.checkPrivateKey(crypto.createPrivateKey(m.entraKeyPem))) return undefined;
    if (!registry.checkPrivateKey(crypto.createPrivateKey(m.registryKeyPem))) return undefined;
    crypto.createPrivateKey(m.devopsKeyPem);
    return m;
  } catch {
    return undefined;
  }
}

/** Whether a server certificate names 127.0.0.1, localhost and every public name (PUBLIC_HOST_NAMES). */
export function coversPublicNames(serverCertPem: string): boolean {
  const sans = new Set((new crypto.X509Certificate(serverCertPem).subjectAltName ?? '').split(/,\s*/));
  return sans.has('IP Address:127.0.0.1') && ['localhost', ...PUBLIC_HOST_NAMES].every((n) => sans.has(`DNS:${n}`));
}

/** A new TLS key and its certificate for 127.0.0.1, localhost and the public names, signed by the CA. */
async function issueServerCertificate(caCertPem: string, caKeyPem: string): Promise<Pick<Material, 'serverCertPem' | 'serverKeyPem'>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-pki-'));
  try {
    // The TLS key is EC: an RSA key would add a third of a second to every cold start, and
    // nothing that talks to the emulator minds an ECDSA server certificate.
    const serverKeyPem = await generateKeyPem('ec', { namedCurve: 'P-256' });
    const file = (name: string, content: string) => {
      const p = path.join(work, name);
      fs.writeFileSync(p, content, { mode: 0o600 });
      return p;
    };
    const cnf = file('openssl.cnf', OPENSSL_CNF);
    const serverCertPem = await openssl([
      'req', '-x509', '-new', '-config', cnf, '-extensions', 'v3_server', '-key', file('server-key.pem', serverKeyPem), '-sha256',
      '-CA', file('ca.pem', caCertPem), '-CAkey', file('ca-key.pem', caKeyPem), '-days', String(VALIDITY_DAYS), '-subj', '/CN=127.0.0.1',
    ]);
    return { serverCertPem, serverKeyPem };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function generate(): Promise<Material> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-pki-'));
  try {
    const rsa = () => generateKeyPem('rsa', { modulusLength: 2048 });
    const [caKeyPem, devopsKeyPem, entraKeyPem, registryKeyPem] = await Promise.all([rsa(), rsa(), rsa(), rsa()]);
    const cnf = path.join(work, 'openssl.cnf');
    fs.writeFileSync(cnf, OPENSSL_CNF);
    const file = (name: string, content: string) => {
      const p = path.join(work, name);
      fs.writeFileSync(p, content, { mode: 0o600 });
      return p;
    };
    const caKey = file('ca-key.pem', caKeyPem);
    const entraKey = file('entra-key.pem', entraKeyPem);
    const registryKey = file('registry-key.pem', registryKeyPem);
    const caCertPem = await openssl([
      'req', '-x509', '-new', '-config', cnf, '-extensions', 'v3_ca', '-key', caKey, '-sha256',
      '-days', String(VALIDITY_DAYS), '-subj', '/O=Workload Identity Tasks/CN=Workload Identity Tasks Test CA',
    ]);
    const [{ serverCertPem, serverKeyPem }, entraCertPem, registryCertPem] = await Promise.all([
      issueServerCertificate(caCertPem, caKeyPem),
      openssl([
        'req', '-x509', '-new', '-config', cnf, '-extensions', 'v3_signing', '-key', entraKey, '-sha256',
        '-days', String(VALIDITY_DAYS), '-subj', '/CN=accounts.accesscontrol.windows.net',
      ]),
      // Self-signed: docker-registry's rootcertbundle holds this very certificate, and the access
      // tokens carry it in their x5c header.
      openssl([
        'req', '-x509', '-new', '-config', cnf, '-extensions', 'v3_signing', '-key', registryKey, '-sha256',
        '-days', String(VALIDITY_DAYS), '-subj', '/O=Workload Identity Tasks/CN=Azure Container Registry token signing',
      ]),
    ]);
    return { caCertPem, caKeyPem, serverCertPem, serverKeyPem, devopsKeyPem, entraKeyPem, entraCertPem, registryKeyPem, registryCertPem };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function generateKeyPem(type: 'rsa' | 'ec', options: { modulusLength: number } | { namedCurve: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | null, _pub: string, priv: string) => (err ? reject(err) : resolve(priv));
    const encoding = {
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    } as const;
    if (type === 'rsa') crypto.generateKeyPair('rsa', { ...(options as { modulusLength: number }), ...encoding }, cb);
    else crypto.generateKeyPair('ec', { ...(options as { namedCurve: string }), ...encoding }, cb);
  });
}

async function openssl(args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('openssl', args, { encoding: 'utf8' });
    return stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr || err.message}`);
  }
}

function writeAtomically(file: string, content: string, mode: number): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, content, { mode });
  fs.renameSync(tmp, file);
}

/**
 * The key id docker-registry (libtrust) computes for a public key: the SHA-256 of the DER SPKI cut
 * to 240 bits, in base32 groups of four joined by ':'. Registry tokens carry it as kid.
 */
export function registryKid(publicKey: crypto.KeyObject): string {
  const digest = crypto.createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of digest) bits += byte.toString(2).padStart(8, '0');
  let b32 = '';
  for (let i = 0; i < bits.length; i += 5) b32 += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return b32.match(/.{4}/g)!.join(':');
}

/** x5t is base64url(SHA-1 of the DER), x5t#S256 the same with SHA-256: what JWT headers carry. */
export function certificateThumbprints(certificatePem: string): { x5t: string; x5tS256: string; sha1Hex: string } {
  const der = new crypto.X509Certificate(certificatePem).raw;
  const sha1 = crypto.createHash('sha1').update(der).digest();
  return {
    x5t: b64url(sha1),
    x5tS256: b64url(crypto.createHash('sha256').update(der).digest()),
    sha1Hex: sha1.toString('hex').toUpperCase(),
  };
}

/** A self-signed RSA client certificate, synchronously (the public API is synchronous). */
export function makeSelfSignedCertificate(commonName: string): { certificatePem: string; privateKeyPem: string } {
  const { privateKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-client-'));
  try {
    const cnf = path.join(work, 'openssl.cnf');
    const keyFile = path.join(work, 'key.pem');
    fs.writeFileSync(cnf, OPENSSL_CNF);
    fs.writeFileSync(keyFile, privateKey, { mode: 0o600 });
    const certificatePem = execFileSync(
      'openssl',
      ['req', '-x509', '-new', '-config', cnf, '-extensions', 'v3_client', '-key', keyFile, '-sha256',
        '-days', String(VALIDITY_DAYS), '-subj', `/CN=${escapeRdn(commonName)}`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return { certificatePem, privateKeyPem: privateKey };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

// -subj treats / and = (and + for multi-valued RDNs) as syntax.
function escapeRdn(value: string): string {
  return value.replace(/[\\/=+]/g, (c) => `\\${c}`);
}
