/**
 * Conformance: operations that resolve time in the database, one call each — the stored time
 * `jobFinishMany` reports, durable timers (`jobSuspendUntil`), fan-out collection
 * (`fanOutCollect`), signal waits whose deadline the database fixes (`timeoutMs`) — plus
 * `stepRecordMany` and the exact contract texts of a reclaim.
 *
 * Each operation is run once on the database clock (no injected clock: the driver's own "now"
 * in SQL) and then, for exact instants and for time passing, on a second isolated database
 * whose storage takes a clock the test moves by hand (no real waits).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LEASE_EXPIRED_FAILED, LEASE_EXPIRED_RETRY, SIGNAL_WAIT_TIMED_OUT } from '../../src/storage/shared/contract-messages.js';
import type { StorageMaker } from '../helpers/storages.js';
import { applied, assertBetween, claim, claimOne, fanOutParent, fenceOf, mustGet, newId, runningJob, stepRow, uniqueName } from '../helpers/factories.js';
import { useManualClock, useStorage } from './context.js';

/** Registers the database-clock tests. */
export function describeDatabaseClock(make: StorageMaker): void {
  describe('time resolved in the database', () => {
    const ctx = useStorage(make, 'conformance-db-clock');
    const clock = useManualClock(ctx, 'conformance-db-clock-manual');

    it('jobFinishMany reports the stored time of each outcome (database clock), null when its fence failed', async () => {
      const s = ctx.s;
      const a = await runningJob(s);
      const b = await runningJob(s);
      const c = await runningJob(s);
      const t0 = await s.clockNow();
      const stale = { ...a.fence, runCount: a.fence.runCount + 1 };
      const out = await s.jobFinishMany({
        items: [
          { ...a.fence, outcome: 'completed', resultJson: '1' },
          { ...b.fence, outcome: 'failed', error: 'x' },
          { ...c.fence, outcome: 'retry', error: 'again', delayMs: 60_000 },
          { ...stale, outcome: 'completed', resultJson: '2' },
        ],
      });
      const t1 = await s.clockNow();
      assert.equal(out.length, 4);
      assert.equal(out[0], (await mustGet(s, a.fence.jobId)).completedAt, 'completed: the stored completed_at');
      assert.equal(out[1], (await mustGet(s, b.fence.jobId)).completedAt, 'failed: the stored completed_at');
      assertBetween(out[0] ?? null, t0, t1, 'completed_at');
      assertBetween(out[2] ?? null, t0, t1, 'retry: the write time');
      assert.equal((await mustGet(s, c.fence.jobId)).runAt, out[2]! + 60_000, 'a retry runs its delay after the reported time');
      assert.equal(out[3], null, 'a failed fence reports null');
    });

    it('jobFinishMany reports the injected instant, equal to completed_at, and null for each failed fence', async () => {
      const m = clock();
      const a = await runningJob(m.s);
      const b = await runningJob(m.s);
      const c = await runningJob(m.s);
      const d = await runningJob(m.s);
      m.now += 1_234;
      const at = m.now;
      const out = await m.s.jobFinishMany({
        items: [
          { ...a.fence, outcome: 'completed', resultJson: '1' },
          { ...b.fence, workerId: 'intruder', outcome: 'completed', resultJson: '2' },
          { ...b.fence, outcome: 'failed', error: 'x' },
          { ...c.fence, outcome: 'retry', error: 'again', delayMs: 5_000 },
          { ...c.fence, jobId: newId(), outcome: 'failed', error: 'no such job' },
        ],
      });
      assert.deepEqual(out, [at, null, at, at, null]);
      assert.equal((await mustGet(m.s, a.fence.jobId)).completedAt, at);
      assert.equal((await mustGet(m.s, b.fence.jobId)).completedAt, at);
      const retried = await mustGet(m.s, c.fence.jobId);
      assert.equal(retried.completedAt, null);
      assert.equal(retried.runAt, at + 5_000);
      assert.equal((await mustGet(m.s, d.fence.jobId)).status, 'running', 'a job with no item is untouched');
    });

    it('jobSuspendUntil (first sleep, database clock): wake time = now + delay, recorded, job waiting', async () => {
      const s = ctx.s;
      const { row, fence } = await runningJob(s);
      const t0 = await s.clockNow();
      const r = await s.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 60_000 });
      const t1 = await s.clockNow();
      assert.equal(r.kind, 'suspended');
      const wakeAt = r.kind === 'suspended' ? r.wakeAt : -1;
      assertBetween(wakeAt, t0 + 60_000, t1 + 60_000, 'wake time');
      const after = await mustGet(s, fence.jobId);
      assert.equal(after.status, 'waiting');
      assert.equal(after.wakeAt, wakeAt);
      assert.equal(after.waitSignal, null);
      assert.equal(after.attempt, row.attempt - 1, 'a suspension gives the attempt back');
      assert.equal(after.lockedBy, null);
      assert.equal(after.leaseExpiresAt, null);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [stepRow(fence.jobId, 0, { stepName: 'sleep', outputJson: JSON.stringify(wakeAt) })]);
    });

    it('jobSuspendUntil: the timer fixed on the first execution wakes the job at it, and the replay goes on in one call', async () => {
      const m = clock();
      const q = uniqueName('q');
      const { fence } = await runningJob(m.s, { queue: q });
      const t = m.now;
      assert.deepEqual(await m.s.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 60_000 }), {
        kind: 'suspended',
        wakeAt: t + 60_000,
      });
      const recorded = [stepRow(fence.jobId, 0, { stepName: 'sleep', outputJson: JSON.stringify(t + 60_000) })];
      assert.deepEqual(await m.s.stepList({ jobId: fence.jobId }), recorded);
      m.now = t + 59_999;
      assert.ok(!(await m.s.jobWakeDue({ limit: 1000 })).includes(fence.jobId), 'woken before its wake time');
      m.now = t + 60_000;
      assert.ok((await m.s.jobWakeDue({ limit: 1000 })).includes(fence.jobId), 'woken at its wake time');
      // The replay, long after the wake time: no second sleep, nothing recorded again.
      m.now = t + 3_600_000;
      const again = fenceOf(await claimOne(m.s, q, fence.jobId));
      assert.deepEqual(await m.s.jobSuspendUntil({ fence: again, stepIndex: 0, stepName: 'sleep', recorded: true, wakeAt: t + 60_000 }), {
        kind: 'elapsed',
        wakeAt: t + 60_000,
      });
      const row = await mustGet(m.s, fence.jobId);
      assert.equal(row.status, 'running', 'the replay keeps the job');
      assert.equal(row.lockedBy, again.workerId);
      assert.deepEqual(await m.s.stepList({ jobId: fence.jobId }), recorded);
    });

    it('jobSuspendUntil on a replay before the recorded wake time suspends until that time again, recording nothing', async () => {
      const m = clock();
      const { fence } = await runningJob(m.s);
      const wakeAt = m.now + 10_000;
      const r = await m.s.jobSuspendUntil({ fence, stepIndex: 2, stepName: 'sleep', recorded: true, wakeAt });
      assert.deepEqual(r, { kind: 'suspended', wakeAt }, 'the first wake time is kept (not now + a delay)');
      const row = await mustGet(m.s, fence.jobId);
      assert.equal(row.status, 'waiting');
      assert.equal(row.wakeAt, wakeAt);
      assert.deepEqual(await m.s.stepList({ jobId: fence.jobId }), [], 'a replay records no checkpoint');
    });

    it('jobSuspendUntil: a wake time at or before now records the step and lets the run go on', async () => {
      const m = clock();
      const { fence } = await runningJob(m.s);
      const past = m.now - 1_000;
      assert.deepEqual(await m.s.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, wakeAt: past }), { kind: 'elapsed', wakeAt: past });
      assert.deepEqual(await m.s.jobSuspendUntil({ fence, stepIndex: 1, stepName: 'sleep', recorded: false, wakeAt: m.now }), { kind: 'elapsed', wakeAt: m.now });
      assert.deepEqual(await m.s.jobSuspendUntil({ fence, stepIndex: 2, stepName: 'sleep', recorded: false, delayMs: 0 }), { kind: 'elapsed', wakeAt: m.now });
      const row = await mustGet(m.s, fence.jobId);
      assert.equal(row.status, 'running', 'the run keeps the job');
      assert.equal(row.runCount, fence.runCount);
      assert.equal(row.wakeAt, null);
      assert.deepEqual(
        (await m.s.stepList({ jobId: fence.jobId })).map((st) => [st.stepIndex, st.stepName, st.status, st.outputJson]),
        [
          [0, 'sleep', 'completed', JSON.stringify(past)],
          [1, 'sleep', 'completed', JSON.stringify(m.now)],
          [2, 'sleep', 'completed', JSON.stringify(m.now)],
        ],
      );
    });

    it('jobSuspendUntil with a stale fence is lost and writes nothing', async () => {
      const m = clock();
      const { fence } = await runningJob(m.s);
      const before = await mustGet(m.s, fence.jobId);
      for (const stale of [{ ...fence, workerId: 'someone-else' }, { ...fence, runCount: fence.runCount + 1 }]) {
        assert.deepEqual(await m.s.jobSuspendUntil({ fence: stale, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 60_000 }), { kind: 'lost' });
        assert.deepEqual(await m.s.jobSuspendUntil({ fence: stale, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 0 }), { kind: 'lost' });
        assert.deepEqual(await m.s.jobSuspendUntil({ fence: stale, stepIndex: 0, stepName: 'sleep', recorded: true, wakeAt: m.now + 1 }), { kind: 'lost' });
      }
      assert.deepEqual(await mustGet(m.s, fence.jobId), before);
      assert.deepEqual(await m.s.stepList({ jobId: fence.jobId }), []);
      // A cancelled job's run is lost too.
      await m.s.jobCancel({ id: fence.jobId });
      assert.deepEqual(await m.s.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 60_000 }), { kind: 'lost' });
      assert.equal((await mustGet(m.s, fence.jobId)).status, 'cancelled');
    });

    it('fanOutCollect: undefined for an unknown fan-out; a running one with its children in index order', async () => {
      const s = ctx.s;
      assert.equal(await s.fanOutCollect({ id: newId() }), undefined);
      const p = await fanOutParent(s, { n: 3, strategy: 'collect-all', timeoutMs: 3_600_000 });
      // Child 2 finishes first: the order is by index, not by status or time.
      const kids = await claim(s, p.childQueue, 3);
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fenceOf(kids[2]!), outcome: 'completed', resultJson: '"c2"' }] })), [true]);
      const got = await s.fanOutCollect({ id: p.fanOutId });
      assert.ok(got);
      assert.deepEqual(got.fanOut, await s.fanOutGet({ id: p.fanOutId }));
      assert.equal(got.fanOut.status, 'running', 'not past its deadline: left running');
      assert.equal(got.fanOut.succeeded, 1);
      assert.deepEqual(got.children.map((c) => c.id), p.childIds);
      assert.deepEqual(got.children.map((c) => c.fanOutIndex), [0, 1, 2]);
      assert.deepEqual(got.children.map((c) => c.status), ['running', 'running', 'completed']);
      assert.equal(got.children[2]!.resultJson, '"c2"');
    });

    it('fanOutCollect: at its deadline a running fan-out is expired in the same call, its unfinished children cancelled', async () => {
      const m = clock();
      const t = m.now;
      const p = await fanOutParent(m.s, { n: 3, strategy: 'collect-all', timeoutMs: 1_000 });
      const kids = await claim(m.s, p.childQueue, 3);
      assert.deepEqual(applied(await m.s.jobFinishMany({ items: [{ ...fenceOf(kids[0]!), outcome: 'completed', resultJson: '"c0"' }] })), [true]);
      m.now = t + 999;
      const early = await m.s.fanOutCollect({ id: p.fanOutId });
      assert.equal(early?.fanOut.status, 'running', 'collected before its deadline: still running');
      assert.deepEqual(early?.children.map((c) => c.status), ['completed', 'running', 'running']);
      // The parent wakes at the deadline and collects.
      m.now = t + 1_000;
      assert.ok((await m.s.jobWakeDue({ limit: 1000 })).includes(p.parentId), 'the parent wakes at the deadline');
      const parentRun = fenceOf(await claimOne(m.s, p.queue, p.parentId));
      const got = await m.s.fanOutCollect({ id: p.fanOutId });
      assert.ok(got);
      assert.equal(got.fanOut.status, 'failed');
      assert.equal(got.fanOut.decidedAt, t + 1_000);
      assert.equal(got.fanOut.deadlineAt, t + 1_000);
      assert.deepEqual([got.fanOut.succeeded, got.fanOut.failed, got.fanOut.cancelled], [1, 0, 2]);
      assert.deepEqual(got.children.map((c) => c.id), p.childIds);
      assert.deepEqual(got.children.map((c) => c.status), ['completed', 'cancelled', 'cancelled']);
      assert.deepEqual(got.fanOut, await m.s.fanOutGet({ id: p.fanOutId }));
      // The collecting run still owns the parent; the cancelled children's runs are fenced out.
      assert.deepEqual(applied(await m.s.jobFinishMany({ items: [{ ...fenceOf(kids[1]!), outcome: 'completed', resultJson: '"late"' }] })), [false]);
      assert.deepEqual(applied(await m.s.jobFinishMany({ items: [{ ...parentRun, outcome: 'failed', error: 'fan-out failed' }] })), [true]);
      // Collecting again reads the decided fan-out unchanged.
      m.now = t + 5_000;
      assert.deepEqual(await m.s.fanOutCollect({ id: p.fanOutId }), got);
    });

    it('fanOutCollect past the deadline of a decided fan-out changes nothing', async () => {
      const m = clock();
      const t = m.now;
      const p = await fanOutParent(m.s, { n: 1, strategy: 'fail-fast', timeoutMs: 1_000 });
      const [kid] = await claim(m.s, p.childQueue, 1);
      assert.deepEqual(applied(await m.s.jobFinishMany({ items: [{ ...fenceOf(kid!), outcome: 'completed', resultJson: '1' }] })), [true]);
      m.now = t + 10_000;
      const got = await m.s.fanOutCollect({ id: p.fanOutId });
      assert.equal(got?.fanOut.status, 'succeeded');
      assert.equal(got?.fanOut.decidedAt, t);
      assert.deepEqual(got?.children.map((c) => c.status), ['completed']);
    });

    it('signalConsumeOrWait with timeoutMs (database clock): the deadline is now + timeout, stored in the waiting step', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const t0 = await s.clockNow();
      const r = await s.signalConsumeOrWait({ fence, stepIndex: 0, stepName: 'wait-0', signalName: 'go', deadlineAt: null, timeoutMs: 60_000 });
      const t1 = await s.clockNow();
      assert.deepEqual(r, { kind: 'suspended' });
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'waiting');
      assert.equal(row.waitSignal, 'go');
      assertBetween(row.wakeAt, t0 + 60_000, t1 + 60_000, 'deadline');
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [stepRow(fence.jobId, 0, { stepName: 'wait-0', status: 'waiting', outputJson: JSON.stringify(row.wakeAt) })]);
    });

    it('signalConsumeOrWait with timeoutMs: the deadline fixed on the first execution holds on replay', async () => {
      const m = clock();
      const q = uniqueName('q');
      const { fence } = await runningJob(m.s, { queue: q });
      const t = m.now;
      // timeoutMs wins over deadlineAt (here already past).
      const r = await m.s.signalConsumeOrWait({ fence, stepIndex: 0, stepName: 'wait-0', signalName: 'go', deadlineAt: t - 1, timeoutMs: 5_000 });
      assert.deepEqual(r, { kind: 'suspended' });
      const row = await mustGet(m.s, fence.jobId);
      assert.equal(row.wakeAt, t + 5_000);
      assert.deepEqual(await m.s.stepList({ jobId: fence.jobId }), [stepRow(fence.jobId, 0, { stepName: 'wait-0', status: 'waiting', outputJson: JSON.stringify(t + 5_000) })]);
      m.now = t + 4_999;
      assert.ok(!(await m.s.jobWakeDue({ limit: 1000 })).includes(fence.jobId), 'woken before the deadline');
      m.now = t + 5_000;
      assert.ok((await m.s.jobWakeDue({ limit: 1000 })).includes(fence.jobId), 'woken at the deadline');
      const again = fenceOf(await claimOne(m.s, q, fence.jobId));
      // The replay passes the stored deadline back: timed out, and checkpointed so.
      const replay = await m.s.signalConsumeOrWait({ fence: again, stepIndex: 0, stepName: 'wait-0', signalName: 'go', deadlineAt: t + 5_000 });
      assert.deepEqual(replay, { kind: 'timed-out' });
      assert.equal((await mustGet(m.s, fence.jobId)).status, 'running');
      assert.deepEqual(await m.s.stepList({ jobId: fence.jobId }), [
        stepRow(fence.jobId, 0, { stepName: 'wait-0', status: 'failed', outputJson: null, error: SIGNAL_WAIT_TIMED_OUT }),
      ]);
    });

    it('signalConsumeOrWait with timeoutMs: a buffered signal is consumed; a zero timeout times out at once', async () => {
      const m = clock();
      const { fence } = await runningJob(m.s);
      await m.s.signalSend({ jobId: fence.jobId, name: 'go', payloadJson: '{"ok":true}' });
      assert.deepEqual(await m.s.signalConsumeOrWait({ fence, stepIndex: 0, stepName: 'wait-0', signalName: 'go', deadlineAt: null, timeoutMs: 0 }), {
        kind: 'consumed',
        payloadJson: '{"ok":true}',
      });
      assert.deepEqual(await m.s.signalConsumeOrWait({ fence, stepIndex: 1, stepName: 'wait-1', signalName: 'go', deadlineAt: null, timeoutMs: 0 }), { kind: 'timed-out' });
      assert.deepEqual(
        await m.s.stepList({ jobId: fence.jobId }),
        [
          stepRow(fence.jobId, 0, { stepName: 'wait-0', outputJson: '{"ok":true}' }),
          stepRow(fence.jobId, 1, { stepName: 'wait-1', status: 'failed', outputJson: null, error: SIGNAL_WAIT_TIMED_OUT }),
        ],
      );
      assert.equal((await mustGet(m.s, fence.jobId)).status, 'running');
    });

    it('stepRecordMany records many fenced checkpoints in one call, per item applied', async () => {
      const s = ctx.s;
      const a = await runningJob(s);
      const b = await runningJob(s);
      const stale = { ...b.fence, runCount: b.fence.runCount + 1 };
      const out = await s.stepRecordMany({
        items: [
          { fence: a.fence, step: stepRow(a.fence.jobId, 0, { stepName: 's0', outputJson: '0' }) },
          { fence: a.fence, step: stepRow(a.fence.jobId, 1, { stepName: 's1', outputJson: '1' }) },
          { fence: b.fence, step: stepRow(b.fence.jobId, 0, { stepName: 's0', outputJson: '"b"' }) },
          { fence: stale, step: stepRow(b.fence.jobId, 1, { stepName: 's1', outputJson: '"zombie"' }) },
        ],
      });
      assert.deepEqual(out, [true, true, true, false]);
      assert.deepEqual((await s.stepList({ jobId: a.fence.jobId })).map((r) => r.outputJson), ['0', '1']);
      assert.deepEqual((await s.stepList({ jobId: b.fence.jobId })).map((r) => r.outputJson), ['"b"']);
      assert.deepEqual(await s.stepRecordMany({ items: [] }), []);
    });

    it('a reclaim writes the one last_error wording of every driver', async () => {
      const m = clock();
      const retry = await runningJob(m.s, { maxRetries: 3 }, { leaseMs: 1_000 });
      const dead = await runningJob(m.s, { maxRetries: 0 }, { leaseMs: 1_000 });
      m.now += 999;
      const early = await m.s.jobReclaimExpired({ limit: 1000 });
      assert.ok(!early.some((r) => r.id === retry.fence.jobId || r.id === dead.fence.jobId), 'reclaimed before its lease expired');
      m.now += 2;
      const reclaimed = new Map((await m.s.jobReclaimExpired({ limit: 1000 })).map((r) => [r.id, r.status]));
      assert.equal(reclaimed.get(retry.fence.jobId), 'pending');
      assert.equal(reclaimed.get(dead.fence.jobId), 'failed');
      const r = await mustGet(m.s, retry.fence.jobId);
      assert.equal(r.status, 'pending');
      assert.equal(r.lastError, LEASE_EXPIRED_RETRY);
      const d = await mustGet(m.s, dead.fence.jobId);
      assert.equal(d.status, 'failed');
      assert.equal(d.lastError, LEASE_EXPIRED_FAILED);
      assert.equal(d.completedAt, m.now);
    });
  });
}
