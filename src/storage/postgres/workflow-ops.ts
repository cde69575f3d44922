/**
 * Workflow operations of the PostgreSQL driver: checkpoints, suspension (sleep, signal wait,
 * durable timers, fan-out), signals, fan-out reads, expiry and collection. Multi-statement
 * operations run in one transaction; every write to a claimed job is fenced (locking the job
 * row first, so a concurrent reclaim or cancel serializes with it).
 * @internal
 */
import { InvalidStateError, JobNotFoundError } from '../../errors.js';
import { decideFanOut } from '../fan-out-rules.js';
import { cannotSignalMessage, SIGNAL_WAIT_TIMED_OUT, stepAlreadyFinishedMessage } from '../shared/contract-messages.js';
import { fanOutDeadlinePassed } from '../shared/fan-out-settle.js';
import { stepPage } from '../shared/step-page.js';
import type { DbRecord } from '../shared/row-mapping.js';
import type {
  FanOutCollected,
  FanOutRow,
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
import { TERMINAL_STATUSES, type JobStatus } from '../../types.js';
import { splitByText, textLength } from './batch-parts.js';
import { withTx, type PgQueryableLike } from './connection.js';
import type { PgExec } from './executor.js';
import { expireFanOut } from './fan-out-accounting.js';
import { insertJobs } from './job-ops.js';
import {
  FAN_OUT_COLLECT,
  FAN_OUT_GET,
  JOB_LOCK_FENCED,
  JOB_LOCK_STATUS,
  JOB_SUSPEND,
  JOB_SUSPEND_FAN_OUT,
  JOB_SUSPEND_FOR_SIGNAL,
  JOB_SUSPEND_UNTIL,
  JOB_WAKE_IF_SIGNALLED,
  SIGNAL_CONSUME,
  SIGNAL_LIST,
  SIGNAL_SEND,
  STEP_LIST,
  STEP_LIST_PAGE,
  STEP_RECORD,
  STEP_RECORD_MANY,
  STEP_UPSERT,
} from './queries/workflow.js';
import { toFanOutRow, toInt, toJobRow, toSignalRow, toStepRow, type FanOutDbRow, type JobDbRow, type StepDbRow } from './rows.js';

/** The step columns as statement parameters: index, name, status, output, error. */
function stepValues(s: StepRow | null): unknown[] {
  return s === null ? [null, null, null, null, null] : [s.stepIndex, s.stepName, s.status, s.outputJson, s.error];
}

/** `Storage.stepRecord`: one fenced statement. */
export async function stepRecord(x: PgExec, p: StepRecordParams): Promise<boolean> {
  const { fence, step } = p;
  const r = await x.one<{ n: string }>(STEP_RECORD, [x.now(), fence.jobId, fence.workerId, fence.runCount, ...stepValues(step)]);
  return toInt(r?.n ?? 0) === 1;
}

/**
 * `Storage.stepRecordMany`: one statement (a deadlock with a concurrent writer, which rolls it
 * back whole, runs it again: `PgExec.rows`); one per part when the outputs exceed one
 * statement's payload budget.
 * Items repeating a (job, step index) pair are written one by one.
 */
export async function stepRecordMany(x: PgExec, p: { items: readonly StepRecordParams[] }): Promise<boolean[]> {
  const items = p.items;
  const out: boolean[] = items.map(() => false);
  if (items.length === 0) return out;
  const keys = new Set(items.map((i) => `${i.fence.jobId}\u0000${i.step.stepIndex}`));
  if (keys.size < items.length) {
    for (let i = 0; i < items.length; i++) out[i] = await stepRecord(x, items[i]!);
    return out;
  }
  // Checkpoints are independent: a batch over the payload budget goes as several statements.
  const parts = splitByText(items, (i) => i.fence.jobId.length + i.step.stepName.length + textLength(i.step.outputJson) + textLength(i.step.error));
  if (parts.length > 1) {
    let at = 0;
    for (const part of parts) for (const ok of await stepRecordMany(x, { items: part })) out[at++] = ok;
    return out;
  }
  const values = [
    x.now(),
    items.map((i) => i.fence.jobId),
    items.map((i) => i.fence.workerId),
    items.map((i) => Math.trunc(i.fence.runCount)),
    items.map((i) => Math.trunc(i.step.stepIndex)),
    items.map((i) => i.step.stepName),
    items.map((i) => i.step.status),
    items.map((i) => i.step.outputJson),
    items.map((i) => i.step.error),
  ];
  // One autocommit statement: a deadlock rolls it back whole, and the executor runs it again.
  const rows = await x.rows<{ ord: string }>(STEP_RECORD_MANY, values);
  for (const r of rows) out[toInt(r.ord) - 1] = true;
  return out;
}

/**
 * `Storage.jobSuspend`: fenced suspend and step in one statement; when waiting for a signal, a
 * second statement (a fresh snapshot, after the job row is locked) turns the job straight back
 * to `pending` if that signal is already buffered, so it cannot be missed.
 */
export async function jobSuspend(x: PgExec, p: JobSuspendParams): Promise<boolean> {
  const { fence } = p;
  const values = [x.now(), fence.jobId, fence.workerId, fence.runCount, p.wakeAt === null ? null : Math.trunc(p.wakeAt), p.waitSignal, ...stepValues(p.step)];
  if (p.waitSignal === null) {
    const r = await x.one<{ n: string }>(JOB_SUSPEND, values);
    return toInt(r?.n ?? 0) === 1;
  }
  const signal = p.waitSignal;
  return withTx(x.pool, async (c) => {
    const r = await x.one<{ n: string }>(JOB_SUSPEND, values, c);
    if (toInt(r?.n ?? 0) !== 1) return false;
    await x.rows(JOB_WAKE_IF_SIGNALLED, [fence.jobId, signal, x.channel], c);
    return true;
  });
}

/**
 * `Storage.jobSuspendFanOut`: one transaction — the fenced parent update, step and fan-out row
 * in one statement (nothing is written when the fence fails), then the children in chunks.
 * A fan-out with no children is decided at creation and the parent goes back to `pending`.
 */
export async function jobSuspendFanOut(x: PgExec, p: JobSuspendFanOutParams): Promise<boolean> {
  const { fence, fanOut } = p;
  const total = p.children.length;
  const decision = decideFanOut({ strategy: fanOut.strategy, threshold: fanOut.threshold, total, succeeded: 0, failed: 0, cancelled: 0 });
  const parentStatus = decision === 'running' ? 'waiting' : 'pending';
  const step = { ...p.step, jobId: fence.jobId };
  return withTx(x.pool, async (c) => {
    const r = await x.one<{ n: string; now: string }>(
      JOB_SUSPEND_FAN_OUT,
      [
        x.now(),
        fence.jobId,
        fence.workerId,
        fence.runCount,
        parentStatus,
        ...stepValues(step),
        fanOut.id,
        fanOut.strategy,
        fanOut.threshold,
        total,
        decision,
        fanOut.timeoutMs === null ? null : Math.trunc(fanOut.timeoutMs),
        x.channel,
      ],
      c,
    );
    if (r === undefined || toInt(r.n) !== 1) return false;
    const children = p.children.map((ch) => ({ ...ch, parentId: fence.jobId, fanOutId: fanOut.id }));
    await insertJobs(x, c, children, 'error', toInt(r.now));
    return true;
  });
}

/**
 * `Storage.signalConsumeOrWait`: one transaction. The fenced job row is locked first; the
 * signal is then read in a fresh snapshot, so a signal sent while we waited is seen, and a
 * signal sent after sees the job waiting.
 * @throws InvalidStateError when a finished step already sits at that index (nothing is written)
 */
export async function signalConsumeOrWait(x: PgExec, p: SignalConsumeParams): Promise<SignalConsumeResult> {
  const { fence } = p;
  const alreadyFinished = (): InvalidStateError => new InvalidStateError(stepAlreadyFinishedMessage(fence.jobId, p.stepIndex));
  return withTx(x.pool, async (c): Promise<SignalConsumeResult> => {
    const lock = await x.one<{ now: string }>(JOB_LOCK_FENCED, [x.now(), fence.jobId, fence.workerId, fence.runCount], c);
    if (lock === undefined) return { kind: 'lost' };
    const now = toInt(lock.now);
    const got = await x.one<{ payload: string | null; written: string }>(SIGNAL_CONSUME, [now, fence.jobId, p.signalName, p.stepIndex, p.stepName], c);
    if (got !== undefined) {
      if (toInt(got.written) !== 1) throw alreadyFinished();
      return { kind: 'consumed', payloadJson: got.payload };
    }
    const upsert = async (status: StepRow['status'], output: string | null, error: string | null): Promise<void> => {
      const w = await x.rows(STEP_UPSERT, [now, fence.jobId, p.stepIndex, p.stepName, status, output, error], c);
      if (w.length !== 1) throw alreadyFinished();
    };
    // A first wait with a timeout fixes its deadline here, on the database clock.
    const deadlineAt = p.timeoutMs === undefined ? p.deadlineAt : now + Math.max(0, Math.ceil(p.timeoutMs));
    if (deadlineAt !== null && now >= deadlineAt) {
      await upsert('failed', null, SIGNAL_WAIT_TIMED_OUT);
      return { kind: 'timed-out' };
    }
    await upsert('waiting', JSON.stringify(deadlineAt), null);
    await x.rows(JOB_SUSPEND_FOR_SIGNAL, [fence.jobId, p.signalName, deadlineAt === null ? null : Math.trunc(deadlineAt)], c);
    return { kind: 'suspended' };
  });
}

/**
 * `Storage.signalSend`: one transaction — lock the job row (so a concurrent suspend either
 * sees this signal or is seen by it), buffer the signal, wake the job if it waits for it.
 */
export async function signalSend(x: PgExec, p: { jobId: string; name: string; payloadJson: string | null }): Promise<void> {
  await withTx(x.pool, async (c) => {
    const cur = await x.lockJob<{ status: JobStatus }>(JOB_LOCK_STATUS, [p.jobId], c);
    if (cur === undefined) throw new JobNotFoundError(p.jobId);
    if (TERMINAL_STATUSES.includes(cur.status)) throw new InvalidStateError(cannotSignalMessage(p.jobId, cur.status));
    await x.rows(SIGNAL_SEND, [x.now(), p.jobId, p.name, p.payloadJson, x.channel], c);
  });
}

/**
 * `Storage.fanOutExpire`: one transaction (see `expireFanOut`: the fan-out locks first, id
 * order, then the fan-out fails, its parent resumes and its unfinished children are cancelled).
 */
export async function fanOutExpire(x: PgExec, p: { id: string }): Promise<boolean> {
  return withTx(x.pool, (c) => expireFanOut(x, c, p.id));
}

/**
 * `Storage.jobSuspendUntil`: one fenced statement on the database clock (see
 * {@link JOB_SUSPEND_UNTIL}): elapsed, suspended, or lost when the fence failed.
 */
export async function jobSuspendUntil(x: PgExec, p: JobSuspendUntilParams): Promise<JobSuspendUntilResult> {
  const { fence } = p;
  const r = await x.one<{ held: string; wake_at: string; suspended: string }>(JOB_SUSPEND_UNTIL, [
    x.now(),
    fence.jobId,
    fence.workerId,
    fence.runCount,
    p.wakeAt === undefined ? null : Math.trunc(p.wakeAt),
    Math.max(0, Math.ceil(p.delayMs ?? 0)),
    p.stepIndex,
    p.stepName,
    p.recorded,
  ]);
  if (r === undefined || toInt(r.held) !== 1) return { kind: 'lost' };
  const wakeAt = toInt(r.wake_at);
  return toInt(r.suspended) === 1 ? { kind: 'suspended', wakeAt } : { kind: 'elapsed', wakeAt };
}

/** A fan-out, its children and the statement's now, read in one snapshot. */
interface Collected {
  collected: FanOutCollected;
  now: number;
}

/** Reads a fan-out and its children in one statement ({@link FAN_OUT_COLLECT}); undefined when absent. */
async function readCollected(x: PgExec, c: PgQueryableLike, id: string): Promise<Collected | undefined> {
  const rows = await x.rows<JobDbRow & { fan_out: FanOutDbRow; now: string }>(FAN_OUT_COLLECT, [x.now(), id], c);
  const first = rows[0];
  if (first === undefined) return undefined;
  // A fan-out without children yields one row whose job columns are null.
  const children = first.id === null ? [] : rows.map(toJobRow);
  return { collected: { fanOut: toFanOutRow(first.fan_out), children }, now: toInt(first.now) };
}

/**
 * `Storage.fanOutCollect`: the fan-out and its children in one statement (one snapshot, on the
 * database clock). When it is still running past its deadline, one transaction expires it
 * exactly as `fanOutExpire` does (same lock order) and reads it again.
 */
export async function fanOutCollect(x: PgExec, p: { id: string }): Promise<FanOutCollected | undefined> {
  const read = await readCollected(x, x.pool, p.id);
  if (read === undefined || !fanOutDeadlinePassed(read.collected.fanOut, read.now)) return read?.collected;
  return withTx(x.pool, async (c) => {
    await expireFanOut(x, c, p.id);
    return (await readCollected(x, c, p.id))?.collected;
  });
}

/** `Storage.stepList`. */
export async function stepList(x: PgExec, p: { jobId: string; afterIndex?: number; limit?: number }): Promise<StepRow[]> {
  if (p.afterIndex === undefined && p.limit === undefined) return (await x.rows<StepDbRow>(STEP_LIST, [p.jobId])).map(toStepRow);
  const page = stepPage(p);
  return (await x.rows<StepDbRow>(STEP_LIST_PAGE, [p.jobId, page.after, page.limit])).map(toStepRow);
}

/** `Storage.signalList`. */
export async function signalList(x: PgExec, p: { jobId: string; limit: number; afterSeq?: number }): Promise<SignalRow[]> {
  return (await x.rows<DbRecord>(SIGNAL_LIST, [p.jobId, p.afterSeq ?? 0, p.limit])).map(toSignalRow);
}

/** `Storage.fanOutGet`. */
export async function fanOutGet(x: PgExec, p: { id: string }): Promise<FanOutRow | undefined> {
  const r = await x.one<FanOutDbRow>(FAN_OUT_GET, [p.id]);
  return r === undefined ? undefined : toFanOutRow(r);
}
