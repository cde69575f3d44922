/**
 * The limited claim of the PostgreSQL driver (`Storage.jobClaimLimited`), optimistic: the
 * candidate read (with the flow-state version), the shared plan, and the claim that stores the
 * plan only if the version has not moved since the read (see `queries/flow.ts`). Round trips:
 * one when the plan is plain (no rate or queue limit in play and room for every job the claim
 * asks for: the first read claims them itself; a claim of one queue reads with the smaller
 * `FLOW_CLAIM_PLAIN_ONE` first, which claims a plain plan and says when the full read is needed,
 * then that queue's claims skip it for {@link PLAIN_SKIP_MS}), else two when it claims a job or moves rate
 * state, one otherwise, plus one read more when the first read of a queue was cut short and the
 * plan could not fill it (two when that one could not either). A claim whose version moved
 * (another limited claim stored its plan, or a limit changed) reads and plans again; after
 * {@link OPTIMISTIC_ATTEMPTS} such losses in a row it runs in a transaction holding the
 * flow-state row, where it cannot lose.
 * @internal
 */
import type { LimitRow } from '../flow-rows.js';
import { planLimitedClaim, queueGroup, typeGroup, type FlowCandidate, type FlowPlan, type FlowPlanInput } from '../shared/flow-plan.js';
import type { JobClaimLimitedParams, JobClaimLimitedResult, JobRow } from '../storage.js';
import { withTx, type PgQueryableLike } from './connection.js';
import type { PgExec } from './executor.js';
import { FLOW_BEGIN_LOCKED, FLOW_CANDIDATES, FLOW_CANDIDATES_DEEP, FLOW_CLAIM, FLOW_CLAIM_PLAIN_ONE } from './queries/flow.js';
import { toInt, toJobRow, type JobDbRow } from './rows.js';

/**
 * The most jobs a limited claim asks for per queue (a larger limit asks for this many): the
 * candidate reads compute sizes from it as 32-bit integers (`1024 + 32 × limit` at most).
 */
export const CLAIM_LIMIT_MAX = 1_000_000;

/** Compare-and-set attempts before the claim runs holding the flow-state row. */
export const OPTIMISTIC_ATTEMPTS = 3;

/**
 * How long (ms) the claims of a queue go straight to the full read after `FLOW_CLAIM_PLAIN_ONE`
 * found that queue's plan not plain (a queue limit, a rate limit or a full group in play): at
 * most one statement a second per such queue is spent on finding it so.
 */
export const PLAIN_SKIP_MS = 1000;

/** Per executor: until when (monotonic ms) each queue's claims skip `FLOW_CLAIM_PLAIN_ONE`. */
const plainSkip = new WeakMap<PgExec, Map<string, number>>();

/** A candidate read (`queries/flow.ts`, `result`): one JSON array, lists null when empty. */
type CandidateRead = [
  now: number,
  version: string,
  /** [queue, id, tid, type, priority, run_at, concurrency_key, rate_key, limited] */
  jobs: [string, string, string, string, number, number, string | null, string | null, number][] | null,
  /** [type, concurrency, rate_limit, rate_period_ms, updated_at] */
  types: [string, number | null, number | null, number | null, number][] | null,
  /** [type, key, running] */
  counts: [string, string, number][] | null,
  /** [type, key, tat] */
  tats: [string, string, number][] | null,
  /** [name, concurrency, rate_limit, rate_period_ms, updated_at, running, tat, trunc] */
  queues: [string, number | null, number | null, number | null, number | null, number, number | null, boolean][] | null,
];

/** A row holding a candidate read (null when the statement claimed instead). */
interface CandidateDbRow {
  read: CandidateRead | null;
}

/** A `FLOW_CLAIM` row: whether the version held and a claimed job (null id when none). */
type ClaimDbRow = { won: boolean } & JobDbRow;

/** A candidate as the claim needs it back: its address and the groups it was read with. */
interface ReadJob {
  queue: string;
  tid: string;
  concurrencyKey: string | null;
  rateKey: string | null;
}

/** A limit row, or undefined when neither limit is set. */
function limitOf(scope: 'type' | 'queue', name: string, conc: number | null, rate: number | null, period: number | null, updatedAt: number | null): LimitRow | undefined {
  if (conc === null && rate === null) return undefined;
  return { scope, name, concurrency: conc, rateLimit: rate, ratePeriodMs: period, updatedAt: updatedAt ?? 0 };
}

/** What a candidate read tells: the plan's input, each candidate as read, the queues cut short and the version. */
interface ReadResult {
  input: FlowPlanInput;
  jobs: Map<string, ReadJob>;
  cut: Set<string>;
  version: string;
}

/** The plan's input and the rest from a read's row (undefined: no candidate). */
function readResult(row: CandidateDbRow | undefined, want: ReadonlyMap<string, number>): ReadResult | undefined {
  const read = row?.read;
  if (read == null || read[2] === null) return undefined;
  const [now, version, rowJobs, rowTypes, rowCounts, rowTats, rowQueues] = read;
  const typeLimits = new Map<string, LimitRow>();
  const queueLimits = new Map<string, LimitRow>();
  const running = new Map<string, number>();
  const tat = new Map<string, number>();
  const candidates: FlowCandidate[] = [];
  const jobs = new Map<string, ReadJob>();
  const cut = new Set<string>();
  for (const [queue, id, tid, type, priority, runAt, concurrencyKey, rateKey] of rowJobs) {
    jobs.set(id, { queue, tid, concurrencyKey, rateKey });
    candidates.push({ id, queue, type, priority, runAt, concurrencyKey, rateKey });
  }
  for (const [type, conc, rate, period, upd] of rowTypes ?? []) {
    const l = limitOf('type', type, conc, rate, period, upd);
    if (l !== undefined) typeLimits.set(type, l);
  }
  for (const [type, key, n] of rowCounts ?? []) running.set(typeGroup(type, key), n);
  for (const [type, key, t] of rowTats ?? []) tat.set(typeGroup(type, key), t);
  for (const [name, conc, rate, period, upd, n, t, trunc] of rowQueues ?? []) {
    const l = limitOf('queue', name, conc, rate, period, upd);
    if (l !== undefined) queueLimits.set(name, l);
    running.set(queueGroup(name), n);
    if (t !== null) tat.set(queueGroup(name), t);
    if (trunc) cut.add(name);
  }
  return { input: { now: toInt(now), want, typeLimits, queueLimits, running, tat, candidates }, jobs, cut, version };
}

/** True when a queue whose candidates were cut short was not filled by the plan (read deeper). */
function fellShort(r: ReadResult, plan: FlowPlan): boolean {
  if (r.cut.size === 0) return false;
  const picked = new Map<string, number>();
  for (const id of plan.picked) {
    const q = r.jobs.get(id)!.queue;
    picked.set(q, (picked.get(q) ?? 0) + 1);
  }
  return [...r.cut].some((q) => (picked.get(q) ?? 0) < r.input.want.get(q)!);
}

/** A read and its plan. */
interface Planned extends ReadResult {
  plan: FlowPlan;
}

/** A `FLOW_CANDIDATES` row: the claim it made (`won`, job columns) or the read (`read`). */
type FirstDbRow = { won: boolean; fast: boolean } & CandidateDbRow & JobDbRow;

/** Claim order of rows: priority desc, run_at, id (the order of `planLimitedClaim`). */
function byClaimOrder(a: JobRow, b: JobRow): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.runAt !== b.runAt) return a.runAt - b.runAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The jobs a claiming statement's rows hold (a row without an id holds none), in claim order. */
function claimedRows(rows: readonly JobDbRow[]): JobRow[] {
  return rows.filter((r) => r.id != null).map(toJobRow).sort(byClaimOrder);
}

/**
 * The first read, which claims by itself when its plan is plain: the claimed rows (`claimed`),
 * or a version that moved under a plain plan (`lost`), or the read.
 */
type First = { claimed: JobRow[] } | { lost: true } | { read: CandidateDbRow | undefined };

/** A `FLOW_CLAIM_PLAIN_ONE` row: what the plan was, whether it claimed, and a claimed job. */
type PlainDbRow = { plan: 'plain' | 'empty' | 'read'; won: boolean } & JobDbRow;

/**
 * The claim of one queue whose plan may be plain (`FLOW_CLAIM_PLAIN_ONE`): as {@link First}, or
 * `empty` (nothing to claim), or undefined when the full read is needed (then the queue skips
 * this statement for {@link PLAIN_SKIP_MS}).
 */
async function plainOne(x: PgExec, c: PgQueryableLike, p: JobClaimLimitedParams, queue: string, limit: number): Promise<First | { empty: true } | undefined> {
  let skip = plainSkip.get(x);
  const now = performance.now();
  if ((skip?.get(queue) ?? -Infinity) > now) return undefined;
  const rows = await x.rows<PlainDbRow>(FLOW_CLAIM_PLAIN_ONE, [x.now(), queue, limit, p.workerId, Math.trunc(p.leaseMs)], c);
  const head = rows[0]!;
  if (head.plan === 'empty') return { empty: true };
  if (head.plan === 'plain') return head.won ? { claimed: claimedRows(rows) } : { lost: true };
  if (skip === undefined) plainSkip.set(x, (skip = new Map()));
  for (const [q, until] of skip) if (until <= now) skip.delete(q);
  skip.set(queue, now + PLAIN_SKIP_MS);
  return undefined;
}

/** Runs the first read (see `FLOW_CANDIDATES`), after the smaller statement for a claim of one queue. */
async function firstRead(x: PgExec, c: PgQueryableLike, p: JobClaimLimitedParams, want: ReadonlyMap<string, number>): Promise<First | { empty: true }> {
  if (want.size === 1) {
    const [queue, limit] = [...want][0]!;
    const r = await plainOne(x, c, p, queue, limit);
    if (r !== undefined) return r;
  }
  const rows = await x.rows<FirstDbRow>(FLOW_CANDIDATES, [x.now(), [...want.keys()], [...want.values()], false, p.workerId, Math.trunc(p.leaseMs)], c);
  const head = rows[0]!;
  if (head.won) return { claimed: claimedRows(rows) };
  if (head.fast) return { lost: true };
  return { read: head };
}

/**
 * Plans on the first read; when a queue it cut short is not filled by the plan, reads deeper and
 * plans again; when that read cut short a queue still not filled, reads it all (undefined:
 * nothing ready).
 */
async function plan(x: PgExec, c: PgQueryableLike, first: CandidateDbRow | undefined, want: ReadonlyMap<string, number>): Promise<Planned | undefined> {
  let r = readResult(first, want);
  for (const complete of [false, true]) {
    if (r === undefined) return undefined;
    const planned = planLimitedClaim(r.input);
    if (!fellShort(r, planned)) return { ...r, plan: planned };
    r = readResult(await x.one<CandidateDbRow>(FLOW_CANDIDATES_DEEP, [x.now(), [...want.keys()], [...want.values()], complete], c), want);
  }
  return r === undefined ? undefined : { ...r, plan: planLimitedClaim(r.input) };
}

/**
 * Stores a plan (compare and set on the version read with it); the claimed rows in claim order,
 * or undefined when the version had moved.
 */
async function store(x: PgExec, c: PgQueryableLike, p: JobClaimLimitedParams, r: Planned): Promise<JobRow[] | undefined> {
  const picked = r.plan.picked.map((id) => r.jobs.get(id)!);
  const t = r.plan.tats;
  const got = await x.rows<ClaimDbRow>(
    FLOW_CLAIM,
    [
      r.input.now,
      r.version,
      r.plan.picked,
      picked.map((j) => j.queue),
      picked.map((j) => j.concurrencyKey),
      picked.map((j) => j.rateKey),
      p.workerId,
      Math.trunc(p.leaseMs),
      t.map((w) => w.scope),
      t.map((w) => w.name),
      t.map((w) => w.key),
      t.map((w) => w.tat),
      picked.map((j) => j.tid),
    ],
    c,
  );
  if (got[0]?.won !== true) return undefined;
  const order = new Map(r.plan.picked.map((id, i) => [id, i]));
  return got
    .filter((row) => row.id != null)
    .map(toJobRow)
    .sort((a, b) => order.get(a.id)! - order.get(b.id)!);
}

/** One read, plan and (when the plan starts or moves anything) store; undefined when the version moved. */
async function attempt(x: PgExec, c: PgQueryableLike, p: JobClaimLimitedParams, want: ReadonlyMap<string, number>): Promise<JobClaimLimitedResult | undefined> {
  const first = await firstRead(x, c, p, want);
  if ('claimed' in first) return { rows: first.claimed, retryInMs: null, saturated: false };
  if ('lost' in first) return undefined;
  if ('empty' in first) return { rows: [], retryInMs: null, saturated: false };
  const r = await plan(x, c, first.read, want);
  if (r === undefined) return { rows: [], retryInMs: null, saturated: false };
  const done = { retryInMs: r.plan.retryInMs, saturated: r.plan.saturated };
  if (r.plan.picked.length === 0 && r.plan.tats.length === 0) return { rows: [], ...done };
  const rows = await store(x, c, p, r);
  return rows === undefined ? undefined : { rows, ...done };
}

/**
 * `Storage.jobClaimLimited`: read the candidates of the groups that can start a job (and what
 * tells `saturated` and `retryInMs`), plan with `planLimitedClaim`, and store the plan if no
 * other limited claim or limit change came in between; else again. Rows in claim order.
 */
export async function jobClaimLimited(x: PgExec, p: JobClaimLimitedParams): Promise<JobClaimLimitedResult> {
  // One entry per queue (a name listed twice keeps its largest limit).
  const want = new Map<string, number>();
  for (const q of p.queues) if (q.limit >= 1) want.set(q.name, Math.max(want.get(q.name) ?? 0, Math.min(CLAIM_LIMIT_MAX, Math.trunc(q.limit))));
  if (want.size === 0) return { rows: [], retryInMs: null, saturated: false };
  for (let n = 0; n < OPTIMISTIC_ATTEMPTS; n++) {
    const r = await x.onClaimConnection((c) => attempt(x, c, p, want));
    if (r !== undefined) return r;
  }
  // Holding the flow-state row, the version cannot move under the claim.
  return withTx(
    x.pool,
    async (c) => (await attempt(x, c, p, want)) ?? { rows: [], retryInMs: null, saturated: false },
    FLOW_BEGIN_LOCKED.replaceAll('{s}', x.schemaSql),
  );
}
