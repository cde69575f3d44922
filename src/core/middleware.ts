/**
 * Middleware: functions the engine calls around every run (`queue.use`), every step a workflow
 * runs (`queue.useStep`) and every job it enqueues (`queue.useEnqueue`), outermost (first
 * registered) first. With none registered, the engine skips all of this after a length check.
 * @module
 */
import { InvalidStateError } from '../errors.js';
import type { EnqueueOptions, Job, JsonValue } from '../types.js';

/** What a run middleware learns about the run besides its job. */
export interface RunInfo {
  /** The id of the worker running the job. */
  readonly workerId: string;
  /** How many times the job was claimed so far, this run included (attempts, resumes after a suspension, reclaims). */
  readonly runCount: number;
  /** The handler's abort signal (`ctx.abortSignal`). */
  readonly signal: AbortSignal;
}

/**
 * A function around every run of a handler by this queue's workers. It runs in the run's async
 * context: whatever context it sets around `next()` (an OpenTelemetry context, an
 * `AsyncLocalStorage` store) is active in the handler and in what the handler enqueues.
 *
 * `next()` runs the next middleware, then the handler; it resolves with the handler's result and
 * rejects with its error. What the outermost middleware resolves with is the job's result; a
 * throw fails the run like a handler throw (retried per the job's `retries`). A middleware that
 * returns without calling `next()` skips the handler. A run that suspends (`ctx.fanOut`,
 * `ctx.sleep`, `ctx.waitForSignal`) ends there: `next()` rejects with `RunSuspendedError` and the
 * job waits whatever the middleware then does; a run that times out or is abandoned (lost lease,
 * cancel, shutdown) makes `next()` reject with the reason; a `next()` called only after the run
ended (or after the middleware returned) rejects without starting the handler. A replay of a checkpointed workflow is
 * a run like any other: the middleware runs once per run, never per replayed step.
 * @example
 * queue.use(async (job, next) => {
 *   const started = Date.now();
 *   try { return await next(); } finally { console.log(job.type, Date.now() - started, 'ms'); }
 * });
 */
export type RunMiddleware = (job: Job, next: () => Promise<unknown>, run: RunInfo) => Promise<unknown>;

/** What a step middleware learns about the `ctx.call` step it wraps. */
export interface StepCallInfo {
  /** The workflow job running the step. */
  readonly job: Job;
  /** The step's name (the registered type `ctx.call` runs). */
  readonly name: string;
  /** The step's position among the workflow's durable operations (0-based). */
  readonly index: number;
  /** The step's args. */
  readonly args: unknown;
}

/**
 * A function around every `ctx.call` step that runs (a replayed step, which returns its
 * checkpoint, runs no middleware). `next()` resolves with the step's result (before it is
 * checkpointed) and rejects with its error; what the outermost middleware resolves with is the
 * step's result, and a throw is the step's error.
 * @example
 * queue.useStep(async (step, next) => { console.log('step', step.name, step.index); return next(); });
 */
export type StepMiddleware = (step: StepCallInfo, next: () => Promise<unknown>) => Promise<unknown>;

/** Where an enqueue request comes from. */
export type EnqueueSource = 'enqueue' | 'batch' | 'fan-out' | 'schedule';

/**
 * One job the engine is about to enqueue, as the user asked for it (never the stored row).
 * A middleware passes a changed copy to `next()`; changes are validated like `enqueue` options.
 */
export interface EnqueueRequest {
  /** The job type. */
  readonly type: string;
  /** The job's args (not yet encoded). */
  readonly args: unknown;
  /** The job's metadata (`EnqueueOptions.meta`). */
  readonly meta?: Record<string, JsonValue>;
  /** The other enqueue options (for a sub-job: those its fan-out resolved; for a schedule fire: the schedule's). */
  readonly options: Readonly<Omit<EnqueueOptions, 'meta'>>;
  /** What enqueues it: `queue.enqueue`, `queue.enqueueBatch`, `ctx.fanOut` or a schedule fire. */
  readonly source: EnqueueSource;
  /** The workflow job a sub-job belongs to (`source: 'fan-out'`). */
  readonly parentId?: string;
}

/**
 * A function around every job the engine enqueues: `queue.enqueue`, each item of
 * `queue.enqueueBatch`, each sub-job of `ctx.fanOut` and each schedule fire. It runs in the
 * caller's async context (for sub-jobs, the handler's).
 *
 * `next(request?)` enqueues the (possibly changed) request and resolves with the job's id; what
 * the outermost middleware resolves with is what `enqueue` resolves with. A throw before `next()`
 * rejects the enqueue and writes nothing (for a batch or a fan-out, nothing of it); a throw after
 * `next()` resolved rejects the enqueue, but the job is stored. The items of a batch, the
 * sub-jobs of a fan-out and the jobs of a schedule fire go through their chains concurrently and
 * are written together once each chain has called `next()` (or returned without it: such a batch
 * item is not written and resolves with what the middleware returned; a sub-job must be
 * enqueued). For a schedule fire, `next()` resolves once the job is built: the fire may still be
 * won by another worker, and then this job is not stored.
 * @example
 * queue.useEnqueue((insert, next) => next({ ...insert, meta: { ...insert.meta, traceId } }));
 */
export type EnqueueMiddleware = (insert: EnqueueRequest, next: (insert?: EnqueueRequest) => Promise<string>) => Promise<string>;

/** The request for a job of `type` with `options` (its meta taken out of them). @internal */
export function requestFor(type: string, args: unknown, options: EnqueueOptions, source: EnqueueSource, parentId?: string): EnqueueRequest {
  const { meta, ...rest } = options;
  const r: EnqueueRequest = parentId === undefined ? { type, args, options: rest, source } : { type, args, options: rest, source, parentId };
  return meta === undefined ? r : { ...r, meta };
}

/** The enqueue options of a request (its meta put back). @internal */
export function optionsOf(r: EnqueueRequest): EnqueueOptions {
  return r.meta === undefined ? r.options : { ...r.options, meta: r.meta };
}

/** The middleware registered on one queue; each list is replaced, never changed in place. @internal */
export interface MiddlewareLists {
  run: readonly RunMiddleware[];
  step: readonly StepMiddleware[];
  enqueue: readonly EnqueueMiddleware[];
}

type Layer<V, R> = (value: V, next: (value?: V) => Promise<R>) => Promise<R>;

/**
 * Calls `layers` around `inner`, outermost first. A layer's synchronous throw is a rejection;
 * a second `next()` call from one layer rejects with `InvalidStateError`. @internal
 */
export function compose<V, R>(layers: readonly Layer<V, R>[], value: V, inner: (value: V) => Promise<R>): Promise<R> {
  const dispatch = (i: number, v: V): Promise<R> => {
    const layer = layers[i];
    if (layer === undefined) return inner(v);
    let called = false;
    const next = (nv?: V): Promise<R> => {
      if (called) return Promise.reject(new InvalidStateError('a middleware called next() more than once'));
      called = true;
      return dispatch(i + 1, nv === undefined ? v : nv);
    };
    try {
      return Promise.resolve(layer(v, next));
    } catch (e) {
      return Promise.reject(e);
    }
  };
  return dispatch(0, value);
}

/** Runs a step through the step middleware. @internal */
export function stepThrough(layers: readonly StepMiddleware[], step: StepCallInfo, run: () => unknown): Promise<unknown> {
  return compose<StepCallInfo, unknown>(
    layers.map((mw) => (s, next) => mw(s, () => next())),
    step,
    () => new Promise((resolve) => resolve(run())),
  );
}

/**
 * Runs requests through the enqueue middleware. Once every chain has reached its end (or
 * returned without doing so), `write` gets the requests that reached it, in order, and resolves
 * with their ids; each chain's `next()` then resolves with its id. A chain that threw before
 * reaching its end makes every `next()` reject with its error and nothing is written.
 * Resolves with what each chain resolved with. @internal
 */
export function enqueueThrough(
  layers: readonly EnqueueMiddleware[],
  requests: readonly EnqueueRequest[],
  write: (reached: EnqueueRequest[]) => Promise<string[]>,
): Promise<string[]> {
  const n = requests.length;
  const reached: (EnqueueRequest | undefined)[] = new Array<EnqueueRequest | undefined>(n);
  const waiters: ({ resolve: (id: string) => void; reject: (e: unknown) => void } | undefined)[] = new Array(n);
  let undecided = n;
  let failure: { error: unknown } | undefined;
  let flushed = false;
  const flush = (): void => {
    flushed = true;
    const fail = (error: unknown): void => {
      for (const w of waiters) w?.reject(error);
    };
    if (failure) return fail(failure.error);
    const at: number[] = [];
    const list: EnqueueRequest[] = [];
    reached.forEach((r, i) => {
      if (r === undefined) return;
      at.push(i);
      list.push(r);
    });
    if (list.length === 0) return;
    let written: Promise<string[]>;
    try {
      written = write(list);
    } catch (e) {
      return fail(e);
    }
    written.then((ids) => at.forEach((i, k) => waiters[i]?.resolve(ids[k] ?? '')), fail);
  };
  const decided = (): void => {
    if (--undecided === 0) flush();
  };
  const chains = requests.map((request, i) => {
    let atEnd = false;
    let returned = false;
    const chain = compose<EnqueueRequest, string>(layers.map((mw) => (r, next) => mw(r, next)), request, (final) => {
      // A next() after its chain returned must not count the chain twice (it would flush the
      // batch before its other chains reached their end) nor write what was skipped.
      if (flushed || returned) return Promise.reject(new InvalidStateError('an enqueue middleware called next() after it returned'));
      atEnd = true;
      reached[i] = final;
      const p = new Promise<string>((resolve, reject) => (waiters[i] = { resolve, reject }));
      decided();
      return p;
    });
    chain.then(
      () => {
        returned = true;
        if (!atEnd && !flushed) decided();
      },
      (error: unknown) => {
        returned = true;
        if (atEnd || flushed) return;
        failure ??= { error };
        decided();
      },
    );
    return chain;
  });
  return Promise.all(chains);
}
