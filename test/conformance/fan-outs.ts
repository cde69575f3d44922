/**
 * Conformance: fan-out / fan-in — the atomic suspend, and each strategy's decision with its
 * accounting (children counted once, siblings cancelled on failure, parent woken once).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageError } from '../../src/errors.js';
import type { StorageMaker } from '../helpers/storages.js';
import {
  assertBetween,
  claim,
  claimChildren,
  claimOne,
  completedJob,
  fanOutParent,
  fenceOf,
  jobInsert,
  mustGet,
  newId,
  reclaimUntil,
  runningJob,
  stepRow,
  suspendIntoFanOut,
  uniqueName,
} from '../helpers/factories.js';
import { useStorage } from './context.js';
import { expectFanOut, expectWaiting, expectWoken, finish } from './fan-out-helpers.js';

/** Registers the fan-out suspend and strategy tests. */
export function describeFanOuts(make: StorageMaker): void {
  describe('fan-outs: suspend and strategies', () => {
    const ctx = useStorage(make, 'conformance-fanouts');

    it('suspends atomically: step, fan-out row, every child, parent waiting with its attempt back', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s, { type: 'parent' });
      assert.equal(await s.stepRecord({ fence, step: stepRow(fence.jobId, 0) }), true);
      const fanOutId = newId();
      const q = uniqueName('kids');
      const children = [0, 1, 2].map((i) =>
        jobInsert({ type: 'child', queue: q, argsJson: `{"i":${i}}`, parentId: fence.jobId, fanOutId, fanOutIndex: i, maxRetries: 2 }),
      );
      const step = stepRow(fence.jobId, 1, { stepName: 'fan-out', outputJson: JSON.stringify(fanOutId) });
      const t0 = await s.clockNow();
      const ok = await s.jobSuspendFanOut({ fence, step, fanOut: { id: fanOutId, strategy: 'collect-all', threshold: null, timeoutMs: null }, children });
      const t1 = await s.clockNow();
      assert.equal(ok, true);
      const parent = await mustGet(s, fence.jobId);
      assert.equal(parent.status, 'waiting');
      assert.equal(parent.attempt, 0, 'suspending into a fan-out gives the attempt back');
      assert.equal(parent.runCount, 1);
      assert.equal(parent.leaseExpiresAt, null);
      assert.equal(parent.wakeAt, null, 'no timeout, no wake time');
      assert.equal(parent.waitSignal, null);
      const f = await expectFanOut(s, fanOutId, {
        id: fanOutId,
        parentId: fence.jobId,
        stepIndex: 1,
        strategy: 'collect-all',
        threshold: null,
        total: 3,
        succeeded: 0,
        failed: 0,
        cancelled: 0,
        status: 'running',
        deadlineAt: null,
        decidedAt: null,
      });
      assertBetween(f.createdAt, t0, t1, 'fan-out createdAt');
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [stepRow(fence.jobId, 0), step]);
      const kids = await s.jobList({ fanOutId, limit: 100, order: 'asc' });
      assert.deepEqual(kids.map((k) => k.id), children.map((c) => c.id));
      kids.forEach((k, i) => {
        assert.equal(k.status, 'pending');
        assert.equal(k.parentId, fence.jobId);
        assert.equal(k.fanOutId, fanOutId);
        assert.equal(k.fanOutIndex, i);
        assert.equal(k.queue, q);
        assert.equal(k.type, 'child');
        assert.equal(k.maxRetries, 2);
        assert.equal(k.argsJson, `{"i":${i}}`);
      });
      assert.deepEqual((await s.jobList({ parentId: fence.jobId, limit: 100, order: 'asc' })).map((k) => k.id), children.map((c) => c.id));
      assert.deepEqual(await s.jobHeartbeat({ workerId: fence.workerId, runs: [{ jobId: fence.jobId, runCount: 1 }], leaseMs: 1_000 }), []);
      assert.deepEqual((await claim(s, q, 10)).map((r) => r.id), children.map((c) => c.id), 'children run in fan-out order');
    });

    it('sets deadline_at = now + timeout and the parent wakes at the deadline; threshold is stored exactly', async () => {
      const s = ctx.s;
      const t0 = await s.clockNow();
      const p = await fanOutParent(s, { n: 2, strategy: 'threshold', threshold: 0.8, timeoutMs: 60_000 });
      const t1 = await s.clockNow();
      const f = await expectFanOut(s, p.fanOutId, { strategy: 'threshold', threshold: 0.8, status: 'running', total: 2 });
      assertBetween(f.deadlineAt, t0 + 60_000, t1 + 60_000, 'deadline_at');
      assert.equal((await mustGet(s, p.parentId)).wakeAt, f.deadlineAt);
    });

    it('writes nothing when the fence fails', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const before = await mustGet(s, fence.jobId);
      const done = await completedJob(s);
      const stale = [
        { ...fence, workerId: 'other' },
        { ...fence, runCount: 2 },
        { jobId: done.id, workerId: 'worker-a', runCount: done.runCount },
      ];
      for (const f of stale) {
        const fanOutId = newId();
        const children = [0, 1].map((i) => jobInsert({ parentId: f.jobId, fanOutId, fanOutIndex: i }));
        const ok = await s.jobSuspendFanOut({
          fence: f,
          step: stepRow(f.jobId, 0, { outputJson: JSON.stringify(fanOutId) }),
          fanOut: { id: fanOutId, strategy: 'fail-fast', threshold: null, timeoutMs: 1_000 },
          children,
        });
        assert.equal(ok, false);
        assert.equal(await s.fanOutGet({ id: fanOutId }), undefined);
        for (const c of children) assert.equal(await s.jobGet({ id: c.id }), undefined);
        assert.deepEqual(await s.stepList({ jobId: f.jobId }), []);
      }
      assert.deepEqual(await mustGet(s, fence.jobId), before);
      assert.equal((await mustGet(s, done.id)).status, 'completed');
    });

    it('a suspend that fails on its last child writes nothing at all (atomic)', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const before = await mustGet(s, fence.jobId);
      const fanOutId = newId();
      const children = Array.from({ length: 1_500 }, (_, i) => jobInsert({ parentId: fence.jobId, fanOutId, fanOutIndex: i }));
      children.push(jobInsert({ id: children[0]!.id, parentId: fence.jobId, fanOutId, fanOutIndex: 1_500 }));
      await assert.rejects(
        s.jobSuspendFanOut({
          fence,
          step: stepRow(fence.jobId, 0, { outputJson: JSON.stringify(fanOutId) }),
          fanOut: { id: fanOutId, strategy: 'fail-fast', threshold: null, timeoutMs: null },
          children,
        }),
        StorageError,
      );
      assert.deepEqual(await mustGet(s, fence.jobId), before, 'the parent is still running');
      assert.equal(await s.fanOutGet({ id: fanOutId }), undefined);
      assert.deepEqual(await s.jobList({ fanOutId, limit: 10 }), []);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), []);
      // The run still holds its fence and can suspend properly.
      await suspendIntoFanOut(s, fence, { n: 2 });
      assert.equal((await mustGet(s, fence.jobId)).status, 'waiting');
    });

    it('fail-fast: the first failure decides, cancels the unfinished siblings and wakes the parent', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 4, strategy: 'fail-fast' });
      const running = (await claim(s, p.childQueue, 3)).map(fenceOf); // child 3 stays pending
      await finish(s, running[0]!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 1, failed: 0, cancelled: 0 });
      await expectWaiting(s, p.parentId);
      const t0 = await s.clockNow();
      await finish(s, running[1]!, 'failed');
      const t1 = await s.clockNow();
      const f = await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 1, failed: 1, cancelled: 2 });
      assertBetween(f.decidedAt, t0, t1, 'decided_at');
      assert.equal((await mustGet(s, p.childIds[2]!)).status, 'cancelled', 'running sibling cancelled');
      assert.equal((await mustGet(s, p.childIds[3]!)).status, 'cancelled', 'pending sibling cancelled');
      await expectWoken(s, p.parentId);
      // The cancelled sibling's owner can no longer finish it; the count does not move.
      await finish(s, running[2]!, 'completed', false);
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 1, failed: 1, cancelled: 2, decidedAt: f.decidedAt });
      const again = await claimOne(s, p.queue, p.parentId);
      assert.equal(again.attempt, 1);
      assert.equal(again.runCount, 2);
    });

    it('fail-fast: succeeds when every child succeeded, not before', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 3, strategy: 'fail-fast' });
      const kids = await claimChildren(s, p);
      await finish(s, kids[0]!, 'completed');
      await finish(s, kids[1]!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 2 });
      await expectWaiting(s, p.parentId);
      await finish(s, kids[2]!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 3, failed: 0, cancelled: 0 });
      await expectWoken(s, p.parentId);
    });

    it('collect-all: decided only when every child is accounted for, and never fails', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 4, strategy: 'collect-all' });
      const kids = await claimChildren(s, p);
      await finish(s, kids[0]!, 'failed');
      assert.ok((await s.jobCancel({ id: p.childIds[1]! })).includes(p.childIds[1]!));
      await finish(s, kids[2]!, 'retry'); // back to pending: not counted
      await finish(s, kids[3]!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 1, failed: 1, cancelled: 1 });
      await expectWaiting(s, p.parentId);
      const retried = await claimOne(s, p.childQueue, p.childIds[2]);
      await finish(s, fenceOf(retried), 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 1, failed: 2, cancelled: 1 });
      await expectWoken(s, p.parentId);
    });

    it('threshold 0.8 over 5: fails as soon as 2 failed, cancelling the other 3', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 5, strategy: 'threshold', threshold: 0.8 });
      const kids = (await claim(s, p.childQueue, 3)).map(fenceOf);
      await finish(s, kids[0]!, 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'running', failed: 1, cancelled: 0 });
      await expectWaiting(s, p.parentId);
      await finish(s, kids[1]!, 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 2, cancelled: 3 });
      for (const id of p.childIds.slice(2)) assert.equal((await mustGet(s, id)).status, 'cancelled');
      await expectWoken(s, p.parentId);
    });

    it('threshold 0.8 over 5: succeeds once 4 completed; the late fifth is counted but wakes nothing', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 5, strategy: 'threshold', threshold: 0.8 });
      const kids = await claimChildren(s, p);
      for (const k of kids.slice(0, 3)) await finish(s, k, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 3 });
      await expectWaiting(s, p.parentId);
      await finish(s, kids[3]!, 'completed');
      const f = await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 4, failed: 0, cancelled: 0 });
      assert.equal((await mustGet(s, p.childIds[4]!)).status, 'running', 'a success does not cancel the remaining child');
      await expectWoken(s, p.parentId);
      // The parent resumes; the fifth child finishing later must not touch it or the decision.
      const resumed = await claimOne(s, p.queue, p.parentId);
      await finish(s, kids[4]!, 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 4, failed: 1, cancelled: 0, decidedAt: f.decidedAt });
      assert.deepEqual(await mustGet(s, p.parentId), resumed, 'the parent was touched by a late child');
      assert.ok(!(await s.jobWakeDue({ limit: 1000 })).includes(p.parentId));
    });

    it('threshold: cancelled children count against the threshold', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 5, strategy: 'threshold', threshold: 0.8 });
      await s.jobCancel({ id: p.childIds[0]! });
      await expectFanOut(s, p.fanOutId, { status: 'running', cancelled: 1 });
      await expectWaiting(s, p.parentId);
      const [k] = (await claim(s, p.childQueue, 1)).map(fenceOf);
      await finish(s, k!, 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 1, cancelled: 4 });
      await expectWoken(s, p.parentId);
    });

    it('threshold 0.5 over 3 needs 2 successes (ceil)', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 3, strategy: 'threshold', threshold: 0.5 });
      const kids = await claimChildren(s, p);
      await finish(s, kids[0]!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 1 });
      await finish(s, kids[1]!, 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 1, failed: 1 });
      await finish(s, kids[2]!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 2, failed: 1 });
      await expectWoken(s, p.parentId);
    });

    it('cancelling one child of a fail-fast fan-out decides it and wakes the parent at once', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 3, strategy: 'fail-fast' });
      const cancelled = await s.jobCancel({ id: p.childIds[1]! });
      assert.equal(cancelled[0], p.childIds[1], 'the job cancelled comes first');
      assert.deepEqual([...cancelled].sort(), [...p.childIds].sort(), 'the siblings cancelled by the failed decision are returned too');
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 0, cancelled: 3 });
      for (const id of p.childIds) assert.equal((await mustGet(s, id)).status, 'cancelled');
      await expectWoken(s, p.parentId);
    });

    it('a retry outcome of a child is not counted', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'fail-fast' });
      const kids = await claimChildren(s, p);
      await finish(s, kids[0]!, 'retry');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 0, failed: 0, cancelled: 0 });
      await expectWaiting(s, p.parentId);
    });

    it('a child reclaimed to pending is not counted; one reclaimed to failed is', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'fail-fast', child: { maxRetries: 1 } });
      await claimChildren(s, p, { leaseMs: 30 });
      const first = await reclaimUntil(s, p.childIds);
      for (const r of first.values()) assert.equal(r.status, 'pending');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 0, failed: 0, cancelled: 0 });
      await expectWaiting(s, p.parentId);
      const [again] = await claim(s, p.childQueue, 1, { leaseMs: 30 });
      assert.ok(again);
      const second = await reclaimUntil(s, [again.id]);
      assert.equal(second.get(again.id)?.status, 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 1, cancelled: 1 });
      await expectWoken(s, p.parentId);
    });

    it("a failed decision cancels the unfinished siblings' whole subtrees", async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'fail-fast' });
      const kids = await claimChildren(s, p);
      const grand = await suspendIntoFanOut(s, kids[1]!, { n: 2 });
      const [g0] = (await claim(s, grand.childQueue, 1)).map(fenceOf);
      await finish(s, kids[0]!, 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'failed', failed: 1, cancelled: 1 });
      assert.equal((await mustGet(s, p.childIds[1]!)).status, 'cancelled');
      for (const id of grand.childIds) assert.equal((await mustGet(s, id)).status, 'cancelled', `grandchild ${id}`);
      await finish(s, g0!, 'completed', false);
      assert.equal((await mustGet(s, p.childIds[1]!)).status, 'cancelled', 'the cancelled child is not resumed by its own fan-out');
      await expectWoken(s, p.parentId);
    });
  });
}
