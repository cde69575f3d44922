/**
 * MySQL/MariaDB statements for sessions, the clock, migrations and queues.
 * @internal
 */
import { NOW } from './common.js';

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

// ---------------------------------------------------------------------------- retention

/**
 * Takes the prune lock without waiting: a named lock per database, `sdj_prune_<database>` (the
 * database name hashed when that would pass the 64 characters MySQL allows), held by the session
 * until {@link PRUNE_UNLOCK}. Result: `{ name, got, lock_wait_s }`: got 1 (taken), 0 (another
 * session holds it) or null (error); lock_wait_s, the session's `innodb_lock_wait_timeout`, for
 * {@link PRUNE_UNLOCK} to restore.
 */
export const PRUNE_LOCK =
  'SELECT l.name, GET_LOCK(l.name, 0) AS got, @@SESSION.innodb_lock_wait_timeout AS lock_wait_s FROM (SELECT IF(CHAR_LENGTH(DATABASE()) <= 54, ' +
  "CONCAT('sdj_prune_', DATABASE()), CONCAT('sdj_prune_', SHA1(DATABASE()))) AS name) l";

/**
 * Shortens the session's row lock wait while it holds the prune lock: the prune is built never to
 * wait for a row lock, and should it still, the wait ends in seconds. Params: seconds.
 */
export const PRUNE_SET_LOCK_WAIT = 'SET SESSION innodb_lock_wait_timeout = ?';

/**
 * Releases the prune lock, then restores the session's row lock wait, in one statement.
 * Params: lock name, seconds (`lock_wait_s` of {@link PRUNE_LOCK}).
 */
export const PRUNE_UNLOCK = 'SET @sdj_prune_released = RELEASE_LOCK(?), @@SESSION.innodb_lock_wait_timeout = ?';
