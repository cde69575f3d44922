/**
 * The live feed behind every open page: one shared read of the counts and queues per interval,
 * and one fleet event subscription counting completions and failures, however many pages are
 * open. It runs only while at least one page listens, so its cost grows with the dashboards
 * being watched, not with the jobs: every count is capped at {@link COUNT_CAP}
 * (`queue.stats({ cap })`, `queue.queues({ cap })`), so a read never counts more than about that
 * many index entries per status, however many jobs the storage keeps.
 * @module
 */
import type { FleetEvent, JobCounts, Queue, QueueInfo } from '../index.js';

/** Width of one bucket of the throughput series, in ms. */
export const BUCKET_MS = 10_000;
/** Buckets kept: one hour. */
export const BUCKETS = 360;
/** Buckets the series shows at least (ten minutes), so a young feed still draws a time axis. */
const MIN_BUCKETS = 60;
/** Most changed job ids carried by one snapshot; beyond that `changedOverflow` is set. */
const MAX_CHANGED = 200;
/** Counts are exact up to this; a count above it reads `COUNT_CAP + 1` and the pages show `100,000+`. */
export const COUNT_CAP = 100_000;

/** Counts per status and the queues, each count capped at {@link COUNT_CAP}. */
export interface CappedCounts {
  /** Jobs per status; a value above `countCap` means "more than `countCap`". */
  stats: JobCounts;
  /** Every queue; its counts capped the same way. */
  queues: QueueInfo[];
  /** Counts are exact up to this ({@link COUNT_CAP}). */
  countCap: number;
}

/** Completions and failures per {@link BUCKET_MS}, since the feed started watching. */
export interface ThroughputSeries {
  /** Start of each bucket, ms since the epoch, oldest first. */
  at: number[];
  /** Jobs completed in each bucket (fleet-wide, as fleet events report them). */
  completed: number[];
  /** Jobs that failed for good in each bucket. */
  failed: number[];
  /** Attempts that failed and will be retried, in each bucket. */
  retried: number[];
}

/** What a live page receives at each change. */
export interface LiveSnapshot {
  /** Grows by one at each change: a page refetches what it shows when it changed. */
  version: number;
  /** When the counts were read (server clock, ms since the epoch). */
  at: number;
  /** Jobs per status; a value above `countCap` means "more than `countCap`". */
  stats: JobCounts;
  /** Every queue (counts capped the same way). */
  queues: QueueInfo[];
  /** Counts are exact up to this ({@link COUNT_CAP}); above it they read `countCap + 1`. */
  countCap: number;
  /** Ids of the jobs that events said changed since the previous snapshot. */
  changed: string[];
  /** More jobs changed than `changed` holds: refetch everything. */
  changedOverflow: boolean;
  /** The last read failed: this message says why (the other fields are from the last good read). */
  error?: string;
}

type Listener = (snapshot: LiveSnapshot) => void;

/** One feed per dashboard. @internal */
export class LiveFeed {
  readonly #queue: Queue;
  readonly #interval: number;
  readonly #countCap: number;
  readonly #listeners = new Set<Listener>();
  readonly #closers = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;
  #events: AsyncIterableIterator<FleetEvent> | undefined;
  #last: LiveSnapshot | undefined;
  #lastKey = '';
  #changed = new Set<string>();
  #overflow = false;
  #version = 0;
  #closed = false;
  readonly #series: { start: number; completed: number; failed: number; retried: number }[] = [];

  /** @param queue the queue read @param interval ms between reads @param countCap counts are exact up to this @default COUNT_CAP */
  constructor(queue: Queue, interval: number, countCap = COUNT_CAP) {
    this.#queue = queue;
    this.#interval = interval;
    this.#countCap = countCap;
  }

  /** Pages listening now. */
  get listeners(): number {
    return this.#listeners.size;
  }

  /** Adds a listener (it gets the latest snapshot at once, when there is one); returns its removal. */
  subscribe(listener: Listener): () => void {
    if (this.#closed) return () => undefined;
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#start();
    else if (this.#last !== undefined) listener(this.#last);
    return () => {
      if (this.#listeners.delete(listener) && this.#listeners.size === 0) this.#stop();
    };
  }

  /** The throughput series, every bucket of the last hour (empty buckets included). */
  series(now = Date.now()): ThroughputSeries {
    const out: ThroughputSeries = { at: [], completed: [], failed: [], retried: [] };
    const last = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const byStart = new Map(this.#series.map((b) => [b.start, b]));
    const first = this.#series[0]?.start ?? last;
    const from = Math.max(Math.min(first, last - (MIN_BUCKETS - 1) * BUCKET_MS), last - (BUCKETS - 1) * BUCKET_MS);
    for (let start = from; start <= last; start += BUCKET_MS) {
      const b = byStart.get(start);
      out.at.push(start);
      out.completed.push(b?.completed ?? 0);
      out.failed.push(b?.failed ?? 0);
      out.retried.push(b?.retried ?? 0);
    }
    return out;
  }

  /** Counts are exact up to this ({@link COUNT_CAP} unless the feed was made with another). */
  get countCap(): number {
    return this.#countCap;
  }

  /** One bounded read of the counts and the queues (also the overview's, at each page load). */
  async counts(): Promise<CappedCounts> {
    const [stats, queues] = await Promise.all([this.#queue.stats({ cap: this.#countCap }), this.queues()]);
    return { stats, queues, countCap: this.#countCap };
  }

  /** Every queue, its counts capped at {@link countCap} (one bounded read). */
  queues(): Promise<QueueInfo[]> {
    return this.#queue.queues({ cap: this.#countCap });
  }

  /** Calls `fn` when the feed closes (at once when it is closed). */
  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#closers.add(fn);
  }

  /** Stops everything; listeners are dropped and every `onClose` callback runs. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#stop();
    for (const fn of this.#closers) fn();
    this.#closers.clear();
  }

  #start(): void {
    this.#changed.clear();
    this.#overflow = false;
    this.#events = this.#queue.events({ fleet: true, bufferSize: 10_000 });
    void this.#follow(this.#events);
    void this.#tick();
  }

  #stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const events = this.#events;
    this.#events = undefined;
    void events?.return?.().catch(() => undefined);
    this.#last = undefined;
    this.#lastKey = '';
  }

  async #follow(events: AsyncIterableIterator<FleetEvent>): Promise<void> {
    try {
      for await (const e of events) this.#count(e);
    } catch {
      // The storage closed or failed: the counts go on; the series stays as it was.
    }
  }

  #count(e: FleetEvent): void {
    if (e.type === 'events.gap') {
      this.#overflow = true;
      return;
    }
    const id = 'job' in e ? e.job.id : e.jobId;
    if (this.#changed.size < MAX_CHANGED) this.#changed.add(id);
    else this.#overflow = true;
    if (e.type !== 'job.completed' && e.type !== 'job.failed' && e.type !== 'job.retrying') return;
    const start = Math.floor(e.at.getTime() / BUCKET_MS) * BUCKET_MS;
    let b = this.#series.find((x) => x.start === start);
    if (b === undefined) {
      b = { start, completed: 0, failed: 0, retried: 0 };
      this.#series.push(b);
      this.#series.sort((x, y) => x.start - y.start);
      while (this.#series.length > BUCKETS) this.#series.shift();
    }
    if (e.type === 'job.completed') b.completed++;
    else if (e.type === 'job.failed') b.failed++;
    else b.retried++;
  }

  async #tick(): Promise<void> {
    const events = this.#events;
    let snapshot: LiveSnapshot | undefined;
    try {
      const { stats, queues, countCap } = await this.counts();
      const key = JSON.stringify([stats, queues.map((q) => ({ ...q, oldestPendingAgeMs: undefined }))]);
      if (key !== this.#lastKey || this.#changed.size > 0 || this.#overflow || this.#last === undefined) {
        this.#lastKey = key;
        snapshot = { version: ++this.#version, at: Date.now(), stats, queues, countCap, changed: [...this.#changed], changedOverflow: this.#overflow };
      }
    } catch (e) {
      if (this.#last !== undefined) snapshot = { ...this.#last, version: ++this.#version, changed: [], changedOverflow: false, error: `the counts could not be read (${typeof (e as { code?: unknown } | null)?.code === 'string' ? (e as { code: string }).code : 'INTERNAL'})` };
    }
    // Stopped (or stopped and started again) while reading: this tick's loop is over.
    if (events !== this.#events || events === undefined) return;
    if (snapshot !== undefined) {
      this.#changed = new Set();
      this.#overflow = false;
      this.#last = snapshot;
      for (const l of this.#listeners) l(snapshot);
    }
    this.#timer = setTimeout(() => void this.#tick(), this.#interval);
    this.#timer.unref();
  }
}
