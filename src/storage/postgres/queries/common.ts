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
