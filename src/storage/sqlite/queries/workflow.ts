/**
 * SQLite statements for workflows: checkpoints (`sdj_steps`), suspension, fan-outs
 * (`sdj_fan_outs`) and signals (`sdj_signals`). Values are always bound parameters.
 * @internal
 */
import { FENCE } from './common.js';

/** Whether a run's fence holds. Params: @id, @workerId, @runCount. Result: { ok } or none. */
export const JOB_FENCE_CHECK = `SELECT 1 AS ok FROM sdj_jobs WHERE ${FENCE}`;

/**
 * Fenced: running → @status (`waiting`, or `pending` when the wait is already satisfied),
 * attempt given back, lease dropped, wake time and awaited signal set.
 * Params: @id, @workerId, @runCount, @status, @wakeAt, @waitSignal. Result: changes.
 */
export const JOB_SUSPEND = `
UPDATE sdj_jobs
SET status = @status, attempt = MAX(attempt - 1, 0), locked_by = NULL, lease_expires_at = NULL,
    heartbeat_at = NULL, wake_at = @wakeAt, wait_signal = @waitSignal
WHERE ${FENCE}`;

/**
 * Records a checkpoint; an existing `waiting` row at that index is replaced, any other row is
 * kept. Params: @jobId, @stepIndex, @stepName, @status, @output, @error, @now.
 * Result: changes (0 when a finished row already exists).
 */
export const STEP_UPSERT = `
INSERT INTO sdj_steps (job_id, step_index, step_name, status, output, error, created_at)
VALUES (@jobId, @stepIndex, @stepName, @status, @output, @error, @now)
ON CONFLICT (job_id, step_index) DO UPDATE
SET step_name = excluded.step_name, status = excluded.status, output = excluded.output, error = excluded.error
WHERE sdj_steps.status = 'waiting'`;

/** Every checkpoint of a job. Params: job id. Result: step rows by step_index. */
export const STEP_LIST = 'SELECT * FROM sdj_steps WHERE job_id = ? ORDER BY step_index';

/** A page of a job's checkpoints. Params: job id, after index, limit. Result: step rows by step_index. */
export const STEP_LIST_PAGE = 'SELECT * FROM sdj_steps WHERE job_id = ? AND step_index > ? ORDER BY step_index LIMIT ?';

/**
 * Deletes the checkpoints of the given jobs. Params: JSON array of job ids. Result: changes.
 */
export const STEP_DELETE_FOR_JOBS = 'DELETE FROM sdj_steps WHERE job_id IN (SELECT value FROM json_each(?))';

/**
 * Inserts a running fan-out.
 * Params: @id, @parentId, @stepIndex, @strategy, @threshold, @total, @status, @deadlineAt,
 * @now, @decidedAt. Result: none.
 */
export const FAN_OUT_INSERT = `
INSERT INTO sdj_fan_outs (id, parent_id, step_index, strategy, threshold, total, succeeded, failed, cancelled,
  status, deadline_at, created_at, decided_at)
VALUES (@id, @parentId, @stepIndex, @strategy, @threshold, @total, 0, 0, 0, @status, @deadlineAt, @now, @decidedAt)`;

/** One fan-out. Params: id. Result: the fan-out row or none. */
export const FAN_OUT_GET = 'SELECT * FROM sdj_fan_outs WHERE id = ?';

/** The children of a fan-out. Params: fan-out id. Result: job rows in fan_out_index order. */
export const FAN_OUT_CHILDREN = 'SELECT * FROM sdj_jobs WHERE fan_out_id = ? ORDER BY fan_out_index';

/**
 * Takes a retried child back out of its fan-out's counters (it will be counted again when it
 * ends). Params: @id, @failed, @cancelled (0/1). Result: changes.
 */
export const FAN_OUT_UNCOUNT = `
UPDATE sdj_fan_outs
SET failed = MAX(failed - @failed, 0), cancelled = MAX(cancelled - @cancelled, 0)
WHERE id = @id`;

/** Deletes the fan-outs owned by the given parents. Params: JSON array of job ids. Result: changes. */
export const FAN_OUT_DELETE_FOR_PARENTS = 'DELETE FROM sdj_fan_outs WHERE parent_id IN (SELECT value FROM json_each(?))';

/**
 * Wakes a job waiting for a signal of this name: waiting → pending.
 * Params: @id, @name. Result: changes.
 */
export const JOB_WAKE_SIGNAL_WAITER = `
UPDATE sdj_jobs SET status = 'pending', wake_at = NULL, wait_signal = NULL
WHERE id = @id AND status = 'waiting' AND wait_signal = @name`;

/** Buffers a signal. Params: @jobId, @name, @payload, @now. Result: none. */
export const SIGNAL_INSERT = `
INSERT INTO sdj_signals (job_id, name, payload, created_at) VALUES (@jobId, @name, @payload, @now)`;

/**
 * The oldest unconsumed signal of a name for a job. Params: @jobId, @name.
 * Result: { seq, payload } or none.
 */
export const SIGNAL_OLDEST = `
SELECT seq, payload FROM sdj_signals
WHERE job_id = @jobId AND name = @name AND consumed_at IS NULL
ORDER BY seq LIMIT 1`;

/**
 * The signals of a job, consumed or buffered, oldest first, after a seq (0: from the first).
 * Params: job id, after seq, limit. Result: { seq, name, payload, created_at, consumed_at }[].
 */
export const SIGNAL_LIST = 'SELECT seq, name, payload, created_at, consumed_at FROM sdj_signals WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?';

/** Marks a signal consumed. Params: @seq, @now. Result: changes. */
export const SIGNAL_CONSUME = 'UPDATE sdj_signals SET consumed_at = @now WHERE seq = @seq AND consumed_at IS NULL';

/** Deletes the signals of the given jobs. Params: JSON array of job ids. Result: changes. */
export const SIGNAL_DELETE_FOR_JOBS = 'DELETE FROM sdj_signals WHERE job_id IN (SELECT value FROM json_each(?))';
