/**
 * PostgreSQL statements for workflows: checkpoints (`sdj_steps`), suspension, fan-outs and
 * signals. `$1` is the optional "now" where a statement needs one; every value is bound.
 * Fenced statements read and update running jobs in the live partition `sdj_jobs_live`; a
 * fan-out's children and a signal's target are looked up in `sdj_jobs` (live or finished).
 * @internal
 */
import { CLEAR_LEASE, NOW, NOW_CTE } from './common.js';

/** The fence of a run: $2 job id, $3 worker id, $4 run count. */
const FENCE = "id = $2 AND locked_by = $3 AND run_count = $4 AND status = 'running'";

/** Upsert tail of a step insert: an existing `waiting` row is replaced, any other kept. */
const STEP_CONFLICT = `
  ON CONFLICT (job_id, step_index) DO UPDATE
  SET step_name = EXCLUDED.step_name, status = EXCLUDED.status, output = EXCLUDED.output, error = EXCLUDED.error
  WHERE old_step.status = 'waiting'`;

/** Head of a step insert (alias `old_step` is the existing row in {@link STEP_CONFLICT}). */
const STEP_INSERT = 'INSERT INTO {s}.sdj_steps AS old_step (job_id, step_index, step_name, status, output, error, created_at)';

/** Every checkpoint of a job. Params: $1 job id. Result: step rows by step_index. */
export const STEP_LIST = 'SELECT * FROM {s}.sdj_steps WHERE job_id = $1 ORDER BY step_index';

/** A page of a job's checkpoints. Params: $1 job id, $2 after index, $3 limit. Result: step rows by step_index. */
export const STEP_LIST_PAGE = 'SELECT * FROM {s}.sdj_steps WHERE job_id = $1 AND step_index > $2 ORDER BY step_index LIMIT $3';

/**
 * Fenced checkpoint write: the job row is read FOR SHARE so a concurrent reclaim or cancel
 * either waits for this write or makes the fence fail.
 * Params: $1 now, $2 job id, $3 worker id, $4 run count, $5 step index, $6 step name,
 * $7 status, $8 output, $9 error. Result: { n } = rows written (0: fence failed or finished row).
 */
export const STEP_RECORD = `
WITH ${NOW_CTE},
f AS MATERIALIZED (SELECT id FROM {s}.sdj_jobs_live WHERE ${FENCE} FOR SHARE),
ins AS (
  ${STEP_INSERT}
  SELECT f.id, $5, $6, $7, $8, $9, ${NOW} FROM f
  ${STEP_CONFLICT}
  RETURNING 1
)
SELECT count(*) AS n FROM ins`;

/**
 * Many fenced checkpoint writes in one statement (see {@link STEP_RECORD}): the job rows whose
 * fence holds are read FOR SHARE in id order, then their steps are upserted. The items must not
 * repeat a (job, step index) pair. Params: $1 now, $2 job ids, $3 worker ids, $4 run counts,
 * $5 step indexes, $6 step names, $7 statuses, $8 outputs, $9 errors (one array each).
 * Result: { ord } (1-based) of each item written.
 */
export const STEP_RECORD_MANY = `
WITH ${NOW_CTE},
u AS (
  SELECT * FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[])
    WITH ORDINALITY AS u(job_id, worker_id, run_count, step_index, step_name, status, output, error, ord)
),
f AS MATERIALIZED (
  SELECT u.* FROM u JOIN {s}.sdj_jobs_live j ON j.id = u.job_id
  WHERE j.id = ANY($2::text[]) AND j.locked_by = u.worker_id AND j.run_count = u.run_count AND j.status = 'running'
  ORDER BY j.id
  FOR SHARE OF j
),
ins AS (
  ${STEP_INSERT}
  SELECT f.job_id, f.step_index, f.step_name, f.status, f.output, f.error, ${NOW} FROM f
  ${STEP_CONFLICT}
  RETURNING job_id, step_index
)
SELECT f.ord FROM f JOIN ins ON ins.job_id = f.job_id AND ins.step_index = f.step_index`;

/**
 * Fenced: running → waiting (attempt given back, lease dropped, wake_at and wait_signal set),
 * recording the step (when $7 is not null) in the same statement.
 * Params: $1 now, $2 job id, $3 worker id, $4 run count, $5 wake_at, $6 wait_signal,
 * $7 step index, $8 step name, $9 status, $10 output, $11 error.
 * Result: { n } = 1 when the fence held.
 */
export const JOB_SUSPEND = `
WITH ${NOW_CTE},
j AS (
  UPDATE {s}.sdj_jobs_live
  SET status = 'waiting', attempt = GREATEST(attempt - 1, 0), ${CLEAR_LEASE}, wake_at = $5, wait_signal = $6
  WHERE ${FENCE}
  RETURNING id
),
st AS (
  ${STEP_INSERT}
  SELECT j.id, $7, $8, $9, $10, $11, ${NOW} FROM j WHERE $7::int IS NOT NULL
  ${STEP_CONFLICT}
)
SELECT count(*) AS n FROM j`;

/**
 * Wakes a job waiting for a signal that is already buffered (run after the job row was locked
 * by the suspend, so a signal committed meanwhile is seen). Params: $1 job id, $2 signal name,
 * $3 channel. Result: { id } when woken.
 */
export const JOB_WAKE_IF_SIGNALLED = `
WITH upd AS (
  UPDATE {s}.sdj_jobs_live j SET status = 'pending', wake_at = NULL, wait_signal = NULL
  WHERE j.id = $1 AND j.status = 'waiting' AND j.wait_signal = $2
    AND EXISTS (SELECT 1 FROM {s}.sdj_signals s WHERE s.job_id = $1 AND s.name = $2 AND s.consumed_at IS NULL)
  RETURNING j.id, j.queue
),
ntf AS (SELECT pg_notify($3, queue) FROM upd)
SELECT id, (SELECT count(*) FROM ntf) AS notified FROM upd`;

/**
 * Fenced first half of a fan-out suspend: the parent turns $5 ('waiting', or 'pending' when the
 * fan-out is decided at creation), attempt given back, lease dropped, wake_at = deadline; the
 * fan-out step is recorded and the fan-out row inserted — all only when the fence held.
 * Params: $1 now, $2 job id, $3 worker id, $4 run count, $5 parent status, $6 step index,
 * $7 step name, $8 step status, $9 step output, $10 step error, $11 fan-out id, $12 strategy,
 * $13 threshold, $14 total, $15 fan-out status, $16 timeout ms, $17 channel.
 * Result: { n, now } (n = 1 when the fence held).
 */
export const JOB_SUSPEND_FAN_OUT = `
WITH ${NOW_CTE},
p AS (
  UPDATE {s}.sdj_jobs_live j
  SET status = $5, attempt = GREATEST(j.attempt - 1, 0), ${CLEAR_LEASE},
      wake_at = CASE WHEN $5 = 'waiting' THEN n.t + $16::bigint END, wait_signal = NULL
  FROM now n
  WHERE j.id = $2 AND j.locked_by = $3 AND j.run_count = $4 AND j.status = 'running'
  RETURNING j.id, j.queue
),
st AS (
  ${STEP_INSERT}
  SELECT p.id, $6, $7, $8, $9, $10, ${NOW} FROM p
  ${STEP_CONFLICT}
),
fo AS (
  INSERT INTO {s}.sdj_fan_outs (id, parent_id, step_index, strategy, threshold, total, succeeded, failed, cancelled,
    status, deadline_at, created_at, decided_at)
  SELECT $11, p.id, $6, $12, $13, $14, 0, 0, 0, $15, n.t + $16::bigint, n.t, CASE WHEN $15 <> 'running' THEN n.t END
  FROM p, now n
),
ntf AS (SELECT pg_notify($17, p.queue) FROM p WHERE $5 = 'pending')
SELECT (SELECT count(*) FROM p) AS n, (SELECT count(*) FROM ntf) AS notified, ${NOW} AS now`;

/** One fan-out by id. Params: $1 id. Result: the fan-out row or none. */
export const FAN_OUT_GET = 'SELECT * FROM {s}.sdj_fan_outs WHERE id = $1';

/**
 * A fan-out and its children (index order) with the statement's now, in one snapshot.
 * Params: $1 now, $2 fan-out id. Result: per child, the job columns plus { fan_out: the
 * fan-out row (JSON), now }; one row with null job columns when there are no children; none
 * when the fan-out does not exist.
 */
export const FAN_OUT_COLLECT = `
WITH ${NOW_CTE},
f AS (SELECT * FROM {s}.sdj_fan_outs WHERE id = $2)
SELECT row_to_json(f) AS fan_out, ${NOW} AS now, j.*
FROM f LEFT JOIN {s}.sdj_jobs j ON j.fan_out_id = f.id
ORDER BY j.fan_out_index`;

/**
 * A durable timer in one statement, on the database clock: the fenced job row is locked; the
 * wake time is $5 (recorded) or now + $6; unless $9 (recorded already) the checkpoint
 * { completed, output = the wake time } is upserted at ($7, $8); when the wake time is still
 * ahead the job turns `waiting` until then (attempt given back, lease cleared).
 * Params: $1 now, $2 job id, $3 worker id, $4 run count, $5 wake time or null, $6 delay ms,
 * $7 step index, $8 step name, $9 recorded. Result: { held, wake_at, suspended }.
 */
export const JOB_SUSPEND_UNTIL = `
WITH ${NOW_CTE},
f AS MATERIALIZED (SELECT id FROM {s}.sdj_jobs_live WHERE ${FENCE} FOR UPDATE),
w AS MATERIALIZED (SELECT COALESCE($5::bigint, (SELECT t FROM now) + $6::bigint) AS wake_at),
st AS (
  ${STEP_INSERT}
  SELECT f.id, $7, $8, 'completed', w.wake_at::text, NULL, ${NOW} FROM f, w WHERE NOT $9::boolean
  ${STEP_CONFLICT}
),
j AS (
  UPDATE {s}.sdj_jobs_live
  SET status = 'waiting', attempt = GREATEST(attempt - 1, 0), ${CLEAR_LEASE}, wake_at = w.wake_at, wait_signal = NULL
  FROM w, now n
  WHERE id IN (SELECT id FROM f) AND w.wake_at > n.t
  RETURNING 1
)
SELECT (SELECT count(*) FROM f) AS held, (SELECT wake_at FROM w) AS wake_at, (SELECT count(*) FROM j) AS suspended`;

/** Locks a job row and reads its status. Params: $1 id. Result: { status, wait_signal } or none. */
export const JOB_LOCK_STATUS = 'SELECT status, wait_signal FROM {s}.sdj_jobs WHERE id = $1 FOR UPDATE';

/**
 * The signals of a job, consumed or buffered, oldest first, after a seq (0: from the first).
 * Params: $1 job id, $2 after seq, $3 limit. Result: { seq, name, payload, created_at, consumed_at }[].
 */
export const SIGNAL_LIST = 'SELECT seq, name, payload, created_at, consumed_at FROM {s}.sdj_signals WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3';

/**
 * Buffers a signal and, when the job waits for that name, turns it pending (and notifies).
 * Run after {@link JOB_LOCK_STATUS} in the same transaction. Params: $1 now, $2 job id,
 * $3 name, $4 payload, $5 channel. Result: { woken }.
 */
export const SIGNAL_SEND = `
WITH ${NOW_CTE},
ins AS (INSERT INTO {s}.sdj_signals (job_id, name, payload, created_at) SELECT $2, $3, $4, t FROM now),
upd AS (
  UPDATE {s}.sdj_jobs_live SET status = 'pending', wake_at = NULL, wait_signal = NULL
  WHERE id = $2 AND status = 'waiting' AND wait_signal = $3
  RETURNING queue
),
ntf AS (SELECT pg_notify($5, queue) FROM upd)
SELECT (SELECT count(*) FROM ntf) AS woken`;

/**
 * Locks a run's job row if its fence holds, returning the transaction's now.
 * Params: $1 now, $2 job id, $3 worker id, $4 run count. Result: { id, now } or none.
 */
export const JOB_LOCK_FENCED = `
WITH ${NOW_CTE}
SELECT id, ${NOW} AS now FROM {s}.sdj_jobs_live j WHERE ${FENCE} FOR UPDATE OF j`;

/**
 * Consumes the oldest unconsumed signal of a name and records the step as completed with its
 * payload. Params: $1 now, $2 job id, $3 name, $4 step index, $5 step name.
 * Result: { payload, written (steps written: 0 when a finished step holds the index) } when a
 * signal was consumed.
 */
export const SIGNAL_CONSUME = `
WITH ${NOW_CTE},
sig AS MATERIALIZED (
  SELECT seq FROM {s}.sdj_signals
  WHERE job_id = $2 AND name = $3 AND consumed_at IS NULL
  ORDER BY seq LIMIT 1
  FOR UPDATE
),
c AS (
  UPDATE {s}.sdj_signals s SET consumed_at = ${NOW} FROM sig WHERE s.seq = sig.seq RETURNING s.payload
),
st AS (
  ${STEP_INSERT}
  SELECT $2, $4, $5, 'completed', c.payload, NULL, ${NOW} FROM c
  ${STEP_CONFLICT}
  RETURNING 1
)
SELECT payload, (SELECT count(*) FROM st) AS written FROM c`;

/**
 * Records a step (insert, or replace a `waiting` row) without a fence check (the caller holds
 * the job lock). Params: $1 now, $2 job id, $3 step index, $4 step name, $5 status, $6 output,
 * $7 error. Result: one row when written (none when a finished row holds the index).
 */
export const STEP_UPSERT = `
WITH ${NOW_CTE}
${STEP_INSERT}
SELECT $2, $3, $4, $5, $6, $7, t FROM now
${STEP_CONFLICT}
RETURNING 1`;

/**
 * Suspends a locked running job to wait for a signal: waiting, attempt given back, lease
 * dropped, wake_at = deadline. Params: $1 job id, $2 signal name, $3 deadline. Result: none.
 */
export const JOB_SUSPEND_FOR_SIGNAL = `
UPDATE {s}.sdj_jobs_live
SET status = 'waiting', attempt = GREATEST(attempt - 1, 0), ${CLEAR_LEASE}, wake_at = $3, wait_signal = $2
WHERE id = $1 AND status = 'running'`;
