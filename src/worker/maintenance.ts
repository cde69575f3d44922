/**
 * Periodic upkeep any worker may do: reclaim jobs whose lease expired, wake waiting jobs
 * whose timer passed or whose fan-out was decided while no worker was there to resume them,
 * and now and then delete one small batch of finished jobs whose retention age has passed.
 * @internal
 */
import type { EventHub } from '../core/events.js';
import { pruneOnce, WORKER_PRUNE_BATCH, type RetentionAges } from '../core/retention.js';
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

/**
 * The retention part of a worker's maintenance: one batch of at most {@link WORKER_PRUNE_BATCH}
 * roots (with their subtrees) per pass, the first at the worker's first maintenance pass. After
 * a batch that found fewer roots than its limit (nothing else was due) or was told `busy`
 * (another process is pruning), the next one waits the prune interval; after a full batch
 * (more may be due: a backlog) it comes at the next maintenance pass, so a worker catches up at
 * up to one batch per maintenance interval instead of falling behind a busy queue. A batch is
 * one short storage transaction that skips locked rows, and only one process prunes at a time.
 * @internal
 */
export class MaintenancePruner {
  readonly #storage: Storage;
  readonly #hub: EventHub;
  readonly #ages: RetentionAges | null;
  readonly #intervalMs: number | null;
  /** When the last batch started (monotonic ms); the first pass prunes. */
  #last = -Infinity;
  /** The last batch was full: more may be due, prune again at the next pass. */
  #backlog = false;

  /**
   * @param ages the queue's retention (`null`: keep everything, never prune)
   * @param intervalMs the shortest time between two batches (`null`: this worker never prunes)
   */
  constructor(storage: Storage, hub: EventHub, ages: RetentionAges | null, intervalMs: number | null) {
    this.#storage = storage;
    this.#hub = hub;
    this.#ages = ages;
    this.#intervalMs = intervalMs;
  }

  /**
   * Prunes one batch when a backlog is left or the interval has passed since the last batch
   * (a failed batch waits a whole interval too). Resolves with the jobs deleted (0 when not due,
   * off or busy); rejects with the storage's error, which the worker reports and carries on.
   */
  async maybePrune(): Promise<number> {
    if (this.#ages === null || this.#intervalMs === null) return 0;
    const now = performance.now();
    if (!this.#backlog && now - this.#last < this.#intervalMs) return 0;
    this.#last = now;
    this.#backlog = false;
    const r = await pruneOnce(this.#storage, this.#hub, this.#ages, WORKER_PRUNE_BATCH);
    this.#backlog = !r.busy && r.roots >= WORKER_PRUNE_BATCH;
    return r.deleted;
  }
}
