// A ready-made world (a tenant, a federated connection, a secret-based one) and the environment the
// agent would give a task for a connection, for the CLI, demos, benchmarks and end-to-end tests.
import * as crypto from 'node:crypto';
import type { Emulator } from './types';
import { subscriptionOf } from './devops';
import { PIPELINE_NAME } from './state';
import { gcpPrincipal, providerName } from './gcp';

export const DEMO = {
  tenantId: '72f1c3a4-5b6d-4e7f-8a9b-0c1d2e3f4a5b',
  federated: {
    connectionId: '3f2e1d0c-9b8a-4765-a432-10fedcba9876',
    clientId: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
    name: 'demo-federated',
  },
  secret: {
    connectionId: '6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a',
    clientId: 'b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e',
    name: 'demo-secret',
  },
  subscriptionId: '1e2d3c4b-5a69-4788-97a6-b5c4d3e2f1a0',
} as const;

export interface DemoScenario {
  tenantId: string;
  federated: { connectionId: string; clientId: string };
  secret: { connectionId: string; clientId: string; secret: string };
  subscriptionId: string;
  /** An ACR login server (the emulator's own address) that both connections may log in to. */
  registry: string;
  /** An AWS role that trusts the federated connection's idToken. */
  awsRoleArn: string;
  /** A Google workload identity provider that trusts the federated connection's idToken, and a service account it may impersonate. */
  gcpProvider: string;
  gcpServiceAccount: string;
}

export const DEMO_AWS_ROLE = 'arn:aws:iam::123456789012:role/azure-pipelines-demo';
export const DEMO_GCP_PROVIDER = { projectNumber: '123456789012', poolId: 'azure-pipelines', providerId: 'demo-federated' };
export const DEMO_GCP_SERVICE_ACCOUNT = 'deployer@contoso-demo.iam.gserviceaccount.com';

export function addDemoScenario(emu: Emulator): DemoScenario {
  const { tenantId, federated, secret, subscriptionId } = DEMO;
  emu.addServiceConnection({
    id: federated.connectionId,
    name: federated.name,
    scheme: 'WorkloadIdentityFederation',
    tenantId,
    clientId: federated.clientId,
    subscriptionId,
    subscriptionName: 'Contoso Demo',
  });
  const fed = emu.expectedFederation(federated.connectionId);
  emu.addApp({
    clientId: federated.clientId,
    tenantId,
    displayName: 'contoso-web-deploy',
    federatedCredentials: [{ issuer: fed.issuer, subject: fed.subject, audiences: [fed.audience] }],
  });

  // Random on every start, so that no secret value sits in the repository for scanners to flag.
  const secretValue = `Qx8~${crypto.randomBytes(27).toString('base64url')}`;
  emu.addApp({
    clientId: secret.clientId,
    tenantId,
    displayName: 'contoso-web-legacy',
    secrets: [{ value: secretValue, endDateTime: new Date(Date.now() + 180 * 86400_000).toISOString() }],
  });
  emu.addServiceConnection({
    id: secret.connectionId,
    name: secret.name,
    scheme: 'ServicePrincipal',
    tenantId,
    clientId: secret.clientId,
    subscriptionId,
    subscriptionName: 'Contoso Demo',
    authenticationType: 'spnKey',
    servicePrincipalKey: secretValue,
  });
  // What the other tasks need to succeed for both connections: the subscription with a role on
  // it, a registry, and an AWS role trusting the federated connection.
  emu.addSubscription({ subscriptionId, tenantId, displayName: 'Contoso Demo' });
  for (const clientId of [federated.clientId, secret.clientId]) emu.assignRole({ principalId: clientId, scope: `/subscriptions/${subscriptionId}`, role: 'Contributor' });
  emu.addRegistry({ loginServer: emu.host, tenantId });
  const provider = fed.issuer.replace(/^https:\/\//, '');
  emu.addAwsOidcProvider({ url: provider, clientIds: [fed.audience], accountId: '123456789012' });
  emu.addAwsRole({ arn: DEMO_AWS_ROLE, trust: { issuer: provider, sub: fed.subject, aud: fed.audience } });
  emu.addGcpProvider({ ...DEMO_GCP_PROVIDER, issuerUri: fed.issuer, allowedAudiences: [fed.audience], attributeCondition: `assertion.sub == '${fed.subject}'` });
  emu.addGcpServiceAccount({ email: DEMO_GCP_SERVICE_ACCOUNT, members: [gcpPrincipal(DEMO_GCP_PROVIDER, fed.subject)] });
  return {
    tenantId,
    federated: { connectionId: federated.connectionId, clientId: federated.clientId },
    secret: { connectionId: secret.connectionId, clientId: secret.clientId, secret: secretValue },
    subscriptionId,
    registry: emu.host,
    awsRoleArn: DEMO_AWS_ROLE,
    gcpProvider: providerName(DEMO_GCP_PROVIDER),
    gcpServiceAccount: DEMO_GCP_SERVICE_ACCOUNT,
  };
}

/** The inputs each task needs to run against the demo scenario, as the agent passes them (INPUT_<NAME>). */
export function demoTaskInputs(emu: Emulator, demo: DemoScenario): Record<string, Record<string, string>> {
  return {
    FetchOidcTokenV1: { INPUT_ACCESSTOKENSCOPE: 'https://management.azure.com/.default' },
    AcrLoginFederatedV1: { INPUT_REGISTRIES: demo.registry, INPUT_TRUSTEDREGISTRYHOSTS: demo.registry },
    ValidateServiceConnectionV1: { INPUT_SCOPE: `/subscriptions/${demo.subscriptionId}`, INPUT_REQUIREDROLES: 'Reader' },
    AwsAssumeRoleFederatedV1: { INPUT_ROLEARN: demo.awsRoleArn, INPUT_STSENDPOINT: `${emu.url}/` },
    AuditServiceConnectionsV1: { INPUT_SCOPE: 'project' },
    // Google's hosts keep their public names: the caller reaches them through a proxy that maps
    // those names to the emulator (Agent.ProxyUrl). A command run by hand has no post-job step to
    // stop a refresher, so the token file is not kept fresh.
    GcpAuthFederatedV1: { INPUT_WORKLOADIDENTITYPROVIDER: demo.gcpProvider, INPUT_SERVICEACCOUNT: demo.gcpServiceAccount, INPUT_PROJECTID: 'contoso-demo', INPUT_TOKENFORMAT: 'access_token', INPUT_KEEPTOKENFILEFRESH: 'false' },
  };
}

/**
 * The variables the agent sets for a task whose azureSubscription input names the connection
 * (see the agent's Handler.AddEndpointsToEnvironment). AGENT_TEMPDIRECTORY is the caller's.
 */
export function agentEnvironment(emu: Emulator, connectionId: string, extra: Record<string, string> = {}): Record<string, string> {
  const sc = emu.getServiceConnection(connectionId);
  if (!sc) throw new Error(`no service connection ${connectionId} registered`);
  // The agent names endpoint variables by Guid.ToString(): lower case.
  const id = sc.id.toLowerCase();
  const env: Record<string, string> = {
    NODE_EXTRA_CA_CERTS: emu.caCertPath,
    SYSTEM_COLLECTIONURI: emu.collectionUri,
    SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: emu.collectionUri,
    SYSTEM_TEAMFOUNDATIONSERVERURI: emu.collectionUri,
    SYSTEM_COLLECTIONID: emu.organization.id,
    SYSTEM_TEAMPROJECT: sc.projectName ?? 'web',
    SYSTEM_TEAMPROJECTID: emu.projectId,
    SYSTEM_HOSTTYPE: 'build',
    SYSTEM_PLANID: emu.planId,
    SYSTEM_JOBID: emu.jobId,
    SYSTEM_OIDCREQUESTURI: `${emu.collectionUri}${emu.projectId}/_apis/distributedtask/hubs/build/plans/${emu.planId}/jobs/${emu.jobId}/oidctoken`,
    SYSTEM_SERVERTYPE: 'Hosted',
    SYSTEM_DEFINITIONID: '7',
    BUILD_DEFINITIONNAME: PIPELINE_NAME,
    BUILD_BUILDID: '1042',
    BUILD_BUILDNUMBER: '20250101.3',
    ENDPOINT_URL_SYSTEMVSSCONNECTION: emu.collectionUri,
    ENDPOINT_AUTH_SYSTEMVSSCONNECTION: JSON.stringify({ parameters: { AccessToken: emu.jobAccessToken }, scheme: 'OAuth' }),
    ENDPOINT_AUTH_SCHEME_SYSTEMVSSCONNECTION: 'OAuth',
    ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: emu.jobAccessToken,
    // The agent passes an input under its task.json name, never its YAML alias (azureSubscription).
    INPUT_CONNECTEDSERVICENAMEARM: id,
  };

  const parameters: Record<string, string> = { tenantid: sc.tenantId, serviceprincipalid: sc.clientId };
  if (sc.scheme === 'ServicePrincipal') {
    const useCertificate = sc.authenticationType === 'spnCertificate' || (!sc.authenticationType && !!sc.servicePrincipalCertificate);
    parameters.authenticationType = useCertificate ? 'spnCertificate' : 'spnKey';
    if (useCertificate) parameters.servicePrincipalCertificate = sc.servicePrincipalCertificate ?? '';
    else parameters.serviceprincipalkey = sc.servicePrincipalKey ?? emu.getApp(sc.clientId)?.secrets?.[0]?.value ?? '';
  } else if (sc.scheme === 'ManagedServiceIdentity') {
    delete parameters.serviceprincipalid;
  }
  env[`ENDPOINT_URL_${id}`] = `${emu.url}/`;
  env[`ENDPOINT_AUTH_${id}`] = JSON.stringify({ parameters, scheme: sc.scheme });
  env[`ENDPOINT_AUTH_SCHEME_${id}`] = sc.scheme;
  for (const [k, v] of Object.entries(parameters)) env[`ENDPOINT_AUTH_PARAMETER_${id}_${k.toUpperCase()}`] = v;

  const subscription = subscriptionOf(sc);
  const data: Record<string, string> = {
    environment: 'AzureCloud',
    scopeLevel: 'Subscription',
    subscriptionId: subscription.id,
    subscriptionName: subscription.name,
    creationMode: 'Automatic',
    environmentAuthorityUrl: `${emu.url}/`,
    activeDirectoryAuthority: `${emu.url}/`,
    activeDirectoryServiceEndpointResourceId: 'https://management.core.windows.net/',
  };
  if (sc.scheme === 'ManagedServiceIdentity') data.msiclientId = sc.clientId;
  env[`ENDPOINT_DATA_${id}`] = JSON.stringify(data);
  for (const [k, v] of Object.entries(data)) env[`ENDPOINT_DATA_${id}_${k.toUpperCase()}`] = v;

  // Where msal-node looks for IMDS off Azure: the machine's setting, not the agent's, but the task
  // process needs it to reach the emulated managed identity endpoint.
  if (sc.scheme === 'ManagedServiceIdentity') env.AZURE_POD_IDENTITY_AUTHORITY_HOST = emu.url;

  return { ...env, ...extra };
}
