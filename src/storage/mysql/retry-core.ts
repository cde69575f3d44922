/**
 * The steps every retry of the MySQL/MariaDB driver shares (`jobRetry`, its `fromFailedStep`
 * form and `jobRetryMany`), run inside the caller's transaction after its locks: the fan-outs of
 * the job and of its subtree, then the job row (the driver's lock order, see
 * `fan-out-accounting.ts`).
 * @internal
 */
import { type Executor, select, write } from './connection.js';
import { FAN_OUT_DELETE_FOR_PARENTS, JOB_DELETE_MANY, JOB_RETRY, JOB_SUBTREE_IDS, SIGNAL_DELETE_FOR_JOBS, STEP_DELETE_FOR_JOBS } from './queries/jobs.js';
import { FAN_OUT_UNCOUNT } from './queries/workflow.js';
import { str } from './rows.js';

/** A locked job a retry moves back to pending. */
export interface RetryTarget {
  id: string;
  /** `failed` or `cancelled`, as locked. */
  status: string;
  fanOutId: string | null;
}

/** Ids per statement of {@link dropWorkflowState} at most. */
const IDS_PER_STATEMENT = 1_000;

/**
 * Moves a locked failed or cancelled job back to pending (attempt 0, run_at `now`, last_error
 * kept) and, when it is a fan-out child, takes its old outcome off its fan-out's counters (that
 * fan-out locked by the caller before the job row): the child is counted again when it ends.
 * Returns false when no row moved (the job is gone). A unique-key clash comes out as the
 * server's error; InnoDB rolls back that statement only, so the caller may go on.
 */
export async function reopenJob(ex: Executor, now: number | null, job: RetryTarget): Promise<boolean> {
  if ((await write(ex, JOB_RETRY, [now, job.id])) === 0) return false;
  if (job.fanOutId !== null) {
    const failed = job.status === 'failed' ? 1 : 0;
    await write(ex, FAN_OUT_UNCOUNT, [failed, 1 - failed, job.fanOutId]);
  }
  return true;
}

/**
 * Starts workflows clean: drops the checkpoints and fan-outs of `ids`, and their whole subtrees
 * with the subtrees' checkpoints, fan-outs and signals.
 */
export async function dropWorkflowState(ex: Executor, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const subtree = (await select(ex, JOB_SUBTREE_IDS, [ids])).map((r) => str(r['id']));
  await write(ex, STEP_DELETE_FOR_JOBS, [ids]);
  await write(ex, FAN_OUT_DELETE_FOR_PARENTS, [ids]);
  for (let i = 0; i < subtree.length; i += IDS_PER_STATEMENT) {
    const part = subtree.slice(i, i + IDS_PER_STATEMENT);
    await write(ex, STEP_DELETE_FOR_JOBS, [part]);
    await write(ex, FAN_OUT_DELETE_FOR_PARENTS, [part]);
    await write(ex, SIGNAL_DELETE_FOR_JOBS, [part]);
    await write(ex, JOB_DELETE_MANY, [part]);
  }
}
