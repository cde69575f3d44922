/**
 * Conformance: bulk actions by id — `jobRetryMany` (each job retried from scratch as `jobRetry`
 * does, with fan-out accounting) and `jobDeleteMany` (each finished job deleted with its subtree
 * and every checkpoint, signal and fan-out row, as retention does): which ids are done, the exact
 * reason of every skip, ids given twice, and what the jobs look like afterwards.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SKIP_NOT_FOUND,
  SKIP_PARENT_UNFINISHED,
  SKIP_UNFINISHED_SUBJOBS,
  SKIP_UNIQUE_HELD,
  skipNotFinished,
  skipNotRetryable,
} from '../../src/storage/shared/contract-messages.js';
import type { BulkResult, BulkSkip, JobRow, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import {
  assertBetween,
  cancelledJob,
  claim,
  claimChildren,
  claimOne,
  completedJob,
  failedJob,
  fanOutParent,
  fenceOf,
  insertJob,
  jobInsert,
  mustGet,
  newId,
  pausedJob,
  runningJob,
  stepRow,
  suspendIntoFanOut,
  uniqueName,
  waitingJob,
} from '../helpers/factories.js';
import { useStorage } from './context.js';
import { expectCountsMatchChildren } from './fan-out-retry.js';
import { expectFanOut, expectWaiting, expectWoken, finish } from './fan-out-helpers.js';

/** Skips sorted by id (their order is not part of the contract). */
function sorted(skips: readonly BulkSkip[]): BulkSkip[] {
  return [...skips].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.reason < b.reason ? -1 : 1));
}

/** Asserts a bulk result: `done` in the order given, `skipped` as a set. */
function expectBulk(got: BulkResult, done: string[], skipped: BulkSkip[], what: string): void {
  assert.deepEqual(got.done, done, `${what}: done, in the order given`);
  assert.deepEqual(sorted(got.skipped), sorted(skipped), `${what}: skipped with their reasons`);
}

/** Asserts that none of `ids` exists any more. */
async function expectGone(s: Storage, ids: string[], what: string): Promise<void> {
  for (const id of ids) assert.equal(await s.jobGet({ id }), undefined, `${what}: job ${id} is still there`);
}

/** Reads the rows of `ids` (each must exist). */
async function snapshot(s: Storage, ids: string[]): Promise<JobRow[]> {
  return Promise.all(ids.map((id) => mustGet(s, id)));
}

/** Asserts that no signal `name` of job `id` is left: a new job given that id finds none to consume. */
async function expectNoSignalLeft(s: Storage, id: string, name: string): Promise<void> {
  const queue = uniqueName('q');
  await s.jobInsertMany({ jobs: [jobInsert({ id, queue })] });
  const run = await claimOne(s, queue, id);
  const r = await s.signalConsumeOrWait({ fence: fenceOf(run), stepIndex: 0, stepName: 'wait', signalName: name, deadlineAt: null });
  assert.deepEqual(r, { kind: 'suspended' }, `a signal of deleted job ${id} was left behind`);
}

/** A completed root with a completed child; the child has a checkpoint. */
async function finishedPair(s: Storage): Promise<{ rootId: string; childId: string }> {
  const root = await runningJob(s);
  const child = await runningJob(s, { parentId: root.fence.jobId });
  assert.equal(await s.stepRecord({ fence: child.fence, step: stepRow(child.fence.jobId, 0) }), true);
  await finish(s, child.fence, 'completed');
  await finish(s, root.fence, 'completed');
  return { rootId: root.fence.jobId, childId: child.fence.jobId };
}

/** Registers the bulk action tests. */
export function describeBulk(make: StorageMaker): void {
  describe('bulk actions: jobRetryMany', () => {
    const ctx = useStorage(make, 'conformance-bulk-retry');

    it('retries failed and cancelled jobs; skips every other status and unknown ids with their reasons, changing nothing', async () => {
      const s = ctx.s;
      const failed = await failedJob(s, {}, 'first failure');
      const cancelled = await cancelledJob(s);
      const pending = await insertJob(s, { queue: uniqueName('q') });
      const running = (await runningJob(s)).fence.jobId;
      const waiting = (await waitingJob(s, {}, { waitSignal: 'go' })).row.id;
      const paused = (await pausedJob(s)).id;
      const completed = (await completedJob(s)).id;
      const unknown = newId();
      const untouched = [pending, running, waiting, paused, completed];
      const before = await snapshot(s, untouched);
      const t0 = await s.clockNow();
      const r = await s.jobRetryMany({ ids: [pending, failed.id, unknown, running, cancelled.id, waiting, paused, completed] });
      const t1 = await s.clockNow();
      expectBulk(r, [failed.id, cancelled.id], [
        { id: pending, reason: skipNotRetryable('pending') },
        { id: unknown, reason: SKIP_NOT_FOUND },
        { id: running, reason: skipNotRetryable('running') },
        { id: waiting, reason: skipNotRetryable('waiting') },
        { id: paused, reason: skipNotRetryable('paused') },
        { id: completed, reason: skipNotRetryable('completed') },
      ], 'mixed statuses');
      assert.deepEqual(await snapshot(s, untouched), before, 'skipped jobs are unchanged');
      const row = await mustGet(s, failed.id);
      assert.equal(row.status, 'pending');
      assert.equal(row.attempt, 0);
      assert.equal(row.lastError, 'first failure', 'last_error kept');
      assert.equal(row.runCount, failed.runCount, 'run_count is never decremented nor bumped by a retry');
      assertBetween(row.runAt, t0, t1, 'run_at of a retried job');
      assert.equal((await claimOne(s, failed.queue, failed.id)).attempt, 1, 'the retried job is claimable');
      assert.equal((await mustGet(s, cancelled.id)).status, 'pending');
      assert.equal((await mustGet(s, cancelled.id)).attempt, 0);
    });

    it('retries a workflow from scratch: its checkpoints, fan-outs and sub-jobs are dropped', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, stepIndex: 1, child: { maxRetries: 0 } });
      const [a] = await claimChildren(s, p);
      await finish(s, a!, 'failed');
      const run = await claimOne(s, p.queue, p.parentId);
      assert.equal(await s.stepRecord({ fence: fenceOf(run), step: stepRow(p.parentId, 2, { status: 'failed', error: 'x' }) }), true);
      await finish(s, fenceOf(run), 'failed');
      expectBulk(await s.jobRetryMany({ ids: [p.parentId] }), [p.parentId], [], 'a failed workflow');
      assert.equal((await mustGet(s, p.parentId)).status, 'pending');
      assert.deepEqual(await s.stepList({ jobId: p.parentId }), []);
      assert.equal(await s.fanOutGet({ id: p.fanOutId }), undefined);
      await expectGone(s, p.childIds, 'children of a retried workflow');
    });

    it('skips a job whose unique key a live job holds, and retries the rest of the batch', async () => {
      const s = ctx.s;
      const key = uniqueName('key');
      const { fence } = await runningJob(s, { uniqueKey: key });
      assert.equal(await s.stepRecord({ fence, step: stepRow(fence.jobId, 0, { outputJson: '"kept"' }) }), true);
      await finish(s, fence, 'failed');
      const holder = await insertJob(s, { uniqueKey: key, queue: uniqueName('q') });
      const other = await failedJob(s);
      const before = await mustGet(s, fence.jobId);
      expectBulk(await s.jobRetryMany({ ids: [fence.jobId, other.id] }), [other.id], [{ id: fence.jobId, reason: SKIP_UNIQUE_HELD }], 'key held');
      assert.deepEqual(await mustGet(s, fence.jobId), before, 'the skipped job is unchanged');
      assert.deepEqual((await s.stepList({ jobId: fence.jobId })).map((r) => r.outputJson), ['"kept"'], 'its checkpoints are kept');
      assert.equal((await mustGet(s, other.id)).status, 'pending');
      await s.jobCancel({ id: holder });
      expectBulk(await s.jobRetryMany({ ids: [fence.jobId] }), [fence.jobId], [], 'key free again');
    });

    it('two failed jobs of one key in one batch: one is retried, the other skipped as its key is now held', async () => {
      const s = ctx.s;
      const key = uniqueName('key');
      const x = await failedJob(s, { uniqueKey: key });
      const y = await failedJob(s, { uniqueKey: key });
      const z = await failedJob(s);
      const r = await s.jobRetryMany({ ids: [x.id, y.id, z.id] });
      assert.equal(r.done.length, 2, `one of the pair and the third job: ${JSON.stringify(r)}`);
      assert.ok(r.done.includes(z.id), 'a clash does not abort the batch');
      const winner = r.done.find((id) => id !== z.id)!;
      const loser = winner === x.id ? y.id : x.id;
      assert.deepEqual(r.skipped, [{ id: loser, reason: SKIP_UNIQUE_HELD }]);
      assert.equal((await mustGet(s, winner)).status, 'pending');
      assert.equal((await mustGet(s, loser)).status, 'failed');
    });

    it('acts once on an id given twice', async () => {
      const s = ctx.s;
      const a = await failedJob(s);
      const b = await cancelledJob(s);
      const unknown = newId();
      const r = await s.jobRetryMany({ ids: [a.id, b.id, a.id, unknown, b.id, unknown] });
      assert.deepEqual(r.done, [a.id, b.id], 'each retried job reported done once');
      assert.ok(r.skipped.length >= 1, 'the unknown id is skipped');
      for (const skip of r.skipped) assert.deepEqual(skip, { id: unknown, reason: SKIP_NOT_FOUND }, 'a job acted on is not also skipped');
      const row = await mustGet(s, a.id);
      assert.equal(row.status, 'pending');
      assert.equal(row.attempt, 0);
    });

    it('a retried fan-out child leaves its fan-out counters; the fan-out then waits for it', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 4, strategy: 'collect-all', child: { maxRetries: 0 } });
      const [a, b, c, d] = await claimChildren(s, p);
      await finish(s, a!, 'failed');
      assert.ok((await s.jobCancel({ id: b!.jobId })).includes(b!.jobId));
      await finish(s, c!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 1, failed: 1, cancelled: 1 });
      const r = await s.jobRetryMany({ ids: [a!.jobId, b!.jobId, c!.jobId] });
      expectBulk(r, [a!.jobId, b!.jobId], [{ id: c!.jobId, reason: skipNotRetryable('completed') }], 'children');
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 1, failed: 0, cancelled: 0 });
      await expectCountsMatchChildren(s, p.fanOutId);
      const again = await s.jobClaim({ workerId: 'worker-b', queues: [{ name: p.childQueue, limit: 10 }], leaseMs: 60_000 });
      assert.deepEqual(again.map((x) => x.id).sort(), [a!.jobId, b!.jobId].sort());
      for (const k of again) await finish(s, fenceOf(k), 'completed');
      await expectWaiting(s, p.parentId);
      await finish(s, d!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 4, failed: 0, cancelled: 0 });
      await expectWoken(s, p.parentId);
    });

    it('retried children of a decided fan-out: decision and parent kept, counters exact', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 3, strategy: 'fail-fast', child: { maxRetries: 0 } });
      const [a] = await s.jobClaim({ workerId: 'worker-a', queues: [{ name: p.childQueue, limit: 1 }], leaseMs: 60_000 });
      await finish(s, fenceOf(a!), 'failed');
      const decided = await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 1, cancelled: 2 });
      const parent = await expectWoken(s, p.parentId);
      expectBulk(await s.jobRetryMany({ ids: [a!.id, p.childIds[2]!] }), [a!.id, p.childIds[2]!], [], 'children of a decided fan-out');
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 0, cancelled: 1, decidedAt: decided.decidedAt });
      await expectCountsMatchChildren(s, p.fanOutId);
      assert.deepEqual(await mustGet(s, p.parentId), parent, 'the parent is not touched');
    });
  });

  describe('bulk actions: 500 ids in one call', () => {
    const ctx = useStorage(make, 'conformance-bulk-wide');

    it('retries 500 failed jobs, then deletes them once completed, each in one call', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const jobs = Array.from({ length: 500 }, () => jobInsert({ queue: q, maxRetries: 0 }));
      await s.jobInsertMany({ jobs });
      const ids = jobs.map((j) => j.id);
      const first = await claim(s, q, 500);
      await s.jobFinishMany({ items: first.map((r) => ({ ...fenceOf(r), outcome: 'failed' as const, error: 'x' })) });
      assert.deepEqual(await s.jobRetryMany({ ids }), { done: ids, skipped: [] });
      assert.equal(await s.jobCount({ queue: q, statuses: ['pending'] }), 500);
      const second = await claim(s, q, 500);
      await s.jobFinishMany({ items: second.map((r) => ({ ...fenceOf(r), outcome: 'completed' as const, resultJson: null })) });
      const reversed = [...ids].reverse();
      assert.deepEqual(await s.jobDeleteMany({ ids: reversed }), { done: reversed, skipped: [] });
      assert.equal(await s.jobCount({ queue: q }), 0);
    });
  });

  describe('bulk actions: jobDeleteMany', () => {
    const ctx = useStorage(make, 'conformance-bulk-delete');

    it('deletes a finished workflow whole: subtree at every depth, checkpoints, signals and fan-out rows', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s, { type: 'wf' });
      const id = fence.jobId;
      assert.equal(await s.stepRecord({ fence, step: stepRow(id, 0, { outputJson: '"zero"' }) }), true);
      await s.signalSend({ jobId: id, name: 'poke', payloadJson: '"left over"' });
      const fan = await suspendIntoFanOut(s, fence, { n: 2, stepIndex: 1 });
      const [k0, k1] = await claimChildren(s, fan);
      assert.equal(await s.stepRecord({ fence: k0!, step: stepRow(k0!.jobId, 0) }), true);
      const grandchild = await runningJob(s, { parentId: k1!.jobId });
      await finish(s, grandchild.fence, 'completed');
      await finish(s, k0!, 'completed');
      await finish(s, k1!, 'completed');
      const again = await claimOne(s, (await mustGet(s, id)).queue, id);
      await finish(s, fenceOf(again), 'completed');
      const everyone = [id, ...fan.childIds, grandchild.fence.jobId];
      expectBulk(await s.jobDeleteMany({ ids: [id] }), [id], [], 'a finished workflow');
      await expectGone(s, everyone, 'a deleted workflow');
      assert.deepEqual(await s.stepList({ jobId: id }), [], 'checkpoints of the root deleted');
      assert.deepEqual(await s.stepList({ jobId: k0!.jobId }), [], 'checkpoints of a child deleted');
      assert.equal(await s.fanOutGet({ id: fan.fanOutId }), undefined, 'fan-out row deleted');
      assert.equal(await s.jobCount({ parentId: id }), 0);
      await expectNoSignalLeft(s, id, 'poke');
    });

    it('deletes failed and cancelled jobs; skips live jobs with their status and unknown ids', async () => {
      const s = ctx.s;
      const completed = (await completedJob(s)).id;
      const failed = (await failedJob(s)).id;
      const cancelled = (await cancelledJob(s)).id;
      const pending = await insertJob(s, { queue: uniqueName('q') });
      const running = (await runningJob(s)).fence.jobId;
      const waiting = (await waitingJob(s, {}, { waitSignal: 'go' })).row.id;
      const paused = (await pausedJob(s)).id;
      const unknown = newId();
      const live = [pending, running, waiting, paused];
      const before = await snapshot(s, live);
      const r = await s.jobDeleteMany({ ids: [pending, completed, running, unknown, failed, waiting, paused, cancelled] });
      expectBulk(r, [completed, failed, cancelled], [
        { id: pending, reason: skipNotFinished('pending') },
        { id: running, reason: skipNotFinished('running') },
        { id: unknown, reason: SKIP_NOT_FOUND },
        { id: waiting, reason: skipNotFinished('waiting') },
        { id: paused, reason: skipNotFinished('paused') },
      ], 'mixed statuses');
      await expectGone(s, [completed, failed, cancelled], 'finished jobs');
      assert.deepEqual(await snapshot(s, live), before, 'live jobs are unchanged');
    });

    it('skips a finished job with an unfinished descendant at any depth, deleting nothing of it', async () => {
      const s = ctx.s;
      // A completed root whose plain child is still pending (completing leaves children alone).
      const a = await runningJob(s);
      const aKid = await insertJob(s, { queue: uniqueName('q'), parentId: a.fence.jobId });
      await finish(s, a.fence, 'completed');
      // A completed root and child whose grandchild still runs.
      const b = await runningJob(s);
      const bKid = await runningJob(s, { parentId: b.fence.jobId });
      const bGrand = await runningJob(s, { parentId: bKid.fence.jobId });
      await finish(s, bKid.fence, 'completed');
      await finish(s, b.fence, 'completed');
      const ids = [a.fence.jobId, aKid, b.fence.jobId, bKid.fence.jobId, bGrand.fence.jobId];
      const before = await snapshot(s, ids);
      const r = await s.jobDeleteMany({ ids: [a.fence.jobId, b.fence.jobId, bKid.fence.jobId] });
      expectBulk(r, [], [
        { id: a.fence.jobId, reason: SKIP_UNFINISHED_SUBJOBS },
        { id: b.fence.jobId, reason: SKIP_UNFINISHED_SUBJOBS },
        { id: bKid.fence.jobId, reason: SKIP_UNFINISHED_SUBJOBS },
      ], 'unfinished below');
      assert.deepEqual(await snapshot(s, ids), before, 'nothing deleted or changed');
    });

    it('skips a sub-job of an unfinished parent; deletes a sub-job of a finished parent alone', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'collect-all' });
      const [k0] = await claimChildren(s, p);
      await finish(s, k0!, 'completed');
      expectBulk(await s.jobDeleteMany({ ids: [k0!.jobId] }), [], [{ id: k0!.jobId, reason: SKIP_PARENT_UNFINISHED }], 'parent waiting');
      assert.equal((await mustGet(s, k0!.jobId)).status, 'completed');

      const pair = await finishedPair(s);
      const root = await mustGet(s, pair.rootId);
      expectBulk(await s.jobDeleteMany({ ids: [pair.childId] }), [pair.childId], [], 'parent completed');
      await expectGone(s, [pair.childId], 'a sub-job of a finished parent');
      assert.deepEqual(await s.stepList({ jobId: pair.childId }), [], 'its checkpoints deleted');
      assert.deepEqual(await mustGet(s, pair.rootId), root, 'the parent is kept unchanged');

      // A finished child of a running parent, and that parent, in one call: both skipped.
      const live = await runningJob(s);
      const kid = await completedJob(s, { parentId: live.fence.jobId });
      expectBulk(await s.jobDeleteMany({ ids: [kid.id, live.fence.jobId] }), [], [
        { id: kid.id, reason: SKIP_PARENT_UNFINISHED },
        { id: live.fence.jobId, reason: skipNotFinished('running') },
      ], 'child and running parent');
      assert.ok(await s.jobGet({ id: kid.id }));
    });

    it('a parent and its child in one call are both done, in either order', async () => {
      const s = ctx.s;
      const w1 = await finishedPair(s);
      const w2 = await finishedPair(s);
      expectBulk(await s.jobDeleteMany({ ids: [w1.childId, w1.rootId] }), [w1.childId, w1.rootId], [], 'child first');
      expectBulk(await s.jobDeleteMany({ ids: [w2.rootId, w2.childId] }), [w2.rootId, w2.childId], [], 'parent first');
      await expectGone(s, [w1.rootId, w1.childId, w2.rootId, w2.childId], 'both workflows');
    });

    it('acts once on an id given twice', async () => {
      const s = ctx.s;
      const a = (await completedJob(s)).id;
      const b = (await failedJob(s)).id;
      const r = await s.jobDeleteMany({ ids: [a, a, b, a, b] });
      assert.deepEqual(r.done, [a, b], 'each deleted job reported done once');
      assert.deepEqual(r.skipped, [], 'a job deleted is not also skipped as not found');
      await expectGone(s, [a, b], 'deleted');
    });
  });
}
