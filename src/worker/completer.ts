/**
 * Coalesces run outcomes from many concurrent handlers into one fenced `jobFinishMany`
 * per flush. Items pushed while a flush is in flight go into the next one, so under load
 * each round trip carries many jobs. A job counts as done only once its flush committed.
 * @internal
 */
import type { JobFinishItem, Storage } from '../storage/storage.js';
import type { Logger } from '../types.js';
import { deferred, type Deferred } from '../internal/deferred.js';

const MAX_BATCH = 1000;

interface Pending {
  item: JobFinishItem;
  done: Deferred<boolean>;
}

/** Batches `jobFinishMany` calls. @internal */
export class Completer {
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #scheduled = false;

  constructor(
    private readonly storage: Storage,
    private readonly logger: Logger,
  ) {}

  /** Queues an outcome; resolves with whether the fenced write applied. Rejects if the database failed. */
  finish(item: JobFinishItem): Promise<boolean> {
    const done = deferred<boolean>();
    this.#queue.push({ item, done });
    this.#schedule();
    return done.promise;
  }

  /** Waits until everything queued so far is written. */
  async drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#flushing) {
      if (this.#flushing) await this.#flushing;
      else await this.#flush();
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  #flush(): Promise<void> {
    if (this.#flushing || this.#queue.length === 0) return this.#flushing ?? Promise.resolve();
    const batch = this.#queue.splice(0, MAX_BATCH);
    this.#flushing = (async () => {
      try {
        const applied = await this.storage.jobFinishMany({ items: batch.map((p) => p.item) });
        batch.forEach((p, i) => p.done.resolve(applied[i] ?? false));
      } catch (err) {
        this.logger.error('writing job outcomes failed', { error: String(err), jobs: batch.length });
        for (const p of batch) p.done.reject(err);
      } finally {
        this.#flushing = undefined;
        if (this.#queue.length > 0) this.#schedule();
      }
    })();
    return this.#flushing;
  }
}
