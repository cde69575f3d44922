/**
 * The claim loop: one round trip claims for every queue with free slots. It runs when woken
 * (LISTEN/NOTIFY, a local enqueue, freed slots while more work is known to be waiting) and
 * otherwise polls. After database errors it backs off exponentially up to 10 s.
 * @internal
 */
import type { JobRow, Storage } from '../storage/storage.js';
import type { Logger } from '../types.js';

/** Dependencies of the claim loop. @internal */
export interface ClaimLoopDeps {
  storage: Storage;
  workerId: string;
  leaseMs: number;
  pollMs: number;
  /** Queue name → concurrency. */
  queues: Map<string, number>;
  logger: Logger;
  onClaimed(row: JobRow): void;
  onError(err: unknown): void;
}

/** Claims jobs in batches for a worker. @internal */
export class ClaimLoop {
  readonly #d: ClaimLoopDeps;
  readonly #active = new Map<string, number>();
  /** Queues whose last claim came back full: more work is probably waiting. */
  readonly #more = new Set<string>();
  #running = false;
  #paused = false;
  #inFlight: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #errors = 0;

  constructor(deps: ClaimLoopDeps) {
    this.#d = deps;
    for (const q of deps.queues.keys()) this.#active.set(q, 0);
  }

  /** Whether claiming is paused. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Starts claiming. */
  start(): void {
    this.#running = true;
    this.#kick();
  }

  /** Stops claiming; waits for a claim in flight (its jobs still run). */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  /** Stops claiming until `resume()`. */
  pause(): void {
    this.#paused = true;
  }

  /** Claims again after `pause()`. */
  resume(): void {
    this.#paused = false;
    this.#kick();
  }

  /** Jobs may be ready in `queue`. */
  wake(queue: string): void {
    if (!this.#d.queues.has(queue)) return;
    this.#more.add(queue);
    this.#kick();
  }

  /** A job of `queue` finished on this worker. */
  slotFreed(queue: string): void {
    const n = (this.#active.get(queue) ?? 1) - 1;
    this.#active.set(queue, n);
    if (!this.#more.has(queue)) return;
    // Refill in batches: wait until half the slots are free (or the queue is idle).
    const limit = this.#d.queues.get(queue) ?? 1;
    if (n === 0 || limit - n >= Math.ceil(limit / 2)) this.#kick();
  }

  #kick(): void {
    if (!this.#running || this.#paused) return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    this.#inFlight = this.#cycle().finally(() => {
      this.#inFlight = undefined;
      if (this.#again) {
        this.#again = false;
        this.#kick();
      }
    });
  }

  async #cycle(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    let delay = this.#d.pollMs;
    try {
      do {
        this.#again = false;
        if (!this.#running || this.#paused) return;
        const want: { name: string; limit: number }[] = [];
        for (const [name, concurrency] of this.#d.queues) {
          const free = concurrency - (this.#active.get(name) ?? 0);
          if (free > 0) want.push({ name, limit: free });
        }
        if (want.length === 0) return;
        const rows = await this.#d.storage.jobClaim({ workerId: this.#d.workerId, queues: want, leaseMs: this.#d.leaseMs });
        this.#errors = 0;
        const got = new Map<string, number>();
        for (const row of rows) {
          got.set(row.queue, (got.get(row.queue) ?? 0) + 1);
          this.#active.set(row.queue, (this.#active.get(row.queue) ?? 0) + 1);
        }
        for (const w of want) {
          if ((got.get(w.name) ?? 0) >= w.limit) this.#more.add(w.name);
          else this.#more.delete(w.name);
        }
        for (const row of rows) this.#d.onClaimed(row);
        if (!this.#running) return;
      } while (this.#again);
    } catch (err) {
      this.#errors++;
      delay = Math.min(10_000, 100 * 2 ** Math.min(this.#errors, 7));
      this.#d.onError(err);
    } finally {
      this.#arm(delay);
    }
  }

  #arm(delay: number): void {
    if (!this.#running) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      for (const q of this.#d.queues.keys()) this.#more.add(q);
      this.#kick();
    }, delay);
  }
}
