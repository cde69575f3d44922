/**
 * Small helpers shared by the workflow tests (steps, fan-out, timers, signals, cancellation):
 * quick worker options, a started-worker handle, a gate a handler can wait on, and a check
 * that a condition keeps holding for a while (for "nothing happens" assertions).
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import type { Queue } from '../../src/queue/queue.js';
import type { Worker, WorkerOptions } from '../../src/worker/worker.js';
import { noRetry } from '../../src/errors.js';
import type { FanOutResult } from '../../src/workflow/job-context.js';

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
 * statements, where no event exists to await.
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
