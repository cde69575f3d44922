/**
 * A repeating background task with one lifecycle.
 * @internal
 */

/** The longest delay a Node.js timer carries (2^31 − 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * A repeating background task with one lifecycle: `start()` / `stop()`, tolerant of
 * stop-before-start, double stop and a restart while a run is in flight (one timer at a time).
 * Runs never overlap; errors are reported, not thrown. After a failed run the next one comes
 * after `retryMs` (when given) instead of a whole interval.
 * @internal
 */
export class IntervalService {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;
  /** The last run failed: the next one comes after `retryMs`. */
  #failed = false;

  /**
   * @param intervalMs time between runs
   * @param task one run
   * @param onError reports a failed run
   * @param retryMs time before the next run after a failed one @default intervalMs
   */
  constructor(
    private readonly intervalMs: number,
    private readonly task: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
    private readonly retryMs = intervalMs,
  ) {}

  /** Starts ticking every interval (first tick after one interval). */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#arm();
  }

  /** Runs the task now (unless a run is in flight). */
  runNow(): Promise<void> {
    this.#running ??= this.#runOnce().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** One run; a failure, also one thrown before the task's promise exists, goes to `onError`. */
  async #runOnce(): Promise<void> {
    try {
      await this.task();
      this.#failed = false;
    } catch (err) {
      this.#failed = true;
      this.onError(err);
    }
  }

  /** Stops ticking and waits for a run in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #arm(): void {
    if (this.#stopped) return;
    // A run that ends after stop() and start() must not leave a second timer behind.
    if (this.#timer) clearTimeout(this.#timer);
    // ±10% jitter so many workers do not tick in lockstep; never beyond what a timer can wait
    // (a longer delay would fire after 1 ms).
    const wait = Math.min(MAX_TIMER_MS, (this.#failed ? this.retryMs : this.intervalMs) * (0.9 + Math.random() * 0.2));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // runNow() does not reject: a failed run is reported through onError.
      void this.runNow().finally(() => this.#arm());
    }, wait);
    this.#timer.unref();
  }
}
