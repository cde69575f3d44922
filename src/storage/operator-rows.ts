/**
 * Storage types of the operator tools: listings, counts, bulk actions, queue summaries and the
 * worker registry. Part of the storage contract ({@link Storage}); re-exported by `storage.ts`.
 * @module
 */
import type { JobStatus } from '../types.js';
import type { JobRow } from './job-rows.js';

/**
 * Job filters shared by `jobList`, `jobCount` and the bulk actions. Every given field must
 * match (AND); an empty filter matches every job.
 */
export interface JobFilter {
  /** One status or any of several (an empty array matches nothing). */
  statuses?: readonly JobStatus[];
  queue?: string;
  type?: string;
  tenant?: string;
  parentId?: string;
  fanOutId?: string;
  /**
   * Substring of `last_error` or of `type`, case-insensitive (ASCII letters on SQLite and
   * MySQL/MariaDB, every letter on PostgreSQL); matched literally (`%` and `_` are not wildcards).
   */
  search?: string;
  /** created_at > this (ms). */
  createdAfter?: number;
  /** created_at < this (ms). */
  createdBefore?: number;
}

/**
 * `jobList` parameters: the filter, then keyset pagination by id. Ids are time-ordered
 * (UUIDv7), so id order is creation order; a row never changes its id, so a page boundary
 * stays put while jobs change state.
 */
export interface JobListParams extends JobFilter {
  /** Most rows returned (>= 0). */
  limit: number;
  /** `desc` (newest first, the default) or `asc`. */
  order?: 'asc' | 'desc';
  /** Only ids strictly after this one in the order (`id < afterId` for desc, `id > afterId` for asc). */
  afterId?: string;
}

/** `jobListScan` parameters: a listing that reads at most `scanLimit` jobs. */
export interface JobListScanParams extends JobListParams {
  /** Most jobs read after `afterId` in the order (>= 1), matching or not, whatever their status. */
  scanLimit: number;
}

/** What `jobListScan` found. */
export interface JobListScanResult {
  /** The jobs matching the filter among those read, in the order, at most `limit`. */
  rows: JobRow[];
  /**
   * The id of the last job read when the read stopped at `scanLimit` jobs with fewer than
   * `limit` matches: the next read starts after it. null when `limit` jobs matched, or when
   * the read reached the last job in the order.
   */
  scanEnd: string | null;
}

/** Why a bulk action left a job alone. */
export interface BulkSkip {
  id: string;
  reason: string;
}

/** Outcome of a bulk storage action over a list of ids. */
export interface BulkResult {
  /** The given ids the action applied to, in the order given. */
  done: string[];
  /** The given ids it did not apply to, each with a reason (see `contract-messages.ts`). */
  skipped: BulkSkip[];
}

/** One queue as an operator sees it (`queueSummary`). */
export interface QueueSummaryRow {
  name: string;
  /** Claims skip the queue. */
  paused: boolean;
  pending: number;
  running: number;
  waiting: number;
  /** Jobs paused one by one (`pauseJob`). */
  pausedJobs: number;
  failed: number;
  /** now − the smallest run_at among pending jobs that are due (run_at <= now); null when none. */
  oldestPendingAgeMs: number | null;
}

/** `workerBeat` parameters: a worker's registry row. */
export interface WorkerBeatParams {
  id: string;
  name: string;
  host: string;
  pid: number;
  queues: string[];
  /** Jobs running in the worker now. */
  running: number;
  /** The row leaves `workerList` this long after this beat unless refreshed (ms, >= 1). */
  ttlMs: number;
  /**
   * `started_at` of a new row (ms); a row already there keeps its own. A worker passes the time
   * it started, so a row that expired during a long pause comes back with it. @default now
   */
  startedAt?: number;
}

/** A live worker (`workerList`). Times are ms on the storage clock. */
export interface WorkerRow {
  id: string;
  name: string;
  host: string;
  pid: number;
  queues: string[];
  running: number;
  /** First beat of this worker id. */
  startedAt: number;
  /** Latest beat. */
  lastSeenAt: number;
}
