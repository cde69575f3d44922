/**
 * Fan-out accounting and subtree cancellation of the MySQL/MariaDB driver, run inside the
 * transaction of the state change that caused them (see the header of `storage.ts`).
 *
 * Lock order, in every writer of the driver that touches both kinds of row (`jobFinishMany`,
 * `jobReclaimExpired`, `jobCancel`, `jobRetry`, `jobRetryMany`, `jobDeleteMany`, `fanOutExpire`):
 * fan-out rows before job rows, and a fan-out child's row only after its fan-out's.
 * - Fan-outs, locked by {@link lockFanOutsFirst} before any job row, found by reads that take no
 *   lock: in id order, those of the jobs the transaction locks (counted on or not: a reclaim
 *   sending a child back to pending locks its fan-out too) and those of (and below) the jobs
 *   whose subtrees it may cancel or delete; then, when the counters read under that lock show
 *   that its own outcomes decide a fan-out failed, those below that fan-out's unfinished
 *   children, which the decision cancels (`fanOutExpire`, whose decision is known once its
 *   fan-out is locked, does the same).
 * - Job rows: the transaction's own (id order, one statement), then subtrees top-down (locked
 *   and re-read until stable, so a descendant that suspends into its own fan-out concurrently
 *   cannot leave unseen grandchildren), then the unfinished children of a fan-out decided
 *   failed (in the fan-out index's order: a locking read must never scan rows it does not
 *   want, as it waits for each), then the parents it resumes. Whoever locks a fan-out's
 *   children holds that fan-out, so its row serializes them.
 * - `jobFinishMany` learns its jobs' fan-outs from their rows: a first transaction locks them
 *   without waiting (`SKIP LOCKED`) and, when every outcome counts on no fan-out and cancels no
 *   subtree, applies them and commits — a batch of plain jobs costs one locking read and one
 *   update, as before. Otherwise it writes nothing and a second transaction applies the batch in
 *   this order. Transactions that never wait while holding job rows (that first one, claims,
 *   `jobWakeDue`, all `SKIP LOCKED`) need not lock fan-outs.
 * - `jobSuspendFanOut` locks the parent's row, then creates the fan-out and its children: new
 *   rows, which no other transaction can hold or wait for.
 * Exceptions, where InnoDB detects a deadlock at once and the transaction is retried whole (see
 * `MysqlDb.tx`): a fan-out the planning reads could not see (created by a descendant suspending
 * while the transaction waited for that descendant's row) or one of the second step with a
 * smaller id than one already held, locked when found; and `jobHeartbeat` / `jobRelease`, which
 * lock a worker's runs in one statement without their fan-outs, so a heartbeat over two
 * siblings can meet a failed decision cancelling them.
 * `test/storage/mysql-lock-order.test.ts` races reclaims, finishes and cancels over fan-out
 * trees and requires the server to report no deadlock.
 * @internal
 */
import { addChildOutcome, type FanOutCounters, settleFanOut, settleFanOutCounts } from '../shared/fan-out-settle.js';
import type { FanOutRow } from '../storage.js';
import { type Executor, select, write } from './connection.js';
import { num, str, strOrNull, toFanOutRow } from './rows.js';
import {
  FAN_OUT_IDS_BELOW_UNFINISHED,
  FAN_OUT_IDS_UNDER_JOBS,
  FAN_OUT_LOCK_MANY,
  FAN_OUT_UNFINISHED_CHILDREN,
  FAN_OUT_UPDATE,
  FAN_OUT_WAKE_PARENT,
  JOB_CANCEL_MANY,
  JOB_SUBTREE_LOCK,
} from './queries/fan-out.js';

/** Counter increments for one fan-out (the shared counters). @internal */
export type FanOutDelta = FanOutCounters;

/** A fan-out row the transaction holds, as it last wrote it, with the database now of its lock. @internal */
export interface HeldFanOut {
  row: FanOutRow;
  at: number;
}

/** The fan-out rows a transaction holds, by id. @internal */
export type HeldFanOuts = Map<string, HeldFanOut>;

/** What a transaction may count on, for {@link lockFanOutsFirst}. @internal */
export interface FanOutLockPlan {
  /** The outcomes it expects to count (its own jobs ending), by fan-out id. */
  deltas?: Map<string, FanOutDelta>;
  /** Jobs whose subtrees it may cancel (or delete): their own fan-outs and those of every job below them. */
  under?: string[];
  /** Other fan-outs it writes. */
  fanOuts?: string[];
}

/** Locks the fan-outs among `ids` that the transaction does not hold yet, in id order, into `held`. @internal */
export async function lockFanOuts(ex: Executor, now: number | null, ids: Iterable<string>, held: HeldFanOuts): Promise<void> {
  const want = [...new Set(ids)].filter((id) => !held.has(id)).sort();
  if (want.length === 0) return;
  for (const r of await select(ex, FAN_OUT_LOCK_MANY, [now, want])) held.set(str(r['id']), { row: toFanOutRow(r), at: num(r['now_ms']) });
}

/**
 * Locks, into `held`, the fan-outs below the unfinished children of `fanOutIds`: those that a
 * failed decision of these fan-outs, which cancels the children with their subtrees, counts on.
 * @internal
 */
export async function lockBelowFailing(ex: Executor, now: number | null, fanOutIds: string[], held: HeldFanOuts): Promise<void> {
  if (fanOutIds.length === 0) return;
  const rows = await select(ex, FAN_OUT_IDS_BELOW_UNFINISHED, [fanOutIds]);
  await lockFanOuts(ex, now, rows.map((r) => str(r['id'])), held);
}

/**
 * Locks the fan-outs a transaction may count on, before it locks any job row (the driver's lock
 * order, see the header): those of `plan.deltas`, `plan.fanOuts` and under `plan.under`, in id order; then
 * the ones below each fan-out that `plan.deltas` decides failed on the counters just read.
 * A delta whose job turns out not to end (its fence fails) only means a lock taken for nothing.
 * @internal
 */
export async function lockFanOutsFirst(ex: Executor, now: number | null, plan: FanOutLockPlan): Promise<HeldFanOuts> {
  const held: HeldFanOuts = new Map();
  const deltas = plan.deltas ?? new Map<string, FanOutDelta>();
  const ids = [...deltas.keys(), ...(plan.fanOuts ?? [])];
  if (plan.under !== undefined && plan.under.length > 0) {
    for (const r of await select(ex, FAN_OUT_IDS_UNDER_JOBS, [plan.under])) ids.push(str(r['id']));
  }
  await lockFanOuts(ex, now, ids, held);
  const failing: string[] = [];
  for (const [id, d] of deltas) {
    const h = held.get(id);
    if (h !== undefined && settleFanOutCounts(h.row, d).decided === 'failed') failing.push(id);
  }
  await lockBelowFailing(ex, now, failing, held);
  return held;
}

const NON_TERMINAL = new Set(['pending', 'running', 'waiting', 'paused']);

/**
 * Cancels the non-terminal ones among `roots` (already locked by the caller, with their current
 * status) and every non-terminal job of their subtrees; a terminal root (a job that just failed)
 * only has its subtree cancelled. The cancelled descendants are added to `deltas` as cancelled
 * on their own fan-outs (the roots' accounting is the caller's), for {@link accountFanOutOutcomes}.
 * Returns the ids cancelled, roots first.
 */
export async function cancelSubtrees(
  ex: Executor,
  now: number | null,
  roots: { id: string; status: string }[],
  deltas: Map<string, FanOutDelta>,
): Promise<string[]> {
  if (roots.length === 0) return [];
  const rootIds = roots.map((r) => r.id);
  const rootSet = new Set(rootIds);
  const found = new Map<string, { status: string; fanOutId: string | null }>();
  // Lock the subtree; repeat until a pass finds no job it had not locked already.
  for (;;) {
    const rows = await select(ex, JOB_SUBTREE_LOCK, [rootIds]);
    let fresh = false;
    for (const r of rows) {
      const id = str(r['id']);
      if (!found.has(id)) fresh = true;
      found.set(id, { status: str(r['status']), fanOutId: strOrNull(r['fan_out_id']) });
    }
    if (!fresh) break;
  }
  const ids = new Set(roots.filter((r) => NON_TERMINAL.has(r.status)).map((r) => r.id));
  for (const [id, j] of found) {
    if (!NON_TERMINAL.has(j.status) || ids.has(id)) continue;
    ids.add(id);
    if (j.fanOutId !== null && !rootSet.has(id)) addChildOutcome(deltas, j.fanOutId, 'cancelled');
  }
  const list = [...ids];
  for (let i = 0; i < list.length; i += 1000) await write(ex, JOB_CANCEL_MANY, [now, list.slice(i, i + 1000)]);
  return list;
}

/**
 * Counts terminal child outcomes on their fan-outs, decides each fan-out still running when its
 * strategy allows, resumes the parent on the deciding transition, and on a failed decision
 * cancels the unfinished siblings (and their subtrees), counting them as cancelled — the
 * siblings on this fan-out, their cancelled descendants on their own fan-outs in a later round.
 * The fan-outs come from `held` (locked by {@link lockFanOutsFirst}, kept up to date here); one
 * not planned for is locked when found. Fan-outs that no longer exist (dropped by a retry of the
 * parent) are ignored. Returns the ids this cancelled.
 */
export async function accountFanOutOutcomes(ex: Executor, now: number | null, deltas: Map<string, FanOutDelta>, held: HeldFanOuts): Promise<string[]> {
  const cancelled: string[] = [];
  let work = deltas;
  while (work.size > 0) {
    const round = work;
    work = new Map();
    await lockFanOuts(ex, now, round.keys(), held);
    for (const id of [...round.keys()].sort()) {
      const h = held.get(id);
      if (h === undefined) continue;
      const f = h.row;
      // The decision is the shared rule; only the writes it implies are this driver's.
      const s = settleFanOutCounts(f, round.get(id)!);
      const counts = { succeeded: s.next.succeeded, failed: s.next.failed, cancelled: s.next.cancelled };
      if (s.cancelUnfinishedChildren) {
        const siblings = (await select(ex, FAN_OUT_UNFINISHED_CHILDREN, [f.id])).map((c) => ({ id: str(c['id']), status: str(c['status']) }));
        cancelled.push(...(await cancelSubtrees(ex, now, siblings, work)));
        counts.cancelled += siblings.length;
      }
      if (s.resumeParent) await write(ex, FAN_OUT_WAKE_PARENT, [f.parentId]);
      const decidedAt = s.decided === null ? f.decidedAt : h.at;
      await write(ex, FAN_OUT_UPDATE, [counts.succeeded, counts.failed, counts.cancelled, s.next.status, decidedAt, f.id]);
      h.row = { ...f, ...counts, status: s.next.status, decidedAt };
    }
  }
  return cancelled;
}

/**
 * Fails the fan-out `id` when it is still running past its deadline: the fan-out, then the
 * fan-outs below its unfinished children (which count the children's cancelled subtrees), then
 * job rows — the driver's lock order. Resumes the parent, cancels the unfinished children with
 * their subtrees, and counts them. Returns whether it applied.
 * @internal
 */
export async function expireFanOut(ex: Executor, now: number | null, id: string): Promise<boolean> {
  const held: HeldFanOuts = new Map();
  await lockFanOuts(ex, now, [id], held);
  const h = held.get(id);
  if (h === undefined) return false;
  const f = h.row;
  if (f.deadlineAt === null || h.at < f.deadlineAt) return false;
  const s = settleFanOut(f, { kind: 'deadline-passed' });
  if (s.decided === null) return false;
  await lockBelowFailing(ex, now, [id], held);
  const children = (await select(ex, FAN_OUT_UNFINISHED_CHILDREN, [id])).map((c) => ({ id: str(c['id']), status: str(c['status']) }));
  const deltas = new Map<string, FanOutDelta>();
  await cancelSubtrees(ex, now, children, deltas);
  const cancelled = f.cancelled + children.length;
  await write(ex, FAN_OUT_UPDATE, [f.succeeded, f.failed, cancelled, s.next.status, h.at, id]);
  h.row = { ...f, cancelled, status: s.next.status, decidedAt: h.at };
  if (s.resumeParent) await write(ex, FAN_OUT_WAKE_PARENT, [f.parentId]);
  // The children's cancelled descendants, on the children's own fan-outs.
  await accountFanOutOutcomes(ex, now, deltas, held);
  return true;
}
