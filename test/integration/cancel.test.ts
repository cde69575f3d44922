/**
 * Cancellation and lost ownership on every driver: `cancelJob` cancels a whole subtree at
 * once, running handlers in it (in this or another process) see their abort signal, a
 * cancelled parent never resumes; and a zombie run (lease lost, job re-claimed elsewhere)
 * can neither store a checkpoint, consume a signal nor wake a parent.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { InvalidStateError, JobCancelledError, LeaseLostError } from '../../src/errors.js';
import { sub, values } from '../../src/workflow/fan-out.js';
import type { Storage } from '../../src/storage/storage.js';
import { applied, fenceOf, mustGet, reclaimUntil } from '../helpers/factories.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, holdsFor, registerChild, startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** Options of a worker that never reclaims during a test; on {@link withoutHeartbeats} it becomes a zombie. */
const zombie = { leaseTimeout: 200, maintenanceInterval: 600_000 } as const;

/** A storage whose heartbeats report every lease as held but extend none: its worker's leases run out. */
function withoutHeartbeats(storage: Storage): Storage {
  const faulty = new FaultyStorage(storage);
  faulty.fail({ method: 'jobHeartbeat', times: Infinity, respond: (p) => p.runs.map((r) => r.jobId) });
  return faulty.storage;
}

for (const [name, make] of storageMatrix()) {
  describe(`cancellation and zombies (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`cancel-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('cancelling a parent cancels its whole subtree at once, aborts running handlers, and never resumes it', async () => {
      const queue = new Queue(ts.storage);
      const log = registerChild(queue);
      const reasons: unknown[] = [];
      const resumed: string[] = [];
      queue.register('c-mid', async (m: number, ctx) => {
        ctx.abortSignal.addEventListener('abort', () => reasons.push(ctx.abortSignal.reason));
        const vs = values(await ctx.fanOut([sub('child', { v: m, mode: 'hang' }), sub('child', { v: m + 1, mode: 'hang' })]));
        resumed.push(`mid ${m}`);
        return vs;
      });
      queue.register('c-top', async (_: unknown, ctx) => {
        const vs = values(await ctx.fanOut([sub('c-mid', 0), sub('c-mid', 10)], { strategy: 'collect-all' }));
        resumed.push('top');
        return vs;
      });
      const cancelledEvents: string[] = [];
      const stream = queue.events();
      const watching = (async () => {
        for await (const e of stream) if (e.type === 'job.cancelled') cancelledEvents.push(e.jobId);
      })();
      const top = await queue.enqueue('c-top', {}, { queue: 'cq1' });
      const w = startWorker(queue, { queues: { cq1: { concurrency: 10 } } });
      await waitFor(() => log.started.length === 4, { message: 'four grandchildren running' });
      await queue.cancelJob(top);
      const all = [top, ...(await ts.storage.jobList({ parentId: top, limit: 10 })).map((j) => j.id)];
      for (const mid of all.slice(1)) all.push(...(await ts.storage.jobList({ parentId: mid, limit: 10 })).map((j) => j.id));
      assert.equal(all.length, 7);
      const statuses = await Promise.all(all.map(async (id) => (await mustGet(ts.storage, id)).status));
      assert.deepEqual(statuses, Array(7).fill('cancelled'), 'the whole subtree was cancelled by the one call');
      await waitFor(() => log.aborted.length === 4, { message: 'running grandchildren aborted' });
      await holdsFor(async () => resumed.length === 0 && (await mustGet(ts.storage, top)).status === 'cancelled', 200, 'a cancelled parent is never resumed');
      await w.stop();
      await stream.return?.();
      await watching;
      assert.deepEqual(new Set(cancelledEvents), new Set(all));
      assert.deepEqual(reasons, [], 'waiting mids hold no run to abort');
    });

    it('a handler running in another process sees its abort signal within a few seconds', async () => {
      const other = new Queue(await ts.another());
      let started = 0;
      let reason: unknown;
      let abortedAt = 0;
      other.register('remote-long', async (_: unknown, ctx) => {
        started = Date.now();
        await new Promise((resolve) => ctx.abortSignal.addEventListener('abort', resolve));
        reason = ctx.abortSignal.reason;
        abortedAt = Date.now();
      });
      // Default heartbeat (min(leaseTimeout / 3, 2 s)): how fast a cancel reaches a remote handler.
      const worker = other.newWorker({ pollInterval: 20, drainTimeout: 300, handleSignals: false, queues: { cq2: { concurrency: 1 } } });
      const done = worker.start();
      const queue = new Queue(ts.storage);
      const id = await queue.enqueue('remote-long', {}, { queue: 'cq2' });
      let cancelledAt = 0;
      try {
        await waitFor(() => started > 0);
        cancelledAt = Date.now();
        await queue.cancelJob(id);
        await waitFor(() => reason !== undefined, { timeout: 8_000, message: 'remote abort' });
      } finally {
        await worker.stop();
        await done;
      }
      assert.ok(reason instanceof JobCancelledError);
      assert.ok(abortedAt - cancelledAt < 4_000, `aborted ${abortedAt - cancelledAt} ms after the cancel`);
      assert.equal((await queue.getJob(id))?.status, 'cancelled');
    });

    it('a descendant cancelled just before it suspends into its own fan-out leaves no grandchildren', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      const gate = new Gate();
      let started = false;
      let thrown: unknown;
      queue.register('c-late-fan', async (_: unknown, ctx) => {
        started = true;
        await gate.promise;
        try {
          return await ctx.fanOut([sub('child', { v: 1 }), sub('child', { v: 2 })]);
        } catch (e) {
          thrown = e;
          throw e;
        }
      });
      queue.register('c-late-top', async (_: unknown, ctx) => ctx.fanOut([sub('c-late-fan', {})]));
      const top = await queue.enqueue('c-late-top', {}, { queue: 'cq3' });
      // No heartbeat during the test: the handler is not told about the cancel and goes on.
      const w = startWorker(queue, { queues: { cq3: { concurrency: 2 } }, leaseTimeout: 1_200_000, heartbeatInterval: 600_000 });
      await waitFor(() => started);
      const [mid] = await ts.storage.jobList({ parentId: top, limit: 1 });
      await queue.cancelJob(top);
      gate.open();
      await waitFor(() => thrown !== undefined);
      await w.stop();
      assert.ok(thrown instanceof LeaseLostError);
      assert.deepEqual(await ts.storage.jobList({ parentId: mid!.id, limit: 10 }), [], 'no orphaned grandchildren');
      assert.deepEqual(await ts.storage.stepList({ jobId: mid!.id }), []);
      assert.equal((await mustGet(ts.storage, mid!.id)).status, 'cancelled');
      assert.equal((await mustGet(ts.storage, top)).status, 'cancelled');
    });

    it('a cancelled sleeper or signal waiter never resumes; a later signal is rejected', async () => {
      const queue = new Queue(ts.storage);
      let resumed = 0;
      queue.register('c-sleep', async (_: unknown, ctx) => {
        await ctx.sleep(1_000);
        resumed++;
      });
      queue.register('c-wait', async (_: unknown, ctx) => {
        await ctx.waitForSignal('go', { timeout: 1_000 });
        resumed++;
      });
      const a = await queue.enqueue('c-sleep', {}, { queue: 'cq4' });
      const b = await queue.enqueue('c-wait', {}, { queue: 'cq4' });
      const w = startWorker(queue, { queues: { cq4: { concurrency: 2 } } });
      const rows = await waitFor(async () => {
        const [ra, rb] = [await ts.storage.jobGet({ id: a }), await ts.storage.jobGet({ id: b })];
        return ra?.status === 'waiting' && rb?.status === 'waiting' ? [ra, rb] : undefined;
      });
      const wakeAt = Math.max(...rows.map((r) => r.wakeAt ?? 0));
      await queue.cancelJob(a);
      await queue.cancelJob(b);
      assert.ok((await ts.storage.clockNow()) < Math.min(...rows.map((r) => r.wakeAt ?? 0)), 'cancelled before the wake time');
      await assert.rejects(queue.signal(b, 'go', 1), InvalidStateError);
      await holdsFor(async () => resumed === 0, Math.max(0, wakeAt - (await ts.storage.clockNow())) + 300, 'not resumed after the wake time');
      await w.stop();
      assert.equal((await mustGet(ts.storage, a)).status, 'cancelled');
      assert.equal((await mustGet(ts.storage, b)).status, 'cancelled');
    });

    it('a zombie run can neither store a checkpoint nor consume a signal', async () => {
      const queue = new Queue(withoutHeartbeats(ts.storage));
      const gate = new Gate();
      let started = false;
      let stepRuns = 0;
      const errors: unknown[] = [];
      const completed: string[] = [];
      queue.onJobComplete((job) => void completed.push(job.id));
      queue.register('z-step', () => ++stepRuns);
      queue.register('z-wf', async (_: unknown, ctx) => {
        started = true;
        await gate.promise;
        for (const op of [() => ctx.call('z-step'), () => ctx.waitForSignal('sig')]) {
          try {
            await op();
          } catch (e) {
            errors.push(e);
          }
        }
        return 'zombie result';
      });
      const id = await queue.enqueue('z-wf', {}, { queue: 'cq5' });
      const w = startWorker(queue, { queues: { cq5: { concurrency: 1 } }, ...zombie });
      await waitFor(() => started);
      w.worker.pause();
      await reclaimUntil(ts.storage, [id]);
      const [b] = await ts.storage.jobClaim({ workerId: 'worker-b', queues: [{ name: 'cq5', limit: 1 }], leaseMs: 60_000 });
      assert.equal(b?.id, id);
      await queue.signal(id, 'sig', 'for-b');
      gate.open();
      await waitFor(() => errors.length === 2);
      await w.stop();
      assert.ok(errors.every((e) => e instanceof LeaseLostError), String(errors));
      assert.equal(stepRuns, 1, 'the step itself ran (at least once) ...');
      assert.deepEqual(await ts.storage.stepList({ jobId: id }), [], '... but its checkpoint was refused');
      const row = await mustGet(ts.storage, id);
      assert.deepEqual([row.status, row.lockedBy, row.resultJson], ['running', 'worker-b', null]);
      assert.deepEqual(completed, [], 'no hook fired for the zombie outcome');
      const consumed = await ts.storage.signalConsumeOrWait({ fence: fenceOf(b), stepIndex: 0, stepName: 'signal:sig', signalName: 'sig', deadlineAt: null });
      assert.deepEqual(consumed, { kind: 'consumed', payloadJson: '"for-b"' }, 'the signal was left for the real owner');
    });

    it('a zombie child cannot count on its fan-out or wake its parent', async () => {
      const queue = new Queue(withoutHeartbeats(ts.storage));
      const gate = new Gate();
      let childStarted = false;
      queue.register('z-child', async () => {
        childStarted = true;
        await gate.promise;
        return 'from zombie';
      });
      queue.register('z-parent', async (_: unknown, ctx) => values(await ctx.fanOut([sub('z-child', {})], { queue: 'cq6-kids' })));
      const parent = await queue.enqueue('z-parent', {}, { queue: 'cq6' });
      const w = startWorker(queue, { queues: { cq6: { concurrency: 1 }, 'cq6-kids': { concurrency: 1 } }, ...zombie });
      await waitFor(() => childStarted);
      w.worker.pause();
      const [kid] = await ts.storage.jobList({ parentId: parent, limit: 1 });
      await reclaimUntil(ts.storage, [kid!.id]);
      const [b] = await ts.storage.jobClaim({ workerId: 'worker-b', queues: [{ name: 'cq6-kids', limit: 1 }], leaseMs: 60_000 });
      assert.equal(b?.id, kid!.id);
      gate.open();
      await holdsFor(
        async () => (await mustGet(ts.storage, parent)).status === 'waiting' && (await ts.storage.fanOutGet({ id: kid!.fanOutId! }))?.succeeded === 0,
        200,
        'the zombie completion changed nothing',
      );
      assert.equal((await mustGet(ts.storage, kid!.id)).lockedBy, 'worker-b');
      assert.deepEqual(applied(await ts.storage.jobFinishMany({ items: [{ ...fenceOf(b), outcome: 'completed', resultJson: '"from b"' }] })), [true]);
      w.worker.resume();
      const job = await queue.waitForJob(parent, { timeout: 10_000 });
      await w.stop();
      assert.deepEqual(job.result, ['from b']);
    });

    it('a heartbeat that lands while a suspension is being acknowledged does not abort the run', async () => {
      // A real storage whose suspensions are acknowledged 300 ms after they committed, while
      // the worker heartbeats every 20 ms: the heartbeat sees the job no longer held.
      const slowAck = new Proxy(ts.storage, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver) as unknown;
          if (typeof v !== 'function') return v;
          if (prop !== 'jobSuspend') return (v as (...a: unknown[]) => unknown).bind(target);
          return async (...args: unknown[]) => {
            const r = await (v as (...a: unknown[]) => Promise<boolean>).apply(target, args);
            await new Promise((resolve) => setTimeout(resolve, 300));
            return r;
          };
        },
      }) as Storage;
      const queue = new Queue(slowAck);
      const reasons: unknown[] = [];
      const suspended: string[] = [];
      const stream = queue.events();
      const watching = (async () => {
        for await (const e of stream) if (e.type === 'job.suspended') suspended.push(e.job.id);
      })();
      queue.register('c-ack', async (_: unknown, ctx) => {
        ctx.abortSignal.addEventListener('abort', () => reasons.push(ctx.abortSignal.reason));
        await ctx.sleep(500);
        return 'slept';
      });
      const id = await queue.enqueue('c-ack', {}, { queue: 'cq7' });
      const w = startWorker(queue, { queues: { cq7: { concurrency: 1 } }, heartbeatInterval: 20 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      await stream.return?.();
      await watching;
      assert.equal(job.result, 'slept');
      assert.deepEqual(reasons, [], 'no abort for a run that suspended');
      assert.deepEqual(suspended, [id], 'the suspension was reported');
    });
  });
}
