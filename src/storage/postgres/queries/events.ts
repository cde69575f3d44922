/**
 * PostgreSQL statements of fleet events: the change feed `sdj_events`, its head counter
 * `sdj_event_head` and the presence rows `sdj_event_subscribers` (migrations/0006_events.sql).
 * `$1` is the optional "now" (see `NOW_CTE`).
 * @internal
 */
import { NOW, NOW_CTE } from './common.js';

/**
 * Appends a batch in one statement: takes as many ids from the head row as there are events (the
 * row stays locked until commit, so appends get their ids in commit order), inserts the events
 * with those ids in array order and `at` = now, and notifies the events channel (delivered at
 * commit). Params: $1 now, $2 types, $3 job ids (null items allowed), $4 origins, $5 payloads
 * (text[] each, same length), $6 the events channel. Result: one row { last_id } (the last id taken).
 */
export const EVENT_APPEND = `
WITH ${NOW_CTE},
head AS (
  UPDATE {s}.sdj_event_head SET last_id = last_id + cardinality($2::text[]) WHERE singleton = 1 RETURNING last_id
),
ins AS (
  INSERT INTO {s}.sdj_events (id, at, type, job_id, origin, payload)
  SELECT h.last_id - cardinality($2::text[]) + e.ord, n.t, e.type, e.job_id, e.origin, e.payload
  FROM head h CROSS JOIN now n
  CROSS JOIN unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS e(type, job_id, origin, payload, ord)
  RETURNING id
)
SELECT (SELECT last_id FROM head) AS last_id, (SELECT count(*) FROM ins) AS inserted, pg_notify($6, '') IS NULL AS notified`;

/**
 * Feed events after an id, in id order (a range of the primary key).
 * Params: $1 after id, $2 limit. Result: event rows.
 */
export const EVENT_READ_AFTER = `
SELECT id, at, type, job_id, origin, payload FROM {s}.sdj_events
WHERE id > $1::bigint ORDER BY id LIMIT $2::int`;

/**
 * Deletes, in one statement, every event up to the cut id: the greater of head − keep and the
 * newest id stored before now − age (a range of `sdj_events_at`); a null keep or age counts as 0.
 * Params: $1 now, $2 keep (null: none), $3 age ms (null: none). Result: one row { n } (deleted).
 */
export const EVENT_PRUNE = `
WITH ${NOW_CTE},
cut AS MATERIALIZED (
  SELECT GREATEST(0,
    COALESCE((SELECT last_id FROM {s}.sdj_event_head WHERE singleton = 1) - $2::bigint, 0),
    COALESCE((SELECT max(id) FROM {s}.sdj_events WHERE at < ${NOW} - $3::bigint), 0)) AS id
),
gone AS (DELETE FROM {s}.sdj_events e WHERE e.id <= (SELECT id FROM cut) RETURNING 1)
SELECT count(*) AS n FROM gone`;

/**
 * A subscriber's beat, one statement: upserts its presence row (expires_at = now + ttl), deletes
 * the rows of others whose expiry passed, and reads the head counter.
 * Params: $1 now, $2 id, $3 ttl ms. Result: one row { head }.
 */
export const EVENT_SUBSCRIBER_BEAT = `
WITH ${NOW_CTE},
up AS (
  INSERT INTO {s}.sdj_event_subscribers (id, expires_at) SELECT $2, n.t + $3::bigint FROM now n
  ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at
  RETURNING id
),
gone AS (DELETE FROM {s}.sdj_event_subscribers s WHERE s.expires_at < ${NOW} AND s.id <> $2 RETURNING 1)
SELECT (SELECT last_id FROM {s}.sdj_event_head WHERE singleton = 1) AS head, (SELECT count(*) FROM up) AS up, (SELECT count(*) FROM gone) AS gone`;

/** Presence rows whose expiry has not passed. Params: $1 now. Result: one row { n }. */
export const EVENT_SUBSCRIBERS_ACTIVE = `
WITH ${NOW_CTE}
SELECT count(*) AS n FROM {s}.sdj_event_subscribers WHERE expires_at >= ${NOW}`;

/** Deletes a subscriber's presence row. Params: $1 id. Result: none. */
export const EVENT_SUBSCRIBER_REMOVE = 'DELETE FROM {s}.sdj_event_subscribers WHERE id = $1';
