/**
 * The chaos job types. Every handler records its runs and side effects in `chaos_effects`
 * (see effects.ts) so the audit can check the engine's promises afterwards. Waits are
 * abort-aware: a run that lost its job (cancel, reclaim, shutdown) stops promptly.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { FanOutFailedError, noRetry } from '../../src/errors.js';
import type { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import type { JobContext } from '../../src/workflow/job-context.js';
import { sub } from '../../src/workflow/fan-out.js';
import type { Effects } from './effects.js';

/** Root queue, fan-out children's queue, and the queue of large results. */
export const ROOT_QUEUE = 'chaos';
export const KIDS_QUEUE = 'kids';
export const BIG_QUEUE = 'big';

/** `chaos.plain`: returns its args unchanged (checks the payload round trip). */
export interface PlainArgs {
  k: 'plain';
  n: number;
  ms: number;
  pad: string;
  nested?: { list: (number | string | boolean | null)[]; deep: { x: number } };
}
/** `chaos.flaky`: throws a retryable error while `attempt <= failTimes`. */
export interface FlakyArgs {
  k: 'flaky';
  failTimes: number;
}
/** `chaos.fatal`: throws `noRetry` at once. */
export interface FatalArgs {
  k: 'fatal';
}
/** `chaos.workflow`: `steps` checkpointed `ctx.call('chaos.step')` calls. */
export interface WorkflowArgs {
  k: 'wf';
  steps: number;
  ms: number;
}
/** `chaos.sleep`: a durable sleep of `ms`. */
export interface SleepArgs {
  k: 'sleep';
  ms: number;
}
/** `chaos.signal`: waits for `count` signals named `go`. */
export interface SignalArgs {
  k: 'signal';
  count: number;
}
/** `chaos.fanout`: fans out `children` with a strategy. */
export interface FanOutArgs {
  k: 'fanout';
  strategy: 'fail-fast' | 'collect-all' | { threshold: number };
  children: ChildArgs[];
}
/** `chaos.child`: a fan-out child; nests its own collect-all fan-out when `nest` has entries. */
export interface ChildArgs {
  fail: boolean;
  flaky: boolean;
  ms: number;
  /** Grandchildren (each with `nest: []`). */
  nest: ChildArgs[];
  /** Set: the child is a `chaos.gate` job instead (fails until the operator retries it). */
  gate?: { retry: boolean; afterMs: number };
}
/** A step's args: its index and the run of the parent executing it. */
export interface StepArgs {
  i: number;
  run: number;
  ms: number;
}
/** What a step returns (and its checkpoint stores). */
export interface StepOut {
  i: number;
  nonce: string;
}
/** What a fan-out parent returns. */
export interface FanOutOut {
  status: 'succeeded' | 'failed';
  ok: number;
  failed: number;
}

/** What a `resume` effect records: the parent's view of its decided fan-out. */
export interface ResumeInfo extends FanOutOut {
  /** Indexes of the children reported unfinished when the fan-out was decided. */
  unfinished: number[];
}

/** What the handlers need from their process. */
export interface HandlerHost {
  storage: Storage;
  effects: Effects;
  /** Whether a worker id belongs to a worker of this process (the lease owner). */
  isMine: (workerId: string | null) => boolean;
}

/** One handler invocation's `run` row. */
export class RunRecord {
  #id = '';
  constructor(
    private readonly host: HandlerHost,
    readonly jobId: string,
    readonly runCount: number,
  ) {}

  async begin(owner: string | null, problem: string | null, claimedAt: number | null): Promise<void> {
    const info = problem ?? (this.host.isMine(owner) ? null : `not-owner:${String(owner)}`);
    this.#id = await this.host.effects.insert({ kind: 'run', jobId: this.jobId, runCount: this.runCount, state: 'active', info, owner, claimedAt });
  }
  /** Just before a durable call that may suspend the run. */
  suspending(): Promise<void> {
    return this.host.effects.setState(this.#id, 'suspended', Date.now());
  }
  /** The durable call returned: the run goes on. */
  resumed(): Promise<void> {
    return this.host.effects.setState(this.#id, 'active', null);
  }
  end(how: string): Promise<void> {
    return this.host.effects.setState(this.#id, 'ended', Date.now(), how);
  }
  effect(kind: string, info: string | null): Promise<string> {
    return this.host.effects.insert({ kind, jobId: this.jobId, runCount: this.runCount, info });
  }
}

type Tracked<A, R> = (args: A, ctx: JobContext<A>, run: RunRecord) => Promise<R>;

/** Wraps a handler so each invocation records its `run` row. */
export function tracked<A, R>(host: HandlerHost, fn: Tracked<A, R>): (args: A, ctx: JobContext<A>) => Promise<R> {
  return async (args, ctx) => {
    const row = await host.storage.jobGet({ id: ctx.job.id });
    const run = new RunRecord(host, ctx.job.id, row?.runCount ?? -1);
    const running = row?.status === 'running';
    await run.begin(running ? row.lockedBy : null, running ? null : `status=${String(row?.status)}`, ctx.job.startedAt?.getTime() ?? null);
    let how = 'returned';
    try {
      return await fn(args, ctx, run);
    } catch (e) {
      // Error texts may hold NUL and lone surrogates (chaos.odd): record a storable summary.
      how = `threw: ${e instanceof Error ? e.message : String(e)}`.slice(0, 200).replaceAll('\u0000', '\\0').replace(LONE_SURROGATES, '\uFFFD');
      throw e;
    } finally {
      // A suspended run never gets here: its handler promise never settles.
      await run.end(how).catch(() => {});
    }
  };
}

/** Every unpaired UTF-16 surrogate of a string. */
export const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Abort-aware work of `ms`. */
export function work(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal });
}

/**
 * Fans out `children` (gate children as `chaos.gate` jobs), records the parent's view of the
 * decided fan-out as a `resume` effect, and returns it.
 */
export async function fanOutStep(ctx: JobContext<unknown>, run: RunRecord, children: ChildArgs[], strategy: FanOutArgs['strategy']): Promise<FanOutOut> {
  await run.suspending();
  // FanOutResult carries an Error, FanOutFailedError's results a message.
  let results: readonly { index: number; error?: Error | string }[];
  let status: FanOutOut['status'];
  try {
    results = await ctx.fanOut(
      children.map((c) => (c.gate ? sub('chaos.gate', { k: 'gate', ms: c.ms, ...c.gate }) : sub('chaos.child', c))),
      { strategy, queue: KIDS_QUEUE, retries: 8 },
    );
    status = 'succeeded';
  } catch (e) {
    if (!(e instanceof FanOutFailedError)) throw e;
    results = e.results;
    status = 'failed';
  }
  const out: FanOutOut = { status, ok: results.filter((r) => r.error === undefined).length, failed: results.filter((r) => r.error !== undefined).length };
  const unfinished = results.filter((r) => r.error !== undefined && /unfinished/.test(typeof r.error === 'string' ? r.error : r.error.message)).map((r) => r.index);
  await run.resumed();
  await run.effect('resume', JSON.stringify({ ...out, unfinished } satisfies ResumeInfo));
  return out;
}

/** Registers every chaos job type on `queue`. */
export function registerHandlers(queue: Queue, host: HandlerHost): void {
  queue.register(
    'chaos.plain',
    tracked(host, async (args: PlainArgs, ctx) => {
      await work(args.ms, ctx.abortSignal);
      return args;
    }),
  );

  queue.register(
    'chaos.flaky',
    tracked(host, async (args: FlakyArgs, ctx) => {
      if (ctx.job.attempt <= args.failTimes) throw new Error(`flaky by design: attempt ${ctx.job.attempt} of ${args.failTimes} planned failures`);
      return { attempt: ctx.job.attempt };
    }),
  );

  queue.register(
    'chaos.fatal',
    tracked(host, async () => {
      throw noRetry(new Error('fatal by design'));
    }),
  );

  queue.register('chaos.step', async (a: StepArgs, ctx) => {
    const startedAt = Date.now();
    await work(a.ms, ctx.abortSignal);
    const nonce = randomBytes(8).toString('hex');
    // The effect commits before the step returns, hence before its checkpoint.
    await host.effects.insert({ kind: 'step', jobId: ctx.job.id, step: a.i, runCount: a.run, info: nonce, startedAt, endedAt: Date.now() });
    const out: StepOut = { i: a.i, nonce };
    return out;
  });

  queue.register(
    'chaos.workflow',
    tracked(host, async (args: WorkflowArgs, ctx, run) => {
      const nonces: string[] = [];
      for (let i = 0; i < args.steps; i++) {
        const out = await ctx.call<StepOut>('chaos.step', { i, run: run.runCount, ms: args.ms } satisfies StepArgs);
        nonces.push(out.nonce);
      }
      return { nonces };
    }),
  );

  queue.register(
    'chaos.sleep',
    tracked(host, async (args: SleepArgs, ctx, run) => {
      await run.suspending();
      await ctx.sleep(args.ms);
      await run.resumed();
      await run.effect('woke', null);
      return { slept: args.ms };
    }),
  );

  queue.register(
    'chaos.signal',
    tracked(host, async (args: SignalArgs, ctx, run) => {
      const got: unknown[] = [];
      for (let j = 0; j < args.count; j++) {
        await run.suspending();
        got.push(await ctx.waitForSignal('go'));
        await run.resumed();
      }
      return { got };
    }),
  );

  const fanOut = (ctx: JobContext<unknown>, run: RunRecord, children: ChildArgs[], strategy: FanOutArgs['strategy']): Promise<FanOutOut> =>
    fanOutStep(ctx, run, children, strategy);

  queue.register(
    'chaos.fanout',
    tracked(host, async (args: FanOutArgs, ctx, run) => fanOut(ctx as JobContext<unknown>, run, args.children, args.strategy)),
  );

  queue.register(
    'chaos.child',
    tracked(host, async (a: ChildArgs, ctx, run) => {
      if (a.nest.length > 0) return fanOut(ctx as JobContext<unknown>, run, a.nest, 'collect-all');
      await work(a.ms, ctx.abortSignal);
      if (a.flaky && ctx.job.attempt === 1) throw new Error('flaky child by design');
      if (a.fail) throw noRetry(new Error('child fails by design'));
      return { ms: a.ms };
    }),
  );

  queue.register(
    'chaos.tick',
    tracked(host, async (_args: unknown, ctx, run) => {
      await run.effect('tick', String(ctx.job.meta['scheduledFor']));
    }),
  );
}
