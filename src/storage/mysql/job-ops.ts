/**
 * Job operations of the MySQL/MariaDB driver: get, counts, cancel (with subtrees), pause, resume,
 * retry, queue pauses and the clock. Inserts are in `job-insert.ts`, listings in `listing.ts`,
 * bulk actions in `bulk-ops.ts`, the retry from the failed step in `retry-from-step.ts`,
 * retention (`jobPrune`) in `retention.ts`.
 * @internal
 */
import { InvalidStateError, JobNotFoundError } from '../../errors.js';
import { JOB_STATUSES, type JobStatus } from '../../types.js';
import type { JobRow } from '../storage.js';
import { type Executor, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { addChildOutcome } from '../shared/fan-out-settle.js';
import { type FanOutDelta, accountFanOutOutcomes, cancelSubtrees, lockFanOutsFirst } from './fan-out-accounting.js';
import { num, str, strOrNull, toJobRow } from './rows.js';
import { splitBySize } from '../shared/batch-split.js';
import { CLOCK_NOW, QUEUE_SET_PAUSED } from './queries/admin.js';
import { FLOW_LOCK } from './queries/flow.js';
import {
  JOB_COUNT_BY_STATUS,
  JOB_COUNT_BY_STATUS_IN_QUEUE,
  JOB_GET,
  JOB_GET_MANY,
  JOB_LOCK,
  JOB_PAUSE,
  JOB_PEEK,
  JOB_RESUME,
  JOB_STATUS,
} from './queries/jobs.js';
import { dropWorkflowState, reopenJob } from './retry-core.js';
import { retryFromFailedStep } from './retry-from-step.js';
import { isUniqueKeyViolation, translateError } from './translate-error.js';
import { cannotPauseMessage, cannotResumeMessage, cannotRetryMessage } from '../shared/contract-messages.js';

/** `Storage.jobGet`. */
export async function jobGet(ctx: DriverContext, p: { id: string }): Promise<JobRow | undefined> {
  const id = p.id;
  const [row] = await select(ctx.db.pool, JOB_GET, [id]);
  return row ? toJobRow(row) : undefined;
}

/** Ids per statement of {@link jobGetMany} at most. */
export const GET_MANY_MAX_IDS = 5_000;

/**
 * Bytes of escaped id text per statement of {@link jobGetMany} at most: well below the smallest
 * `max_allowed_packet` servers ship with (4 MiB), so no server refuses the statement.
 */
export const GET_MANY_MAX_BYTES = 1024 * 1024;

/** Splits ids into lists within {@link GET_MANY_MAX_IDS} ids and {@link GET_MANY_MAX_BYTES} bytes each. */
function chunkIds(ids: readonly string[]): string[][] {
  // Quoted, every byte possibly escaped, and a separator.
  return splitBySize(ids, (id) => 2 * Buffer.byteLength(id, 'utf8') + 4, GET_MANY_MAX_BYTES, GET_MANY_MAX_IDS);
}

/** `Storage.jobGetMany`: one statement per chunk of distinct ids (see {@link chunkIds}); none for an empty list. */
export async function jobGetMany(ctx: DriverContext, p: { ids: readonly string[] }): Promise<JobRow[]> {
  const ids = p.ids;
  const out: JobRow[] = [];
  for (const chunk of chunkIds([...new Set(ids)])) {
    for (const r of await select(ctx.db.pool, JOB_GET_MANY, [chunk])) out.push(toJobRow(r));
  }
  return out;
}

/** `Storage.jobCountByStatus`. */
export async function jobCountByStatus(ctx: DriverContext, p: { queue?: string }): Promise<Record<JobStatus, number>> {
  const rows = p.queue === undefined ? await select(ctx.db.pool, JOB_COUNT_BY_STATUS) : await select(ctx.db.pool, JOB_COUNT_BY_STATUS_IN_QUEUE, [p.queue]);
  const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
  for (const r of rows) {
    const st = str(r['status']) as JobStatus;
    if (st in out) out[st] = num(r['n']);
  }
  return out;
}

/** Locks one job, throwing JobNotFoundError when it does not exist. */
async function lockJob(ex: Executor, id: string): Promise<{ id: string; status: string; fanOutId: string | null }> {
  const [row] = await select(ex, JOB_LOCK, [id]);
  if (!row) throw new JobNotFoundError(id);
  return { id, status: str(row['status']), fanOutId: strOrNull(row['fan_out_id']) };
}

/** Reads one job's status and fan-out without a lock, throwing JobNotFoundError when it does not exist. */
async function peekJob(ex: Executor, id: string): Promise<{ status: string; fanOutId: string | null }> {
  const [row] = await select(ex, JOB_PEEK, [id]);
  if (!row) throw new JobNotFoundError(id);
  return { status: str(row['status']), fanOutId: strOrNull(row['fan_out_id']) };
}

const NON_TERMINAL = ['pending', 'running', 'waiting', 'paused'];

/**
 * `Storage.jobCancel`: the job's fan-out and the fan-outs of its subtree are locked before its
 * row (the driver's lock order, see `fan-out-accounting.ts`); a job already ended takes no lock.
 */
export async function jobCancel(ctx: DriverContext, p: { id: string }): Promise<string[]> {
  const id = p.id;
  const seen = await peekJob(ctx.db.pool, id);
  if (!NON_TERMINAL.includes(seen.status)) return [];
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const planned = new Map<string, FanOutDelta>();
    if (seen.fanOutId !== null) addChildOutcome(planned, seen.fanOutId, 'cancelled');
    const held = await lockFanOutsFirst(ex, now, { deltas: planned, under: [id] });
    const job = await lockJob(ex, id);
    if (!NON_TERMINAL.includes(job.status)) return [];
    const deltas = new Map<string, FanOutDelta>();
    const cancelled = await cancelSubtrees(ex, now, [job], deltas);
    if (job.fanOutId !== null) addChildOutcome(deltas, job.fanOutId, 'cancelled');
    // Siblings (and their subtrees) cancelled by a fan-out this cancel failed are reported too.
    return [...cancelled, ...(await accountFanOutOutcomes(ex, now, deltas, held))];
  });
}

/** Throws the error of a pause/resume that changed nothing. */
async function explainNoChange(ctx: DriverContext, id: string, op: 'pause' | 'resume'): Promise<never> {
  const [row] = await select(ctx.db.pool, JOB_STATUS, [id]);
  if (!row) throw new JobNotFoundError(id);
  const status = str(row['status']);
  throw new InvalidStateError(op === 'pause' ? cannotPauseMessage(id, status) : cannotResumeMessage(id, status));
}

/** `Storage.jobPause`. */
export async function jobPause(ctx: DriverContext, p: { id: string }): Promise<void> {
  const id = p.id;
  const n = await ctx.db.autocommit((ex) => write(ex, JOB_PAUSE, [id]));
  if (n === 0) await explainNoChange(ctx, id, 'pause');
}

/** `Storage.jobResume`. */
export async function jobResume(ctx: DriverContext, p: { id: string }): Promise<void> {
  const id = p.id;
  const n = await ctx.db.autocommit((ex) => write(ex, JOB_RESUME, [id]));
  if (n === 0) await explainNoChange(ctx, id, 'resume');
}

/**
 * `Storage.jobRetry`: one transaction — the job's fan-out (if it is a child) and the fan-outs of
 * its subtree are locked before the job row, the job goes failed/cancelled → pending and leaves
 * its old outcome's count on that fan-out, then its checkpoints, fan-outs and descendants are
 * dropped so a workflow starts clean; with `fromFailedStep`, they are kept and the workflow
 * resumes where it failed instead (`retry-from-step.ts`).
 * @throws JobNotFoundError, InvalidStateError, DuplicateJobError
 */
export async function jobRetry(ctx: DriverContext, p: { id: string; fromFailedStep?: boolean }): Promise<void> {
  const id = p.id;
  const seen = await peekJob(ctx.db.pool, id);
  await ctx.db.tx(async (ex) => {
    // Fan-outs before the job row: its own fan-out (recounted below) and those of its subtree.
    await lockFanOutsFirst(ex, ctx.now(), { fanOuts: seen.fanOutId === null ? [] : [seen.fanOutId], under: [id] });
    const job = await lockJob(ex, id);
    if (job.status !== 'failed' && job.status !== 'cancelled') {
      throw new InvalidStateError(cannotRetryMessage(id, job.status));
    }
    const now = p.fromFailedStep === true ? await retryFromFailedStep(ex, ctx.now(), job) : ctx.now();
    try {
      await reopenJob(ex, now, job);
    } catch (e) {
      if (!isUniqueKeyViolation(e)) throw e;
      const [row] = await select(ex, JOB_GET, [id]);
      throw translateError(e, row ? strOrNull(row['unique_key']) : null);
    }
    if (p.fromFailedStep !== true) await dropWorkflowState(ex, [id]);
  });
}

/**
 * `Storage.queueSetPaused`: after flow lock row 1 (moving its generation), so a limited claim in flight (which holds it)
 * commits before the pause, as an ordinary claim in flight does (it share-locks the queue row).
 */
export async function queueSetPaused(ctx: DriverContext, p: { queue: string; paused: boolean }): Promise<void> {
  const now = ctx.now();
  const flag = p.paused ? 1 : 0;
  await ctx.db.tx(async (ex) => {
    await write(ex, FLOW_LOCK);
    await write(ex, QUEUE_SET_PAUSED, [p.queue, flag, now, flag, now]);
  });
}

/** `Storage.clockNow`: the injected clock, or the database's. */
export async function clockNow(ctx: DriverContext): Promise<number> {
  const fixed = ctx.now();
  if (fixed !== null) return fixed;
  const [row] = await select(ctx.db.pool, CLOCK_NOW, [null]);
  return num(row?.['now_ms']);
}
