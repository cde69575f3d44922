/**
 * PostgreSQL statements for the migration ledger, queues, schedules and the clock.
 * Values are always bound parameters; `$1` is the optional "now" where one is needed.
 * @internal
 */
import { DB_NOW, NOW, NOW_CTE } from './common.js';

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

/** The highest applied version. Params: none. Result: { version } (null when none). */
export const MIGRATIONS_MAX_VERSION = 'SELECT max(version) AS version FROM {s}.sdj_migrations';

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

/** Names of paused queues. Params: none. Result: { name } rows by name. */
export const QUEUE_LIST_PAUSED = 'SELECT name FROM {s}.sdj_queues WHERE paused ORDER BY name';

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
