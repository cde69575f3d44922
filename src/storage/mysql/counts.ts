/**
 * Bounded counts on MySQL/MariaDB: `jobCountByStatusCapped` and `queueSummaryCapped`. Each count
 * reads at most cap + 1 entries of one range of `sdj_jobs_wake` or `sdj_jobs_claim`
 * (queries/counts.ts). The summary finds the queues with a skip scan of `sdj_jobs_claim` (one
 * probe per queue name in the table, run one after the other), counts every queue's statuses in
 * one statement (per 50 queues), and walks the priorities of the queues with pending jobs for
 * their oldest one. Plain reads on the pool, no locks.
 * @internal
 */
import type { JobStatus } from '../../types.js';
import { byteOrder, COUNTED_STATUSES, readLimit, summaryRow } from '../shared/capped-counts.js';
import type { QueueSummaryRow } from '../storage.js';
import { select } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { jobCountCapped, jobCountCappedInQueue, oldestAtPriority, QUEUE_FIRST, QUEUE_NEXT, QUEUES_PAUSED, queueCountsCapped } from './queries/counts.js';
import { num, str } from './rows.js';

/** Queues counted per statement. */
const QUEUES_PER_STATEMENT = 50;

/** `Storage.jobCountByStatusCapped`: one statement. */
export async function jobCountByStatusCapped(ctx: DriverContext, p: { cap: number; queue?: string }): Promise<Record<JobStatus, number>> {
  const limit = readLimit(p.cap);
  const st = p.queue === undefined ? jobCountCapped(limit) : jobCountCappedInQueue(p.queue, limit);
  const [r] = await select(ctx.db.pool, st.sql, st.values);
  return Object.fromEntries(COUNTED_STATUSES.map((s) => [s, num(r?.[s] ?? 0)])) as Record<JobStatus, number>;
}

/** Every queue name of the jobs table, then the paused queues: a skip scan, one probe per name. */
async function queueNames(ctx: DriverContext): Promise<string[]> {
  const names = new Set<string>();
  let next = (await select(ctx.db.pool, QUEUE_FIRST))[0];
  while (next !== undefined) {
    const name = str(next['queue']);
    names.add(name);
    next = (await select(ctx.db.pool, QUEUE_NEXT, [name]))[0];
  }
  for (const r of await select(ctx.db.pool, QUEUES_PAUSED)) names.add(str(r['name']));
  return [...names];
}

/** The smallest run_at of a queue's pending jobs (limited or not): the priorities in use, walked down. */
async function oldestRunAt(ctx: DriverContext, queue: string, limited: 0 | 1): Promise<number | null> {
  let oldest: number | null = null;
  let below: number | undefined;
  for (;;) {
    const values: unknown[] = [queue, limited, queue, limited];
    if (below !== undefined) values.push(below);
    const [r] = await select(ctx.db.pool, oldestAtPriority(below !== undefined), values);
    if (r === undefined) return oldest;
    const at = num(r['run_at']);
    oldest = oldest === null ? at : Math.min(oldest, at);
    below = num(r['priority']);
  }
}

/** `Storage.queueSummaryCapped`: see the module comment; on the injected clock when there is one. */
export async function queueSummaryCapped(ctx: DriverContext, p: { cap: number }): Promise<QueueSummaryRow[]> {
  const limit = readLimit(p.cap);
  const names = await queueNames(ctx);
  const out: QueueSummaryRow[] = [];
  for (let i = 0; i < names.length; i += QUEUES_PER_STATEMENT) {
    const st = queueCountsCapped(names.slice(i, i + QUEUES_PER_STATEMENT), limit, ctx.now());
    for (const r of await select(ctx.db.pool, st.sql, st.values)) {
      const name = str(r['name']);
      const pending0 = num(r['pending0']);
      const pending1 = num(r['pending1']);
      const oldest = [pending0 > 0 ? await oldestRunAt(ctx, name, 0) : null, pending1 > 0 ? await oldestRunAt(ctx, name, 1) : null].filter((t): t is number => t !== null);
      const row = summaryRow(
        name,
        { running: num(r['running']), waiting: num(r['waiting']) },
        {
          paused: num(r['paused']) !== 0,
          pending: pending0 + pending1,
          pausedJobs: num(r['paused_jobs']),
          failed: num(r['failed']),
          oldestRunAt: oldest.length === 0 ? null : Math.min(...oldest),
        },
        limit,
        num(r['now']),
      );
      if (row.paused || row.pending + row.running + row.waiting + row.pausedJobs + row.failed > 0) out.push(row);
    }
  }
  return out.sort((a, b) => byteOrder(a.name, b.name));
}
