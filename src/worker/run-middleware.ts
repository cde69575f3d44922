/**
 * A run through the run middleware (`queue.use`): the chain runs in the run's async context and
 * the handler runs inside its innermost `next()`, which settles when the run does (the
 * handler's outcome, or a suspension, timeout or abandonment that ended it first). Used only when
 * middleware is registered.
 *
 * A chain that settles while the handler it started is still going (a middleware that called
 * `next()` without awaiting it) does not end the run early: a chain that returned waits for the
 * handler (a handler error then fails the run); a chain that threw fails the run at once and
 * fires the handler's abort signal. Either way no handler goes on unobserved while its job could
 * run elsewhere.
 * @internal
 */
import { InvalidStateError, RunSuspendedError } from '../errors.js';
import { compose, type RunInfo, type RunMiddleware } from '../core/middleware.js';
import type { Fence } from '../storage/storage.js';
import type { Job } from '../types.js';
import type { SuspendReason } from '../workflow/context.js';

/** How a run ended, as the executor sees it. */
type RunEnd = { kind: 'ok'; value: unknown } | { kind: 'error'; error: unknown } | { kind: 'suspended'; reason: SuspendReason } | { kind: 'abandoned' };

/** What the chain needs from the run. */
export interface MiddlewareRun {
  readonly fence: Fence;
  readonly signal: AbortSignal;
  readonly outcome: Promise<RunEnd>;
  settle(o: RunEnd): void;
  /** Fires the abort signal and ends the run with this error (unless it has an outcome). */
  fail(reason: Error): void;
}

const never = new Promise<never>(() => {});

/** Starts the chain; its result or error becomes the run's outcome (unless the run already has one). */
export function invokeThrough(layers: readonly RunMiddleware[], job: Job, run: MiddlewareRun, handle: () => unknown): void {
  const info: RunInfo = {
    workerId: run.fence.workerId,
    runCount: run.fence.runCount,
    get signal() {
      return run.signal;
    },
  };
  // Rejects once the run ended some other way than through the chain.
  const ended = run.outcome.then((o): Promise<never> => {
    if (o.kind === 'suspended') throw new RunSuspendedError(o.reason);
    if (o.kind === 'error') throw o.error;
    if (o.kind === 'abandoned') throw run.signal.reason;
    return never;
  });
  ended.catch(() => {});
  // Once the run has ended, a late next() (after a timeout, an abandonment, a suspension, or
  // after the chain returned) must not start the handler: its job may already run elsewhere.
  let over = false;
  let returned = false;
  // The handler's own promise once next() started it, and whether it settled.
  let handler: Promise<unknown> | undefined;
  let handlerDone = false;
  void run.outcome.then(() => (over = true));
  compose<Job, unknown>(
    layers.map((mw) => (j, next) => mw(j, () => next(), info)),
    job,
    () => {
      if (returned) return Promise.reject(new InvalidStateError('a run middleware called next() after it returned'));
      if (over || run.signal.aborted) return ended;
      const started = new Promise((resolve) => resolve(handle()));
      handler = started;
      started.then(
        () => (handlerDone = true),
        () => (handlerDone = true),
      );
      return Promise.race([started, ended]);
    },
  ).then(
    (value) => {
      returned = true;
      if (handler === undefined || handlerDone) return run.settle({ kind: 'ok', value });
      // The chain returned without waiting for the handler it started: the run ends with it.
      handler.then(
        () => run.settle({ kind: 'ok', value }),
        (error: unknown) => run.settle({ kind: 'error', error }),
      );
    },
    (error: unknown) => {
      returned = true;
      if (handler === undefined || handlerDone) return run.settle({ kind: 'error', error });
      run.fail(error instanceof Error ? error : new Error(String(error)));
    },
  );
}
