/**
 * The limited claim of the SQLite driver (`Storage.jobClaimLimited`): one `BEGIN IMMEDIATE`
 * transaction, so it is serialized with every other write on the file — every other limited
 * claim, in this process or another, included — and the counts it reads stay exact until it
 * commits. Reads, in order: the limits and queue rows, the running counts, the groups of each
 * queue with their first ready job (see `queries/flow.ts`); then the shared `planLimitedClaim`
 * decides, and while it took every job read of a group that may have more it could take, more
 * of that group is read and the plan made again (see {@link planWithEnoughRead}); the picked
 * jobs are claimed and the rate state stored. A claim whose queue holds one group with room for
 * every job asked for and no rate limit claims that group's first jobs without a plan
 * ({@link onlyGroup}): what a limit that does not bind costs is three small reads.
 * @internal
 */
import type { LimitRow } from '../flow-rows.js';
import { planLimitedClaim, queueGroup, typeGroup, type FlowCandidate, type FlowPlan } from '../shared/flow-plan.js';
import type { JobClaimLimitedParams, JobClaimLimitedResult, JobRow } from '../storage.js';
import { FLOW_CLAIM, FLOW_CLAIM_GROUP, FLOW_GROUP_JOBS, FLOW_GROUPS, FLOW_ONE_GROUP_JOBS, FLOW_LIMITS, FLOW_QUEUE_ANY_LIMITED, FLOW_QUEUE_JOBS, FLOW_RATE_SET, FLOW_RUNNING } from './queries/flow.js';
import { int, sqliteColumns, tupleToJobRow, type JobTuple } from './rows.js';
import type { SqliteContext, Statements } from './statements.js';

/** A `FLOW_LIMITS` row. */
interface LimitDbRow {
  scope: 'type' | 'queue';
  name: string;
  concurrency: number | bigint | null;
  rate_limit: number | bigint | null;
  rate_period_ms: number | bigint | null;
  updated_at: number | bigint;
  paused: number | bigint;
  tat: number | null;
}

/** A candidate row as the flow statements return it. */
interface CandidateDbRow {
  id: string;
  queue: string;
  type: string;
  priority: number | bigint;
  run_at: number | bigint;
  concurrency_key: string | null;
  rate_key: string | null;
}

/** A `FLOW_GROUPS` row: a group's first job, its group keys and its type rate state. */
interface GroupDbRow extends CandidateDbRow {
  ckey: string;
  rkey: string;
  tat: number | null;
}

/** What the reads found: the plan's input, being built. */
interface State {
  now: number;
  want: Map<string, number>;
  typeLimits: Map<string, LimitRow>;
  queueLimits: Map<string, LimitRow>;
  running: Map<string, number>;
  tat: Map<string, number>;
  candidates: FlowCandidate[];
}

const NOTHING: JobClaimLimitedResult = { rows: [], retryInMs: null, saturated: false };

function toCandidate(r: CandidateDbRow): FlowCandidate {
  return {
    id: r.id,
    queue: r.queue,
    type: r.type,
    priority: int(r.priority),
    runAt: int(r.run_at),
    concurrencyKey: r.concurrency_key,
    rateKey: r.rate_key,
  };
}

function toLimit(r: LimitDbRow): LimitRow {
  return {
    scope: r.scope,
    name: r.name,
    concurrency: sqliteColumns.optInt(r.concurrency),
    rateLimit: sqliteColumns.optInt(r.rate_limit),
    ratePeriodMs: sqliteColumns.optInt(r.rate_period_ms),
    updatedAt: int(r.updated_at),
  };
}

/** Reads the limits: drops paused queues from `want`; stores the limits and each queue's tat. */
function readLimits(c: Statements, s: State): void {
  for (const r of c.st(FLOW_LIMITS).all({ queues: JSON.stringify([...s.want.keys()]) }) as LimitDbRow[]) {
    if (r.scope === 'type') {
      s.typeLimits.set(r.name, toLimit(r));
      continue;
    }
    if (int(r.paused) !== 0) s.want.delete(r.name);
    else if (r.concurrency !== null || r.rate_limit !== null) s.queueLimits.set(r.name, toLimit(r));
    if (r.tat !== null) s.tat.set(queueGroup(r.name), r.tat);
  }
}

/** Counts the running jobs of the concurrency-limited types and queues. */
function readRunning(c: Statements, s: State): void {
  const types = [...s.typeLimits.values()].filter((l) => l.concurrency !== null).map((l) => l.name);
  const queues = [...s.queueLimits.values()].filter((l) => l.concurrency !== null && s.want.has(l.name)).map((l) => l.name);
  if (types.length === 0 && queues.length === 0) return;
  const rows = c.st(FLOW_RUNNING).all({ types: JSON.stringify(types), queues: JSON.stringify(queues) }) as {
    type: string;
    ckey: string;
    queue: string;
    n: number | bigint;
  }[];
  const add = (group: string, n: number): void => void s.running.set(group, (s.running.get(group) ?? 0) + n);
  for (const r of rows) {
    add(typeGroup(r.type, r.ckey), int(r.n));
    add(queueGroup(r.queue), int(r.n));
  }
}

/** The queue's side of what a group may start: blocked (full or rate-blocked), else its room. */
function queueRoom(s: State, queue: string): { full: boolean; blocked: boolean; room: number } {
  const l = s.queueLimits.get(queue);
  const want = s.want.get(queue) ?? 0;
  if (l === undefined) return { full: false, blocked: false, room: want };
  const running = s.running.get(queueGroup(queue)) ?? 0;
  const full = l.concurrency !== null && running >= l.concurrency;
  const waits = l.rateLimit !== null && (s.tat.get(queueGroup(queue)) ?? -Infinity) > s.now;
  return { full, blocked: full || waits, room: Math.min(want, l.concurrency === null ? Infinity : l.concurrency - running, l.rateLimit === null ? Infinity : 1) };
}

/**
 * How many ready jobs of a group the plan may look at: 1 when the group cannot start a job now
 * (full or rate-blocked: its later jobs would tell the plan nothing more, unless the plan fills a
 * concurrency group of it: see {@link planWithEnoughRead}), else its room and one more (the job
 * that finds it full or blocked once the plan has filled it).
 */
function groupNeed(s: State, g: GroupDbRow): number {
  const q = queueRoom(s, g.queue);
  const l = s.typeLimits.get(g.type);
  const running = s.running.get(typeGroup(g.type, g.ckey)) ?? 0;
  if (q.blocked || (l?.concurrency != null && running >= l.concurrency)) return 1;
  if (l?.rateLimit != null && (s.tat.get(typeGroup(g.type, g.rkey)) ?? -Infinity) > s.now) return 1;
  if (l === undefined) return q.room + 1;
  return Math.min(q.room, l.concurrency === null ? Infinity : l.concurrency - running, l.rateLimit === null ? Infinity : 1) + 1;
}

/** A group of limited jobs as read so far: a prefix, in claim order, of its ready jobs. */
interface GroupRead {
  key: [queue: string, type: string, ckey: string, rkey: string];
  /** Most ready jobs the plan may look at ({@link groupNeed}). */
  need: number;
  /** How many were asked for; fewer read means the group has no more. */
  asked: number;
  rows: FlowCandidate[];
}

/** Claim order of claimed rows: priority desc, run_at, id. */
function rowClaimOrder(a: JobRow, b: JobRow): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Claim order: priority desc, run_at, id (as the plan orders candidates). */
function claimOrder(a: FlowCandidate, b: FlowCandidate): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Reads the candidates: per queue whose concurrency limit is full, one ready job (to report it);
 * in a queue with a queue limit, its jobs without type limits as far as the queue has room, and
 * one more; and the groups of each queue's limited jobs, each with its first ready job. Returns
 * the groups (the other candidates go to `s.candidates`).
 */
function readCandidates(c: Statements, s: State): GroupRead[] {
  const walked = [...s.want.keys()].filter((q) => !queueRoom(s, q).full);
  for (const q of s.want.keys()) {
    if (walked.includes(q)) continue;
    const one = c.st(FLOW_QUEUE_JOBS).get({ queue: q, now: s.now, limit: 1 }) ?? c.st(FLOW_QUEUE_ANY_LIMITED).get({ queue: q, now: s.now });
    if (one !== undefined) s.candidates.push(toCandidate(one as CandidateDbRow));
  }
  if (walked.length === 0) return [];
  for (const q of walked) {
    if (!s.queueLimits.has(q)) continue;
    const room = queueRoom(s, q);
    const rows = c.st(FLOW_QUEUE_JOBS).all({ queue: q, now: s.now, limit: room.blocked ? 1 : room.room + 1 }) as CandidateDbRow[];
    for (const r of rows) s.candidates.push(toCandidate(r));
  }
  const groups: GroupRead[] = [];
  for (const g of c.st(FLOW_GROUPS).all({ queues: JSON.stringify(walked) }) as GroupDbRow[]) {
    if (g.tat !== null) s.tat.set(typeGroup(g.type, g.rkey), g.tat);
    const read: GroupRead = { key: [g.queue, g.type, g.ckey, g.rkey], need: groupNeed(s, g), asked: 1, rows: [] };
    if (int(g.run_at) <= s.now) read.rows.push(toCandidate(g));
    groups.push(read);
  }
  return groups;
}

/**
 * The one group a claim can take from without a plan: one queue asked for, without a queue
 * limit, holding one group of limited jobs, whose type has no rate limit and room for every job
 * asked for. The plan would pick the group's first ready jobs in claim order, as many as asked
 * for, and report nothing more (no wait, not saturated), so the claim takes them directly.
 */
function onlyGroup(s: State, groups: readonly GroupRead[]): { key: GroupRead['key']; limit: number } | undefined {
  if (s.want.size !== 1 || groups.length !== 1 || s.candidates.length > 0) return undefined;
  const g = groups[0]!;
  const [queue, type, ckey] = g.key;
  const want = s.want.get(queue);
  const l = s.typeLimits.get(type);
  if (want === undefined || s.queueLimits.has(queue) || l === undefined || l.rateLimit !== null) return undefined;
  if (l.concurrency !== null && l.concurrency - (s.running.get(typeGroup(type, ckey)) ?? 0) < want) return undefined;
  return { key: g.key, limit: want };
}

/**
 * The first read of each group that can start jobs asks for its share of its queue's room (the
 * room split evenly over those groups, and one more; at most what the group may need), so a queue of one or a
 * few groups is read in one statement rather than in rounds of growing reads; a queue with no
 * more room than groups still reads one job of each first.
 */
function askShares(s: State, groups: GroupRead[]): void {
  const open = new Map<string, GroupRead[]>();
  for (const g of groups) if (g.need > 1) open.set(g.key[0], [...(open.get(g.key[0]) ?? []), g]);
  for (const [queue, list] of open) {
    const room = queueRoom(s, queue).room;
    // A queue with no more room than groups takes at most one job of most: their first job was read.
    if (room <= list.length) continue;
    // One more than the share, as in `groupNeed`: the job after the last one the plan can take.
    const share = Math.ceil(room / list.length) + 1;
    for (const g of list) g.asked = Math.min(g.need, share);
  }
}

/** Groups read for this many jobs or more are read by a statement of their own (a range of the index). */
const RANGE_READ_FROM = 8;

/**
 * Reads the first `asked` ready jobs of each group (replacing what was read of it): a group
 * asked for many by a statement of its own, the others together (a seek per job).
 */
function readMore(c: Statements, s: State, groups: readonly GroupRead[]): void {
  if (groups.length === 0) return;
  const byKey = new Map<string, GroupRead>();
  const together: GroupRead[] = [];
  for (const g of groups) {
    if (g.asked >= RANGE_READ_FROM) {
      const [queue, type, ckey, rkey] = g.key;
      const rows = c.st(FLOW_ONE_GROUP_JOBS).all({ queue, type, ckey, rkey, now: s.now, limit: g.asked }) as CandidateDbRow[];
      g.rows = rows.map(toCandidate);
      continue;
    }
    g.rows = [];
    byKey.set(JSON.stringify(g.key), g);
    together.push(g);
  }
  if (together.length === 0) return;
  const rows = c.st(FLOW_GROUP_JOBS).all({ now: s.now, groups: JSON.stringify(together.map((g) => [...g.key, g.asked])) }) as CandidateDbRow[];
  for (const r of rows) byKey.get(JSON.stringify([r.queue, r.type, r.concurrency_key ?? '', r.rate_key ?? '']))?.rows.push(toCandidate(r));
  for (const g of together) g.rows.sort(claimOrder);
}

/** Whether the jobs picked filled a concurrency group of the group `g` that had room before. */
function filledBy(s: State, g: GroupRead, picked: readonly FlowCandidate[]): boolean {
  const [queue, type, ckey] = g.key;
  const limits: [group: string, limit: number | null | undefined, picks: number][] = [
    [typeGroup(type, ckey), s.typeLimits.get(type)?.concurrency, picked.filter((p) => p.type === type && (p.concurrencyKey ?? '') === ckey).length],
    [queueGroup(queue), s.queueLimits.get(queue)?.concurrency, picked.filter((p) => p.queue === queue).length],
  ];
  return limits.some(([group, limit, picks]) => limit != null && picks > 0 && (s.running.get(group) ?? 0) + picks >= limit);
}

/**
 * Plans over what was read, reading more of the groups that may need it, until none does. A
 * group needs more when it may have more ready jobs than were read (as many as asked were read,
 * fewer than it may need), the plan took every one read (a job left means its group was full or
 * rate-blocked, and stays so for the rest of the plan: the next ones would be left alike), and the
 * plan went on after the last one: its queue did not reach its claim limit, or reached it after
 * that job. The jobs after the point where a queue reached its limit never change a plan, so the
 * plan over what was read is the plan over every ready job, and a group is read little further
 * than the claim takes jobs from it. One exception to "a job left means the next ones are left
 * alike": a job left waiting on a rate, when the plan took jobs that filled a concurrency group
 * it belongs to (after it, in claim order), is followed by jobs that find that group full — the
 * plan reports `saturated` — so such a group is read further while the plan does not.
 */
function planWithEnoughRead(c: Statements, s: State, groups: readonly GroupRead[]): FlowPlan {
  for (;;) {
    const read = [...s.candidates, ...groups.flatMap((g) => g.rows)];
    const plan = planLimitedClaim({ ...s, candidates: read });
    const byId = new Map(read.map((r) => [r.id, r]));
    const picks = new Map<string, FlowCandidate[]>();
    for (const id of plan.picked) {
      const r = byId.get(id)!;
      picks.set(r.queue, [...(picks.get(r.queue) ?? []), r]);
    }
    const stop = (q: string): FlowCandidate | undefined => {
      const got = picks.get(q) ?? [];
      return got.length >= (s.want.get(q) ?? 0) ? got[got.length - 1] : undefined;
    };
    const seen = (g: GroupRead): boolean => {
      const last = g.rows[g.rows.length - 1];
      const at = stop(g.key[0]);
      return last !== undefined && g.rows.length === g.asked && (at === undefined || claimOrder(last, at) <= 0);
    };
    const picked = new Set(plan.picked);
    const short = groups.filter((g) => g.asked < g.need && seen(g) && g.rows.every((r) => picked.has(r.id)));
    // A job left without `saturated` waited on a rate: a later one may find a group filled since.
    const all = plan.picked.map((id) => byId.get(id)!);
    const filled = plan.saturated ? [] : groups.filter((g) => seen(g) && !picked.has(g.rows[g.rows.length - 1]!.id) && filledBy(s, g, all));
    if (short.length === 0 && filled.length === 0) return plan;
    for (const g of short) g.asked = Math.min(g.need, g.asked * 4);
    for (const g of filled) g.need = g.asked *= 4;
    readMore(c, s, [...short, ...filled]);
  }
}

function claimLimited(c: Statements, now: number, p: JobClaimLimitedParams, want: Map<string, number>): JobClaimLimitedResult {
  const s: State = { now, want, typeLimits: new Map(), queueLimits: new Map(), running: new Map(), tat: new Map(), candidates: [] };
  readLimits(c, s);
  if (s.want.size === 0) return NOTHING;
  readRunning(c, s);
  const groups = readCandidates(c, s);
  const only = onlyGroup(s, groups);
  if (only !== undefined) {
    const [queue, type, ckey, rkey] = only.key;
    const params = { queue, type, ckey, rkey, now, limit: only.limit, workerId: p.workerId, leaseExpiresAt: now + Math.trunc(p.leaseMs) };
    const rows = (c.raw(FLOW_CLAIM_GROUP).all(params) as JobTuple[]).map(tupleToJobRow).sort(rowClaimOrder);
    return { rows, retryInMs: null, saturated: false };
  }
  askShares(s, groups);
  readMore(c, s, groups.filter((g) => g.rows.length === 0 || g.asked > 1));
  if (s.candidates.length === 0 && groups.every((g) => g.rows.length === 0)) return NOTHING;
  const plan = planWithEnoughRead(c, s, groups);
  if (plan.tats.length > 0) c.st(FLOW_RATE_SET).run({ tats: JSON.stringify(plan.tats.map((t) => [t.scope, t.name, t.key, t.tat])) });
  let rows: JobRow[] = [];
  if (plan.picked.length > 0) {
    const tuples = c.raw(FLOW_CLAIM).all({ ids: JSON.stringify(plan.picked), workerId: p.workerId, now, leaseExpiresAt: now + Math.trunc(p.leaseMs) }) as JobTuple[];
    const order = new Map(plan.picked.map((id, i) => [id, i]));
    rows = tuples.map(tupleToJobRow).sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  }
  return { rows, retryInMs: plan.retryInMs, saturated: plan.saturated };
}

/**
 * `Storage.jobClaimLimited`: in one `BEGIN IMMEDIATE` transaction on the clock read once the
 * lock is held, reads what the plan needs, plans with `planLimitedClaim`, claims the picked jobs
 * (as `jobClaim` sets them) and stores the moved rate state. Rows in claim order.
 */
export function jobClaimLimited(ctx: SqliteContext, p: JobClaimLimitedParams): JobClaimLimitedResult {
  // One entry per queue (a name listed twice keeps its largest limit).
  const want = new Map<string, number>();
  for (const q of p.queues) {
    const limit = Math.trunc(q.limit);
    if (limit >= 1) want.set(q.name, Math.max(want.get(q.name) ?? 0, limit));
  }
  if (want.size === 0) return NOTHING;
  return ctx.write((c, now) => claimLimited(c, now, p, want));
}
