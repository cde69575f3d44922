/**
 * PostgreSQL statements of the operator's view: job listings and counts by filter, and the
 * per-queue summary. Every value is a bound parameter; a listing's WHERE clause holds only the
 * conditions of the filter fields given, so each call is planned for its own filter (a status
 * filter prunes the partition it cannot match, and a filter on failed or cancelled jobs can
 * walk `sdj_jobs_history_failed`).
 * @internal
 */
import { filterConditions } from '../../shared/filter-conditions.js';
import type { JobFilter, JobListParams, JobListScanParams } from '../../storage.js';
import { NOW, NOW_CTE } from './common.js';

/** A statement built from a filter: its text (with `{s}`) and its parameter values. */
export interface FilteredStatement {
  text: string;
  values: unknown[];
}

/**
 * The WHERE conditions of a filter, numbering parameters from `$1`: statuses `= ANY`, equality
 * for queue, type, tenant, parent and fan-out, the search as a case-insensitive literal
 * substring of `last_error` or `type` (`strpos` on `lower()`: no pattern characters), and
 * strict bounds on `created_at`. Pushes the values onto `values`; returns the conditions
 * (`TRUE` when none).
 */
function whereOf(f: JobFilter, values: unknown[]): string {
  const param = (v: unknown): string => {
    values.push(v);
    return `$${values.length}`;
  };
  return filterConditions(f, {
    nothing: 'FALSE',
    everything: 'TRUE',
    statuses: (statuses) => [`status = ANY(${param(statuses)}::text[])`],
    equal: (column, value) => `${column} = ${param(value)}`,
    search(text) {
      const p = param(text);
      return `(strpos(lower(type), lower(${p}::text)) > 0 OR strpos(lower(last_error), lower(${p}::text)) > 0)`;
    },
    created: (op, ms) => `created_at ${op} ${param(ms)}::bigint`,
  });
}

/**
 * Jobs matching a filter, after `afterId` in the order (keyset), ordered by id only, at most
 * `limit`: the primary keys of both partitions walked in id order (a merge of the two), rows
 * filtered as they come, stopping at the limit — never a sort of the matching rows.
 * Result: job rows.
 */
export function jobListStatement(p: JobListParams): FilteredStatement {
  const values: unknown[] = [];
  const desc = p.order !== 'asc';
  let where = whereOf(p, values);
  if (p.afterId !== undefined) {
    values.push(p.afterId);
    where += ` AND id ${desc ? '<' : '>'} $${values.length}`;
  }
  values.push(Math.max(0, Math.trunc(p.limit)));
  return {
    text: `SELECT * FROM {s}.sdj_jobs WHERE ${where} ORDER BY id ${desc ? 'DESC' : 'ASC'} LIMIT $${values.length}`,
    values,
  };
}

/**
 * {@link jobListStatement} on a scan budget: the scan is the next `scanLimit` ids after
 * `afterId` in the order, found in the primary keys alone (`scan`, computed once: the last of
 * them, null when fewer follow), and the listing walks only that range, as `jobListStatement`
 * walks, stopping at `limit`. The jobs are joined to the one `scan` row: it comes back alone,
 * its job columns null, when none matched.
 * Result: `scan_last_id`, then job columns.
 */
export function jobListScanStatement(p: JobListScanParams): FilteredStatement {
  const values: unknown[] = [];
  const param = (v: unknown): string => {
    values.push(v);
    return `$${values.length}`;
  };
  const desc = p.order !== 'asc';
  const after = desc ? '<' : '>';
  const dir = desc ? 'DESC' : 'ASC';
  const afterId = p.afterId === undefined ? undefined : param(p.afterId);
  const last = `SELECT id FROM {s}.sdj_jobs${afterId === undefined ? '' : ` WHERE id ${after} ${afterId}`} ORDER BY id ${dir} LIMIT 1 OFFSET ${param(Math.max(1, Math.trunc(p.scanLimit)) - 1)}`;
  let where = whereOf(p, values);
  if (afterId !== undefined) where += ` AND id ${after} ${afterId}`;
  // Fewer jobs than the budget follow afterId: the range runs to the last job in the order.
  where += ` AND id ${desc ? '>=' : '<='} coalesce(scan.last_id, (SELECT ${desc ? 'min' : 'max'}(id) FROM {s}.sdj_jobs))`;
  const limit = param(Math.max(0, Math.trunc(p.limit)));
  return {
    text:
      `WITH scan AS MATERIALIZED (SELECT (${last}) AS last_id) ` +
      `SELECT scan.last_id AS scan_last_id, j.* FROM scan LEFT JOIN LATERAL (SELECT * FROM {s}.sdj_jobs WHERE ${where} ORDER BY id ${dir} LIMIT ${limit}) j ON true ` +
      `ORDER BY j.id ${dir}`,
    values,
  };
}

/** How many jobs match a filter. Result: one row { n }. */
export function jobCountStatement(f: JobFilter): FilteredStatement {
  const values: unknown[] = [];
  return { text: `SELECT count(*) AS n FROM {s}.sdj_jobs WHERE ${whereOf(f, values)}`, values };
}

/**
 * Per queue: the paused flag, job counts by live status, failed jobs, and now − the oldest
 * run_at of pending jobs already due (null when none), for every queue with a live or failed
 * job or paused by `queueSetPaused`, by name (bytewise). Live counts read the live partition;
 * failed counts come from `sdj_jobs_history_failed` alone, so completed jobs are never read.
 * Params: $1 now. Result: { name, paused, pending, running, waiting, paused_jobs, failed,
 * oldest_age }.
 */
export const QUEUE_SUMMARY = `
WITH ${NOW_CTE},
live AS (
  SELECT queue,
    count(*) FILTER (WHERE status = 'pending') AS pending,
    count(*) FILTER (WHERE status = 'running') AS running,
    count(*) FILTER (WHERE status = 'waiting') AS waiting,
    count(*) FILTER (WHERE status = 'paused') AS paused_jobs,
    min(run_at) FILTER (WHERE status = 'pending' AND run_at <= ${NOW}) AS oldest
  FROM {s}.sdj_jobs_live GROUP BY queue
),
failed AS (SELECT queue, count(*) AS failed FROM {s}.sdj_jobs WHERE status = 'failed' GROUP BY queue),
names AS (
  SELECT queue AS name FROM live
  UNION SELECT queue FROM failed
  UNION SELECT name FROM {s}.sdj_queues WHERE paused
)
SELECT n.name, COALESCE(q.paused, false) AS paused,
  COALESCE(l.pending, 0) AS pending, COALESCE(l.running, 0) AS running, COALESCE(l.waiting, 0) AS waiting,
  COALESCE(l.paused_jobs, 0) AS paused_jobs, COALESCE(f.failed, 0) AS failed,
  ${NOW} - l.oldest AS oldest_age
FROM names n
LEFT JOIN live l ON l.queue = n.name
LEFT JOIN failed f ON f.queue = n.name
LEFT JOIN {s}.sdj_queues q ON q.name = n.name
ORDER BY n.name COLLATE "C"`;
