/**
 * Conformance: leases — heartbeats, release, reclaim of expired leases, fresh leases on re-claim,
 * and the fence that turns every write of a stale owner into a no-op.
 *
 * Whatever needs time to pass (a lease running out, a heartbeat later than the claim) runs on a
 * second isolated database whose storage takes a clock the test moves by hand: no real waits,
 * and every instant the storage writes is checked exactly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Fence, ReclaimedJob, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import { applied, assertBetween, claim, claimOne, completedJob, jobInsert, mustGet, newId, runningJob, stepRow, uniqueName } from '../helpers/factories.js';
import { LEASE_EXPIRED_FAILED, LEASE_EXPIRED_RETRY } from '../../src/storage/shared/contract-messages.js';
import { useManualClock, useStorage, type ManualClock } from './context.js';

/** One `jobReclaimExpired` call, by job id (asserting no job is reported twice in it). */
async function reclaimNow(s: Storage): Promise<Map<string, ReclaimedJob>> {
  const out = new Map<string, ReclaimedJob>();
  for (const r of await s.jobReclaimExpired({ limit: 1000 })) {
    assert.ok(!out.has(r.id), `job ${r.id} reported twice by one reclaim`);
    out.set(r.id, r);
  }
  return out;
}

/** Moves the clock past the lease of `row` and reclaims; asserts the job was reclaimed. */
async function expireAndReclaim(m: ManualClock, row: { id: string; leaseExpiresAt: number | null }): Promise<ReclaimedJob> {
  assert.ok(row.leaseExpiresAt !== null, `job ${row.id} holds no lease`);
  m.now = Math.max(m.now, row.leaseExpiresAt + 1);
  const got = (await reclaimNow(m.s)).get(row.id);
  assert.ok(got, `job ${row.id} was reclaimed once its lease ran out`);
  return got;
}

/** Every write an owner can make, attempted with a stale fence: each must be a no-op. */
async function assertZombieWritesAreNoOps(s: Storage, stale: Fence): Promise<void> {
  const before = await mustGet(s, stale.jobId);
  const fanOutId = newId();
  const child = jobInsert({ queue: uniqueName('q'), parentId: stale.jobId, fanOutId, fanOutIndex: 0 });
  assert.deepEqual(await s.jobHeartbeat({ workerId: stale.workerId, runs: [{ jobId: stale.jobId, runCount: stale.runCount }], leaseMs: 60_000 }), []);
  assert.equal(await s.stepRecord({ fence: stale, step: stepRow(stale.jobId, 0, { outputJson: '"zombie"' }) }), false);
  assert.equal(await s.jobSuspend({ fence: stale, step: stepRow(stale.jobId, 1, { status: 'waiting' }), wakeAt: Date.now() + 60_000, waitSignal: null }), false);
  assert.equal(
    await s.jobSuspendFanOut({
      fence: stale,
      step: stepRow(stale.jobId, 2, { outputJson: JSON.stringify(fanOutId) }),
      fanOut: { id: fanOutId, strategy: 'fail-fast', threshold: null, timeoutMs: null },
      children: [child],
    }),
    false,
  );
  assert.deepEqual(await s.signalConsumeOrWait({ fence: stale, stepIndex: 3, stepName: 'wait', signalName: 'sig', deadlineAt: null }), { kind: 'lost' });
  assert.deepEqual(
    await s.signalConsumeOrWait({ fence: stale, stepIndex: 4, stepName: 'wait', signalName: 'sig', deadlineAt: null, timeoutMs: 60_000 }),
    { kind: 'lost' },
  );
  assert.deepEqual(await s.jobSuspendUntil({ fence: stale, stepIndex: 5, stepName: 'sleep', recorded: false, delayMs: 60_000 }), { kind: 'lost' });
  assert.deepEqual(await s.jobSuspendUntil({ fence: stale, stepIndex: 6, stepName: 'sleep', recorded: false, delayMs: 0 }), { kind: 'lost' });
  assert.deepEqual(await s.stepRecordMany({ items: [{ fence: stale, step: stepRow(stale.jobId, 7, { outputJson: '"zombie"' }) }] }), [false]);
  assert.deepEqual(await s.jobRelease({ runs: [stale] }), []);
  assert.deepEqual(
    await s.jobFinishMany({
      items: [
        { ...stale, outcome: 'completed', resultJson: '"zombie"' },
        { ...stale, outcome: 'failed', error: 'zombie' },
        { ...stale, outcome: 'retry', error: 'zombie', delayMs: 0 },
      ],
    }),
    [null, null, null],
  );
  assert.deepEqual(await mustGet(s, stale.jobId), before, 'the stale owner changed the job');
  assert.deepEqual(await s.stepList({ jobId: stale.jobId }), [], 'the stale owner wrote checkpoints');
  assert.equal(await s.fanOutGet({ id: fanOutId }), undefined, 'the stale owner created a fan-out');
  assert.equal(await s.jobGet({ id: child.id }), undefined, 'the stale owner inserted children');
}

/** Registers the lease tests. */
export function describeLeases(make: StorageMaker): void {
  describe('leases: heartbeat, release, reclaim, fencing', () => {
    const ctx = useStorage(make, 'conformance-leases');
    const clock = useManualClock(ctx, 'conformance-leases-manual');

    it('heartbeat extends the leases of held runs and returns their ids (database clock)', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      await s.jobInsertMany({ jobs: [jobInsert({ queue: q }), jobInsert({ queue: q })] });
      const rows = await claim(s, q, 2, { workerId: 'hb', leaseMs: 1_000 });
      assert.equal(rows.length, 2);
      const t0 = await s.clockNow();
      const held = await s.jobHeartbeat({ workerId: 'hb', runs: rows.map((r) => ({ jobId: r.id, runCount: r.runCount })), leaseMs: 90_000 });
      const t1 = await s.clockNow();
      assert.deepEqual([...held].sort(), rows.map((r) => r.id).sort());
      for (const r of rows) {
        const now = await mustGet(s, r.id);
        assert.equal(now.status, 'running');
        assertBetween(now.leaseExpiresAt, t0 + 90_000, t1 + 90_000, 'lease after heartbeat');
        assertBetween(now.heartbeatAt, t0, t1, 'heartbeat_at');
        assert.equal(now.runCount, r.runCount);
        assert.equal(now.attempt, r.attempt);
      }
    });

    it('heartbeat sets heartbeat_at to now and the lease to now + leaseMs, keeping started_at (injected clock)', async () => {
      const m = clock();
      const q = uniqueName('q');
      await m.s.jobInsertMany({ jobs: [jobInsert({ queue: q }), jobInsert({ queue: q })] });
      const claimedAt = m.now;
      const rows = await claim(m.s, q, 2, { workerId: 'hb', leaseMs: 1_000 });
      assert.equal(rows.length, 2);
      for (const r of rows) assert.deepEqual([r.startedAt, r.heartbeatAt, r.leaseExpiresAt], [claimedAt, claimedAt, claimedAt + 1_000]);
      m.now += 400;
      const held = await m.s.jobHeartbeat({ workerId: 'hb', runs: rows.map((r) => ({ jobId: r.id, runCount: r.runCount })), leaseMs: 90_000 });
      assert.deepEqual([...held].sort(), rows.map((r) => r.id).sort());
      for (const r of rows) {
        const now = await mustGet(m.s, r.id);
        assert.equal(now.status, 'running');
        assert.equal(now.heartbeatAt, m.now, 'heartbeat_at is the time of the heartbeat');
        assert.equal(now.leaseExpiresAt, m.now + 90_000, 'the lease runs from the heartbeat');
        assert.equal(now.startedAt, claimedAt, 'started_at is kept');
        assert.equal(now.runCount, r.runCount);
        assert.equal(now.attempt, r.attempt);
      }
    });

    it('heartbeat omits runs the worker no longer holds and leaves them unchanged', async () => {
      const s = ctx.s;
      const mine = await runningJob(s, {}, { workerId: 'hb2' });
      const theirs = await runningJob(s, {}, { workerId: 'other' });
      const cancelled = await runningJob(s, {}, { workerId: 'hb2' });
      await s.jobCancel({ id: cancelled.fence.jobId });
      const done = await completedJob(s);
      const before = await Promise.all([theirs.fence.jobId, cancelled.fence.jobId, done.id].map((id) => mustGet(s, id)));
      const held = await s.jobHeartbeat({
        workerId: 'hb2',
        runs: [
          { jobId: mine.fence.jobId, runCount: mine.fence.runCount },
          { jobId: mine.fence.jobId, runCount: mine.fence.runCount + 1 },
          { jobId: theirs.fence.jobId, runCount: theirs.fence.runCount },
          { jobId: cancelled.fence.jobId, runCount: cancelled.fence.runCount },
          { jobId: done.id, runCount: done.runCount },
          { jobId: newId(), runCount: 1 },
        ],
        leaseMs: 60_000,
      });
      assert.deepEqual(held, [mine.fence.jobId]);
      const after = await Promise.all([theirs.fence.jobId, cancelled.fence.jobId, done.id].map((id) => mustGet(s, id)));
      assert.deepEqual(after, before);
      assert.deepEqual(await s.jobHeartbeat({ workerId: 'hb2', runs: [], leaseMs: 60_000 }), []);
    });

    it('does not reclaim a run whose heartbeat extended its lease, up to the end of the renewed lease', async () => {
      const m = clock();
      const { row, fence } = await runningJob(m.s, {}, { leaseMs: 150 });
      m.now += 100;
      const renewedAt = m.now;
      assert.deepEqual(await m.s.jobHeartbeat({ workerId: fence.workerId, runs: [{ jobId: fence.jobId, runCount: fence.runCount }], leaseMs: 60_000 }), [fence.jobId]);
      m.now = row.leaseExpiresAt! + 1;
      assert.ok(!(await reclaimNow(m.s)).has(fence.jobId), 'reclaimed after the original expiry although a heartbeat extended the lease');
      m.now = renewedAt + 60_000 - 1;
      assert.ok(!(await reclaimNow(m.s)).has(fence.jobId), 'reclaimed before the renewed lease ran out');
      assert.equal((await mustGet(m.s, fence.jobId)).status, 'running');
      assert.deepEqual(applied(await m.s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: null }] })), [true]);
    });

    it('release gives the job back to pending with its attempt returned, claimable at once', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const { fence } = await runningJob(s, { queue: q });
      assert.deepEqual(await s.jobRelease({ runs: [{ ...fence, workerId: 'not-me' }] }), [], 'stale release');
      assert.equal((await mustGet(s, fence.jobId)).status, 'running');
      assert.deepEqual(await s.jobRelease({ runs: [fence] }), [fence.jobId]);
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'pending');
      assert.equal(row.attempt, 0, 'release does not consume an attempt');
      assert.equal(row.runCount, 1, 'run_count is never decremented');
      assert.equal(row.leaseExpiresAt, null);
      assert.deepEqual(await s.jobRelease({ runs: [fence] }), [], 'released twice');
      assert.deepEqual(await s.jobHeartbeat({ workerId: fence.workerId, runs: [{ jobId: fence.jobId, runCount: 1 }], leaseMs: 1_000 }), []);
      const again = await claimOne(s, q, fence.jobId);
      assert.equal(again.attempt, 1);
      assert.equal(again.runCount, 2);
    });

    it('reclaims an expired run to pending while attempts remain, consuming the attempt', async () => {
      const m = clock();
      const q = uniqueName('q');
      const type = uniqueName('type');
      const { row: first, fence } = await runningJob(m.s, { queue: q, type, maxRetries: 1 }, { leaseMs: 30 });
      m.now = first.leaseExpiresAt! - 1;
      assert.ok(!(await reclaimNow(m.s)).has(fence.jobId), 'reclaimed before its lease ran out');
      assert.equal((await mustGet(m.s, fence.jobId)).status, 'running');
      const got = await expireAndReclaim(m, first);
      assert.deepEqual(got, { id: fence.jobId, type, queue: q, status: 'pending', attempt: 1, maxRetries: 1 });
      const row = await mustGet(m.s, fence.jobId);
      assert.equal(row.status, 'pending');
      assert.equal(row.attempt, 1, 'a reclaim consumes the attempt');
      assert.equal(row.leaseExpiresAt, null);
      assert.equal(row.completedAt, null);
      assert.ok(!(await reclaimNow(m.s)).has(fence.jobId), 'reclaimed twice');

      // Second run: attempt 2 > maxRetries 1 → failed, saying why.
      const second = await claimOne(m.s, q, fence.jobId, { leaseMs: 30 });
      assert.equal(second.attempt, 2);
      const got2 = await expireAndReclaim(m, second);
      assert.deepEqual(got2, { id: fence.jobId, type, queue: q, status: 'failed', attempt: 2, maxRetries: 1 });
      const failed = await mustGet(m.s, fence.jobId);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.lastError, LEASE_EXPIRED_FAILED);
      assert.equal(failed.completedAt, m.now, 'completed_at is the time of the reclaim');
      assert.equal(failed.leaseExpiresAt, null);
    });

    it('reclaims a run with no retries left straight to failed', async () => {
      const m = clock();
      const { row: claimed, fence } = await runningJob(m.s, { maxRetries: 0 }, { leaseMs: 30 });
      const got = await expireAndReclaim(m, claimed);
      assert.equal(got.status, 'failed');
      const row = await mustGet(m.s, fence.jobId);
      assert.equal(row.status, 'failed');
      assert.equal(row.lastError, LEASE_EXPIRED_FAILED);
    });

    it('a lease is held through the millisecond it ends and expires strictly after it', async () => {
      const m = clock();
      const { row: claimed, fence } = await runningJob(m.s, { maxRetries: 1 }, { leaseMs: 30 });
      assert.ok(claimed.leaseExpiresAt !== null);
      m.now = claimed.leaseExpiresAt;
      assert.ok(!(await reclaimNow(m.s)).has(fence.jobId), 'reclaimed at the very millisecond its lease ends');
      assert.equal((await mustGet(m.s, fence.jobId)).status, 'running');
      m.now = claimed.leaseExpiresAt + 1;
      assert.equal((await reclaimNow(m.s)).get(fence.jobId)?.status, 'pending', 'reclaimed one millisecond after its lease ended');
      assert.equal((await mustGet(m.s, fence.jobId)).lastError, LEASE_EXPIRED_RETRY);
    });

    it('reclaims only expired runs, at most limit per call', async () => {
      const m = clock();
      const s = m.s;
      const q = uniqueName('q');
      await s.jobInsertMany({ jobs: [0, 1, 2].map(() => jobInsert({ queue: q })) });
      const short = await claim(s, q, 3, { leaseMs: 30 });
      const live = await runningJob(s, {}, { leaseMs: 60_000 });
      m.now = Math.max(...short.map((r) => r.leaseExpiresAt!)) + 1;
      const seen = new Set<string>();
      for (let i = 0; i < 20 && seen.size < 3; i++) {
        const batch = await s.jobReclaimExpired({ limit: 2 });
        assert.ok(batch.length <= 2, `reclaimed ${batch.length} > limit 2`);
        for (const r of batch) {
          assert.notEqual(r.id, live.fence.jobId, 'a live lease was reclaimed');
          if (short.some((x) => x.id === r.id)) {
            assert.ok(!seen.has(r.id), 'reclaimed twice');
            seen.add(r.id);
          }
        }
      }
      assert.equal(seen.size, 3);
      assert.equal((await mustGet(s, live.fence.jobId)).status, 'running');
    });

    it('re-claim after a reclaim starts a fresh lease and heartbeat and bumps run_count', async () => {
      const m = clock();
      const q = uniqueName('q');
      const { row: first, fence } = await runningJob(m.s, { queue: q }, { workerId: 'a', leaseMs: 30 });
      await expireAndReclaim(m, first);
      m.now += 25;
      const second = await claimOne(m.s, q, fence.jobId, { workerId: 'b', leaseMs: 60_000 });
      assert.equal(second.runCount, 2);
      assert.equal(second.attempt, 2);
      assert.equal(second.lockedBy, 'b');
      assert.equal(second.startedAt, m.now, 'startedAt of the new run is the time of its claim');
      assert.equal(second.heartbeatAt, m.now, "the new run's heartbeat is its start, not the old run's");
      assert.equal(second.leaseExpiresAt, m.now + 60_000);
      assert.ok(second.heartbeatAt > first.leaseExpiresAt!, 'the new run started after the old lease expired');
    });

    it("turns every write of the old owner into a no-op after reclaim and re-claim by another worker", async () => {
      const m = clock();
      const s = m.s;
      const q = uniqueName('q');
      const { row, fence: stale } = await runningJob(s, { queue: q, maxRetries: 5 }, { workerId: 'worker-a', leaseMs: 30 });
      await s.signalSend({ jobId: stale.jobId, name: 'sig', payloadJson: '"buffered"' });
      await expireAndReclaim(m, row);
      const b = await claimOne(s, q, stale.jobId, { workerId: 'worker-b' });
      await assertZombieWritesAreNoOps(s, stale);
      // The new owner still holds the run and gets the signal the zombie could not consume.
      const fb = { jobId: b.id, workerId: 'worker-b', runCount: b.runCount };
      assert.deepEqual(await s.signalConsumeOrWait({ fence: fb, stepIndex: 0, stepName: 'wait', signalName: 'sig', deadlineAt: null }), {
        kind: 'consumed',
        payloadJson: '"buffered"',
      });
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fb, outcome: 'completed', resultJson: '"b"' }] })), [true]);
      assert.equal((await mustGet(s, b.id)).resultJson, '"b"');
    });

    it('fences by run count: the same worker re-claiming its job cannot write with the old run', async () => {
      const m = clock();
      const s = m.s;
      const q = uniqueName('q');
      const { row, fence: stale } = await runningJob(s, { queue: q }, { workerId: 'same', leaseMs: 30 });
      await expireAndReclaim(m, row);
      const again = await claimOne(s, q, stale.jobId, { workerId: 'same' });
      assert.equal(again.runCount, stale.runCount + 1);
      await assertZombieWritesAreNoOps(s, stale);
    });

    it('turns the writes of a run released at shutdown into no-ops', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      assert.deepEqual(await s.jobRelease({ runs: [fence] }), [fence.jobId]);
      const before = await mustGet(s, fence.jobId);
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: '1' }] })), [false]);
      assert.equal(await s.stepRecord({ fence, step: stepRow(fence.jobId, 0) }), false);
      assert.deepEqual(await mustGet(s, fence.jobId), before);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), []);
    });
  });
}
