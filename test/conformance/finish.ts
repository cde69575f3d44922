/**
 * Conformance: finishing runs — complete, fail and retry, each fenced by worker, run count and
 * status; a batch of mixed outcomes applies item by item.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/storage/codec.js';
import type { StorageMaker } from '../helpers/storages.js';
import { assertBetween, bigJson, claim, claimOne, insertJob, mustGet, runningJob, uniqueName } from '../helpers/factories.js';
import { useStorage } from './context.js';

/** Registers the finish tests. */
export function describeFinish(make: StorageMaker): void {
  describe('finish: complete, fail, retry', () => {
    const ctx = useStorage(make, 'conformance-finish');

    it('completes a run: result stored byte for byte, completed_at set, lease cleared', async () => {
      const s = ctx.s;
      const { fence, row: claimed } = await runningJob(s);
      const t0 = await s.clockNow();
      assert.deepEqual(await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: '{"b":2, "a":"é😀"}' }] }), [true]);
      const t1 = await s.clockNow();
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'completed');
      assert.equal(row.resultJson, '{"b":2, "a":"é😀"}');
      assertBetween(row.completedAt, t0, t1, 'completedAt');
      assert.equal(row.leaseExpiresAt, null);
      assert.equal(row.attempt, 1);
      assert.equal(row.runCount, 1);
      assert.equal(row.startedAt, claimed.startedAt);
      assert.equal(row.lastError, null);
    });

    it('completes with a null result and with a 1 MiB result', async () => {
      const s = ctx.s;
      const a = await runningJob(s);
      const b = await runningJob(s);
      const big = bigJson(DEFAULT_MAX_PAYLOAD_BYTES);
      const res = await s.jobFinishMany({
        items: [
          { ...a.fence, outcome: 'completed', resultJson: null },
          { ...b.fence, outcome: 'completed', resultJson: big },
        ],
      });
      assert.deepEqual(res, [true, true]);
      assert.equal((await mustGet(s, a.fence.jobId)).resultJson, null);
      assert.ok((await mustGet(s, b.fence.jobId)).resultJson === big, 'big result changed in the round trip');
    });

    it('fails a run: status failed, last_error, completed_at, lease cleared', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const t0 = await s.clockNow();
      assert.deepEqual(await s.jobFinishMany({ items: [{ ...fence, outcome: 'failed', error: 'kaput: ü' }] }), [true]);
      const t1 = await s.clockNow();
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'failed');
      assert.equal(row.lastError, 'kaput: ü');
      assertBetween(row.completedAt, t0, t1, 'completedAt');
      assert.equal(row.leaseExpiresAt, null);
      assert.equal(row.resultJson, null);
    });

    it('retries a run: back to pending, run_at = now + delay, attempt kept, last_error set', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const { fence } = await runningJob(s, { queue: q });
      const t0 = await s.clockNow();
      assert.deepEqual(await s.jobFinishMany({ items: [{ ...fence, outcome: 'retry', error: 'try again', delayMs: 60_000 }] }), [true]);
      const t1 = await s.clockNow();
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'pending');
      assert.equal(row.lastError, 'try again');
      assert.equal(row.attempt, 1, 'a retry keeps the attempt it consumed');
      assert.equal(row.runCount, 1);
      assert.equal(row.completedAt, null);
      assert.equal(row.leaseExpiresAt, null);
      assertBetween(row.runAt, t0 + 60_000, t1 + 60_000, 'run_at of the retry');
      assert.deepEqual(await claim(s, q, 5), [], 'not claimed before its delay');
      assert.equal(await s.jobNextRunAt({ queues: [q] }), row.runAt);
    });

    it('re-claims a job retried without delay with the next attempt and run count', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const { fence } = await runningJob(s, { queue: q });
      assert.deepEqual(await s.jobFinishMany({ items: [{ ...fence, outcome: 'retry', error: 'e1', delayMs: 0 }] }), [true]);
      const again = await claimOne(s, q, fence.jobId, { workerId: 'worker-b' });
      assert.equal(again.attempt, 2);
      assert.equal(again.runCount, 2);
      assert.equal(again.lockedBy, 'worker-b');
      assert.equal(again.lastError, 'e1');
    });

    it('ignores stale fences: wrong worker, wrong run count, job not running, unknown job', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const before = await mustGet(s, fence.jobId);
      const stale = [
        { ...fence, workerId: 'someone-else' },
        { ...fence, runCount: fence.runCount + 1 },
        { ...fence, runCount: fence.runCount - 1 },
        { ...fence, jobId: '00000000-0000-7000-8000-000000000000' },
      ];
      for (const f of stale) {
        const res = await s.jobFinishMany({
          items: [
            { ...f, outcome: 'completed', resultJson: '1' },
            { ...f, outcome: 'failed', error: 'x' },
            { ...f, outcome: 'retry', error: 'x', delayMs: 0 },
          ],
        });
        assert.deepEqual(res, [false, false, false]);
      }
      assert.deepEqual(await mustGet(s, fence.jobId), before, 'stale finishes change nothing');

      // A finished run cannot be finished again.
      assert.deepEqual(await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: '"first"' }] }), [true]);
      const done = await mustGet(s, fence.jobId);
      const again = await s.jobFinishMany({
        items: [
          { ...fence, outcome: 'completed', resultJson: '"second"' },
          { ...fence, outcome: 'failed', error: 'late' },
          { ...fence, outcome: 'retry', error: 'late', delayMs: 0 },
        ],
      });
      assert.deepEqual(again, [false, false, false]);
      assert.deepEqual(await mustGet(s, fence.jobId), done);
    });

    it('ignores the finish of a run whose job was cancelled meanwhile', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      assert.deepEqual(await s.jobCancel({ id: fence.jobId }), [fence.jobId]);
      assert.deepEqual(await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: '1' }] }), [false]);
      assert.deepEqual(await s.jobFinishMany({ items: [{ ...fence, outcome: 'retry', error: 'x', delayMs: 0 }] }), [false]);
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'cancelled');
      assert.equal(row.resultJson, null);
    });

    it('applies a batch of mixed outcomes item by item, in order', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const ids = [await insertJob(s, { queue: q }), await insertJob(s, { queue: q }), await insertJob(s, { queue: q }), await insertJob(s, { queue: q })];
      const rows = await claim(s, q, 4, { workerId: 'batcher' });
      assert.deepEqual(rows.map((r) => r.id), ids);
      const [a, b, c, d] = rows.map((r) => ({ jobId: r.id, workerId: 'batcher', runCount: r.runCount }));
      const res = await s.jobFinishMany({
        items: [
          { ...a!, outcome: 'completed', resultJson: '"A"' },
          { ...b!, workerId: 'intruder', outcome: 'completed', resultJson: '"B?"' },
          { ...c!, outcome: 'retry', error: 'C', delayMs: 0 },
          { ...d!, outcome: 'failed', error: 'D' },
          { ...b!, outcome: 'failed', error: 'B' },
        ],
      });
      assert.deepEqual(res, [true, false, true, true, true]);
      const [ra, rb, rc, rd] = await Promise.all(ids.map((id) => mustGet(s, id)));
      assert.equal(ra!.status, 'completed');
      assert.equal(ra!.resultJson, '"A"');
      assert.equal(rb!.status, 'failed');
      assert.equal(rb!.lastError, 'B');
      assert.equal(rb!.resultJson, null);
      assert.equal(rc!.status, 'pending');
      assert.equal(rc!.lastError, 'C');
      assert.equal(rd!.status, 'failed');
      assert.equal(rd!.lastError, 'D');
      assert.deepEqual(await s.jobFinishMany({ items: [] }), []);
    });
  });
}
