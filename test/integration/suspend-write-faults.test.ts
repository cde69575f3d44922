/**
 * Faults on the workflow's one-call storage operations (`jobSuspendUntil`, `signalConsumeOrWait`,
 * `fanOutCollect`), injected with `FaultyStorage` around the real database: a call that fails
 * once — before anything is written, or after it committed with its reply lost — costs the job
 * no attempt and re-runs no completed step. Every case runs with `retries: 0`, so a lost attempt
 * shows as a failed job.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { sub } from '../../src/workflow/fan-out.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

const quick = { pollInterval: 20, maintenanceInterval: 50, heartbeatInterval: 100, leaseTimeout: 1500, drainTimeout: 2000 } as const;

for (const [name, make] of storageMatrix()) {
  describe(`suspension write faults (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`suspend-faults-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    for (const phase of ['before', 'after'] as const) {
      const what = phase === 'before' ? 'nothing written' : 'committed, reply lost';
      for (const sleepMs of [0, 40]) {
        it(`ctx.sleep(${sleepMs}) whose jobSuspendUntil fails once (${what}): completes on its only attempt, the step before it ran once`, async () => {
          const faulty = new FaultyStorage(ts.storage);
          const queue = new Queue(faulty.storage);
          let stepRuns = 0;
          const tag = `${phase}-${sleepMs}`;
          queue.register(`sl-step-${tag}`, async () => {
            stepRuns++;
            return 1;
          });
          queue.register(`sl-wf-${tag}`, async (_: unknown, ctx) => {
            const a = await ctx.call<number>(`sl-step-${tag}`);
            await ctx.sleep(sleepMs);
            return a + 1;
          });
          const q = `sl-${tag}`;
          const fault = faulty.fail({ method: 'jobSuspendUntil', phase });
          const id = await queue.enqueue(`sl-wf-${tag}`, null, { retries: 0, queue: q });
          const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 1 } } });
          const job = await queue.waitForJob(id, { timeout: 15_000 });
          await w.stop();
          assert.equal(fault.fired, 1);
          assert.equal(job.status, 'completed', `completed (last error: ${job.lastError ?? 'none'})`);
          assert.equal(job.result, 2);
          assert.equal(stepRuns, 1, 'the completed step did not run again');
        });
      }

      it(`a signal wait whose signalConsumeOrWait fails once (${what}) gets the buffered signal on its only attempt`, async () => {
        const faulty = new FaultyStorage(ts.storage);
        const queue = new Queue(faulty.storage);
        const tag = `sig-${phase}`;
        let stepRuns = 0;
        queue.register(`${tag}-step`, async () => {
          stepRuns++;
          return 1;
        });
        queue.register(`${tag}-wf`, async (_: unknown, ctx) => {
          await ctx.call(`${tag}-step`);
          return ctx.waitForSignal<string>('go', { timeout: 60_000 });
        });
        const q = `q-${tag}`;
        const id = await queue.enqueue(`${tag}-wf`, null, { retries: 0, queue: q });
        await queue.signal(id, 'go', 'first');
        await queue.signal(id, 'go', 'second');
        const fault = faulty.fail({ method: 'signalConsumeOrWait', phase });
        const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 1 } } });
        const job = await queue.waitForJob(id, { timeout: 15_000 });
        await w.stop();
        assert.equal(fault.fired, 1);
        assert.equal(job.status, 'completed', `completed (last error: ${job.lastError ?? 'none'})`);
        assert.equal(job.result, 'first', 'the oldest signal, consumed once');
        assert.equal(stepRuns, 1);
      });

      it(`a signal wait with timeout 0 whose signalConsumeOrWait fails once (${what}) times out on its only attempt`, async () => {
        const faulty = new FaultyStorage(ts.storage);
        const queue = new Queue(faulty.storage);
        const tag = `sig0-${phase}`;
        queue.register(`${tag}-wf`, async (_: unknown, ctx) => {
          const got = await ctx.waitForSignal<string>('never', { timeout: 0 });
          return got === undefined ? 'timed out' : got;
        });
        const q = `q-${tag}`;
        const id = await queue.enqueue(`${tag}-wf`, null, { retries: 0, queue: q });
        const fault = faulty.fail({ method: 'signalConsumeOrWait', phase });
        const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 1 } } });
        const job = await queue.waitForJob(id, { timeout: 15_000 });
        await w.stop();
        assert.equal(fault.fired, 1);
        assert.equal(job.status, 'completed', `completed (last error: ${job.lastError ?? 'none'})`);
        assert.equal(job.result, 'timed out');
      });

      it(`a first fan-out whose jobSuspendFanOut fails once (${what}) runs each child once and completes on its only attempt`, async () => {
        const faulty = new FaultyStorage(ts.storage);
        const queue = new Queue(faulty.storage);
        const tag = `fos-${phase}`;
        const childRuns = new Map<number, number>();
        queue.register(`${tag}-child`, async (n: number) => {
          childRuns.set(n, (childRuns.get(n) ?? 0) + 1);
          return n * 2;
        });
        queue.register(`${tag}-wf`, async (_: unknown, ctx) => {
          const r = await ctx.fanOut<number>([sub(`${tag}-child`, 1), sub(`${tag}-child`, 2)]);
          return r.map((x) => x.value);
        });
        const q = `q-${tag}`;
        const fault = faulty.fail({ method: 'jobSuspendFanOut', phase });
        const id = await queue.enqueue(`${tag}-wf`, null, { retries: 0, queue: q });
        const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 2 } } });
        const job = await queue.waitForJob(id, { timeout: 15_000 });
        await w.stop();
        assert.equal(fault.fired, 1);
        assert.equal(job.status, 'completed', `completed (last error: ${job.lastError ?? 'none'})`);
        assert.deepEqual(job.result, [2, 4]);
        assert.deepEqual([...childRuns.entries()].sort(), [[1, 1], [2, 1]], 'each child ran once');
        assert.equal((await ts.storage.jobList({ parentId: id, limit: 10 })).length, 2, 'two children, none duplicated');
      });

      it(`a fan-out resume whose fanOutCollect fails once (${what}) completes on its only attempt`, async () => {
        const faulty = new FaultyStorage(ts.storage);
        const queue = new Queue(faulty.storage);
        const tag = `fo-${phase}`;
        let parentStarts = 0;
        queue.register(`${tag}-child`, async (n: number) => n * 2);
        queue.register(`${tag}-wf`, async (_: unknown, ctx) => {
          parentStarts++;
          const r = await ctx.fanOut<number>([
            sub(`${tag}-child`, 1),
            sub(`${tag}-child`, 2),
          ]);
          return r.map((x) => x.value);
        });
        const q = `q-${tag}`;
        const fault = faulty.fail({ method: 'fanOutCollect', phase });
        const id = await queue.enqueue(`${tag}-wf`, null, { retries: 0, queue: q });
        const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 2 } } });
        const job = await queue.waitForJob(id, { timeout: 15_000 });
        await w.stop();
        assert.equal(fault.fired, 1);
        assert.equal(job.status, 'completed', `completed (last error: ${job.lastError ?? 'none'})`);
        assert.deepEqual(job.result, [2, 4]);
        assert.ok(parentStarts >= 2);
      });
    }
  });
}
