/**
 * Bulk actions by id on MySQL/MariaDB: `jobRetryMany` and `jobDeleteMany`, each one short
 * transaction in the driver's lock order (fan-outs first, then job rows in id order, then
 * subtrees; see `fan-out-accounting.ts`). A job that cannot be acted on is skipped with a reason
 * from `shared/contract-messages.ts`, never an error.
 * @internal
 */
import {
  SKIP_NOT_FOUND,
  SKIP_PARENT_UNFINISHED,
  SKIP_UNFINISHED_SUBJOBS,
  SKIP_UNIQUE_HELD,
  skipNotFinished,
  skipNotRetryable,
} from '../shared/contract-messages.js';
import type { BulkResult, BulkSkip } from '../storage.js';
import { type Executor, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { lockFanOutsFirst } from './fan-out-accounting.js';
import {
  BULK_DELETE_FAN_OUTS,
  BULK_DELETE_JOBS,
  BULK_DELETE_SIGNALS,
  BULK_DELETE_STEPS,
  JOB_LOCK_MANY,
  JOB_PEEK_MANY,
  JOB_STATUS_MANY,
  JOB_SUBTREE_EDGES,
  JOB_UNIQUE_KEYS_HELD,
} from './queries/bulk.js';
import { dropWorkflowState, reopenJob } from './retry-core.js';
import { type DbRow, str, strOrNull } from './rows.js';
import { isUniqueKeyViolation } from './translate-error.js';

/** Finished statuses: a job in one of them may be deleted. */
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/** Ids per statement at most. */
const IDS_PER_STATEMENT = 1_000;

/** A job row locked by {@link lockJobs}. */
interface LockedJob {
  id: string;
  status: string;
  parentId: string | null;
  fanOutId: string | null;
  uniqueKey: string | null;
}

/** `ids` in lists of at most {@link IDS_PER_STATEMENT}. */
function chunk<T>(ids: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) out.push(ids.slice(i, i + IDS_PER_STATEMENT));
  return out;
}

/** Runs `sql` with each chunk of `ids` (sorted, so locks go in id order); returns every row. */
async function inChunks(ex: Executor, sql: string, ids: readonly string[]): Promise<DbRow[]> {
  const out: DbRow[] = [];
  for (const part of chunk([...new Set(ids)].sort())) out.push(...(await select(ex, sql, [part])));
  return out;
}

/** Locks jobs by id, in id order, and reads them. */
async function lockJobs(ex: Executor, ids: readonly string[]): Promise<Map<string, LockedJob>> {
  const got = new Map<string, LockedJob>();
  for (const r of await inChunks(ex, JOB_LOCK_MANY, ids)) {
    const id = str(r['id']);
    got.set(id, { id, status: str(r['status']), parentId: strOrNull(r['parent_id']), fanOutId: strOrNull(r['fan_out_id']), uniqueKey: strOrNull(r['unique_key']) });
  }
  return got;
}

/**
 * Locks, before any job row, the fan-outs the given jobs count on and those of (and below)
 * their subtrees: the fan-outs a retry recounts or a delete drops.
 */
async function lockFanOutsOf(ex: Executor, now: number | null, ids: readonly string[]): Promise<void> {
  const fanOuts = (await inChunks(ex, JOB_PEEK_MANY, ids)).map((r) => strOrNull(r['fan_out_id'])).filter((f): f is string => f !== null);
  await lockFanOutsFirst(ex, now, { fanOuts, under: [...ids] });
}

/**
 * `Storage.jobRetryMany`: one transaction. The fan-outs of the jobs and of their subtrees are
 * locked first, then the jobs (id order); each job is then retried in the order given, as
 * `jobRetry` does (fan-out accounting, checkpoints, fan-outs and sub-jobs dropped), unless it is
 * not failed or cancelled, or its unique key is held by a live job — read before any write, and
 * kept up to date with the keys this call takes. A key another transaction takes meanwhile fails
 * that job's statement alone (InnoDB rolls back just the statement), which skips it too.
 */
export async function jobRetryMany(ctx: DriverContext, p: { ids: string[] }): Promise<BulkResult> {
  const ids = [...new Set(p.ids)];
  if (ids.length === 0) return { done: [], skipped: [] };
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    await lockFanOutsOf(ex, now, ids);
    const rows = await lockJobs(ex, ids);
    const keys = [...rows.values()].map((r) => r.uniqueKey).filter((k): k is string => k !== null);
    const held = new Set((await inChunks(ex, JOB_UNIQUE_KEYS_HELD, keys)).map((r) => str(r['unique_key'])));
    const done: string[] = [];
    const skipped: BulkSkip[] = [];
    for (const id of ids) {
      const job = rows.get(id);
      if (job === undefined) {
        skipped.push({ id, reason: SKIP_NOT_FOUND });
        continue;
      }
      if (job.status !== 'failed' && job.status !== 'cancelled') {
        skipped.push({ id, reason: skipNotRetryable(job.status) });
        continue;
      }
      if (job.uniqueKey !== null && held.has(job.uniqueKey)) {
        skipped.push({ id, reason: SKIP_UNIQUE_HELD });
        continue;
      }
      let moved: boolean;
      try {
        moved = await reopenJob(ex, now, job);
      } catch (e) {
        if (!isUniqueKeyViolation(e)) throw e;
        skipped.push({ id, reason: SKIP_UNIQUE_HELD });
        continue;
      }
      if (!moved) {
        // No row moved: the job is gone.
        skipped.push({ id, reason: SKIP_NOT_FOUND });
        continue;
      }
      if (job.uniqueKey !== null) held.add(job.uniqueKey);
      done.push(id);
    }
    // The workflows start clean: one pass over every retried job's checkpoints and subtree. A
    // retried job below another one retried here goes with that one's subtree.
    await dropWorkflowState(ex, done);
    return { done, skipped };
  });
}

/** The subtrees below some jobs: children by parent id. */
type Children = Map<string, string[]>;

/** Walks the subtrees below `roots` (one statement per chunk of roots). */
async function walkSubtrees(ex: Executor, roots: readonly string[]): Promise<{ all: string[]; children: Children }> {
  const children: Children = new Map();
  const seen = new Set<string>();
  for (const r of await inChunks(ex, JOB_SUBTREE_EDGES, roots)) {
    const id = str(r['id']);
    if (seen.has(id)) continue;
    seen.add(id);
    const parent = str(r['parent_id']);
    const list = children.get(parent);
    if (list === undefined) children.set(parent, [id]);
    else list.push(id);
  }
  return { all: [...seen], children };
}

/** Every descendant of `id` (`id` excluded). */
function subtreeOf(children: Children, id: string): string[] {
  const out: string[] = [];
  const stack = [id];
  while (stack.length > 0) {
    for (const k of children.get(stack.pop()!) ?? []) {
      out.push(k);
      stack.push(k);
    }
  }
  return out;
}

/**
 * `Storage.jobDeleteMany`: one transaction. The subtrees are walked, the fan-outs their jobs
 * count on or own locked, then the jobs and their descendants (id order, waiting for rows held
 * elsewhere); each job given is then judged in the order given — not found, not finished, its
 * parent not finished, a descendant not finished — and the jobs kept, with their subtrees, are
 * deleted with their checkpoints, signals and fan-out rows, each statement joining the ids to
 * the rows by their key (as retention does). A job given that an earlier one's subtree took
 * along counts as done.
 */
export async function jobDeleteMany(ctx: DriverContext, p: { ids: string[] }): Promise<BulkResult> {
  const ids = [...new Set(p.ids)];
  if (ids.length === 0) return { done: [], skipped: [] };
  return ctx.db.tx(async (ex) => {
    const tree = await walkSubtrees(ex, ids);
    await lockFanOutsOf(ex, ctx.now(), ids);
    const rows = await lockJobs(ex, [...ids, ...tree.all]);
    const status = new Map([...rows.values()].map((r) => [r.id, r.status]));
    const parents = [...new Set(ids.map((id) => rows.get(id)?.parentId).filter((v): v is string => typeof v === 'string' && !status.has(v)))];
    for (const r of await inChunks(ex, JOB_STATUS_MANY, parents)) status.set(str(r['id']), str(r['status']));
    const gone = new Set<string>();
    const done: string[] = [];
    const skipped: BulkSkip[] = [];
    for (const id of ids) {
      const below = subtreeOf(tree.children, id);
      const reason = gone.has(id) ? null : deleteRefusal(rows.get(id), status, below);
      if (reason !== null) {
        skipped.push({ id, reason });
        continue;
      }
      gone.add(id);
      for (const d of below) gone.add(d);
      done.push(id);
    }
    for (const part of chunk([...gone].sort())) {
      const json = JSON.stringify(part);
      await write(ex, BULK_DELETE_STEPS, [json]);
      await write(ex, BULK_DELETE_SIGNALS, [json]);
      await write(ex, BULK_DELETE_FAN_OUTS, [json]);
      await write(ex, BULK_DELETE_JOBS, [json]);
    }
    return { done, skipped };
  });
}

/** Why a job may not be deleted (null: it may), from its locked row, known statuses and subtree. */
function deleteRefusal(cur: LockedJob | undefined, status: ReadonlyMap<string, string>, below: readonly string[]): string | null {
  if (cur === undefined) return SKIP_NOT_FOUND;
  if (!FINISHED.has(cur.status)) return skipNotFinished(cur.status);
  const parent = cur.parentId === null ? undefined : status.get(cur.parentId);
  if (parent !== undefined && !FINISHED.has(parent)) return SKIP_PARENT_UNFINISHED;
  if (below.some((d) => !FINISHED.has(status.get(d) ?? 'completed'))) return SKIP_UNFINISHED_SUBJOBS;
  return null;
}
