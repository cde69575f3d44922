/**
 * Flow control's claim on MySQL/MariaDB: `jobClaimLimited`. One READ COMMITTED transaction:
 *
 * 1. `FLOW_LOCK`: flow lock row 1, `FOR UPDATE`. Every limited claim (and every limit change and
 *    queue pause) takes it first, so they run one at a time; each later statement is a fresh
 *    READ COMMITTED read taken after the lock, which sees every claim committed before.
 * 2. One read (`claimLimitedRead`): the database now, the requested queues' rows, the type
 *    limits, running counts per group, rate state, and the candidates: per flow group of each
 *    requested queue its first two ready jobs (a few probes per group, never a group's backlog;
 *    the second tells whether the group still has a job waiting once the first starts), plus the
 *    first `limit` ready jobs without type limits of a queue-limited queue.
 * 3. The shared plan (`planLimitedClaim`) picks. When both jobs read of a group were picked and
 *    its queue wants more, one more read (`claimLimitedMore`) takes as many next jobs of those
 *    groups as they have room for, plus one, and the plan runs again.
 * 4. The picked rows are locked with `SKIP LOCKED` (a row another transaction holds, or that
 *    changed since it was read, is left out and the plan runs again without it), then set
 *    running as `jobClaim` sets them, and the rate state of the groups that started is upserted.
 *
 * Round trips: the transaction's start (two on a pool the driver did not create: its isolation
 * level, then the start), the lock, the read, the lock of the picked rows, the claim, the rate
 * state (only when a rate limit applies), the commit: 6 or 7 when jobs are claimed, 4 when none
 * is ready; one more when a group with room for several jobs had its first one picked.
 * @internal
 */
import type { JobClaimLimitedParams, JobClaimLimitedResult } from '../flow-rows.js';
import { type FlowCandidate, type FlowPlan, planLimitedClaim, queueGroup, typeGroup } from '../shared/flow-plan.js';
import type { LimitRow } from '../flow-rows.js';
import type { JobRow } from '../storage.js';
import { type Executor, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { CLAIM_LIMITED_LOCK, FLOW_LOCK, type GroupTail, claimLimitedMore, claimLimitedRead, rateStateUpsertSql } from './queries/flow.js';
import { CLAIM_UPDATE } from './queries/run.js';
import { type DbRow, num, numOrNull, str, strOrNull, toJobRow } from './rows.js';

/** A candidate as read, with the flow group it was read from (null for a job without type limits). */
interface ReadCandidate extends FlowCandidate {
  group: Buffer | null;
}

/** What the read gives the plan. */
interface ClaimState {
  now: number;
  paused: Set<string>;
  typeLimits: Map<string, LimitRow>;
  queueLimits: Map<string, LimitRow>;
  running: Map<string, number>;
  tat: Map<string, number>;
  candidates: ReadCandidate[];
}

/** A candidate row of the read (kinds `h`, `z`, `m`). */
function toCandidate(r: DbRow): ReadCandidate {
  const g = r['grp'];
  return {
    id: str(r['id']),
    queue: str(r['queue']),
    type: str(r['name']),
    priority: num(r['priority']),
    runAt: num(r['run_at']),
    concurrencyKey: strOrNull(r['k1']),
    rateKey: strOrNull(r['k2']),
    group: Buffer.isBuffer(g) ? g : null,
  };
}

/**
 * The candidates of an `h` row of the read: its group's type, keys and queue, with each job of
 * its `id` column (`priority:run_at:bytes:id`, one after the other).
 */
function groupCandidates(r: DbRow): ReadCandidate[] {
  const out: ReadCandidate[] = [];
  const group = r['grp'] as Buffer;
  let rest = Buffer.from(str(r['id']), 'utf8');
  while (rest.length > 0) {
    const fields: number[] = [];
    for (let i = 0; i < 3; i++) {
      const colon = rest.indexOf(0x3a);
      fields.push(Number(rest.subarray(0, colon).toString('latin1')));
      rest = rest.subarray(colon + 1);
    }
    const [priority, runAt, bytes] = fields as [number, number, number];
    const id = rest.subarray(0, bytes).toString('utf8');
    rest = rest.subarray(bytes);
    out.push({ id, queue: str(r['queue']), type: str(r['name']), priority, runAt, concurrencyKey: strOrNull(r['k1']), rateKey: strOrNull(r['k2']), group });
  }
  return out;
}

/** A limit row of the read (`q` or `t`). */
function toLimit(scope: LimitRow['scope'], r: DbRow): LimitRow {
  return {
    scope,
    name: str(r['name']),
    concurrency: numOrNull(r['b']),
    rateLimit: numOrNull(r['c']),
    ratePeriodMs: numOrNull(r['d']),
    updatedAt: scope === 'type' ? num(r['a']) : 0,
  };
}

/** Adds up the rows of `claimLimitedRead`. */
function parseRead(rows: readonly DbRow[]): ClaimState {
  const st: ClaimState = { now: 0, paused: new Set(), typeLimits: new Map(), queueLimits: new Map(), running: new Map(), tat: new Map(), candidates: [] };
  const add = (k: string, n: number): void => void st.running.set(k, (st.running.get(k) ?? 0) + n);
  for (const r of rows) {
    switch (str(r['kind'])) {
      case 'n':
        st.now = num(r['a']);
        break;
      case 'q': {
        const l = toLimit('queue', r);
        if (num(r['a']) !== 0) st.paused.add(l.name);
        if (l.concurrency !== null || l.rateLimit !== null) st.queueLimits.set(l.name, l);
        break;
      }
      case 't': {
        const l = toLimit('type', r);
        st.typeLimits.set(l.name, l);
        break;
      }
      case 'c':
        add(typeGroup(str(r['name']), str(r['k1'])), num(r['a']));
        add(queueGroup(str(r['k2'])), num(r['a']));
        break;
      case 's': {
        const scope = str(r['k2']);
        st.tat.set(scope === 'queue' ? queueGroup(str(r['name'])) : typeGroup(str(r['name']), str(r['k1'])), Number(r['tat']));
        break;
      }
      case 'h':
        st.candidates.push(...groupCandidates(r));
        break;
      default:
        st.candidates.push(toCandidate(r));
    }
  }
  return st;
}

/** The plan over the candidates left. */
function plan(st: ClaimState, want: ReadonlyMap<string, number>): FlowPlan {
  return planLimitedClaim({ now: st.now, want, typeLimits: st.typeLimits, queueLimits: st.queueLimits, running: st.running, tat: st.tat, candidates: st.candidates });
}

/** Ready jobs read per flow group by the first read. */
const FIRST_READ = 2;

/**
 * The groups to read further: a group of which every job read was picked, and that had more
 * ready jobs than the read took, in a queue that wants more. Each gets as many more as its
 * concurrency groups and queue still have room for (none with a rate limit: a start blocks the
 * group for the rest of the claim), plus one, so that a group left full or blocked with a job
 * ready is reported (`saturated`, `retryInMs`).
 */
function moreTails(st: ClaimState, want: ReadonlyMap<string, number>, p: FlowPlan): GroupTail[] {
  const picked = new Set(p.picked);
  const byId = new Map(st.candidates.map((c) => [c.id, c]));
  const left = new Map(want);
  const used = new Map<string, number>();
  const bump = (k: string): void => void used.set(k, (used.get(k) ?? 0) + 1);
  for (const id of p.picked) {
    const c = byId.get(id)!;
    left.set(c.queue, (left.get(c.queue) ?? 0) - 1);
    bump(typeGroup(c.type, c.concurrencyKey));
    bump(queueGroup(c.queue));
  }
  const groups = new Map<string, { last: ReadCandidate; n: number; allPicked: boolean }>();
  for (const c of st.candidates) {
    if (c.group === null) continue;
    const k = `${c.queue}\u0000${c.group.toString('hex')}`;
    const g = groups.get(k);
    if (g === undefined) groups.set(k, { last: c, n: 1, allPicked: picked.has(c.id) });
    else groups.set(k, { last: claimOrder(g.last, c) < 0 ? c : g.last, n: g.n + 1, allPicked: g.allPicked && picked.has(c.id) });
  }
  const tails: GroupTail[] = [];
  for (const { last: c, n: read, allPicked } of groups.values()) {
    const wanted = left.get(c.queue) ?? 0;
    if (!allPicked || read < FIRST_READ || wanted <= 0) continue;
    const tl = st.typeLimits.get(c.type);
    const ql = st.queueLimits.get(c.queue);
    let n = tl?.rateLimit != null || ql?.rateLimit != null ? 0 : wanted;
    const room = (limit: number | null | undefined, group: string): void => {
      if (limit != null) n = Math.min(n, limit - (st.running.get(group) ?? 0) - (used.get(group) ?? 0));
    };
    room(tl?.concurrency, typeGroup(c.type, c.concurrencyKey));
    room(ql?.concurrency, queueGroup(c.queue));
    tails.push({ queue: c.queue, group: c.group!, after: { priority: c.priority, runAt: c.runAt, id: c.id }, n: Math.max(0, n) + 1 });
  }
  return tails;
}

/** Claim order of two candidates: negative when `a` comes first. */
function claimOrder(a: FlowCandidate, b: FlowCandidate): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Whether a row locked now is still the candidate the plan saw, pending and ready. */
function unchanged(row: JobRow, c: FlowCandidate, now: number): boolean {
  return (
    row.status === 'pending' &&
    row.queue === c.queue &&
    row.type === c.type &&
    row.priority === c.priority &&
    row.runAt === c.runAt &&
    row.runAt <= now &&
    row.concurrencyKey === c.concurrencyKey &&
    row.rateKey === c.rateKey
  );
}

/**
 * Locks the picked rows (`SKIP LOCKED`); a row not locked, or changed since it was read, leaves
 * the candidates and the plan runs again, until every picked row is locked. Returns the final
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
    st.candidates = st.candidates.filter((c) => !dropped.has(c.id));
    p = plan(st, want);
  }
}

/** `Storage.jobClaimLimited` (see the module header). */
export async function jobClaimLimited(ctx: DriverContext, p: JobClaimLimitedParams): Promise<JobClaimLimitedResult> {
  // One entry per queue name, as in jobClaim.
  const queues = p.queues.filter((q, i) => q.limit >= 1 && p.queues.findIndex((o) => o.name === q.name) === i);
  if (queues.length === 0) return { rows: [], retryInMs: null, saturated: false };
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    await select(ex, FLOW_LOCK);
    const read = claimLimitedRead(now, queues);
    const st = parseRead(await select(ex, read.sql, read.values));
    const want = new Map(queues.filter((q) => !st.paused.has(q.name)).map((q) => [q.name, Math.floor(q.limit)]));
    let planned = plan(st, want);
    const tails = moreTails(st, want, planned);
    if (tails.length > 0) {
      const more = claimLimitedMore(now, tails);
      for (const r of await select(ex, more.sql, more.values)) st.candidates.push(toCandidate(r));
      planned = plan(st, want);
    }
    const { p: final, rows } = await lockPicked(ex, st, want, planned);
    const out = { retryInMs: final.retryInMs, saturated: final.saturated };
    if (final.picked.length === 0) return { rows: [], ...out };
    const at = st.now;
    const lease = at + p.leaseMs;
    await write(ex, CLAIM_UPDATE, [p.workerId, at, at, lease, final.picked]);
    if (final.tats.length > 0) await write(ex, rateStateUpsertSql(final.tats.length), final.tats.flatMap((t) => [t.scope, t.name, t.key, t.tat]));
    const claimed = final.picked.map((id) => {
      const r = rows.get(id)!;
      return { ...r, status: 'running' as const, attempt: r.attempt + 1, runCount: r.runCount + 1, lockedBy: p.workerId, startedAt: at, heartbeatAt: at, leaseExpiresAt: lease, wakeAt: null, waitSignal: null };
    });
    return { rows: claimed, ...out };
  });
}
