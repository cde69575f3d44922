/**
 * Durable timers and signals on every driver: the wake time and the signal deadline are fixed
 * at the first execution and survive restarts, waiting holds no worker slot, signals are
 * buffered, FIFO, consumed once and only by a wait of their name.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { InvalidStateError, JobNotFoundError } from '../../src/errors.js';
import type { JobEvent } from '../../src/types.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { holdsFor, startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** Collects the reasons of `job.suspended` events of a queue until `stop()`. */
function suspensions(queue: Queue): { reasons: string[]; stop: () => Promise<void> } {
  const reasons: string[] = [];
  const stream = queue.events();
  const done = (async () => {
    for await (const e of stream as AsyncIterable<JobEvent>) if (e.type === 'job.suspended') reasons.push(e.reason);
  })();
  return { reasons, stop: async () => void (await stream.return?.(), await done) };
}

for (const [name, make] of storageMatrix()) {
  describe(`timers and signals (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`timers-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('sleep: wake time checkpointed, no slot held, not woken by a signal, not re-waited on retry', async () => {
      const queue = new Queue(ts.storage);
      const entries: number[] = [];
      const afterSleep: number[] = [];
      queue.register('plain', () => 'ran');
      queue.register('sleeper', async (ms: number, ctx) => {
        entries.push(Date.now());
        await ctx.sleep(ms);
        afterSleep.push(Date.now());
        if (afterSleep.length === 1) throw new Error('transient after the sleep');
        return 'awake';
      });
      const clockBefore = await ts.storage.clockNow();
      const id = await queue.enqueue('sleeper', 1_500, { queue: 'sl1', retries: 1 });
      const w = startWorker(queue, { queues: { sl1: { concurrency: 1 } }, backoff: () => 10 });
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting');
      const [step] = await ts.storage.stepList({ jobId: id });
      assert.equal(step?.stepName, 'sleep');
      const wakeAt = JSON.parse(step!.outputJson!) as number;
      const clockAfter = await ts.storage.clockNow();
      assert.ok(wakeAt >= clockBefore + 1_500 && wakeAt <= clockAfter + 1_500, `wake at ${wakeAt - clockBefore} ms`);
      assert.equal((await ts.storage.jobGet({ id }))?.wakeAt, wakeAt);
      // The slot is free: another job of the concurrency-1 queue runs while it sleeps.
      const other = await queue.enqueue('plain', {}, { queue: 'sl1' });
      assert.equal((await queue.waitForJob(other, { timeout: 5_000 })).status, 'completed');
      // A signal neither wakes it nor counts as a run.
      await queue.signal(id, 'poke', 1);
      const window = Math.min(300, wakeAt - 200 - (await ts.storage.clockNow()));
      assert.ok(window > 0, 'the test machine is too slow to observe the sleep before its wake time');
      await holdsFor(async () => entries.length === 1 && (await queue.getJob(id))?.status === 'waiting', window, 'still asleep');
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 'awake');
      assert.equal(entries.length, 3);
      assert.ok(afterSleep[0]! >= wakeAt - 5, 'resumed no earlier than the wake time');
      assert.ok(afterSleep[1]! - entries[2]! < 700, 'the retry did not sleep again (1500 ms)');
      assert.equal((await ts.storage.stepList({ jobId: id })).length, 1);
    });

    it('sleep(0) and sleepUntil(past) return at once but are checkpointed', async () => {
      const queue = new Queue(ts.storage);
      const seen = suspensions(queue);
      queue.register('no-wait', async (_: unknown, ctx) => {
        await ctx.sleep(0);
        await ctx.sleepUntil(new Date(Date.now() - 60_000));
        return 'done';
      });
      const id = await queue.enqueue('no-wait', {}, { queue: 'sl2' });
      const w = startWorker(queue, { queues: { sl2: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 5_000 });
      await w.stop();
      await seen.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(seen.reasons, []);
      const steps = await ts.storage.stepList({ jobId: id });
      assert.deepEqual(
        steps.map((s) => [s.stepName, s.status]),
        [
          ['sleep', 'completed'],
          ['sleep', 'completed'],
        ],
      );
      assert.ok(typeof JSON.parse(steps[1]!.outputJson!) === 'number');
    });

    it('a sleep resumes at its original wake time after a worker restart', async () => {
      const queue = new Queue(ts.storage);
      let firstEntry = 0;
      let woke = 0;
      const handler = async (ms: number, ctx: { sleep(ms: number): Promise<void> }): Promise<void> => {
        firstEntry ||= Date.now();
        await ctx.sleep(ms);
        woke = Date.now();
      };
      queue.register('restart-sleeper', handler);
      const id = await queue.enqueue('restart-sleeper', 1_000, { queue: 'sl3' });
      const w1 = startWorker(queue, { queues: { sl3: { concurrency: 1 } } });
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting');
      const wakeAt = (await ts.storage.jobGet({ id }))?.wakeAt;
      await w1.stop();
      await waitFor(() => Date.now() - firstEntry >= 800);
      // A new process (another storage instance, another queue) picks it up.
      const queue2 = new Queue(await ts.another());
      queue2.register('restart-sleeper', handler);
      const w2 = startWorker(queue2, { queues: { sl3: { concurrency: 1 } } });
      const job = await queue2.waitForJob(id, { timeout: 10_000 });
      await w2.stop();
      assert.equal(job.status, 'completed');
      const slept = woke - firstEntry;
      assert.ok(slept >= 990 && slept < 1_700, `slept ${slept} ms in total (a restarted wait would be >= 1800)`);
      const [step] = await ts.storage.stepList({ jobId: id });
      assert.equal(JSON.parse(step!.outputJson!), wakeAt, 'the wake time checkpointed by the first run was kept');
    });

    it('a signal sent before the wait is buffered and consumed without suspending', async () => {
      const queue = new Queue(ts.storage);
      const seen = suspensions(queue);
      queue.register('early-bird', async (_: unknown, ctx) => ctx.waitForSignal<{ by: string }>('approval'));
      const id = await queue.enqueue('early-bird', {}, { queue: 'sg1' });
      await queue.signal(id, 'approval', { by: 'alice' });
      const w = startWorker(queue, { queues: { sg1: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 5_000 });
      await w.stop();
      await seen.stop();
      assert.deepEqual(job.result, { by: 'alice' });
      assert.deepEqual(seen.reasons, []);
    });

    it('signals are consumed FIFO per name, each exactly once', async () => {
      const queue = new Queue(ts.storage);
      let runs = 0;
      queue.register('collector', async (_: unknown, ctx) => {
        runs++;
        const got: unknown[] = [];
        for (let i = 0; i < 3; i++) got.push(await ctx.waitForSignal('item'));
        got.push((await ctx.waitForSignal('item', { timeout: 200 })) ?? 'none');
        return got;
      });
      const id = await queue.enqueue('collector', {}, { queue: 'sg2' });
      await queue.signal(id, 'item', 1);
      await queue.signal(id, 'item', { two: 2 });
      const w = startWorker(queue, { queues: { sg2: { concurrency: 1 } } });
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting');
      await queue.signal(id, 'item', 'three');
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.deepEqual(job.result, [1, { two: 2 }, 'three', 'none']);
      assert.equal(runs, 3, 'one run, one resume for "three", one for the timeout');
      const steps = await ts.storage.stepList({ jobId: id });
      assert.deepEqual(
        steps.map((s) => s.status),
        ['completed', 'completed', 'completed', 'failed'],
      );
    });

    it('a wait is woken only by its own signal name; other names stay buffered for their own waits', async () => {
      const queue = new Queue(ts.storage);
      let runs = 0;
      queue.register('picky', async (_: unknown, ctx) => {
        runs++;
        const approve = await ctx.waitForSignal('approve');
        const other = await ctx.waitForSignal('other');
        return { approve, other };
      });
      const id = await queue.enqueue('picky', {}, { queue: 'sg3' });
      const w = startWorker(queue, { queues: { sg3: { concurrency: 1 } } });
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting');
      await queue.signal(id, 'other', 'o1');
      await queue.signal(id, 'other', 'o2');
      await holdsFor(async () => runs === 1 && (await queue.getJob(id))?.status === 'waiting', 200, 'not woken by another name');
      await queue.signal(id, 'approve', 'yes');
      const job = await queue.waitForJob(id, { timeout: 5_000 });
      await w.stop();
      assert.deepEqual(job.result, { approve: 'yes', other: 'o1' });
      assert.equal(runs, 2);
    });

    it('a signal timeout is fixed at the first execution and survives a restart', async () => {
      const queue = new Queue(ts.storage);
      let firstEntry = 0;
      let returned = 0;
      const handler = async (_: unknown, ctx: { waitForSignal(n: string, o: { timeout: number }): Promise<unknown> }): Promise<unknown> => {
        firstEntry ||= Date.now();
        const v = await ctx.waitForSignal('never', { timeout: 1_000 });
        returned = Date.now();
        return v === undefined ? 'timed out' : v;
      };
      queue.register('patient', handler);
      const id = await queue.enqueue('patient', {}, { queue: 'sg4' });
      const w1 = startWorker(queue, { queues: { sg4: { concurrency: 1 } } });
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting');
      const [step] = await ts.storage.stepList({ jobId: id });
      assert.equal(step?.status, 'waiting');
      const deadline = (await ts.storage.jobGet({ id }))?.wakeAt;
      assert.equal(JSON.parse(step!.outputJson!), deadline, 'the deadline is checkpointed');
      await w1.stop();
      await waitFor(() => Date.now() - firstEntry >= 800);
      const queue2 = new Queue(await ts.another());
      queue2.register('patient', handler);
      const w2 = startWorker(queue2, { queues: { sg4: { concurrency: 1 } } });
      const job = await queue2.waitForJob(id, { timeout: 10_000 });
      await w2.stop();
      assert.equal(job.result, 'timed out');
      const waited = returned - firstEntry;
      assert.ok(waited >= 990 && waited < 1_700, `waited ${waited} ms in total (a restarted timeout would be >= 1800)`);
      const [after] = await ts.storage.stepList({ jobId: id });
      assert.equal(after?.status, 'failed');
    });

    it('signalling a finished job rejects with InvalidStateError, an unknown job with JobNotFoundError', async () => {
      const queue = new Queue(ts.storage);
      queue.register('quick', () => 'ok');
      const id = await queue.enqueue('quick', {}, { queue: 'sg5' });
      const w = startWorker(queue, { queues: { sg5: { concurrency: 1 } } });
      await queue.waitForJob(id, { timeout: 5_000 });
      await w.stop();
      await assert.rejects(queue.signal(id, 'late', 1), InvalidStateError);
      const cancelled = await queue.enqueue('quick', {}, { queue: 'sg5-idle' });
      await queue.cancelJob(cancelled);
      await assert.rejects(queue.signal(cancelled, 'late', 1), InvalidStateError);
      await assert.rejects(queue.signal('01900000-0000-7000-8000-000000000000', 'x', 1), JobNotFoundError);
    });
  });
}
