/**
 * Conformance: job progress (`jobProgressMany`) — fenced like every write to a claimed job,
 * stamped with the storage clock, returned by every read of the job (get, get many, list,
 * claim), kept when the job finishes and runs again, batched, and storing odd text as given.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import type { Fence, JobRow } from '../../src/storage/storage.js';
import { checkProgress } from '../../src/workflow/progress.js';
import type { StorageMaker } from '../helpers/storages.js';
import { applied, assertBetween, claimOne, completedJob, insertJob, mustGet, runningJob, uniqueName } from '../helpers/factories.js';
import { useManualClock, useStorage } from './context.js';

/** The progress columns of a row. */
function progressOf(row: JobRow): [number | null, string | null, number | null] {
  return [row.progressValue, row.progressMessage, row.progressAt];
}

/** One progress item of `fence`. */
function item(fence: Fence, value: number, message: string | null = null): Fence & { value: number; message: string | null } {
  return { ...fence, value, message };
}

/** Registers the progress tests. */
export function describeProgress(make: StorageMaker): void {
  describe('job progress', () => {
    const ctx = useStorage(make, 'conformance-progress');
    const manual = useManualClock(ctx, 'conformance-progress-clock');

    it('a job has no progress until a run stores one; then value, message and the storage time are on the row', async () => {
      const s = ctx.s;
      const { fence, row } = await runningJob(s);
      assert.deepEqual(progressOf(row), [null, null, null], 'a claimed row carries no progress yet');
      const before = await s.clockNow();
      const [at] = await s.jobProgressMany({ items: [item(fence, 0.4, 'resized 4 of 10')] });
      const after = await s.clockNow();
      assert.ok(typeof at === 'number');
      assertBetween(at, before, after, 'progress time (database clock)');
      const stored = await mustGet(s, fence.jobId);
      assert.deepEqual(progressOf(stored), [0.4, 'resized 4 of 10', at]);
      // Nothing else changed: still running, same lease and heartbeat.
      assert.deepEqual({ ...stored, progressValue: null, progressMessage: null, progressAt: null }, { ...row, progressValue: null, progressMessage: null, progressAt: null });
    });

    it('takes its time from the injected clock, exactly, and a later report replaces the earlier one', async () => {
      const m = manual();
      const { fence } = await runningJob(m.s);
      m.now += 1_234;
      assert.deepEqual(await m.s.jobProgressMany({ items: [item(fence, 0.25, 'a quarter')] }), [m.now]);
      m.now += 10;
      assert.deepEqual(await m.s.jobProgressMany({ items: [item(fence, 0.5)] }), [m.now]);
      assert.deepEqual(progressOf(await mustGet(m.s, fence.jobId)), [0.5, null, m.now], 'the latest report, its message absent');
    });

    it('every read of the job returns it: get, get many, list, and the claim of its next run; it stays when the job finishes and runs again', async () => {
      const s = ctx.s;
      const queue = uniqueName('q');
      const { fence } = await runningJob(s, { queue, maxRetries: 3 });
      const [at] = await s.jobProgressMany({ items: [item(fence, 0.75, 'three quarters')] });
      const expected = [0.75, 'three quarters', at ?? -1];
      assert.deepEqual(progressOf((await s.jobGetMany({ ids: [fence.jobId] }))[0]!), expected, 'jobGetMany');
      assert.deepEqual(progressOf((await s.jobList({ queue, limit: 10 }))[0]!), expected, 'jobList');
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'retry', error: 'again', delayMs: 0 }] })), [true]);
      assert.deepEqual(progressOf(await mustGet(s, fence.jobId)), expected, 'kept when the job goes back to pending');
      const again = await claimOne(s, queue, fence.jobId);
      assert.deepEqual(progressOf(again), expected, 'the claim of the next run returns it');
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, runCount: again.runCount, outcome: 'completed', resultJson: null }] })), [true]);
      const done = await mustGet(s, fence.jobId);
      assert.equal(done.status, 'completed');
      assert.deepEqual(progressOf(done), expected, 'kept when the job finishes (and moves to finished storage)');
      assert.deepEqual(progressOf((await s.jobList({ queue, statuses: ['completed'], limit: 10 }))[0]!), expected, 'listed among finished jobs');
    });

    it('is fenced: a wrong worker, an older run count, a finished, pending or released job writes nothing and reports null', async () => {
      const s = ctx.s;
      const live = await runningJob(s);
      const done = await completedJob(s);
      const pendingId = await insertJob(s, { queue: uniqueName('q') });
      const released = await runningJob(s);
      assert.deepEqual(await s.jobRelease({ runs: [released.fence] }), [released.fence.jobId]);
      const before = await Promise.all([live.fence.jobId, done.id, pendingId, released.fence.jobId].map((id) => mustGet(s, id)));
      const out = await s.jobProgressMany({
        items: [
          item({ ...live.fence, workerId: 'another-worker' }, 0.1, 'wrong worker'),
          item({ ...live.fence, runCount: live.fence.runCount - 1 }, 0.2, 'older run'),
          item({ jobId: done.id, workerId: done.lockedBy ?? live.fence.workerId, runCount: done.runCount }, 0.3, 'finished'),
          item({ jobId: pendingId, workerId: live.fence.workerId, runCount: 0 }, 0.4, 'pending'),
          item(released.fence, 0.5, 'released'),
          item({ jobId: 'no-such-job', workerId: live.fence.workerId, runCount: 1 }, 0.6, 'missing'),
        ],
      });
      assert.deepEqual(out, [null, null, null, null, null, null]);
      const after = await Promise.all([live.fence.jobId, done.id, pendingId, released.fence.jobId].map((id) => mustGet(s, id)));
      assert.deepEqual(after, before, 'no row changed');
    });

    it('a batch applies each item by its own fence, with its own value and message, in one call', async () => {
      const m = manual();
      const runs = await Promise.all(Array.from({ length: 120 }, () => runningJob(m.s)));
      const stale = await runningJob(m.s);
      m.now += 7;
      const items = runs.map((r, i) => item(r.fence, i / 119, i % 3 === 0 ? null : `item ${i}`));
      items.splice(60, 0, item({ ...stale.fence, workerId: 'zombie' }, 1, 'stale'));
      const out = await m.s.jobProgressMany({ items });
      assert.deepEqual(out, items.map((_, i) => (i === 60 ? null : m.now)));
      const rows = new Map((await m.s.jobGetMany({ ids: runs.map((r) => r.fence.jobId) })).map((r) => [r.id, r]));
      runs.forEach((r, i) => assert.deepEqual(progressOf(rows.get(r.fence.jobId)!), [i / 119, i % 3 === 0 ? null : `item ${i}`, m.now], `item ${i}`));
      assert.deepEqual(progressOf(await mustGet(m.s, stale.fence.jobId)), [null, null, null]);
    });

    it('a job given twice in one call takes its last item; the earlier reports null', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const out = await s.jobProgressMany({ items: [item(fence, 0.1, 'first'), item(fence, 0.9, 'last')] });
      assert.equal(out[0], null);
      assert.ok(typeof out[1] === 'number');
      assert.deepEqual(progressOf(await mustGet(s, fence.jobId)), [0.9, 'last', out[1]]);
    });

    it('stores values exactly, from 0 to 1', async () => {
      const s = ctx.s;
      for (const value of [0, 1, 0.1, 1 / 3, 0.1 + 0.2, 2 ** -30, 0.999999999999]) {
        const { fence } = await runningJob(s);
        await s.jobProgressMany({ items: [item(fence, value)] });
        assert.equal((await mustGet(s, fence.jobId)).progressValue, value, `value ${value}`);
      }
    });

    it('stores odd messages as the engine makes them storable: NUL and lone surrogates replaced, astral text, quotes, long text cut', async () => {
      const s = ctx.s;
      const odd = [
        'nul\u0000byte',
        'lone \uD800 high and \uDC00 low',
        'emoji 🎉 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, ünïcödé, 中文',
        `quotes ' " \\ backslash; DROP TABLE sdj_jobs; --`,
        '',
        'é'.repeat(5_000),
        '🎉'.repeat(700),
      ];
      for (const raw of odd) {
        const { message } = checkProgress(0.5, raw);
        assert.ok(message !== null);
        assert.ok(!message.includes('\u0000') && message.length <= 1024);
        const { fence } = await runningJob(s);
        const [at] = await s.jobProgressMany({ items: [item(fence, 0.5, message)] });
        assert.ok(typeof at === 'number', `stored: ${JSON.stringify(raw.slice(0, 20))}`);
        assert.equal((await mustGet(s, fence.jobId)).progressMessage, message, `round trip of ${JSON.stringify(raw.slice(0, 20))}`);
      }
    });

    it('refuses a value that is not finite, or a message that is not text, and writes nothing', async () => {
      const s = ctx.s;
      const { fence, row } = await runningJob(s);
      for (const value of [Number.NaN, Infinity, -Infinity, '0.5' as unknown as number]) {
        await assert.rejects(() => s.jobProgressMany({ items: [item(fence, 0.5), item(fence, value)] }), InvalidArgumentError);
      }
      await assert.rejects(() => s.jobProgressMany({ items: [item(fence, 0.5, 42 as unknown as string)] }), InvalidArgumentError);
      assert.deepEqual(await mustGet(s, fence.jobId), row);
    });

    it('an empty call writes nothing and answers at once', async () => {
      assert.deepEqual(await ctx.s.jobProgressMany({ items: [] }), []);
    });
  });
}
