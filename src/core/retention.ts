/**
 * Retention: how long finished jobs are kept, and the loops that delete them through
 * `Storage.jobPrune`. A queue holds its resolved ages ({@link checkRetention}); `queue.prune()`
 * deletes everything due in batches ({@link pruneAll}); a worker's maintenance deletes one small
 * batch now and then ({@link pruneOnce}).
 *
 * What one batch does is the storage's contract: finished root jobs only, each with its whole
 * subtree, ages on the database clock, rows locked elsewhere skipped, one prune at a time across
 * every process (a second one is told `busy`).
 * @internal
 */
import { InvalidArgumentError, MAX_DELAY_MS } from '../errors.js';
import type { JobPruneParams, JobPruneResult, Storage } from '../storage/storage.js';
import type { PruneOptions, RetentionOptions } from '../types.js';
import type { EventHub } from './events.js';
import { checkInt, checkOptions, describe } from './validate.js';

/** Ages per finished status in ms; `null` keeps that status forever. */
export type RetentionAges = JobPruneParams['olderThanMs'];

const DAY_MS = 24 * 3600 * 1000;

/** The default ages: completed jobs 7 days, failed and cancelled jobs 30 days. */
export const DEFAULT_RETENTION: RetentionAges = Object.freeze({ completed: 7 * DAY_MS, failed: 30 * DAY_MS, cancelled: 30 * DAY_MS });

/** Roots deleted per `jobPrune` call by `queue.prune()`. */
export const PRUNE_BATCH = 500;

/** Roots deleted per worker maintenance prune: small, so the transaction stays short. */
export const WORKER_PRUNE_BATCH = 100;

/** How often `queue.prune()` tries again in a row when another prune holds the lock. */
export const PRUNE_BUSY_RETRIES = 10;

/** How long `queue.prune()` waits before trying again after a `busy` answer (ms). */
export const PRUNE_BUSY_WAIT_MS = 100;

const STATUSES = ['completed', 'failed', 'cancelled'] as const;

/**
 * The queue's `retention` option, resolved: `undefined` → the defaults, `false` → `null`
 * (keep everything), an object → its ages over the defaults (`false` → `null` for a status).
 * @throws InvalidArgumentError on anything else, naming the field
 */
export function checkRetention(value: unknown): RetentionAges | null {
  if (value === undefined) return DEFAULT_RETENTION;
  if (value === false) return null;
  if (value === true || value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(`retention must be an object of ages ({ completed, failed, cancelled }) or false, got ${describe(value)}`);
  }
  const o = checkOptions<RetentionOptions>(value, 'retention', STATUSES);
  const age = (status: (typeof STATUSES)[number]): number | null => {
    const v = o[status];
    if (v === undefined) return DEFAULT_RETENTION[status];
    if (v === false) return null;
    return checkInt(v, `retention.${status}`, 0, MAX_DELAY_MS);
  };
  return Object.freeze({ completed: age('completed'), failed: age('failed'), cancelled: age('cancelled') });
}

/** A queue's resolved retention: its own, or the defaults when its core carries none. */
export function retentionOf(core: { readonly retention?: RetentionAges | null }): RetentionAges | null {
  return core.retention === undefined ? DEFAULT_RETENTION : core.retention;
}

/**
 * The ages `queue.prune(options)` uses: `olderThan` for every status when given, else the
 * queue's own (`null` when the queue keeps everything: nothing to do).
 * @throws InvalidArgumentError on bad options
 */
export function pruneAges(options: unknown, retention: RetentionAges | null): RetentionAges | null {
  const o = checkOptions<PruneOptions>(options, 'prune options', ['olderThan']);
  if (o.olderThan === undefined) return retention;
  const all = checkInt(o.olderThan, 'olderThan', 0, MAX_DELAY_MS);
  return { completed: all, failed: all, cancelled: all };
}

/** Publishes `jobs.pruned` when something was deleted. */
function report(hub: EventHub, deleted: number): void {
  if (deleted > 0 && hub.hasSubscribers) hub.emit({ type: 'jobs.pruned', deleted, at: new Date() });
}

/**
 * One batch of at most `limit` roots (a worker's maintenance). Resolves with the storage's
 * answer; `busy` means another process was pruning and nothing was deleted.
 */
export async function pruneOnce(storage: Storage, hub: EventHub, ages: RetentionAges, limit = WORKER_PRUNE_BATCH): Promise<JobPruneResult> {
  const r = await storage.jobPrune({ olderThanMs: ages, limit });
  report(hub, r.deleted);
  return r;
}

/** Tuning of {@link pruneAll} (tests shorten the waits). */
export interface PruneAllOptions {
  /** Roots per batch. @default PRUNE_BATCH */
  batch?: number;
  /** Consecutive `busy` answers tolerated before giving up. @default PRUNE_BUSY_RETRIES */
  busyRetries?: number;
  /** Wait after a `busy` answer (ms). @default PRUNE_BUSY_WAIT_MS */
  busyWaitMs?: number;
}

/**
 * Deletes every job due, batch after batch, until a batch deletes no root (nothing else is due,
 * or what is due is held by other transactions at that moment). While another process prunes (`busy`), waits briefly and tries again,
 * at most `busyRetries` times in a row; then stops and resolves with what it deleted so far
 * (the other pruner is deleting the rest). Resolves with the number of jobs deleted.
 */
export async function pruneAll(storage: Storage, hub: EventHub, ages: RetentionAges, options: PruneAllOptions = {}): Promise<number> {
  const limit = options.batch ?? PRUNE_BATCH;
  const retries = options.busyRetries ?? PRUNE_BUSY_RETRIES;
  const waitMs = options.busyWaitMs ?? PRUNE_BUSY_WAIT_MS;
  let deleted = 0;
  let busyInARow = 0;
  try {
    for (;;) {
      const r = await storage.jobPrune({ olderThanMs: ages, limit });
      if (r.busy) {
        if (++busyInARow > retries) return deleted;
        await new Promise<void>((resolve) => setTimeout(resolve, waitMs));
        continue;
      }
      busyInARow = 0;
      deleted += r.deleted;
      // Not `roots < limit`: a due root another transaction holds is skipped, and may take a
      // place of the batch; only a batch that deletes nothing shows nothing else can go now.
      if (r.roots === 0) return deleted;
    }
  } finally {
    report(hub, deleted);
  }
}
