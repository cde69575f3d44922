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
 * a batch that deleted nothing (nothing else was due) or was told `busy` (another process is
 * pruning), the next one waits the prune interval; after a batch that deleted something (more
 * may be due: a backlog) it comes at the next maintenance pass, so a worker catches up at up to
 * one batch per maintenance interval instead of falling behind a busy queue. A batch is one short
 * storage transaction that skips locked rows, and only one process prunes at a time.
 *
 * A batch runs beside the maintenance pass that started it, never inside it: reclaiming leases
 * and waking timers do not wait for a slow prune, and a pass that comes while a batch is still
 * running starts none.
 * @internal
 */
export class MaintenancePruner {
  readonly #storage: Storage;
  readonly #hub: EventHub;
  readonly #ages: RetentionAges | null;
  readonly #intervalMs: number | null;
  /** When the last batch started (monotonic ms); the first pass prunes. */
  #last = -Infinity;
  /** The last batch deleted something: more may be due, prune again at the next pass. */
  #backlog = false;
  /** The batch in flight, if any. */
  #running: Promise<void> | null = null;

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
   * Starts one batch, without waiting for it, when none is running and a backlog is left or the
   * interval has passed since the last batch (a failed batch waits a whole interval too). A
   * failure goes to `onError`; the worker reports it and carries on.
   */
  kick(onError: (err: unknown) => void): void {
    if (this.#running !== null || this.#ages === null || this.#intervalMs === null) return;
    const now = performance.now();
    if (!this.#backlog && now - this.#last < this.#intervalMs) return;
    this.#last = now;
    this.#backlog = false;
    const ages = this.#ages;
    this.#running = pruneOnce(this.#storage, this.#hub, ages, WORKER_PRUNE_BATCH)
      .then((r) => {
        this.#backlog = !r.busy && r.roots > 0;
      }, onError)
      .finally(() => {
        this.#running = null;
      });
  }

  /** Resolves once no batch is running (at once when none is). Never rejects. */
  async settled(): Promise<void> {
    await this.#running;
  }
}
