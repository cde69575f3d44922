/**
 * PostgreSQL statements over `sdj_jobs`: insert, reads, counts, pause/resume, retry and pruning
 * (listings are in `listing.ts`). Every value
 * is a bound parameter; `$1` is always the optional "now" (see `NOW_CTE`). Statements that make
 * jobs ready call `pg_notify(channel, queue)`, delivered when their transaction commits.
 * New jobs are inserted straight into the live partition, pause and resume update it; reads
 * go through `sdj_jobs` (both partitions), and a retry moves its row from history back to live.
 * @internal
 */
import { limitedOf, MOVE_CLEAR_LEASE, moveInsert, NOW, NOW_CTE, TYPE_LIMITS_LOCK_CTE } from './common.js';
import { RATE_STATE_KEEP_MS } from './limits.js';

/**
 * The column arrays of a job batch, unnested in input order. Params $2..$16: id, type, queue,
 * priority, max_retries, args, meta, delay_ms, run_at, timeout_ms, unique_key, tenant,
 * parent_id, fan_out_id, fan_out_index; $18, $19: concurrency_key, rate_key; with `flow`, $20,
 * $21: unique_for_ms, debounce_key (one array each).
 */
function jobArrays(flow: boolean): string {
  return `unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::text[], $8::text[],
    $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::text[], $15::text[], $16::int[],
    $18::text[], $19::text[]${flow ? ', $20::bigint[], $21::text[]' : ''})
  WITH ORDINALITY AS u(id, type, queue, priority, max_retries, args, meta, delay_ms, run_at, timeout_ms,
    unique_key, tenant, parent_id, fan_out_id, fan_out_index, concurrency_key, rate_key${flow ? ', unique_for_ms, debounce_key' : ''}, ord)`;
}

/**
 * The INSERT of the new pending rows of `u` (an unnested batch) that match `where` into the live
 * partition, with their debounce keys when `debounce`.
 */
function insertRows(where: string, conflict: string, returning: string, debounce = false): string {
  return `INSERT INTO {s}.sdj_jobs_live (id, type, queue, status, priority, attempt, max_retries, run_count, args, meta,
    run_at, created_at, timeout_ms, unique_key, tenant, parent_id, fan_out_id, fan_out_index, concurrency_key, rate_key,
    limited, debounce_key)
  SELECT u.id, u.type, u.queue, 'pending', u.priority, 0, u.max_retries, 0, u.args, u.meta,
    GREATEST(n.t + u.delay_ms, COALESCE(u.run_at, 0)), n.t, u.timeout_ms, u.unique_key, u.tenant,
    u.parent_id, u.fan_out_id, u.fan_out_index, u.concurrency_key, u.rate_key, ${limitedOf('u.type')}, ${debounce ? 'u.debounce_key' : 'NULL'}
  FROM u
  CROSS JOIN now n
  WHERE ${where}
  ORDER BY u.ord
  ${conflict}
  RETURNING ${returning}`;
}

/** Records the queues of `src` (a CTE with a `queue` column) in `sdj_queues` and notifies each. */
function queuesAndNotify(src: string): string {
  return `qs AS (
  INSERT INTO {s}.sdj_queues (name, paused, updated_at)
  SELECT DISTINCT d.queue, false, ${NOW} FROM (${src}) d ORDER BY 1
  ON CONFLICT (name) DO NOTHING
),
ntf AS (SELECT pg_notify($17, d.queue) FROM (SELECT DISTINCT queue FROM (${src}) x) d)`;
}

/** How an insert treats a unique-key clash (`JobInsertManyParams.onConflict`). */
export type InsertConflict = 'error' | 'skip' | 'existing';

/**
 * The insert of a batch without dedup windows or debounce: pending rows, `limited` read from
 * `sdj_type_limits` (under the lock of `TYPE_LIMITS_LOCK_CTE`), queues recorded and notified.
 * Params: $1 now, $2..$16 the job arrays, $17 channel, $18 concurrency keys, $19 rate keys.
 * Result: { id } of each job inserted.
 */
function plainInsert(skip: boolean): string {
  return `
WITH ${NOW_CTE},
${TYPE_LIMITS_LOCK_CTE},
u AS (SELECT * FROM ${jobArrays(false)}),
ins AS (
  ${insertRows('true', skip ? 'ON CONFLICT DO NOTHING' : '', 'id, queue')}
),
${queuesAndNotify('SELECT queue FROM ins')}
SELECT i.id, (SELECT count(*) FROM ntf) AS notified FROM ins i`;
}

/**
 * Inserts a batch of pending jobs in one statement (run_at = max(now + delay_ms, run_at)),
 * records their queues in `sdj_queues` (so a pause can lock them) and notifies each queue.
 * A unique-key clash fails the whole statement (23505 on `sdj_jobs_unique_key`).
 * Params: $1 now, $2..$16 the job arrays, $17 channel, $18, $19 the key arrays.
 * Result: { id } of each job inserted.
 */
export const JOB_INSERT = plainInsert(false);

/** As {@link JOB_INSERT}, but jobs clashing on a key (or the id of a live job) are left out. */
export const JOB_INSERT_SKIP = plainInsert(true);

/**
 * The insert of a batch with dedup windows (`unique_for_ms`), debounce keys or `onConflict:
 * 'existing'`, in one statement:
 * - `fin`: the items whose unique key a finished job holds with completed_at > now − window (the
 *   newest such job, through `sdj_jobs_history_unique_key`). With `error`, one such item makes the
 *   statement insert nothing and report it (`clash`); otherwise the item is skipped.
 * - `ins`: the items without a debounce key, as {@link JOB_INSERT} / {@link JOB_INSERT_SKIP}.
 * - debounce (one item per type and key: the caller merges a batch's repeats, and holds the
 *   keys' locks, `DEBOUNCE_LOCK`, so this statement sees every earlier debounce of its keys):
 *   `dh` finds the pending holder of each key (the newest, through `sdj_jobs_debounce`), `drep`
 *   gives it the item's queue, priority, max_retries, args, meta, timeout, tenant, keys, limited
 *   mark and run_at (its id, created_at, attempt and last_error kept), and `dins` inserts the
 *   items left without one. A holder claimed or paused since `dh` read it is re-checked by the
 *   UPDATE (status no longer pending) and left alone: the item is inserted instead.
 * - per item, the id it resolved to: its own (inserted), the holder's (debounce), and with
 *   `existing` the holder of its unique key: a job of the batch inserted before it, else the
 *   live job this statement sees, else the finished one `fin` matched (null when the live
 *   holder committed after this statement's snapshot: the caller looks again).
 * Params: as {@link JOB_INSERT}, plus $20 unique_for_ms, $21 debounce keys.
 * Result per item, in order: { ord, id, inserted, clash (error only: the key a finished job holds) }.
 */
function flowInsert(mode: InsertConflict): string {
  const error = mode === 'error';
  const notFinished = error ? 'NOT EXISTS (SELECT 1 FROM fin)' : 'u.ord NOT IN (SELECT ord FROM fin)';
  const holder =
    mode === 'existing'
      ? `, (SELECT i2.id FROM ins i2 WHERE i2.unique_key = u.unique_key LIMIT 1),
    (SELECT l.id FROM {s}.sdj_jobs_live l WHERE l.unique_key = u.unique_key), f.id`
      : '';
  return `
WITH ${NOW_CTE},
${TYPE_LIMITS_LOCK_CTE},
u AS MATERIALIZED (SELECT * FROM ${jobArrays(true)}),
fin AS MATERIALIZED (
  SELECT u.ord, h.id FROM u
  CROSS JOIN LATERAL (
    SELECT f.id FROM {s}.sdj_jobs f
    WHERE f.status IN ('completed', 'failed', 'cancelled') AND f.unique_key = u.unique_key
      AND f.completed_at > ${NOW} - u.unique_for_ms
    ORDER BY f.completed_at DESC, f.id DESC
    LIMIT 1
  ) h
  WHERE u.unique_key IS NOT NULL AND u.unique_for_ms IS NOT NULL
),
ins AS (
  ${insertRows(`u.debounce_key IS NULL AND ${notFinished}`, error ? '' : 'ON CONFLICT DO NOTHING', 'id, queue, unique_key')}
),
dh AS MATERIALIZED (
  SELECT u.ord, h.id FROM u
  CROSS JOIN LATERAL (
    SELECT p.id FROM {s}.sdj_jobs_live p
    WHERE p.status = 'pending' AND p.type = u.type AND p.debounce_key = u.debounce_key
    ORDER BY p.id DESC
    LIMIT 1
  ) h
  WHERE u.debounce_key IS NOT NULL AND ${notFinished}
),
drep AS (
  UPDATE {s}.sdj_jobs_live j
  SET queue = u.queue, priority = u.priority, max_retries = u.max_retries, args = u.args, meta = u.meta,
    timeout_ms = u.timeout_ms, tenant = u.tenant, concurrency_key = u.concurrency_key, rate_key = u.rate_key,
    limited = ${limitedOf('u.type')}, run_at = GREATEST(n.t + u.delay_ms, COALESCE(u.run_at, 0))
  FROM dh JOIN u ON u.ord = dh.ord CROSS JOIN now n
  WHERE j.id = dh.id AND j.status = 'pending'
  RETURNING j.id, j.queue, j.type, j.debounce_key
),
dins AS (
  ${insertRows(
    `u.debounce_key IS NOT NULL AND ${notFinished} AND NOT EXISTS (SELECT 1 FROM drep d WHERE d.type = u.type AND d.debounce_key = u.debounce_key)`,
    '',
    'id, queue, type, debounce_key',
    true,
  )}
),
deb AS (SELECT * FROM drep UNION ALL SELECT * FROM dins),
${queuesAndNotify('SELECT queue FROM ins UNION ALL SELECT queue FROM deb')}
SELECT u.ord, COALESCE(i.id, d.id${holder}) AS id, (i.id IS NOT NULL OR d.id = u.id) AS inserted,
  ${error ? 'CASE WHEN f.ord IS NOT NULL THEN u.unique_key END' : 'NULL::text'} AS clash, (SELECT count(*) FROM ntf) AS notified
FROM u
LEFT JOIN ins i ON i.id = u.id
LEFT JOIN deb d ON d.type = u.type AND d.debounce_key = u.debounce_key
LEFT JOIN fin f ON f.ord = u.ord
ORDER BY u.ord`;
}

/** {@link flowInsert} per conflict mode. */
export const JOB_INSERT_FLOW: Readonly<Record<InsertConflict, string>> = {
  error: flowInsert('error'),
  skip: flowInsert('skip'),
  existing: flowInsert('existing'),
};

/**
 * Serializes the debounces of the same (type, key) until the transaction ends: transaction-level
 * advisory locks on the keys' hashes (`debounceLockKey` in `job-ops.ts`), taken in key order.
 * Params: $1 lock keys (bigint, sorted). Result: { locked }.
 */
export const DEBOUNCE_LOCK = `
SELECT count(pg_advisory_xact_lock(k.key)) AS locked FROM (SELECT key FROM unnest($1::bigint[]) AS u(key) ORDER BY key) k`;

/**
 * The holders of unique keys as a new statement sees them: the live job holding each key, else
 * the newest finished one (for `onConflict: 'existing'` when the insert's own snapshot missed a
 * holder that committed during it). Params: $1 keys. Result: { unique_key, id }.
 */
export const JOB_UNIQUE_HOLDERS = `
SELECT DISTINCT ON (k.key) k.key AS unique_key, j.id
FROM unnest($1::text[]) AS k(key)
JOIN {s}.sdj_jobs j ON j.unique_key = k.key
ORDER BY k.key, (j.status IN ('completed', 'failed', 'cancelled')), j.completed_at DESC NULLS LAST, j.id DESC`;

/**
 * The finished holders of unique keys within their windows (the check of a batch split over
 * several statements with `onConflict: 'error'`, made before the first one). Params: $1 now,
 * $2 keys, $3 windows (ms). Result: { unique_key } of each key held.
 */
export const JOB_FINISHED_HOLDERS = `
WITH ${NOW_CTE}
SELECT k.key AS unique_key FROM unnest($2::text[], $3::bigint[]) AS k(key, win)
WHERE EXISTS (
  SELECT 1 FROM {s}.sdj_jobs f WHERE f.status IN ('completed', 'failed', 'cancelled') AND f.unique_key = k.key
    AND f.completed_at > ${NOW} - k.win
)`;

/** One job by id. Params: $1 id. Result: the job row or none. */
export const JOB_GET = 'SELECT * FROM {s}.sdj_jobs WHERE id = $1';

/** Jobs by id (each once, ids not found left out). Params: $1 ids. Result: job rows. */
export const JOB_GET_MANY = 'SELECT * FROM {s}.sdj_jobs WHERE id = ANY($1::text[])';

/** Job counts by status, optionally in one queue. Params: $1 queue or null. Result: { status, n }. */
export const JOB_COUNT_BY_STATUS = `
SELECT status, count(*) AS n FROM {s}.sdj_jobs WHERE ($1::text IS NULL OR queue = $1) GROUP BY status`;

/**
 * Moves a job between two statuses (pause: pending → paused; resume: paused → pending,
 * notifying its queue). A paused job leaves the debounce: it gives up its debounce key.
 * Params: $1 id, $2 from, $3 to, $4 channel.
 * Result: one row { status: the status before (null when the job does not exist), n: rows changed }.
 */
export const JOB_SET_STATUS = `
WITH cur AS (SELECT status FROM {s}.sdj_jobs WHERE id = $1),
upd AS (
  UPDATE {s}.sdj_jobs_live SET status = $3, debounce_key = CASE WHEN $3 = 'paused' THEN NULL ELSE debounce_key END
  WHERE id = $1 AND status = $2 RETURNING queue, status
),
ntf AS (SELECT pg_notify($4, queue) FROM upd WHERE status = 'pending')
SELECT (SELECT status FROM cur) AS status, (SELECT count(*) FROM upd) AS n, (SELECT count(*) FROM ntf) AS notified`;

/**
 * Locks one job and reads what a retry needs. Run after the job's fan-out is locked
 * (`FAN_OUT_LOCK_FOR_JOBS` in `queries/fan-out.ts`): fan-outs before jobs.
 * Params: $1 id. Result: { status } or none.
 */
export const JOB_LOCK_FOR_RETRY = 'SELECT status FROM {s}.sdj_jobs WHERE id = $1 FOR UPDATE';

/**
 * The retry statement; with `skipHeld`, a job whose unique key a live job holds (seen by this
 * statement, including what this transaction wrote) is left as it is and reported `held`
 * instead of failing the statement.
 */
export function jobRetryStatement(skipHeld: boolean): string {
  const held = skipHeld
    ? `held AS MATERIALIZED (
  SELECT 1 AS h FROM {s}.sdj_jobs j JOIN {s}.sdj_jobs_live l ON l.unique_key = j.unique_key
  WHERE j.id = $2 AND j.status IN ('failed', 'cancelled') AND j.unique_key IS NOT NULL
  LIMIT 1
),
`
    : '';
  return `
WITH ${NOW_CTE},
${TYPE_LIMITS_LOCK_CTE},
${held}del AS (
  DELETE FROM {s}.sdj_jobs j WHERE j.id = $2 AND j.status IN ('failed', 'cancelled')${skipHeld ? ' AND NOT EXISTS (SELECT 1 FROM held)' : ''}
  RETURNING j.*
),
upd AS (
  ${moveInsert('del', {
    status: "'pending'",
    attempt: '0',
    run_at: NOW,
    result: 'NULL',
    started_at: 'NULL',
    completed_at: 'NULL',
    wake_at: 'NULL',
    wait_signal: 'NULL',
    limited: limitedOf('del.type'),
    ...MOVE_CLEAR_LEASE,
  })}
  RETURNING queue, fan_out_id
),
unc AS (
  UPDATE {s}.sdj_fan_outs f
  SET failed = GREATEST(f.failed - $4::int, 0), cancelled = GREATEST(f.cancelled - $5::int, 0)
  FROM upd WHERE f.id = upd.fan_out_id
  RETURNING f.id
),
ntf AS (SELECT pg_notify($3, queue) FROM upd)
SELECT (SELECT count(*) FROM upd) AS n, (SELECT count(*) FROM unc) AS uncounted, (SELECT count(*) FROM ntf) AS notified${
    skipHeld ? ', EXISTS (SELECT 1 FROM held) AS held' : ''
  }`;
}

/**
 * failed/cancelled → pending with attempt 0 and run_at now; last_error kept; notifies; marked
 * `limited` anew from `sdj_type_limits` (a limit may have appeared or gone since it was
 * inserted). The row is
 * deleted from history and inserted, pending, into the live partition (`moveInsert`): a unique
 * key another live job holds fails the statement (23505 on `sdj_jobs_unique_key`). A fan-out
 * child leaves its old outcome's count ($4 failed, $5 cancelled: 0 or 1, from the status read
 * under lock) on its fan-out, which keeps its status: it is counted again when it ends. Run
 * after {@link JOB_LOCK_FOR_RETRY} in the same transaction.
 * Params: $1 now, $2 id, $3 channel, $4 failed, $5 cancelled. Result: one row { n: rows changed }.
 */
export const JOB_RETRY = jobRetryStatement(false);

/**
 * Drops what a job's earlier runs left: its checkpoints and fan-outs, and its descendants
 * $2 (found with `JOB_CHILDREN`, `queries/fan-out.ts`) with their checkpoints, fan-outs and signals.
 * Params: $1 id, $2 descendant ids. Result: none.
 */
export const JOB_DROP_WORKFLOW_STATE = `
WITH ds AS (DELETE FROM {s}.sdj_steps WHERE job_id = $1 OR job_id = ANY($2::text[])),
df AS (DELETE FROM {s}.sdj_fan_outs WHERE parent_id = $1 OR parent_id = ANY($2::text[])),
dg AS (DELETE FROM {s}.sdj_signals WHERE job_id = ANY($2::text[])),
dj AS (DELETE FROM {s}.sdj_jobs WHERE id = ANY($2::text[]))
SELECT 1 AS done`;

/** Finished statuses (SQL list literal). */
const FINISHED = "('completed', 'failed', 'cancelled')";

/**
 * True for a job (table alias `a`) that is due: finished, and completed before now minus the
 * age of its own status ($2 completed, $3 failed, $4 cancelled; a null age keeps that status).
 * Unfinished jobs and jobs of a kept status are never due (the CASE or the age is null).
 */
function isDue(a: string): string {
  return `coalesce(${a}.completed_at < ${NOW} - CASE ${a}.status WHEN 'completed' THEN $2::bigint WHEN 'failed' THEN $3::bigint
      WHEN 'cancelled' THEN $4::bigint END, false)`;
}

/**
 * The due roots of one finished status, oldest first, leaving out those with a descendant that
 * is not due itself (unfinished, of a kept status, or not past its status's age: see
 * {@link isDue}), at most `$5`. The ordered scan is fenced (`OFFSET 0`) so the subtree check runs
 * only on the rows read until `$5` are found, whether the rows come from an index in order or
 * from a sort; the check stops at the first descendant not due. Each level of the walk is a
 * probe of the parent index (`LATERAL … OFFSET 0` keeps the planner from hashing the whole table
 * when it misjudges a level's size).
 */
function pruneDueRoots(status: 'completed' | 'failed' | 'cancelled', age: string): string {
  return `(SELECT x.* FROM (
      SELECT r.id, r.status, r.run_count, r.completed_at FROM {s}.sdj_jobs r
      WHERE ${age}::bigint IS NOT NULL AND r.parent_id IS NULL AND r.status = '${status}'
        AND r.completed_at IS NOT NULL AND r.completed_at < ${NOW} - ${age}::bigint
      ORDER BY r.completed_at, r.id
      OFFSET 0
    ) x
    WHERE NOT EXISTS (
      WITH RECURSIVE sub AS (
        SELECT d.id, d.status, d.completed_at FROM {s}.sdj_jobs d WHERE d.parent_id = x.id
        UNION ALL
        SELECT k.id, k.status, k.completed_at FROM sub
        CROSS JOIN LATERAL (SELECT d.id, d.status, d.completed_at FROM {s}.sdj_jobs d WHERE d.parent_id = sub.id OFFSET 0) k
      )
      SELECT 1 FROM sub WHERE NOT ${isDue('sub')}
    )
    LIMIT $5)`;
}

/**
 * Deletes up to $5 finished workflows, each job of which has passed the retention age of its
 * own status, oldest root first, in one statement. Run inside the transaction that holds the
 * prune lock (`PRUNE_LOCK`).
 *
 * - `due`: root jobs (no parent) completed/failed/cancelled whose whole subtree is due: every
 *   job in it, the root included, finished with `completed_at < now - age` of its own status.
 *   A null age keeps that status, and so every workflow holding a job of it.
 * - `tree`: each root with its whole subtree, as this statement's snapshot shows them.
 * - `held`: those rows locked, skipping rows another transaction holds. A row changed since
 *   the snapshot (a retry moving a child back to pending, a rerun finishing it again, a row
 *   deleted) is re-read at lock time and no longer matches its snapshot status, run count and
 *   completion time, so it is not held either; a row that still matches is still due (its age
 *   only grew).
 * - `fo_held`: the subtree's fan-outs locked the same way (a retry or an outcome locks a
 *   fan-out before the job rows; waiting for one here could deadlock).
 * - `ok`: the roots whose every row and fan-out is held; only those are deleted, with their
 *   subtrees' checkpoints, signals and fan-outs.
 *
 * - `dr`: rate state whose tat is more than a minute old (`RATE_STATE_KEEP_MS`): such a row
 *   means what no row means to every limited claim, including one whose now was read a little
 *   before this statement's (a row whose tat has merely passed still tells that claim when its
 *   group may start, and may be forgiven as lateness). Rows a limited claim holds are skipped,
 *   so the prune never waits for one.
 *
 * Due roots are read in order from `sdj_jobs_prune` (status, completed_at) WHERE parent_id IS
 * NULL, one range per status; without that index each status costs a scan and a sort of its
 * due rows. Nothing here waits for a job or fan-out lock. Params: $1 now, $2 completed age,
 * $3 failed age, $4 cancelled age (ms, null = keep), $5 limit. Result: one row { deleted, roots }.
 */
export const JOB_PRUNE = `
WITH RECURSIVE ${NOW_CTE},
due AS MATERIALIZED (
  SELECT u.id, u.status, u.run_count, u.completed_at FROM (
    ${pruneDueRoots('completed', '$2')}
    UNION ALL
    ${pruneDueRoots('failed', '$3')}
    UNION ALL
    ${pruneDueRoots('cancelled', '$4')}
  ) u
  ORDER BY u.completed_at, u.id
  LIMIT $5
),
tree AS (
  SELECT d.id AS root, d.id, d.status, d.run_count, d.completed_at FROM due d
  UNION ALL
  SELECT t.root, k.id, k.status, k.run_count, k.completed_at FROM tree t
  CROSS JOIN LATERAL (
    SELECT j.id, j.status, j.run_count, j.completed_at FROM {s}.sdj_jobs j WHERE j.parent_id = t.id OFFSET 0
  ) k
),
ids AS MATERIALIZED (SELECT ARRAY(SELECT id FROM tree) AS a),
held AS MATERIALIZED (
  SELECT j.id FROM {s}.sdj_jobs j JOIN tree t ON t.id = j.id
  WHERE j.id = ANY((SELECT a FROM ids)::text[]) AND j.status IN ${FINISHED}
    AND j.status = t.status AND j.run_count = t.run_count AND j.completed_at IS NOT DISTINCT FROM t.completed_at
  FOR UPDATE OF j SKIP LOCKED
),
fo AS MATERIALIZED (
  SELECT f.id, t.root FROM {s}.sdj_fan_outs f JOIN tree t ON t.id = f.parent_id
  WHERE f.parent_id = ANY((SELECT a FROM ids)::text[])
),
fo_held AS MATERIALIZED (
  SELECT f.id FROM {s}.sdj_fan_outs f WHERE f.id = ANY(ARRAY(SELECT id FROM fo)) FOR UPDATE OF f SKIP LOCKED
),
ok AS MATERIALIZED (
  SELECT t.root FROM tree t LEFT JOIN held h ON h.id = t.id GROUP BY t.root HAVING count(h.id) = count(*)
  EXCEPT
  SELECT fo.root FROM fo LEFT JOIN fo_held fh ON fh.id = fo.id WHERE fh.id IS NULL
),
gone AS MATERIALIZED (SELECT ARRAY(SELECT t.id FROM tree t JOIN ok ON ok.root = t.root) AS a),
dj AS (DELETE FROM {s}.sdj_jobs j WHERE j.id = ANY((SELECT a FROM gone)::text[]) RETURNING j.parent_id),
ds AS (DELETE FROM {s}.sdj_steps s WHERE s.job_id = ANY((SELECT a FROM gone)::text[])),
dg AS (DELETE FROM {s}.sdj_signals g WHERE g.job_id = ANY((SELECT a FROM gone)::text[])),
df AS (DELETE FROM {s}.sdj_fan_outs f WHERE f.parent_id = ANY((SELECT a FROM gone)::text[])),
dr AS (
  DELETE FROM {s}.sdj_rate_state r WHERE (r.scope, r.name, r.rkey) IN (
    SELECT o.scope, o.name, o.rkey FROM {s}.sdj_rate_state o WHERE o.tat < ${NOW} - ${RATE_STATE_KEEP_MS} FOR UPDATE SKIP LOCKED
  )
)
SELECT count(*) AS deleted, count(*) FILTER (WHERE parent_id IS NULL) AS roots FROM dj`;
