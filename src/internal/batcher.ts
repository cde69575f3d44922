/**
 * Coalesces calls made by many concurrent callers into one call per flush: items pushed in the
 * same turn of the event loop (or while a flush is in flight) are written together. One flush
 * at a time, so under load each call carries many items. A caller's promise settles with its own
 * item's result once the call that carried it returned.
 * @internal
 */

/** Writes a batch; resolves with one result per item, in order. */
export type BatchWrite<I, R> = (items: I[]) => Promise<R[]>;

interface Pending<I, R> {
  item: I;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

/** A coalescing writer. @internal */
export class Batcher<I, R> {
  #queue: Pending<I, R>[] = [];
  #flushing: Promise<void> | undefined;
  #scheduled = false;

  /**
   * @param write the batch call
   * @param maxBatch most items per call
   * @param fallback the result of an item the batch call returned no result for
   */
  constructor(
    private readonly write: BatchWrite<I, R>,
    private readonly maxBatch: number,
    private readonly fallback: R,
  ) {}

  /** Queues an item; resolves with its result, rejects when its batch call failed. */
  push(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Waits until everything queued so far is written (or failed). */
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
    const batch = this.#queue.splice(0, this.maxBatch);
    this.#flushing = (async () => {
      try {
        const out = await this.write(batch.map((p) => p.item));
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(i < out.length ? out[i]! : this.fallback);
      } catch (err) {
        for (const p of batch) p.reject(err);
      } finally {
        this.#flushing = undefined;
        if (this.#queue.length > 0) this.#schedule();
      }
    })();
    return this.#flushing;
  }
}
