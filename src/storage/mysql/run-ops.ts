/**
 * The run hot path of the MySQL/MariaDB driver: claim, finish, heartbeat, release, reclaim, wake.
 * @internal
 */
import type { JobClaimParams, JobFinishItem, JobHeartbeatParams, JobReleaseParams, JobRow, ReclaimedJob } from '../storage.js';
import { type Executor, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { type FanOutDelta, accountFanOuts, addDelta, cancelSubtrees } from './fan-out-accounting.js';
import { num, str, strOrNull, toJobRow } from './rows.js';
import {
  CLAIM_LOCK_QUEUES,
  CLAIM_SELECT,
  CLAIM_UPDATE,
  FENCE_LOCK_MANY,
  FINISH_LOCK_MANY,
  HEARTBEAT_HELD,
  HEARTBEAT_UPDATE,
  RECLAIM_SELECT,
  RECLAIM_TO_FAILED,
  RECLAIM_TO_PENDING,
  RELEASE_UPDATE,
  WAKE_DECIDED_PARENTS_SELECT,
  WAKE_DUE_SELECT,
  WAKE_UPDATE,
  claimEnsureQueuesSql,
  finishSql,
} from './queries/run.js';

/** last_error of a job whose lease expired with no attempts left. */
export const LEASE_EXPIRED_ERROR = 'lease expired: the worker stopped heartbeating and no retries remain';

/** Share-locks the queue rows (creating missing ones) and returns the paused names. */
async function lockQueues(ex: Executor, now: number | null, names: string[]): Promise<Set<string>> {
  const sorted = [...new Set(names)].sort();
  let rows = await select(ex, CLAIM_LOCK_QUEUES, [sorted]);
  if (rows.length < sorted.length) {
    const have = new Set(rows.map((r) => str(r['name'])));
    const missing = sorted.filter((n) => !have.has(n));
    await write(ex, claimEnsureQueuesSql(missing.length), missing.flatMap((n) => [n, now]));
    rows = await select(ex, CLAIM_LOCK_QUEUES, [sorted]);
  }
  return new Set(rows.filter((r) => num(r['paused']) !== 0).map((r) => str(r['name'])));
}

/** `Storage.jobClaim`. */
export async function jobClaim(ctx: DriverContext, p: JobClaimParams): Promise<JobRow[]> {
  // One entry per queue name (a repeated name would select rows this transaction already holds).
  const queues = p.queues.filter((q, i) => q.limit >= 1 && p.queues.findIndex((o) => o.name === q.name) === i);
  if (queues.length === 0) return [];
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const paused = await lockQueues(ex, now, queues.map((q) => q.name));
    const picked: JobRow[] = [];
    let at = 0;
    for (const q of queues) {
      if (paused.has(q.name)) continue;
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

/** A job locked for a finish: its fence columns, fan-out and whether it has children. */
interface FinishLocked {
  status: string;
  lockedBy: string | null;
  runCount: number;
  fanOutId: string | null;
  hasChildren: boolean;
}

/**
 * `Storage.jobFinishMany`: one transaction; a job that fails with children has its unfinished
 * descendants cancelled (before the fan-out accounting: job rows are locked before fan-outs).
 */
export async function jobFinishMany(ctx: DriverContext, items: JobFinishItem[]): Promise<boolean[]> {
  if (items.length === 0) return [];
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const ids = [...new Set(items.map((i) => i.jobId))];
    const locked = new Map<string, FinishLocked>();
    let at = 0;
    for (const r of await select(ex, FINISH_LOCK_MANY, [now, ids])) {
      at = num(r['now_ms']);
      locked.set(str(r['id']), {
        status: str(r['status']),
        lockedBy: strOrNull(r['locked_by']),
        runCount: num(r['run_count']),
        fanOutId: strOrNull(r['fan_out_id']),
        hasChildren: num(r['has_children']) !== 0,
      });
    }
    const failedParents: { id: string; status: string }[] = [];
    const done = new Set<string>();
    const applied: boolean[] = [];
    const values: unknown[] = [];
    const deltas = new Map<string, FanOutDelta>();
    let n = 0;
    for (const it of items) {
      const row = locked.get(it.jobId);
      const ok = row !== undefined && !done.has(it.jobId) && row.status === 'running' && row.lockedBy === it.workerId && row.runCount === it.runCount;
      applied.push(ok);
      if (!ok) continue;
      done.add(it.jobId);
      n++;
      if (it.outcome === 'completed') values.push(it.jobId, 'completed', it.resultJson, null, null);
      else if (it.outcome === 'failed') values.push(it.jobId, 'failed', null, it.error, null);
      else values.push(it.jobId, 'pending', null, it.error, at + Math.max(0, Math.ceil(it.delayMs)));
      if (row.fanOutId !== null && it.outcome !== 'retry') addDelta(deltas, row.fanOutId, it.outcome);
      if (it.outcome === 'failed' && row.hasChildren) failedParents.push({ id: it.jobId, status: 'failed' });
    }
    if (n === 0) return applied;
    values.push(at);
    await write(ex, finishSql(n), values);
    await cancelSubtrees(ex, now, failedParents, deltas);
    await accountFanOuts(ex, now, deltas);
    return applied;
  });
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

/** `Storage.jobReclaimExpired`; a job failed with children has its unfinished descendants cancelled. */
export async function jobReclaimExpired(ctx: DriverContext, p: { limit: number }): Promise<ReclaimedJob[]> {
  if (p.limit < 1) return [];
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const rows = await select(ex, RECLAIM_SELECT, [now, now, Math.floor(p.limit)]);
    if (rows.length === 0) return [];
    const at = num(rows[0]!['now_ms']);
    const out: ReclaimedJob[] = [];
    const deltas = new Map<string, FanOutDelta>();
    const failedParents: { id: string; status: string }[] = [];
    for (const r of rows) {
      const attempt = num(r['attempt']);
      const maxRetries = num(r['max_retries']);
      const status = attempt <= maxRetries ? ('pending' as const) : ('failed' as const);
      out.push({ id: str(r['id']), type: str(r['type']), queue: str(r['queue']), status, attempt, maxRetries });
      const fanOutId = strOrNull(r['fan_out_id']);
      if (status === 'failed' && fanOutId !== null) addDelta(deltas, fanOutId, 'failed');
      if (status === 'failed' && num(r['has_children']) !== 0) failedParents.push({ id: str(r['id']), status: 'failed' });
    }
    const toPending = out.filter((j) => j.status === 'pending').map((j) => j.id);
    const toFailed = out.filter((j) => j.status === 'failed').map((j) => j.id);
    if (toPending.length) await write(ex, RECLAIM_TO_PENDING, [toPending]);
    if (toFailed.length) await write(ex, RECLAIM_TO_FAILED, [LEASE_EXPIRED_ERROR, at, toFailed]);
    // A job failed with children: its unfinished descendants are cancelled (job rows before fan-outs).
    await cancelSubtrees(ex, now, failedParents, deltas);
    await accountFanOuts(ex, now, deltas);
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
