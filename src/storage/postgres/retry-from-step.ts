/**
 * `jobRetry({ fromFailedStep: true })` on PostgreSQL: the workflow resumes where it failed.
 * Runs inside the retry's transaction, after its locks (the fan-outs of the job and its
 * subtree, then the job row): the last checkpoint is looked at — a failed or waiting one is
 * deleted; a fan-out recorded there with failed or cancelled children is reopened (those
 * children retried from scratch, completed ones kept, counters and status reset, deadline
 * moved) — and the job itself goes back to pending, keeping everything else.
 * @internal
 */
import { childrenMissingMessage } from '../shared/contract-messages.js';
import { fanOutReopens, lastStepRunsAgain, reopenedFanOutStatus } from '../shared/retry-rules.js';
import type { FanOutRow } from '../storage.js';
import { InvalidStateError } from '../../errors.js';
import type { PgQueryableLike } from './connection.js';
import type { PgExec } from './executor.js';
import { descendants } from './fan-out-accounting.js';
import { CLOCK_NOW } from './queries/admin.js';
import { JOB_DROP_WORKFLOW_STATE, JOB_RETRY } from './queries/jobs.js';
import { FAN_OUT_AT_STEP, FAN_OUT_CHILD_STATUSES, FAN_OUT_REOPEN, STEP_DELETE, STEP_LAST } from './queries/retry.js';
import { toInt } from './rows.js';


/**
 * Moves a failed or cancelled job (locked, status `status`) back to pending as its retry from
 * the failed step. Nothing is written before every check has passed.
 * @throws InvalidStateError when the fan-out at the last checkpoint has fewer children than its total
 */
export async function retryFromFailedStep(x: PgExec, c: PgQueryableLike, id: string, status: 'failed' | 'cancelled'): Promise<void> {
  const last = await x.one<{ step_index: number; step_name: string; status: string }>(STEP_LAST, [id], c);
  let now = x.now();
  if (last !== undefined && lastStepRunsAgain({ status: last.status, stepName: last.step_name })) {
    await x.rows(STEP_DELETE, [id, last.step_index], c);
  } else if (last !== undefined) {
    const fan = await x.one<{ id: string; total: number; status: FanOutRow['status']; strategy: FanOutRow['strategy']; threshold: number | null }>(
      FAN_OUT_AT_STEP,
      [id, last.step_index],
      c,
    );
    if (fan !== undefined) {
      const kids = await x.rows<{ id: string; status: string }>(FAN_OUT_CHILD_STATUSES, [fan.id], c);
      if (kids.length < fan.total) throw new InvalidStateError(childrenMissingMessage(id, fan.id, kids.length, fan.total));
      const again = kids.filter((k) => k.status === 'failed' || k.status === 'cancelled');
      if (fanOutReopens(fan.status, kids.map((k) => k.status))) {
        // One instant for the children, the fan-out's deadline and the job.
        now ??= toInt((await x.one<{ now: string }>(CLOCK_NOW, [], c))?.now);
        for (const k of again) {
          const failed = k.status === 'failed' ? 1 : 0;
          await x.rows(JOB_RETRY, [now, k.id, x.channel, failed, 1 - failed], c);
          await x.rows(JOB_DROP_WORKFLOW_STATE, [k.id, await descendants(x, c, [k.id])], c);
        }
        const succeeded = kids.filter((k) => k.status === 'completed').length;
        const reopened = reopenedFanOutStatus({ strategy: fan.strategy, threshold: fan.threshold === null ? null : Number(fan.threshold), total: fan.total }, succeeded);
        await x.rows(FAN_OUT_REOPEN, [now, fan.id, succeeded, reopened], c);
      }
    }
  }
  const failed = status === 'failed' ? 1 : 0;
  await x.rows(JOB_RETRY, [now, id, x.channel, failed, 1 - failed], c);
}
