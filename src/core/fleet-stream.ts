/**
 * `queue.events({ fleet: true })`: one fleet subscriber. It announces itself with a presence row
 * (`eventSubscriberBeat` every {@link STREAM_DEFAULTS.beatMs}, expiring after
 * {@link STREAM_DEFAULTS.ttlMs} unrenewed), which switches on the relays of every process, and
 * reads the change feed from the head its first beat returned: at once after each append on
 * drivers that push (`eventListen`, PostgreSQL), else every {@link STREAM_DEFAULTS.pollMs}; up to
 * {@link STREAM_DEFAULTS.readLimit} events per read, reading again at once while reads come back
 * full. A jump in feed ids means events were pruned before it read them: it yields an
 * `events.gap` (`pruned`). Its buffer holds at most `bufferSize` events; when the consumer is
 * slower, the oldest are dropped and counted, and the count comes out as an `events.gap`
 * (`overflow`) ahead of the rest. Leaving the loop removes the presence row and stops everything;
 * a closed storage ends the stream.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { messageOf, StorageClosedError } from '../errors.js';
import type { EventRow, Storage, Unlisten } from '../storage/storage.js';
import type { FleetEvent, Logger } from '../types.js';
import { decodeEvent } from './fleet-codec.js';
import type { EventRelay } from './fleet-relay.js';

/** Options of `queue.events({ fleet: true })`. */
export interface FleetEventStreamOptions {
  /** Every process's job events (read from the storage's change feed) instead of this process's. */
  fleet: true;
  /**
   * Most events buffered for a slow consumer: an integer from 1 to 1000000. When full, the oldest
   * are dropped and counted, and an `events.gap` with reason `overflow` says how many.
   * @default 10000
   */
  bufferSize?: number;
}

/** The subscriber's timings. @internal */
export interface StreamTimings {
  /** Time between two presence beats (ms). */
  beatMs: number;
  /** A presence row expires this long after its last beat (ms). */
  ttlMs: number;
  /** Time between two reads of the feed when the storage cannot push (ms). */
  pollMs: number;
  /** Time between two reads of the feed when it can (a safety net for lost notifications, ms). */
  listenPollMs: number;
  /** Most events per read. */
  readLimit: number;
  /** Longest wait after failed reads (ms; doubling from `pollMs`). */
  maxBackoffMs: number;
  /** Longest wait of `return()` for the database to remove the presence row (ms; else it expires). */
  returnWaitMs: number;
}

/** The documented defaults (docs/observability.md, "Fleet events"). @internal */
export const STREAM_DEFAULTS: Readonly<StreamTimings> = Object.freeze({
  beatMs: 3_000,
  ttlMs: 10_000,
  pollMs: 200,
  listenPollMs: 2_000,
  readLimit: 500,
  maxBackoffMs: 5_000,
  returnWaitMs: 3_000,
});

/** A fleet subscription as an async iterator. See the module docs. @internal */
export class FleetStream implements AsyncIterableIterator<FleetEvent> {
  readonly #storage: Storage;
  readonly #logger: Logger;
  readonly #cap: number;
  readonly #t: StreamTimings;
  readonly #id = `sub:${hostname().slice(0, 200)}:${process.pid}:${randomBytes(6).toString('hex')}`;
  readonly #buffer: FleetEvent[] = [];
  #dropped = 0;
  #waiter: ((r: IteratorResult<FleetEvent>) => void) | undefined;
  #done = false;
  #cursor: number | undefined;
  #started!: () => void;
  readonly #release: () => void;
  #beatTimer: NodeJS.Timeout | undefined;
  #sleepTimer: NodeJS.Timeout | undefined;
  #wakeSleep: (() => void) | undefined;
  /** A notification came while a read was in flight: read again at once. */
  #again = false;
  #unlisten: Unlisten | undefined;
  #backoff: number;
  /** The beat in flight: `return()` waits for it, so its upsert cannot land after the removal. */
  #beating: Promise<unknown> | undefined;

  /**
   * @param cap the buffer size (validated by the caller)
   * @param timings overrides of {@link STREAM_DEFAULTS} (tests)
   */
  constructor(storage: Storage, relay: EventRelay | undefined, logger: Logger, cap: number, timings: Partial<StreamTimings> = {}) {
    this.#storage = storage;
    this.#logger = logger;
    this.#cap = cap;
    this.#t = { ...STREAM_DEFAULTS, ...timings };
    this.#backoff = this.#t.pollMs;
    const started = new Promise<void>((resolve) => (this.#started = resolve));
    this.#release = relay?.retainLocal(started) ?? (() => {});
    void this.#pump();
  }

  /** The next event (a gap notice first when events were dropped for a slow consumer). */
  next(): Promise<IteratorResult<FleetEvent>> {
    if (this.#dropped > 0) {
      const missed = this.#dropped;
      this.#dropped = 0;
      return Promise.resolve({ value: { type: 'events.gap', missed, reason: 'overflow', at: new Date() }, done: false });
    }
    const e = this.#buffer.shift();
    if (e !== undefined) return Promise.resolve({ value: e, done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  /** Ends the subscription: stops reading and beating, and removes the presence row. */
  async return(): Promise<IteratorResult<FleetEvent>> {
    if (!this.#done) {
      this.#end(false);
      const beating = this.#beating;
      const remove = (async () => {
        await beating?.catch(() => {});
        await this.#storage.eventSubscriberRemove({ id: this.#id });
      })().catch(() => {});
      // A hung database cannot hold the caller: the row then expires by itself (ttlMs).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([remove, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#t.returnWaitMs)))]);
      clearTimeout(timer);
    }
    // Released once the presence row is gone, so the relay's next check finds no stale row.
    this.#release();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<FleetEvent> {
    return this;
  }

  /** Stops everything; `release`: let the relay go now (else the caller does, later). */
  #end(release = true): void {
    this.#done = true;
    this.#started();
    if (release) this.#release();
    if (this.#beatTimer !== undefined) clearInterval(this.#beatTimer);
    this.#beatTimer = undefined;
    this.#wakeSleep?.();
    const unlisten = this.#unlisten;
    this.#unlisten = undefined;
    if (unlisten) void unlisten().catch(() => {});
    this.#buffer.length = 0;
    this.#dropped = 0;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  #push(e: FleetEvent): void {
    const w = this.#waiter;
    if (w !== undefined && this.#dropped === 0) {
      this.#waiter = undefined;
      w({ value: e, done: false });
      return;
    }
    this.#buffer.push(e);
    if (this.#buffer.length > this.#cap) {
      // A dropped gap notice stands for every event it announced: they are counted on.
      const old = this.#buffer.shift()!;
      this.#dropped += old.type === 'events.gap' ? old.missed : 1;
    }
  }

  /** The read loop: first beat (the starting point), then reads until the stream ends. */
  async #pump(): Promise<void> {
    while (!this.#done) {
      try {
        if (this.#cursor === undefined) await this.#begin();
        else if (await this.#readOnce()) continue;
        this.#backoff = this.#t.pollMs;
        await this.#sleep(this.#unlisten !== undefined ? this.#t.listenPollMs : this.#t.pollMs);
      } catch (err) {
        if (err instanceof StorageClosedError) return this.#end();
        this.#logger.warn('fleet events: reading the feed failed; retrying', { error: messageOf(err), retryInMs: this.#backoff });
        await this.#sleep(this.#backoff);
        this.#backoff = Math.min(this.#backoff * 2, this.#t.maxBackoffMs);
      }
    }
  }

  /** The first beat: presence announced, starting point read; then the beat timer and the listener. */
  async #begin(): Promise<void> {
    const { headId } = await this.#beatOnce();
    if (this.#done) return;
    this.#cursor = headId;
    this.#started();
    this.#beatTimer = setInterval(() => void this.#beat(), this.#t.beatMs);
    this.#beatTimer.unref();
    if (this.#storage.eventListen) {
      try {
        const unlisten = await this.#storage.eventListen(() => this.#wake());
        if (this.#done) void unlisten().catch(() => {});
        else this.#unlisten = unlisten;
      } catch (err) {
        this.#logger.warn('fleet events: could not listen for appends; polling', { error: messageOf(err) });
      }
    }
  }

  async #beat(): Promise<void> {
    try {
      await this.#beatOnce();
    } catch (err) {
      if (err instanceof StorageClosedError) this.#end();
      else this.#logger.warn('fleet events: renewing the subscription failed', { error: messageOf(err) });
    }
  }

  /** One presence beat, remembered while in flight. */
  #beatOnce(): Promise<{ headId: number }> {
    const p = this.#storage.eventSubscriberBeat({ id: this.#id, ttlMs: this.#t.ttlMs });
    this.#beating = p;
    void p.then(
      () => this.#beating === p && (this.#beating = undefined),
      () => this.#beating === p && (this.#beating = undefined),
    );
    return p;
  }

  /** One read; true when it came back full (or a notification came meanwhile): read again at once. */
  async #readOnce(): Promise<boolean> {
    this.#again = false;
    const rows = await this.#storage.eventReadAfter({ afterId: this.#cursor!, limit: this.#t.readLimit });
    if (this.#done) return false;
    for (const row of rows) this.#take(row);
    return rows.length === this.#t.readLimit || this.#again;
  }

  #take(row: EventRow): void {
    const cursor = this.#cursor!;
    if (row.id <= cursor) return;
    if (row.id > cursor + 1) this.#push({ type: 'events.gap', missed: row.id - cursor - 1, reason: 'pruned', at: new Date() });
    this.#cursor = row.id;
    const e = decodeEvent(row);
    if (e !== undefined) this.#push(e);
    else this.#logger.warn('fleet events: skipped an event that could not be read', { id: row.id, type: row.type });
  }

  #wake(): void {
    if (this.#wakeSleep !== undefined) this.#wakeSleep();
    else this.#again = true;
  }

  /** Waits `ms`, or less when woken (an append was notified, or the stream ended). */
  #sleep(ms: number): Promise<void> {
    if (this.#done) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(this.#sleepTimer);
        this.#sleepTimer = undefined;
        this.#wakeSleep = undefined;
        resolve();
      };
      this.#wakeSleep = finish;
      this.#sleepTimer = setTimeout(finish, ms);
    });
  }
}
