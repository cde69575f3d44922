/**
 * The step cursor of one execution: hands out step positions, loads the job's checkpoints
 * once (lazily, so plain jobs never pay for it), checks determinism, and writes new
 * checkpoints fenced by the run. Tracks in-flight writes so the executor can let a
 * checkpoint commit before it records the run's outcome.
 * @internal
 */
import { DeterminismError, LeaseLostError } from '../errors.js';
import type { Fence, StepRecordParams, StepRow, Storage } from '../storage/storage.js';

/** Step cursor and checkpoint cache of one run. @internal */
export class Replay {
  #next = 0;
  #steps: Map<number, StepRow> | undefined;
  #loading: Promise<Map<number, StepRow>> | undefined;
  #writes: Set<Promise<unknown>> | undefined;
  #closed = false;
  #diverged: DeterminismError | undefined;

  /**
   * @param storage where checkpoints are read from (and written, unless `write` is given)
   * @param fence the run
   * @param write a (coalescing) writer for fenced checkpoints; default `storage.stepRecord`
   */
  constructor(
    private readonly storage: Storage,
    readonly fence: Fence,
    private readonly write: (p: StepRecordParams) => Promise<boolean> = (p) => storage.stepRecord(p),
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
   * The replay divergence this run hit, if any. Once set, every later durable operation throws
   * it again and the run fails with it even if the handler caught it (a handler that swallowed
   * it would otherwise go on against a history that is not its own).
   */
  get diverged(): DeterminismError | undefined {
    return this.#diverged;
  }

  /**
   * The stored checkpoint at `index`, if any. Throws `DeterminismError` when it has another name.
   */
  async recorded(index: number, name: string): Promise<StepRow | undefined> {
    this.assertOpen();
    if (this.#diverged) throw this.#diverged;
    const steps = await this.#load();
    if (this.#diverged) throw this.#diverged;
    const row = steps.get(index);
    if (row && row.stepName !== name) {
      this.#diverged = new DeterminismError(
        `workflow replay diverged at step ${index}: the history has "${row.stepName}" but the code now asks for "${name}" (steps must be called in the same order on every run)`,
      );
      throw this.#diverged;
    }
    return row;
  }

  /** Writes a checkpoint (fenced). @throws LeaseLostError when the run no longer owns the job */
  async record(step: Omit<StepRow, 'jobId'>): Promise<void> {
    this.assertOpen();
    const row: StepRow = { jobId: this.fence.jobId, ...step };
    const ok = await this.track(this.write({ fence: this.fence, step: row }));
    if (!ok) throw new LeaseLostError('the checkpoint was not stored: this run no longer owns the job');
    this.#steps?.set(row.stepIndex, row);
  }

  /** Registers an in-flight write so {@link settle} can wait for it. */
  track<T>(p: Promise<T>): Promise<T> {
    const writes = (this.#writes ??= new Set());
    writes.add(p);
    const drop = (): void => {
      writes.delete(p);
    };
    p.then(drop, drop);
    return p;
  }

  /** True while a checkpoint write is in flight. */
  get busy(): boolean {
    return this.#writes !== undefined && this.#writes.size > 0;
  }

  /** Waits for every in-flight checkpoint write to commit or fail. */
  async settle(): Promise<void> {
    while (this.#writes !== undefined && this.#writes.size > 0) await Promise.allSettled([...this.#writes]);
  }

  async #load(): Promise<Map<number, StepRow>> {
    if (this.#steps) return this.#steps;
    // Checkpoints are written only by runs of this job, fenced by run_count: a first run has none.
    if (this.fence.runCount === 1) return (this.#steps = new Map());
    this.#loading ??= this.storage.stepList({ jobId: this.fence.jobId }).then((rows) => {
      this.#steps = new Map(rows.map((r) => [r.stepIndex, r]));
      return this.#steps;
    });
    return this.#loading;
  }
}
