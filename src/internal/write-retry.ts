/**
 * Retrying a fenced write while the run that makes it still holds its lease. Outcome and
 * checkpoint writes are fenced by the run (job, worker, run count, `running`), so writing one
 * again is safe: it applies at most once, and not at all once the run lost the job. A failed
 * write is therefore retried with backoff for as long as the run holds its lease — its worker
 * keeps heartbeating it meanwhile — instead of being dropped (which costs the job an attempt, or
 * its result when the attempt was its last).
 *
 * The engine cannot read driver error codes, so it tells "this item can never be written" from
 * "the database is in trouble" by evidence. A write that carried the item alone failed while a
 * heartbeat of that very run succeeds (the database answers and the run still holds the job):
 * after {@link UNWRITABLE_AFTER} such failures, if writes of the same kind by other items
 * succeeded meanwhile, the item is the problem and the write is reported `unwritable`; with no
 * such sign, only after {@link UNWRITABLE_AFTER_ALONE} (several seconds of retries), so a
 * transient failure of every such write does not turn an outcome into a failure. A failure
 * whose probe fails too (the database is down), or that the driver marked transient (a lost
 * connection, a deadlock: `StorageError.transient`), is no evidence against the item: it is
 * retried until the lease is gone.
 * @internal
 */
import { isTransientStorageError } from '../errors.js';
import { BatchWriteError } from './batcher.js';

/**
 * Whether a fenced write applied; `'unsure'` when it reported "not applied" after an earlier
 * attempt failed (that attempt may have committed before its reply was lost).
 */
export type Applied = boolean | 'unsure';

/** Solo failures (lease confirmed each time, other writes succeeding) after which an item counts as unwritable. */
export const UNWRITABLE_AFTER = 2;

/** Solo failures (lease confirmed each time) after which an item counts as unwritable with no other write to compare. */
export const UNWRITABLE_AFTER_ALONE = 8;

/** First retry delay (ms); doubled per retry up to {@link RETRY_MAX_MS}, with ±20% jitter. */
export const RETRY_BASE_MS = 50;

/** Longest delay between two retries (ms). */
export const RETRY_MAX_MS = 2000;

/** One fenced write and what it needs to be retried. @internal */
export interface HeldWrite<I, R> {
  /** The item (an outcome, a checkpoint). */
  item: I;
  /** The first attempt, and each retry after a failure shared with other items (usually coalesced by a `Batcher`, which rejects with `BatchWriteError`). */
  first: (item: I) => Promise<R>;
  /** A write of the item alone (a retry after it failed alone). */
  alone: (item: I) => Promise<R>;
  /**
   * Renews the run's lease: resolves true when the run still holds the job, false when it lost
   * it; throws when the database failed.
   */
  probe: () => Promise<boolean>;
  /**
   * How many writes of this kind (by any item) succeeded so far: if it grew since this item was
   * first tried, such writes work and a solo failure is the item's own. @default no evidence
   */
  progress?: () => number;
  /** Whether the run may still hold its lease (false once lost, abandoned or given up). */
  held: () => boolean;
  /** Aborts the waits between retries (the worker gives up: shutdown deadline). */
  signal?: AbortSignal;
}

/** How a {@link writeWhileHeld} ended. @internal */
export type HeldWriteResult<R> =
  /** Written; `retried` when an earlier attempt failed (it may have committed before its reply was lost). */
  | { kind: 'written'; value: R; retried: boolean }
  /** The run lost the job (a probe said so) or gave it up (`held()` false, or `signal` aborted). */
  | { kind: 'lost'; error: unknown }
  /** The item alone keeps failing while the run's lease is confirmed: it cannot be written. */
  | { kind: 'unwritable'; error: unknown };

/** Runs a fenced write, retrying it while the run holds its lease. Never rejects. @internal */
export async function writeWhileHeld<I, R>(w: HeldWrite<I, R>): Promise<HeldWriteResult<R>> {
  let error: unknown;
  let alone: boolean;
  const progressAt = w.progress?.() ?? 0;
  try {
    return { kind: 'written', value: await w.first(w.item), retried: false };
  } catch (err) {
    ({ error, alone } = unwrap(err));
  }
  let solo = 0;
  for (let retry = 1; ; retry++) {
    if (!w.held()) return { kind: 'lost', error };
    if (alone) {
      let lease: 'held' | 'lost' | 'unknown';
      try {
        lease = (await w.probe()) ? 'held' : 'lost';
      } catch {
        lease = 'unknown'; // the database failed too: no evidence against the item
      }
      if (lease === 'lost') return { kind: 'lost', error };
      if (lease === 'unknown' || isTransientStorageError(error)) solo = 0;
      else if (++solo >= (w.progress && w.progress() > progressAt ? UNWRITABLE_AFTER : UNWRITABLE_AFTER_ALONE)) return { kind: 'unwritable', error };
    }
    if (!(await pause(retryDelay(retry), w.signal)) || !w.held()) return { kind: 'lost', error };
    try {
      const value = alone ? await w.alone(w.item) : await w.first(w.item);
      return { kind: 'written', value, retried: true };
    } catch (err) {
      ({ error, alone } = unwrap(err));
    }
  }
}

/** The delay before retry number `retry` (1-based), ms. */
export function retryDelay(retry: number): number {
  const base = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(retry - 1, 16));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** The driver error inside a `BatchWriteError`, and whether the failed call carried the item alone. */
function unwrap(err: unknown): { error: unknown; alone: boolean } {
  if (err instanceof BatchWriteError) return { error: err.error, alone: err.alone };
  return { error: err, alone: true };
}

/** Waits `ms`; resolves false at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = (): void => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
