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
 * The ordinary claim (`jobClaim`) asks only the queues where it may find a job: those announced
 * by a wake-up, every queue at each poll, and those whose last ordinary claim came back full; a
 * queue whose last ordinary claim came back short is asked again only after one of those. A
 * mere change of the database (`dataVersion`, a hint and not news of jobs) counts as a wake-up,
 * unless the last claim that only hints caused found nothing and hints keep coming (under
 * `pollMs` apart): then hints claim at most once per `pollMs` since the last ordinary claim, the
 * poll's pace, until a claim finds a job or the database is quiet for `pollMs`.
 *
 * Flow control: a cycle makes the ordinary claim where it may find jobs and, when
 * {@link LimitedClaims} says so, the limited claim (`jobClaimLimited`) with the same free slots;
 * {@link shareSlots} then keeps the first jobs in claim order up to the free slots and the
 * others are given back (`jobRelease`) unrun. Without any limit the limited claim is skipped, so
 * the cost of a cycle is what it was.
 * @internal
 */
import type { JobRow, Storage } from '../storage/storage.js';
import type { Logger } from '../types.js';
import { shareSlots, type ClaimWant, type LimitedClaims } from './limited-claims.js';

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
  /** Jobs claimed that this worker will not run (paused meanwhile, or outranked): give them back unrun. */
  onUnwanted(rows: JobRow[]): void;
  onError(err: unknown): void;
  /** The limited claim (flow control); absent: ordinary claims only. */
  limited?: LimitedClaims;
  /** Monotonic clock (ms). @default performance.now */
  now?: () => number;
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
  readonly #now: () => number;
  readonly #slots = new Map<string, Slots>();
  /** Queues where the ordinary claim may find jobs (woken, polled, or last claim full). */
  readonly #more = new Set<string>();
  /** Queues whose last limited claim came back full: more limited jobs may be ready there. */
  readonly #moreLimited = new Set<string>();
  /** Queues in {@link #more} only because of a change of the database (a hint). */
  readonly #hinted = new Set<string>();
  /** Wake-ups per queue, so a claim in flight does not forget one that came meanwhile. */
  readonly #wakes = new Map<string, number>();
  /** The last ordinary claim that only hints caused found nothing. */
  #hintsWasted = false;
  /** When the last hint came, and when the last ordinary claim was made (monotonic ms). */
  #lastHintAt = -Infinity;
  #lastOrdinaryAt = -Infinity;
  #started = false;
  #paused = false;
  #inFlight: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #errors = 0;
  #refillSoon = false;

  constructor(deps: ClaimLoopDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => performance.now());
    for (const [q, limit] of deps.queues) this.#slots.set(q, { limit, refill: Math.max(1, Math.ceil(limit / 3)), running: 0, held: 0 });
  }

  /** Whether claiming is paused. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Starts claiming. */
  start(): void {
    this.#started = true;
    this.#kickAll();
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
    this.#kickAll();
  }

  /**
   * Jobs may be ready in `queue`: `news` when jobs were announced (NOTIFY, a local enqueue, jobs
   * woken or reclaimed), false for a mere change of the database (see {@link changed}).
   */
  wake(queue: string, news = true): void {
    if (!this.#slots.has(queue)) return;
    if (!news) return this.#hint([queue]);
    this.#d.limited?.woken(queue, true);
    this.#hinted.delete(queue);
    this.#more.add(queue);
    this.#wakes.set(queue, (this.#wakes.get(queue) ?? 0) + 1);
    this.#run();
  }

  /**
   * The database changed (`dataVersion`: any write of any process): a hint for every queue, not
   * news of jobs, which both claims heed only sparingly (see the module doc and
   * `LimitedClaims.woken`).
   */
  changed(): void {
    this.#hint([...this.#slots.keys()]);
  }

  #hint(queues: readonly string[]): void {
    // While the database keeps changing (hints under pollMs apart) and hints led to nothing, a
    // hint claims no sooner than pollMs after the last ordinary claim: the poll's pace.
    const now = this.#now();
    const busy = this.#hintsWasted && now - this.#lastHintAt < this.#d.pollMs;
    this.#lastHintAt = now;
    let due = false;
    for (const queue of queues) {
      if (this.#d.limited?.woken(queue, false) === true) due = true;
      if (this.#more.has(queue) || (busy && now - this.#lastOrdinaryAt < this.#d.pollMs)) continue;
      this.#hinted.add(queue);
      this.#more.add(queue);
      this.#wakes.set(queue, (this.#wakes.get(queue) ?? 0) + 1);
      due = true;
    }
    if (due) this.#run();
  }

  /** Runs a cycle for the limited claim (now, or right after the one in flight). */
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
    if (jobId !== undefined && this.#d.limited?.finished(jobId) === true && freeSlots(s) > 0) this.#kickSoon();
    this.#maybeRefill(queue, s);
  }

  #maybeRefill(queue: string, s: Slots): void {
    if (!this.#more.has(queue) && !this.#moreLimited.has(queue)) return;
    const free = freeSlots(s);
    // Refill in batches: wait until a third of the slots are free (or the queue is idle), and
    // let every handler that settles in this turn of the event loop free its slot first.
    if (free > 0 && (free >= s.refill || s.running === 0)) this.#kickSoon();
  }

  /** Runs a cycle after every handler settling in this turn of the event loop has freed its slot. */
  #kickSoon(): void {
    if (this.#refillSoon) return;
    this.#refillSoon = true;
    setImmediate(() => {
      this.#refillSoon = false;
      this.#run();
    });
  }

  /** Runs a cycle with the ordinary claim asking every queue (start, resume, the poll). */
  #kickAll(): void {
    for (const q of this.#slots.keys()) {
      this.#more.add(q);
      this.#hinted.delete(q);
      this.#wakes.set(q, (this.#wakes.get(q) ?? 0) + 1);
    }
    this.#run();
  }

  #run(): void {
    if (!this.#started || this.#paused) return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    if (!this.#due()) return;
    this.#inFlight = this.#cycle().finally(() => {
      this.#inFlight = undefined;
      if (this.#again) {
        this.#again = false;
        this.#run();
      }
    });
  }

  /** Whether a cycle now would make a claim: a queue with free slots where one may find jobs. */
  #due(): boolean {
    const free = this.#freeSlots();
    if (free.length === 0) return false;
    return free.some((w) => this.#more.has(w.name)) || (this.#d.limited?.plan(free) ?? null) !== null;
  }

  async #cycle(): Promise<void> {
    // The poll timer restarts after each ordinary claim (or failure); a cycle without one leaves
    // it running, so the ordinary poll keeps its pace.
    let delay: number | undefined;
    try {
      do {
        this.#again = false;
        if (!this.#started || this.#paused) return;
        const free = this.#freeSlots();
        if (free.length === 0) return;
        const ask = free.filter((w) => this.#more.has(w.name));
        let ordinary: JobRow[] = [];
        if (ask.length > 0) {
          delay = this.#d.pollMs;
          if (this.#timer) clearTimeout(this.#timer);
          this.#timer = undefined;
          const wakes = new Map(ask.map((w) => [w.name, this.#wakes.get(w.name) ?? 0]));
          ordinary = await this.#d.storage.jobClaim({ workerId: this.#d.workerId, queues: ask, leaseMs: this.#d.leaseMs });
          this.#errors = 0;
          this.#afterOrdinary(ask, ordinary, wakes);
        }
        let limitedRows: JobRow[] | null;
        try {
          limitedRows = await this.#claimLimited(free);
        } catch (err) {
          // The ordinary claim's jobs are this worker's: run them.
          this.#take(ordinary);
          throw err;
        }
        if (limitedRows === null) {
          if (!this.#take(ordinary)) return;
          continue;
        }
        this.#errors = 0;
        if (this.#paused) {
          this.#d.limited?.gaveBack(limitedRows, false);
          this.#take([...ordinary, ...limitedRows]);
          return;
        }
        const { run, back } = shareSlots(free, ordinary, limitedRows);
        if (back.length > 0) {
          this.#d.onUnwanted(back);
          this.#d.limited?.gaveBack(back, true);
        }
        if (!this.#take(run)) return;
      } while (this.#again);
    } catch (err) {
      this.#errors++;
      delay = Math.min(10_000, 100 * 2 ** Math.min(this.#errors, 7));
      this.#d.onError(err);
    } finally {
      if (delay !== undefined || this.#timer === undefined) this.#arm(delay ?? this.#d.pollMs);
    }
  }

  /**
   * What an ordinary claim tells: a queue that came back full may have more; one that came back
   * short has none, unless it was woken while the claim was in flight. Whether hints led to
   * anything (see {@link wake}).
   */
  #afterOrdinary(ask: readonly ClaimWant[], rows: readonly JobRow[], wakes: ReadonlyMap<string, number>): void {
    const got = countByQueue(rows);
    this.#lastOrdinaryAt = this.#now();
    if (rows.length > 0) this.#hintsWasted = false;
    else if (ask.every((w) => this.#hinted.has(w.name))) this.#hintsWasted = true;
    for (const w of ask) {
      if (this.#wakes.get(w.name) !== wakes.get(w.name)) continue;
      this.#hinted.delete(w.name);
      if ((got.get(w.name) ?? 0) < w.limit) this.#more.delete(w.name);
    }
  }

  /** The limited claim of this cycle over the cycle's free slots, if one is due (else null). */
  async #claimLimited(free: readonly ClaimWant[]): Promise<JobRow[] | null> {
    const limited = this.#d.limited;
    const want = limited?.plan(free);
    if (!limited || !want) return null;
    let r;
    try {
      r = await this.#d.storage.jobClaimLimited({ workerId: this.#d.workerId, queues: want, leaseMs: this.#d.leaseMs });
    } catch (err) {
      limited.failed();
      throw err;
    }
    limited.claimed(want, r);
    const got = countByQueue(r.rows);
    for (const w of want) {
      if ((got.get(w.name) ?? 0) >= w.limit) this.#moreLimited.add(w.name);
      else this.#moreLimited.delete(w.name);
    }
    return r.rows;
  }

  /**
   * Starts the claimed rows; false when the cycle must end: the worker was paused while a claim
   * was in flight (the rows are given back unrun) or stopped.
   */
  #take(rows: JobRow[]): boolean {
    if (this.#paused) {
      // pause() landed while this claim was in flight: a paused worker starts nothing.
      if (rows.length > 0) this.#d.onUnwanted(rows);
      return false;
    }
    for (const row of rows) {
      const s = this.#slots.get(row.queue);
      if (s) {
        s.running++;
        s.held++;
      }
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
      this.#kickAll();
    }, delay);
  }
}

/** Slots a claim may fill now: free handler slots, bounded by unwritten outcomes. */
function freeSlots(s: Slots): number {
  return Math.min(s.limit - s.running, 2 * s.limit - s.held);
}

/** Rows per queue. */
function countByQueue(rows: readonly JobRow[]): Map<string, number> {
  const got = new Map<string, number>();
  for (const r of rows) got.set(r.queue, (got.get(r.queue) ?? 0) + 1);
  return got;
}
