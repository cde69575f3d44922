/**
 * SQLite statements of the worker registry (`sdj_workers`). Values are always bound parameters.
 * @internal
 */

/**
 * Deletes the rows of other workers whose expiry has passed (a range of `sdj_workers_expires`).
 * Params: @now, @id (the beating worker). Result: changes.
 */
export const WORKER_DELETE_EXPIRED = 'DELETE FROM sdj_workers WHERE expires_at < @now AND id <> @id';

/**
 * Upserts a worker's row: started_at kept from the first beat, last_seen_at = @now,
 * expires_at = @expiresAt, the other fields replaced.
 * Params: @id, @name, @host, @pid, @queues (JSON text), @running, @startedAt (null: @now), @now,
 * @expiresAt. Result: none.
 */
export const WORKER_UPSERT = `
INSERT INTO sdj_workers (id, name, host, pid, queues, running, started_at, last_seen_at, expires_at)
VALUES (@id, @name, @host, @pid, @queues, @running, coalesce(@startedAt, @now), @now, @expiresAt)
ON CONFLICT (id) DO UPDATE
SET name = excluded.name, host = excluded.host, pid = excluded.pid, queues = excluded.queues, running = excluded.running,
    last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at`;

/**
 * Workers whose expiry has not passed (expires_at >= @now), by name then id (binary order).
 * Params: @now. Result: worker rows.
 */
export const WORKER_LIST = `
SELECT id, name, host, pid, queues, running, started_at, last_seen_at FROM sdj_workers
WHERE expires_at >= @now ORDER BY name, id`;

/** Deletes a worker's row. Params: id. Result: changes. */
export const WORKER_REMOVE = 'DELETE FROM sdj_workers WHERE id = ?';
