/**
 * The testing kit's bound per call: one `drain()`, `clock.advance()` or `clock.set()` starts at
 * most `maxRuns` runs and visits at most `maxRuns` instants that start none, so a test that asks
 * for far more (100 years of a schedule that fires every second, jobs that keep enqueueing each
 * other) gets an error that says so instead of a run that never ends.
 * @internal
 */
import { InvalidStateError } from '../errors.js';

/** What one call of the kit has used of its budget. @internal */
export class CallBudget {
  #runs = 0;
  /** Instants visited at which no run started. */
  #idle = 0;
  /** Runs started per job type, for the error that names the busiest. */
  readonly #byType = new Map<string, number>();

  /**
   * @param name the call the errors name: `drain()`, `clock.advance()` or `clock.set()`
   * @param max the test queue's `maxRuns`
   * @param now the current virtual time (ms), for the errors
   */
  constructor(
    readonly name: string,
    private readonly max: number,
    private readonly now: () => number,
  ) {}

  /** Runs started in this call. */
  get runs(): number {
    return this.#runs;
  }

  /** Counts a run started. */
  countRun(type: string): void {
    this.#byType.set(type, (this.#byType.get(type) ?? 0) + 1);
    this.#runs++;
  }

  /**
   * Refuses another run once the call started `max` (checked before a claim: no job is left claimed).
   * @throws InvalidStateError naming the virtual time and the busiest job type
   */
  checkRuns(): void {
    if (this.#runs < this.max) return;
    let busiest = '';
    let most = 0;
    for (const [t, n] of this.#byType) if (n > most) [busiest, most] = [t, n];
    throw new InvalidStateError(
      `${this.name} stopped at ${this.#at()} after ${this.#runs} runs in one call, the test queue's limit (most runs: "${busiest}", ${most}): ` +
        'a schedule that fires more often than the test needs, or jobs that keep enqueueing each other? Advance in shorter steps, or raise createTestQueue({ maxRuns }).',
    );
  }

  /**
   * Counts an instant visited at which no run started.
   * @throws InvalidStateError past `max` such instants
   */
  countIdleInstant(): void {
    if (++this.#idle < this.max) return;
    throw new InvalidStateError(
      `${this.name} stopped at ${this.#at()} after visiting ${this.#idle} instants that started no job in one call, the test queue's limit ` +
        '(an instant is a moment at which something comes due: a schedule slot whose job was deduplicated, a timer, a deadline): advance in shorter steps, or raise createTestQueue({ maxRuns }).',
    );
  }

  #at(): string {
    return new Date(this.now()).toISOString();
  }
}
