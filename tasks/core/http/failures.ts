/**
 * The failure catalogue: every failure a user can meet, turned into what failed, the likely
 * cause and the fix. Messages never contain a token: callers pass claims, not JWTs.
 */

export interface FailureDetails {
  /** What failed, in one sentence, naming the service and the connection. */
  what: string;
  /** The most likely cause, in the user's terms. */
  cause: string;
  /** What to do about it. */
  fix: string;
  /** Extra evidence (server text, presented and expected claims), shown after the fix. */
  evidence?: string[];
  /** A stable code for logs and tests: AADSTS700213, HTTP_203, TIMEOUT, ... */
  code?: string;
}

export class TaskFailure extends Error {
  readonly details: FailureDetails;

  constructor(details: FailureDetails) {
    super(formatFailure(details));
    this.name = 'TaskFailure';
    this.details = details;
  }

  get code(): string | undefined {
    return this.details.code;
  }
}

/** An input the user wrote is wrong: the message names the input and the fix. */
export class InputError extends TaskFailure {
  constructor(readonly input: string, problem: string, fix: string) {
    super({ what: `Input '${input}': ${problem}.`, cause: '', fix, code: 'INPUT' });
    this.name = 'InputError';
  }
}

export function formatFailure(d: FailureDetails): string {
  const lines = [d.what];
  if (d.cause) lines.push(`Likely cause: ${d.cause}`);
  lines.push(`Fix: ${d.fix}`);
  for (const e of d.evidence ?? []) lines.push(e);
  return lines.join('\n');
}

/** What we know about the connection when explaining a failure. */
export interface FailureContext {
  connectionName: string;
  tenantId?: string;
  clientId?: string;
  scheme?: string;
  /** Claims of the idToken that was presented (never the token itself). */
  presented?: { iss?: string; sub?: string; aud?: string | string[]; exp?: number };
  /** The issuer and subject Azure DevOps says the federated credential must have. */
  expected?: { issuer?: string; subject?: string };
}

interface AadstsEntry {
  meaning: string;
  cause: (c: FailureContext) => string;
  fix: (c: FailureContext) => string;
  showClaims?: boolean;
}

const APP_LINK = (c: FailureContext) =>
  c.clientId ? ` (Microsoft Entra admin center > App registrations > ${c.clientId} > Certificates & secrets > Federated credentials)` : '';

const CONVERT =
  'Convert the service connection to workload identity federation (Project settings > Service connections > the connection > "Convert"), ' +
  'or create a new Azure Resource Manager connection with "Workload identity federation"; then no secret expires again.';

/** AADSTS codes from protocols.md section 3, and a few neighbours users meet. */
export const AADSTS: Record<number, AadstsEntry> = {
  70021: {
    meaning: 'no federated credential matches the presented token',
    cause: () => 'No federated credential on the app registration matches the idToken\'s issuer, subject and audience together. Renaming the organization, project or service connection changes an sc:// subject.',
    fix: (c) => `Add or correct the federated credential${APP_LINK(c)} so that its issuer, subject and audience equal the token's (shown below).`,
    showClaims: true,
  },
  700211: {
    meaning: 'no federated credential matches the issuer',
    cause: () => 'The federated credential\'s issuer differs from the idToken\'s. Azure DevOps moved from the vstoken.dev.azure.com issuer to the Entra issuer (login.microsoftonline.com/<tenant>/v2.0); credentials made for one do not match the other.',
    fix: (c) => `Update the federated credential's issuer${APP_LINK(c)} to the token's issuer shown below (the connection's "Issuer" in Azure DevOps), or re-save the connection so Azure DevOps updates it.`,
    showClaims: true,
  },
  700213: {
    meaning: 'no federated credential matches the subject',
    cause: () => 'The federated credential\'s subject differs from the idToken\'s subject, typically after the organization, project or service connection was renamed.',
    fix: (c) => `Set the subject of the federated credential${APP_LINK(c)} to exactly the subject Azure DevOps presents, shown below (the connection's "Subject identifier" in Azure DevOps).`,
    showClaims: true,
  },
  700212: {
    meaning: 'no federated credential matches the audience',
    cause: () => 'The federated credential\'s audience is not the one in the idToken.',
    fix: (c) => `Set the federated credential's audience to api://AzureADTokenExchange${APP_LINK(c)}.`,
    showClaims: true,
  },
  700024: {
    meaning: 'the client assertion is not within its valid time range',
    cause: () => 'The idToken had expired when it reached Microsoft Entra ID (idTokens live about 10 minutes), or the agent\'s clock is wrong.',
    fix: () => 'Run the step again so that a fresh idToken is fetched right before the exchange; for long jobs let tools fetch tokens themselves (exportTerraformEnv, or a token file they re-read); check the agent\'s clock.',
    showClaims: true,
  },
  70025: {
    meaning: 'the application has no federated credentials',
    cause: () => 'The app registration or managed identity behind the connection has no federated credential at all.',
    fix: (c) => `Create a federated credential${APP_LINK(c)} with the issuer and subject the connection shows in Azure DevOps, audience api://AzureADTokenExchange.`,
    showClaims: true,
  },
  7000215: {
    meaning: 'invalid client secret',
    cause: () => 'The client secret stored in the service connection is wrong (often the secret\'s ID was pasted instead of its value, or it was rotated in Entra ID but not in Azure DevOps).',
    fix: () => CONVERT + ' Otherwise set a new secret value in the connection.',
  },
  7000222: {
    meaning: 'the client secret has expired',
    cause: () => 'The secret stored in the service connection has expired. Automatic rotation fails when the connection\'s creator has left the organization or lacks rights in Microsoft Graph.',
    fix: () => CONVERT + ' Otherwise create a new secret on the app registration and update the connection.',
  },
  700016: {
    meaning: 'application not found in the tenant',
    cause: () => 'The client id is wrong, belongs to another tenant or cloud, or the app registration was deleted.',
    fix: (c) => `Check that an app registration or managed identity with client id ${c.clientId ?? '(the connection\'s)'} exists in tenant ${c.tenantId ?? '(the connection\'s)'}; edit the connection if not.`,
  },
  90002: {
    meaning: 'tenant not found',
    cause: () => 'The tenant id is wrong, or the connection points at the wrong cloud (Azure public vs US Government vs China).',
    fix: (c) => `Check the tenant id ${c.tenantId ?? ''} and the environment of the service connection.`,
  },
  7000112: {
    meaning: 'the application is disabled',
    cause: () => 'The app registration\'s service principal has been disabled in the tenant.',
    fix: () => 'Ask a tenant administrator to enable the service principal (Enterprise applications > the app > Properties > "Enabled for users to sign in").',
  },
  700027: {
    meaning: 'the client assertion failed signature validation',
    cause: () => 'The certificate in the service connection is not one of the app registration\'s certificates (or has been replaced).',
    fix: () => CONVERT + ' Otherwise upload the connection\'s certificate to the app registration.',
  },
  50013: {
    meaning: 'the assertion failed signature validation',
    cause: () => 'Microsoft Entra ID could not verify the idToken\'s signature with the issuer\'s keys: the issuer in the federated credential is not the one that signed the token.',
    fix: () => 'Check the federated credential\'s issuer against the token issuer shown below.',
    showClaims: true,
  },
  70011: {
    meaning: 'the scope is not valid',
    cause: () => 'The requested scope is malformed or names more than one resource.',
    fix: () => 'Give one resource followed by /.default, e.g. https://management.azure.com/.default.',
  },
  500011: {
    meaning: 'the resource principal was not found in the tenant',
    cause: () => 'The resource in the scope does not exist in the tenant (a typo in the scope, or an app not consented in this tenant).',
    fix: () => 'Check the resource part of the scope; for the Azure DevOps REST API use 499b84ac-1321-427f-aa17-267ca6975798/.default.',
  },
  7000218: {
    meaning: 'the request body must contain client_assertion or client_secret',
    cause: () => 'The connection has no credential the exchange can use.',
    fix: () => 'Edit the service connection and give it a credential, or convert it to workload identity federation.',
  },
};

/** Pulls the AADSTS number out of an Entra error_description or MSAL error message. */
export function aadstsCode(text: string | undefined): number | undefined {
  const m = /AADSTS(\d{5,8})/.exec(text ?? '');
  return m ? Number(m[1]) : undefined;
}

function claimEvidence(c: FailureContext, code?: number): string[] {
  const out: string[] = [];
  const p = c.presented;
  if (p) {
    out.push('  Presented (the idToken from Azure DevOps):');
    out.push(`    issuer:   ${p.iss ?? '(none)'}`);
    out.push(`    subject:  ${p.sub ?? '(none)'}`);
    out.push(`    audience: ${Array.isArray(p.aud) ? p.aud.join(', ') : p.aud ?? '(none)'}`);
    if (p.exp) out.push(`    expires:  ${new Date(p.exp * 1000).toISOString()}`);
  }
  const e = c.expected;
  const issuerSame = !e?.issuer || (p !== undefined && e.issuer === p.iss);
  const subjectSame = !e?.subject || (p !== undefined && e.subject === p.sub);
  if ((e?.issuer || e?.subject) && p && issuerSame && subjectSame) {
    // Two identical blocks would read as no difference at all: say what the sameness means.
    out.push(`  The service connection in Azure DevOps expects this same ${e.issuer && e.subject ? 'issuer and subject' : e.issuer ? 'issuer' : 'subject'}: Azure DevOps is consistent, so the mismatch is in the federated credential in Microsoft Entra ID, not in Azure DevOps.`);
  } else if (e?.issuer || e?.subject) {
    out.push('  Expected (the service connection in Azure DevOps):');
    out.push(`    issuer:   ${e.issuer ?? '(unknown)'}${p && e.issuer === p.iss ? '  (same as presented)' : ''}`);
    out.push(`    subject:  ${e.subject ?? '(unknown)'}${p && e.subject === p.sub ? '  (same as presented)' : ''}`);
  }
  if (code === 700213 && p?.sub) out.push(`  The federated credential in Microsoft Entra ID must carry exactly the subject Azure DevOps presents (case-sensitive): ${p.sub}`);
  else if (code === 700211 && p?.iss) out.push(`  The federated credential in Microsoft Entra ID must carry exactly the issuer Azure DevOps presents (case-sensitive): ${p.iss}`);
  else if (p || e) out.push('  The federated credential in Microsoft Entra ID must carry exactly the presented issuer and subject (case-sensitive) and the audience api://AzureADTokenExchange.');
  return out;
}

/** The first line of Entra's error_description, without its trace/correlation lines, capped. */
function firstLine(description: string): string {
  return quoteServiceText(description);
}

/** Explains an Entra token endpoint error (an AADSTS error body or the MSAL error carrying it). */
export function explainEntraError(description: string, c: FailureContext, traceIds?: { trace_id?: string; correlation_id?: string }): TaskFailure {
  const code = aadstsCode(description);
  const entry = code !== undefined ? AADSTS[code] : undefined;
  const evidence = [`  Microsoft Entra ID said: ${firstLine(description) || '(no description)'}`];
  const id = (v: unknown) => (typeof v === 'string' && v ? quoteServiceText(v) : undefined);
  const [traceId, correlationId] = [id(traceIds?.trace_id), id(traceIds?.correlation_id)];
  if (traceId || correlationId) evidence.push(`  Trace ID: ${traceId ?? '-'}  Correlation ID: ${correlationId ?? '-'}`);
  const what = `Microsoft Entra ID refused to issue a token for service connection '${c.connectionName}'` +
    (code !== undefined ? ` (AADSTS${code}${entry ? `: ${entry.meaning}` : ''}).` : '.');
  if (!entry) {
    return new TaskFailure({
      what,
      cause: 'See the error text from Microsoft Entra ID below.',
      fix: code !== undefined
        ? `Look up AADSTS${code} at https://login.microsoftonline.com/error?code=${code} and check the service connection's tenant, client id and credential.`
        : 'Check the service connection\'s tenant, client id and credential.',
      evidence: [...evidence, ...claimEvidence(c, code)],
      code: code !== undefined ? `AADSTS${code}` : 'ENTRA',
    });
  }
  return new TaskFailure({
    what,
    cause: entry.cause(c),
    fix: entry.fix(c),
    evidence: [...evidence, ...(entry.showClaims ? claimEvidence(c, code) : [])],
    code: `AADSTS${code}`,
  });
}

/** Explains an HTTP status that is not a success and not worth (or no longer worth) retrying. */
/**
 * What a service's 401, 403 and 404 usually mean, with the fix, and where its status is published.
 * Without one, explainHttpStatus speaks of Azure DevOps (the job token, the pipeline's permission to
 * use the connection); a task that talks to another cloud's service passes that service's own.
 */
export interface StatusAdvice {
  unauthorized: { cause: string; fix: string };
  forbidden: { cause: string; fix: string };
  notFound: (c: FailureContext) => { cause: string; fix: string };
  statusPages: string;
}

export const AZURE_DEVOPS_ADVICE: StatusAdvice = {
  unauthorized: {
    cause: 'The job\'s access token was refused.',
    fix: 'Re-run the job; if it persists, check the job authorization scope (Project settings > Settings > "Limit job authorization scope").',
  },
  forbidden: {
    cause: 'The pipeline is not allowed to use this service connection, or the build service identity lacks permission.',
    fix: 'Open the service connection > Security, and grant this pipeline access (or "Open access"); approve any pending check on the run.',
  },
  notFound: (c) => ({
    cause: `The service connection '${c.connectionName}' does not exist in this project, or no input of a task in this job references it (Azure DevOps only issues idTokens for connections the job uses).`,
    fix: 'Check the connection id or name given in azureSubscription, and that the connection is shared with this project.',
  }),
  statusPages: 'https://status.dev.azure.com and https://azure.status.microsoft',
};

export function explainHttpStatus(
  service: string,
  url: string,
  status: number,
  body: string,
  contentType: string | undefined,
  c: FailureContext,
  /** From HttpResponse: the service asked to wait longer than the task does, so it was not retried. */
  retryAfterTooLong?: { askedMs: number; limitMs: number },
  advice: StatusAdvice = AZURE_DEVOPS_ADVICE,
): TaskFailure {
  const where = `${service} answered HTTP ${status} for ${redactUrl(url)}`;
  const snippet = summarizeBody(body, contentType);
  const evidence = snippet ? [`  Response: ${snippet}`] : [];
  if (retryAfterTooLong) {
    return new TaskFailure({
      what: `${where} and asked to wait ${formatWait(retryAfterTooLong.askedMs)} before trying again (Retry-After), longer than the task waits (${formatWait(retryAfterTooLong.limitMs)}); it did not retry.`,
      cause: status === 429 ? 'The service is throttling requests from this identity or agent.' : 'The service is unavailable for a while (maintenance or an outage).',
      fix: `Re-run the job once that time has passed; if it keeps happening, spread out the jobs that use this service connection. Check ${advice.statusPages}.`,
      evidence,
      code: `HTTP_${status}_RETRY_AFTER`,
    });
  }
  if (advice === AZURE_DEVOPS_ADVICE && (status === 203 || (status === 200 && /text\/html/i.test(contentType ?? '')))) {
    return new TaskFailure({
      what: `${where} with an HTML sign-in page instead of JSON.`,
      cause: 'Azure DevOps did not accept the job\'s access token: it has expired, the job is over, or the build service identity lacks access to the project.',
      fix: 'Re-run the job. In classic pipelines, check that the job may use the OAuth token ("Allow scripts to access the OAuth token" is not needed by this task, but the job authorization scope must include the project). On Azure DevOps Server, check the collection URL.',
      evidence,
      code: 'HTTP_203',
    });
  }
  if (status === 401) {
    return new TaskFailure({
      what: `${where} (unauthorized).`,
      ...advice.unauthorized,
      evidence,
      code: 'HTTP_401',
    });
  }
  if (status === 403) {
    return new TaskFailure({
      what: `${where} (forbidden).`,
      ...advice.forbidden,
      evidence,
      code: 'HTTP_403',
    });
  }
  if (status === 404) {
    return new TaskFailure({
      what: `${where} (not found).`,
      ...advice.notFound(c),
      evidence,
      code: 'HTTP_404',
    });
  }
  if (status === 429 || status >= 500) {
    return new TaskFailure({
      what: `${where} and kept failing after retries.`,
      cause: status === 429 ? 'The service is throttling requests.' : 'The service is having a problem.',
      fix: `Re-run the job later; check ${advice.statusPages} if it persists.`,
      evidence,
      code: `HTTP_${status}`,
    });
  }
  return new TaskFailure({
    what: `${where}.`,
    cause: 'An unexpected answer from the service.',
    fix: 'Check the response below; re-run with system.debug=true for details.',
    evidence,
    code: `HTTP_${status}`,
  });
}

/** A network error, with what the HTTP layer knows about it. */
export type NetworkError = NodeJS.ErrnoException & {
  attempts?: number;
  timeoutMs?: number;
  proxyPhase?: boolean;
  proxyStatus?: number;
  /** What a timed-out attempt was waiting for (see StallStage in http.ts). */
  stage?: 'proxy-connect' | 'proxy-answer' | 'tunnel-tls' | 'connect' | 'tls' | 'answer';
};

const TIMEOUT_SETTING = 'The per-request timeout can be raised with the pipeline variable WorkloadIdentity.HttpTimeoutSeconds.';

const PROXY_SETTINGS = 'the agent\'s proxy settings (the agent\'s .proxy, .proxycredentials and .proxybypass files, set by `config --proxyurl --proxyusername --proxypassword`)';

/** Failures of the agent's proxy itself: it could not be reached, wanted credentials, or refused the tunnel. */
function explainProxyError(service: string, host: string, err: NetworkError, proxy: string): TaskFailure {
  const code = err.code ?? '';
  // 407 is the standard answer; some proxies (tinyproxy's BasicAuth) answer 401.
  if (err.proxyStatus === 407 || err.proxyStatus === 401) {
    return new TaskFailure({
      what: `The agent's proxy ${proxy} refused to open a tunnel to ${host} for ${service}: it requires authentication (HTTP ${err.proxyStatus}).`,
      cause: 'The agent has no proxy credentials, or the user name or password is wrong or expired.',
      fix: `Set the proxy credentials in ${PROXY_SETTINGS}, or ask the proxy's administrators whether the account is allowed.`,
      code: 'PROXY_AUTH',
    });
  }
  if (err.proxyStatus !== undefined) {
    return new TaskFailure({
      what: `The agent's proxy ${proxy} refused to open a tunnel to ${host} for ${service} (HTTP ${err.proxyStatus}).`,
      cause: 'The proxy does not allow this destination or port (an allowlist or a ConnectPort rule).',
      fix: `Ask the proxy's administrators to allow CONNECT to ${host}, or add the host to ${PROXY_SETTINGS} bypass list if the agent may reach it directly.`,
      code: 'PROXY_REFUSED',
    });
  }
  const tries = err.attempts && err.attempts > 1 ? ` (${err.attempts} attempts)` : '';
  if (code === 'ETIMEDOUT_ATTEMPT' && err.stage === 'proxy-answer') {
    const authority = /:\d+$/.test(host) ? host : `${host}:443`;
    return new TaskFailure({
      what: `The proxy ${proxy} did not answer the CONNECT request for a tunnel to ${authority} within ${formatDuration(err.timeoutMs ?? 0)}${tries}: it accepted the connection, then said nothing, so ${service} could not be reached.`,
      cause: `The proxy is hung or overloaded, or it is still trying to reach ${host} itself (its DNS or its own upstream connection stalls).`,
      fix: `Check the proxy (its log for CONNECT ${authority}) and that it can reach ${host}; check ${PROXY_SETTINGS}. ${TIMEOUT_SETTING}`,
      code: 'PROXY_TIMEOUT',
    });
  }
  const reason = code === 'ECONNREFUSED' ? 'refused the connection'
    : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `could not be resolved (${code})`
    : code === 'ETIMEDOUT_ATTEMPT' ? `did not accept a connection within ${formatDuration(err.timeoutMs ?? 0)}`
    : `could not be reached: ${err.message}${code ? ` (${code})` : ''}`;
  return new TaskFailure({
    what: `The proxy ${proxy} ${reason}${tries}, so ${service} at ${host} could not be reached.`,
    cause: 'The agent\'s proxy is not running, its address or port is wrong, or a firewall blocks the agent from it.',
    fix: `Check ${PROXY_SETTINGS} and that the proxy is up.`,
    code: 'PROXY_UNREACHABLE',
  });
}

/** Network-level failures: timeouts, resets, DNS, TLS, proxy. `viaProxy` names the proxy without credentials. */
export function explainNetworkError(service: string, url: string, err: NetworkError, viaProxy?: string): TaskFailure {
  const host = safeHost(url);
  const code = err.code ?? '';
  const tries = err.attempts && err.attempts > 1 ? ` (${err.attempts} attempts)` : '';
  if (viaProxy && (err.proxyPhase || code === 'PROXY_CONNECT')) return explainProxyError(service, host, err, viaProxy);
  if (code === 'ETIMEDOUT_ATTEMPT') return explainTimeout(service, host, url, err, tries, viaProxy);
  if (code === 'RESPONSE_TOO_LARGE') {
    const limit = (err as { limitBytes?: number }).limitBytes ?? 0;
    const announced = (err as { announcedBytes?: number }).announcedBytes;
    return new TaskFailure({
      what: `${service} at ${host} answered with more than ${formatBytes(limit)}${announced ? ` (it announced ${formatBytes(announced)})` : ''}; the task stopped reading the answer.`,
      cause: `Its answers are a few KiB: a page from ${viaProxy ? `the proxy ${viaProxy}` : 'a proxy'}, a captive portal or a gateway is in the way, or the URL points at the wrong host.`,
      fix: 'Check the agent\'s proxy settings (.proxy, .proxybypass) and that the host can be reached directly; check the service connection\'s environment and URLs.',
      code: 'RESPONSE_TOO_LARGE',
    });
  }
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
    return new TaskFailure({
      what: `The TLS connection to ${service} at ${host} failed: ${err.message} (${code}).`,
      cause: 'The server\'s certificate is not trusted by the agent: a TLS-inspecting proxy or a private CA is in the way, or the certificate does not match the host.',
      fix: 'Give the agent your CA (the agent\'s --sslcacert setting, which sets Agent.CAInfo, or NODE_EXTRA_CA_CERTS for the agent process).',
      code: 'TLS',
    });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new TaskFailure({
      what: `The host ${host} of ${service} could not be resolved (${code}).`,
      cause: 'The host name is wrong (wrong cloud or a typo), or the agent has no DNS for it.',
      fix: 'Check the URL and the service connection\'s environment; check the agent\'s DNS and proxy settings.',
      code: 'DNS',
    });
  }
  if (code === 'ECONNREFUSED') {
    return new TaskFailure({
      what: `${service} at ${host} refused the connection${tries}.`,
      cause: 'Nothing listens at that address, or a firewall rejects it.',
      fix: 'Check the URL and the agent\'s proxy settings.',
      code: 'ECONNREFUSED',
    });
  }
  return new TaskFailure({
    what: `The connection to ${service} at ${host} failed: ${err.message}${code ? ` (${code})` : ''}${tries}.`,
    cause: code === 'ECONNRESET' || code === 'EPIPE' ? 'The connection was reset, by the service, a proxy or a firewall.' : 'A network error.',
    fix: 'Re-run the job; check the agent\'s network, proxy and firewall if it persists.',
    code: code || 'NETWORK',
  });
}

/** A timeout, named by the stage that stalled: the connection, the TLS handshake (direct or through the tunnel), or the answer. */
function explainTimeout(service: string, host: string, url: string, err: NetworkError, tries: string, viaProxy?: string): TaskFailure {
  const within = `within ${formatDuration(err.timeoutMs ?? 0)}`;
  const tls = url.toLowerCase().startsWith('https:');
  switch (err.stage) {
    case 'tunnel-tls':
      return new TaskFailure({
        what: `${service} at ${host} did not complete the TLS handshake ${within} through the proxy ${viaProxy ?? ''}${tries}: the proxy answered 200 to CONNECT, but nothing came back through the tunnel.`,
        cause: `The proxy opened the tunnel without reaching ${host} (its own connection there stalls), a firewall beyond the proxy drops the traffic, or the service does not answer.`,
        fix: `Check that the proxy can reach ${host} (its log for that CONNECT) and ask its administrators; or add the host to the agent's proxy bypass list (.proxybypass) if the agent may reach it directly. ${TIMEOUT_SETTING}`,
        code: 'TIMEOUT',
      });
    case 'tls':
      return new TaskFailure({
        what: `${service} at ${host} did not complete the TLS handshake ${within}${tries}: the connection was accepted, but no TLS answer came.`,
        cause: 'Something at that address accepts connections but does not speak TLS (a wrong port, a service that is not HTTPS), or a firewall or TLS-inspecting device holds the connection.',
        fix: `Check the URL and its port, and the firewalls and TLS-inspecting devices between the agent and ${host}. ${TIMEOUT_SETTING}`,
        code: 'TIMEOUT',
      });
    case 'connect':
      return new TaskFailure({
        what: `${service} at ${host} did not accept a connection ${within}${tries}.`,
        cause: 'A firewall drops the traffic, or the host is down or not where the URL points.',
        fix: `Check that the agent can reach ${host} (firewall, the agent's proxy settings). ${TIMEOUT_SETTING}`,
        code: 'TIMEOUT',
      });
    case 'answer': {
      const path = `the connection${viaProxy ? ` through the proxy ${viaProxy}` : ''}${tls ? ' and the TLS handshake' : ''} succeeded`;
      return new TaskFailure({
        what: `${service} at ${host} did not answer ${within}${tries}: ${path} and the request was sent, but no answer came.`,
        cause: 'The service is slow or not responding (an outage), or something between the agent and the service holds the answer.',
        fix: `Re-run the job; check the service's status if it persists. ${TIMEOUT_SETTING}`,
        code: 'TIMEOUT',
      });
    }
    default:
      return new TaskFailure({
        what: `${service} at ${host} did not answer ${within}${tries}.`,
        cause: viaProxy ? `The service or the proxy ${viaProxy} is not responding.` : 'The service is not responding, or a firewall drops the traffic.',
        fix: `Check that the agent can reach the host (firewall, proxy settings of the agent). ${TIMEOUT_SETTING}`,
        code: 'TIMEOUT',
      });
  }
}

function formatDuration(ms: number): string {
  return ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

/** Whole seconds, with the hours or minutes beside long waits. */
function formatWait(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s >= 7200) return `${s} s (about ${Math.round(s / 3600)} h)`;
  if (s >= 120) return `${s} s (about ${Math.round(s / 60)} min)`;
  return `${s} s`;
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${+(n / (1024 * 1024)).toFixed(1)} MiB` : `${n} bytes`;
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** Query strings can carry ids but never tokens in our calls; still, keep only the path. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return url;
  }
}

/** The longest service text quoted in a message. */
export const MAX_QUOTED_CHARS = 300;

/**
 * A service's own error text fit for a message: its first line, control characters removed,
 * capped. Only for text taken from a field of a known shape, never for a raw body.
 */
export function quoteServiceText(text: string): string {
  // eslint-disable-next-line no-control-regex
  const line = text.split(/\r?\n|\r/)[0].replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').trim();
  return line.length > MAX_QUOTED_CHARS ? `${line.slice(0, MAX_QUOTED_CHARS)}...` : line;
}

/**
 * The error text of a JSON error answer, from fields of the shapes these services use:
 * `message`, `error_description`, `error` (a string, or Azure's {code, message}), `Message`
 * (ASP.NET), `errors[0]` (the registry's {code, message}, or Vault's string). Anything else, and any non-JSON body,
 * gives undefined: a body of unknown shape may hold anything, so it is never quoted.
 */
export function serviceErrorText(body: string): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return undefined;
  const o = json as Record<string, unknown>;
  const coded = (v: unknown): string | undefined => {
    if (!v || typeof v !== 'object') return undefined;
    const { code, message } = v as { code?: unknown; message?: unknown };
    if (typeof message !== 'string' || !message.trim()) return undefined;
    return typeof code === 'string' && code ? `${code}: ${message}` : message;
  };
  const candidates = [o.message, o.error_description, typeof o.error === 'string' ? o.error : coded(o.error), o.Message, Array.isArray(o.errors) ? (typeof o.errors[0] === 'string' ? o.errors[0].replace(/\s+/g, ' ') : coded(o.errors[0])) : undefined];
  const text = candidates.find((v): v is string => typeof v === 'string' && v.trim() !== '');
  return text === undefined ? undefined : quoteServiceText(text);
}

/** The media type of a Content-Type header, only if it looks like one. */
function mediaType(contentType: string | undefined): string | undefined {
  const t = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return /^[a-z0-9!#$&^_.+-]{1,40}\/[a-z0-9!#$&^_.+-]{1,60}$/.test(t) ? t : undefined;
}

/**
 * What a message may say about an unexpected answer: the error text of a known JSON shape, or
 * only its kind and size. A raw body is never printed: it may be a proxy's page, hold secrets or
 * carry text the agent would read as a logging command.
 */
export function summarizeBody(body: string, contentType: string | undefined): string {
  if (!body) return '';
  const said = serviceErrorText(body);
  if (said) return said;
  const type = mediaType(contentType);
  const size = `${Buffer.byteLength(body)} bytes`;
  if (/html/.test(type ?? '') || /^\s*<(!doctype\s+html|html)[\s>]/i.test(body)) return `an HTML page (${size}, not shown)`;
  return `${type ? `${type} ` : ''}(${size}, not shown)`;
}
