/**
 * Worker behaviour on every driver: ordering, retries, errors, timeouts, hooks and events,
 * pause, cancel, lease reclaim and graceful stop.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { noRetry, retryAfter, JobTimeoutError, JobCancelledError } from '../../src/errors.js';
import type { JobEvent } from '../../src/types.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { StorageWatch } from '../helpers/workflow-harness.js';

const fast = { pollInterval: 20, maintenanceInterval: 50, handleSignals: false } as const;

for (const [name, make] of storageMatrix()) {
  describe(`worker (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`worker-${name}`);
    });
    after(() => ts.cleanup());

    it('runs jobs by priority, FIFO among equals (concurrency 1)', async () => {
      const queue = new Queue(ts.storage);
      const seen: string[] = [];
      queue.register('task', async (n: string) => void seen.push(n));
      const q = 'prio';
      await queue.enqueue('task', 'low-1', { priority: 1, queue: q });
      await queue.enqueue('task', 'low-2', { priority: 1, queue: q });
      await queue.enqueue('task', 'URGENT', { priority: 100, queue: q });
      await queue.enqueue('task', 'medium', { priority: 50, queue: q });
      await queue.enqueue('task', 'CRITICAL', { priority: 1000, queue: q });
      await queue.enqueueBatch(['b-1', 'b-2', 'b-3'].map((args) => ({ type: 'task', args, options: { priority: 1, queue: q } })));
      const worker = queue.newWorker({ ...fast, queues: { [q]: { concurrency: 1 } } });
      void worker.start();
      await waitFor(() => seen.length === 8);
      await worker.stop();
      assert.deepEqual(seen, ['CRITICAL', 'URGENT', 'medium', 'low-1', 'low-2', 'b-1', 'b-2', 'b-3']);
    });

    it('does not run a delayed job early', async () => {
      const queue = new Queue(ts.storage);
      let ranAt = 0;
      queue.register('delayed', async () => void (ranAt = Date.now()));
      const enqueuedAt = Date.now();
      const id = await queue.enqueue('delayed', {}, { delay: 400, queue: 'delay' });
      const runAtId = await queue.enqueue('delayed', {}, { runAt: new Date(Date.now() + 300), queue: 'delay' });
      const worker = queue.newWorker({ ...fast, queues: { delay: { concurrency: 2 } } });
      void worker.start();
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      const job2 = await queue.waitForJob(runAtId, { timeout: 10_000 });
      await worker.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job2.status, 'completed');
      assert.ok(ranAt - enqueuedAt >= 390, `ran after ${ranAt - enqueuedAt} ms`);
      assert.ok(job.startedAt!.getTime() >= job.runAt.getTime());
    });

    it('retries with backoff, then fails; hooks and events report each step', async () => {
      const queue = new Queue(ts.storage);
      let calls = 0;
      queue.register('flaky', async () => {
        calls++;
        throw new Error(`boom ${calls}`);
      });
      const retries: number[] = [];
      const failures: string[] = [];
      queue.onRetry((job, err) => {
        retries.push(job.attempt);
        assert.match(err.message, /boom/);
      });
      queue.onJobFail((job, err) => void failures.push(`${job.id}:${err.message}`));
      queue.onRetry(() => {
        throw new Error('a throwing hook must not break the worker');
      });
      const events: JobEvent[] = [];
      const stream = queue.events();
      const collecting = (async () => {
        for await (const e of stream) {
          events.push(e);
          if (e.type === 'job.failed') break;
        }
      })();
      const id = await queue.enqueue('flaky', {}, { retries: 2, queue: 'flakyq' });
      const worker = queue.newWorker({ ...fast, queues: { flakyq: { concurrency: 1 } }, backoff: () => 30 });
      void worker.start();
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await collecting;
      await worker.stop();
      assert.equal(job.status, 'failed');
      assert.equal(job.attempt, 3);
      assert.equal(calls, 3, 'retries: 2 means 3 attempts');
      assert.equal(job.lastError, 'boom 3');
      assert.deepEqual(retries, [1, 2]);
      assert.deepEqual(failures, [`${id}:boom 3`]);
      const types = events.filter((e) => 'job' in e && e.job.id === id).map((e) => e.type);
      assert.deepEqual(types, ['job.started', 'job.retrying', 'job.started', 'job.retrying', 'job.started', 'job.failed']);
    });

    it('noRetry fails at once; retryAfter delays the retry as given', async () => {
      const queue = new Queue(ts.storage);
      let rateCalls = 0;
      queue.register('api-call', async (endpoint: string) => {
        if (endpoint === '/invalid') throw noRetry(new Error('invalid endpoint'));
        if (endpoint === '/rate-limited' && rateCalls++ === 0) throw retryAfter(300, new Error('rate limited'));
        return 'ok';
      });
      const invalid = await queue.enqueue('api-call', '/invalid', { retries: 3, queue: 'errq' });
      const limited = await queue.enqueue('api-call', '/rate-limited', { retries: 3, queue: 'errq' });
      const worker = queue.newWorker({ ...fast, queues: { errq: { concurrency: 2 } } });
      void worker.start();
      const a = await queue.waitForJob(invalid, { timeout: 10_000 });
      const b = await queue.waitForJob(limited, { timeout: 10_000 });
      await worker.stop();
      assert.equal(a.status, 'failed');
      assert.equal(a.attempt, 1);
      assert.equal(a.lastError, 'invalid endpoint');
      assert.equal(b.status, 'completed');
      assert.equal(b.attempt, 2);
      assert.equal(b.result, 'ok');
      assert.equal(b.lastError, 'rate limited');
    });

    it('timeout fires the abort signal and fails the attempt', async () => {
      const queue = new Queue(ts.storage);
      let aborted: unknown;
      queue.register('slow', async (_: unknown, ctx) => {
        await new Promise<void>((resolve) => ctx.abortSignal.addEventListener('abort', () => resolve()));
        aborted = ctx.abortSignal.reason;
      });
      const id = await queue.enqueue('slow', {}, { timeout: 100, retries: 0, queue: 'timeoutq' });
      const worker = queue.newWorker({ ...fast, queues: { timeoutq: { concurrency: 1 } } });
      void worker.start();
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await worker.stop();
      assert.equal(job.status, 'failed');
      assert.match(job.lastError ?? '', /timed out after 100 ms/);
      assert.ok(aborted instanceof JobTimeoutError);
    });

    it('a job type without a handler fails with a message naming the type', async () => {
      const queue = new Queue(ts.storage);
      const id = await queue.enqueue('nobody-handles-this', {}, { queue: 'unknownq' });
      const worker = queue.newWorker({ ...fast, queues: { unknownq: { concurrency: 1 } } });
      void worker.start();
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await worker.stop();
      assert.equal(job.status, 'failed');
      assert.match(job.lastError ?? '', /nobody-handles-this/);
    });

    it('cancelling a running job fires its abort signal', async () => {
      const queue = new Queue(ts.storage);
      let reason: unknown;
      let started = false;
      queue.register('long', async (_: unknown, ctx) => {
        started = true;
        await new Promise<void>((resolve) => ctx.abortSignal.addEventListener('abort', () => resolve()));
        reason = ctx.abortSignal.reason;
      });
      const id = await queue.enqueue('long', {}, { queue: 'cancelq' });
      const worker = queue.newWorker({ ...fast, heartbeatInterval: 50, queues: { cancelq: { concurrency: 1 } } });
      void worker.start();
      await waitFor(() => started);
      await queue.cancelJob(id);
      await waitFor(() => reason !== undefined);
      await worker.stop();
      assert.ok(reason instanceof JobCancelledError);
      assert.equal((await queue.getJob(id))?.status, 'cancelled');
    });

    it('a paused queue is not claimed from until resumed; worker.pause stops claiming', async () => {
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      let ran = 0;
      queue.register('p', async () => void ran++);
      await queue.pauseQueue('pausedq');
      const id = await queue.enqueue('p', {}, { queue: 'pausedq' });
      const worker = queue.newWorker({ ...fast, queues: { pausedq: { concurrency: 1 } } });
      const threeClaims = watch.next('jobClaim', 3);
      void worker.start();
      // Three claim cycles of the worker come back while the queue is paused.
      await threeClaims;
      assert.equal((await queue.stats({ queue: 'pausedq' })).pending, 1);
      assert.equal(ran, 0, 'nothing is claimed from a paused queue');
      worker.pause();
      await watch.idle('jobClaim'); // a claim in flight when pause() landed gives its jobs back
      const claimsAtPause = watch.calls('jobClaim');
      // Each of these wakes a running worker at once (a claim starts before they return)...
      await queue.resumeQueue('pausedq');
      const second = await queue.enqueue('p', {}, { queue: 'pausedq' });
      // ...and two maintenance passes armed after pause() come after the poll timer (20 ms) fired.
      await watch.next('jobReclaimExpired', 2);
      assert.equal(watch.calls('jobClaim'), claimsAtPause, 'a paused worker makes no claim, neither on a wake nor on its poll');
      assert.equal(ran, 0, 'a paused worker runs nothing');
      worker.resume();
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'completed');
      assert.equal((await queue.waitForJob(second, { timeout: 10_000 })).status, 'completed');
      await worker.stop();
    });

    it('reclaims the job of a dead owner after the lease expires', async () => {
      const queue = new Queue(ts.storage);
      const id = await queue.enqueue('orphan', { v: 1 }, { queue: 'reclaimq' });
      // A "worker" that claims and then dies: it never heartbeats or finishes.
      const [claimed] = await ts.storage.jobClaim({ workerId: 'dead-worker', queues: [{ name: 'reclaimq', limit: 1 }], leaseMs: 300 });
      assert.equal(claimed?.id, id);
      const reclaimed: string[] = [];
      queue.onJobComplete((job) => void reclaimed.push(job.id));
      queue.register('orphan', async (args: { v: number }) => args.v + 1);
      const worker = queue.newWorker({ ...fast, leaseTimeout: 1000, queues: { reclaimq: { concurrency: 1 } } });
      void worker.start();
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await worker.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 2);
      assert.equal(job.attempt, 2, 'the reclaim consumed the first attempt');
      assert.deepEqual(reclaimed, [id]);
    });

    it('a handler that never returns cannot hold stop() past the drain timeout; its job is released', async () => {
      const queue = new Queue(ts.storage);
      let started = false;
      queue.register('stuck', () => {
        started = true;
        return new Promise(() => {});
      });
      const id = await queue.enqueue('stuck', {}, { queue: 'stuckq' });
      const worker = queue.newWorker({ ...fast, drainTimeout: 200, queues: { stuckq: { concurrency: 1 } } });
      const startDone = worker.start();
      await waitFor(() => started);
      const t0 = Date.now();
      await worker.stop();
      await startDone;
      const took = Date.now() - t0;
      assert.ok(took < 3000, `stop took ${took} ms`);
      const job = await queue.getJob(id);
      assert.equal(job?.status, 'pending', 'released back to pending');
      assert.equal(job?.attempt, 0, 'the attempt was given back');
    });

    it('drains running jobs on stop when they finish in time', async () => {
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let started = false;
      queue.register('gated', async () => {
        started = true;
        await gate;
        return 'done';
      });
      const id = await queue.enqueue('gated', {}, { queue: 'drainq' });
      const worker = queue.newWorker({ ...fast, heartbeatInterval: 50, drainTimeout: 10_000, queues: { drainq: { concurrency: 1 } } });
      void worker.start();
      await waitFor(() => started);
      let stopped = false;
      const stopping = worker.stop().then(() => (stopped = true));
      // Stopping, the worker keeps the running job's lease: two heartbeats renew it.
      await watch.next('jobHeartbeat', 2, { when: (_, held) => held.includes(id) });
      assert.equal(stopped, false, 'stop() waits for the running job');
      release();
      await stopping;
      assert.equal((await queue.getJob(id))?.status, 'completed');
    });
  });
}
