/**
 * PostgreSQL statements of the limit rows (`limits.ts`): type limits in `sdj_type_limits`,
 * queue limits on the queue's `sdj_queues` row, the `limited` mark of a type's jobs, and the
 * usage report. `$1` is the optional "now" where a statement needs one. Every statement that
 * changes a limit moves the flow-state version on (`FLOW_BUMP_CTE`, `queries/flow.ts`) before it
 * writes anything else: a limited claim that read the limits before cannot store its plan.
 * @internal
 */
import { DB_NOW, NOW, NOW_CTE } from './common.js';
import { FLOW_BUMP_CTE } from './flow.js';

/**
 * How long retention keeps a rate-state row after its tat (ms): well past the longest lateness a
 * rate group forgives (1 s), so a limited claim whose now was read before the prune's still
 * finds the row it must count.
 */
export const RATE_STATE_KEEP_MS = 60_000;

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
 * CTEs (`rn`, `rc`, `rd`) that bring the rate state of the limit (`scope`, name $2) within the
 * rate limit being set ($4 starts per $5 ms): a next start further than the new interval T from
 * now (left by a slower rate) moves to now + T, so a faster rate applies at once, and a nearer
 * one stays (a slower rate keeps the spacing already there); without a rate limit ($4 null) the
 * state is deleted. Both follow the flow-state version (`fb`), as every write of a limit change.
 * The cap's now (`rn`) is read once the version row is held: a limited claim that stored its
 * plan while this statement waited for that row wrote a tat of at most its own now + T, so a
 * now read before the wait could move that tat back and let the group start early. A rate that
 * did not change (the same limit stored again) touches no rate state.
 */
function rateStateFollows(scope: 'type' | 'queue'): string {
  const same =
    scope === 'type'
      ? '{s}.sdj_type_limits t WHERE t.type = $2 AND t.rate_limit = $4::int AND t.rate_period_ms = $5::bigint'
      : '{s}.sdj_queues t WHERE t.name = $2 AND t.rate_limit = $4::int AND t.rate_period_ms = $5::bigint';
  return `rn AS MATERIALIZED (SELECT COALESCE($1::bigint, ${DB_NOW}) AS t FROM fb),
rc AS (
  UPDATE {s}.sdj_rate_state s SET tat = n.t + $5::bigint::double precision / $4::int
  FROM rn n
  WHERE s.scope = '${scope}' AND s.name = $2 AND $4::int IS NOT NULL AND s.tat > n.t + $5::bigint::double precision / $4::int
    AND NOT EXISTS (SELECT 1 FROM ${same})
),
rd AS (DELETE FROM {s}.sdj_rate_state s USING fb WHERE s.scope = '${scope}' AND s.name = $2 AND $4::int IS NULL)`;
}

/**
 * Replaces the limits of an existing type row (no job changes its mark, so no lock is needed),
 * its rate state following the new rate (`rateStateFollows`). Params: $1 now, $2 type, $3 concurrency, $4 rate limit, $5 rate period ms. Result: { type } when the row exists.
 */
export const TYPE_LIMIT_UPDATE = `
WITH ${NOW_CTE},
${FLOW_BUMP_CTE},
${rateStateFollows('type')}
UPDATE {s}.sdj_type_limits SET concurrency = $3::int, rate_limit = $4::int, rate_period_ms = $5::bigint, updated_at = ${NOW}
FROM fb
WHERE type = $2
RETURNING type`;

/**
 * Upserts a type row (its rate state following the new rate) and marks the type's live jobs
 * `limited` (a job of the type that returns to pending — a retry, a wake-up, a resume — then
 * stays with the limited claim). Run after
 * {@link TYPE_LIMITS_LOCK}. Params: $1 now, $2 type, $3 concurrency, $4 rate limit, $5 rate
 * period ms. Result: one row { marked }.
 */
export const TYPE_LIMIT_INSERT = `
WITH ${NOW_CTE},
${FLOW_BUMP_CTE},
${rateStateFollows('type')},
up AS (
  INSERT INTO {s}.sdj_type_limits (type, concurrency, rate_limit, rate_period_ms, updated_at)
  SELECT $2, $3::int, $4::int, $5::bigint, ${NOW} FROM fb
  ON CONFLICT (type) DO UPDATE SET concurrency = EXCLUDED.concurrency, rate_limit = EXCLUDED.rate_limit,
    rate_period_ms = EXCLUDED.rate_period_ms, updated_at = EXCLUDED.updated_at
),
mark AS (
  UPDATE {s}.sdj_jobs_live j SET limited = 1 FROM fb
  WHERE j.type = $2 AND j.limited = 0 AND j.status IN ${LIVE}
  RETURNING 1
)
SELECT count(*) AS marked FROM mark`;

/**
 * Deletes a type row, its rate state, and marks the type's live jobs not `limited` (any left
 * marked, whether or not the row existed); notifies the queues of the pending jobs unmarked (the
 * ordinary claim may take them now). Run after {@link TYPE_LIMITS_LOCK}. Params: $1 type,
 * $2 channel. Result: one row { n: rows deleted }.
 */
export const TYPE_LIMIT_DELETE = `
WITH ${FLOW_BUMP_CTE},
del AS (DELETE FROM {s}.sdj_type_limits t USING fb WHERE t.type = $1 RETURNING t.type),
rs AS (DELETE FROM {s}.sdj_rate_state s USING fb WHERE s.scope = 'type' AND s.name = $1),
unmark AS (
  UPDATE {s}.sdj_jobs_live j SET limited = 0 FROM fb WHERE j.type = $1 AND j.limited = 1 AND j.status IN ${LIVE}
  RETURNING j.queue, j.status
),
ntf AS (SELECT pg_notify($2, d.queue) FROM (SELECT DISTINCT queue FROM unmark WHERE status = 'pending') d)
SELECT (SELECT count(*) FROM del) AS n, (SELECT count(*) FROM ntf) AS notified`;

/**
 * Upserts a queue's limits on its `sdj_queues` row (the pause flag kept; a new row is not
 * paused), its rate state following the new rate. An ordinary claim in flight holds the row
 * `FOR SHARE`: this waits for it.
 * Params: $1 now, $2 queue, $3 concurrency, $4 rate limit, $5 rate period ms. Result: none.
 */
export const QUEUE_LIMIT_SET = `
WITH ${NOW_CTE},
${FLOW_BUMP_CTE},
${rateStateFollows('queue')}
INSERT INTO {s}.sdj_queues (name, paused, updated_at, concurrency, rate_limit, rate_period_ms)
SELECT $2, false, n.t, $3::int, $4::int, $5::bigint FROM now n, fb
ON CONFLICT (name) DO UPDATE SET concurrency = EXCLUDED.concurrency, rate_limit = EXCLUDED.rate_limit,
  rate_period_ms = EXCLUDED.rate_period_ms, updated_at = EXCLUDED.updated_at`;

/**
 * Clears a queue's limits (the row and its pause flag kept) and deletes its rate state; notifies
 * the queue (the ordinary claim takes its jobs again). Params: $1 now, $2 queue, $3 channel.
 * Result: one row { n: 1 when the queue had a limit }.
 */
export const QUEUE_LIMIT_DELETE = `
WITH ${NOW_CTE},
${FLOW_BUMP_CTE},
upd AS (
  UPDATE {s}.sdj_queues q SET concurrency = NULL, rate_limit = NULL, rate_period_ms = NULL, updated_at = ${NOW}
  FROM fb
  WHERE q.name = $2 AND (q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL)
  RETURNING q.name
),
rs AS (DELETE FROM {s}.sdj_rate_state s USING fb WHERE s.scope = 'queue' AND s.name = $2),
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
