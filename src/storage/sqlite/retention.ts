/**
 * Retention of the SQLite driver: `jobPrune`.
 * @internal
 */
import { checkPruneParams, PRUNED_STATUSES, type CheckedPrune } from '../shared/prune-params.js';
import type { JobPruneParams, JobPruneResult } from '../storage.js';
import { JOB_DELETE_MANY, JOB_PRUNE_ROOTS, JOB_SUBTREES } from './queries/jobs.js';
import { RATE_STATE_PRUNE } from './queries/limits.js';
import { FAN_OUT_DELETE_FOR_PARENTS, SIGNAL_DELETE_FOR_JOBS, STEP_DELETE_FOR_JOBS } from './queries/workflow.js';
import type { SqliteContext, Statements } from './statements.js';
import { isTransientError } from './translate-error.js';

/**
 * Deletes up to `limit` finished workflows — roots with their whole subtree, every job of which
 * has passed its own status's age (`now - completed_at > age`) — with the checkpoints, signals
 * and fan-outs of every job deleted, in one `BEGIN IMMEDIATE` transaction on the transaction's
 * now. Roots of each status are taken oldest first, `completed` before `failed` before
 * `cancelled`. The same transaction deletes the rate state whose tat passed a minute ago (also when no age
 * is given: that state is dropped on every call).
 *
 * SQLite has no row locks to skip: the transaction holds the file's write lock, so it is the
 * only writer (and the only prune) while it runs, and it runs no longer than `limit` roots take.
 * `busy` is true only when the write lock could not be had within the connection's busy timeout
 * (another connection, in this process or another, held it all along): nothing was deleted, and
 * the caller may try again later instead of seeing an error.
 * @throws InvalidArgumentError on an age or limit `checkPruneParams` refuses
 */
export function jobPrune(ctx: SqliteContext, p: JobPruneParams): JobPruneResult {
  const checked = checkPruneParams(p);
  try {
    return ctx.write((c, now) => {
      c.st(RATE_STATE_PRUNE).run(now);
      return checked.nothing ? { deleted: 0, roots: 0, busy: false } : pruneRoots(c, now, checked);
    });
  } catch (e) {
    if (isTransientError(e)) return { deleted: 0, roots: 0, busy: true };
    throw e;
  }
}

function pruneRoots(c: Statements, now: number, p: CheckedPrune): JobPruneResult {
  const cutoff = (age: number | null): number | null => (age === null ? null : now - age);
  const cutoffs = { completed: cutoff(p.ages.completed), failed: cutoff(p.ages.failed), cancelled: cutoff(p.ages.cancelled) };
  const roots: string[] = [];
  for (const status of PRUNED_STATUSES) {
    const left = p.limit - roots.length;
    if (cutoffs[status] === null || left <= 0) continue;
    const due = c.st(JOB_PRUNE_ROOTS).all({ status, cutoff: cutoffs[status], ...cutoffs, limit: left }) as { id: string }[];
    for (const r of due) roots.push(r.id);
  }
  if (roots.length === 0) return { deleted: 0, roots: 0, busy: false };
  const all = JSON.stringify((c.st(JOB_SUBTREES).all(JSON.stringify(roots)) as { id: string }[]).map((r) => r.id));
  c.st(STEP_DELETE_FOR_JOBS).run(all);
  c.st(SIGNAL_DELETE_FOR_JOBS).run(all);
  c.st(FAN_OUT_DELETE_FOR_PARENTS).run(all);
  const deleted = c.st(JOB_DELETE_MANY).run(all).changes;
  return { deleted, roots: roots.length, busy: false };
}
