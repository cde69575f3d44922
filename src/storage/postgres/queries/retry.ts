/**
 * PostgreSQL statements of a retry from the failed step (`retry-from-step.ts`): the last
 * checkpoint, the fan-out recorded there and its children, and the reopening of that fan-out.
 * `$1` is the optional "now" where a statement needs one.
 * @internal
 */
import { NOW_CTE } from './common.js';

/** A job's last checkpoint (highest step index). Params: $1 job id. Result: { step_index, status } or none. */
export const STEP_LAST = 'SELECT step_index, step_name, status FROM {s}.sdj_steps WHERE job_id = $1 ORDER BY step_index DESC LIMIT 1';

/** Deletes one checkpoint. Params: $1 job id, $2 step index. Result: none. */
export const STEP_DELETE = 'DELETE FROM {s}.sdj_steps WHERE job_id = $1 AND step_index = $2';

/**
 * The fan-out a parent recorded at a step, locked (already locked through its children by the
 * retry's first step, unless it has none). Params: $1 parent id, $2 step index.
 * Result: { id, total } or none.
 */
export const FAN_OUT_AT_STEP = 'SELECT id, total, status, strategy, threshold FROM {s}.sdj_fan_outs WHERE parent_id = $1 AND step_index = $2 ORDER BY id FOR UPDATE';

/** The children of a fan-out. Params: $1 fan-out id. Result: { id, status }. */
export const FAN_OUT_CHILD_STATUSES = 'SELECT id, status FROM {s}.sdj_jobs WHERE fan_out_id = $1';

/**
 * Reopens a fan-out whose failed and cancelled children are being retried: succeeded = $3 (its
 * completed children), failed = cancelled = 0, status running (decided_at null) or succeeded (decided_at now), and a deadline
 * moved to now + (deadline_at − created_at), and created_at = now (the timeout stays the one
 * given, however often it is reopened). Params: $1 now, $2 fan-out id, $3 succeeded, $4 status (`running`, or
 * `succeeded` when the completed children decide it).
 * Result: none.
 */
export const FAN_OUT_REOPEN = `
WITH ${NOW_CTE}
UPDATE {s}.sdj_fan_outs f
SET succeeded = $3::int, failed = 0, cancelled = 0, status = $4::text,
  decided_at = CASE WHEN $4::text = 'succeeded' THEN n.t ELSE NULL END,
  deadline_at = CASE WHEN f.deadline_at IS NULL THEN NULL ELSE n.t + (f.deadline_at - f.created_at) END,
  created_at = n.t
FROM now n WHERE f.id = $2`;
