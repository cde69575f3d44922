/**
 * The run hot path of the MySQL/MariaDB driver: claim, finish, heartbeat, release, reclaim, wake.
 * @internal
 */
import type { JobClaimParams, JobFinishItem, JobFinishManyParams, JobHeartbeatParams, JobReleaseParams, JobRow, ReclaimedJob } from '../storage.js';
import { type Executor, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { addChildOutcome, childOutcomeOf } from '../shared/fan-out-settle.js';
import { type FanOutDelta, accountFanOutOutcomes, cancelSubtrees, lockFanOutsFirst } from './fan-out-accounting.js';
import { num, str, strOrNull, toJobRow } from './rows.js';
import { ROW_ALLOWANCE, chunkBySize, textBytes } from './statement-budget.js';
import {
  CLAIM_LOCK_QUEUES,
  CLAIM_SELECT,
  CLAIM_UPDATE,
  FENCE_LOCK_MANY,
  FINISH_LOCK_MANY,
  FINISH_LOCK_MANY_SKIP_LOCKED,
  FINISH_PEEK,
  HEARTBEAT_HELD,
  HEARTBEAT_UPDATE,
  RECLAIM_CANDIDATES,
  RECLAIM_LOCK,
  RECLAIM_TO_FAILED,
  RECLAIM_TO_PENDING,
  RELEASE_UPDATE,
  WAKE_DECIDED_PARENTS_SELECT,
  WAKE_DUE_SELECT,
  WAKE_UPDATE,
  claimEnsureQueuesSql,
  finishSql,
} from './queries/run.js';
import { LEASE_EXPIRED_FAILED, LEASE_EXPIRED_RETRY } from '../shared/contract-messages.js';


/** Share-locks the queue rows (creating missing ones) and returns the names to skip: paused, or with a queue limit. */
async function lockQueues(ex: Executor, now: number | null, names: string[]): Promise<Set<string>> {
  const sorted = [...new Set(names)].sort();
  let rows = await select(ex, CLAIM_LOCK_QUEUES, [sorted]);
  if (rows.length < sorted.length) {
    const have = new Set(rows.map((r) => str(r['name'])));
    const missing = sorted.filter((n) => !have.has(n));
    await write(ex, claimEnsureQueuesSql(missing.length), missing.flatMap((n) => [n, now]));
    rows = await select(ex, CLAIM_LOCK_QUEUES, [sorted]);
  }
  return new Set(rows.filter((r) => num(r['skipped']) !== 0).map((r) => str(r['name'])));
}

/** `Storage.jobClaim`. */
export async function jobClaim(ctx: DriverContext, p: JobClaimParams): Promise<JobRow[]> {
  // One entry per queue name (a repeated name would select rows this transaction already holds).
  const queues = p.queues.filter((q, i) => q.limit >= 1 && p.queues.findIndex((o) => o.name === q.name) === i);
  if (queues.length === 0) return [];
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const skipped = await lockQueues(ex, now, queues.map((q) => q.name));
    const picked: JobRow[] = [];
    let at = 0;
    for (const q of queues) {
      if (skipped.has(q.name)) continue;
      const rows = await select(ex, CLAIM_SELECT, [now, q.name, now, Math.floor(q.limit)]);
      for (const r of rows) {
        at = Math.max(at, num(r['now_ms']));
        picked.push(toJobRow(r));
      }
    }
    if (picked.length === 0) return [];
    const lease = at + p.leaseMs;
    await write(ex, CLAIM_UPDATE, [p.workerId, at, at, lease, picked.map((r) => r.id)]);
    return picked.map((r) => ({
      ...r,
      status: 'running' as const,
      attempt: r.attempt + 1,
      runCount: r.runCount + 1,
      lockedBy: p.workerId,
      startedAt: at,
      heartbeatAt: at,
      leaseExpiresAt: lease,
      wakeAt: null,
      waitSignal: null,
    }));
  });
}

/** What decides how a job's finish locks: its fan-out and whether it has children. */
interface FinishPlan {
  fanOutId: string | null;
  hasChildren: boolean;
}

/** A job locked for a finish: its fence columns, fan-out and whether it has children. */
interface FinishLocked extends FinishPlan {
  status: string;
  lockedBy: string | null;
  runCount: number;
}

/** The bound values of one row of `finishSql`: id, status, result, error, runAt. */
type FinishValues = [id: string, status: string, result: string | null, error: string | null, runAt: number | null];

/** Upper bound of the SQL text one finish row adds. */
function finishRowBytes(v: FinishValues): number {
  return ROW_ALLOWANCE + textBytes(v[0]) + textBytes(v[2]) + textBytes(v[3]);
}

/** Whether an outcome counts on a fan-out or cancels a subtree: its finish locks fan-outs first. */
function touchesFanOuts(it: JobFinishItem, p: FinishPlan): boolean {
  return (p.fanOutId !== null && it.outcome !== 'retry') || (it.outcome === 'failed' && p.hasChildren);
}

/** Whether the item's run still holds the locked job. */
function fenceHolds(it: JobFinishItem, row: FinishLocked): boolean {
  return row.status === 'running' && row.lockedBy === it.workerId && row.runCount === it.runCount;
}

/** The row of `finishSql` that applies an outcome; `at` is the database now. */
function finishValues(it: JobFinishItem, at: number): FinishValues {
  if (it.outcome === 'completed') return [it.jobId, 'completed', it.resultJson, null, null];
  if (it.outcome === 'failed') return [it.jobId, 'failed', null, it.error, null];
  return [it.jobId, 'pending', null, it.error, at + Math.max(0, Math.ceil(it.delayMs))];
}

/** Locks jobs about to finish with `sql` (`FINISH_LOCK_MANY` or its `SKIP LOCKED` form). */
async function lockFinishing(ex: Executor, sql: string, now: number | null, ids: string[]): Promise<{ locked: Map<string, FinishLocked>; at: number }> {
  const locked = new Map<string, FinishLocked>();
  let at = 0;
  for (const r of await select(ex, sql, [now, ids])) {
    at = num(r['now_ms']);
    locked.set(str(r['id']), {
      status: str(r['status']),
      lockedBy: strOrNull(r['locked_by']),
      runCount: num(r['run_count']),
      fanOutId: strOrNull(r['fan_out_id']),
      hasChildren: num(r['has_children']) !== 0,
    });
  }
  return { locked, at };
}

/** Applies fence-checked outcomes; large ones take several statements (each within the server's packet size). */
async function writeFinishes(ctx: DriverContext, ex: Executor, rows: FinishValues[], at: number): Promise<void> {
  for (const chunk of await chunkBySize(ctx.db, ex, rows, finishRowBytes)) {
    await write(ex, finishSql(chunk.length), [...chunk.flat(), at]);
  }
}

/**
 * `Storage.jobFinishMany`: one transaction that applies every outcome, in the driver's lock order
 * (see `fan-out-accounting.ts`). A first transaction locks the batch's jobs without waiting (it
 * skips rows other transactions hold): when every outcome counts on no fan-out and cancels no
 * subtree, it applies them and commits — a batch of plain jobs costs one locking read and one
 * update. Otherwise it ends having written nothing, and {@link finishInOrder} applies the batch.
 */
export async function jobFinishMany(ctx: DriverContext, p: JobFinishManyParams): Promise<(number | null)[]> {
  const items = p.items;
  if (items.length === 0) return [];
  const known = new Map<string, FinishPlan>();
  const plain = await ctx.db.tx(async (ex): Promise<(number | null)[] | null> => {
    known.clear(); // the transaction may run again
    const { locked, at } = await lockFinishing(ex, FINISH_LOCK_MANY_SKIP_LOCKED, ctx.now(), [...new Set(items.map((i) => i.jobId))]);
    for (const [id, row] of locked) known.set(id, { fanOutId: row.fanOutId, hasChildren: row.hasChildren });
    const done = new Set<string>();
    const applied: boolean[] = [];
    const rows: FinishValues[] = [];
    for (const it of items) {
      const row = locked.get(it.jobId);
      if (row === undefined) return null; // held by another transaction (or gone): wait for it, in order
      const ok = !done.has(it.jobId) && fenceHolds(it, row);
      applied.push(ok);
      if (!ok) continue;
      if (touchesFanOuts(it, row)) return null;
      done.add(it.jobId);
      rows.push(finishValues(it, at));
    }
    await writeFinishes(ctx, ex, rows, at);
    return storedAt(applied, at);
  });
  return plain ?? finishInOrder(ctx, items, known);
}

/**
 * Applies outcomes in one transaction that locks the fan-outs first — those of the finishing
 * fan-out children and those below the failing jobs with children, planned from `known` (or a
 * read without locks) as if every fence held — then the jobs, waiting for rows other
 * transactions hold; then cancels the failing jobs' unfinished descendants and accounts the
 * fan-outs.
 */
async function finishInOrder(ctx: DriverContext, items: JobFinishItem[], known: Map<string, FinishPlan>): Promise<(number | null)[]> {
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const ids = [...new Set(items.map((i) => i.jobId))];
    const plans = new Map(known);
    const unknown = ids.filter((id) => !plans.has(id));
    if (unknown.length > 0) {
      for (const r of await select(ex, FINISH_PEEK, [unknown])) {
        plans.set(str(r['id']), { fanOutId: strOrNull(r['fan_out_id']), hasChildren: num(r['has_children']) !== 0 });
      }
    }
    const planned = new Map<string, FanOutDelta>();
    const fanOuts: string[] = [];
    const under: string[] = [];
    const seen = new Set<string>();
    for (const it of items) {
      const p = plans.get(it.jobId);
      if (p === undefined || seen.has(it.jobId)) continue;
      seen.add(it.jobId);
      if (p.fanOutId !== null) fanOuts.push(p.fanOutId);
      if (p.fanOutId !== null && it.outcome !== 'retry') addChildOutcome(planned, p.fanOutId, childOutcomeOf(it.outcome));
      if (it.outcome === 'failed' && p.hasChildren) under.push(it.jobId);
    }
    // Every fan-out child this locks has its fan-out locked first, counted on or not.
    const held = await lockFanOutsFirst(ex, now, { deltas: planned, fanOuts, under });
    const { locked, at } = await lockFinishing(ex, FINISH_LOCK_MANY, now, ids);
    const failedParents: { id: string; status: string }[] = [];
    const done = new Set<string>();
    const applied: boolean[] = [];
    const rows: FinishValues[] = [];
    const deltas = new Map<string, FanOutDelta>();
    for (const it of items) {
      const row = locked.get(it.jobId);
      const ok = row !== undefined && !done.has(it.jobId) && fenceHolds(it, row);
      applied.push(ok);
      if (!ok) continue;
      done.add(it.jobId);
      rows.push(finishValues(it, at));
      if (row.fanOutId !== null && it.outcome !== 'retry') addChildOutcome(deltas, row.fanOutId, childOutcomeOf(it.outcome));
      if (it.outcome === 'failed' && row.hasChildren) failedParents.push({ id: it.jobId, status: 'failed' });
    }
    if (rows.length === 0) return storedAt(applied, at);
    await writeFinishes(ctx, ex, rows, at);
    await cancelSubtrees(ex, now, failedParents, deltas);
    await accountFanOutOutcomes(ex, now, deltas, held);
    return storedAt(applied, at);
  });
}

/** Per item: the time its outcome was stored at (the transaction's now), or null when its fence failed. */
function storedAt(applied: boolean[], at: number): (number | null)[] {
  return applied.map((ok) => (ok ? at : null));
}

/** `Storage.jobHeartbeat`. */
export async function jobHeartbeat(ctx: DriverContext, p: JobHeartbeatParams): Promise<string[]> {
  if (p.runs.length === 0) return [];
  const ids = [...new Set(p.runs.map((r) => r.jobId))];
  const pairs = p.runs.map((r) => [r.jobId, r.runCount]);
  const now = ctx.now();
  const changed = await ctx.db.autocommit((ex) => write(ex, HEARTBEAT_UPDATE, [now, now, p.leaseMs, p.workerId, ids, pairs]));
  if (changed === p.runs.length && ids.length === p.runs.length) return p.runs.map((r) => r.jobId);
  const held = new Set((await select(ctx.db.pool, HEARTBEAT_HELD, [p.workerId, ids, pairs])).map((r) => str(r['id'])));
  return ids.filter((id) => held.has(id));
}

/** `Storage.jobRelease`. */
export async function jobRelease(ctx: DriverContext, p: JobReleaseParams): Promise<string[]> {
  if (p.runs.length === 0) return [];
  return ctx.db.tx(async (ex) => {
    const ids = [...new Set(p.runs.map((r) => r.jobId))];
    const rows = await select(ex, FENCE_LOCK_MANY, [ctx.now(), ids]);
    const byId = new Map(rows.map((r) => [str(r['id']), r]));
    const out: string[] = [];
    for (const run of p.runs) {
      const r = byId.get(run.jobId);
      if (!r || out.includes(run.jobId)) continue;
      if (str(r['status']) === 'running' && strOrNull(r['locked_by']) === run.workerId && num(r['run_count']) === run.runCount) out.push(run.jobId);
    }
    if (out.length) await write(ex, RELEASE_UPDATE, [out]);
    return out;
  });
}

/**
 * `Storage.jobReclaimExpired`: the expired runs are read first, without locks (an idle pass ends
 * there). Then one transaction locks, in the driver's lock order (see `fan-out-accounting.ts`),
 * the fan-outs of the runs and those below the ones about to fail with children, then
 * the runs themselves — skipping rows other transactions hold, and only the runs read, so no job
 * fails whose fan-outs were not locked first — takes them back, cancels the unfinished
 * descendants of the failed ones and accounts the failed fan-out children.
 */
export async function jobReclaimExpired(ctx: DriverContext, p: { limit: number }): Promise<ReclaimedJob[]> {
  if (p.limit < 1) return [];
  const cands = await select(ctx.db.pool, RECLAIM_CANDIDATES, [ctx.now(), Math.floor(p.limit)]);
  if (cands.length === 0) return [];
  const planned = new Map<string, FanOutDelta>();
  const fanOuts: string[] = [];
  const under: string[] = [];
  for (const r of cands) {
    const fanOutId = strOrNull(r['fan_out_id']);
    if (fanOutId !== null) fanOuts.push(fanOutId);
    if (num(r['attempt']) <= num(r['max_retries'])) continue;
    if (fanOutId !== null) addChildOutcome(planned, fanOutId, 'failed');
    if (num(r['has_children']) !== 0) under.push(str(r['id']));
  }
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    // Every fan-out child this locks has its fan-out locked first, even one going back to pending.
    const held = await lockFanOutsFirst(ex, now, { deltas: planned, fanOuts, under });
    const locked = new Map((await select(ex, RECLAIM_LOCK, [now, cands.map((r) => str(r['id'])), now])).map((r) => [str(r['id']), r]));
    const out: ReclaimedJob[] = [];
    const deltas = new Map<string, FanOutDelta>();
    const failedParents: { id: string; status: string }[] = [];
    let at = 0;
    for (const c of cands) {
      const id = str(c['id']);
      const r = locked.get(id);
      // Another run since the read (reclaimed, claimed again and expired): left to a later pass.
      if (r === undefined || num(r['run_count']) !== num(c['run_count'])) continue;
      at = num(r['now_ms']);
      const attempt = num(r['attempt']);
      const maxRetries = num(r['max_retries']);
      const status = attempt <= maxRetries ? ('pending' as const) : ('failed' as const);
      out.push({ id, type: str(r['type']), queue: str(r['queue']), status, attempt, maxRetries });
      const fanOutId = strOrNull(c['fan_out_id']);
      if (status === 'failed' && fanOutId !== null) addChildOutcome(deltas, fanOutId, 'failed');
      if (status === 'failed' && num(c['has_children']) !== 0) failedParents.push({ id, status: 'failed' });
    }
    if (out.length === 0) return [];
    const toPending = out.filter((j) => j.status === 'pending').map((j) => j.id);
    const toFailed = out.filter((j) => j.status === 'failed').map((j) => j.id);
    if (toPending.length) await write(ex, RECLAIM_TO_PENDING, [LEASE_EXPIRED_RETRY, toPending]);
    if (toFailed.length) await write(ex, RECLAIM_TO_FAILED, [LEASE_EXPIRED_FAILED, at, toFailed]);
    await cancelSubtrees(ex, now, failedParents, deltas);
    await accountFanOutOutcomes(ex, now, deltas, held);
    return out;
  });
}

/** `Storage.jobWakeDue`. */
export async function jobWakeDue(ctx: DriverContext, p: { limit: number }): Promise<string[]> {
  if (p.limit < 1) return [];
  return ctx.db.tx(async (ex) => {
    const limit = Math.floor(p.limit);
    const ids = (await select(ex, WAKE_DUE_SELECT, [ctx.now(), limit])).map((r) => str(r['id']));
    if (ids.length < limit) {
      for (const r of await select(ex, WAKE_DECIDED_PARENTS_SELECT, [limit - ids.length])) {
        const id = str(r['id']);
        if (!ids.includes(id)) ids.push(id);
      }
    }
    if (ids.length) await write(ex, WAKE_UPDATE, [ids]);
    return ids;
  });
}
