/**
 * The Azure DevOps Oidctoken API: an idToken for a service connection, for this job.
 * Order: the idToken the agent supplied with the endpoint (while it is fresh), then
 * System.OidcRequestUri, then the URL built from the collection, project, plan and job.
 */
import { mask } from '../agent/variables';
import { PipelineContext } from '../agent/pipeline-context';
import { decodeJwt, JwtClaims } from './claims';
import { explainHttpStatus, TaskFailure } from '../http/failures';
import { debug } from '../agent/output';
import { header, parseJson } from '../http/http';
import { oidcRequestUrl } from '../http/token-hosts';

export const OIDC_SERVICE = 'the Azure DevOps Oidctoken API';

export interface IdToken {
  token: string;
  claims: JwtClaims;
  source: 'agent' | 'oidctoken-api';
}

/**
 * Whom the idToken is for: a service connection of any type (an AzureRM Connection is one), or,
 * with no id, the pipeline itself (no serviceConnectionId: the pipeline's own token,
 * sub p://<org>/<project>/<pipeline>) [gravitational/teleport rfd/0211-azure-devops-joining.md].
 */
export interface OidcSubject {
  id?: string;
  serverIdToken?: string;
  tenantId?: string;
  clientId?: string;
  /** Whether the connection is an Azure Resource Manager one (the messages then speak of federation). */
  scheme?: string;
}

/** A server-supplied idToken is used only while it has at least this long to live. */
const MIN_REMAINING_MS = 120_000;


export class OidcTokenClient {
  private usedServerToken = false;

  constructor(private readonly ctx: PipelineContext, private readonly conn: OidcSubject, private readonly now: () => number = Date.now) {}

  /** A fresh idToken for the connection, masked before it is returned. */
  async fetch(): Promise<IdToken> {
    const server = this.conn.serverIdToken;
    if (server && !this.usedServerToken) {
      this.usedServerToken = true;
      const { claims } = decodeJwt(server, 'The idToken the agent supplied');
      if (typeof claims.exp !== 'number' || claims.exp * 1000 - this.now() > MIN_REMAINING_MS) {
        debug('Using the idToken the agent supplied with the service connection.');
        return { token: server, claims, source: 'agent' };
      }
      debug('The idToken the agent supplied is about to expire; requesting a fresh one.');
    }
    const url = oidcRequestUrl(this.ctx, this.conn.id);
    const res = await this.ctx.http.request({
      method: 'POST',
      url,
      service: OIDC_SERVICE,
      headers: { Authorization: `Bearer ${this.ctx.jobAccessToken()}`, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: '{}',
    });
    const contentType = header(res, 'content-type');
    const context = { connectionName: this.conn.id ?? '(the pipeline\'s own token)', tenantId: this.conn.tenantId ?? '', clientId: this.conn.clientId ?? '' };
    if (res.status !== 200 || /text\/html/i.test(contentType ?? '')) {
      throw explainHttpStatus(OIDC_SERVICE, url, res.status, res.body, contentType, context, res.retryAfterTooLong);
    }
    const json = parseJson<{ oidcToken?: string | null }>(res.body);
    if (!json || typeof json !== 'object') {
      // The body may hold a cut-off token: never show it.
      throw new TaskFailure({
        what: `${OIDC_SERVICE} answered HTTP 200 with a body that is not valid JSON (${res.body.length} bytes) for ${this.whom()}.`,
        cause: 'A proxy or the service cut the answer short.',
        fix: 'Re-run the job; if it persists, check the agent\'s proxy.',
        code: 'INVALID_JSON',
      });
    }
    const token = json.oidcToken;
    if (typeof token !== 'string' || !token) {
      const arm = this.conn.scheme !== undefined && this.conn.tenantId !== undefined;
      throw new TaskFailure({
        what: `${OIDC_SERVICE} answered without an idToken ("oidcToken": ${token === null ? 'null' : 'missing'}) for ${this.whom()}.`,
        cause: arm
          ? 'Azure DevOps issued no token for this connection in this job: it happens when an old run is re-run, and when the connection is not (or no longer) a workload identity federation connection.'
          : 'Azure DevOps issued no token in this job: it happens when an old run is re-run.',
        fix: arm
          ? 'Queue a new run instead of re-running the old one, and check in Project settings > Service connections that the connection uses workload identity federation.'
          : 'Queue a new run instead of re-running the old one.',
        code: 'NULL_OIDC_TOKEN',
      });
    }
    mask(token);
    const { claims } = decodeJwt(token, `The idToken from ${OIDC_SERVICE}`);
    return { token, claims, source: 'oidctoken-api' };
  }

  private whom(): string {
    return this.conn.id ? `service connection '${this.conn.id}'` : 'the pipeline (no service connection)';
  }
}
