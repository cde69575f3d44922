/**
 * SQLite driver: the storage operations of the one-shape storage layer, on a real database file
 * with an injected clock (so every time the driver stores can be asserted exactly):
 * `jobSuspendUntil`, `fanOutCollect`, `signalConsumeOrWait` with `timeoutMs`, the stored times
 * `jobFinishMany` returns, `stepRecordMany`, and the reclaim `last_error` wording.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { LEASE_EXPIRED_FAILED, LEASE_EXPIRED_RETRY, SIGNAL_WAIT_TIMED_OUT } from '../../src/storage/shared/contract-messages.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import type { Fence, JobRow } from '../../src/storage/storage.js';
import { claim, claimOne, fenceOf, insertJob, jobInsert, mustGet, newId, runningJob, stepRow, uniqueName } from '../helpers/factories.js';
import { removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';

const T0 = 1_700_000_000_000;

describe('sqlite: new storage operations', () => {
  let path: string;
  let storage: SqliteStorage;
  /** The injected clock's reading: the driver's "now". */
  let now: number;

  beforeEach(async () => {
    path = tempSqlitePath('sqlite-new-ops');
    now = T0;
    storage = new SqliteStorage(path, { clock: () => now });
    await storage.migrate();
  });

  afterEach(async () => {
    await storage.close();
    removeSqliteFiles(path);
  });

  /** Wakes the (due) job and claims it again; returns the new run's fence. */
  async function wakeAndReclaim(row: JobRow): Promise<Fence> {
    assert.deepEqual(await storage.jobWakeDue({ limit: 10 }), [row.id]);
    return fenceOf(await claimOne(storage, row.queue, row.id));
  }

  describe('jobSuspendUntil', () => {
    it('suspends until now + delayMs on the storage clock, recording the wake time once', async () => {
      const { row, fence } = await runningJob(storage);
      const res = await storage.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 5_000 });
      assert.deepEqual(res, { kind: 'suspended', wakeAt: T0 + 5_000 });
      const job = await mustGet(storage, row.id);
      assert.equal(job.status, 'waiting');
      assert.equal(job.wakeAt, T0 + 5_000);
      assert.equal(job.attempt, row.attempt - 1, 'the attempt is given back');
      assert.equal(job.lockedBy, null);
      assert.deepEqual(await storage.stepList({ jobId: row.id }), [
        stepRow(row.id, 0, { stepName: 'sleep', status: 'completed', outputJson: String(T0 + 5_000) }),
      ]);
    });

    it('replays with the recorded wake time: elapsed once it passed, the job stays running, nothing recorded again', async () => {
      const { row, fence } = await runningJob(storage);
      await storage.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 1_000 });
      now = T0 + 999;
      assert.deepEqual(await storage.jobWakeDue({ limit: 10 }), [], 'not due before its wake time');
      now = T0 + 1_000;
      const again = await wakeAndReclaim(row);
      const res = await storage.jobSuspendUntil({ fence: again, stepIndex: 0, stepName: 'sleep', recorded: true, wakeAt: T0 + 1_000 });
      assert.deepEqual(res, { kind: 'elapsed', wakeAt: T0 + 1_000 });
      const job = await mustGet(storage, row.id);
      assert.equal(job.status, 'running');
      assert.equal(job.lockedBy, again.workerId);
      assert.deepEqual(await storage.stepList({ jobId: row.id }), [
        stepRow(row.id, 0, { stepName: 'sleep', status: 'completed', outputJson: String(T0 + 1_000) }),
      ]);
    });

    it('a replay woken early suspends again until the recorded wake time, without recording', async () => {
      const { row, fence } = await runningJob(storage);
      const res = await storage.jobSuspendUntil({ fence, stepIndex: 3, stepName: 'until', recorded: true, wakeAt: T0 + 60_000 });
      assert.deepEqual(res, { kind: 'suspended', wakeAt: T0 + 60_000 });
      assert.equal((await mustGet(storage, row.id)).wakeAt, T0 + 60_000);
      assert.deepEqual(await storage.stepList({ jobId: row.id }), [], 'recorded: true writes no checkpoint');
    });

    it('a first sleepUntil already past records the step and returns elapsed', async () => {
      const { row, fence } = await runningJob(storage);
      const res = await storage.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'until', recorded: false, wakeAt: T0 - 1 });
      assert.deepEqual(res, { kind: 'elapsed', wakeAt: T0 - 1 });
      assert.equal((await mustGet(storage, row.id)).status, 'running');
      assert.equal((await storage.stepList({ jobId: row.id }))[0]?.outputJson, String(T0 - 1));
    });

    it('returns lost and writes nothing when the fence fails', async () => {
      const { row, fence } = await runningJob(storage);
      const res = await storage.jobSuspendUntil({ fence: { ...fence, runCount: fence.runCount + 1 }, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 5 });
      assert.deepEqual(res, { kind: 'lost' });
      assert.deepEqual(await mustGet(storage, row.id), row);
      assert.deepEqual(await storage.stepList({ jobId: row.id }), []);
    });
  });

  describe('fanOutCollect', () => {
    it('is undefined for a fan-out that does not exist', async () => {
      assert.equal(await storage.fanOutCollect({ id: newId() }), undefined);
    });

    it('expires a fan-out past its deadline in the same call, then reads it and its children in index order', async () => {
      const { row: parent, fence } = await runningJob(storage, { type: 'parent' });
      const fanOutId = newId();
      const kids = uniqueName('kids');
      // Ids sort against the index: index order must come from fan_out_index, not from the id.
      const children = ['z-child', 'm-child', 'a-child'].map((id, i) => jobInsert({ id: `${id}-${newId()}`, queue: kids, parentId: parent.id, fanOutId, fanOutIndex: i }));
      const ok = await storage.jobSuspendFanOut({
        fence,
        step: stepRow(parent.id, 0, { stepName: 'fan-out', outputJson: JSON.stringify(fanOutId) }),
        fanOut: { id: fanOutId, strategy: 'collect-all', threshold: null, timeoutMs: 10_000 },
        children,
      });
      assert.equal(ok, true);
      const claimed = await claim(storage, kids, 3);
      const first = claimed.find((c) => c.id === children[0]!.id);
      assert.ok(first);
      assert.deepEqual(await storage.jobFinishMany({ items: [{ ...fenceOf(first), outcome: 'completed', resultJson: '1' }] }), [T0]);

      now = T0 + 9_999;
      const before = await storage.fanOutCollect({ id: fanOutId });
      assert.equal(before?.fanOut.status, 'running', 'not expired before its deadline');
      assert.deepEqual(before?.children.map((c) => c.id), children.map((c) => c.id));

      now = T0 + 10_000;
      const collected = await storage.fanOutCollect({ id: fanOutId });
      assert.ok(collected);
      assert.equal(collected.fanOut.status, 'failed');
      assert.equal(collected.fanOut.decidedAt, T0 + 10_000);
      assert.deepEqual([collected.fanOut.succeeded, collected.fanOut.failed, collected.fanOut.cancelled], [1, 0, 2]);
      assert.deepEqual(collected.children.map((c) => c.id), children.map((c) => c.id));
      assert.deepEqual(collected.children.map((c) => c.status), ['completed', 'cancelled', 'cancelled']);
      assert.deepEqual(collected.children.map((c) => c.fanOutIndex), [0, 1, 2]);
      assert.equal((await mustGet(storage, parent.id)).status, 'pending', 'the parent is resumed by the expiry');
      assert.equal(await storage.fanOutExpire({ id: fanOutId }), false, 'the expiry happened once');
    });
  });

  describe('signalConsumeOrWait with timeoutMs', () => {
    it('fixes the deadline at now + timeoutMs in the transaction, stores it in the waiting step, and times out on replay', async () => {
      const { row, fence } = await runningJob(storage);
      const res = await storage.signalConsumeOrWait({ fence, stepIndex: 0, stepName: 'wait', signalName: 'go', deadlineAt: null, timeoutMs: 3_000 });
      assert.deepEqual(res, { kind: 'suspended' });
      const job = await mustGet(storage, row.id);
      assert.equal(job.status, 'waiting');
      assert.equal(job.wakeAt, T0 + 3_000);
      assert.equal(job.waitSignal, 'go');
      const [step] = await storage.stepList({ jobId: row.id });
      assert.deepEqual(step, stepRow(row.id, 0, { stepName: 'wait', status: 'waiting', outputJson: String(T0 + 3_000) }));

      now = T0 + 3_000;
      const again = await wakeAndReclaim(row);
      const deadlineAt = JSON.parse(step!.outputJson!) as number;
      const replay = await storage.signalConsumeOrWait({ fence: again, stepIndex: 0, stepName: 'wait', signalName: 'go', deadlineAt });
      assert.deepEqual(replay, { kind: 'timed-out' });
      assert.deepEqual(await storage.stepList({ jobId: row.id }), [
        stepRow(row.id, 0, { stepName: 'wait', status: 'failed', outputJson: null, error: SIGNAL_WAIT_TIMED_OUT }),
      ]);
    });

    it('consumes a buffered signal before looking at the timeout', async () => {
      const { row, fence } = await runningJob(storage);
      await storage.signalSend({ jobId: row.id, name: 'go', payloadJson: '{"x":1}' });
      const res = await storage.signalConsumeOrWait({ fence, stepIndex: 0, stepName: 'wait', signalName: 'go', deadlineAt: null, timeoutMs: 0 });
      assert.deepEqual(res, { kind: 'consumed', payloadJson: '{"x":1}' });
    });
  });

  describe('jobFinishMany', () => {
    it('returns per item the stored time: completed_at for completed and failed, the write time for retry, null for a lost fence', async () => {
      const a = await runningJob(storage);
      const b = await runningJob(storage);
      const c = await runningJob(storage);
      const d = await runningJob(storage);
      now = T0 + 42;
      const stored = await storage.jobFinishMany({
        items: [
          { ...a.fence, outcome: 'completed', resultJson: '"ok"' },
          { ...b.fence, outcome: 'failed', error: 'boom' },
          { ...c.fence, outcome: 'retry', error: 'again', delayMs: 100 },
          { ...d.fence, runCount: d.fence.runCount + 1, outcome: 'completed', resultJson: null },
        ],
      });
      assert.deepEqual(stored, [T0 + 42, T0 + 42, T0 + 42, null]);
      assert.equal((await mustGet(storage, a.row.id)).completedAt, stored[0]);
      assert.equal((await mustGet(storage, b.row.id)).completedAt, stored[1]);
      const retried = await mustGet(storage, c.row.id);
      assert.equal(retried.status, 'pending');
      assert.equal(retried.runAt, T0 + 42 + 100);
      assert.equal((await mustGet(storage, d.row.id)).status, 'running', 'the lost item wrote nothing');
    });
  });

  describe('stepRecordMany', () => {
    it('records each item fenced, in one call, keeping finished rows', async () => {
      const { row, fence } = await runningJob(storage);
      const other = await runningJob(storage);
      const done = stepRow(row.id, 0, { outputJson: '"first"' });
      assert.equal(await storage.stepRecord({ fence, step: done }), true);
      const res = await storage.stepRecordMany({
        items: [
          { fence, step: stepRow(row.id, 1, { outputJson: '1' }) },
          { fence, step: stepRow(row.id, 0, { outputJson: '"second"' }) },
          { fence: { ...other.fence, runCount: other.fence.runCount + 1 }, step: stepRow(other.row.id, 0) },
          { fence: other.fence, step: stepRow(other.row.id, 0, { status: 'waiting', outputJson: 'null' }) },
          { fence: other.fence, step: stepRow(other.row.id, 0, { outputJson: '"replaces waiting"' }) },
        ],
      });
      assert.deepEqual(res, [true, false, false, true, true]);
      assert.deepEqual(await storage.stepList({ jobId: row.id }), [done, stepRow(row.id, 1, { outputJson: '1' })]);
      assert.deepEqual(await storage.stepList({ jobId: other.row.id }), [stepRow(other.row.id, 0, { outputJson: '"replaces waiting"' })]);
    });
  });

  describe('jobReclaimExpired', () => {
    it('writes the shared last_error wording: the retry one back to pending, the failed one when attempts are spent', async () => {
      const queue = uniqueName('q');
      const id = await insertJob(storage, { queue, maxRetries: 1 });
      await claimOne(storage, queue, id, { leaseMs: 1_000 });
      now = T0 + 1_001;
      const first = await storage.jobReclaimExpired({ limit: 10 });
      assert.deepEqual(first.map((r) => [r.id, r.status]), [[id, 'pending']]);
      const pending = await mustGet(storage, id);
      assert.equal(pending.lastError, LEASE_EXPIRED_RETRY);
      assert.equal(pending.completedAt, null);

      await claimOne(storage, queue, id, { leaseMs: 1_000 });
      now = T0 + 2_002;
      const second = await storage.jobReclaimExpired({ limit: 10 });
      assert.deepEqual(second.map((r) => [r.id, r.status, r.attempt]), [[id, 'failed', 2]]);
      const failed = await mustGet(storage, id);
      assert.equal(failed.lastError, LEASE_EXPIRED_FAILED);
      assert.equal(failed.completedAt, T0 + 2_002);
    });
  });
});
