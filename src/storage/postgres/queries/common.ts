/**
 * SQL fragments shared by the PostgreSQL statements. Statements name tables as `{s}.sdj_*`;
 * `{s}` is replaced by the quoted schema when a storage instance renders them.
 * @internal
 */

/** The database clock in integer milliseconds since the epoch (changes within a statement). */
export const DB_NOW = '(floor(extract(epoch from clock_timestamp()) * 1000))::bigint';

/**
 * A CTE `now(t)` holding the statement's one "now": `$1` when the caller passes a time
 * (injected clock, or a time fixed earlier in the transaction), else the database clock.
 */
export const NOW_CTE = `now AS MATERIALIZED (SELECT COALESCE($1::bigint, ${DB_NOW}) AS t)`;

/** The statement's now as a scalar (requires {@link NOW_CTE}). */
export const NOW = '(SELECT t FROM now)';

/** Non-terminal statuses (SQL list literal). */
export const NON_TERMINAL = "('pending', 'running', 'waiting', 'paused')";

/** Assignments that drop a run's lease (table alias `j`-free, for `SET`). */
export const CLEAR_LEASE = 'locked_by = NULL, lease_expires_at = NULL, heartbeat_at = NULL';

/** The columns of a job row, in table order (`sdj_jobs` and both of its partitions). */
export const JOB_COLUMN_NAMES = [
  'id', 'type', 'queue', 'status', 'priority', 'attempt', 'max_retries', 'run_count', 'args', 'result', 'meta',
  'last_error', 'run_at', 'created_at', 'started_at', 'completed_at', 'timeout_ms', 'unique_key', 'tenant',
  'parent_id', 'fan_out_id', 'fan_out_index', 'locked_by', 'lease_expires_at', 'heartbeat_at', 'wake_at', 'wait_signal',
  'concurrency_key', 'rate_key', 'limited', 'debounce_key', 'progress_value', 'progress_message', 'progress_at',
] as const;

/** A job column name. */
export type JobColumn = (typeof JOB_COLUMN_NAMES)[number];

/**
 * The INSERT half of a job's move between the partitions of `sdj_jobs` (migrations/0002): the
 * rows of `src` — a CTE that deleted them from one partition, `RETURNING` the whole row — are
 * inserted into `sdj_jobs`, which routes each to the partition of its new status, with the
 * expressions of `set` replacing the row's own columns.
 *
 * A move is a DELETE and an INSERT rather than an UPDATE of the status through `sdj_jobs`: a
 * concurrent statement that is about to lock or update the old row then finds it deleted and
 * skips it, as it skips a row that no longer matches, where a row moved by an UPDATE makes it
 * fail with SQLSTATE 40001 ("tuple to be locked was already moved to another partition").
 */
export function moveInsert(src: string, set: Partial<Record<JobColumn, string>>): string {
  const values = JOB_COLUMN_NAMES.map((c) => set[c] ?? `${src}.${c}`);
  return `INSERT INTO {s}.sdj_jobs (${JOB_COLUMN_NAMES.join(', ')})
  SELECT ${values.join(', ')} FROM ${src}`;
}

/**
 * The `limited` mark of a job of type `type` (an SQL expression) as an insert decides it: 1 when
 * `sdj_type_limits` has a row for the type (migrations/0004).
 */
export function limitedOf(type: string): string {
  return `(CASE WHEN EXISTS (SELECT 1 FROM {s}.sdj_type_limits tl WHERE tl.type = ${type}) THEN 1 ELSE 0 END)::smallint`;
}

/**
 * A CTE that takes `ROW EXCLUSIVE` on `sdj_type_limits` without touching a row (named `lk`).
 * Every statement that marks new jobs `limited` from that table carries it: the lock is taken
 * when the statement starts, before its snapshot, so `limitSet` / `limitDelete` (which lock the
 * table in `SHARE ROW EXCLUSIVE` mode before re-marking the type's jobs) wait for the inserts in
 * flight, and the inserts that start later see the new row.
 */
export const TYPE_LIMITS_LOCK_CTE = 'lk AS (DELETE FROM {s}.sdj_type_limits WHERE false)';

/** The `set` of {@link moveInsert} that drops a run's lease. */
export const MOVE_CLEAR_LEASE = { locked_by: 'NULL', lease_expires_at: 'NULL', heartbeat_at: 'NULL' } as const;
