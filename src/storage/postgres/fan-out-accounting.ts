/**
 * Fan-out accounting, run inside the transaction that moved children to a terminal status.
 * The statements that finish, reclaim or cancel children already counted them on their
 * (locked) fan-outs and returned the updated rows; here each fan-out is decided with the shared
 * rule, its parent resumed on the deciding transition only, and on a failed decision the
 * unfinished siblings and their subtrees are cancelled (and counted in turn, until nothing
 * changes).
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
import { decideFanOut } from '../fan-out-rules.js';
import type { FanOutRow } from '../storage.js';
import type { PgQueryableLike } from './connection.js';
import type { PgExec } from './executor.js';
import { FAN_OUT_DECIDE, JOB_CANCEL_MANY, JOB_CANCEL_START, JOB_CHILDREN } from './queries/ops.js';
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
  const more = await settleFanOuts(x, c, res.now, fans);
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
 * Decides the fan-outs whose counters allow it (the rows come from statements that locked and
 * counted them in this transaction), resumes their parents, and cancels the unfinished
 * children of failed ones. Returns the ids cancelled in consequence.
 */
export async function settleFanOuts(x: PgExec, c: PgQueryableLike, now: number | null, rows: FanOutDbRow[] | null): Promise<string[]> {
  const fans = new Map<string, FanOutRow>();
  const merge = (list: FanOutDbRow[] | null): void => {
    for (const r of list ?? []) fans.set(r.id, toFanOutRow(r));
  };
  merge(rows);
  const cancelled: string[] = [];
  for (;;) {
    const ready = [...fans.values()].flatMap((f) => {
      if (f.status !== 'running') return [];
      const d = decideFanOut(f);
      return d === 'running' ? [] : [{ f, d }];
    });
    if (ready.length === 0) return cancelled;
    const decided = await x.rows<{ id: string; status: string }>(
      FAN_OUT_DECIDE,
      [now, ready.map((r) => r.f.id), ready.map((r) => r.d), x.channel],
      c,
    );
    for (const r of ready) r.f.status = r.d;
    const failed = decided.filter((r) => r.status === 'failed').map((r) => r.id);
    if (failed.length === 0) continue;
    const more: FanOutDbRow[] = [];
    const res = await cancelPasses(x, c, now, { fanOuts: failed }, more);
    cancelled.push(...res.ids);
    merge(more);
  }
}
