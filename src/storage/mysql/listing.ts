/**
 * The operator's view on MySQL/MariaDB: `jobList`, `jobListScan` and `jobCount` by filter, and
 * `queueSummary`.
 * Each is one statement on the pool, with no locks.
 * @internal
 */
import type { JobFilter, JobListParams, JobListScanParams, JobListScanResult, JobRow, QueueSummaryRow } from '../storage.js';
import { scanBudgetApplies } from '../shared/scan-budget.js';
import { select } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { jobCountCapped, jobCountCappedInQueue } from './queries/counts.js';
import { jobCountStatement, jobListScanStatement, jobListStatement, QUEUE_SUMMARY } from './queries/listing.js';
import { num, numOrNull, str, toJobRow } from './rows.js';

/** Most jobs a listing by status reads through a status index and sorts (more: it walks the primary key). */
export const SORTED_AT_MOST = 5_000;

/**
 * Whether a listing asks for statuses holding at most {@link SORTED_AT_MOST} jobs (of its queue,
 * when it names one), counted through their index ranges up to that bound. A parent's or
 * fan-out's children are read through their own index: no count for those.
 */
async function fewOfStatuses(ctx: DriverContext, p: JobListParams): Promise<boolean> {
  if (p.statuses === undefined || p.parentId !== undefined || p.fanOutId !== undefined) return false;
  const st = p.queue === undefined ? jobCountCapped(SORTED_AT_MOST + 1, p.statuses) : jobCountCappedInQueue(p.queue, SORTED_AT_MOST + 1, p.statuses);
  const [r] = await select(ctx.db.pool, st.sql, st.values);
  let n = 0;
  for (const s of new Set(p.statuses)) n += num(r?.[s] ?? 0);
  return n <= SORTED_AT_MOST;
}

/**
 * `Storage.jobList`: one statement (two for statuses: a bounded count picks the plan, see
 * `jobListStatement`); nothing is read for a limit of 0 or an empty status list.
 */
export async function jobList(ctx: DriverContext, p: JobListParams): Promise<JobRow[]> {
  if (Math.trunc(p.limit) <= 0 || p.statuses?.length === 0) return [];
  const st = jobListStatement(p, await fewOfStatuses(ctx, p));
  return (await select(ctx.db.pool, st.sql, st.values)).map(toJobRow);
}

/**
 * `Storage.jobListScan`: one statement (`jobListScanStatement`). The budget is left aside, as
 * `scanBudgetApplies` says, and for statuses holding few jobs (read through their index).
 */
export async function jobListScan(ctx: DriverContext, p: JobListScanParams): Promise<JobListScanResult> {
  if (Math.trunc(p.limit) <= 0 || p.statuses?.length === 0) return { rows: [], scanEnd: null };
  if (!scanBudgetApplies(p) || (await fewOfStatuses(ctx, p))) return { rows: await jobList(ctx, p), scanEnd: null };
  const st = jobListScanStatement(p);
  const found = await select(ctx.db.pool, st.sql, st.values);
  // A test on a NULL column (a search on a job without an error) is NULL: no match.
  const rows = found.filter((r) => r['scan_hit'] !== null && num(r['scan_hit']) !== 0).map(toJobRow);
  // The job at the end of the scan comes last, matching or not, unless `limit` matches came first.
  const lastId = found[found.length - 1]?.['scan_last_id'] ?? null;
  const stopped = lastId !== null && rows.length < Math.trunc(p.limit) && str(found[found.length - 1]?.['id']) === str(lastId);
  return { rows, scanEnd: stopped ? str(lastId) : null };
}

/** `Storage.jobCount`: one statement (none for an empty status list). */
export async function jobCount(ctx: DriverContext, p: JobFilter): Promise<number> {
  if (p.statuses?.length === 0) return 0;
  const st = jobCountStatement(p);
  const [r] = await select(ctx.db.pool, st.sql, st.values);
  return num(r?.['n'] ?? 0);
}

/** `Storage.queueSummary`: one statement, on the injected clock when there is one. */
export async function queueSummary(ctx: DriverContext): Promise<QueueSummaryRow[]> {
  const rows = await select(ctx.db.pool, QUEUE_SUMMARY, [ctx.now()]);
  return rows.map((r) => ({
    name: str(r['name']),
    paused: num(r['paused']) !== 0,
    pending: num(r['pending']),
    running: num(r['running']),
    waiting: num(r['waiting']),
    pausedJobs: num(r['paused_jobs']),
    failed: num(r['failed']),
    oldestPendingAgeMs: numOrNull(r['oldest_age']),
  }));
}
