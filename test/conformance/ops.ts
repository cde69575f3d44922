/**
 * Conformance: operations — cancel (with subtrees), pause/resume, retry (starting a workflow
 * clean), paused queues, and the typed errors they throw.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuplicateJobError, InvalidStateError, JobNotFoundError } from '../../src/errors.js';
import { cannotPauseMessage, cannotResumeMessage, cannotRetryMessage } from '../../src/storage/shared/contract-messages.js';
import type { StorageMaker } from '../helpers/storages.js';
import {
  applied,
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
  instances,
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

const UNKNOWN = '00000000-0000-7000-8000-00000000dead';
const notFound = (e: unknown): boolean => e instanceof JobNotFoundError && e.jobId === UNKNOWN;

/** Matches an `InvalidStateError` carrying exactly the contract's text. */
function invalidState(message: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof InvalidStateError, `expected InvalidStateError, got ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  };
}

/** Registers the operations tests. */
export function describeOps(make: StorageMaker): void {
  describe('operations: cancel, pause, resume, retry, paused queues', () => {
    const ctx = useStorage(make, 'conformance-ops');

    it('cancels a pending job once; a terminal job is left alone; an unknown id throws', async () => {
      const s = ctx.s;
      const id = await insertJob(s, { queue: uniqueName('q') });
      const t0 = await s.clockNow();
      assert.deepEqual(await s.jobCancel({ id }), [id]);
      const t1 = await s.clockNow();
      const row = await mustGet(s, id);
      assert.equal(row.status, 'cancelled');
      assertBetween(row.completedAt, t0, t1, 'completedAt of a cancelled job');
      assert.deepEqual(await s.jobCancel({ id }), [], 'already cancelled');
      assert.deepEqual(await mustGet(s, id), row);
      const done = await completedJob(s);
      assert.deepEqual(await s.jobCancel({ id: done.id }), []);
      assert.deepEqual(await mustGet(s, done.id), done);
      const failed = await failedJob(s);
      assert.deepEqual(await s.jobCancel({ id: failed.id }), []);
      assert.equal((await mustGet(s, failed.id)).status, 'failed');
      await assert.rejects(s.jobCancel({ id: UNKNOWN }), notFound);
    });

    it('cancels running, waiting and paused jobs; the running owner can no longer write', async () => {
      const s = ctx.s;
      const running = await runningJob(s);
      const { row: waiting } = await waitingJob(s, {}, { waitSignal: 'go' });
      const paused = await pausedJob(s);
      for (const id of [running.fence.jobId, waiting.id, paused.id]) {
        assert.deepEqual(await s.jobCancel({ id }), [id]);
        const row = await mustGet(s, id);
        assert.equal(row.status, 'cancelled');
        assert.equal(row.leaseExpiresAt, null);
      }
      assert.deepEqual(await s.jobHeartbeat({ workerId: running.fence.workerId, runs: [{ jobId: running.fence.jobId, runCount: 1 }], leaseMs: 1_000 }), []);
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...running.fence, outcome: 'completed', resultJson: null }] })), [false]);
      assert.ok(!(await s.jobWakeDue({ limit: 1000 })).includes(waiting.id));
      await s.signalSend({ jobId: waiting.id, name: 'go', payloadJson: null }).catch(() => undefined);
      assert.equal((await mustGet(s, waiting.id)).status, 'cancelled', 'a signal does not revive a cancelled job');
    });

    it('cancels a whole subtree (children and grandchildren) in one call; the parent is never resumed', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 3, strategy: 'collect-all' });
      const [c0, c1, c2] = await claimChildren(s, p);
      // child 0 completes, child 1 suspends into its own fan-out, child 2 stays running.
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...c0!, outcome: 'completed', resultJson: '0' }] })), [true]);
      const grand = await suspendIntoFanOut(s, c1!, { n: 2 });
      const [g0] = await claimChildren(s, grand).then((f) => f.slice(0, 1));
      const cancelled = await s.jobCancel({ id: p.parentId });
      const expected = [p.parentId, p.childIds[1]!, p.childIds[2]!, ...grand.childIds];
      assert.deepEqual([...cancelled].sort(), [...expected].sort());
      for (const id of expected) assert.equal((await mustGet(s, id)).status, 'cancelled', `job ${id}`);
      assert.equal((await mustGet(s, p.childIds[0]!)).status, 'completed', 'finished children stay as they were');
      // Late writes of the subtree's owners do nothing and do not resume the parent.
      assert.deepEqual(
        await s.jobFinishMany({ items: [{ ...c2!, outcome: 'completed', resultJson: '2' }, { ...g0!, outcome: 'failed', error: 'x' }] }),
        [null, null],
      );
      assert.ok(!(await s.jobWakeDue({ limit: 1000 })).includes(p.parentId));
      assert.equal((await mustGet(s, p.parentId)).status, 'cancelled');
      assert.deepEqual(await s.jobCancel({ id: p.parentId }), []);
    });

    it('a child suspending into its own fan-out while its parent is cancelled leaves no orphans', async () => {
      const s = ctx.s;
      // Sequential: the cancel lands first, the child's suspend is then fenced out.
      const p = await fanOutParent(s, { n: 1 });
      const [c] = await claimChildren(s, p);
      await s.jobCancel({ id: p.parentId });
      const fanOutId = newId();
      const grandchild = jobInsert({ parentId: c!.jobId, fanOutId, fanOutIndex: 0 });
      const applied = await s.jobSuspendFanOut({
        fence: c!,
        step: stepRow(c!.jobId, 0, { outputJson: JSON.stringify(fanOutId) }),
        fanOut: { id: fanOutId, strategy: 'fail-fast', threshold: null, timeoutMs: null },
        children: [grandchild],
      });
      assert.equal(applied, false);
      assert.equal(await s.jobGet({ id: grandchild.id }), undefined);
      assert.equal(await s.fanOutGet({ id: fanOutId }), undefined);

      // Concurrent: whichever wins, no grandchild is left non-terminal.
      const [other] = await instances(ctx.ts, 1);
      for (let round = 0; round < 5; round++) {
        const pr = await fanOutParent(s, { n: 1 });
        const [child] = await claimChildren(s, pr);
        const gId = newId();
        const gKids = [0, 1, 2].map((i) => jobInsert({ parentId: child!.jobId, fanOutId: gId, fanOutIndex: i }));
        await Promise.all([
          other!.jobCancel({ id: pr.parentId }),
          s.jobSuspendFanOut({
            fence: child!,
            step: stepRow(child!.jobId, 0, { outputJson: JSON.stringify(gId) }),
            fanOut: { id: gId, strategy: 'fail-fast', threshold: null, timeoutMs: null },
            children: gKids,
          }),
        ]);
        for (const g of gKids) {
          const row = await s.jobGet({ id: g.id });
          assert.ok(row === undefined || row.status === 'cancelled', `round ${round}: grandchild left ${row?.status}`);
        }
        assert.equal((await mustGet(s, child!.jobId)).status, 'cancelled');
      }
    });

    it('pauses a pending job and resumes it; other statuses and unknown ids throw typed errors', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const id = await insertJob(s, { queue: q });
      await s.jobPause({ id });
      assert.equal((await mustGet(s, id)).status, 'paused');
      await assert.rejects(s.jobPause({ id }), invalidState(cannotPauseMessage(id, 'paused')), 'pausing a paused job');
      await s.jobResume({ id });
      assert.equal((await mustGet(s, id)).status, 'pending');
      await assert.rejects(s.jobResume({ id }), invalidState(cannotResumeMessage(id, 'pending')), 'resuming a pending job');
      const running = await claimOne(s, q, id);
      await assert.rejects(s.jobPause({ id }), invalidState(cannotPauseMessage(id, 'running')), 'pausing a running job');
      assert.equal((await mustGet(s, id)).status, 'running', 'pause does not interrupt a running job');
      await s.jobFinishMany({ items: [{ ...fenceOf(running), outcome: 'completed', resultJson: null }] });
      await assert.rejects(s.jobPause({ id }), invalidState(cannotPauseMessage(id, 'completed')), 'pausing a completed job');
      await assert.rejects(s.jobResume({ id }), invalidState(cannotResumeMessage(id, 'completed')), 'resuming a completed job');
      await assert.rejects(s.jobPause({ id: UNKNOWN }), notFound);
      await assert.rejects(s.jobResume({ id: UNKNOWN }), notFound);
    });

    it('retries a failed or cancelled job: pending, attempt 0, run_at now, last_error kept, claimable', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const failed = await failedJob(s, { queue: q }, 'first failure');
      const t0 = await s.clockNow();
      await s.jobRetry({ id: failed.id });
      const t1 = await s.clockNow();
      const row = await mustGet(s, failed.id);
      assert.equal(row.status, 'pending');
      assert.equal(row.attempt, 0);
      assert.equal(row.lastError, 'first failure');
      assertBetween(row.runAt, t0, t1, 'run_at of a retried job');
      const again = await claimOne(s, q, failed.id);
      assert.equal(again.attempt, 1);
      assert.equal(again.runCount, 2);

      const cancelled = await cancelledJob(s);
      await s.jobRetry({ id: cancelled.id });
      assert.equal((await mustGet(s, cancelled.id)).status, 'pending');
    });

    it('refuses to retry completed, pending, running, waiting and paused jobs, and unknown ids', async () => {
      const s = ctx.s;
      const ids = [
        (await completedJob(s)).id,
        await insertJob(s, { queue: uniqueName('q') }),
        (await runningJob(s)).fence.jobId,
        (await waitingJob(s, {}, { waitSignal: 'x' })).row.id,
        (await pausedJob(s)).id,
      ];
      for (const id of ids) {
        const before = await mustGet(s, id);
        await assert.rejects(s.jobRetry({ id }), invalidState(cannotRetryMessage(id, before.status)), `retrying a ${before.status} job`);
        assert.deepEqual(await mustGet(s, id), before);
      }
      await assert.rejects(s.jobRetry({ id: UNKNOWN }), notFound);
    });

    it('refuses to retry a job whose unique key is held again, changing nothing', async () => {
      const s = ctx.s;
      const key = uniqueName('key');
      const { fence } = await runningJob(s, { uniqueKey: key });
      assert.equal(await s.stepRecord({ fence, step: stepRow(fence.jobId, 0, { outputJson: '"kept"' }) }), true);
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'failed', error: 'x' }] })), [true]);
      const holder = await insertJob(s, { uniqueKey: key });
      const before = await mustGet(s, fence.jobId);
      await assert.rejects(s.jobRetry({ id: fence.jobId }), (e) => e instanceof DuplicateJobError && e.uniqueKey === key);
      assert.deepEqual(await mustGet(s, fence.jobId), before);
      assert.deepEqual((await s.stepList({ jobId: fence.jobId })).map((r) => r.outputJson), ['"kept"'], 'the failed retry dropped checkpoints');
      await s.jobCancel({ id: holder });
      await s.jobRetry({ id: fence.jobId });
      assert.equal((await mustGet(s, fence.jobId)).status, 'pending');
    });

    it('retrying a failed workflow drops its checkpoints, fan-outs and fan-out children', async () => {
      const s = ctx.s;
      const { row: parentRow, fence } = await runningJob(s, { type: 'wf' });
      assert.equal(await s.stepRecord({ fence, step: stepRow(fence.jobId, 0, { outputJson: '"step0"' }) }), true);
      const fo = await suspendIntoFanOut(s, fence, { n: 3, stepIndex: 1 });
      const kids = await claimChildren(s, fo);
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...kids[0]!, outcome: 'failed', error: 'child failed' }] })), [true]);
      // fail-fast decided: the parent is pending again; its next run fails for good.
      const second = await claimOne(s, parentRow.queue, fence.jobId);
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fenceOf(second), outcome: 'failed', error: 'fan-out failed' }] })), [true]);
      await s.jobRetry({ id: fence.jobId });
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'pending');
      assert.equal(row.attempt, 0);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), []);
      assert.equal(await s.fanOutGet({ id: fo.fanOutId }), undefined);
      for (const id of fo.childIds) assert.equal(await s.jobGet({ id }), undefined, `child ${id} still exists`);
      assert.deepEqual(await s.jobList({ parentId: fence.jobId, limit: 100 }), []);
    });

    it('retrying a cancelled fan-out parent drops its cancelled subtree', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2 });
      await s.jobCancel({ id: p.parentId });
      await s.jobRetry({ id: p.parentId });
      assert.equal((await mustGet(s, p.parentId)).status, 'pending');
      assert.deepEqual(await s.jobList({ fanOutId: p.fanOutId, limit: 100 }), []);
      assert.deepEqual(await s.stepList({ jobId: p.parentId }), []);
      assert.equal(await s.fanOutGet({ id: p.fanOutId }), undefined);
    });

    it('marks queues paused (claims skip them) and resumed, idempotently', async () => {
      const s = ctx.s;
      const q1 = uniqueName('q');
      const q2 = uniqueName('q');
      const a = await insertJob(s, { queue: q1 });
      const b = await insertJob(s, { queue: q2 });
      await s.queueSetPaused({ queue: q1, paused: true });
      await s.queueSetPaused({ queue: q1, paused: true });
      await s.queueSetPaused({ queue: q2, paused: true });
      assert.deepEqual(await claim(s, q1, 5), [], 'a paused queue is not claimed');
      assert.deepEqual(await claim(s, q2, 5), []);
      await s.queueSetPaused({ queue: q1, paused: false });
      assert.deepEqual((await claim(s, q1, 5)).map((r) => r.id), [a], 'a resumed queue is claimed (pausing twice needs one resume)');
      assert.deepEqual(await claim(s, q2, 5), [], 'the other queue stays paused');
      await s.queueSetPaused({ queue: uniqueName('never'), paused: false });
      await s.queueSetPaused({ queue: q2, paused: false });
      assert.deepEqual((await claim(s, q2, 5)).map((r) => r.id), [b]);
    });
  });
}
