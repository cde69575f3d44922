/**
 * Small helpers shared by the workflow and worker tests (steps, fan-out, timers, signals,
 * cancellation, lifecycle): quick worker options, a started-worker handle, a gate a handler can
 * wait on, a storage wrapper whose calls a test can await (so "N claim cycles / heartbeats /
 * maintenance passes happened" is an event, not a sleep), and checks that a condition keeps
 * holding until such an event (or, where none exists, for a while).
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import type { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import type { Worker, WorkerOptions } from '../../src/worker/worker.js';
import { noRetry } from '../../src/errors.js';
import type { FanOutResult } from '../../src/workflow/job-context.js';
import type { ParamsOf, StorageMethod } from './faulty-storage.js';

/** Worker options that keep tests quick. */
export const fast = { pollInterval: 20, maintenanceInterval: 50, heartbeatInterval: 50, drainTimeout: 300, handleSignals: false } as const;

/** A started worker; `stop()` waits until it has stopped. */
export interface Started {
  worker: Worker;
  stop(): Promise<void>;
}

/** Workers started by {@link startWorker} and not stopped yet (so a failed test cannot leak one). */
const live = new Set<Started>();

/** Creates and starts a worker with the quick options (overridable). */
export function startWorker(queue: Queue, options: WorkerOptions = {}): Started {
  const worker = queue.newWorker({ ...fast, ...options });
  const done = worker.start();
  const started: Started = {
    worker,
    stop: async () => {
      live.delete(started);
      await worker.stop();
      await done;
    },
  };
  live.add(started);
  return started;
}

/**
 * Use in `afterEach`: stops every worker the test started and left running, so a failing test
 * neither disturbs the next one nor keeps the process alive — and fails when there was one, so
 * a test that forgets to stop its worker fails instead of being cleaned up silently.
 */
export async function stopAllWorkers(): Promise<void> {
  const leaked = [...live];
  if (leaked.length === 0) return;
  await Promise.all(leaked.map((w) => w.stop()));
  throw new Error(`${leaked.length} worker(s) started by startWorker() were never stopped by the test`);
}

/** A promise a handler can wait on until the test opens it. */
export class Gate {
  #open!: () => void;
  readonly promise: Promise<void> = new Promise<void>((resolve) => (this.#open = resolve));
  /** Lets every waiter through. */
  open(): void {
    this.#open();
  }
}

/**
 * Asserts that `cond()` stays true for `ms` (checked every 10 ms): for "nothing happens"
 * statements where no event exists to await. Prefer {@link holdsUntil} with an event of the
 * loop that would make it false (a {@link StorageWatch} call count).
 */
export async function holdsFor(cond: () => boolean | Promise<boolean>, ms: number, message: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    assert.ok(await cond(), message);
    await delay(10);
  }
  assert.ok(await cond(), message);
}

/** Arguments of the test child job registered by {@link registerChild}. */
export interface ChildArgs {
  v: number;
  /** ok: returns v * 10; fail: noRetry error; hang: waits for its abort signal; flaky: fails its first `failures` attempts. */
  mode?: 'ok' | 'fail' | 'hang' | 'flaky';
  /** Delay before acting, in ms. */
  delay?: number;
  failures?: number;
}

/** What the test child did. */
export interface ChildLog {
  started: number[];
  aborted: number[];
}

/** Registers a configurable child job type (for fan-outs) and returns its log. */
export function registerChild(queue: Queue, type = 'child'): ChildLog {
  const log: ChildLog = { started: [], aborted: [] };
  queue.register(type, async (a: ChildArgs, ctx) => {
    log.started.push(a.v);
    if (a.delay) await delay(a.delay);
    switch (a.mode ?? 'ok') {
      case 'fail':
        throw noRetry(new Error(`child ${a.v} failed`));
      case 'hang':
        await new Promise((resolve) => ctx.abortSignal.addEventListener('abort', resolve));
        log.aborted.push(a.v);
        throw ctx.abortSignal.reason;
      case 'flaky':
        if (ctx.job.attempt <= (a.failures ?? 1)) throw new Error(`child ${a.v} flaked on attempt ${ctx.job.attempt}`);
        break;
      case 'ok':
        break;
    }
    return a.v * 10;
  });
  return log;
}

/** Fan-out results as plain JSON (errors as messages), for a handler to return. */
export function summarize(results: readonly FanOutResult<unknown>[]): { index: number; value?: unknown; error?: string }[] {
  return results.map((r) => (r.error ? { index: r.index, error: r.error.message } : { index: r.index, value: r.value }));
}

/**
 * Asserts that `cond()` holds now and still holds once `event` has happened: for "nothing
 * happens while the loop that would do it runs N times" (`event` from a {@link StorageWatch}).
 * Only the two ends are checked, so `cond` must be one that cannot turn false and back (a
 * counter that stays put, a job still running, nothing aborted).
 */
export async function holdsUntil(cond: () => boolean | Promise<boolean>, event: Promise<unknown>, message: string): Promise<void> {
  assert.ok(await cond(), message);
  await event;
  assert.ok(await cond(), message);
}

/** A call a {@link StorageWatch} waiter counts: the method's params and what it returned. */
type CallFilter<M extends StorageMethod> = (params: ParamsOf<M>, result: Awaited<ReturnType<NonNullable<Storage[M]>>>) => boolean;

/** Options of {@link StorageWatch.next}. */
export interface WatchOptions<M extends StorageMethod> {
  /** Only calls that pass this count (e.g. heartbeats that renewed a given job); failed calls never do. */
  when?: CallFilter<M>;
  /** Rejects after this many ms without the calls (a loop that stopped must fail the test, not hang it). @default 10000 */
  timeout?: number;
}

interface Waiter {
  method: string;
  /** Only calls that started after this sequence number count. */
  after: number;
  left: number;
  when: ((params: never, result: never) => boolean) | undefined;
  done: () => void;
}

/**
 * A `Storage` wrapper (give `watch.storage` to the `Queue`) that lets a test await the calls a
 * queue and its workers make: `next('jobClaim', 3)` resolves once three claims that started
 * after it was called have returned — three claim cycles of the worker, an event instead of a
 * sleep of "a few poll intervals". Calls that throw count too (the loop ran). Works over a
 * `FaultyStorage` as well. Each wait has a timeout, whose timer also keeps the process alive
 * meanwhile (the worker's own timers are unref'd, and a paused worker over SQLite holds nothing
 * else).
 */
export class StorageWatch {
  /** The wrapped storage to hand to a `Queue`. */
  readonly storage: Storage;
  readonly #started = new Map<string, number>();
  readonly #inFlight = new Map<string, number>();
  readonly #waiters = new Set<Waiter>();
  readonly #idle = new Set<{ method: string | undefined; done: () => void }>();
  #seq = 0;

  /** @param inner the storage to forward every call to (not closed by the wrapper) */
  constructor(readonly inner: Storage) {
    const wrapped = new Map<PropertyKey, unknown>();
    this.storage = new Proxy(inner, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        let fn = wrapped.get(prop);
        if (fn === undefined) {
          fn = (...args: unknown[]) => this.#call(prop, (value as (...a: unknown[]) => unknown).bind(target), args);
          wrapped.set(prop, fn);
        }
        return fn;
      },
    });
  }

  /** Calls of `method` started so far. */
  calls(method: StorageMethod): number {
    return this.#started.get(method) ?? 0;
  }

  /** Calls of `method` (of any method when omitted) in flight now. */
  inFlight(method?: StorageMethod): number {
    if (method !== undefined) return this.#inFlight.get(method) ?? 0;
    let n = 0;
    for (const v of this.#inFlight.values()) n += v;
    return n;
  }

  /** Resolves once `n` calls of `method` that start from now on have returned or thrown (see {@link WatchOptions}). */
  next<M extends StorageMethod>(method: M, n = 1, opts: WatchOptions<M> = {}): Promise<void> {
    if (n <= 0) return Promise.resolve();
    return this.#wait(`${n} call(s) of ${method}`, opts.timeout, (done) => {
      const w: Waiter = { method, after: this.#seq, left: n, when: opts.when as Waiter['when'], done };
      this.#waiters.add(w);
      return () => this.#waiters.delete(w);
    });
  }

  /** Resolves once no call of `method` (of any method when omitted) is in flight. */
  idle(method?: StorageMethod, timeout?: number): Promise<void> {
    if (this.inFlight(method) === 0) return Promise.resolve();
    return this.#wait(`no call of ${method ?? 'any method'} in flight`, timeout, (done) => {
      const i = { method, done };
      this.#idle.add(i);
      return () => this.#idle.delete(i);
    });
  }

  /** Registers a waiter (`add` returns its remover) that must be done within `timeout` ms. */
  #wait(what: string, timeout = 10_000, add: (done: () => void) => () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(new Error(`StorageWatch: ${what} did not happen within ${timeout} ms`));
      }, timeout);
      const remove = add(() => {
        clearTimeout(timer);
        remove();
        resolve();
      });
    });
  }

  async #call(method: string, real: (...a: unknown[]) => unknown, args: unknown[]): Promise<unknown> {
    const seq = ++this.#seq;
    this.#started.set(method, (this.#started.get(method) ?? 0) + 1);
    this.#inFlight.set(method, (this.#inFlight.get(method) ?? 0) + 1);
    let result: unknown;
    let failed = false;
    try {
      result = await real(...args);
      return result;
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      this.#inFlight.set(method, (this.#inFlight.get(method) ?? 1) - 1);
      this.#returned(method, seq, args[0], result, failed);
    }
  }

  #returned(method: string, seq: number, params: unknown, result: unknown, failed: boolean): void {
    for (const w of [...this.#waiters]) {
      if (w.method !== method || seq <= w.after) continue;
      if (w.when && (failed || !w.when(params as never, result as never))) continue;
      if (--w.left <= 0) w.done();
    }
    for (const i of [...this.#idle]) if (this.inFlight(i.method as StorageMethod | undefined) === 0) i.done();
  }
}
