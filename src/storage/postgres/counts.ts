/**
 * Bounded counts on PostgreSQL: `jobCountByStatusCapped` and `queueSummaryCapped`. Each count
 * reads at most cap + 1 entries of the partial index holding its status (queries/counts.ts);
 * completed jobs are counted from a bounded sample of the history, and the running and waiting
 * jobs are read in full (the fleet's slots and the suspended workflows). Each runs in a
 * read-only transaction with JIT compilation off (`COUNTS_BEGIN`).
 * @internal
 */
import type { JobStatus } from '../../types.js';
import { readLimit, summaryRow } from '../shared/capped-counts.js';
import type { QueueSummaryRow } from '../storage.js';
import { withTx, type PgQueryableLike } from './connection.js';
import type { PgExec } from './executor.js';
import { COUNTS_BEGIN, JOB_COUNT_CAPPED, JOB_COUNT_CAPPED_IN_QUEUE, JOB_COUNT_COMPLETED_CAPPED, JOB_COUNT_COMPLETED_SAMPLE, QUEUE_SUMMARY_CAPPED } from './queries/counts.js';
import { toInt, toIntOrNull } from './rows.js';

/** A `JOB_COUNT_CAPPED` row (bigints as text). */
interface CountsDbRow {
  pending: string;
  running: string;
  waiting: string;
  paused: string;
  failed: string;
  cancelled: string;
  completed_roots: string;
}

/** The completed jobs, up to `limit`, given the capped failed and cancelled counts (see `JOB_COUNT_COMPLETED_SAMPLE`). */
async function completedCapped(x: PgExec, c: PgQueryableLike, limit: number, failed: number, cancelled: number, queue: string | null): Promise<number> {
  const size = limit + failed + cancelled;
  const s = (await x.rows<{ sampled: string; completed: string }>(JOB_COUNT_COMPLETED_SAMPLE, [size, queue], c))[0]!;
  const seen = toInt(s.completed);
  if (toInt(s.sampled) < size || seen >= limit) return Math.min(seen, limit);
  // Only when failed or cancelled passed the cap (else at least `limit` of the sample are completed).
  return toInt((await x.rows<{ n: string }>(JOB_COUNT_COMPLETED_CAPPED, [limit, queue], c))[0]!.n);
}

/**
 * `Storage.jobCountByStatusCapped`: one statement; when cap or fewer completed roots exist (or
 * in one queue), one more for the completed jobs (see `JOB_COUNT_COMPLETED_SAMPLE`).
 */
export async function jobCountByStatusCapped(x: PgExec, p: { cap: number; queue?: string }): Promise<Record<JobStatus, number>> {
  const limit = readLimit(p.cap);
  return withTx(
    x.pool,
    async (c) => {
      // A SELECT without FROM: always one row.
      const r = (p.queue === undefined ? await x.rows<CountsDbRow>(JOB_COUNT_CAPPED, [limit], c) : await x.rows<CountsDbRow>(JOB_COUNT_CAPPED_IN_QUEUE, [limit, p.queue], c))[0]!;
      const failed = toInt(r.failed);
      const cancelled = toInt(r.cancelled);
      const completed = toInt(r.completed_roots) >= limit ? limit : await completedCapped(x, c, limit, failed, cancelled, p.queue ?? null);
      return { pending: toInt(r.pending), running: toInt(r.running), waiting: toInt(r.waiting), completed, failed, cancelled, paused: toInt(r.paused) };
    },
    COUNTS_BEGIN,
  );
}

/** A `QUEUE_SUMMARY_CAPPED` row. */
interface SummaryDbRow {
  name: string;
  paused: boolean;
  pending: string;
  running: string;
  waiting: string;
  paused_jobs: string;
  failed: string;
  oldest: string | null;
  now: string;
}

/** `Storage.queueSummaryCapped`: one statement, on the injected clock when there is one. */
export async function queueSummaryCapped(x: PgExec, p: { cap: number }): Promise<QueueSummaryRow[]> {
  const limit = readLimit(p.cap);
  const rows = await withTx(x.pool, (c) => x.rows<SummaryDbRow>(QUEUE_SUMMARY_CAPPED, [x.now(), limit], c), COUNTS_BEGIN);
  return rows.map((r) =>
    summaryRow(
      r.name,
      { running: toInt(r.running), waiting: toInt(r.waiting) },
      { paused: r.paused, pending: toInt(r.pending), pausedJobs: toInt(r.paused_jobs), failed: toInt(r.failed), oldestRunAt: toIntOrNull(r.oldest) },
      limit,
      toInt(r.now),
    ),
  );
}
