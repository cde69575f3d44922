/**
 * `ctx.progress` attacked the way users and operators will: a progress write that hangs (the
 * job's outcome, later jobs' progress and `stop()` must not wait for it), operator actions while
 * a run reports (cancel, retry), a detached report after the handler returned, odd values that
 * are still valid (-0, the smallest subnormal, 0.1 + 0.2, exactly 0 and 1), odd inputs that are
 * not (BigInt, a numeric string, an object with `valueOf`), and many jobs of one worker reporting
 * at once (few statements, every value stored).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { FLUSH_WAIT_MS } from '../../src/worker/progress-writer.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { collectProgress } from '../helpers/progress-events.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';


/** Awaits `p`, failing (instead of hanging the suite) when it takes longer than `ms`. */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

for (const [name, make] of storageMatrix()) {
  describe(`ctx.progress, adversarial (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`progress-adv-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('a progress write that never answers delays the outcome by at most ~1 s, does not stall later jobs\' progress, and does not hold stop()', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const seen = collectProgress(queue);
      // The first progress write hangs forever (a lock wait or a black-holed connection).
      const hung = faulty.fail({ method: 'jobProgressMany', respond: () => new Promise<never>(() => {}) });
      let returnedAt = 0;
      const keepRunning = new Gate();
      queue.register('hang-first', async (_: null, ctx) => {
        await ctx.progress(0.5, 'first');
        await waitFor(() => hung.fired === 1, { message: 'the hanging write was made' });
        returnedAt = Date.now();
        return 'ok';
      });
      queue.register('report-later', async (_: null, ctx) => {
        await ctx.progress(0.7, 'later job');
        await keepRunning.promise;
        return 'ok';
      });
      const q = 'progress-adv-hang';
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } } });
      const first = await queue.enqueue('hang-first', null, { queue: q });
      const done = await queue.waitForJob(first, { timeout: 10_000 });
      const outcomeDelay = Date.now() - returnedAt;
      assert.equal(done.status, 'completed');
      assert.ok(outcomeDelay < FLUSH_WAIT_MS + 1_500, `outcome written ${outcomeDelay} ms after the handler returned`);
      // A later job of the same worker still gets its progress stored while it runs.
      const second = await queue.enqueue('report-later', null, { queue: q });
      const event = await waitFor(() => seen.events.find((e) => e.jobId === second), { timeout: 5_000, message: 'the later job\'s progress is stored despite the hung write' });
      assert.equal(event.value, 0.7);
      const running = await queue.getJob(second);
      assert.deepEqual([running?.status, running?.progress?.value], ['running', 0.7]);
      keepRunning.open();
      await queue.waitForJob(second, { timeout: 10_000 });
      await within(FLUSH_WAIT_MS + 3_000, w.stop(), 'stop() with a progress write hanging');
      await seen.stop();
    });

    it('stop() while a report is pending and every progress write hangs stays bounded; the job is released, not lost', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      faulty.fail({ method: 'jobProgressMany', times: Infinity, respond: () => new Promise<never>(() => {}) });
      const reported = new Gate();
      queue.register('hang-at-stop', async (_: null, ctx) => {
        await ctx.progress(0.2, 'started');
        reported.open();
        await new Promise<void>((resolve) => ctx.abortSignal.addEventListener('abort', () => resolve(), { once: true }));
        await ctx.progress(0.3, 'aborted');
        throw new Error('aborted');
      });
      const q = 'progress-adv-hang-stop';
      const id = await queue.enqueue('hang-at-stop', null, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      await reported.promise;
      await waitFor(() => faulty.calls('jobProgressMany') >= 1, { message: 'a progress write is in flight' });
      await within(300 + FLUSH_WAIT_MS + 3_000, w.stop(), 'stop() with every progress write hanging');
      const row = await queue.getJob(id);
      assert.ok(row && row.status !== 'running', `the job is not left running (${row?.status})`);
    });

    it('a write answered only after 2.5 s is left behind, yet the run\'s newer value still lands after it (never overwritten by the older one)', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const seen = collectProgress(queue);
      const slow = faulty.fail({ method: 'jobProgressMany', respond: (p) => new Promise((resolve) => setTimeout(resolve, 2_500)).then(() => ts.storage.jobProgressMany(p)) });
      const go = new Gate();
      queue.register('slow-then-newer', async (_: null, ctx) => {
        await ctx.progress(0.1, 'old');
        await waitFor(() => slow.fired === 1, { message: 'the slow write was made' });
        // Past the stuck bound: the chain moved on; the newer value must still wait for the old write.
        await new Promise((resolve) => setTimeout(resolve, FLUSH_WAIT_MS + 300));
        await ctx.progress(0.9, 'new');
        await go.promise;
        return 'ok';
      });
      const q = 'progress-adv-slow';
      const id = await queue.enqueue('slow-then-newer', null, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      await waitFor(() => seen.events.find((e) => e.jobId === id && e.value === 0.9), { timeout: 10_000, message: 'the newer value stored' });
      const running = await queue.getJob(id);
      assert.deepEqual([running?.progress?.value, running?.progress?.message], [0.9, 'new'], 'the older write did not land after the newer one');
      assert.deepEqual(seen.events.filter((e) => e.jobId === id).map((e) => e.value), [0.1, 0.9]);
      go.open();
      const done = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      await seen.stop();
      assert.equal(done.progress?.value, 0.9);
    });

    it('a cancelled job keeps the progress stored before the cancel; reports after it store nothing and publish nothing', async () => {
      const queue = new Queue(ts.storage);
      const seen = collectProgress(queue);
      const cancelled = new Gate();
      const after = new Gate();
      queue.register('cancel-mid', async (_: null, ctx) => {
        await ctx.progress(0.25, 'before cancel');
        await cancelled.promise;
        await ctx.progress(0.9, 'after cancel');
        after.open();
        return 'late';
      });
      const q = 'progress-adv-cancel';
      const id = await queue.enqueue('cancel-mid', null, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      await waitFor(() => seen.events.find((e) => e.jobId === id && e.value === 0.25), { message: 'first report stored' });
      await queue.cancelJob(id);
      cancelled.open();
      await after.promise;
      await w.stop();
      await seen.stop();
      const job = await queue.getJob(id);
      assert.equal(job?.status, 'cancelled');
      assert.deepEqual([job?.progress?.value, job?.progress?.message], [0.25, 'before cancel']);
      assert.ok(!seen.events.some((e) => e.jobId === id && e.value === 0.9), 'no event for the report after the cancel');
    });

    it('a retried attempt shows the previous attempt\'s progress until it reports (documented), then its own', async () => {
      const queue = new Queue(ts.storage);
      const seen = collectProgress(queue);
      const secondStarted = new Gate();
      const secondGo = new Gate();
      queue.register('flaky-progress', async (_: null, ctx) => {
        if (ctx.job.attempt === 1) {
          await ctx.progress(0.6, 'attempt one');
          throw new Error('transient');
        }
        secondStarted.open();
        await secondGo.promise;
        await ctx.progress(0.1, 'attempt two');
        return 'ok';
      });
      const q = 'progress-adv-retry';
      const id = await queue.enqueue('flaky-progress', null, { queue: q, retries: 1 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } }, backoff: () => 0 });
      await secondStarted.promise;
      const mid = await queue.getJob(id);
      assert.deepEqual([mid?.status, mid?.attempt, mid?.progress?.value, mid?.progress?.message], ['running', 2, 0.6, 'attempt one']);
      secondGo.open();
      const done = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      await seen.stop();
      assert.deepEqual([done.status, done.progress?.value, done.progress?.message], ['completed', 0.1, 'attempt two']);
      const mine = seen.events.filter((e) => e.jobId === id).map((e) => e.value);
      assert.deepEqual(mine, [0.6, 0.1]);
    });

    it('a detached report after the handler returned is dropped: the stored progress is the last one before the return', async () => {
      const queue = new Queue(ts.storage);
      const seen = collectProgress(queue);
      let late: Promise<unknown> | undefined;
      queue.register('detached', async (_: null, ctx) => {
        await ctx.progress(0.8, 'last real');
        late = new Promise((resolve) => setTimeout(resolve, 30)).then(() => ctx.progress(0.99, 'detached').then(() => 'resolved', (e: unknown) => e));
        return 'ok';
      });
      const q = 'progress-adv-detached';
      const id = await queue.enqueue('detached', null, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const done = await queue.waitForJob(id, { timeout: 10_000 });
      assert.equal(await late, 'resolved', 'a late report neither throws nor hangs');
      await w.stop();
      await seen.stop();
      const job = await queue.getJob(id);
      assert.deepEqual([done.progress?.value, job?.progress?.value, job?.progress?.message], [0.8, 0.8, 'last real']);
      assert.ok(!seen.events.some((e) => e.jobId === id && e.value === 0.99));
    });

    it('odd valid values are stored exactly (-0 as 0, subnormal, 0.1 + 0.2, 0, 1); odd invalid ones reject', async () => {
      const queue = new Queue(ts.storage);
      const values = [-0, Number.MIN_VALUE, 1e-300, 0.1 + 0.2, 0, 1, 1 - Number.EPSILON / 2];
      const gate = new Gate();
      let index = 0;
      const stepDone: Gate[] = values.map(() => new Gate());
      queue.register('odd-values', async (_: null, ctx) => {
        const out: string[] = [];
        for (const bad of [10n, '0.5', { valueOf: () => 0.5 }, new Number(0.5), null]) {
          try {
            await (ctx.progress as (v: unknown) => Promise<void>)(bad);
            out.push('accepted');
          } catch (err) {
            out.push(err instanceof InvalidArgumentError ? err.code : String(err));
          }
        }
        for (let i = 0; i < values.length; i++) {
          index = i;
          await ctx.progress(values[i]!, i % 2 === 0 ? undefined : (null as unknown as string));
          await stepDone[i]!.promise;
        }
        await gate.promise;
        return out;
      });
      const q = 'progress-adv-values';
      const id = await queue.enqueue('odd-values', null, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      for (let i = 0; i < values.length; i++) {
        await waitFor(() => index === i, { message: `value ${i} reported` });
        const job = await waitFor(async () => {
          const j = await queue.getJob(id);
          return j?.progress && Object.is(j.progress.value, values[i] === 0 ? 0 : values[i]) && (i === 0 || j.progress.at.getTime() >= 0) ? j : undefined;
        }, { message: `value ${String(values[i])} stored exactly` });
        assert.ok(Object.is(job.progress?.value, values[i] === 0 ? 0 : values[i]), `stored ${String(job.progress?.value)} for ${String(values[i])}`);
        assert.equal(job.progress?.message, null);
        stepDone[i]!.open();
      }
      gate.open();
      const done = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.deepEqual(done.result, ['INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
      assert.ok(Object.is(done.progress?.value, values.at(-1)));
    });

    it('a message of astral text cut at the limit keeps its pairs whole and round-trips', async () => {
      const queue = new Queue(ts.storage);
      const message = '\u{1F600}'.repeat(2_000) + '\u0000' + '\uD800';
      queue.register('astral', async (_: null, ctx) => {
        await ctx.progress(0.5, message);
        return 'ok';
      });
      const q = 'progress-adv-astral';
      const id = await queue.enqueue('astral', null, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const done = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      const m = done.progress?.message ?? '';
      assert.ok(m.length <= 1024, `${m.length} code units`);
      assert.match(m, /… \[truncated: 4002 characters in all\]$/);
      assert.doesNotMatch(m, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/, 'no lone surrogate at the cut');
      assert.equal((await queue.getJob(id))?.progress?.message, m);
    });

    it('200 concurrent jobs of one worker reporting at once: few statements, every value stored, one event each', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const seen = collectProgress(queue);
      const n = 200;
      const go = new Gate();
      let started = 0;
      queue.register('many', async (i: number, ctx) => {
        started++;
        await ctx.progress((i + 1) / (n + 1), `job ${i} ${'x'.repeat(900)}`);
        await go.promise;
        return i;
      });
      const q = 'progress-adv-many';
      const ids = await queue.enqueueBatch(Array.from({ length: n }, (_, i) => ({ type: 'many', args: i, options: { queue: q } })));
      const w = startWorker(queue, { queues: { [q]: { concurrency: n } }, leaseTimeout: 60_000 });
      await waitFor(() => started === n, { timeout: 30_000, message: 'every job started' });
      await waitFor(() => new Set(seen.events.map((e) => e.jobId)).size === n, { timeout: 20_000, message: 'every job\'s progress stored' });
      const calls = faulty.calls('jobProgressMany');
      assert.ok(calls <= 40, `${calls} progress statements for ${n} jobs`);
      go.open();
      for (const id of ids) await queue.waitForJob(id, { timeout: 30_000 });
      await w.stop();
      await seen.stop();
      const jobs = await Promise.all((ids).map((id) => queue.getJob(id)));
      for (const [i, j] of jobs.entries()) assert.equal(j?.progress?.value, (i + 1) / (n + 1));
      const perJob = new Map<string, number>();
      for (const e of seen.events) perJob.set(e.jobId, (perJob.get(e.jobId) ?? 0) + 1);
      assert.ok([...perJob.values()].every((c) => c === 1), 'one event per job: one report, one write');
    });
  });
}
