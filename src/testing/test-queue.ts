/**
 * `createTestQueue()`: a queue on in-memory SQLite and a virtual clock, for users' tests of
 * jobs, workflows and schedules that span hours or days. Nothing runs by itself: `t.drain()`
 * runs what is due now, `t.clock.advance(ms)` moves time through every instant at which
 * something comes due. The rules are in docs/workflows.md, "Testing workflows".
 * @module
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, InvalidStateError } from '../errors.js';
import { checkOptions } from '../core/validate.js';
import { defaultBackoff } from '../internal/backoff.js';
import { Queue, type QueueOptions } from '../queue/queue.js';
import { SqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import { workerBackoff, type BackoffFn } from '../worker/retry-policy.js';
import { TestDriver, type TestRun } from './test-driver.js';
import { VirtualClock } from './virtual-clock.js';

/** Where a test queue's virtual clock starts unless told otherwise: 2025-01-01T00:00:00.000Z (a Wednesday). */
export const TEST_CLOCK_START = new Date(Date.UTC(2025, 0, 1));

/** Options of {@link createTestQueue}. */
export interface TestQueueOptions {
  /** Where the virtual clock starts. @default TEST_CLOCK_START (2025-01-01T00:00:00.000Z) */
  now?: Date;
  /** Options of the `Queue` (logger, retention, default retries, payload limit). */
  queue?: QueueOptions;
  /**
   * Retry delay after a failed attempt (ms), as `WorkerOptions.backoff`. `retryAfter(ms)` is
   * honoured as given either way.
   * @default the engine's default curve without its jitter: 1 s, 2 s, 4 s, … capped at 1 h
   */
  backoff?: BackoffFn;
  /** Lease of a run, on the virtual clock (ms); a parked run's lease is renewed at every instant. @default 30000 */
  leaseTimeout?: number;
  /**
   * Most runs one call of `drain()`, `clock.advance()` or `clock.set()` starts, and most instants
   * it visits. Past it the call rejects with `InvalidStateError` (naming the busiest job type)
   * instead of running for ever — 100 years of a schedule that fires every second, or jobs that
   * keep enqueueing each other. The next call starts a new count.
   * @default 10000
   */
  maxRuns?: number;
  /**
   * Real milliseconds the kit waits for a handler that neither finishes nor waits on
   * `t.clock.sleep` (time cannot move under it). Past it the run is abandoned (its abortSignal
   * fires) and the call rejects with `WaitTimeoutError` naming the job. `Infinity`: wait for ever.
   * @default 2000
   */
  stallTimeout?: number;
}

/** Options of {@link TestClock.sleep}. */
export interface TestSleepOptions {
  /** Rejects the sleep with the signal's reason when it aborts (pass `ctx.abortSignal`). */
  signal?: AbortSignal;
}

/**
 * A test queue's virtual clock. It is the clock of everything time-based in the queue: run-at
 * (`delay`, `runAt`, retry backoff, `retryAfter`), durable timers (`ctx.sleep`,
 * `ctx.sleepUntil`), signal-wait and fan-out timeouts, job timeouts, leases and schedules.
 */
export interface TestClock {
  /** The current virtual time. */
  now(): Date;
  /**
   * Moves time forward by `ms`, stopping at every instant in between at which something comes
   * due (a job's run-at, a timer, a wake-up, a deadline, a schedule slot, a job timeout) and
   * running what is due there, in order; then runs what is due at the target. Calls of
   * `advance`, `set` and `drain` run one after the other.
   * @throws (rejects) InvalidArgumentError when `ms` is not a finite number >= 0
   * @throws (rejects) InvalidStateError when called from a handler the test queue runs, or after `close()`
   */
  advance(ms: number): Promise<void>;
  /**
   * Moves time forward to `date` as {@link advance} does (every instant in between is visited).
   * @throws (rejects) InvalidArgumentError when `date` is not a valid Date or is before now
   */
  set(date: Date): Promise<void>;
  /**
   * Resolves when the virtual time reaches now + `ms` (`Infinity`: never; pair it with a
   * `signal`). Awaited in a handler, it stands for work that takes that long: the run is parked
   * (it keeps its slot and its lease) and time may move under it, so its job timeout can fire.
   * @throws (rejects) InvalidArgumentError when `ms` is not a number >= 0
   */
  sleep(ms: number, options?: TestSleepOptions): Promise<void>;
}

/** What {@link createTestQueue} returns. */
export interface TestQueue {
  /** The queue: register handlers, enqueue, schedule, signal, inspect, as usual. */
  readonly queue: Queue;
  /** Its storage (in-memory SQLite on the virtual clock). */
  readonly storage: SqliteStorage;
  /** The virtual clock. */
  readonly clock: TestClock;
  /** Every run the test queue made, in start order. */
  readonly runs: readonly TestRun[];
  /** The runs of one job type, in start order. */
  runsOf(type: string): TestRun[];
  /**
   * Runs everything due now — jobs, resumed workflows, fired timers and schedules, expired
   * fan-outs — one at a time, until nothing is due, then resolves. Jobs waiting for a later
   * instant or a signal stay `waiting`; a handler parked on `t.clock.sleep` stays running.
   * @throws (rejects) InvalidStateError when called from a handler the test queue runs, or after `close()`
   */
  drain(): Promise<void>;
  /** Abandons a parked run, stops and closes the storage. Safe to call twice. */
  close(): Promise<void>;
}

/** The backoff of a test queue by default: the default curve at the top of its jitter range. */
const noJitterBackoff: BackoffFn = (attempt) => defaultBackoff(attempt, () => 1);

/** The last instant a Date can hold (ms since the epoch). */
const MAX_DATE_MS = 8.64e15;

/** Longest lease a test queue takes (ms). */
const MAX_LEASE_MS = 2_147_483_647;

/**
 * Creates a queue on in-memory SQLite and a virtual clock, with a one-slot worker that runs only
 * inside `drain()` and `clock.advance()`.
 * @example
 * const t = await createTestQueue();
 * t.queue.register('daily-report', async () => { ... });
 * await t.queue.schedule('daily-report', daily(9, 0));
 * await t.clock.advance(3 * DAY);   // three reports, at 09:00 on each day
 * await t.close();
 * @throws (rejects) InvalidArgumentError on an invalid option (nothing is built)
 */
export async function createTestQueue(options: TestQueueOptions = {}): Promise<TestQueue> {
  const o = checkOptions<TestQueueOptions>(options, 'createTestQueue options', ['now', 'queue', 'backoff', 'leaseTimeout', 'maxRuns', 'stallTimeout']);
  if (o.now !== undefined && (!(o.now instanceof Date) || Number.isNaN(o.now.getTime()))) throw new InvalidArgumentError('now must be a valid Date');
  if (o.backoff !== undefined && typeof o.backoff !== 'function') throw new InvalidArgumentError('backoff must be a function');
  const leaseMs = o.leaseTimeout ?? 30_000;
  if (typeof leaseMs !== 'number' || !Number.isInteger(leaseMs) || leaseMs < 1 || leaseMs > MAX_LEASE_MS) {
    throw new InvalidArgumentError(`leaseTimeout must be an integer from 1 to ${MAX_LEASE_MS} ms`);
  }
  const maxRuns = o.maxRuns ?? 10_000;
  if (typeof maxRuns !== 'number' || !Number.isSafeInteger(maxRuns) || maxRuns < 1) throw new InvalidArgumentError('maxRuns must be a positive integer');
  const stallMs = o.stallTimeout ?? 2_000;
  if (typeof stallMs !== 'number' || Number.isNaN(stallMs) || stallMs < 1 || (Number.isFinite(stallMs) && stallMs > MAX_LEASE_MS)) {
    throw new InvalidArgumentError(`stallTimeout must be a number of ms from 1 to ${MAX_LEASE_MS}, or Infinity`);
  }
  const clock = new VirtualClock((o.now ?? TEST_CLOCK_START).getTime());
  const storage = new SqliteStorage(':memory:', { clock: () => clock.now() });
  let queue: Queue;
  try {
    await storage.migrate();
    queue = new Queue(storage, o.queue);
  } catch (err) {
    await storage.close();
    throw err;
  }
  const core = queue.core;
  core.clock = clock;
  const scheduler = queue.scheduleHost.makeScheduler(core.logger);
  const driver = new TestDriver({
    core,
    clock,
    tick: () => scheduler.tick(),
    backoff: o.backoff === undefined ? noJitterBackoff : workerBackoff(o.backoff, core.logger),
    leaseMs,
    maxRuns,
    stallMs,
    workerId: `test-queue:${randomBytes(6).toString('hex')}`,
  });
  return new VirtualTestQueue(queue, storage, clock, driver);
}

/** The test queue. */
class VirtualTestQueue implements TestQueue {
  readonly clock: TestClock;
  #chain: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(
    readonly queue: Queue,
    readonly storage: SqliteStorage,
    virtual: VirtualClock,
    private readonly driver: TestDriver,
  ) {
    this.clock = {
      now: () => new Date(virtual.now()),
      advance: (ms) => {
        if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return Promise.reject(new InvalidArgumentError(`advance() takes a finite number of ms >= 0, got ${describe(ms)}`));
        return this.#serial('clock.advance()', () => {
          const target = virtual.now() + ms;
          if (target > MAX_DATE_MS) throw new InvalidArgumentError(`advance(${ms}) goes past the last time a Date can hold (${new Date(MAX_DATE_MS).toISOString()})`);
          return driver.advanceTo(target);
        });
      },
      set: (date) => {
        if (!(date instanceof Date) || Number.isNaN(date.getTime())) return Promise.reject(new InvalidArgumentError(`set() takes a valid Date, got ${describe(date)}`));
        return this.#serial('clock.set()', () => {
          const now = virtual.now();
          if (date.getTime() < now) throw new InvalidArgumentError(`set() moves time forward only: ${date.toISOString()} is before ${new Date(now).toISOString()}`);
          return driver.advanceTo(date.getTime());
        });
      },
      sleep: (ms, opts = {}) => {
        if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) return Promise.reject(new InvalidArgumentError(`sleep() takes a number of ms >= 0, got ${describe(ms)}`));
        if (opts === null || typeof opts !== 'object') return Promise.reject(new InvalidArgumentError('sleep() options must be an object'));
        return driver.sleep(ms, opts.signal);
      },
    };
  }

  get runs(): readonly TestRun[] {
    return this.driver.runs;
  }

  runsOf(type: string): TestRun[] {
    return this.driver.runs.filter((r) => r.type === type);
  }

  drain(): Promise<void> {
    return this.#serial('drain()', () => this.driver.settle());
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Abandon the run in the slot (a drain may be waiting for it), let the call in progress
      // return, then make sure nothing it started is left.
      await this.driver.stop();
      await this.#chain.catch(() => {});
      await this.driver.stop();
      await this.storage.close();
    })();
    return this.#closing;
  }

  /** Runs `fn` after the calls before it; refuses calls from the kit's own handlers and after close. */
  #serial(name: string, fn: () => Promise<void>): Promise<void> {
    if (this.#closing) return Promise.reject(new InvalidStateError('the test queue is closed'));
    if (this.driver.inRun) {
      return Promise.reject(new InvalidStateError('drain(), clock.advance() and clock.set() cannot be called from a handler the test queue runs (it would wait for itself); use t.clock.sleep(ms) to let time pass in a handler'));
    }
    const p = this.#chain
      .catch(() => {})
      .then(() => {
        this.driver.begin(name);
        return fn();
      });
    this.#chain = p;
    return p;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (value instanceof Date) return 'an invalid Date';
  return value === null ? 'null' : typeof value;
}
