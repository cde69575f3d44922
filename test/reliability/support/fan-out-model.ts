/**
 * The fan-out rules of the storage contract (src/storage/storage.ts: the module header,
 * `FanOutRow`, `jobFinishMany`, `jobReclaimExpired`, `jobCancel`, `jobRetry`, `jobWakeDue`,
 * `fanOutExpire`), written down independently of the drivers for the model-based test:
 *
 * - A fan-out's counters always equal its children's current terminal states: completed
 *   children are `succeeded`, failed ones `failed`, cancelled ones `cancelled`; a child that
 *   is not terminal (never ended, or retried by an operator) counts nowhere.
 * - A running fan-out is decided as soon as its strategy allows (below); the decision is made
 *   once and never reopened, whatever happens to the counters later (a retried child).
 * - The deciding transition turns the parent from `waiting` to `pending` (once: it is the only
 *   transition); nothing else wakes a parent, except its own deadline (`jobWakeDue`) and the
 *   recovery sweep for a parent waiting on an already decided fan-out.
 * - A failed decision cancels the unfinished children and their subtrees, counted in turn.
 * - A job that fails (outcome or lease reclaim) cancels its unfinished descendants; a job
 *   cancelled by an operator takes its whole subtree with it.
 * - A retried job drops its checkpoints, its fan-outs and all its descendants.
 * @module
 */
import type { FanOutRow } from '../../../src/storage/storage.js';
import { count, jobOf, NON_TERMINAL, TERMINAL, type MFanOut, type MJob, type Model } from './model-core.js';

/** A fan-out's counters as the contract defines them: from its children's current states. */
export function countsOf(m: Model, f: MFanOut): Pick<FanOutRow, 'succeeded' | 'failed' | 'cancelled'> {
  const c = { succeeded: 0, failed: 0, cancelled: 0 };
  for (const j of m.jobs) {
    if (j.fanOutId !== f.id) continue;
    if (j.status === 'completed') c.succeeded++;
    else if (j.status === 'failed') c.failed++;
    else if (j.status === 'cancelled') c.cancelled++;
  }
  return c;
}

/**
 * The decision rule of `FanOutRow` over `total` children (thresholds used by the model are
 * exact binary fractions, so `threshold * total` carries no rounding noise).
 */
export function decide(f: MFanOut, c: Pick<FanOutRow, 'succeeded' | 'failed' | 'cancelled'>): FanOutRow['status'] {
  const bad = c.failed + c.cancelled;
  if (f.strategy === 'fail-fast') return bad >= 1 ? 'failed' : c.succeeded === f.total ? 'succeeded' : 'running';
  if (f.strategy === 'collect-all') return c.succeeded + bad === f.total ? 'succeeded' : 'running';
  const need = Math.ceil((f.threshold ?? 1) * f.total);
  if (c.succeeded >= need) return 'succeeded';
  return bad > f.total - need ? 'failed' : 'running';
}

/** The fan-outs a job owns, by step index. */
export function fanOutsOf(m: Model, jobId: string): MFanOut[] {
  return m.fanOuts.filter((f) => f.parentId === jobId).sort((a, b) => a.stepIndex - b.stepIndex);
}

/** Every descendant of a job (over parent_id, whatever their status), nearest first. */
export function descendants(m: Model, id: string): MJob[] {
  const out: MJob[] = [];
  let level = [id];
  while (level.length > 0) {
    const next = m.jobs.filter((j) => j.parentId !== null && level.includes(j.parentId));
    out.push(...next);
    level = next.map((j) => j.id);
  }
  return out;
}

/** Cancels the non-terminal jobs among `jobs`; returns their ids. */
function cancelAll(m: Model, jobs: MJob[]): string[] {
  const ids: string[] = [];
  for (const j of jobs) {
    if (!NON_TERMINAL.has(j.status)) continue;
    Object.assign(j, { status: 'cancelled', completedAt: m.now, lockedBy: null, leaseExpiresAt: null, wakeAt: null });
    ids.push(j.id);
  }
  return ids;
}

/** `jobCancel` of a non-terminal job: it and its whole subtree, then the fan-out accounting. */
export function cancelSubtree(m: Model, root: MJob): string[] {
  const ids = cancelAll(m, [root, ...descendants(m, root.id)]);
  return [...ids, ...settle(m)];
}

/**
 * Jobs that just ended in one transaction (outcomes or reclaims): the unfinished descendants
 * of the failed ones are cancelled, then the fan-outs account for all of it. Returns the ids
 * cancelled.
 */
export function ended(m: Model, jobs: MJob[]): string[] {
  const below = jobs.filter((j) => j.status === 'failed').flatMap((j) => descendants(m, j.id));
  return [...cancelAll(m, below), ...settle(m)];
}

/** Cancels the unfinished children of a fan-out and their subtrees. */
function cancelChildren(m: Model, f: MFanOut): string[] {
  const open = m.jobs.filter((j) => j.fanOutId === f.id && NON_TERMINAL.has(j.status));
  return cancelAll(m, [...open, ...open.flatMap((j) => descendants(m, j.id))]);
}

/** Records a decision and wakes the parent if it waits. */
function decideNow(m: Model, f: MFanOut, status: 'succeeded' | 'failed'): string[] {
  Object.assign(f, { status, decidedAt: m.now });
  count(m.notes, `fan-outs ${status}`);
  const parent = jobOf(m, f.parentId);
  if (parent?.status === 'waiting') {
    Object.assign(parent, { status: 'pending', wakeAt: null });
    count(m.notes, 'parents woken by a decision');
  }
  return status === 'failed' ? cancelChildren(m, f) : [];
}

/**
 * Decides every running fan-out its counters now decide, until nothing changes (a failed
 * decision cancels children, which may decide their own fan-outs). The order does not matter:
 * within one transaction counters only grow, and no counters satisfy both outcomes of a rule.
 * Returns the ids this cancelled.
 */
export function settle(m: Model): string[] {
  const cancelled: string[] = [];
  for (let again = true; again; ) {
    again = false;
    for (const f of m.fanOuts) {
      if (f.status !== 'running') continue;
      const d = decide(f, countsOf(m, f));
      if (d === 'running') continue;
      cancelled.push(...decideNow(m, f, d));
      again = true;
    }
  }
  return cancelled;
}

/** `fanOutExpire`: applies to a running fan-out whose deadline has come. */
export function expire(m: Model, f: MFanOut): { applied: boolean; cancelled: string[] } {
  if (f.status !== 'running' || f.deadlineAt === null || f.deadlineAt > m.now) return { applied: false, cancelled: [] };
  const first = decideNow(m, f, 'failed');
  return { applied: true, cancelled: [...first, ...settle(m)] };
}

/**
 * `jobRetry` of a failed or cancelled job: back to pending, its checkpoints, fan-outs and
 * descendants dropped. Returns what was dropped (for the caller's checks).
 */
export function retry(m: Model, j: MJob): { jobs: MJob[]; fanOuts: MFanOut[] } {
  const gone = descendants(m, j.id);
  const owners = new Set([j.id, ...gone.map((d) => d.id)]);
  const fanOuts = m.fanOuts.filter((f) => owners.has(f.parentId));
  m.jobs = m.jobs.filter((x) => !gone.includes(x));
  m.fanOuts = m.fanOuts.filter((f) => !fanOuts.includes(f));
  Object.assign(j, { status: 'pending', attempt: 0, runAt: m.now, completedAt: null, lockedBy: null, leaseExpiresAt: null, wakeAt: null });
  return { jobs: gone, fanOuts };
}

/**
 * `jobWakeDue`: waiting jobs whose wake_at has come, and waiting parents whose latest
 * checkpoint is an already decided fan-out (the recovery sweep). Returns their ids.
 */
export function wakeDue(m: Model): string[] {
  const woken: string[] = [];
  for (const j of m.jobs) {
    if (j.status !== 'waiting') continue;
    const latest = fanOutsOf(m, j.id).at(-1);
    const due = j.wakeAt !== null && j.wakeAt <= m.now;
    if (!due && (latest === undefined || latest.status === 'running')) continue;
    Object.assign(j, { status: 'pending', wakeAt: null });
    woken.push(j.id);
  }
  return woken;
}

/** Self-checks of the model: no running fan-out its counters decide; counters within total. */
export function modelInvariants(m: Model): string | null {
  for (const f of m.fanOuts) {
    const c = countsOf(m, f);
    if (c.succeeded + c.failed + c.cancelled > f.total) return `fan-out ${f.id} counts more than its ${f.total} children`;
    if (f.status === 'running' && decide(f, c) !== 'running') return `fan-out ${f.id} left undecided`;
  }
  for (const j of m.jobs) if (TERMINAL.has(j.status) && j.lockedBy !== null) return `terminal job ${j.id} still locked`;
  return null;
}
