/**
 * Writes `ctx.progress` reports, coalesced. A handler may report in a tight loop; the database
 * sees at most one write per job per {@link PROGRESS_INTERVAL_MS}: each report only replaces
 * its run's pending value, and a flush writes the latest value of every run that has one in ONE
 * fenced `jobProgressMany` call. The first report after a quiet spell is written on the next
 * turn of the event loop; later ones wait for the interval since the last flush began.
 *
 * Writes never overlap (one chain per writer), so a run's older value can never land after a
 * newer one — except that a write still unanswered after {@link WRITE_STUCK_MS} (a lock wait, a
 * dead connection) is left behind: the chain goes on without it, and the runs it carried are
 * written again only once it answered, so even then a run's values land in order. A hung write
 * therefore stalls only its own runs' progress, never other runs', nor `stop()`, which waits at
 * most {@link FLUSH_WAIT_MS}. Before a run's outcome or suspension is written, its pending value is written at
 * once ({@link ProgressWriter.flushRun}, waited for at most {@link FLUSH_WAIT_MS}), so the last
 * report is stored — and since every progress write is fenced by the run (running, same owner,
 * same run count), a write that comes after the outcome, the suspension or a lost lease changes
 * nothing: it can never overwrite what the outcome left.
 *
 * A failed write is logged (one warning per second at most) and never reaches the handler or
 * its outcome; its values are written again at the next flush unless newer ones came meanwhile.
 * A `job.progress` event is published for each value stored, with the storage's time.
 * @internal
 */
import { messageOf } from '../errors.js';
import type { EventHub } from '../core/events.js';
import type { Fence, JobProgressItem, Storage } from '../storage/storage.js';
import type { JobProgress, Logger } from '../types.js';

/** Shortest time between two progress flushes of one worker (so between two writes of one job), in ms. */
export const PROGRESS_INTERVAL_MS = 250;

/** Longest wait for a run's last progress write before its outcome is written anyway (ms). */
export const FLUSH_WAIT_MS = 1_000;

/**
 * A write unanswered after this long (ms) is left behind: later writes (of other runs) go ahead,
 * and its own runs wait for its answer before their next write.
 */
export const WRITE_STUCK_MS = FLUSH_WAIT_MS;

/** Most reports in one `jobProgressMany` call. */
const MAX_BATCH = 1_000;

/** What the writer needs to know about a run. @internal */
export interface ProgressRun {
  readonly fence: Fence;
  readonly row: { readonly type: string; readonly queue: string };
  /** False once the run lost (or gave up) its lease: its reports are dropped. */
  readonly leaseHeld: boolean;
}

interface Pending {
  readonly run: ProgressRun;
  readonly value: number;
  readonly message: string | null;
}

/** A per-worker coalescing writer of progress reports. @internal */
export class ProgressWriter {
  /** The latest unwritten report of each run. */
  readonly #pending = new Map<ProgressRun, Pending>();
  /** Runs whose end was seen: their reports are dropped. */
  readonly #ended = new WeakSet<ProgressRun>();
  /** The latest stored progress of each run. */
  readonly #stored = new WeakMap<ProgressRun, JobProgress>();
  /** Runs carried by a write left behind ({@link WRITE_STUCK_MS}): the write, until it answers. */
  readonly #inDoubt = new Map<ProgressRun, Promise<void>>();
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #lastFlushAt = -Infinity;
  #stopped = false;
  #warnedAt = 0;
  #failedCalls = 0;

  /**
   * @param storage where progress goes
   * @param hub where `job.progress` events go
   * @param logger for failed writes
   * @param intervalMs shortest time between two flushes @default PROGRESS_INTERVAL_MS
   */
  constructor(
    private readonly storage: Storage,
    private readonly hub: EventHub,
    private readonly logger: Logger,
    private readonly intervalMs = PROGRESS_INTERVAL_MS,
  ) {}

  /** Keeps `value` and `message` as the run's latest report, to be written at the next flush. Never throws. */
  report(run: ProgressRun, value: number, message: string | null): void {
    if (this.#stopped || this.#ended.has(run) || !run.leaseHeld) return;
    this.#pending.set(run, { run, value, message });
    this.#schedule();
  }

  /** The latest progress of the run that was stored, if any. */
  stored(run: ProgressRun): JobProgress | undefined {
    return this.#stored.get(run);
  }

  /**
   * Writes the run's pending report now (after any write in flight), and resolves once it is
   * written, failed, or {@link FLUSH_WAIT_MS} passed. Never rejects.
   */
  flushRun(run: ProgressRun): Promise<void> {
    return this.#bounded(this.#flushRunNow(run));
  }

  async #flushRunNow(run: ProgressRun): Promise<void> {
    // A write of this run left behind answers first, so the newer value lands after it.
    const doubt = this.#inDoubt.get(run);
    if (doubt !== undefined) await doubt;
    const p = this.#pending.get(run);
    if (p === undefined) return this.#chain;
    this.#pending.delete(run);
    return this.#enqueue(run.leaseHeld ? [p] : []);
  }

  /**
   * The run is over: its pending report is written first when it still holds its lease (see
   * {@link flushRun}), and later reports are dropped. Never rejects.
   */
  async end(run: ProgressRun): Promise<void> {
    if (this.#ended.has(run)) return;
    await this.flushRun(run);
    this.#ended.add(run);
    this.#pending.delete(run);
    this.#inDoubt.delete(run);
  }

  /**
   * Writes what is pending, then stops: later reports are dropped. Resolves once no write is in
   * flight, or after {@link FLUSH_WAIT_MS} (a write that hangs cannot hold a worker's shutdown;
   * it is fenced, so whenever it lands it changes nothing the outcome or a release wrote).
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#bounded(this.#flush().then(() => this.#chain));
    this.#pending.clear();
    this.#inDoubt.clear();
  }

  #schedule(): void {
    if (this.#timer || this.#pending.size === 0) return;
    const wait = Math.max(0, this.#lastFlushAt + this.intervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#flush();
    }, wait);
  }

  /** Hands every pending report to the chain (one call per {@link MAX_BATCH}). */
  #flush(): Promise<void> {
    if (this.#pending.size === 0) return this.#chain;
    this.#lastFlushAt = Date.now();
    const all: Pending[] = [];
    for (const [run, p] of this.#pending) {
      // A run whose write was left behind stays pending until that write answers.
      if (this.#inDoubt.has(run)) continue;
      this.#pending.delete(run);
      if (run.leaseHeld) all.push(p);
    }
    let last = this.#chain;
    for (let i = 0; i < all.length; i += MAX_BATCH) last = this.#enqueue(all.slice(i, i + MAX_BATCH));
    return last;
  }

  /** Writes `batch` after every write before it. Never rejects. */
  #enqueue(batch: Pending[]): Promise<void> {
    if (batch.length === 0) return this.#chain;
    this.#chain = this.#chain.then(() => this.#step(batch));
    return this.#chain;
  }

  /** One write of the chain: done when it answered, or left behind after {@link WRITE_STUCK_MS}. */
  async #step(batch: Pending[]): Promise<void> {
    const done = this.#write(batch);
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<true>((resolve) => (timer = setTimeout(resolve, WRITE_STUCK_MS, true)));
    const left = await Promise.race([done.then(() => false), stuck]);
    clearTimeout(timer);
    if (!left) return;
    this.logger.warn('a job progress write has not answered; writes of other jobs go ahead without it', { afterMs: WRITE_STUCK_MS, jobs: batch.length });
    for (const p of batch) if (!this.#ended.has(p.run)) this.#inDoubt.set(p.run, done);
    void done.then(() => {
      for (const p of batch) if (this.#inDoubt.get(p.run) === done) this.#inDoubt.delete(p.run);
      this.#schedule();
    });
  }

  async #write(batch: Pending[]): Promise<void> {
    const items: JobProgressItem[] = batch.map((p) => ({ ...p.run.fence, value: p.value, message: p.message }));
    let stored: (number | null)[];
    try {
      stored = await this.storage.jobProgressMany({ items });
    } catch (err) {
      this.#failed(batch, err);
      return;
    }
    const hub = this.hub;
    batch.forEach((p, i) => {
      const at = stored[i];
      if (at === null || at === undefined) return;
      const progress = Object.freeze({ value: p.value, message: p.message, at: new Date(at) });
      this.#stored.set(p.run, progress);
      if (hub.hasSubscribers) {
        const { jobId } = p.run.fence;
        hub.emit({ type: 'job.progress', jobId, jobType: p.run.row.type, queue: p.run.row.queue, value: p.value, message: p.message, at: progress.at });
      }
    });
  }

  /** Logs a failed write (at most once a second) and keeps its reports for the next flush unless newer ones came. */
  #failed(batch: Pending[], err: unknown): void {
    this.#failedCalls++;
    const now = Date.now();
    if (now - this.#warnedAt >= 1000) {
      this.logger.warn('writing job progress failed; the latest values are written again at the next flush', { failedCalls: this.#failedCalls, jobs: batch.length, error: messageOf(err) });
      this.#warnedAt = now;
      this.#failedCalls = 0;
    }
    for (const p of batch) {
      if (!this.#stopped && !this.#ended.has(p.run) && p.run.leaseHeld && !this.#pending.has(p.run)) this.#pending.set(p.run, p);
    }
    this.#schedule();
  }

  /** `done`, or {@link FLUSH_WAIT_MS}, whichever comes first. */
  #bounded(done: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const wait = new Promise<void>((resolve) => (timer = setTimeout(resolve, FLUSH_WAIT_MS)));
    return Promise.race([done, wait]).finally(() => clearTimeout(timer));
  }
}
