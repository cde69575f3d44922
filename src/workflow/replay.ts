/**
 * The step cursor of one execution: hands out step positions, loads the job's checkpoints
 * once (lazily, so plain jobs never pay for it), checks determinism, and writes new
 * checkpoints fenced by the run. Tracks in-flight writes so the executor can let a
 * checkpoint commit before it records the run's outcome.
 *
 * A checkpoint write that fails is retried with backoff while the run holds its lease (see
 * `writeWhileHeld`): the step already ran, and dropping its checkpoint would cost the job an
 * attempt and run the step again. A retry that finds the checkpoint already there (the first
 * attempt committed, its reply was lost) counts as written. A checkpoint that can never be
 * written (it alone keeps failing while the lease is confirmed) fails the `ctx.call` with the
 * storage error, as does a lost lease with `LeaseLostError`. Step error text is stored as
 * every database can store it (see `storableErrorText`).
 *
 * `ctx.patched` answers synchronously from the history, which the executor reads before the
 * handler starts when the run can have one ({@link Replay.preload}). Its answer is stored as a
 * checkpoint outside the step sequence (see `patches.ts`), written in the background through the
 * same fenced, retried path; every later checkpoint and durable operation of the run waits until
 * those answers are stored (and fails with the error of one that could not be), and so does the
 * run's outcome (through {@link Replay.settle}). So a crash never leaves a later step stored
 * without the answer that led to it.
 * @internal
 */
import { CodecError, DeterminismError, LeaseLostError, StorageError } from '../errors.js';
import { decodeJson } from '../storage/codec.js';
import { storableErrorText } from '../internal/error-text.js';
import { writeWhileHeld, type Applied } from '../internal/write-retry.js';
import type { Fence, StepRecordParams, StepRow, Storage } from '../storage/storage.js';
import { checkPatchId, decidePatch, patchStepName, storedPatches, type StoredPatches } from './patches.js';

/** How a {@link Replay.durable} call ended: its value, or the run lost its lease first. @internal */
export type DurableResult<R> = { kind: 'done'; value: R; retried: boolean } | { kind: 'lost' };

/** The run's lease, as checkpoint retries see it. @internal */
export interface RunLease {
  /** Whether the run may still hold its lease. */
  held: () => boolean;
  /** Renews the lease: true when still held, false when lost; throws when the database failed. */
  probe: () => Promise<boolean>;
  /** Fires when the run is over or lost its lease (ends the wait between retries). */
  signal: AbortSignal;
}

/** Step cursor and checkpoint cache of one run. @internal */
export class Replay {
  #next = 0;
  #steps: Map<number, StepRow> | undefined;
  #loading: Promise<Map<number, StepRow>> | undefined;
  #writes: Set<Promise<unknown>> | undefined;
  #closed = false;
  #diverged: DeterminismError | CodecError | undefined;
  #patches: StoredPatches | undefined;
  /** Answer writes in flight; later durable work waits for them. */
  #marks: Set<Promise<void>> | undefined;
  /** Why an answer could not be stored (every later durable operation fails with it). */
  #markFailure: { error: unknown } | undefined;
  readonly #write: (p: StepRecordParams) => Promise<Applied>;

  /**
   * @param storage where checkpoints are read from (and written, unless `write` is given)
   * @param fence the run
   * @param write a (coalescing) writer for fenced checkpoints; default `storage.stepRecord`
   * @param lease the run's lease; without it a failed checkpoint write is not retried
   */
  constructor(
    private readonly storage: Storage,
    readonly fence: Fence,
    write?: (p: StepRecordParams) => Promise<Applied>,
    private readonly lease?: RunLease,
  ) {
    this.#write = write ?? ((p) => storage.stepRecord(p));
  }

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
  get diverged(): DeterminismError | CodecError | undefined {
    return this.#diverged;
  }

  /**
   * A payload of this run's history (a checkpoint, a consumed signal, a child's result) that the
   * queue's codec cannot decode: like a divergence, every later durable operation throws `error`
   * and the run fails with it even if the handler caught it (going on without the payload would
   * run the workflow on a history that is not its own). Returns `error`, to be thrown.
   */
  undecodable(error: CodecError): CodecError {
    this.#diverged ??= error;
    return error;
  }

  /** Decodes a payload of this run's history; one that cannot be decoded ends the run ({@link undecodable}). */
  decode(text: string | null, what: string): unknown {
    try {
      return decodeJson(text, what);
    } catch (e) {
      throw e instanceof CodecError ? this.undecodable(e) : e;
    }
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
        `workflow replay diverged at step ${index}: the history has "${row.stepName}" but the code now asks for "${name}" (steps must be called in the same order on every run: put the change behind ctx.patched(id), or cancel the run and start it again)`,
      );
      throw this.#diverged;
    }
    return row;
  }

  /** Notes a checkpoint the storage recorded itself (a timer's, by `jobSuspendUntil`). */
  remember(step: Omit<StepRow, 'jobId'>): void {
    this.#steps?.set(step.stepIndex, { jobId: this.fence.jobId, ...step });
  }

  /** Writes a checkpoint (fenced). @throws LeaseLostError when the run no longer owns the job */
  async record(step: Omit<StepRow, 'jobId'>): Promise<void> {
    this.assertOpen();
    const marks = this.#marksStored();
    if (marks !== undefined) await marks;
    const row: StepRow = { jobId: this.fence.jobId, ...step, error: step.error === null ? null : storableErrorText(step.error) };
    const ok = await this.track(this.#writeHeld({ fence: this.fence, step: row }));
    if (!ok) throw new LeaseLostError('the checkpoint was not stored: this run no longer owns the job');
    this.#steps?.set(row.stepIndex, row);
  }

  /** Writes a checkpoint, retried while the run holds its lease. Resolves whether it is stored. */
  async #writeHeld(p: StepRecordParams): Promise<boolean> {
    const lease = this.lease;
    if (lease === undefined) {
      const applied = await this.#write(p);
      return applied === 'unsure' ? this.#storedAlready(p.step) : applied;
    }
    const r = await writeWhileHeld<StepRecordParams, Applied>({
      item: p,
      first: this.#write,
      alone: (i) => this.storage.stepRecord(i),
      probe: lease.probe,
      held: lease.held,
      signal: lease.signal,
    });
    switch (r.kind) {
      case 'written':
        return r.value === true || ((r.value === 'unsure' || r.retried) && (await this.#storedAlready(p.step)));
      case 'lost':
        return false;
      case 'unwritable':
        throw r.error;
    }
  }

  /** Whether exactly this checkpoint is stored (an earlier attempt committed, its reply was lost). */
  async #storedAlready(step: StepRow): Promise<boolean> {
    const rows = await this.storage.stepList({ jobId: step.jobId });
    const s = rows.find((r) => r.stepIndex === step.stepIndex);
    return s !== undefined && s.stepName === step.stepName && s.status === step.status && s.outputJson === step.outputJson && s.error === step.error;
  }

  /**
   * Runs one of the run's one-call durable operations (a timer, a signal wait, a suspension, a
   * fan-out read), tracked like a checkpoint write and, like one, retried with backoff while the
   * run holds its lease when the storage failed (`StorageError`): each of them is fenced or only
   * reads, so running it again is safe. `call(retry)` is told when an earlier attempt failed: it
   * may have committed before its reply was lost, and the caller then reads what is stored. Any
   * other error (a typed refusal, a closed storage) is thrown at once; a write that keeps failing
   * while the lease is confirmed is thrown as checkpoint writes are.
   */
  durable<R>(call: (retry: boolean) => Promise<R>): Promise<DurableResult<R>> {
    this.assertOpen();
    const marks = this.#marksStored();
    return this.track(marks === undefined ? this.#durable(call) : marks.then(() => this.#durable(call)));
  }

  /**
   * Reads the run's checkpoints before its handler starts, so {@link patched} can answer
   * synchronously; retried like a durable operation while the run holds its lease. Called only
   * for a run that can have history (not its job's first run). Never rejects: when the read
   * fails, `patched` throws and `ctx.call` reads again.
   */
  async preload(): Promise<void> {
    if (this.#steps !== undefined || this.fence.runCount === 1) return;
    try {
      await this.durable(() => this.#load());
    } catch {
      // Reported by `patched` (a StorageError, so the attempt is retried).
    }
  }

  /**
   * `ctx.patched(id)`: the run's stored answer for `id`, or — asked for the first time — the
   * decision (see `patches.ts`), stored in the background; later durable work of the run waits
   * for it. Synchronous.
   * @throws InvalidArgumentError for a bad id; LeaseLostError when the run is over;
   * DeterminismError after a divergence; StorageError when the history could not be read
   */
  patched(id: string): boolean {
    const patchId = checkPatchId(id);
    this.assertOpen();
    if (this.#diverged) throw this.#diverged;
    const history = this.#history();
    const stored = (this.#patches ??= storedPatches(history));
    const known = stored.answers.get(patchId);
    if (known !== undefined) return known;
    const answer = decidePatch(history, this.#next);
    stored.answers.set(patchId, answer);
    const stepIndex = stored.nextIndex--;
    this.#mark({ jobId: this.fence.jobId, stepIndex, stepName: patchStepName(patchId), status: 'completed', outputJson: JSON.stringify(answer), error: null });
    return answer;
  }

  /** The loaded history; a first run has none. */
  #history(): Map<number, StepRow> {
    if (this.#steps !== undefined) return this.#steps;
    if (this.fence.runCount === 1) return (this.#steps = new Map());
    throw new StorageError("ctx.patched cannot answer: the run's checkpoints could not be read before the handler started (the attempt is retried)");
  }

  /** Stores an answer in the background, tracked like a checkpoint write. */
  #mark(row: StepRow): void {
    const marks = (this.#marks ??= new Set());
    const stored = this.track(this.#writeHeld({ fence: this.fence, step: row })).then((ok) => {
      if (!ok) throw new LeaseLostError('the answer of ctx.patched was not stored: this run no longer owns the job');
    });
    const done: Promise<void> = stored.then(
      () => void marks.delete(done),
      (error: unknown) => {
        this.#markFailure ??= { error };
        marks.delete(done);
      },
    );
    marks.add(done);
  }

  /**
   * Resolves once every answer of this run is stored, rejecting with the error of one that could
   * not be; `undefined` (nothing to wait for) in the usual case, so steps pay no extra turn.
   */
  #marksStored(): Promise<void> | undefined {
    const failed = this.#markFailure;
    if (failed !== undefined) return Promise.reject(failed.error);
    const marks = this.#marks;
    if (marks === undefined || marks.size === 0) return undefined;
    return Promise.all([...marks]).then(() => {
      if (this.#markFailure !== undefined) throw this.#markFailure.error;
    });
  }

  async #durable<R>(call: (retry: boolean) => Promise<R>): Promise<DurableResult<R>> {
    const lease = this.lease;
    if (lease === undefined) return { kind: 'done', value: await call(false), retried: false };
    let tries = 0;
    type Try = { ok: true; value: R } | { ok: false; error: unknown };
    const attempt = async (): Promise<Try> => {
      try {
        return { ok: true, value: await call(tries++ > 0) };
      } catch (err) {
        if (err instanceof StorageError) throw err; // retried
        return { ok: false, error: err };
      }
    };
    const r = await writeWhileHeld<undefined, Try>({ item: undefined, first: attempt, alone: attempt, probe: lease.probe, held: lease.held, signal: lease.signal });
    switch (r.kind) {
      case 'written':
        if (!r.value.ok) throw r.value.error;
        return { kind: 'done', value: r.value.value, retried: r.retried };
      case 'lost':
        return { kind: 'lost' };
      case 'unwritable':
        throw r.error;
    }
  }

  /** The checkpoint stored at `index` right now (read from the database, not the cache). */
  async storedStep(index: number): Promise<StepRow | undefined> {
    return (await this.storage.stepList({ jobId: this.fence.jobId })).find((r) => r.stepIndex === index);
  }

  /**
   * Whether this run's suspension is stored: the job is `waiting` at this run's run count (only
   * a fenced suspension of this run turns it so). Asked when a retried suspension was refused
   * (its first attempt may have committed before its reply was lost); a job already woken again
   * reads as not suspended, which ends the run as a lost lease does.
   */
  async suspendedByThisRun(): Promise<boolean> {
    const row = await this.storage.jobGet({ id: this.fence.jobId });
    return row !== undefined && row.runCount === this.fence.runCount && row.status === 'waiting';
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
    this.#loading ??= this.storage.stepList({ jobId: this.fence.jobId }).then(
      (rows) => {
        this.#steps ??= new Map(rows.map((r) => [r.stepIndex, r]));
        return this.#steps;
      },
      (err: unknown) => {
        // A failed read is tried again by the next caller.
        this.#loading = undefined;
        throw err;
      },
    );
    return this.#loading;
  }
}
