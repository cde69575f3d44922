/**
 * The one transaction-retry rule. A transaction that failed with an error its dialect calls
 * retryable (a deadlock, a serialization failure, a lock-wait timeout, a busy file) is rolled
 * back by the caller and run again from the top, so its body must depend on nothing but the
 * database state.
 *
 * Policy ({@link DEFAULT_TX_RETRY_POLICY}): at most 8 attempts; before attempt n + 1 the helper
 * waits `minDelayMs + random × min(maxDelayMs, baseDelayMs × 2^n)` ms ("full jitter"
 * exponential backoff: transactions that collided spread out at once instead of colliding again
 * in step), with 1, 5 and 200 ms: about 720 ms of waiting in the worst case.
 *
 * A first attempt that succeeds costs one promise reaction (`.catch`) and nothing else: no
 * timer, no statement.
 *
 * Internal to the storage layer: every export carries the JSDoc internal tag (so it is
 * stripped from the published declaration files), and none is exported from the package.
 */
import { setTimeout as delay } from 'node:timers/promises';

/** How often and how patiently a transaction is tried. @internal */
export interface TxRetryPolicy {
  /** Attempts in all, the first included (>= 1). */
  readonly maxAttempts: number;
  /** Smallest wait between attempts (ms). */
  readonly minDelayMs: number;
  /** Jitter ceiling before the first retry is `baseDelayMs × 2`; it doubles with each retry. */
  readonly baseDelayMs: number;
  /** Largest jitter ceiling (ms). */
  readonly maxDelayMs: number;
}

/** The policy every driver uses: 8 attempts, full-jitter exponential backoff capped at 200 ms. @internal */
export const DEFAULT_TX_RETRY_POLICY: TxRetryPolicy = Object.freeze({ maxAttempts: 8, minDelayMs: 1, baseDelayMs: 5, maxDelayMs: 200 });

/** What {@link withTxRetry} needs besides the transaction. @internal */
export interface TxRetryOptions {
  /** The dialect's rule: true when the failed transaction may be run again. */
  isRetryable(e: unknown): boolean;
  /** @default DEFAULT_TX_RETRY_POLICY */
  policy?: TxRetryPolicy;
  /** Uniform in [0, 1). @default Math.random */
  random?: () => number;
  /** Waits `ms`. @default node:timers/promises setTimeout */
  sleep?: (ms: number) => Promise<unknown>;
  /** Told before each wait (for logging or tests). */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
}

/**
 * The wait before attempt `failed + 1`, after `failed` failed attempts (>= 1).
 * @param random a value in [0, 1)
 * @internal
 */
export function txRetryDelayMs(failed: number, policy: TxRetryPolicy = DEFAULT_TX_RETRY_POLICY, random: number = Math.random()): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** failed);
  return policy.minDelayMs + Math.floor(random * ceiling);
}

/**
 * Runs `attempt(n)` (n = 1, 2, …) until it resolves, a failure is not retryable, or the policy's
 * attempts are spent; then settles like the last attempt.
 * @internal
 */
export function withTxRetry<T>(attempt: (n: number) => Promise<T>, opts: TxRetryOptions): Promise<T> {
  const policy = opts.policy ?? DEFAULT_TX_RETRY_POLICY;
  const sleep = opts.sleep ?? delay;
  const random = opts.random ?? Math.random;
  const start = (n: number): Promise<T> => {
    try {
      return attempt(n);
    } catch (error) {
      return Promise.reject(error);
    }
  };
  const run = (n: number): Promise<T> =>
    start(n).catch((error: unknown) => {
      if (n >= policy.maxAttempts || !opts.isRetryable(error)) throw error;
      const delayMs = txRetryDelayMs(n, policy, random());
      opts.onRetry?.({ attempt: n, delayMs, error });
      return sleep(delayMs).then(() => run(n + 1));
    });
  return run(1);
}
