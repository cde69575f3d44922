/**
 * Conformance: `jobRetry({ fromFailedStep: true })` — the workflow resumes where it failed: its
 * checkpoints, fan-outs and sub-jobs are kept except at the last checkpoint, where a failed or
 * waiting step is deleted and a fan-out with failed or cancelled children is reopened (those
 * children retried from scratch, completed ones untouched, counters and status reset, deadline
 * moved); a fan-out missing children is refused. The default retry still starts clean. Also:
 * `stepList` with `withTimes` carries the instant each checkpoint was recorded (`createdAt`).
 *
 * Exact instants (run_at, deadlines, createdAt) are checked on a second isolated database whose
 * storage takes a clock the test sets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuplicateJobError, InvalidStateError, JobNotFoundError } from '../../src/errors.js';
import { cannotRetryMessage } from '../../src/storage/shared/contract-messages.js';
import type { Fence, JobRow, StepRow, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import {
  assertBetween,
  claimChildren,
  claimOne,
  completedJob,
  fanOutParent,
  fenceOf,
  insertJob,
  mustGet,
  newId,
  runningJob,
  stepRow,
  suspendIntoFanOut,
  uniqueName,
} from '../helpers/factories.js';
import { useManualClock, useStorage } from './context.js';
import { expectCountsMatchChildren } from './fan-out-retry.js';
import { expectFanOut, expectWoken, finish } from './fan-out-helpers.js';

/** Records checkpoints under a fence (each must apply). */
async function record(s: Storage, fence: Fence, steps: StepRow[]): Promise<void> {
  for (const step of steps) assert.equal(await s.stepRecord({ fence, step }), true, `step ${step.stepIndex} recorded`);
}

/** Claims the woken parent of a fan-out and fails it; returns its row. */
async function failParent(s: Storage, queue: string, parentId: string): Promise<JobRow> {
  const run = await claimOne(s, queue, parentId);
  await finish(s, fenceOf(run), 'failed');
  return mustGet(s, parentId);
}

/** Asserts a job was retried: pending, attempt 0, last_error kept. */
async function expectRetried(s: Storage, id: string, lastError: string | null): Promise<JobRow> {
  const row = await mustGet(s, id);
  assert.equal(row.status, 'pending', `job ${id} is pending again`);
  assert.equal(row.attempt, 0);
  assert.equal(row.lastError, lastError, 'last_error kept');
  return row;
}

/** Step indexes of a job's checkpoints. */
async function stepIndexes(s: Storage, jobId: string): Promise<number[]> {
  return (await s.stepList({ jobId })).map((r) => r.stepIndex);
}

/** Registers the resume-from-failed-step tests. */
export function describeRetryFromStep(make: StorageMaker): void {
  describe('retry from the failed step: jobRetry fromFailedStep', () => {
    const ctx = useStorage(make, 'conformance-retry-from-step');
    const clock = useManualClock(ctx, 'conformance-retry-from-step-manual');

    it('stepList withTimes carries createdAt: the storage clock when each checkpoint was recorded', async () => {
      const m = clock();
      const { fence } = await runningJob(m.s);
      const t0 = m.now;
      await record(m.s, fence, [stepRow(fence.jobId, 0)]);
      m.now += 250;
      await record(m.s, fence, [stepRow(fence.jobId, 1, { status: 'failed', error: 'x' })]);
      assert.deepEqual((await m.s.stepList({ jobId: fence.jobId, withTimes: true })).map((r) => r.createdAt), [t0, t0 + 250]);
      assert.ok((await m.s.stepList({ jobId: fence.jobId })).every((r) => !('createdAt' in r)), 'without withTimes rows carry no createdAt');
      // On the driver's own clock.
      const s = ctx.s;
      const run = await runningJob(s);
      const a = await s.clockNow();
      await record(s, run.fence, [stepRow(run.fence.jobId, 0)]);
      const b = await s.clockNow();
      const [got] = await s.stepList({ jobId: run.fence.jobId, withTimes: true });
      assert.ok(got?.createdAt !== undefined && Number.isSafeInteger(got.createdAt), `createdAt is an integer: ${String(got?.createdAt)}`);
      assertBetween(got.createdAt, a, b, 'createdAt of a checkpoint');
    });

    it('a failed last checkpoint is deleted, earlier ones kept (a failed one too); the job runs again from there', async () => {
      const m = clock();
      const { row, fence } = await runningJob(m.s, { type: 'wf' });
      await record(m.s, fence, [
        stepRow(fence.jobId, 0, { outputJson: '"a"' }),
        stepRow(fence.jobId, 1, { status: 'failed', error: 'caught earlier' }),
        stepRow(fence.jobId, 2, { outputJson: '{"b":2}' }),
        stepRow(fence.jobId, 3, { status: 'failed', error: 'charge declined' }),
      ]);
      await finish(m.s, fence, 'failed');
      const steps = await m.s.stepList({ jobId: fence.jobId, withTimes: true });
      m.now += 1_000;
      await m.s.jobRetry({ id: fence.jobId, fromFailedStep: true });
      const after = await expectRetried(m.s, fence.jobId, `failed ${fence.jobId}`);
      assert.equal(after.runAt, m.now, 'run_at = now');
      assert.deepEqual(await m.s.stepList({ jobId: fence.jobId, withTimes: true }), steps.slice(0, 3), 'steps 0-2 kept as they were');
      const again = await claimOne(m.s, row.queue, fence.jobId);
      assert.equal(again.attempt, 1);
      assert.equal(await m.s.stepRecord({ fence: fenceOf(again), step: stepRow(fence.jobId, 3, { outputJson: '"paid"' }) }), true, 'the failed step runs again');
    });

    it('a waiting last checkpoint is deleted; a completed one, or none, is kept as it is', async () => {
      const s = ctx.s;
      const w = await runningJob(s);
      await record(s, w.fence, [stepRow(w.fence.jobId, 0)]);
      const waitStep = stepRow(w.fence.jobId, 1, { stepName: 'wait-0', status: 'waiting', outputJson: 'null' });
      assert.equal(await s.jobSuspend({ fence: w.fence, step: waitStep, wakeAt: null, waitSignal: 'go' }), true);
      assert.deepEqual(await s.jobCancel({ id: w.fence.jobId }), [w.fence.jobId]);
      const cancelled = await mustGet(s, w.fence.jobId);
      await s.jobRetry({ id: w.fence.jobId, fromFailedStep: true });
      await expectRetried(s, w.fence.jobId, cancelled.lastError);
      assert.deepEqual(await stepIndexes(s, w.fence.jobId), [0], 'the waiting step is deleted');

      const c = await runningJob(s);
      await record(s, c.fence, [stepRow(c.fence.jobId, 0, { status: 'failed', error: 'e' }), stepRow(c.fence.jobId, 1, { outputJson: '1' })]);
      await finish(s, c.fence, 'failed');
      const kept = await s.stepList({ jobId: c.fence.jobId, withTimes: true });
      await s.jobRetry({ id: c.fence.jobId, fromFailedStep: true });
      await expectRetried(s, c.fence.jobId, `failed ${c.fence.jobId}`);
      assert.deepEqual(await s.stepList({ jobId: c.fence.jobId, withTimes: true }), kept, 'a completed last checkpoint is kept');

      const bare = await runningJob(s);
      await finish(s, bare.fence, 'failed');
      await s.jobRetry({ id: bare.fence.jobId, fromFailedStep: true });
      await expectRetried(s, bare.fence.jobId, `failed ${bare.fence.jobId}`);
      assert.deepEqual(await s.stepList({ jobId: bare.fence.jobId }), []);
    });

    it('reopens a failed fan-out at the last checkpoint: failed and cancelled children retried, completed ones untouched, deadline moved', async () => {
      const m = clock();
      const t = m.now;
      const p = await fanOutParent(m.s, { n: 4, stepIndex: 1, timeoutMs: 60_000, child: { maxRetries: 0 } }, { type: 'flow' });
      const [c0, c1, c2, c3] = await claimChildren(m.s, p);
      await finish(m.s, c0!, 'completed');
      await record(m.s, c1!, [stepRow(c1!.jobId, 0, { outputJson: '"c1 step"' })]);
      const grand = await suspendIntoFanOut(m.s, c2!, { n: 1 });
      await finish(m.s, c1!, 'failed');
      await expectFanOut(m.s, p.fanOutId, { status: 'failed', succeeded: 1, failed: 1, cancelled: 2, deadlineAt: t + 60_000 });
      assert.equal((await mustGet(m.s, grand.childIds[0]!)).status, 'cancelled', 'the cancelled sibling took its subtree');
      m.now += 1_000;
      const parentBefore = await failParent(m.s, p.queue, p.parentId);
      const stepsBefore = await m.s.stepList({ jobId: p.parentId, withTimes: true });
      const c0Before = await mustGet(m.s, c0!.jobId);
      const kidsBefore = await Promise.all(p.childIds.map((id) => mustGet(m.s, id)));
      const fanBefore = (await m.s.fanOutGet({ id: p.fanOutId }))!;
      m.now += 4_000;
      await m.s.jobRetry({ id: p.parentId, fromFailedStep: true });

      const parent = await expectRetried(m.s, p.parentId, parentBefore.lastError);
      assert.equal(parent.runAt, m.now);
      assert.deepEqual(await m.s.stepList({ jobId: p.parentId, withTimes: true }), stepsBefore, 'the fan-out checkpoint is kept');
      const fan = await expectFanOut(m.s, p.fanOutId, { status: 'running', decidedAt: null, total: 4, succeeded: 1, failed: 0, cancelled: 0 });
      assert.equal(fan.deadlineAt, m.now + 60_000, 'deadline = now + (deadline_at - created_at)');
      assert.deepEqual([fan.strategy, fan.parentId, fan.stepIndex], [fanBefore.strategy, p.parentId, fanBefore.stepIndex]);
      assert.deepEqual(await mustGet(m.s, c0!.jobId), c0Before, 'a completed child is untouched, result included');
      assert.equal(c0Before.resultJson, JSON.stringify(c0!.jobId));
      for (const [i, id] of p.childIds.entries()) {
        if (i === 0) continue;
        const kid = await expectRetried(m.s, id, kidsBefore[i]!.lastError);
        assert.deepEqual([kid.parentId, kid.fanOutId, kid.fanOutIndex, kid.runAt], [p.parentId, p.fanOutId, i, m.now], `child ${i} keeps its place`);
        assert.deepEqual(await m.s.stepList({ jobId: id }), [], `child ${i} starts clean`);
      }
      assert.equal(await m.s.fanOutGet({ id: grand.fanOutId }), undefined, "a retried child's own fan-out is dropped");
      assert.equal(await m.s.jobGet({ id: grand.childIds[0]! }), undefined, "a retried child's sub-jobs are dropped");
      assert.deepEqual((await m.s.jobList({ fanOutId: p.fanOutId, limit: 10, order: 'asc' })).map((r) => r.id), p.childIds, 'the same children, no new ones');
      await expectCountsMatchChildren(m.s, p.fanOutId);

      // The reopened children run again and decide the fan-out afresh.
      const rerun = await m.s.jobClaim({ workerId: 'worker-b', queues: [{ name: p.childQueue, limit: 10 }], leaseMs: 60_000 });
      assert.deepEqual(rerun.map((r) => r.id), [c1!.jobId, c2!.jobId, c3!.jobId]);
      for (const r of rerun) await finish(m.s, fenceOf(r), 'completed');
      await expectFanOut(m.s, p.fanOutId, { status: 'succeeded', succeeded: 4, failed: 0, cancelled: 0 });
      await expectCountsMatchChildren(m.s, p.fanOutId);
      assert.deepEqual(await mustGet(m.s, c0!.jobId), c0Before);
    });

    it('reopens a decided collect-all fan-out with a failed child; a fan-out of completed children stays as it is', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'collect-all', child: { maxRetries: 0 } });
      const [a, b] = await claimChildren(s, p);
      await finish(s, a!, 'failed');
      await finish(s, b!, 'completed');
      await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 1, failed: 1 });
      await expectWoken(s, p.parentId);
      await failParent(s, p.queue, p.parentId);
      const bBefore = await mustGet(s, b!.jobId);
      await s.jobRetry({ id: p.parentId, fromFailedStep: true });
      await expectFanOut(s, p.fanOutId, { status: 'running', decidedAt: null, deadlineAt: null, succeeded: 1, failed: 0, cancelled: 0 });
      await expectRetried(s, a!.jobId, `failed ${a!.jobId}`);
      assert.deepEqual(await mustGet(s, b!.jobId), bBefore);

      const q = await fanOutParent(s, { n: 2, strategy: 'collect-all' });
      for (const k of await claimChildren(s, q)) await finish(s, k, 'completed');
      await failParent(s, q.queue, q.parentId);
      const fan = await s.fanOutGet({ id: q.fanOutId });
      const kids = await s.jobList({ fanOutId: q.fanOutId, limit: 10 });
      await s.jobRetry({ id: q.parentId, fromFailedStep: true });
      await expectRetried(s, q.parentId, `failed ${q.parentId}`);
      assert.deepEqual(await s.fanOutGet({ id: q.fanOutId }), fan, 'a fan-out without failed children is kept');
      assert.deepEqual(await s.jobList({ fanOutId: q.fanOutId, limit: 10 }), kids);
    });

    it('only the last checkpoint is looked at: a fan-out with a failed child at an earlier step is kept', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'collect-all', child: { maxRetries: 0 } });
      const [a, b] = await claimChildren(s, p);
      await finish(s, a!, 'failed');
      await finish(s, b!, 'completed');
      const run = await claimOne(s, p.queue, p.parentId);
      await record(s, fenceOf(run), [stepRow(p.parentId, 1, { status: 'failed', error: 'after the fan-out' })]);
      await finish(s, fenceOf(run), 'failed');
      const fan = await s.fanOutGet({ id: p.fanOutId });
      const aBefore = await mustGet(s, a!.jobId);
      await s.jobRetry({ id: p.parentId, fromFailedStep: true });
      assert.deepEqual(await stepIndexes(s, p.parentId), [0]);
      assert.deepEqual(await s.fanOutGet({ id: p.fanOutId }), fan);
      assert.deepEqual(await mustGet(s, a!.jobId), aBefore);
    });

    it('refuses a fan-out whose children were deleted with InvalidStateError, changing nothing', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 3, strategy: 'collect-all', child: { maxRetries: 0 } });
      const [a, b, c] = await claimChildren(s, p);
      await finish(s, a!, 'completed');
      await finish(s, b!, 'failed');
      await finish(s, c!, 'completed');
      await failParent(s, p.queue, p.parentId);
      assert.deepEqual(await s.jobDeleteMany({ ids: [c!.jobId] }), { done: [c!.jobId], skipped: [] });
      const ids = [p.parentId, a!.jobId, b!.jobId];
      const rows = await Promise.all(ids.map((id) => mustGet(s, id)));
      const fan = await s.fanOutGet({ id: p.fanOutId });
      const steps = await s.stepList({ jobId: p.parentId });
      await assert.rejects(s.jobRetry({ id: p.parentId, fromFailedStep: true }), InvalidStateError);
      assert.deepEqual(await Promise.all(ids.map((id) => mustGet(s, id))), rows, 'no job changed');
      assert.deepEqual(await s.fanOutGet({ id: p.fanOutId }), fan, 'the fan-out is unchanged');
      assert.deepEqual(await s.stepList({ jobId: p.parentId }), steps);
      await s.jobRetry({ id: p.parentId });
      assert.equal(await s.fanOutGet({ id: p.fanOutId }), undefined, 'a plain retry still starts clean');
    });

    it('a retried fan-out child leaves its counters and keeps its own checkpoints but the failed one', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'collect-all', child: { maxRetries: 0 } });
      const [a] = await claimChildren(s, p);
      await record(s, a!, [stepRow(a!.jobId, 0), stepRow(a!.jobId, 1, { status: 'failed', error: 'x' })]);
      await finish(s, a!, 'failed');
      await expectFanOut(s, p.fanOutId, { status: 'running', failed: 1 });
      await s.jobRetry({ id: a!.jobId, fromFailedStep: true });
      await expectRetried(s, a!.jobId, `failed ${a!.jobId}`);
      assert.deepEqual(await stepIndexes(s, a!.jobId), [0]);
      await expectFanOut(s, p.fanOutId, { status: 'running', succeeded: 0, failed: 0, cancelled: 0 });
      await expectCountsMatchChildren(s, p.fanOutId);
    });

    it('the default retry (fromFailedStep false or absent) still drops checkpoints, fan-outs and sub-jobs', async () => {
      const s = ctx.s;
      for (const fromFailedStep of [undefined, false]) {
        const p = await fanOutParent(s, { n: 2, stepIndex: 1, child: { maxRetries: 0 } });
        const [a] = await claimChildren(s, p);
        await finish(s, a!, 'failed');
        await failParent(s, p.queue, p.parentId);
        assert.equal((await s.stepList({ jobId: p.parentId })).length, 1);
        await s.jobRetry(fromFailedStep === undefined ? { id: p.parentId } : { id: p.parentId, fromFailedStep });
        await expectRetried(s, p.parentId, `failed ${p.parentId}`);
        assert.deepEqual(await s.stepList({ jobId: p.parentId }), [], `fromFailedStep ${String(fromFailedStep)}`);
        assert.equal(await s.fanOutGet({ id: p.fanOutId }), undefined);
        for (const id of p.childIds) assert.equal(await s.jobGet({ id }), undefined);
      }
    });

    it('refuses jobs that are not failed or cancelled, unknown ids and held unique keys, changing nothing', async () => {
      const s = ctx.s;
      const done = await completedJob(s);
      await assert.rejects(s.jobRetry({ id: done.id, fromFailedStep: true }), (e) => e instanceof InvalidStateError && e.message === cannotRetryMessage(done.id, 'completed'));
      const pending = await insertJob(s, { queue: uniqueName('q') });
      await assert.rejects(s.jobRetry({ id: pending, fromFailedStep: true }), (e) => e instanceof InvalidStateError && e.message === cannotRetryMessage(pending, 'pending'));
      const unknown = newId();
      await assert.rejects(s.jobRetry({ id: unknown, fromFailedStep: true }), (e) => e instanceof JobNotFoundError && e.jobId === unknown);

      const key = uniqueName('key');
      const { fence } = await runningJob(s, { uniqueKey: key });
      await record(s, fence, [stepRow(fence.jobId, 0), stepRow(fence.jobId, 1, { status: 'failed', error: 'x' })]);
      await finish(s, fence, 'failed');
      await insertJob(s, { uniqueKey: key, queue: uniqueName('q') });
      const before = await mustGet(s, fence.jobId);
      await assert.rejects(s.jobRetry({ id: fence.jobId, fromFailedStep: true }), (e) => e instanceof DuplicateJobError && e.uniqueKey === key);
      assert.deepEqual(await mustGet(s, fence.jobId), before);
      assert.deepEqual(await stepIndexes(s, fence.jobId), [0, 1], 'the failed step is kept when the retry is refused');
    });
  });
}
