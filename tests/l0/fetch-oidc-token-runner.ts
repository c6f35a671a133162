/**
 * L0 runner for FetchOidcToken@1: the task's compiled entry under TaskMockRunner, with the
 * network modules mocked. The scenario comes from L0_SCENARIO (set by fetch-oidc-token.test.ts).
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { layL0Job } from './federated-harness';
import { refresherControlMock } from './refresher-mock';

const taskDir = path.join(__dirname, '..', '..', 'tasks', 'FetchOidcTokenV1');
const scenario = process.env.L0_SCENARIO ?? 'federated';
const entry = scenario.startsWith('post') ? 'post.js' : 'index.js';
const tmr = new TaskMockRunner(path.join(taskDir, entry));

const CONN = 'b8a1c2d3-0000-4000-8000-00000000c0de';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const exp = Math.floor(Date.now() / 1000) + 600;
export const FAKE_ID_TOKEN = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: 'https://vstoken.dev.azure.com/org-id', sub: 'sc://contoso/web/prod', aud: 'api://AzureADTokenExchange', exp })}.c2lnbmF0dXJlLWwwLXRlc3Q`;
const FAKE_ACCESS_TOKEN = 'l0-access-token-value-0123456789';

const tempDir = process.env.L0_TEMP ?? '';
layL0Job();

// Connections of other types (issue 20): the agent hands connectionType's default when YAML leaves it out.
const AWS = 'c0ffee00-0000-4000-8000-0000000000a5';
const GCP = 'c0ffee00-0000-4000-8000-00000000009c';
const other = ['infer-aws', 'two-set', 'aws-terraform', 'aws-scope', 'explicit-oidc-stale-arm', 'pipeline', 'pipeline-identity'].includes(scenario);
if (other) {
  tmr.setInput('connectionType', scenario.startsWith('pipeline') ? 'pipeline' : scenario === 'explicit-oidc-stale-arm' ? 'oidc' : 'azureResourceManager');
  const endpoint = (id: string, parameters: Record<string, string>, url = '') => {
    process.env[`ENDPOINT_URL_${id}`] = url;
    process.env[`ENDPOINT_AUTH_${id}`] = JSON.stringify({ parameters, scheme: 'None' });
    process.env[`ENDPOINT_AUTH_SCHEME_${id}`] = 'None';
  };
  endpoint(AWS, { roleArn: 'arn:aws:iam::123456789012:role/deploy', region: 'eu-west-1' });
  endpoint(GCP, { workloadIdentityProvider: 'projects/1/locations/global/workloadIdentityPools/p/providers/q' });
  endpoint(CONN.replace('c0de', 'c1dc'), { description: 'vault' }, 'https://vault.contoso.com/');
  if (['infer-aws', 'two-set', 'aws-terraform', 'aws-scope'].includes(scenario)) tmr.setInput('awsConnection', AWS);
  if (scenario === 'two-set') tmr.setInput('gcpConnection', GCP);
  if (scenario === 'aws-terraform') tmr.setInput('exportTerraformEnv', 'true');
  if (scenario === 'aws-scope') tmr.setInput('accessTokenScope', 'https://management.azure.com/.default');
  if (scenario === 'pipeline-identity') tmr.setInput('exportAzureIdentityEnv', 'true');
  if (scenario === 'explicit-oidc-stale-arm') tmr.setInput('oidcConnection', CONN.replace('c0de', 'c1dc'));
}

const scheme = scenario === 'secret' ? 'ServicePrincipal' : scenario === 'unknown-scheme' ? 'UsernamePassword' : 'WorkloadIdentityFederation';
if (scenario !== 'missing-connection' && (!other || scenario === 'explicit-oidc-stale-arm')) tmr.setInput('connectedServiceNameARM', CONN);
if (scenario !== 'unknown-connection') {
  process.env[`ENDPOINT_AUTH_${CONN}`] = JSON.stringify({
    parameters: { tenantid: TENANT, serviceprincipalid: CLIENT, ...(scheme === 'ServicePrincipal' ? { authenticationType: 'spnKey', serviceprincipalkey: 'l0-client-secret-value' } : {}) },
    scheme,
  });
  process.env[`ENDPOINT_AUTH_SCHEME_${CONN}`] = scheme;
  process.env[`ENDPOINT_DATA_${CONN}_SUBSCRIPTIONID`] = '11111111-2222-3333-4444-555555555555';
  process.env[`ENDPOINT_DATA_${CONN}_ENVIRONMENT`] = 'AzureCloud';
}
if (scenario === 'scope' || scenario === 'secret') tmr.setInput('accessTokenScope', 'https://management.azure.com/.default');
if (scenario === 'bad-scope') tmr.setInput('accessTokenScope', 'https://management.azure.com');
if (scenario === 'bad-bool') tmr.setInput('exportTerraformEnv', 'yes');
if (scenario === 'terraform') tmr.setInput('exportTerraformEnv', 'true');
if (scenario === 'azure-identity' || scenario === 'secret-azure-identity') tmr.setInput('exportAzureIdentityEnv', 'true');
if (scenario === 'secret-azure-identity') {
  process.env[`ENDPOINT_AUTH_${CONN}`] = JSON.stringify({ parameters: { tenantid: TENANT, serviceprincipalid: CLIENT, authenticationType: 'spnKey', serviceprincipalkey: 'l0-client-secret-value' }, scheme: 'ServicePrincipal' });
}
if (scenario === 'post-outside-temp') {
  // A folder outside Agent.TempDirectory, as a pipeline variable of the task variable's name could name it.
  const outside = fs.mkdtempSync(path.join(path.dirname(tempDir), 'wit-l0-not-the-tasks-'));
  fs.writeFileSync(path.join(outside, 'keep-me'), 'x');
  process.env['VSTS_TASKVARIABLE_WorkloadIdentity.FetchOidcToken.TokenFile.Dir'.replace(/\./g, '_').toUpperCase()] = outside;
  console.log(`L0: outside folder ${outside}`);
}
if (scenario === 'post-with-dir') {
  const dir = fs.mkdtempSync(path.join(tempDir, 'azure-identity-'));
  fs.writeFileSync(path.join(dir, 'federated-token'), 'x', { mode: 0o600 });
  process.env['VSTS_TASKVARIABLE_WorkloadIdentity.FetchOidcToken.TokenFile.Dir'.replace(/\./g, '_').toUpperCase()] = dir;
  process.env.L0_DIR = dir;
}

tmr.registerMock('../core/devops/oidc-token', {
  OidcTokenClient: class {
    constructor(_ctx: unknown, private readonly subject: { id?: string }) {}
    async fetch() {
      console.log(`L0: idToken requested for ${this.subject.id ?? '(the pipeline)'}`);
      return { token: FAKE_ID_TOKEN, claims: JSON.parse(Buffer.from(FAKE_ID_TOKEN.split('.')[1], 'base64url').toString()), source: 'oidctoken-api' };
    }
  },
});
tmr.registerMock('../core/azure/entra', {
  loadMsalWhile: <T>(pending: Promise<T>) => pending,
  acquireAccessToken: async (_ctx: unknown, conn: { scheme: string }, scope: string, assertions?: { fetch(): Promise<unknown> }) => {
    if (assertions) await assertions.fetch();
    console.log(`L0: access token requested for ${scope} with ${conn.scheme}`);
    return { token: FAKE_ACCESS_TOKEN, expiresOn: new Date(Date.now() + 3600_000), scope };
  },
});

// The refresher is a detached process with its own tests (e2e); here only its start is seen.
tmr.registerMock('./refresher-control', refresherControlMock(424242));

// A post-job step loads no task-lib (tasks/core/agent/agent-channel.ts): it runs without the mock task-lib,
// whose loading would take the task variables out of the environment the agent gives the step.
tmr.run(entry === 'post.js');
