/**
 * MySQL/MariaDB statements of workflows: checkpoints, suspension, fan-outs and signals.
 * @internal
 */
import { FAN_OUT_COLUMNS, FAN_OUT_COLUMNS_FO, JOB_COLUMNS_J, NOW, STEP_COLUMNS, repeat } from './common.js';

/**
 * Locks one job for a fenced write and reads the checkpoint at a step index (if any).
 * Params: now, stepIndex, jobId. Result: `{ status, locked_by, run_count, step_status, now_ms }`.
 */
export const FENCE_LOCK_WITH_STEP =
  `SELECT j.status, j.locked_by, j.run_count, s.status AS step_status, ${NOW} AS now_ms FROM sdj_jobs j ` +
  'LEFT JOIN sdj_steps s ON s.job_id = j.id AND s.step_index = ? WHERE j.id = ? FOR UPDATE';

/**
 * Locks the jobs of a batch of checkpoints in id order (the driver's lock order) with the
 * database now, and reads (and locks) their checkpoints at the batch's step indexes: one row per
 * job and checkpoint found, step columns null for a job with none. Params: now, stepIndexes[],
 * ids[]. Result: `{ id, status, locked_by, run_count, step_index, step_status, now_ms }[]`.
 */
export const STEP_FENCE_LOCK_MANY =
  `SELECT j.id, j.status, j.locked_by, j.run_count, s.step_index, s.status AS step_status, ${NOW} AS now_ms FROM sdj_jobs j ` +
  'LEFT JOIN sdj_steps s ON s.job_id = j.id AND s.step_index IN (?) WHERE j.id IN (?) ORDER BY j.id FOR UPDATE';

/** Every checkpoint of a job. Params: jobId. */
export const STEP_LIST = `SELECT ${STEP_COLUMNS} FROM sdj_steps WHERE job_id = ? ORDER BY step_index`;

/** A page of a job's checkpoints: index above a bound, lowest first. Params: jobId, after index, limit. */
export const STEP_LIST_PAGE = `SELECT ${STEP_COLUMNS} FROM sdj_steps WHERE job_id = ? AND step_index > ? ORDER BY step_index LIMIT ?`;

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
 * {@link STEP_UPSERT} of `n` checkpoints in one statement, rows applied in order (a later row
 * of the same job and index meets the earlier one as the existing row). Params per row: jobId,
 * stepIndex, stepName, status, output, error, now.
 */
export function stepUpsertManySql(n: number): string {
  return (
    'INSERT INTO sdj_steps (job_id, step_index, step_name, status, output, error, created_at) VALUES ' +
    repeat(`(?, ?, ?, ?, ?, ?, ${NOW})`, n) +
    " ON DUPLICATE KEY UPDATE step_name = IF(status = 'waiting', VALUES(step_name), step_name), " +
    "output = IF(status = 'waiting', VALUES(output), output), error = IF(status = 'waiting', VALUES(error), error), " +
    "status = IF(status = 'waiting', VALUES(status), status)"
  );
}

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

/**
 * A fan-out (its columns renamed `fo_<column>`) and the database now, joined to its children in
 * index order (job columns, null when it has none): one row per child, or one row. Params: now, id.
 */
export const FAN_OUT_COLLECT =
  `SELECT ${FAN_OUT_COLUMNS_FO}, ${NOW} AS now_ms, ${JOB_COLUMNS_J} FROM sdj_fan_outs f ` +
  'LEFT JOIN sdj_jobs j ON j.fan_out_id = f.id WHERE f.id = ? ORDER BY j.fan_out_index';

/**
 * Takes a retried child's old outcome out of its fan-out's counters (the child is counted again
 * when it ends); the fan-out keeps its status. Params: failed (0/1), cancelled (0/1), id.
 */
export const FAN_OUT_UNCOUNT = 'UPDATE sdj_fan_outs SET failed = GREATEST(failed - ?, 0), cancelled = GREATEST(cancelled - ?, 0) WHERE id = ?';

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

/**
 * The signals of a job, consumed or buffered, oldest first, after a seq (0: from the first).
 * Params: jobId, after seq, limit. Result: `{ seq, name, payload, created_at, consumed_at }[]`.
 */
export const SIGNAL_LIST = 'SELECT seq, name, payload, created_at, consumed_at FROM sdj_signals WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?';

/** Marks a signal consumed. Params: consumedAt, seq. */
export const SIGNAL_CONSUME = 'UPDATE sdj_signals SET consumed_at = ? WHERE seq = ?';
