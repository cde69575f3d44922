/**
 * The handler-facing types: `JobContext`, handlers, typed definitions, fan-out values.
 * @module
 */
import type { EnqueueOptions, Job, Logger } from '../types.js';

/** A job handler: receives decoded args and the context; may return a JSON-serialisable result. */
export type Handler<Args = unknown, Result = unknown> = (args: Args, ctx: JobContext<Args>) => Result | Promise<Result>;

/**
 * The typed handle `queue.register()` returns. `Tx` is the transaction handle its queue's
 * storage accepts (see `EnqueueOptions.transaction`).
 */
export interface JobDefinition<Args = unknown, Result = unknown, Tx = unknown> {
  /** The registered job type. */
  readonly type: string;
  /** Enqueues a job of this type with type-checked args. Resolves with the job id. */
  enqueue(args: Args, options?: EnqueueOptions<Tx>): Promise<string>;
  /** Phantom field carrying the result type (never set). @internal */
  readonly __result?: Result;
}

/** Per-sub-job options of {@link sub}. */
export interface SubJobOptions {
  /** Priority of the sub-job. @default 0 */
  priority?: number;
  /** Queue of the sub-job; overrides the fan-out's `queue`. */
  queue?: string;
  /** Retries of the sub-job; overrides the fan-out's `retries`. */
  retries?: number;
  /** Handler timeout of the sub-job. */
  timeout?: number;
  /** Metadata of the sub-job. */
  meta?: EnqueueOptions['meta'];
  /** Group of the sub-job type's fleet-wide concurrency limit, instead of what its registered key function computes. */
  concurrencyKey?: EnqueueOptions['concurrencyKey'];
  /** Group of the sub-job type's fleet-wide rate limit, instead of what its registered key function computes. */
  rateLimitKey?: EnqueueOptions['rateLimitKey'];
}

/** One sub-job of a fan-out, built with {@link sub}. */
export interface SubJob<Args = unknown> {
  readonly type: string;
  readonly args: Args;
  readonly options: SubJobOptions;
}

/** How a fan-out is decided. */
export type FanOutStrategy = 'fail-fast' | 'collect-all' | { threshold: number };

/** Options of `ctx.fanOut`. */
export interface FanOutOptions {
  /** @default 'fail-fast' */
  strategy?: FanOutStrategy;
  /** Queue the sub-jobs run on. @default the parent's queue */
  queue?: string;
  /** Retries of each sub-job. @default 3 */
  retries?: number;
  /** The whole fan-out fails when not decided within this many ms. */
  timeout?: number;
}

/** The outcome of one sub-job, in sub-job order. */
export interface FanOutResult<T = unknown> {
  /** Position of the sub-job in the array given to `fanOut`. */
  readonly index: number;
  /** The sub-job's result, when it completed. */
  readonly value?: T;
  /** Why the sub-job did not complete (failed, cancelled, or unfinished when the fan-out was decided). */
  readonly error?: Error;
}

/** Options of `ctx.waitForSignal`. */
export interface WaitForSignalOptions {
  /** Give up after this many ms (fixed at the first execution); the wait then returns `undefined`. */
  timeout?: number;
}

/** The second argument of every handler. */
export interface JobContext<Args = unknown> {
  /** The job being run. */
  readonly job: Job<Args>;
  /** Fires on timeout, cancellation, lost lease and shutdown past the drain timeout. */
  readonly abortSignal: AbortSignal;
  /** The worker's logger, with the job's `jobId`, `type`, `queue`, `attempt` and `workerId` on every line. */
  readonly logger: Logger;
  /**
   * Runs a registered handler as a checkpointed step. On replay a completed step returns its
   * stored (JSON round-tripped) result without running again.
   * @throws DeterminismError when the replay asks for a different step at this position
   */
  call<T = unknown>(step: string, args?: unknown): Promise<T>;
  /** Typed form: args and result are inferred from the definition. */
  call<R, A = unknown>(step: JobDefinition<A, R>, args: A): Promise<R>;
  /** Durable fan-out / fan-in over sub-jobs; the job waits without holding a worker slot. */
  fanOut<T = unknown>(subJobs: readonly SubJob[], options?: FanOutOptions): Promise<FanOutResult<T>[]>;
  /** Durable sleep: the wake time is fixed at the first execution; holds no worker slot. */
  sleep(ms: number): Promise<void>;
  /** Durable sleep until an instant. */
  sleepUntil(date: Date): Promise<void>;
  /** Waits for a signal sent with `queue.signal(job.id, name, payload)`; `undefined` on timeout. */
  waitForSignal<T = unknown>(name: string, options?: WaitForSignalOptions): Promise<T | undefined>;
  /**
   * Lets workflow code change while runs are in flight: `true` for a run that reaches this point
   * on code that has the patch, `false` for a run whose history was recorded past this point by
   * code without it (replaying it takes the old branch). The first answer of a run is stored
   * with its checkpoints, so the run gets the same answer for `id` every time it asks — on
   * retries, resumes after a sleep, signal or fan-out, after a crash, and after
   * `queue.retryJob(id, { fromFailedStep: true })` — wherever in the run it asks again. Stored
   * answers are not steps: a later version of the code may drop the call and the old branch once
   * no run in flight took it (`queue.patchStatus()` or `sdj patches` tells when).
   *
   * Synchronous: a run that can have history reads it before the handler starts, and the answer
   * is written in the background; the run's next checkpoint, suspension or outcome waits until
   * it is stored. Not available inside a step run by `ctx.call` (steps are not replayed, so their
   * code may change freely).
   * @param id names the change; at most 255 characters, no control characters, unique per workflow
   * @throws InvalidArgumentError (synchronously) when `id` is not a non-empty string within the
   * name limits; LeaseLostError when the run is over; a retryable StorageError when the run's
   * history could not be read; DeterminismError once the replay diverged
   * @example
   * if (ctx.patched('send-sms')) {
   *   await ctx.call('send-sms', order);   // new code; runs recorded before it skip this
   * }
   * await ctx.call('ship-order', order);
   */
  patched(id: string): boolean;
  /**
   * Reports how far the run is: stored as the job's `progress` (`{ value, message, at }`, `at`
   * on the storage clock) and published as a `job.progress` event once stored.
   *
   * Cheap enough for a tight loop: reports are coalesced per worker — only the latest value of
   * a run is kept, and each job's progress is written at most once per 250 ms (all running jobs
   * of a worker in one statement), plus once more right before the run's outcome (or
   * suspension) is written, so the last report is the one stored. The promise resolves as soon
   * as the report is taken, without waiting for the write. A write that fails is logged and
   * tried again with the next flush; it never fails the job. Reports of a run that is over or
   * lost its lease are dropped. Not a checkpoint: a replayed workflow reports again as it runs.
   * Also available inside a step run by `ctx.call`.
   * @param value the fraction done, a finite number from 0 to 1
   * @param message an optional short text; NUL and unpaired surrogates become U+FFFD, and a
   * text longer than 1024 UTF-16 code units is cut (ending with a marker giving its length)
   * @throws InvalidArgumentError (as a rejection) when `value` is not a number from 0 to 1, or
   * `message` is neither a string nor absent; nothing is stored
   * @example
   * for (const [i, file] of files.entries()) {
   *   await resize(file);
   *   await ctx.progress((i + 1) / files.length, `resized ${i + 1} of ${files.length}`);
   * }
   */
  progress(value: number, message?: string): Promise<void>;
}
