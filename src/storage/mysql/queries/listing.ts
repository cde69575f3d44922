/**
 * MySQL/MariaDB statements of the operator's view: job listings and counts by filter, and the
 * per-queue summary. Every value is a bound parameter; a listing's WHERE clause holds only the
 * conditions of the filter fields given.
 * @internal
 */
import { filterConditions } from '../../shared/filter-conditions.js';
import type { JobFilter, JobListParams, JobListScanParams } from '../../storage.js';
import { JOB_COLUMNS, JOB_COLUMNS_J, NOW } from './common.js';

/** A statement built from a filter: its text and its parameter values. */
export interface FilteredStatement {
  sql: string;
  values: unknown[];
}

/**
 * The WHERE conditions of a filter: statuses `IN` (an empty list matches nothing), equality for
 * queue, type, tenant, parent and fan-out (type and tenant exact, trailing spaces included), the search as a case-insensitive literal substring of
 * `type` or `last_error` (`LOCATE` on `LOWER()`: no pattern characters), and strict bounds on
 * `created_at`. Pushes the values onto `values`; returns the conditions (`TRUE` when none).
 */
function whereOf(f: JobFilter, values: unknown[]): string {
  const bind = (...v: unknown[]): void => {
    values.push(...v);
  };
  return filterConditions(f, {
    nothing: 'FALSE',
    everything: 'TRUE',
    statuses(statuses) {
      bind(statuses);
      return ['status IN (?)'];
    },
    equal(column, value, exact) {
      // utf8mb4_bin pads with spaces on MariaDB ('a' = 'a '): free-text columns also compare lengths.
      if (!exact) {
        bind(value);
        return `${column} = ?`;
      }
      bind(value, value);
      return `(${column} = ? AND LENGTH(${column}) = LENGTH(?))`;
    },
    search(text) {
      bind(text, text);
      return '(LOCATE(LOWER(?), LOWER(type)) > 0 OR LOCATE(LOWER(?), LOWER(last_error)) > 0)';
    },
    created(op, ms) {
      bind(ms);
      return `created_at ${op} ?`;
    },
  });
}

/**
 * Jobs matching a filter, after `afterId` in the order (keyset), ordered by id only, at most
 * `limit`, rows filtered as they come and the walk stopped at the limit — never a sort of the
 * matching rows. The primary key is forced: left to itself, the optimizer reads a status filter
 * through `sdj_jobs_wake` and sorts every job of that status. A filter on a parent or a fan-out
 * leaves the choice free: `sdj_jobs_parent` yields a parent's children in id order (InnoDB
 * appends the id to it), and a fan-out's children are few.
 *
 * `fewOfStatuses`: the driver counted the statuses asked for (in the queue asked for) and found
 * few jobs (a bounded count): their rows are read instead through one range per status of
 * `sdj_jobs_wake` (status, ...), or of `sdj_jobs_claim` (queue, status, ...) with a queue, and
 * those few sorted by id — a walk of the primary key would read every job between two matches
 * (all of them, for a status with fewer jobs than the page).
 * Result: job rows.
 */
export function jobListStatement(p: JobListParams, fewOfStatuses = false): FilteredStatement {
  const values: unknown[] = [];
  const desc = p.order !== 'asc';
  let where = whereOf(p, values);
  if (p.afterId !== undefined) {
    values.push(p.afterId);
    where += ` AND id ${desc ? '<' : '>'} ?`;
  }
  values.push(Math.max(0, Math.trunc(p.limit)));
  const byStatus = p.queue === undefined ? ' FORCE INDEX (sdj_jobs_wake)' : ' FORCE INDEX (sdj_jobs_claim)';
  const hint = p.parentId !== undefined || p.fanOutId !== undefined ? '' : fewOfStatuses ? byStatus : ' FORCE INDEX (PRIMARY)';
  return { sql: `SELECT ${JOB_COLUMNS} FROM sdj_jobs${hint} WHERE ${where} ORDER BY id ${desc ? 'DESC' : 'ASC'} LIMIT ?`, values };
}

/**
 * {@link jobListStatement} on a scan budget: the scan is the next `scanLimit` ids after
 * `afterId` in the order, found in the primary key (`s`: the last of them, null when fewer
 * follow), and the listing walks only that range of the primary key, stopping at `limit`. `s`
 * is one row, read while the statement is planned, so its id bounds the range (a bound from a
 * scalar subquery in the WHERE clause would not: the walk would go on to the table's end).
 * The job at the end of the range comes back whether it matches or not (`scan_hit` 0), unless
 * `limit` matches came first: it tells where the scan stopped when few jobs matched, and no
 * row at all means no job matched and fewer than `scanLimit` jobs follow `afterId`.
 * Result: `scan_last_id`, `scan_hit`, then job columns.
 */
export function jobListScanStatement(p: JobListScanParams): FilteredStatement {
  const values: unknown[] = [];
  const desc = p.order !== 'asc';
  const after = desc ? '<' : '>';
  const dir = desc ? 'DESC' : 'ASC';
  const hit = whereOf(p, values);
  if (p.afterId !== undefined) values.push(p.afterId);
  values.push(Math.max(1, Math.trunc(p.scanLimit)) - 1);
  const last = `SELECT id FROM sdj_jobs FORCE INDEX (PRIMARY)${p.afterId === undefined ? '' : ` WHERE id ${after} ?`} ORDER BY id ${dir} LIMIT 1 OFFSET ?`;
  let where = `(${whereOf(p, values)} OR j.id = s.last_id)`;
  if (p.afterId !== undefined) {
    values.push(p.afterId);
    where += ` AND j.id ${after} ?`;
  }
  // Fewer jobs than the budget follow afterId: the range runs to the last job in the order.
  where += ` AND j.id ${desc ? '>=' : '<='} COALESCE(s.last_id, (SELECT ${desc ? 'MIN' : 'MAX'}(id) FROM sdj_jobs))`;
  values.push(Math.max(0, Math.trunc(p.limit)));
  return {
    sql:
      `SELECT s.last_id AS scan_last_id, ${hit} AS scan_hit, ${JOB_COLUMNS_J} FROM (SELECT (${last}) AS last_id) s ` +
      `STRAIGHT_JOIN sdj_jobs j FORCE INDEX (PRIMARY) WHERE ${where} ORDER BY j.id ${dir} LIMIT ?`,
    values,
  };
}

/** How many jobs match a filter. Result: one row `{ n }`. */
export function jobCountStatement(f: JobFilter): FilteredStatement {
  const values: unknown[] = [];
  return { sql: `SELECT COUNT(*) AS n FROM sdj_jobs WHERE ${whereOf(f, values)}`, values };
}

/** The statuses the queue summary counts: the live ones and `failed`. */
const COUNTED = "('pending', 'running', 'waiting', 'paused', 'failed')";

/** Rows of the grouped read in one status. */
function countOf(status: string): string {
  return `COUNT(CASE WHEN j.status = '${status}' THEN 1 END)`;
}

/**
 * Per queue: the paused flag, job counts by live status and of failed jobs, and now − the oldest
 * run_at of pending jobs already due (null when none), for every queue with a live or failed job
 * or paused by `queueSetPaused`, by name (bytewise: the columns are utf8mb4_bin). The jobs are
 * read through one range per counted status of `sdj_jobs_wake` (status, wake_at), so completed
 * and cancelled rows are never read; the paused queues with none of those jobs come from
 * `sdj_queues`, each checked with one (queue, status) range of `sdj_jobs_claim`.
 * Params: now. Result: `{ name, paused, pending, running, waiting, paused_jobs, failed, oldest_age }[]`.
 */
export const QUEUE_SUMMARY =
  'SELECT c.name, COALESCE(p.paused, 0) AS paused, c.pending, c.running, c.waiting, c.paused_jobs, c.failed, c.oldest_age FROM (' +
  `SELECT j.queue AS name, ${countOf('pending')} AS pending, ${countOf('running')} AS running, ${countOf('waiting')} AS waiting, ` +
  `${countOf('paused')} AS paused_jobs, ${countOf('failed')} AS failed, ` +
  "n.t - MIN(CASE WHEN j.status = 'pending' AND j.run_at <= n.t THEN j.run_at END) AS oldest_age " +
  `FROM (SELECT ${NOW} AS t) n STRAIGHT_JOIN sdj_jobs j FORCE INDEX (sdj_jobs_wake) WHERE j.status IN ${COUNTED} GROUP BY j.queue, n.t) c ` +
  'LEFT JOIN sdj_queues p ON p.name = c.name ' +
  'UNION ALL SELECT p.name, 1, 0, 0, 0, 0, 0, NULL FROM sdj_queues p WHERE p.paused = 1 AND NOT EXISTS (' +
  `SELECT 1 FROM sdj_jobs j FORCE INDEX (sdj_jobs_claim) WHERE j.queue = p.name AND j.status IN ${COUNTED}) ` +
  'ORDER BY name';
