/**
 * Flow control's claim on MySQL/MariaDB: `jobClaimLimited`. Limited claims are serialized by flow
 * lock row 1, whose generation every claim that starts jobs, every limit change and every queue
 * pause moves on; the lock is held only for the writes.
 *
 * 1. One read (`claimLimitedRead`), outside any transaction and without the lock: the database
 *    now, the lock's generation, the requested queues' rows, the type limits, running counts per
 *    group, rate state, and the candidates: flow groups of each requested queue with their first
 *    ready jobs (a few probes per group, never a group's backlog; every group when the queues
 *    had few last time, else the first open groups in claim order and one full and one or two
 *    rate-blocked ones for the flags), plus the first `limit` ready jobs without type limits of
 *    a queue-limited queue. Every part reads one snapshot.
 * 2. The shared plan (`planLimitedClaim`) picks, over the claim-order prefix the read answers
 *    for. When both jobs read of a group were picked and its queue wants more, one more read
 *    (`claimLimitedMore`) takes as many next jobs of those groups as they have room for, plus
 *    one, and the plan runs again; when a queue whose groups were not all read got fewer jobs
 *    than it wants, the read runs again with every group. A plan that picks nothing ends the
 *    call there: one round trip, no lock, no transaction.
 * 3. In a transaction: the picked rows are locked with `SKIP LOCKED` (a row another transaction
 *    holds, or that changed since it was read, is left out with the rest of its flow group, and
 *    the plan runs again), then one statement (`claimLimitedUpdateSql`) takes the flow lock and,
 *    if its generation is the one read, sets the jobs running and stores the rate state the read
 *    saw; rate rows the read did not see are upserted next. A generation that moved means the
 *    state the plan used may have: the claim takes the lock (`FLOW_LOCK`), reads the state
 *    again without candidates (`claimLimitedStateRead`: it sees every claim committed before;
 *    no candidate scan under the lock), plans again over the jobs it holds, claims those picked
 *    (`CLAIM_UPDATE`) and stores the rate state; the flags are those of both plans.
 * 4. Only when a row the claim counted on was gone at an unchanged generation (it rolls back):
 *    locked from the start, `FLOW_LOCK`, the whole read again, the plan, the lock of the picked
 *    rows, the claim, the rate state.
 *
 * Rows whose state the plan counts change only under the lock (claims that start jobs, limits,
 * pauses) or in the direction that frees room (finishes, reclaims, suspends), so a plan made on
 * the read and applied at an unchanged generation keeps every limit exactly. The claimed jobs'
 * `started_at` is the read's now, which precedes the claim's commit.
 *
 * Round trips: 1 when nothing is ready or allowed; when jobs are claimed, the read, the start
 * (two on a pool the driver did not create: its isolation level, then the start), the lock of
 * the picked rows, the claim, the commit: 5, one more for rate rows the read did not see, one
 * more when a group with room for several jobs had its first one picked, one more when the
 * first open groups read did not fill a queue. The flow lock is held from the claim statement
 * to the commit: one round trip, two with new rate rows.
 * @internal
 */
import type { JobClaimLimitedParams, JobClaimLimitedResult } from '../flow-rows.js';
import { type FlowCandidate, type FlowPlan, queueGroup, typeGroup } from '../shared/flow-plan.js';
import type { JobRow } from '../storage.js';
import { type Executor, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { type ClaimState, type Planned, parseRead, plan, readAndPlan } from './flow-read.js';
import { CLAIM_LIMITED_LOCK, FLOW_LOCK, claimLimitedStateRead, claimLimitedUpdateSql, rateStateUpsertSql } from './queries/flow.js';
import { CLAIM_UPDATE } from './queries/run.js';
import { toJobRow } from './rows.js';

/**
 * Whether a row locked now is still the candidate the plan saw, pending and ready. Keys compare
 * as groups do (null as ''): the jobs of a flow group read after its first carry its keys.
 */
function unchanged(row: JobRow, c: FlowCandidate, now: number): boolean {
  return (
    row.status === 'pending' &&
    row.queue === c.queue &&
    row.type === c.type &&
    row.priority === c.priority &&
    row.runAt === c.runAt &&
    row.runAt <= now &&
    (row.concurrencyKey ?? '') === (c.concurrencyKey ?? '') &&
    (row.rateKey ?? '') === (c.rateKey ?? '')
  );
}

/**
 * Locks the picked rows (`SKIP LOCKED`); a row not locked, or changed since it was read, leaves
 * the candidates with every other job of its flow group (another claim is most likely starting
 * that group: its next job would wait on the same limits), and the plan runs again, until every
 * picked row is locked. A claim that left rows out reports `retryInMs` 1 at most, so that its
 * caller reads again soon instead of waiting on flags the race made stale. Returns the final
 * plan and the locked rows by id.
 */
async function lockPicked(ex: Executor, st: ClaimState, want: ReadonlyMap<string, number>, first: FlowPlan): Promise<{ p: FlowPlan; rows: Map<string, JobRow> }> {
  const locked = new Map<string, JobRow>();
  let p = first;
  for (;;) {
    const need = p.picked.filter((id) => !locked.has(id));
    if (need.length === 0) return { p, rows: locked };
    const byId = new Map(st.candidates.map((c) => [c.id, c]));
    for (const r of await select(ex, CLAIM_LIMITED_LOCK, [need])) {
      const row = toJobRow(r);
      if (unchanged(row, byId.get(row.id)!, st.now)) locked.set(row.id, row);
    }
    const dropped = new Set(need.filter((id) => !locked.has(id)));
    if (dropped.size === 0) return { p, rows: locked };
    const groups = new Set(st.candidates.filter((c) => dropped.has(c.id) && c.group !== null).map((c) => `${c.queue}\u0000${c.group!.toString('hex')}`));
    st.candidates = st.candidates.filter((c) => !dropped.has(c.id) && (locked.has(c.id) || c.group === null || !groups.has(`${c.queue}\u0000${c.group.toString('hex')}`)));
    const next = plan(st, want);
    p = { ...next, retryInMs: Math.min(next.retryInMs ?? 1, 1) };
  }
}

/** The flags of a plan. */
function flags(p: FlowPlan): Omit<JobClaimLimitedResult, 'rows'> {
  return { retryInMs: p.retryInMs, saturated: p.saturated };
}

/** The claimed rows as `jobClaim` returns them, from the rows locked before the claim. */
function claimedRows(final: FlowPlan, rows: ReadonlyMap<string, JobRow>, workerId: string, at: number, lease: number): JobRow[] {
  return final.picked.map((id) => {
    const r = rows.get(id)!;
    return { ...r, status: 'running' as const, attempt: r.attempt + 1, runCount: r.runCount + 1, lockedBy: workerId, startedAt: at, heartbeatAt: at, leaseExpiresAt: lease, wakeAt: null, waitSignal: null };
  });
}

/** The flow group of a rate state write, as the read keys its tat. */
function tatGroup(t: FlowPlan['tats'][number]): string {
  return t.scope === 'queue' ? queueGroup(t.name) : typeGroup(t.name, t.key);
}

/** A row of a claim at an unchanged generation was gone (step 3): the transaction rolls back and the claim runs locked (step 4). */
class StaleRead extends Error {}

/** The flags of two plans of one claim together: saturated if either says so, the smaller wait. */
function bothFlags(a: FlowPlan, b: FlowPlan): Omit<JobClaimLimitedResult, 'rows'> {
  const waits = [a.retryInMs, b.retryInMs].filter((w): w is number => w !== null);
  return { retryInMs: waits.length === 0 ? null : Math.min(...waits), saturated: a.saturated || b.saturated };
}

/**
 * Step 3: the claim of a plan made on the read taken before the lock, in the caller's
 * transaction. When the generation moved, the claim takes the lock, reads the state again (not
 * the candidates) and plans again over the jobs it holds.
 */
async function claimAtGeneration(ex: Executor, p: JobClaimLimitedParams, now: number | null, read: Planned): Promise<JobClaimLimitedResult> {
  const { p: first, rows } = await lockPicked(ex, read.st, read.want, read.plan);
  if (first.picked.length === 0) return { rows: [], ...flags(first) };
  const at = read.st.now;
  const lease = at + p.leaseMs;
  const seen = first.tats.filter((t) => read.st.tat.has(tatGroup(t)));
  const unseen = first.tats.filter((t) => !read.st.tat.has(tatGroup(t)));
  const values: unknown[] = [first.picked, ...seen.flatMap((t) => [t.scope, t.name, t.key]), p.workerId, at, at, lease];
  values.push(...seen.flatMap((t) => [t.scope, t.name, t.key, t.tat]), read.st.gen);
  const changed = await write(ex, claimLimitedUpdateSql(seen.length), values);
  if (changed === 1 + first.picked.length + seen.length) {
    if (unseen.length > 0) await write(ex, rateStateUpsertSql(unseen.length), unseen.flatMap((t) => [t.scope, t.name, t.key, t.tat]));
    return { rows: claimedRows(first, rows, p.workerId, at, lease), ...flags(first) };
  }
  // Some row of the claim was gone (rare: nothing that moves the generation was seen): roll back.
  if (changed !== 0) throw new StaleRead();
  await write(ex, FLOW_LOCK);
  const state = claimLimitedStateRead(now, [...read.want.keys()].map((name) => ({ name })));
  const st = parseRead(await select(ex, state.sql, state.values));
  st.candidates = read.st.candidates.filter((c) => rows.has(c.id));
  const want = new Map([...read.want].filter(([q]) => !st.paused.has(q)));
  const again = plan(st, want);
  if (again.picked.length === 0) return { rows: [], ...bothFlags(first, again) };
  const at2 = st.now;
  const lease2 = at2 + p.leaseMs;
  await write(ex, CLAIM_UPDATE, [p.workerId, at2, at2, lease2, again.picked]);
  if (again.tats.length > 0) await write(ex, rateStateUpsertSql(again.tats.length), again.tats.flatMap((t) => [t.scope, t.name, t.key, t.tat]));
  return { rows: claimedRows(again, rows, p.workerId, at2, lease2), ...bothFlags(first, again) };
}

/** Step 4: the claim under the flow lock, in the caller's transaction. */
async function claimLocked(ex: Executor, p: JobClaimLimitedParams, now: number | null, queues: readonly { name: string; limit: number }[]): Promise<JobClaimLimitedResult> {
  await write(ex, FLOW_LOCK);
  const read = await readAndPlan(ex, now, queues);
  const { p: final, rows } = await lockPicked(ex, read.st, read.want, read.plan);
  if (final.picked.length === 0) return { rows: [], ...flags(final) };
  const at = read.st.now;
  const lease = at + p.leaseMs;
  await write(ex, CLAIM_UPDATE, [p.workerId, at, at, lease, final.picked]);
  if (final.tats.length > 0) await write(ex, rateStateUpsertSql(final.tats.length), final.tats.flatMap((t) => [t.scope, t.name, t.key, t.tat]));
  return { rows: claimedRows(final, rows, p.workerId, at, lease), ...flags(final) };
}

/** `Storage.jobClaimLimited` (see the module header). */
export async function jobClaimLimited(ctx: DriverContext, p: JobClaimLimitedParams): Promise<JobClaimLimitedResult> {
  // One entry per queue name, as in jobClaim.
  const queues = p.queues.filter((q, i) => q.limit >= 1 && p.queues.findIndex((o) => o.name === q.name) === i);
  if (queues.length === 0) return { rows: [], retryInMs: null, saturated: false };
  const now = ctx.now();
  const read = await readAndPlan(ctx.db.pool, now, queues);
  if (read.plan.picked.length === 0) return { rows: [], ...flags(read.plan) };
  try {
    return await ctx.db.tx((ex) => claimAtGeneration(ex, p, now, read));
  } catch (e) {
    if (!(e instanceof StaleRead)) throw e;
  }
  return ctx.db.tx((ex) => claimLocked(ex, p, now, queues));
}
