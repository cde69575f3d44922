/**
 * Conformance: `jobRetry` of a fan-out child. A retried child leaves its old outcome's count
 * (failed or cancelled) in the same transaction, so it is counted once, when it ends again; a
 * fan-out still running is decided by the children's final outcomes only, and one already
 * decided keeps its decision while its counters keep matching the children.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FanOutRow, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import { applied, claimChildren, claimOne, fanOutParent, fenceOf, mustGet } from '../helpers/factories.js';
import { useStorage } from './context.js';
import { expectFanOut, expectWaiting, expectWoken, finish } from './fan-out-helpers.js';

/** Asserts that a fan-out's counters equal its children's terminal statuses. */
export async function expectCountsMatchChildren(s: Storage, fanOutId: string): Promise<FanOutRow> {
  const f = await s.fanOutGet({ id: fanOutId });
  assert.ok(f, `fan-out ${fanOutId} not found`);
  const kids = await s.jobList({ fanOutId, limit: 10_000 });
  const n = (status: string): number => kids.filter((k) => k.status === status).length;
  assert.deepEqual(
    { succeeded: f.succeeded, failed: f.failed, cancelled: f.cancelled },
    { succeeded: n('completed'), failed: n('failed'), cancelled: n('cancelled') },
    `fan-out ${fanOutId}: counters equal the children's outcomes`,
  );
  return f;
}

/** Retries a job and asserts it is pending again with a fresh attempt count. */
async function retry(s: Storage, id: string): Promise<void> {
  await s.jobRetry({ id });
  const row = await mustGet(s, id);
  assert.equal(row.status, 'pending', `retried job ${id} is pending`);
  assert.equal(row.attempt, 0);
}

/** Registers the fan-out child retry tests. */
export function describeFanOutRetry(make: StorageMaker): void {
  describe('fan-outs: retrying a child', () => {
    const ctx = useStorage(make, 'conformance-fanout-retry');

    it('a failed child retried and completed is counted once: the fan-out waits for its last child', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 3, strategy: 'collect-all', child: { maxRetries: 0 } });
      const [a, b, c] = await claimChildren(s, p);
      await finish(s, a!, 'failed');
      await finish(s, b!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 1, failed: 1, cancelled: 0 });
      await retry(s, a!.jobId);
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 1, failed: 0, cancelled: 0 });
      await expectCountsMatchChildren(s, p.fanOutId);
      const again = await claimOne(s, p.childQueue, a!.jobId);
      await finish(s, fenceOf(again), 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 2, failed: 0, cancelled: 0 });
      await expectWaiting(s, p.parentId);
      assert.equal((await mustGet(s, c!.jobId)).status, 'running', 'the last child is still running');
      await finish(s, c!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 3, failed: 0, cancelled: 0 });
      await expectCountsMatchChildren(s, p.fanOutId);
      await expectWoken(s, p.parentId);
    });

    it('a retried child that fails again is counted as failed once', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'collect-all', child: { maxRetries: 0 } });
      const [a, b] = await claimChildren(s, p);
      await finish(s, a!, 'failed');
      await retry(s, a!.jobId);
      await finish(s, fenceOf(await claimOne(s, p.childQueue, a!.jobId)), 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 0, failed: 1, cancelled: 0 });
      await expectWaiting(s, p.parentId);
      await finish(s, b!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 1, failed: 1, cancelled: 0 });
      await expectCountsMatchChildren(s, p.fanOutId);
    });

    it('a cancelled child retried no longer counts against a threshold', async () => {
      const s = ctx.s;
      // Need 2 of 4: the fan-out fails once 3 children failed or were cancelled.
      const p = await fanOutParent(s, { n: 4, strategy: 'threshold', threshold: 0.5, child: { maxRetries: 0 } });
      await s.jobCancel({ id: p.childIds[0]! });
      await s.jobCancel({ id: p.childIds[1]! });
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 0, failed: 0, cancelled: 2 });
      await retry(s, p.childIds[0]!);
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 0, failed: 0, cancelled: 1 });
      await expectCountsMatchChildren(s, p.fanOutId);
      const kids = (await s.jobClaim({ workerId: 'worker-a', queues: [{ name: p.childQueue, limit: 10 }], leaseMs: 60_000 })).map(fenceOf);
      assert.deepEqual(kids.map((k) => k.jobId).sort(), [p.childIds[0]!, p.childIds[2]!, p.childIds[3]!].sort());
      const byId = new Map(kids.map((k) => [k.jobId, k]));
      await finish(s, byId.get(p.childIds[2]!)!, 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 0, failed: 1, cancelled: 1 });
      await expectWaiting(s, p.parentId);
      await finish(s, byId.get(p.childIds[0]!)!, 'completed');
      await finish(s, byId.get(p.childIds[3]!)!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 2, failed: 1, cancelled: 1 });
      await expectCountsMatchChildren(s, p.fanOutId);
      await expectWoken(s, p.parentId);
    });

    it('retrying children of a decided fan-out keeps the decision and the parent, and the counters exact', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 3, strategy: 'fail-fast', child: { maxRetries: 0 } });
      const [a] = (await s.jobClaim({ workerId: 'worker-a', queues: [{ name: p.childQueue, limit: 1 }], leaseMs: 60_000 })).map(fenceOf);
      await finish(s, a!, 'failed');
      const decided = await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 1, cancelled: 2 });
      const parent = await expectWoken(s, p.parentId);
      await retry(s, a!.jobId);
      await retry(s, p.childIds[1]!);
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 0, cancelled: 1, decidedAt: decided.decidedAt });
      await expectCountsMatchChildren(s, p.fanOutId);
      assert.deepEqual(await mustGet(s, p.parentId), parent, 'a retry of a child does not touch the resumed parent');
      const kids = (await s.jobClaim({ workerId: 'worker-a', queues: [{ name: p.childQueue, limit: 10 }], leaseMs: 60_000 })).map(fenceOf);
      assert.deepEqual(kids.map((k) => k.jobId).sort(), [p.childIds[0]!, p.childIds[1]!].sort());
      for (const k of kids) await finish(s, k, k.jobId === p.childIds[0] ? 'completed' : 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 1, failed: 1, cancelled: 1, decidedAt: decided.decidedAt });
      await expectCountsMatchChildren(s, p.fanOutId);
      assert.deepEqual(await mustGet(s, p.parentId), parent, 'late children do not touch the resumed parent');
    });

    it('a retried child of a decided fan-out whose parent already finished is counted when it ends', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'collect-all', child: { maxRetries: 0 } });
      const [a, b] = await claimChildren(s, p);
      await finish(s, a!, 'failed');
      await finish(s, b!, 'completed');
      const decided = await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 1, failed: 1, cancelled: 0 });
      const run = await claimOne(s, p.queue, p.parentId);
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fenceOf(run), outcome: 'completed', resultJson: '"done"' }] })), [true]);
      await retry(s, a!.jobId);
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 1, failed: 0, cancelled: 0, decidedAt: decided.decidedAt });
      await finish(s, fenceOf(await claimOne(s, p.childQueue, a!.jobId)), 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 2, failed: 0, cancelled: 0, decidedAt: decided.decidedAt });
      await expectCountsMatchChildren(s, p.fanOutId);
      assert.equal((await mustGet(s, p.parentId)).status, 'completed');
    });
  });
}
