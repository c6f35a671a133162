/** What L0 runners put in place of refresher-control: the refresher is a detached process with its own e2e tests. */
export function refresherControlMock(pid: number) {
  return {
    REFRESHER_SCRIPT: 'refresher.js',
    startRefresher: async (_ctx: unknown, key: string) => {
      console.log(`L0: refresher started for ${key}`);
      return pid;
    },
    stopRefresher: async (p: number) => {
      console.log(`L0: refresher ${p} stopped`);
      return true;
    },
  };
}
