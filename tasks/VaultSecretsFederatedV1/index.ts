/** VaultSecretsFederated@1: HashiCorp Vault secrets from a JWT login with the idToken, with no stored Vault token. */
import fs = require('node:fs');
import path = require('node:path');
import { PipelineContext, readPipelineContext } from '../core/agent/pipeline-context';
import { OidcTokenClient } from '../core/devops/oidc-token';
import { describeIdToken, describePipelineClaims } from '../core/devops/claims';
import { boolInput, choiceInput, stringInput } from '../core/agent/inputs';
import { InputError } from '../core/http/failures';
import { HttpClient } from '../core/http/http';
import { setJobVariable, setTaskState } from '../core/agent/variables';
import { runTask } from '../core/agent/task-runner';
import { log, logRetry, neutralize, safe, warn } from '../core/agent/output';
import { makeSecretDir } from '../core/files/secret-files';
import { parseSecretSpecs } from '../core/vault/secret-specs';
import { VaultClient } from '../core/vault/vault-client';
import { readSecrets } from '../core/vault/secret-reader';
import { deliverSecrets } from '../core/vault/secret-delivery';
import { VaultTarget } from '../core/vault/vault-target';
import { vaultSettings } from './connection-settings';
import { VAULT_FILES_STATE, VAULT_SESSION_STATE, VAULT_TOKEN_STATE, VaultSession } from './state';

/** The agent's HTTP client, or one that also trusts the CA given for Vault. */
export function vaultHttp(ctx: PipelineContext, t: VaultTarget): HttpClient {
  if (!t.caCertificate) return ctx.http;
  return new HttpClient(ctx.policy, ctx.proxy, { ca: [...(ctx.tls.ca ?? []), t.caCertificate] }, undefined, undefined, logRetry(ctx.policy.retries));
}

async function main(): Promise<void> {
  const ctx = readPipelineContext();
  // Every input is checked before the first request.
  const { type, subject, target, description } = vaultSettings();
  const specs = parseSecretSpecs(stringInput('secrets'));
  const exportToken = boolInput('exportToken', false);
  const multiline = choiceInput('multilineValues', ['file', 'variable'] as const, 'file');
  if (!specs.length && !exportToken) {
    throw new InputError('secrets', 'no secret is named, and exportToken is false: the task would log in and do nothing', 'Name the secrets to read, one per line as `<path> <key> | <VARIABLE>`, or set exportToken: true to give later steps a Vault token.');
  }
  log(description);

  const idToken = await new OidcTokenClient(ctx, subject).fetch();
  log(`idToken ${type === 'pipeline' ? 'of the pipeline' : 'for the connection'}; the role must accept these claims:`);
  for (const line of describeIdToken(idToken.claims)) log(line);
  for (const line of describePipelineClaims(idToken.claims)) log(line);

  const client = new VaultClient(vaultHttp(ctx, target), target);
  const login = await client.login(idToken.token, idToken.claims);
  const expiresOn = login.leaseDuration ? new Date(Date.now() + login.leaseDuration * 1000).toISOString() : undefined;
  // Recorded before anything else can fail: the post-job step revokes the token whatever happens next.
  setTaskState(VAULT_TOKEN_STATE, login.token, true);
  const session: VaultSession = { address: target.address, ...(expiresOn ? { expiresOn } : {}), ...(target.namespace ? { namespace: target.namespace } : {}), ...(target.caCertificate ? { caCertificate: target.caCertificate } : {}), ...(login.accessor ? { accessor: login.accessor } : {}) };
  setTaskState(VAULT_SESSION_STATE, JSON.stringify(session));
  log(safe`Logged in to Vault as role ${login.metadata.role ?? target.role ?? '(default)'} with policies ${login.policies.join(', ') || '(none)'}; the token lives ${login.leaseDuration ? `${login.leaseDuration} s, until ${expiresOn}` : 'until revoked'}, and is revoked when the job ends.`);
  if (login.policies.includes('root')) warn('The Vault token has the root policy: the role grants everything. Give the role a policy that reads only what this pipeline needs.');

  if (specs.length) {
    const values = await readSecrets(client, login.token, specs, login.policies);
    const lines = deliverSecrets(values, multiline, ctx.tempDirectory, VAULT_FILES_STATE);
    log(`Read ${values.length} secret value${values.length === 1 ? '' : 's'} from Vault:`);
    for (const l of lines) log(l);
    log('Secret variables reach a script as $(NAME), or in its environment when mapped: env: { NAME: $(NAME) }.');
  }

  if (exportToken) {
    setJobVariable('VAULT_ADDR', target.address);
    if (target.namespace) setJobVariable('VAULT_NAMESPACE', target.namespace);
    setJobVariable('VAULT_TOKEN', login.token, true);
    let caNote = '';
    if (target.caCertificate) {
      // Not a secret, but kept with the job's other files and removed with them.
      const dir = makeSecretDir(ctx.tempDirectory, 'vault-ca');
      const file = path.join(dir, 'ca.pem');
      fs.writeFileSync(file, target.caCertificate, { mode: 0o644 });
      setTaskState(`${VAULT_FILES_STATE}.Ca`, dir);
      setJobVariable('VAULT_CACERT', file);
      caNote = `, VAULT_CACERT (${neutralize(file)})`;
    }
    log(`Set VAULT_ADDR${target.namespace ? ', VAULT_NAMESPACE' : ''}${caNote} and VAULT_TOKEN (secret) for later steps: the Vault CLI and SDKs use them; map the token into a script's environment (env: { VAULT_TOKEN: $(VAULT_TOKEN) }). It is revoked when the job ends.`);
  }
}

void runTask('VaultSecretsFederated', main);
