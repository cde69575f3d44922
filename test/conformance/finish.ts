/**
 * Conformance: finishing runs — complete, fail and retry, each fenced by worker, run count and
 * status; a batch of mixed outcomes applies item by item; batches too large for one statement
 * (by bytes or by item count) still apply whole.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/storage/codec.js';
import type { StorageMaker } from '../helpers/storages.js';
import type { Fence, JobFinishItem, Storage } from '../../src/storage/storage.js';
import {
  applied,
  assertBetween,
  bigJson,
  claim,
  claimChildren,
  claimOne,
  fanOutParent,
  fenceOf,
  insertJob,
  jobInsert,
  mustGet,
  runningJob,
  uniqueName,
} from '../helpers/factories.js';
import { useStorage } from './context.js';

/** Inserts `n` jobs into a fresh queue and claims them all; returns their fences in id order. */
async function runningJobs(s: Storage, n: number): Promise<Fence[]> {
  const queue = uniqueName('q');
  const jobs = Array.from({ length: n }, () => jobInsert({ queue }));
  assert.equal((await s.jobInsertMany({ jobs })).inserted.length, n);
  const fences: Fence[] = [];
  while (fences.length < n) {
    const rows = await claim(s, queue, n - fences.length, { workerId: 'bulk' });
    assert.ok(rows.length > 0, `claimed ${fences.length} of ${n}`);
    for (const r of rows) fences.push({ jobId: r.id, workerId: 'bulk', runCount: r.runCount });
  }
  return fences.sort((a, b) => (a.jobId < b.jobId ? -1 : 1));
}

/**
 * A JSON text of about `bytes` UTF-8 bytes made of characters a client must escape in SQL text
 * (quotes, backslashes, newlines) and multi-byte ones, different for each `seed`.
 */
function escapeHeavyJson(bytes: number, seed: number): string {
  const unit = `"\\'\n€😀${seed % 10}`;
  const value = unit.repeat(Math.ceil(bytes / (Buffer.byteLength(JSON.stringify(unit)) - 2)));
  return JSON.stringify({ seed, value });
}

/** Registers the finish tests. */
export function describeFinish(make: StorageMaker): void {
  describeBigBatches(make);
  describe('finish: complete, fail, retry', () => {
    const ctx = useStorage(make, 'conformance-finish');

    it('completes a run: result stored byte for byte, completed_at set, lease cleared', async () => {
      const s = ctx.s;
      const { fence, row: claimed } = await runningJob(s);
      const t0 = await s.clockNow();
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: '{"b":2, "a":"é😀"}' }] })), [true]);
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
      const res = applied(await s.jobFinishMany({
        items: [
          { ...a.fence, outcome: 'completed', resultJson: null },
          { ...b.fence, outcome: 'completed', resultJson: big },
        ],
      }));
      assert.deepEqual(res, [true, true]);
      assert.equal((await mustGet(s, a.fence.jobId)).resultJson, null);
      assert.ok((await mustGet(s, b.fence.jobId)).resultJson === big, 'big result changed in the round trip');
    });

    it('fails a run: status failed, last_error, completed_at, lease cleared', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const t0 = await s.clockNow();
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'failed', error: 'kaput: ü' }] })), [true]);
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
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'retry', error: 'try again', delayMs: 60_000 }] })), [true]);
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
    });

    it('re-claims a job retried without delay with the next attempt and run count', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const { fence } = await runningJob(s, { queue: q });
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'retry', error: 'e1', delayMs: 0 }] })), [true]);
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
        const res = applied(await s.jobFinishMany({
          items: [
            { ...f, outcome: 'completed', resultJson: '1' },
            { ...f, outcome: 'failed', error: 'x' },
            { ...f, outcome: 'retry', error: 'x', delayMs: 0 },
          ],
        }));
        assert.deepEqual(res, [false, false, false]);
      }
      assert.deepEqual(await mustGet(s, fence.jobId), before, 'stale finishes change nothing');

      // A finished run cannot be finished again.
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: '"first"' }] })), [true]);
      const done = await mustGet(s, fence.jobId);
      const again = applied(await s.jobFinishMany({
        items: [
          { ...fence, outcome: 'completed', resultJson: '"second"' },
          { ...fence, outcome: 'failed', error: 'late' },
          { ...fence, outcome: 'retry', error: 'late', delayMs: 0 },
        ],
      }));
      assert.deepEqual(again, [false, false, false]);
      assert.deepEqual(await mustGet(s, fence.jobId), done);
    });

    it('ignores the finish of a run whose job was cancelled meanwhile', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      assert.deepEqual(await s.jobCancel({ id: fence.jobId }), [fence.jobId]);
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: '1' }] })), [false]);
      assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'retry', error: 'x', delayMs: 0 }] })), [false]);
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
      const res = applied(await s.jobFinishMany({
        items: [
          { ...a!, outcome: 'completed', resultJson: '"A"' },
          { ...b!, workerId: 'intruder', outcome: 'completed', resultJson: '"B?"' },
          { ...c!, outcome: 'retry', error: 'C', delayMs: 0 },
          { ...d!, outcome: 'failed', error: 'D' },
          { ...b!, outcome: 'failed', error: 'B' },
        ],
      }));
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
      assert.deepEqual(applied(await s.jobFinishMany({ items: [] })), []);
    });
  });
}

/** Batches beyond one statement's limits: bytes (packet size) and item counts (bound parameters). */
function describeBigBatches(make: StorageMaker): void {
  describe('finish: batches beyond one statement', () => {
    const ctx = useStorage(make, 'conformance-finish-big');

    it('applies 24 outcomes of ~0.8 MB each in one call, read back byte for byte', async () => {
      const s = ctx.s;
      const fences = await runningJobs(s, 24);
      // Half plain multi-byte text, half text that escaping makes up to twice as long.
      const results = fences.map((_, i) => (i % 2 === 0 ? bigJson(800_000 + i) : escapeHeavyJson(800_000, i)));
      const items: JobFinishItem[] = fences.map((f, i) => ({ ...f, outcome: 'completed', resultJson: results[i]! }));
      assert.deepEqual(applied(await s.jobFinishMany({ items })), items.map(() => true));
      for (const [i, f] of fences.entries()) {
        const row = await mustGet(s, f.jobId);
        assert.equal(row.status, 'completed', `job ${i}`);
        assert.ok(row.resultJson === results[i], `result ${i} changed in the round trip`);
      }
    });

    it('applies a batch mixing large and small outcomes, stale fences and repeats, item by item', async () => {
      const s = ctx.s;
      const fences = await runningJobs(s, 64);
      const items: JobFinishItem[] = [];
      const expected: boolean[] = [];
      const want = new Map<string, { status: string; result: string | null; error: string | null }>();
      for (const [i, f] of fences.entries()) {
        if (i % 5 === 0) {
          items.push({ ...f, workerId: 'intruder', outcome: 'completed', resultJson: '"stale"' });
          expected.push(false);
        }
        if (i % 4 === 0) {
          const result = i % 8 === 0 ? escapeHeavyJson(900_000, i) : bigJson(900_000);
          items.push({ ...f, outcome: 'completed', resultJson: result });
          want.set(f.jobId, { status: 'completed', result, error: null });
        } else if (i % 4 === 1) {
          const error = `failed ${i}: ${'ü'.repeat(i)}`;
          items.push({ ...f, outcome: 'failed', error });
          want.set(f.jobId, { status: 'failed', result: null, error });
        } else if (i % 4 === 2) {
          items.push({ ...f, outcome: 'retry', error: `retry ${i}`, delayMs: 60_000 });
          want.set(f.jobId, { status: 'pending', result: null, error: `retry ${i}` });
        } else {
          items.push({ ...f, outcome: 'completed', resultJson: `{"i":${i}}` });
          want.set(f.jobId, { status: 'completed', result: `{"i":${i}}`, error: null });
        }
        expected.push(true);
        if (i % 7 === 0) {
          // A second outcome for the same run: the first one applied, this one is refused.
          items.push({ ...f, outcome: 'completed', resultJson: bigJson(700_000) });
          expected.push(false);
        }
      }
      assert.deepEqual(applied(await s.jobFinishMany({ items })), expected);
      for (const f of fences) {
        const row = await mustGet(s, f.jobId);
        const w = want.get(f.jobId)!;
        assert.equal(row.status, w.status, `status of ${f.jobId}`);
        assert.ok(row.resultJson === w.result, `result of ${f.jobId} changed in the round trip`);
        assert.equal(row.lastError, w.error, `error of ${f.jobId}`);
      }
    });

    it('counts fan-out children finishing with large outcomes, and cancels a failing parent\'s subtree', async () => {
      const s = ctx.s;
      // Fan-out A: 11 children complete with ~0.9 MB each, one fails, all in one call.
      const a = await fanOutParent(s, { n: 12, strategy: 'collect-all' });
      const aKids = await claimChildren(s, a);
      // Fan-out B: decided by its first two children; its parent runs again and fails while two run.
      const b = await fanOutParent(s, { n: 4, strategy: 'threshold', threshold: 0.5 });
      const bKids = await claimChildren(s, b);
      const first = bKids.slice(0, 2).map((f) => ({ ...f, outcome: 'completed' as const, resultJson: '1' }));
      assert.deepEqual(applied(await s.jobFinishMany({ items: first })), [true, true]);
      const bParent = fenceOf(await claimOne(s, b.queue, b.parentId));
      const results = aKids.map((_, i) => (i % 2 === 0 ? bigJson(900_000 + i) : escapeHeavyJson(900_000, i)));
      const items: JobFinishItem[] = [
        ...aKids.map((f, i): JobFinishItem => (i === 5 ? { ...f, outcome: 'failed', error: 'child 5' } : { ...f, outcome: 'completed', resultJson: results[i]! })),
        { ...bParent, outcome: 'failed', error: 'parent b' },
      ];
      assert.deepEqual(applied(await s.jobFinishMany({ items })), items.map(() => true));
      const fa = await s.fanOutGet({ id: a.fanOutId });
      assert.deepEqual([fa?.status, fa?.succeeded, fa?.failed, fa?.cancelled], ['succeeded', 11, 1, 0]);
      assert.equal((await mustGet(s, a.parentId)).status, 'pending', 'parent A resumed');
      for (const [i, f] of aKids.entries()) {
        if (i !== 5) assert.ok((await mustGet(s, f.jobId)).resultJson === results[i], `result of child ${i} changed`);
      }
      assert.equal((await mustGet(s, b.parentId)).status, 'failed');
      for (const f of bKids.slice(2)) assert.equal((await mustGet(s, f.jobId)).status, 'cancelled');
      const fb = await s.fanOutGet({ id: b.fanOutId });
      assert.deepEqual([fb?.succeeded, fb?.failed, fb?.cancelled], [2, 0, 2]);
    });

    it('applies 3,000 small outcomes in one call', async () => {
      const s = ctx.s;
      const fences = await runningJobs(s, 3_000);
      const outcomes = ['completed', 'failed', 'retry'] as const;
      const items: JobFinishItem[] = fences.map((f, i) => {
        const outcome = outcomes[i % 3]!;
        if (outcome === 'completed') return { ...f, outcome, resultJson: `[${i}]` };
        if (outcome === 'failed') return { ...f, outcome, error: `e${i}` };
        return { ...f, outcome, error: `r${i}`, delayMs: 60_000 };
      });
      assert.deepEqual(applied(await s.jobFinishMany({ items })), items.map(() => true));
      const counts = { completed: 0, failed: 0, pending: 0 } as Record<string, number>;
      for (const [i, f] of fences.entries()) {
        const row = await mustGet(s, f.jobId);
        counts[row.status] = (counts[row.status] ?? 0) + 1;
        if (i % 3 === 0) assert.equal(row.resultJson, `[${i}]`);
        else assert.equal(row.lastError, i % 3 === 1 ? `e${i}` : `r${i}`);
      }
      assert.deepEqual(counts, { completed: 1_000, failed: 1_000, pending: 1_000 });
    });
  });
}
