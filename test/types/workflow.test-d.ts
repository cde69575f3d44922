/**
 * Type tests of the workflow API, checked by `tsc --noEmit -p tsconfig.json` (never run):
 * a wrong inference makes an `expectType<Equal<...>>()` line fail to compile, and every
 * `@ts-expect-error` line must really be an error.
 */
import { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import { allSucceeded, partition, sub, values } from '../../src/workflow/fan-out.js';
import type { FanOutResult, JobContext, JobDefinition, SubJob } from '../../src/workflow/job-context.js';

/** True when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only when its argument is `true`. */
function expectType<T extends true>(): T | undefined {
  return undefined;
}

interface Order {
  id: string;
  total: number;
}

export function typeTests(storage: Storage): void {
  const queue = new Queue(storage);

  // register() infers args and result, sync or async.
  const validate = queue.register('validate-order', async (order: Order) => ({ ...order, status: 'validated' as const }));
  expectType<Equal<typeof validate, JobDefinition<Order, { status: 'validated'; id: string; total: number }>>>();
  const charge = queue.register('charge', (order: Order) => `receipt-${order.id}`);
  expectType<Equal<typeof charge, JobDefinition<Order, string>>>();

  // definition.enqueue checks args.
  void validate.enqueue({ id: 'a', total: 1 });
  // @ts-expect-error total must be a number
  void validate.enqueue({ id: 'a', total: '1' });

  queue.register('process-order', async (order: Order, ctx) => {
    expectType<Equal<typeof ctx, JobContext<Order>>>();
    expectType<Equal<typeof ctx.job.args, Order>>();

    // Typed call: args and result inferred from the definition.
    const validated = await ctx.call(validate, order);
    expectType<Equal<typeof validated, { status: 'validated'; id: string; total: number }>>();
    const receipt = await ctx.call(charge, validated);
    expectType<Equal<typeof receipt, string>>();
    // @ts-expect-error the args of a definition are checked
    await ctx.call(charge, { id: 1 });
    // @ts-expect-error a definition needs its args
    await ctx.call(charge);

    // Untyped call by name: unknown unless a type argument is given.
    const _u = await ctx.call('charge', order);
    expectType<Equal<typeof _u, unknown>>();
    const _s = await ctx.call<string>('charge', order);
    expectType<Equal<typeof _s, string>>();

    // Fan-out results and helpers.
    const subs = [sub(validate, order), sub('charge', order, { retries: 1, queue: 'batch' })];
    expectType<Equal<(typeof subs)[0], SubJob<Order>>>();
    // @ts-expect-error sub() checks args against a definition
    sub(validate, { id: 'x' });
    // @ts-expect-error unknown sub option
    sub('charge', order, { unique: 'k' });
    const results = await ctx.fanOut<string>(subs, { strategy: { threshold: 0.8 }, timeout: 1000, retries: 2, queue: 'batch' });
    expectType<Equal<typeof results, FanOutResult<string>[]>>();
    const vs = values(results);
    expectType<Equal<typeof vs, string[]>>();
    const [_ok, _failed] = partition(results);
    expectType<Equal<typeof _ok, FanOutResult<string>[]>>();
    expectType<Equal<typeof _failed, FanOutResult<string>[]>>();
    const all: boolean = allSucceeded(results);
    // @ts-expect-error unknown strategy
    await ctx.fanOut(subs, { strategy: 'majority' });

    // Timers and signals.
    const slept: void = await ctx.sleep(10);
    await ctx.sleepUntil(new Date());
    // @ts-expect-error sleepUntil takes a Date
    await ctx.sleepUntil(Date.now());
    const _approval = await ctx.waitForSignal<{ by: string }>('approval', { timeout: 1000 });
    expectType<Equal<typeof _approval, { by: string } | undefined>>();

    return { receipt, vs, all, slept };
  });

  // Signals from the outside.
  void queue.signal('job-id', 'approval', { by: 'alice' });
}
