/**
 * Microsoft Entra ID through @azure/msal-node, for every scheme: a client-assertion callback for
 * federation (so each exchange gets a fresh idToken), a client secret, a certificate, or a
 * managed identity. MSAL's requests go through our HTTP layer (proxy, CA, timeouts, retries), and
 * it is given the authority's metadata so that it makes no discovery requests of its own.
 */
import crypto = require('node:crypto');
import { mask } from '../agent/variables';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { Connection } from '../devops/connection';
import { MANAGED_IDENTITY_ENVIRONMENT, PipelineContext } from '../agent/pipeline-context';
import { JwtClaims } from '../devops/claims';
import { aadstsCode, explainEntraError, explainHttpStatus, FailureContext, quoteServiceText, TaskFailure } from '../http/failures';
import { lookupServiceEndpoint } from '../devops/service-endpoint';
import { header, HttpClient, parseJson } from '../http/http';
import { debug, neutralize, safe, warn } from '../agent/output';

export const ENTRA_SERVICE = 'Microsoft Entra ID';

export interface AccessToken {
  token: string;
  expiresOn: Date;
  scope: string;
}

/** Supplies a fresh idToken for each client assertion, and remembers the claims it presented. */
export interface AssertionSource {
  fetch(): Promise<{ token: string; claims: JwtClaims }>;
}

/** Extra evidence for failure messages (the connection's expected issuer and subject, where known). */
export interface ExchangeContext {
  expected?: { issuer?: string; subject?: string };
}

interface EntraErrorBody {
  error?: string;
  error_description?: string;
  trace_id?: string;
  correlation_id?: string;
}

/** MSAL's network module, on our HTTP layer. It keeps what MSAL's errors lose: the server's own text. */
export class MsalNetwork implements INetworkModule {
  lastError?: EntraErrorBody;
  lastFailure?: TaskFailure;

  constructor(private readonly http: HttpClient, private readonly context: FailureContext) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options);
  }

  private async send<T>(method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    try {
      const res = await this.http.request({ method, url, service: ENTRA_SERVICE, headers: options?.headers, body: options?.body });
      const contentType = header(res, 'content-type');
      // MSAL would only see a throttling error; the HTTP layer knows the wait asked was too long.
      if (res.retryAfterTooLong) throw explainHttpStatus(ENTRA_SERVICE, url, res.status, res.body, contentType, this.context, res.retryAfterTooLong);
      const body = parseJson<T & EntraErrorBody>(res.body);
      if (body === undefined || body === null || typeof body !== 'object') {
        if (res.status >= 200 && res.status < 300) {
          // A success body may hold a cut-off token: say how long it was, never what it said.
          throw new TaskFailure({
            what: `${ENTRA_SERVICE} answered HTTP ${res.status} with a body that is not valid JSON (${res.body.length} bytes).`,
            cause: 'A proxy or gateway between the agent and Microsoft Entra ID altered the answer.',
            fix: 'Re-run the job; if it persists, check the agent\'s proxy settings.',
            code: 'INVALID_JSON',
          });
        }
        throw explainHttpStatus(ENTRA_SERVICE, url, res.status, res.body, contentType, this.context);
      }
      if (res.status >= 400) this.lastError = body;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      return { status: res.status, headers, body };
    } catch (e) {
      if (e instanceof TaskFailure) this.lastFailure = e;
      throw e;
    }
  }
}

/** The openid-configuration MSAL would otherwise fetch: Entra's are all of this shape. */
export function authorityMetadata(authorityHost: string, tenantId: string): string {
  const base = `${authorityHost}${tenantId}`;
  return JSON.stringify({
    token_endpoint: `${base}/oauth2/v2.0/token`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    issuer: `${base}/v2.0`,
    jwks_uri: `${base}/discovery/v2.0/keys`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
  });
}

/** One resource followed by /.default: what the client-credentials grant accepts. */
export function resourceOf(scope: string): string {
  return scope.replace(/\/\.default$/, '');
}

function certificateCredential(pem: string, connId: string): { thumbprintSha256: string; privateKey: string; x5c: string } {
  const certMatch = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  const keyMatch = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.exec(pem);
  if (!certMatch || !keyMatch) {
    throw new TaskFailure({
      what: `The certificate of service connection '${connId}' is not a PEM with both a certificate and its private key.`,
      cause: 'Azure DevOps expects the certificate and its unencrypted private key in one PEM.',
      fix: 'Convert the connection to workload identity federation, or edit it and paste a PEM holding both the CERTIFICATE and the PRIVATE KEY blocks.',
      code: 'BAD_CERTIFICATE',
    });
  }
  let cert: crypto.X509Certificate;
  let key: crypto.KeyObject;
  try {
    cert = new crypto.X509Certificate(certMatch[0]);
    key = crypto.createPrivateKey(keyMatch[0]);
  } catch (e) {
    throw new TaskFailure({
      what: `The certificate of service connection '${connId}' could not be read: ${(e as Error).message}.`,
      cause: 'The PEM is damaged or its key is encrypted.',
      fix: 'Convert the connection to workload identity federation, or paste a valid certificate with an unencrypted private key.',
      code: 'BAD_CERTIFICATE',
    });
  }
  if (new Date(cert.validTo).getTime() < Date.now()) {
    warn(safe`The certificate of service connection '${connId}' expired on ${new Date(cert.validTo).toISOString()}; Microsoft Entra ID will refuse it. Convert the connection to workload identity federation.`);
  }
  return {
    thumbprintSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
    privateKey: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    x5c: certMatch[0],
  };
}

function failureContext(conn: Connection, presented?: JwtClaims, extra?: ExchangeContext): FailureContext {
  return {
    connectionName: conn.id,
    tenantId: conn.tenantId,
    clientId: conn.clientId,
    scheme: conn.scheme,
    presented: presented ? { iss: presented.iss, sub: presented.sub, aud: presented.aud, exp: presented.exp } : undefined,
    expected: extra?.expected,
  };
}

function managedIdentityFailure(conn: Connection, description: string): TaskFailure {
  return new TaskFailure({
    what: `The agent's managed identity endpoint gave no token for service connection '${conn.id}'${conn.clientId ? ` (identity ${conn.clientId})` : ''}.`,
    cause: 'The agent does not run on an Azure VM or scale set with a managed identity, or the identity the connection names is not assigned to it.',
    fix: 'Assign the managed identity to the agent\'s VM or scale set (and give it access to the resources), or use a workload identity federation connection, which works on any agent.',
    evidence: [safe`  The endpoint said: ${quoteServiceText(description)}`],
    code: 'MANAGED_IDENTITY',
  });
}

/** Codes where the user must compare the token with the federated credential. */
const FEDERATION_MISMATCH = new Set([70021, 700211, 700212, 700213, 70025, 50013]);

/**
 * What Azure DevOps says the federated credential must hold, so the message can show the token's
 * claims beside them. Best effort: one extra request, on the failure path only.
 */
async function addExpectedFederation(ctx: PipelineContext, conn: Connection, context: FailureContext): Promise<void> {
  if (context.expected?.issuer && context.expected.subject) return;
  try {
    const lookup = await lookupServiceEndpoint(ctx, conn.id);
    if (!lookup.ok) return;
    const e = lookup.endpoint;
    context.expected = { issuer: e.federationIssuer, subject: e.federationSubject };
    if (e.name) context.connectionName = safe`${e.name} (${conn.id})`;
  } catch (err) {
    debug(safe`Could not read the service connection from Azure DevOps: ${(err as Error).message}`);
  }
}

/** Loaded only when a run exchanges a token: the common path of FetchOidcToken never needs it. */
function msal(): typeof import('@azure/msal-node') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@azure/msal-node');
}

/**
 * Waits for `pending`, a request just started (an idToken's, say), and compiles MSAL (some 15 ms)
 * while it is in flight: the request leaves on the event loop's next turn, then MSAL loads while
 * the network and the service do their part. A failure to load is left for acquireAccessToken to report.
 */
export async function loadMsalWhile<T>(pending: Promise<T>): Promise<T> {
  const loaded = new Promise<void>((resolve) => setImmediate(() => {
    try {
      msal();
    } catch {
      // reported where MSAL is used
    }
    resolve();
  }));
  const [value] = await Promise.all([pending, loaded]);
  return value;
}

function msalLogger() {
  return {
    piiLoggingEnabled: false,
    logLevel: 1 /* Warning */,
    loggerCallback: (_level: number, message: string) => debug(safe`msal: ${message}`),
  };
}

/**
 * Exchanges the connection's credential for an access token for `scope`.
 * `assertions` supplies idTokens for federation; it is called once per exchange.
 */
export async function acquireAccessToken(ctx: PipelineContext, conn: Connection, scope: string, assertions?: AssertionSource, extra?: ExchangeContext): Promise<AccessToken> {
  let presented: JwtClaims | undefined;
  const network = new MsalNetwork(ctx.http, failureContext(conn));
  const { ConfidentialClientApplication, ManagedIdentityApplication } = msal();
  let result: { accessToken: string; expiresOn: Date | null } | null;
  try {
    if (conn.scheme === 'ManagedServiceIdentity') {
      const variables = ctx.managedIdentityVariables ?? [];
      if (variables.length) {
        throw new TaskFailure({
          what: safe`The managed identity request for service connection '${conn.id}' was not sent: the pipeline variable ${variables.join(', ')} would choose where it goes.`,
          cause: `msal-node finds the managed identity endpoint through the environment variables ${MANAGED_IDENTITY_ENVIRONMENT.join(', ')}, and the agent passes every pipeline variable to the task as one; a variable (set in the pipeline, at queue time or by an earlier step) must not move a token request.`,
          fix: safe`Remove the pipeline variable ${variables.join(', ')}. The managed identity endpoint is the agent machine's setting, not the pipeline's.`,
          code: 'TOKEN_HOST',
        });
      }
      const app = new ManagedIdentityApplication({
        managedIdentityIdParams: conn.clientId ? { userAssignedClientId: conn.clientId } : undefined,
        system: { networkClient: network, disableInternalRetries: true, loggerOptions: msalLogger() },
      });
      result = await app.acquireToken({ resource: resourceOf(scope), forceRefresh: true });
    } else {
      const auth: import('@azure/msal-node').NodeAuthOptions = {
        clientId: conn.clientId,
        authority: `${conn.authorityHost}${conn.tenantId}`,
        knownAuthorities: [new URL(conn.authorityHost).host],
        authorityMetadata: authorityMetadata(conn.authorityHost, conn.tenantId),
      };
      if (conn.scheme === 'WorkloadIdentityFederation') {
        if (!assertions) throw new Error('a federated exchange needs an idToken source');
        auth.clientAssertion = async () => {
          const idToken = await assertions.fetch();
          presented = idToken.claims;
          return idToken.token;
        };
      } else if (conn.scheme === 'ServicePrincipalSecret') {
        auth.clientSecret = conn.clientSecret;
      } else {
        auth.clientCertificate = certificateCredential(conn.clientCertificatePem ?? '', conn.id);
      }
      const app = new ConfidentialClientApplication({ auth, system: { networkClient: network, loggerOptions: msalLogger() } });
      result = await app.acquireTokenByClientCredential({ scopes: [scope], skipCache: true });
    }
  } catch (e) {
    if (e instanceof TaskFailure) throw e;
    if (network.lastFailure) throw network.lastFailure;
    const err = e as { errorCode?: string; errorMessage?: string; message?: string };
    // Only a string error_description is the service's text; any other shape is not quoted.
    const said = network.lastError?.error_description;
    const description = (typeof said === 'string' ? said : undefined) ?? err.errorMessage ?? err.message ?? String(e);
    if (conn.scheme === 'ManagedServiceIdentity') throw managedIdentityFailure(conn, description);
    if (network.lastError || /AADSTS\d+/.test(description)) {
      const context = failureContext(conn, presented, extra);
      if (conn.scheme === 'WorkloadIdentityFederation' && FEDERATION_MISMATCH.has(aadstsCode(description) ?? 0)) await addExpectedFederation(ctx, conn, context);
      // Entra's text is kept line by line (its first line is what is shown), each line made inert.
      throw explainEntraError(description.split(/\r?\n/).map(neutralize).join('\n'), context, network.lastError);
    }
    throw new TaskFailure({
      what: `The token request to ${ENTRA_SERVICE} for service connection '${neutralize(conn.id)}' failed: ${neutralize(quoteServiceText(description))}`,
      cause: 'MSAL could not complete the request.',
      fix: 'Re-run with system.debug=true to see MSAL\'s log.',
      code: err.errorCode ? `MSAL_${err.errorCode}` : 'MSAL',
    });
  }
  if (!result?.accessToken) {
    throw new TaskFailure({ what: `${ENTRA_SERVICE} returned no access token for service connection '${conn.id}'.`, cause: 'An unexpected answer.', fix: 'Re-run the job.', code: 'NO_ACCESS_TOKEN' });
  }
  mask(result.accessToken);
  return { token: result.accessToken, expiresOn: result.expiresOn ?? new Date(Date.now() + 3600_000), scope };
}
