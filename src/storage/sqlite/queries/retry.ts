/**
 * SQLite statements of retries (`retry-core.ts`, `retry-from-step.ts`, `bulk-ops.ts`): whether a
 * unique key is held, a job's last checkpoint, the fan-out recorded there and its children, and
 * the reopening of that fan-out. Values are always bound parameters.
 * @internal
 */
import { NON_TERMINAL } from './common.js';

/**
 * Whether a live job holds a unique key (one probe of `sdj_jobs_unique_key`: the status list is
 * that index's condition). Params: unique key. Result: `{ one }` or none.
 */
export const JOB_UNIQUE_KEY_HELD = `SELECT 1 AS one FROM sdj_jobs WHERE unique_key = ? AND status IN ${NON_TERMINAL} LIMIT 1`;

/** A job's last checkpoint (highest step index). Params: job id. Result: `{ step_index, step_name, status }` or none. */
export const STEP_LAST = 'SELECT step_index, step_name, status FROM sdj_steps WHERE job_id = ? ORDER BY step_index DESC LIMIT 1';

/** Deletes one checkpoint. Params: job id, step index. Result: changes. */
export const STEP_DELETE = 'DELETE FROM sdj_steps WHERE job_id = ? AND step_index = ?';

/** The fan-out a parent recorded at a step. Params: parent id, step index. Result: `{ id, total, status, strategy, threshold }` or none. */
export const FAN_OUT_AT_STEP = 'SELECT id, total, status, strategy, threshold FROM sdj_fan_outs WHERE parent_id = ? AND step_index = ? ORDER BY id LIMIT 1';

/**
 * Every child of a fan-out, in index order (`sdj_jobs_fan_out`). Params: fan-out id.
 * Result: `{ id, status, unique_key }[]`.
 */
export const FAN_OUT_CHILD_STATES = 'SELECT id, status, unique_key FROM sdj_jobs WHERE fan_out_id = ? ORDER BY fan_out_index';

/**
 * Reopens a fan-out whose failed and cancelled children are being retried: succeeded = its
 * completed children, failed = cancelled = 0, status running (decided_at null) or succeeded (decided_at now), and a deadline
 * moved to @now + (deadline_at − created_at), and created_at = @now (the timeout stays the one
 * given, however often it is reopened). Params: @id, @succeeded, @status (`running`, or `succeeded` when the completed children decide
 * it), @now. Result: changes.
 */
export const FAN_OUT_REOPEN = `
UPDATE sdj_fan_outs
SET succeeded = @succeeded, failed = 0, cancelled = 0, status = @status,
    decided_at = CASE WHEN @status = 'succeeded' THEN @now ELSE NULL END,
    deadline_at = CASE WHEN deadline_at IS NULL THEN NULL ELSE @now + (deadline_at - created_at) END,
    created_at = @now
WHERE id = @id`;
