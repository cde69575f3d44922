/**
 * Coalesces calls made by many concurrent callers into one call per flush: items pushed in the
 * same turn of the event loop (or while a flush is in flight) are written together. One flush
 * at a time, so under load each call carries many items. A caller's promise settles with its own
 * item's result once the call that carried it returned.
 *
 * A failed call does not sink every item it carried: the batch is split in halves and each half
 * written again (recursively), so an item the database refuses is isolated and its neighbours
 * are written. Splitting goes on only where it pays: when nothing of a group's first half could
 * be written either, its second half is tried once, unsplit — so a database that is down costs
 * about 2·log2(n) calls per flush, not 2n. Each item that could not be written is rejected
 * with a {@link BatchWriteError} that says whether it failed alone (a call that carried only
 * that item failed). A failed call may have committed before its reply was lost: an item
 * written again after a failure that reports "not applied" (the `fallback` value) resolves with
 * `unsure` when one is given, so the caller can check.
 * @internal
 */

/** Writes a batch; resolves with one result per item, in order. */
export type BatchWrite<I, R> = (items: I[]) => Promise<R[]>;

/** Why a pushed item was not written: the error of the last call that carried it. @internal */
export class BatchWriteError extends Error {
  /**
   * @param error the error the write call threw
   * @param alone whether that call carried this item alone (the item itself may be the cause)
   */
  constructor(
    readonly error: unknown,
    readonly alone: boolean,
  ) {
    super(error instanceof Error ? error.message : String(error), { cause: error });
    this.name = 'BatchWriteError';
  }
}

interface Pending<I, R> {
  item: I;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

/** Outcome of writing a group: every item written, some, or none. */
type GroupResult = 'written' | 'partly' | 'none';

/** A coalescing writer. @internal */
export class Batcher<I, R> {
  #queue: Pending<I, R>[] = [];
  #flushing: Promise<void> | undefined;
  #scheduled = false;

  /**
   * @param write the batch call
   * @param maxBatch most items per call
   * @param fallback the result of an item the batch call returned no result for ("not applied")
   * @param unsure the result of an item that got `fallback` from a call made after a failed one
   */
  constructor(
    private readonly write: BatchWrite<I, R>,
    private readonly maxBatch: number,
    private readonly fallback: R,
    private readonly unsure: R = fallback,
  ) {}

  /** Queues an item; resolves with its result, rejects with a {@link BatchWriteError} when it could not be written. */
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
      // Never rejects: #writeGroup catches every failed write and settles each item with it.
      void this.#flush();
    });
  }

  #flush(): Promise<void> {
    if (this.#flushing || this.#queue.length === 0) return this.#flushing ?? Promise.resolve();
    const batch = this.#queue.splice(0, this.maxBatch);
    this.#flushing = (async () => {
      try {
        await this.#writeGroup(batch, true, false);
      } finally {
        this.#flushing = undefined;
        if (this.#queue.length > 0) this.#schedule();
      }
    })();
    return this.#flushing;
  }

  /**
   * Writes `group` (`again`: after a failed call that carried it); on failure splits it (when
   * `split`) and writes the halves. The second half is split further only if the first was at
   * least partly written: when nothing of the first half could be written either, the second is
   * tried once as a whole.
   */
  async #writeGroup(group: Pending<I, R>[], split: boolean, again: boolean): Promise<GroupResult> {
    let out: R[];
    try {
      out = await this.write(group.map((p) => p.item));
    } catch (err) {
      if (!split || group.length === 1) {
        for (const p of group) p.reject(new BatchWriteError(err, group.length === 1));
        return 'none';
      }
      const mid = Math.ceil(group.length / 2);
      const first = await this.#writeGroup(group.slice(0, mid), true, true);
      const second = await this.#writeGroup(group.slice(mid), first !== 'none', true);
      return first === 'none' && second === 'none' ? 'none' : 'partly';
    }
    for (let i = 0; i < group.length; i++) {
      const r = i < out.length ? out[i]! : this.fallback;
      group[i]!.resolve(again && r === this.fallback ? this.unsure : r);
    }
    return 'written';
  }
}
