/**
 * Public types of the operator API on `Queue`: listings, steps, signals, bulk actions, queues
 * and workers (see docs/operations.md).
 * @module
 */
import type { QueueLimitInfo } from '../flow-types.js';
import type { Job, JobStatus } from '../types.js';

/** Which jobs a listing or a bulk action is about; every given field must match. */
export interface JobFilterOptions {
  /** One status or any of several. */
  status?: JobStatus | readonly JobStatus[];
  /** Named queue. */
  queue?: string;
  /** Job type. */
  type?: string;
  /** Tenant tag given at enqueue. */
  tenant?: string;
  /** Only sub-jobs of this job. */
  parentId?: string;
  /**
   * Substring of the job's last error or of its type, case-insensitive (ASCII letters only on
   * SQLite and MySQL/MariaDB), taken literally (no wildcards). 1 to 255 characters.
   */
  search?: string;
  /** Created strictly after this instant (database clock). */
  createdAfter?: Date;
  /** Created strictly before this instant (database clock). */
  createdBefore?: Date;
}

/** Options of `queue.listJobs()`. */
export interface ListJobsOptions extends JobFilterOptions {
  /** Page size, 1 to 500. @default 50 */
  limit?: number;
  /** `nextCursor` of the previous page (same order). */
  cursor?: string;
  /** Newest first (`desc`, the default) or oldest first (`asc`), by creation. */
  order?: 'asc' | 'desc';
  /**
   * A scan budget: read at most this many jobs (matching or not, whatever their status) after
   * the cursor, in the listing's order, and return the matches among them. The page then comes
   * back short, even empty, with `scanExhausted: true` and a `nextCursor` that continues right
   * after the last job read: a filter few jobs match costs at most this many rows per page
   * instead of a walk through every job. Walking every page gives exactly the jobs, in the
   * same order, that pages without a budget give.
   *
   * It applies to filters that name a `queue`, `type`, `tenant`, `search`, `createdAfter` or
   * `createdBefore` — tests no index answers in id order. Without one of those, or with a
   * `parentId` (its sub-jobs are read through their own index), the listing is the same as
   * without a budget; so it is on SQLite and MySQL/MariaDB for statuses holding 5,000 jobs or
   * fewer, read through their index. A whole number from 1 to 1,000,000.
   * @default no budget: a page is filled (or the listing reaches its last job)
   * @throws InvalidArgumentError for anything else
   * @example
   * const page = await queue.listJobs({ search: 'quota', scanLimit: 20_000 });
   * if (page.scanExhausted) console.log(`looked through ${page.scanned} jobs; continue with`, page.nextCursor);
   */
  scanLimit?: number;
}

/** A page of `queue.listJobs()`. */
export interface JobPage {
  /** The jobs of this page, in the requested order. */
  jobs: Job[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
  /**
   * Set when the `scanLimit` budget ran out before a match beyond this page was found: `jobs`
   * holds the matches among the jobs read (a page, fewer, or none) and `nextCursor` continues
   * the scan right after the last job read. Absent when the listing found more matches than a
   * page, when it reached its last job, and without a budget.
   */
  scanExhausted?: true;
  /** With `scanExhausted`: how many jobs this page read (the `scanLimit`). */
  scanned?: number;
}

/** A workflow checkpoint, as `queue.getSteps()` returns it. */
export interface StepInfo {
  /** Position of the step in the workflow (0, 1, …). */
  index: number;
  /** The step's name: the called job type, `fan-out`, `sleep` or `signal:<name>`. */
  name: string;
  /** `waiting`: a timer or signal wait in progress. */
  status: 'completed' | 'failed' | 'waiting';
  /** The checkpointed value (a step's result, a signal's payload, a fan-out's id, a sleep's wake time). */
  output?: unknown;
  /** Why the step failed. */
  error?: string;
  /** When the checkpoint was recorded. */
  at: Date;
}

/** A signal sent to a job, as `queue.getSignals()` returns it. */
export interface SignalInfo {
  /** Its position among every signal sent (increasing: signals of a job in the order sent). */
  seq: number;
  /** The name a `ctx.waitForSignal(name)` waits for. */
  name: string;
  /**
   * The payload sent with it; absent when none was sent. A payload the queue's codec cannot
   * decode shows as a bracketed text saying why (as `getSteps` outputs do).
   */
  payload?: unknown;
  /** When it was sent (database clock). */
  sentAt: Date;
  /** When a wait of its name consumed it; absent while it is buffered. */
  consumedAt?: Date;
}

/** Options of `queue.getSignals()`. */
export interface GetSignalsOptions {
  /** Most signals returned (the oldest ones), 1 to 1000. @default 100 */
  limit?: number;
  /**
   * The `seq` of the last signal of the previous page: only later ones are returned (a whole
   * number; absent: from the first).
   */
  after?: number;
}

/** Options of `queue.getSteps()`: a page of checkpoints (without options, every checkpoint). */
export interface GetStepsOptions {
  /** Most checkpoints returned (the lowest indexes), 1 to 1000. @default every checkpoint */
  limit?: number;
  /** The index of the last checkpoint of the previous page: only higher indexes are returned (-1: from the first). */
  after?: number;
}

/** Progress of a bulk action, reported after each batch. */
export interface BulkProgress {
  /** Jobs acted on so far. */
  done: number;
  /** Jobs left alone so far (see `BulkOutcome.skipped`). */
  skipped: number;
  /** Jobs that matched the filter when the action started. */
  total: number;
}

/** Options of `retryJobs`, `cancelJobs` and `deleteJobs`. */
export interface BulkOptions {
  /** Called after each batch. */
  onProgress?: (progress: BulkProgress) => void;
  /** Jobs per batch (one short transaction each), 1 to 500. @default 200 */
  batchSize?: number;
}

/** What a bulk action did. */
export interface BulkOutcome {
  /** Jobs acted on (a deleted or cancelled workflow counts once, whatever its sub-jobs). */
  count: number;
  /** Jobs that matched but were left alone, with why. */
  skipped: { id: string; reason: string }[];
}

/** Options of `queue.retryJob()`. */
export interface RetryJobOptions {
  /**
   * Keep the workflow's checkpoints and resume at the step that failed (a failed fan-out
   * retries its failed and cancelled sub-jobs only). `false` starts over. @default false
   */
  fromFailedStep?: boolean;
}

/** A queue as `queue.queues()` reports it. */
export interface QueueInfo {
  name: string;
  /** Workers do not claim from it (`pauseQueue`). */
  paused: boolean;
  pending: number;
  running: number;
  waiting: number;
  failed: number;
  /** Jobs paused one by one (`pauseJob`). */
  pausedJobs: number;
  /** How long the oldest due pending job has waited since its run time. */
  oldestPendingAgeMs?: number;
  /** The queue's fleet-wide limits (`setQueueLimits`) with how full they are; absent when it has none. */
  limits?: QueueLimitInfo;
}

/** A live worker of the fleet, as `queue.workers()` reports it. */
export interface WorkerInfo {
  /** The worker's id (`worker.id`). */
  id: string;
  /** `WorkerOptions.name` (default `<hostname>:<pid>`). */
  name: string;
  host: string;
  pid: number;
  /** Queues it claims from. */
  queues: string[];
  /** Jobs it was running at its last heartbeat. */
  running: number;
  /** When the worker started (its own clock). */
  startedAt: Date;
  /** Its latest heartbeat (the database clock). */
  lastSeenAt: Date;
}
