/**
 * Workflow writes on SQLite: checkpoints, suspension (sleep, signal wait, fan-out), signal
 * consumption and fan-out expiry. Each runs synchronously inside the caller's
 * `BEGIN IMMEDIATE` transaction; every write to a claimed job checks its fence first.
 * @internal
 */
import { InvalidStateError } from '../../errors.js';
import { decideFanOut } from '../fan-out-rules.js';
import type {
  Fence,
  JobSuspendFanOutParams,
  JobSuspendParams,
  SignalConsumeParams,
  SignalConsumeResult,
  StepRecordParams,
  StepRow,
} from '../storage.js';
import type { FanOutRow } from '../storage.js';
import { cancelFanOutChildren } from './fan-out-accounting.js';
import { insertJobs, isTerminal, statusOf } from './job-ops.js';
import {
  FAN_OUT_EXPIRE,
  FAN_OUT_GET,
  FAN_OUT_INSERT,
  JOB_FENCE_CHECK,
  JOB_RESUME_WAITING_PARENT,
  JOB_SUSPEND,
  JOB_WAKE_SIGNAL_WAITER,
  SIGNAL_CONSUME,
  SIGNAL_INSERT,
  SIGNAL_OLDEST,
  STEP_LIST,
  STEP_UPSERT,
} from './queries/workflow.js';
import { toFanOutRow, toStepRow, type FanOutDbRow, type StepDbRow } from './rows.js';
import type { Statements } from './statements.js';

/** The error recorded on a signal-wait step whose deadline passed. */
export const SIGNAL_WAIT_TIMED_OUT = 'signal wait timed out';

/** Whether the fence of a run holds right now. */
export function fenceHolds(c: Statements, f: Fence): boolean {
  return c.st(JOB_FENCE_CHECK).get({ id: f.jobId, workerId: f.workerId, runCount: f.runCount }) !== undefined;
}

/** Upserts a checkpoint (replacing only a `waiting` row); true when written. */
export function upsertStep(c: Statements, now: number, s: StepRow): boolean {
  const r = c.st(STEP_UPSERT).run({
    jobId: s.jobId,
    stepIndex: s.stepIndex,
    stepName: s.stepName,
    status: s.status,
    output: s.outputJson,
    error: s.error,
    now,
  });
  return r.changes === 1;
}

/** Fenced checkpoint insert. */
export function stepRecord(c: Statements, now: number, fence: Fence, step: StepRow): boolean {
  if (!fenceHolds(c, fence)) return false;
  return upsertStep(c, now, { ...step, jobId: fence.jobId });
}

/** Fenced checkpoint inserts, each applied as `stepRecord` would; true per item written. */
export function stepRecordMany(c: Statements, now: number, items: readonly StepRecordParams[]): boolean[] {
  return items.map((i) => stepRecord(c, now, i.fence, i.step));
}

function suspend(c: Statements, fence: Fence, status: 'waiting' | 'pending', wakeAt: number | null, waitSignal: string | null): boolean {
  const r = c.st(JOB_SUSPEND).run({ id: fence.jobId, workerId: fence.workerId, runCount: fence.runCount, status, wakeAt, waitSignal });
  return r.changes === 1;
}

/**
 * Fenced: records `step` (if any) and turns the job `waiting` (attempt given back). When it
 * waits for a signal that is already buffered, it goes straight back to `pending` so the
 * buffered signal cannot be missed.
 */
export function jobSuspend(c: Statements, now: number, p: JobSuspendParams): boolean {
  if (!fenceHolds(c, p.fence)) return false;
  if (p.step !== null) upsertStep(c, now, { ...p.step, jobId: p.fence.jobId });
  const buffered = p.waitSignal !== null && c.st(SIGNAL_OLDEST).get({ jobId: p.fence.jobId, name: p.waitSignal }) !== undefined;
  return suspend(c, p.fence, buffered ? 'pending' : 'waiting', buffered ? null : p.wakeAt, buffered ? null : p.waitSignal);
}

/**
 * Fenced: records the fan-out step, inserts the fan-out and its children, and turns the parent
 * `waiting` until the fan-out is decided (wake_at = the fan-out deadline). A fan-out with no
 * children is decided at once and the parent goes straight back to `pending`.
 * @throws DuplicateJobError when a child's unique key clashes (nothing is written)
 */
export function jobSuspendFanOut(c: Statements, now: number, p: JobSuspendFanOutParams): boolean {
  if (!fenceHolds(c, p.fence)) return false;
  const parentId = p.fence.jobId;
  upsertStep(c, now, { ...p.step, jobId: parentId });
  const total = p.children.length;
  const deadlineAt = p.fanOut.timeoutMs === null ? null : now + p.fanOut.timeoutMs;
  const decision = decideFanOut({ strategy: p.fanOut.strategy, threshold: p.fanOut.threshold, total, succeeded: 0, failed: 0, cancelled: 0 });
  c.st(FAN_OUT_INSERT).run({
    id: p.fanOut.id,
    parentId,
    stepIndex: p.step.stepIndex,
    strategy: p.fanOut.strategy,
    threshold: p.fanOut.threshold,
    total,
    status: decision,
    deadlineAt,
    now,
    decidedAt: decision === 'running' ? null : now,
  });
  insertJobs(
    c,
    now,
    p.children.map((ch) => ({ ...ch, parentId, fanOutId: p.fanOut.id })),
    'error',
  );
  if (decision !== 'running') return suspend(c, p.fence, 'pending', null, null);
  return suspend(c, p.fence, 'waiting', deadlineAt, null);
}

/**
 * Fenced, in this order: consume the oldest buffered signal and record the step completed with
 * its payload; else, past the deadline, record the step failed (timed out); else record a
 * `waiting` step holding the deadline and suspend the job waiting for the signal.
 * @throws InvalidStateError when a finished step already sits at that index (nothing is written)
 */
export function signalConsumeOrWait(c: Statements, now: number, p: SignalConsumeParams): SignalConsumeResult {
  const { fence } = p;
  if (!fenceHolds(c, fence)) return { kind: 'lost' };
  const step = { jobId: fence.jobId, stepIndex: p.stepIndex, stepName: p.stepName };
  const alreadyFinished = (): InvalidStateError =>
    new InvalidStateError(`step ${p.stepIndex} of job ${fence.jobId} is already recorded as finished`);

  const signal = c.st(SIGNAL_OLDEST).get({ jobId: fence.jobId, name: p.signalName }) as { seq: number | bigint; payload: string | null } | undefined;
  if (signal !== undefined) {
    c.st(SIGNAL_CONSUME).run({ seq: signal.seq, now });
    if (!upsertStep(c, now, { ...step, status: 'completed', outputJson: signal.payload, error: null })) throw alreadyFinished();
    return { kind: 'consumed', payloadJson: signal.payload };
  }
  if (p.deadlineAt !== null && now >= p.deadlineAt) {
    if (!upsertStep(c, now, { ...step, status: 'failed', outputJson: null, error: SIGNAL_WAIT_TIMED_OUT })) throw alreadyFinished();
    return { kind: 'timed-out' };
  }
  if (!upsertStep(c, now, { ...step, status: 'waiting', outputJson: JSON.stringify(p.deadlineAt), error: null })) throw alreadyFinished();
  suspend(c, fence, 'waiting', p.deadlineAt, p.signalName);
  return { kind: 'suspended' };
}

/**
 * Fails a running fan-out whose deadline passed: resumes its waiting parent and cancels the
 * unfinished children (counted as cancelled). Returns whether it applied.
 */
export function fanOutExpire(c: Statements, now: number, id: string): boolean {
  const r = c.st(FAN_OUT_EXPIRE).get({ id, now }) as { parent_id: string } | undefined;
  if (r === undefined) return false;
  // The expiry was the deciding transition: resume the parent if it still waits.
  c.st(JOB_RESUME_WAITING_PARENT).run(r.parent_id);
  cancelFanOutChildren(c, now, id);
  return true;
}

/** Every checkpoint of a job, by step index. */
export function stepList(c: Statements, jobId: string): StepRow[] {
  return (c.st(STEP_LIST).all(jobId) as StepDbRow[]).map(toStepRow);
}

/** One fan-out by id. */
export function fanOutGet(c: Statements, id: string): FanOutRow | undefined {
  const r = c.st(FAN_OUT_GET).get(id) as FanOutDbRow | undefined;
  return r === undefined ? undefined : toFanOutRow(r);
}

/**
 * Buffers a signal and wakes the job if it waits for that name.
 * @throws JobNotFoundError, InvalidStateError (terminal job)
 */
export function signalSend(c: Statements, now: number, p: { jobId: string; name: string; payloadJson: string | null }): void {
  const status = statusOf(c, p.jobId);
  if (isTerminal(status)) throw new InvalidStateError(`cannot signal job ${p.jobId}: it is ${status}`);
  c.st(SIGNAL_INSERT).run({ jobId: p.jobId, name: p.name, payload: p.payloadJson, now });
  c.st(JOB_WAKE_SIGNAL_WAITER).run({ id: p.jobId, name: p.name });
}
