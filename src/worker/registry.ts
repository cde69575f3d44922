/**
 * The fleet's worker registry, seen by `queue.workers()`: each worker upserts its row (id, name,
 * host, pid, queues, jobs running) when it starts and then at its heartbeat interval, and
 * deletes it when it stops. A row expires three lease periods after its last refresh, so a
 * worker killed without stopping leaves the list by itself. One small write per worker per
 * heartbeat interval, whatever the number of jobs: nothing on the claim or outcome path.
 * @internal
 */
import { hostname } from 'node:os';
import { IntervalService } from '../internal/service.js';
import type { Storage } from '../storage/storage.js';
import { withMigrateHint } from '../core/migrate-hint.js';

/** Lease periods a worker may go unseen before it leaves the registry. */
export const REGISTRY_TTL_LEASES = 3;

/** What a worker tells the registry about itself. */
export interface RegistryEntry {
  id: string;
  name: string;
  queues: string[];
  leaseMs: number;
  /** Jobs running now. */
  running: () => number;
}

/** Keeps one worker's registry row fresh. @internal */
export class WorkerRegistry {
  readonly #service: IntervalService;
  /** When this worker first registered (host clock): a row that expired comes back with it. */
  #startedAt: number | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly entry: RegistryEntry,
    intervalMs: number,
    onError: (err: unknown) => void,
  ) {
    this.#service = new IntervalService(intervalMs, () => this.#beat(), (err) => onError(withMigrateHint(err)));
  }

  /** Registers now and refreshes every interval. */
  start(): void {
    this.#service.start();
    void this.#service.runNow();
  }

  /** Stops refreshing and removes the row (a failure leaves it to expire). */
  async stop(onError: (err: unknown) => void): Promise<void> {
    await this.#service.stop();
    await this.storage.workerRemove({ id: this.entry.id }).catch(onError);
  }

  #beat(): Promise<void> {
    const e = this.entry;
    this.#startedAt ??= Date.now();
    return this.storage.workerBeat({
      id: e.id,
      name: e.name,
      host: hostname(),
      pid: process.pid,
      queues: e.queues,
      running: e.running(),
      ttlMs: e.leaseMs * REGISTRY_TTL_LEASES,
      startedAt: this.#startedAt,
    });
  }
}
