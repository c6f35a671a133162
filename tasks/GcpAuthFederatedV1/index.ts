/** GcpAuthFederated@1: Google Cloud credentials from the connection's idToken, with no service account key. */
import path = require('node:path');
import { readPipelineContext } from '../core/agent/pipeline-context';
import { currentRun, describeRun } from '../core/agent/run-identity';
import { describeScheme, readConnection } from '../core/devops/connection';
import { OidcSubject, OidcTokenClient } from '../core/devops/oidc-token';
import { ENDPOINT_TYPE_LABELS, readFederatedEndpoint } from '../core/devops/federated-endpoint';
import { chooseConnection } from '../core/devops/connection-choice';
import { gcpSettings } from './connection-settings';
import { describeIdToken } from '../core/devops/claims';
import { boolInput, choiceInput, stringInput } from '../core/agent/inputs';
import { InputError } from '../core/http/failures';
import { exchangeIdToken, externalAccountFile, GcpProvider, impersonate, principalFor } from '../core/google/gcp';
import { writeTokenFile } from '../core/files/fresh-token-file';
import { writeSecretFile } from '../core/files/secret-files';
import { setJobVariable, setOutput } from '../core/agent/variables';
import { runTask } from '../core/agent/task-runner';
import { debug, log, neutralize, safe, warn } from '../core/agent/output';
import { lifetimeInput, projectIdInput, providerInput, scopesInput, serviceAccountInput } from './inputs';
import { TOKEN_FILE_STATE } from './state';

async function main(): Promise<void> {
  const ctx = readPipelineContext();
  // Every input is checked before the first request.
  let subject: OidcSubject;
  let provider: GcpProvider;
  let serviceAccount: string | undefined;
  let projectId: string | undefined;
  if (chooseConnection('gcp', 'gcpConnection') === 'gcp') {
    // A connection of its own type: the provider, service account and project are the connection's.
    const ep = readFederatedEndpoint('gcpConnection', 'gcp');
    ({ provider, serviceAccount, projectId } = gcpSettings(ep));
    subject = ep;
    log(safe`Service connection ${ep.id}: ${ENDPOINT_TYPE_LABELS.gcp}, provider ${provider.name}, ${serviceAccount ? `service account ${serviceAccount}` : 'no service account (direct resource access)'}${projectId ? `, project ${projectId}` : ''}.`);
  } else {
    const conn = readConnection('connectedServiceNameARM', 'azureSubscription');
    if (conn.scheme !== 'WorkloadIdentityFederation') {
      throw new InputError('azureSubscription', `service connection '${conn.id}' uses ${describeScheme(conn.scheme)}, which has no idToken for Google Cloud`, 'Use an Azure Resource Manager connection with workload identity federation: Google trusts its idToken through a workload identity pool provider.');
    }
    subject = conn;
    provider = providerInput();
    serviceAccount = serviceAccountInput();
    projectId = projectIdInput();
  }
  const createFile = boolInput('createCredentialsFile', true);
  const keepFresh = boolInput('keepTokenFileFresh', true);
  const tokenFormat = choiceInput('tokenFormat', ['none', 'access_token'] as const, 'none');
  const lifetime = lifetimeInput();
  const scopes = scopesInput();
  if (!serviceAccount && (stringInput('accessTokenLifetime') || stringInput('accessTokenScopes')) && tokenFormat === 'access_token') {
    warn('Inputs accessTokenLifetime and accessTokenScopes apply to a service account\'s token: without serviceAccount the federated token lives about an hour with scope cloud-platform.');
  }

  const idToken = await new OidcTokenClient(ctx, subject).fetch();
  log(safe`idToken for service connection ${subject.id}; the workload identity provider must accept these claims:`);
  for (const line of describeIdToken(idToken.claims)) log(line);

  const federated = await exchangeIdToken(ctx, provider, idToken.token, idToken.claims);
  const run = describeRun(currentRun());
  log(safe`Google STS accepted the idToken at ${provider.name}: principal ${principalFor(provider, idToken.claims.sub ?? '')}${run ? `, for ${run}` : ''}.`);
  let token = federated;
  if (serviceAccount) {
    token = await impersonate(ctx, provider, federated.token, serviceAccount, scopes, lifetime, idToken.claims);
    log(safe`Impersonated ${serviceAccount} until ${token.expiresOn.toISOString()}.`);
  }
  if (tokenFormat === 'access_token') {
    setOutput('accessToken', token.token, true);
    setOutput('accessTokenExpiresOn', token.expiresOn.toISOString());
  }

  if (createFile) {
    const tf = await writeTokenFile(ctx, subject, 'GcpAuthFederated', 'gcp-credentials', 'oidc-token', idToken.token, keepFresh, TOKEN_FILE_STATE);
    const credentialsFile = path.join(tf.dir, 'credentials.json');
    writeSecretFile(credentialsFile, `${JSON.stringify(externalAccountFile(provider, tf.file, serviceAccount), null, 2)}\n`);
    setJobVariable('GOOGLE_APPLICATION_CREDENTIALS', credentialsFile);
    setJobVariable('CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', credentialsFile);
    setOutput('credentialsFilePath', credentialsFile);
    log(`Set GOOGLE_APPLICATION_CREDENTIALS and CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE (${neutralize(credentialsFile)}): gcloud, Terraform and Google client libraries authenticate by themselves; ` +
      (tf.refresher ? `the token file it names is kept fresh until the job ends (status: ${neutralize(tf.statusFile)}), then removed.` : 'the idToken it names expires in about 10 minutes; the files are removed when the job ends.'));
  }
  if (projectId) {
    setJobVariable('GOOGLE_CLOUD_PROJECT', projectId);
    setJobVariable('CLOUDSDK_CORE_PROJECT', projectId);
    setOutput('projectId', projectId);
  }
  debug('The credentials file holds no secret: no job token, no executable source; the idToken is in a separate 0600 file.');
}

void runTask('GcpAuthFederated', main);
