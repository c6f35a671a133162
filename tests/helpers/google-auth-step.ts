/**
 * A later pipeline step that uses Google's own client library: google-auth-library reads
 * GOOGLE_APPLICATION_CREDENTIALS (the external_account file the task wrote), re-reads its token
 * file, and gets an access token through HTTPS_PROXY. Prints one JSON line: { token, clientEmail }
 * (the service account the library reads from the file, getCredentials().client_email) or { error }.
 * Run by Linux Node.js (tests/e2e/gcp-auth.test.ts) and by Windows node.exe under Wine
 * (tests/windows/windows.test.ts, with Windows paths in the file and its variables).
 */
import { GoogleAuth } from 'google-auth-library';

async function main(): Promise<void> {
  const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  const client = await auth.getClient();
  const { token } = await client.getAccessToken();
  const { client_email: clientEmail } = await auth.getCredentials();
  process.stdout.write(`${JSON.stringify({ token, clientEmail })}\n`);
}

main().catch((e: unknown) => {
  const describe = (x: unknown): string => {
    const err = x as { name?: string; code?: string; message?: string; cause?: unknown; errors?: unknown[] };
    const own = `${err?.name ?? ''} ${err?.code ?? ''} ${err?.message ?? String(x)}`.trim();
    const inner = [...(err?.errors ?? []), ...(err?.cause ? [err.cause] : [])].map(describe);
    return inner.length ? `${own} (${inner.join('; ')})` : own;
  };
  process.stdout.write(`${JSON.stringify({ error: describe(e) })}\n`);
  process.exitCode = 1;
});
