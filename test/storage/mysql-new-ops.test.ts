/**
 * MySQL/MariaDB driver: the storage operations of the one-shape storage layer on a real server.
 * An injected clock makes every stored time exact (`jobSuspendUntil`, `fanOutCollect`,
 * `signalConsumeOrWait` with `timeoutMs`, the times `jobFinishMany` returns, `stepRecordMany`,
 * the reclaim `last_error` wording); a second storage on the database clock checks that the
 * same times come from the server's clock, fixed inside the transaction.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LEASE_EXPIRED_FAILED, LEASE_EXPIRED_RETRY, SIGNAL_WAIT_TIMED_OUT } from '../../src/storage/shared/contract-messages.js';
import { MysqlStorage } from '../../src/storage/mysql/mysql-storage.js';
import type { Fence, JobRow, StepRecordParams } from '../../src/storage/storage.js';
import {
  claim,
  claimChildren,
  claimOne,
  fanOutParent,
  fenceOf,
  insertJob,
  jobInsert,
  mustGet,
  newId,
  runningJob,
  stepRow,
  uniqueName,
  waitForClockPast,
} from '../helpers/factories.js';
import { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';

const T0 = 1_700_000_000_000;

describe('mysql: new storage operations', () => {
  let db = '';
  /** On the injected clock `now`. */
  let storage: MysqlStorage;
  /** The same database on the server's clock. */
  let dbClock: MysqlStorage;
  /** The injected clock's reading: `storage`'s "now". */
  let now = T0;

  before(async () => {
    db = await createTestDatabase('mysql-new-ops');
    storage = new MysqlStorage(mysqlDatabaseUrl(db), { clock: () => now });
    dbClock = new MysqlStorage(mysqlDatabaseUrl(db));
    await storage.migrate();
  });

  after(async () => {
    await storage?.close();
    await dbClock?.close();
    if (db) await dropTestDatabase(db);
  });

  /** Wakes the (due) job and claims it again; returns the new run's fence. */
  async function wakeAndReclaim(row: JobRow): Promise<Fence> {
    assert.ok((await storage.jobWakeDue({ limit: 100 })).includes(row.id), `${row.id} is woken`);
    return fenceOf(await claimOne(storage, row.queue, row.id));
  }

  describe('jobSuspendUntil', () => {
    it('suspends until now + delayMs, recording the wake time; a replay after it passed is elapsed and records nothing', async () => {
      now = T0;
      const { row, fence } = await runningJob(storage);
      const res = await storage.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 5_000 });
      assert.deepEqual(res, { kind: 'suspended', wakeAt: T0 + 5_000 });
      const job = await mustGet(storage, row.id);
      assert.deepEqual([job.status, job.wakeAt, job.attempt, job.lockedBy], ['waiting', T0 + 5_000, row.attempt - 1, null]);
      const recorded = [stepRow(row.id, 0, { stepName: 'sleep', status: 'completed', outputJson: String(T0 + 5_000) })];
      assert.deepEqual(await storage.stepList({ jobId: row.id }), recorded);

      now = T0 + 5_000;
      const again = await wakeAndReclaim(row);
      const replay = await storage.jobSuspendUntil({ fence: again, stepIndex: 0, stepName: 'sleep', recorded: true, wakeAt: T0 + 5_000 });
      assert.deepEqual(replay, { kind: 'elapsed', wakeAt: T0 + 5_000 });
      const running = await mustGet(storage, row.id);
      assert.deepEqual([running.status, running.lockedBy], ['running', again.workerId]);
      assert.deepEqual(await storage.stepList({ jobId: row.id }), recorded);
    });

    it('a replay woken early suspends again until the recorded wake time without recording; a past sleepUntil is elapsed', async () => {
      now = T0;
      const { row, fence } = await runningJob(storage);
      const res = await storage.jobSuspendUntil({ fence, stepIndex: 3, stepName: 'until', recorded: true, wakeAt: T0 + 60_000 });
      assert.deepEqual(res, { kind: 'suspended', wakeAt: T0 + 60_000 });
      assert.equal((await mustGet(storage, row.id)).wakeAt, T0 + 60_000);
      assert.deepEqual(await storage.stepList({ jobId: row.id }), []);

      const past = await runningJob(storage);
      const elapsed = await storage.jobSuspendUntil({ fence: past.fence, stepIndex: 0, stepName: 'until', recorded: false, wakeAt: T0 - 1 });
      assert.deepEqual(elapsed, { kind: 'elapsed', wakeAt: T0 - 1 });
      assert.equal((await mustGet(storage, past.row.id)).status, 'running');
      assert.equal((await storage.stepList({ jobId: past.row.id }))[0]?.outputJson, String(T0 - 1));
    });

    it('returns lost and writes nothing when the fence fails', async () => {
      now = T0;
      const { row, fence } = await runningJob(storage);
      const res = await storage.jobSuspendUntil({ fence: { ...fence, runCount: fence.runCount + 1 }, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 5 });
      assert.deepEqual(res, { kind: 'lost' });
      assert.deepEqual(await mustGet(storage, row.id), row);
      assert.deepEqual(await storage.stepList({ jobId: row.id }), []);
    });

    it('on the database clock, the wake time is the server now + delayMs of the transaction', async () => {
      const { row, fence } = await runningJob(dbClock);
      const lo = await dbClock.clockNow();
      const res = await dbClock.jobSuspendUntil({ fence, stepIndex: 0, stepName: 'sleep', recorded: false, delayMs: 60_000 });
      const hi = await dbClock.clockNow();
      assert.equal(res.kind, 'suspended');
      const wakeAt = res.kind === 'suspended' ? res.wakeAt : NaN;
      assert.ok(wakeAt >= lo + 60_000 && wakeAt <= hi + 60_000, `wake time ${wakeAt} within [${lo + 60_000}, ${hi + 60_000}]`);
      assert.equal((await mustGet(dbClock, row.id)).wakeAt, wakeAt);
      assert.equal((await dbClock.stepList({ jobId: row.id }))[0]?.outputJson, String(wakeAt));
    });
  });

  describe('fanOutCollect', () => {
    it('is undefined for a fan-out that does not exist', async () => {
      assert.equal(await storage.fanOutCollect({ id: newId() }), undefined);
    });

    it('reads a fan-out without children', async () => {
      now = T0;
      const { row, fence } = await runningJob(storage);
      const fanOutId = newId();
      const step = stepRow(row.id, 0, { stepName: 'fan-out', outputJson: JSON.stringify(fanOutId) });
      assert.equal(await storage.jobSuspendFanOut({ fence, step, fanOut: { id: fanOutId, strategy: 'collect-all', threshold: null, timeoutMs: null }, children: [] }), true);
      const collected = await storage.fanOutCollect({ id: fanOutId });
      assert.deepEqual([collected?.fanOut.id, collected?.fanOut.status, collected?.fanOut.total, collected?.children], [fanOutId, 'succeeded', 0, []]);
    });

    it('expires a fan-out past its deadline in the same call, then reads it and its children in index order', async () => {
      now = T0;
      const { row: parent, fence } = await runningJob(storage, { type: 'parent' });
      const fanOutId = newId();
      const kids = uniqueName('kids');
      // Ids sort against the index: index order must come from fan_out_index, not from the id.
      const children = ['z-child', 'm-child', 'a-child'].map((id, i) => jobInsert({ id: `${id}-${newId()}`, queue: kids, parentId: parent.id, fanOutId, fanOutIndex: i }));
      const step = stepRow(parent.id, 0, { stepName: 'fan-out', outputJson: JSON.stringify(fanOutId) });
      assert.equal(await storage.jobSuspendFanOut({ fence, step, fanOut: { id: fanOutId, strategy: 'collect-all', threshold: null, timeoutMs: 10_000 }, children }), true);
      const first = (await claim(storage, kids, 3)).find((c) => c.id === children[0]!.id);
      assert.ok(first);
      assert.deepEqual(await storage.jobFinishMany({ items: [{ ...fenceOf(first), outcome: 'completed', resultJson: '1' }] }), [T0]);

      now = T0 + 9_999;
      const before = await storage.fanOutCollect({ id: fanOutId });
      assert.equal(before?.fanOut.status, 'running', 'not expired before its deadline');
      assert.equal(before?.fanOut.deadlineAt, T0 + 10_000);
      assert.deepEqual(before?.children.map((c) => c.id), children.map((c) => c.id));

      now = T0 + 10_000;
      const collected = await storage.fanOutCollect({ id: fanOutId });
      assert.ok(collected);
      assert.deepEqual([collected.fanOut.status, collected.fanOut.decidedAt], ['failed', T0 + 10_000]);
      assert.deepEqual([collected.fanOut.succeeded, collected.fanOut.failed, collected.fanOut.cancelled], [1, 0, 2]);
      assert.deepEqual(collected.children.map((c) => [c.id, c.status, c.fanOutIndex]), children.map((c, i) => [c.id, i === 0 ? 'completed' : 'cancelled', i]));
      assert.deepEqual(collected.children, await Promise.all(children.map((c) => mustGet(storage, c.id))), 'children are whole job rows');
      assert.equal((await mustGet(storage, parent.id)).status, 'pending', 'the parent is resumed by the expiry');
      assert.equal(await storage.fanOutExpire({ id: fanOutId }), false, 'the expiry happened once');
    });

    it('on the database clock, expires once the server clock passes the deadline', async () => {
      const setup = await fanOutParent(dbClock, { n: 2, strategy: 'collect-all', timeoutMs: 50 });
      await claimChildren(dbClock, setup);
      const deadlineAt = (await dbClock.fanOutGet({ id: setup.fanOutId }))?.deadlineAt;
      assert.ok(typeof deadlineAt === 'number');
      await waitForClockPast(dbClock, deadlineAt);
      const collected = await dbClock.fanOutCollect({ id: setup.fanOutId });
      assert.equal(collected?.fanOut.status, 'failed');
      assert.ok((collected?.fanOut.decidedAt ?? 0) >= deadlineAt);
      assert.deepEqual(collected?.children.map((c) => c.status), ['cancelled', 'cancelled']);
    });
  });

  describe('signalConsumeOrWait with timeoutMs', () => {
    it('fixes the deadline at now + timeoutMs, stores it in the waiting step, and times out on replay', async () => {
      now = T0;
      const { row, fence } = await runningJob(storage);
      const res = await storage.signalConsumeOrWait({ fence, stepIndex: 0, stepName: 'wait', signalName: 'go', deadlineAt: null, timeoutMs: 3_000 });
      assert.deepEqual(res, { kind: 'suspended' });
      const job = await mustGet(storage, row.id);
      assert.deepEqual([job.status, job.wakeAt, job.waitSignal], ['waiting', T0 + 3_000, 'go']);
      const [step] = await storage.stepList({ jobId: row.id });
      assert.deepEqual(step, stepRow(row.id, 0, { stepName: 'wait', status: 'waiting', outputJson: String(T0 + 3_000) }));

      now = T0 + 3_000;
      const again = await wakeAndReclaim(row);
      const replay = await storage.signalConsumeOrWait({ fence: again, stepIndex: 0, stepName: 'wait', signalName: 'go', deadlineAt: JSON.parse(step!.outputJson!) as number });
      assert.deepEqual(replay, { kind: 'timed-out' });
      assert.deepEqual(await storage.stepList({ jobId: row.id }), [stepRow(row.id, 0, { stepName: 'wait', status: 'failed', outputJson: null, error: SIGNAL_WAIT_TIMED_OUT })]);
    });

    it('on the database clock, the deadline is the server now + timeoutMs of the transaction', async () => {
      const { row, fence } = await runningJob(dbClock);
      const lo = await dbClock.clockNow();
      const res = await dbClock.signalConsumeOrWait({ fence, stepIndex: 0, stepName: 'wait', signalName: 'go', deadlineAt: null, timeoutMs: 60_000 });
      const hi = await dbClock.clockNow();
      assert.deepEqual(res, { kind: 'suspended' });
      const job = await mustGet(dbClock, row.id);
      const deadline = job.wakeAt ?? NaN;
      assert.ok(deadline >= lo + 60_000 && deadline <= hi + 60_000, `deadline ${deadline} within [${lo + 60_000}, ${hi + 60_000}]`);
      assert.equal((await dbClock.stepList({ jobId: row.id }))[0]?.outputJson, String(deadline));
    });

    it('consumes a buffered signal before looking at the timeout; a zero timeout with none buffered times out', async () => {
      const { row, fence } = await runningJob(dbClock);
      await dbClock.signalSend({ jobId: row.id, name: 'go', payloadJson: '{"x":1}' });
      assert.deepEqual(await dbClock.signalConsumeOrWait({ fence, stepIndex: 0, stepName: 'wait', signalName: 'go', deadlineAt: null, timeoutMs: 0 }), {
        kind: 'consumed',
        payloadJson: '{"x":1}',
      });
      assert.deepEqual(await dbClock.signalConsumeOrWait({ fence, stepIndex: 1, stepName: 'wait', signalName: 'go', deadlineAt: null, timeoutMs: 0 }), { kind: 'timed-out' });
    });
  });

  describe('jobFinishMany', () => {
    it('returns per item the stored time: completed_at for completed and failed, the write time for retry, null for a lost fence', async () => {
      now = T0;
      const [a, b, c, d] = [await runningJob(storage), await runningJob(storage), await runningJob(storage), await runningJob(storage)];
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
      assert.equal((await mustGet(storage, a.row.id)).completedAt, T0 + 42);
      assert.equal((await mustGet(storage, b.row.id)).completedAt, T0 + 42);
      const retried = await mustGet(storage, c.row.id);
      assert.deepEqual([retried.status, retried.runAt, retried.completedAt], ['pending', T0 + 42 + 100, null]);
      assert.equal((await mustGet(storage, d.row.id)).status, 'running', 'the lost item wrote nothing');
    });

    it('on the database clock, the returned time is the completed_at the row holds, on both finish paths', async () => {
      const plain = await runningJob(dbClock);
      const [plainAt] = await dbClock.jobFinishMany({ items: [{ ...plain.fence, outcome: 'completed', resultJson: '1' }] });
      assert.ok(typeof plainAt === 'number');
      assert.equal((await mustGet(dbClock, plain.row.id)).completedAt, plainAt);
      // A fan-out child's outcome takes the ordered path (fan-outs locked first).
      const setup = await fanOutParent(dbClock, { n: 2, strategy: 'collect-all' });
      const [f0, f1] = await claimChildren(dbClock, setup);
      const stored = await dbClock.jobFinishMany({
        items: [
          { ...f0!, outcome: 'failed', error: 'boom' },
          { ...f1!, outcome: 'retry', error: 'again', delayMs: 0 },
        ],
      });
      assert.ok(typeof stored[0] === 'number' && stored[1] === stored[0]);
      assert.equal((await mustGet(dbClock, f0!.jobId)).completedAt, stored[0]);
      assert.equal((await mustGet(dbClock, f1!.jobId)).runAt, stored[1], 'a retry with no delay runs at the write time');
      assert.equal((await dbClock.fanOutGet({ id: setup.fanOutId }))?.failed, 1);
    });
  });

  describe('stepRecordMany', () => {
    it('records each item fenced, in one call, keeping finished rows and replacing waiting ones in item order', async () => {
      now = T0;
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
          { fence: other.fence, step: stepRow(other.row.id, 0, { stepName: 'renamed', outputJson: '"replaces waiting"' }) },
          { fence: other.fence, step: stepRow(other.row.id, 0, { outputJson: '"too late"' }) },
        ],
      });
      assert.deepEqual(res, [true, false, false, true, true, false]);
      assert.deepEqual(await storage.stepList({ jobId: row.id }), [done, stepRow(row.id, 1, { outputJson: '1' })]);
      assert.deepEqual(await storage.stepList({ jobId: other.row.id }), [stepRow(other.row.id, 0, { stepName: 'renamed', outputJson: '"replaces waiting"' })]);
    });

    it('writes nothing for a job that is no longer running, and records many checkpoints of many jobs', async () => {
      now = T0;
      const jobs = [await runningJob(storage), await runningJob(storage), await runningJob(storage)];
      const gone = jobs[2]!;
      await storage.jobCancel({ id: gone.row.id });
      const items: StepRecordParams[] = jobs.flatMap((j) => Array.from({ length: 40 }, (_, i) => ({ fence: j.fence, step: stepRow(j.row.id, i, { outputJson: String(i) }) })));
      const res = await storage.stepRecordMany({ items });
      assert.deepEqual(res, items.map((it) => it.fence.jobId !== gone.row.id));
      for (const j of jobs.slice(0, 2)) assert.deepEqual((await storage.stepList({ jobId: j.row.id })).map((s) => s.outputJson), Array.from({ length: 40 }, (_, i) => String(i)));
      assert.deepEqual(await storage.stepList({ jobId: gone.row.id }), []);
    });
  });

  describe('jobReclaimExpired', () => {
    it('writes the shared last_error wording: the retry one back to pending, the failed one when attempts are spent', async () => {
      now = T0;
      const queue = uniqueName('q');
      const id = await insertJob(storage, { queue, maxRetries: 1 });
      await claimOne(storage, queue, id, { leaseMs: 1_000 });
      now = T0 + 1_001;
      const first = await storage.jobReclaimExpired({ limit: 100 });
      assert.deepEqual(first.filter((r) => r.id === id).map((r) => r.status), ['pending']);
      const pending = await mustGet(storage, id);
      assert.deepEqual([pending.lastError, pending.completedAt], [LEASE_EXPIRED_RETRY, null]);

      await claimOne(storage, queue, id, { leaseMs: 1_000 });
      now = T0 + 2_002;
      const second = await storage.jobReclaimExpired({ limit: 100 });
      assert.deepEqual(second.filter((r) => r.id === id).map((r) => [r.status, r.attempt]), [['failed', 2]]);
      const failed = await mustGet(storage, id);
      assert.deepEqual([failed.lastError, failed.completedAt], [LEASE_EXPIRED_FAILED, T0 + 2_002]);
    });
  });
});
