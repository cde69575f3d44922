/**
 * Operator actions on one job: cancel (whole subtree), pause, resume, retry, and signals sent
 * to a job. Each runs synchronously inside the caller's `BEGIN IMMEDIATE` transaction.
 * @internal
 */
import { InvalidStateError, JobNotFoundError } from '../../errors.js';
import { TERMINAL_STATUSES, type JobStatus } from '../../types.js';
import { cancelSubtrees } from './fan-out-accounting.js';
import { JOB_DELETE_MANY, JOB_DESCENDANTS, JOB_GET, JOB_PAUSE, JOB_RESUME, JOB_RETRY, JOB_STATUS } from './queries/jobs.js';
import {
  FAN_OUT_DELETE_FOR_PARENTS,
  FAN_OUT_UNCOUNT,
  JOB_WAKE_SIGNAL_WAITER,
  SIGNAL_DELETE_FOR_JOBS,
  SIGNAL_INSERT,
  STEP_DELETE_FOR_JOBS,
} from './queries/workflow.js';
import type { JobDbRow } from './rows.js';
import type { Statements } from './statements.js';
import { translateError } from './translate-error.js';

/** The status of a job. @throws JobNotFoundError */
export function statusOf(c: Statements, id: string): JobStatus {
  const r = c.st(JOB_STATUS).get(id) as { status: string } | undefined;
  if (r === undefined) throw new JobNotFoundError(id);
  return r.status as JobStatus;
}

function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/**
 * Cancels a non-terminal job and its subtree, with fan-out accounting (a failed decision also
 * cancels the siblings). Returns every id cancelled, the job first; empty when already terminal.
 * @throws JobNotFoundError
 */
export function cancelJob(c: Statements, now: number, id: string): string[] {
  if (isTerminal(statusOf(c, id))) return [];
  return cancelSubtrees(c, now, [id]);
}

/** pending → paused. @throws JobNotFoundError, InvalidStateError */
export function pauseJob(c: Statements, id: string): void {
  if (c.st(JOB_PAUSE).run(id).changes === 1) return;
  const status = statusOf(c, id);
  throw new InvalidStateError(`cannot pause job ${id}: it is ${status} (only a pending job can be paused)`);
}

/** paused → pending. @throws JobNotFoundError, InvalidStateError */
export function resumeJob(c: Statements, id: string): void {
  if (c.st(JOB_RESUME).run(id).changes === 1) return;
  const status = statusOf(c, id);
  throw new InvalidStateError(`cannot resume job ${id}: it is ${status} (only a paused job can be resumed)`);
}

/**
 * failed/cancelled → pending (attempt 0, run_at now); drops the job's checkpoints and fan-outs
 * and deletes its descendants (with their checkpoints, fan-outs and signals). A retried fan-out
 * child leaves its fan-out's counters (a decision already made stands).
 * @throws JobNotFoundError, InvalidStateError, DuplicateJobError (its unique key is taken again)
 */
export function retryJob(c: Statements, now: number, id: string): void {
  const row = c.st(JOB_GET).get(id) as JobDbRow | undefined;
  if (row === undefined) throw new JobNotFoundError(id);
  if (row.status !== 'failed' && row.status !== 'cancelled') {
    throw new InvalidStateError(`cannot retry job ${id}: it is ${row.status} (only a failed or cancelled job can be retried)`);
  }
  const descendants = (c.st(JOB_DESCENDANTS).all(id) as { id: string }[]).map((r) => r.id);
  const all = JSON.stringify([id, ...descendants]);
  c.st(STEP_DELETE_FOR_JOBS).run(all);
  c.st(FAN_OUT_DELETE_FOR_PARENTS).run(all);
  if (descendants.length > 0) {
    const only = JSON.stringify(descendants);
    c.st(SIGNAL_DELETE_FOR_JOBS).run(only);
    c.st(JOB_DELETE_MANY).run(only);
  }
  try {
    c.st(JOB_RETRY).run({ id, now });
  } catch (e) {
    throw translateError(e, row.unique_key);
  }
  // A retried fan-out child is counted again when it ends: take its old outcome back out.
  if (row.fan_out_id !== null) {
    c.st(FAN_OUT_UNCOUNT).run({ id: row.fan_out_id, failed: row.status === 'failed' ? 1 : 0, cancelled: row.status === 'cancelled' ? 1 : 0 });
  }
}

/**
 * Buffers a signal and wakes the job if it waits for that name.
 * @throws JobNotFoundError, InvalidStateError (terminal job)
 */
export function sendSignal(c: Statements, now: number, p: { jobId: string; name: string; payloadJson: string | null }): void {
  const status = statusOf(c, p.jobId);
  if (isTerminal(status)) throw new InvalidStateError(`cannot signal job ${p.jobId}: it is ${status}`);
  c.st(SIGNAL_INSERT).run({ jobId: p.jobId, name: p.name, payload: p.payloadJson, now });
  c.st(JOB_WAKE_SIGNAL_WAITER).run({ id: p.jobId, name: p.name });
}
