/**
 * Coalesces run outcomes from many concurrent handlers into one fenced `jobFinishMany`
 * per flush (see `Batcher`): items pushed while a flush is in flight go into the next one, so
 * under load each round trip carries many jobs. A job counts as done only once its flush
 * committed.
 * @internal
 */
import { Batcher } from '../internal/batcher.js';
import type { JobFinishItem, Storage } from '../storage/storage.js';
import type { Logger } from '../types.js';

const MAX_BATCH = 1000;

/** Batches `jobFinishMany` calls. @internal */
export class Completer {
  readonly #batch: Batcher<JobFinishItem, boolean>;

  constructor(storage: Storage, logger: Logger) {
    this.#batch = new Batcher(
      async (items) => {
        try {
          return await storage.jobFinishMany({ items });
        } catch (err) {
          logger.error('writing job outcomes failed', { error: String(err), jobs: items.length });
          throw err;
        }
      },
      MAX_BATCH,
      false,
    );
  }

  /** Queues an outcome; resolves with whether the fenced write applied. Rejects if the database failed. */
  finish(item: JobFinishItem): Promise<boolean> {
    return this.#batch.push(item);
  }

  /** Waits until everything queued so far is written. */
  drain(): Promise<void> {
    return this.#batch.drain();
  }
}
