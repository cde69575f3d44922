/**
 * Retention of the MySQL/MariaDB driver: `jobPrune` (its contract is in
 * `storage.ts`). One call takes the prune lock, runs one transaction and releases the lock:
 *
 * 1. The prune lock is a named lock (`GET_LOCK`, one per database, see `PRUNE_LOCK`) asked for
 *    without waiting on one pooled connection. When another session holds it (another process
 *    pruning) the call answers `busy`. The transaction runs on that same connection, and the lock
 *    is released on it once the transaction committed or rolled back.
 * 2. Plan, without locks: windows of the oldest due roots (one range of the index `sdj_jobs_prune`
 *    per status, see migration 2), each with its subtree and the fan-outs of its jobs
 *    (`pruneDueSql`), keeping the roots with nothing unfinished below them, until
 *    `limit` are kept or no due root is left (a root with a live descendant is passed over, not
 *    counted).
 * 3. Lock, in the driver's lock order (fan-outs first, then job rows, each in id order), with
 *    `SKIP LOCKED`: a row another transaction holds is skipped, never waited for.
 * 4. Check, under those locks: the root is still a due, finished root on the database now read
 *    while locking; its subtree and fan-outs, read again, are all locked by this transaction and
 *    every job in it is finished. A finished job that is locked cannot start again (a retry locks
 *    its row first) nor gain children (a fan-out locks its parent first), so what the check saw is
 *    what gets deleted. A root failing any of this (a child being retried, a row skipped) is left
 *    for a later call, whole.
 * 5. Delete the kept subtrees' checkpoints, signals, fan-outs and jobs.
 *
 * The transaction never waits for a lock: its locking reads skip held rows, and its deletes
 * touch only rows it holds, or checkpoints and signals, which every other writer reaches only
 * through their job's row, which it holds. So it can take no part in a deadlock, and a worker
 * waits for it only when it touches one of those finished rows (a retry, a stale outcome), for
 * one short transaction.
 *
 * Round trips of a call: the lock, 2 to open the transaction (its isolation level, then the
 * start), 1 plan window (more only when due roots are passed over), 1 lock of the fan-outs (when
 * there are any), 1 of the jobs, 1 check, 3 or 4 deletes, the commit and the unlock: 11 for plain
 * jobs, 13 with fan-outs, 6 when nothing is due, 1 when busy. Id lists go by 1,000 per
 * statement, so a batch of more jobs than that adds statements.
 * @internal
 */
import { StorageError } from '../../errors.js';
import { checkPruneParams, PRUNED_STATUSES, type PrunedStatus } from '../shared/prune-params.js';
import { withTxRetry } from '../shared/tx-retry.js';
import type { JobPruneParams, JobPruneResult } from '../storage.js';
import { type Executor, run, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { PRUNE_LOCK, PRUNE_UNLOCK, SET_TX_READ_COMMITTED, TX_BEGIN, TX_COMMIT, TX_ROLLBACK } from './queries/admin.js';
import {
  FAN_OUT_DELETE_MANY,
  JOB_DELETE_MANY,
  PRUNE_LOCK_FAN_OUTS,
  PRUNE_LOCK_JOBS,
  PRUNE_TREES,
  SIGNAL_DELETE_FOR_JOBS,
  STEP_DELETE_FOR_JOBS,
  pruneDueSql,
} from './queries/jobs.js';
import { type DbRow, num, numOrNull, str, strOrNull } from './rows.js';
import { isRetryableTxError } from './translate-error.js';

/** The statuses a prune deletes, each with its own age. */
const FINISHED_SET: ReadonlySet<string> = new Set(PRUNED_STATUSES);

/** Ids per statement at most (locks, checks and deletes). */
const IDS_PER_STATEMENT = 1_000;

/** Largest window of due roots the plan reads at once, when it has to read past skipped roots. */
const MAX_WINDOW = 5_000;

/** The ages given, in ms, per status that has one. */
type Ages = ReadonlyMap<PrunedStatus, number>;

/** A root's subtree as read: every job (the root included) with its status, and the fan-outs of those jobs. */
interface Tree {
  root: string;
  /** Position among the roots of its read. */
  n: number;
  completedAt: number;
  jobs: Map<string, string>;
  fanOuts: string[];
}

/**
 * `Storage.jobPrune` for MySQL/MariaDB (see the module header).
 * @throws InvalidArgumentError on an age or limit `checkPruneParams` refuses
 */
export async function jobPrune(ctx: DriverContext, p: JobPruneParams): Promise<JobPruneResult> {
  const checked = checkPruneParams(p);
  if (checked.nothing) return { deleted: 0, roots: 0, busy: false };
  const ages: Ages = new Map(PRUNED_STATUSES.flatMap((s) => (checked.ages[s] === null ? [] : [[s, checked.ages[s]] as const])));
  const limit = checked.limit;
  return ctx.db.withConnection(async (conn) => {
    const [lock] = await select(conn, PRUNE_LOCK);
    if (lock?.['got'] === null || lock?.['got'] === undefined) throw new StorageError('mysql: the prune lock could not be asked for (no database selected?)');
    if (num(lock['got']) !== 1) return { deleted: 0, roots: 0, busy: true };
    const name = str(lock['name']);
    try {
      return { ...(await transaction(conn, (ex) => pruneDue(ex, ctx.now(), ages, limit))), busy: false };
    } finally {
      // On the connection that holds it; a failure here means the connection broke (and its session, with the lock, ends).
      await select(conn, PRUNE_UNLOCK, [name]);
    }
  });
}

/**
 * Runs `fn` in one READ COMMITTED transaction on `conn` (the connection holding the prune lock),
 * run again whole on a deadlock or lock-wait timeout under the shared retry policy.
 */
function transaction<T>(conn: Executor, fn: (ex: Executor) => Promise<T>): Promise<T> {
  return withTxRetry(
    async () => {
      await run(conn, SET_TX_READ_COMMITTED);
      await run(conn, TX_BEGIN);
      try {
        const out = await fn(conn);
        await run(conn, TX_COMMIT);
        return out;
      } catch (e) {
        await run(conn, TX_ROLLBACK).catch(() => undefined);
        throw e;
      }
    },
    { isRetryable: isRetryableTxError },
  );
}

/** Steps 2 to 5 of the module header, inside the transaction. */
async function pruneDue(ex: Executor, now: number | null, ages: Ages, limit: number): Promise<{ deleted: number; roots: number }> {
  const planned = await planDue(ex, now, ages, limit);
  if (planned.length === 0) return { deleted: 0, roots: 0 };
  const fanOutRows = await inChunks(ex, PRUNE_LOCK_FAN_OUTS, [], planned.flatMap((t) => t.fanOuts));
  const heldFanOuts = new Set(fanOutRows.map((r) => str(r['id'])));
  const jobRows = await inChunks(ex, PRUNE_LOCK_JOBS, [now], planned.flatMap((t) => [...t.jobs.keys()]));
  const held = new Map(jobRows.map((r) => [str(r['id']), r]));
  const due = planned.filter((t) => isDueRoot(held.get(t.root), ages)).map((t) => t.root);
  if (due.length === 0) return { deleted: 0, roots: 0 };
  const current = treesOf(await inChunks(ex, PRUNE_TREES, [], due));
  const kept = current.filter(
    (t) => [...t.jobs.keys()].every((id) => FINISHED_SET.has(str(held.get(id)?.['status'] ?? ''))) && t.fanOuts.every((id) => heldFanOuts.has(id)),
  );
  const jobs = kept.flatMap((t) => [...t.jobs.keys()]);
  let deleted = 0;
  for (const part of chunk(jobs)) {
    await write(ex, STEP_DELETE_FOR_JOBS, [part]);
    await write(ex, SIGNAL_DELETE_FOR_JOBS, [part]);
  }
  for (const part of chunk(kept.flatMap((t) => t.fanOuts))) await write(ex, FAN_OUT_DELETE_MANY, [part]);
  for (const part of chunk(jobs)) deleted += await write(ex, JOB_DELETE_MANY, [part]);
  return { deleted, roots: kept.length };
}

/**
 * The oldest due roots with nothing unfinished below them, at most `limit`, with their subtrees
 * and fan-outs as read (no locks). Reads windows of due roots, the first of `limit`, then
 * larger ones after the last root read, until enough are kept or none is left.
 */
async function planDue(ex: Executor, now: number | null, ages: Ages, limit: number): Promise<Tree[]> {
  const kept: Tree[] = [];
  let size = limit;
  let cursor: { at: number; id: string } | null = null;
  for (;;) {
    const values: unknown[] = [];
    for (const [status, age] of ages) {
      values.push(status, now, age);
      if (cursor !== null) values.push(cursor.at, cursor.at, cursor.id);
      values.push(size);
    }
    values.push(size);
    const trees = treesOf(await select(ex, pruneDueSql(ages.size, cursor !== null), values));
    for (const t of trees) {
      if (![...t.jobs.values()].every((s) => FINISHED_SET.has(s))) continue;
      kept.push(t);
      if (kept.length === limit) return kept;
    }
    const last = trees.at(-1);
    if (last === undefined || trees.length < size) return kept;
    cursor = { at: last.completedAt, id: last.root };
    size = Math.min(size * 2, Math.max(limit, MAX_WINDOW));
  }
}

/** True when a locked row is a root of a finished status whose age has passed on the database now read with it. */
function isDueRoot(row: DbRow | undefined, ages: Ages): boolean {
  if (row === undefined || strOrNull(row['parent_id']) !== null) return false;
  const age = ages.get(str(row['status']) as PrunedStatus);
  const completedAt = numOrNull(row['completed_at']);
  return age !== undefined && completedAt !== null && num(row['now_ms']) - completedAt > age;
}

/** Groups subtree-walk rows (`pruneDueSql`, `PRUNE_TREES`) by root, in the order of `n`. */
function treesOf(rows: DbRow[]): Tree[] {
  const trees = new Map<string, Tree>();
  for (const r of rows) {
    const root = str(r['root']);
    let t = trees.get(root);
    if (t === undefined) {
      t = { root, n: num(r['n']), completedAt: 0, jobs: new Map(), fanOuts: [] };
      trees.set(root, t);
    }
    const id = str(r['id']);
    if (str(r['kind']) === 'f') {
      t.fanOuts.push(id);
      continue;
    }
    t.jobs.set(id, str(r['status']));
    if (id === root) t.completedAt = numOrNull(r['completed_at']) ?? 0;
  }
  return [...trees.values()].sort((a, b) => a.n - b.n);
}

/** Runs `sql` with `pre` and each chunk of the distinct ids, in id order; returns every row. */
async function inChunks(ex: Executor, sql: string, pre: unknown[], ids: string[]): Promise<DbRow[]> {
  const out: DbRow[] = [];
  for (const part of chunk([...new Set(ids)].sort())) out.push(...(await select(ex, sql, [...pre, part])));
  return out;
}

/** `ids` in lists of at most {@link IDS_PER_STATEMENT}. */
function chunk(ids: string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) out.push(ids.slice(i, i + IDS_PER_STATEMENT));
  return out;
}
