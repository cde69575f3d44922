/**
 * Conformance: fan-outs under concurrency and time — children finishing at once on different
 * instances, deadlines (`fanOutExpire`), the recovery sweep of `jobWakeDue`, and large fan-outs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Fence } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import {
  applied,
  claim,
  claimChildren,
  claimOne,
  fanOutParent,
  fenceOf,
  instances,
  mustGet,
  expectWakeAt,
  newId,
  stepRow,
  waitForClockPast,
} from '../helpers/factories.js';
import { useStorage } from './context.js';
import { expectFanOut, expectWaiting, expectWoken, finish } from './fan-out-helpers.js';

/** Registers the fan-out concurrency, deadline and recovery tests. */
export function describeFanOutRaces(make: StorageMaker): void {
  describe('fan-outs: concurrency, deadlines, recovery', () => {
    const ctx = useStorage(make, 'conformance-fanout-races');

    it('two children finishing at once on different instances: decided once, counted twice', async () => {
      const s = ctx.s;
      const [x, y] = await instances(ctx.ts, 2);
      const rounds = await Promise.all(Array.from({ length: 8 }, () => fanOutParent(s, { n: 2, strategy: 'collect-all' })));
      const fences: [Fence, Fence][] = [];
      for (const p of rounds) {
        const a = await claimOne(x!, p.childQueue, p.childIds[0], { workerId: 'x' });
        const b = await claimOne(y!, p.childQueue, p.childIds[1], { workerId: 'y' });
        fences.push([fenceOf(a), fenceOf(b)]);
      }
      await Promise.all(fences.flatMap(([a, b]) => [finish(x!, a, 'completed'), finish(y!, b, 'completed')]));
      for (const p of rounds) {
        await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 2, failed: 0, cancelled: 0 });
        await expectWoken(s, p.parentId);
      }
    });

    it('two fail-fast children failing at once: exactly one failure applies, the other is cancelled', async () => {
      const s = ctx.s;
      const [x, y] = await instances(ctx.ts, 2);
      for (let round = 0; round < 5; round++) {
        const p = await fanOutParent(s, { n: 2, strategy: 'fail-fast' });
        const a = fenceOf(await claimOne(x!, p.childQueue, p.childIds[0], { workerId: 'x' }));
        const b = fenceOf(await claimOne(y!, p.childQueue, p.childIds[1], { workerId: 'y' }));
        const [ra, rb] = await Promise.all([
          x!.jobFinishMany({ items: [{ ...a, outcome: 'failed', error: 'a' }] }),
          y!.jobFinishMany({ items: [{ ...b, outcome: 'failed', error: 'b' }] }),
        ]);
        assert.equal([ra![0], rb![0]].filter(Boolean).length, 1, `round ${round}: applied ${String(ra)} / ${String(rb)}`);
        await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 1, cancelled: 1 });
        await expectWoken(s, p.parentId);
      }
    });

    it('20 children finished concurrently by 4 instances are each counted once', async () => {
      const s = ctx.s;
      const workers = await instances(ctx.ts, 4);
      const p = await fanOutParent(s, { n: 20, strategy: 'collect-all' });
      const owned = await Promise.all(workers.map(async (w, i) => (await claim(w, p.childQueue, 5, { workerId: `w${i}` })).map(fenceOf)));
      assert.equal(new Set(owned.flat().map((f) => f.jobId)).size, 20);
      await Promise.all(owned.map((fs, i) => Promise.all(fs.map((f, j) => finish(workers[i]!, f, (i + j) % 3 === 0 ? 'failed' : 'completed')))));
      const failed = owned.flatMap((fs, i) => fs.filter((_, j) => (i + j) % 3 === 0)).length;
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 20 - failed, failed, cancelled: 0 });
      await expectWoken(s, p.parentId);
    });

    it('fanOutExpire fails a running fan-out past its deadline and cancels the unfinished children', async () => {
      const s = ctx.s;
      const live = await fanOutParent(s, { n: 1, timeoutMs: 60_000 });
      assert.equal(await s.fanOutExpire({ id: live.fanOutId }), false, 'deadline not reached');
      await expectFanOut(s, live.fanOutId, { status: 'running' });
      const noDeadline = await fanOutParent(s, { n: 1, timeoutMs: null });
      assert.equal(await s.fanOutExpire({ id: noDeadline.fanOutId }), false, 'no deadline');
      assert.equal(await s.fanOutExpire({ id: newId() }), false, 'unknown fan-out');

      const p = await fanOutParent(s, { n: 3, strategy: 'collect-all', timeoutMs: 100 });
      const kids = (await claim(s, p.childQueue, 2)).map(fenceOf); // child 2 stays pending
      await finish(s, kids[0]!, 'completed');
      const f = await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 1 });
      await waitForClockPast(s, f.deadlineAt!);
      assert.equal(await s.fanOutExpire({ id: p.fanOutId }), true);
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 1, failed: 0, cancelled: 2 });
      assert.equal((await mustGet(s, p.childIds[0]!)).status, 'completed');
      assert.equal((await mustGet(s, p.childIds[1]!)).status, 'cancelled');
      assert.equal((await mustGet(s, p.childIds[2]!)).status, 'cancelled');
      await finish(s, kids[1]!, 'completed', false);
      await expectWoken(s, p.parentId);
      assert.equal(await s.fanOutExpire({ id: p.fanOutId }), false, 'expired twice');
    });

    it('fanOutExpire leaves an already decided fan-out alone', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 1, timeoutMs: 50 });
      const [k] = await claimChildren(s, p);
      await finish(s, k!, 'completed');
      const f = await expectFanOut(s, p.fanOutId, { status: 'succeeded' });
      await waitForClockPast(s, f.deadlineAt!);
      assert.equal(await s.fanOutExpire({ id: p.fanOutId }), false);
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 1, cancelled: 0, decidedAt: f.decidedAt });
    });

    it('the parent wakes at the deadline; expiring afterwards does not disturb its new run', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'fail-fast', timeoutMs: 150 });
      const f = await expectFanOut(s, p.fanOutId, { status: 'running' });
      await expectWakeAt(s, p.parentId, f.deadlineAt!);
      const row = await mustGet(s, p.parentId);
      assert.equal(row.status, 'pending');
      assert.equal(row.wakeAt, null);
      const run = await claimOne(s, p.queue, p.parentId, { workerId: 'parent-worker' });
      assert.equal(await s.fanOutExpire({ id: p.fanOutId }), true);
      await expectFanOut(s, p.fanOutId, { status: 'failed', cancelled: 2 });
      assert.deepEqual(await mustGet(s, p.parentId), run, 'the running parent was disturbed by the decision');
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fenceOf(run), outcome: 'completed', resultJson: null }] })), [true]);
    });

    it('jobWakeDue recovers a parent left waiting on a fan-out that is already decided, once', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 1, strategy: 'fail-fast' });
      const [k] = await claimChildren(s, p);
      assert.deepEqual(await claim(s, p.queue, 5), [], 'a waiting parent is not claimable');
      await finish(s, k!, 'failed');
      await expectWoken(s, p.parentId);
      // A parent run that read the fan-out as still running (it was woken early, e.g. by its
      // deadline) suspends again on it, without a new step: only the sweep can wake it now.
      const second = await claimOne(s, p.queue, p.parentId);
      assert.equal(await s.jobSuspend({ fence: fenceOf(second), step: null, wakeAt: null, waitSignal: null }), true);
      await expectWaiting(s, p.parentId);
      const woken = await s.jobWakeDue({ limit: 1000 });
      assert.equal(woken.filter((id) => id === p.parentId).length, 1, 'recovery sweep woke the parent');
      await expectWoken(s, p.parentId);
      assert.ok(!(await s.jobWakeDue({ limit: 1000 })).includes(p.parentId), 'woken twice');
    });

    it('jobWakeDue does not wake a parent whose decided fan-out lies behind a later sleep or signal wait', async () => {
      const s = ctx.s;
      for (const kind of ['sleep', 'signal'] as const) {
        const p = await fanOutParent(s, { n: 1, strategy: 'collect-all' });
        const [k] = await claimChildren(s, p);
        await finish(s, k!, 'completed');
        await expectWoken(s, p.parentId);
        const run = fenceOf(await claimOne(s, p.queue, p.parentId));
        if (kind === 'sleep') {
          const until = (await s.clockNow()) + 3_600_000;
          const step = stepRow(p.parentId, 1, { stepName: 'sleep', status: 'waiting', outputJson: String(until) });
          assert.equal(await s.jobSuspend({ fence: run, step, wakeAt: until, waitSignal: null }), true);
        } else {
          const res = await s.signalConsumeOrWait({ fence: run, stepIndex: 1, stepName: 'approval', signalName: 'approve', deadlineAt: null });
          assert.deepEqual(res, { kind: 'suspended' });
        }
        await expectWaiting(s, p.parentId);
        assert.ok(!(await s.jobWakeDue({ limit: 1000 })).includes(p.parentId), `a ${kind} wait was woken by the fan-out recovery sweep`);
        await expectWaiting(s, p.parentId);
      }
    });

    it('suspends into a 2,000-child fan-out', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2_000, strategy: 'collect-all', child: { argsJson: '{"payload":"some args"}' } });
      await expectFanOut(s, p.fanOutId, { total: 2_000, status: 'running', succeeded: 0 });
      const counts = await s.jobCountByStatus({ queue: p.childQueue });
      assert.equal(counts.pending, 2_000);
      const kids = await s.jobList({ fanOutId: p.fanOutId, limit: 5_000, order: 'asc' });
      assert.deepEqual(kids.map((k) => k.id), p.childIds);
      assert.deepEqual(kids.map((k) => k.fanOutIndex), p.childIds.map((_, i) => i));
      const first = await claim(s, p.childQueue, 3);
      assert.deepEqual(first.map((r) => r.fanOutIndex), [0, 1, 2]);
    });
  });
}
