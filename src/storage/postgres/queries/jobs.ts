/**
 * PostgreSQL statements over `sdj_jobs`: insert, reads and counts. Every value
 * is a bound parameter; `$1` is always the optional "now" (see `NOW_CTE`). Statements that make
 * jobs ready call `pg_notify(channel, queue)`, delivered when their transaction commits.
 * @internal
 */
import { NOW, NOW_CTE } from './common.js';

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
 * The earliest run_at among pending jobs of the given queues, paused queues excluded. A loose
 * index scan over the claim index: per queue, one probe per distinct priority, so an idle
 * worker's check stays cheap however many delayed jobs wait.
 * Params: $1 queue names. Result: { next } (null when none).
 */
export const JOB_NEXT_RUN_AT = `
SELECT min(m.run_at) AS next
FROM unnest($1::text[]) AS q(name)
CROSS JOIN LATERAL (
  WITH RECURSIVE pr(priority) AS (
    (SELECT j.priority FROM {s}.sdj_jobs j WHERE j.status = 'pending' AND j.queue = q.name
     ORDER BY j.priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT j.priority FROM {s}.sdj_jobs j
            WHERE j.status = 'pending' AND j.queue = q.name AND j.priority < pr.priority
            ORDER BY j.priority DESC LIMIT 1)
    FROM pr WHERE pr.priority IS NOT NULL
  )
  SELECT (SELECT j.run_at FROM {s}.sdj_jobs j
          WHERE j.status = 'pending' AND j.queue = q.name AND j.priority = pr.priority
          ORDER BY j.priority DESC, j.run_at LIMIT 1) AS run_at
  FROM pr WHERE pr.priority IS NOT NULL
) m
WHERE q.name NOT IN (SELECT name FROM {s}.sdj_queues WHERE paused)`;
