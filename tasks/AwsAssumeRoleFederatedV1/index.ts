/** AwsAssumeRoleFederated@1: AWS credentials from the connection's idToken, with no access key. */
import { readPipelineContext } from '../core/agent/pipeline-context';
import { describeScheme, readConnection } from '../core/devops/connection';
import { OidcSubject, OidcTokenClient } from '../core/devops/oidc-token';
import { ENDPOINT_TYPE_LABELS, readFederatedEndpoint } from '../core/devops/federated-endpoint';
import { chooseConnection } from '../core/devops/connection-choice';
import { awsSettings } from './connection-settings';
import { describeIdToken } from '../core/devops/claims';
import { boolInput } from '../core/agent/inputs';
import { InputError } from '../core/http/failures';
import { assumeRoleWithWebIdentity } from '../core/aws/sts';
import { writeTokenFile } from '../core/files/fresh-token-file';
import { setJobVariable, setOutput } from '../core/agent/variables';
import { runTask } from '../core/agent/task-runner';
import { debug, log, neutralize, safe, warn } from '../core/agent/output';
import { durationInput, regionInput, roleArnInput, sessionNameInput, stsEndpointInput, stsEndpointWarning } from './inputs';
import { TOKEN_FILE_STATE } from './state';

async function main(): Promise<void> {
  const ctx = readPipelineContext();
  let subject: OidcSubject;
  let roleArn: string;
  let region: string;
  let durationSeconds: number;
  let endpoint: string;
  if (chooseConnection('aws', 'awsConnection') === 'aws') {
    // A connection of its own type: the settings are the connection's, the inputs may only narrow them.
    const ep = readFederatedEndpoint('awsConnection', 'aws');
    const settings = awsSettings(ep);
    ({ roleArn, region, durationSeconds, endpoint } = settings);
    subject = ep;
    log(safe`Service connection ${ep.id}: ${ENDPOINT_TYPE_LABELS.aws}, role ${roleArn}, region ${region}, STS ${endpoint}, sessions up to ${settings.maxSessionDuration} seconds.`);
  } else {
    const conn = readConnection('connectedServiceNameARM', 'azureSubscription');
    if (conn.scheme !== 'WorkloadIdentityFederation') {
      throw new InputError('azureSubscription', `service connection '${conn.id}' uses ${describeScheme(conn.scheme)}, which has no idToken for AWS`, 'Use an Azure Resource Manager connection with workload identity federation: AWS trusts its idToken through an IAM OIDC identity provider.');
    }
    subject = conn;
    roleArn = roleArnInput();
    region = regionInput();
    durationSeconds = durationInput();
    endpoint = stsEndpointInput(region);
  }
  const endpointWarning = stsEndpointWarning(endpoint);
  if (endpointWarning) warn(endpointWarning);
  const roleSessionName = sessionNameInput();
  const exportFile = boolInput('exportWebIdentityFile', false);
  const keepFresh = boolInput('keepTokenFileFresh', true);

  const idToken = await new OidcTokenClient(ctx, subject).fetch();
  log(safe`idToken for service connection ${subject.id}; the role's trust policy must accept these claims:`);
  for (const line of describeIdToken(idToken.claims)) log(line);

  const creds = await assumeRoleWithWebIdentity(ctx, { endpoint, roleArn, roleSessionName, durationSeconds, webIdentityToken: idToken.token, claims: idToken.claims });
  log(safe`Assumed ${creds.assumedRoleArn || roleArn} as session '${roleSessionName}' until ${creds.expiration} (${endpoint}).`);

  // The keys are outputs either way (the secret ones as secret outputs).
  setOutput('awsAccessKeyId', creds.accessKeyId);
  setOutput('awsSecretAccessKey', creds.secretAccessKey, true);
  setOutput('awsSessionToken', creds.sessionToken, true);
  setOutput('awsExpiration', creds.expiration);
  setOutput('awsAssumedRoleArn', creds.assumedRoleArn || undefined);
  setJobVariable('AWS_REGION', region);
  setJobVariable('AWS_DEFAULT_REGION', region);

  if (exportFile) {
    // No key variable: the agent maps only the public AWS_ACCESS_KEY_ID into a script's environment,
    // and the AWS CLI and SDKs stop at a partial key pair ("Partial credentials found in env")
    // instead of reading the token file; mapped, fixed one-hour keys would win over the fresh file.
    const tf = await writeTokenFile(ctx, subject, 'AwsAssumeRoleFederated', 'aws-web-identity', 'web-identity-token', idToken.token, keepFresh, TOKEN_FILE_STATE);
    setJobVariable('AWS_WEB_IDENTITY_TOKEN_FILE', tf.file);
    setJobVariable('AWS_ROLE_ARN', roleArn);
    setJobVariable('AWS_ROLE_SESSION_NAME', roleSessionName);
    log(`Set AWS_WEB_IDENTITY_TOKEN_FILE (${neutralize(tf.file)}), AWS_ROLE_ARN and AWS_ROLE_SESSION_NAME, and no access key variables: AWS SDKs and the CLI assume the role themselves; ` +
      (tf.refresher ? `the file is kept fresh until the job ends (status: ${tf.statusFile}), then removed.` : 'the idToken in it expires in about 10 minutes; the file is removed when the job ends.'));
    debug('The session\'s keys are the outputs awsAccessKeyId, awsSecretAccessKey and awsSessionToken (secret).');
  } else {
    setJobVariable('AWS_ACCESS_KEY_ID', creds.accessKeyId);
    setJobVariable('AWS_SECRET_ACCESS_KEY', creds.secretAccessKey, true);
    setJobVariable('AWS_SESSION_TOKEN', creds.sessionToken, true);
    log('Set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (secret), AWS_REGION and AWS_DEFAULT_REGION: a script step gets the two secret ones only when it maps them in its env (AWS_SECRET_ACCESS_KEY: $(AWS_SECRET_ACCESS_KEY), AWS_SESSION_TOKEN: $(AWS_SESSION_TOKEN)).');
  }
}

void runTask('AwsAssumeRoleFederated', main);
