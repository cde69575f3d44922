/**
 * MySQL/MariaDB statements of workflows: checkpoints, suspension, fan-outs and signals.
 * @internal
 */
import { FAN_OUT_COLUMNS, NON_TERMINAL, NOW, STEP_COLUMNS } from './common.js';

/**
 * Locks one job for a fenced write and reads the checkpoint at a step index (if any).
 * Params: now, stepIndex, jobId. Result: `{ status, locked_by, run_count, step_status, now_ms }`.
 */
export const FENCE_LOCK_WITH_STEP =
  `SELECT j.status, j.locked_by, j.run_count, s.status AS step_status, ${NOW} AS now_ms FROM sdj_jobs j ` +
  'LEFT JOIN sdj_steps s ON s.job_id = j.id AND s.step_index = ? WHERE j.id = ? FOR UPDATE';

/** Every checkpoint of a job. Params: jobId. */
export const STEP_LIST = `SELECT ${STEP_COLUMNS} FROM sdj_steps WHERE job_id = ? ORDER BY step_index`;

/**
 * Inserts a checkpoint, replacing an existing `waiting` one and keeping any other.
 * (`status` is assigned last: MySQL evaluates ON DUPLICATE KEY assignments left to right.)
 * Params: jobId, stepIndex, stepName, status, output, error, now, stepName, output, error, status.
 */
export const STEP_UPSERT =
  `INSERT INTO sdj_steps (job_id, step_index, step_name, status, output, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ${NOW}) ` +
  "ON DUPLICATE KEY UPDATE step_name = IF(status = 'waiting', ?, step_name), output = IF(status = 'waiting', ?, output), " +
  "error = IF(status = 'waiting', ?, error), status = IF(status = 'waiting', ?, status)";

/**
 * running → waiting (fence already checked under lock), giving the attempt back; lease cleared.
 * Params: status ('waiting', or 'pending' when the wait is already satisfied), wakeAt, waitSignal, jobId.
 */
export const JOB_SUSPEND =
  'UPDATE sdj_jobs SET status = ?, attempt = GREATEST(attempt - 1, 0), locked_by = NULL, lease_expires_at = NULL, ' +
  "wake_at = ?, wait_signal = ? WHERE id = ? AND status = 'running'";

/**
 * Creates a fan-out. Params: id, parentId, stepIndex, strategy, threshold, total, status,
 * deadlineAt, createdAt, decidedAt.
 */
export const FAN_OUT_INSERT =
  'INSERT INTO sdj_fan_outs (id, parent_id, step_index, strategy, threshold, total, succeeded, failed, cancelled, status, ' +
  'deadline_at, created_at, decided_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, ?)';

/** One fan-out. Params: id. */
export const FAN_OUT_GET = `SELECT ${FAN_OUT_COLUMNS} FROM sdj_fan_outs WHERE id = ?`;

/** Locks fan-outs for accounting, in id order. Params: now, ids[]. Result: fan-out columns + `now_ms`. */
export const FAN_OUT_LOCK_MANY = `SELECT ${FAN_OUT_COLUMNS}, ${NOW} AS now_ms FROM sdj_fan_outs WHERE id IN (?) ORDER BY id FOR UPDATE`;

/**
 * The fan-outs of some jobs and of every job below them (no locks): what a cancel of their
 * subtrees may count on. Params: jobIds[]. Result: `{ id }[]`.
 */
export const FAN_OUT_IDS_UNDER_JOBS =
  'WITH RECURSIVE sub (id) AS (SELECT id FROM sdj_jobs WHERE id IN (?) ' +
  'UNION ALL SELECT c.id FROM sdj_jobs c JOIN sub ON c.parent_id = sub.id) ' +
  'SELECT f.id FROM sdj_fan_outs f JOIN sub ON f.parent_id = sub.id';

/**
 * The fan-outs below the unfinished children of some fan-outs (no locks): what a failed decision
 * of those fan-outs, which cancels the children with their subtrees, may count on.
 * Params: fanOutIds[]. Result: `{ id }[]`.
 */
export const FAN_OUT_IDS_BELOW_UNFINISHED =
  `WITH RECURSIVE sub (id) AS (SELECT id FROM sdj_jobs WHERE fan_out_id IN (?) AND status IN ${NON_TERMINAL} ` +
  'UNION ALL SELECT c.id FROM sdj_jobs c JOIN sub ON c.parent_id = sub.id) ' +
  'SELECT f.id FROM sdj_fan_outs f JOIN sub ON f.parent_id = sub.id';

/** Writes a fan-out's counters and decision. Params: succeeded, failed, cancelled, status, decidedAt, id. */
export const FAN_OUT_UPDATE = 'UPDATE sdj_fan_outs SET succeeded = ?, failed = ?, cancelled = ?, status = ?, decided_at = ? WHERE id = ?';

/**
 * Takes a retried child's old outcome out of its fan-out's counters (the child is counted again
 * when it ends); the fan-out keeps its status. Params: failed (0/1), cancelled (0/1), id.
 */
export const FAN_OUT_UNCOUNT = 'UPDATE sdj_fan_outs SET failed = GREATEST(failed - ?, 0), cancelled = GREATEST(cancelled - ?, 0) WHERE id = ?';

/**
 * The unfinished children of a fan-out, locked in index order. The index is forced: ordering by
 * id let the optimizer pick a scan of the whole primary key on a small table, and a locking read
 * waits for every row it scans — unrelated jobs included. Params: fanOutId. Result: `{ id, status }[]`.
 */
export const FAN_OUT_UNFINISHED_CHILDREN =
  `SELECT id, status FROM sdj_jobs FORCE INDEX (sdj_jobs_fan_out) WHERE fan_out_id = ? AND status IN ${NON_TERMINAL} ORDER BY fan_out_index FOR UPDATE`;

/** Resumes a parent waiting on a decided fan-out. Params: parentId. */
export const FAN_OUT_WAKE_PARENT =
  "UPDATE sdj_jobs SET status = 'pending', wake_at = NULL, wait_signal = NULL WHERE id = ? AND status = 'waiting'";

/** Locks a job receiving a signal. Params: jobId. Result: `{ status, wait_signal }`. */
export const SIGNAL_LOCK_JOB = 'SELECT status, wait_signal FROM sdj_jobs WHERE id = ? FOR UPDATE';

/** Buffers a signal. Params: jobId, name, payload, now. */
export const SIGNAL_INSERT = `INSERT INTO sdj_signals (job_id, name, payload, created_at) VALUES (?, ?, ?, ${NOW})`;

/** Wakes a job waiting for a signal. Params: jobId. */
export const SIGNAL_WAKE_JOB =
  "UPDATE sdj_jobs SET status = 'pending', wake_at = NULL, wait_signal = NULL WHERE id = ? AND status = 'waiting'";

/** The oldest unconsumed signal of a name, locked. Params: jobId, name. Result: `{ seq, payload }`. */
export const SIGNAL_NEXT =
  'SELECT seq, payload FROM sdj_signals WHERE job_id = ? AND name = ? AND consumed_at IS NULL ORDER BY seq LIMIT 1 FOR UPDATE';

/** Whether an unconsumed signal of a name exists. Params: jobId, name. Result: `{ seq }`. */
export const SIGNAL_PENDING_EXISTS = 'SELECT seq FROM sdj_signals WHERE job_id = ? AND name = ? AND consumed_at IS NULL LIMIT 1';

/** Marks a signal consumed. Params: consumedAt, seq. */
export const SIGNAL_CONSUME = 'UPDATE sdj_signals SET consumed_at = ? WHERE seq = ?';
