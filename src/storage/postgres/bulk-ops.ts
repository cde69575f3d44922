/**
 * Bulk actions by id on PostgreSQL: `jobRetryMany` and `jobDeleteMany`, each one short
 * transaction in the driver's lock order (fan-outs, then job rows in id order; see
 * `fan-out-accounting.ts`). A job that cannot be acted on is skipped with a reason from
 * `shared/contract-messages.ts`, never an error.
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
import { withTx, type PgQueryableLike } from './connection.js';
import type { PgExec } from './executor.js';
import { lockFanOutsOf } from './fan-out-accounting.js';
import { JOB_CHILDREN_OF, JOB_DELETE_TREES, JOB_DROP_WORKFLOW_STATE_MANY, JOB_LOCK_MANY, JOB_RETRY_UNLESS_HELD, JOB_STATUS_MANY } from './queries/bulk.js';
import { toInt } from './rows.js';
import { isUniqueKeyViolation } from './translate-error.js';

/** Finished statuses: a job in one of them may be deleted. */
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/** Transactions a retry batch runs at most when another transaction takes a unique key under it. */
const RETRY_BATCH_ATTEMPTS = 3;

/** The subtrees below some jobs: every descendant, and each job's children. */
export interface Subtrees {
  /** Every descendant of the roots (roots excluded), level by level. */
  all: string[];
  /** Children by parent id. */
  children: Map<string, string[]>;
}

/** Walks the subtrees below `roots`, one statement per level. */
export async function walkSubtrees(x: PgExec, c: PgQueryableLike, roots: readonly string[]): Promise<Subtrees> {
  const seen = new Set(roots);
  const children = new Map<string, string[]>();
  const all: string[] = [];
  let level = [...roots];
  while (level.length > 0) {
    const next: string[] = [];
    for (const r of await x.rows<{ id: string; parent_id: string }>(JOB_CHILDREN_OF, [level], c)) {
      const list = children.get(r.parent_id);
      if (list === undefined) children.set(r.parent_id, [r.id]);
      else list.push(r.id);
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      next.push(r.id);
    }
    all.push(...next);
    level = next;
  }
  return { all, children };
}

/** Every descendant of `id` in a walk that covered it (`id` excluded). */
export function subtreeOf(t: Subtrees, id: string): string[] {
  const out: string[] = [];
  const seen = new Set([id]);
  const stack = [id];
  while (stack.length > 0) {
    for (const k of t.children.get(stack.pop()!) ?? []) {
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(k);
      stack.push(k);
    }
  }
  return out;
}

/** A job row locked by {@link lockJobs}. */
interface LockedJob {
  id: string;
  status: string;
  parent_id: string | null;
}

/**
 * Locks jobs by id (id order) and reads them. A job that moved between the partitions of
 * `sdj_jobs` while the lock waited is missing from that statement; the missing ids are locked
 * again (at most three statements in all), as `PgExec.lockJob` does for one job.
 */
async function lockJobs(x: PgExec, c: PgQueryableLike, ids: readonly string[]): Promise<Map<string, LockedJob>> {
  const got = new Map<string, LockedJob>();
  let missing = [...ids];
  for (let attempt = 1; attempt <= 3 && missing.length > 0; attempt++) {
    for (const r of await x.rows<LockedJob>(JOB_LOCK_MANY, [missing], c)) got.set(r.id, r);
    missing = missing.filter((id) => !got.has(id));
  }
  return got;
}

/**
 * `Storage.jobRetryMany`: one transaction. The fan-outs of the jobs and of their subtrees are
 * locked first, then the jobs (id order); each job is then retried in the order given, as
 * `jobRetry` does (fan-out accounting, checkpoints, fan-outs and sub-jobs dropped), unless it is
 * not failed or cancelled, or its unique key is held by a live job — checked by the retry
 * statement itself, so a clash skips that job instead of aborting the batch. Should another
 * transaction take a key between that check and the write, the batch is rolled back and runs
 * again, and then sees the key held.
 */
export async function jobRetryMany(x: PgExec, p: { ids: string[] }): Promise<BulkResult> {
  const ids = [...new Set(p.ids)];
  for (let attempt = 1; ; attempt++) {
    try {
      return await withTx(x.pool, (c) => retryBatch(x, c, ids));
    } catch (e) {
      if (attempt >= RETRY_BATCH_ATTEMPTS || !isUniqueKeyViolation(e)) throw e;
    }
  }
}

/** One attempt of {@link jobRetryMany}, inside its transaction. */
async function retryBatch(x: PgExec, c: PgQueryableLike, ids: readonly string[]): Promise<BulkResult> {
  const tree = await walkSubtrees(x, c, ids);
  await lockFanOutsOf(x, c, [...ids, ...tree.all]);
  const rows = await lockJobs(x, c, ids);
  const done: string[] = [];
  const skipped: BulkSkip[] = [];
  const now = x.now();
  for (const id of ids) {
    const cur = rows.get(id);
    if (cur === undefined) {
      skipped.push({ id, reason: SKIP_NOT_FOUND });
      continue;
    }
    if (cur.status !== 'failed' && cur.status !== 'cancelled') {
      skipped.push({ id, reason: skipNotRetryable(cur.status) });
      continue;
    }
    const failed = cur.status === 'failed' ? 1 : 0;
    const r = await x.one<{ n: string; held: boolean }>(JOB_RETRY_UNLESS_HELD, [now, id, x.channel, failed, 1 - failed], c);
    if (r?.held === true) {
      skipped.push({ id, reason: SKIP_UNIQUE_HELD });
      continue;
    }
    if (toInt(r?.n ?? 0) === 0) {
      // No row moved: the job is gone.
      skipped.push({ id, reason: SKIP_NOT_FOUND });
      continue;
    }
    done.push(id);
  }
  // The workflows start clean: one statement for every retried job's checkpoints and subtree. A
  // retried job below another one retried here goes with that one's subtree.
  if (done.length > 0) await x.rows(JOB_DROP_WORKFLOW_STATE_MANY, [done, [...new Set(done.flatMap((id) => subtreeOf(tree, id)))]], c);
  return { done, skipped };
}

/**
 * `Storage.jobDeleteMany`: one transaction. The subtrees are walked, the fan-outs their jobs
 * count on locked, then the jobs and their descendants (id order, waiting for rows held
 * elsewhere); each job given is then judged in the order given — not found, not finished, its
 * parent not finished, a descendant not finished — and the jobs kept, with their subtrees, are
 * deleted in one statement with their checkpoints, signals and fan-out rows. A job given that
 * an earlier one's subtree took along counts as done.
 */
export async function jobDeleteMany(x: PgExec, p: { ids: string[] }): Promise<BulkResult> {
  const ids = [...new Set(p.ids)];
  return withTx(x.pool, async (c) => {
    const tree = await walkSubtrees(x, c, ids);
    await lockFanOutsOf(x, c, [...ids, ...tree.all]);
    const rows = await lockJobs(x, c, [...ids, ...tree.all]);
    const parentIds = [...new Set(ids.map((id) => rows.get(id)?.parent_id).filter((v): v is string => typeof v === 'string'))];
    const status = new Map([...rows.values()].map((r) => [r.id, r.status]));
    const unknownParents = parentIds.filter((id) => !status.has(id));
    if (unknownParents.length > 0) {
      for (const r of await x.rows<{ id: string; status: string }>(JOB_STATUS_MANY, [unknownParents], c)) status.set(r.id, r.status);
    }
    const gone = new Set<string>();
    const done: string[] = [];
    const skipped: BulkSkip[] = [];
    for (const id of ids) {
      const reason = gone.has(id) ? null : deleteRefusal(rows.get(id), status, subtreeOf(tree, id));
      if (reason !== null) {
        skipped.push({ id, reason });
        continue;
      }
      gone.add(id);
      for (const d of subtreeOf(tree, id)) gone.add(d);
      done.push(id);
    }
    if (gone.size > 0) await x.rows(JOB_DELETE_TREES, [[...gone]], c);
    return { done, skipped };
  });
}

/** Why a job may not be deleted (null: it may), from its locked row, known statuses and subtree. */
function deleteRefusal(cur: LockedJob | undefined, status: ReadonlyMap<string, string>, below: readonly string[]): string | null {
  if (cur === undefined) return SKIP_NOT_FOUND;
  if (!FINISHED.has(cur.status)) return skipNotFinished(cur.status);
  const parent = cur.parent_id === null ? undefined : status.get(cur.parent_id);
  if (parent !== undefined && !FINISHED.has(parent)) return SKIP_PARENT_UNFINISHED;
  if (below.some((d) => { const s = status.get(d); return s !== undefined && !FINISHED.has(s); })) return SKIP_UNFINISHED_SUBJOBS;
  return null;
}
