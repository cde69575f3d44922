/**
 * `jobRetry({ fromFailedStep: true })` on MySQL/MariaDB: the workflow resumes where it failed.
 * Runs inside the retry's transaction, after its locks (the fan-outs of the job and of its
 * subtree, then the job row): the last checkpoint is looked at — a failed or waiting one is
 * deleted; a fan-out recorded there with failed or cancelled children is reopened (those
 * children retried from scratch, completed ones kept, counters and status reset, deadline
 * moved). The caller then moves the job itself back to pending, keeping everything else.
 * @internal
 */
import { childrenMissingMessage } from '../shared/contract-messages.js';
import { fanOutReopens, lastStepRunsAgain, reopenedFanOutStatus } from '../shared/retry-rules.js';
import type { FanOutRow } from '../storage.js';
import { InvalidStateError } from '../../errors.js';
import { type Executor, select, write } from './connection.js';
import { CLOCK_NOW } from './queries/admin.js';
import { FAN_OUT_AT_STEP, FAN_OUT_CHILDREN_LOCK, FAN_OUT_REOPEN, STEP_DELETE, STEP_LAST } from './queries/retry.js';
import { dropWorkflowState, reopenJob, type RetryTarget } from './retry-core.js';
import { num, str, strOrNull } from './rows.js';
import { isUniqueKeyViolation, translateError } from './translate-error.js';


/**
 * Prepares the retry from the failed step of a locked failed or cancelled job: deletes a failed
 * or waiting last checkpoint, or reopens the fan-out at the last checkpoint when it has failed
 * or cancelled children. Returns the instant the caller moves the job at (the one the children
 * and the fan-out's deadline used, else `now`). Nothing is written before every check passed.
 * @throws InvalidStateError when the fan-out at the last checkpoint has fewer children than its total
 * @throws DuplicateJobError when a child's unique key is held by a live job
 */
export async function retryFromFailedStep(ex: Executor, now: number | null, job: RetryTarget): Promise<number | null> {
  const [last] = await select(ex, STEP_LAST, [job.id]);
  if (last === undefined) return now;
  const stepIndex = num(last['step_index']);
  if (lastStepRunsAgain({ status: str(last['status']), stepName: str(last['step_name']) })) {
    await write(ex, STEP_DELETE, [job.id, stepIndex]);
    return now;
  }
  const [fan] = await select(ex, FAN_OUT_AT_STEP, [job.id, stepIndex]);
  if (fan === undefined) return now;
  const fanOutId = str(fan['id']);
  const total = num(fan['total']);
  const kids = (await select(ex, FAN_OUT_CHILDREN_LOCK, [fanOutId])).map((r) => ({
    id: str(r['id']),
    status: str(r['status']),
    uniqueKey: strOrNull(r['unique_key']),
  }));
  if (kids.length < total) throw new InvalidStateError(childrenMissingMessage(job.id, fanOutId, kids.length, total));
  if (!fanOutReopens(str(fan['status']) as FanOutRow['status'], kids.map((k) => k.status))) return now;
  const again = kids.filter((k) => k.status === 'failed' || k.status === 'cancelled');
  // One instant for the children, the fan-out's deadline and the job.
  const at = now ?? num((await select(ex, CLOCK_NOW, [null]))[0]?.['now_ms']);
  for (const k of again) {
    try {
      // Not taken off the counters one by one: the fan-out's counters are set whole below.
      await reopenJob(ex, at, { id: k.id, status: k.status, fanOutId: null });
    } catch (e) {
      throw isUniqueKeyViolation(e) ? translateError(e, k.uniqueKey) : e;
    }
  }
  await dropWorkflowState(ex, again.map((k) => k.id));
  const succeeded = kids.filter((k) => k.status === 'completed').length;
  const reopened = reopenedFanOutStatus({ strategy: str(fan['strategy']) as FanOutRow['strategy'], threshold: fan['threshold'] === null ? null : num(fan['threshold']), total }, succeeded);
  await write(ex, FAN_OUT_REOPEN, [succeeded, reopened, at, at, at, fanOutId]);
  return at;
}
