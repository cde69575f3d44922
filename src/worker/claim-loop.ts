/**
 * The claim loop: one round trip claims for every queue with free slots. It runs when woken
 * (LISTEN/NOTIFY, a local enqueue, freed slots while more work is known to be waiting) and
 * otherwise polls. After database errors it backs off exponentially up to 10 s.
 *
 * Slots: a queue with concurrency N runs at most N handlers at once. A job's slot is freed as
 * soon as its handler is done, while its outcome is still being written (fenced, coalesced by
 * the completer), so the next claim overlaps the previous batch's completion write. Jobs whose
 * outcome is not written yet still count against a second bound of N, so a slow database
 * throttles claiming instead of letting unwritten outcomes pile up: a worker holds at most 2N
 * leases per queue, and never claims more jobs than it has free handler slots.
 *
 * Flow control: each cycle makes the ordinary claim (`jobClaim`, which never takes a job that
 * limits govern) and then, when {@link LimitedClaims} says so, the limited claim
 * (`jobClaimLimited`) with the slots still free. Without any limit the second claim is skipped,
 * so the cost of a cycle is what it was.
 * @internal
 */
import type { JobRow, Storage } from '../storage/storage.js';
import type { Logger } from '../types.js';
import type { ClaimWant, LimitedClaims } from './limited-claims.js';

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
  /** Jobs a claim returned after the worker was paused: give them back unrun. */
  onUnwanted(rows: JobRow[]): void;
  onError(err: unknown): void;
  /** The limited claim (flow control); absent: ordinary claims only. */
  limited?: LimitedClaims;
}

/** Per-queue slot accounting. */
interface Slots {
  /** Concurrency (handlers at once). */
  readonly limit: number;
  /** Refill once this many slots are free while more work is known to be waiting. */
  readonly refill: number;
  /** Handlers running. */
  running: number;
  /** Claimed and not yet finished (running, or outcome being written). */
  held: number;
}

/** Claims jobs in batches for a worker. @internal */
export class ClaimLoop {
  readonly #d: ClaimLoopDeps;
  readonly #slots = new Map<string, Slots>();
  /** Queues whose last claim came back full: more work is probably waiting. */
  readonly #more = new Set<string>();
  #started = false;
  #paused = false;
  #inFlight: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #errors = 0;
  #refillSoon = false;
  /**
   * The next cycle makes the ordinary claim. Cleared by a cycle that makes it; a cycle asked for
   * only by the limited claim (its timer, a limited job finished) skips it.
   */
  #ordinaryDue = true;

  constructor(deps: ClaimLoopDeps) {
    this.#d = deps;
    for (const [q, limit] of deps.queues) this.#slots.set(q, { limit, refill: Math.max(1, Math.ceil(limit / 3)), running: 0, held: 0 });
  }

  /** Whether claiming is paused. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Starts claiming. */
  start(): void {
    this.#started = true;
    this.#kick();
  }

  /** Stops claiming; waits for a claim in flight (its jobs still run). */
  async stop(): Promise<void> {
    this.#started = false;
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

  /**
   * Jobs may be ready in `queue`: `news` when jobs were announced (NOTIFY, a local enqueue, jobs
   * woken or reclaimed), false for a mere change of the database (`dataVersion`), which the
   * limited claim heeds only sparingly (see `LimitedClaims.woken`).
   */
  wake(queue: string, news = true): void {
    if (!this.#slots.has(queue)) return;
    this.#more.add(queue);
    this.#d.limited?.woken(queue, news);
    this.#kick();
  }

  /** Runs a cycle for the limited claim only, now (or right after the one in flight). */
  kickLimited(): void {
    this.#run();
  }

  /** A handler of `queue` is done on this worker (its outcome may still be being written). */
  slotFreed(queue: string): void {
    const s = this.#slots.get(queue);
    if (s === undefined) return;
    s.running = Math.max(0, s.running - 1);
    this.#maybeRefill(queue, s);
  }

  /**
   * A job of `queue` is finished on this worker (outcome written, or given up). A job the
   * limited claim took frees a slot of its limits in the storage: the limited claim runs again
   * at once, so the worker that freed the slot takes it within milliseconds.
   */
  released(queue: string, jobId?: string): void {
    const s = this.#slots.get(queue);
    if (s === undefined) return;
    s.held = Math.max(0, s.held - 1);
    if (jobId !== undefined && this.#d.limited?.finished(jobId) === true && freeSlots(s) > 0) this.#kickSoon(false);
    this.#maybeRefill(queue, s);
  }

  #maybeRefill(queue: string, s: Slots): void {
    if (!this.#more.has(queue)) return;
    const free = freeSlots(s);
    // Refill in batches: wait until a third of the slots are free (or the queue is idle), and
    // let every handler that settles in this turn of the event loop free its slot first.
    if (free > 0 && (free >= s.refill || s.running === 0)) this.#kickSoon(true);
  }

  /**
   * Runs a cycle after every handler settling in this turn of the event loop has freed its slot;
   * `ordinary`: with the ordinary claim.
   */
  #kickSoon(ordinary: boolean): void {
    if (ordinary) this.#ordinaryDue = true;
    if (this.#refillSoon) return;
    this.#refillSoon = true;
    setImmediate(() => {
      this.#refillSoon = false;
      this.#run();
    });
  }

  /** Runs a cycle with the ordinary claim. */
  #kick(): void {
    this.#ordinaryDue = true;
    this.#run();
  }

  #run(): void {
    if (!this.#started || this.#paused) return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    this.#inFlight = this.#cycle().finally(() => {
      this.#inFlight = undefined;
      if (this.#again) {
        this.#again = false;
        this.#run();
      }
    });
  }

  async #cycle(): Promise<void> {
    // The poll timer restarts after each ordinary claim (or failure); a cycle of the limited
    // claim alone leaves it running, so the ordinary poll keeps its pace.
    let delay: number | undefined;
    try {
      do {
        this.#again = false;
        if (!this.#started || this.#paused) return;
        const want = this.#freeSlots();
        if (want.length === 0) return;
        if (this.#ordinaryDue) {
          this.#ordinaryDue = false;
          delay = this.#d.pollMs;
          if (this.#timer) clearTimeout(this.#timer);
          this.#timer = undefined;
          const rows = await this.#d.storage.jobClaim({ workerId: this.#d.workerId, queues: want, leaseMs: this.#d.leaseMs });
          this.#errors = 0;
          if (!this.#take(want, rows, false)) return;
        }
        if (!(await this.#claimLimited())) return;
        this.#errors = 0;
      } while (this.#again);
    } catch (err) {
      this.#errors++;
      delay = Math.min(10_000, 100 * 2 ** Math.min(this.#errors, 7));
      this.#d.onError(err);
    } finally {
      if (delay !== undefined || this.#timer === undefined) this.#arm(delay ?? this.#d.pollMs);
    }
  }

  /** The limited claim of this cycle, if one is due; false when the cycle must end (paused or stopped). */
  async #claimLimited(): Promise<boolean> {
    const limited = this.#d.limited;
    const want = limited?.plan(this.#freeSlots());
    if (!limited || !want) return true;
    let r;
    const t0 = performance.now();
    try {
      r = await this.#d.storage.jobClaimLimited({ workerId: this.#d.workerId, queues: want, leaseMs: this.#d.leaseMs });
    } catch (err) {
      limited.failed();
      throw err;
    }
    limited.claimed(want, r, performance.now() - t0);
    return this.#take(want, r.rows, true);
  }

  /**
   * Starts the claimed rows (slots, the queues that may have more, the runs); false when the
   * cycle must end: the worker was paused while the claim was in flight (the rows are given
   * back unrun) or stopped.
   */
  #take(want: readonly ClaimWant[], rows: JobRow[], limited: boolean): boolean {
    if (this.#paused && rows.length > 0) {
      // pause() landed while this claim was in flight: a paused worker starts nothing.
      this.#d.onUnwanted(rows);
      return false;
    }
    const got = new Map<string, number>();
    for (const row of rows) {
      got.set(row.queue, (got.get(row.queue) ?? 0) + 1);
      const s = this.#slots.get(row.queue);
      if (s) {
        s.running++;
        s.held++;
      }
    }
    for (const w of want) {
      if ((got.get(w.name) ?? 0) >= w.limit) this.#more.add(w.name);
      // The limited claim coming up after an ordinary one that came back short decides alone.
      else if (!limited) this.#more.delete(w.name);
    }
    for (const row of rows) this.#d.onClaimed(row);
    return this.#started;
  }

  /** Every queue with free slots, with how many. */
  #freeSlots(): ClaimWant[] {
    const want: ClaimWant[] = [];
    for (const [name, s] of this.#slots) {
      const free = freeSlots(s);
      if (free > 0) want.push({ name, limit: free });
    }
    return want;
  }

  #arm(delay: number): void {
    if (!this.#started) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      for (const q of this.#slots.keys()) this.#more.add(q);
      this.#kick();
    }, delay);
  }
}

/** Slots a claim may fill now: free handler slots, bounded by unwritten outcomes. */
function freeSlots(s: Slots): number {
  return Math.min(s.limit - s.running, 2 * s.limit - s.held);
}
