/**
 * The operator's view on SQLite: `jobList` and `jobCount` by filter, and `queueSummary`. Each is
 * one statement on the storage's connection (autocommit reads: they never wait for writers).
 * @internal
 */
import type { JobFilter, JobListParams, JobRow, QueueSummaryRow } from '../storage.js';
import { jobCountStatement, jobListStatement, QUEUE_SUMMARY } from './queries/listing.js';
import { int, sqliteColumns, toJobRow, type JobDbRow } from './rows.js';
import type { SqliteContext } from './statements.js';

/** `Storage.jobList`: one statement; nothing is read for a limit of 0 or an empty status list. */
export function jobList(ctx: SqliteContext, p: JobListParams): JobRow[] {
  if (Math.trunc(p.limit) <= 0 || p.statuses?.length === 0) return [];
  const st = jobListStatement(p);
  return (ctx.read((c) => c.st(st.sql).all(...st.values)) as JobDbRow[]).map(toJobRow);
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
