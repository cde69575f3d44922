/**
 * SQLite statements over `sdj_schedules`: upsert, delete, reads and the compare-and-set fire.
 * Values are always bound parameters.
 * @internal
 */

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
