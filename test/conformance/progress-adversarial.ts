/**
 * Conformance, adversarial: job progress where drivers tend to break — a job retried by an
 * operator after it failed (on PostgreSQL it comes back from the history partition) keeps its
 * progress; a call with thousands of items (PostgreSQL parameters, MySQL packets) applies each
 * by its own fence, with long astral messages intact; the time returned is the time stored; and
 * progress never disturbs the job's other columns or its listing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Fence, JobProgressItem, JobRow } from '../../src/storage/storage.js';
import { checkProgress } from '../../src/workflow/progress.js';
import type { StorageMaker } from '../helpers/storages.js';
import { applied, claim, insertJob, mustGet, runningJob, uniqueName } from '../helpers/factories.js';
import { useStorage } from './context.js';

/** The progress columns of a row. */
function progressOf(row: JobRow): [number | null, string | null, number | null] {
  return [row.progressValue, row.progressMessage, row.progressAt];
}

/** Registers the adversarial progress tests. */
export function describeProgressAdversarial(make: StorageMaker): void {
  describe('job progress, adversarial', () => {
    const ctx = useStorage(make, 'conformance-progress-adv');

    it('a failed job retried by an operator keeps its progress (back from finished storage) until its next run reports', async () => {
      const s = ctx.s;
      const queue = uniqueName('q');
      const { fence } = await runningJob(s, { queue, maxRetries: 0 });
      const [at] = await s.jobProgressMany({ items: [{ ...fence, value: 0.3, message: 'before the failure' }] });
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'failed', error: 'boom' }] })), [true]);
      const failed = await mustGet(s, fence.jobId);
      assert.equal(failed.status, 'failed');
      assert.deepEqual(progressOf(failed), [0.3, 'before the failure', at]);
      const r = await s.jobRetryMany({ ids: [fence.jobId] });
      assert.deepEqual(r.done, [fence.jobId]);
      const again = await mustGet(s, fence.jobId);
      assert.equal(again.status, 'pending');
      assert.deepEqual(progressOf(again), [0.3, 'before the failure', at], 'kept across the operator retry');
      const [claimed] = await claim(s, queue, 1);
      assert.ok(claimed);
      assert.deepEqual(progressOf(claimed), [0.3, 'before the failure', at]);
      const [old, now] = await s.jobProgressMany({
        items: [
          { ...fence, value: 0.99, message: 'the old run' },
          { jobId: claimed.id, workerId: claimed.lockedBy ?? '', runCount: claimed.runCount, value: 0.05, message: null },
        ],
      });
      assert.equal(old, null, 'the old run is fenced out');
      assert.ok(typeof now === 'number');
      assert.deepEqual(progressOf(await mustGet(s, fence.jobId)), [0.05, null, now]);
    });

    it('3,000 items in one call, half of them fenced out, with 1,024-unit astral messages: each applied by its own fence, in one time', async () => {
      const s = ctx.s;
      const queue = uniqueName('q');
      const n = 1_500;
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push(await insertJob(s, { queue }));
      const rows: JobRow[] = [];
      while (rows.length < n) rows.push(...(await claim(s, queue, n - rows.length)));
      assert.equal(rows.length, n);
      const message = checkProgress(0.5, '\u{1F680}'.repeat(600)).message;
      assert.ok(message !== null && message.length <= 1024);
      const items: JobProgressItem[] = [];
      for (const [i, r] of rows.entries()) {
        const fence: Fence = { jobId: r.id, workerId: r.lockedBy ?? '', runCount: r.runCount };
        items.push({ ...fence, value: i / n, message });
        items.push({ ...fence, workerId: 'not-the-owner', value: 1, message: 'zombie' });
      }
      // Fenced-out items come last for each job: only the last item of a job applies, so move the
      // good ones after the bad ones for half of the jobs.
      const ordered: JobProgressItem[] = [];
      for (let i = 0; i < items.length; i += 2) {
        if ((i / 2) % 2 === 0) ordered.push(items[i]!, items[i + 1]!);
        else ordered.push(items[i + 1]!, items[i]!);
      }
      const out = await s.jobProgressMany({ items: ordered });
      assert.equal(out.length, ordered.length);
      const times = new Set(out.filter((t): t is number => t !== null));
      assert.equal(times.size, 1, 'one time for the whole call');
      const at = [...times][0]!;
      const stored = await s.jobGetMany({ ids });
      const byId = new Map(stored.map((r) => [r.id, r]));
      for (let k = 0; k < n; k++) {
        const row = byId.get(rows[k]!.id)!;
        const goodLast = k % 2 === 1;
        if (goodLast) assert.deepEqual(progressOf(row), [k / n, message, at], `job ${k}`);
        else assert.deepEqual(progressOf(row), [null, null, null], `job ${k}: its last item was fenced out`);
        assert.equal(out[2 * k + 1] !== null, goodLast, `result of job ${k}'s last item`);
        assert.equal(out[2 * k], null, `job ${k}'s earlier item reports null`);
        assert.equal(row.status, 'running');
        assert.equal(row.lockedBy, rows[k]!.lockedBy, 'the lease is untouched');
        assert.equal(row.runCount, rows[k]!.runCount);
      }
    });

    it('a progress write leaves every other column as it was (lease, attempt, times, payload)', async () => {
      const s = ctx.s;
      const { fence, row } = await runningJob(s, { argsJson: '{"a":1}', metaJson: '{"m":"x"}' });
      await s.jobProgressMany({ items: [{ ...fence, value: 1, message: '' }] });
      const after = await mustGet(s, fence.jobId);
      const strip = (r: JobRow): Partial<JobRow> => {
        const { progressValue: _v, progressMessage: _m, progressAt: _a, ...rest } = r;
        return rest;
      };
      assert.deepEqual(strip(after), strip(row));
      assert.deepEqual([after.progressValue, after.progressMessage], [1, ''], 'an empty message stays an empty string, not null');
    });
  });
}
