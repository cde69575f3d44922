/**
 * The fleet as an operator sees it: `queue.queues()` and `queue.workers()`.
 * @internal
 */
import { withMigrateHint } from '../core/migrate-hint.js';
import type { QueueCore } from '../core/queue-core.js';
import type { QueueInfo, WorkerInfo } from './operator-types.js';

/** `queue.queues()`: every known queue with its depth per status. */
export async function listQueues(core: QueueCore): Promise<QueueInfo[]> {
  const rows = await core.storage.queueSummary();
  return rows.map((r) => {
    const q: QueueInfo = { name: r.name, paused: r.paused, pending: r.pending, running: r.running, waiting: r.waiting, failed: r.failed, pausedJobs: r.pausedJobs };
    if (r.oldestPendingAgeMs !== null) q.oldestPendingAgeMs = r.oldestPendingAgeMs;
    return q;
  });
}

/** `queue.workers()`: the live workers of the fleet. */
export async function listWorkers(core: QueueCore): Promise<WorkerInfo[]> {
  const rows = await core.storage.workerList().catch((e: unknown) => {
    throw withMigrateHint(e);
  });
  return rows.map((r) => ({ ...r, queues: [...r.queues], startedAt: new Date(r.startedAt), lastSeenAt: new Date(r.lastSeenAt) }));
}

