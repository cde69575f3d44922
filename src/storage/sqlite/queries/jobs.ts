/**
 * SQLite statements over `sdj_jobs`: insert, reads, counts, operator actions and retention.
 * Every value is a bound parameter (`?` positional or `@name`). Statements are prepared once
 * per storage instance and run inside `BEGIN IMMEDIATE` transactions when they write.
 * @internal
 */
import { CLEAR_LEASE } from './common.js';

/**
 * Inserts one pending job.
 * Params (positional): id, type, queue, priority, max_retries, args, meta, run_at, created_at,
 * timeout_ms, unique_key, tenant, parent_id, fan_out_id, fan_out_index. Result: none.
 */
export const JOB_INSERT = `
INSERT INTO sdj_jobs (id, type, queue, status, priority, attempt, max_retries, run_count, args, meta,
  run_at, created_at, timeout_ms, unique_key, tenant, parent_id, fan_out_id, fan_out_index)
VALUES (?, ?, ?, 'pending', ?, 0, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

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

/** pending → paused. Params: id. Result: changes. */
export const JOB_PAUSE = "UPDATE sdj_jobs SET status = 'paused' WHERE id = ? AND status = 'pending'";

/** paused → pending. Params: id. Result: changes. */
export const JOB_RESUME = "UPDATE sdj_jobs SET status = 'pending' WHERE id = ? AND status = 'paused'";

/**
 * failed/cancelled → pending with attempt 0 and run_at @now; last_error kept.
 * Params: @id, @now. Result: changes.
 */
export const JOB_RETRY = `
UPDATE sdj_jobs
SET status = 'pending', attempt = 0, run_at = @now, result = NULL, started_at = NULL, completed_at = NULL,
    wake_at = NULL, wait_signal = NULL, ${CLEAR_LEASE}
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

/** Job counts by status in one queue. Params: queue (4 times). Result: { status, n } rows. */
export const JOB_COUNT_BY_STATUS_IN_QUEUE = countByStatus(' AND queue = ?');

/**
 * Counts per status, each part over the partial index that holds exactly those rows (claim,
 * lease, wake, done), so counting never scans the whole table.
 */
function countByStatus(and: string): string {
  return `
SELECT 'pending' AS status, COUNT(*) AS n FROM sdj_jobs WHERE status = 'pending'${and}
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
