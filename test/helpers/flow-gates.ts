/**
 * Helpers for the flow-control tests: handlers that record their runs per group (so concurrency
 * is checked from the handlers' own records, never from the library's counters) and wait on a
 * gate the test opens; workers started for one queue, optionally after their type's limit is
 * stored; and waits on job statuses.
 */
import assert from 'node:assert/strict';
import type { LimitInfo, RegisterOptions } from '../../src/flow-types.js';
import type { Queue } from '../../src/queue/queue.js';
import type { BatchItem, EnqueueOptions, JobStatus } from '../../src/types.js';
import type { WorkerOptions } from '../../src/worker/worker.js';
import type { Handler, JobContext } from '../../src/workflow/job-context.js';
import { waitFor } from './wait-for.js';
import { Gate, startWorker, type Started } from './workflow-harness.js';

/** Running handlers per group, with the most seen at once (by the handlers' own records). */
export class RunLog {
  /** Handlers running now, per group. */
  readonly running = new Map<string, number>();
  /** The most handlers of a group seen running at once. */
  readonly max = new Map<string, number>();
  /** Ids of the jobs whose handler started, in start order (a replay adds its id again). */
  readonly started: string[] = [];
  /** Handlers running now, all groups together. */
  total = 0;
  /** The most handlers seen running at once, all groups together. */
  maxTotal = 0;

  /** Records that job `id`'s handler started in group `key`. */
  enter(key: string, id: string): void {
    const n = (this.running.get(key) ?? 0) + 1;
    this.running.set(key, n);
    this.max.set(key, Math.max(this.max.get(key) ?? 0, n));
    this.total++;
    this.maxTotal = Math.max(this.maxTotal, this.total);
    this.started.push(id);
  }

  /** Records that a handler of group `key` ended. */
  leave(key: string): void {
    this.running.set(key, (this.running.get(key) ?? 1) - 1);
    this.total--;
  }
}

/** Resolves after `ms`: a handler's own work time (never used to wait for a state). */
export const work = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The row of `limits()` for the type or queue `name`, if any. */
export const limitOf = (limits: readonly LimitInfo[], scope: 'type' | 'queue', name: string): LimitInfo | undefined =>
  limits.find((l) => l.scope === scope && l.name === name);

/** Like `waitFor`, with a failure message computed when it fails (the state then, not at the call). */
export async function waitOr<T>(cond: () => T | Promise<T>, timeout: number, explain: () => Promise<string> | string): Promise<NonNullable<T>> {
  try {
    return await waitFor(cond, { timeout });
  } catch {
    throw new assert.AssertionError({ message: await explain() });
  }
}

/** Starts a worker for queue `q` only, with that queue's `concurrency` (the worker's default when omitted) and `extra` worker options. */
export function serve(queue: Queue, q: string, concurrency?: number, extra: WorkerOptions = {}): Started {
  return startWorker(queue, { queues: { [q]: concurrency === undefined ? {} : { concurrency } }, ...extra });
}

/** Waits until a worker has stored `type`'s limit; resolves with its `limits()` row. */
export function limitStored(queue: Queue, type: string): Promise<LimitInfo> {
  return waitFor(async () => limitOf(await queue.limits(), 'type', type));
}

/** {@link serve}, then waits until the worker has stored `type`'s limit. */
export async function limitedWorker(queue: Queue, type: string, q: string, concurrency = 5, extra: WorkerOptions = {}): Promise<Started> {
  const w = serve(queue, q, concurrency, extra);
  await limitStored(queue, type);
  return w;
}

/** Waits until the job `ids` (one id or several) all have `status` (default `completed`). */
export async function waitForStatus(queue: Queue, ids: string | readonly string[], status: JobStatus = 'completed', opts: { timeout?: number; message?: string } = {}): Promise<void> {
  const all = typeof ids === 'string' ? [ids] : ids;
  await waitFor(async () => (await Promise.all(all.map((id) => queue.getJob(id)))).every((j) => j?.status === status), opts);
}

/** `n` batch items of `type` with the same `options`; with `args`, item `i` gets `args(i)` (without, no args at all). */
export function batch<A>(n: number, type: string, options: Omit<EnqueueOptions, 'transaction'>, args?: (i: number) => A): BatchItem<A>[] {
  return Array.from({ length: n }, (_, i) => (args ? { type, args: args(i), options } : { type, options }));
}

/** How a {@link gated} handler records and waits. */
export interface GatedOptions<A> {
  /** The group a run is recorded in: a name, or one computed from the args. @default 'all' */
  key?: string | ((args: A) => string);
  /**
   * What a run does between its records; its value is the handler's result. A throw still
   * records the end. @default waits on the gate
   */
  during?: (args: A, gate: Gate, ctx: JobContext<A>) => unknown;
  /** A log to record in (shared by several handlers); a new one when omitted. */
  log?: RunLog;
}

/** A handler that records its start, runs {@link GatedOptions.during} (by default: waits on `gate`), and records its end. */
export interface Gated<A> {
  /** The handler's records. */
  log: RunLog;
  /** Ids of the jobs whose handler started, in start order (`log.started`). */
  started: string[];
  /** Handlers running now, per group (`log.running`). */
  running: Map<string, number>;
  /** The gate a run waits on by default. */
  gate: Gate;
  /** Opens the gate: every waiting run goes on, and later runs do not wait. */
  open(): void;
  /** The handler, to register (again) under any type and queue. */
  handler: Handler<A, unknown>;
}

/** Makes a {@link Gated} handler (registered nowhere: see {@link gatedType}). */
export function gated<A = unknown>(opts: GatedOptions<A> = {}): Gated<A> {
  const log = opts.log ?? new RunLog();
  const gate = new Gate();
  const keyOf = typeof opts.key === 'function' ? opts.key : () => (opts.key as string | undefined) ?? 'all';
  const during = opts.during ?? ((_args: A, g: Gate) => g.promise);
  const handler: Handler<A, unknown> = async (args, ctx) => {
    const key = keyOf(args);
    log.enter(key, ctx.job.id);
    try {
      return await during(args, gate, ctx);
    } finally {
      log.leave(key);
    }
  };
  return { log, started: log.started, running: log.running, gate, open: () => gate.open(), handler };
}

/** Registers a {@link gated} handler on `queue` under `type`, with the flow `limits` given (none when omitted). */
export function gatedType<A = unknown>(queue: Queue, type: string, limits?: RegisterOptions<A>, opts: GatedOptions<A> = {}): Gated<A> {
  const g = gated(opts);
  queue.register(type, g.handler, limits);
  return g;
}
