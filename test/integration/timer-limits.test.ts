/**
 * Durable timers and waits at their limits, on every driver: an invalid `ctx.sleep` duration
 * (negative, NaN, Infinity, over 100 years) or `sleepUntil` date is refused with
 * `InvalidArgumentError` before it takes a step position; a 100-year sleep and a `sleepUntil` at
 * the largest Date suspend with that exact wake time on the database clock, and an operator can
 * still cancel, or pause the queue of, a job inside such a wait.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { InvalidArgumentError, MAX_DELAY_MS } from '../../src/errors.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

const MAX_DATE_MS = 8.64e15;

for (const [name, make] of storageMatrix()) {
  describe(`timer limits (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`timer-limits-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('invalid sleep durations and dates are refused with InvalidArgumentError and take no step position', async () => {
      const queue = new Queue(ts.storage);
      const refused: string[] = [];
      queue.register('lim-step', async () => 'stepped');
      queue.register('lim-bad', async (_: unknown, ctx) => {
        const tries: [string, () => Promise<void>][] = [
          ['-1', () => ctx.sleep(-1)],
          ['NaN', () => ctx.sleep(Number.NaN)],
          ['Infinity', () => ctx.sleep(Number.POSITIVE_INFINITY)],
          ['over 100 years', () => ctx.sleep(MAX_DELAY_MS + 1)],
          ['invalid Date', () => ctx.sleepUntil(new Date(Number.NaN))],
          ['signal timeout -5', async () => void (await ctx.waitForSignal('x', { timeout: -5 }))],
        ];
        for (const [what, call] of tries) {
          try {
            await call();
          } catch (err) {
            if (err instanceof InvalidArgumentError) refused.push(what);
          }
        }
        return ctx.call('lim-step');
      });
      const id = await queue.enqueue('lim-bad', null, { queue: 'lim-bad', retries: 0 });
      const w = startWorker(queue, { queues: { 'lim-bad': { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      await w.stop();
      assert.equal(job.status, 'completed', `completed (last error: ${job.lastError ?? 'none'})`);
      assert.deepEqual(refused, ['-1', 'NaN', 'Infinity', 'over 100 years', 'invalid Date', 'signal timeout -5']);
      const steps = await ts.storage.stepList({ jobId: id });
      assert.deepEqual(
        steps.map((s) => [s.stepIndex, s.stepName]),
        [[0, 'lim-step']],
        'the refused calls took no step position',
      );
    });

    it('a 100-year sleep and a sleepUntil at the largest Date suspend until exactly then; cancelJob ends each', async () => {
      const queue = new Queue(ts.storage);
      let resumed = 0;
      queue.register('lim-century', async (_: unknown, ctx) => {
        await ctx.sleep(MAX_DELAY_MS);
        resumed++;
      });
      queue.register('lim-maxdate', async (_: unknown, ctx) => {
        await ctx.sleepUntil(new Date(MAX_DATE_MS));
        resumed++;
      });
      const century = await queue.enqueue('lim-century', null, { queue: 'lim-big' });
      const maxDate = await queue.enqueue('lim-maxdate', null, { queue: 'lim-big' });
      const w = startWorker(queue, { queues: { 'lim-big': { concurrency: 2 } } });
      await waitFor(async () => (await queue.getJob(century))?.status === 'waiting' && (await queue.getJob(maxDate))?.status === 'waiting', { timeout: 10_000, message: 'both suspended' });
      const c = await ts.storage.jobGet({ id: century });
      const m = await ts.storage.jobGet({ id: maxDate });
      assert.ok(c?.startedAt !== null && c?.startedAt !== undefined);
      const [cStep] = await ts.storage.stepList({ jobId: century });
      const [mStep] = await ts.storage.stepList({ jobId: maxDate });
      const cWake = JSON.parse(cStep?.outputJson ?? 'null') as number;
      assert.ok(cWake - c.startedAt >= MAX_DELAY_MS && cWake - c.startedAt < MAX_DELAY_MS + 60_000, `wake time 100 years after the claim (${cWake - c.startedAt})`);
      assert.equal(JSON.parse(mStep?.outputJson ?? 'null'), MAX_DATE_MS);
      assert.equal(m?.status, 'waiting');
      await queue.cancelJob(century);
      await queue.cancelJob(maxDate);
      assert.equal((await queue.getJob(century))?.status, 'cancelled');
      assert.equal((await queue.getJob(maxDate))?.status, 'cancelled');
      await w.stop();
      assert.equal(resumed, 0);
    });

    it('a sleep that elapses while its queue is paused is not resumed until the queue is resumed', async () => {
      const queue = new Queue(ts.storage);
      let after = 0;
      queue.register('lim-paused', async (_: unknown, ctx) => {
        await ctx.sleep(150);
        after++;
        return 'woke';
      });
      const id = await queue.enqueue('lim-paused', null, { queue: 'lim-pq' });
      const w = startWorker(queue, { queues: { 'lim-pq': { concurrency: 1 } } });
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting', { timeout: 10_000, message: 'suspended' });
      await queue.pauseQueue('lim-pq');
      // Past the wake time: the maintenance sweep makes it pending, the paused queue keeps it there.
      await waitFor(async () => (await queue.getJob(id))?.status === 'pending', { timeout: 10_000, message: 'woken to pending' });
      const wakeAt = JSON.parse((await ts.storage.stepList({ jobId: id }))[0]?.outputJson ?? 'null') as number;
      const now = await ts.storage.clockNow();
      assert.ok(now >= wakeAt);
      assert.equal(after, 0, 'not resumed while paused');
      await queue.resumeQueue('lim-pq');
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(after, 1);
    });
  });
}
