/**
 * Periodic upkeep any worker may do: reclaim jobs whose lease expired, and wake waiting jobs
 * whose timer passed or whose fan-out was decided while no worker was there to resume them.
 * @internal
 */
import type { EventHub } from '../core/events.js';
import type { Storage } from '../storage/storage.js';

const BATCH = 500;

/** One maintenance pass; returns the queues that may have new ready jobs. @internal */
export async function maintenancePass(storage: Storage, hub: EventHub): Promise<{ reclaimed: number; woken: number; queues: Set<string> }> {
  const queues = new Set<string>();
  const reclaimed = await storage.jobReclaimExpired({ limit: BATCH });
  const at = new Date();
  for (const r of reclaimed) {
    if (r.status === 'pending') queues.add(r.queue);
    hub.emit({ type: 'job.reclaimed', jobId: r.id, jobType: r.type, queue: r.queue, status: r.status, at });
  }
  const woken = await storage.jobWakeDue({ limit: BATCH });
  return { reclaimed: reclaimed.length, woken: woken.length, queues };
}
