/**
 * SQLite statements of the limited claim (`flow-ops.ts`, `Storage.jobClaimLimited`). They run
 * inside one `BEGIN IMMEDIATE` transaction, which holds the file's write lock: every count and
 * rate state read is exact until the commit. The decision between the reads and the claim is
 * the shared `planLimitedClaim` (shared/flow-plan.ts); nothing here decides what to claim.
 *
 * What a claim reads costs what the groups with ready jobs cost, never a backlog:
 * - limits: the type limit rows (one per limited type) and the requested queues' rows;
 * - running counts from the running rows (`sdj_jobs_lease`, one entry per running job: bounded
 *   by the fleet's concurrency), of the limited types and queues only;
 * - the groups of a queue's limited jobs — distinct (type, concurrency key, rate key) — by a
 *   recursive skip-scan of `sdj_jobs_limited` (a few seeks per group), each with its first job
 *   in claim order and its rate state;
 * - more ready jobs of the groups the plan may take more of (at most a group's room and one
 *   more, read only while the plan took every job read of it: see `flow-ops.ts`), by a
 *   recursive walk of the same index (a few seeks per job read);
 * - in a queue with a queue limit, its jobs without type limits from `sdj_jobs_claim`.
 * Values are bound parameters; lists go as one JSON parameter (`json_each`).
 * @internal
 */
import { JOB_COLUMNS } from './common.js';
import { CLAIM_SET } from './run.js';

/** The columns a candidate row carries (alias `j`). */
const CANDIDATE = 'j.id, j.queue, j.type, j.priority, j.run_at, j.concurrency_key, j.rate_key';

/** Pending limited jobs (alias `x`) of the group of the job `c`. */
const SAME_GROUP = `x.status = 'pending' AND x.limited = 1 AND x.queue = c.queue AND x.type = c.type
       AND x.concurrency_group = +c.concurrency_group AND x.rate_group = +c.rate_group`;

/**
 * Every type limit row, then the rows of the requested queues (limits, pause flag, and the
 * queue's stored tat). Params: @queues (JSON array of names). Result: { scope, name,
 * concurrency, rate_limit, rate_period_ms, updated_at, paused, tat }.
 */
export const FLOW_LIMITS = `
SELECT 'type' AS scope, type AS name, concurrency, rate_limit, rate_period_ms, updated_at, 0 AS paused, NULL AS tat
FROM sdj_type_limits
UNION ALL
SELECT 'queue', q.name, q.concurrency, q.rate_limit, q.rate_period_ms, q.updated_at, q.paused, s.tat
FROM sdj_queues q
LEFT JOIN sdj_rate_state s ON s.scope = 'queue' AND s.name = q.name AND s.rkey = ''
WHERE q.name IN (SELECT value FROM json_each(@queues))`;

/**
 * Running jobs of the given types or queues, counted per (type, concurrency key, queue): one walk
 * of the running rows (`INDEXED BY` the lease index, which holds exactly them: without
 * statistics the planner could walk the whole table). Params: @types, @queues (JSON arrays).
 * Result: { type, ckey, queue, n }.
 */
export const FLOW_RUNNING = `
SELECT type, concurrency_group AS ckey, queue, COUNT(*) AS n
FROM sdj_jobs INDEXED BY sdj_jobs_lease
WHERE status = 'running'
  AND (type IN (SELECT value FROM json_each(@types)) OR queue IN (SELECT value FROM json_each(@queues)))
GROUP BY type, concurrency_group, queue`;

/** Pending limited jobs (alias `x`) of the queue of the job `c`. */
const SAME_QUEUE = "x.status = 'pending' AND x.limited = 1 AND x.queue = c.queue";

/** The order of `sdj_jobs_limited` after its queue column (alias `x`). */
const GROUP_ORDER = 'x.type, x.concurrency_group, x.rate_group, x.priority DESC, x.run_at, x.id';

/**
 * The groups of the pending limited jobs of each given queue, by a skip-scan of
 * `sdj_jobs_limited`: the first entry of a queue, then repeatedly the first entry of the next
 * group — the next rate key of the same type and concurrency key, else the next concurrency key
 * of the type, else the next type: each a seek past every entry of the group before, so a group
 * costs one to three seeks whatever its backlog. (Not one row-value comparison `(type,
 * concurrency_group, rate_group) > (...)`: SQLite seeks that to the first column only and then
 * steps through the whole group.) The unary `+` on the previous group's computed keys keeps SQLite
 * from treating them as generated columns of the table searched. Each row is the group's first
 * job in claim order (ready or not) with the stored tat of its type rate group.
 * Params: @queues (JSON array of names). Result: { id, queue, type, priority, run_at,
 * concurrency_key, rate_key, ckey, rkey, tat }.
 */
export const FLOW_GROUPS = `
WITH RECURSIVE grp(rid) AS (
  SELECT (
    SELECT x.rowid FROM sdj_jobs x
    WHERE x.status = 'pending' AND x.limited = 1 AND x.queue = q.value
    ORDER BY ${GROUP_ORDER}
    LIMIT 1)
  FROM json_each(@queues) q
  UNION ALL
  SELECT coalesce(
    (SELECT x.rowid FROM sdj_jobs x
     WHERE ${SAME_QUEUE} AND x.type = c.type AND x.concurrency_group = +c.concurrency_group AND x.rate_group > +c.rate_group
     ORDER BY ${GROUP_ORDER}
     LIMIT 1),
    (SELECT x.rowid FROM sdj_jobs x
     WHERE ${SAME_QUEUE} AND x.type = c.type AND x.concurrency_group > +c.concurrency_group
     ORDER BY ${GROUP_ORDER}
     LIMIT 1),
    (SELECT x.rowid FROM sdj_jobs x
     WHERE ${SAME_QUEUE} AND x.type > c.type
     ORDER BY ${GROUP_ORDER}
     LIMIT 1))
  FROM grp g JOIN sdj_jobs c ON c.rowid = g.rid
)
SELECT ${CANDIDATE}, j.concurrency_group AS ckey, j.rate_group AS rkey, s.tat
FROM grp g
JOIN sdj_jobs j ON j.rowid = g.rid
LEFT JOIN sdj_rate_state s ON s.scope = 'type' AND s.name = j.type AND s.rkey = j.rate_group`;

/**
 * The first ready jobs (run_at <= @now) of given groups, at most k each, in claim order: per
 * group, the first ready job, then repeatedly the next one after it — a later id at the same
 * priority and run_at, else a later run_at at the same priority, else a lower priority: each a
 * seek of `sdj_jobs_limited` (a row-value comparison would be seeked by its first column only).
 * Params: @now, @groups (JSON array of [queue, type, concurrency key or '', rate key or '', k]).
 * Result: candidate rows { id, queue, type, priority, run_at, concurrency_key, rate_key }.
 */
export const FLOW_GROUP_JOBS = `
WITH RECURSIVE w(rid, k, n) AS (
  SELECT (
    SELECT x.rowid FROM sdj_jobs x
    WHERE x.status = 'pending' AND x.limited = 1 AND x.queue = g.value ->> 0 AND x.type = g.value ->> 1
      AND x.concurrency_group = g.value ->> 2 AND x.rate_group = g.value ->> 3 AND x.run_at <= @now
    ORDER BY x.priority DESC, x.run_at, x.id
    LIMIT 1), g.value ->> 4, 1
  FROM json_each(@groups) g
  UNION ALL
  SELECT coalesce(
    (SELECT x.rowid FROM sdj_jobs x
     WHERE ${SAME_GROUP} AND x.priority = c.priority AND x.run_at = c.run_at AND x.id > c.id AND x.run_at <= @now
     ORDER BY x.id
     LIMIT 1),
    (SELECT x.rowid FROM sdj_jobs x
     WHERE ${SAME_GROUP} AND x.priority = c.priority AND x.run_at > c.run_at AND x.run_at <= @now
     ORDER BY x.run_at, x.id
     LIMIT 1),
    (SELECT x.rowid FROM sdj_jobs x
     WHERE ${SAME_GROUP} AND x.priority < c.priority AND x.run_at <= @now
     ORDER BY x.priority DESC, x.run_at, x.id
     LIMIT 1)), w.k, w.n + 1
  FROM w JOIN sdj_jobs c ON c.rowid = w.rid
  WHERE w.n < w.k
)
SELECT ${CANDIDATE} FROM w JOIN sdj_jobs j ON j.rowid = w.rid`;

/**
 * The first ready jobs (run_at <= @now) of one group, in claim order: one range of
 * `sdj_jobs_limited`, cheaper than {@link FLOW_GROUP_JOBS}'s seek per job when many are read.
 * Params: @queue, @type, @ckey (concurrency key or ''), @rkey (rate key or ''), @now, @limit.
 * Result: candidate rows.
 */
export const FLOW_ONE_GROUP_JOBS = `
SELECT ${CANDIDATE} FROM sdj_jobs j
WHERE j.status = 'pending' AND j.limited = 1 AND j.queue = @queue AND j.type = @type
  AND j.concurrency_group = @ckey AND j.rate_group = @rkey AND j.run_at <= @now
ORDER BY j.priority DESC, j.run_at, j.id
LIMIT @limit`;

/**
 * The first ready jobs without type limits of a queue, in claim order (the claim index).
 * Params: @queue, @now, @limit. Result: candidate rows.
 */
export const FLOW_QUEUE_JOBS = `
SELECT ${CANDIDATE} FROM sdj_jobs j
WHERE j.status = 'pending' AND j.limited = 0 AND j.queue = @queue AND j.run_at <= @now
ORDER BY j.priority DESC, j.run_at, j.id
LIMIT @limit`;

/**
 * One ready limited job of a queue, any (the limited index, in its order): what a queue whose
 * concurrency limit is full reads to report it. Params: @queue, @now. Result: a candidate row or none.
 */
export const FLOW_QUEUE_ANY_LIMITED = `
SELECT ${CANDIDATE} FROM sdj_jobs j
WHERE j.status = 'pending' AND j.limited = 1 AND j.queue = @queue AND j.run_at <= @now
LIMIT 1`;

/**
 * Claims the planned jobs exactly as `JOB_CLAIM` does, each still pending. Params: @ids (JSON
 * array), @workerId, @now, @leaseExpiresAt. Result: the claimed rows as `JOB_COLUMNS` tuples (raw
 * mode; any order).
 */
export const FLOW_CLAIM = `
UPDATE sdj_jobs
SET ${CLAIM_SET}
WHERE id IN (SELECT value FROM json_each(@ids)) AND status = 'pending'
RETURNING ${JOB_COLUMNS}`;

/**
 * Claims the first ready jobs of one group in claim order, exactly as `JOB_CLAIM` does: the
 * claim of a queue whose only limited group has room for every job asked for (the plan would
 * pick exactly these). Params: @queue, @type, @ckey, @rkey, @now, @limit, @workerId,
 * @leaseExpiresAt. Result: the claimed rows as `JOB_COLUMNS` tuples (raw mode; any order).
 */
export const FLOW_CLAIM_GROUP = `
UPDATE sdj_jobs
SET ${CLAIM_SET}
WHERE rowid IN (
  SELECT j.rowid FROM sdj_jobs j
  WHERE j.status = 'pending' AND j.limited = 1 AND j.queue = @queue AND j.type = @type
    AND j.concurrency_group = @ckey AND j.rate_group = @rkey AND j.run_at <= @now
  ORDER BY j.priority DESC, j.run_at, j.id
  LIMIT @limit)
RETURNING ${JOB_COLUMNS}`;

/**
 * Stores the rate state the plan moved. Params: @tats (JSON array of [scope, name, rkey, tat]).
 * Result: none.
 */
export const FLOW_RATE_SET = `
INSERT INTO sdj_rate_state (scope, name, rkey, tat)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(@tats) WHERE true
ON CONFLICT (scope, name, rkey) DO UPDATE SET tat = excluded.tat`;
