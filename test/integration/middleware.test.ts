/**
 * Run, step and enqueue middleware on every driver: order (outermost first), results passed
 * through or replaced, meta stamped on every enqueue (batches and fan-out sub-jobs included),
 * errors (a run middleware throw fails the run; an enqueue middleware throw writes nothing), the
 * async context the handler and its enqueues see, and checkpointed replays (middleware once per
 * run, a step's middleware never for a replayed step).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { Queue } from '../../src/queue/queue.js';
import { InvalidStateError, RunSuspendedError, noRetry } from '../../src/errors.js';
import { sub, values } from '../../src/workflow/fan-out.js';
import type { EnqueueRequest } from '../../src/core/middleware.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { uniqueName } from '../helpers/factories.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

for (const [name, make] of storageMatrix()) {
  describe(`middleware (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`middleware-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('run middleware wraps every run outermost first; the outermost result is the job result', async () => {
      const q = uniqueName('mw');
      const queue = new Queue(ts.storage);
      const log: string[] = [];
      queue.use(async (job, next, run) => {
        log.push(`a-before ${job.type} run ${run.runCount} worker ${run.workerId === w.worker.id}`);
        const r = await next();
        log.push(`a-after ${JSON.stringify(r)}`);
        return { wrapped: r };
      });
      queue.use(async (_job, next) => {
        log.push('b-before');
        const r = await next();
        log.push(`b-after ${JSON.stringify(r)}`);
        return r;
      });
      queue.register('double', (n: number) => {
        log.push('handler');
        return n * 2;
      });
      const id = await queue.enqueue('double', 21, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, { wrapped: 42 });
      assert.deepEqual(log, ['a-before double run 1 worker true', 'b-before', 'handler', 'b-after 42', 'a-after 42']);
    });

    it('a run middleware that throws fails the run like a handler throw (retried, then failed)', async () => {
      const q = uniqueName('mw');
      const queue = new Queue(ts.storage);
      let runs = 0;
      queue.use(async (job, next) => {
        if (job.attempt === 1) throw new Error(`middleware refused attempt ${job.attempt}`);
        return next();
      });
      queue.use(async (_job, next) => {
        runs++;
        return next();
      });
      queue.register('guarded', () => 'ran');
      const retried = await queue.enqueue('guarded', null, { queue: q, retries: 1 });
      const failed = await queue.enqueue('guarded', null, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } }, backoff: () => 0 });
      const [ok, bad] = await Promise.all([queue.waitForJob(retried, { timeout: 10_000 }), queue.waitForJob(failed, { timeout: 10_000 })]);
      await w.stop();
      assert.equal(ok.status, 'completed');
      assert.equal(ok.attempt, 2);
      assert.equal(ok.result, 'ran');
      assert.equal(bad.status, 'failed');
      assert.equal(bad.lastError, 'middleware refused attempt 1');
      assert.equal(runs, 1, 'the inner middleware ran only when the outer one called next()');
    });

    it('a run middleware may short-circuit the handler, turn its error into a result, or replace the error', async () => {
      const q = uniqueName('mw');
      const queue = new Queue(ts.storage);
      const handled: string[] = [];
      queue.use(async (job, next) => {
        const mode = (job.args as { mode: string }).mode;
        if (mode === 'cached') return 'from cache'; // the handler never runs
        if (mode === 'rescue') {
          try {
            return await next();
          } catch (e) {
            return `rescued: ${(e as Error).message}`;
          }
        }
        if (mode === 'replace') {
          try {
            return await next();
          } catch (e) {
            throw noRetry(new Error(`replaced: ${(e as Error).message}`));
          }
        }
        return next();
      });
      queue.register('flaky', (args: { mode: string }) => {
        handled.push(args.mode);
        throw new Error(`handler failed in ${args.mode}`);
      });
      const ids = await Promise.all(['cached', 'rescue', 'replace'].map((mode) => queue.enqueue('flaky', { mode }, { queue: q, retries: 3 })));
      const w = startWorker(queue, { queues: { [q]: { concurrency: 3 } }, backoff: () => 0 });
      const [cached, rescued, replaced] = await Promise.all(ids.map((id) => queue.waitForJob(id, { timeout: 10_000 })));
      await w.stop();
      assert.ok(cached && rescued && replaced);
      assert.equal(cached.status, 'completed');
      assert.equal(cached.result, 'from cache');
      assert.equal(rescued.status, 'completed');
      assert.equal(rescued.result, 'rescued: handler failed in rescue');
      assert.equal(replaced.status, 'failed');
      assert.equal(replaced.attempt, 1, 'the replacing noRetry error is not retried');
      assert.equal(replaced.lastError, 'replaced: handler failed in replace');
      assert.deepEqual(handled.sort(), ['replace', 'rescue'], 'the short-circuited job never reached its handler');
    });

    it('the handler and its enqueues run in the async context the run middleware set', async () => {
      const q = uniqueName('mw');
      const queue = new Queue(ts.storage);
      const als = new AsyncLocalStorage<string>();
      const seen: string[] = [];
      queue.use((job, next) => als.run(`run-of-${job.type}`, next));
      queue.useEnqueue((insert, next) => next({ ...insert, meta: { ...insert.meta, origin: als.getStore() ?? 'outside' } }));
      queue.register('leaf', () => 'leaf');
      queue.register('spawner', async () => {
        seen.push(als.getStore() ?? 'none');
        return queue.enqueue('leaf', null, { queue: q });
      });
      const id = await queue.enqueue('spawner', null, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      const leaf = await queue.waitForJob(job.result as string, { timeout: 10_000 });
      await w.stop();
      assert.deepEqual(seen, ['run-of-spawner']);
      assert.equal(job.meta['origin'], 'outside');
      assert.equal(leaf.meta['origin'], 'run-of-spawner');
    });

    it('enqueue middleware: outermost first, stamps meta, may replace the id; enqueueBatch items too', async () => {
      const q = uniqueName('mw');
      const queue = new Queue(ts.storage);
      const log: string[] = [];
      queue.useEnqueue(async (insert, next) => {
        log.push(`outer ${insert.source} ${insert.type}`);
        const id = await next({ ...insert, meta: { ...insert.meta, stamped: 'outer' } });
        return insert.type === 'renamed' ? `id:${id}` : id;
      });
      queue.useEnqueue(async (insert, next) => {
        log.push(`inner ${JSON.stringify(insert.meta)}`);
        return next({ ...insert, options: { ...insert.options, priority: 7 } });
      });
      const id = await queue.enqueue('plain', { a: 1 }, { queue: q, meta: { mine: true } });
      const job = await queue.getJob(id);
      assert.deepEqual(job?.meta, { mine: true, stamped: 'outer' });
      assert.equal(job?.priority, 7);
      const replaced = await queue.enqueue('renamed', null, { queue: q });
      assert.match(replaced, /^id:/);
      assert.equal((await queue.getJob(replaced.slice(3)))?.type, 'renamed');
      const ids = await queue.enqueueBatch([
        { type: 'b1', args: 1, options: { queue: q } },
        { type: 'b2', args: 2, options: { queue: q, meta: { k: 'v' } } },
      ]);
      const rows = await Promise.all(ids.map((i) => queue.getJob(i)));
      assert.deepEqual(
        rows.map((r) => [r?.type, r?.meta]),
        [
          ['b1', { stamped: 'outer' }],
          ['b2', { k: 'v', stamped: 'outer' }],
        ],
      );
      assert.deepEqual(log.slice(0, 4), ['outer enqueue plain', 'inner {"mine":true,"stamped":"outer"}', 'outer enqueue renamed', 'inner {"stamped":"outer"}']);
      assert.deepEqual(log.slice(4).sort(), ['inner {"k":"v","stamped":"outer"}', 'inner {"stamped":"outer"}', 'outer batch b1', 'outer batch b2']);
    });

    it('an enqueue middleware that throws rejects the enqueue and writes nothing (a whole batch)', async () => {
      const q = uniqueName('mw');
      const queue = new Queue(ts.storage);
      queue.useEnqueue(async (insert, next) => {
        if (insert.args === 'bad') throw new Error('refused by middleware');
        return next();
      });
      await assert.rejects(queue.enqueue('t', 'bad', { queue: q }), /refused by middleware/);
      await assert.rejects(
        queue.enqueueBatch([
          { type: 't', args: 'good', options: { queue: q } },
          { type: 't', args: 'bad', options: { queue: q } },
        ]),
        /refused by middleware/,
      );
      assert.equal((await queue.stats({ queue: q })).pending, 0);
      // A middleware that changes a request into an invalid one is refused like a bad enqueue.
      const strict = new Queue(ts.storage);
      strict.useEnqueue((insert, next) => next({ ...insert, options: { ...insert.options, priority: 1.5 } }));
      await assert.rejects(strict.enqueue('t', 'good', { queue: q }), /priority/);
      assert.equal((await queue.stats({ queue: q })).pending, 0);
      await queue.enqueue('t', 'good', { queue: q });
      assert.equal((await queue.stats({ queue: q })).pending, 1);
    });

    it('fan-out sub-jobs go through the enqueue middleware in the run context; replays run it once per run', async () => {
      const q = uniqueName('mw');
      const queue = new Queue(ts.storage);
      const als = new AsyncLocalStorage<string>();
      const requests: EnqueueRequest[] = [];
      const runs: string[] = [];
      const steps: string[] = [];
      queue.use(async (job, next, run) => {
        try {
          return await als.run(`${job.type}#${run.runCount}`, next);
        } catch (e) {
          runs.push(`${job.type} run ${run.runCount} ${e instanceof RunSuspendedError ? `suspended ${e.reason}` : 'threw'}`);
          throw e;
        }
      });
      queue.useStep(async (step, next) => {
        steps.push(`${step.name}@${step.index}`);
        return next();
      });
      queue.useEnqueue(async (insert, next) => {
        requests.push(insert);
        return next({ ...insert, meta: { ...insert.meta, ctx: als.getStore() ?? 'outside' } });
      });
      queue.register('inc', (n: number) => n + 1);
      queue.register('kid', (n: number) => n * 10);
      queue.register('flow', async (n: number, ctx) => {
        const a = await ctx.call<number>('inc', n);
        await ctx.sleep(1);
        const b = await ctx.call<number>('inc', a);
        const kids = values(await ctx.fanOut<number>([sub('kid', a), sub('kid', b, { meta: { own: 1 } })]));
        return [a, b, ...kids];
      });
      const id = await queue.enqueue('flow', 1, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } } });
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, [2, 3, 20, 30]);
      assert.deepEqual(steps, ['inc@0', 'inc@2'], 'each step ran its middleware once, never on a replay');
      assert.deepEqual(
        runs.filter((r) => r.startsWith('flow')),
        ['flow run 1 suspended sleep', 'flow run 2 suspended fan-out'],
      );
      const kids = (await queue.listJobs({ queue: q, type: 'kid', order: 'asc' })).jobs;
      assert.equal(kids.length, 2);
      const byArgs = new Map(kids.map((k) => [k.args as number, k]));
      assert.deepEqual(byArgs.get(2)?.meta, { ctx: 'flow#2' });
      assert.deepEqual(byArgs.get(3)?.meta, { own: 1, ctx: 'flow#2' });
      const subRequests = requests.filter((r) => r.source === 'fan-out');
      assert.equal(subRequests.length, 2, 'the fan-out enqueued its sub-jobs once');
      assert.ok(subRequests.every((r) => r.parentId === id && r.options.queue === q));
    });

    it('a sub-job whose middleware does not call next() fails the fan-out step and writes nothing', async () => {
      const q = uniqueName('mw');
      const queue = new Queue(ts.storage);
      let caught: unknown;
      queue.useEnqueue(async (insert, next) => (insert.source === 'fan-out' ? 'skipped' : next()));
      queue.register('kid', (n: number) => n);
      queue.register('fan', async (_: unknown, ctx) => {
        try {
          await ctx.fanOut([sub('kid', 1)]);
        } catch (e) {
          caught = e;
        }
        return 'done';
      });
      const id = await queue.enqueue('fan', null, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.ok(caught instanceof InvalidStateError, String(caught));
      assert.equal((await queue.listJobs({ queue: q, type: 'kid' })).jobs.length, 0);
    });
  });
}
