/**
 * `ctx.progress` on every driver, through the public API: a tight loop of reports costs a
 * bounded number of writes and stores the last one; the stored progress is readable with
 * `getJob` and published as a `job.progress` event; a report made before a suspension is stored
 * before the job waits; a run that lost its lease stores nothing more; a failing progress write
 * never fails the job; bad input is a typed error and stores nothing.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { PROGRESS_INTERVAL_MS } from '../../src/worker/progress-writer.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { collectProgress } from '../helpers/progress-events.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';


for (const [name, make] of storageMatrix()) {
  describe(`ctx.progress (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`progress-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('10,000 reports in a loop cost a bounded number of writes; the last is stored, readable and published', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const seen = collectProgress(queue);
      let elapsed = 0;
      queue.register('resize-all', async (n: number, ctx) => {
        const started = Date.now();
        for (let i = 1; i <= n; i++) {
          await ctx.progress(i / n, `resized ${i} of ${n}`);
          // Now and then a real turn of the event loop, so timed flushes happen mid-loop.
          if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
        elapsed = Date.now() - started;
        return 'done';
      });
      const id = await queue.enqueue('resize-all', 10_000, { queue: 'progress-loop' });
      const w = startWorker(queue, { queues: { 'progress-loop': { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 30_000 });
      await w.stop();
      await seen.stop();
      assert.equal(job.status, 'completed');
      const writes = faulty.calls('jobProgressMany');
      // One flush per interval at most while the loop ran, one right away, one before the outcome.
      const bound = 2 + Math.ceil(elapsed / PROGRESS_INTERVAL_MS);
      assert.ok(writes >= 1 && writes <= bound, `${writes} progress writes for 10,000 reports in ${elapsed} ms (bound ${bound})`);
      const stored = await queue.getJob(id);
      assert.ok(stored?.progress);
      assert.equal(stored.progress.value, 1);
      assert.equal(stored.progress.message, 'resized 10000 of 10000');
      assert.ok(stored.completedAt && stored.progress.at.getTime() <= stored.completedAt.getTime(), 'stored before the outcome');
      const mine = seen.events.filter((e) => e.jobId === id);
      assert.ok(mine.length >= 1 && mine.length <= writes, `${mine.length} events for ${writes} writes`);
      for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.value >= mine[i - 1]!.value, 'events come in report order');
      const last = mine.at(-1)!;
      assert.deepEqual(
        { jobId: last.jobId, jobType: last.jobType, queue: last.queue, value: last.value, message: last.message, at: last.at.getTime() },
        { jobId: id, jobType: 'resize-all', queue: 'progress-loop', value: 1, message: 'resized 10000 of 10000', at: stored.progress.at.getTime() },
      );
      assert.deepEqual(job.progress, stored.progress, 'the completed job carries it too');
    });

    it('a report is stored while the job runs and its event arrives; a report before a sleep is stored before the job waits', async () => {
      const queue = new Queue(ts.storage);
      const seen = collectProgress(queue);
      const readBack = new Gate();
      queue.register('two-phase', async (_: null, ctx) => {
        await ctx.call('phase-one');
        await ctx.progress(0.5, 'half way');
        await readBack.promise;
        await ctx.progress(0.75, 'before the nap');
        await ctx.sleep(800);
        await ctx.progress(1, 'woke up');
        return 'ok';
      });
      queue.register('phase-one', () => 1);
      const id = await queue.enqueue('two-phase', null, { queue: 'progress-phases' });
      const w = startWorker(queue, { queues: { 'progress-phases': { concurrency: 1 } } });
      const event = await waitFor(() => seen.events.find((e) => e.jobId === id && e.value === 0.5), { message: 'the job.progress event of the first report' });
      assert.equal(event.message, 'half way');
      assert.equal(event.jobType, 'two-phase');
      const running = await queue.getJob(id);
      assert.equal(running?.status, 'running');
      assert.deepEqual(running?.progress, { value: 0.5, message: 'half way', at: event.at });
      readBack.open();
      // The job turns `waiting` only after the report before the sleep was written.
      const waiting = await waitFor(async () => {
        const j = await queue.getJob(id);
        return j?.status === 'waiting' ? j : undefined;
      }, { message: 'the job sleeps' });
      assert.deepEqual([waiting.progress?.value, waiting.progress?.message], [0.75, 'before the nap']);
      const done = await queue.waitForJob(id, { timeout: 15_000 });
      await w.stop();
      await seen.stop();
      assert.equal(done.status, 'completed');
      assert.deepEqual([done.progress?.value, done.progress?.message], [1, 'woke up'], 'the replayed workflow reported again and its last report is stored');
    });

    it('a run that lost its lease stores no more progress (fenced), and its report is not published', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const seen = collectProgress(queue);
      const stolen = new Gate();
      const reported = new Gate();
      queue.register('zombie-progress', async (_: null, ctx) => {
        await ctx.progress(0.3, 'mine');
        await stolen.promise;
        await ctx.progress(0.9, 'zombie');
        reported.open();
        return 'late';
      });
      const q = 'progress-zombie';
      const id = await queue.enqueue('zombie-progress', null, { queue: q });
      // Heartbeats far apart: the run does not learn of the theft before it reports again.
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } }, heartbeatInterval: 5_000, leaseTimeout: 20_000 });
      await waitFor(() => seen.events.some((e) => e.jobId === id && e.value === 0.3), { message: 'the first report stored' });
      w.worker.pause();
      const row = await ts.storage.jobGet({ id });
      assert.ok(row && row.lockedBy !== null);
      assert.deepEqual(await ts.storage.jobRelease({ runs: [{ jobId: id, workerId: row.lockedBy, runCount: row.runCount }] }), [id]);
      const taken = await ts.storage.jobClaim({ workerId: 'another-worker', queues: [{ name: q, limit: 1 }], leaseMs: 60_000 });
      assert.deepEqual(taken.map((r) => r.id), [id]);
      const writesBefore = faulty.calls('jobProgressMany');
      stolen.open();
      await reported.promise;
      // The zombie's report is written (or dropped once the run learns it lost the lease), never stored.
      await waitFor(() => faulty.calls('jobProgressMany') > writesBefore || w.worker.activeCount === 0, { message: 'the zombie report went to storage or was dropped' });
      await w.stop();
      await seen.stop();
      const after = await ts.storage.jobGet({ id });
      assert.deepEqual([after?.status, after?.lockedBy, after?.progressValue, after?.progressMessage], ['running', 'another-worker', 0.3, 'mine']);
      assert.ok(!seen.events.some((e) => e.jobId === id && e.value === 0.9), 'no event for a report not stored');
    });

    it('a progress write that keeps failing never fails the job', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      faulty.fail({ method: 'jobProgressMany', times: Infinity, error: 'connection-reset' });
      queue.register('progress-down', async (_: null, ctx) => {
        for (let i = 1; i <= 100; i++) await ctx.progress(i / 100, `step ${i}`);
        return 'finished anyway';
      });
      const id = await queue.enqueue('progress-down', null, { queue: 'progress-down', retries: 0 });
      const w = startWorker(queue, { queues: { 'progress-down': { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 'finished anyway');
      assert.equal(job.attempt, 1);
      assert.equal(job.progress, null);
      assert.ok(faulty.calls('jobProgressMany') >= 1, 'the writes were tried');
    });

    it('bad input rejects with InvalidArgumentError and stores nothing', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const bad: [unknown, unknown][] = [[Number.NaN, undefined], [Infinity, undefined], [-0.1, undefined], [1.5, undefined], ['0.5', undefined], [undefined, undefined], [0.5, 42], [0.5, { text: 'x' }]];
      queue.register('bad-progress', async (_: null, ctx) => {
        const report = (value: unknown, message: unknown): Promise<void> => (ctx.progress as (v: unknown, m?: unknown) => Promise<void>).call(ctx, value, message);
        const out: string[] = [];
        for (const [value, message] of bad) {
          try {
            await report(value, message);
            out.push('accepted');
          } catch (err) {
            out.push(err instanceof InvalidArgumentError ? err.code : String(err));
          }
        }
        return out;
      });
      const id = await queue.enqueue('bad-progress', null, { queue: 'progress-bad' });
      const w = startWorker(queue, { queues: { 'progress-bad': { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      await w.stop();
      assert.deepEqual(job.result, bad.map(() => 'INVALID_ARGUMENT'));
      assert.equal(job.progress, null);
      assert.equal(faulty.calls('jobProgressMany'), 0);
    });
  });
}
