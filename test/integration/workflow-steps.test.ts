/**
 * Checkpointed steps (`ctx.call`) on every driver: completed steps are not re-run, replayed
 * values are JSON round trips, noRetry errors are checkpointed, retryable ones are not,
 * determinism is enforced, and a checkpoint racing a timeout still commits.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { DeterminismError, InvalidStateError, NoRetryError, noRetry } from '../../src/errors.js';
import type { Storage } from '../../src/storage/storage.js';
import type { JobContext } from '../../src/workflow/job-context.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

for (const [name, make] of storageMatrix()) {
  describe(`workflow steps (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`steps-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('does not re-run completed steps on retry; replayed values are JSON round trips', async () => {
      const queue = new Queue(ts.storage);
      const runs = { a: 0, b: 0 };
      const produced = { a: 1, gone: undefined, list: [1, 'x', { y: null }], nested: { s: 'é😀', f: 1.5 } };
      const roundTrip = JSON.parse(JSON.stringify(produced)) as unknown;
      const seenA: unknown[] = [];
      queue.register('step-a', () => {
        runs.a++;
        return produced;
      });
      queue.register('step-b', (n: number) => {
        runs.b++;
        if (runs.b === 1) throw new Error('transient');
        return n * 2;
      });
      queue.register('wf-replay', async (_: unknown, ctx) => {
        const a = await ctx.call<typeof produced>('step-a');
        seenA.push(a);
        const b = await ctx.call<number>('step-b', 21);
        return { a, b };
      });
      const id = await queue.enqueue('wf-replay', {}, { retries: 3, queue: 'steps-1' });
      const w = startWorker(queue, { queues: { 'steps-1': { concurrency: 1 } }, backoff: () => 10 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job.attempt, 2);
      assert.deepEqual(runs, { a: 1, b: 2 }, 'step-a ran once; the retryable failure of step-b was not checkpointed');
      assert.equal(seenA.length, 2);
      assert.deepEqual(seenA[0], roundTrip, 'the first run also gets the round-tripped value');
      assert.notEqual(seenA[0], produced, 'not the object the step returned');
      assert.ok(!Object.hasOwn(seenA[0] as object, 'gone'));
      assert.deepEqual(seenA[1], seenA[0], 'the replayed value equals the first run value');
      assert.deepEqual(job.result, { a: roundTrip, b: 42 });
      const steps = await ts.storage.stepList({ jobId: id });
      assert.deepEqual(
        steps.map((s) => [s.stepIndex, s.stepName, s.status]),
        [
          [0, 'step-a', 'completed'],
          [1, 'step-b', 'completed'],
        ],
      );
      assert.equal(steps[0]?.outputJson, JSON.stringify(produced));
    });

    it('checkpoints a noRetry step error and re-throws it on replay without re-running the step', async () => {
      const queue = new Queue(ts.storage);
      let badRuns = 0;
      let attempts = 0;
      const caught: unknown[] = [];
      queue.register('bad-step', () => {
        badRuns++;
        throw noRetry(new Error('invalid endpoint'));
      });
      queue.register('wf-norestry', async (_: unknown, ctx) => {
        attempts++;
        try {
          await ctx.call('bad-step');
        } catch (e) {
          caught.push(e);
        }
        if (attempts === 1) throw new Error('retry me');
        return 'done';
      });
      const id = await queue.enqueue('wf-norestry', {}, { retries: 2, queue: 'steps-2' });
      const w = startWorker(queue, { queues: { 'steps-2': { concurrency: 1 } }, backoff: () => 10 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(badRuns, 1, 'the failed step was replayed from its checkpoint');
      assert.equal(caught.length, 2);
      for (const e of caught) {
        assert.ok(e instanceof NoRetryError);
        assert.equal(e.message, 'invalid endpoint');
      }
      const [step] = await ts.storage.stepList({ jobId: id });
      assert.equal(step?.status, 'failed');
      assert.equal(step?.error, 'invalid endpoint');
    });

    it('a noRetry step error that escapes the handler fails the workflow at once', async () => {
      const queue = new Queue(ts.storage);
      queue.register('bad-step-2', () => {
        throw noRetry(new Error('card declined'));
      });
      queue.register('wf-fail', async (_: unknown, ctx) => ctx.call('bad-step-2'));
      const id = await queue.enqueue('wf-fail', {}, { retries: 5, queue: 'steps-3' });
      const w = startWorker(queue, { queues: { 'steps-3': { concurrency: 1 } }, backoff: () => 10 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'failed');
      assert.equal(job.attempt, 1);
      assert.equal(job.lastError, 'card declined');
    });

    it('a replay asking for another step at a recorded position fails with DeterminismError, no retry', async () => {
      const queue = new Queue(ts.storage);
      let attempts = 0;
      let otherRuns = 0;
      const failures: unknown[] = [];
      queue.onJobFail((_job, err) => void failures.push(err));
      queue.register('first-step', () => 1);
      queue.register('other-step', () => void otherRuns++);
      queue.register('wf-diverge', async (_: unknown, ctx) => {
        attempts++;
        if (attempts === 1) {
          await ctx.call('first-step');
          throw new Error('transient');
        }
        await ctx.call('other-step');
      });
      const id = await queue.enqueue('wf-diverge', {}, { retries: 5, queue: 'steps-4' });
      const w = startWorker(queue, { queues: { 'steps-4': { concurrency: 1 } }, backoff: () => 10 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'failed');
      assert.equal(job.attempt, 2, 'no retry after the DeterminismError');
      assert.equal(attempts, 2);
      assert.equal(otherRuns, 0);
      assert.match(job.lastError ?? '', /step 0.*"first-step".*"other-step"/);
      assert.ok(failures[0] instanceof DeterminismError);
    });

    it('a DeterminismError caught by the handler still fails the run', async () => {
      const queue = new Queue(ts.storage);
      let attempts = 0;
      queue.register('x-step', () => 'x');
      queue.register('y-step', () => 'y');
      queue.register('wf-swallow', async (_: unknown, ctx) => {
        attempts++;
        if (attempts === 1) {
          await ctx.call('x-step');
          throw new Error('transient');
        }
        try {
          await ctx.call('y-step');
        } catch {
          // swallowed on purpose
        }
        return 'should not complete';
      });
      const id = await queue.enqueue('wf-swallow', {}, { retries: 5, queue: 'steps-4b' });
      const w = startWorker(queue, { queues: { 'steps-4b': { concurrency: 1 } }, backoff: () => 10 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'failed');
      assert.equal(job.attempt, 2);
      assert.match(job.lastError ?? '', /diverged/);
    });

    it('typed calls with a definition run the step and return its result', async () => {
      const queue = new Queue(ts.storage);
      const double = queue.register('double', async (args: { n: number }) => ({ doubled: args.n * 2 }));
      queue.register('wf-typed', async (n: number, ctx) => {
        const r = await ctx.call(double, { n });
        return r.doubled + 1;
      });
      const id = await queue.enqueue('wf-typed', 20, { queue: 'steps-5' });
      const w = startWorker(queue, { queues: { 'steps-5': { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 41);
      const [step] = await ts.storage.stepList({ jobId: id });
      assert.equal(step?.stepName, 'double');
    });

    it('durable operations are refused inside a step', async () => {
      const queue = new Queue(ts.storage);
      let inner: unknown;
      queue.register('nesting-step', async (_: unknown, ctx: JobContext) => {
        try {
          await ctx.sleep(10);
        } catch (e) {
          inner = e;
        }
        return 'ok';
      });
      queue.register('wf-nest', async (_: unknown, ctx) => ctx.call('nesting-step'));
      const id = await queue.enqueue('wf-nest', {}, { queue: 'steps-6' });
      const w = startWorker(queue, { queues: { 'steps-6': { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.ok(inner instanceof NoRetryError);
      assert.ok(inner.cause instanceof InvalidStateError);
    });

    it('a checkpoint write racing the timeout still commits; the step is not re-run', async () => {
      // A real storage whose checkpoint writes take 300 ms: the 100 ms timeout fires mid-write.
      const slowWrites = { on: true };
      const slow = new Proxy(ts.storage, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver) as unknown;
          if (prop === 'stepRecord' && typeof v === 'function') {
            return async (...args: unknown[]) => {
              if (slowWrites.on) await new Promise((r) => setTimeout(r, 300));
              return (v as (...a: unknown[]) => Promise<boolean>).apply(target, args);
            };
          }
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      }) as Storage;
      const queue = new Queue(slow);
      let stepRuns = 0;
      let attempts = 0;
      const written = new Gate();
      queue.register('quick-step', () => {
        stepRuns++;
        return 'value';
      });
      queue.register('wf-race', async (_: unknown, ctx) => {
        attempts++;
        const v = await ctx.call<string>('quick-step');
        written.open();
        if (attempts === 1) await new Promise(() => {}); // the timeout ends this run
        return v;
      });
      const id = await queue.enqueue('wf-race', {}, { timeout: 100, retries: 2, queue: 'steps-7' });
      const w = startWorker(queue, { queues: { 'steps-7': { concurrency: 1 } }, backoff: () => 10 });
      await written.promise;
      slowWrites.on = false;
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 'value');
      assert.equal(attempts, 2);
      assert.equal(stepRuns, 1);
      assert.match(job.lastError ?? '', /timed out/);
    });

    it('parallel steps get positions in call order and replay by position', async () => {
      const queue = new Queue(ts.storage);
      const runs: string[] = [];
      let attempts = 0;
      queue.register('slow-echo', async (args: { v: string; ms: number }) => {
        runs.push(args.v);
        await new Promise((r) => setTimeout(r, args.ms));
        return args.v;
      });
      queue.register('wf-parallel', async (_: unknown, ctx) => {
        attempts++;
        const out = await Promise.all([ctx.call<string>('slow-echo', { v: 'a', ms: 60 }), ctx.call<string>('slow-echo', { v: 'b', ms: 5 })]);
        if (attempts === 1) throw new Error('transient');
        return out;
      });
      const id = await queue.enqueue('wf-parallel', {}, { retries: 1, queue: 'steps-8' });
      const w = startWorker(queue, { queues: { 'steps-8': { concurrency: 1 } }, backoff: () => 10 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, ['a', 'b']);
      assert.deepEqual(runs.sort(), ['a', 'b']);
      await waitFor(async () => (await ts.storage.stepList({ jobId: id })).length === 2);
    });
  });
}
