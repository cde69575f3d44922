/**
 * SQLite statements of the operator's view: job listings and counts by filter, and the
 * per-queue summary. Every value is a bound parameter (`?`, in the order of the returned
 * values); a listing's WHERE clause holds only the conditions of the filter fields given, and
 * the fragments added to steer the planner are constant text.
 * @internal
 */
import { filterConditions } from '../../shared/filter-conditions.js';
import type { JobFilter, JobListParams, JobListScanParams } from '../../storage.js';

/** A statement built from a filter: its text and its parameter values. */
export interface FilteredStatement {
  sql: string;
  values: unknown[];
}

/** Statuses held by the partial index `sdj_jobs_failed` (status, id). */
const FAILED_INDEXED: readonly string[] = ['failed', 'cancelled'];

/**
 * The condition of `sdj_jobs_failed`, written as its index definition is: the planner uses a
 * partial index only when the query holds its condition as a term.
 */
const FAILED_INDEX_TERM = "status IN ('failed', 'cancelled')";

/** The condition of `sdj_jobs_done` (status, queue), written as its index definition is. */
const DONE_INDEX_TERM = "status NOT IN ('pending', 'running', 'waiting')";

/** Statuses held by `sdj_jobs_done`. */
const DONE_INDEXED: readonly string[] = ['completed', 'failed', 'cancelled', 'paused'];

/** What a filter is for: a listing (read in id order) or a count. */
type Purpose = 'list' | 'count';

/**
 * The WHERE conditions of a filter: statuses `IN` (an empty list matches nothing), equality for
 * queue, type, tenant, parent and fan-out, the search as a case-insensitive literal substring of
 * `type` or `last_error` (`instr` on `lower()`: no pattern characters), and strict bounds on
 * `created_at`. Pushes the values onto `values`; returns the conditions (`1` when none).
 *
 * The status test steers the planner. For a listing: the condition of `sdj_jobs_failed` is added
 * when every status asked for is in it (the listing then walks that index in id order), else the
 * test is written `+status` so that no index on status is used (the listing walks the primary
 * key in id order instead of sorting every row of the status). For a count: the condition of
 * `sdj_jobs_done` is added when every status is in that index (the count reads it alone).
 */
function whereOf(f: JobFilter, values: unknown[], purpose: Purpose): string {
  const bind = (...v: unknown[]): void => {
    values.push(...v);
  };
  return filterConditions(f, {
    nothing: '0',
    everything: '1',
    statuses(statuses) {
      bind(...statuses);
      const within = (set: readonly string[]): boolean => statuses.every((s) => set.includes(s));
      const marks = statuses.map(() => '?').join(', ');
      if (purpose === 'list') return within(FAILED_INDEXED) ? [`status IN (${marks})`, FAILED_INDEX_TERM] : [`+status IN (${marks})`];
      return [`status IN (${marks})`, ...(within(DONE_INDEXED) ? [DONE_INDEX_TERM] : [])];
    },
    equal(column, value) {
      bind(value);
      return `${column} = ?`;
    },
    search(text) {
      bind(text, text);
      return '(instr(lower(type), lower(?)) > 0 OR instr(lower(last_error), lower(?)) > 0)';
    },
    created(op, ms) {
      bind(ms);
      return `created_at ${op} ?`;
    },
  });
}

/**
 * Jobs matching a filter, after `afterId` in the order (keyset), ordered by id only, at most
 * `limit`. The rows are read in id order and the walk stops at the limit — never a sort of the
 * matching rows: through the primary key (`sqlite_autoindex_sdj_jobs_1`), or, when only failed
 * or cancelled jobs are asked for, through `sdj_jobs_failed` (status, id), which holds nothing
 * else (asking for both statuses sorts the failed and cancelled rows). A filter on a parent or a
 * fan-out reads its children through `sdj_jobs_parent` or `sdj_jobs_fan_out` and sorts those few.
 * Result: job rows.
 */
export function jobListStatement(p: JobListParams): FilteredStatement {
  const values: unknown[] = [];
  const desc = p.order !== 'asc';
  let where = whereOf(p, values, 'list');
  if (p.afterId !== undefined) {
    values.push(p.afterId);
    where += ` AND id ${desc ? '<' : '>'} ?`;
  }
  values.push(Math.max(0, Math.trunc(p.limit)));
  return { sql: `SELECT * FROM sdj_jobs WHERE ${where} ORDER BY id ${desc ? 'DESC' : 'ASC'} LIMIT ?`, values };
}

/**
 * {@link jobListStatement} on a scan budget: the scan is the next `scanLimit` ids after
 * `afterId` in the order, found in the primary key's index alone (`scan`: the last of them and
 * how many), and the listing walks only that range, as `jobListStatement` walks (the primary
 * key, or `sdj_jobs_failed` for failed or cancelled jobs), stopping at `limit`. The jobs are
 * joined to the one `scan` row: it comes back alone, its job columns null, when none matched.
 * Result: `scan_last_id` (null when no job follows `afterId`), `scan_count`, then job columns.
 */
export function jobListScanStatement(p: JobListScanParams): FilteredStatement {
  const values: unknown[] = [];
  const desc = p.order !== 'asc';
  const after = desc ? '<' : '>';
  const dir = desc ? 'DESC' : 'ASC';
  if (p.afterId !== undefined) values.push(p.afterId);
  values.push(Math.max(1, Math.trunc(p.scanLimit)) - 1);
  const last = `SELECT id FROM sdj_jobs${p.afterId === undefined ? '' : ` WHERE id ${after} ?`} ORDER BY id ${dir} LIMIT 1 OFFSET ?`;
  let where = whereOf(p, values, 'list');
  if (p.afterId !== undefined) {
    values.push(p.afterId);
    where += ` AND id ${after} ?`;
  }
  // Fewer jobs than the budget follow afterId: the range runs to the last job in the order.
  where += ` AND id ${desc ? '>=' : '<='} coalesce((SELECT last_id FROM scan), (SELECT ${desc ? 'min' : 'max'}(id) FROM sdj_jobs))`;
  values.push(Math.max(0, Math.trunc(p.limit)));
  return {
    sql:
      `WITH scan AS (SELECT (${last}) AS last_id) ` +
      `SELECT scan.last_id AS scan_last_id, j.* FROM scan LEFT JOIN (SELECT * FROM sdj_jobs WHERE ${where} ORDER BY id ${dir} LIMIT ?) j ON 1 ` +
      `ORDER BY j.id ${dir}`,
    values,
  };
}

/** Each status's partial index, forced, and its condition as the index states it (pending: two). */
const STATUS_PARTS: Record<string, readonly string[]> = {
  pending: ["INDEXED BY sdj_jobs_claim WHERE status = 'pending' AND limited = 0", "INDEXED BY sdj_jobs_limited WHERE status = 'pending' AND limited = 1"],
  running: ["INDEXED BY sdj_jobs_lease WHERE status = 'running'"],
  waiting: ["INDEXED BY sdj_jobs_wake WHERE status = 'waiting'"],
  paused: [`INDEXED BY sdj_jobs_done WHERE status = 'paused' AND ${DONE_INDEX_TERM}`],
  completed: [`INDEXED BY sdj_jobs_done WHERE status = 'completed' AND ${DONE_INDEX_TERM}`],
  failed: [`INDEXED BY sdj_jobs_failed WHERE status = 'failed' AND ${FAILED_INDEX_TERM}`],
  cancelled: [`INDEXED BY sdj_jobs_failed WHERE status = 'cancelled' AND ${FAILED_INDEX_TERM}`],
};

/**
 * {@link jobListStatement} for statuses that hold few jobs (the driver counts them first, up to
 * a bound): each status's rows read through the partial index holding exactly them (a queue
 * filter a range of it where the index leads with the queue), the other filters applied, and
 * those few rows sorted by id — instead of a walk of the primary key that reads every job
 * between two matches (all of them, for a status with fewer jobs than the page).
 * Result: job rows.
 */
export function jobListByStatusStatement(p: JobListParams): FilteredStatement {
  const values: unknown[] = [];
  const desc = p.order !== 'asc';
  const { statuses, ...others } = p;
  const parts = [...new Set(statuses ?? [])].flatMap((s) => STATUS_PARTS[s] ?? []).map((part) => {
    let where = whereOf(others, values, 'list');
    if (p.afterId !== undefined) {
      values.push(p.afterId);
      where += ` AND id ${desc ? '<' : '>'} ?`;
    }
    return `SELECT * FROM sdj_jobs ${part} AND ${where}`;
  });
  values.push(Math.max(0, Math.trunc(p.limit)));
  return { sql: `SELECT * FROM (${parts.join(' UNION ALL ')}) ORDER BY id ${desc ? 'DESC' : 'ASC'} LIMIT ?`, values };
}

/**
 * How many jobs match a filter. A filter on finished or paused statuses alone counts from the
 * covering index `sdj_jobs_done` (status, queue); pending, running and waiting ones are found
 * through their partial indexes by the planner. Result: one row `{ n }`.
 */
export function jobCountStatement(f: JobFilter): FilteredStatement {
  const values: unknown[] = [];
  return { sql: `SELECT COUNT(*) AS n FROM sdj_jobs WHERE ${whereOf(f, values, 'count')}`, values };
}

/**
 * Per queue: the paused flag, job counts by live status and of failed jobs, and the oldest
 * run_at of pending jobs already due (null when none), for every queue with a live or failed
 * job, or paused by `queueSetPaused`, by name (binary order). Each status is read through the partial
 * index that holds exactly its rows: pending jobs from `sdj_jobs_claim` and `sdj_jobs_limited`
 * (covering; a pending job is in one of them, as it is limited or not), running ones
 * from `sdj_jobs_lease`, waiting ones from `sdj_jobs_wake`, paused and failed ones from
 * `sdj_jobs_done` (covering, one range per status) — so completed and cancelled rows are never
 * read. Params: @now. Result: `{ name, paused, pending, running, waiting, paused_jobs, failed,
 * oldest_run_at }[]`.
 */
export const QUEUE_SUMMARY = `
SELECT name, MAX(paused) AS paused, SUM(pending) AS pending, SUM(running) AS running, SUM(waiting) AS waiting,
  SUM(paused_jobs) AS paused_jobs, SUM(failed) AS failed, MIN(oldest_run_at) AS oldest_run_at
FROM (
  SELECT queue AS name, 0 AS paused, COUNT(*) AS pending, 0 AS running, 0 AS waiting, 0 AS paused_jobs, 0 AS failed,
    MIN(CASE WHEN run_at <= @now THEN run_at END) AS oldest_run_at
  FROM sdj_jobs WHERE status = 'pending' AND limited = 0 GROUP BY queue
  UNION ALL
  SELECT queue, 0, COUNT(*), 0, 0, 0, 0, MIN(CASE WHEN run_at <= @now THEN run_at END)
  FROM sdj_jobs WHERE status = 'pending' AND limited = 1 GROUP BY queue
  UNION ALL
  SELECT queue, 0, 0, COUNT(*), 0, 0, 0, NULL FROM sdj_jobs WHERE status = 'running' GROUP BY queue
  UNION ALL
  SELECT queue, 0, 0, 0, COUNT(*), 0, 0, NULL FROM sdj_jobs WHERE status = 'waiting' GROUP BY queue
  UNION ALL
  SELECT queue, 0, 0, 0, 0, COUNT(*), 0, NULL FROM sdj_jobs
  WHERE status = 'paused' AND ${DONE_INDEX_TERM} GROUP BY queue
  UNION ALL
  SELECT queue, 0, 0, 0, 0, 0, COUNT(*), NULL FROM sdj_jobs
  WHERE status = 'failed' AND ${DONE_INDEX_TERM} GROUP BY queue
  UNION ALL
  SELECT name, paused, 0, 0, 0, 0, 0, NULL FROM sdj_queues WHERE paused = 1)
GROUP BY name
ORDER BY name`;
