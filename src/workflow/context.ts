/**
 * `JobContext` implementation: checkpointed `call`, durable `fanOut`, `sleep`/`sleepUntil`
 * and `waitForSignal`, all replayed over the job's checkpoints.
 *
 * Suspension (fan-out, sleep, signal wait) writes its state in one storage transaction and
 * then tells the executor the run is over; the handler's pending promise never settles, so
 * a `try/catch` around the call cannot swallow the suspension.
 * @internal
 */
import { CodecError, FanOutFailedError, InvalidArgumentError, InvalidStateError, LeaseLostError, NoRetryError, UnknownJobTypeError, messageOf } from '../errors.js';
import { buildJobInsert } from '../core/enqueue.js';
import { stepThrough } from '../core/middleware.js';
import { writeChildren, type BuildChild } from './fan-out-children.js';
import type { QueueCore } from '../core/queue-core.js';
import { checkDate, checkDuration, checkJobType, checkName, checkOptions, checkQueueName } from '../core/validate.js';
import { decodeJson, encodeJson, undecodedError } from '../storage/codec.js';
import type { JobSuspendUntilParams, SignalConsumeResult } from '../storage/storage.js';
import type { EnqueueOptions, Job, Logger } from '../types.js';
import { collectResults, parseStrategy } from './fan-out.js';
import { checkProgress } from './progress.js';
import type { FanOutOptions, FanOutResult, JobContext, JobDefinition, SubJob, WaitForSignalOptions } from './job-context.js';
import type { DurableResult, Replay } from './replay.js';

/** Why a run suspended. */
export type SuspendReason = 'fan-out' | 'sleep' | 'signal';

/** What the context needs from the executor. @internal */
export interface ContextHost {
  core: QueueCore;
  replay: Replay;
  /** The claimed row: `startedAt` is the database time this run was claimed at. */
  readonly row: { readonly startedAt: number | null };
  abortSignal: AbortSignal;
  logger: Logger;
  /** Called once the suspension is durably written. */
  suspended(reason: SuspendReason): void;
  /** Takes a checked progress report of the run (coalesced; see `ctx.progress`). */
  reportProgress(value: number, message: string | null): void;
  /** Writes the run's pending progress report before a suspension; never rejects. */
  flushProgress(): Promise<void>;
}

const never = <T>(): Promise<T> => new Promise<T>(() => {});

/** The context handed to a handler. @internal */
export class WorkflowContext<Args> implements JobContext<Args> {
  constructor(
    readonly job: Job<Args>,
    private readonly host: ContextHost,
  ) {}

  get abortSignal(): AbortSignal {
    return this.host.abortSignal;
  }

  get logger(): Logger {
    return this.host.logger;
  }

  call<T = unknown>(step: string, args?: unknown): Promise<T>;
  call<R, A = unknown>(step: JobDefinition<A, R>, args: A): Promise<R>;
  async call(step: string | JobDefinition<unknown, unknown>, args?: unknown): Promise<unknown> {
    const name = checkJobType(typeof step === 'object' && step !== null ? step.type : step, 'step name');
    const { replay, core } = this.host;
    const index = replay.take();
    const rec = await replay.recorded(index, name);
    if (rec?.status === 'completed') return replay.decode(rec.outputJson, 'step result');
    if (rec?.status === 'failed') {
      // A step error no key of the codec opens ends the run rather than reaching the workflow as a note.
      const undecoded = undecodedError(rec);
      if (undecoded !== undefined) throw replay.undecodable(undecoded);
      throw new NoRetryError(new Error(rec.error ?? 'step failed'));
    }
    const handler = core.handlers.get(name);
    if (!handler) throw new NoRetryError(new UnknownJobTypeError(name));
    let value: unknown;
    try {
      const step = handler as (a: unknown, c: JobContext<unknown>) => unknown;
      const layers = core.middleware?.step;
      if (layers !== undefined && layers.length > 0) value = await stepThrough(layers, { job: this.job, name, index, args }, () => step(args, new StepContext(this.job, this.host)));
      else value = await step(args, new StepContext(this.job, this.host));
    } catch (err) {
      if (err instanceof NoRetryError) {
        await replay.record({ stepIndex: index, stepName: name, status: 'failed', outputJson: null, error: messageOf(err) });
      }
      throw err;
    }
    const outputJson = encodeJson(value, `result of step "${name}"`, core.defaults.maxPayloadBytes);
    await replay.record({ stepIndex: index, stepName: name, status: 'completed', outputJson, error: null });
    return decodeJson(outputJson, 'step result');
  }

  async fanOut<T = unknown>(subJobs: readonly SubJob[], options: FanOutOptions = {}): Promise<FanOutResult<T>[]> {
    const o = checkOptions<FanOutOptions>(options, 'fanOut options', ['strategy', 'queue', 'retries', 'timeout']);
    const { strategy, threshold } = parseStrategy(o);
    if (!Array.isArray(subJobs)) throw new InvalidArgumentError('fanOut expects an array of sub(...) jobs');
    const { replay, core } = this.host;
    const index = replay.take();
    const rec = await replay.recorded(index, 'fan-out');
    if (!rec) {
      if (subJobs.length === 0) {
        await replay.record({ stepIndex: index, stepName: 'fan-out', status: 'completed', outputJson: 'null', error: null });
        return [];
      }
      const queue = o.queue === undefined ? this.job.queue : checkQueueName(o.queue, 'fanOut queue');
      const timeoutMs = o.timeout === undefined ? null : checkDuration(o.timeout, 'fanOut timeout', 1);
      const fanOutId = core.ids.next();
      const optionsOf = (s: SubJob): EnqueueOptions => {
        const so = s.options ?? {};
        return { queue: so.queue ?? queue, retries: so.retries ?? o.retries ?? core.defaults.retries, ...pick(so, ['priority', 'timeout', 'meta', 'concurrencyKey', 'rateLimitKey']), ...(this.job.tenant ? { tenant: this.job.tenant } : {}) } as EnqueueOptions;
      };
      const build: BuildChild = (type, args, options, i) => buildJobInsert(core.ids, core.defaults, type, args, options, { parentId: this.job.id, fanOutId, fanOutIndex: i });
      const r = await writeChildren(core, this.job, subJobs, optionsOf, build, async (children) => {
        await this.host.flushProgress();
        return replay.durable(() =>
          core.storage.jobSuspendFanOut({
            fence: replay.fence,
            step: { jobId: this.job.id, stepIndex: index, stepName: 'fan-out', status: 'completed', outputJson: JSON.stringify(fanOutId), error: null },
            fanOut: { id: fanOutId, strategy, threshold, timeoutMs },
            children,
          }),
        );
      });
      return this.#suspendOrLost(await this.#suspension(r), 'fan-out');
    }
    const fanOutId = replay.decode(rec.outputJson, 'fan-out step') as string | null;
    if (fanOutId === null) return [];
    // One call: the fan-out (expired first if its deadline passed, on the database clock) and its children.
    const read = await replay.durable(() => core.storage.fanOutCollect({ id: fanOutId }));
    if (read.kind === 'lost') throw new LeaseLostError('could not read the fan-out: this run no longer owns the job');
    const collected = read.value;
    if (!collected) throw new InvalidStateError(`fan-out ${fanOutId} of job ${this.job.id} is missing`);
    const { fanOut: fo, children } = collected;
    if (fo.status === 'running') {
      // Woken before the decision (e.g. a stale wake-up): wait again.
      await this.host.flushProgress();
      const r = await replay.durable(() => core.storage.jobSuspend({ fence: replay.fence, step: null, wakeAt: fo.deadlineAt, waitSignal: null }));
      return this.#suspendOrLost(await this.#suspension(r), 'fan-out');
    }
    let results: FanOutResult<T>[];
    try {
      results = collectResults<T>(fo.total, children);
    } catch (e) {
      // A child's result or error no key of the codec opens ends the run.
      throw e instanceof CodecError ? replay.undecodable(e) : e;
    }
    if (fo.status === 'failed') {
      const failed = results.filter((r) => r.error).length;
      // Expiry cancels the unfinished children, so the counters alone cannot tell a timeout.
      const counts = `${failed} of ${fo.total} sub-jobs did not succeed`;
      const timedOut = fo.deadlineAt !== null && fo.decidedAt !== null && fo.decidedAt >= fo.deadlineAt;
      const why = timedOut ? `timed out after ${(fo.deadlineAt ?? 0) - fo.createdAt} ms (${counts})` : counts;
      throw new FanOutFailedError(
        `fan-out (${fo.strategy}) failed: ${why}`,
        results.map((r) => ({ index: r.index, ...(r.error ? { error: r.error.message } : { value: r.value }) })),
      );
    }
    return results;
  }

  progress(value: number, message?: string): Promise<void> {
    return reportProgress(this.host, value, message);
  }

  patched(id: string): boolean {
    return this.host.replay.patched(id);
  }

  async sleep(ms: number): Promise<void> {
    const delayMs = checkDuration(ms, 'sleep duration');
    await this.#sleepStep({ delayMs });
  }

  async sleepUntil(date: Date): Promise<void> {
    const wakeAt = checkDate(date, 'sleepUntil date').getTime();
    await this.#sleepStep({ wakeAt });
  }

  async waitForSignal<T = unknown>(name: string, options: WaitForSignalOptions = {}): Promise<T | undefined> {
    const signalName = checkName(name, 'signal name');
    const o = checkOptions<WaitForSignalOptions>(options, 'waitForSignal options', ['timeout']);
    const timeoutMs = o.timeout === undefined ? undefined : checkDuration(o.timeout, 'waitForSignal timeout');
    const { replay, core } = this.host;
    const index = replay.take();
    const stepName = `signal:${signalName}`;
    const rec = await replay.recorded(index, stepName);
    if (rec?.status === 'completed') return replay.decode(rec.outputJson, 'signal payload') as T | undefined;
    if (rec?.status === 'failed') return undefined;
    // The deadline is fixed by the database on the first execution (now + timeout) and stored
    // in the waiting step; a replay passes the stored deadline back.
    const deadline: { deadlineAt: number | null; timeoutMs?: number } = rec
      ? { deadlineAt: replay.decode(rec.outputJson, 'signal deadline') as number | null }
      : timeoutMs === undefined
        ? { deadlineAt: null }
        : { deadlineAt: null, timeoutMs };
    await this.host.flushProgress();
    const r = await replay.durable(async (retry): Promise<SignalConsumeResult> => {
      if (retry) {
        // An earlier attempt may have consumed a signal or timed out before its reply was lost.
        const s = await replay.storedStep(index);
        if (s?.stepName === stepName && s.status === 'completed') return { kind: 'consumed', payloadJson: s.outputJson };
        if (s?.stepName === stepName && s.status === 'failed') return { kind: 'timed-out' };
      }
      return core.storage.signalConsumeOrWait({ fence: replay.fence, stepIndex: index, stepName, signalName, ...deadline });
    });
    if (r.kind === 'lost') return this.#suspendOrLost(await this.#suspension(r), 'signal');
    switch (r.value.kind) {
      case 'consumed':
        return replay.decode(r.value.payloadJson, 'signal payload') as T | undefined;
      case 'timed-out':
        return undefined;
      case 'suspended':
        return this.#suspendOrLost(true, 'signal');
      case 'lost':
        return this.#suspendOrLost(await this.#suspension({ ...r, value: false }), 'signal');
    }
  }

  /**
   * A durable timer in one storage call: the database fixes the wake time (now + delay on the
   * first execution; the recorded wake time on a replay), records the checkpoint, and either
   * lets the run go on (the time has passed) or suspends the job until then. A replayed timer
   * whose wake time is not after the database time this run was claimed at has passed for sure:
   * it costs no call (a run woken by its timer replays it that way).
   */
  async #sleepStep(when: { delayMs: number } | { wakeAt: number }): Promise<void> {
    const { replay, core } = this.host;
    const index = replay.take();
    const stepName = 'sleep';
    const rec = await replay.recorded(index, stepName);
    const recordedAt = rec ? (replay.decode(rec.outputJson, 'sleep step') as number) : undefined;
    const claimedAt = this.host.row.startedAt;
    if (recordedAt !== undefined && claimedAt !== null && recordedAt <= claimedAt) return;
    const timer = recordedAt === undefined ? { recorded: false, ...when } : { recorded: true, wakeAt: recordedAt };
    await this.host.flushProgress();
    const r = await replay.durable(async (retry) => {
      let t: Omit<JobSuspendUntilParams, 'fence' | 'stepIndex' | 'stepName'> = timer;
      if (retry && !t.recorded) {
        // An earlier attempt may have recorded the timer before its reply was lost: keep its wake time.
        const s = await replay.storedStep(index);
        if (s?.stepName === stepName && s.status === 'completed') t = { recorded: true, wakeAt: replay.decode(s.outputJson, 'sleep step') as number };
      }
      return core.storage.jobSuspendUntil({ fence: replay.fence, stepIndex: index, stepName, ...t });
    });
    if (r.kind === 'lost') return this.#suspendOrLost(await this.#suspension(r), 'sleep');
    switch (r.value.kind) {
      case 'elapsed':
        if (!rec) replay.remember({ stepIndex: index, stepName, status: 'completed', outputJson: JSON.stringify(r.value.wakeAt), error: null });
        return;
      case 'suspended':
        return this.#suspendOrLost(true, 'sleep');
      case 'lost':
        return this.#suspendOrLost(await this.#suspension({ ...r, value: false }), 'sleep');
    }
  }

  /**
   * Whether a suspension (or a refused fenced wait) of this run is stored. A refusal on a retry,
   * or a lease lost while retrying, may follow an attempt that committed before its reply was
   * lost: the job row tells.
   */
  async #suspension(r: DurableResult<boolean>): Promise<boolean> {
    if (r.kind === 'done' && (r.value || !r.retried)) return r.value;
    try {
      return await this.host.replay.suspendedByThisRun();
    } catch {
      return false;
    }
  }

  #suspendOrLost<T>(applied: boolean, reason: SuspendReason): Promise<T> {
    if (!applied) throw new LeaseLostError('could not suspend: this run no longer owns the job');
    this.host.replay.close();
    this.host.suspended(reason);
    return never<T>();
  }
}

/** The context of a step run by `ctx.call`: durable operations are not available inside a step. */
class StepContext<Args> implements JobContext<Args> {
  constructor(
    readonly job: Job<Args>,
    private readonly host: ContextHost,
  ) {}
  get abortSignal(): AbortSignal {
    return this.host.abortSignal;
  }
  get logger(): Logger {
    return this.host.logger;
  }
  call(): Promise<never> {
    return Promise.reject(nested('call'));
  }
  fanOut(): Promise<never> {
    return Promise.reject(nested('fanOut'));
  }
  sleep(): Promise<never> {
    return Promise.reject(nested('sleep'));
  }
  sleepUntil(): Promise<never> {
    return Promise.reject(nested('sleepUntil'));
  }
  waitForSignal(): Promise<never> {
    return Promise.reject(nested('waitForSignal'));
  }
  patched(): never {
    throw nested('patched');
  }
  progress(value: number, message?: string): Promise<void> {
    return reportProgress(this.host, value, message);
  }
}

/** `ctx.progress`: checks the report, hands it to the run; bad input rejects (nothing reported). */
function reportProgress(host: ContextHost, value: number, message: string | undefined): Promise<void> {
  try {
    const p = checkProgress(value, message);
    host.reportProgress(p.value, p.message);
    return Promise.resolve();
  } catch (err) {
    return Promise.reject(err);
  }
}

function nested(op: string): Error {
  return new NoRetryError(new InvalidStateError(`ctx.${op} is not available inside a step run by ctx.call; call it from the workflow handler`));
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
