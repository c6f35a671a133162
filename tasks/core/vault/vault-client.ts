/**
 * HashiCorp Vault's HTTP API, as far as a pipeline needs it (protocols.md section 10): the JWT auth
 * method's login, the mount a path belongs to (sys/internal/ui/mounts, as `vault kv get` asks),
 * reads, and revoke-self. Every URL is built from the target's address and checked against it
 * before anything is sent: the idToken and the Vault token go there and nowhere else, and a
 * redirect is never followed.
 */
import { HttpClient, HttpResponse, header, parseJson } from '../http/http';
import { TaskFailure } from '../http/failures';
import { mask } from '../agent/variables';
import { safe } from '../agent/output';
import { JwtClaims } from '../devops/claims';
import { VaultTarget } from './vault-target';
import { explainLoginFailure, explainVaultStatus, VAULT_SERVICE } from './vault-errors';

export interface VaultLogin {
  token: string;
  /** Not a credential, but it names the token in Vault's audit log and `vault token revoke -accessor`. */
  accessor?: string;
  policies: string[];
  /** Seconds the token lives (the role's token_ttl). */
  leaseDuration: number;
  renewable: boolean;
  /** The entity alias Vault made from user_claim (the idToken's subject, usually). */
  metadata: Record<string, string>;
}

export interface MountInfo {
  /** The mount's path without trailing slash: secret, team/kv. */
  path: string;
  type: string;
  /** KV's version; undefined for other engines. */
  kvVersion?: 1 | 2;
}

/** A path's segments, each percent-encoded for the URL. */
export function encodePath(p: string): string {
  return p.split('/').filter(Boolean).map(encodeURIComponent).join('/');
}

export class VaultClient {
  constructor(private readonly http: HttpClient, readonly target: VaultTarget) {}

  /** The API URL of `apiPath` (already encoded), checked to be under the target's address. */
  url(apiPath: string): string {
    const url = `${this.target.address}/v1/${apiPath}`;
    const u = new URL(url);
    const base = new URL(this.target.address);
    if (u.origin !== base.origin || !u.pathname.startsWith(`${base.pathname.replace(/\/$/, '')}/v1/`)) {
      throw new TaskFailure({ what: 'A Vault request was about to leave the Vault address set for this task; refused.', cause: 'A defect in the task.', fix: 'Report it.', code: 'TOKEN_HOST' });
    }
    return url;
  }

  private request(method: 'GET' | 'POST', apiPath: string, token?: string, body?: string): Promise<HttpResponse> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.target.namespace) headers['X-Vault-Namespace'] = this.target.namespace;
    if (token) headers['X-Vault-Token'] = token;
    // Vault's own clients send it; Vault requires it on some endpoints to block browser forgeries.
    headers['X-Vault-Request'] = 'true';
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return this.http.request({ method, url: this.url(apiPath), service: VAULT_SERVICE, headers, ...(body !== undefined ? { body } : {}) });
  }

  /** POST auth/<mount>/login {role, jwt}: a Vault token, masked before it is returned. */
  async login(idToken: string, claims: JwtClaims): Promise<VaultLogin> {
    const t = this.target;
    const body = JSON.stringify(t.role ? { role: t.role, jwt: idToken } : { jwt: idToken });
    const res = await this.request('POST', `auth/${encodePath(t.authMount)}/login`, undefined, body);
    if (res.status !== 200) throw explainLoginFailure(t, res.status, res.body, header(res, 'content-type'), claims, res.url, res.retryAfterTooLong);
    const auth = (parseJson(res.body) as { auth?: Record<string, unknown> } | undefined)?.auth;
    const token = auth?.client_token;
    if (typeof token !== 'string' || !token) {
      throw new TaskFailure({
        what: safe`Vault at ${t.address} answered the login with HTTP 200 but no client_token (${res.body.length} bytes).`,
        cause: 'Something other than Vault answered at this address (a portal or proxy page), or the role wraps its tokens (response wrapping).',
        fix: 'Check the Vault address (what VAULT_ADDR is for your CLI), and that the role does not set token_type=batch with wrapping.',
        code: 'VAULT_NO_TOKEN',
      });
    }
    mask(token);
    const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    const metadata: Record<string, string> = {};
    if (auth?.metadata && typeof auth.metadata === 'object') {
      for (const [k, v] of Object.entries(auth.metadata as Record<string, unknown>)) if (typeof v === 'string') metadata[k] = v;
    }
    return {
      token,
      accessor: typeof auth?.accessor === 'string' ? auth.accessor : undefined,
      policies: strings(auth?.token_policies).length ? strings(auth?.token_policies) : strings(auth?.policies),
      leaseDuration: typeof auth?.lease_duration === 'number' ? auth.lease_duration : 0,
      renewable: auth?.renewable === true,
      metadata,
    };
  }

  /**
   * The mount `path` lies in, as the Vault CLI finds it. Vault answers 403 both for a path under no
   * mount and for one the token's policies grant nothing under, so that mounts cannot be probed.
   * A Vault older than 0.10 has no such endpoint (404): every mount was KV version 1 then.
   */
  async mountOf(token: string, path: string): Promise<MountInfo | { refused: HttpResponse }> {
    const res = await this.request('GET', `sys/internal/ui/mounts/${encodePath(path)}`, token);
    if (res.status === 404) return { path: path.split('/')[0], type: 'kv', kvVersion: 1 };
    if (res.status !== 200) return { refused: res };
    const data = (parseJson(res.body) as { data?: { path?: unknown; type?: unknown; options?: { version?: unknown } | null } } | undefined)?.data;
    const mountPath = typeof data?.path === 'string' ? data.path.replace(/^\/+|\/+$/g, '') : '';
    const type = typeof data?.type === 'string' ? data.type : 'unknown';
    const version = String(data?.options?.version ?? '1');
    return { path: mountPath || path.split('/')[0], type, ...(type === 'kv' || type === 'generic' ? { kvVersion: version === '2' ? 2 : 1 } : {}) };
  }

  /** GET <apiPath> with the token: the raw answer, for the caller to read or explain. */
  read(token: string, apiPath: string): Promise<HttpResponse> {
    return this.request('GET', encodePath(apiPath), token);
  }

  /**
   * POST auth/token/revoke-self: the token and every lease it made are revoked. Vault answers 403
   * both for a token it no longer knows (expired, revoked) and for one whose policies lack the
   * default policy's revoke-self: the caller tells them apart by the token's expiry.
   */
  async revokeSelf(token: string): Promise<{ revoked: true } | { revoked: false; refused: HttpResponse }> {
    const res = await this.request('POST', 'auth/token/revoke-self', token);
    if (res.status === 204 || res.status === 200) return { revoked: true };
    if (res.status === 403) return { revoked: false, refused: res };
    throw explainVaultStatus(this.target, res.status, res.body, header(res, 'content-type'), res.url, res.retryAfterTooLong);
  }
}
