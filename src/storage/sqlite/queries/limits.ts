/**
 * SQLite statements of the limit rows (`limits.ts`): type limits in `sdj_type_limits`, queue
 * limits on the queue's `sdj_queues` row, the `limited` mark of a type's jobs, and the usage
 * report. Each write runs in a `BEGIN IMMEDIATE` transaction, so a mark is never raced by an
 * insert reading the limits.
 * @internal
 */

/** Whether a type has a limit row. Params: type. Result: { one } or none. */
export const TYPE_LIMIT_EXISTS = 'SELECT 1 AS one FROM sdj_type_limits WHERE type = ?';

/**
 * Upserts a type limit row. Params: @type, @concurrency, @rateLimit, @ratePeriodMs, @now.
 * Result: none.
 */
export const TYPE_LIMIT_SET = `
INSERT INTO sdj_type_limits (type, concurrency, rate_limit, rate_period_ms, updated_at)
VALUES (@type, @concurrency, @rateLimit, @ratePeriodMs, @now)
ON CONFLICT (type) DO UPDATE SET concurrency = excluded.concurrency, rate_limit = excluded.rate_limit,
  rate_period_ms = excluded.rate_period_ms, updated_at = excluded.updated_at`;

/** Deletes a type limit row. Params: type. Result: changes. */
export const TYPE_LIMIT_DELETE = 'DELETE FROM sdj_type_limits WHERE type = ?';

/**
 * The rowids of a type's live jobs with the given `limited` mark, each status through the
 * partial index that holds exactly its rows (pending ones through the claim index for mark 0 or
 * the limited index for mark 1, running through the lease index, waiting through the wake index,
 * paused through the done index), so no finished row is read.
 */
function liveOfType(mark: 0 | 1): string {
  return `
  SELECT rowid FROM sdj_jobs WHERE status = 'pending' AND limited = ${mark} AND type = @type
  UNION ALL SELECT rowid FROM sdj_jobs WHERE status = 'running' AND limited = ${mark} AND type = @type
  UNION ALL SELECT rowid FROM sdj_jobs WHERE status = 'waiting' AND limited = ${mark} AND type = @type
  UNION ALL SELECT rowid FROM sdj_jobs
  WHERE status = 'paused' AND status NOT IN ('pending', 'running', 'waiting') AND limited = ${mark} AND type = @type`;
}

/**
 * Marks a type's live jobs `limited` (a job of the type that returns to pending — a retry, a
 * wake-up, a resume — then stays with the limited claim). Params: @type. Result: changes.
 */
export const TYPE_JOBS_MARK = `UPDATE sdj_jobs SET limited = 1 WHERE rowid IN (${liveOfType(0)})`;

/** Marks a type's live jobs not `limited`. Params: @type. Result: changes. */
export const TYPE_JOBS_UNMARK = `UPDATE sdj_jobs SET limited = 0 WHERE rowid IN (${liveOfType(1)})`;

/** Deletes the rate state of one limit. Params: scope, name. Result: changes. */
export const RATE_STATE_DELETE = 'DELETE FROM sdj_rate_state WHERE scope = ? AND name = ?';

/**
 * Brings a limit's rate state within its new emission interval: a next start further away than
 * `@interval` ms (left by a slower rate) moves to now + `@interval`, so a faster rate applies
 * at once; a nearer one stays (a slower rate keeps the starts already spaced). Params: @scope,
 * @name, @now, @interval. Result: changes.
 */
export const RATE_STATE_CAP = 'UPDATE sdj_rate_state SET tat = @now + @interval WHERE scope = @scope AND name = @name AND tat > @now + @interval';

/**
 * Deletes the rate state whose tat passed more than a minute ago (it means what no row means:
 * the planner forgives at most a second of lateness). The minute keeps a row that another
 * connection's claim, whose now was read a little earlier, may still need. The table holds one
 * row per rate group, read whole. Params: now. Result: changes.
 */
export const RATE_STATE_PRUNE = 'DELETE FROM sdj_rate_state WHERE tat < ? - 60000';

/**
 * Upserts a queue's limits on its `sdj_queues` row (the pause flag kept; a new row is not
 * paused). Params: @name, @concurrency, @rateLimit, @ratePeriodMs, @now. Result: none.
 */
export const QUEUE_LIMIT_SET = `
INSERT INTO sdj_queues (name, paused, updated_at, concurrency, rate_limit, rate_period_ms)
VALUES (@name, 0, @now, @concurrency, @rateLimit, @ratePeriodMs)
ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, rate_limit = excluded.rate_limit,
  rate_period_ms = excluded.rate_period_ms, updated_at = excluded.updated_at`;

/**
 * Clears a queue's limits (the row and its pause flag kept). Params: @name, @now.
 * Result: changes (1 when the queue had a limit).
 */
export const QUEUE_LIMIT_CLEAR = `
UPDATE sdj_queues SET concurrency = NULL, rate_limit = NULL, rate_period_ms = NULL, updated_at = @now
WHERE name = @name AND (concurrency IS NOT NULL OR rate_limit IS NOT NULL)`;

/** Every limit row: type rows, then the queues with a limit. */
const LIMIT_ROWS = `
  SELECT 'type' AS scope, type AS name, concurrency, rate_limit, rate_period_ms, updated_at FROM sdj_type_limits
  UNION ALL
  SELECT 'queue', name, concurrency, rate_limit, rate_period_ms, updated_at FROM sdj_queues
  WHERE concurrency IS NOT NULL OR rate_limit IS NOT NULL`;

/** The order of {@link LIMIT_ROWS}: type rows first, each scope by name (binary order). */
const LIMIT_ORDER = "l.scope = 'queue', l.name";

/** Every limit. Params: none. Result: { scope, name, concurrency, rate_limit, rate_period_ms, updated_at }. */
export const LIMIT_LIST = `SELECT l.* FROM (${LIMIT_ROWS}) l ORDER BY ${LIMIT_ORDER}`;

/**
 * How full each limit is, in {@link LIMIT_LIST} order. Running jobs are read once from the lease
 * index (running rows only), pending limited jobs once from the limited index (grouped by queue
 * and type, in its order), pending jobs without type limits of a limited queue from the claim
 * index (one range per queue), the smallest tat after @now from the rate state's primary key (a
 * range per limit). Params: @now. Result: { scope, name, running, keys_running, keys_full,
 * pending, next_tat } (next_tat fractional: the caller rounds it up).
 */
export const LIMIT_USAGE = `
WITH l AS MATERIALIZED (${LIMIT_ROWS}),
run AS MATERIALIZED (
  SELECT type, queue, concurrency_group AS ck FROM sdj_jobs INDEXED BY sdj_jobs_lease WHERE status = 'running'
),
tg AS MATERIALIZED (
  SELECT type, ck, COUNT(*) AS n FROM run WHERE type IN (SELECT name FROM l WHERE scope = 'type') GROUP BY type, ck
),
qg AS MATERIALIZED (
  SELECT queue, COUNT(*) AS n FROM run WHERE queue IN (SELECT name FROM l WHERE scope = 'queue') GROUP BY queue
),
lp AS MATERIALIZED (
  SELECT queue, type, COUNT(*) AS n FROM sdj_jobs WHERE status = 'pending' AND limited = 1 GROUP BY queue, type
)
SELECT l.scope, l.name,
  CASE WHEN l.scope = 'type' THEN (SELECT coalesce(SUM(n), 0) FROM tg WHERE tg.type = l.name)
    ELSE coalesce((SELECT n FROM qg WHERE qg.queue = l.name), 0) END AS running,
  CASE WHEN l.scope = 'type' THEN (SELECT COUNT(*) FROM tg WHERE tg.type = l.name)
    ELSE (SELECT COUNT(*) FROM qg WHERE qg.queue = l.name) END AS keys_running,
  CASE WHEN l.concurrency IS NULL THEN 0
    WHEN l.scope = 'type' THEN (SELECT COUNT(*) FROM tg WHERE tg.type = l.name AND tg.n >= l.concurrency)
    ELSE (SELECT COUNT(*) FROM qg WHERE qg.queue = l.name AND qg.n >= l.concurrency) END AS keys_full,
  CASE WHEN l.scope = 'type' THEN (SELECT coalesce(SUM(n), 0) FROM lp WHERE lp.type = l.name)
    ELSE (SELECT coalesce(SUM(n), 0) FROM lp WHERE lp.queue = l.name)
      + (SELECT COUNT(*) FROM sdj_jobs j WHERE j.status = 'pending' AND j.limited = 0 AND j.queue = l.name) END AS pending,
  CASE WHEN l.rate_limit IS NOT NULL THEN
    (SELECT MIN(s.tat) FROM sdj_rate_state s WHERE s.scope = l.scope AND s.name = l.name AND s.tat > @now) END AS next_tat
FROM l
ORDER BY ${LIMIT_ORDER}`;
