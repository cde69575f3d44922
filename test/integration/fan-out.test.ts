/**
 * Fan-out / fan-in on every driver: the parent waits without a worker slot, the strategies
 * (fail-fast, collect-all, threshold) decide as early as they can, the options (queue, retries,
 * timeout) really apply, and results come back in sub-job order.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { FanOutFailedError } from '../../src/errors.js';
import type { JobRow, Storage } from '../../src/storage/storage.js';
import { allSucceeded, partition, sub, values } from '../../src/workflow/fan-out.js';
import type { FanOutStrategy } from '../../src/workflow/job-context.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { registerChild, startWorker, summarize, type ChildArgs, stopAllWorkers } from '../helpers/workflow-harness.js';

/** The children of a parent, by fan-out index. */
async function childrenOf(s: Storage, parentId: string): Promise<JobRow[]> {
  const rows = await s.jobList({ parentId, limit: 100_000, order: 'asc' });
  return rows.sort((a, b) => (a.fanOutIndex ?? 0) - (b.fanOutIndex ?? 0));
}

/** Registers `type`: fans out over `ChildArgs[]` with `strategy` and returns the summary (errors included). */
function registerParent(queue: Queue, type: string, strategy: FanOutStrategy, extra: { queue?: string; timeout?: number; retries?: number } = {}): void {
  queue.register(type, async (kids: ChildArgs[], ctx) => {
    try {
      return { ok: true, results: summarize(await ctx.fanOut<number>(kids.map((k) => sub('child', k)), { strategy, ...extra })) };
    } catch (e) {
      if (!(e instanceof FanOutFailedError)) throw e;
      return { ok: false, message: e.message, results: e.results };
    }
  });
}

type Summary = { ok: boolean; message?: string; results: { index: number; value?: unknown; error?: string }[] };

for (const [name, make] of storageMatrix()) {
  describe(`fan-out (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`fan-out-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('a parent fanning out to its own queue with concurrency 1 completes: it holds no slot while waiting', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      queue.register('fo-solo', async (n: number, ctx) => {
        const rs = await ctx.fanOut<number>(Array.from({ length: n }, (_, v) => sub('child', { v })));
        return { values: values(rs), all: allSucceeded(rs), indexes: rs.map((r) => r.index) };
      });
      const id = await queue.enqueue('fo-solo', 4, { queue: 'fo1', retries: 0 });
      const w = startWorker(queue, { queues: { fo1: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, { values: [0, 10, 20, 30], all: true, indexes: [0, 1, 2, 3] });
      assert.equal(job.attempt, 1, 'suspend and resume gave the attempt back');
      const kids = await childrenOf(ts.storage, id);
      assert.equal(kids.length, 4);
      assert.ok(kids.every((k) => k.queue === 'fo1' && k.parentId === id && k.status === 'completed'));
    });

    it('other jobs run while the parent waits; sub-jobs run on the fan-out queue', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      queue.register('plain', async () => 'plain done');
      queue.register('fo-elsewhere', async (_: unknown, ctx) => values(await ctx.fanOut<number>([sub('child', { v: 1 }), sub('child', { v: 2 })], { queue: 'fo2-kids' })));
      const parent = await queue.enqueue('fo-elsewhere', {}, { queue: 'fo2' });
      const main = startWorker(queue, { queues: { fo2: { concurrency: 1 } } });
      await waitFor(async () => (await queue.getJob(parent))?.status === 'waiting');
      const kids = await childrenOf(ts.storage, parent);
      assert.deepEqual(
        kids.map((k) => [k.queue, k.status]),
        [
          ['fo2-kids', 'pending'],
          ['fo2-kids', 'pending'],
        ],
      );
      const other = await queue.enqueue('plain', {}, { queue: 'fo2' });
      assert.equal((await queue.waitForJob(other, { timeout: 10_000 })).status, 'completed');
      assert.equal((await queue.getJob(parent))?.status, 'waiting');
      const kidsWorker = startWorker(queue, { queues: { 'fo2-kids': { concurrency: 2 } } });
      const job = await queue.waitForJob(parent, { timeout: 10_000 });
      await Promise.all([main.stop(), kidsWorker.stop()]);
      assert.deepEqual(job.result, [10, 20]);
    });

    it('results come back in sub-job order whatever order the children finish in', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      registerParent(queue, 'fo-order', 'collect-all');
      const kids: ChildArgs[] = Array.from({ length: 6 }, (_, v) => ({ v, delay: (6 - v) * 25 }));
      const id = await queue.enqueue('fo-order', kids, { queue: 'fo3' });
      const w = startWorker(queue, { queues: { fo3: { concurrency: 10 } } });
      const job = await queue.waitForJob<unknown, Summary>(id, { timeout: 10_000 });
      await w.stop();
      assert.deepEqual(job.result?.results, kids.map((k) => ({ index: k.v, value: k.v * 10 })));
      const rows = await childrenOf(ts.storage, id);
      const finished = [...rows].sort((a, b) => (a.completedAt ?? 0) - (b.completedAt ?? 0)).map((r) => r.fanOutIndex);
      assert.notDeepEqual(finished, [0, 1, 2, 3, 4, 5], 'the children did finish out of order');
    });

    it('fail-fast: the first failed child decides; unfinished siblings are cancelled and aborted', async () => {
      const queue = new Queue(ts.storage);
      const log = registerChild(queue);
      const failures: unknown[] = [];
      queue.onJobFail((job, err) => {
        if (job.type === 'fo-ff') failures.push(err);
      });
      queue.register('fo-ff', async (kids: ChildArgs[], ctx) => ctx.fanOut(kids.map((k) => sub('child', k))));
      const kids: ChildArgs[] = [{ v: 0 }, { v: 1, mode: 'fail', delay: 300 }, { v: 2, mode: 'hang' }, { v: 3, mode: 'hang' }, { v: 4 }];
      const id = await queue.enqueue('fo-ff', kids, { queue: 'fo4', retries: 3 });
      const w = startWorker(queue, { queues: { fo4: { concurrency: 10 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await waitFor(() => log.aborted.length === 2, { message: 'hanging siblings aborted' });
      await w.stop();
      assert.equal(job.status, 'failed');
      assert.equal(job.attempt, 1, 'a failed fan-out is not retried');
      assert.match(job.lastError ?? '', /fan-out \(fail-fast\) failed/);
      const rows = await childrenOf(ts.storage, id);
      assert.deepEqual(
        rows.map((r) => r.status),
        ['completed', 'failed', 'cancelled', 'cancelled', 'completed'],
      );
      assert.deepEqual(log.aborted.sort(), [2, 3]);
      const fo = await ts.storage.fanOutGet({ id: rows[0]!.fanOutId! });
      assert.deepEqual([fo?.status, fo?.succeeded, fo?.failed, fo?.cancelled], ['failed', 2, 1, 2]);
      const err = failures[0];
      assert.ok(err instanceof FanOutFailedError);
      assert.deepEqual(err.results[0], { index: 0, value: 0 });
      assert.equal(err.results[1]?.error, 'child 1 failed');
      assert.ok(err.results[2]?.error);
    });

    it('collect-all never fails and returns partial results; values/partition/allSucceeded', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      queue.register('fo-all', async (kids: ChildArgs[], ctx) => {
        const rs = await ctx.fanOut<number>(
          kids.map((k) => sub('child', k)),
          { strategy: 'collect-all' },
        );
        const [ok, bad] = partition(rs);
        return { values: values(rs), ok: ok.map((r) => r.index), bad: bad.map((r) => [r.index, r.error?.message]), all: allSucceeded(rs) };
      });
      const id = await queue.enqueue('fo-all', [{ v: 0, mode: 'fail' }, { v: 1 }, { v: 2, mode: 'fail', delay: 50 }, { v: 3, delay: 80 }], { queue: 'fo5' });
      const w = startWorker(queue, { queues: { fo5: { concurrency: 10 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, {
        values: [10, 30],
        ok: [1, 3],
        bad: [
          [0, 'child 0 failed'],
          [2, 'child 2 failed'],
        ],
        all: false,
      });
    });

    it('threshold 0.8 over 5 succeeds once 4 succeeded, without waiting for the fifth', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      registerParent(queue, 'fo-th-ok', { threshold: 0.8 });
      const id = await queue.enqueue('fo-th-ok', [{ v: 0 }, { v: 1 }, { v: 2, mode: 'hang' }, { v: 3 }, { v: 4, delay: 50 }], { queue: 'fo6' });
      const w = startWorker(queue, { queues: { fo6: { concurrency: 10 } } });
      const job = await queue.waitForJob<unknown, Summary>(id, { timeout: 10_000 });
      const rows = await childrenOf(ts.storage, id);
      const hanging = rows[2]!;
      assert.ok(hanging.status === 'running' || hanging.status === 'pending', `the fifth child was unfinished at the decision (${hanging.status})`);
      await queue.cancelJob(hanging.id);
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.equal(job.result?.ok, true);
      assert.deepEqual(job.result?.results.map((r) => r.value ?? 'x'), [0, 10, 'x', 30, 40]);
      assert.match(job.result?.results[2]?.error ?? '', /unfinished/);
      const fo = await ts.storage.fanOutGet({ id: hanging.fanOutId! });
      assert.equal(fo?.status, 'succeeded');
      assert.equal(fo?.succeeded, 4);
    });

    it('threshold 0.8 over 5 fails as soon as 2 have failed; the rest are cancelled', async () => {
      const queue = new Queue(ts.storage);
      const log = registerChild(queue);
      registerParent(queue, 'fo-th-bad', { threshold: 0.8 });
      const kids: ChildArgs[] = [{ v: 0, mode: 'fail' }, { v: 1, mode: 'hang' }, { v: 2, mode: 'fail', delay: 40 }, { v: 3, mode: 'hang' }, { v: 4, mode: 'hang' }];
      const id = await queue.enqueue('fo-th-bad', kids, { queue: 'fo7' });
      const w = startWorker(queue, { queues: { fo7: { concurrency: 10 } } });
      const job = await queue.waitForJob<unknown, Summary>(id, { timeout: 10_000 });
      await waitFor(() => log.aborted.length === 3, { message: 'the hanging children were aborted' });
      await w.stop();
      assert.equal(job.result?.ok, false);
      assert.match(job.result?.message ?? '', /threshold/);
      const rows = await childrenOf(ts.storage, id);
      assert.deepEqual(
        rows.map((r) => r.status),
        ['failed', 'cancelled', 'failed', 'cancelled', 'cancelled'],
      );
      const fo = await ts.storage.fanOutGet({ id: rows[0]!.fanOutId! });
      assert.deepEqual([fo?.succeeded, fo?.failed, fo?.cancelled, fo?.total], [0, 2, 3, 5]);
    });

    it('retries apply per sub-job (fan-out default and per-sub override)', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      queue.register('fo-retries', async (_: unknown, ctx) =>
        summarize(
          await ctx.fanOut<number>(
            [sub('child', { v: 0, mode: 'flaky', failures: 2 }), sub('child', { v: 1, mode: 'flaky', failures: 2 }, { retries: 1 }), sub('child', { v: 2, mode: 'flaky', failures: 1 })],
            { strategy: 'collect-all', retries: 2 },
          ),
        ),
      );
      const id = await queue.enqueue('fo-retries', {}, { queue: 'fo8', retries: 0 });
      const w = startWorker(queue, { queues: { fo8: { concurrency: 10 } }, backoff: () => 10 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.deepEqual(job.result, [{ index: 0, value: 0 }, { index: 1, error: 'child 1 flaked on attempt 2' }, { index: 2, value: 20 }]);
      const rows = await childrenOf(ts.storage, id);
      assert.deepEqual(
        rows.map((r) => [r.maxRetries, r.attempt, r.status]),
        [
          [2, 3, 'completed'],
          [1, 2, 'failed'],
          [2, 2, 'completed'],
        ],
      );
    });

    it('the fan-out timeout is enforced: the fan-out fails when it passes and its children are cancelled', async () => {
      const queue = new Queue(ts.storage);
      const log = registerChild(queue);
      registerParent(queue, 'fo-timeout', 'collect-all', { timeout: 300 });
      const t0 = Date.now();
      const id = await queue.enqueue('fo-timeout', [{ v: 0 }, { v: 1, mode: 'hang' }, { v: 2, mode: 'hang' }], { queue: 'fo9' });
      const w = startWorker(queue, { queues: { fo9: { concurrency: 10 } } });
      const job = await queue.waitForJob<unknown, Summary>(id, { timeout: 10_000 });
      const took = Date.now() - t0;
      await waitFor(() => log.aborted.length === 2, { message: 'children aborted' });
      await w.stop();
      assert.equal(job.result?.ok, false, 'even collect-all fails on timeout');
      assert.match(job.result?.message ?? '', /timed out/);
      assert.ok(took >= 290 && took < 5000, `decided after ${took} ms`);
      const rows = await childrenOf(ts.storage, id);
      assert.deepEqual(
        rows.map((r) => r.status),
        ['completed', 'cancelled', 'cancelled'],
      );
      assert.deepEqual(job.result?.results[0], { index: 0, value: 0 });
    });

    it('cancelling one child decides a fail-fast fan-out and resumes the parent at once (no sweep)', async () => {
      const queue = new Queue(ts.storage);
      registerChild(queue);
      registerParent(queue, 'fo-cancel-child', 'fail-fast');
      const id = await queue.enqueue('fo-cancel-child', [{ v: 0 }, { v: 1, mode: 'hang' }, { v: 2, mode: 'hang' }], { queue: 'fo10' });
      // No maintenance pass during the test: only the cancel itself can resume the parent.
      const w = startWorker(queue, { queues: { fo10: { concurrency: 10 } }, maintenanceInterval: 600_000 });
      await waitFor(async () => (await childrenOf(ts.storage, id)).filter((r) => r.status === 'running').length === 2);
      const kids = await childrenOf(ts.storage, id);
      await queue.cancelJob(kids[1]!.id);
      const job = await queue.waitForJob<unknown, Summary>(id, { timeout: 3_000 });
      await w.stop();
      assert.equal(job.result?.ok, false);
      const rows = await childrenOf(ts.storage, id);
      assert.deepEqual(
        rows.map((r) => r.status),
        ['completed', 'cancelled', 'cancelled'],
      );
      const fo = await ts.storage.fanOutGet({ id: rows[0]!.fanOutId! });
      assert.deepEqual([fo?.succeeded, fo?.failed, fo?.cancelled], [1, 0, 2]);
    });
  });
}
