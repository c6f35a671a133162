/** L0 runner for AwsAssumeRoleFederated@1 under TaskMockRunner, with the network modules mocked. */
import { federatedTaskMock } from './federated-harness';
import { refresherControlMock } from './refresher-mock';

const { tmr } = federatedTaskMock('AwsAssumeRoleFederatedV1', 'sc://contoso/web/aws');
process.env.BUILD_DEFINITIONNAME = 'Deploy: web (CI) / main';
process.env.BUILD_BUILDID = '4711';
tmr.registerMock('../core/aws/sts', {
  assumeRoleWithWebIdentity: async (_ctx: unknown, r: { endpoint: string; roleArn: string; roleSessionName: string; durationSeconds: number }) => {
    console.log(`L0: STS ${r.endpoint} ${r.roleArn} session=${r.roleSessionName} duration=${r.durationSeconds}`);
    return { accessKeyId: 'ASIAL0TESTKEY0000001', secretAccessKey: 'l0SecretAccessKey0000000000000000000000000', sessionToken: 'l0SessionToken', expiration: '2030-01-01T00:00:00Z', assumedRoleArn: 'arn:aws:sts::123456789012:assumed-role/deploy/x' };
  },
});
tmr.registerMock('./refresher-control', refresherControlMock(434343));
// A post-job step loads no task-lib (tasks/core/agent/agent-channel.ts): it runs without the mock task-lib,
// whose loading would take the task variables out of the environment the agent gives the step.
tmr.run(process.env.L0_SCENARIO === 'post');
