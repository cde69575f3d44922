/**
 * MySQL/MariaDB statements of the worker registry (`sdj_workers`). The first parameter is the
 * optional "now" (see `NOW`).
 * @internal
 */
import { NOW } from './common.js';

/**
 * Deletes the rows of other workers whose expiry has passed (a range of `sdj_workers_expires`).
 * Params: now, id of the beating worker.
 */
export const WORKER_DELETE_EXPIRED = `DELETE FROM sdj_workers WHERE expires_at < ${NOW} AND id <> ?`;

/**
 * Upserts a worker's row: started_at kept from the first beat (a new row: the given one, else now), last_seen_at = now,
 * expires_at = now + ttl, the other fields replaced.
 * Params: id, name, host, pid, queues (JSON text), running, started at (null: now), ttl ms, now.
 */
export const WORKER_UPSERT =
  'INSERT INTO sdj_workers (id, name, host, pid, queues, running, started_at, last_seen_at, expires_at) ' +
  `SELECT ?, ?, ?, ?, ?, ?, COALESCE(?, n.t), n.t, n.t + ? FROM (SELECT ${NOW} AS t) n ` +
  'ON DUPLICATE KEY UPDATE name = VALUES(name), host = VALUES(host), pid = VALUES(pid), queues = VALUES(queues), ' +
  'running = VALUES(running), last_seen_at = VALUES(last_seen_at), expires_at = VALUES(expires_at)';

/**
 * Workers whose expiry has not passed (expires_at >= now), by name then id (bytewise: the
 * columns are utf8mb4_bin). Params: now. Result: worker rows.
 */
export const WORKER_LIST =
  'SELECT id, name, host, pid, queues, running, started_at, last_seen_at FROM sdj_workers ' +
  `WHERE expires_at >= ${NOW} ORDER BY name, id`;

/** Deletes a worker's row. Params: id. */
export const WORKER_REMOVE = 'DELETE FROM sdj_workers WHERE id = ?';
