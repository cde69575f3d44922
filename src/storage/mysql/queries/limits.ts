/**
 * MySQL/MariaDB statements of the limit rows (`limits.ts`): type limits in `sdj_type_limits`,
 * queue limits on the queue's `sdj_queues` row, the `limited` mark of a type's jobs, and the
 * usage report.
 * @internal
 */
import { NOW } from './common.js';
import { FLOW_GROUP } from './flow.js';

/** Live statuses (SQL list literal): the jobs whose `limited` mark a type limit change re-marks. */
const LIVE = "('pending', 'running', 'waiting', 'paused')";

/** Whether a type limit row exists. Params: type. Result: `{ type }` when it does. */
export const TYPE_LIMIT_GET = 'SELECT type FROM sdj_type_limits WHERE type = ?';

/** Upserts a type limit row. Params: type, concurrency, rate limit, period, now. */
export const TYPE_LIMIT_UPSERT =
  `INSERT INTO sdj_type_limits (type, concurrency, rate_limit, rate_period_ms, updated_at) VALUES (?, ?, ?, ?, ${NOW}) ` +
  'ON DUPLICATE KEY UPDATE concurrency = VALUES(concurrency), rate_limit = VALUES(rate_limit), rate_period_ms = VALUES(rate_period_ms), updated_at = VALUES(updated_at)';

/** Replaces the limits of a type row. Params: concurrency, rate limit, period, now, type. */
export const TYPE_LIMIT_UPDATE = `UPDATE sdj_type_limits SET concurrency = ?, rate_limit = ?, rate_period_ms = ?, updated_at = ${NOW} WHERE type = ?`;

/** Deletes a type limit row. Params: type. */
export const TYPE_LIMIT_DELETE = 'DELETE FROM sdj_type_limits WHERE type = ?';

/**
 * Marks the live jobs of a type `limited` with their flow group (a job of the type that returns
 * to pending — a retry, a wake-up, a resume — then stays with the limited claim). The live
 * statuses are ranges of `sdj_jobs_wake`; the type is compared exactly (no trailing-space
 * padding). Params: type, type.
 */
export const TYPE_JOBS_MARK =
  `UPDATE sdj_jobs SET limited = 1, flow_group = ${FLOW_GROUP} ` +
  `WHERE status IN ${LIVE} AND limited = 0 AND type = ? AND CAST(type AS BINARY) = CAST(? AS BINARY)`;

/** Marks the live jobs of a type not `limited`. Params: type, type. */
export const TYPE_JOBS_UNMARK =
  'UPDATE sdj_jobs SET limited = 0, flow_group = NULL ' +
  `WHERE status IN ${LIVE} AND limited = 1 AND type = ? AND CAST(type AS BINARY) = CAST(? AS BINARY)`;

/**
 * Upserts a queue's limits on its `sdj_queues` row (the pause flag kept; a new row is not
 * paused). An ordinary claim in flight holds the row share-locked: this waits for it.
 * Params: queue, concurrency, rate limit, period, now, now.
 */
export const QUEUE_LIMIT_SET =
  `INSERT INTO sdj_queues (name, paused, concurrency, rate_limit, rate_period_ms, updated_at) VALUES (?, 0, ?, ?, ?, ${NOW}) ` +
  `ON DUPLICATE KEY UPDATE concurrency = VALUES(concurrency), rate_limit = VALUES(rate_limit), rate_period_ms = VALUES(rate_period_ms), updated_at = ${NOW}`;

/** Clears a queue's limits (the row and its pause flag kept). Params: now, queue. */
export const QUEUE_LIMIT_CLEAR =
  `UPDATE sdj_queues SET concurrency = NULL, rate_limit = NULL, rate_period_ms = NULL, updated_at = ${NOW} ` +
  'WHERE name = ? AND (concurrency IS NOT NULL OR rate_limit IS NOT NULL)';

/** Deletes the rate state of one limit. Params: scope, name. */
export const RATE_STATE_DELETE = 'DELETE FROM sdj_rate_state WHERE scope = ? AND name = ?';

/**
 * Brings a limit's rate state within its new emission interval: a next start further away than
 * the interval (left by a slower rate) moves to now + interval, so a faster rate applies at
 * once; a nearer one stays (a slower rate keeps the starts already spaced). The limit's rows are
 * a range of the primary key. Params: now, interval (ms, fractional), scope, name, now, interval.
 */
export const RATE_STATE_CAP = `UPDATE sdj_rate_state SET tat = ${NOW} + ? WHERE scope = ? AND name = ? AND tat > ${NOW} + ?`;

/** Every limit row: type rows, then queue rows with a limit, each by name (bytes). */
const LIMIT_ROWS =
  "SELECT 'type' AS scope, l.type AS name, l.concurrency, l.rate_limit, l.rate_period_ms, l.updated_at FROM sdj_type_limits l " +
  "UNION ALL SELECT 'queue', CAST(s.name AS BINARY), s.concurrency, s.rate_limit, s.rate_period_ms, s.updated_at FROM sdj_queues s " +
  'WHERE s.concurrency IS NOT NULL OR s.rate_limit IS NOT NULL';

/** Every limit. Result: `{ scope, name, concurrency, rate_limit, rate_period_ms, updated_at }[]`. */
export const LIMIT_LIST = `SELECT r.* FROM (${LIMIT_ROWS}) r ORDER BY r.scope = 'queue', r.name`;

/** The queues with a limit (a derived table of names). */
const LIMITED_QUEUES = 'SELECT s.name FROM sdj_queues s WHERE s.concurrency IS NOT NULL OR s.rate_limit IS NOT NULL';

/**
 * What `limitUsage` adds up, in one statement: rows `{ kind, scope, name, k1, k2, n, tat }` of kinds
 * - `l`: a limit row (`scope`, `name`; `n` its concurrency, null when none), in list order;
 * - `r`: running jobs (`n`) per (type `name`, concurrency key `k1` with null as '', queue `k2`),
 *   exact bytes, of the limited types and queues: running rows through `sdj_jobs_prune`;
 * - `p`: pending limited jobs (`n`) per flow group, with its type (`name`): one index-only range
 *   of `sdj_jobs_wake` (pending limited jobs only), and one primary-key probe per group;
 * - `q`: pending jobs (`n`) per limited queue (`k2`): one (queue, 'pending') range of
 *   `sdj_jobs_claim` per queue, index only;
 * - `s`: the smallest tat after now (`tat`) per limit (`scope`, `name`) with rate state.
 * Params: now.
 */
export const LIMIT_USAGE =
  `SELECT 'l' AS kind, r.scope, r.name, NULL AS k1, NULL AS k2, r.concurrency AS n, NULL AS tat FROM (${LIMIT_ROWS}) r ` +
  "UNION ALL SELECT 'r', NULL, CAST(j.type AS BINARY), CAST(IFNULL(j.concurrency_key, '') AS BINARY), CAST(j.queue AS BINARY), COUNT(*), NULL " +
  "FROM sdj_jobs j FORCE INDEX (sdj_jobs_prune) WHERE j.status = 'running' AND (j.type IN (SELECT l.type FROM sdj_type_limits l) " +
  `OR j.queue IN (${LIMITED_QUEUES})) ` +
  "GROUP BY CAST(j.type AS BINARY), CAST(IFNULL(j.concurrency_key, '') AS BINARY), CAST(j.queue AS BINARY) " +
  "UNION ALL SELECT 'p', NULL, CAST(h.type AS BINARY), NULL, NULL, g.n, NULL FROM (" +
  "SELECT w.flow_group, COUNT(*) AS n, MIN(w.id) AS head FROM sdj_jobs w FORCE INDEX (sdj_jobs_wake) WHERE w.status = 'pending' " +
  'AND w.wake_at IS NULL AND w.limited = 1 GROUP BY w.flow_group) g JOIN sdj_jobs h ON h.id = g.head ' +
  "UNION ALL SELECT 'q', NULL, NULL, NULL, CAST(j.queue AS BINARY), COUNT(*), NULL FROM sdj_jobs j FORCE INDEX (sdj_jobs_claim) " +
  `WHERE j.status = 'pending' AND j.queue IN (${LIMITED_QUEUES}) GROUP BY CAST(j.queue AS BINARY) ` +
  `UNION ALL SELECT 's', st.scope, st.name, NULL, NULL, NULL, MIN(st.tat) FROM sdj_rate_state st WHERE st.tat > ${NOW} GROUP BY st.scope, st.name`;
