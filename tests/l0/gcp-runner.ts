/** L0 runner for GcpAuthFederated@1 under TaskMockRunner, with the network modules mocked. */
import * as path from 'node:path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { refresherControlMock } from './refresher-mock';

const scenario = process.env.L0_SCENARIO ?? 'main';
const tmr = new TaskMockRunner(path.join(__dirname, '..', '..', 'tasks', 'GcpAuthFederatedV1', scenario === 'post' ? 'post.js' : 'index.js'));
const CONN = 'a5500000-0000-4000-8000-0000000000a5';
process.env.AGENT_TEMPDIRECTORY = process.env.L0_TEMP ?? '';
process.env.SYSTEM_OIDCREQUESTURI = 'https://dev.azure.com/contoso/p/_apis/distributedtask/hubs/build/plans/x/jobs/y/oidctoken';
process.env.ENDPOINT_AUTH_SYSTEMVSSCONNECTION = JSON.stringify({ parameters: { AccessToken: 'l0-job-access-token' }, scheme: 'OAuth' });
process.env[`ENDPOINT_AUTH_${CONN}`] = JSON.stringify({ parameters: { tenantid: 'tenant-1', serviceprincipalid: 'client-1' }, scheme: process.env.L0_SCHEME ?? 'WorkloadIdentityFederation' });
tmr.setInput('connectedServiceNameARM', CONN);
for (const [k, v] of Object.entries(JSON.parse(process.env.L0_INPUTS ?? '{}') as Record<string, string>)) tmr.setInput(k, v);

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const token = `${b64({ alg: 'RS256' })}.${b64({ iss: 'https://vstoken.dev.azure.com/org', sub: 'sc://contoso/web/gcp', aud: 'api://AzureADTokenExchange', exp: Math.floor(Date.now() / 1000) + 600 })}.c2ln`;
tmr.registerMock('../core/oidc-token', {
  OidcTokenClient: class {
    async fetch() {
      return { token, claims: JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()), source: 'oidctoken-api' };
    }
  },
});
// The real module is required only when the task runs: loading it here would load the task-lib before the inputs are set.
const real = () => require('../../tasks/core/gcp') as typeof import('../../tasks/core/gcp');
tmr.registerMock('../core/gcp', {
  externalAccountFile: (...a: Parameters<typeof import('../../tasks/core/gcp').externalAccountFile>) => real().externalAccountFile(...a),
  principalFor: (...a: Parameters<typeof import('../../tasks/core/gcp').principalFor>) => real().principalFor(...a),
  exchangeIdToken: async (_ctx: unknown, p: { name: string }, idToken: string) => {
    console.log(`L0: STS ${p.name} subject_token=${idToken === token ? 'the idToken' : 'other'}`);
    return { token: 'l0-federated-token', expiresOn: new Date('2030-01-01T00:00:00Z') };
  },
  impersonate: async (_ctx: unknown, _p: unknown, federated: string, serviceAccount: string, scopes: string[], lifetime: number) => {
    console.log(`L0: IAM ${serviceAccount} bearer=${federated} scopes=${scopes.join(' ')} lifetime=${lifetime}`);
    return { token: 'l0-service-account-token', expiresOn: new Date('2030-01-01T01:00:00Z') };
  },
});
tmr.registerMock('./refresher-control', refresherControlMock(434343));
tmr.run();
