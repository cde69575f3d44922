/**
 * Middleware used badly, on every driver: a run middleware that calls `next()` after the run
 * already ended (timed out, or after it returned) must not start the handler as a zombie; a
 * second `next()` is refused; a non-JSON result fails the job; an enqueue middleware that sets an
 * invalid type or queue writes nothing; a batch whose item's chain throws writes nothing, and one
 * whose item calls `next()` after returning neither fails the batch nor writes that item; 1,000
 * fan-out sub-jobs through middleware keep their order; a schedule fire stores the meta its
 * middleware set.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { InvalidArgumentError, InvalidStateError } from '../../src/errors.js';
import { sub } from '../../src/workflow/fan-out.js';
import { every } from '../../src/scheduler/schedules.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { uniqueName } from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';
import { jobsOf } from '../helpers/schedule-helpers.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** A promise and its resolver. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

for (const [name, make] of storageMatrix()) {
  describe(`middleware, adversarial (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`mw-adv-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    const countIn = async (queue: Queue, q: string): Promise<number> => (await queue.listJobs({ queue: q, limit: 100 })).jobs.length;

    it('a run middleware that calls next() after the run timed out does not start the handler', async () => {
      const q = uniqueName('mwa');
      const queue = new Queue(ts.storage);
      const late = deferred<{ p: Promise<unknown> }>();
      const failed = deferred();
      let handlerRuns = 0;
      queue.use(async (_job, next) => {
        await failed.promise; // held past the job's timeout
        const p = next();
        late.resolve({ p });
        return p;
      });
      queue.register('slow-mw', () => {
        handlerRuns++;
        return 'ran';
      });
      queue.onJobFail(() => failed.resolve());
      const id = await queue.enqueue('slow-mw', null, { queue: q, timeout: 50, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      assert.equal(job.status, 'failed');
      assert.match(job.lastError ?? '', /timed out|timeout/i);
      await assert.rejects((await late.promise).p, (e: Error) => /timed out|timeout/i.test(e.message), 'next() rejects with why the run ended');
      await w.stop();
      assert.equal(handlerRuns, 0, 'the handler of a run that already ended never starts');
    });

    it('a run middleware that returns without next() and calls it later never runs the handler', async () => {
      const q = uniqueName('mwa');
      const queue = new Queue(ts.storage);
      const late = deferred<{ p: Promise<unknown> }>();
      let handlerRuns = 0;
      let saved: (() => Promise<unknown>) | undefined;
      queue.use(async (_job, next) => {
        saved = next;
        return 'skipped';
      });
      queue.register('skip-then-next', () => {
        handlerRuns++;
        return 'ran';
      });
      const id = await queue.enqueue('skip-then-next', null, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 'skipped');
      late.resolve({ p: saved!() });
      await assert.rejects((await late.promise).p, InvalidStateError);
      await w.stop();
      assert.equal(handlerRuns, 0);
    });

    it('next() called twice by one run middleware: the second rejects with InvalidStateError, the handler runs once', async () => {
      const q = uniqueName('mwa');
      const queue = new Queue(ts.storage);
      let handlerRuns = 0;
      let second: unknown;
      queue.use(async (_job, next) => {
        const r = await next();
        second = await next().catch((e: unknown) => e);
        return r;
      });
      queue.register('twice', () => ++handlerRuns);
      const id = await queue.enqueue('twice', null, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 1);
      assert.ok(second instanceof InvalidStateError, `second next() rejected with InvalidStateError, got ${String(second)}`);
      assert.equal(handlerRuns, 1);
    });

    it('a run middleware resolving with a non-JSON value fails the job (not retried)', async () => {
      const q = uniqueName('mwa');
      const queue = new Queue(ts.storage);
      queue.use(async (_job, next) => {
        await next();
        return 10n;
      });
      queue.register('bigint-result', () => 'ok');
      const id = await queue.enqueue('bigint-result', null, { queue: q, retries: 3 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } }, backoff: () => 0 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'failed');
      assert.equal(job.attempt, 1, 'an unencodable result is not retried');
      assert.match(job.lastError ?? '', /bigint|serial|json/i);
    });

    it('an enqueue middleware setting an invalid type, queue or option rejects with InvalidArgumentError and writes nothing', async () => {
      const q = uniqueName('mwa');
      const cases: [string, (r: Parameters<Parameters<Queue['useEnqueue']>[0]>[0]) => typeof r][] = [
        ['an empty type', (r) => ({ ...r, type: '' })],
        ['a non-string type', (r) => ({ ...r, type: 42 as unknown as string })],
        ['an empty queue', (r) => ({ ...r, options: { ...r.options, queue: '' } })],
        ['a fractional priority', (r) => ({ ...r, options: { ...r.options, priority: 1.5 } })],
        ['an array meta', (r) => ({ ...r, meta: [] as unknown as Record<string, never> })],
      ];
      for (const [what, change] of cases) {
        const queue = new Queue(ts.storage);
        queue.useEnqueue((r, next) => next(change(r)));
        await assert.rejects(queue.enqueue('valid', { n: 1 }, { queue: q }), InvalidArgumentError, `enqueue: ${what}`);
        await assert.rejects(queue.enqueueBatch([{ type: 'valid', args: 1, options: { queue: q } }, { type: 'valid', args: 2, options: { queue: q } }]), InvalidArgumentError, `batch: ${what}`);
      }
      assert.equal(await countIn(new Queue(ts.storage), q), 0, 'nothing was written');
    });

    it('a batch where one item’s middleware throws writes nothing; the other chains’ next() reject too', async () => {
      const q = uniqueName('mwa');
      const queue = new Queue(ts.storage);
      const seen: unknown[] = [];
      queue.useEnqueue(async (r, next) => {
        if (r.args === 2) throw new Error('item 2 refused');
        try {
          return await next();
        } catch (e) {
          seen.push(e);
          throw e;
        }
      });
      await assert.rejects(queue.enqueueBatch([1, 2, 3].map((n) => ({ type: 'item', args: n, options: { queue: q } }))), /item 2 refused/);
      assert.equal(seen.length, 2, 'items 1 and 3 saw next() reject');
      assert.equal(await countIn(queue, q), 0);
    });

    it('a batch item whose middleware calls next() after it returned: that call is refused, the batch stands', async () => {
      const q = uniqueName('mwa');
      const queue = new Queue(ts.storage);
      const item2Waiting = deferred();
      const release2 = deferred();
      const lateCall = deferred<{ p: Promise<string> }>();
      queue.useEnqueue(async (r, next) => {
        if (r.args === 1) {
          // Returns without next(), then calls it once item 2 is in its chain.
          void item2Waiting.promise.then(() => {
            const p = next();
            p.catch(() => {}); // asserted below, once the batch is written
            lateCall.resolve({ p });
            release2.resolve();
          });
          return 'not-written';
        }
        item2Waiting.resolve();
        await release2.promise;
        return next();
      });
      const ids = await queue.enqueueBatch([1, 2].map((n) => ({ type: 'item', args: n, options: { queue: q } })));
      await assert.rejects((await lateCall.promise).p, InvalidStateError, 'a next() after the middleware returned is refused');
      assert.equal(ids[0], 'not-written');
      const jobs = (await queue.listJobs({ queue: q, limit: 10 })).jobs;
      assert.deepEqual(
        jobs.map((j) => j.args),
        [2],
        'only item 2 is written',
      );
      assert.equal(ids[1], jobs[0]?.id);
    });

    it('1,000 fan-out sub-jobs through enqueue middleware keep their order and meta, and the fan-out completes', async () => {
      const q = uniqueName('mwa');
      const queue = new Queue(ts.storage);
      let calls = 0;
      queue.useEnqueue(async (r, next) => {
        if (r.source === 'fan-out') calls++;
        // Chains finish out of order.
        if (typeof r.args === 'number' && r.args % 7 === 0) await new Promise((res) => setImmediate(res));
        return next({ ...r, meta: { ...r.meta, stamped: `child-${String(r.args)}` } });
      });
      queue.register('kid', (n: number) => n);
      queue.register('parent', async (_: null, ctx) => {
        const r = await ctx.fanOut(Array.from({ length: 1000 }, (_x, i) => sub('kid', i)));
        return r.length;
      });
      const started = Date.now();
      const id = await queue.enqueue('parent', null, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 8 } } });
      const job = await queue.waitForJob(id, { timeout: 120_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 1000);
      assert.equal(calls, 1000, 'one chain per sub-job (the fan-out was written once)');
      const kids = await jobsOf(queue, 'kid');
      assert.equal(kids.length, 1000);
      for (const k of kids) assert.equal(k.meta['stamped'], `child-${String(k.args)}`);
      assert.ok(Date.now() - started < 120_000);
    });

    it('a schedule fire goes through the enqueue middleware and its meta is stored', async () => {
      const q = uniqueName('mwa');
      const queues = [new Queue(ts.storage), new Queue(await ts.another())];
      const sources: string[] = [];
      for (const [i, queue] of queues.entries()) {
        queue.useEnqueue((r, next) => {
          sources.push(r.source);
          return next({ ...r, meta: { ...r.meta, by: `scheduler-${i}` } });
        });
        queue.register('tick-mw', () => 'ok');
      }
      await queues[0]!.schedule('tick-mw', every(200), { queue: q, missed: 'all' });
      const workers = queues.map((queue) => startWorker(queue, { scheduler: true, queues: { [q]: { concurrency: 2 } } }));
      try {
        await waitFor(async () => (await jobsOf(queues[0]!, 'tick-mw')).length >= 4, { timeout: 20_000, message: '4 fires' });
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
      }
      await queues[0]!.unschedule('tick-mw');
      const jobs = await jobsOf(queues[0]!, 'tick-mw');
      const slots = jobs.map((j) => j.meta['scheduledFor']);
      assert.equal(new Set(slots).size, slots.length, 'each slot fired once, though both schedulers ran the middleware');
      for (const j of jobs) {
        assert.match(String(j.meta['by']), /^scheduler-[01]$/);
        assert.equal(j.meta['schedule'], 'tick-mw');
      }
      assert.ok(sources.every((s) => s === 'schedule'));
    });

    it('a run middleware that does not await next(): the run ends when its handler does, and a handler error fails it', async () => {
      const q = uniqueName('mwa');
      const queue = new Queue(ts.storage);
      const release = deferred();
      const ended: string[] = [];
      queue.use((_job, next) => {
        void next().catch(() => {});
        return Promise.resolve('from the chain');
      });
      queue.register('unawaited', async (mode: string) => {
        await release.promise;
        ended.push(mode);
        if (mode === 'throw') throw new Error('handler failed after the chain returned');
        return 'from the handler';
      });
      const ok = await queue.enqueue('unawaited', 'ok', { queue: q, retries: 0 });
      const bad = await queue.enqueue('unawaited', 'throw', { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } } });
      await waitFor(async () => (await queue.getJob(ok))?.status === 'running' && (await queue.getJob(bad))?.status === 'running', { message: 'both running' });
      // The chains returned long ago; the jobs must still be running while their handlers are.
      await waitFor(async () => (await queue.listJobs({ queue: q, limit: 10 })).jobs.every((j) => j.status === 'running'), { message: 'still running' });
      release.resolve();
      const [a, b] = await Promise.all([queue.waitForJob(ok, { timeout: 10_000 }), queue.waitForJob(bad, { timeout: 10_000 })]);
      await w.stop();
      assert.deepEqual(ended.sort(), ['ok', 'throw'], 'both handlers ran to their end before their outcomes');
      assert.equal(a.status, 'completed');
      assert.equal(a.result, 'from the chain', "the chain's result is the job's result");
      assert.equal(b.status, 'failed');
      assert.match(b.lastError ?? '', /handler failed after the chain returned/);
    });

    it('a run middleware that throws while the handler it started still runs fails the run and fires the abort signal', async () => {
      const q = uniqueName('mwa');
      const queue = new Queue(ts.storage);
      const aborted = deferred<unknown>();
      const started = deferred();
      queue.use(async (_job, next) => {
        void next().catch(() => {});
        await started.promise;
        throw new Error('middleware gave up');
      });
      queue.register('abandoned-by-mw', async (_a: null, ctx) => {
        ctx.abortSignal.addEventListener('abort', () => aborted.resolve(ctx.abortSignal.reason));
        started.resolve();
        await new Promise<void>((resolve) => ctx.abortSignal.addEventListener('abort', () => resolve()));
        return 'late';
      });
      const id = await queue.enqueue('abandoned-by-mw', null, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'failed');
      assert.match(job.lastError ?? '', /middleware gave up/);
      assert.match(String((await aborted.promise) as Error), /middleware gave up/, 'the handler saw its abort signal with the reason');
    });
  });
}
