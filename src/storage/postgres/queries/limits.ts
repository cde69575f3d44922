/**
 * PostgreSQL statements of the limit rows (`limits.ts`): type limits in `sdj_type_limits`,
 * queue limits on the queue's `sdj_queues` row, the `limited` mark of a type's jobs, and the
 * usage report. `$1` is the optional "now" where a statement needs one.
 * @internal
 */
import { NOW, NOW_CTE } from './common.js';

/** Live statuses (SQL list literal): the jobs whose `limited` mark a type limit change re-marks. */
const LIVE = "('pending', 'running', 'waiting', 'paused')";

/**
 * Serializes a type limit's appearance or removal with the statements that mark new jobs from
 * `sdj_type_limits` (they hold `ROW EXCLUSIVE` on it: `TYPE_LIMITS_LOCK_CTE` in `common.ts`):
 * waits for those in flight, and holds off the next ones until the transaction ends, so the
 * re-marking statement that follows sees every job inserted before, and every job inserted
 * after sees the change. Reads of the table (the limited claim) are not blocked. Params: none.
 */
export const TYPE_LIMITS_LOCK = 'LOCK TABLE {s}.sdj_type_limits IN SHARE ROW EXCLUSIVE MODE';

/**
 * Replaces the limits of an existing type row (no job changes its mark, so no lock is needed).
 * Params: $1 now, $2 type, $3 concurrency, $4 rate limit, $5 rate period ms. Result: { type } when the row exists.
 */
export const TYPE_LIMIT_UPDATE = `
WITH ${NOW_CTE}
UPDATE {s}.sdj_type_limits SET concurrency = $3::int, rate_limit = $4::int, rate_period_ms = $5::bigint, updated_at = ${NOW}
WHERE type = $2
RETURNING type`;

/**
 * Upserts a type row and marks the type's live jobs `limited` (a job of the type that returns to
 * pending — a retry, a wake-up, a resume — then stays with the limited claim). Run after
 * {@link TYPE_LIMITS_LOCK}. Params: $1 now, $2 type, $3 concurrency, $4 rate limit, $5 rate
 * period ms. Result: one row { marked }.
 */
export const TYPE_LIMIT_INSERT = `
WITH ${NOW_CTE},
up AS (
  INSERT INTO {s}.sdj_type_limits (type, concurrency, rate_limit, rate_period_ms, updated_at)
  VALUES ($2, $3::int, $4::int, $5::bigint, ${NOW})
  ON CONFLICT (type) DO UPDATE SET concurrency = EXCLUDED.concurrency, rate_limit = EXCLUDED.rate_limit,
    rate_period_ms = EXCLUDED.rate_period_ms, updated_at = EXCLUDED.updated_at
),
mark AS (UPDATE {s}.sdj_jobs_live j SET limited = 1 WHERE j.type = $2 AND j.limited = 0 AND j.status IN ${LIVE} RETURNING 1)
SELECT count(*) AS marked FROM mark`;

/**
 * Deletes a type row, its rate state, and marks the type's live jobs not `limited` (any left
 * marked, whether or not the row existed); notifies the queues of the pending jobs unmarked (the
 * ordinary claim may take them now). Run after {@link TYPE_LIMITS_LOCK}. Params: $1 type,
 * $2 channel. Result: one row { n: rows deleted }.
 */
export const TYPE_LIMIT_DELETE = `
WITH del AS (DELETE FROM {s}.sdj_type_limits WHERE type = $1 RETURNING type),
rs AS (DELETE FROM {s}.sdj_rate_state WHERE scope = 'type' AND name = $1),
unmark AS (
  UPDATE {s}.sdj_jobs_live j SET limited = 0 WHERE j.type = $1 AND j.limited = 1 AND j.status IN ${LIVE}
  RETURNING j.queue, j.status
),
ntf AS (SELECT pg_notify($2, d.queue) FROM (SELECT DISTINCT queue FROM unmark WHERE status = 'pending') d)
SELECT (SELECT count(*) FROM del) AS n, (SELECT count(*) FROM ntf) AS notified`;

/**
 * Upserts a queue's limits on its `sdj_queues` row (the pause flag kept; a new row is not
 * paused). A claim in flight holds the row `FOR SHARE`: this waits for it.
 * Params: $1 now, $2 queue, $3 concurrency, $4 rate limit, $5 rate period ms. Result: none.
 */
export const QUEUE_LIMIT_SET = `
WITH ${NOW_CTE}
INSERT INTO {s}.sdj_queues (name, paused, updated_at, concurrency, rate_limit, rate_period_ms)
SELECT $2, false, t, $3::int, $4::int, $5::bigint FROM now
ON CONFLICT (name) DO UPDATE SET concurrency = EXCLUDED.concurrency, rate_limit = EXCLUDED.rate_limit,
  rate_period_ms = EXCLUDED.rate_period_ms, updated_at = EXCLUDED.updated_at`;

/**
 * Clears a queue's limits (the row and its pause flag kept) and deletes its rate state; notifies
 * the queue (the ordinary claim takes its jobs again). Params: $1 now, $2 queue, $3 channel.
 * Result: one row { n: 1 when the queue had a limit }.
 */
export const QUEUE_LIMIT_DELETE = `
WITH ${NOW_CTE},
upd AS (
  UPDATE {s}.sdj_queues SET concurrency = NULL, rate_limit = NULL, rate_period_ms = NULL, updated_at = ${NOW}
  WHERE name = $2 AND (concurrency IS NOT NULL OR rate_limit IS NOT NULL)
  RETURNING name
),
rs AS (DELETE FROM {s}.sdj_rate_state WHERE scope = 'queue' AND name = $2),
ntf AS (SELECT pg_notify($3, name) FROM upd)
SELECT (SELECT count(*) FROM upd) AS n, (SELECT count(*) FROM ntf) AS notified`;

/** Every limit row: type rows, then queue rows (the queues with a limit), each by name. */
const LIMIT_ROWS = `
  SELECT 'type' AS scope, type AS name, concurrency, rate_limit, rate_period_ms, updated_at FROM {s}.sdj_type_limits
  UNION ALL
  SELECT 'queue', name, concurrency, rate_limit, rate_period_ms, updated_at FROM {s}.sdj_queues
  WHERE concurrency IS NOT NULL OR rate_limit IS NOT NULL`;

/** The order of {@link LIMIT_ROWS} (byte order of names, the same in every locale). */
const LIMIT_ORDER = `(l.scope = 'queue'), l.name COLLATE "C"`;

/** Every limit. Params: none. Result: { scope, name, concurrency, rate_limit, rate_period_ms, updated_at }. */
export const LIMIT_LIST = `SELECT l.* FROM (${LIMIT_ROWS}) l ORDER BY ${LIMIT_ORDER}`;

/**
 * How full each limit is, in {@link LIMIT_LIST} order. Running jobs are read once from the lease
 * index (running rows only); pending counts come from the claim index (`limited = 0`) and the
 * limited index (`limited = 1`), nextStartAt from the rate-state primary key (a range per
 * limit). Params: $1 now. Result: { scope, name, running, keys_running, keys_full, pending,
 * next_start_at }.
 */
export const LIMIT_USAGE = `
WITH ${NOW_CTE},
l AS MATERIALIZED (${LIMIT_ROWS}),
run AS MATERIALIZED (
  SELECT r.type, r.queue, coalesce(r.concurrency_key, '') AS ck FROM {s}.sdj_jobs_live r
  WHERE r.lease_expires_at IS NOT NULL AND r.status = 'running'
),
tg AS MATERIALIZED (
  SELECT type, ck, count(*) AS n FROM run WHERE type IN (SELECT name FROM l WHERE scope = 'type') GROUP BY type, ck
),
qg AS MATERIALIZED (
  SELECT queue, count(*) AS n FROM run WHERE queue IN (SELECT name FROM l WHERE scope = 'queue') GROUP BY queue
)
SELECT l.scope, l.name,
  CASE WHEN l.scope = 'type' THEN (SELECT coalesce(sum(n), 0) FROM tg WHERE tg.type = l.name)
    ELSE coalesce((SELECT n FROM qg WHERE qg.queue = l.name), 0) END AS running,
  CASE WHEN l.scope = 'type' THEN (SELECT count(*) FROM tg WHERE tg.type = l.name)
    ELSE (SELECT count(*) FROM qg WHERE qg.queue = l.name) END AS keys_running,
  CASE WHEN l.concurrency IS NULL THEN 0
    WHEN l.scope = 'type' THEN (SELECT count(*) FROM tg WHERE tg.type = l.name AND tg.n >= l.concurrency)
    ELSE (SELECT count(*) FROM qg WHERE qg.queue = l.name AND qg.n >= l.concurrency) END AS keys_full,
  CASE WHEN l.scope = 'type' THEN
      (SELECT count(*) FROM {s}.sdj_jobs_live j WHERE j.status = 'pending' AND j.limited = 1 AND j.type = l.name)
    ELSE (SELECT count(*) FROM {s}.sdj_jobs_live j WHERE j.status = 'pending' AND j.limited = 0 AND j.queue = l.name)
      + (SELECT count(*) FROM {s}.sdj_jobs_live j WHERE j.status = 'pending' AND j.limited = 1 AND j.queue = l.name) END AS pending,
  CASE WHEN l.rate_limit IS NOT NULL THEN
    (SELECT ceil(min(s.tat))::bigint FROM {s}.sdj_rate_state s WHERE s.scope = l.scope AND s.name = l.name AND s.tat > ${NOW}) END
    AS next_start_at
FROM l
ORDER BY ${LIMIT_ORDER}`;
