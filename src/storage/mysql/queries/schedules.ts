/**
 * MySQL/MariaDB statements of schedules (`schedule-ops.ts`).
 * @internal
 */
import { NOW, SCHEDULE_COLUMNS } from './common.js';

/** Whether an existing row takes an upsert (see {@link SCHEDULE_UPSERT}). Params: spec, nextRunAt. */
const SCHEDULE_TAKES = '(spec = ? OR last_run_at IS NULL OR ? > last_run_at)';

/**
 * Creates or replaces a schedule (see `Storage.scheduleUpsert`): the same spec keeps
 * next_run_at, another spec takes the new one — unless it is not after last_run_at, when every
 * column keeps its value. MySQL assigns left to right, so `spec` is assigned last and every
 * condition reads the stored spec. Params: name, spec, options, nextRunAt, now, now; then
 * spec, nextRunAt, nextRunAt (next_run_at); spec, nextRunAt, options (options); spec,
 * nextRunAt, now (updated_at); spec, nextRunAt, spec (spec).
 */
export const SCHEDULE_UPSERT =
  `INSERT INTO sdj_schedules (name, spec, options, next_run_at, created_at, updated_at) VALUES (?, ?, ?, ?, ${NOW}, ${NOW}) ` +
  'ON DUPLICATE KEY UPDATE ' +
  'next_run_at = IF(spec = ?, next_run_at, IF(last_run_at IS NULL OR ? > last_run_at, ?, next_run_at)), ' +
  `options = IF(${SCHEDULE_TAKES}, ?, options), ` +
  `updated_at = IF(${SCHEDULE_TAKES}, ${NOW}, updated_at), ` +
  `spec = IF(${SCHEDULE_TAKES}, ?, spec)`;

/** The stored spec and last fired slot of a schedule (after an upsert). Params: name. Result: `{ spec, last_run_at }`. */
export const SCHEDULE_AFTER_UPSERT = 'SELECT spec, last_run_at FROM sdj_schedules WHERE name = ?';

/** Removes a schedule. Params: name. */
export const SCHEDULE_DELETE = 'DELETE FROM sdj_schedules WHERE name = ?';

/** Every schedule. */
export const SCHEDULE_LIST = `SELECT ${SCHEDULE_COLUMNS} FROM sdj_schedules ORDER BY name`;

/** Due schedules. Params: now, limit. */
export const SCHEDULE_LIST_DUE = `SELECT ${SCHEDULE_COLUMNS} FROM sdj_schedules WHERE next_run_at <= ${NOW} ORDER BY next_run_at, name LIMIT ?`;

/**
 * Compare-and-set of a schedule's next fire. Params: nextRunAt, slotAt, now, name,
 * expectedNextRunAt. Affected rows 0: another scheduler won.
 */
export const SCHEDULE_FIRE_CAS =
  `UPDATE sdj_schedules SET next_run_at = ?, last_run_at = ?, updated_at = ${NOW} WHERE name = ? AND next_run_at = ?`;

/** Sets the last fired job of a schedule. Params: lastJobId, name. */
export const SCHEDULE_SET_LAST_JOB = 'UPDATE sdj_schedules SET last_job_id = ? WHERE name = ?';
