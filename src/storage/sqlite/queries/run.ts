/**
 * SQLite statements of the run path: claim, finish, heartbeat, release, reclaim and timed
 * wake-ups.
 * @internal
 */
import { CLEAR_LEASE, FENCE, JOB_COLUMNS } from './common.js';

/**
 * What a claim sets on each row it takes (the ordinary and the limited claim alike): running,
 * attempt + 1, run_count + 1, locked by @workerId, started and beating at @now, the lease until
 * @leaseExpiresAt.
 */
export const CLAIM_SET = `status = 'running', attempt = attempt + 1, run_count = run_count + 1, locked_by = @workerId,
    started_at = @now, heartbeat_at = @now, lease_expires_at = @leaseExpiresAt`;

/**
 * Claims up to @limit ready jobs of one queue (pending, not limited, run_at <= @now) in claim
 * order, unless the queue is paused or has a queue limit (its jobs are the limited claim's). The
 * candidates come from the claim index (which holds no limited job) with their rowids, so each
 * update is a direct table lookup. Params: @workerId, @now, @leaseExpiresAt, @queue, @limit.
 * Result: the claimed rows as `JOB_COLUMNS` tuples (run in raw mode; RETURNING order
 * unspecified: sort them).
 */
export const JOB_CLAIM = `
UPDATE sdj_jobs
SET ${CLAIM_SET}
WHERE rowid IN (
  SELECT rowid FROM sdj_jobs
  WHERE status = 'pending' AND limited = 0 AND queue = @queue AND run_at <= @now
    AND NOT EXISTS (
      SELECT 1 FROM sdj_queues q
      WHERE q.name = @queue AND (q.paused = 1 OR q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL))
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
