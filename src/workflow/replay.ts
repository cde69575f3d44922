/**
 * The step cursor of one execution: hands out step positions, loads the job's checkpoints
 * once (lazily, so plain jobs never pay for it), checks determinism, and writes new
 * checkpoints fenced by the run. Tracks in-flight writes so the executor can let a
 * checkpoint commit before it records the run's outcome.
 * @internal
 */
import { DeterminismError, LeaseLostError } from '../errors.js';
import type { Fence, StepRow, Storage } from '../storage/storage.js';

/** Step cursor and checkpoint cache of one run. @internal */
export class Replay {
  #next = 0;
  #steps: Map<number, StepRow> | undefined;
  #loading: Promise<Map<number, StepRow>> | undefined;
  readonly #writes = new Set<Promise<unknown>>();
  #closed = false;

  constructor(
    private readonly storage: Storage,
    readonly fence: Fence,
  ) {}

  /** Takes the next step position. */
  take(): number {
    return this.#next++;
  }

  /** Refuses further durable work once the run is over (a zombie handler still going). */
  close(): void {
    this.#closed = true;
  }

  /** Throws if the run is over. */
  assertOpen(): void {
    if (this.#closed) throw new LeaseLostError('this run is over (it finished, suspended, timed out or lost its lease); durable operations are refused');
  }

  /**
   * The stored checkpoint at `index`, if any. Throws `DeterminismError` when it has another name.
   */
  async recorded(index: number, name: string): Promise<StepRow | undefined> {
    this.assertOpen();
    const steps = await this.#load();
    const row = steps.get(index);
    if (row && row.stepName !== name) {
      throw new DeterminismError(
        `workflow replay diverged at step ${index}: the history has "${row.stepName}" but the code now asks for "${name}" (steps must be called in the same order on every run)`,
      );
    }
    return row;
  }

  /** Writes a checkpoint (fenced). @throws LeaseLostError when the run no longer owns the job */
  async record(step: Omit<StepRow, 'jobId'>): Promise<void> {
    this.assertOpen();
    const row: StepRow = { jobId: this.fence.jobId, ...step };
    const ok = await this.track(this.storage.stepRecord({ fence: this.fence, step: row }));
    if (!ok) throw new LeaseLostError('the checkpoint was not stored: this run no longer owns the job');
    this.#steps?.set(row.stepIndex, row);
  }

  /** Registers an in-flight write so {@link settle} can wait for it. */
  track<T>(p: Promise<T>): Promise<T> {
    this.#writes.add(p);
    const drop = (): void => {
      this.#writes.delete(p);
    };
    p.then(drop, drop);
    return p;
  }

  /** Waits for every in-flight checkpoint write to commit or fail. */
  async settle(): Promise<void> {
    while (this.#writes.size > 0) await Promise.allSettled([...this.#writes]);
  }

  async #load(): Promise<Map<number, StepRow>> {
    if (this.#steps) return this.#steps;
    this.#loading ??= this.storage.stepList({ jobId: this.fence.jobId }).then((rows) => {
      this.#steps = new Map(rows.map((r) => [r.stepIndex, r]));
      return this.#steps;
    });
    return this.#loading;
  }
}
