/**
 * The operator's view on PostgreSQL: `jobList`, `jobListScan` and `jobCount` by filter, and
 * `queueSummary`.
 *
 * Listings and counts run as unnamed statements, planned for the values of each call: their
 * text depends on the filter fields given, and a plan made for the values lets a status filter
 * prune the partition it cannot match and pick `sdj_jobs_history_failed` for failed or
 * cancelled jobs (a generic plan of a prepared statement could do neither).
 * @internal
 */
import type { JobFilter, JobListParams, JobListScanParams, JobListScanResult, JobRow, QueueSummaryRow } from '../storage.js';
import { scanBudgetApplies } from '../shared/scan-budget.js';
import type { DbRecord } from '../shared/row-mapping.js';
import type { PgExec } from './executor.js';
import { jobCountStatement, jobListScanStatement, jobListStatement, QUEUE_SUMMARY } from './queries/listing.js';
import { toInt, toIntOrNull, toJobRow, type JobDbRow } from './rows.js';

/** `Storage.jobList`: one statement; nothing is read for a limit of 0. */
export async function jobList(x: PgExec, p: JobListParams): Promise<JobRow[]> {
  if (Math.trunc(p.limit) <= 0) return [];
  const st = jobListStatement(p);
  return ((await x.exec(st.text, st.values)) as JobDbRow[]).map(toJobRow);
}

/** A `jobListScanStatement` row: the scan's end, and a job's columns (null when none matched). */
type ScanDbRow = DbRecord & { scan_last_id: string | null; id: string | null };

/**
 * `Storage.jobListScan`: one statement (`jobListScanStatement`); the budget is left aside as
 * `scanBudgetApplies` says (a status filter alone prunes the partitions, and walks
 * `sdj_jobs_history_failed` for failed or cancelled jobs).
 */
export async function jobListScan(x: PgExec, p: JobListScanParams): Promise<JobListScanResult> {
  // Nothing can match an empty status list: no scan to continue.
  if (Math.trunc(p.limit) <= 0 || p.statuses?.length === 0) return { rows: [], scanEnd: null };
  if (!scanBudgetApplies(p)) return { rows: await jobList(x, p), scanEnd: null };
  const st = jobListScanStatement(p);
  const found = (await x.exec(st.text, st.values)) as ScanDbRow[];
  const rows = found.filter((r) => r.id !== null).map(toJobRow);
  const last = found[0]?.scan_last_id ?? null;
  return { rows, scanEnd: rows.length < Math.trunc(p.limit) && last !== null ? last : null };
}

/** `Storage.jobCount`: one statement. */
export async function jobCount(x: PgExec, p: JobFilter): Promise<number> {
  const st = jobCountStatement(p);
  const [r] = (await x.exec(st.text, st.values)) as { n: string }[];
  return toInt(r?.n ?? 0);
}

/** The result row of `QUEUE_SUMMARY`. */
interface QueueSummaryDbRow {
  name: string;
  paused: boolean;
  pending: string;
  running: string;
  waiting: string;
  paused_jobs: string;
  failed: string;
  oldest_age: string | null;
}

/** `Storage.queueSummary`: one statement, on the injected clock when there is one. */
export async function queueSummary(x: PgExec): Promise<QueueSummaryRow[]> {
  const rows = await x.rows<QueueSummaryDbRow>(QUEUE_SUMMARY, [x.now()]);
  return rows.map((r) => ({
    name: r.name,
    paused: r.paused,
    pending: toInt(r.pending),
    running: toInt(r.running),
    waiting: toInt(r.waiting),
    pausedJobs: toInt(r.paused_jobs),
    failed: toInt(r.failed),
    oldestPendingAgeMs: toIntOrNull(r.oldest_age),
  }));
}
