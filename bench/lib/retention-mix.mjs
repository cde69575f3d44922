// retention-steady's job mix (lib/retention.mjs): the handlers its worker process registers
// (lib/retention-child.mjs) and the paced producer of the driver process, so that every table
// of the schema is written and pruned: jobs, checkpoints, fan-outs and signals.

/** The storage of a run's configuration (`cfg` from the target's prepare()). */
export function openStorage(lib, cfg) {
  if (cfg.kind === 'sqlite') return new lib.SqliteStorage(cfg.file);
  if (cfg.kind === 'postgres') return new lib.PostgresStorage(cfg.url);
  if (cfg.kind === 'mysql') return new lib.MysqlStorage(cfg.url);
  throw new Error(`retention-steady: unknown storage kind ${cfg.kind}`);
}

/**
 * Share of each kind of root job in the mix. What each leaves behind when it finishes:
 * - noop: a completed job;
 * - doomed: a failed job (a `noRetry` error on its only attempt);
 * - flaky: a completed job after one retry (its first attempt fails, retried after ~1 s);
 * - cancelled: a job enqueued an hour ahead and cancelled at once;
 * - wf: a workflow of 3 checkpointed `ctx.call` steps (3 checkpoint rows);
 * - fan: a parent fanning out to 3 children (3 child jobs, a fan-out row, a checkpoint);
 * - nap: a durable `ctx.sleep(200)` (a checkpoint; the job waits, then is woken);
 * - signal: a job waiting for a signal the producer sends right after enqueueing it (a signal row, a checkpoint).
 */
export const MIX = { noop: 0.6, doomed: 0.08, flaky: 0.04, cancelled: 0.04, wf: 0.12, fan: 0.04, nap: 0.04, signal: 0.04 };
/** Child jobs per fan-out, checkpointed steps per workflow. */
export const FAN_CHILDREN = 3;
export const WF_STEPS = 3;

/** Registers the job types of the mix on `queue`. */
export function registerMix(lib, queue) {
  queue.register('noop', async () => {});
  queue.register('doomed', async () => {
    throw lib.noRetry(new Error('planned failure'));
  });
  queue.register('flaky', async (_args, ctx) => {
    if (ctx.job.attempt <= 1) throw new Error('planned failure of the first attempt');
  });
  queue.register('step', async (x) => x + 1);
  queue.register('wf', async (args, ctx) => {
    let v = args.x;
    for (let i = 0; i < args.steps; i++) v = await ctx.call('step', v);
    return v;
  });
  queue.register('fan', async (args, ctx) => {
    const results = await ctx.fanOut(Array.from({ length: args.n }, (_, i) => lib.sub('step', i)), { strategy: 'collect-all' });
    return lib.values(results).length;
  });
  queue.register('nap', async (args, ctx) => {
    await ctx.sleep(args.ms);
  });
  queue.register('await-signal', async (_args, ctx) => ctx.waitForSignal('go', { timeout: 60_000 }));
}

/** The batch item of one root job of kind `kind` (the `i`-th of its kind). */
function item(kind, i) {
  switch (kind) {
    case 'noop': return { type: 'noop', args: { i } };
    case 'doomed': return { type: 'doomed', args: { i }, options: { retries: 0 } };
    case 'flaky': return { type: 'flaky', args: { i }, options: { retries: 1 } };
    case 'cancelled': return { type: 'noop', args: { i }, options: { delay: 3_600_000 } };
    case 'wf': return { type: 'wf', args: { x: i, steps: WF_STEPS } };
    case 'fan': return { type: 'fan', args: { n: FAN_CHILDREN } };
    case 'nap': return { type: 'nap', args: { ms: 200 } };
    case 'signal': return { type: 'await-signal', args: { i } };
    default: throw new Error(`unknown kind ${kind}`);
  }
}

/**
 * A producer of `rate` root jobs per second in the proportions of MIX, on its own Queue (no
 * worker). `tick(elapsedS)` enqueues what is due by then (one batch), cancels the `cancelled`
 * ones and signals the `signal` ones, so a slow tick is caught up by the next one.
 */
export function mixProducer(lib, queue, rate) {
  const sent = Object.fromEntries(Object.keys(MIX).map((k) => [k, 0]));
  let roots = 0;
  return {
    get roots() {
      return roots;
    },
    async tick(elapsedS) {
      const items = [];
      const kinds = [];
      for (const [kind, share] of Object.entries(MIX)) {
        const due = Math.floor(rate * share * elapsedS);
        for (; sent[kind] < due; sent[kind]++) {
          items.push(item(kind, sent[kind]));
          kinds.push(kind);
        }
      }
      if (items.length === 0) return;
      const ids = await queue.enqueueBatch(items);
      roots += ids.length;
      const follow = [];
      ids.forEach((id, i) => {
        if (kinds[i] === 'cancelled') follow.push(queue.cancelJob(id));
        else if (kinds[i] === 'signal') follow.push(queue.signal(id, 'go', { at: i }));
      });
      await Promise.all(follow);
    },
  };
}
