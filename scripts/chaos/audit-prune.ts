/**
 * The invariants of a chaos run, part 4: retention. What was deleted comes from the database's
 * own record (prune-archive.ts), never from the library:
 * - every pruned job was finished when deleted, and older than the age of its own status on the
 *   database clock (a workflow goes once every job in it is due: docs/retention.md);
 * - a workflow goes whole, in one prune: a sub-job only with its parent, in the same transaction
 *   as its root, with its checkpoints, fan-outs and signals; nothing left behind under a pruned
 *   job, and no checkpoint, fan-out or signal pruned without its job;
 * - no job is pruned twice, or comes back after its prune;
 * - every deletion that was not a prune is an operator retry's (the retried job moving back to
 *   live on PostgreSQL, or the descendants a retry drops): nothing else deletes jobs;
 * - after the drain, one last `queue.prune()` with no other process running leaves nothing due;
 * - `queue.prune()` called from several processes at once never fails.
 */
import { describeDeletion, type Deletion } from './audit-deletions.js';
import type { AuditInput } from './audit-data.js';
import type { Verdict } from './audit.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
/** A retry's deletions lie between its request and its answer (database and process share the host's clock). */
const RETRY_SLACK_MS = { before: 100, after: 5000 } as const;

/** What the pruning processes reported (pruning.ts). */
export interface PruneCallStats {
  processes: number;
  calls: number;
  deleted: number;
  errors: string[];
}

/** The age of a finished status under the run's retention, or null (kept forever / retention off). */
function ageOf(a: AuditInput, status: string): number | null {
  const r = a.retention;
  if (r === null || !TERMINAL.has(status)) return null;
  return r[status as keyof typeof r];
}

/** Pruned jobs were finished when deleted, each older than its own status's age (database clock). */
export function checkPrunedDue(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  for (const d of a.deletions) {
    if (!d.inPrune) continue;
    checked++;
    const j = d.job;
    if (!TERMINAL.has(j.status)) {
      v.push(`${describeDeletion(d)}: pruned while ${j.status}`);
      continue;
    }
    if (a.retention === null) {
      v.push(`${describeDeletion(d)}: pruned although the run keeps every finished job (--retention off)`);
      continue;
    }
    const age = ageOf(a, j.status);
    if (j.completedAt === null) {
      v.push(`${describeDeletion(d)}: pruned without a completion time`);
      continue;
    }
    if (j.completedAt > d.deletedAt) v.push(`${describeDeletion(d)}: finished ${j.completedAt - d.deletedAt} ms after it was deleted`);
    const older = d.deletedAt - j.completedAt;
    if (age === null) v.push(`${describeDeletion(d)}: pruned though its status is kept forever`);
    else if (older <= age) v.push(`${describeDeletion(d)}: pruned ${older} ms after it finished, but ${j.status} jobs are kept ${age} ms`);
  }
  return { name: 'pruned jobs finished and due (database clock)', checked, violations: v };
}

/**
 * Workflows are pruned whole, in one prune transaction: never a sub-job alone, nothing left
 * behind (no job, checkpoint, fan-out or signal of a pruned job stays), nothing of a job that
 * was not pruned with it.
 */
export function checkPrunedWhole(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  const txs = new Set<string>();
  for (const d of a.pruned.values()) {
    checked++;
    if (d.txKey !== null) txs.add(d.txKey);
    const parentId = d.job.parentId;
    if (parentId !== null) {
      const p = a.pruned.get(parentId);
      if (!p) {
        const live = a.jobs.get(parentId);
        v.push(`${describeDeletion(d)}: sub-job pruned without its parent (${live ? `still in sdj_jobs, ${live.status}` : 'never pruned'})`);
      } else if (p.txKey !== d.txKey) v.push(`${describeDeletion(d)}: pruned in another transaction than its parent (${describeDeletion(p)})`);
    }
    for (const k of a.children.get(d.job.id) ?? []) v.push(`job ${k.id} (${k.type}, ${k.status}) left in sdj_jobs under pruned ${describeDeletion(d)}`);
  }
  const left = (what: string, owner: string): void => {
    const d = a.pruned.get(owner);
    if (d) v.push(`${what} left in the database after its job was pruned: ${describeDeletion(d)}`);
  };
  for (const s of a.steps) if (!s.pruned) left(`step ${s.stepIndex} (${s.stepName}) of job ${s.jobId}`, s.jobId);
  for (const f of a.fanOuts) if (!f.pruned) left(`fan-out ${f.id} of job ${f.parentId}`, f.parentId);
  for (const g of a.signals) if (!g.pruned) left(`signal ${g.name} of job ${g.jobId}`, g.jobId);
  for (const x of a.strays) {
    const d = a.pruned.get(x.owner);
    v.push(`${x.what} of job ${x.owner} deleted at ${x.deletedAt} by a prune [${String(x.tx)}] that did not prune its job with it (${d ? describeDeletion(d) : a.jobs.has(x.owner) ? 'the job is still in sdj_jobs' : 'the job was never pruned'})`);
  }
  checked += a.strays.length;
  const scope = a.backend === 'mysql' ? ' (MySQL: one prune = one connection holding the lock, no other pruning in between)' : '';
  const rows = `${a.steps.filter((x) => x.pruned).length} checkpoints, ${a.fanOuts.filter((x) => x.pruned).length} fan-outs, ${a.signals.filter((x) => x.pruned).length} signals`;
  return { name: 'workflows pruned whole, in one transaction', checked, violations: v, note: `${txs.size} prune transactions deleted something, with ${rows}${scope}` };
}

/** No job is pruned twice, deleted again after its prune, or present again. */
export function checkPrunedOnce(a: AuditInput): Verdict {
  const v: string[] = [];
  const seen = new Map<string, Deletion>();
  for (const d of a.deletions) {
    const first = seen.get(d.job.id);
    if (first) v.push(`${describeDeletion(d)}: deleted again after its prune (${describeDeletion(first)})`);
    else if (d.inPrune) seen.set(d.job.id, d);
  }
  for (const [id, d] of a.pruned) {
    const live = a.jobs.get(id);
    if (live) v.push(`${describeDeletion(d)}: pruned, yet in sdj_jobs again (${live.status})`);
  }
  return { name: 'no job pruned twice or back after its prune', checked: a.pruned.size, violations: v };
}

/**
 * Every deletion outside a prune is an operator retry's: the retried job itself (PostgreSQL moves
 * it from history back to live) or a descendant it drops, while the retry was in flight.
 */
export function checkDeletionsExplained(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  let moves = 0;
  let drops = 0;
  const parentOf = new Map<string, string | null>();
  for (const j of a.all.values()) parentOf.set(j.id, j.parentId);
  for (const d of a.deletions) if (!parentOf.has(d.job.id)) parentOf.set(d.job.id, d.job.parentId);
  const retriedDuring = (id: string, at: number): boolean => {
    const r = a.ops.retries.get(id);
    return r?.requestedAt != null && at >= r.requestedAt - RETRY_SLACK_MS.before && at <= (r.appliedAt ?? Infinity) + RETRY_SLACK_MS.after;
  };
  for (const d of a.deletions) {
    if (d.inPrune) continue;
    checked++;
    if (retriedDuring(d.job.id, d.deletedAt)) {
      moves++;
      continue;
    }
    let up = d.job.parentId;
    let explained = false;
    for (let depth = 0; up !== null && up !== undefined && depth < 64 && !explained; depth++) {
      explained = retriedDuring(up, d.deletedAt);
      up = parentOf.get(up) ?? null;
    }
    if (explained) drops++;
    else v.push(`${describeDeletion(d)}: deleted outside any prune, and no operator retry of it or of a job above it was in flight`);
  }
  const note = `${moves} rows of retried jobs moved back to live (PostgreSQL), ${drops} descendants dropped by a retry`;
  return { name: 'every deletion is a prune or a retry', checked, violations: v, note };
}

/** After the drain, one last prune with no other process running leaves no due workflow behind. */
export function checkFinalPrune(a: AuditInput): Verdict {
  const name = 'nothing due left after the last prune';
  const f = a.finalPrune;
  if (a.retention === null || f === null) return { name, checked: 0, violations: [], note: 'retention off: nothing is due' };
  const v: string[] = [];
  if (f.error !== null) v.push(`the last queue.prune() failed: ${f.error}`);
  let checked = 0;
  // Due: the job and every job below it finished, each older than its own status's age.
  const due = (j: { id: string; status: string; completedAt: number | null }): boolean => {
    const age = ageOf(a, j.status);
    return age !== null && j.completedAt !== null && f.before - j.completedAt > age && (a.children.get(j.id) ?? []).every(due);
  };
  for (const j of a.jobs.values()) {
    if (j.parentId !== null || !TERMINAL.has(j.status) || j.completedAt === null) continue;
    checked++;
    if (due(j)) v.push(`${j.type} ${j.id} (${j.status}) finished ${f.before - j.completedAt} ms before the last prune began, with everything below it due, and was not pruned`);
  }
  return { name, checked, violations: v, note: `the last prune deleted ${f.deleted} jobs; ${checked} finished roots remain` };
}

/** `queue.prune()` from several processes at once never failed. */
export function checkPruneCalls(stats: PruneCallStats): Verdict {
  const v = stats.errors.map((e) => `queue.prune() failed: ${e}`);
  return { name: 'queue.prune() from several processes at once', checked: stats.calls, violations: v, note: `${stats.calls} calls from ${stats.processes} processes deleted ${stats.deleted} jobs` };
}
