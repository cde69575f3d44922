/**
 * MySQL/MariaDB statements that create, read and administer jobs (outside the run hot path).
 * @internal
 */
import { JOB_COLUMNS, NOW, repeat } from './common.js';

/** One row of {@link jobInsertSql}: 17 params, see `insertRowValues` in `jobs-write.ts`. */
const INSERT_ROW = `(?, ?, ?, 'pending', ?, 0, ?, 0, ?, ?, GREATEST(${NOW} + ?, ?), ${NOW}, ?, ?, ?, ?, ?, ?)`;

/**
 * Inserts `n` pending jobs. run_at = max(now + delayMs, runAt ?? 0), created_at = now.
 * Params per row: id, type, queue, priority, maxRetries, args, meta, now, delayMs, runAt ?? 0,
 * now, timeoutMs, uniqueKey, tenant, parentId, fanOutId, fanOutIndex.
 * With `skipDuplicates`, a row clashing on a unique index is left out (no error).
 */
export function jobInsertSql(n: number, skipDuplicates: boolean): string {
  return (
    'INSERT INTO sdj_jobs (id, type, queue, status, priority, attempt, max_retries, run_count, args, meta, run_at, created_at, ' +
    'timeout_ms, unique_key, tenant, parent_id, fan_out_id, fan_out_index) VALUES ' +
    repeat(INSERT_ROW, n) +
    (skipDuplicates ? ' ON DUPLICATE KEY UPDATE id = id' : '')
  );
}

/** Which of the given ids exist. Params: ids[]. Result: `{ id }[]`. */
export const JOB_IDS_EXISTING = 'SELECT id FROM sdj_jobs WHERE id IN (?)';

/** A non-terminal job holding one of the keys. Params: keys[]. Result: `{ unique_key }[]`. */
export const JOB_ACTIVE_UNIQUE_KEY = `SELECT unique_key FROM sdj_jobs WHERE unique_active IN (?) LIMIT 1`;

/** One job. Params: id. */
export const JOB_GET = `SELECT ${JOB_COLUMNS} FROM sdj_jobs WHERE id = ?`;

/** Jobs by id (each once, ids not found left out). Params: ids[]. */
export const JOB_GET_MANY = `SELECT ${JOB_COLUMNS} FROM sdj_jobs WHERE id IN (?)`;

/** Filters of {@link jobListSql}, each present when given. */
export interface JobListFilters {
  status: boolean;
  queue: boolean;
  type: boolean;
  parentId: boolean;
  fanOutId: boolean;
}

/**
 * Jobs matching filters, newest (created_at, id) first or last.
 * Params: the present filters' values in the order status, queue, type, parentId, fanOutId; then limit, offset.
 */
export function jobListSql(f: JobListFilters, order: 'asc' | 'desc'): string {
  const where: string[] = [];
  if (f.status) where.push('status = ?');
  if (f.queue) where.push('queue = ?');
  if (f.type) where.push('type = ?');
  if (f.parentId) where.push('parent_id = ?');
  if (f.fanOutId) where.push('fan_out_id = ?');
  const dir = order === 'asc' ? 'ASC' : 'DESC';
  return (
    `SELECT ${JOB_COLUMNS} FROM sdj_jobs` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY created_at ${dir}, id ${dir} LIMIT ? OFFSET ?`
  );
}

/** Job counts by status over every queue. Result: `{ status, n }[]`. */
export const JOB_COUNT_BY_STATUS = 'SELECT status, COUNT(*) AS n FROM sdj_jobs GROUP BY status';

/** Job counts by status of one queue. Params: queue. Result: `{ status, n }[]`. */
export const JOB_COUNT_BY_STATUS_IN_QUEUE = 'SELECT status, COUNT(*) AS n FROM sdj_jobs WHERE queue = ? GROUP BY status';

/** Status of one job. Params: id. Result: `{ status }`. */
export const JOB_STATUS = 'SELECT status FROM sdj_jobs WHERE id = ?';

/** A job's status and fan-out, without a lock (planning which fan-outs to lock first). Params: id. Result: `{ status, fan_out_id }`. */
export const JOB_PEEK = 'SELECT status, fan_out_id FROM sdj_jobs WHERE id = ?';

/** Locks one job for a state change. Params: id. Result: `{ id, status, fan_out_id }`. */
export const JOB_LOCK = 'SELECT id, status, fan_out_id FROM sdj_jobs WHERE id = ? FOR UPDATE';

/** pending → paused. Params: id. */
export const JOB_PAUSE = "UPDATE sdj_jobs SET status = 'paused' WHERE id = ? AND status = 'pending'";

/** paused → pending. Params: id. */
export const JOB_RESUME = "UPDATE sdj_jobs SET status = 'pending' WHERE id = ? AND status = 'paused'";

/**
 * failed/cancelled → pending, attempt 0, run_at now; last_error kept; lease and wait cleared.
 * Params: now, id.
 */
export const JOB_RETRY =
  `UPDATE sdj_jobs SET status = 'pending', attempt = 0, run_at = ${NOW}, result = NULL, completed_at = NULL, ` +
  'locked_by = NULL, lease_expires_at = NULL, wake_at = NULL, wait_signal = NULL ' +
  "WHERE id = ? AND status IN ('failed', 'cancelled')";

/** The ids of the subtree under the given jobs (no locks). Params: rootIds[]. Result: `{ id }[]`. */
export const JOB_SUBTREE_IDS =
  'WITH RECURSIVE sub (id) AS (SELECT id FROM sdj_jobs WHERE parent_id IN (?) ' +
  'UNION ALL SELECT c.id FROM sdj_jobs c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub';

/** Deletes jobs. Params: ids[]. */
export const JOB_DELETE_MANY = 'DELETE FROM sdj_jobs WHERE id IN (?)';

/** Deletes the checkpoints of jobs. Params: jobIds[]. */
export const STEP_DELETE_FOR_JOBS = 'DELETE FROM sdj_steps WHERE job_id IN (?)';

/** Deletes the fan-outs of parent jobs. Params: parentIds[]. */
export const FAN_OUT_DELETE_FOR_PARENTS = 'DELETE FROM sdj_fan_outs WHERE parent_id IN (?)';

/** Deletes the signals of jobs. Params: jobIds[]. */
export const SIGNAL_DELETE_FOR_JOBS = 'DELETE FROM sdj_signals WHERE job_id IN (?)';
