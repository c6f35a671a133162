/**
 * Every task entry runs through here: a failure becomes a message that says what failed, why and
 * what to do, never a bare stack trace; unexpected errors keep their stack in the debug log.
 */
import { StepResult, usePostJobChannel } from './agent-channel';
import { TaskFailure } from '../http/failures';
import { debug, failureMessage, neutralize, setResult } from './output';

/** What a task's main step may end with: nothing (success), a warning, or a result of its own. */
export type Outcome = string | void | { result: StepResult; message: string };

export async function runTask(taskName: string, main: () => Promise<Outcome>): Promise<void> {
  try {
    const outcome = await main();
    if (typeof outcome === 'object') setResult(outcome.result, outcome.message);
    else if (outcome) setResult('SucceededWithIssues', outcome);
    else setResult('Succeeded', '');
  } catch (e) {
    if (e instanceof TaskFailure) {
      setResult('Failed', failureMessage(e));
      return;
    }
    const err = e as Error;
    debug(err?.stack ?? String(e));
    setResult(
      'Failed',
      `${taskName} failed unexpectedly: ${neutralize(err?.message ?? String(e))}\nLikely cause: a case the task does not handle yet.\nFix: re-run with the variable system.debug=true and report the log (without secrets) to the extension's issue tracker.`,
    );
  }
}

/** A post-job step: the same, on the post-job channel (see agent-channel.ts), loading no more of task-lib than its command format. */
export function runPostJob(taskName: string, post: () => Promise<Outcome>): Promise<void> {
  usePostJobChannel();
  // What task-lib's handlers did when it loaded: an error outside the awaited chain still ends as a
  // failed step with a neutralised message, never as a raw stack on stderr.
  const unexpected = (e: unknown) => {
    const err = e as Error;
    debug(err?.stack ?? String(e));
    setResult('Failed', `${taskName} failed unexpectedly: ${neutralize(err?.message ?? String(e))}`);
  };
  process.on('uncaughtException', unexpected);
  process.on('unhandledRejection', unexpected);
  return runTask(taskName, post);
}
