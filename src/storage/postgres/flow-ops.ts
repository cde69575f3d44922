/**
 * The limited claim of the PostgreSQL driver (`Storage.jobClaimLimited`): one transaction
 * serialized with every other limited claim on the schema by a transaction-level advisory lock.
 * Round trips: BEGIN with the lock (one simple query), the candidate read, then — only when the
 * plan claims a job or moves a rate group — the claim with its rate-state write, and COMMIT:
 * four when jobs are claimed, three otherwise.
 * @internal
 */
import { createHash } from 'node:crypto';
import type { LimitRow } from '../flow-rows.js';
import { planLimitedClaim, queueGroup, typeGroup, type FlowCandidate } from '../shared/flow-plan.js';
import type { JobClaimLimitedParams, JobClaimLimitedResult, JobRow } from '../storage.js';
import { withTx } from './connection.js';
import type { PgExec } from './executor.js';
import { FLOW_CANDIDATES, FLOW_CLAIM, flowBegin } from './queries/flow.js';
import { pgColumns, toInt, toJobRow, type JobDbRow } from './rows.js';

/** The advisory lock key of a schema's limited claims (a signed 64-bit integer, as text). */
export function flowLockKey(schema: string): string {
  const h = createHash('sha1').update(`simple-durable-jobs:flow:${schema}`).digest();
  return h.readBigInt64BE(0).toString();
}

/** A row of `FLOW_CANDIDATES`. */
interface CandidateDbRow {
  id: string;
  queue: string;
  type: string;
  priority: number;
  run_at: string;
  concurrency_key: string | null;
  rate_key: string | null;
  now: string;
  t_conc: number | null;
  t_rate: number | null;
  t_period: string | null;
  t_upd: string | null;
  q_conc: number | null;
  q_rate: number | null;
  q_period: string | null;
  q_upd: string | null;
  run_q: string;
  tat_q: number | null;
  run_t: string;
  tat_t: number | null;
}

/** A limit row from a candidate's columns (`t` or `q`), or undefined when it has none. */
function limitOf(r: CandidateDbRow, scope: 'type' | 'queue'): LimitRow | undefined {
  const [conc, rate, period, upd] = scope === 'type' ? [r.t_conc, r.t_rate, r.t_period, r.t_upd] : [r.q_conc, r.q_rate, r.q_period, r.q_upd];
  if (conc === null && rate === null) return undefined;
  return {
    scope,
    name: scope === 'type' ? r.type : r.queue,
    concurrency: pgColumns.optInt(conc),
    rateLimit: pgColumns.optInt(rate),
    ratePeriodMs: pgColumns.optInt(period),
    updatedAt: pgColumns.int(upd),
  };
}

/** The plan's input from the candidate rows (each row carries its groups' limits, counts and tats). */
function planInput(rows: readonly CandidateDbRow[], want: ReadonlyMap<string, number>) {
  const typeLimits = new Map<string, LimitRow>();
  const queueLimits = new Map<string, LimitRow>();
  const running = new Map<string, number>();
  const tat = new Map<string, number>();
  const candidates: FlowCandidate[] = [];
  for (const r of rows) {
    const tl = limitOf(r, 'type');
    const ql = limitOf(r, 'queue');
    if (tl !== undefined) typeLimits.set(r.type, tl);
    if (ql !== undefined) queueLimits.set(r.queue, ql);
    running.set(typeGroup(r.type, r.concurrency_key), toInt(r.run_t));
    running.set(queueGroup(r.queue), toInt(r.run_q));
    if (r.tat_t !== null) tat.set(typeGroup(r.type, r.rate_key), pgColumns.num(r.tat_t));
    if (r.tat_q !== null) tat.set(queueGroup(r.queue), pgColumns.num(r.tat_q));
    candidates.push({
      id: r.id,
      queue: r.queue,
      type: r.type,
      priority: r.priority,
      runAt: toInt(r.run_at),
      concurrencyKey: r.concurrency_key,
      rateKey: r.rate_key,
    });
  }
  return { now: toInt(rows[0]!.now), want, typeLimits, queueLimits, running, tat, candidates };
}

/**
 * `Storage.jobClaimLimited`: lock, read the candidates of the groups that have room (and one
 * job per queue of those that do not, to report them), plan with `planLimitedClaim`, claim the
 * planned jobs and store the moved rate state, commit. Rows are returned in claim order.
 */
export async function jobClaimLimited(x: PgExec, p: JobClaimLimitedParams): Promise<JobClaimLimitedResult> {
  // One entry per queue (a name listed twice keeps its largest limit).
  const want = new Map<string, number>();
  for (const q of p.queues) if (q.limit >= 1) want.set(q.name, Math.max(want.get(q.name) ?? 0, Math.trunc(q.limit)));
  if (want.size === 0) return { rows: [], retryInMs: null, saturated: false };
  const lease = Math.trunc(p.leaseMs);
  return withTx(
    x.pool,
    async (c) => {
      const rows = await x.rows<CandidateDbRow>(FLOW_CANDIDATES, [x.now(), [...want.keys()], [...want.values()]], c);
      if (rows.length === 0) return { rows: [], retryInMs: null, saturated: false };
      const input = planInput(rows, want);
      const plan = planLimitedClaim(input);
      let claimed: JobRow[] = [];
      if (plan.picked.length > 0 || plan.tats.length > 0) {
        const t = plan.tats;
        const got = await x.rows<JobDbRow>(
          FLOW_CLAIM,
          [input.now, plan.picked, p.workerId, lease, t.map((w) => w.scope), t.map((w) => w.name), t.map((w) => w.key), t.map((w) => w.tat)],
          c,
        );
        const order = new Map(plan.picked.map((id, i) => [id, i]));
        claimed = got.map(toJobRow).sort((a, b) => order.get(a.id)! - order.get(b.id)!);
      }
      return { rows: claimed, retryInMs: plan.retryInMs, saturated: plan.saturated };
    },
    flowBegin(flowLockKey(x.schema)),
  );
}
