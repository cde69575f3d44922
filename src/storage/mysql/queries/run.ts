/**
 * MySQL/MariaDB statements of the run hot path: claim, finish, heartbeat, release, reclaim, wake.
 * @internal
 */
import { JOB_COLUMNS, NOW, repeat } from './common.js';

/**
 * Share-locks the queue rows of a claim, so a pause or a queue limit change (which writes the
 * row) waits for claims in flight and no claim that started before it commits after it.
 * `skipped` is 1 for a paused queue and for a queue with a queue limit (its jobs are for
 * `jobClaimLimited`). Params: names[]. Result: `{ name, skipped }[]`.
 */
export const CLAIM_LOCK_QUEUES =
  'SELECT name, paused <> 0 OR concurrency IS NOT NULL OR rate_limit IS NOT NULL AS skipped FROM sdj_queues WHERE name IN (?) LOCK IN SHARE MODE';

/** Creates missing queue rows (not paused). Params per row: name, now. */
export function claimEnsureQueuesSql(n: number): string {
  return `INSERT INTO sdj_queues (name, paused, updated_at) VALUES ${repeat(`(?, 0, ${NOW})`, n)} ON DUPLICATE KEY UPDATE name = name`;
}

/**
 * Ready jobs of one queue in claim order, locked; rows other claimers hold are skipped. Limited
 * jobs are left out: the range (queue, 'pending', 0) of `sdj_jobs_claim` holds none.
 * Params: now, queue, now, limit. Result: job columns + `now_ms`.
 */
export const CLAIM_SELECT =
  `SELECT ${JOB_COLUMNS}, ${NOW} AS now_ms FROM sdj_jobs ` +
  `WHERE queue = ? AND status = 'pending' AND limited = 0 AND run_at <= ${NOW} ` +
  'ORDER BY priority DESC, run_at, id LIMIT ? FOR UPDATE SKIP LOCKED';

/**
 * Marks claimed jobs running with a fresh lease and heartbeat.
 * Params: workerId, startedAt, heartbeatAt, leaseExpiresAt, ids[].
 */
export const CLAIM_UPDATE =
  "UPDATE sdj_jobs SET status = 'running', attempt = attempt + 1, run_count = run_count + 1, locked_by = ?, " +
  'started_at = ?, heartbeat_at = ?, lease_expires_at = ?, wake_at = NULL, wait_signal = NULL WHERE id IN (?)';

/**
 * Locks jobs whose fences are about to be checked, with the database now.
 * Params: now, ids[]. Result: `{ id, status, locked_by, run_count, fan_out_id, now_ms }[]`.
 */
export const FENCE_LOCK_MANY = `SELECT id, status, locked_by, run_count, fan_out_id, ${NOW} AS now_ms FROM sdj_jobs WHERE id IN (?) ORDER BY id FOR UPDATE`;

/**
 * {@link FENCE_LOCK_MANY} for a finish, plus `has_children` (a job failing with children has its
 * subtree cancelled in the same transaction; the probe is a non-locking indexed read).
 * Params: now, ids[]. Result: `{ id, status, locked_by, run_count, fan_out_id, has_children, now_ms }[]`.
 */
export const FINISH_LOCK_MANY =
  'SELECT j.id, j.status, j.locked_by, j.run_count, j.fan_out_id, ' +
  `EXISTS (SELECT 1 FROM sdj_jobs c WHERE c.parent_id = j.id) AS has_children, ${NOW} AS now_ms ` +
  'FROM sdj_jobs j WHERE j.id IN (?) ORDER BY j.id FOR UPDATE';

/** {@link FINISH_LOCK_MANY} that skips (never waits for) rows other transactions hold. Same params and result. */
export const FINISH_LOCK_MANY_SKIP_LOCKED = `${FINISH_LOCK_MANY} SKIP LOCKED`;

/**
 * The fan-out and children of jobs about to finish, without a lock (planning which fan-outs to
 * lock first). Params: ids[]. Result: `{ id, fan_out_id, has_children }[]`.
 */
export const FINISH_PEEK =
  'SELECT j.id, j.fan_out_id, EXISTS (SELECT 1 FROM sdj_jobs c WHERE c.parent_id = j.id) AS has_children FROM sdj_jobs j WHERE j.id IN (?)';

/**
 * One row of the outcome table of {@link finishSql}: id, status, result, error, runAt. The id
 * gets an explicit collation so joining it to `sdj_jobs.id` never mixes collations.
 */
const FINISH_ROW = 'SELECT CONVERT(? USING utf8mb4) COLLATE utf8mb4_bin AS id, ? AS status, ? AS result, ? AS error, ? AS run_at';

/**
 * Applies `n` outcomes (already fence-checked under lock). completed: result, completed_at;
 * failed: last_error, completed_at; pending (retry): last_error, run_at. Lease cleared.
 * Params: per row id, status, result, error, runAt; then completedAt.
 */
export function finishSql(n: number): string {
  const rows = Array.from({ length: n }, () => FINISH_ROW).join(' UNION ALL ');
  return (
    `UPDATE sdj_jobs j JOIN (${rows}) v ON v.id = j.id SET ` +
    'j.status = v.status, ' +
    "j.result = IF(v.status = 'completed', v.result, j.result), " +
    "j.last_error = IF(v.status = 'completed', j.last_error, v.error), " +
    "j.run_at = IF(v.status = 'pending', v.run_at, j.run_at), " +
    "j.completed_at = IF(v.status = 'pending', j.completed_at, ?), " +
    "j.locked_by = NULL, j.lease_expires_at = NULL WHERE j.status = 'running'"
  );
}

/**
 * Extends the leases of runs a worker holds. Params: now, now, leaseMs, workerId, ids[],
 * [id, runCount][].
 */
export const HEARTBEAT_UPDATE =
  `UPDATE sdj_jobs SET heartbeat_at = ${NOW}, lease_expires_at = ${NOW} + ? ` +
  "WHERE status = 'running' AND locked_by = ? AND id IN (?) AND (id, run_count) IN (?)";

/** The runs a worker holds among some. Params: workerId, ids[], [id, runCount][]. Result: `{ id }[]`. */
export const HEARTBEAT_HELD =
  "SELECT id FROM sdj_jobs WHERE status = 'running' AND locked_by = ? AND id IN (?) AND (id, run_count) IN (?)";

/** running → pending giving the attempt back, lease cleared. Params: ids[]. */
export const RELEASE_UPDATE =
  "UPDATE sdj_jobs SET status = 'pending', attempt = GREATEST(attempt - 1, 0), locked_by = NULL, lease_expires_at = NULL " +
  "WHERE id IN (?) AND status = 'running'";

/**
 * Running jobs whose lease expired, in reclaim order, without a lock (an idle pass ends here);
 * `has_children` tells, for a job about to fail (attempts spent), whether it has children (its
 * subtree is then cancelled). Params: now, limit.
 * Result: `{ id, run_count, attempt, max_retries, fan_out_id, has_children }[]`.
 * Reclaim order is the order of `sdj_jobs_prune` (status, lease_expires_at, parent_id,
 * completed_at, id): the earliest lease end first, ties by parent (roots first), then id
 * (completed_at is NULL while running). Ordering by (lease_expires_at, id) alone would sort every
 * expired run before the limit applies; the index is forced so that a small table's statistics
 * never trade it for a sort.
 */
export const RECLAIM_CANDIDATES =
  'SELECT j.id, j.run_count, j.attempt, j.max_retries, j.fan_out_id, ' +
  'IF(j.attempt > j.max_retries, EXISTS (SELECT 1 FROM sdj_jobs c WHERE c.parent_id = j.id), 0) AS has_children ' +
  `FROM sdj_jobs j FORCE INDEX (sdj_jobs_prune) WHERE j.status = 'running' AND j.lease_expires_at < ${NOW} ` +
  'ORDER BY j.lease_expires_at, j.parent_id, j.completed_at, j.id LIMIT ?';

/**
 * Locks the candidates still running with an expired lease, in id order, skipping rows others
 * hold. The primary key is forced: on the status index the read would lock (and scan) every
 * running job. Params: now, ids[], now. Result: `{ id, type, queue, run_count, attempt, max_retries, now_ms }[]`.
 */
export const RECLAIM_LOCK =
  `SELECT id, type, queue, run_count, attempt, max_retries, ${NOW} AS now_ms FROM sdj_jobs FORCE INDEX (PRIMARY) ` +
  `WHERE id IN (?) AND status = 'running' AND lease_expires_at < ${NOW} ORDER BY id FOR UPDATE SKIP LOCKED`;

/** Reclaimed jobs with attempts left → pending (the attempt stays consumed). Params: lastError, ids[]. */
export const RECLAIM_TO_PENDING =
  "UPDATE sdj_jobs SET status = 'pending', last_error = ?, locked_by = NULL, lease_expires_at = NULL WHERE id IN (?) AND status = 'running'";

/** Reclaimed jobs with attempts spent → failed. Params: lastError, completedAt, ids[]. */
export const RECLAIM_TO_FAILED =
  "UPDATE sdj_jobs SET status = 'failed', last_error = ?, completed_at = ?, locked_by = NULL, lease_expires_at = NULL " +
  "WHERE id IN (?) AND status = 'running'";

/**
 * Waiting jobs whose wake_at passed, locked, earliest first, in `sdj_jobs_wake` order (ties by
 * queue, then id), so the range is read only as far as the limit. Params: now, limit. Result: `{ id }[]`.
 */
export const WAKE_DUE_SELECT =
  `SELECT id FROM sdj_jobs WHERE status = 'waiting' AND wake_at <= ${NOW} ORDER BY wake_at LIMIT ? FOR UPDATE SKIP LOCKED`;

/**
 * Recovery sweep: parents still waiting (not on a signal) whose latest step is a fan-out
 * already decided. Params: limit. Result: `{ id }[]`.
 */
export const WAKE_DECIDED_PARENTS_SELECT =
  "SELECT j.id FROM sdj_jobs j WHERE j.status = 'waiting' AND j.wait_signal IS NULL AND EXISTS (" +
  "SELECT 1 FROM sdj_fan_outs f WHERE f.parent_id = j.id AND f.status <> 'running' " +
  'AND f.step_index = (SELECT MAX(s.step_index) FROM sdj_steps s WHERE s.job_id = j.id)) ' +
  'ORDER BY j.id LIMIT ? FOR UPDATE SKIP LOCKED';

/** waiting → pending, wake cleared. Params: ids[]. */
export const WAKE_UPDATE =
  "UPDATE sdj_jobs SET status = 'pending', wake_at = NULL, wait_signal = NULL WHERE id IN (?) AND status = 'waiting'";
