/**
 * PostgreSQL statements of fan-out accounting (`fan-out-accounting.ts`): the fan-out locks taken
 * before any job row, subtree walks and cancels, fan-out decisions and expiry. `$1` is the
 * optional "now" where a statement needs one. Walks and lookups by id go through `sdj_jobs`
 * (a subtree spans both partitions); a cancel deletes each job from `sdj_jobs_live` and inserts
 * it, cancelled, into history in the same statement (`moveInsert`); resuming a waiting parent
 * updates `sdj_jobs_live`.
 * @internal
 */
import { MOVE_CLEAR_LEASE, moveInsert, NON_TERMINAL, NOW, NOW_CTE } from './common.js';

/**
 * Locks (in id order) the fan-outs of the given jobs, so every transaction that accounts for
 * children takes fan-out locks before job locks. Params: $1 job ids. Result: { id }.
 */
export const FAN_OUT_LOCK_FOR_JOBS = `
SELECT f.id FROM {s}.sdj_fan_outs f
WHERE f.id IN (SELECT j.fan_out_id FROM {s}.sdj_jobs j WHERE j.id = ANY($1::text[]) AND j.fan_out_id IS NOT NULL)
ORDER BY f.id
FOR UPDATE`;

/**
 * Where a subtree cancel starts: the jobs $1 that are still non-terminal and the non-terminal
 * children of the fan-outs $2. Subtrees are then walked level by level with
 * {@link JOB_CHILDREN} (a recursive CTE here gets wild row estimates from the planner, hence
 * hash joins over the whole table or JIT compilation).
 * Params: $1 root ids, $2 fan-out ids. Result: one row { ids: text[] | null, found: how many of
 * $1 exist }.
 */
export const JOB_CANCEL_START = `
SELECT ARRAY(
    SELECT id FROM {s}.sdj_jobs_live WHERE id = ANY($1::text[]) AND status IN ${NON_TERMINAL}
    UNION
    SELECT id FROM {s}.sdj_jobs_live WHERE fan_out_id = ANY($2::text[]) AND status IN ${NON_TERMINAL}
  ) AS ids,
  (SELECT count(*) FROM {s}.sdj_jobs WHERE id = ANY($1::text[])) AS found`;

/** The children of some jobs (one level of a subtree walk). Params: $1 ids. Result: { id }. */
export const JOB_CHILDREN = 'SELECT id FROM {s}.sdj_jobs WHERE parent_id = ANY($1::text[])';

/**
 * Cancels the non-terminal jobs among $2: their fan-outs are locked first (id order, as every
 * accounting transaction does), then the cancelled fan-out children are counted on them.
 * Params: $1 now, $2 job ids. Result: one row { ids: cancelled ids | null, fans: updated
 * fan-out rows (JSON) | null, now }.
 */
export const JOB_CANCEL_MANY = `
WITH ${NOW_CTE},
fl AS MATERIALIZED (
  SELECT f.id FROM {s}.sdj_fan_outs f
  WHERE f.id IN (SELECT j.fan_out_id FROM {s}.sdj_jobs j WHERE j.id = ANY($2::text[]) AND j.fan_out_id IS NOT NULL)
  ORDER BY f.id
  FOR UPDATE
),
upd AS (
  DELETE FROM {s}.sdj_jobs_live j
  WHERE j.id = ANY($2::text[]) AND j.status IN ${NON_TERMINAL} AND (SELECT count(*) FROM fl) >= 0
  RETURNING j.*
),
ins AS (
  ${moveInsert('upd', { status: "'cancelled'", completed_at: NOW, wake_at: 'NULL', wait_signal: 'NULL', ...MOVE_CLEAR_LEASE })}
),
cnt AS (
  UPDATE {s}.sdj_fan_outs f SET cancelled = f.cancelled + x.c
  FROM (SELECT fan_out_id, count(*) AS c FROM upd WHERE fan_out_id IS NOT NULL GROUP BY fan_out_id) x
  WHERE f.id = x.fan_out_id
  RETURNING f.*
)
SELECT (SELECT json_agg(id) FROM upd) AS ids, (SELECT json_agg(row_to_json(cnt)) FROM cnt) AS fans, ${NOW} AS now`;

/**
 * Decides running fan-outs and, on that deciding transition only, turns their parents from
 * waiting to pending (and notifies their queues). The fan-outs must already be locked.
 * Params: $1 now, $2 fan-out ids, $3 decisions ('succeeded' | 'failed'), $4 channel.
 * Result: { id, status } of each fan-out decided here.
 */
export const FAN_OUT_DECIDE = `
WITH ${NOW_CTE},
fo AS (
  UPDATE {s}.sdj_fan_outs f SET status = d.status, decided_at = n.t
  FROM unnest($2::text[], $3::text[]) AS d(id, status), now n
  WHERE f.id = d.id AND f.status = 'running'
  RETURNING f.id, f.parent_id, f.status
),
p AS (
  UPDATE {s}.sdj_jobs_live j SET status = 'pending', wake_at = NULL, wait_signal = NULL
  FROM fo WHERE j.id = fo.parent_id AND j.status = 'waiting'
  RETURNING j.queue
),
ntf AS (SELECT pg_notify($4, d.queue) FROM (SELECT DISTINCT queue FROM p) d)
SELECT fo.id, fo.status, (SELECT count(*) FROM ntf) AS notified FROM fo`;

/**
 * Fails a running fan-out whose deadline passed and resumes its waiting parent.
 * Params: $1 now, $2 fan-out id, $3 channel. Result: { id } when it applied.
 */
export const FAN_OUT_EXPIRE = `
WITH ${NOW_CTE},
fo AS (
  UPDATE {s}.sdj_fan_outs f SET status = 'failed', decided_at = n.t
  FROM now n
  WHERE f.id = $2 AND f.status = 'running' AND f.deadline_at IS NOT NULL AND f.deadline_at <= n.t
  RETURNING f.id, f.parent_id
),
p AS (
  UPDATE {s}.sdj_jobs_live j SET status = 'pending', wake_at = NULL, wait_signal = NULL
  FROM fo WHERE j.id = fo.parent_id AND j.status = 'waiting'
  RETURNING j.queue
),
ntf AS (SELECT pg_notify($3, queue) FROM p)
SELECT fo.id, (SELECT count(*) FROM ntf) AS notified, ${NOW} AS now FROM fo`;
