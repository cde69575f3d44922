/**
 * Public data types shared by every layer. This module is a leaf: it imports nothing.
 * Durations are milliseconds (`number`); instants are `Date`.
 * @module
 */

/** Lifecycle state of a job. `completed`, `failed` and `cancelled` are terminal. */
export type JobStatus = 'pending' | 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled' | 'paused';

/** Every job status, in lifecycle order. */
export const JOB_STATUSES: readonly JobStatus[] = [
  'pending',
  'running',
  'waiting',
  'completed',
  'failed',
  'cancelled',
  'paused',
];

/** The statuses a job never leaves on its own. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

/** A JSON-compatible value: what args, results, meta and signal payloads may contain. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined };

/** A job as stored: read-only snapshot returned by `getJob`, hooks and events. */
export interface Job<Args = unknown, Result = unknown> {
  /** Unique, time-ordered identifier (UUIDv7 text). */
  readonly id: string;
  /** The registered handler name. */
  readonly type: string;
  /** The named queue the job runs on. */
  readonly queue: string;
  /** The decoded arguments passed to the handler. */
  readonly args: Args;
  /** Current lifecycle state. */
  readonly status: JobStatus;
  /** Higher runs first. */
  readonly priority: number;
  /** Number of attempts started so far (1 during the first run). */
  readonly attempt: number;
  /** Retries allowed after the first attempt: at most `maxRetries + 1` attempts. */
  readonly maxRetries: number;
  /** The job runs no earlier than this instant. */
  readonly runAt: Date;
  /** When the job was enqueued. */
  readonly createdAt: Date;
  /** When the current (or last) run started. */
  readonly startedAt?: Date;
  /** When the job reached a terminal state. */
  readonly completedAt?: Date;
  /** The handler's return value, once completed. */
  readonly result?: Result;
  /** The message of the last error the job failed with. */
  readonly lastError?: string;
  /** The parent job, for fan-out sub-jobs. */
  readonly parentId?: string;
  /** Tenant tag given at enqueue. */
  readonly tenant?: string;
  /** Free-form metadata given at enqueue (`{}` when none). */
  readonly meta: Readonly<Record<string, JsonValue>>;
  /** Handler timeout in ms, if one was set. */
  readonly timeout?: number;
  /** Deduplication key given at enqueue. */
  readonly unique?: string;
  /**
   * The latest progress a run of the job reported with `ctx.progress` and that was stored, or
   * `null` when none was. Kept when the job finishes or runs again, until a later report.
   */
  readonly progress: JobProgress | null;
}

/**
 * A job's stored progress (`ctx.progress(value, message)`).
 * @example
 * const job = await queue.getJob(id);
 * if (job?.progress) console.log(`${Math.round(job.progress.value * 100)}% ${job.progress.message ?? ''}`);
 */
export interface JobProgress {
  /** The fraction done, from 0 to 1. */
  readonly value: number;
  /** The message reported with it, or `null` when none was given. */
  readonly message: string | null;
  /** When it was stored (storage clock). */
  readonly at: Date;
}

/** Options accepted by `enqueue`, `enqueueBatch` and typed definitions. */
export interface EnqueueOptions<Tx = unknown> {
  /** Higher runs first. @default 0 */
  priority?: number;
  /** Maximum retry attempts after the first failure. @default 3 */
  retries?: number;
  /** Run no earlier than now + `delay` ms (database clock). */
  delay?: number;
  /** Run no earlier than this instant. Combined with `delay`, the later wins. */
  runAt?: Date;
  /** `ctx.abortSignal` fires after this many ms of a run; the run then fails (and may retry). */
  timeout?: number;
  /** Named queue. @default 'default' */
  queue?: string;
  /** Deduplication key among non-terminal jobs; a duplicate rejects with `DuplicateJobError`. */
  unique?: string;
  /**
   * With `unique`: the key also clashes with a job holding it that finished (completed, failed
   * or cancelled) less than this many ms ago, by the database clock (up to 100 years).
   */
  uniqueFor?: number;
  /**
   * With `unique`: what a duplicate does. `'error'` rejects with `DuplicateJobError`;
   * `'existing'` resolves with the id of the job holding the key (the live one, or the finished
   * one `uniqueFor` matched) and enqueues nothing. In a batch, every item with `unique` must
   * give the same value.
   * @default 'error'
   */
  onDuplicate?: 'error' | 'existing';
  /**
   * Debounce: when a `pending` job of the same type holds `key`, that job is replaced (args,
   * options and run time; it keeps its id, which the enqueue resolves with) instead of adding
   * one; it runs `delay` ms after this enqueue (database clock). When the job holding the key is
   * already running, a new pending job is added. Not with `unique`, `delay` or `runAt`.
   * @example
   * await queue.enqueue('reindex', { doc: 42 }, { debounce: { key: 'doc-42', delay: 5_000 } });
   */
  debounce?: DebounceOptions;
  /**
   * Group of the type's fleet-wide concurrency limit (`register(type, h, { concurrency })`),
   * instead of what the registered `concurrency.key` function computes. Same rules as `unique`.
   */
  concurrencyKey?: string;
  /** Group of the type's fleet-wide rate limit, instead of what `rateLimit.key` computes. Same rules as `unique`. */
  rateLimitKey?: string;
  /** Tenant tag. */
  tenant?: string;
  /** Free-form JSON metadata. */
  meta?: Record<string, JsonValue>;
  /**
   * Enqueue inside the caller's own open transaction: a `pg` client (inside `BEGIN`),
   * the `better-sqlite3` `Database` (inside `db.transaction`), or a `mysql2` connection.
   * The job becomes visible when that transaction commits. Typed by the queue's storage: a
   * `Queue` over a `SqliteStorage` accepts only a `better-sqlite3` database here, and so on.
   */
  transaction?: Tx;
}

/** `EnqueueOptions.debounce`. */
export interface DebounceOptions {
  /** The debounce key, scoped to the job type: 1 to 255 characters (no NUL, well-formed Unicode). */
  key: string;
  /** Run this many ms after the enqueue (database clock), up to 100 years. */
  delay: number;
}

/** One entry of `enqueueBatch`. */
export interface BatchItem<Args = unknown> {
  /** Job type (handler name). */
  type: string;
  /** Handler arguments. */
  args?: Args;
  /** Per-job options. `transaction` is taken from the batch call's own options. */
  options?: Omit<EnqueueOptions, 'transaction'>;
}

/** Per-queue worker settings. */
export interface QueueWorkerOptions {
  /** How many jobs of this queue run at once in this worker. @default 10 */
  concurrency?: number;
}

/**
 * How long finished jobs are kept, per terminal status, in ms after their `completedAt`: a
 * non-negative integer (at most 100 years), or `false` to keep jobs of that status forever. An
 * absent status keeps its default. See `QueueOptions.retention`.
 */
export interface RetentionOptions {
  /** Age of completed jobs. @default 604800000 (7 days) */
  completed?: number | false;
  /** Age of failed jobs. @default 2592000000 (30 days) */
  failed?: number | false;
  /** Age of cancelled jobs. @default 2592000000 (30 days) */
  cancelled?: number | false;
}

/** Options of `queue.prune()`. */
export interface PruneOptions {
  /**
   * Deletes finished jobs older than this many ms whatever their status, instead of the queue's
   * retention ages (also when the queue's retention is `false`); `0` deletes every finished job
   * now. A non-negative integer, at most 100 years.
   */
  olderThan?: number;
}

/** Counts of jobs by status. */
export type JobCounts = Record<JobStatus, number>;

/** Events published by `queue.events()`: a discriminated union on `type`. */
export type JobEvent =
  | { readonly type: 'job.enqueued'; readonly jobId: string; readonly jobType: string; readonly queue: string; readonly at: Date }
  | { readonly type: 'job.started'; readonly job: Job; readonly at: Date }
  | { readonly type: 'job.completed'; readonly job: Job; readonly at: Date }
  | { readonly type: 'job.retrying'; readonly job: Job; readonly error: string; readonly retryAt: Date; readonly at: Date }
  | { readonly type: 'job.failed'; readonly job: Job; readonly error: string; readonly at: Date }
  | { readonly type: 'job.suspended'; readonly job: Job; readonly reason: 'fan-out' | 'sleep' | 'signal'; readonly at: Date }
  /**
   * A running job's progress was stored (`ctx.progress`): `at` is when it was stored (storage
   * clock). Reports are coalesced before they are written, so a handler reporting faster than
   * the worker writes yields one event per write, carrying the latest value.
   */
  | {
      readonly type: 'job.progress';
      readonly jobId: string;
      readonly jobType: string;
      readonly queue: string;
      readonly value: number;
      readonly message: string | null;
      readonly at: Date;
    }
  | { readonly type: 'job.reclaimed'; readonly jobId: string; readonly jobType: string; readonly queue: string; readonly status: JobStatus; readonly at: Date }
  | { readonly type: 'job.released'; readonly jobId: string; readonly at: Date }
  | { readonly type: 'job.cancelled'; readonly jobId: string; readonly at: Date }
  | { readonly type: 'worker.error'; readonly error: string; readonly at: Date }
  /**
   * Finished jobs were deleted by retention: by a worker's maintenance (one batch) or by
   * `queue.prune()` (its whole run). Only published when at least one job was deleted.
   */
  | { readonly type: 'jobs.pruned'; readonly deleted: number; readonly at: Date };

/** The `type` tag of every event. */
export type JobEventType = JobEvent['type'];

/**
 * A job event of any process sharing the storage, as `queue.events({ fleet: true })` yields it:
 * the same shape as the local event, plus `origin`, the relaying process's id
 * (`<hostname>:<pid>:<random>`, one per `Queue`). Worker errors and prune notices stay local.
 */
export type FleetJobEvent = Extract<JobEvent, { readonly type: `job.${string}` }> & { readonly origin: string };

/**
 * A fleet stream's notice that it missed events (fleet streams only; delivery is best-effort):
 * - `pruned`: the feed was pruned past this subscriber before it read `missed` events;
 * - `overflow`: the consumer was slow, so `missed` events were dropped from its buffer, oldest first;
 * - `relay`: the process `origin` dropped `missed` events before it could store them (the
 *   database was slow or down).
 */
export interface FleetGapEvent {
  /** Always `'events.gap'`. */
  readonly type: 'events.gap';
  /** How many events were missed (at least 1). */
  readonly missed: number;
  /** Why they were missed. */
  readonly reason: 'pruned' | 'overflow' | 'relay';
  /** The relaying process, for `relay` gaps. */
  readonly origin?: string;
  /** When the gap was noticed. */
  readonly at: Date;
}

/** What `queue.events({ fleet: true })` yields: every process's job events, and gap notices. */
export type FleetEvent = FleetJobEvent | FleetGapEvent;

/** Log levels of the pluggable logger. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A structured logger. The library is silent unless one is given. */
export interface Logger {
  /** Fine-grained diagnostics. */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Lifecycle information. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Something went wrong but the worker carries on. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Something failed. */
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Options of `waitForJob`. */
export interface WaitForJobOptions {
  /** Reject with `WaitTimeoutError` after this many ms (up to 100 years). @default no limit */
  timeout?: number;
  /** How often to re-read the job (for workers in other processes), at most 2147483647 ms. @default 100, backing off to 1000 */
  pollInterval?: number;
}
