/**
 * The hot path of the PostgreSQL driver: claim, finish, heartbeat, release, reclaim
 * and timed wake-ups, each one statement (one round trip) in the common case.
 * @internal
 */
import { LEASE_EXPIRED_FAILED, LEASE_EXPIRED_RETRY } from '../shared/contract-messages.js';
import type {
  JobClaimParams,
  JobFinishManyParams,
  JobHeartbeatParams,
  JobReleaseParams,
  JobRow,
  ReclaimedJob,
} from '../storage.js';
import { STATEMENT_TEXT_BUDGET, finishArrays, finishInParts, finishText } from './batch-parts.js';
import { withTx } from './connection.js';
import type { PgExec } from './executor.js';
import { accountFanOutOutcomes, cancelSubtrees, descendants, lockFanOutsOf } from './fan-out-accounting.js';
import {
  JOB_CLAIM_MANY,
  JOB_CLAIM_ONE,
  JOB_FINISH_CHILDREN,
  JOB_FINISH_COMPLETED,
  JOB_FINISH_PLAIN,
  JOB_HEARTBEAT,
  JOB_RECLAIM_CANDIDATES,
  JOB_RECLAIM_EXPIRED,
  JOB_RELEASE,
  JOB_WAKE_DUE,
} from './queries/run.js';
import { compareClaimOrder, toInt, toJobRow, toReclaimedJob, type FanOutDbRow, type JobDbRow } from './rows.js';

/**
 * `Storage.jobClaim`: one statement for every queue (a single-queue worker, the common case,
 * uses a statement whose generic plan PostgreSQL caches; see `queries/run.ts`). Rows are
 * returned in claim order.
 */
export async function jobClaim(x: PgExec, p: JobClaimParams): Promise<JobRow[]> {
  // One entry per queue (a name listed twice keeps its largest limit).
  const limits = new Map<string, number>();
  for (const q of p.queues) if (q.limit >= 1) limits.set(q.name, Math.max(limits.get(q.name) ?? 0, Math.trunc(q.limit)));
  if (limits.size === 0) return [];
  const lease = Math.trunc(p.leaseMs);
  let rows: JobDbRow[];
  if (limits.size === 1) {
    const [name, limit] = limits.entries().next().value as [string, number];
    rows = await x.rows<JobDbRow>(JOB_CLAIM_ONE, [x.now(), name, limit, p.workerId, lease]);
  } else {
    const queues = [...limits];
    rows = await x.rows<JobDbRow>(JOB_CLAIM_MANY, [x.now(), queues.map((q) => q[0]), queues.map((q) => q[1]), p.workerId, lease]);
  }
  const out = rows.map(toJobRow);
  return out.length > 1 ? out.sort(compareClaimOrder) : out;
}

/** True when every item is a completion of a distinct job (the fast path). */
function allCompleted(items: JobFinishManyParams['items']): boolean {
  const ids = new Set<string>();
  for (const i of items) {
    if (i.outcome !== 'completed' || ids.has(i.jobId)) return false;
    ids.add(i.jobId);
  }
  return true;
}

/**
 * `Storage.jobFinishMany`: one autocommit statement applies everything that needs no fan-out
 * accounting and no subtree cancel; terminal outcomes of fan-out children, and failures of jobs
 * that have children, then apply in one transaction that locks the fan-outs first (those of the
 * finishing jobs and of the failing jobs' descendants), counts and decides them, and cancels the
 * failing jobs' unfinished descendants. A batch whose payloads exceed one statement's budget is
 * applied in parts, in one transaction (`finishInParts`).
 */
export async function jobFinishMany(x: PgExec, p: JobFinishManyParams): Promise<(number | null)[]> {
  const items = p.items;
  const stored: (number | null)[] = items.map(() => null);
  if (items.reduce((n, i) => n + finishText(i), 0) > STATEMENT_TEXT_BUDGET) return finishInParts(x, items);
  const rows = allCompleted(items)
    ? await x.rows<{ ord: string; deferred: boolean; walk?: boolean; at: string | null }>(JOB_FINISH_COMPLETED, [
        x.now(),
        items.map((i) => i.jobId),
        items.map((i) => i.workerId),
        items.map((i) => Math.trunc(i.runCount)),
        items.map((i) => (i.outcome === 'completed' ? i.resultJson : null)),
      ])
    : await x.rows<{ ord: string; deferred: boolean; walk?: boolean; at: string | null }>(JOB_FINISH_PLAIN, [x.now(), ...finishArrays(items), x.channel]);
  const deferred: number[] = [];
  const walk = new Set<string>();
  for (const r of rows) {
    const i = toInt(r.ord) - 1;
    if (r.deferred) deferred.push(i);
    else stored[i] = toInt(r.at as string);
    if (r.deferred && r.walk) walk.add(items[i]!.jobId);
  }
  if (deferred.length === 0) return stored;
  const children = deferred.map((i) => items[i]!);
  const done = await withTx(x.pool, async (c) => {
    // Lock order: every fan-out this may count on (the finishing jobs' and, for failures with
    // children, their descendants'), in id order, before any job row.
    const below = walk.size > 0 ? await descendants(x, c, [...walk]) : [];
    await lockFanOutsOf(x, c, [...children.map((i) => i.jobId), ...below]);
    const res = await x.one<{ applied: number[] | null; fans: FanOutDbRow[] | null; now: string }>(
      JOB_FINISH_CHILDREN,
      [x.now(), ...finishArrays(children)],
      c,
    );
    if (res === undefined) return { ords: [], now: null };
    const now = toInt(res.now);
    await accountFanOutOutcomes(x, c, now, res.fans);
    const failedParents = (res.applied ?? []).map((ord) => children[ord - 1]!).filter((i) => i.outcome === 'failed' && walk.has(i.jobId));
    if (failedParents.length > 0) await cancelSubtrees(x, c, now, { under: failedParents.map((i) => i.jobId) });
    return { ords: res.applied ?? [], now };
  });
  for (const ord of done.ords) stored[deferred[ord - 1]!] = done.now;
  return stored;
}

/** `Storage.jobHeartbeat`: one statement; returns the ids still held. */
export async function jobHeartbeat(x: PgExec, p: JobHeartbeatParams): Promise<string[]> {
  const rows = await x.rows<{ id: string }>(JOB_HEARTBEAT, [
    x.now(),
    p.workerId,
    p.runs.map((r) => r.jobId),
    p.runs.map((r) => Math.trunc(r.runCount)),
    Math.trunc(p.leaseMs),
  ]);
  return rows.map((r) => r.id);
}

/** `Storage.jobRelease`: one statement; returns the ids released. */
export async function jobRelease(x: PgExec, p: JobReleaseParams): Promise<string[]> {
  const rows = await x.rows<{ id: string }>(JOB_RELEASE, [
    p.runs.map((r) => r.jobId),
    p.runs.map((r) => r.workerId),
    p.runs.map((r) => Math.trunc(r.runCount)),
    x.channel,
  ]);
  return rows.map((r) => r.id);
}

interface ReclaimDbRow {
  jobs: { id: string; type: string; queue: string; status: 'pending' | 'failed'; attempt: number; max_retries: number; walk: boolean }[] | null;
  fans: FanOutDbRow[] | null;
  now: string;
}

/** A row of `JOB_RECLAIM_CANDIDATES`. */
interface ReclaimCandidate {
  id: string;
  run_count: number;
  dying: boolean;
  walk: boolean;
}

/**
 * `Storage.jobReclaimExpired`: the expired runs are read first (one statement, no lock: an idle
 * pass ends there); then one transaction locks, in id order, the fan-outs the failing ones count
 * on and those below the failing ones that have children (as `jobFinishMany` does), takes the
 * runs back (only as the runs read, so no job fails whose fan-out was not locked first), accounts
 * the failed fan-out children, and cancels the unfinished descendants of the failed jobs.
 */
export async function jobReclaimExpired(x: PgExec, p: { limit: number }): Promise<ReclaimedJob[]> {
  const cands = await x.rows<ReclaimCandidate>(JOB_RECLAIM_CANDIDATES, [x.now(), Math.trunc(p.limit)]);
  if (cands.length === 0) return [];
  return withTx(x.pool, async (c) => {
    const walk = cands.filter((j) => j.walk).map((j) => j.id);
    const below = walk.length > 0 ? await descendants(x, c, walk) : [];
    const lockFor = [...cands.filter((j) => j.dying).map((j) => j.id), ...below];
    const res = await x.one<ReclaimDbRow>(
      JOB_RECLAIM_EXPIRED,
      [x.now(), cands.map((j) => j.id), cands.map((j) => toInt(j.run_count)), LEASE_EXPIRED_RETRY, LEASE_EXPIRED_FAILED, x.channel, lockFor],
      c,
    );
    if (res?.jobs == null) return [];
    const now = toInt(res.now);
    await accountFanOutOutcomes(x, c, now, res.fans);
    const parents = res.jobs.filter((j) => j.walk).map((j) => j.id);
    if (parents.length > 0) await cancelSubtrees(x, c, now, { under: parents });
    return res.jobs.map(toReclaimedJob);
  });
}

/** `Storage.jobWakeDue`: one statement (timed wakes and the fan-out recovery sweep). */
export async function jobWakeDue(x: PgExec, p: { limit: number }): Promise<string[]> {
  const rows = await x.rows<{ id: string }>(JOB_WAKE_DUE, [x.now(), Math.trunc(p.limit), x.channel]);
  return rows.map((r) => r.id);
}
