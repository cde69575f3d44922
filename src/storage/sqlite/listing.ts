/**
 * The operator's view on SQLite: `jobList`, `jobListScan` and `jobCount` by filter, and `queueSummary`. Each is
 * one statement on the storage's connection (autocommit reads: they never wait for writers).
 * @internal
 */
import type { JobFilter, JobListParams, JobListScanParams, JobListScanResult, JobRow, QueueSummaryRow } from '../storage.js';
import { scanBudgetApplies } from '../shared/scan-budget.js';
import { jobCountCappedOf } from './queries/counts.js';
import { jobCountStatement, jobListByStatusStatement, jobListScanStatement, jobListStatement, QUEUE_SUMMARY } from './queries/listing.js';
import { int, sqliteColumns, toJobRow, type JobDbRow } from './rows.js';
import type { SqliteContext } from './statements.js';
import type { DbRecord } from '../shared/row-mapping.js';

/** A `jobListScanStatement` row: the scan's end, and a job's columns (null when none matched). */
type ScanDbRow = DbRecord & { scan_last_id: string | null; id: string | null };

/** Most jobs a listing by status reads through the statuses' indexes and sorts (more: it walks the primary key). */
export const SORTED_AT_MOST = 5_000;

/**
 * Whether a listing asks for statuses holding at most {@link SORTED_AT_MOST} jobs (of its queue,
 * when it names one), counted through their indexes up to that bound. Failed and cancelled jobs
 * are walked in id order through `sdj_jobs_failed` already, and a parent's or fan-out's children
 * through their own index: no count for those.
 */
function fewOfStatuses(ctx: SqliteContext, p: JobListParams): boolean {
  if (p.statuses === undefined || p.parentId !== undefined || p.fanOutId !== undefined) return false;
  if (p.statuses.every((s) => s === 'failed' || s === 'cancelled')) return false;
  // Only the statuses asked for are counted, each through its own index.
  const statuses = [...new Set(p.statuses)];
  const sql = jobCountCappedOf(statuses, p.queue !== undefined);
  const cap1 = SORTED_AT_MOST + 1;
  const row = ctx.read((c) => c.st(sql).get(p.queue === undefined ? { cap1 } : { cap1, queue: p.queue })) as Record<string, number | bigint>;
  let n = 0;
  for (const s of statuses) n += Number(row[s]);
  return n <= SORTED_AT_MOST;
}

/**
 * `Storage.jobList`: one statement (two for statuses: a bounded count picks the plan, see
 * `jobListByStatusStatement`); nothing is read for a limit of 0 or an empty status list.
 */
export function jobList(ctx: SqliteContext, p: JobListParams): JobRow[] {
  if (Math.trunc(p.limit) <= 0 || p.statuses?.length === 0) return [];
  const st = fewOfStatuses(ctx, p) ? jobListByStatusStatement(p) : jobListStatement(p);
  return (ctx.read((c) => c.st(st.sql).all(...st.values)) as JobDbRow[]).map(toJobRow);
}

/**
 * `Storage.jobListScan`: one statement (`jobListScanStatement`). The budget is left aside, as
 * `scanBudgetApplies` says, and for statuses holding few jobs (read through their indexes).
 */
export function jobListScan(ctx: SqliteContext, p: JobListScanParams): JobListScanResult {
  if (Math.trunc(p.limit) <= 0 || p.statuses?.length === 0) return { rows: [], scanEnd: null };
  if (!scanBudgetApplies(p) || fewOfStatuses(ctx, p)) return { rows: jobList(ctx, p), scanEnd: null };
  const st = jobListScanStatement(p);
  const found = ctx.read((c) => c.st(st.sql).all(...st.values)) as ScanDbRow[];
  const rows = found.filter((r) => r.id !== null).map(toJobRow);
  const last = found[0]?.scan_last_id ?? null;
  return { rows, scanEnd: rows.length < Math.trunc(p.limit) && last !== null ? sqliteColumns.str(last) : null };
}

/** `Storage.jobCount`: one statement (none for an empty status list). */
export function jobCount(ctx: SqliteContext, p: JobFilter): number {
  if (p.statuses?.length === 0) return 0;
  const st = jobCountStatement(p);
  const r = ctx.read((c) => c.st(st.sql).get(...st.values)) as { n: number | bigint };
  return int(r.n);
}

/** A `QUEUE_SUMMARY` row. */
interface SummaryDbRow {
  name: string;
  paused: number | bigint;
  pending: number | bigint;
  running: number | bigint;
  waiting: number | bigint;
  paused_jobs: number | bigint;
  failed: number | bigint;
  oldest_run_at: number | bigint | null;
}

/** `Storage.queueSummary`: one statement, ages against the storage's clock read once. */
export function queueSummary(ctx: SqliteContext): QueueSummaryRow[] {
  const now = ctx.now();
  const rows = ctx.read((c) => c.st(QUEUE_SUMMARY).all({ now })) as SummaryDbRow[];
  return rows.map((r) => ({
    name: sqliteColumns.str(r.name),
    paused: int(r.paused) !== 0,
    pending: int(r.pending),
    running: int(r.running),
    waiting: int(r.waiting),
    pausedJobs: int(r.paused_jobs),
    failed: int(r.failed),
    oldestPendingAgeMs: r.oldest_run_at === null ? null : now - int(r.oldest_run_at),
  }));
}
