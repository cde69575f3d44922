/**
 * SQL fragments shared by the MySQL/MariaDB statements.
 * @internal
 */

/**
 * "Now" in ms since the epoch, UTC: the bound value when the driver has an injected clock,
 * else the database clock. `UTC_TIMESTAMP(6)` and `TIMESTAMPDIFF` on DATETIME values involve
 * no time zone, so the result is the same whatever the session or server `time_zone`
 * (and unlike `UNIX_TIMESTAMP(NOW())` it is right through DST fall-back hours).
 * Params: now (number | null).
 */
export const NOW = `COALESCE(?, TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)`;

/** The statuses a job leaves only by someone's action. */
export const NON_TERMINAL = `('pending', 'running', 'waiting', 'paused')`;

/** Every column of `sdj_jobs` that maps to a `JobRow`, in `rows.ts` order. */
export const JOB_COLUMNS =
  'id, type, queue, status, priority, attempt, max_retries, run_count, args, result, meta, last_error, run_at, created_at, ' +
  'started_at, completed_at, timeout_ms, unique_key, tenant, parent_id, fan_out_id, fan_out_index, locked_by, lease_expires_at, ' +
  'heartbeat_at, wake_at, wait_signal, concurrency_key, rate_key, limited, debounce_key, progress_value, progress_message, progress_at';

/** `JOB_COLUMNS` qualified with the alias `j`. */
export const JOB_COLUMNS_J = JOB_COLUMNS.split(', ')
  .map((c) => `j.${c}`)
  .join(', ');

/** The columns of a `FanOutRow`. */
export const FAN_OUT_COLUMNS =
  'id, parent_id, step_index, strategy, threshold, total, succeeded, failed, cancelled, status, deadline_at, created_at, decided_at';

/** `FAN_OUT_COLUMNS` of the alias `f`, each renamed `fo_<column>` (reads that join job rows). */
export const FAN_OUT_COLUMNS_FO = FAN_OUT_COLUMNS.split(', ')
  .map((c) => `f.${c} AS fo_${c}`)
  .join(', ');

/** The columns of a `ScheduleRow`. */
export const SCHEDULE_COLUMNS = 'name, spec, options, next_run_at, last_run_at, last_job_id, created_at, updated_at';

/** The columns of a `StepRow`, with the instant it was recorded. */
export const STEP_COLUMNS = 'job_id, step_index, step_name, status, output, error, created_at';

/** `n` comma-separated copies of `group`. */
export function repeat(group: string, n: number): string {
  return Array.from({ length: n }, () => group).join(', ');
}
