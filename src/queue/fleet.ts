/**
 * The fleet as an operator sees it: `queue.queues()` and `queue.workers()`.
 * @internal
 */
import { withMigrateHint } from '../core/migrate-hint.js';
import { checkInt, checkOptions } from '../core/validate.js';
import type { QueueCore } from '../core/queue-core.js';
import { queueLimitInfos } from './limits.js';
import type { QueueInfo, WorkerInfo } from './operator-types.js';

/**
 * `queue.queues()`: every known queue with its depth per status and its limits; a queue with
 * limits is listed also while it holds no job. With `cap`, the counts are capped (exact up to
 * it, `cap + 1` beyond). @throws (rejects) InvalidArgumentError on bad options
 */
export async function listQueues(core: QueueCore, options: { cap?: number } = {}): Promise<QueueInfo[]> {
  const o = checkOptions<{ cap?: number }>(options, 'queues options', ['cap']);
  const summary = o.cap === undefined ? core.storage.queueSummary() : core.storage.queueSummaryCapped({ cap: checkInt(o.cap, 'cap', 0) });
  const [rows, limits] = await Promise.all([summary, queueLimitInfos(core)]);
  const out = rows.map((r) => {
    const q: QueueInfo = { name: r.name, paused: r.paused, pending: r.pending, running: r.running, waiting: r.waiting, failed: r.failed, pausedJobs: r.pausedJobs };
    if (r.oldestPendingAgeMs !== null) q.oldestPendingAgeMs = r.oldestPendingAgeMs;
    const l = limits.get(r.name);
    if (l !== undefined) q.limits = l;
    return q;
  });
  const listed = new Set(rows.map((r) => r.name));
  const idle = [...limits].filter(([name]) => !listed.has(name));
  if (idle.length === 0) return out;
  // A paused queue is in the summary: these are not paused.
  for (const [name, l] of idle) out.push({ name, paused: false, pending: 0, running: 0, waiting: 0, failed: 0, pausedJobs: 0, limits: l });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** `queue.workers()`: the live workers of the fleet. */
export async function listWorkers(core: QueueCore): Promise<WorkerInfo[]> {
  const rows = await core.storage.workerList().catch((e: unknown) => {
    throw withMigrateHint(e);
  });
  return rows.map((r) => ({ ...r, queues: [...r.queues], startedAt: new Date(r.startedAt), lastSeenAt: new Date(r.lastSeenAt) }));
}

