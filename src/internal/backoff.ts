/**
 * Default retry backoff: exponential with "equal jitter".
 * base(n) = min(cap, 1000 ms · 2^(n−1)) for the n-th failed attempt; the delay is drawn uniformly
 * from [base/2, base] and is never below 100 ms. With the 1 h cap: ~1 s, ~2 s, ~4 s … ≤ 1 h.
 * @internal
 */

/** Base of the exponential, ms. */
export const BACKOFF_BASE_MS = 1000;
/** Upper bound of one delay, ms. */
export const BACKOFF_CAP_MS = 60 * 60 * 1000;
/** Lower bound of one delay, ms. */
export const BACKOFF_MIN_MS = 100;

/** Delay before the next attempt after attempt `attempt` (1-based) failed. */
export function defaultBackoff(attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  const delay = exp / 2 + random() * (exp / 2);
  return Math.max(BACKOFF_MIN_MS, Math.round(delay));
}
