/**
 * What a retry from the failed step (`jobRetry` with `fromFailedStep`) does with a workflow's
 * last checkpoint, decided once for every driver.
 * @internal
 */
import type { FanOutRow } from '../storage.js';
import { settleCountedFanOut } from './fan-out-settle.js';

/**
 * Whether the last checkpoint is dropped so its step runs again: a wait in progress (`waiting`)
 * or a step that failed for good (a `ctx.call` that threw `noRetry`). A signal wait that timed
 * out is also stored as `failed`, but the workflow went on past it (the wait returned
 * `undefined`): it is kept, like every completed checkpoint.
 * @internal
 */
export function lastStepRunsAgain(step: { status: string; stepName: string }): boolean {
  return step.status === 'waiting' || (step.status === 'failed' && !step.stepName.startsWith('signal:'));
}

/**
 * Whether the fan-out at the last checkpoint is reopened: it was not decided `succeeded`, or
 * some child failed or was cancelled (a collect-all or threshold fan-out succeeds with failed
 * children). One whose failed children were all retried by hand since (now completed or still
 * running) is reopened too, so the workflow does not replay the old failure.
 * @internal
 */
export function fanOutReopens(status: FanOutRow['status'], childStatuses: readonly string[]): boolean {
  return status !== 'succeeded' || childStatuses.some((s) => s === 'failed' || s === 'cancelled');
}

/**
 * The status of a reopened fan-out whose failed and cancelled children run again: `succeeded`
 * at once when its completed children already decide it (every failed child was retried by
 * hand and completed), else `running` until the children end.
 * @internal
 */
export function reopenedFanOutStatus(f: Pick<FanOutRow, 'strategy' | 'threshold' | 'total'>, succeeded: number): 'running' | 'succeeded' {
  const s = settleCountedFanOut({ strategy: f.strategy, threshold: f.threshold, total: f.total, succeeded, failed: 0, cancelled: 0, status: 'running' });
  return s.decided === 'succeeded' ? 'succeeded' : 'running';
}
