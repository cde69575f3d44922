/**
 * Retention of the MySQL/MariaDB driver: `jobPrune` (its contract is in
 * `storage.ts`). One call takes the prune lock, runs one transaction and releases the lock:
 *
 * 1. The prune lock is a named lock (`GET_LOCK`, one per database, see `PRUNE_LOCK`) asked for
 *    without waiting on one pooled connection. When another session holds it (another process
 *    pruning) the call answers `busy`. The transaction runs on that same connection, with the
 *    session's `innodb_lock_wait_timeout` cut to {@link PRUNE_LOCK_WAIT_S} second, and the lock is
 *    released (and the session's lock wait restored) on it once the transaction committed or
 *    rolled back.
 * 2. Plan, without locks: windows of the oldest due roots (one range of the index `sdj_jobs_prune`
 *    per status, see migration 2), each with its subtree and the fan-outs of its jobs
 *    (`pruneDueSql`), keeping the workflows in which every job is finished and past its own
 *    status's age (`now - completed_at > age`; a status without an age keeps the workflow), until
 *    `limit` are kept or no due root is left (a workflow held back is passed over, not counted).
 * 3. Lock, in the driver's lock order (fan-outs first, then job rows, each in id order), with
 *    `SKIP LOCKED`: a row another transaction holds is skipped, never waited for.
 * 4. Check, under those locks: the root is still a root; its subtree and fan-outs, read again, are
 *    all locked by this transaction, and every job in it is finished and past its own status's
 *    age on the database now read while locking. A finished job that is locked cannot start
 *    again (a retry locks its row first) nor gain children (a fan-out locks its parent first), so
 *    what the check saw is what gets deleted. A root failing any of this (a child being retried,
 *    a row skipped) is left for a later call, whole.
 * 5. Delete the kept subtrees' checkpoints, signals, fan-outs and jobs, each statement joining a
 *    table of the ids to the rows by their key (`PRUNE_DELETE_*`).
 * 6. Flow control's leftovers: rate state whose tat passed a minute ago and debounce locks older than a
 *    day, each locked with `SKIP LOCKED` and then deleted by key (`pruneFlowState`).
 *
 * The transaction never waits for a lock: its locking reads skip held rows, and its deletes
 * reach only rows it holds, or checkpoints and signals, which every other writer reaches only
 * through their job's row, which it holds. Every statement reaches rows through the primary key
 * or the job id index only: a plain `DELETE ... WHERE id IN (...)` may scan the whole table
 * (MariaDB does when the ids are a large share of a small table), and a locking scan waits for
 * every row another transaction holds, a job enqueued in a user's open transaction for one. So it
 * can take no part in a deadlock, and a worker waits for it only when it touches one of those
 * finished rows (a retry, a stale outcome), for one short transaction. Should a wait happen
 * anyway, the short lock wait ends it: the call fails with a transient `StorageError` (a lock
 * wait timeout is not run again here), rather than holding the fleet-wide prune lock for minutes.
 *
 * Round trips of a call: the lock, the lock wait, 2 to open the transaction (its isolation level,
 * then the start), 1 plan window (more only when due roots are passed over), 1 lock of the
 * fan-outs (when there are any), 1 of the jobs, 1 check, 3 or 4 deletes, 1 read of flow
 * leftovers (and a delete for each kind found), the commit and the unlock: 13 for plain jobs, 15
 * with fan-outs, 8 when nothing is due (and no leftover), 1 when busy. Id lists go by
 * 1,000 per statement, so a batch of more jobs than that adds statements.
 * @internal
 */
import { StorageError } from '../../errors.js';
import { checkPruneParams, PRUNED_STATUSES, type PrunedStatus } from '../shared/prune-params.js';
import { withTxRetry } from '../shared/tx-retry.js';
import type { JobPruneParams, JobPruneResult } from '../storage.js';
import { type Executor, run, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { PRUNE_LOCK, PRUNE_SET_LOCK_WAIT, PRUNE_UNLOCK, SET_TX_READ_COMMITTED, TX_BEGIN, TX_COMMIT, TX_ROLLBACK } from './queries/admin.js';
import {
  PRUNE_DELETE_FAN_OUTS,
  PRUNE_DELETE_JOBS,
  PRUNE_DELETE_SIGNALS,
  PRUNE_DELETE_STEPS,
  PRUNE_LOCK_FAN_OUTS,
  PRUNE_LOCK_JOBS,
  PRUNE_TREES,
  pruneDueSql,
} from './queries/jobs.js';
import { DEBOUNCE_LOCK_TTL_MS, DEBOUNCE_LOCKS_DELETE, FLOW_LEFTOVERS, FLOW_PRUNE_BATCH, RATE_STATE_DELETE_KEYS } from './queries/flow.js';
import { type DbRow, num, numOrNull, str, strOrNull } from './rows.js';
import { isRetryableTxError } from './translate-error.js';

/** The session's `innodb_lock_wait_timeout` while it prunes, in seconds (the least MySQL accepts). */
const PRUNE_LOCK_WAIT_S = 1;

/** Ids per statement at most (locks, checks and deletes). */
const IDS_PER_STATEMENT = 1_000;

/** Largest window of due roots the plan reads at once, when it has to read past skipped roots. */
const MAX_WINDOW = 5_000;

/** ER_LOCK_WAIT_TIMEOUT. */
const LOCK_WAIT_TIMEOUT_ERRNO = 1205;

/** The ages given, in ms, per status that has one. */
type Ages = ReadonlyMap<PrunedStatus, number>;

/** A job of a subtree as read. */
interface TreeJob {
  status: string;
  completedAt: number | null;
}

/** A root's subtree as read: every job (the root included), and the fan-outs of those jobs. */
interface Tree {
  root: string;
  /** Position among the roots of its read. */
  n: number;
  completedAt: number;
  jobs: Map<string, TreeJob>;
  fanOuts: string[];
  /** The database clock when the subtree was read. */
  dbNow: number;
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
    // On the connection that holds the lock, restoring the session's own lock wait.
    const unlock = (): Promise<unknown> => run(conn, PRUNE_UNLOCK, [str(lock['name']), num(lock['lock_wait_s'])]);
    let out: { deleted: number; roots: number };
    try {
      await run(conn, PRUNE_SET_LOCK_WAIT, [PRUNE_LOCK_WAIT_S]);
      out = await transaction(conn, async (ex) => {
        const done = await pruneDue(ex, ctx.now(), ages, limit);
        await pruneFlowState(ex, ctx.now());
        return done;
      });
    } catch (e) {
      // The failure of the prune is the error to report. When it broke the connection the unlock
      // fails too, and the session's end frees the lock (and forgets the lock wait) anyway.
      await unlock().catch(() => undefined);
      throw e;
    }
    await unlock();
    return { ...out, busy: false };
  });
}

/**
 * Runs `fn` in one READ COMMITTED transaction on `conn` (the connection holding the prune lock),
 * run again whole on a deadlock under the shared retry policy. A lock wait timeout is not run
 * again: the prune never waits for a lock by design, so one that did meets an anomaly, and the
 * call ends rather than hold the prune lock through more waits.
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
    { isRetryable: (e) => isRetryableTxError(e) && (e as { errno?: unknown }).errno !== LOCK_WAIT_TIMEOUT_ERRNO },
  );
}

/**
 * Step 6: deletes rate state whose tat passed a minute ago and debounce locks older than a day, at most
 * {@link FLOW_PRUNE_BATCH} each, locking them with `SKIP LOCKED` first (rows a claim or a
 * debounce holds are left for a later call) and deleting only those.
 */
async function pruneFlowState(ex: Executor, now: number | null): Promise<void> {
  const rows = await select(ex, FLOW_LEFTOVERS, [now, FLOW_PRUNE_BATCH, now, DEBOUNCE_LOCK_TTL_MS, FLOW_PRUNE_BATCH]);
  const passed = rows.filter((r) => str(r['kind']) === 'r').map((r) => [r['scope'], r['name'], r['rkey']]);
  const old = rows.filter((r) => str(r['kind']) === 'd').map((r) => r['name']);
  if (passed.length > 0) await write(ex, RATE_STATE_DELETE_KEYS, [passed]);
  if (old.length > 0) await write(ex, DEBOUNCE_LOCKS_DELETE, [old]);
}

/** Steps 2 to 5 of the module header, inside the transaction. */
async function pruneDue(ex: Executor, now: number | null, ages: Ages, limit: number): Promise<{ deleted: number; roots: number }> {
  const planned = await planDue(ex, now, ages, limit);
  if (planned.length === 0) return { deleted: 0, roots: 0 };
  const fanOutRows = await inChunks(ex, PRUNE_LOCK_FAN_OUTS, [], planned.flatMap((t) => t.fanOuts));
  const heldFanOuts = new Set(fanOutRows.map((r) => str(r['id'])));
  const jobRows = await inChunks(ex, PRUNE_LOCK_JOBS, [now], planned.flatMap((t) => [...t.jobs.keys()]));
  const held = new Map(jobRows.map((r) => [str(r['id']), r]));
  const roots = planned.filter((t) => isHeldRoot(held.get(t.root))).map((t) => t.root);
  if (roots.length === 0) return { deleted: 0, roots: 0 };
  const current = treesOf(await inChunks(ex, PRUNE_TREES, [], roots));
  const kept = current.filter((t) => [...t.jobs.keys()].every((id) => isDueHeld(held.get(id), ages)) && t.fanOuts.every((id) => heldFanOuts.has(id)));
  const jobs = kept.flatMap((t) => [...t.jobs.keys()]);
  let deleted = 0;
  for (const part of chunk(jobs)) {
    await write(ex, PRUNE_DELETE_STEPS, [JSON.stringify(part)]);
    await write(ex, PRUNE_DELETE_SIGNALS, [JSON.stringify(part)]);
  }
  for (const part of chunk(kept.flatMap((t) => t.fanOuts))) await write(ex, PRUNE_DELETE_FAN_OUTS, [JSON.stringify(part)]);
  for (const part of chunk(jobs)) deleted += await write(ex, PRUNE_DELETE_JOBS, [JSON.stringify(part)]);
  return { deleted, roots: kept.length };
}

/**
 * The oldest due roots whose workflows are due whole, at most `limit`, with their subtrees and
 * fan-outs as read (no locks). Reads windows of due roots, the first of `limit`, then larger ones
 * after the last root read, until enough are kept or none is left.
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
      const at = now ?? t.dbNow;
      if (![...t.jobs.values()].every((j) => isDue(j.status, j.completedAt, at, ages))) continue;
      kept.push(t);
      if (kept.length === limit) return kept;
    }
    const last = trees.at(-1);
    if (last === undefined || trees.length < size) return kept;
    cursor = { at: last.completedAt, id: last.root };
    size = Math.min(size * 2, Math.max(limit, MAX_WINDOW));
  }
}

/**
 * True when a job of `status` that completed at `completedAt` is finished and past its status's
 * age at `nowMs` (`now - completed_at > age`); false for a status without an age, as for one
 * that is not finished.
 */
function isDue(status: string, completedAt: number | null, nowMs: number, ages: Ages): boolean {
  const age = ages.get(status as PrunedStatus);
  return age !== undefined && completedAt !== null && nowMs - completedAt > age;
}

/** True when a locked row (`PRUNE_LOCK_JOBS`) is finished and past its status's age on the database now read with it. */
function isDueHeld(row: DbRow | undefined, ages: Ages): boolean {
  return row !== undefined && isDue(str(row['status']), numOrNull(row['completed_at']), num(row['now_ms']), ages);
}

/** True when a row was locked and is still a root (its dueness is checked with its subtree's). */
function isHeldRoot(row: DbRow | undefined): boolean {
  return row !== undefined && strOrNull(row['parent_id']) === null;
}

/** Groups subtree-walk rows (`pruneDueSql`, `PRUNE_TREES`) by root, in the order of `n`. */
function treesOf(rows: DbRow[]): Tree[] {
  const trees = new Map<string, Tree>();
  for (const r of rows) {
    const root = str(r['root']);
    let t = trees.get(root);
    if (t === undefined) {
      t = { root, n: num(r['n']), completedAt: 0, jobs: new Map(), fanOuts: [], dbNow: 0 };
      trees.set(root, t);
    }
    const id = str(r['id']);
    if (str(r['kind']) === 'f') {
      t.fanOuts.push(id);
      continue;
    }
    const completedAt = numOrNull(r['completed_at']);
    t.jobs.set(id, { status: str(r['status']), completedAt });
    t.dbNow = num(r['db_now_ms']);
    if (id === root) t.completedAt = completedAt ?? 0;
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
