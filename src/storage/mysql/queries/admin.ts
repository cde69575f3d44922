/**
 * MySQL/MariaDB statements for sessions, the clock, migrations, queues and schedules.
 * @internal
 */
import { NOW, SCHEDULE_COLUMNS } from './common.js';

/** Session setup of connections the driver creates: READ COMMITTED for every transaction. */
export const SET_SESSION_READ_COMMITTED = 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED';

/** Before a transaction on a user's pool: READ COMMITTED for the next transaction only. */
export const SET_TX_READ_COMMITTED = 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED';

/** Starts a transaction. */
export const TX_BEGIN = 'START TRANSACTION';

/** Commits the transaction. */
export const TX_COMMIT = 'COMMIT';

/** Rolls the transaction back. */
export const TX_ROLLBACK = 'ROLLBACK';

/** Marks the start of a batch insert inside the caller's transaction. */
export const INSERT_SAVEPOINT = 'SAVEPOINT sdj_insert_many';

/** Forgets the savepoint of a batch insert that succeeded. */
export const INSERT_SAVEPOINT_RELEASE = 'RELEASE SAVEPOINT sdj_insert_many';

/** Undoes a batch insert that failed inside the caller's transaction. */
export const INSERT_SAVEPOINT_ROLLBACK = 'ROLLBACK TO SAVEPOINT sdj_insert_many';

/** The clock. Params: now. Result: `{ now_ms }`. */
export const CLOCK_NOW = `SELECT ${NOW} AS now_ms`;

/** The largest statement the server accepts, in bytes. Result: `{ bytes }`. */
export const MAX_ALLOWED_PACKET = 'SELECT @@max_allowed_packet AS bytes';

// ---------------------------------------------------------------------------- migrations

/** The current database name. Result: `{ db }` (null when none is selected). */
export const MIGRATIONS_CURRENT_DB = 'SELECT DATABASE() AS db';

/** Takes the migration lock. Params: lock name, timeout seconds. Result: `{ got }` 1, 0 (timeout) or null (error). */
export const MIGRATIONS_LOCK = 'SELECT GET_LOCK(?, ?) AS got';

/** Releases the migration lock. Params: lock name. */
export const MIGRATIONS_UNLOCK = 'SELECT RELEASE_LOCK(?) AS released';

/** Creates the migration ledger. */
export const MIGRATIONS_CREATE_LEDGER =
  'CREATE TABLE IF NOT EXISTS sdj_migrations (version INT NOT NULL, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL, ' +
  'PRIMARY KEY (version)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin';

/** Versions already applied. Result: `{ version }[]`. */
export const MIGRATIONS_APPLIED = 'SELECT version FROM sdj_migrations ORDER BY version';

/** Records an applied migration. Params: version, name, now. */
export const MIGRATIONS_INSERT = `INSERT INTO sdj_migrations (version, name, applied_at) VALUES (?, ?, ${NOW})`;

// ---------------------------------------------------------------------------- queues

/** Pauses or resumes a queue. Params: name, paused (0/1), now, paused, now. */
export const QUEUE_SET_PAUSED =
  `INSERT INTO sdj_queues (name, paused, updated_at) VALUES (?, ?, ${NOW}) ` + `ON DUPLICATE KEY UPDATE paused = ?, updated_at = ${NOW}`;

/** Names of paused queues. Result: `{ name }[]`. */
export const QUEUE_LIST_PAUSED = 'SELECT name FROM sdj_queues WHERE paused = 1 ORDER BY name';

// ---------------------------------------------------------------------------- schedules

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
