/**
 * Public types of the operator API on `Queue`: listings, steps, bulk actions, queues and
 * workers (see docs/operations.md).
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
}

/** A page of `queue.listJobs()`. */
export interface JobPage {
  /** The jobs of this page, in the requested order. */
  jobs: Job[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
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
