/** How hard a task tries over HTTP: timeouts, retries, backoff (see http.ts, which applies it). */
export interface HttpPolicy {
  /** Per-attempt timeout: connect, TLS, request and the whole response. */
  timeoutMs: number;
  /** Retries after the first attempt, for 429, 5xx and network resets. */
  retries: number;
  /** Longest Retry-After we wait; beyond it we stop retrying. */
  maxRetryAfterMs: number;
  /** Base of the exponential backoff. */
  backoffBaseMs: number;
  /**
   * Reuse direct connections per origin within a run (a task's requests come seconds apart). Off
   * for a long-lived process whose requests come minutes apart, when servers have closed them.
   * Requests through a proxy never reuse a tunnel.
   */
  keepAlive?: boolean;
}

export const DEFAULT_POLICY: HttpPolicy = { timeoutMs: 30_000, retries: 3, maxRetryAfterMs: 60_000, backoffBaseMs: 500, keepAlive: true };
