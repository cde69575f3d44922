/**
 * SQLite statements over `sdj_jobs`: insert, claim, finish, leases, wake-ups, operations.
 * Every value is a bound parameter (`?` positional or `@name`). Statements are prepared once
 * per storage instance and run inside `BEGIN IMMEDIATE` transactions when they write.
 * @internal
 */

/**
 * Non-terminal statuses (SQL list literal). Where rows are picked by id, the status test is
 * written `+status` so the planner keeps the id lookup instead of scanning a status index.
 */
const NON_TERMINAL = "('pending', 'running', 'waiting', 'paused')";
/** Assignments that drop a run's lease. */
const CLEAR_LEASE = 'locked_by = NULL, lease_expires_at = NULL, heartbeat_at = NULL';
/** The fence of a claimed run: @id, @workerId, @runCount. */
const FENCE = "id = @id AND locked_by = @workerId AND run_count = @runCount AND status = 'running'";

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

/** Every `sdj_jobs` column, in the order of `JobTuple` (see rows.ts). */
export const JOB_COLUMNS = `id, type, queue, status, priority, attempt, max_retries, run_count, args, result, meta,
  last_error, run_at, created_at, started_at, completed_at, timeout_ms, unique_key, tenant, parent_id, fan_out_id,
  fan_out_index, locked_by, lease_expires_at, heartbeat_at, wake_at, wait_signal`;

/**
 * Claims up to @limit ready jobs of one queue (pending, run_at <= @now, queue not paused) in
 * claim order. The candidates come from the claim index with their rowids, so each update is a
 * direct table lookup. Params: @workerId, @now, @leaseExpiresAt, @queue, @limit. Result: the
 * claimed rows as {@link JOB_COLUMNS} tuples (run in raw mode; RETURNING order unspecified: sort
 * them).
 */
export const JOB_CLAIM = `
UPDATE sdj_jobs
SET status = 'running', attempt = attempt + 1, run_count = run_count + 1, locked_by = @workerId,
    started_at = @now, heartbeat_at = @now, lease_expires_at = @leaseExpiresAt
WHERE rowid IN (
  SELECT rowid FROM sdj_jobs
  WHERE status = 'pending' AND queue = @queue AND run_at <= @now
    AND NOT EXISTS (SELECT 1 FROM sdj_queues q WHERE q.name = @queue AND q.paused = 1)
  ORDER BY priority DESC, run_at, id
  LIMIT @limit)
RETURNING ${JOB_COLUMNS}`;

/**
 * Fenced: running → completed (positional parameters: it runs once per job on the hot path).
 * Params: result, now, id, workerId, runCount. Result: { fan_out_id } when applied.
 */
export const JOB_FINISH_COMPLETED = `
UPDATE sdj_jobs
SET status = 'completed', result = ?, completed_at = ?, ${CLEAR_LEASE}
WHERE id = ? AND locked_by = ? AND run_count = ? AND status = 'running'
RETURNING fan_out_id`;

/**
 * Fenced: running → failed. Params: @id, @workerId, @runCount, @error, @now.
 * Result: { fan_out_id } when applied.
 */
export const JOB_FINISH_FAILED = `
UPDATE sdj_jobs
SET status = 'failed', last_error = @error, completed_at = @now, ${CLEAR_LEASE}
WHERE ${FENCE}
RETURNING fan_out_id`;

/**
 * Fenced: running → pending for another attempt at @runAt. Params: @id, @workerId, @runCount,
 * @error, @runAt. Result: changes.
 */
export const JOB_FINISH_RETRY = `
UPDATE sdj_jobs
SET status = 'pending', last_error = @error, run_at = @runAt, ${CLEAR_LEASE}
WHERE ${FENCE}`;

/**
 * Fenced lease extension. Params: @id, @workerId, @runCount, @now, @leaseExpiresAt.
 * Result: changes (1 while the worker still holds the run).
 */
export const JOB_HEARTBEAT = `
UPDATE sdj_jobs SET lease_expires_at = @leaseExpiresAt, heartbeat_at = @now
WHERE ${FENCE}`;

/**
 * Fenced: running → pending, attempt given back, lease dropped. Params: @id, @workerId,
 * @runCount. Result: changes.
 */
export const JOB_RELEASE = `
UPDATE sdj_jobs SET status = 'pending', attempt = MAX(attempt - 1, 0), ${CLEAR_LEASE}
WHERE ${FENCE}`;

/**
 * Takes back running jobs whose lease expired (lease_expires_at < @now), oldest lease first:
 * pending while attempts remain, else failed. The attempt stays consumed.
 * Params: @now, @limit, @retryError, @failError. Result: id, type, queue, status, attempt,
 * max_retries, fan_out_id of each reclaimed job.
 */
export const JOB_RECLAIM_EXPIRED = `
UPDATE sdj_jobs
SET status = CASE WHEN attempt <= max_retries THEN 'pending' ELSE 'failed' END,
    last_error = CASE WHEN attempt <= max_retries THEN @retryError ELSE @failError END,
    completed_at = CASE WHEN attempt <= max_retries THEN NULL ELSE @now END,
    ${CLEAR_LEASE}
WHERE id IN (
  SELECT id FROM sdj_jobs
  WHERE status = 'running' AND lease_expires_at < @now
  ORDER BY lease_expires_at
  LIMIT @limit)
RETURNING id, type, queue, status, attempt, max_retries, fan_out_id`;

/**
 * Wakes waiting jobs whose wake_at has passed, and (recovery sweep) parents still waiting on a
 * fan-out that is already decided and is their latest step. Both parts read only the waiting
 * jobs (`INDEXED BY` the wake index: without statistics the planner would otherwise walk the
 * primary key, i.e. the whole table, on every maintenance pass). Params: @now, @limit.
 * Result: { id } of each job woken.
 */
export const JOB_WAKE_DUE = `
UPDATE sdj_jobs SET status = 'pending', wake_at = NULL, wait_signal = NULL
WHERE rowid IN (
  SELECT rowid FROM sdj_jobs INDEXED BY sdj_jobs_wake WHERE status = 'waiting' AND wake_at <= @now
  UNION ALL
  SELECT j.rowid FROM sdj_jobs AS j INDEXED BY sdj_jobs_wake
  WHERE j.status = 'waiting' AND j.wait_signal IS NULL AND (j.wake_at IS NULL OR j.wake_at > @now)
    AND EXISTS (
      SELECT 1 FROM sdj_fan_outs f
      WHERE f.parent_id = j.id AND f.status <> 'running'
        AND NOT EXISTS (SELECT 1 FROM sdj_steps s WHERE s.job_id = j.id AND s.step_index > f.step_index))
  LIMIT @limit)
RETURNING id`;

/**
 * Whether a job has any child (over parent_id, partial index `sdj_jobs_parent`): a job failing
 * with children cancels its subtree. Params: id. Result: { one } or none.
 */
export const JOB_HAS_CHILDREN = 'SELECT 1 AS one FROM sdj_jobs WHERE parent_id = ? LIMIT 1';

/**
 * Cancels every non-terminal job in the subtrees (over parent_id) rooted at the given ids.
 * Params: @roots (JSON array of ids), @now. Result: { id, fan_out_id } of each job cancelled.
 */
export const JOB_CANCEL_SUBTREES = `
WITH RECURSIVE sub(id) AS (
  SELECT value FROM json_each(@roots)
  UNION
  SELECT j.id FROM sdj_jobs j JOIN sub ON j.parent_id = sub.id)
UPDATE sdj_jobs
SET status = 'cancelled', completed_at = @now, wake_at = NULL, wait_signal = NULL, ${CLEAR_LEASE}
WHERE id IN (SELECT id FROM sub) AND +status IN ${NON_TERMINAL}
RETURNING id, fan_out_id`;

/**
 * Cancels the unfinished children of a fan-out and their subtrees.
 * Params: @fanOutId, @now. Result: { id, fan_out_id } of each job cancelled.
 */
export const JOB_CANCEL_FAN_OUT_CHILDREN = `
WITH RECURSIVE sub(id) AS (
  SELECT id FROM sdj_jobs WHERE fan_out_id = @fanOutId AND status IN ${NON_TERMINAL}
  UNION
  SELECT j.id FROM sdj_jobs j JOIN sub ON j.parent_id = sub.id)
UPDATE sdj_jobs
SET status = 'cancelled', completed_at = @now, wake_at = NULL, wait_signal = NULL, ${CLEAR_LEASE}
WHERE id IN (SELECT id FROM sub) AND +status IN ${NON_TERMINAL}
RETURNING id, fan_out_id`;

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

/**
 * The earliest run_at among pending jobs of the given (unpaused) queues.
 * Params: JSON array of queue names. Result: { next } (null when none).
 */
export const JOB_NEXT_RUN_AT = `
SELECT MIN(run_at) AS next FROM sdj_jobs
WHERE status = 'pending' AND queue IN (SELECT value FROM json_each(?))
  AND queue NOT IN (SELECT name FROM sdj_queues WHERE paused = 1)`;

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

/** The filter columns `jobList` accepts, and their SQL column. */
export const JOB_LIST_FILTERS = {
  status: 'status',
  queue: 'queue',
  type: 'type',
  parentId: 'parent_id',
  fanOutId: 'fan_out_id',
} as const;

/**
 * Builds the `jobList` statement for a set of filters (composed from the constant column names
 * above; values stay bound). Params: @status, @queue, @type, @parentId, @fanOutId (those used),
 * @limit, @offset. Result: job rows, newest first (or oldest first for `asc`).
 */
export function jobListSql(filters: readonly (keyof typeof JOB_LIST_FILTERS)[], order: 'asc' | 'desc'): string {
  const where = filters.map((f) => `${JOB_LIST_FILTERS[f]} = @${f}`);
  const dir = order === 'asc' ? 'ASC' : 'DESC';
  return (
    'SELECT * FROM sdj_jobs' +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY created_at ${dir}, id ${dir} LIMIT @limit OFFSET @offset`
  );
}
