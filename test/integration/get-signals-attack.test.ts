/**
 * `queue.getSignals` and `queue.getSteps` attacked the way operators and users will, on every
 * driver: limits and `after` cursors at and past their bounds; a job with thousands of signals
 * (the oldest page by default, every later one reachable with `after`, the newest included, each
 * signal exactly once); a payload exactly at the payload cap and one byte over; NUL, lone
 * surrogates and other odd characters in payloads (stored as escaped JSON text, so PostgreSQL's
 * text type never sees a NUL byte) and in names (refused, nothing stored); signals of a workflow
 * retried from scratch and from its failed step; a pruned job; a workflow with many checkpoints
 * read in pages, without the stored answers of `ctx.patched`.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { InvalidArgumentError, JobNotFoundError, noRetry, PayloadTooLargeError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import type { SignalInfo, StepInfo } from '../../src/queue/operator-types.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/storage/codec.js';
import { runningJob, stepRow, uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** Every signal of a job, walked page by page with `after`. */
async function walkSignals(queue: Queue, id: string, limit: number): Promise<{ all: SignalInfo[]; pages: number }> {
  const all: SignalInfo[] = [];
  let pages = 0;
  for (;;) {
    const last = all[all.length - 1];
    const page = await queue.getSignals(id, last === undefined ? { limit } : { limit, after: last.seq });
    if (page.length === 0) return { all, pages };
    pages++;
    assert.ok(page.length <= limit, 'a page holds at most limit signals');
    all.push(...page);
  }
}

/** Every checkpoint of a job, walked page by page with `after`. */
async function walkSteps(queue: Queue, id: string, limit: number): Promise<StepInfo[]> {
  const all: StepInfo[] = [];
  for (;;) {
    const last = all[all.length - 1];
    const page = await queue.getSteps(id, last === undefined ? { limit } : { limit, after: last.index });
    if (page.length === 0) return all;
    all.push(...page);
  }
}

for (const [name, make] of storageMatrix()) {
  describe(`getSignals and getSteps under attack (${name})`, () => {
    let ts: TestStorage;
    let queue: Queue;
    before(async () => {
      ts = await make(`get-signals-attack-${name}`);
      queue = new Queue(ts.storage);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('refuses every bad limit, after and option, and accepts the bounds', async () => {
      const id = await queue.enqueue(uniqueName('idle'), {}, { queue: uniqueName('idle') });
      await queue.signal(id, 'one', 1);
      for (const limit of [0, -1, 1001, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '5', null, true]) {
        await assert.rejects(queue.getSignals(id, { limit: limit as number }), InvalidArgumentError, `signals limit ${String(limit)}`);
        await assert.rejects(queue.getSteps(id, { limit: limit as number }), InvalidArgumentError, `steps limit ${String(limit)}`);
      }
      for (const a of [-1, 1.5, Number.NaN, '5', null, Number.MAX_SAFE_INTEGER + 2]) {
        await assert.rejects(queue.getSignals(id, { after: a as number }), InvalidArgumentError, `signals after ${String(a)}`);
      }
      for (const a of [-2, 1.5, Number.NaN, '5', null, 2 ** 31]) {
        await assert.rejects(queue.getSteps(id, { after: a as number }), InvalidArgumentError, `steps after ${String(a)}`);
      }
      await assert.rejects(queue.getSignals(id, { limit: 5, cursor: 'x' } as never), InvalidArgumentError);
      await assert.rejects(queue.getSteps(id, { order: 'desc' } as never), InvalidArgumentError);
      await assert.rejects(queue.getSteps(id, [] as never), InvalidArgumentError);
      assert.equal((await queue.getSignals(id, { limit: 1 })).length, 1);
      assert.equal((await queue.getSignals(id, { limit: 1000 })).length, 1);
      assert.equal((await queue.getSignals(id, { limit: 1000, after: 0 })).length, 1);
      assert.equal((await queue.getSignals(id, { after: Number.MAX_SAFE_INTEGER })).length, 0);
      assert.deepEqual(await queue.getSteps(id, { limit: 1000, after: -1 }), []);
      assert.deepEqual(await queue.getSteps(id, { after: 2 ** 31 - 1 }), []);
      // An unknown job is unknown with any options.
      const nobody = '00000000-0000-7000-8000-000000000000';
      await assert.rejects(queue.getSignals(nobody, { limit: 3, after: 10 }), JobNotFoundError);
      await assert.rejects(queue.getSteps(nobody, { limit: 3 }), JobNotFoundError);
      await queue.cancelJob(id);
    });

    it('a job with thousands of signals: the oldest page first, every later one reachable with after, each once', async () => {
      const id = await queue.enqueue(uniqueName('noisy'), {}, { queue: uniqueName('noisy') });
      const other = await queue.enqueue(uniqueName('other'), {}, { queue: uniqueName('other') });
      const n = 2_500;
      // Interleaved with another job's signals: seq is shared, so a page must skip the other job's.
      for (let i = 0; i < n; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, k) => queue.signal(id, `s${i + k}`, i + k)));
        await queue.signal(other, 'elsewhere', i);
      }
      const first = await queue.getSignals(id);
      assert.equal(first.length, 100, 'the default page');
      const { all, pages } = await walkSignals(queue, id, 1000);
      assert.equal(pages, 3);
      assert.equal(all.length, n, 'every signal once');
      assert.deepEqual(all.slice(0, 100), first, 'the default page is the oldest');
      assert.equal(new Set(all.map((s) => s.seq)).size, n, 'no signal twice');
      for (let i = 1; i < all.length; i++) assert.ok(all[i]!.seq > all[i - 1]!.seq, 'oldest first');
      assert.deepEqual(new Set(all.map((s) => s.payload)).size, n);
      assert.ok(all.every((s) => s.name.startsWith('s')), "no other job's signal");
      // The newest one is reachable: the one sent last is the last listed.
      await queue.signal(id, 'newest', { last: true });
      const tail = await queue.getSignals(id, { after: all[all.length - 1]!.seq });
      assert.deepEqual(tail.map((s) => [s.name, s.payload]), [['newest', { last: true }]]);
      await queue.cancelJob(id);
      await queue.cancelJob(other);
    });

    it('a payload exactly at the payload cap is stored and read whole; one byte over is refused, nothing stored', async () => {
      const id = await queue.enqueue(uniqueName('big'), {}, { queue: uniqueName('big') });
      // A JSON string of exactly the cap: the quotes count.
      const atCap = 'é'.repeat(10) + 'x'.repeat(DEFAULT_MAX_PAYLOAD_BYTES - 2 - 20);
      assert.equal(Buffer.byteLength(JSON.stringify(atCap), 'utf8'), DEFAULT_MAX_PAYLOAD_BYTES);
      await queue.signal(id, 'big', atCap);
      await assert.rejects(queue.signal(id, 'big', `${atCap}x`), PayloadTooLargeError);
      const got = await queue.getSignals(id);
      assert.equal(got.length, 1, 'the refused one left nothing');
      assert.equal(got[0]!.payload, atCap);
      await queue.cancelJob(id);
    });

    it('NUL, lone surrogates and other odd characters in payloads round-trip exactly; in names they are refused', async () => {
      const type = uniqueName('odd');
      const q = uniqueName('odd');
      queue.register(type, async (_: unknown, ctx) => ctx.waitForSignal('odd'));
      const odd = { nul: 'a\u0000b', lone: 'x\ud800y', low: '\udfff', pair: '😀', bidi: '\u202eevil', bom: '\ufeff', esc: '\\u0000', ctl: '\u0001\u001f\u007f' };
      const id = await queue.enqueue(type, {}, { queue: q });
      await queue.signal(id, 'odd', odd);
      for (const bad of ['a\u0000b', 'x\ud800', '\udfff', 'tab\there', '']) {
        await assert.rejects(queue.signal(id, bad, 1), InvalidArgumentError, JSON.stringify(bad));
      }
      const [s] = await queue.getSignals(id);
      assert.deepEqual(s!.payload, odd, 'read back exactly');
      assert.equal((await queue.getSignals(id)).length, 1, 'the refused names left nothing');
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, odd, 'the wait got it exactly');
      assert.deepEqual((await queue.getSteps(id))[0]!.output, odd, 'and its checkpoint holds it exactly');
    });

    it('signals of a workflow retried from its failed step and from scratch', async () => {
      const type = uniqueName('retried');
      const q = uniqueName('retried');
      const state = { fail: true };
      queue.register(type, async (_: unknown, ctx) => {
        const a = await ctx.waitForSignal<number>('a');
        if (state.fail) throw noRetry(new Error('after a'));
        return a;
      });
      const id = await queue.enqueue(type, {}, { queue: q, retries: 0 });
      await queue.signal(id, 'a', 1);
      await queue.signal(id, 'spare', 'never waited for');
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'failed');
      const [a1] = await queue.getSignals(id);
      assert.ok(a1!.consumedAt !== undefined);

      // From the failed step: the wait replays its checkpoint; no new signal is needed.
      await queue.retryJob(id, { fromFailedStep: true });
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'failed');
      // From scratch: checkpoints go, signals stay as they were (consumed stays consumed), so
      // the wait wants a new one.
      state.fail = false;
      await queue.retryJob(id);
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting', { message: 'waits for a new "a"' });
      const kept = await queue.getSignals(id);
      assert.deepEqual(kept.map((s) => [s.name, s.consumedAt?.getTime()]), [
        ['a', a1!.consumedAt!.getTime()],
        ['spare', undefined],
      ]);
      await queue.signal(id, 'a', 2);
      const done = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(done.status, 'completed');
      assert.equal(done.result, 2, 'the new signal, not the consumed one');
      const after2 = await queue.getSignals(id);
      assert.deepEqual(after2.map((s) => [s.name, s.payload, s.consumedAt !== undefined]), [
        ['a', 1, true],
        ['spare', 'never waited for', false],
        ['a', 2, true],
      ]);
    });

    it('a pruned job is unknown to getSignals and getSteps, with any options', async () => {
      const type = uniqueName('pruned');
      const q = uniqueName('pruned');
      queue.register(type, async (_: unknown, ctx) => ctx.waitForSignal('go'));
      const id = await queue.enqueue(type, {}, { queue: q });
      await queue.signal(id, 'go', 'now');
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'completed');
      await w.stop();
      assert.equal((await queue.getSteps(id, { limit: 1 })).length, 1);
      assert.ok((await queue.prune({ olderThan: 0 })) >= 1);
      await assert.rejects(queue.getSignals(id), JobNotFoundError);
      await assert.rejects(queue.getSignals(id, { after: 1, limit: 1 }), JobNotFoundError);
      await assert.rejects(queue.getSteps(id), JobNotFoundError);
      await assert.rejects(queue.getSteps(id, { limit: 10 }), JobNotFoundError);
    });

    it('a workflow with thousands of checkpoints reads in pages, each once, without the patch answers', async () => {
      const { fence } = await runningJob(ts.storage, { type: uniqueName('long') });
      const n = 2_300;
      const items = Array.from({ length: n }, (_, i) => ({ fence, step: stepRow(fence.jobId, i, { stepName: `s${i}`, outputJson: JSON.stringify(i) }) }));
      // Two stored answers of `ctx.patched` (negative indexes): not steps.
      items.push({ fence, step: stepRow(fence.jobId, -1, { stepName: 'patch:a', outputJson: 'true' }) });
      items.push({ fence, step: stepRow(fence.jobId, -2, { stepName: 'patch:b', outputJson: 'false' }) });
      for (let i = 0; i < items.length; i += 500) assert.ok((await ts.storage.stepRecordMany({ items: items.slice(i, i + 500) })).every(Boolean));
      const id = fence.jobId;
      const every = await queue.getSteps(id);
      assert.equal(every.length, n, 'without options: every checkpoint');
      const first = await queue.getSteps(id, { limit: 100 });
      assert.deepEqual(first.map((s) => s.index), Array.from({ length: 100 }, (_, i) => i), 'the lowest indexes, no patch answer');
      assert.deepEqual(first, every.slice(0, 100));
      const walked = await walkSteps(queue, id, 1000);
      assert.deepEqual(walked, every, 'the pages are the whole list, in order, each once');
      assert.deepEqual((await queue.getSteps(id, { after: n - 3 })).map((s) => s.index), [n - 2, n - 1], 'after without limit: the rest');
      assert.deepEqual((await queue.getSteps(id, { after: -1, limit: 2 })).map((s) => s.output), [0, 1]);
      await queue.cancelJob(id);
    });
  });
}
