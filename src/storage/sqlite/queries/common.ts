/**
 * SQL fragments every SQLite statement module shares: the job column list, the status list of
 * unfinished jobs, the lease-clearing assignments and the fence of a claimed run. Fragments hold
 * no values: values are always bound parameters.
 * @internal
 */

/**
 * Non-terminal statuses (SQL list literal). Where rows are picked by id, the status test is
 * written `+status` so the planner keeps the id lookup instead of scanning a status index.
 */
export const NON_TERMINAL = "('pending', 'running', 'waiting', 'paused')";

/** Finished statuses (SQL list literal), as the partial index `sdj_jobs_unique_done` names them. */
export const FINISHED = "('completed', 'failed', 'cancelled')";

/** Assignments that drop a run's lease. */
export const CLEAR_LEASE = 'locked_by = NULL, lease_expires_at = NULL, heartbeat_at = NULL';

/** The fence of a claimed run: @id, @workerId, @runCount. */
export const FENCE = "id = @id AND locked_by = @workerId AND run_count = @runCount AND status = 'running'";

/** Every `sdj_jobs` column, in `JOB_COLUMN_NAMES` order (shared/row-mapping.ts), as raw-mode tuples carry them. */
export const JOB_COLUMNS = `id, type, queue, status, priority, attempt, max_retries, run_count, args, result, meta,
  last_error, run_at, created_at, started_at, completed_at, timeout_ms, unique_key, tenant, parent_id, fan_out_id,
  fan_out_index, locked_by, lease_expires_at, heartbeat_at, wake_at, wait_signal, concurrency_key, rate_key, limited, debounce_key,
  progress_value, progress_message, progress_at`;
