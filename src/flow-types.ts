/**
 * Public types of flow control: fleet-wide concurrency and rate limits per job type
 * (`queue.register(type, handler, options)`) and per queue (`queue.setQueueLimits`), and how
 * full they are (`queue.limits()`, `queue.queues()`). See docs/flow-control.md. This module is a
 * leaf: it imports nothing.
 * @module
 */

/**
 * A fleet-wide concurrency limit of a job type: at most `limit` jobs of one group `running` at
 * once, across every worker process sharing the storage.
 */
export interface ConcurrencyLimitOptions<Args = unknown> {
  /** Most jobs of one group running at once: an integer from 1 to 1000000. */
  limit: number;
  /**
   * The job's group, from its args, computed where the job is enqueued (unless the enqueue
   * passes `concurrencyKey`). Without it (or when it returns `''`) every job of the type is in
   * one group. It must return a string of at most 255 characters (no NUL, well-formed Unicode);
   * a key function that throws or returns anything else makes the enqueue reject with
   * `InvalidArgumentError`.
   */
  key?: (args: Args) => string;
}

/**
 * A fleet-wide rate limit of a job type: starts of one group spread evenly, one every
 * `period / limit` ms on the database clock; a start that came late may catch up, so a window
 * of `period` ms holds at most `limit + 1` starts (docs/flow-control.md).
 */
export interface RateLimitOptions<Args = unknown> {
  /** Most starts of one group per `period`: an integer from 1 to 1000000, at most `period`. */
  limit: number;
  /** The period in ms: an integer from 1 to 100 years. */
  period: number;
  /** The job's rate group, from its args, like {@link ConcurrencyLimitOptions.key} (or `rateLimitKey` at enqueue). */
  key?: (args: Args) => string;
}

/**
 * Options of `queue.register(type, handler, options)`: the type's fleet-wide limits. A worker
 * stores the limits of the types its queue registered when it starts (and removes the stored
 * limits of a type registered without any), so during a rolling deploy that changes a limit,
 * the last worker started wins.
 * @example
 * queue.register('sync-account', handler, {
 *   concurrency: { limit: 2, key: (args) => args.accountId },
 *   rateLimit: { limit: 100, period: 60_000 },
 * });
 */
export interface RegisterOptions<Args = unknown> {
  /** At most this many jobs of one group running at once. */
  concurrency?: ConcurrencyLimitOptions<Args>;
  /** At most this many starts of one group per period. */
  rateLimit?: RateLimitOptions<Args>;
}

/** A rate limit as stored: `limit` starts per `period` ms. */
export interface RateLimit {
  /** Most starts per period. */
  limit: number;
  /** The period in ms. */
  period: number;
}

/**
 * Limits of one queue (`queue.setQueueLimits`): they count every job of the queue, whatever its
 * type, across the whole fleet. At least one is required.
 */
export interface QueueLimits {
  /** Most jobs of the queue running at once: an integer from 1 to 1000000. */
  concurrency?: number;
  /** Most starts of the queue per period (`limit` 1 to 1000000, at most `period`; `period` 1 ms to 100 years). */
  rateLimit?: RateLimit;
}

/** The limits of a queue with how full they are, as `queue.queues()` reports them. */
export interface QueueLimitInfo {
  /** The queue's concurrency limit and how many of its jobs run now. */
  concurrency?: { limit: number; running: number };
  /** The queue's rate limit and how long until it allows a start again (0: now). */
  rateLimit?: { limit: number; period: number; nextStartInMs: number };
}

/** One stored limit with how full it is, as `queue.limits()` reports it. */
export interface LimitInfo {
  /** `type`: registered on a job type; `queue`: set with `setQueueLimits`. */
  scope: 'type' | 'queue';
  /** The job type or the queue name. */
  name: string;
  /** Most jobs of one group running at once, if limited. */
  concurrency?: number;
  /** Most starts of one group per period, if limited. */
  rateLimit?: RateLimit;
  /** Jobs running that count against this limit (every group together). */
  running: number;
  /** Groups (concurrency keys) with a job running. */
  keysRunning: number;
  /** Groups at or above their concurrency limit. */
  keysFull: number;
  /** Jobs waiting for this limit: pending jobs of the type held by limits, or pending jobs of the queue. */
  pending: number;
  /** Ms until a group blocked by the rate limit may start a job again; 0 when none is blocked. */
  nextStartInMs: number;
}
