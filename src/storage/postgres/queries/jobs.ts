/**
 * PostgreSQL statements over `sdj_jobs`: insert, reads, counts, pause/resume and retry. Every value
 * is a bound parameter; `$1` is always the optional "now" (see `NOW_CTE`). Statements that make
 * jobs ready call `pg_notify(channel, queue)`, delivered when their transaction commits.
 * @internal
 */
import { CLEAR_LEASE, NOW, NOW_CTE } from './common.js';

/**
 * The column arrays of a job batch, unnested in input order. Params $2..$16: id, type, queue,
 * priority, max_retries, args, meta, delay_ms, run_at, timeout_ms, unique_key, tenant,
 * parent_id, fan_out_id, fan_out_index (one array each).
 */
const JOB_ARRAYS = `unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::text[], $8::text[],
    $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::text[], $15::text[], $16::int[])
  WITH ORDINALITY AS u(id, type, queue, priority, max_retries, args, meta, delay_ms, run_at, timeout_ms,
    unique_key, tenant, parent_id, fan_out_id, fan_out_index, ord)`;

function jobInsert(conflict: string): string {
  return `
WITH ${NOW_CTE},
ins AS (
  INSERT INTO {s}.sdj_jobs (id, type, queue, status, priority, attempt, max_retries, run_count, args, meta,
    run_at, created_at, timeout_ms, unique_key, tenant, parent_id, fan_out_id, fan_out_index)
  SELECT u.id, u.type, u.queue, 'pending', u.priority, 0, u.max_retries, 0, u.args, u.meta,
    GREATEST(n.t + u.delay_ms, COALESCE(u.run_at, 0)), n.t, u.timeout_ms, u.unique_key, u.tenant,
    u.parent_id, u.fan_out_id, u.fan_out_index
  FROM ${JOB_ARRAYS}
  CROSS JOIN now n
  ORDER BY u.ord
  ${conflict}
  RETURNING id, queue
),
qs AS (
  INSERT INTO {s}.sdj_queues (name, paused, updated_at)
  SELECT DISTINCT i.queue, false, ${NOW} FROM ins i ORDER BY 1
  ON CONFLICT (name) DO NOTHING
),
ntf AS (SELECT pg_notify($17, d.queue) FROM (SELECT DISTINCT queue FROM ins) d)
SELECT i.id, (SELECT count(*) FROM ntf) AS notified FROM ins i`;
}

/**
 * Inserts a batch of pending jobs in one statement (run_at = max(now + delay_ms, run_at)),
 * records their queues in `sdj_queues` (so a pause can lock them) and notifies each queue.
 * A unique-key clash fails the whole statement (23505 on `sdj_jobs_unique_key`).
 * Params: $1 now, $2..$16 the job arrays, $17 channel. Result: { id } of each job inserted.
 */
export const JOB_INSERT = jobInsert('');

/** As {@link JOB_INSERT}, but jobs clashing on a key (or id) are left out. */
export const JOB_INSERT_SKIP = jobInsert('ON CONFLICT DO NOTHING');

/** One job by id. Params: $1 id. Result: the job row or none. */
export const JOB_GET = 'SELECT * FROM {s}.sdj_jobs WHERE id = $1';

/** Jobs by id (each once, ids not found left out). Params: $1 ids. Result: job rows. */
export const JOB_GET_MANY = 'SELECT * FROM {s}.sdj_jobs WHERE id = ANY($1::text[])';

function jobList(dir: 'ASC' | 'DESC'): string {
  return `
SELECT * FROM {s}.sdj_jobs
WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR queue = $2) AND ($3::text IS NULL OR type = $3)
  AND ($4::text IS NULL OR parent_id = $4) AND ($5::text IS NULL OR fan_out_id = $5)
ORDER BY created_at ${dir}, id ${dir}
LIMIT $6 OFFSET $7`;
}

/**
 * Jobs matching optional filters (null = any), newest first.
 * Params: $1 status, $2 queue, $3 type, $4 parent_id, $5 fan_out_id, $6 limit, $7 offset.
 * Result: job rows.
 */
export const JOB_LIST_DESC = jobList('DESC');

/** As {@link JOB_LIST_DESC}, oldest first. */
export const JOB_LIST_ASC = jobList('ASC');

/** Job counts by status, optionally in one queue. Params: $1 queue or null. Result: { status, n }. */
export const JOB_COUNT_BY_STATUS = `
SELECT status, count(*) AS n FROM {s}.sdj_jobs WHERE ($1::text IS NULL OR queue = $1) GROUP BY status`;

/**
 * Moves a job between two statuses (pause: pending → paused; resume: paused → pending,
 * notifying its queue). Params: $1 id, $2 from, $3 to, $4 channel.
 * Result: one row { status: the status before (null when the job does not exist), n: rows changed }.
 */
export const JOB_SET_STATUS = `
WITH cur AS (SELECT status FROM {s}.sdj_jobs WHERE id = $1),
upd AS (
  UPDATE {s}.sdj_jobs SET status = $3 WHERE id = $1 AND status = $2 RETURNING queue, status
),
ntf AS (SELECT pg_notify($4, queue) FROM upd WHERE status = 'pending')
SELECT (SELECT status FROM cur) AS status, (SELECT count(*) FROM upd) AS n, (SELECT count(*) FROM ntf) AS notified`;

/**
 * Locks one job and reads what a retry needs. Run after the job's fan-out is locked
 * (`FAN_OUT_LOCK_FOR_JOBS` in `queries/fan-out.ts`): fan-outs before jobs.
 * Params: $1 id. Result: { status } or none.
 */
export const JOB_LOCK_FOR_RETRY = 'SELECT status FROM {s}.sdj_jobs WHERE id = $1 FOR UPDATE';

/**
 * failed/cancelled → pending with attempt 0 and run_at now; last_error kept; notifies. A fan-out
 * child leaves its old outcome's count ($4 failed, $5 cancelled: 0 or 1, from the status read
 * under lock) on its fan-out, which keeps its status: it is counted again when it ends. Run
 * after {@link JOB_LOCK_FOR_RETRY} in the same transaction.
 * Params: $1 now, $2 id, $3 channel, $4 failed, $5 cancelled. Result: one row { n: rows changed }.
 */
export const JOB_RETRY = `
WITH ${NOW_CTE},
upd AS (
  UPDATE {s}.sdj_jobs j
  SET status = 'pending', attempt = 0, run_at = n.t, result = NULL, started_at = NULL, completed_at = NULL,
      wake_at = NULL, wait_signal = NULL, ${CLEAR_LEASE}
  FROM now n
  WHERE j.id = $2 AND j.status IN ('failed', 'cancelled')
  RETURNING j.queue, j.fan_out_id
),
unc AS (
  UPDATE {s}.sdj_fan_outs f
  SET failed = GREATEST(f.failed - $4::int, 0), cancelled = GREATEST(f.cancelled - $5::int, 0)
  FROM upd WHERE f.id = upd.fan_out_id
  RETURNING f.id
),
ntf AS (SELECT pg_notify($3, queue) FROM upd)
SELECT (SELECT count(*) FROM upd) AS n, (SELECT count(*) FROM unc) AS uncounted, (SELECT count(*) FROM ntf) AS notified`;

/**
 * Drops what a job's earlier runs left: its checkpoints and fan-outs, and its descendants
 * $2 (found with `JOB_CHILDREN`, `queries/fan-out.ts`) with their checkpoints, fan-outs and signals.
 * Params: $1 id, $2 descendant ids. Result: none.
 */
export const JOB_DROP_WORKFLOW_STATE = `
WITH ds AS (DELETE FROM {s}.sdj_steps WHERE job_id = $1 OR job_id = ANY($2::text[])),
df AS (DELETE FROM {s}.sdj_fan_outs WHERE parent_id = $1 OR parent_id = ANY($2::text[])),
dg AS (DELETE FROM {s}.sdj_signals WHERE job_id = ANY($2::text[])),
dj AS (DELETE FROM {s}.sdj_jobs WHERE id = ANY($2::text[]))
SELECT 1 AS done`;
