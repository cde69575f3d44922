/**
 * MySQL/MariaDB statements of fleet events: the change feed `sdj_events`, its head counter
 * `sdj_event_head` and the presence rows `sdj_event_subscribers` (migrations/0006_events.sql).
 * Values are always bound parameters.
 * @internal
 */
import { NOW } from './common.js';

/**
 * Takes n ids from the head counter, first in an append's transaction: the row lock is held until
 * commit, so appends get their ids in commit order. `LAST_INSERT_ID(expr)` hands the new value back
 * in the result header's `insertId`. Params: n.
 */
export const EVENT_HEAD_TAKE = 'UPDATE sdj_event_head SET last_id = LAST_INSERT_ID(last_id + ?) WHERE singleton = 1';

/** The newest id given so far. Params: none. Result: one row { last_id }. */
export const EVENT_HEAD = 'SELECT last_id FROM sdj_event_head WHERE singleton = 1';

/** One row of {@link eventInsertSql}: id, now, type, job id, origin, payload. */
const INSERT_ROW = `(?, ${NOW}, ?, ?, ?, ?)`;

/**
 * Inserts `n` events with their ids and `at` = now. Params per row: id, now, type, job id,
 * origin, payload.
 */
export function eventInsertSql(n: number): string {
  return `INSERT INTO sdj_events (id, at, type, job_id, origin, payload) VALUES ${Array.from({ length: n }, () => INSERT_ROW).join(', ')}`;
}

/**
 * Feed events after an id, in id order (a range of the primary key).
 * Params: after id, limit. Result: event rows.
 */
export const EVENT_READ_AFTER = 'SELECT id, at, type, job_id, origin, payload FROM sdj_events WHERE id > ? ORDER BY id LIMIT ?';

/**
 * The newest id stored before now − age (a range of `sdj_events_at`), null when none.
 * Params: now, age ms. Result: one row { id }.
 */
export const EVENT_NEWEST_BEFORE = `SELECT MAX(id) AS id FROM sdj_events WHERE at < ${NOW} - ?`;

/** Deletes the events up to an id (a range of the primary key). Params: id. */
export const EVENT_DELETE_UP_TO = 'DELETE FROM sdj_events WHERE id <= ?';

/**
 * Deletes the presence rows of other subscribers whose expiry has passed (a range of
 * `sdj_event_subscribers_expires`). Params: now, id of the beating subscriber.
 */
export const EVENT_SUBSCRIBER_DELETE_EXPIRED = `DELETE FROM sdj_event_subscribers WHERE expires_at < ${NOW} AND id <> ?`;

/** Upserts a subscriber's presence row, expires_at = now + ttl. Params: id, ttl ms, now. */
export const EVENT_SUBSCRIBER_UPSERT =
  `INSERT INTO sdj_event_subscribers (id, expires_at) SELECT ?, n.t + ? FROM (SELECT ${NOW} AS t) n ` +
  'ON DUPLICATE KEY UPDATE expires_at = VALUES(expires_at)';

/** Presence rows whose expiry has not passed. Params: now. Result: one row { n }. */
export const EVENT_SUBSCRIBERS_ACTIVE = `SELECT COUNT(*) AS n FROM sdj_event_subscribers WHERE expires_at >= ${NOW}`;

/** Deletes a subscriber's presence row. Params: id. */
export const EVENT_SUBSCRIBER_REMOVE = 'DELETE FROM sdj_event_subscribers WHERE id = ?';
