/**
 * Fan-out accounting, run inside the transaction that moved children to a terminal status.
 * The statements that finish, reclaim or cancel children already counted them on their
 * (locked) fan-outs and returned the updated rows; here each fan-out is settled with the shared
 * rule (shared/fan-out-settle.ts), its parent resumed on the deciding transition only, and on a
 * failed decision the unfinished siblings and their subtrees are cancelled (and counted in
 * turn, until nothing changes).
 *
 * Lock order, in every transaction of the driver that touches both: the fan-outs it may count
 * on, in id order, before any job row — those of the jobs it ends and, for jobs it fails or
 * cancels with their subtrees, those below them (`jobFinishMany`, `jobReclaimExpired`,
 * `jobCancel`, `fanOutExpire`, `jobRetry`). A fan-out's row thereby serializes everything that
 * counts on it. The one exception is a cascade: a failed decision cancels the unfinished
 * siblings' subtrees, whose own fan-outs (always created after the one decided) are locked as
 * they are found; a deadlock there is detected by the server and the transaction retried whole.
 * @internal
 */
import { settleCountedFanOut, type FanOutSettlement } from '../shared/fan-out-settle.js';
import type { FanOutRow } from '../storage.js';
import type { PgQueryableLike } from './connection.js';
import type { PgExec } from './executor.js';
import { FAN_OUT_DECIDE, FAN_OUT_EXPIRE, FAN_OUT_LOCK_FOR_JOBS, JOB_CANCEL_MANY, JOB_CANCEL_START, JOB_CHILDREN } from './queries/fan-out.js';
import { toFanOutRow, toInt, type FanOutDbRow } from './rows.js';

/** The result row of `JOB_CANCEL_MANY`. */
interface CancelDbRow {
  ids: string[] | null;
  fans: FanOutDbRow[] | null;
  now: string;
}

/** Where a subtree cancel starts. */
export interface CancelStart {
  /** Jobs cancelled (when still non-terminal) with their subtrees. */
  roots?: string[];
  /** Fan-outs whose non-terminal children are cancelled with their subtrees. */
  fanOuts?: string[];
  /**
   * Jobs (already terminal, e.g. just failed) whose whole subtree below them is cancelled, as
   * `jobCancel` would; the jobs themselves are left as they are.
   */
  under?: string[];
}

/** What a subtree cancel did. */
export interface CancelResult {
  /** Every job cancelled, in the order found. */
  ids: string[];
  /** How many of the roots exist. */
  found: number;
}

/**
 * Cancels subtrees and accounts for the cancelled fan-out children (deciding their fan-outs,
 * which may cancel more). A second pass, in a fresh snapshot, catches children that a job
 * suspending into a fan-out committed while this transaction waited for its row lock.
 */
export async function cancelSubtrees(x: PgExec, c: PgQueryableLike, now: number | null, start: CancelStart): Promise<CancelResult> {
  const fans: FanOutDbRow[] = [];
  const res = await cancelPasses(x, c, now, start, fans);
  const more = await accountFanOutOutcomes(x, c, res.now, fans);
  return { ids: [...res.ids, ...more], found: res.found };
}

/**
 * Every descendant of `ids` (over parent_id), walked level by level, `ids` excluded.
 */
export async function descendants(x: PgExec, c: PgQueryableLike, ids: readonly string[]): Promise<string[]> {
  const seen = new Set(ids);
  const out: string[] = [];
  let level = [...ids];
  while (level.length > 0) {
    const next: string[] = [];
    for (const r of await x.rows<{ id: string }>(JOB_CHILDREN, [level], c)) {
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      next.push(r.id);
    }
    out.push(...next);
    level = next;
  }
  return out;
}

/**
 * Cancel passes until one cancels nothing: each walks the subtrees (from the start, then from
 * what the previous pass cancelled) in fresh snapshots and cancels what is still non-terminal.
 * `now` is fixed by the first cancel when null.
 */
async function cancelPasses(
  x: PgExec,
  c: PgQueryableLike,
  now: number | null,
  start: CancelStart,
  fans: FanOutDbRow[],
): Promise<CancelResult & { now: number | null }> {
  const roots = start.roots ?? [];
  const fanOuts = start.fanOuts ?? [];
  const under = start.under ?? [];
  let found = 0;
  let from: string[] = [];
  if (roots.length > 0 || fanOuts.length > 0) {
    const first = await x.one<{ ids: string[] | null; found: string }>(JOB_CANCEL_START, [roots, fanOuts], c);
    found = toInt(first?.found ?? 0);
    from = first?.ids ?? [];
  }
  const ids: string[] = [];
  let t = now;
  let firstPass = true;
  while (from.length > 0 || (firstPass && under.length > 0)) {
    // `descendants` excludes the ids it starts from: `under` itself is never a target.
    const targets = firstPass ? [...from, ...(await descendants(x, c, [...from, ...under]))] : await descendants(x, c, from);
    firstPass = false;
    if (targets.length === 0) break;
    const r = await x.one<CancelDbRow>(JOB_CANCEL_MANY, [t, targets], c);
    if (r === undefined) break;
    t = toInt(r.now);
    from = r.ids ?? [];
    ids.push(...from);
    fans.push(...(r.fans ?? []));
  }
  return { ids, found, now: t };
}

/**
 * Locks, in id order, the fan-outs the jobs `jobIds` are children of: the first step of every
 * transaction that may count on fan-outs (before any job row is locked).
 */
export async function lockFanOutsOf(x: PgExec, c: PgQueryableLike, jobIds: readonly string[]): Promise<void> {
  await x.rows(FAN_OUT_LOCK_FOR_JOBS, [jobIds], c);
}

/**
 * Settles fan-outs whose children a statement of this transaction just counted (`rows`: the
 * updated fan-out rows it returned, locked): each is decided by the shared rule when its
 * strategy allows, its parent resumed on the deciding transition, and a failed one's
 * unfinished children cancelled with their subtrees (which are counted and settled in turn).
 * Returns the ids cancelled in consequence.
 */
export async function accountFanOutOutcomes(x: PgExec, c: PgQueryableLike, now: number | null, rows: FanOutDbRow[] | null): Promise<string[]> {
  const fans = new Map<string, FanOutRow>();
  const merge = (list: FanOutDbRow[] | null): void => {
    for (const r of list ?? []) fans.set(r.id, toFanOutRow(r));
  };
  merge(rows);
  const cancelled: string[] = [];
  for (;;) {
    const ready: { f: FanOutRow; s: FanOutSettlement & { decided: 'succeeded' | 'failed' } }[] = [];
    for (const f of fans.values()) {
      const s = settleCountedFanOut(f);
      if (s.decided !== null) ready.push({ f, s: { ...s, decided: s.decided } });
    }
    if (ready.length === 0) return cancelled;
    // One statement decides them all; the parents are resumed there, on the deciding transition.
    const decided = await x.rows<{ id: string }>(FAN_OUT_DECIDE, [now, ready.map((r) => r.f.id), ready.map((r) => r.s.decided), x.channel], c);
    const applied = new Set(decided.map((r) => r.id));
    const failing: string[] = [];
    for (const { f, s } of ready) {
      f.status = s.decided;
      if (applied.has(f.id) && s.cancelUnfinishedChildren) failing.push(f.id);
    }
    if (failing.length === 0) continue;
    const more: FanOutDbRow[] = [];
    const res = await cancelPasses(x, c, now, { fanOuts: failing }, more);
    cancelled.push(...res.ids);
    merge(more);
  }
}

/**
 * Fails the running fan-out `id` if its deadline passed: the fan-out and those below its
 * unfinished children are locked first (id order, before any job row), the fan-out fails and
 * its parent resumes, then its unfinished children and their subtrees are cancelled (counted
 * as cancelled). Returns whether it applied. Used by `fanOutExpire` and `fanOutCollect`.
 */
export async function expireFanOut(x: PgExec, c: PgQueryableLike, id: string): Promise<boolean> {
  const kids = (await x.one<{ ids: string[] | null }>(JOB_CANCEL_START, [[], [id]], c))?.ids ?? [];
  if (kids.length > 0) await lockFanOutsOf(x, c, [...kids, ...(await descendants(x, c, kids))]);
  const r = await x.one<{ now: string }>(FAN_OUT_EXPIRE, [x.now(), id, x.channel], c);
  if (r === undefined) return false;
  await cancelSubtrees(x, c, toInt(r.now), { fanOuts: [id] });
  return true;
}
