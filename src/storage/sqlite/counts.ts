/**
 * Bounded counts on SQLite: `jobCountByStatusCapped` and `queueSummaryCapped`. Each count
 * reads at most cap + 1 entries of the partial index holding its status (queries/counts.ts);
 * the running and waiting jobs are read in full (the fleet's slots and the suspended
 * workflows), and so is a queue's backlog of limited jobs for its oldest pending age.
 * @internal
 */
import type { JobStatus } from '../../types.js';
import { byteOrder, COUNTED_STATUSES, minTime, readLimit, seedsOf, summaryRow } from '../shared/capped-counts.js';
import type { QueueSummaryRow } from '../storage.js';
import { JOB_COUNT_CAPPED, JOB_COUNT_CAPPED_IN_QUEUE, QUEUE_COUNTS_CAPPED, QUEUE_NAMES } from './queries/counts.js';
import { int, sqliteColumns } from './rows.js';
import type { SqliteContext } from './statements.js';

type Int = number | bigint;

/** `Storage.jobCountByStatusCapped`: one statement. */
export function jobCountByStatusCapped(ctx: SqliteContext, p: { cap: number; queue?: string }): Record<JobStatus, number> {
  const cap1 = readLimit(p.cap);
  const row = ctx.read((c) =>
    p.queue === undefined ? c.st(JOB_COUNT_CAPPED).get({ cap1 }) : c.st(JOB_COUNT_CAPPED_IN_QUEUE).get({ cap1, queue: p.queue }),
  ) as Record<JobStatus, Int>;
  return Object.fromEntries(COUNTED_STATUSES.map((s) => [s, int(row[s])])) as Record<JobStatus, number>;
}

/** A `QUEUE_COUNTS_CAPPED` row. */
interface QueueCountsDbRow {
  paused: Int;
  pending: Int;
  paused_jobs: Int;
  failed: Int;
  oldest0: Int | null;
  oldest1: Int | null;
}

/**
 * `Storage.queueSummaryCapped`: the queues and their running and waiting jobs in one
 * statement, then one statement per queue; ages against the storage's clock read once.
 */
export function queueSummaryCapped(ctx: SqliteContext, p: { cap: number }): QueueSummaryRow[] {
  const cap1 = readLimit(p.cap);
  const now = ctx.now();
  return ctx.read((c) => {
    const names = (c.st(QUEUE_NAMES).all() as { name: unknown; running: Int; waiting: Int }[]).map((r) => ({
      name: sqliteColumns.str(r.name),
      running: int(r.running),
      waiting: int(r.waiting),
    }));
    const out: QueueSummaryRow[] = [];
    for (const [name, seed] of seedsOf(names)) {
      const r = c.st(QUEUE_COUNTS_CAPPED).get({ queue: name, cap1 }) as QueueCountsDbRow;
      const oldest = minTime(r.oldest0 === null ? null : int(r.oldest0), r.oldest1 === null ? null : int(r.oldest1));
      const row = summaryRow(name, seed, { paused: int(r.paused) !== 0, pending: int(r.pending), pausedJobs: int(r.paused_jobs), failed: int(r.failed), oldestRunAt: oldest }, cap1, now);
      if (row.paused || row.pending + row.running + row.waiting + row.pausedJobs + row.failed > 0) out.push(row);
    }
    return out.sort((a, b) => byteOrder(a.name, b.name));
  });
}
