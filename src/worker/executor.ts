/**
 * Runs ONE claimed job: builds its context, arms the timeout, awaits the handler (or a
 * suspension, a lost lease, a shutdown), and hands the outcome to the completer. Never
 * sees SQL. Resolves when the worker slot can be reused.
 * @internal
 */
import { JobTimeoutError, NoRetryError, SerializationError, UnknownJobTypeError } from '../errors.js';
import type { QueueCore } from '../core/queue-core.js';
import { toJob } from '../core/job-mapper.js';
import { realClock, type Clock, type TimerHandle } from '../internal/clock.js';
import { storableErrorText } from '../internal/error-text.js';
import { jobLogFields, withFields } from '../internal/job-logger.js';
import type { Applied } from '../internal/write-retry.js';
import { encodeJson } from '../storage/codec.js';
import type { Fence, JobFinishItem, JobRow, StepRecordParams } from '../storage/storage.js';
import type { Job, JobProgress, JobStatus, Logger } from '../types.js';
import { WorkflowContext, type ContextHost, type SuspendReason } from '../workflow/context.js';
import type { JobContext } from '../workflow/job-context.js';
import { Replay, type RunLease } from '../workflow/replay.js';
import type { Completer, LeaseHolder } from './completer.js';
import { ProgressWriter } from './progress-writer.js';
import { asError, decideFailure, type BackoffFn } from './retry-policy.js';
import { invokeThrough } from './run-middleware.js';

type Outcome =
  | { kind: 'ok'; value: unknown }
  | { kind: 'error'; error: unknown }
  | { kind: 'suspended'; reason: SuspendReason }
  | { kind: 'abandoned' };

/** How a run writes: its worker's lease length and checkpoint writer. @internal */
export interface RunWiring {
  /** The lease a probe renews (after a failed checkpoint write). */
  leaseMs: number;
  /** A (coalescing) checkpoint writer; default `storage.stepRecord`. */
  writeStep?: ((p: StepRecordParams) => Promise<Applied>) | undefined;
  /** The worker's logger (default the queue's); the run's lines add the job's fields to it. */
  logger?: Logger | undefined;
  /** The worker's coalescing progress writer; default one of the run's own. */
  progress?: ProgressWriter | undefined;
}

/**
 * One job in flight on this worker. It is also the workflow context's host: its replay cursor
 * and abort controller are created on first use, so a plain job allocates neither.
 *
 * A run holds its job's lease until the worker learns otherwise (`leaseLost`): a heartbeat that
 * no longer reports it, heartbeats failing for longer than the lease, the worker claiming the
 * job again, or shutdown. Losing the lease aborts a handler still going and stops retries of
 * the run's outcome and checkpoint writes.
 * @internal
 */
export class JobRun implements ContextHost, LeaseHolder {
  readonly fence: Fence;
  /** Set by the worker once this run's slot was given back (see `ExecutorDeps.onSettled`). */
  slotFreed = false;
  /**
   * Local time (ms) from which the lease is known to run: when the claim returned, then the send
   * time of each heartbeat that renewed it. The lease cannot outlast `leaseFrom + leaseMs`.
   */
  leaseFrom = Date.now();
  /** Resolves with the run's outcome (the handler's, a suspension, a timeout, or abandonment). */
  readonly outcome: Promise<Outcome>;
  #resolve!: (o: Outcome) => void;
  #abort: AbortController | undefined;
  #replay: Replay | undefined;
  #settled = false;
  #over = false;
  #leaseHeld = true;
  #logger: Logger | undefined;
  #progress: ProgressWriter | undefined;

  constructor(
    readonly row: JobRow,
    workerId: string,
    readonly core: QueueCore,
    private readonly wiring: RunWiring = { leaseMs: 30_000 },
  ) {
    this.fence = { jobId: row.id, workerId, runCount: row.runCount };
    this.outcome = new Promise<Outcome>((resolve) => (this.#resolve = resolve));
  }

  /** False once the run lost (or gave up) its lease. */
  get leaseHeld(): boolean {
    return this.#leaseHeld;
  }

  /**
   * The run no longer owns its job: aborts the handler if it is still going (see `abandon`) and
   * stops retrying the run's writes — also when the handler is already done and its outcome is
   * still being written. With `afterWrites`, the handler is aborted only once its fenced writes
   * in flight have settled (one of them may be a suspension that explains the lost lease).
   */
  leaseLost(reason: Error, afterWrites = false): void {
    this.#leaseHeld = false;
    // A fenced write in flight settles the run itself: a suspension that just committed (the job
    // is `waiting`, so no longer held) is not a lost lease; a refused write is one.
    const replay = this.#replay;
    if (afterWrites && replay?.busy) {
      // settle() waits with allSettled and never rejects; abandon() does not throw.
      void replay.settle().then(() => this.abandon(reason));
      return;
    }
    this.abandon(reason);
  }

  /** Whether the abort signal fired (without making the signal when nobody asked for it yet). */
  get aborted(): boolean {
    return this.#abort?.signal.aborted === true;
  }

  /** The handler's abort signal. */
  get signal(): AbortSignal {
    return (this.#abort ??= new AbortController()).signal;
  }

  /** @internal ContextHost */
  get abortSignal(): AbortSignal {
    return this.signal;
  }

  /**
   * @internal ContextHost: the worker's logger with the job's `jobId`, `type`, `queue`, `attempt`
   * and `workerId` on every line (made on first use).
   */
  get logger(): Logger {
    return (this.#logger ??= withFields(this.wiring.logger ?? this.core.logger, jobLogFields(this.row, this.fence.workerId)));
  }

  /** @internal ContextHost: the step cursor, created on the first durable operation. */
  get replay(): Replay {
    if (this.#replay === undefined) {
      this.#replay = new Replay(this.core.storage, this.fence, this.wiring.writeStep, this.#lease());
      if (this.#over) this.#replay.close();
    }
    return this.#replay;
  }

  /** True while a fenced checkpoint or suspension write of this run is in flight. */
  get writing(): boolean {
    return this.#replay?.busy ?? false;
  }

  /** @internal ContextHost: the suspension is durably written. */
  suspended(reason: SuspendReason): void {
    this.settle({ kind: 'suspended', reason });
  }

  /** @internal ContextHost: a checked `ctx.progress` report (dropped once the run is over). */
  reportProgress(value: number, message: string | null): void {
    if (this.#over) return;
    this.#progress ??= this.wiring.progress ?? new ProgressWriter(this.core.storage, this.core.hub, this.logger);
    this.#progress.report(this, value, message);
  }

  /** @internal ContextHost: writes the pending progress report before a suspension. */
  flushProgress(): Promise<void> {
    return this.#progress?.flushRun(this) ?? Promise.resolve();
  }

  /** The latest progress this run stored, if any (event snapshots carry it). */
  get storedProgress(): JobProgress | undefined {
    return this.#progress?.stored(this);
  }

  /**
   * Stops waiting for the handler: fires its abort signal and frees the slot without a write.
   * The run gives up its lease (no write of it is retried any more, and its handler starts no
   * new durable operation). Aborts nothing once the run has an outcome (a run that already
   * suspended or returned is not aborted).
   */
  abandon(reason: Error): void {
    this.#leaseHeld = false;
    if (this.#settled) return;
    // A handler that ignores its signal makes no further durable write (writes in flight finish).
    this.#over = true;
    this.#replay?.close();
    this.#fire(reason);
    this.settle({ kind: 'abandoned' });
  }

  /** Fires the abort signal and ends the run with this error as its outcome (unless it has one). */
  fail(reason: Error): void {
    if (this.#settled) return;
    this.#fire(reason);
    this.settle({ kind: 'error', error: reason });
  }

  /** @internal */
  settle(o: Outcome): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(o);
  }

  /**
   * Ends durable work for this run: lets in-flight checkpoints commit, then refuses further
   * ones (a zombie handler still going). Returns the replay divergence the run hit, if any.
   */
  async close(): Promise<Error | undefined> {
    this.#over = true;
    const replay = this.#replay;
    if (replay?.busy) await replay.settle();
    replay?.close();
    // The last progress report is written before the outcome (bounded; fenced, so a write
    // that comes late can never change the job once the outcome is stored).
    const progress = this.#progress;
    if (progress) {
      await progress.end(this);
      if (progress !== this.wiring.progress) await progress.stop();
    }
    return replay?.diverged;
  }

  #fire(reason: Error): void {
    (this.#abort ??= new AbortController()).abort(reason);
  }

  /** What checkpoint retries need: whether the lease is held, and a probe that renews it. */
  #lease(): RunLease {
    const { storage } = this.core;
    const { jobId, workerId, runCount } = this.fence;
    const signal = this.signal;
    return {
      held: () => this.#leaseHeld && !signal.aborted,
      probe: async () => (await storage.jobHeartbeat({ workerId, leaseMs: this.wiring.leaseMs, runs: [{ jobId, runCount }] })).includes(jobId),
      signal,
    };
  }
}

/** Dependencies of the executor (one object per worker). @internal */
export interface ExecutorDeps {
  core: QueueCore;
  completer: Completer;
  backoff: BackoffFn;
  /**
   * The handler is done (its checkpoints committed): the slot may run another job while the
   * outcome is being written. Called once per run, before `executeJob` resolves.
   */
  onSettled?: (run: JobRun) => void;
}

type AnyHandler = (args: unknown, ctx: JobContext<unknown>) => unknown;

/** Runs a claimed job to an outcome and records it. Resolves once the outcome is written. @internal */
export async function executeJob(deps: ExecutorDeps, run: JobRun): Promise<void> {
  const { core } = deps;
  const row = run.row;
  let job: Job;
  try {
    job = toJob(row);
  } catch (err) {
    deps.onSettled?.(run);
    await record(deps, run, toJob(row, { decode: false }), { outcome: 'failed', error: `cannot decode job payload: ${String(err)}` }, err instanceof SerializationError ? err : new SerializationError(String(err)));
    return;
  }
  // The start time is the one the claim stored (started_at, on the database clock).
  if (core.hub.wants('job.started')) core.hub.emit({ type: 'job.started', job, at: job.startedAt ?? new Date() });
  const handler = core.handlers.get(row.type) as AnyHandler | undefined;
  if (!handler) {
    const err = new UnknownJobTypeError(row.type);
    deps.onSettled?.(run);
    await record(deps, run, job, { outcome: 'failed', error: err.message }, err);
    return;
  }
  // A run that can have history reads it first, so `ctx.patched` answers synchronously (a first run has none: no cost).
  if (row.runCount > 1) await run.replay.preload();
  // The timeout is armed on the queue's host clock (virtual under the testing kit); a job
  // without a timeout reads no clock.
  let clock: Clock | undefined;
  let timer: TimerHandle | undefined;
  if (row.timeoutMs !== null) {
    clock = core.clock ?? realClock;
    timer = clock.setTimeout(() => run.fail(new JobTimeoutError(row.timeoutMs ?? 0)), row.timeoutMs);
  }
  // The run may have lost its lease while reading: then it is over already (abandoned).
  if (run.leaseHeld) invoke(handler, job, run);
  const settled = await run.outcome;
  if (timer) clock?.clearTimeout(timer);
  // A checkpoint racing the end of the run still commits before the outcome is written.
  const diverged = await run.close();
  deps.onSettled?.(run);
  // A replay divergence fails the run even when the handler caught the DeterminismError.
  const outcome: Outcome = diverged && (settled.kind === 'ok' || settled.kind === 'error') ? { kind: 'error', error: diverged } : settled;
  switch (outcome.kind) {
    case 'abandoned':
      return;
    case 'suspended':
      if (core.hub.hasSubscribers) core.hub.emit({ type: 'job.suspended', job: { ...job, status: 'waiting' }, reason: outcome.reason, at: new Date() });
      return;
    case 'ok': {
      let resultJson: string | null;
      try {
        resultJson = encodeJson(outcome.value, 'result', core.defaults.maxPayloadBytes);
      } catch (err) {
        await record(deps, run, job, { outcome: 'failed', error: (err as Error).message }, new NoRetryError(err));
        return;
      }
      await record(deps, run, job, { outcome: 'completed', resultJson }, undefined, outcome.value);
      return;
    }
    case 'error': {
      const verdict = decideFailure(outcome.error, row.attempt, row.maxRetries, deps.backoff);
      await record(deps, run, job, verdict, asError(outcome.error));
      return;
    }
  }
}

/** Starts the handler; its result or error (sync or async) becomes the run's outcome. */
function invoke(handler: AnyHandler, job: Job, run: JobRun): void {
  const layers = run.core.middleware?.run;
  if (layers !== undefined && layers.length > 0) return invokeThrough(layers, job, run, () => handler(job.args, new WorkflowContext(job, run)));
  let result: unknown;
  try {
    result = handler(job.args, new WorkflowContext(job, run));
  } catch (error) {
    run.settle({ kind: 'error', error });
    return;
  }
  if (result !== null && (typeof result === 'object' || typeof result === 'function') && typeof (result as PromiseLike<unknown>).then === 'function') {
    Promise.resolve(result).then(
      (value) => run.settle({ kind: 'ok', value }),
      (error: unknown) => run.settle({ kind: 'error', error }),
    );
  } else {
    run.settle({ kind: 'ok', value: result });
  }
}

type Verdict = { outcome: 'completed'; resultJson: string | null } | { outcome: 'failed'; error: string } | { outcome: 'retry'; error: string; delayMs: number };

async function record(deps: ExecutorDeps, run: JobRun, job: Job, v: Verdict, err?: Error, value?: unknown): Promise<void> {
  const { core } = deps;
  const f = run.fence;
  // Error text is stored as every database can store it (no NUL, no lone surrogate, bounded).
  const verdict: Verdict = v.outcome === 'completed' ? v : { ...v, error: storableErrorText(v.error) };
  const item: JobFinishItem = { jobId: f.jobId, workerId: f.workerId, runCount: f.runCount, ...verdict };
  const out = await deps.completer.finish(item, run);
  // Event snapshots carry the latest progress this run stored.
  const progress = run.storedProgress;
  if (progress) job = Object.freeze({ ...job, progress });
  if (out === undefined) {
    run.logger.debug('outcome not recorded: the run no longer owns the job');
    return;
  }
  const stored = out.item;
  // Events carry the time the database stored the outcome (completed_at), not this host's clock.
  const at = new Date(out.at);
  const hub = core.hub;
  switch (stored.outcome) {
    case 'completed':
      if (hub.wants('job.completed')) {
        hub.emit({ type: 'job.completed', job: withStatus(job, 'completed', { completedAt: at, result: value }), at });
      }
      break;
    case 'failed':
      if (hub.wants('job.failed')) {
        // The stored failure may replace an outcome that could not be stored: report what was stored.
        const cause = stored === item ? err : new Error(stored.error);
        hub.emit({ type: 'job.failed', job: withStatus(job, 'failed', { completedAt: at, lastError: stored.error }), error: stored.error, at }, cause);
      }
      break;
    case 'retry':
      if (hub.wants('job.retrying')) {
        hub.emit(
          { type: 'job.retrying', job: withStatus(job, 'pending', { lastError: stored.error }), error: stored.error, retryAt: new Date(at.getTime() + stored.delayMs), at },
          err,
        );
      }
      break;
  }
}

function withStatus(job: Job, status: JobStatus, extra: Partial<Job>): Job {
  return Object.freeze({ ...job, ...extra, status });
}

