/**
 * PostgreSQL driver: the storage operations of the one-shape storage layer, on a real server and
 * its clock: `jobSuspendUntil`, `fanOutCollect`, `signalConsumeOrWait` with `timeoutMs`, the
 * stored times `jobFinishMany` returns, `stepRecordMany`, and the reclaim `last_error` wording.
 * Times the database fixed are checked against the database clock read around the call.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LEASE_EXPIRED_FAILED, LEASE_EXPIRED_RETRY, SIGNAL_WAIT_TIMED_OUT } from '../../src/storage/shared/contract-messages.js';
import type { Fence, JobRow, Storage } from '../../src/storage/storage.js';
import {
  assertBetween,
  claim,
  claimChildren,
  claimOne,
  fanOutParent,
  fenceOf,
  insertJob,
  mustGet,
  newId,
  reclaimUntil,
  runningJob,
  stepRow,
  waitForClockPast,
  wakeUntil,
} from '../helpers/factories.js';
import { makePostgresStorage } from '../helpers/postgres-storage.js';
import type { TestStorage } from '../helpers/storages.js';

describe('postgres: new storage operations', () => {
  let ts: TestStorage;
  let s: Storage;
  before(async () => {
    ts = await makePostgresStorage('pg-new-ops');
    s = ts.storage;
  });
  after(async () => ts.cleanup());

  /** Wakes the (due) job and claims it again; returns the new run's fence. */
  async function wakeAndReclaim(row: JobRow): Promise<Fence> {
    await wakeUntil(s, [row.id]);
    return fenceOf(await claimOne(s, row.queue, row.id));
  }

  describe('jobSuspendUntil', () => {
    it('suspends until the database now + delayMs, recording that wake time as the checkpoint', async () => {
      const { row, fence } = await runningJob(s);
      const lo = await s.clockNow();
      const res = await s.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 60_000 });
      const hi = await s.clockNow();
      assert.equal(res.kind, 'suspended');
      const wakeAt = (res as { wakeAt: number }).wakeAt;
      assertBetween(wakeAt, lo + 60_000, hi + 60_000, 'wake time');
      const job = await mustGet(s, row.id);
      assert.equal(job.status, 'waiting');
      assert.equal(job.wakeAt, wakeAt);
      assert.equal(job.attempt, row.attempt - 1, 'the attempt is given back');
      assert.equal(job.lockedBy, null);
      assert.equal(job.leaseExpiresAt, null);
      assert.deepEqual(await s.stepList({ jobId: row.id }), [stepRow(row.id, 0, { stepName: 'sleep', status: 'completed', outputJson: String(wakeAt) })]);
    });

    it('replays with the recorded wake time: elapsed once it passed, the job keeps running, nothing recorded again', async () => {
      const { row, fence } = await runningJob(s);
      const first = await s.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 30 });
      assert.equal(first.kind, 'suspended');
      const wakeAt = (first as { wakeAt: number }).wakeAt;
      const again = await wakeAndReclaim(row);
      const res = await s.jobSuspendUntil({ fence: again, stepIndex: 0, stepName: 'sleep', recorded: true, wakeAt });
      assert.deepEqual(res, { kind: 'elapsed', wakeAt });
      const job = await mustGet(s, row.id);
      assert.equal(job.status, 'running');
      assert.equal(job.lockedBy, again.workerId);
      assert.equal(job.runCount, again.runCount);
      assert.deepEqual(await s.stepList({ jobId: row.id }), [stepRow(row.id, 0, { stepName: 'sleep', status: 'completed', outputJson: String(wakeAt) })]);
    });

    it('a replay before the recorded wake time suspends again until it, without recording', async () => {
      const { row, fence } = await runningJob(s);
      const wakeAt = (await s.clockNow()) + 120_000;
      assert.deepEqual(await s.jobSuspendUntil({ fence, stepIndex: 3, stepName: 'until', recorded: true, wakeAt }), { kind: 'suspended', wakeAt });
      const job = await mustGet(s, row.id);
      assert.equal(job.status, 'waiting');
      assert.equal(job.wakeAt, wakeAt);
      assert.deepEqual(await s.stepList({ jobId: row.id }), [], 'recorded: true writes no checkpoint');
    });

    it('a first sleepUntil already past records the checkpoint and returns elapsed', async () => {
      const { row, fence } = await runningJob(s);
      const wakeAt = (await s.clockNow()) - 1;
      assert.deepEqual(await s.jobSuspendUntil({ fence, stepIndex: 1, stepName: 'until', recorded: false, wakeAt }), { kind: 'elapsed', wakeAt });
      const job = await mustGet(s, row.id);
      assert.equal(job.status, 'running');
      assert.equal(job.attempt, row.attempt, 'an elapsed timer keeps the attempt');
      assert.deepEqual(await s.stepList({ jobId: row.id }), [stepRow(row.id, 1, { stepName: 'until', status: 'completed', outputJson: String(wakeAt) })]);
    });

    it('keeps a finished checkpoint already at that index', async () => {
      const { row, fence } = await runningJob(s);
      assert.equal(await s.stepRecord({ fence, step: stepRow(row.id, 0, { stepName: 'other', outputJson: '"x"' }) }), true);
      const res = await s.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 60_000 });
      assert.equal(res.kind, 'suspended');
      assert.deepEqual(await s.stepList({ jobId: row.id }), [stepRow(row.id, 0, { stepName: 'other', outputJson: '"x"' })]);
    });

    it('returns lost and writes nothing when the fence fails', async () => {
      const { row, fence } = await runningJob(s);
      const res = await s.jobSuspendUntil({ fence: { ...fence, runCount: fence.runCount + 1 }, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 5 });
      assert.deepEqual(res, { kind: 'lost' });
      assert.deepEqual(await mustGet(s, row.id), row);
      assert.deepEqual(await s.stepList({ jobId: row.id }), []);
    });
  });

  describe('fanOutCollect', () => {
    it('is undefined for a fan-out that does not exist', async () => {
      assert.equal(await s.fanOutCollect({ id: newId() }), undefined);
    });

    it('reads a running fan-out and its children in index order, changing nothing', async () => {
      const fo = await fanOutParent(s, { n: 3, strategy: 'collect-all', timeoutMs: 600_000 });
      const collected = await s.fanOutCollect({ id: fo.fanOutId });
      assert.ok(collected);
      assert.equal(collected.fanOut.status, 'running');
      assert.deepEqual(await s.fanOutGet({ id: fo.fanOutId }), collected.fanOut);
      assert.deepEqual(
        collected.children.map((c) => [c.id, c.fanOutIndex, c.status]),
        fo.childIds.map((id, i) => [id, i, 'pending']),
      );
      assert.deepEqual(collected.children, await Promise.all(fo.childIds.map((id) => mustGet(s, id))));
      assert.equal((await mustGet(s, fo.parentId)).status, 'waiting');
    });

    it('collects a fan-out without children (decided at creation) with an empty child list', async () => {
      const fo = await fanOutParent(s, { n: 0, strategy: 'fail-fast' });
      const collected = await s.fanOutCollect({ id: fo.fanOutId });
      assert.equal(collected?.fanOut.status, 'succeeded');
      assert.deepEqual(collected?.children, []);
    });

    it('expires a fan-out past its deadline in the same call, then reads it and its children', async () => {
      const fo = await fanOutParent(s, { n: 3, strategy: 'collect-all', timeoutMs: 40 });
      const [first] = await claimChildren(s, fo);
      const stored = await s.jobFinishMany({ items: [{ ...first!, outcome: 'completed', resultJson: '1' }] });
      assert.ok(stored[0] !== null);
      const deadline = (await s.fanOutGet({ id: fo.fanOutId }))!.deadlineAt!;
      await waitForClockPast(s, deadline);
      const collected = await s.fanOutCollect({ id: fo.fanOutId });
      const hi = await s.clockNow();
      assert.ok(collected);
      assert.equal(collected.fanOut.status, 'failed');
      assertBetween(collected.fanOut.decidedAt, deadline, hi, 'decided_at');
      assert.deepEqual([collected.fanOut.succeeded, collected.fanOut.failed, collected.fanOut.cancelled], [1, 0, 2]);
      assert.deepEqual(collected.children.map((c) => c.id), fo.childIds);
      assert.deepEqual(collected.children.map((c) => c.status), ['completed', 'cancelled', 'cancelled']);
      assert.equal((await mustGet(s, fo.parentId)).status, 'pending', 'the parent is resumed by the expiry');
      assert.equal(await s.fanOutExpire({ id: fo.fanOutId }), false, 'the expiry happened once');
    });
  });

  describe('signalConsumeOrWait with timeoutMs', () => {
    it('fixes the deadline at the database now + timeoutMs, stores it in the waiting step, and times out on replay', async () => {
      const { row, fence } = await runningJob(s);
      const lo = await s.clockNow();
      const res = await s.signalConsumeOrWait({ fence, stepIndex: 0, stepName: 'wait', signalName: 'go', deadlineAt: null, timeoutMs: 50 });
      const hi = await s.clockNow();
      assert.deepEqual(res, { kind: 'suspended' });
      const job = await mustGet(s, row.id);
      assert.equal(job.status, 'waiting');
      assert.equal(job.waitSignal, 'go');
      assertBetween(job.wakeAt, lo + 50, hi + 50, 'deadline');
      const [step] = await s.stepList({ jobId: row.id });
      assert.deepEqual(step, stepRow(row.id, 0, { stepName: 'wait', status: 'waiting', outputJson: String(job.wakeAt) }));

      // The replay passes the stored deadline back; once it passed, the wait times out.
      const again = await wakeAndReclaim(row);
      const deadlineAt = JSON.parse(step!.outputJson!) as number;
      assert.deepEqual(await s.signalConsumeOrWait({ fence: again, stepIndex: 0, stepName: 'wait', signalName: 'go', deadlineAt }), { kind: 'timed-out' });
      assert.deepEqual(await s.stepList({ jobId: row.id }), [stepRow(row.id, 0, { stepName: 'wait', status: 'failed', outputJson: null, error: SIGNAL_WAIT_TIMED_OUT })]);
      assert.equal((await mustGet(s, row.id)).status, 'running');
    });

    it('a timeout of 0 times out at once; a buffered signal is consumed first', async () => {
      const a = await runningJob(s);
      assert.deepEqual(await s.signalConsumeOrWait({ fence: a.fence, stepIndex: 0, stepName: 'w', signalName: 'go', deadlineAt: null, timeoutMs: 0 }), { kind: 'timed-out' });
      const b = await runningJob(s);
      await s.signalSend({ jobId: b.row.id, name: 'go', payloadJson: '{"n":1}' });
      assert.deepEqual(await s.signalConsumeOrWait({ fence: b.fence, stepIndex: 0, stepName: 'w', signalName: 'go', deadlineAt: null, timeoutMs: 0 }), {
        kind: 'consumed',
        payloadJson: '{"n":1}',
      });
    });

    it('returns lost and writes nothing when the fence fails', async () => {
      const { row, fence } = await runningJob(s);
      const res = await s.signalConsumeOrWait({ fence: { ...fence, workerId: 'someone-else' }, stepIndex: 0, stepName: 'w', signalName: 'go', deadlineAt: null, timeoutMs: 1_000 });
      assert.deepEqual(res, { kind: 'lost' });
      assert.deepEqual(await mustGet(s, row.id), row);
      assert.deepEqual(await s.stepList({ jobId: row.id }), []);
    });
  });

  describe('jobFinishMany stored times', () => {
    it('returns per item the completed_at written (completed, failed), the write time (retry), null when fenced out', async () => {
      const done = await runningJob(s);
      const failed = await runningJob(s, { maxRetries: 0 });
      const retried = await runningJob(s, { maxRetries: 3 });
      const lost = await runningJob(s);
      const lo = await s.clockNow();
      const stored = await s.jobFinishMany({
        items: [
          { ...done.fence, outcome: 'completed', resultJson: '"ok"' },
          { ...failed.fence, outcome: 'failed', error: 'boom' },
          { ...retried.fence, outcome: 'retry', error: 'again', delayMs: 0 },
          { ...lost.fence, runCount: lost.fence.runCount + 1, outcome: 'completed', resultJson: null },
        ],
      });
      const hi = await s.clockNow();
      assert.equal(stored.length, 4);
      assert.equal(stored[0], (await mustGet(s, done.row.id)).completedAt);
      assert.equal(stored[1], (await mustGet(s, failed.row.id)).completedAt);
      assertBetween(stored[2]!, lo, hi, 'retry write time');
      assert.equal((await mustGet(s, retried.row.id)).status, 'pending');
      assert.equal(stored[3], null);
      assert.equal((await mustGet(s, lost.row.id)).status, 'running');
    });

    it('the all-completed fast path returns the completed_at of each row', async () => {
      const jobs = await Promise.all([runningJob(s), runningJob(s), runningJob(s)]);
      const stored = await s.jobFinishMany({ items: jobs.map((j) => ({ ...j.fence, outcome: 'completed' as const, resultJson: '1' })) });
      for (const [i, j] of jobs.entries()) {
        const row = await mustGet(s, j.row.id);
        assert.equal(row.status, 'completed');
        assert.equal(stored[i], row.completedAt);
      }
    });

    it('a fan-out child finished with accounting returns the completed_at the accounting transaction wrote', async () => {
      const fo = await fanOutParent(s, { n: 2, strategy: 'fail-fast' });
      const [a, b] = await claimChildren(s, fo);
      const stored = await s.jobFinishMany({
        items: [
          { ...a!, outcome: 'completed', resultJson: '1' },
          { ...b!, outcome: 'failed', error: 'no' },
        ],
      });
      assert.equal(stored[0], (await mustGet(s, fo.childIds[0]!)).completedAt);
      assert.equal(stored[1], (await mustGet(s, fo.childIds[1]!)).completedAt);
      assert.equal((await s.fanOutGet({ id: fo.fanOutId }))?.status, 'failed');
    });
  });

  describe('stepRecordMany', () => {
    it('records fenced checkpoints in one call: per item applied, a fenced-out item and a finished row left alone', async () => {
      const a = await runningJob(s);
      const b = await runningJob(s);
      assert.equal(await s.stepRecord({ fence: b.fence, step: stepRow(b.row.id, 1, { outputJson: '"first"' }) }), true);
      const res = await s.stepRecordMany({
        items: [
          { fence: a.fence, step: stepRow(a.row.id, 0, { outputJson: '"a0"' }) },
          { fence: a.fence, step: stepRow(a.row.id, 1, { status: 'waiting', outputJson: 'null' }) },
          { fence: { ...b.fence, runCount: b.fence.runCount + 1 }, step: stepRow(b.row.id, 0, { outputJson: '"lost"' }) },
          { fence: b.fence, step: stepRow(b.row.id, 1, { outputJson: '"second"' }) },
        ],
      });
      assert.deepEqual(res, [true, true, false, false]);
      assert.deepEqual(await s.stepList({ jobId: a.row.id }), [
        stepRow(a.row.id, 0, { outputJson: '"a0"' }),
        stepRow(a.row.id, 1, { status: 'waiting', outputJson: 'null' }),
      ]);
      assert.deepEqual(await s.stepList({ jobId: b.row.id }), [stepRow(b.row.id, 1, { outputJson: '"first"' })]);
      // A waiting checkpoint is replaced by a finished one.
      assert.deepEqual(await s.stepRecordMany({ items: [{ fence: a.fence, step: stepRow(a.row.id, 1, { outputJson: '"done"' }) }] }), [true]);
      assert.equal((await s.stepList({ jobId: a.row.id }))[1]?.outputJson, '"done"');
    });

    it('items repeating a (job, step index) pair apply in order: the first finished one is kept', async () => {
      const a = await runningJob(s);
      const res = await s.stepRecordMany({
        items: [
          { fence: a.fence, step: stepRow(a.row.id, 0, { outputJson: '"one"' }) },
          { fence: a.fence, step: stepRow(a.row.id, 0, { outputJson: '"two"' }) },
        ],
      });
      assert.deepEqual(res, [true, false]);
      assert.deepEqual(await s.stepList({ jobId: a.row.id }), [stepRow(a.row.id, 0, { outputJson: '"one"' })]);
    });
  });

  describe('reclaim last_error', () => {
    it('a reclaim to pending writes LEASE_EXPIRED_RETRY; one with no attempts left fails with LEASE_EXPIRED_FAILED', async () => {
      const q = `q-${newId()}`;
      const id = await insertJob(s, { queue: q, maxRetries: 1 });
      await claim(s, q, 1, { leaseMs: 1 });
      const first = await reclaimUntil(s, [id]);
      assert.equal(first.get(id)?.status, 'pending');
      let job = await mustGet(s, id);
      assert.equal(job.status, 'pending');
      assert.equal(job.lastError, LEASE_EXPIRED_RETRY);
      assert.equal(job.completedAt, null);

      await claim(s, q, 1, { leaseMs: 1 });
      const second = await reclaimUntil(s, [id]);
      assert.equal(second.get(id)?.status, 'failed');
      job = await mustGet(s, id);
      assert.equal(job.status, 'failed');
      assert.equal(job.lastError, LEASE_EXPIRED_FAILED);
      assert.ok(job.completedAt !== null);
    });
  });
});
