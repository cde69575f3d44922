/**
 * Decides what a thrown error means for a run: retry (with which delay) or fail now.
 * @internal
 */
import { DeterminismError, FanOutFailedError, NoRetryError, RetryAfterError, SerializationError, UnknownJobTypeError, messageOf } from '../errors.js';

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

/**
 * `attempt` is the attempt that failed (1-based); `maxRetries` allows `maxRetries + 1` attempts.
 * `retryAfter(ms)` is honoured as given; other errors use `backoff`.
 */
export function decideFailure(err: unknown, attempt: number, maxRetries: number, backoff: BackoffFn): FailureVerdict {
  const error = messageOf(err);
  if (isPermanent(err)) return { outcome: 'failed', error };
  if (attempt > maxRetries) return { outcome: 'failed', error };
  const delayMs = err instanceof RetryAfterError ? err.delayMs : backoff(attempt, err);
  return { outcome: 'retry', delayMs: Math.max(0, Math.round(delayMs)), error };
}

/** Wraps a non-Error throw so hooks always receive an `Error`. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(messageOf(err));
}
