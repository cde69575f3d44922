/**
 * The operator's view on MySQL/MariaDB: `jobList` and `jobCount` by filter, and `queueSummary`.
 * Each is one statement on the pool, with no locks.
 * @internal
 */
import type { JobFilter, JobListParams, JobRow, QueueSummaryRow } from '../storage.js';
import { select } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { jobCountStatement, jobListStatement, QUEUE_SUMMARY } from './queries/listing.js';
import { num, numOrNull, str, toJobRow } from './rows.js';

/** `Storage.jobList`: one statement; nothing is read for a limit of 0 or an empty status list. */
export async function jobList(ctx: DriverContext, p: JobListParams): Promise<JobRow[]> {
  if (Math.trunc(p.limit) <= 0 || p.statuses?.length === 0) return [];
  const st = jobListStatement(p);
  return (await select(ctx.db.pool, st.sql, st.values)).map(toJobRow);
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
