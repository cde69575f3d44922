/**
 * The steps every retry of the SQLite driver shares (`jobRetry`, its `fromFailedStep` form and
 * `jobRetryMany`), run inside the caller's `BEGIN IMMEDIATE` transaction. SQLite has one write
 * lock, held by the whole transaction, so there is no row lock order to keep.
 * @internal
 */
import { JOB_DELETE_MANY, JOB_DESCENDANTS, JOB_RETRY } from './queries/jobs.js';
import { FAN_OUT_DELETE_FOR_PARENTS, FAN_OUT_UNCOUNT, SIGNAL_DELETE_FOR_JOBS, STEP_DELETE_FOR_JOBS } from './queries/workflow.js';
import type { JobDbRow } from './rows.js';
import type { Statements } from './statements.js';
import { translateError } from './translate-error.js';

/** A failed or cancelled job a retry moves back to pending, as read in the transaction. */
export type RetryTarget = Pick<JobDbRow, 'id' | 'status' | 'unique_key' | 'fan_out_id'>;

/**
 * Moves a failed or cancelled job back to pending (attempt 0, run_at `now`, last_error kept)
 * and, when it is a fan-out child and `uncount` holds, takes its old outcome off its fan-out's
 * counters: the child is counted again when it ends. Returns false when no row moved.
 * @throws DuplicateJobError when a live job holds its unique key (the statement changed nothing)
 */
export function reopenJob(c: Statements, now: number, job: RetryTarget, uncount = true): boolean {
  let changes: number;
  try {
    changes = c.st(JOB_RETRY).run({ id: job.id, now }).changes;
  } catch (e) {
    throw translateError(e, job.unique_key);
  }
  if (changes === 0) return false;
  if (uncount && job.fan_out_id !== null) {
    const failed = job.status === 'failed' ? 1 : 0;
    c.st(FAN_OUT_UNCOUNT).run({ id: job.fan_out_id, failed, cancelled: 1 - failed });
  }
  return true;
}

/**
 * Starts workflows clean: drops the checkpoints and fan-outs of `ids`, and their whole subtrees
 * (the jobs below them) with the subtrees' checkpoints, fan-outs and signals.
 */
export function dropWorkflowState(c: Statements, ids: readonly string[]): void {
  if (ids.length === 0) return;
  const below: string[] = [];
  for (const id of ids) for (const r of c.st(JOB_DESCENDANTS).all(id) as { id: string }[]) below.push(r.id);
  const own = JSON.stringify(ids);
  c.st(STEP_DELETE_FOR_JOBS).run(own);
  c.st(FAN_OUT_DELETE_FOR_PARENTS).run(own);
  if (below.length === 0) return;
  const sub = JSON.stringify(below);
  c.st(STEP_DELETE_FOR_JOBS).run(sub);
  c.st(FAN_OUT_DELETE_FOR_PARENTS).run(sub);
  c.st(SIGNAL_DELETE_FOR_JOBS).run(sub);
  c.st(JOB_DELETE_MANY).run(sub);
}

/**
 * Retries a failed or cancelled job from scratch: its checkpoints, fan-outs and subtree are
 * dropped, then it moves back to pending (fan-out accounting as {@link reopenJob}).
 * @throws DuplicateJobError when a live job holds its unique key
 */
export function retryFromScratch(c: Statements, now: number, job: RetryTarget): void {
  dropWorkflowState(c, [job.id]);
  reopenJob(c, now, job);
}
