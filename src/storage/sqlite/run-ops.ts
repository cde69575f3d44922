/**
 * The run path on SQLite: claim, finish, heartbeat, release, reclaim, wake. Each operation is
 * one synchronous `BEGIN IMMEDIATE` transaction (`ctx.write`) with `now` read once inside it.
 * @internal
 */
import { LEASE_EXPIRED_FAILED, LEASE_EXPIRED_RETRY } from '../shared/contract-messages.js';
import { compareClaimOrder } from '../shared/row-mapping.js';
import type { JobClaimParams, JobFinishItem, JobFinishManyParams, JobHeartbeatParams, JobReleaseParams, JobRow, ReclaimedJob } from '../storage.js';
import { accountFanOutOutcomes, cancelSubtrees, type ChildEnded } from './fan-out-accounting.js';
import { JOB_HAS_CHILDREN } from './queries/jobs.js';
import {
  JOB_CLAIM,
  JOB_FINISH_COMPLETED,
  JOB_FINISH_FAILED,
  JOB_FINISH_RETRY,
  JOB_HEARTBEAT,
  JOB_RECLAIM_EXPIRED,
  JOB_RELEASE,
  JOB_WAKE_DUE,
} from './queries/run.js';
import { toReclaimedJob, tupleToJobRow, type JobTuple, type ReclaimDbRow } from './rows.js';
import type { SqliteContext, Statements } from './statements.js';

/** Claims for every queue, returning rows in claim order (priority desc, run_at, id). */
export function jobClaim(ctx: SqliteContext, p: JobClaimParams): JobRow[] {
  return ctx.write((c, now) => claim(c, now, p));
}

function claim(c: Statements, now: number, p: JobClaimParams): JobRow[] {
  const stmt = c.raw(JOB_CLAIM);
  const out: JobRow[] = [];
  const leaseExpiresAt = now + p.leaseMs;
  for (const q of p.queues) {
    if (q.limit < 1) continue;
    const rows = stmt.all({ workerId: p.workerId, now, leaseExpiresAt, queue: q.name, limit: q.limit }) as JobTuple[];
    for (const r of rows) out.push(tupleToJobRow(r));
  }
  return out.length > 1 ? out.sort(compareClaimOrder) : out;
}

/**
 * Applies fenced outcomes item by item, with fan-out accounting; a job that failed with children
 * has its subtree cancelled (see {@link cancelChildrenOfFailed}). Returns, per item, the time
 * its outcome was stored at (the transaction's now), or null when its fence failed.
 */
export function jobFinishMany(ctx: SqliteContext, p: JobFinishManyParams): (number | null)[] {
  return ctx.write((c, now) => finishMany(c, now, p.items));
}

function finishMany(c: Statements, now: number, items: readonly JobFinishItem[]): (number | null)[] {
  const applied: boolean[] = [];
  const terminal: ChildEnded[] = [];
  const failed: string[] = [];
  const completed = c.st(JOB_FINISH_COMPLETED);
  for (const it of items) {
    if (it.outcome === 'completed') {
      const r = completed.get(it.resultJson, now, it.jobId, it.workerId, it.runCount) as { fan_out_id: string | null } | undefined;
      applied.push(r !== undefined);
      if (r !== undefined && r.fan_out_id !== null) terminal.push({ fanOutId: r.fan_out_id, outcome: 'succeeded' });
      continue;
    }
    const fence = { id: it.jobId, workerId: it.workerId, runCount: it.runCount };
    switch (it.outcome) {
      case 'failed': {
        const r = c.st(JOB_FINISH_FAILED).get({ ...fence, error: it.error, now }) as { fan_out_id: string | null } | undefined;
        applied.push(r !== undefined);
        if (r !== undefined) {
          terminal.push({ fanOutId: r.fan_out_id, outcome: 'failed' });
          failed.push(it.jobId);
        }
        break;
      }
      case 'retry': {
        const runAt = now + Math.max(0, it.delayMs);
        applied.push(c.st(JOB_FINISH_RETRY).run({ ...fence, error: it.error, runAt }).changes === 1);
        break;
      }
    }
  }
  accountFanOutOutcomes(c, now, terminal);
  cancelChildrenOfFailed(c, now, failed);
  // Every outcome is stored at the transaction's now (completed_at of completed and failed rows).
  return applied.map((ok) => (ok ? now : null));
}

/**
 * Cancels the unfinished descendants of jobs that just failed, like `jobCancel` cancels a
 * subtree (the cancelled fan-out children are counted on their fan-outs). Only jobs that have a
 * child are walked (one indexed probe each), so a plain failure costs no subtree walk.
 */
function cancelChildrenOfFailed(c: Statements, now: number, failedIds: readonly string[]): void {
  if (failedIds.length === 0) return;
  const probe = c.st(JOB_HAS_CHILDREN);
  const parents = failedIds.filter((id) => probe.get(id) !== undefined);
  // The failed roots are terminal, so only their non-terminal descendants change.
  cancelSubtrees(c, now, parents);
}

/** Extends the leases of the runs this worker still holds; returns their job ids. */
export function jobHeartbeat(ctx: SqliteContext, p: JobHeartbeatParams): string[] {
  return ctx.write((c, now) => {
    const stmt = c.st(JOB_HEARTBEAT);
    const leaseExpiresAt = now + p.leaseMs;
    const held: string[] = [];
    for (const r of p.runs) {
      if (stmt.run({ id: r.jobId, workerId: p.workerId, runCount: r.runCount, now, leaseExpiresAt }).changes === 1) held.push(r.jobId);
    }
    return held;
  });
}

/** Fenced release back to pending (attempt given back); returns the ids released. */
export function jobRelease(ctx: SqliteContext, p: JobReleaseParams): string[] {
  return ctx.write((c) => {
    const stmt = c.st(JOB_RELEASE);
    const released: string[] = [];
    for (const r of p.runs) {
      if (stmt.run({ id: r.jobId, workerId: r.workerId, runCount: r.runCount }).changes === 1) released.push(r.jobId);
    }
    return released;
  });
}

/**
 * Takes back expired leases (oldest first), with fan-out accounting for jobs that failed; a job
 * failed with children has its subtree cancelled.
 */
export function jobReclaimExpired(ctx: SqliteContext, p: { limit: number }): ReclaimedJob[] {
  return ctx.write((c, now) => {
    const rows = c.st(JOB_RECLAIM_EXPIRED).all({ now, limit: p.limit, retryError: LEASE_EXPIRED_RETRY, failError: LEASE_EXPIRED_FAILED }) as ReclaimDbRow[];
    const failed = rows.filter((r) => r.status === 'failed');
    accountFanOutOutcomes(
      c,
      now,
      failed.map((r) => ({ fanOutId: r.fan_out_id, outcome: 'failed' as const })),
    );
    cancelChildrenOfFailed(c, now, failed.map((r) => r.id));
    return rows.map(toReclaimedJob).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  });
}

/** Wakes due sleepers and parents of decided fan-outs; returns the ids woken. */
export function jobWakeDue(ctx: SqliteContext, p: { limit: number }): string[] {
  return ctx.write((c, now) => (c.st(JOB_WAKE_DUE).all({ now, limit: p.limit }) as { id: string }[]).map((r) => r.id));
}
