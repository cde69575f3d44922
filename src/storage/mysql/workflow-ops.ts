/**
 * Workflow operations of the MySQL/MariaDB driver: checkpoints, suspension (sleep, signal wait,
 * fan-out), fan-out expiry and signals. Every fenced write first locks the job row and checks
 * the fence, so nothing is written when it fails.
 * @internal
 */
import { InvalidStateError, JobNotFoundError } from '../../errors.js';
import { decideFanOut } from '../fan-out-rules.js';
import { cannotSignalMessage, SIGNAL_WAIT_TIMED_OUT, stepAlreadyFinishedMessage } from '../shared/contract-messages.js';
import { fanOutDeadlinePassed } from '../shared/fan-out-settle.js';
import { stepPage } from '../shared/step-page.js';
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
import { type Executor, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { expireFanOut } from './fan-out-accounting.js';
import { insertJobs } from './job-insert.js';
import { type DbRow, num, str, strOrNull, toFanOutRow, toJobRow, toPrefixedFanOutRow, toSignalRow, toStepRow } from './rows.js';
import { ROW_ALLOWANCE, chunkBySize, textBytes } from './statement-budget.js';
import {
  FAN_OUT_COLLECT,
  FAN_OUT_GET,
  FAN_OUT_INSERT,
  FENCE_LOCK_WITH_STEP,
  JOB_SUSPEND,
  SIGNAL_CONSUME,
  SIGNAL_INSERT,
  SIGNAL_LIST,
  SIGNAL_LOCK_JOB,
  SIGNAL_NEXT,
  SIGNAL_PENDING_EXISTS,
  SIGNAL_WAKE_JOB,
  STEP_FENCE_LOCK_MANY,
  STEP_LIST,
  STEP_LIST_PAGE,
  STEP_UPSERT,
  stepUpsertManySql,
} from './queries/workflow.js';

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
export async function stepList(ctx: DriverContext, p: { jobId: string; afterIndex?: number; limit?: number }): Promise<StepRow[]> {
  const jobId = p.jobId;
  if (p.afterIndex === undefined && p.limit === undefined) return (await select(ctx.db.pool, STEP_LIST, [jobId])).map(toStepRow);
  const page = stepPage(p);
  return (await select(ctx.db.pool, STEP_LIST_PAGE, [jobId, page.after, page.limit])).map(toStepRow);
}

/** `Storage.signalList`. */
export async function signalList(ctx: DriverContext, p: { jobId: string; limit: number; afterSeq?: number }): Promise<SignalRow[]> {
  return (await select(ctx.db.pool, SIGNAL_LIST, [p.jobId, p.afterSeq ?? 0, p.limit])).map(toSignalRow);
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

/** The bound values of one row of `stepUpsertManySql`. */
type StepValues = [jobId: string, stepIndex: number, stepName: string, status: string, output: string | null, error: string | null, now: number | null];

/** Upper bound of the SQL text one checkpoint row adds. */
function stepRowBytes(v: StepValues): number {
  return ROW_ALLOWANCE + textBytes(v[0]) + textBytes(v[2]) + textBytes(v[4]) + textBytes(v[5]);
}

/** The run holding `fence` holds the locked job row `r`. */
function fenceHolds(r: DbRow, fence: Fence): boolean {
  return str(r['status']) === 'running' && strOrNull(r['locked_by']) === fence.workerId && num(r['run_count']) === fence.runCount;
}

/**
 * `Storage.stepRecordMany`: one transaction — one statement locks the batch's jobs in id order
 * (the driver's lock order) with their checkpoints at the batch's indexes; each item is judged
 * as {@link stepRecord} would judge it after the items before it; the applied checkpoints are
 * written by one multi-row upsert (several when their outputs exceed the statement budget).
 */
export async function stepRecordMany(ctx: DriverContext, p: { items: StepRecordParams[] }): Promise<boolean[]> {
  if (p.items.length === 0) return [];
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const ids = [...new Set(p.items.map((i) => i.fence.jobId))].sort();
    const indexes = [...new Set(p.items.map((i) => i.step.stepIndex))];
    const jobs = new Map<string, DbRow>();
    const steps = new Map<string, string>();
    for (const r of await select(ex, STEP_FENCE_LOCK_MANY, [now, indexes, ids])) {
      const id = str(r['id']);
      jobs.set(id, r);
      if (r['step_index'] !== null) steps.set(`${id}\u0000${num(r['step_index'])}`, str(r['step_status']));
    }
    const applied: boolean[] = [];
    const rows: StepValues[] = [];
    for (const { fence, step } of p.items) {
      const job = jobs.get(fence.jobId);
      const key = `${fence.jobId}\u0000${step.stepIndex}`;
      const existing = steps.get(key);
      const ok = job !== undefined && fenceHolds(job, fence) && (existing === undefined || existing === 'waiting');
      applied.push(ok);
      if (!ok) continue;
      steps.set(key, step.status);
      rows.push([fence.jobId, step.stepIndex, step.stepName, step.status, step.outputJson, step.error, now]);
    }
    for (const chunk of await chunkBySize(ctx.db, ex, rows, stepRowBytes)) await write(ex, stepUpsertManySql(chunk.length), chunk.flat());
    return applied;
  });
}

/**
 * `Storage.jobSuspendUntil`: a durable timer decided on the database clock in one transaction —
 * lock and fence, fix the wake time (the recorded one, or now + delay), record the checkpoint
 * unless it is recorded already, then let the run go on or suspend until the wake time.
 */
export async function jobSuspendUntil(ctx: DriverContext, p: JobSuspendUntilParams): Promise<JobSuspendUntilResult> {
  return ctx.db.tx(async (ex): Promise<JobSuspendUntilResult> => {
    const now = ctx.now();
    const f = await lockFenced(ex, now, p.fence, p.stepIndex);
    if (!f) return { kind: 'lost' };
    const wakeAt = p.wakeAt === undefined ? f.at + Math.max(0, Math.ceil(p.delayMs ?? 0)) : Math.trunc(p.wakeAt);
    if (!p.recorded) {
      const step: StepRow = { jobId: p.fence.jobId, stepIndex: p.stepIndex, stepName: p.stepName, status: 'completed', outputJson: JSON.stringify(wakeAt), error: null };
      await upsertStep(ex, now, p.fence.jobId, step);
    }
    if (f.at >= wakeAt) return { kind: 'elapsed', wakeAt };
    await write(ex, JOB_SUSPEND, ['waiting', wakeAt, null, p.fence.jobId]);
    return { kind: 'suspended', wakeAt };
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
export async function fanOutGet(ctx: DriverContext, p: { id: string }): Promise<FanOutRow | undefined> {
  const id = p.id;
  const [row] = await select(ctx.db.pool, FAN_OUT_GET, [id]);
  return row ? toFanOutRow(row) : undefined;
}

/** A fan-out, its children and the statement's now, read in one statement ({@link FAN_OUT_COLLECT}); undefined when absent. */
async function readCollected(ex: Executor, now: number | null, id: string): Promise<{ collected: FanOutCollected; at: number } | undefined> {
  const rows = await select(ex, FAN_OUT_COLLECT, [now, id]);
  const first = rows[0];
  if (first === undefined) return undefined;
  // A fan-out without children is one row whose job columns are null.
  const children = first['id'] === null ? [] : rows.map(toJobRow);
  return { collected: { fanOut: toPrefixedFanOutRow(first, 'fo_'), children }, at: num(first['now_ms']) };
}

/**
 * `Storage.fanOutCollect`: the fan-out and its children in one statement, on the database clock.
 * When it is still running past its deadline, one transaction expires it exactly as
 * {@link fanOutExpire} does (same lock order) and reads it again.
 */
export async function fanOutCollect(ctx: DriverContext, p: { id: string }): Promise<FanOutCollected | undefined> {
  const read = await readCollected(ctx.db.pool, ctx.now(), p.id);
  if (read === undefined || !fanOutDeadlinePassed(read.collected.fanOut, read.at)) return read?.collected;
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    await expireFanOut(ex, now, p.id);
    return (await readCollected(ex, now, p.id))?.collected;
  });
}

/**
 * `Storage.fanOutExpire`: the fan-out, then the fan-outs below its unfinished children (which
 * count the children's cancelled subtrees), then job rows — the driver's lock order.
 */
export async function fanOutExpire(ctx: DriverContext, p: { id: string }): Promise<boolean> {
  return ctx.db.tx((ex) => expireFanOut(ex, ctx.now(), p.id));
}

/** `Storage.signalSend`. */
export async function signalSend(ctx: DriverContext, p: { jobId: string; name: string; payloadJson: string | null }): Promise<void> {
  await ctx.db.tx(async (ex) => {
    const [job] = await select(ex, SIGNAL_LOCK_JOB, [p.jobId]);
    if (!job) throw new JobNotFoundError(p.jobId);
    const status = str(job['status']);
    if (status === 'completed' || status === 'failed' || status === 'cancelled') {
      throw new InvalidStateError(cannotSignalMessage(p.jobId, status));
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
    // A finished checkpoint at this index is never overwritten: the wait is refused, nothing consumed.
    if (f.stepStatus !== null && f.stepStatus !== 'waiting') throw new InvalidStateError(stepAlreadyFinishedMessage(p.fence.jobId, p.stepIndex));
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
    // A first wait with a timeout fixes its deadline here, on the database clock.
    const deadlineAt = p.timeoutMs === undefined ? p.deadlineAt : f.at + Math.max(0, Math.ceil(p.timeoutMs));
    if (deadlineAt !== null && f.at >= deadlineAt) {
      await upsertStep(ex, now, p.fence.jobId, step('failed', null, SIGNAL_WAIT_TIMED_OUT));
      return { kind: 'timed-out' };
    }
    await upsertStep(ex, now, p.fence.jobId, step('waiting', JSON.stringify(deadlineAt), null));
    await write(ex, JOB_SUSPEND, ['waiting', deadlineAt, p.signalName, p.fence.jobId]);
    return { kind: 'suspended' };
  });
}
