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
import type { RunInfo, RunMiddleware } from '../core/middleware.js';
import type { Fence } from '../storage/storage.js';
import type { Job } from '../types.js';
import type { SuspendReason } from '../workflow/context.js';

/** How a run ended, as the executor sees it. */
type RunEnd = { kind: 'ok'; value: unknown } | { kind: 'error'; error: unknown } | { kind: 'suspended'; reason: SuspendReason } | { kind: 'abandoned' };

/** What the chain needs from the run. */
export interface MiddlewareRun {
  readonly fence: Fence;
  readonly signal: AbortSignal;
  /** Whether the signal fired (reading it does not make the signal). */
  readonly aborted: boolean;
  readonly outcome: Promise<RunEnd>;
  settle(o: RunEnd): void;
  /** Fires the abort signal and ends the run with this error (unless it has an outcome). */
  fail(reason: Error): void;
}

/** The run facts a middleware reads (one object per run; the signal is made only when read). */
class Info implements RunInfo {
  constructor(private readonly run: MiddlewareRun) {}
  get workerId(): string {
    return this.run.fence.workerId;
  }
  get runCount(): number {
    return this.run.fence.runCount;
  }
  get signal(): AbortSignal {
    return this.run.signal;
  }
}

/** Why `next()` rejects once the run ended another way than through the chain (or undefined). */
function endReason(o: RunEnd, run: MiddlewareRun): unknown {
  if (o.kind === 'suspended') return new RunSuspendedError(o.reason);
  if (o.kind === 'error') return o.error;
  if (o.kind === 'abandoned') return run.signal.reason;
  return new InvalidStateError('the run already ended');
}

/**
 * Starts the chain; its result or error becomes the run's outcome (unless the run already has
 * one). Per run: one listener on the run's end, one promise for the innermost `next()`, and the
 * layers' own calls — no per-run copies of the layer list.
 */
export function invokeThrough(layers: readonly RunMiddleware[], job: Job, run: MiddlewareRun, handle: () => unknown): void {
  const info = new Info(run);
  // Once the run has ended, a late next() (after a timeout, an abandonment, a suspension, or
  // after the chain returned) must not start the handler: its job may already run elsewhere.
  let end: RunEnd | undefined;
  let returned = false;
  // The handler's own promise once next() started it, whether it settled, and how the pending
  // innermost next() is rejected when the run ends another way first.
  let handler: Promise<unknown> | undefined;
  let handlerDone = false;
  let rejectInner: ((e: unknown) => void) | undefined;
  void run.outcome.then((o) => {
    end = o;
    if (rejectInner !== undefined && !handlerDone) rejectInner(endReason(o, run));
  });

  const inner = (): Promise<unknown> => {
    if (returned) return Promise.reject(new InvalidStateError('a run middleware called next() after it returned'));
    if (end !== undefined) return Promise.reject(endReason(end, run));
    if (run.aborted) return Promise.reject(run.signal.reason);
    return new Promise((resolve, reject) => {
      rejectInner = reject;
      let result: unknown;
      try {
        result = handle();
      } catch (e) {
        handlerDone = true;
        handler = Promise.reject(e);
        handler.catch(() => {});
        reject(e);
        return;
      }
      handler = Promise.resolve(result);
      handler.then(
        (v) => {
          handlerDone = true;
          resolve(v);
        },
        (e: unknown) => {
          handlerDone = true;
          reject(e);
        },
      );
    });
  };

  const dispatch = (i: number): Promise<unknown> => {
    const layer = layers[i];
    if (layer === undefined) return inner();
    let called = false;
    const next = (): Promise<unknown> => {
      if (called) return Promise.reject(new InvalidStateError('a middleware called next() more than once'));
      called = true;
      return dispatch(i + 1);
    };
    try {
      return Promise.resolve(layer(job, next, info));
    } catch (e) {
      return Promise.reject(e);
    }
  };

  dispatch(0).then(
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
