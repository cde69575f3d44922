/**
 * `jobRetry({ fromFailedStep: true })` on SQLite: the workflow resumes where it failed. Runs
 * inside the retry's `BEGIN IMMEDIATE` transaction, before the job itself moves: the last
 * checkpoint is looked at — a failed or waiting one is deleted; a fan-out recorded there with
 * failed or cancelled children is reopened (those children retried from scratch, completed ones
 * kept, counters and status reset, deadline moved).
 * @internal
 */
import { childrenMissingMessage } from '../shared/contract-messages.js';
import { fanOutReopens, lastStepRunsAgain, reopenedFanOutStatus } from '../shared/retry-rules.js';
import type { FanOutRow } from '../storage.js';
import { InvalidStateError } from '../../errors.js';
import { FAN_OUT_AT_STEP, FAN_OUT_CHILD_STATES, FAN_OUT_REOPEN, STEP_DELETE, STEP_LAST } from './queries/retry.js';
import { dropWorkflowState, reopenJob } from './retry-core.js';
import { int } from './rows.js';
import type { Statements } from './statements.js';


/**
 * Prepares the retry from the failed step of a failed or cancelled job: deletes a failed or
 * waiting last checkpoint, or reopens the fan-out at the last checkpoint when it has failed or
 * cancelled children (each retried as `jobRetry` does, without touching the counters, which are
 * then set whole). Nothing is written before every check passed; an error thrown later rolls
 * the caller's transaction back.
 * @throws InvalidStateError when the fan-out at the last checkpoint has fewer children than its total
 * @throws DuplicateJobError when a child's unique key is held by a live job
 */
export function retryFromFailedStep(c: Statements, now: number, jobId: string): void {
  const last = c.st(STEP_LAST).get(jobId) as { step_index: number | bigint; step_name: string; status: string } | undefined;
  if (last === undefined) return;
  const stepIndex = int(last.step_index);
  if (lastStepRunsAgain({ status: last.status, stepName: last.step_name })) {
    c.st(STEP_DELETE).run(jobId, stepIndex);
    return;
  }
  const fan = c.st(FAN_OUT_AT_STEP).get(jobId, stepIndex) as
    | { id: string; total: number | bigint; status: FanOutRow['status']; strategy: FanOutRow['strategy']; threshold: number | null }
    | undefined;
  if (fan === undefined) return;
  const total = int(fan.total);
  const kids = c.st(FAN_OUT_CHILD_STATES).all(fan.id) as { id: string; status: string; unique_key: string | null }[];
  if (kids.length < total) throw new InvalidStateError(childrenMissingMessage(jobId, fan.id, kids.length, total));
  if (!fanOutReopens(fan.status, kids.map((k) => k.status))) return;
  const again = kids.filter((k) => k.status === 'failed' || k.status === 'cancelled');
  // Not taken off the counters one by one: the fan-out's counters are set whole below.
  for (const k of again) reopenJob(c, now, { id: k.id, status: k.status, unique_key: k.unique_key, fan_out_id: null }, false);
  dropWorkflowState(c, again.map((k) => k.id));
  const succeeded = kids.filter((k) => k.status === 'completed').length;
  const status = reopenedFanOutStatus({ strategy: fan.strategy, threshold: fan.threshold, total }, succeeded);
  c.st(FAN_OUT_REOPEN).run({ id: fan.id, succeeded, status, now });
}
