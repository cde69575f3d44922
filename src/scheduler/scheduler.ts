/**
 * The scheduler service: turns due schedule slots into jobs, exactly once across every
 * scheduler sharing a storage. A `Worker` composes it (`scheduler: true`); tests call `tick()`.
 *
 * One tick:
 * 1. `scheduleListDue` (next_run_at <= the storage's now).
 * 2. For each row, rebuild its {@link Schedule} from `specJson`, read `missed` from
 *    `optionsJson`, and plan the fire with {@link planFires}.
 * 3. `scheduleFire`: a compare-and-set on `next_run_at` (expected = the value read) that also
 *    inserts the slot's jobs in the same transaction. A lost CAS means another scheduler fired
 *    that slot: nothing to do. A fire that throws leaves the row due, so the next tick retries it.
 *
 * Between ticks the loop sleeps until the earliest known next fire (learned from its own fires,
 * or from `scheduleList` when it knows none), at most `intervalMs`.
 *
 * "No overlap" is the caller's business: `buildJobs` sets a `uniqueKey`, and the storage skips a
 * job whose key clashes with a live one. Times come from the storage's clock (`clockNow`) unless
 * a `clock` is injected, so skewed host clocks cannot fire a slot early.
 * @module
 */
import { InvalidArgumentError, messageOf } from '../errors.js';
import { realClock, type Clock, type TimerHandle } from '../internal/clock.js';
import { silentLogger } from '../internal/logger.js';
import type { JobInsert, ScheduleRow, Storage } from '../storage/storage.js';
import type { Logger } from '../types.js';
import { DEFAULT_MISSED_GRACE_MS, MAX_CATCH_UP_FIRES, missedPolicyOf, planFires } from './missed.js';
import { scheduleFromJson, type Schedule } from './schedules.js';

/** Options of `new Scheduler(...)`. */
export interface SchedulerOptions {
  /** Where schedules live and jobs are inserted. */
  storage: Storage;
  /**
   * The jobs of one slot of one schedule (usually one). Called again on retry, so it must not
   * have side effects; set `uniqueKey` to forbid overlapping runs of a schedule.
   */
  buildJobs: (row: ScheduleRow, slotAt: number) => JobInsert[] | Promise<JobInsert[]>;
  /** Structured logger. @default silent */
  logger?: Logger;
  /** Time source (ms) used to plan fires. @default the storage's clock (`storage.clockNow()`) */
  clock?: () => number;
  /**
   * The host clock the timer loop sleeps on and measures its wake-up hints with (a virtual one
   * in the testing kit). @default the real clock (`Date.now`, `setTimeout`)
   * @internal
   */
  timers?: Clock;
  /** Longest sleep between ticks of the timer loop, in ms. @default 1000 */
  intervalMs?: number;
  /** Most schedules handled per tick. @default 100 */
  batchSize?: number;
  /** Grace period of the `'skip'` policy, in ms. @default 60000 */
  missedGraceMs?: number;
  /** Cap of the `'all'` policy per catch-up. @default 1000 */
  maxCatchUpFires?: number;
  /**
   * Called after a fire this scheduler won, e.g. to wake local claim loops of `queues` (the
   * jobs were inserted behind the queue's back). Errors it throws are logged and ignored.
   */
  onFired?: (fire: ScheduleFired) => void;
}

/** What `onFired` receives: one won compare-and-set. */
export interface ScheduleFired {
  /** The schedule name. */
  readonly name: string;
  /** The latest slot handled (ms). */
  readonly slotAt: number;
  /** Slots fired (ms), oldest first; empty when they were skipped. */
  readonly slots: readonly number[];
  /** Ids of the jobs inserted (unique-key clashes left out). */
  readonly jobIds: readonly string[];
  /** Queues of the inserted jobs. */
  readonly queues: readonly string[];
  /** The schedule's new next_run_at (ms). */
  readonly nextRunAt: number;
}

/** What one tick did, for the timer loop. */
interface TickOutcome {
  inserted: number;
  /** A fire or the listing failed: do not tick again at once. */
  failed: boolean;
  /** The listing returned a full page and something advanced: tick again at once. */
  more: boolean;
}

/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2_147_483_647;

/** Shortest sleep until a hinted fire: a clock disagreement never makes the loop spin. */
const MIN_HINT_MS = 5;

/** Parsed specs kept per instance; bounded so changed specs do not pile up. */
const SPEC_CACHE_MAX = 1000;

/**
 * Fires due schedules into jobs. Safe to run in every worker of every process.
 * @example
 * const scheduler = new Scheduler({ storage, buildJobs: (row, slotAt) => [makeJob(row, slotAt)] });
 * scheduler.start();
 * // ...
 * await scheduler.stop();
 */
export class Scheduler {
  readonly #storage: Storage;
  readonly #buildJobs: SchedulerOptions['buildJobs'];
  readonly #logger: Logger;
  readonly #clock: (() => number) | undefined;
  readonly #timers: Clock;
  readonly #intervalMs: number;
  readonly #batchSize: number;
  readonly #graceMs: number;
  readonly #maxFires: number;
  readonly #onFired: SchedulerOptions['onFired'];
  readonly #specs = new Map<string, Schedule>();

  #running = false;
  /** Bumped by every start/stop, so a loop iteration of an earlier run never re-arms. */
  #generation = 0;
  #timer: TimerHandle | undefined;
  /** `wake()` was called while a tick was in flight: tick again right after it. */
  #wakeRequested = false;
  /** Serializes ticks: the loop's and direct `tick()` calls never overlap. */
  #chain: Promise<unknown> = Promise.resolve();
  /** Local-clock instant of the earliest next_run_at this scheduler set (a wake-up hint). */
  #hintAt: number | undefined;

  /**
   * @param options storage, job builder, and timing
   * @throws InvalidArgumentError on a missing storage or builder, or a non-positive interval
   */
  constructor(options: SchedulerOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('Scheduler options must be an object');
    if (options.storage === null || typeof options.storage !== 'object') throw new InvalidArgumentError('Scheduler: storage is required');
    if (typeof options.buildJobs !== 'function') throw new InvalidArgumentError('Scheduler: buildJobs must be a function');
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new InvalidArgumentError('Scheduler: clock must be a function');
    if (options.onFired !== undefined && typeof options.onFired !== 'function') throw new InvalidArgumentError('Scheduler: onFired must be a function');
    this.#storage = options.storage;
    this.#buildJobs = options.buildJobs;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock;
    this.#timers = options.timers ?? realClock;
    this.#intervalMs = Math.min(positive(options.intervalMs, 'intervalMs', 1000), MAX_TIMER_MS);
    this.#batchSize = positive(options.batchSize, 'batchSize', 100, true);
    this.#graceMs = positive(options.missedGraceMs, 'missedGraceMs', DEFAULT_MISSED_GRACE_MS);
    this.#maxFires = positive(options.maxCatchUpFires, 'maxCatchUpFires', MAX_CATCH_UP_FIRES, true);
    this.#onFired = options.onFired;
  }

  /** Whether the timer loop is running. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Starts the timer loop: a tick now, then one whenever the earliest known next fire comes
   * due or `intervalMs` passes, whichever is sooner. The timer is unref'd (it does not keep the
   * process alive). Calling it while running does nothing.
   * @example scheduler.start()
   */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#generation++;
    this.#arm(0);
  }

  /**
   * Stops the timer loop and waits for a tick in flight. Safe before `start()` and when
   * called twice.
   * @example await scheduler.stop()
   */
  async stop(): Promise<void> {
    this.#running = false;
    this.#generation++;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#chain.catch(() => {});
  }

  /**
   * Makes a running loop tick now and re-read when the earliest schedule comes due (e.g. after
   * this process defined a schedule). No-op when stopped.
   * @example await queue.schedule('x', every(500)); scheduler.wake()
   */
  wake(): void {
    if (!this.#running) return;
    this.#hintAt = undefined; // a schedule may have changed: re-read the earliest fire time
    if (this.#timer === undefined) {
      this.#wakeRequested = true; // a tick is in flight
      return;
    }
    this.#timers.clearTimeout(this.#timer);
    this.#arm(0);
  }

  /**
   * Fires every due slot once and resolves with how many jobs were inserted. Ticks never
   * overlap within one instance; across instances the storage CAS decides. Failures of single
   * schedules are logged and retried on the next tick.
   * @example const inserted = await scheduler.tick()
   * @throws (rejects) StorageError when listing due schedules or reading the clock fails
   */
  tick(): Promise<number> {
    return this.#serial(() => this.#tickOnce()).then((o) => o.inserted);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.catch(() => {}).then(fn);
    this.#chain = run;
    return run;
  }

  #arm(delayMs: number): void {
    const generation = this.#generation;
    // #loop does not reject: a failed tick is logged and re-armed.
    this.#timer = this.#timers.setTimeout(() => void this.#loop(generation), delayMs, true);
  }

  async #loop(generation: number): Promise<void> {
    this.#timer = undefined;
    if (!this.#running || generation !== this.#generation) return;
    this.#wakeRequested = false;
    let outcome: TickOutcome;
    try {
      outcome = await this.#serial(() => this.#tickOnce());
    } catch (e) {
      this.#logger.error('scheduler tick failed', { error: messageOf(e) });
      outcome = { inserted: 0, failed: true, more: false };
    }
    if (!this.#running || generation !== this.#generation) return;
    this.#arm(this.#wakeRequested ? 0 : this.#nextDelay(outcome));
  }

  /** Until the earliest known next fire, at most intervalMs; a failure never makes it spin. */
  #nextDelay(o: TickOutcome): number {
    if (o.more && !o.failed) return 0;
    const hint = this.#hintAt;
    if (hint === undefined) return this.#intervalMs;
    const wait = hint - this.#timers.now();
    if (wait <= 0) {
      this.#hintAt = undefined;
      return o.failed ? this.#intervalMs : 0;
    }
    return Math.min(wait, this.#intervalMs);
  }

  async #tickOnce(): Promise<TickOutcome> {
    const rows = await this.#storage.scheduleListDue({ limit: this.#batchSize });
    const out: TickOutcome = { inserted: 0, failed: false, more: false };
    if (rows.length > 0) {
      const now = this.#clock ? this.#clock() : await this.#storage.clockNow();
      const localNow = this.#timers.now();
      let advanced = 0;
      for (const row of rows) {
        const r = await this.#fireRow(row, now, localNow);
        if (r === 'failed') out.failed = true;
        else if (typeof r === 'number') {
          out.inserted += r;
          advanced++;
        } else if (r === 'lost') advanced++;
      }
      out.more = rows.length >= this.#batchSize && advanced > 0;
    }
    if (!out.more && !out.failed && (this.#hintAt === undefined || this.#hintAt <= this.#timers.now())) await this.#refreshHint();
    return out;
  }

  /**
   * Learns when the earliest schedule comes due, so the loop wakes at that slot instead of up
   * to `intervalMs` late — late enough, for a schedule faster than the interval, that several
   * slots are due at once and the missed policy would treat all but one as missed. Needed
   * when no fire of this scheduler set the hint: at start, after a fire won elsewhere, or for
   * a schedule defined elsewhere.
   */
  async #refreshHint(): Promise<void> {
    try {
      const all = await this.#storage.scheduleList();
      if (all.length === 0) {
        this.#hintAt = undefined;
        return;
      }
      const now = this.#clock ? this.#clock() : await this.#storage.clockNow();
      const earliest = all.reduce((min, r) => Math.min(min, r.nextRunAt), Infinity);
      this.#hintAt = this.#timers.now() + Math.max(MIN_HINT_MS, earliest - now);
    } catch (e) {
      this.#logger.warn('reading the next schedule fire time failed', { error: messageOf(e) });
    }
  }

  /** Fires one row: the number of jobs inserted, 'lost' (CAS lost), 'not-due' or 'failed'. */
  async #fireRow(row: ScheduleRow, now: number, localNow: number): Promise<number | 'lost' | 'not-due' | 'failed'> {
    let jobs: JobInsert[] = [];
    let plan: ReturnType<typeof planFires>;
    try {
      const schedule = this.#schedule(row.specJson);
      const missed = missedPolicyOf(row.optionsJson);
      plan = planFires({ schedule, nextRunAt: row.nextRunAt, now, missed, graceMs: this.#graceMs, maxFires: this.#maxFires });
      if (plan.slotAt === undefined) return 'not-due';
      for (const slot of plan.slots) jobs = jobs.concat(await this.#buildJobs(row, slot));
      if (plan.dropped) {
        this.#logger.warn('schedule missed slots', { schedule: row.name, missed, from: row.nextRunAt, fired: plan.slots.length, next: plan.nextRunAt });
      }
    } catch (e) {
      this.#logger.error('schedule cannot be fired', { schedule: row.name, error: messageOf(e) });
      return 'failed';
    }
    let ids: string[] | null;
    try {
      ids = await this.#storage.scheduleFire({
        name: row.name,
        expectedNextRunAt: row.nextRunAt,
        nextRunAt: plan.nextRunAt,
        slotAt: plan.slotAt,
        jobs,
      });
    } catch (e) {
      this.#logger.warn('schedule fire failed; retrying next tick', { schedule: row.name, slotAt: plan.slotAt, error: messageOf(e) });
      return 'failed';
    }
    if (ids === null) {
      this.#logger.debug('schedule slot already fired elsewhere', { schedule: row.name, slotAt: plan.slotAt });
      return 'lost';
    }
    this.#logger.debug('schedule fired', { schedule: row.name, slotAt: plan.slotAt, jobs: ids, nextRunAt: plan.nextRunAt });
    const hintAt = localNow + (plan.nextRunAt - now);
    if (this.#hintAt === undefined || hintAt < this.#hintAt || this.#hintAt <= this.#timers.now()) this.#hintAt = hintAt;
    if (this.#onFired) {
      const inserted = new Set(ids);
      const queues = [...new Set(jobs.filter((j) => inserted.has(j.id)).map((j) => j.queue))];
      try {
        this.#onFired({ name: row.name, slotAt: plan.slotAt, slots: plan.slots, jobIds: ids, queues, nextRunAt: plan.nextRunAt });
      } catch (e) {
        this.#logger.warn('scheduler onFired callback threw', { schedule: row.name, error: messageOf(e) });
      }
    }
    return ids.length;
  }

  #schedule(specJson: string): Schedule {
    let s = this.#specs.get(specJson);
    if (s === undefined) {
      s = scheduleFromJson(specJson);
      if (this.#specs.size >= SPEC_CACHE_MAX) this.#specs.clear();
      this.#specs.set(specJson, s);
    }
    return s;
  }
}

function positive(value: unknown, name: string, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new InvalidArgumentError(`Scheduler: ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`);
  }
  return value;
}
