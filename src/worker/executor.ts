/**
 * Runs ONE claimed job: builds its context, arms the timeout, awaits the handler (or a
 * suspension, a lost lease, a shutdown), and hands the outcome to the completer. Never
 * sees SQL. Resolves when the worker slot can be reused.
 * @internal
 */
import { JobTimeoutError, NoRetryError, SerializationError, UnknownJobTypeError } from '../errors.js';
import { deferred } from '../internal/deferred.js';
import type { QueueCore } from '../queue/core.js';
import { toJob } from '../queue/job-mapper.js';
import { encodeJson } from '../storage/codec.js';
import type { Fence, JobFinishItem, JobRow } from '../storage/storage.js';
import type { Job, JobStatus } from '../types.js';
import { WorkflowContext, type SuspendReason } from '../workflow/context.js';
import type { JobContext } from '../workflow/job-context.js';
import { Replay } from '../workflow/replay.js';
import type { Completer } from './completer.js';
import { asError, decideFailure, type BackoffFn } from './retry-policy.js';

type Outcome =
  | { kind: 'ok'; value: unknown }
  | { kind: 'error'; error: unknown }
  | { kind: 'suspended'; reason: SuspendReason }
  | { kind: 'abandoned' };

/** One job in flight on this worker. @internal */
export class JobRun {
  readonly fence: Fence;
  readonly #abort = new AbortController();
  readonly #outcome = deferred<Outcome>();

  constructor(readonly row: JobRow, workerId: string) {
    this.fence = { jobId: row.id, workerId, runCount: row.runCount };
  }

  /** The handler's abort signal. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Stops waiting for the handler: fires its abort signal and frees the slot without a write. */
  abandon(reason: Error): void {
    this.#abort.abort(reason);
    this.#outcome.resolve({ kind: 'abandoned' });
  }

  /** Fires the abort signal and ends the run with this error as its outcome. */
  fail(reason: Error): void {
    this.#abort.abort(reason);
    this.#outcome.resolve({ kind: 'error', error: reason });
  }

  /** @internal */
  settle(o: Outcome): void {
    this.#outcome.resolve(o);
  }

  /** @internal */
  get outcome(): Promise<Outcome> {
    return this.#outcome.promise;
  }
}

/** Dependencies of the executor. @internal */
export interface ExecutorDeps {
  core: QueueCore;
  completer: Completer;
  backoff: BackoffFn;
}

/** Runs a claimed job to an outcome and records it. @internal */
export async function executeJob(deps: ExecutorDeps, run: JobRun): Promise<void> {
  const { core } = deps;
  const row = run.row;
  let job: Job;
  try {
    job = toJob(row);
  } catch (err) {
    await record(deps, run, snapshotOf(row), { outcome: 'failed', error: `cannot decode job payload: ${String(err)}` }, new SerializationError(String(err)));
    return;
  }
  const at = new Date();
  core.hub.emit({ type: 'job.started', job, at });
  const handler = core.handlers.get(row.type) as ((args: unknown, ctx: JobContext<unknown>) => unknown) | undefined;
  if (!handler) {
    const err = new UnknownJobTypeError(row.type);
    await record(deps, run, job, { outcome: 'failed', error: err.message }, err);
    return;
  }
  const replay = new Replay(core.storage, run.fence);
  const ctx = new WorkflowContext(job, {
    core,
    replay,
    abortSignal: run.signal,
    logger: core.logger,
    suspended: (reason) => run.settle({ kind: 'suspended', reason }),
  });
  let timer: NodeJS.Timeout | undefined;
  if (row.timeoutMs !== null) timer = setTimeout(() => run.fail(new JobTimeoutError(row.timeoutMs ?? 0)), row.timeoutMs);
  Promise.resolve()
    .then(() => handler(job.args, ctx))
    .then(
      (value) => run.settle({ kind: 'ok', value }),
      (error: unknown) => run.settle({ kind: 'error', error }),
    );
  const outcome = await run.outcome;
  if (timer) clearTimeout(timer);
  // A checkpoint racing the end of the run still commits before the outcome is written.
  await replay.settle();
  replay.close();
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

type Verdict = { outcome: 'completed'; resultJson: string | null } | { outcome: 'failed'; error: string } | { outcome: 'retry'; error: string; delayMs: number };

async function record(deps: ExecutorDeps, run: JobRun, job: Job, v: Verdict, err?: Error, value?: unknown): Promise<void> {
  const { core } = deps;
  let applied: boolean;
  try {
    applied = await deps.completer.finish({ ...run.fence, ...v } as JobFinishItem);
  } catch {
    // The database failed: the lease will expire and the job will be reclaimed.
    return;
  }
  if (!applied) {
    core.logger.debug('outcome not recorded: the run no longer owns the job', { jobId: job.id });
    return;
  }
  const now = new Date();
  switch (v.outcome) {
    case 'completed':
      core.hub.emit({ type: 'job.completed', job: withStatus(job, 'completed', { completedAt: now, result: value }), at: now });
      break;
    case 'failed':
      core.hub.emit({ type: 'job.failed', job: withStatus(job, 'failed', { completedAt: now, lastError: v.error }), error: v.error, at: now }, err);
      break;
    case 'retry':
      core.hub.emit(
        { type: 'job.retrying', job: withStatus(job, 'pending', { lastError: v.error }), error: v.error, retryAt: new Date(now.getTime() + v.delayMs), at: now },
        err,
      );
      break;
  }
}

function withStatus(job: Job, status: JobStatus, extra: Partial<Job>): Job {
  return Object.freeze({ ...job, ...extra, status });
}

function snapshotOf(row: JobRow): Job {
  return Object.freeze({
    id: row.id,
    type: row.type,
    queue: row.queue,
    args: undefined,
    status: row.status,
    priority: row.priority,
    attempt: row.attempt,
    maxRetries: row.maxRetries,
    runAt: new Date(row.runAt),
    createdAt: new Date(row.createdAt),
    meta: {},
  });
}
