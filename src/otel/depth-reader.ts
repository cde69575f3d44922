/**
 * The database read behind the queue gauges: `storage.queueSummary()` at most once per interval,
 * however many collections ask, sharing a read in flight; a failed read keeps the last values.
 * @internal
 */
import { diag } from '@opentelemetry/api';
import type { Logger, Queue } from '../index.js';

/** One queue's depth as the gauges report it. @internal */
export interface QueueDepth {
  readonly name: string;
  readonly pending: number;
  readonly running: number;
  readonly waiting: number;
  /** Age in ms of the oldest due pending job; 0 when none is due. */
  readonly oldestPendingAgeMs: number;
}

/** Reads queue depths at a bounded rate. @internal */
export class DepthReader {
  #rows: ReadonlyMap<string, QueueDepth> = new Map();
  #readAt: number | undefined;
  #inFlight: Promise<ReadonlyMap<string, QueueDepth>> | undefined;
  #failing = false;

  /**
   * @param queue whose storage is read
   * @param intervalMs the least time between the starts of two reads
   * @param logger where a failing read is reported (once per run of failures); default OpenTelemetry's `diag`
   * @param timeoutMs how long a collection waits for a read before it reports the last values
   */
  constructor(
    private readonly queue: Queue<never>,
    private readonly intervalMs: number,
    private readonly logger: Logger | undefined,
    private readonly timeoutMs: number,
  ) {}

  /**
   * The depths of every queue seen so far: read now when the last read started at least an
   * interval ago (waiting for it), else the last values. At most one read is in flight: a
   * collection waits for it at most `timeoutMs`, then gets the last values (a hung database
   * read must not hang a Prometheus scrape, which the SDK collects without a timeout). A queue
   * that left the summary (it holds no job any more) is reported with zeros. Never rejects.
   */
  current(now = Date.now()): Promise<ReadonlyMap<string, QueueDepth>> {
    if (this.#inFlight === undefined) {
      if (this.#readAt !== undefined && now - this.#readAt < this.intervalMs) return Promise.resolve(this.#rows);
      this.#readAt = now;
      const read = this.#read().finally(() => (this.#inFlight = undefined));
      this.#inFlight = read;
    }
    return this.#bounded(this.#inFlight);
  }

  /** `read`, or the last values once `timeoutMs` passed (reported like a failed read). */
  #bounded(read: Promise<ReadonlyMap<string, QueueDepth>>): Promise<ReadonlyMap<string, QueueDepth>> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<ReadonlyMap<string, QueueDepth>>((resolve) => {
      timer = setTimeout(() => {
        if (!this.#failing) this.#report(new Error(`no answer within ${this.timeoutMs} ms (the read goes on; no other starts until it ends)`));
        this.#failing = true;
        resolve(this.#rows);
      }, this.timeoutMs);
    });
    return Promise.race([read, late]).finally(() => clearTimeout(timer));
  }

  async #read(): Promise<ReadonlyMap<string, QueueDepth>> {
    try {
      const rows = await this.queue.storage.queueSummary();
      const next = new Map<string, QueueDepth>();
      for (const name of this.#rows.keys()) next.set(name, { name, pending: 0, running: 0, waiting: 0, oldestPendingAgeMs: 0 });
      for (const r of rows) {
        next.set(r.name, { name: r.name, pending: r.pending, running: r.running, waiting: r.waiting, oldestPendingAgeMs: Math.max(0, r.oldestPendingAgeMs ?? 0) });
      }
      this.#rows = next;
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.#report(err);
      this.#failing = true;
    }
    return this.#rows;
  }

  #report(err: unknown): void {
    const message = 'reading queue depths for the metrics failed; the gauges keep their last values (further failures in a row are not logged)';
    const error = err instanceof Error ? err.message : String(err);
    try {
      if (this.logger) this.logger.warn(message, { error });
      else diag.warn(`simple-durable-jobs: ${message}: ${error}`);
    } catch {
      // A logger that throws must not break the collection.
    }
  }
}
