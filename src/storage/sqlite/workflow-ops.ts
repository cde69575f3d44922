/**
 * Workflow operations on SQLite: checkpoints, suspension (sleep, durable timer, signal wait,
 * fan-out), fan-out reads and expiry, and signals. Each write is one synchronous
 * `BEGIN IMMEDIATE` transaction (`ctx.write`); every write to a claimed job checks its fence
 * first.
 * @internal
 */
import { InvalidStateError } from '../../errors.js';
import { decideFanOut } from '../fan-out-rules.js';
import { cannotSignalMessage, SIGNAL_WAIT_TIMED_OUT, stepAlreadyFinishedMessage } from '../shared/contract-messages.js';
import { fanOutDeadlinePassed } from '../shared/fan-out-settle.js';
import { stepPage } from '../shared/step-page.js';
import type { DbRecord } from '../shared/row-mapping.js';
import type {
  FanOutCollected,
  FanOutRow,
  Fence,
  JobSuspendFanOutParams,
  JobSuspendParams,
  JobSuspendUntilParams,
  JobSuspendUntilResult,
  SignalConsumeParams,
  SignalConsumeResult,
  SignalRow,
  StepRecordParams,
  StepRow,
} from '../storage.js';
import { expireFanOut } from './fan-out-accounting.js';
import { insertJobs, isTerminal, statusOf } from './job-ops.js';
import {
  FAN_OUT_CHILDREN,
  FAN_OUT_GET,
  FAN_OUT_INSERT,
  JOB_FENCE_CHECK,
  JOB_SUSPEND,
  JOB_WAKE_SIGNAL_WAITER,
  SIGNAL_CONSUME,
  SIGNAL_INSERT,
  SIGNAL_LIST,
  SIGNAL_OLDEST,
  STEP_LIST,
  STEP_LIST_PAGE,
  STEP_UPSERT,
} from './queries/workflow.js';
import { toFanOutRow, toJobRow, toSignalRow, toStepRow, type FanOutDbRow, type JobDbRow } from './rows.js';
import type { SqliteContext, Statements } from './statements.js';

/** Whether the fence of a run holds right now. */
function fenceHolds(c: Statements, f: Fence): boolean {
  return c.st(JOB_FENCE_CHECK).get({ id: f.jobId, workerId: f.workerId, runCount: f.runCount }) !== undefined;
}

/** Upserts a checkpoint (replacing only a `waiting` row); true when written. */
function upsertStep(c: Statements, now: number, s: StepRow): boolean {
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

/** Fenced checkpoint insert; true when written. */
function recordStep(c: Statements, now: number, fence: Fence, step: StepRow): boolean {
  if (!fenceHolds(c, fence)) return false;
  return upsertStep(c, now, { ...step, jobId: fence.jobId });
}

/** Fenced checkpoint insert. */
export function stepRecord(ctx: SqliteContext, p: StepRecordParams): boolean {
  return ctx.write((c, now) => recordStep(c, now, p.fence, p.step));
}

/** Fenced checkpoint inserts in one transaction, each applied as `stepRecord` would; true per item written. */
export function stepRecordMany(ctx: SqliteContext, p: { items: readonly StepRecordParams[] }): boolean[] {
  return ctx.write((c, now) => p.items.map((i) => recordStep(c, now, i.fence, i.step)));
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
export function jobSuspend(ctx: SqliteContext, p: JobSuspendParams): boolean {
  return ctx.write((c, now) => {
    if (!fenceHolds(c, p.fence)) return false;
    if (p.step !== null) upsertStep(c, now, { ...p.step, jobId: p.fence.jobId });
    const buffered = p.waitSignal !== null && c.st(SIGNAL_OLDEST).get({ jobId: p.fence.jobId, name: p.waitSignal }) !== undefined;
    return suspend(c, p.fence, buffered ? 'pending' : 'waiting', buffered ? null : p.wakeAt, buffered ? null : p.waitSignal);
  });
}

/**
 * Fenced: records the fan-out step, inserts the fan-out and its children, and turns the parent
 * `waiting` until the fan-out is decided (wake_at = the fan-out deadline). A fan-out with no
 * children is decided at once and the parent goes straight back to `pending`.
 * @throws DuplicateJobError when a child's unique key clashes (nothing is written)
 */
export function jobSuspendFanOut(ctx: SqliteContext, p: JobSuspendFanOutParams): boolean {
  return ctx.write((c, now) => suspendFanOut(c, now, p));
}

function suspendFanOut(c: Statements, now: number, p: JobSuspendFanOutParams): boolean {
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
export function signalConsumeOrWait(ctx: SqliteContext, p: SignalConsumeParams): SignalConsumeResult {
  return ctx.write((c, now) => consumeOrWait(c, now, p));
}

function consumeOrWait(c: Statements, now: number, p: SignalConsumeParams): SignalConsumeResult {
  const { fence } = p;
  if (!fenceHolds(c, fence)) return { kind: 'lost' };
  const step = { jobId: fence.jobId, stepIndex: p.stepIndex, stepName: p.stepName };
  const alreadyFinished = (): InvalidStateError => new InvalidStateError(stepAlreadyFinishedMessage(fence.jobId, p.stepIndex));

  const signal = c.st(SIGNAL_OLDEST).get({ jobId: fence.jobId, name: p.signalName }) as { seq: number | bigint; payload: string | null } | undefined;
  if (signal !== undefined) {
    c.st(SIGNAL_CONSUME).run({ seq: signal.seq, now });
    if (!upsertStep(c, now, { ...step, status: 'completed', outputJson: signal.payload, error: null })) throw alreadyFinished();
    return { kind: 'consumed', payloadJson: signal.payload };
  }
  // A first wait with a timeout fixes its deadline here, on the transaction's clock.
  const deadlineAt = p.timeoutMs === undefined ? p.deadlineAt : now + Math.max(0, Math.ceil(p.timeoutMs));
  if (deadlineAt !== null && now >= deadlineAt) {
    if (!upsertStep(c, now, { ...step, status: 'failed', outputJson: null, error: SIGNAL_WAIT_TIMED_OUT })) throw alreadyFinished();
    return { kind: 'timed-out' };
  }
  if (!upsertStep(c, now, { ...step, status: 'waiting', outputJson: JSON.stringify(deadlineAt), error: null })) throw alreadyFinished();
  suspend(c, fence, 'waiting', deadlineAt, p.signalName);
  return { kind: 'suspended' };
}

/**
 * Fenced durable timer, on the transaction's clock: the wake time is the recorded one or now +
 * delay; the checkpoint is recorded unless it already is; then the run goes on (elapsed) or the
 * job waits until the wake time (suspended).
 */
export function jobSuspendUntil(ctx: SqliteContext, p: JobSuspendUntilParams): JobSuspendUntilResult {
  return ctx.write((c, now) => {
    if (!fenceHolds(c, p.fence)) return { kind: 'lost' };
    const wakeAt = p.wakeAt ?? now + Math.max(0, Math.ceil(p.delayMs ?? 0));
    if (!p.recorded) {
      const step: StepRow = { jobId: p.fence.jobId, stepIndex: p.stepIndex, stepName: p.stepName, status: 'completed', outputJson: JSON.stringify(wakeAt), error: null };
      upsertStep(c, now, step);
    }
    if (now >= wakeAt) return { kind: 'elapsed', wakeAt };
    suspend(c, p.fence, 'waiting', wakeAt, null);
    return { kind: 'suspended', wakeAt };
  });
}

/**
 * Expires the fan-out when it is running past its deadline (as {@link fanOutExpire}), then reads
 * it and its children in index order, in the one transaction.
 */
export function fanOutCollect(ctx: SqliteContext, p: { id: string }): FanOutCollected | undefined {
  return ctx.write((c, now) => {
    let fanOut = getFanOut(c, p.id);
    if (fanOut === undefined) return undefined;
    if (fanOutDeadlinePassed(fanOut, now) && expireFanOut(c, now, p.id)) fanOut = getFanOut(c, p.id) ?? fanOut;
    const children = (c.st(FAN_OUT_CHILDREN).all(p.id) as JobDbRow[]).map(toJobRow);
    return { fanOut, children };
  });
}

/**
 * Fails a running fan-out whose deadline passed: resumes its waiting parent and cancels the
 * unfinished children (counted as cancelled). Returns whether it applied.
 */
export function fanOutExpire(ctx: SqliteContext, p: { id: string }): boolean {
  return ctx.write((c, now) => expireFanOut(c, now, p.id));
}

/**
 * Every checkpoint of a job, by step index, each with `createdAt` (the facade drops it without
 * `withTimes`); a page of them with `afterIndex` or `limit`.
 */
export function stepList(ctx: SqliteContext, p: { jobId: string; withTimes?: boolean; afterIndex?: number; limit?: number }): StepRow[] {
  if (p.afterIndex === undefined && p.limit === undefined) return (ctx.read((c) => c.st(STEP_LIST).all(p.jobId)) as DbRecord[]).map(toStepRow);
  const page = stepPage(p);
  return (ctx.read((c) => c.st(STEP_LIST_PAGE).all(p.jobId, page.after, page.limit)) as DbRecord[]).map(toStepRow);
}

/** The signals of a job, oldest first, at most `limit`, after `afterSeq` when given. */
export function signalList(ctx: SqliteContext, p: { jobId: string; limit: number; afterSeq?: number }): SignalRow[] {
  return (ctx.read((c) => c.st(SIGNAL_LIST).all(p.jobId, p.afterSeq ?? 0, p.limit)) as DbRecord[]).map(toSignalRow);
}

function getFanOut(c: Statements, id: string): FanOutRow | undefined {
  const r = c.st(FAN_OUT_GET).get(id) as FanOutDbRow | undefined;
  return r === undefined ? undefined : toFanOutRow(r);
}

/** One fan-out by id. */
export function fanOutGet(ctx: SqliteContext, p: { id: string }): FanOutRow | undefined {
  return ctx.read((c) => getFanOut(c, p.id));
}

/**
 * Buffers a signal and wakes the job if it waits for that name.
 * @throws JobNotFoundError, InvalidStateError (terminal job)
 */
export function signalSend(ctx: SqliteContext, p: { jobId: string; name: string; payloadJson: string | null }): void {
  ctx.write((c, now) => {
    const status = statusOf(c, p.jobId);
    if (isTerminal(status)) throw new InvalidStateError(cannotSignalMessage(p.jobId, status));
    c.st(SIGNAL_INSERT).run({ jobId: p.jobId, name: p.name, payload: p.payloadJson, now });
    c.st(JOB_WAKE_SIGNAL_WAITER).run({ id: p.jobId, name: p.name });
  });
}
