/**
 * SQLite statements of fan-out accounting (fan-out-accounting.ts): counting children on their
 * fan-outs, recording a decision, expiring a fan-out, resuming its parent, and cancelling
 * subtrees. Values are always bound parameters.
 * @internal
 */
import { CLEAR_LEASE, NON_TERMINAL } from './common.js';

/**
 * Adds terminal children to a fan-out's counters. Params: @id, @succeeded, @failed, @cancelled.
 * Result: the updated fan-out row (none when it does not exist).
 */
export const FAN_OUT_ADD_COUNTS = `
UPDATE sdj_fan_outs
SET succeeded = succeeded + @succeeded, failed = failed + @failed, cancelled = cancelled + @cancelled
WHERE id = @id
RETURNING *`;

/**
 * Decides a running fan-out. Params: @id, @status, @now. Result: changes (1 on the deciding
 * transition, 0 when already decided).
 */
export const FAN_OUT_DECIDE = `
UPDATE sdj_fan_outs SET status = @status, decided_at = @now WHERE id = @id AND status = 'running'`;

/**
 * Fails a running fan-out whose deadline passed. Params: @id, @now.
 * Result: { parent_id } when it applied.
 */
export const FAN_OUT_EXPIRE = `
UPDATE sdj_fan_outs SET status = 'failed', decided_at = @now
WHERE id = @id AND status = 'running' AND deadline_at IS NOT NULL AND deadline_at <= @now
RETURNING parent_id`;

/**
 * Resumes a parent waiting on a fan-out (the deciding transition): waiting → pending.
 * Params: id. Result: changes.
 */
export const JOB_RESUME_WAITING_PARENT = `
UPDATE sdj_jobs SET status = 'pending', wake_at = NULL, wait_signal = NULL WHERE id = ? AND status = 'waiting'`;

/**
 * Cancels every non-terminal job in the subtrees (over parent_id) rooted at the given ids.
 * Params: @roots (JSON array of ids), @now. Result: { id, fan_out_id } of each job cancelled.
 */
export const JOB_CANCEL_SUBTREES = cancelSubtreesOf('SELECT value FROM json_each(@roots)');

/**
 * Cancels the unfinished children of a fan-out and their subtrees.
 * Params: @fanOutId, @now. Result: { id, fan_out_id } of each job cancelled.
 */
export const JOB_CANCEL_FAN_OUT_CHILDREN = cancelSubtreesOf(`SELECT id FROM sdj_jobs WHERE fan_out_id = @fanOutId AND status IN ${NON_TERMINAL}`);

/**
 * Cancels every non-terminal job of the subtrees (over parent_id) rooted at the ids `roots`
 * selects, with @now as completed_at. Result: { id, fan_out_id } of each job cancelled.
 */
function cancelSubtreesOf(roots: string): string {
  return `
WITH RECURSIVE sub(id) AS (
  ${roots}
  UNION
  SELECT j.id FROM sdj_jobs j JOIN sub ON j.parent_id = sub.id)
UPDATE sdj_jobs
SET status = 'cancelled', completed_at = @now, wake_at = NULL, wait_signal = NULL, ${CLEAR_LEASE}
WHERE id IN (SELECT id FROM sub) AND +status IN ${NON_TERMINAL}
RETURNING id, fan_out_id`;
}
