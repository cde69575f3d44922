/**
 * Decides what a thrown error means for a run: retry (with which delay) or fail now. Every
 * retry delay is a finite whole number of ms between 0 and the longest delay the library
 * stores (`MAX_DELAY_MS`, 100 years), whatever a custom backoff returns.
 * @internal
 */
import {
  DeterminismError,
  FanOutFailedError,
  MAX_DELAY_MS,
  NoRetryError,
  RetryAfterError,
  SerializationError,
  UnknownJobTypeError,
  messageOf,
} from '../errors.js';
import { defaultBackoff } from '../internal/backoff.js';
import type { Logger } from '../types.js';

/** A backoff function: delay in ms before the next attempt after `attempt` failed. */
export type BackoffFn = (attempt: number, error: unknown) => number;

/** The verdict for a failed run. */
export type FailureVerdict = { outcome: 'retry'; delayMs: number; error: string } | { outcome: 'failed'; error: string };

/** Errors that never succeed on a retry. */
function isPermanent(err: unknown): boolean {
  return (
    err instanceof NoRetryError ||
    err instanceof DeterminismError ||
    err instanceof UnknownJobTypeError ||
    err instanceof SerializationError ||
    err instanceof FanOutFailedError
  );
}

/** A usable delay: a finite number >= 0. */
function isDelay(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** A delay as stored: whole ms, at most {@link MAX_DELAY_MS}. */
function storable(delayMs: number): number {
  return Math.min(MAX_DELAY_MS, Math.round(delayMs));
}

/**
 * `attempt` is the attempt that failed (1-based); `maxRetries` allows `maxRetries + 1` attempts.
 * `retryAfter(ms)` is honoured as given (capped at 100 years); other errors use `backoff`. A
 * delay that is not a finite number >= 0 (a `RetryAfterError` built by hand, an unguarded
 * backoff) falls back to the default backoff, so a retry is never lost to a NaN run-at.
 */
export function decideFailure(err: unknown, attempt: number, maxRetries: number, backoff: BackoffFn): FailureVerdict {
  const error = messageOf(err);
  if (isPermanent(err)) return { outcome: 'failed', error };
  if (attempt > maxRetries) return { outcome: 'failed', error };
  const wanted = err instanceof RetryAfterError ? err.delayMs : backoff(attempt, err);
  const delayMs = isDelay(wanted) ? wanted : defaultBackoff(attempt);
  return { outcome: 'retry', delayMs: storable(delayMs), error };
}

/**
 * The backoff a worker uses: the default one, or a custom one made safe. A custom result that
 * is not a finite number >= 0 (a lookup table that ran out, `NaN`, `Infinity`, a negative
 * number), or a custom function that throws, is replaced by the default backoff for that
 * attempt; the first such result is logged as a warning, later ones at debug level (one
 * misconfiguration, not one warning per failed job). Results above 100 years are capped.
 */
export function workerBackoff(custom: BackoffFn | undefined, logger: Logger): BackoffFn {
  if (custom === undefined) return (attempt) => defaultBackoff(attempt);
  let reported = false;
  const report = (attempt: number, problem: string): void => {
    const fields = { attempt, problem, fallback: 'the default backoff' };
    if (reported) logger.debug('custom backoff gave no usable delay; using the default backoff', fields);
    else logger.warn('custom backoff gave no usable delay; using the default backoff (further cases are logged at debug level)', fields);
    reported = true;
  };
  return (attempt, error) => {
    let value: unknown;
    try {
      value = custom(attempt, error);
    } catch (e) {
      report(attempt, `it threw: ${messageOf(e)}`);
      return defaultBackoff(attempt);
    }
    if (isDelay(value)) return storable(value);
    report(attempt, `it returned ${describeValue(value)}, not a finite number of ms >= 0`);
    return defaultBackoff(attempt);
  };
}

function describeValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `the string "${value.slice(0, 40)}"`;
  return value === null ? 'null' : typeof value;
}

/** Wraps a non-Error throw so hooks always receive an `Error`. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(messageOf(err));
}
