/**
 * PostgreSQL statements for schedules: definitions (upsert, delete, list), due schedules and
 * the compare-and-set fire. `$1` is the optional "now" where a statement needs one.
 * @internal
 */
import { NOW, NOW_CTE } from './common.js';

/**
 * Creates or replaces a schedule (see `Storage.scheduleUpsert`): the same spec keeps
 * next_run_at, another spec takes $5 — unless $5 is not after last_run_at, when the row is left
 * as it is. The conflict check reads the latest committed row, so a fire that committed first
 * is always seen. Params: $1 now, $2 name, $3 spec, $4 options, $5 next_run_at.
 * Result: { name } when stored, none when refused.
 */
export const SCHEDULE_UPSERT = `
WITH ${NOW_CTE}
INSERT INTO {s}.sdj_schedules AS old (name, spec, options, next_run_at, last_run_at, last_job_id, created_at, updated_at)
SELECT $2, $3, $4, $5, NULL, NULL, t, t FROM now
ON CONFLICT (name) DO UPDATE
SET spec = EXCLUDED.spec, options = EXCLUDED.options, updated_at = EXCLUDED.updated_at,
    next_run_at = CASE WHEN old.spec = EXCLUDED.spec THEN old.next_run_at ELSE EXCLUDED.next_run_at END
WHERE old.spec = EXCLUDED.spec OR old.last_run_at IS NULL OR EXCLUDED.next_run_at > old.last_run_at
RETURNING old.name`;

/** The last fired slot of a schedule. Params: $1 name. Result: { last_run_at } (none when absent). */
export const SCHEDULE_LAST_RUN_AT = 'SELECT last_run_at FROM {s}.sdj_schedules WHERE name = $1';

/** Removes a schedule. Params: $1 name. Result: { name } when it existed. */
export const SCHEDULE_DELETE = 'DELETE FROM {s}.sdj_schedules WHERE name = $1 RETURNING name';

/** Every schedule. Params: none. Result: schedule rows by name. */
export const SCHEDULE_LIST = 'SELECT * FROM {s}.sdj_schedules ORDER BY name';

/** Schedules due now. Params: $1 now, $2 limit. Result: schedule rows, earliest first. */
export const SCHEDULE_LIST_DUE = `
WITH ${NOW_CTE}
SELECT * FROM {s}.sdj_schedules WHERE next_run_at <= ${NOW} ORDER BY next_run_at, name LIMIT $2`;

/**
 * Compare-and-set of next_run_at for one fire. Params: $1 now, $2 name, $3 expected
 * next_run_at, $4 new next_run_at, $5 slot. Result: { now } when it applied.
 */
export const SCHEDULE_FIRE = `
WITH ${NOW_CTE}
UPDATE {s}.sdj_schedules s SET next_run_at = $4, last_run_at = $5, updated_at = n.t
FROM now n
WHERE s.name = $2 AND s.next_run_at = $3
RETURNING n.t AS now`;

/** Records the job a fire enqueued. Params: $1 name, $2 job id. Result: none. */
export const SCHEDULE_SET_LAST_JOB = 'UPDATE {s}.sdj_schedules SET last_job_id = $2 WHERE name = $1';
