/**
 * SQLite statements of the bounded counts (`jobCountByStatusCapped`, `queueSummaryCapped`).
 * Every count is `COUNT(*)` over `SELECT 1 ... LIMIT @cap1` (cap + 1) on the partial index
 * that holds exactly the rows of its status: pending jobs in `sdj_jobs_claim` (not limited) and
 * `sdj_jobs_limited` (limited), running ones in `sdj_jobs_lease`, waiting ones in
 * `sdj_jobs_wake`, the others in `sdj_jobs_done` (status, queue). So a count reads at most
 * cap + 1 index entries, whatever the number of jobs kept.
 * @internal
 */
import { JOB_STATUSES, type JobStatus } from '../../../types.js';

/** The condition of `sdj_jobs_done` (status, queue), written as its index definition is. */
const DONE = "status NOT IN ('pending', 'running', 'waiting')";

/** The rows matching `where`, counted up to @cap1. */
function capped(where: string): string {
  return `(SELECT COUNT(*) FROM (SELECT 1 FROM sdj_jobs WHERE ${where} LIMIT @cap1))`;
}

/** The capped count of each status, as a column expression, with `and` added to each condition. */
function countColumns(and: string): Record<JobStatus, string> {
  return {
    pending: `min(@cap1, ${capped(`status = 'pending' AND limited = 0${and}`)} + ${capped(`status = 'pending' AND limited = 1${and}`)})`,
    running: capped(`status = 'running'${and}`),
    waiting: capped(`status = 'waiting'${and}`),
    completed: capped(`status = 'completed' AND ${DONE}${and}`),
    failed: capped(`status = 'failed' AND ${DONE}${and}`),
    cancelled: capped(`status = 'cancelled' AND ${DONE}${and}`),
    paused: capped(`status = 'paused' AND ${DONE}${and}`),
  };
}

/** The capped counts of `statuses` (every status when not given), with `and` added to each condition. */
function countsOf(and: string, statuses: readonly JobStatus[] = JOB_STATUSES): string {
  const columns = countColumns(and);
  return `\nSELECT\n  ${statuses.map((s) => `${columns[s]} AS ${s}`).join(',\n  ')}`;
}

/**
 * The counts of some statuses only (distinct, at least one), each up to @cap1, over every queue
 * or in @queue: what a listing by status reads to choose its plan. Params: @cap1 (and @queue).
 * Result: one row with a column per status asked.
 */
export function jobCountCappedOf(statuses: readonly JobStatus[], inQueue: boolean): string {
  return countsOf(inQueue ? ' AND queue = @queue' : '', statuses);
}

/**
 * Job counts by status over every queue, each up to @cap1. Params: @cap1. Result: one row
 * `{ pending, running, waiting, completed, failed, cancelled, paused }`.
 */
export const JOB_COUNT_CAPPED = countsOf('');

/**
 * Job counts by status in one queue, each up to @cap1: ranges of `sdj_jobs_claim`,
 * `sdj_jobs_limited` and `sdj_jobs_done` (all keyed by queue); the running and waiting jobs of
 * every queue are read to find the queue's. Params: @cap1, @queue. Result: as
 * {@link JOB_COUNT_CAPPED}.
 */
export const JOB_COUNT_CAPPED_IN_QUEUE = countsOf(' AND queue = @queue');

/**
 * The distinct queues of the rows matching `where`, in order: one probe of an index led by
 * queue (or by status, queue) per queue found (a skip scan), never a read of their jobs.
 */
function skipScan(cte: string, where: string): string {
  return `${cte}(name) AS (
  SELECT (SELECT min(queue) FROM sdj_jobs WHERE ${where})
  UNION ALL SELECT (SELECT min(queue) FROM sdj_jobs WHERE ${where} AND queue > ${cte}.name) FROM ${cte} WHERE ${cte}.name IS NOT NULL)`;
}

/**
 * The queues the summary lists, with their running and waiting jobs: queues with pending
 * jobs (skip scans of `sdj_jobs_claim` and `sdj_jobs_limited`), with paused or failed jobs
 * (skip scans of `sdj_jobs_done`), every running and waiting job grouped by queue (through
 * `sdj_jobs_lease` and `sdj_jobs_wake`: the jobs of the fleet's slots and the suspended
 * workflows), and the queues paused by `queueSetPaused`. A queue may come in several rows.
 * Params: none. Result: `{ name, running, waiting }[]`.
 */
export const QUEUE_NAMES = `
WITH RECURSIVE
${skipScan('p0', "status = 'pending' AND limited = 0")},
${skipScan('p1', "status = 'pending' AND limited = 1")},
${skipScan('f', `status = 'failed' AND ${DONE}`)},
${skipScan('z', `status = 'paused' AND ${DONE}`)}
SELECT name, 0 AS running, 0 AS waiting FROM p0 WHERE name IS NOT NULL
UNION ALL SELECT name, 0, 0 FROM p1 WHERE name IS NOT NULL
UNION ALL SELECT name, 0, 0 FROM f WHERE name IS NOT NULL
UNION ALL SELECT name, 0, 0 FROM z WHERE name IS NOT NULL
UNION ALL SELECT queue, COUNT(*), 0 FROM sdj_jobs WHERE status = 'running' GROUP BY queue
UNION ALL SELECT queue, 0, COUNT(*) FROM sdj_jobs WHERE status = 'waiting' GROUP BY queue
UNION ALL SELECT name, 0, 0 FROM sdj_queues WHERE paused = 1`;

/**
 * The smallest run_at of the pending jobs (not limited) of @queue: a skip scan of
 * `sdj_jobs_claim` (queue, priority DESC, run_at, id) over the priorities in use, one probe
 * each, so a backlog of any size costs a few index probes.
 */
const OLDEST_UNLIMITED = `(
  WITH RECURSIVE pr(p) AS (
    SELECT (SELECT max(priority) FROM sdj_jobs WHERE status = 'pending' AND limited = 0 AND queue = @queue)
    UNION ALL SELECT (SELECT max(priority) FROM sdj_jobs WHERE status = 'pending' AND limited = 0 AND queue = @queue AND priority < pr.p)
    FROM pr WHERE pr.p IS NOT NULL)
  SELECT min((SELECT min(run_at) FROM sdj_jobs WHERE status = 'pending' AND limited = 0 AND queue = @queue AND priority = pr.p))
  FROM pr WHERE pr.p IS NOT NULL)`;

/**
 * One queue's capped counts of pending, paused and failed jobs (ranges keyed by queue, each
 * up to @cap1), its paused flag, and the smallest run_at of its pending jobs: not limited ones
 * through the skip scan above, limited ones from their range of `sdj_jobs_limited` (covering;
 * it reads the queue's limited backlog, which the limits keep waiting).
 * Params: @queue, @cap1. Result: one row `{ paused, pending, paused_jobs, failed, oldest0, oldest1 }`.
 */
export const QUEUE_COUNTS_CAPPED = `
SELECT
  coalesce((SELECT paused FROM sdj_queues WHERE name = @queue), 0) AS paused,
  min(@cap1, ${capped("status = 'pending' AND limited = 0 AND queue = @queue")} + ${capped("status = 'pending' AND limited = 1 AND queue = @queue")}) AS pending,
  ${capped(`status = 'paused' AND ${DONE} AND queue = @queue`)} AS paused_jobs,
  ${capped(`status = 'failed' AND ${DONE} AND queue = @queue`)} AS failed,
  ${OLDEST_UNLIMITED} AS oldest0,
  (SELECT min(run_at) FROM sdj_jobs WHERE status = 'pending' AND limited = 1 AND queue = @queue) AS oldest1`;
