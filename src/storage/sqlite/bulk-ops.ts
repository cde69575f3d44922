/**
 * Bulk actions by id on SQLite: `jobRetryMany` and `jobDeleteMany`, each one short
 * `BEGIN IMMEDIATE` transaction. The transaction holds the file's write lock from its first
 * statement, so what it reads cannot change before it writes: each job is judged on what it
 * reads. A job that cannot be acted on is skipped with a reason from
 * `shared/contract-messages.ts`, never an error.
 *
 * Each call settles only on the event loop's next turn (after its transaction committed):
 * `better-sqlite3` is synchronous, so a caller looping over batches would otherwise run on
 * resolved promises alone and keep timers and I/O of the same process — a worker's polls and
 * heartbeats — waiting until the whole loop ends.
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
import { JOB_STATES_MANY, JOB_SUBTREE_STATES } from './queries/bulk.js';
import { JOB_DELETE_MANY, JOB_GET } from './queries/jobs.js';
import { JOB_UNIQUE_KEY_HELD } from './queries/retry.js';
import { FAN_OUT_DELETE_FOR_PARENTS, SIGNAL_DELETE_FOR_JOBS, STEP_DELETE_FOR_JOBS } from './queries/workflow.js';
import { retryFromScratch } from './retry-core.js';
import type { JobDbRow } from './rows.js';
import type { SqliteContext, Statements } from './statements.js';

/** `value`, once the event loop has had a turn (timers and I/O of the process run first). */
function afterATurn<T>(value: T): Promise<T> {
  return new Promise((resolve) => setImmediate(resolve, value));
}

/** Finished statuses: a job in one of them may be deleted. */
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/** Why a job may not be retried (null: it may). */
function retryRefusal(c: Statements, row: JobDbRow | undefined): string | null {
  if (row === undefined) return SKIP_NOT_FOUND;
  if (row.status !== 'failed' && row.status !== 'cancelled') return skipNotRetryable(row.status);
  if (row.unique_key !== null && c.st(JOB_UNIQUE_KEY_HELD).get(row.unique_key) !== undefined) return SKIP_UNIQUE_HELD;
  return null;
}

/**
 * `Storage.jobRetryMany`: one transaction. Each job, in the order given (an id given twice
 * acted on once), is read and retried from scratch as `jobRetry` does (fan-out accounting,
 * checkpoints, fan-outs and sub-jobs dropped), unless it is gone (also when an earlier job's
 * retry dropped it with its subtree), not failed or cancelled, or its unique key is held by a
 * live job — checked before anything of it is written, so a clash skips that job alone (a
 * job retried earlier in the call holds its key from then on).
 */
export function jobRetryMany(ctx: SqliteContext, p: { ids: string[] }): Promise<BulkResult> {
  const ids = [...new Set(p.ids)];
  if (ids.length === 0) return afterATurn({ done: [], skipped: [] });
  return afterATurn(retryAll(ctx, ids));
}

function retryAll(ctx: SqliteContext, ids: readonly string[]): BulkResult {
  return ctx.write((c, now) => {
    const done: string[] = [];
    const skipped: BulkSkip[] = [];
    for (const id of ids) {
      const row = c.st(JOB_GET).get(id) as JobDbRow | undefined;
      const reason = retryRefusal(c, row);
      if (reason !== null || row === undefined) {
        skipped.push({ id, reason: reason ?? SKIP_NOT_FOUND });
        continue;
      }
      retryFromScratch(c, now, row);
      done.push(id);
    }
    return { done, skipped };
  });
}

/** A job's status and parent. */
interface JobState {
  status: string;
  parentId: string | null;
}

/** The statuses and parents of jobs, by id. */
function statesOf(c: Statements, sql: string, ids: readonly string[]): Map<string, JobState> {
  const rows = c.st(sql).all(JSON.stringify(ids)) as { id: string; status: string; parent_id: string | null }[];
  return new Map(rows.map((r) => [r.id, { status: r.status, parentId: r.parent_id }]));
}

/** Every descendant of `id` (`id` excluded), from the children lists. */
function subtreeOf(children: ReadonlyMap<string, string[]>, id: string): string[] {
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

/** Why a job may not be deleted (null: it may), from the known statuses and its subtree. */
function deleteRefusal(id: string, states: ReadonlyMap<string, JobState>, below: readonly string[]): string | null {
  const cur = states.get(id);
  if (cur === undefined) return SKIP_NOT_FOUND;
  if (!FINISHED.has(cur.status)) return skipNotFinished(cur.status);
  const parent = cur.parentId === null ? undefined : states.get(cur.parentId);
  if (parent !== undefined && !FINISHED.has(parent.status)) return SKIP_PARENT_UNFINISHED;
  if (below.some((d) => !FINISHED.has(states.get(d)?.status ?? 'completed'))) return SKIP_UNFINISHED_SUBJOBS;
  return null;
}

/**
 * `Storage.jobDeleteMany`: one transaction. The given jobs, their subtrees and their parents
 * are read; each job given is then judged in the order given — not found, not finished, its
 * parent not finished, a descendant not finished — and the jobs kept, with their subtrees, are
 * deleted with their checkpoints, signals and fan-out rows (as retention does). A job given that
 * an earlier one's subtree took along counts as done.
 */
export function jobDeleteMany(ctx: SqliteContext, p: { ids: string[] }): Promise<BulkResult> {
  const ids = [...new Set(p.ids)];
  if (ids.length === 0) return afterATurn({ done: [], skipped: [] });
  return afterATurn(deleteAll(ctx, ids));
}

function deleteAll(ctx: SqliteContext, ids: readonly string[]): BulkResult {
  return ctx.write((c) => {
    const states = statesOf(c, JOB_STATES_MANY, ids);
    const children = new Map<string, string[]>();
    for (const [id, s] of statesOf(c, JOB_SUBTREE_STATES, ids)) {
      states.set(id, s);
      const list = children.get(s.parentId!);
      if (list === undefined) children.set(s.parentId!, [id]);
      else list.push(id);
    }
    const parents = [...new Set([...states.values()].map((s) => s.parentId).filter((v): v is string => v !== null && !states.has(v)))];
    for (const [id, s] of statesOf(c, JOB_STATES_MANY, parents)) states.set(id, s);
    const gone = new Set<string>();
    const done: string[] = [];
    const skipped: BulkSkip[] = [];
    for (const id of ids) {
      const below = subtreeOf(children, id);
      const reason = gone.has(id) ? null : deleteRefusal(id, states, below);
      if (reason !== null) {
        skipped.push({ id, reason });
        continue;
      }
      gone.add(id);
      for (const d of below) gone.add(d);
      done.push(id);
    }
    if (gone.size > 0) {
      const all = JSON.stringify([...gone]);
      c.st(STEP_DELETE_FOR_JOBS).run(all);
      c.st(SIGNAL_DELETE_FOR_JOBS).run(all);
      c.st(FAN_OUT_DELETE_FOR_PARENTS).run(all);
      c.st(JOB_DELETE_MANY).run(all);
    }
    return { done, skipped };
  });
}
