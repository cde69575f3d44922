/**
 * Job reads and operations of the MySQL/MariaDB driver: get, list, counts, cancel (with
 * subtrees), pause, resume, retry.
 * @internal
 */
import { InvalidStateError, JobNotFoundError } from '../../errors.js';
import { JOB_STATUSES, type JobStatus } from '../../types.js';
import type { JobListParams, JobRow } from '../storage.js';
import { type Executor, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { type FanOutDelta, accountFanOuts, addDelta, cancelSubtrees } from './fan-out-accounting.js';
import { num, str, strOrNull, toJobRow } from './rows.js';
import {
  FAN_OUT_DELETE_FOR_PARENTS,
  JOB_COUNT_BY_STATUS,
  JOB_COUNT_BY_STATUS_IN_QUEUE,
  JOB_DELETE_MANY,
  JOB_GET,
  JOB_LOCK,
  JOB_NEXT_RUN_AT,
  JOB_PAUSE,
  JOB_RESUME,
  JOB_RETRY,
  JOB_STATUS,
  JOB_SUBTREE_IDS,
  SIGNAL_DELETE_FOR_JOBS,
  STEP_DELETE_FOR_JOBS,
  jobListSql,
} from './queries/jobs.js';
import { isUniqueKeyViolation, translateError } from './translate-error.js';

/** `Storage.jobGet`. */
export async function jobGet(ctx: DriverContext, id: string): Promise<JobRow | undefined> {
  const [row] = await select(ctx.db.pool, JOB_GET, [id]);
  return row ? toJobRow(row) : undefined;
}

/** `Storage.jobList`. */
export async function jobList(ctx: DriverContext, p: JobListParams): Promise<JobRow[]> {
  const values: unknown[] = [];
  for (const v of [p.status, p.queue, p.type, p.parentId, p.fanOutId]) if (v !== undefined) values.push(v);
  values.push(Math.max(0, Math.floor(p.limit)), Math.max(0, Math.floor(p.offset ?? 0)));
  const sql = jobListSql(
    { status: p.status !== undefined, queue: p.queue !== undefined, type: p.type !== undefined, parentId: p.parentId !== undefined, fanOutId: p.fanOutId !== undefined },
    p.order ?? 'desc',
  );
  return (await select(ctx.db.pool, sql, values)).map(toJobRow);
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

/** `Storage.jobNextRunAt`. */
export async function jobNextRunAt(ctx: DriverContext, p: { queues: string[] }): Promise<number | undefined> {
  if (p.queues.length === 0) return undefined;
  const [row] = await select(ctx.db.pool, JOB_NEXT_RUN_AT, [p.queues]);
  const v = row?.['next_run_at'];
  return v === null || v === undefined ? undefined : num(v);
}

/** Locks one job, throwing JobNotFoundError when it does not exist. */
async function lockJob(ex: Executor, id: string): Promise<{ id: string; status: string; fanOutId: string | null }> {
  const [row] = await select(ex, JOB_LOCK, [id]);
  if (!row) throw new JobNotFoundError(id);
  return { id, status: str(row['status']), fanOutId: strOrNull(row['fan_out_id']) };
}

/** `Storage.jobCancel`. */
export async function jobCancel(ctx: DriverContext, id: string): Promise<string[]> {
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const job = await lockJob(ex, id);
    if (!['pending', 'running', 'waiting', 'paused'].includes(job.status)) return [];
    const deltas = new Map<string, FanOutDelta>();
    const cancelled = await cancelSubtrees(ex, now, [job], deltas);
    if (job.fanOutId !== null) addDelta(deltas, job.fanOutId, 'cancelled');
    await accountFanOuts(ex, now, deltas);
    return cancelled;
  });
}

/** Throws the error of a pause/resume that changed nothing. */
async function explainNoChange(ctx: DriverContext, id: string, op: string, from: string): Promise<never> {
  const [row] = await select(ctx.db.pool, JOB_STATUS, [id]);
  if (!row) throw new JobNotFoundError(id);
  throw new InvalidStateError(`cannot ${op} job ${id}: it is ${str(row['status'])}, not ${from}`);
}

/** `Storage.jobPause`. */
export async function jobPause(ctx: DriverContext, id: string): Promise<void> {
  const n = await ctx.db.autocommit((ex) => write(ex, JOB_PAUSE, [id]));
  if (n === 0) await explainNoChange(ctx, id, 'pause', 'pending');
}

/** `Storage.jobResume`. */
export async function jobResume(ctx: DriverContext, id: string): Promise<void> {
  const n = await ctx.db.autocommit((ex) => write(ex, JOB_RESUME, [id]));
  if (n === 0) await explainNoChange(ctx, id, 'resume', 'paused');
}

/** `Storage.jobRetry`. @throws JobNotFoundError, InvalidStateError, DuplicateJobError */
export async function jobRetry(ctx: DriverContext, id: string): Promise<void> {
  await ctx.db.tx(async (ex) => {
    const job = await lockJob(ex, id);
    if (job.status !== 'failed' && job.status !== 'cancelled') {
      throw new InvalidStateError(`cannot retry job ${id}: it is ${job.status}, not failed or cancelled`);
    }
    try {
      await write(ex, JOB_RETRY, [ctx.now(), id]);
    } catch (e) {
      if (!isUniqueKeyViolation(e)) throw e;
      const [row] = await select(ex, JOB_GET, [id]);
      throw translateError(e, row ? strOrNull(row['unique_key']) : null);
    }
    // Start the workflow clean: its checkpoints, fan-outs and whole subtree go.
    const subtree = (await select(ex, JOB_SUBTREE_IDS, [[id]])).map((r) => str(r['id']));
    await write(ex, STEP_DELETE_FOR_JOBS, [[id]]);
    await write(ex, FAN_OUT_DELETE_FOR_PARENTS, [[id]]);
    for (let i = 0; i < subtree.length; i += 1000) {
      const part = subtree.slice(i, i + 1000);
      await write(ex, STEP_DELETE_FOR_JOBS, [part]);
      await write(ex, FAN_OUT_DELETE_FOR_PARENTS, [part]);
      await write(ex, SIGNAL_DELETE_FOR_JOBS, [part]);
      await write(ex, JOB_DELETE_MANY, [part]);
    }
  });
}
