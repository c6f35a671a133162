/** What L0 runners put in place of refresher-control: the refresher is a detached process with its own e2e tests. */
export function refresherControlMock(pid: number) {
  return {
    REFRESHER_SCRIPT: 'refresher.js',
    startRefresher: async (_ctx: unknown, key: string, _script: string, config: { statusFile: string }) => {
      console.log(`L0: refresher started for ${key}`);
      return { pid, instanceId: 'l0-instance', statusFile: config.statusFile };
    },
    stopRefresher: async (r: { pid: number; instanceId?: string }) => {
      console.log(`L0: refresher ${r.pid} (instance ${r.instanceId}) stopped`);
      return { kind: 'stopped' };
    },
  };
}
