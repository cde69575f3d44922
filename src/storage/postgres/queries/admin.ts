/**
 * PostgreSQL statements for the migration ledger, its lock, queue pausing, LISTEN, the clock and
 * the prune lock.
 * Values are always bound parameters; `$1` is the optional "now" where one is needed.
 * @internal
 */
import { DB_NOW, NOW_CTE } from './common.js';

/** The database clock in ms. Params: none. Result: { now }. */
export const CLOCK_NOW = `SELECT ${DB_NOW} AS now`;

/**
 * Serialises migrations of one schema across processes until the transaction ends.
 * Params: $1 lock key (bigint). Result: none.
 */
export const MIGRATIONS_LOCK = 'SELECT pg_advisory_xact_lock($1::bigint)';

/** Whether a schema exists. Params: $1 schema name. Result: { found } (a row when it exists). */
export const MIGRATIONS_SCHEMA_EXISTS = 'SELECT 1 AS found FROM pg_namespace WHERE nspname = $1';

/** Creates the schema if absent. Params: none. */
export const MIGRATIONS_CREATE_SCHEMA = 'CREATE SCHEMA IF NOT EXISTS {s}';

/** Creates the migration ledger if absent. Params: none. */
export const MIGRATIONS_CREATE_LEDGER = `
CREATE TABLE IF NOT EXISTS {s}.sdj_migrations (
  version    integer NOT NULL PRIMARY KEY,
  name       text    NOT NULL,
  applied_at bigint  NOT NULL
)`;

/** Every applied version. Params: none. Result: { version } rows. */
export const MIGRATIONS_VERSIONS = 'SELECT version FROM {s}.sdj_migrations ORDER BY version';

/** Records an applied migration. Params: $1 now, $2 version, $3 name. Result: none. */
export const MIGRATIONS_INSERT = `
WITH ${NOW_CTE}
INSERT INTO {s}.sdj_migrations (version, name, applied_at) SELECT $2, $3, t FROM now`;

/**
 * Sets a queue's paused flag (the row lock makes in-flight claims finish first); resuming
 * notifies the queue. Params: $1 now, $2 name, $3 paused, $4 channel. Result: { notified }.
 */
export const QUEUE_SET_PAUSED = `
WITH ${NOW_CTE},
up AS (
  INSERT INTO {s}.sdj_queues (name, paused, updated_at) SELECT $2, $3, t FROM now
  ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused, updated_at = EXCLUDED.updated_at
  RETURNING name, paused
),
ntf AS (SELECT pg_notify($4, name) FROM up WHERE NOT paused)
SELECT (SELECT count(*) FROM ntf) AS notified`;

/** Starts listening on a channel (a validated identifier, quoted here). Params: none. */
export function listenSql(channel: string): string {
  return `LISTEN "${channel}"`;
}

/** Stops listening on a channel. Params: none. */
export function unlistenSql(channel: string): string {
  return `UNLISTEN "${channel}"`;
}

/** Health check of the idle LISTEN connection. Params: none. */
export const LISTENER_PING = 'SELECT 1';

/**
 * Opens a prune: turns JIT compilation off for the rest of the transaction (the prune's subtree
 * walks get cost estimates in the millions, which would make every call compile for about a
 * second) and tries the fleet-wide prune lock, held until the transaction ends.
 * Params: $1 lock key (bigint). Result: { got } (false when another prune holds the lock).
 */
export const PRUNE_LOCK = "SELECT set_config('jit', 'off', true) AS jit, pg_try_advisory_xact_lock($1::bigint) AS got";
