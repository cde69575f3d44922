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
import { num, str, toFanOutRow } from './rows.js';
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
 * status) and every non-terminal job of their subtrees. Returns the ids cancelled, roots first.
 * No fan-out accounting is done here.
 */
export async function cancelSubtrees(ex: Executor, now: number | null, roots: { id: string; status: string }[]): Promise<string[]> {
  if (roots.length === 0) return [];
  const rootIds = roots.map((r) => r.id);
  const status = new Map<string, string>();
  // Lock the subtree; repeat until a pass finds no job it had not locked already.
  for (;;) {
    const rows = await select(ex, JOB_SUBTREE_LOCK, [rootIds]);
    let fresh = false;
    for (const r of rows) {
      const id = str(r['id']);
      if (!status.has(id)) fresh = true;
      status.set(id, str(r['status']));
    }
    if (!fresh) break;
  }
  const ids = [
    ...roots.filter((r) => NON_TERMINAL.has(r.status)).map((r) => r.id),
    ...[...status].filter(([, st]) => NON_TERMINAL.has(st)).map(([id]) => id),
  ];
  for (let i = 0; i < ids.length; i += 1000) await write(ex, JOB_CANCEL_MANY, [now, ids.slice(i, i + 1000)]);
  return ids;
}

/**
 * Counts terminal child outcomes on their fan-outs, decides each fan-out still running when its
 * strategy allows, resumes the parent on the deciding transition, and on a failed decision
 * cancels the unfinished siblings (and their subtrees), counting them as cancelled.
 * Fan-outs that no longer exist (dropped by a retry of the parent) are ignored.
 */
export async function accountFanOuts(ex: Executor, now: number | null, deltas: Map<string, FanOutDelta>): Promise<void> {
  if (deltas.size === 0) return;
  const ids = [...deltas.keys()].sort();
  const rows = await select(ex, FAN_OUT_LOCK_MANY, [now, ids]);
  for (const r of rows) {
    const f = toFanOutRow(r);
    const at = num(r['now_ms']);
    const d = deltas.get(f.id);
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
          await cancelSubtrees(ex, now, siblings);
          counts.cancelled += siblings.length;
        }
        await write(ex, FAN_OUT_WAKE_PARENT, [f.parentId]);
      }
    }
    await write(ex, FAN_OUT_UPDATE, [counts.succeeded, counts.failed, counts.cancelled, status, decidedAt, f.id]);
  }
}
