/**
 * Fan-out accounting and subtree cancellation of the MySQL/MariaDB driver, run inside the
 * transaction of the state change that caused them (see the header of `storage.ts`).
 *
 * Lock order: job rows (id order), then fan-out rows (id order), then parents. Subtrees are
 * locked top-down and re-read until stable, so a descendant that suspends into its own fan-out
 * concurrently (which locks that descendant first) cannot leave unseen grandchildren.
 * @internal
 */
import { decideFanOut } from '../fan-out-rules.js';
import { type Executor, select, write } from './connection.js';
import { num, str, strOrNull, toFanOutRow } from './rows.js';
import { JOB_CANCEL_MANY, JOB_SUBTREE_LOCK } from './queries/jobs.js';
import { FAN_OUT_LOCK_MANY, FAN_OUT_UNFINISHED_CHILDREN, FAN_OUT_UPDATE, FAN_OUT_WAKE_PARENT } from './queries/workflow.js';

/** Counter increments for one fan-out. @internal */
export interface FanOutDelta {
  succeeded: number;
  failed: number;
  cancelled: number;
}

/** Adds one terminal child outcome to a map of deltas. @internal */
export function addDelta(deltas: Map<string, FanOutDelta>, fanOutId: string, outcome: 'completed' | 'failed' | 'cancelled'): void {
  const d = deltas.get(fanOutId) ?? { succeeded: 0, failed: 0, cancelled: 0 };
  if (outcome === 'completed') d.succeeded++;
  else if (outcome === 'failed') d.failed++;
  else d.cancelled++;
  deltas.set(fanOutId, d);
}

const NON_TERMINAL = new Set(['pending', 'running', 'waiting', 'paused']);

/**
 * Cancels the non-terminal ones among `roots` (already locked by the caller, with their current
 * status) and every non-terminal job of their subtrees; a terminal root (a job that just failed)
 * only has its subtree cancelled. The cancelled descendants are added to `deltas` as cancelled
 * on their own fan-outs (the roots' accounting is the caller's), for {@link accountFanOuts}.
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
    if (j.fanOutId !== null && !rootSet.has(id)) addDelta(deltas, j.fanOutId, 'cancelled');
  }
  const list = [...ids];
  for (let i = 0; i < list.length; i += 1000) await write(ex, JOB_CANCEL_MANY, [now, list.slice(i, i + 1000)]);
  return list;
}

/**
 * Counts terminal child outcomes on their fan-outs, decides each fan-out still running when its
 * strategy allows, resumes the parent on the deciding transition, and on a failed decision
 * cancels the unfinished siblings (and their subtrees), counting them as cancelled — the
 * siblings on this fan-out, their cancelled descendants on their own fan-outs in a later round
 * (each round locks and re-reads its fan-outs, so no count is lost). Fan-outs that no longer
 * exist (dropped by a retry of the parent) are ignored.
 */
export async function accountFanOuts(ex: Executor, now: number | null, deltas: Map<string, FanOutDelta>): Promise<void> {
  let work = deltas;
  while (work.size > 0) {
    const round = work;
    work = new Map();
    const rows = await select(ex, FAN_OUT_LOCK_MANY, [now, [...round.keys()].sort()]);
    for (const r of rows) {
      const f = toFanOutRow(r);
      const at = num(r['now_ms']);
      const d = round.get(f.id);
      if (!d) continue;
      const counts = { ...f, succeeded: f.succeeded + d.succeeded, failed: f.failed + d.failed, cancelled: f.cancelled + d.cancelled };
      let status = f.status;
      let decidedAt = f.decidedAt;
      if (f.status === 'running') {
        const decision = decideFanOut(counts);
        if (decision !== 'running') {
          status = decision;
          decidedAt = at;
          if (decision === 'failed') {
            const siblings = (await select(ex, FAN_OUT_UNFINISHED_CHILDREN, [f.id])).map((s) => ({ id: str(s['id']), status: str(s['status']) }));
            await cancelSubtrees(ex, now, siblings, work);
            counts.cancelled += siblings.length;
          }
          await write(ex, FAN_OUT_WAKE_PARENT, [f.parentId]);
        }
      }
      await write(ex, FAN_OUT_UPDATE, [counts.succeeded, counts.failed, counts.cancelled, status, decidedAt, f.id]);
    }
  }
}
