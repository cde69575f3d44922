/**
 * MySQL/MariaDB statements of a retry from the failed step (`retry-from-step.ts`): the last
 * checkpoint, the fan-out recorded there and its children, and the reopening of that fan-out.
 * @internal
 */

/** A job's last checkpoint (highest step index). Params: jobId. Result: `{ step_index, step_name, status }` or none. */
export const STEP_LAST = 'SELECT step_index, step_name, status FROM sdj_steps WHERE job_id = ? ORDER BY step_index DESC LIMIT 1';

/** Deletes one checkpoint. Params: jobId, stepIndex. */
export const STEP_DELETE = 'DELETE FROM sdj_steps WHERE job_id = ? AND step_index = ?';

/**
 * The fan-out a parent recorded at a step, locked (the retry locked it already, with every
 * fan-out under the job, before the job row). Params: parentId, stepIndex. Result: `{ id, total, status, strategy, threshold }` or none.
 */
export const FAN_OUT_AT_STEP = 'SELECT id, total, status, strategy, threshold FROM sdj_fan_outs WHERE parent_id = ? AND step_index = ? ORDER BY id LIMIT 1 FOR UPDATE';

/**
 * Every child of a fan-out, locked in index order (after the parent's row: subtrees are locked
 * top-down). The index is forced so the locking read reaches only these rows.
 * Params: fanOutId. Result: `{ id, status, unique_key }[]`.
 */
export const FAN_OUT_CHILDREN_LOCK =
  'SELECT id, status, unique_key FROM sdj_jobs FORCE INDEX (sdj_jobs_fan_out) WHERE fan_out_id = ? ORDER BY fan_out_index FOR UPDATE';

/**
 * Reopens a fan-out whose failed and cancelled children are being retried: succeeded = its
 * completed children, failed = cancelled = 0, status running (decided_at null) or succeeded (decided_at now), and a deadline
 * moved to now + (deadline_at − created_at), then created_at = now (so the timeout stays the
 * one given, however often it is reopened). Assignments run left to right. Params: succeeded,
 * status (`running`, or `succeeded` when the completed children decide it), now, now, now, id.
 */
export const FAN_OUT_REOPEN =
  "UPDATE sdj_fan_outs SET succeeded = ?, failed = 0, cancelled = 0, status = ?, decided_at = IF(status = 'succeeded', ?, NULL), " +
  'deadline_at = IF(deadline_at IS NULL, NULL, ? + (deadline_at - created_at)), created_at = ? WHERE id = ?';
