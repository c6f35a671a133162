/** L0 runner for GcpAuthFederated@1 under TaskMockRunner, with the network modules mocked. */
import { federatedTaskMock } from './federated-harness';
import { refresherControlMock } from './refresher-mock';

const { tmr, token } = federatedTaskMock('GcpAuthFederatedV1', 'sc://contoso/web/gcp');
// The real module is required only when the task runs: loading it here would load the task-lib before the inputs are set.
const real = () => require('../../tasks/core/google/gcp') as typeof import('../../tasks/core/google/gcp');
tmr.registerMock('../core/google/gcp', {
  externalAccountFile: (...a: Parameters<typeof import('../../tasks/core/google/gcp').externalAccountFile>) => real().externalAccountFile(...a),
  principalFor: (...a: Parameters<typeof import('../../tasks/core/google/gcp').principalFor>) => real().principalFor(...a),
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
// A post-job step loads no task-lib (tasks/core/agent/agent-channel.ts): it runs without the mock task-lib,
// whose loading would take the task variables out of the environment the agent gives the step.
tmr.run(process.env.L0_SCENARIO === 'post');
