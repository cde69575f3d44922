/**
 * Fan-out accounting on SQLite, run inside the transaction that moved children to a terminal
 * status: count them on their fan-outs, let the shared settle rule (shared/fan-out-settle.ts)
 * decide each fan-out, resume the parent (waiting → pending) on the deciding transition only,
 * and on a failed decision cancel the unfinished siblings and their subtrees (which are counted
 * in turn, until nothing changes). SQLite has one write lock, held by the whole transaction, so
 * there is no row lock order to keep.
 * @internal
 */
import { addChildOutcome, settleCountedFanOut, type ChildOutcome, type FanOutCounters } from '../shared/fan-out-settle.js';
import {
  FAN_OUT_ADD_COUNTS,
  FAN_OUT_DECIDE,
  FAN_OUT_EXPIRE,
  JOB_CANCEL_FAN_OUT_CHILDREN,
  JOB_CANCEL_SUBTREES,
  JOB_RESUME_WAITING_PARENT,
} from './queries/fan-out.js';
import { toFanOutRow, type FanOutDbRow, type JobFanOutDbRow } from './rows.js';
import type { Statements } from './statements.js';

/** A job that just reached a terminal status, with its fan-out (if any). */
export interface ChildEnded {
  fanOutId: string | null;
  outcome: ChildOutcome;
}

/**
 * Accounts for jobs that just became terminal: adds them to their fan-outs' counters (one
 * statement per fan-out), settles each fan-out, and cancels the unfinished siblings of the ones
 * that failed (counting those in turn). Returns the ids this cancelled in consequence.
 */
export function accountFanOutOutcomes(c: Statements, now: number, children: Iterable<ChildEnded>): string[] {
  const work = new Map<string, FanOutCounters>();
  for (const ch of children) if (ch.fanOutId !== null) addChildOutcome(work, ch.fanOutId, ch.outcome);

  const cancelled: string[] = [];
  for (let next = work.entries().next(); !next.done; next = work.entries().next()) {
    const [id, d] = next.value;
    work.delete(id);
    const row = c.st(FAN_OUT_ADD_COUNTS).get({ id, ...d }) as FanOutDbRow | undefined;
    if (row === undefined) continue;
    const f = toFanOutRow(row);
    const s = settleCountedFanOut(f);
    if (s.decided === null) continue;
    // The update is the deciding transition only when the fan-out is still running.
    if (c.st(FAN_OUT_DECIDE).run({ id, status: s.decided, now }).changes !== 1) continue;
    if (s.resumeParent) c.st(JOB_RESUME_WAITING_PARENT).run(f.parentId);
    if (s.cancelUnfinishedChildren) {
      for (const r of c.st(JOB_CANCEL_FAN_OUT_CHILDREN).all({ fanOutId: id, now }) as JobFanOutDbRow[]) {
        cancelled.push(r.id);
        if (r.fan_out_id !== null) addChildOutcome(work, r.fan_out_id, 'cancelled');
      }
    }
  }
  return cancelled;
}

/**
 * Cancels every non-terminal job of the subtrees rooted at `roots` and accounts for those
 * that were fan-out children. Returns every id cancelled, roots first as given, then the rest.
 */
export function cancelSubtrees(c: Statements, now: number, roots: readonly string[]): string[] {
  if (roots.length === 0) return [];
  const rows = c.st(JOB_CANCEL_SUBTREES).all({ roots: JSON.stringify(roots), now }) as JobFanOutDbRow[];
  const ids = rows.map((r) => r.id);
  const rootSet = new Set(roots);
  ids.sort((a, b) => Number(rootSet.has(b)) - Number(rootSet.has(a)) || roots.indexOf(a) - roots.indexOf(b));
  return [...ids, ...accountFanOutOutcomes(c, now, cancelledChildren(rows))];
}

/**
 * Fails a running fan-out whose deadline passed (at `now`): resumes its waiting parent and
 * cancels the unfinished children and their subtrees (counted as cancelled). Returns whether it
 * applied. Used by `fanOutExpire` and `fanOutCollect`.
 */
export function expireFanOut(c: Statements, now: number, id: string): boolean {
  const r = c.st(FAN_OUT_EXPIRE).get({ id, now }) as { parent_id: string } | undefined;
  if (r === undefined) return false;
  // The expiry was the deciding transition: resume the parent if it still waits.
  c.st(JOB_RESUME_WAITING_PARENT).run(r.parent_id);
  const rows = c.st(JOB_CANCEL_FAN_OUT_CHILDREN).all({ fanOutId: id, now }) as JobFanOutDbRow[];
  accountFanOutOutcomes(c, now, cancelledChildren(rows));
  return true;
}

/** Cancelled jobs as ended children of their fan-outs. */
function cancelledChildren(rows: readonly JobFanOutDbRow[]): ChildEnded[] {
  return rows.map((r) => ({ fanOutId: r.fan_out_id, outcome: 'cancelled' as const }));
}
