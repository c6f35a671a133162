/**
 * VaultSecretsFederated@1 post-job: revokes the Vault token (revoke-self revokes every lease it
 * made too, so nothing outlives the job) and removes the files of multi-line values. A token it
 * cannot revoke is reported as a warning with when it expires and how to revoke it; safe to run twice.
 */
import { agent } from '../core/agent/agent-channel';
import { runPostJob, Outcome } from '../core/agent/task-runner';
import { debug, log, logRetry, safe } from '../core/agent/output';
import { isOwnJobFolder } from '../core/agent/variables';
import { httpPolicy } from '../core/agent/pipeline-variables';
import { removeSecretPath } from '../core/files/secret-files';
import { TaskFailure } from '../core/http/failures';
import { asInput, parseNamespace, parseVaultAddress } from '../core/vault/vault-target';
import { VAULT_FILES_STATE, VAULT_SESSION_STATE, VAULT_TOKEN_STATE, VaultSession } from './state';

/** The main step's record, held to the main step's own rules for an address and a namespace; anything else is no record. */
function readSession(): VaultSession | undefined {
  const raw = agent().getTaskVariable(VAULT_SESSION_STATE);
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw) as VaultSession;
    if (typeof s?.address !== 'string' || parseVaultAddress(s.address, asInput('session')) !== s.address) return undefined;
    if (s.namespace !== undefined && (typeof s.namespace !== 'string' || parseNamespace(s.namespace, asInput('session')) !== s.namespace)) return undefined;
    return s;
  } catch {
    return undefined;
  }
}

function removeFiles(): void {
  for (const name of [VAULT_FILES_STATE, `${VAULT_FILES_STATE}.Ca`]) {
    const dir = agent().getTaskVariable(name);
    if (dir && isOwnJobFolder(dir, name) && removeSecretPath(dir)) log(`Removed the files of this task (${name.endsWith('.Ca') ? 'the Vault CA for VAULT_CACERT' : 'multi-line secret values'}).`);
  }
}

async function post(): Promise<Outcome> {
  const token = agent().getTaskVariable(VAULT_TOKEN_STATE, true);
  const session = readSession();
  removeFiles();
  if (!token) {
    debug('No Vault token to revoke.');
    return;
  }
  if (!session) {
    // The record is missing or malformed (a pipeline variable of its name may have replaced it): no request is made.
    return 'The job\'s Vault token was not revoked: the main step\'s record of the Vault it came from is missing or unreadable, so the token is sent nowhere. It expires by itself at the end of its TTL (the role\'s token_ttl).';
  }
  const policy = httpPolicy();
  // The state is text from the environment (a pipeline variable of its name sets it where the main step did not): one inert line.
  const later = `It stays valid ${session.expiresOn ? safe`until ${session.expiresOn}` : 'until revoked (it has no TTL)'}${session.accessor ? safe`; to revoke it now: vault token revoke -accessor ${session.accessor}` : ''}.`;
  // Only a step that has a token to revoke loads the HTTP client. The agent's proxy and CA settings
  // are read through the post-job channel with task-lib's rules: task-lib is never loaded.
  const { readProxy, readTls } = await import('../core/agent/agent-settings');
  const { HttpClient } = await import('../core/http/http');
  const { VaultClient } = await import('../core/vault/vault-client');
  const { vaultErrors } = await import('../core/vault/vault-errors');
  const tls = readTls('');
  const http = new HttpClient(policy, readProxy(), { ca: [...(tls.ca ?? []), ...(session.caCertificate ? [session.caCertificate] : [])] }, undefined, undefined, logRetry(policy.retries));
  const client = new VaultClient(http, { address: session.address, authMount: '', ...(session.namespace ? { namespace: session.namespace } : {}) });
  try {
    const result = await client.revokeSelf(token);
    if (result.revoked) {
      log(safe`Revoked the Vault token at ${session.address}, and every lease it made.`);
      return;
    }
    if (session.expiresOn && Date.parse(session.expiresOn) <= Date.now()) {
      log(safe`The Vault token had expired at ${session.expiresOn}; nothing to revoke.`);
      return;
    }
    const said = vaultErrors(result.refused.body).join('; ');
    return safe`Vault at ${session.address} refused to revoke the job's Vault token (HTTP 403${said ? `: ${said}` : ''}). Likely cause: the role sets token_no_default_policy=true, so the token may not revoke itself, or it was revoked already. Fix: keep the default policy on the role, or grant path "auth/token/revoke-self" { capabilities = ["update"] }. ` + later;
  } catch (e) {
    const why = e instanceof TaskFailure ? e.details.what : safe`${(e as Error).message}`;
    return `Could not revoke the job's Vault token: ${why} ${later}`;
  }
}

void runPostJob('VaultSecretsFederated (post-job)', post);
