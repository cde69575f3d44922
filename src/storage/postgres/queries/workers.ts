/**
 * PostgreSQL statements of the worker registry (`sdj_workers`). `$1` is the optional "now"
 * (see `NOW_CTE`).
 * @internal
 */
import { NOW, NOW_CTE } from './common.js';

/**
 * A worker's beat, one statement: upserts its row (started_at kept from the first beat,
 * last_seen_at = now, expires_at = now + ttl, the other fields replaced) and deletes the rows of
 * other workers whose expiry has passed.
 * Params: $1 now, $2 id, $3 name, $4 host, $5 pid, $6 queues (JSON text), $7 running, $8 ttl ms,
 * $9 started_at of a new row (null: now).
 * Result: one row { upserted, expired }.
 */
export const WORKER_BEAT = `
WITH ${NOW_CTE},
up AS (
  INSERT INTO {s}.sdj_workers (id, name, host, pid, queues, running, started_at, last_seen_at, expires_at)
  SELECT $2, $3, $4, $5, $6, $7, COALESCE($9::bigint, n.t), n.t, n.t + $8::bigint FROM now n
  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, host = EXCLUDED.host, pid = EXCLUDED.pid,
    queues = EXCLUDED.queues, running = EXCLUDED.running, last_seen_at = EXCLUDED.last_seen_at,
    expires_at = EXCLUDED.expires_at
  RETURNING id
),
gone AS (DELETE FROM {s}.sdj_workers w WHERE w.expires_at < ${NOW} AND w.id <> $2 RETURNING w.id)
SELECT (SELECT count(*) FROM up) AS upserted, (SELECT count(*) FROM gone) AS expired`;

/**
 * Workers whose expiry has not passed (expires_at >= now), by name then id (bytewise).
 * Params: $1 now. Result: worker rows.
 */
export const WORKER_LIST = `
WITH ${NOW_CTE}
SELECT w.* FROM {s}.sdj_workers w
WHERE w.expires_at >= ${NOW}
ORDER BY w.name COLLATE "C", w.id COLLATE "C"`;

/** Deletes a worker's row. Params: $1 id. Result: none. */
export const WORKER_REMOVE = 'DELETE FROM {s}.sdj_workers WHERE id = $1';
