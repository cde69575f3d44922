/**
 * The fleet-event relay of one `Queue`: copies the job events this process produces into the
 * storage's change feed — but only while some fleet subscriber listens, anywhere.
 *
 * Hot path: while nobody listens the relay is not subscribed to the event hub at all, so the
 * engine's only cost is the hub's existing "does anyone listen?" check (events are not even built).
 * Whether anyone listens is asked of the storage (`eventSubscribersActive`) at most once per
 * {@link RELAY_DEFAULTS.presenceCheckMs}, when `poke()` is called — by a worker's maintenance tick
 * and by enqueues — and a fleet stream opened in this process switches relaying on at once.
 *
 * While relaying, events are kept in order and written in batches: one `eventAppendMany` per
 * flush, {@link RELAY_DEFAULTS.flushDelayMs} after the first event of a batch (at once when
 * {@link RELAY_DEFAULTS.flushMaxEvents} are waiting), one flush in flight at a time. At most
 * {@link RELAY_DEFAULTS.pendingMax} events wait; beyond that (the database is slow or down) the
 * oldest are dropped, and so are the events of a failed flush: their number is written ahead of
 * the next batch as an `events.gap` (reason `relay`). After a flush, at most every
 * {@link RELAY_DEFAULTS.pruneEveryMs}, the feed is pruned to its bounds.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { messageOf, StorageClosedError } from '../errors.js';
import type { EventAppendItem, Storage } from '../storage/storage.js';
import type { JobEvent, Logger } from '../types.js';
import type { EventHub, Unsubscribe } from './events.js';
import { encodeEvent, encodeRelayGap, isFleetEvent } from './fleet-codec.js';

/** The relay's timings and bounds. @internal */
export interface RelayTimings {
  /** Shortest time between two presence checks (ms). */
  presenceCheckMs: number;
  /** Wait after the first event of a batch before it is written (ms). */
  flushDelayMs: number;
  /** Most events in one append (and a batch this big is written at once). */
  flushMaxEvents: number;
  /** About the most JSON text in one append (characters). */
  flushMaxChars: number;
  /** Most events waiting to be written; beyond, the oldest are dropped (and counted). */
  pendingMax: number;
  /** Wait after a failed append before the next (ms). */
  retryMs: number;
  /** Shortest time between two prunes of the feed by this relay (ms). */
  pruneEveryMs: number;
  /** Longest wait of `flush()` (a worker stopping) for the database (ms). */
  flushWaitMs: number;
  /** The feed keeps events for this long (ms)... */
  feedMaxAgeMs: number;
  /** ...and at most this many. */
  feedMaxEvents: number;
}

/** The documented defaults (docs/observability.md, "Fleet events"). @internal */
export const RELAY_DEFAULTS: Readonly<RelayTimings> = Object.freeze({
  presenceCheckMs: 2_000,
  flushDelayMs: 50,
  flushMaxEvents: 500,
  flushMaxChars: 2 * 1024 * 1024,
  pendingMax: 5_000,
  retryMs: 1_000,
  pruneEveryMs: 5_000,
  flushWaitMs: 3_000,
  feedMaxAgeMs: 10 * 60_000,
  feedMaxEvents: 100_000,
});

/** Relays a queue's job events to the storage's change feed while anyone listens. See the module docs. @internal */
export class EventRelay {
  /** This relay's id, stored with every event it writes: `<hostname>:<pid>:<random>`. */
  readonly origin: string;
  readonly #storage: Storage;
  readonly #hub: EventHub;
  readonly #logger: Logger;
  readonly #t: RelayTimings;
  /** The last presence check found a subscriber. */
  #remote = false;
  /** Fleet streams of this process, each with the promise of its start (flushes wait for it). */
  readonly #locals = new Set<Promise<unknown>>();
  /** The starts of local streams not settled yet. */
  readonly #starting = new Set<Promise<unknown>>();
  #untap: Unsubscribe | undefined;
  #nextCheck = 0;
  #checking = false;
  /** Ask again as soon as the check in flight returns (a local stream ended meanwhile). */
  #recheck = false;
  /** Waiting events, encoded as they come (the job objects with their payloads are not kept). */
  #pending: EventAppendItem[] = [];
  #dropped = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #lastPrune = -Infinity;
  #closed = false;

  /** @param timings overrides of {@link RELAY_DEFAULTS} (tests) */
  constructor(storage: Storage, hub: EventHub, logger: Logger, timings: Partial<RelayTimings> = {}) {
    this.#storage = storage;
    this.#hub = hub;
    this.#logger = logger;
    this.#t = { ...RELAY_DEFAULTS, ...timings };
    this.origin = `${hostname().slice(0, 200)}:${process.pid}:${randomBytes(4).toString('hex')}`;
  }

  /** True while events are relayed. */
  get active(): boolean {
    return this.#untap !== undefined;
  }

  /**
   * Asks the storage whether any fleet subscriber listens, unless asked less than
   * `presenceCheckMs` ago (or a check is in flight): cheap enough for every enqueue.
   */
  poke(): void {
    if (this.#closed || this.#checking) return;
    const now = performance.now();
    if (now < this.#nextCheck) return;
    this.#nextCheck = now + this.#t.presenceCheckMs;
    this.#checking = true;
    // A storage without the feed (a partial test double) relays nothing, and never fails the caller.
    let check: Promise<number>;
    try {
      check = this.#storage.eventSubscribersActive();
    } catch {
      return this.#close();
    }
    check.then(
      (n) => {
        this.#checking = false;
        this.#remote = n > 0;
        this.#update();
        if (this.#recheck) {
          this.#recheck = false;
          this.#nextCheck = 0;
          this.poke();
        }
      },
      (err: unknown) => {
        this.#checking = false;
        if (err instanceof StorageClosedError) this.#close();
        else this.#logger.debug('fleet events: checking for subscribers failed', { error: messageOf(err) });
      },
    );
  }

  /**
   * A fleet stream of this process starts: relay at once. Flushes wait for `started` (the stream
   * has read its starting point), so it sees every event produced after it was opened. Returns
   * the release, called when the stream ends.
   */
  retainLocal(started: Promise<unknown>): () => void {
    const p = started.catch(() => {});
    this.#locals.add(p);
    this.#starting.add(p);
    void p.then(() => this.#starting.delete(p));
    this.#update();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#locals.delete(p);
      this.#update();
      // Its presence row is gone: ask again now whether anyone else listens.
      this.#nextCheck = 0;
      if (this.#checking) this.#recheck = true;
      else this.poke();
    };
  }

  /**
   * Writes the waiting events now (a worker stopping): waits for a flush in flight, then runs one
   * more if events still wait. Bounded: a failed append is given up after one retry wait, and the
   * wait ends after {@link RELAY_DEFAULTS.flushWaitMs} (a hung database, or other workers of the
   * queue keeping the relay busy) while the writes go on in the background.
   */
  async flush(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#t.flushWaitMs)));
    try {
      await Promise.race([this.#flushNow(), limit]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #flushNow(): Promise<void> {
    await this.#flushing;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (!this.#closed && (this.#pending.length > 0 || this.#dropped > 0)) await this.#startFlush();
  }

  #update(): void {
    const want = !this.#closed && (this.#remote || this.#locals.size > 0);
    if (want && this.#untap === undefined) {
      this.#untap = this.#hub.tap((e) => this.#push(e));
      this.#logger.debug('fleet events: relaying', { origin: this.origin });
    } else if (!want && this.#untap !== undefined) {
      this.#untap();
      this.#untap = undefined;
      this.#logger.debug('fleet events: relaying stopped (no subscriber)', { origin: this.origin });
    }
  }

  #push(e: JobEvent): void {
    if (!isFleetEvent(e)) return;
    // Encoded now: bounded to MAX_EVENT_BYTES each, so waiting events hold no job payloads.
    let item: EventAppendItem | undefined;
    try {
      item = encodeEvent(e, this.origin);
    } catch (err) {
      this.#logger.warn('fleet events: an event could not be encoded; it is dropped', { type: e.type, error: messageOf(err) });
    }
    if (item === undefined) return;
    this.#pending.push(item);
    if (this.#pending.length > this.#t.pendingMax) {
      this.#pending.shift();
      this.#dropped++;
    }
    this.#schedule(this.#pending.length >= this.#t.flushMaxEvents ? 0 : this.#t.flushDelayMs);
  }

  #schedule(delayMs: number): void {
    if (this.#closed || this.#flushing !== undefined) return;
    if (this.#timer !== undefined) {
      if (delayMs > 0) return;
      clearTimeout(this.#timer);
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#startFlush();
    }, delayMs);
  }

  #startFlush(): Promise<void> {
    this.#flushing ??= this.#flushAll().finally(() => {
      this.#flushing = undefined;
      if (this.#pending.length > 0) this.#schedule(this.#t.flushDelayMs);
    });
    return this.#flushing;
  }

  /** Writes batches until nothing waits or an append failed; never rejects. */
  async #flushAll(): Promise<void> {
    while (!this.#closed && (this.#pending.length > 0 || this.#dropped > 0)) {
      if (this.#starting.size > 0) await this.#startsSettled();
      const { items, events } = this.#takeBatch();
      try {
        await this.#storage.eventAppendMany({ events: items });
      } catch (err) {
        if (err instanceof StorageClosedError) return this.#close();
        // At most once: a batch that may not have been stored is counted as dropped, never written twice.
        this.#dropped += events;
        this.#logger.warn('fleet events: writing events failed; they are dropped and counted', { error: messageOf(err), dropped: this.#dropped });
        await new Promise<void>((resolve) => setTimeout(resolve, this.#t.retryMs));
        return;
      }
      await this.#maybePrune();
    }
  }

  /** Waits until the local streams starting now have read their starting point (at most `retryMs` × 5). */
  async #startsSettled(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#t.retryMs * 5)));
    await Promise.race([Promise.all(this.#starting), limit]);
    clearTimeout(timer);
  }

  /** The next batch: the drop count first (as an `events.gap`), then events up to the batch bounds. */
  #takeBatch(): { items: EventAppendItem[]; events: number } {
    const items: EventAppendItem[] = [];
    let events = 0;
    if (this.#dropped > 0) {
      items.push(encodeRelayGap(this.#dropped, this.origin, new Date()));
      events += this.#dropped;
      this.#dropped = 0;
    }
    let chars = 0;
    let taken = 0;
    while (taken < this.#pending.length && items.length < this.#t.flushMaxEvents && chars < this.#t.flushMaxChars) {
      const item = this.#pending[taken]!;
      taken++;
      items.push(item);
      chars += item.payloadJson.length;
      events++;
    }
    this.#pending.splice(0, taken);
    return { items, events };
  }

  async #maybePrune(): Promise<void> {
    const now = performance.now();
    if (now - this.#lastPrune < this.#t.pruneEveryMs) return;
    this.#lastPrune = now;
    try {
      await this.#storage.eventPrune({ olderThanMs: this.#t.feedMaxAgeMs, keep: this.#t.feedMaxEvents });
    } catch (err) {
      if (err instanceof StorageClosedError) return this.#close();
      this.#logger.debug('fleet events: pruning the feed failed', { error: messageOf(err) });
    }
  }

  /** The storage was closed: relay nothing more. */
  #close(): void {
    this.#closed = true;
    this.#pending = [];
    this.#dropped = 0;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#update();
  }
}
