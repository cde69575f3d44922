/**
 * A repeating background task with one lifecycle: `start()` / `stop()`, tolerant of
 * stop-before-start and double stop. Runs never overlap; errors are reported, not thrown.
 * @internal
 */
export class IntervalService {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;

  constructor(
    private readonly intervalMs: number,
    private readonly task: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Starts ticking every interval (first tick after one interval). */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#arm();
  }

  /** Runs the task now (unless a run is in flight). */
  async runNow(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = this.task()
      .catch(this.onError)
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
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
    // ±10% jitter so many workers do not tick in lockstep.
    const wait = this.intervalMs * (0.9 + Math.random() * 0.2);
    this.#timer = setTimeout(() => {
      void this.runNow().finally(() => this.#arm());
    }, wait);
    this.#timer.unref();
  }
}
