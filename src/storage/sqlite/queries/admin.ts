/**
 * SQLite statements for queues, schedules and the migration ledger.
 * Values are always bound parameters.
 * @internal
 */

/** Creates the migration ledger if absent. Params: none. */
export const MIGRATIONS_CREATE_LEDGER = `
CREATE TABLE IF NOT EXISTS sdj_migrations (
  version    INTEGER NOT NULL PRIMARY KEY,
  name       TEXT    NOT NULL,
  applied_at INTEGER NOT NULL
)`;

/** The highest applied version. Params: none. Result: { version } (null when none). */
export const MIGRATIONS_MAX_VERSION = 'SELECT MAX(version) AS version FROM sdj_migrations';

/** Records an applied migration. Params: version, name, applied_at. Result: none. */
export const MIGRATIONS_INSERT = 'INSERT INTO sdj_migrations (version, name, applied_at) VALUES (?, ?, ?)';

/** Sets a queue's paused flag. Params: @name, @paused (0/1), @now. Result: none. */
export const QUEUE_SET_PAUSED = `
INSERT INTO sdj_queues (name, paused, updated_at) VALUES (@name, @paused, @now)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at`;

/** Names of paused queues. Params: none. Result: { name } rows by name. */
export const QUEUE_LIST_PAUSED = 'SELECT name FROM sdj_queues WHERE paused = 1 ORDER BY name';

/**
 * Creates or replaces a schedule (see `Storage.scheduleUpsert`): the same spec keeps
 * next_run_at, another spec takes @nextRunAt — unless @nextRunAt is not after last_run_at, when
 * the row is left as it is (changes = 0).
 * Params: @name, @spec, @options, @nextRunAt, @now. Result: changes (1 when stored).
 */
export const SCHEDULE_UPSERT = `
INSERT INTO sdj_schedules (name, spec, options, next_run_at, last_run_at, last_job_id, created_at, updated_at)
VALUES (@name, @spec, @options, @nextRunAt, NULL, NULL, @now, @now)
ON CONFLICT (name) DO UPDATE
SET spec = excluded.spec, options = excluded.options, updated_at = excluded.updated_at,
    next_run_at = CASE WHEN sdj_schedules.spec = excluded.spec THEN sdj_schedules.next_run_at ELSE excluded.next_run_at END
WHERE sdj_schedules.spec = excluded.spec OR sdj_schedules.last_run_at IS NULL OR excluded.next_run_at > sdj_schedules.last_run_at`;

/** The last fired slot of a schedule. Params: name. Result: { last_run_at } (none when absent). */
export const SCHEDULE_LAST_RUN_AT = 'SELECT last_run_at FROM sdj_schedules WHERE name = ?';

/** Removes a schedule. Params: name. Result: changes. */
export const SCHEDULE_DELETE = 'DELETE FROM sdj_schedules WHERE name = ?';

/** Every schedule. Params: none. Result: schedule rows by name. */
export const SCHEDULE_LIST = 'SELECT * FROM sdj_schedules ORDER BY name';

/** Schedules due at @now. Params: @now, @limit. Result: schedule rows, earliest first. */
export const SCHEDULE_LIST_DUE = `
SELECT * FROM sdj_schedules WHERE next_run_at <= @now ORDER BY next_run_at, name LIMIT @limit`;

/**
 * Compare-and-set of next_run_at for one fire. Params: @name, @expected, @nextRunAt, @slotAt,
 * @now. Result: changes (0 when another scheduler won).
 */
export const SCHEDULE_FIRE = `
UPDATE sdj_schedules SET next_run_at = @nextRunAt, last_run_at = @slotAt, updated_at = @now
WHERE name = @name AND next_run_at = @expected`;

/** Records the job a fire enqueued. Params: @name, @jobId. Result: changes. */
export const SCHEDULE_SET_LAST_JOB = 'UPDATE sdj_schedules SET last_job_id = @jobId WHERE name = @name';
