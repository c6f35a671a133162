/** L0 runner for AwsAssumeRoleFederated@1 under TaskMockRunner, with the network modules mocked. */
import * as path from 'node:path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { refresherControlMock } from './refresher-mock';

const scenario = process.env.L0_SCENARIO ?? 'main';
const tmr = new TaskMockRunner(path.join(__dirname, '..', '..', 'tasks', 'AwsAssumeRoleFederatedV1', scenario === 'post' ? 'post.js' : 'index.js'));
const CONN = 'a5500000-0000-4000-8000-0000000000a5';
process.env.AGENT_TEMPDIRECTORY = process.env.L0_TEMP ?? '';
process.env.BUILD_DEFINITIONNAME = 'Deploy: web (CI) / main';
process.env.BUILD_BUILDID = '4711';
process.env.SYSTEM_OIDCREQUESTURI = 'https://dev.azure.com/contoso/p/_apis/distributedtask/hubs/build/plans/x/jobs/y/oidctoken';
process.env.ENDPOINT_AUTH_SYSTEMVSSCONNECTION = JSON.stringify({ parameters: { AccessToken: 'l0-job-access-token' }, scheme: 'OAuth' });
process.env[`ENDPOINT_AUTH_${CONN}`] = JSON.stringify({ parameters: { tenantid: 'tenant-1', serviceprincipalid: 'client-1' }, scheme: process.env.L0_SCHEME ?? 'WorkloadIdentityFederation' });
tmr.setInput('connectedServiceNameARM', CONN);
for (const [k, v] of Object.entries(JSON.parse(process.env.L0_INPUTS ?? '{}') as Record<string, string>)) tmr.setInput(k, v);

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const token = `${b64({ alg: 'RS256' })}.${b64({ iss: 'https://vstoken.dev.azure.com/org', sub: 'sc://contoso/web/aws', aud: 'api://AzureADTokenExchange', exp: Math.floor(Date.now() / 1000) + 600 })}.c2ln`;
tmr.registerMock('../core/oidc-token', {
  OidcTokenClient: class {
    async fetch() {
      return { token, claims: JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()), source: 'oidctoken-api' };
    }
  },
});
tmr.registerMock('../core/sts', {
  assumeRoleWithWebIdentity: async (_ctx: unknown, r: { endpoint: string; roleArn: string; roleSessionName: string; durationSeconds: number }) => {
    console.log(`L0: STS ${r.endpoint} ${r.roleArn} session=${r.roleSessionName} duration=${r.durationSeconds}`);
    return { accessKeyId: 'ASIAL0TESTKEY0000001', secretAccessKey: 'l0SecretAccessKey0000000000000000000000000', sessionToken: 'l0SessionToken', expiration: '2030-01-01T00:00:00Z', assumedRoleArn: 'arn:aws:sts::123456789012:assumed-role/deploy/x' };
  },
});
tmr.registerMock('./refresher-control', refresherControlMock(434343));
tmr.run();
