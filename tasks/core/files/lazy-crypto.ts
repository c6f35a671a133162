/**
 * node:crypto, required on first use. Loading it costs a post-job step about 5 ms of its start-up
 * on Node 24, and most post-job paths (removing a job's files) never need it.
 */
type Crypto = typeof import('node:crypto');

function nodeCrypto(): Crypto {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:crypto') as Crypto;
}

export function randomHex(bytes: number): string {
  return nodeCrypto().randomBytes(bytes).toString('hex');
}

export function sha256Hex(data: string | Buffer): string {
  return nodeCrypto().createHash('sha256').update(data).digest('hex');
}
