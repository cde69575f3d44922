/**
 * PostgreSQL claim statements (the hot path of every worker cycle).
 *
 * Shape: the candidates are picked and locked (`FOR UPDATE SKIP LOCKED`, claim order, on the
 * partial claim index) inside an `ARRAY(...)` sub-select, which runs exactly once (an InitPlan,
 * so the LIMIT can never be re-evaluated per row and over-claim), and the rows are then updated
 * by physical address (`ctid = ANY(...)`, a TID scan: no second primary-key lookup). The ctid
 * is stable between the two because this statement holds the row lock. The UPDATE has no
 * `FROM`, so PostgreSQL needs no whole-row copies of joined rows for its re-check machinery.
 *
 * Plan caching: both statements run as named prepared statements. The single-queue one hides
 * its limit behind a lateral column (`(SELECT $3 AS lim OFFSET 0)`), so the generic plan and a
 * custom plan estimate the same row counts and PostgreSQL settles on the generic plan after
 * five executions: the statement is then no longer planned on each claim. Its generic plan is
 * an index scan on the claim index and a TID scan, whatever the parameters.
 *
 * Queue rows are read `FOR SHARE` before any job is locked, so a concurrent pause either waits
 * for this claim or is seen by it (a claim in flight cannot take jobs of a queue paused before
 * it returns).
 * @internal
 */
import { NOW, NOW_CTE } from './common.js';

/** The `SET` of a claim: running, attempt + 1, run_count + 1, owner, lease (`$4` worker, `$5` lease ms). */
const CLAIM_SET = `status = 'running', attempt = j.attempt + 1, run_count = j.run_count + 1, locked_by = $4,
    started_at = ${NOW}, heartbeat_at = ${NOW}, lease_expires_at = ${NOW} + $5::bigint`;

/** The candidate rows of queue `name` (an expression), at most `lim`, in claim order, locked. */
function candidates(name: string, lim: string): string {
  return `SELECT jj.ctid AS tid FROM {s}.sdj_jobs jj
    WHERE jj.status = 'pending' AND jj.queue = ${name} AND jj.run_at <= ${NOW}
    ORDER BY jj.priority DESC, jj.run_at, jj.id
    LIMIT ${lim}
    FOR UPDATE OF jj SKIP LOCKED`;
}

/**
 * Claims up to `$3` ready jobs of one queue in claim order, skipping rows other claimers hold,
 * unless the queue is paused. Params: $1 now, $2 queue, $3 limit, $4 worker id, $5 lease ms.
 * Result: the claimed rows (any order).
 */
export const JOB_CLAIM_ONE = `
WITH ${NOW_CTE},
ql AS MATERIALIZED (SELECT paused FROM {s}.sdj_queues WHERE name = $2 FOR SHARE)
UPDATE {s}.sdj_jobs j
SET ${CLAIM_SET}
WHERE j.ctid = ANY(ARRAY(
  SELECT c.tid FROM (SELECT $3::int AS lim OFFSET 0) q
  CROSS JOIN LATERAL (${candidates('$2', 'q.lim')}) c
  WHERE NOT EXISTS (SELECT 1 FROM ql WHERE ql.paused)
))
RETURNING j.*`;

/**
 * Claims ready jobs of several queues in one statement: per queue (LATERAL) the first `lim`
 * pending jobs with run_at <= now in claim order, skipping rows other claimers hold; paused
 * queues are left out. Params: $1 now, $2 queue names, $3 limits, $4 worker id, $5 lease ms.
 * Result: the claimed rows (any order).
 */
export const JOB_CLAIM_MANY = `
WITH ${NOW_CTE},
ql AS MATERIALIZED (
  SELECT name, paused FROM {s}.sdj_queues WHERE name = ANY($2::text[]) ORDER BY name FOR SHARE
)
UPDATE {s}.sdj_jobs j
SET ${CLAIM_SET}
WHERE j.ctid = ANY(ARRAY(
  SELECT c.tid FROM unnest($2::text[], $3::int[]) AS q(name, lim)
  CROSS JOIN LATERAL (${candidates('q.name', 'q.lim')}) c
  WHERE NOT EXISTS (SELECT 1 FROM ql WHERE ql.name = q.name AND ql.paused)
))
RETURNING j.*`;
