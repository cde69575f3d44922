/**
 * Storage types of job rows and inserts: the row as drivers return it, a new job, the fence of a
 * run and `jobInsertMany`'s parameters. Part of the storage contract ({@link Storage});
 * re-exported by `storage.ts`.
 * @module
 */
import type { JobStatus } from '../types.js';

/** A job row as the storage sees it: the public fields plus lease and workflow bookkeeping. */
export interface JobRow {
  id: string;
  type: string;
  queue: string;
  status: JobStatus;
  priority: number;
  /** Attempts started (incremented by each claim; given back by suspend and release). */
  attempt: number;
  maxRetries: number;
  /** Claims ever made of this row; part of the fence. Never decremented. */
  runCount: number;
  argsJson: string | null;
  resultJson: string | null;
  metaJson: string | null;
  lastError: string | null;
  runAt: number;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  timeoutMs: number | null;
  uniqueKey: string | null;
  tenant: string | null;
  parentId: string | null;
  fanOutId: string | null;
  fanOutIndex: number | null;
  lockedBy: string | null;
  leaseExpiresAt: number | null;
  heartbeatAt: number | null;
  /** When a `waiting` job wakes by itself (sleep end, signal or fan-out timeout). */
  wakeAt: number | null;
  /** The signal name a `waiting` job waits for. */
  waitSignal: string | null;
  /** Key of the type concurrency limit's group, as given at enqueue (null: none; counts as ''). */
  concurrencyKey: string | null;
  /** Key of the type rate limit's group, as given at enqueue (null: none; counts as ''). */
  rateKey: string | null;
  /** The job's type had a type limit row when it was inserted or last re-marked (see flow-rows.ts). */
  limited: boolean;
  /** Debounce key (scoped to the type), if enqueued with `debounce`. */
  debounceKey: string | null;
  /** The latest progress value a run stored (`jobProgressMany`), a fraction from 0 to 1; null before the first. */
  progressValue: number | null;
  /** The message stored with {@link progressValue} (null: none given). */
  progressMessage: string | null;
  /** When {@link progressValue} was stored (ms, storage clock); null before the first report. */
  progressAt: number | null;
}

/** A new job. The engine validates and encodes; the driver stores. */
export interface JobInsert {
  id: string;
  type: string;
  queue: string;
  priority: number;
  maxRetries: number;
  argsJson: string | null;
  metaJson: string | null;
  /** Delay from the database's now. The row's run_at = max(now + delayMs, runAt ?? 0). */
  delayMs: number;
  /** Absolute earliest start, if given. */
  runAt: number | null;
  timeoutMs: number | null;
  uniqueKey: string | null;
  tenant: string | null;
  parentId: string | null;
  fanOutId: string | null;
  fanOutIndex: number | null;
  /** Type concurrency group key (null: none given). Stored as given; `limited` is decided by the insert. */
  concurrencyKey?: string | null;
  /** Type rate group key (null: none given). */
  rateKey?: string | null;
  /**
   * With `uniqueKey`: the key also clashes with a finished job (completed, failed or cancelled)
   * holding it whose completed_at > now − uniqueForMs (database clock).
   */
  uniqueForMs?: number | null;
  /**
   * Debounce (never with `uniqueKey`): when a `pending` job of the same type holds this key, that
   * job is replaced instead of inserting this one — its queue, priority, max_retries, args, meta,
   * timeout, tenant, keys and run_at take this insert's values (run_at from `delayMs`/`runAt` as
   * for an insert); its id, created_at, attempt and last_error are kept; the result's `ids` names
   * it. Otherwise the job is inserted holding the key. Two items of one batch with the same type
   * and key: the later replaces the earlier.
   */
  debounceKey?: string | null;
}

/** Identifies one run of a claimed job; every write after a claim carries it. */
export interface Fence {
  jobId: string;
  workerId: string;
  runCount: number;
}

/** One fenced progress report of a run, for `jobProgressMany`. */
export type JobProgressItem = Fence & {
  /** The progress value: a finite number (the engine sends a fraction from 0 to 1). */
  value: number;
  /** The message, already storable (no NUL, no lone surrogate, bounded), or null for none. */
  message: string | null;
};

/** `jobProgressMany` parameters. */
export interface JobProgressManyParams {
  items: JobProgressItem[];
}

/** `jobInsertMany` parameters. */
export interface JobInsertManyParams<Tx = unknown> {
  jobs: JobInsert[];
  /**
   * What to do when a job's `uniqueKey` clashes with a non-terminal job (or another job
   * in the same batch): `'error'` rejects the whole batch with `DuplicateJobError` and
   * inserts nothing; `'skip'` inserts the others and leaves that one out; `'existing'` is `'skip'`
   * that also reports, in `ids`, the id of the job holding the key (the live one, or the finished
   * one that `uniqueForMs` matched; for two items of one batch, the first).
   * @default 'error'
   */
  onConflict?: 'error' | 'skip' | 'existing';
  /**
   * The caller's open transaction, as the driver's own handle type (see `EnqueueOptions.transaction`):
   * each driver names the type it accepts, so passing another driver's handle is a type error.
   */
  tx?: Tx;
}
