/**
 * Fan-out durability on every driver: nested fan-outs, a 10,000-child fan-out, the recovery
 * sweep, suspension that a try/catch cannot swallow, suspensions that consume no attempt,
 * and `retryJob` starting a failed workflow clean.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { noRetry } from '../../src/errors.js';
import { sub, values } from '../../src/workflow/fan-out.js';
import type { JobEvent } from '../../src/types.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { fenceOf, jobInsert, mustGet, newId } from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';
import { registerChild, startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

for (const [name, make] of storageMatrix()) {
  describe(`fan-out durability (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`fan-out-dur-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('nested fan-outs complete on one queue with 2 slots (waiting parents hold none)', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      queue.register('mid', async (m: number, ctx) => values(await ctx.fanOut<number>([sub('child', { v: m }), sub('child', { v: m + 1 })])).reduce((a, b) => a + b, 0));
      queue.register('top', async (_: unknown, ctx) => values(await ctx.fanOut<number>([1, 10, 100].map((m) => sub('mid', m)))));
      const id = await queue.enqueue('top', {}, { queue: 'nest', retries: 0 });
      const w = startWorker(queue, { queues: { nest: { concurrency: 2 } } });
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, [30, 210, 2010]);
      const mids = await ts.storage.jobList({ parentId: id, limit: 10 });
      assert.equal(mids.length, 3);
      for (const m of mids) {
        const grand = await ts.storage.jobList({ parentId: m.id, limit: 10 });
        assert.equal(grand.length, 2);
        assert.ok(grand.every((g) => g.status === 'completed' && g.type === 'child'));
      }
    });

    it('children finishing at once on three workers decide each fan-out once and resume the parent once', async () => {
      const queues = [new Queue(ts.storage), new Queue(await ts.another()), new Queue(await ts.another())];
      for (const q of queues) q.register('racer', async (v: number) => v);
      let entries = 0;
      queues[0]!.register('race-parent', async (_: unknown, ctx) => {
        entries++;
        let total = 0;
        for (let round = 0; round < 5; round++) {
          const rs = await ctx.fanOut<number>(
            Array.from({ length: 30 }, (_x, i) => sub('racer', i)),
            { queue: 'race-kids' },
          );
          total += values(rs).reduce((a, b) => a + b, 0);
        }
        return total;
      });
      const id = await queues[0]!.enqueue('race-parent', {}, { queue: 'race', retries: 0 });
      const ws = queues.map((q, i) => startWorker(q, { queues: i === 0 ? { race: { concurrency: 1 }, 'race-kids': { concurrency: 8 } } : { 'race-kids': { concurrency: 8 } } }));
      const job = await queues[0]!.waitForJob(id, { timeout: 30_000 });
      await Promise.all(ws.map((w) => w.stop()));
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 5 * 435);
      assert.equal(entries, 6, 'one first run and exactly one resume per fan-out');
      assert.equal(job.attempt, 1);
    });

    it('a fan-out over no sub-jobs returns [] at once and is checkpointed', async () => {
      const queue = new Queue(ts.storage);
      let entries = 0;
      queue.register('empty-fan', async (_: unknown, ctx) => {
        entries++;
        return ctx.fanOut([]);
      });
      const id = await queue.enqueue('empty-fan', {}, { queue: 'empty' });
      const w = startWorker(queue, { queues: { empty: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 5_000 });
      await w.stop();
      assert.deepEqual(job.result, []);
      assert.equal(entries, 1);
      const steps = await ts.storage.stepList({ jobId: id });
      assert.deepEqual(
        steps.map((st) => [st.stepName, st.status]),
        [['fan-out', 'completed']],
      );
    });

    it('a fan-out of 10,000 children completes with every result in order', async () => {
      const queue = new Queue(ts.storage);
      const N = 10_000;
      queue.register('tiny', (i: number) => i);
      queue.register('big-parent', async (_: unknown, ctx) => {
        const rs = await ctx.fanOut<number>(
          Array.from({ length: N }, (_x, i) => sub('tiny', i)),
          { queue: 'big-kids' },
        );
        return { n: rs.length, ordered: rs.every((r, i) => r.index === i && r.value === i && !r.error) };
      });
      const id = await queue.enqueue('big-parent', {}, { queue: 'big' });
      const w = startWorker(queue, { queues: { big: { concurrency: 1 }, 'big-kids': { concurrency: 200 } } });
      await waitFor(async () => ['waiting', 'completed'].includes((await queue.getJob(id))?.status ?? ''), { timeout: 60_000 });
      const kids = await queue.stats({ queue: 'big-kids' });
      assert.equal(kids.pending + kids.running + kids.completed, N, 'all children exist once the parent left pending');
      const job = await queue.waitForJob(id, { timeout: 240_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, { n: N, ordered: true });
      const [step] = await ts.storage.stepList({ jobId: id });
      const fo = await ts.storage.fanOutGet({ id: JSON.parse(step!.outputJson!) as string });
      assert.deepEqual([fo?.total, fo?.succeeded, fo?.status], [N, N, 'succeeded']);
    });

    it('the recovery sweep resumes a parent left waiting on an already decided fan-out', async () => {
      const queue = new Queue(ts.storage);
      const s = ts.storage;
      let resumed = 0;
      queue.register('sweep-parent', async (_: unknown, ctx) => {
        const rs = await ctx.fanOut<number>([sub('child', { v: 0 }), sub('child', { v: 1 })]);
        resumed++;
        return values(rs);
      });
      // The engine's writes, replayed by hand while no worker is alive: the parent suspends
      // into a fan-out, both children finish (the decision resumes it), and a stale run puts
      // it back to `waiting` just after (the race the sweep exists for).
      const id = await queue.enqueue('sweep-parent', {}, { queue: 'sweep' });
      const [row] = await s.jobClaim({ workerId: 'ghost', queues: [{ name: 'sweep', limit: 1 }], leaseMs: 60_000 });
      assert.equal(row?.id, id);
      const fanOutId = newId();
      const kids = [0, 1].map((v) => jobInsert({ type: 'child', queue: 'sweep-kids', argsJson: JSON.stringify({ v }), parentId: id, fanOutId, fanOutIndex: v }));
      assert.ok(
        await s.jobSuspendFanOut({
          fence: fenceOf(row),
          step: { jobId: id, stepIndex: 0, stepName: 'fan-out', status: 'completed', outputJson: JSON.stringify(fanOutId), error: null },
          fanOut: { id: fanOutId, strategy: 'fail-fast', threshold: null, timeoutMs: null },
          children: kids,
        }),
      );
      const claimedKids = await s.jobClaim({ workerId: 'ghost', queues: [{ name: 'sweep-kids', limit: 2 }], leaseMs: 60_000 });
      assert.equal(claimedKids.length, 2);
      await s.jobFinishMany({ items: claimedKids.map((k) => ({ ...fenceOf(k), outcome: 'completed' as const, resultJson: String((k.fanOutIndex ?? 0) * 10) })) });
      assert.equal((await mustGet(s, id)).status, 'pending', 'the decision resumed the parent');
      const [again] = await s.jobClaim({ workerId: 'ghost', queues: [{ name: 'sweep', limit: 1 }], leaseMs: 60_000 });
      assert.ok(await s.jobSuspend({ fence: fenceOf(again!), step: null, wakeAt: null, waitSignal: null }));
      assert.equal((await mustGet(s, id)).status, 'waiting');
      const w = startWorker(queue, { queues: { sweep: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, [0, 10]);
      assert.equal(resumed, 1);
    });

    it('a try/catch around fanOut, sleep or waitForSignal cannot swallow the suspension', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      const swallowed: string[] = [];
      queue.register('swallower', async (_: unknown, ctx) => {
        let vs: number[] = [];
        try {
          vs = values(await ctx.fanOut<number>([sub('child', { v: 4 })]));
        } catch {
          swallowed.push('fanOut');
        }
        try {
          await ctx.sleep(50);
        } catch {
          swallowed.push('sleep');
        }
        let signal: unknown;
        try {
          signal = await ctx.waitForSignal('go');
        } catch {
          swallowed.push('waitForSignal');
        }
        return { vs, signal };
      });
      const suspensions: string[] = [];
      const stream = queue.events();
      const watching = (async () => {
        for await (const e of stream as AsyncIterable<JobEvent>) {
          if (e.type === 'job.suspended') suspensions.push(e.reason);
          if (e.type === 'job.completed' && e.job.type === 'swallower') break;
        }
      })();
      const id = await queue.enqueue('swallower', {}, { queue: 'swallow', retries: 0 });
      const w = startWorker(queue, { queues: { swallow: { concurrency: 1 } } });
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting' && suspensions.includes('signal'));
      await queue.signal(id, 'go', 'green');
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await watching;
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, { vs: [40], signal: 'green' });
      assert.deepEqual(swallowed, []);
      assert.deepEqual(suspensions, ['fan-out', 'sleep', 'signal']);
    });

    it('ten sequential fan-outs complete with retries: 0 (suspend/resume consumes no attempt)', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      queue.register('ten-fan-outs', async (_: unknown, ctx) => {
        let total = 0;
        for (let i = 0; i < 10; i++) total += values(await ctx.fanOut<number>([sub('child', { v: i }), sub('child', { v: 1 })])).reduce((a, b) => a + b, 0);
        return total;
      });
      const id = await queue.enqueue('ten-fan-outs', {}, { queue: 'ten', retries: 0 });
      const w = startWorker(queue, { queues: { ten: { concurrency: 3 } } });
      const job = await queue.waitForJob(id, { timeout: 30_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 450 + 100);
      assert.equal(job.attempt, 1);
      assert.equal((await ts.storage.stepList({ jobId: id })).length, 10);
    });

    it('retryJob on a failed workflow drops its checkpoints and fan-out subtree and starts clean', async () => {
      const queue = new Queue(ts.storage);
      const flag = { fail: true };
      let counted = 0;
      queue.register('count-step', () => ++counted);
      queue.register('maybe', (v: number) => {
        if (flag.fail && v === 1) throw noRetry(new Error('nope'));
        return v;
      });
      queue.register('wf-retry-clean', async (_: unknown, ctx) => {
        const c = await ctx.call<number>('count-step');
        const inner = await ctx.fanOut<number>([sub('maybe', 0), sub('maybe', 1), sub('maybe', 2)]);
        return { c, vs: values(inner) };
      });
      const id = await queue.enqueue('wf-retry-clean', {}, { queue: 'rclean', retries: 0 });
      const w = startWorker(queue, { queues: { rclean: { concurrency: 4 } } });
      const failed = await queue.waitForJob(id, { timeout: 10_000 });
      assert.equal(failed.status, 'failed');
      const oldKids = await ts.storage.jobList({ parentId: id, limit: 10 });
      assert.equal(oldKids.length, 3);
      const oldFanOut = oldKids[0]!.fanOutId!;
      flag.fail = false;
      await queue.retryJob(id);
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, { c: 2, vs: [0, 1, 2] }, 'the step checkpoint was dropped: count-step ran again');
      const kids = await ts.storage.jobList({ parentId: id, limit: 10 });
      assert.equal(kids.length, 3);
      assert.ok(kids.every((k) => !oldKids.some((o) => o.id === k.id) && k.fanOutId !== oldFanOut));
      for (const o of oldKids) assert.equal(await ts.storage.jobGet({ id: o.id }), undefined);
      assert.equal(await ts.storage.fanOutGet({ id: oldFanOut }), undefined);
      assert.equal((await ts.storage.stepList({ jobId: id })).length, 2);
    });
  });
}
