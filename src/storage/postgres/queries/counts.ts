/**
 * PostgreSQL statements of the bounded counts (`jobCountByStatusCapped`, `queueSummaryCapped`).
 * A count is `count(*)` over `SELECT 1 ... ORDER BY <an index's order> LIMIT <cap + 1>`: the
 * order makes the planner read the partial index that holds exactly that status's rows (a
 * sequential scan would have to read every matching row to sort them), and the limit stops it
 * after cap + 1 entries. Pending jobs: `sdj_jobs_claim` (not limited) and
 * `sdj_jobs_limited_claim` (limited; its predicate's last term is stated). Running ones:
 * `sdj_jobs_lease` (only running jobs hold a lease). Waiting ones: `sdj_jobs_wake`. Paused ones:
 * `sdj_jobs_live_paused`. Failed and cancelled ones: `sdj_jobs_history_failed_queue`. Completed
 * jobs have no index of their own; see {@link JOB_COUNT_CAPPED}.
 * @internal
 */
import { NOW, NOW_CTE } from './common.js';

/**
 * Opens the read-only transaction the counts run in, with JIT compilation off: the planner
 * costs each capped read at its whole limit, so a large cap would cross `jit_above_cost` and
 * compiling the statement would take far longer (hundreds of ms) than running it. One simple
 * query (one round trip). Params: none.
 */
export const COUNTS_BEGIN = 'BEGIN READ ONLY; SET LOCAL jit = off';

/** The rows of `from` matching `where`, in `order`, counted up to `limit`. */
function capped(from: string, where: string, order: string, limit: string): string {
  return `(SELECT count(*) FROM (SELECT 1 FROM {s}.${from} WHERE ${where} ORDER BY ${order} LIMIT ${limit}) x)`;
}

/** The part of the statement every status but completed shares; `q` is the queue test (or ''), `lim` the limit. */
function liveAndFailed(q: string, lim: string): string {
  const byQueue = q === '' ? 'queue, ' : '';
  return `least(${lim}, ${capped('sdj_jobs_live', `status = 'pending' AND limited = 0${q}`, `${byQueue}priority DESC, run_at, id`, lim)}
    + ${capped('sdj_jobs_live', `status = 'pending' AND limited = 1 AND priority > -2147483649${q}`, `${byQueue}priority DESC, run_at, id`, lim)}) AS pending,
  ${capped('sdj_jobs_live', `status = 'running' AND lease_expires_at IS NOT NULL${q}`, 'lease_expires_at', lim)} AS running,
  ${capped('sdj_jobs_live', `status = 'waiting'${q}`, 'wake_at', lim)} AS waiting,
  ${capped('sdj_jobs_live', `status = 'paused'${q}`, `${byQueue}id`, lim)} AS paused`;
}

/**
 * Every status but completed, and the completed roots: completed jobs have no index of their
 * own, but completed root jobs (most jobs) are the `status = 'completed'` range of
 * `sdj_jobs_prune` (status, completed_at; roots only): when more than cap of them exist, so do
 * more than cap completed jobs. Otherwise the driver counts them from a sample
 * ({@link JOB_COUNT_COMPLETED_SAMPLE}). In one queue the roots are not read (that index has no
 * queue) and the sample is taken at once.
 */
function countsOf(q: string, lim: string): string {
  const byQueue = q === '' ? 'queue, ' : '';
  const roots = q === '' ? capped('sdj_jobs_history', "status = 'completed' AND parent_id IS NULL", 'completed_at', lim) : '0';
  return `
SELECT ${liveAndFailed(q, lim)},
  ${capped('sdj_jobs_history', `status = 'failed'${q}`, `${byQueue}id`, lim)} AS failed,
  ${capped('sdj_jobs_history', `status = 'cancelled'${q}`, `${byQueue}id`, lim)} AS cancelled,
  ${roots} AS completed_roots`;
}

/**
 * Job counts by status over every queue, each up to $1 (cap + 1), and the completed roots up to
 * $1. Params: $1 cap + 1. Result: one row `{ pending, running, waiting, paused, failed,
 * cancelled, completed_roots }`.
 */
export const JOB_COUNT_CAPPED = countsOf('', '$1::bigint');

/**
 * Job counts by status in one queue ($2), as {@link JOB_COUNT_CAPPED} (`completed_roots` is 0):
 * ranges of the indexes keyed by queue; the running and waiting jobs of every queue are read to
 * find the queue's. Params: $1 cap + 1, $2 queue. Result: as {@link JOB_COUNT_CAPPED}.
 */
export const JOB_COUNT_CAPPED_IN_QUEUE = countsOf(' AND queue = $2', '$1::bigint');

/**
 * Completed jobs from a sample: the first $1 rows of the history partition (of queue $2 when
 * not null) in any order, the driver giving cap + 1 + F + C (F, C: the capped counts of failed
 * and cancelled jobs). When the history holds fewer rows, the completed ones among them are all
 * of them (exact). Otherwise, when F and C are exact (at most cap), at most F + C of the sample
 * are not completed, so more than cap are (and the sample shows it). Only when F or C passed the
 * cap and the sample holds cap or fewer completed jobs is {@link JOB_COUNT_COMPLETED_CAPPED}
 * needed (its scan may then read every failed or cancelled row it meets). A sequential scan
 * that stops at the limit (in one queue, it reads the other queues' rows it meets).
 * Params: $1 sample size, $2 queue or null. Result: one row `{ sampled, completed }`.
 */
export const JOB_COUNT_COMPLETED_SAMPLE = `
SELECT count(*) AS sampled, count(*) FILTER (WHERE status = 'completed') AS completed
FROM (SELECT status FROM {s}.sdj_jobs_history WHERE $2::text IS NULL OR queue = $2 LIMIT $1) x`;

/**
 * The completed jobs, counted up to $1 (a sequential scan of the history that stops at the
 * limit: it reads the rows that are not completed before it). Params: $1 cap + 1, $2 queue or
 * null. Result: one row `{ n }`.
 */
export const JOB_COUNT_COMPLETED_CAPPED = `
SELECT count(*) AS n FROM (SELECT 1 FROM {s}.sdj_jobs_history WHERE status = 'completed' AND ($2::text IS NULL OR queue = $2) LIMIT $1) x`;

/** The distinct queues of `from` rows matching `where`, one index probe per queue (a skip scan). */
function skipScan(cte: string, from: string, where: string): string {
  return `${cte}(name) AS (
  SELECT (SELECT min(queue) FROM {s}.${from} WHERE ${where})
  UNION ALL SELECT (SELECT min(queue) FROM {s}.${from} WHERE ${where} AND queue > ${cte}.name) FROM ${cte} WHERE ${cte}.name IS NOT NULL)`;
}

/** The smallest run_at of the queue's pending jobs matching `where`: one probe per priority in use. */
function oldest(where: string): string {
  const w = `status = 'pending' AND ${where} AND queue = n.name`;
  return `(WITH RECURSIVE pr(p) AS (
    SELECT (SELECT max(priority) FROM {s}.sdj_jobs_live WHERE ${w})
    UNION ALL SELECT (SELECT max(priority) FROM {s}.sdj_jobs_live WHERE ${w} AND priority < pr.p) FROM pr WHERE pr.p IS NOT NULL)
  SELECT min((SELECT min(run_at) FROM {s}.sdj_jobs_live WHERE ${w} AND priority = pr.p)) FROM pr WHERE pr.p IS NOT NULL)`;
}

/**
 * Per queue: the paused flag, capped counts (each up to $2, cap + 1) of pending, paused and
 * failed jobs (ranges of the indexes keyed by queue), its running and waiting jobs (every
 * running and waiting job is read once, grouped by queue: the fleet's slots and the suspended
 * workflows), and the smallest run_at of its pending jobs (a skip scan over the priorities of
 * `sdj_jobs_claim` and `sdj_jobs_limited_claim`), for every queue with a live or failed job or
 * paused by `queueSetPaused`. The queues are found by skip scans (one probe per queue), never by
 * reading their jobs. Params: $1 now, $2 cap + 1. Result: `{ name, paused, pending, running,
 * waiting, paused_jobs, failed, oldest, now }[]`.
 */
export const QUEUE_SUMMARY_CAPPED = `
WITH RECURSIVE ${NOW_CTE},
${skipScan('p0', 'sdj_jobs_live', "status = 'pending' AND limited = 0")},
${skipScan('p1', 'sdj_jobs_live', "status = 'pending' AND limited = 1 AND priority > -2147483649")},
${skipScan('f', 'sdj_jobs_history', "status = 'failed'")},
${skipScan('z', 'sdj_jobs_live', "status = 'paused'")},
run AS (SELECT queue, count(*) AS n FROM {s}.sdj_jobs_live WHERE status = 'running' AND lease_expires_at IS NOT NULL GROUP BY queue),
wai AS (SELECT queue, count(*) AS n FROM {s}.sdj_jobs_live WHERE status = 'waiting' GROUP BY queue),
names AS (
  SELECT name FROM p0 WHERE name IS NOT NULL UNION SELECT name FROM p1 WHERE name IS NOT NULL
  UNION SELECT name FROM f WHERE name IS NOT NULL UNION SELECT name FROM z WHERE name IS NOT NULL
  UNION SELECT queue FROM run UNION SELECT queue FROM wai UNION SELECT name FROM {s}.sdj_queues WHERE paused)
SELECT n.name, COALESCE(q.paused, false) AS paused,
  ${capped('sdj_jobs_live', "status = 'pending' AND limited = 0 AND queue = n.name", 'priority DESC, run_at, id', '$2::bigint')}
    + ${capped('sdj_jobs_live', "status = 'pending' AND limited = 1 AND priority > -2147483649 AND queue = n.name", 'priority DESC, run_at, id', '$2::bigint')} AS pending,
  COALESCE(r.n, 0) AS running, COALESCE(w.n, 0) AS waiting,
  ${capped('sdj_jobs_live', "status = 'paused' AND queue = n.name", 'id', '$2::bigint')} AS paused_jobs,
  ${capped('sdj_jobs_history', "status = 'failed' AND queue = n.name", 'id', '$2::bigint')} AS failed,
  LEAST(${oldest('limited = 0')}, ${oldest('limited = 1 AND priority > -2147483649')}) AS oldest,
  ${NOW} AS now
FROM names n
LEFT JOIN run r ON r.queue = n.name
LEFT JOIN wai w ON w.queue = n.name
LEFT JOIN {s}.sdj_queues q ON q.name = n.name
ORDER BY n.name COLLATE "C"`;
