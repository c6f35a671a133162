/**
 * L0 runner for ValidateServiceConnection@1 under TaskMockRunner: the checks are mocked (rows
 * from L0_ROWS), so this tests what the task makes of them: log, summary, output, result, inputs.
 */
import * as path from 'node:path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { layL0Job } from './federated-harness';

const tmr = new TaskMockRunner(path.join(__dirname, '..', '..', 'tasks', 'ValidateServiceConnectionV1', 'index.js'));
const CONN = 'a11ce000-0000-4000-8000-0000000000v1';
layL0Job();
// L0_NO_CONNECTION: the agent passes no connection (the task cannot read it).
if (!process.env.L0_NO_CONNECTION) process.env[`ENDPOINT_AUTH_${CONN}`] = JSON.stringify({ parameters: { tenantid: 'tenant-1', serviceprincipalid: 'client-1' }, scheme: 'WorkloadIdentityFederation' });
process.env[`ENDPOINT_URL_${CONN}`] = 'https://management.azure.com/';
tmr.setInput('connectedServiceNameARM', CONN);
for (const [k, v] of Object.entries(JSON.parse(process.env.L0_INPUTS ?? '{}') as Record<string, string>)) tmr.setInput(k, v);

const rows = JSON.parse(process.env.L0_ROWS ?? '[]') as { status: string }[];
// eslint-disable-next-line @typescript-eslint/no-require-imports
const real = require(path.join(__dirname, '..', '..', 'tasks', 'core', 'azure', 'validation')) as typeof import('../../tasks/core/azure/validation');
tmr.registerMock('../core/azure/validation', {
  failureRow: real.failureRow,
  portalLinks: () => [{ title: 'Service connection in Azure DevOps', url: 'https://dev.azure.com/contoso/web/_settings/adminservices?resourceId=x' }],
  validateConnection: async (_ctx: unknown, _conn: unknown, options: { scope?: string; requiredRoles: string[]; secretExpiryWarningDays: number }) => {
    console.log(`L0: validate scope=${options.scope ?? '-'} roles=${options.requiredRoles.join('+') || '-'} days=${options.secretExpiryWarningDays}`);
    const status = rows.some((r) => r.status === 'fail') ? 'error' : rows.some((r) => r.status === 'warning') ? 'warning' : 'ok';
    return { rows, status, endpoint: { name: 'prod-deploy' } };
  },
});

tmr.run();
