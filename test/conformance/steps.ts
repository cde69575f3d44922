/**
 * Conformance: checkpoints — fenced step records, first finished write wins, waiting rows are
 * replaced, listing by step index.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/storage/codec.js';
import type { StorageMaker } from '../helpers/storages.js';
import { bigJson, completedJob, mustGet, newId, runningJob, stepRow } from '../helpers/factories.js';
import { useStorage } from './context.js';

/** Registers the checkpoint tests. */
export function describeSteps(make: StorageMaker): void {
  describe('steps: checkpoints', () => {
    const ctx = useStorage(make, 'conformance-steps');

    it('records a checkpoint under the fence and lists it back byte for byte', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const step = stepRow(fence.jobId, 0, { stepName: 'validate-order', outputJson: '{"z":1, "a":"é😀"}' });
      assert.equal(await s.stepRecord({ fence, step }), true);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [step]);
      const failed = stepRow(fence.jobId, 1, { stepName: 'charge', status: 'failed', outputJson: null, error: 'card declined' });
      assert.equal(await s.stepRecord({ fence, step: failed }), true);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [step, failed]);
      const job = await mustGet(s, fence.jobId);
      assert.equal(job.status, 'running', 'recording a step does not change the job');
      assert.equal(job.attempt, 1);
    });

    it('stores a 1 MiB step output', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const big = bigJson(DEFAULT_MAX_PAYLOAD_BYTES);
      assert.equal(await s.stepRecord({ fence, step: stepRow(fence.jobId, 0, { outputJson: big }) }), true);
      const [got] = await s.stepList({ jobId: fence.jobId });
      assert.ok(got?.outputJson === big, 'big step output changed in the round trip');
    });

    it('refuses checkpoints with a stale fence and writes nothing', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      for (const f of [{ ...fence, workerId: 'other' }, { ...fence, runCount: fence.runCount + 1 }, { ...fence, runCount: 0 }]) {
        assert.equal(await s.stepRecord({ fence: f, step: stepRow(fence.jobId, 0) }), false);
      }
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), []);
      const unknown = newId();
      assert.equal(await s.stepRecord({ fence: { ...fence, jobId: unknown }, step: stepRow(unknown, 0) }), false);
      assert.deepEqual(await s.stepList({ jobId: unknown }), []);
      // A job that is no longer running (completed) takes no checkpoint either.
      const done = await completedJob(s);
      const doneFence = { jobId: done.id, workerId: 'worker-a', runCount: done.runCount };
      assert.equal(await s.stepRecord({ fence: doneFence, step: stepRow(done.id, 0) }), false);
      assert.deepEqual(await s.stepList({ jobId: done.id }), []);
    });

    it('keeps an existing finished checkpoint and returns false for a second write', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const first = stepRow(fence.jobId, 0, { outputJson: '"first"' });
      assert.equal(await s.stepRecord({ fence, step: first }), true);
      assert.equal(await s.stepRecord({ fence, step: stepRow(fence.jobId, 0, { outputJson: '"second"' }) }), false);
      assert.equal(await s.stepRecord({ fence, step: stepRow(fence.jobId, 0, { status: 'failed', error: 'x' }) }), false);
      assert.equal(await s.stepRecord({ fence, step: stepRow(fence.jobId, 0, { status: 'waiting' }) }), false);
      const failed = stepRow(fence.jobId, 1, { status: 'failed', error: 'permanent' });
      assert.equal(await s.stepRecord({ fence, step: failed }), true);
      assert.equal(await s.stepRecord({ fence, step: stepRow(fence.jobId, 1, { outputJson: '"late"' }) }), false);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [first, failed]);
    });

    it('replaces a waiting checkpoint with the finished one', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const waiting = stepRow(fence.jobId, 0, { stepName: 'sleep', status: 'waiting', outputJson: '{"until":123}' });
      assert.equal(await s.stepRecord({ fence, step: waiting }), true);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [waiting]);
      const waiting2 = { ...waiting, outputJson: '{"until":456}' };
      assert.equal(await s.stepRecord({ fence, step: waiting2 }), true, 'a waiting row is replaced by another waiting row');
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [waiting2]);
      const done = stepRow(fence.jobId, 0, { stepName: 'sleep', status: 'completed', outputJson: 'null' });
      assert.equal(await s.stepRecord({ fence, step: done }), true);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [done]);
    });

    it('lists checkpoints by step index, per job', async () => {
      const s = ctx.s;
      const a = await runningJob(s);
      const b = await runningJob(s);
      for (const i of [2, 0, 10, 1]) {
        assert.equal(await s.stepRecord({ fence: a.fence, step: stepRow(a.fence.jobId, i, { outputJson: String(i) }) }), true);
      }
      assert.equal(await s.stepRecord({ fence: b.fence, step: stepRow(b.fence.jobId, 0, { outputJson: '"b"' }) }), true);
      const listed = await s.stepList({ jobId: a.fence.jobId });
      assert.deepEqual(listed.map((r) => r.stepIndex), [0, 1, 2, 10]);
      assert.deepEqual(listed.map((r) => r.outputJson), ['0', '1', '2', '10']);
      assert.deepEqual((await s.stepList({ jobId: b.fence.jobId })).map((r) => r.outputJson), ['"b"']);
      assert.deepEqual(await s.stepList({ jobId: newId() }), []);
    });

    it('suspends with a checkpoint in one call: job waiting, attempt given back, step recorded', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const t = (await s.clockNow()) + 60_000;
      const step = stepRow(fence.jobId, 0, { stepName: 'sleep', status: 'waiting', outputJson: String(t) });
      assert.equal(await s.jobSuspend({ fence: { ...fence, workerId: 'other' }, step, wakeAt: t, waitSignal: null }), false);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), []);
      assert.equal(await s.jobSuspend({ fence, step, wakeAt: t, waitSignal: null }), true);
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'waiting');
      assert.equal(row.attempt, 0, 'suspending gives the attempt back');
      assert.equal(row.runCount, 1);
      assert.equal(row.wakeAt, t);
      assert.equal(row.waitSignal, null);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [step]);
      assert.deepEqual(await s.jobHeartbeat({ workerId: fence.workerId, runs: [{ jobId: fence.jobId, runCount: 1 }], leaseMs: 1_000 }), []);
      assert.equal(await s.jobSuspend({ fence, step: null, wakeAt: t, waitSignal: null }), false, 'suspended twice');
    });

    it('stepRecordMany applies each item as stepRecord would', async () => {
      const s = ctx.s;
      const a = await runningJob(s);
      const b = await runningJob(s);
      const done = await completedJob(s);
      const kept = stepRow(b.fence.jobId, 0, { outputJson: '"kept"' });
      assert.equal(await s.stepRecord({ fence: b.fence, step: kept }), true);
      const waiting = stepRow(a.fence.jobId, 1, { status: 'waiting', outputJson: '{"until":1}' });
      assert.equal(await s.stepRecord({ fence: a.fence, step: waiting }), true);
      const a0 = stepRow(a.fence.jobId, 0, { outputJson: '{"z":1, "a":"é"}' });
      const a1 = stepRow(a.fence.jobId, 1, { status: 'completed', outputJson: 'null' });
      const b1 = stepRow(b.fence.jobId, 1, { status: 'failed', outputJson: null, error: 'boom' });
      const applied = await s.stepRecordMany({
        items: [
          { fence: a.fence, step: a0 },
          { fence: { ...b.fence, runCount: b.fence.runCount + 1 }, step: stepRow(b.fence.jobId, 2) },
          { fence: b.fence, step: stepRow(b.fence.jobId, 0, { outputJson: '"second"' }) },
          { fence: a.fence, step: a1 },
          { fence: { jobId: done.id, workerId: 'worker-a', runCount: done.runCount }, step: stepRow(done.id, 0) },
          { fence: b.fence, step: b1 },
        ],
      });
      assert.deepEqual(applied, [true, false, false, true, false, true]);
      assert.deepEqual(await s.stepList({ jobId: a.fence.jobId }), [a0, a1]);
      assert.deepEqual(await s.stepList({ jobId: b.fence.jobId }), [kept, b1]);
      assert.deepEqual(await s.stepList({ jobId: done.id }), []);
      assert.deepEqual(await s.stepRecordMany({ items: [] }), []);
    });
  });
}
