/**
 * Fan-out accounting, run inside the transaction that moved children to a terminal status:
 * count them on their fan-outs, decide each fan-out with the shared rule, resume the parent
 * (waiting → pending) on the deciding transition only, and on a failed decision cancel the
 * unfinished siblings and their subtrees (which are counted in turn, until nothing changes).
 * @internal
 */
import { decideFanOut } from '../fan-out-rules.js';
import type { FanOutRow } from '../storage.js';
import { JOB_CANCEL_FAN_OUT_CHILDREN, JOB_CANCEL_SUBTREES } from './queries/jobs.js';
import { FAN_OUT_ADD_COUNTS, FAN_OUT_DECIDE, JOB_RESUME_WAITING_PARENT } from './queries/workflow.js';
import { toFanOutRow, type FanOutDbRow } from './rows.js';
import type { Statements } from './statements.js';

/** How a child ended, as counted on its fan-out. */
export type ChildOutcome = 'succeeded' | 'failed' | 'cancelled';

/** A job that just reached a terminal status, with its fan-out (if any). */
export interface TerminalChild {
  fanOutId: string | null;
  outcome: ChildOutcome;
}

/** A job cancelled by a subtree cancel (`RETURNING id, fan_out_id`). */
interface CancelledDbRow {
  id: string;
  fan_out_id: string | null;
}

type Counts = Record<ChildOutcome, number>;

/**
 * Accounts for jobs that just became terminal. Returns the ids of the jobs this cancelled in
 * consequence (siblings of failed fan-outs and their subtrees).
 */
export function accountTerminal(c: Statements, now: number, children: Iterable<TerminalChild>): string[] {
  const work = new Map<string, Counts>();
  const add = (fanOutId: string | null, outcome: ChildOutcome): void => {
    if (fanOutId === null) return;
    let d = work.get(fanOutId);
    if (d === undefined) {
      d = { succeeded: 0, failed: 0, cancelled: 0 };
      work.set(fanOutId, d);
    }
    d[outcome]++;
  };
  for (const ch of children) add(ch.fanOutId, ch.outcome);

  const cancelled: string[] = [];
  for (let next = work.entries().next(); !next.done; next = work.entries().next()) {
    const [id, d] = next.value;
    work.delete(id);
    const row = c.st(FAN_OUT_ADD_COUNTS).get({ id, ...d }) as FanOutDbRow | undefined;
    if (row === undefined || row.status !== 'running') continue;
    const f = toFanOutRow(row);
    const decision = decideFanOut(f);
    if (decision === 'running') continue;
    settleDecision(c, now, f, decision);
    if (decision === 'failed') {
      for (const r of c.st(JOB_CANCEL_FAN_OUT_CHILDREN).all({ fanOutId: id, now }) as CancelledDbRow[]) {
        cancelled.push(r.id);
        add(r.fan_out_id, 'cancelled');
      }
    }
  }
  return cancelled;
}

/**
 * Records a decision on a running fan-out and, on that deciding transition only, turns its
 * parent from `waiting` to `pending`. Returns whether this call decided it.
 */
export function settleDecision(c: Statements, now: number, f: Pick<FanOutRow, 'id' | 'parentId'>, decision: 'succeeded' | 'failed'): boolean {
  if (c.st(FAN_OUT_DECIDE).run({ id: f.id, status: decision, now }).changes !== 1) return false;
  c.st(JOB_RESUME_WAITING_PARENT).run(f.parentId);
  return true;
}

/**
 * Cancels every non-terminal job of the subtrees rooted at `roots` and accounts for those
 * that were fan-out children. Returns every id cancelled, roots first as given, then the rest.
 */
export function cancelSubtrees(c: Statements, now: number, roots: string[]): string[] {
  if (roots.length === 0) return [];
  const rows = c.st(JOB_CANCEL_SUBTREES).all({ roots: JSON.stringify(roots), now }) as CancelledDbRow[];
  const ids = rows.map((r) => r.id);
  const rootSet = new Set(roots);
  ids.sort((a, b) => Number(rootSet.has(b)) - Number(rootSet.has(a)) || roots.indexOf(a) - roots.indexOf(b));
  const more = accountTerminal(
    c,
    now,
    rows.map((r) => ({ fanOutId: r.fan_out_id, outcome: 'cancelled' as const })),
  );
  return [...ids, ...more];
}

/** Cancels the unfinished children (and subtrees) of a fan-out and accounts for them. */
export function cancelFanOutChildren(c: Statements, now: number, fanOutId: string): string[] {
  const rows = c.st(JOB_CANCEL_FAN_OUT_CHILDREN).all({ fanOutId, now }) as CancelledDbRow[];
  const more = accountTerminal(
    c,
    now,
    rows.map((r) => ({ fanOutId: r.fan_out_id, outcome: 'cancelled' as const })),
  );
  return [...rows.map((r) => r.id), ...more];
}
