/**
 * Workflow operations of the MySQL/MariaDB driver: checkpoints, suspension (sleep, signal wait,
 * fan-out), fan-out expiry and signals. Every fenced write first locks the job row and checks
 * the fence, so nothing is written when it fails.
 * @internal
 */
import { InvalidStateError, JobNotFoundError } from '../../errors.js';
import { decideFanOut } from '../fan-out-rules.js';
import type {
  FanOutRow,
  Fence,
  JobSuspendFanOutParams,
  JobSuspendParams,
  SignalConsumeParams,
  SignalConsumeResult,
  StepRecordParams,
  StepRow,
} from '../storage.js';
import { type Executor, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { type FanOutDelta, type HeldFanOuts, accountFanOuts, cancelSubtrees, lockBelowFailing, lockFanOuts } from './fan-out-accounting.js';
import { insertJobs } from './job-ops.js';
import { num, str, strOrNull, toFanOutRow, toStepRow } from './rows.js';
import {
  FAN_OUT_GET,
  FAN_OUT_INSERT,
  FAN_OUT_UNFINISHED_CHILDREN,
  FAN_OUT_UPDATE,
  FAN_OUT_WAKE_PARENT,
  FENCE_LOCK_WITH_STEP,
  JOB_SUSPEND,
  SIGNAL_CONSUME,
  SIGNAL_INSERT,
  SIGNAL_LOCK_JOB,
  SIGNAL_NEXT,
  SIGNAL_PENDING_EXISTS,
  SIGNAL_WAKE_JOB,
  STEP_LIST,
  STEP_UPSERT,
} from './queries/workflow.js';

/** The checkpoint of a signal wait that passed its deadline. */
const SIGNAL_TIMEOUT_ERROR = 'signal wait timed out';

/** What a successful fence lock read. */
interface Fenced {
  /** The database now (or the injected clock) of the lock statement. */
  at: number;
  /** Status of the checkpoint at the requested index, if one exists. */
  stepStatus: string | null;
}

/** Locks the job of `fence` and checks the fence; null when it fails. */
async function lockFenced(ex: Executor, now: number | null, fence: Fence, stepIndex: number): Promise<Fenced | null> {
  const [r] = await select(ex, FENCE_LOCK_WITH_STEP, [now, stepIndex, fence.jobId]);
  if (!r || str(r['status']) !== 'running' || strOrNull(r['locked_by']) !== fence.workerId || num(r['run_count']) !== fence.runCount) return null;
  return { at: num(r['now_ms']), stepStatus: strOrNull(r['step_status']) };
}

/** Inserts a checkpoint, replacing a `waiting` one, keeping any other. */
async function upsertStep(ex: Executor, now: number | null, jobId: string, s: StepRow): Promise<void> {
  await write(ex, STEP_UPSERT, [jobId, s.stepIndex, s.stepName, s.status, s.outputJson, s.error, now, s.stepName, s.outputJson, s.error, s.status]);
}

/** `Storage.stepList`. */
export async function stepList(ctx: DriverContext, jobId: string): Promise<StepRow[]> {
  return (await select(ctx.db.pool, STEP_LIST, [jobId])).map(toStepRow);
}

/** `Storage.stepRecord`. */
export async function stepRecord(ctx: DriverContext, p: StepRecordParams): Promise<boolean> {
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const f = await lockFenced(ex, now, p.fence, p.step.stepIndex);
    if (!f || (f.stepStatus !== null && f.stepStatus !== 'waiting')) return false;
    await upsertStep(ex, now, p.fence.jobId, p.step);
    return true;
  });
}

/** `Storage.jobSuspend`. */
export async function jobSuspend(ctx: DriverContext, p: JobSuspendParams): Promise<boolean> {
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const f = await lockFenced(ex, now, p.fence, p.step?.stepIndex ?? -1);
    if (!f) return false;
    if (p.step) await upsertStep(ex, now, p.fence.jobId, p.step);
    // A signal already buffered for the wait satisfies it at once: the job stays ready.
    let status = 'waiting';
    if (p.waitSignal !== null && (await select(ex, SIGNAL_PENDING_EXISTS, [p.fence.jobId, p.waitSignal])).length > 0) status = 'pending';
    await write(ex, JOB_SUSPEND, status === 'pending' ? [status, null, null, p.fence.jobId] : [status, p.wakeAt, p.waitSignal, p.fence.jobId]);
    return true;
  });
}

/**
 * `Storage.jobSuspendFanOut`: locks the parent's row (the fence), then creates the fan-out and
 * its children — new rows, which no other transaction can hold or wait for, so taking them after
 * a job row keeps the driver's lock order (see `fan-out-accounting.ts`).
 */
export async function jobSuspendFanOut(ctx: DriverContext, p: JobSuspendFanOutParams): Promise<boolean> {
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const f = await lockFenced(ex, now, p.fence, p.step.stepIndex);
    if (!f) return false;
    const at = f.at;
    const deadlineAt = p.fanOut.timeoutMs === null ? null : at + p.fanOut.timeoutMs;
    const total = p.children.length;
    const initial = decideFanOut({ strategy: p.fanOut.strategy, threshold: p.fanOut.threshold, total, succeeded: 0, failed: 0, cancelled: 0 });
    await upsertStep(ex, now, p.fence.jobId, p.step);
    await write(ex, FAN_OUT_INSERT, [
      p.fanOut.id,
      p.fence.jobId,
      p.step.stepIndex,
      p.fanOut.strategy,
      p.fanOut.threshold,
      total,
      initial,
      deadlineAt,
      at,
      initial === 'running' ? null : at,
    ]);
    await insertJobs(ex, at, p.children, 'error');
    // A fan-out decided at birth (no children) leaves the parent ready to resume at once.
    const waiting = initial === 'running';
    await write(ex, JOB_SUSPEND, [waiting ? 'waiting' : 'pending', waiting ? deadlineAt : null, null, p.fence.jobId]);
    return true;
  });
}

/** `Storage.fanOutGet`. */
export async function fanOutGet(ctx: DriverContext, id: string): Promise<FanOutRow | undefined> {
  const [row] = await select(ctx.db.pool, FAN_OUT_GET, [id]);
  return row ? toFanOutRow(row) : undefined;
}

/**
 * `Storage.fanOutExpire`: the fan-out, then the fan-outs below its unfinished children (which
 * count the children's cancelled subtrees), then job rows — the driver's lock order.
 */
export async function fanOutExpire(ctx: DriverContext, id: string): Promise<boolean> {
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const held: HeldFanOuts = new Map();
    await lockFanOuts(ex, now, [id], held);
    const h = held.get(id);
    if (h === undefined) return false;
    const f = h.row;
    if (f.status !== 'running' || f.deadlineAt === null || h.at < f.deadlineAt) return false;
    await lockBelowFailing(ex, now, [id], held);
    const children = (await select(ex, FAN_OUT_UNFINISHED_CHILDREN, [id])).map((c) => ({ id: str(c['id']), status: str(c['status']) }));
    const deltas = new Map<string, FanOutDelta>();
    await cancelSubtrees(ex, now, children, deltas);
    const cancelled = f.cancelled + children.length;
    await write(ex, FAN_OUT_UPDATE, [f.succeeded, f.failed, cancelled, 'failed', h.at, id]);
    h.row = { ...f, cancelled, status: 'failed', decidedAt: h.at };
    await write(ex, FAN_OUT_WAKE_PARENT, [f.parentId]);
    // The children's cancelled descendants, on the children's own fan-outs.
    await accountFanOuts(ex, now, deltas, held);
    return true;
  });
}

/** `Storage.signalSend`. */
export async function signalSend(ctx: DriverContext, p: { jobId: string; name: string; payloadJson: string | null }): Promise<void> {
  await ctx.db.tx(async (ex) => {
    const [job] = await select(ex, SIGNAL_LOCK_JOB, [p.jobId]);
    if (!job) throw new JobNotFoundError(p.jobId);
    const status = str(job['status']);
    if (status === 'completed' || status === 'failed' || status === 'cancelled') {
      throw new InvalidStateError(`cannot signal job ${p.jobId}: it is ${status}`);
    }
    await write(ex, SIGNAL_INSERT, [p.jobId, p.name, p.payloadJson, ctx.now()]);
    if (status === 'waiting' && strOrNull(job['wait_signal']) === p.name) await write(ex, SIGNAL_WAKE_JOB, [p.jobId]);
  });
}

/** `Storage.signalConsumeOrWait`. */
export async function signalConsumeOrWait(ctx: DriverContext, p: SignalConsumeParams): Promise<SignalConsumeResult> {
  return ctx.db.tx(async (ex): Promise<SignalConsumeResult> => {
    const now = ctx.now();
    const f = await lockFenced(ex, now, p.fence, p.stepIndex);
    if (!f) return { kind: 'lost' };
    const step = (status: StepRow['status'], outputJson: string | null, error: string | null): StepRow => ({
      jobId: p.fence.jobId,
      stepIndex: p.stepIndex,
      stepName: p.stepName,
      status,
      outputJson,
      error,
    });
    const [sig] = await select(ex, SIGNAL_NEXT, [p.fence.jobId, p.signalName]);
    if (sig) {
      const payloadJson = strOrNull(sig['payload']);
      await write(ex, SIGNAL_CONSUME, [f.at, num(sig['seq'])]);
      await upsertStep(ex, now, p.fence.jobId, step('completed', payloadJson, null));
      return { kind: 'consumed', payloadJson };
    }
    if (p.deadlineAt !== null && f.at >= p.deadlineAt) {
      await upsertStep(ex, now, p.fence.jobId, step('failed', null, SIGNAL_TIMEOUT_ERROR));
      return { kind: 'timed-out' };
    }
    await upsertStep(ex, now, p.fence.jobId, step('waiting', JSON.stringify(p.deadlineAt), null));
    await write(ex, JOB_SUSPEND, ['waiting', p.deadlineAt, p.signalName, p.fence.jobId]);
    return { kind: 'suspended' };
  });
}
