/**
 * L0 runner for AcrLoginFederated@1 under TaskMockRunner: the network modules are mocked; the
 * scenario comes from L0_SCENARIO (set by acr-login.test.ts), files go under L0_TEMP.
 */
import * as path from 'node:path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { layL0Job } from './federated-harness';

const taskDir = path.join(__dirname, '..', '..', 'tasks', 'AcrLoginFederatedV1');
const scenario = process.env.L0_SCENARIO ?? 'job';
const tmr = new TaskMockRunner(path.join(taskDir, scenario.startsWith('post') ? 'post.js' : 'index.js'));

const CONN = 'c0ffee00-0000-4000-8000-00000000acr1';
layL0Job();
process.env[`ENDPOINT_AUTH_${CONN}`] = JSON.stringify({ parameters: { tenantid: 'tenant-1', serviceprincipalid: 'client-1' }, scheme: 'WorkloadIdentityFederation' });
process.env[`ENDPOINT_DATA_${CONN}_ENVIRONMENT`] = 'AzureCloud';
tmr.setInput('connectedServiceNameARM', CONN);
for (const [k, v] of Object.entries(JSON.parse(process.env.L0_INPUTS ?? '{}') as Record<string, string>)) tmr.setInput(k, v);

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const idToken = `${b64({ alg: 'RS256' })}.${b64({ iss: 'https://vstoken.dev.azure.com/o', sub: 'sc://contoso/web/acr', aud: 'api://AzureADTokenExchange', exp: Math.floor(Date.now() / 1000) + 600 })}.c2ln`;

tmr.registerMock('../core/devops/oidc-token', {
  OidcTokenClient: class {
    async fetch() {
      return { token: idToken, claims: JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString()), source: 'oidctoken-api' };
    }
  },
});
tmr.registerMock('../core/azure/entra', {
  loadMsalWhile: <T>(pending: Promise<T>) => pending,
  acquireAccessToken: async (_c: unknown, _conn: unknown, scope: string, a?: { fetch(): Promise<unknown> }) => {
    if (a) await a.fetch();
    console.log(`L0: Entra token for ${scope}`);
    return { token: 'l0-entra-access-token', expiresOn: new Date(Date.now() + 3600_000), scope };
  },
});
tmr.registerMock('../core/acr/acr', {
  acrScope: (audience: string) => (audience === 'registry' ? 'https://containerregistry.azure.net/.default' : 'https://management.azure.com/.default'),
  exchangeForRefreshToken: async (_c: unknown, loginServer: string, tenant: string, _token: string, audience: string) => {
    console.log(`L0: exchange at ${loginServer} for tenant ${tenant} with the ${audience} audience`);
    return `l0-refresh-token-for-${loginServer}`;
  },
});

// A post-job step loads no task-lib (tasks/core/agent/agent-channel.ts): it runs without the mock task-lib,
// whose loading would take the task variables out of the environment the agent gives the step.
tmr.run(scenario.startsWith('post'));
