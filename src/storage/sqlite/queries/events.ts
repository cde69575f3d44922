/**
 * SQLite statements of fleet events: the change feed `sdj_events`, its head counter
 * `sdj_event_head` and the presence rows `sdj_event_subscribers` (migrations/0006_events.sql).
 * Values are always bound parameters.
 * @internal
 */

/**
 * Takes `@n` ids from the head counter (inside the append's write transaction).
 * Params: @n. Result: one row { last_id } (the last id taken).
 */
export const EVENT_HEAD_TAKE = 'UPDATE sdj_event_head SET last_id = last_id + @n WHERE singleton = 1 RETURNING last_id';

/** Appends one event with its id. Params: @id, @at, @type, @jobId, @origin, @payload. Result: none. */
export const EVENT_INSERT = `
INSERT INTO sdj_events (id, at, type, job_id, origin, payload)
VALUES (@id, @at, @type, @jobId, @origin, @payload)`;

/** The newest id given so far. Params: none. Result: one row { last_id }. */
export const EVENT_HEAD = 'SELECT last_id FROM sdj_event_head WHERE singleton = 1';

/**
 * Feed events after an id, in id order (a range of the primary key).
 * Params: @afterId, @limit. Result: event rows.
 */
export const EVENT_READ_AFTER = `
SELECT id, at, type, job_id, origin, payload FROM sdj_events
WHERE id > @afterId ORDER BY id LIMIT @limit`;

/**
 * The newest id stored before a cutoff (a range of `sdj_events_at`), null when none.
 * Params: @cutoff. Result: one row { id }.
 */
export const EVENT_NEWEST_BEFORE = 'SELECT max(id) AS id FROM sdj_events WHERE at < @cutoff';

/** Deletes the events up to an id (a range of the primary key). Params: @id. Result: changes. */
export const EVENT_DELETE_UP_TO = 'DELETE FROM sdj_events WHERE id <= @id';

/**
 * Deletes the presence rows of other subscribers whose expiry has passed.
 * Params: @now, @id (the beating subscriber). Result: changes.
 */
export const EVENT_SUBSCRIBER_DELETE_EXPIRED = 'DELETE FROM sdj_event_subscribers WHERE expires_at < @now AND id <> @id';

/** Upserts a subscriber's presence row. Params: @id, @expiresAt. Result: none. */
export const EVENT_SUBSCRIBER_UPSERT = `
INSERT INTO sdj_event_subscribers (id, expires_at) VALUES (@id, @expiresAt)
ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at`;

/** Presence rows whose expiry has not passed. Params: @now. Result: one row { n }. */
export const EVENT_SUBSCRIBERS_ACTIVE = 'SELECT count(*) AS n FROM sdj_event_subscribers WHERE expires_at >= @now';

/** Deletes a subscriber's presence row. Params: id. Result: changes. */
export const EVENT_SUBSCRIBER_REMOVE = 'DELETE FROM sdj_event_subscribers WHERE id = ?';
