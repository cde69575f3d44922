/**
 * PostgreSQL statements of the run path: claim (the hot path of every worker cycle), finish,
 * heartbeat, release, reclaim and timed wake-ups.
 *
 * Claim shape: the candidates are picked and locked (`FOR UPDATE SKIP LOCKED`, claim order, on the
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
 * Queue rows are read `FOR SHARE` before any job is locked, so a concurrent pause (or queue
 * limit) either waits for this claim or is seen by it (a claim in flight cannot take jobs of a
 * queue paused before it returns). Limited jobs are not in the claim index (its predicate has
 * `limited = 0`, as the claim's condition does): they are `jobClaimLimited`'s.
 *
 * Partitions (migrations/0002): every statement here names the live partition `sdj_jobs_live`
 * (a ctid is only unique within one partition). An outcome that ends the job — completed,
 * failed, or a reclaim that fails it — deletes the row from the live partition and inserts its
 * finished version into `sdj_jobs` (routed to history) in the same statement (`moveInsert`); a
 * retry or a reclaim back to pending stays an UPDATE in place. Because a finished job's live row
 * is deleted rather than moved by an UPDATE, a claim whose snapshot still showed it pending, or
 * a heartbeat waiting for its lock, skips it as before instead of failing with 40001.
 * @internal
 */
import { CLEAR_LEASE, MOVE_CLEAR_LEASE, moveInsert, NOW, NOW_CTE } from './common.js';

/**
 * The `SET` of a claim (table alias `j`, requires `NOW_CTE`): running, attempt + 1,
 * run_count + 1, owner, lease. Shared by `jobClaim` and `jobClaimLimited` (`queries/flow.ts`).
 */
export function claimSet(worker: string, leaseMs: string): string {
  return `status = 'running', attempt = j.attempt + 1, run_count = j.run_count + 1, locked_by = ${worker},
    started_at = ${NOW}, heartbeat_at = ${NOW}, lease_expires_at = ${NOW} + ${leaseMs}::bigint`;
}

/** {@link claimSet} with `$4` worker and `$5` lease ms. */
const CLAIM_SET = claimSet('$4', '$5');

/**
 * The queue-row read of a claim: a queue is skipped when paused or when it has a queue limit
 * (its jobs are for `jobClaimLimited`), read `FOR SHARE` so that a pause or a limit set while
 * the claim is in flight waits for it.
 */
const QUEUE_SKIPPED = '(paused OR concurrency IS NOT NULL OR rate_limit IS NOT NULL)';

/** The candidate rows of queue `name` (an expression), at most `lim`, in claim order, locked. */
function candidates(name: string, lim: string): string {
  return `SELECT jj.ctid AS tid FROM {s}.sdj_jobs_live jj
    WHERE jj.status = 'pending' AND jj.limited = 0 AND jj.queue = ${name} AND jj.run_at <= ${NOW}
    ORDER BY jj.priority DESC, jj.run_at, jj.id
    LIMIT ${lim}
    FOR UPDATE OF jj SKIP LOCKED`;
}

/**
 * Claims up to `$3` ready jobs of one queue in claim order, skipping rows other claimers hold
 * and limited jobs, unless the queue is paused or has a queue limit. Params: $1 now, $2 queue, $3 limit, $4 worker id, $5 lease ms.
 * Result: the claimed rows (any order).
 */
export const JOB_CLAIM_ONE = `
WITH ${NOW_CTE},
ql AS MATERIALIZED (SELECT ${QUEUE_SKIPPED} AS paused FROM {s}.sdj_queues WHERE name = $2 FOR SHARE)
UPDATE {s}.sdj_jobs_live j
SET ${CLAIM_SET}
WHERE j.ctid = ANY(ARRAY(
  SELECT c.tid FROM (SELECT $3::int AS lim OFFSET 0) q
  CROSS JOIN LATERAL (${candidates('$2', 'q.lim')}) c
  WHERE NOT EXISTS (SELECT 1 FROM ql WHERE ql.paused)
))
RETURNING j.*`;

/**
 * Claims ready jobs of several queues in one statement: per queue (LATERAL) the first `lim`
 * pending jobs with run_at <= now in claim order, skipping rows other claimers hold and limited
 * jobs; paused queues and queues with a queue limit are left out. Params: $1 now, $2 queue names, $3 limits, $4 worker id, $5 lease ms.
 * Result: the claimed rows (any order).
 */
export const JOB_CLAIM_MANY = `
WITH ${NOW_CTE},
ql AS MATERIALIZED (
  SELECT name, ${QUEUE_SKIPPED} AS paused FROM {s}.sdj_queues WHERE name = ANY($2::text[]) ORDER BY name FOR SHARE
)
UPDATE {s}.sdj_jobs_live j
SET ${CLAIM_SET}
WHERE j.ctid = ANY(ARRAY(
  SELECT c.tid FROM unnest($2::text[], $3::int[]) AS q(name, lim)
  CROSS JOIN LATERAL (${candidates('q.name', 'q.lim')}) c
  WHERE NOT EXISTS (SELECT 1 FROM ql WHERE ql.name = q.name AND ql.paused)
))
RETURNING j.*`;

/**
 * The finish items, unnested in input order, with (per job, first item whose fence holds) the
 * job's fan-out and `walk`: a failed outcome of a job that has children (its subtree is then
 * cancelled; the probe runs for failed items only). Params $2..$8: job_id, worker_id,
 * run_count, outcome, result, error, delay_ms (one array each).
 */
const FINISH_ITEMS = `items AS (
  SELECT * FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::bigint[])
    WITH ORDINALITY AS i(job_id, worker_id, run_count, outcome, result, error, delay_ms, ord)
),
m AS MATERIALIZED (
  SELECT DISTINCT ON (i.job_id) i.*, j.fan_out_id, j.walk
  FROM items i
  CROSS JOIN LATERAL (
    SELECT jj.fan_out_id,
      CASE WHEN i.outcome = 'failed' THEN EXISTS (SELECT 1 FROM {s}.sdj_jobs k WHERE k.parent_id = jj.id) ELSE false END AS walk
    FROM {s}.sdj_jobs_live jj
    WHERE jj.id = i.job_id AND jj.locked_by = i.worker_id AND jj.run_count = i.run_count AND jj.status = 'running'
    OFFSET 0
  ) j
  ORDER BY i.job_id, i.ord
)`;

/**
 * The fence of a finish item (alias j = the job, m = its item). `j.id = ANY(...)` gives the
 * planner a primary-key lookup to start from, whatever its statistics say (the same in the
 * other id-driven updates).
 */
const FINISH_FENCE = "j.id = ANY($2::text[]) AND j.locked_by = m.worker_id AND j.run_count = m.run_count AND j.status = 'running'";

/**
 * Applies the fenced items of `m` that satisfy `cond`: a retry stays in the live partition
 * (`upd`: pending, run_at = now + delay, the error kept, lease dropped); a completed or failed
 * outcome moves the row to history (`del` + `ins`: see `moveInsert`). `fin` lists what applied:
 * { ord, queue, status, fan_out_id }. Requires `now` and `m` ({@link FINISH_ITEMS}).
 */
function finishApply(cond: string): string {
  return `upd AS (
  UPDATE {s}.sdj_jobs_live j
  SET status = 'pending', last_error = m.error, completed_at = NULL, run_at = n.t + m.delay_ms, ${CLEAR_LEASE}
  FROM m, now n
  WHERE j.id = m.job_id AND m.outcome = 'retry' AND ${cond} AND ${FINISH_FENCE}
  RETURNING m.ord, j.queue, j.status, j.fan_out_id
),
del AS (
  DELETE FROM {s}.sdj_jobs_live j
  USING m
  WHERE j.id = m.job_id AND m.outcome <> 'retry' AND ${cond} AND ${FINISH_FENCE}
  RETURNING j.*, m.ord, m.outcome, m.result AS new_result, m.error AS new_error
),
ins AS (
  ${moveInsert('del', {
    status: 'del.outcome',
    result: "CASE WHEN del.outcome = 'completed' THEN del.new_result ELSE del.result END",
    last_error: "CASE WHEN del.outcome = 'completed' THEN del.last_error ELSE del.new_error END",
    completed_at: NOW,
    ...MOVE_CLEAR_LEASE,
  })}
),
fin AS (
  SELECT ord, queue, status, fan_out_id FROM upd
  UNION ALL
  SELECT ord, queue, outcome, fan_out_id FROM del
)`;
}

/**
 * Applies run outcomes that need no fan-out accounting and no subtree cancel (jobs outside
 * fan-outs, and retries), in one autocommit statement. Per job only the first item (input order)
 * whose fence holds applies. Fenced terminal outcomes of fan-out children, and failures of jobs
 * that have children, are returned as deferred: the caller applies them in a transaction with
 * the accounting and the cancel.
 * Params: $1 now, $2..$8 item arrays, $9 channel. Result: { ord, deferred, walk, at } per item
 * applied or deferred (ord is 1-based; walk: a deferred failure whose subtree is cancelled; at:
 * the time an applied outcome was stored).
 */
export const JOB_FINISH_PLAIN = `
WITH ${NOW_CTE},
${FINISH_ITEMS},
${finishApply("((m.fan_out_id IS NULL AND NOT m.walk) OR m.outcome = 'retry')")},
ntf AS (SELECT pg_notify($9, d.queue) FROM (SELECT DISTINCT queue FROM fin WHERE status = 'pending') d)
SELECT ord, false AS deferred, false AS walk, (SELECT count(*) FROM ntf) AS notified, ${NOW} AS at FROM fin
UNION ALL
SELECT ord, true, walk, 0, NULL::bigint FROM m WHERE (m.fan_out_id IS NOT NULL OR m.walk) AND m.outcome <> 'retry'`;

/**
 * The common case of {@link JOB_FINISH_PLAIN}: every item completed, distinct job ids. One
 * fenced DELETE from the live partition joined to the items, without a per-item pre-read, and
 * the INSERT of the completed rows into history; fan-out children are left alone and returned
 * as deferred (looked up only among the items not applied). No `id = ANY` hint here: the cached
 * generic plan then drives from the items into the primary key (linear), where the hint made it
 * scan every item for every job row (quadratic in the batch size).
 * Params: $1 now, $2 job ids, $3 worker ids, $4 run counts, $5 results. Result: { ord,
 * deferred, at } per item applied or deferred (ord is 1-based; at: when an applied one was stored).
 */
export const JOB_FINISH_COMPLETED = `
WITH ${NOW_CTE},
del AS (
  DELETE FROM {s}.sdj_jobs_live j
  USING unnest($2::text[], $3::text[], $4::int[], $5::text[]) WITH ORDINALITY AS i(job_id, worker_id, run_count, result, ord)
  WHERE j.id = i.job_id AND j.locked_by = i.worker_id AND j.run_count = i.run_count
    AND j.status = 'running' AND j.fan_out_id IS NULL
  RETURNING j.*, i.ord, i.result AS new_result
),
ins AS (
  ${moveInsert('del', { status: "'completed'", result: 'del.new_result', completed_at: NOW, ...MOVE_CLEAR_LEASE })}
)
SELECT ord, false AS deferred, ${NOW} AS at FROM del
UNION ALL
SELECT c.ord, true, NULL::bigint FROM unnest($2::text[], $3::text[], $4::int[]) WITH ORDINALITY AS c(job_id, worker_id, run_count, ord)
WHERE c.ord NOT IN (SELECT ord FROM del)
  AND EXISTS (SELECT 1 FROM {s}.sdj_jobs_live k WHERE k.id = c.job_id AND k.locked_by = c.worker_id AND k.run_count = c.run_count
    AND k.status = 'running' AND k.fan_out_id IS NOT NULL)`;

/**
 * Applies terminal outcomes of fan-out children and failures of jobs with children (fenced,
 * first valid item per job) and counts fan-out children on their fan-outs; run after
 * `FAN_OUT_LOCK_FOR_JOBS` (`queries/fan-out.ts`) in the same transaction.
 * Params: $1 now, $2..$8 item arrays. Result: one row { applied: ord[] | null, fans: fan-out
 * rows (JSON) | null, now }.
 */
export const JOB_FINISH_CHILDREN = `
WITH ${NOW_CTE},
${FINISH_ITEMS},
${finishApply('true')},
cnt AS (
  UPDATE {s}.sdj_fan_outs f
  SET succeeded = f.succeeded + x.s, failed = f.failed + x.f, cancelled = f.cancelled + x.c
  FROM (
    SELECT fan_out_id, count(*) FILTER (WHERE status = 'completed') AS s,
      count(*) FILTER (WHERE status = 'failed') AS f, count(*) FILTER (WHERE status = 'cancelled') AS c
    FROM fin WHERE fan_out_id IS NOT NULL GROUP BY fan_out_id
  ) x
  WHERE f.id = x.fan_out_id
  RETURNING f.*
)
SELECT (SELECT json_agg(ord) FROM fin) AS applied, (SELECT json_agg(row_to_json(cnt)) FROM cnt) AS fans, ${NOW} AS now`;

/**
 * Extends the leases of the runs a worker still holds. Params: $1 now, $2 worker id,
 * $3 job ids, $4 run counts, $5 lease ms. Result: { id } of each run still held.
 */
export const JOB_HEARTBEAT = `
WITH ${NOW_CTE}
UPDATE {s}.sdj_jobs_live j SET heartbeat_at = n.t, lease_expires_at = n.t + $5::bigint
FROM unnest($3::text[], $4::int[]) AS r(job_id, run_count), now n
WHERE j.id = ANY($3::text[]) AND j.id = r.job_id AND j.locked_by = $2 AND j.run_count = r.run_count AND j.status = 'running'
RETURNING j.id`;

/**
 * Fenced: running → pending with the attempt given back and the lease dropped (shutdown).
 * Params: $1 job ids, $2 worker ids, $3 run counts, $4 channel. Result: { id } released.
 */
export const JOB_RELEASE = `
WITH upd AS (
  UPDATE {s}.sdj_jobs_live j SET status = 'pending', attempt = GREATEST(j.attempt - 1, 0), ${CLEAR_LEASE}
  FROM unnest($1::text[], $2::text[], $3::int[]) AS r(job_id, worker_id, run_count)
  WHERE j.id = ANY($1::text[]) AND j.id = r.job_id AND j.locked_by = r.worker_id AND j.run_count = r.run_count
    AND j.status = 'running'
  RETURNING j.id, j.queue
),
ntf AS (SELECT pg_notify($4, d.queue) FROM (SELECT DISTINCT queue FROM upd) d)
SELECT id, (SELECT count(*) FROM ntf) AS notified FROM upd`;

/**
 * The running jobs whose lease expired (lease_expires_at < now), oldest lease first, read
 * without locking: what {@link JOB_RECLAIM_EXPIRED} may take back, with what it will lock
 * first. `dying`: the run's attempts are spent (it fails); `walk`: it fails and has children
 * (its subtree is cancelled, so the fan-outs below it are locked first too).
 * Params: $1 now, $2 limit. Result: { id, run_count, dying, walk } per job.
 */
export const JOB_RECLAIM_CANDIDATES = `
WITH ${NOW_CTE}
SELECT j.id, j.run_count, j.attempt > j.max_retries AS dying,
  (j.attempt > j.max_retries AND EXISTS (SELECT 1 FROM {s}.sdj_jobs k WHERE k.parent_id = j.id)) AS walk
FROM {s}.sdj_jobs_live j
WHERE j.lease_expires_at < ${NOW} AND j.status = 'running'
ORDER BY j.lease_expires_at, j.id
LIMIT $2`;

/**
 * Takes back the candidate runs ({@link JOB_RECLAIM_CANDIDATES}) that are still the same run,
 * running and expired, skipping rows locked elsewhere: pending while attempt <= max_retries,
 * else failed (the attempt stays consumed). The fan-outs of the jobs $7 (the dying candidates
 * and the descendants of those with children) are locked first, in id order, before any job
 * row: the lock order of every accounting transaction. A job can only be taken back as the
 * run it was read as, so every job failed here had its fan-out locked first. Failed fan-out
 * children are counted on their fan-outs.
 * Params: $1 now, $2 candidate ids, $3 their run counts, $4 error when retried, $5 error when
 * failed, $6 channel, $7 ids of the jobs whose fan-outs are locked first.
 * Result: one row { jobs: [{id,type,queue,status,attempt,max_retries,walk}] | null, fans | null,
 * now }; walk: a failed job that has children (its subtree is to be cancelled).
 */
export const JOB_RECLAIM_EXPIRED = `
WITH ${NOW_CTE},
fl AS MATERIALIZED (
  SELECT f.id FROM {s}.sdj_fan_outs f
  WHERE f.id IN (SELECT j.fan_out_id FROM {s}.sdj_jobs j WHERE j.id = ANY($7::text[]) AND j.fan_out_id IS NOT NULL)
  ORDER BY f.id
  FOR UPDATE
),
exp AS MATERIALIZED (
  SELECT j.id FROM {s}.sdj_jobs_live j
  JOIN unnest($2::text[], $3::int[]) AS c(id, run_count) ON c.id = j.id
  WHERE j.id = ANY($2::text[]) AND j.run_count = c.run_count AND j.status = 'running'
    AND j.lease_expires_at < ${NOW} AND (SELECT count(*) FROM fl) >= 0
  ORDER BY j.id
  FOR UPDATE OF j SKIP LOCKED
),
upd AS (
  UPDATE {s}.sdj_jobs_live j
  SET status = 'pending', last_error = $4, completed_at = NULL, ${CLEAR_LEASE}
  FROM exp
  WHERE j.id = exp.id AND j.status = 'running' AND j.attempt <= j.max_retries
  RETURNING j.id, j.type, j.queue, j.status, j.attempt, j.max_retries, j.fan_out_id, false AS walk
),
del AS (
  DELETE FROM {s}.sdj_jobs_live j
  USING exp
  WHERE j.id = exp.id AND j.status = 'running' AND j.attempt > j.max_retries
  RETURNING j.*
),
ins AS (
  ${moveInsert('del', { status: "'failed'", last_error: '$5', completed_at: NOW, ...MOVE_CLEAR_LEASE })}
),
rec AS (
  SELECT id, type, queue, status, attempt, max_retries, fan_out_id, walk FROM upd
  UNION ALL
  SELECT d.id, d.type, d.queue, 'failed', d.attempt, d.max_retries, d.fan_out_id,
    EXISTS (SELECT 1 FROM {s}.sdj_jobs k WHERE k.parent_id = d.id)
  FROM del d
),
cnt AS (
  UPDATE {s}.sdj_fan_outs f SET failed = f.failed + x.f
  FROM (SELECT fan_out_id, count(*) AS f FROM rec WHERE status = 'failed' AND fan_out_id IS NOT NULL GROUP BY fan_out_id) x
  WHERE f.id = x.fan_out_id
  RETURNING f.*
),
ntf AS (SELECT pg_notify($6, d.queue) FROM (SELECT DISTINCT queue FROM rec WHERE status = 'pending') d)
SELECT
  (SELECT json_agg(json_build_object('id', id, 'type', type, 'queue', queue, 'status', status,
     'attempt', attempt, 'max_retries', max_retries, 'walk', walk)) FROM rec) AS jobs,
  (SELECT json_agg(row_to_json(cnt)) FROM cnt) AS fans,
  (SELECT count(*) FROM ntf) AS notified,
  ${NOW} AS now`;

/**
 * Wakes waiting jobs whose wake_at has passed, then (recovery sweep) parents still waiting on
 * a fan-out that is already decided and is their latest step; → pending, wake_at and
 * wait_signal cleared. Params: $1 now, $2 limit, $3 channel. Result: { id } of each job woken.
 */
export const JOB_WAKE_DUE = `
WITH ${NOW_CTE},
due AS MATERIALIZED (
  SELECT id FROM {s}.sdj_jobs_live
  WHERE status = 'waiting' AND wake_at <= ${NOW}
  ORDER BY wake_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
),
stuck AS MATERIALIZED (
  SELECT j.id FROM {s}.sdj_jobs_live j
  WHERE j.status = 'waiting' AND j.wait_signal IS NULL
    AND NOT EXISTS (SELECT 1 FROM due WHERE due.id = j.id)
    AND EXISTS (
      SELECT 1 FROM {s}.sdj_fan_outs f
      WHERE f.parent_id = j.id AND f.status <> 'running'
        AND NOT EXISTS (SELECT 1 FROM {s}.sdj_fan_outs f2 WHERE f2.parent_id = j.id AND f2.step_index > f.step_index)
        AND NOT EXISTS (SELECT 1 FROM {s}.sdj_steps s WHERE s.job_id = j.id AND s.step_index > f.step_index))
  LIMIT GREATEST($2 - (SELECT count(*) FROM due), 0)
  FOR UPDATE OF j SKIP LOCKED
),
upd AS (
  UPDATE {s}.sdj_jobs_live j SET status = 'pending', wake_at = NULL, wait_signal = NULL
  FROM (SELECT id FROM due UNION SELECT id FROM stuck) w
  WHERE j.id = w.id AND j.status = 'waiting'
  RETURNING j.id, j.queue
),
ntf AS (SELECT pg_notify($3, d.queue) FROM (SELECT DISTINCT queue FROM upd) d)
SELECT id, (SELECT count(*) FROM ntf) AS notified FROM upd`;
