/**
 * The engine's host clock: the current time and one-shot timers. Production code uses
 * {@link realClock} (`Date.now`, `setTimeout`); the testing kit swaps in a virtual clock whose
 * time moves only when a test moves it (`simple-durable-jobs/testing`). Only code that reads host
 * time or arms a timer whose length is part of the job's contract (a job's `timeout`, a
 * scheduler's wait for the next slot) goes through it; the storage has its own clock.
 * @internal
 */

/** An armed timer, as the clock that armed it knows it. @internal */
export type TimerHandle = object;

/** Host time and timers. @internal */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Calls `fn` once, `ms` milliseconds from now (at once for 0 or less). A real timer does not
   * keep the process alive when `unref` is true.
   */
  setTimeout(fn: () => void, ms: number, unref?: boolean): TimerHandle;
  /** Cancels a timer this clock armed (nothing when it fired or was cleared already). */
  clearTimeout(handle: TimerHandle): void;
}

/** The host's clock: `Date.now()` and Node.js timers. @internal */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms, unref = false) {
    const t = setTimeout(fn, ms);
    if (unref) t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
