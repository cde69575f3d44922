/**
 * SQLite statements for the migration ledger and the queue pause flags. SQLite has no server:
 * the migration lock is the `BEGIN IMMEDIATE` transaction itself, and the clock is the host's.
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

/** Every applied version. Params: none. Result: { version } rows. */
export const MIGRATIONS_VERSIONS = 'SELECT version FROM sdj_migrations';

/** Records an applied migration. Params: version, name, applied_at. Result: none. */
export const MIGRATIONS_INSERT = 'INSERT INTO sdj_migrations (version, name, applied_at) VALUES (?, ?, ?)';

/** Sets a queue's paused flag. Params: @name, @paused (0/1), @now. Result: none. */
export const QUEUE_SET_PAUSED = `
INSERT INTO sdj_queues (name, paused, updated_at) VALUES (@name, @paused, @now)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at`;
