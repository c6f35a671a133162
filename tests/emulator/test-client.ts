/** The plain HTTPS client the emulator's self-tests talk to it with, trusting its CA. */
import * as https from 'node:https';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function httpsRequest(target: URL | https.RequestOptions, options: { method: string; ca: string; headers?: Record<string, string>; body?: string; timeoutMs?: number }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const reqOptions: https.RequestOptions = { method: options.method, ca: options.ca, agent: false, headers: options.headers };
    const onResponse = (res: import('node:http').IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    };
    const req = target instanceof URL ? https.request(target, reqOptions, onResponse) : https.request({ ...target, ...reqOptions, headers: { ...target.headers, ...options.headers } }, onResponse);
    if (options.timeoutMs) req.setTimeout(options.timeoutMs, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.on('error', reject);
    req.end(options.body);
  });
}
