/**
 * SQLite statements over `sdj_jobs`: insert, reads, counts, operator actions and retention.
 * Every value is a bound parameter (`?` positional or `@name`). Statements are prepared once
 * per storage instance and run inside `BEGIN IMMEDIATE` transactions when they write.
 * @internal
 */
import { CLEAR_LEASE, FINISHED, NON_TERMINAL } from './common.js';

/**
 * Inserts one pending job, `limited` when its type has a type limit row (read in the same
 * statement, under the transaction's write lock: a limit row appearing or disappearing
 * re-marks the type's live jobs under the same lock, so no job misses it).
 * Params (positional): id, type, queue, priority, max_retries, args, meta, run_at, created_at,
 * timeout_ms, unique_key, tenant, parent_id, fan_out_id, fan_out_index, concurrency_key,
 * rate_key, debounce_key, type (again). Result: none.
 */
export const JOB_INSERT = `
INSERT INTO sdj_jobs (id, type, queue, status, priority, attempt, max_retries, run_count, args, meta,
  run_at, created_at, timeout_ms, unique_key, tenant, parent_id, fan_out_id, fan_out_index,
  concurrency_key, rate_key, debounce_key, limited)
VALUES (?, ?, ?, 'pending', ?, 0, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
  EXISTS (SELECT 1 FROM sdj_type_limits WHERE type = ?))`;

/**
 * The live job holding a unique key (through the unique index `sdj_jobs_unique_key`).
 * Params: unique_key. Result: { id } or none.
 */
export const JOB_UNIQUE_LIVE_HOLDER = `SELECT id FROM sdj_jobs WHERE unique_key = ? AND status IN ${NON_TERMINAL}`;

/**
 * The latest finished job holding a unique key that finished after @since (a dedup window),
 * one seek of `sdj_jobs_unique_done`. Params: @key, @since. Result: { id } or none.
 */
export const JOB_UNIQUE_FINISHED_HOLDER = `
SELECT id FROM sdj_jobs
WHERE unique_key = @key AND status IN ${FINISHED} AND completed_at > @since
ORDER BY completed_at DESC
LIMIT 1`;

/**
 * The pending job of a type holding a debounce key (`sdj_jobs_debounce`); the oldest when a
 * retried holder and a newer job both hold it. Params: type, debounce_key. Result: { id } or none.
 */
export const JOB_DEBOUNCE_HOLDER = `
SELECT id FROM sdj_jobs WHERE type = ? AND debounce_key = ? AND status = 'pending' ORDER BY id LIMIT 1`;

/**
 * Replaces a pending debounced job's fields by a new insert's (id, created_at, attempt and
 * last_error kept); `limited` is decided again, as for an insert. Params: @id, @queue,
 * @priority, @maxRetries, @args, @meta, @runAt, @timeoutMs, @tenant, @concurrencyKey, @rateKey.
 * Result: changes.
 */
export const JOB_DEBOUNCE_REPLACE = `
UPDATE sdj_jobs
SET queue = @queue, priority = @priority, max_retries = @maxRetries, args = @args, meta = @meta, run_at = @runAt,
    timeout_ms = @timeoutMs, tenant = @tenant, concurrency_key = @concurrencyKey, rate_key = @rateKey,
    limited = EXISTS (SELECT 1 FROM sdj_type_limits l WHERE l.type = sdj_jobs.type)
WHERE id = @id AND status = 'pending'`;

/** One job by id. Params: id. Result: the job row or none. */
export const JOB_GET = 'SELECT * FROM sdj_jobs WHERE id = ?';

/**
 * Jobs by id (each once, ids not found left out). Params: JSON array of ids.
 * Result: job rows.
 */
export const JOB_GET_MANY = 'SELECT * FROM sdj_jobs WHERE id IN (SELECT value FROM json_each(?))';

/** A job's status. Params: id. Result: { status } or none. */
export const JOB_STATUS = 'SELECT status FROM sdj_jobs WHERE id = ?';

/**
 * Whether a job has any child (over parent_id, partial index `sdj_jobs_parent`): a job failing
 * with children cancels its subtree. Params: id. Result: { one } or none.
 */
export const JOB_HAS_CHILDREN = 'SELECT 1 AS one FROM sdj_jobs WHERE parent_id = ? LIMIT 1';

/**
 * pending → paused. A paused job leaves the debounce: it gives up its debounce key (a later
 * debounce of the key makes a new job; resumed, it runs as it is). Params: id. Result: changes.
 */
export const JOB_PAUSE = "UPDATE sdj_jobs SET status = 'paused', debounce_key = NULL WHERE id = ? AND status = 'pending'";

/** paused → pending. Params: id. Result: changes. */
export const JOB_RESUME = "UPDATE sdj_jobs SET status = 'pending' WHERE id = ? AND status = 'paused'";

/**
 * failed/cancelled → pending with attempt 0 and run_at @now; last_error kept. `limited` is
 * decided again from `sdj_type_limits` (a finished job is not re-marked when a type limit
 * appears or goes). Params: @id, @now. Result: changes.
 */
export const JOB_RETRY = `
UPDATE sdj_jobs
SET status = 'pending', attempt = 0, run_at = @now, result = NULL, started_at = NULL, completed_at = NULL,
    wake_at = NULL, wait_signal = NULL, ${CLEAR_LEASE},
    limited = EXISTS (SELECT 1 FROM sdj_type_limits l WHERE l.type = sdj_jobs.type)
WHERE id = @id AND status IN ('failed', 'cancelled')`;

/** Every descendant of a job (over parent_id), the job excluded. Params: id. Result: { id }. */
export const JOB_DESCENDANTS = `
WITH RECURSIVE sub(id) AS (
  SELECT id FROM sdj_jobs WHERE parent_id = ?
  UNION
  SELECT j.id FROM sdj_jobs j JOIN sub ON j.parent_id = sub.id)
SELECT id FROM sub`;

/** Deletes jobs by id. Params: JSON array of ids. Result: changes. */
export const JOB_DELETE_MANY = 'DELETE FROM sdj_jobs WHERE id IN (SELECT value FROM json_each(?))';

/** Job counts by status over every queue. Params: none. Result: { status, n } rows. */
export const JOB_COUNT_BY_STATUS = countByStatus('');

/** Job counts by status in one queue. Params: @queue. Result: { status, n } rows. */
export const JOB_COUNT_BY_STATUS_IN_QUEUE = countByStatus(' AND queue = @queue');

/**
 * Counts per status, each part over the partial index that holds exactly those rows (claim and
 * limited for pending jobs, lease, wake, done), so counting never scans the whole table.
 */
function countByStatus(and: string): string {
  return `
SELECT 'pending' AS status,
  (SELECT COUNT(*) FROM sdj_jobs WHERE status = 'pending' AND limited = 0${and})
  + (SELECT COUNT(*) FROM sdj_jobs WHERE status = 'pending' AND limited = 1${and}) AS n
UNION ALL SELECT 'running', COUNT(*) FROM sdj_jobs WHERE status = 'running'${and}
UNION ALL SELECT 'waiting', COUNT(*) FROM sdj_jobs WHERE status = 'waiting'${and}
UNION ALL SELECT status, COUNT(*) FROM sdj_jobs WHERE status NOT IN ('pending', 'running', 'waiting')${and} GROUP BY status`;
}

/**
 * Finished roots of one status due for pruning, oldest first: no parent, `completed_at` before
 * @cutoff (now − the status's age), and every job anywhere below them due as well — finished,
 * with `completed_at` before the cutoff of its own status (@completed, @failed, @cancelled; null
 * keeps that status, and so the whole workflow). Walks the partial index `sdj_jobs_prune`
 * (finished roots only), so its cost does not grow with live jobs; the subtree test is one probe
 * of `sdj_jobs_parent` for a root without children.
 * Params: @status, @cutoff, @completed, @failed, @cancelled, @limit. Result: { id } rows.
 */
export const JOB_PRUNE_ROOTS = `
SELECT r.id FROM sdj_jobs AS r INDEXED BY sdj_jobs_prune
WHERE r.parent_id IS NULL AND r.status = @status AND r.completed_at < @cutoff
  AND NOT EXISTS (
    WITH RECURSIVE sub(id, status, completed_at) AS (
      SELECT id, status, completed_at FROM sdj_jobs WHERE parent_id = r.id
      UNION ALL
      SELECT c.id, c.status, c.completed_at FROM sdj_jobs AS c JOIN sub ON c.parent_id = sub.id)
    SELECT 1 FROM sub
    WHERE NOT coalesce(sub.completed_at < CASE sub.status WHEN 'completed' THEN @completed WHEN 'failed' THEN @failed WHEN 'cancelled' THEN @cancelled END, 0))
ORDER BY r.completed_at
LIMIT @limit`;

/**
 * The given roots and every job below them (over parent_id; a tree, so no job comes twice).
 * Params: JSON array of root ids. Result: { id } rows.
 */
export const JOB_SUBTREES = `
WITH RECURSIVE sub(id) AS (
  SELECT value FROM json_each(?)
  UNION ALL
  SELECT c.id FROM sdj_jobs AS c JOIN sub ON c.parent_id = sub.id)
SELECT id FROM sub`;
