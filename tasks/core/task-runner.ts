/**
 * Every task entry runs through here: a failure becomes a message that says what failed, why and
 * what to do, never a bare stack trace; unexpected errors keep their stack in the debug log.
 */
import * as tl from 'azure-pipelines-task-lib/task';
import { TaskFailure } from './failures';
import { debug, failureMessage, neutralize, setResult } from './output';

/** What a task's main step may end with: nothing (success), a warning, or a result of its own. */
export type Outcome = string | void | { result: tl.TaskResult; message: string };

export async function runTask(taskName: string, main: () => Promise<Outcome>): Promise<void> {
  try {
    const outcome = await main();
    if (typeof outcome === 'object') setResult(outcome.result, outcome.message);
    else if (outcome) setResult(tl.TaskResult.SucceededWithIssues, outcome);
    else setResult(tl.TaskResult.Succeeded, '');
  } catch (e) {
    if (e instanceof TaskFailure) {
      setResult(tl.TaskResult.Failed, failureMessage(e));
      return;
    }
    const err = e as Error;
    debug(err?.stack ?? String(e));
    setResult(
      tl.TaskResult.Failed,
      `${taskName} failed unexpectedly: ${neutralize(err?.message ?? String(e))}\nLikely cause: a case the task does not handle yet.\nFix: re-run with the variable system.debug=true and report the log (without secrets) to the extension's issue tracker.`,
    );
  }
}
