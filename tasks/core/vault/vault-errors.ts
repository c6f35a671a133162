/**
 * Vault's refusals, explained: what failed, the likely cause, and the exact `vault` command or
 * policy line that fixes it, with the idToken's iss, sub and aud beside Vault's own words. Vault's
 * texts differ between versions (the JWT plugin moved from go-jose to hashicorp/cap), so they are
 * matched on stable fragments (protocols.md section 10).
 */
import { audienceText, JwtClaims } from '../devops/claims';
import { explainHttpStatus, quoteServiceText, StatusAdvice, TaskFailure } from '../http/failures';
import { neutralize, safe } from '../agent/output';
import { cliPrefix, VaultTarget } from './vault-target';

export const VAULT_SERVICE = 'HashiCorp Vault';
export const AZURE_DEVOPS_AUDIENCE = 'api://AzureADTokenExchange';

/** Vault's error texts (`{"errors": ["..."]}`), each made one line; [] when the body has none. */
export function vaultErrors(body: string): string[] {
  try {
    const o = JSON.parse(body) as { errors?: unknown };
    if (!Array.isArray(o?.errors)) return [];
    // "1 error occurred:\n\t* permission denied\n\n" reads as one line.
    return o.errors.filter((e): e is string => typeof e === 'string' && e.trim() !== '').map((e) => quoteServiceText(e.replace(/\s+/g, ' ')));
  } catch {
    return [];
  }
}

function said(errors: string[]): string[] {
  return errors.length ? [`  Vault said: ${neutralize(errors.join('; '))}`] : [];
}

/** The claims Vault checked, for the evidence: never the token. */
export function presentedClaims(claims: JwtClaims): string[] {
  return [
    '  The idToken presented:',
    safe`    iss: ${claims.iss ?? '(none)'}`,
    safe`    sub: ${claims.sub ?? '(none)'}`,
    `    aud: ${neutralize(audienceText(claims.aud))}`,
  ];
}

/** Advice for the statuses no Vault text explains better. */
export function vaultAdvice(t: VaultTarget): StatusAdvice {
  return {
    unauthorized: {
      cause: 'Vault does not answer 401 itself: a gateway or proxy in front of Vault refused the request.',
      fix: `Check what sits in front of ${t.address} (a load balancer or API gateway demanding its own credentials), or use Vault's own address.`,
    },
    forbidden: {
      cause: 'Vault refused the request with this token (its policies do not allow it, or the token expired or was revoked).',
      fix: 'Check the role\'s token_policies and the policies\' paths (vault token capabilities <path>).',
    },
    notFound: () => ({
      cause: `Nothing answers at this path of ${t.address}: the address, namespace or mount is not the one Vault uses.`,
      fix: 'Check the Vault address (VAULT_ADDR), the namespace and the mount (vault auth list, vault secrets list).',
    }),
    statusPages: `your Vault's health (${t.address}/v1/sys/health) and its operators`,
  };
}

/**
 * A `vault write` of the role. The JWT plugin sets role_type to oidc on every write that leaves it
 * out, so each command names it; a write keeps the role's settings it does not name.
 */
function roleCommand(t: VaultTarget, role: string, settings: string): string {
  return `${cliPrefix(t)}vault write auth/${t.authMount}/role/${role} role_type=jwt ${settings}`;
}

function newRole(t: VaultTarget, role: string, claims: JwtClaims): string {
  return roleCommand(t, role, `user_claim=sub bound_audiences=${AZURE_DEVOPS_AUDIENCE} bound_subject='${claims.sub ?? '<sub>'}' token_policies=<policy> token_ttl=15m`);
}

function configCommand(t: VaultTarget, claims: JwtClaims): string {
  const iss = claims.iss ?? 'https://vstoken.dev.azure.com/<organization id>';
  return `${cliPrefix(t)}vault write auth/${t.authMount}/config oidc_discovery_url=${iss} bound_issuer=${iss}`;
}

/** A refused login (POST auth/<mount>/login). */
export function explainLoginFailure(t: VaultTarget, status: number, body: string, contentType: string | undefined, claims: JwtClaims, url: string, retryAfterTooLong?: { askedMs: number; limitMs: number }): TaskFailure {
  const errors = vaultErrors(body);
  const text = errors.join(' ').toLowerCase();
  const role = t.role ?? '<role>';
  const where = safe`Vault at ${t.address}${t.namespace ? ` (namespace ${t.namespace})` : ''} refused the login at auth/${t.authMount} as role '${role}' (HTTP ${status}).`;
  const evidence = [...said(errors), ...presentedClaims(claims)];
  const fail = (cause: string, fix: string, code: string) => new TaskFailure({ what: where, cause, fix, evidence, code });

  if (status === 400 || status === 403) {
    if (/role ".*" could not be found|role .* not found/.test(text)) {
      return fail(safe`The JWT auth method at auth/${t.authMount} has no role '${role}'.`, safe`Create it for this connection (or correct the role's name): ${newRole(t, role, claims)}`, 'VAULT_ROLE_NOT_FOUND');
    }
    if (/missing role/.test(text)) {
      return fail('No role was given and the auth method has no default_role.', safe`Set the role on the connection or the input role, or set a default: ${cliPrefix(t)}vault write auth/${t.authMount}/config default_role=<role> (with the rest of its config).`, 'VAULT_ROLE_MISSING');
    }
    if (/oidc role_type/.test(text)) {
      return fail(safe`Role '${role}' is an OIDC (browser) role, which does not accept a JWT (a \`vault write\` of the role without role_type=jwt makes it one).`, safe`Make it a JWT role: ${roleCommand(t, role, 'user_claim=sub')}`, 'VAULT_ROLE_TYPE');
    }
    if (/audience|\baud\b/.test(text)) {
      return fail(safe`Role '${role}' does not accept the idToken's audience (${audienceText(claims.aud)}).`, safe`Bind the role to Azure DevOps' audience: ${roleCommand(t, role, `bound_audiences=${AZURE_DEVOPS_AUDIENCE}`)}`, 'VAULT_AUDIENCE');
    }
    if (/bound subject|\(sub\) claim|subject claim/.test(text)) {
      return fail(safe`Role '${role}' is bound to another subject than the idToken's (${claims.sub ?? '(none)'}). Renaming the organisation, project or service connection changes the subject.`, safe`Bind the role to this subject: ${roleCommand(t, role, `bound_subject='${claims.sub ?? '<sub>'}'`)}`, 'VAULT_SUBJECT');
    }
    if (/bound claim|claim ".*" is missing|claim ".*" does not match/.test(text)) {
      return fail(safe`A claim of the idToken does not match role '${role}''s bound_claims.`, safe`Compare the role's bound_claims (${cliPrefix(t)}vault read auth/${t.authMount}/role/${role}) with the idToken's claims below, or bind the role to this subject alone: ${roleCommand(t, role, `bound_subject='${claims.sub ?? '<sub>'}'`)} (and remove bound_claims: they are a JSON map, written from a file: vault write ... @role.json).`, 'VAULT_BOUND_CLAIMS');
    }
    if (/issuer|\(iss\)/.test(text)) {
      return fail(safe`The auth method's bound_issuer is not the idToken's issuer (${claims.iss ?? '(none)'}).`, safe`Point the auth method at this organisation's issuer: ${configCommand(t, claims)}`, 'VAULT_ISSUER');
    }
    if (/expired|\(exp\)/.test(text)) {
      return fail('Vault found the idToken expired: it lives about 10 minutes, so Vault\'s clock is off, or the step was delayed between fetching and logging in.', 'Check that Vault\'s server clock is synchronised (NTP), then re-run the job.', 'VAULT_EXPIRED');
    }
    if (/not yet valid|\(nbf\)|\(iat\)|issued in the future/.test(text)) {
      return fail('Vault found the idToken not valid yet: Vault\'s clock is behind.', `Synchronise Vault's server clock (NTP), or allow skew on the role: ${roleCommand(t, role, 'clock_skew_leeway=60')}`, 'VAULT_CLOCK');
    }
    if (/jwks|discovery|keyset|fetching keys|provider/.test(text)) {
      return fail(safe`Vault could not fetch the keys that sign Azure DevOps idTokens: it reaches ${claims.iss ?? 'https://vstoken.dev.azure.com/<organization id>'} itself, over HTTPS, from the Vault server.`, safe`Let the Vault servers reach vstoken.dev.azure.com on 443 (their proxy or firewall), and check the config: ${configCommand(t, claims)}`, 'VAULT_JWKS');
    }
    if (/signature|no known key|verifying token|verify/.test(text)) {
      return fail('Vault could not verify the idToken\'s signature with the keys it is configured with.', safe`Configure the auth method with this organisation's discovery URL, not static keys: ${configCommand(t, claims)}`, 'VAULT_SIGNATURE');
    }
    if (/could not load configuration|not configured|no configuration/.test(text)) {
      return fail(safe`The JWT auth method at auth/${t.authMount} is not configured.`, safe`Configure it for this organisation: ${configCommand(t, claims)}`, 'VAULT_NOT_CONFIGURED');
    }
    if (/claim ".*" not found in token|could not be converted to string/.test(text)) {
      return fail(safe`Role '${role}''s user_claim is not a claim of the idToken.`, safe`Use the subject: ${roleCommand(t, role, 'user_claim=sub')}`, 'VAULT_USER_CLAIM');
    }
    if (status === 403) {
      // Vault routes a login without a token only to a mount that exists: any other path needs a token, so an unknown mount or namespace is 403 too.
      return fail(safe`Vault denied the login: no auth method is enabled at auth/${t.authMount} in ${t.namespace ? `namespace ${t.namespace}` : 'the root namespace'} (Vault answers a login to an unknown mount or namespace with permission denied), or role '${role}' has token_bound_cidrs that exclude this agent, or a Sentinel policy or quota refused it.`, safe`Check the auth method's path and namespace (${cliPrefix(t)}vault auth list) and set authMount and namespace to them; then the role (${cliPrefix(t)}vault read auth/${t.authMount}/role/${role}) for token_bound_cidrs.`, 'VAULT_LOGIN_DENIED');
    }
  }
  if (status === 404 || /no handler for route|unsupported path|route entry not found/.test(text)) {
    return fail(safe`No auth method is enabled at auth/${t.authMount}${t.namespace ? ` in namespace ${t.namespace}` : ''}.`, safe`Check the mount (${cliPrefix(t)}vault auth list) and set authMount to it, or enable the JWT method there: ${cliPrefix(t)}vault auth enable -path=${t.authMount} jwt; then ${configCommand(t, claims)}`, 'VAULT_AUTH_MOUNT');
  }
  return explainVaultStatus(t, status, body, contentType, url, retryAfterTooLong, evidence);
}

/** Sealed, throttled, standby and the rest, after the HTTP layer's retries. */
export function explainVaultStatus(t: VaultTarget, status: number, body: string, contentType: string | undefined, url: string, retryAfterTooLong?: { askedMs: number; limitMs: number }, evidence: string[] = said(vaultErrors(body))): TaskFailure {
  const text = vaultErrors(body).join(' ').toLowerCase();
  if (status === 503 && /sealed/.test(text)) {
    return new TaskFailure({ what: safe`Vault at ${t.address} is sealed (HTTP 503), and stayed sealed through the retries.`, cause: 'Vault was restarted and not unsealed yet, or it sealed itself.', fix: 'Ask your Vault operators to unseal it (vault operator unseal, or check auto-unseal), then re-run the job.', evidence, code: 'VAULT_SEALED' });
  }
  if (status === 429 && !retryAfterTooLong) {
    return new TaskFailure({ what: safe`Vault at ${t.address} kept answering HTTP 429 through the retries.`, cause: /quota|rate limit/.test(text) ? 'A Vault rate limit quota covers this path.' : 'Vault is throttling requests, or a standby node answers for the active one.', fix: 'Re-run the job later, or ask your Vault operators to raise the rate limit quota for this path (vault read sys/quotas/rate-limit/<name>).', evidence, code: 'VAULT_429' });
  }
  if (status >= 300 && status < 400) {
    return new TaskFailure({
      what: safe`Vault at ${t.address} answered HTTP ${status}, a redirect; it was not followed: the Vault token and idToken go only to the Vault address set for this task.`,
      cause: 'A standby Vault node redirects to the active node (request forwarding is off), or the address is an old or http one.',
      fix: 'Set the Vault address to the active node, or the load balancer that sends requests to it (what VAULT_ADDR is for your CLI).',
      evidence,
      code: 'VAULT_REDIRECT',
    });
  }
  const f = explainHttpStatus(VAULT_SERVICE, url, status, body, contentType, { connectionName: t.address }, retryAfterTooLong, vaultAdvice(t));
  // The caller's evidence (a refused login's claims) stays with the generic explanation.
  const extra = evidence.filter((e) => !(f.details.evidence ?? []).includes(e) && !e.startsWith('  Vault said:'));
  return extra.length ? new TaskFailure({ ...f.details, evidence: [...(f.details.evidence ?? []), ...extra] }) : f;
}
