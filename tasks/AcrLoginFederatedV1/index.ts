/** AcrLoginFederated@1: docker, podman, skopeo and helm logged in to ACR with no secret. */
import { readPipelineContext } from '../core/agent/pipeline-context';
import { dockerConfigLock } from './state';
import { conversionAdvice, describeScheme, readConnection } from '../core/devops/connection';
import { OidcTokenClient } from '../core/devops/oidc-token';
import { acquireAccessToken, loadMsalWhile } from '../core/azure/entra';
import { describeIdToken } from '../core/devops/claims';
import { choiceInput, stringInput } from '../core/agent/inputs';
import { InputError } from '../core/http/failures';
import { checkTrusted, normalizeHost, RegistryHost, splitList, toLoginServer } from '../core/acr/registries';
import { acrScope, exchangeForRefreshToken } from '../core/acr/acr';
import { checkUserConfig, mergeUserConfig, mergeWarnings, UserConfigState, userConfigPath, writeJobConfig } from '../core/acr/registry-auth';
import { makeSecretDir } from '../core/files/secret-files';
import { setJobVariable, setOutput, setTaskState } from '../core/agent/variables';
import { runTask } from '../core/agent/task-runner';
import { log, neutralize, safe, warn } from '../core/agent/output';
import { JOB_DIR_STATE, USER_BACKUP_STATE } from './state';

async function main(): Promise<void> {
  const ctx = readPipelineContext();
  const conn = readConnection('connectedServiceNameARM', 'azureSubscription');

  // Every host is checked before any token exists.
  const given = splitList(stringInput('registries'));
  if (!given.length) throw new InputError('registries', 'no registry is given', 'List one or more registries by name (myregistry) or login server (myregistry.azurecr.io), separated by commas or new lines.');
  const hosts: RegistryHost[] = [];
  for (const g of given) {
    const h = toLoginServer(g, conn.cloud, 'registries');
    if (!hosts.some((x) => x.loginServer === h.loginServer)) hosts.push(h);
  }
  const trusted = splitList(stringInput('trustedRegistryHosts')).map((h) => normalizeHost(h, 'trustedRegistryHosts'));
  checkTrusted(hosts, conn.cloud, trusted, 'registries', 'trustedRegistryHosts');
  const configScope = choiceInput('configScope', ['job', 'user'] as const, 'job');
  const audience = choiceInput('tokenAudience', ['registry', 'arm'] as const, 'registry');
  // The user's file is checked before any token exists: a folder, a FIFO, an unreadable or
  // damaged file fails the task at once.
  const userFile = configScope === 'user' ? userConfigPath() : undefined;
  const lock = configScope === 'user' ? dockerConfigLock() : undefined;
  if (userFile) checkUserConfig(userFile);

  log(safe`Service connection ${conn.id}: ${describeScheme(conn.scheme)}, tenant ${conn.tenantId}, client ${conn.clientId || '(system-assigned)'}, cloud ${conn.cloud.name}.`);
  log(safe`Registries: ${hosts.map((h) => h.loginServer).join(', ')}; token audience: ${audience}; config scope: ${configScope}.`);
  const advice = conversionAdvice(conn);
  if (advice) warn(advice);

  const oidc = new OidcTokenClient(ctx, conn);
  let logged = false;
  const assertions = {
    fetch: async () => {
      const t = await oidc.fetch();
      if (!logged) {
        logged = true;
        log('idToken claims (compare with the app\'s federated credential):');
        for (const line of describeIdToken(t.claims)) log(line);
      }
      return t;
    },
  };
  // The first idToken is requested before MSAL is loaded, which it compiles meanwhile; later
  // assertions (a retried exchange) fetch fresh ones.
  let first = conn.scheme === 'WorkloadIdentityFederation' ? await loadMsalWhile(assertions.fetch()) : undefined;
  const firstThenFresh = { fetch: async () => { const t = first ?? (await assertions.fetch()); first = undefined; return t; } };
  const access = await acquireAccessToken(ctx, conn, acrScope(audience, conn.cloud.resourceManager), conn.scheme === 'WorkloadIdentityFederation' ? firstThenFresh : undefined);

  // One Entra token, the exchanges in parallel.
  const logins = await Promise.all(
    hosts.map(async (h) => ({ loginServer: h.loginServer, refreshToken: await exchangeForRefreshToken(ctx, h.loginServer, conn.tenantId, access.token, audience, conn.clientId) })),
  );

  let file: string;
  if (configScope === 'job') {
    const job = writeJobConfig(ctx.tempDirectory, logins);
    setTaskState(JOB_DIR_STATE, job.dir);
    for (const n of job.notes) log(n);
    file = job.file;
    setJobVariable('DOCKER_CONFIG', job.dir);
  } else {
    const state: UserConfigState = { file: userFile!, backupDir: makeSecretDir(ctx.tempDirectory, 'docker-config-backup') };
    setTaskState(USER_BACKUP_STATE, JSON.stringify(state));
    const merged = await mergeUserConfig(state.file, logins, state.backupDir, lock!);
    for (const w of mergeWarnings(merged.config, logins)) warn(w);
    for (const n of merged.notes) log(neutralize(n));
    file = state.file;
  }
  setJobVariable('REGISTRY_AUTH_FILE', file);
  setJobVariable('HELM_REGISTRY_CONFIG', file);
  setOutput('dockerConfigPath', file);
  log(`Logged in to ${neutralize(logins.map((l) => l.loginServer).join(', '))} in ${neutralize(file)} (for docker${configScope === 'job' ? ' via DOCKER_CONFIG' : ''}, podman, buildah and skopeo via REGISTRY_AUTH_FILE, helm via HELM_REGISTRY_CONFIG). The login is removed when the job ends; ACR refresh tokens last about 3 hours.`);
}

void runTask('AcrLoginFederated', main);
