/**
 * Write faults on every driver, injected with `FaultyStorage` around the real database: no
 * outcome is lost when its coalesced write fails once or many times (also after the write
 * committed and only the reply was lost), one unwritable outcome does not sink its neighbours,
 * error texts that a database cannot store (NUL, lone surrogates, a megabyte) are made
 * storable, a failed checkpoint write loses no step and no attempt, a failed schedule fire
 * loses no slot, and a run that lost its lease always sees its `abortSignal` — also when the
 * same worker claims the job again — and the heartbeat reads every lost run in one call.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { LeaseLostError, noRetry } from '../../src/errors.js';
import { ERROR_TEXT_MAX } from '../../src/internal/error-text.js';
import { every } from '../../src/scheduler/schedules.js';
import type { JobFinishItem, StepRecordParams, Storage } from '../../src/storage/storage.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { assertConsecutive, jobsOf, uniqueSlots } from '../helpers/schedule-helpers.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** Quick worker options with a lease short enough that a lost outcome shows within a test. */
const quick = { pollInterval: 20, maintenanceInterval: 50, heartbeatInterval: 100, leaseTimeout: 1500, drainTimeout: 2000 } as const;

/** Counts handler runs per job id. */
function counter(): { add(id: string): void; of(id: string): number } {
  const runs = new Map<string, number>();
  return { add: (id) => void runs.set(id, (runs.get(id) ?? 0) + 1), of: (id) => runs.get(id) ?? 0 };
}

/** True when `s` has no NUL and no unpaired surrogate. */
function storable(s: string): boolean {
  // eslint-disable-next-line no-control-regex -- NUL is what this looks for
  return !/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

for (const [name, make] of storageMatrix()) {
  describe(`write faults (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`write-faults-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('an outcome write that fails once is retried: each handler ran once and its job completed, also on its last attempt', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const runs = counter();
      queue.register('send-once', async (n: number, ctx) => {
        runs.add(ctx.job.id);
        return `sent ${n}`;
      });
      const q = 'wf-once';
      const last = await queue.enqueue('send-once', 1, { retries: 0, queue: q });
      const spare = await queue.enqueue('send-once', 2, { retries: 2, queue: q });
      const fault = faulty.fail({ method: 'jobFinishMany', error: 'connection-reset' });
      const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 2 } } });
      const [a, b] = await Promise.all([queue.waitForJob(last, { timeout: 15_000 }), queue.waitForJob(spare, { timeout: 15_000 })]);
      await w.stop();
      assert.equal(fault.fired, 1, 'the fault was injected');
      assert.equal(a.status, 'completed', `the job on its last attempt completed (last error: ${a.lastError ?? 'none'})`);
      assert.equal(a.result, 'sent 1');
      assert.equal(b.status, 'completed');
      assert.equal(b.result, 'sent 2');
      assert.equal(runs.of(last), 1, 'the handler of the last-attempt job ran once');
      assert.equal(runs.of(spare), 1, 'the handler with retries left ran once (no attempt lost)');
      assert.equal(a.attempt, 1);
      assert.equal(b.attempt, 1);
    });

    it('outcome writes failing for longer than the lease are retried while heartbeats keep the lease: ran once, completed', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const runs = counter();
      queue.register('outlasts-lease', async (n: number, ctx) => {
        runs.add(ctx.job.id);
        return n;
      });
      const q = 'outlasts-lease';
      const id = await queue.enqueue('outlasts-lease', 7, { retries: 0, queue: q });
      let until = Infinity;
      const fault = faulty.fail({ method: 'jobFinishMany', times: Infinity, when: () => Date.now() < until });
      const w = startWorker(queue, { ...quick, leaseTimeout: 1000, queues: { [q]: { concurrency: 1 } } });
      await waitFor(() => fault.fired >= 1, { message: 'the first outcome write failed' });
      until = Date.now() + 2500;
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      await w.stop();
      assert.equal(job.status, 'completed', `completed (last error: ${job.lastError ?? 'none'})`);
      assert.equal(job.result, 7);
      assert.equal(runs.of(id), 1, 'ran once: the lease was never lost');
      assert.ok(fault.fired >= 3, `the write failed ${fault.fired} times`);
    });

    it('stop() stays within its drain timeout while every outcome write fails; the unwritten outcome is given up', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      queue.register('never-written', async () => 'done');
      const q = 'never-written';
      const id = await queue.enqueue('never-written', null, { queue: q });
      const fault = faulty.fail({ method: 'jobFinishMany', times: Infinity });
      const w = startWorker(queue, { ...quick, leaseTimeout: 30_000, drainTimeout: 400, queues: { [q]: { concurrency: 1 } } });
      await waitFor(() => fault.fired >= 2, { message: 'the outcome write failed and was retried' });
      const t0 = Date.now();
      await w.stop();
      const took = Date.now() - t0;
      assert.ok(took < 400 + 1500, `stop() took ${took} ms`);
      const calls = faulty.calls('jobFinishMany');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(faulty.calls('jobFinishMany'), calls, 'no retry after stop() resolved');
      const row = await ts.storage.jobGet({ id });
      assert.equal(row?.status, 'running', 'the job keeps its lease until it expires');
    });

    it('a flush that committed but lost its reply (three times) is neither lost nor applied twice; each completion is reported once', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const runs = counter();
      queue.register('lost-reply', async (n: number, ctx) => {
        runs.add(ctx.job.id);
        return n * 2;
      });
      const completions = new Map<string, number>();
      queue.onJobComplete((job) => void completions.set(job.id, (completions.get(job.id) ?? 0) + 1));
      const q = 'lost-reply';
      const ids = await queue.enqueueBatch([1, 2, 3, 4, 5].map((n) => ({ type: 'lost-reply', args: n, options: { queue: q, retries: 0 } })));
      const fault = faulty.fail({ method: 'jobFinishMany', phase: 'after', times: 3, error: 'deadlock' });
      const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 5 } } });
      const jobs = await Promise.all(ids.map((id) => queue.waitForJob(id, { timeout: 15_000 })));
      await waitFor(() => ids.every((id) => completions.has(id)), { message: 'every completion reported' });
      await w.stop();
      assert.equal(fault.fired, 3);
      jobs.forEach((j, i) => {
        assert.equal(j.status, 'completed', `job ${i} completed`);
        assert.equal(j.result, (i + 1) * 2);
        assert.equal(runs.of(j.id), 1, `job ${i} ran once`);
      });
      assert.deepEqual([...completions.values()], [1, 1, 1, 1, 1], 'one completion event per job');
    });

    it('one outcome that can never be stored does not sink its neighbours; it is replaced by a failure that says why', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const runs = counter();
      queue.register('neighbour', async (n: number, ctx) => {
        runs.add(ctx.job.id);
        return `ok ${n}`;
      });
      const q = 'poison';
      const ids = await queue.enqueueBatch(Array.from({ length: 12 }, (_, n) => ({ type: 'neighbour', args: n, options: { queue: q, retries: 3 } })));
      const poison = ids[5]!;
      const fault = faulty.fail({
        method: 'jobFinishMany',
        times: Infinity,
        error: 'packet-too-large',
        when: (p) => p.items.some((i: JobFinishItem) => i.jobId === poison && i.outcome === 'completed'),
      });
      const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 12 } } });
      const jobs = await Promise.all(ids.map((id) => queue.waitForJob(id, { timeout: 15_000 })));
      await w.stop();
      assert.ok(fault.fired >= 1);
      for (const j of jobs) {
        assert.equal(runs.of(j.id), 1, `job ${j.id} ran once`);
        if (j.id === poison) continue;
        assert.equal(j.status, 'completed', `neighbour ${j.id} completed`);
        assert.equal(j.result, `ok ${j.args as number}`);
      }
      const p = jobs[5]!;
      assert.equal(p.status, 'failed');
      assert.match(p.lastError ?? '', /outcome could not be stored/);
      assert.match(p.lastError ?? '', /max_allowed_packet/);
    });

    it('error texts with NUL, lone surrogates or a megabyte are stored sanitized and bounded; neighbours in the same flush complete', async () => {
      const queue = new Queue(ts.storage);
      queue.register('throws-text', async (text: string) => {
        throw noRetry(new Error(text === 'huge' ? 'x'.repeat(1 << 20) : text));
      });
      queue.register('sends', async () => 'sent');
      let retried = 0;
      queue.register('retries-with-nul', async (_: unknown, ctx) => {
        if (ctx.job.attempt === 1) throw new Error('header \u0000 bad');
        retried++;
        return 'second time';
      });
      queue.register('bad-step', async () => {
        throw noRetry(new Error('step says \u0000 and \uDC00'));
      });
      queue.register('wf-bad-step', async (_: unknown, ctx) => ctx.call('bad-step'));
      const q = 'bad-text';
      const texts = ['bad header: a\u0000b', 'half a pair \uD83D here', 'huge'];
      const bad = await queue.enqueueBatch(texts.map((t) => ({ type: 'throws-text', args: t, options: { queue: q } })));
      const good = await queue.enqueueBatch(Array.from({ length: 5 }, () => ({ type: 'sends', args: null, options: { queue: q } })));
      const retry = await queue.enqueue('retries-with-nul', null, { queue: q, retries: 1 });
      const wf = await queue.enqueue('wf-bad-step', null, { queue: q });
      const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 10 } }, backoff: () => 20 });
      const all = await Promise.all([...bad, ...good, retry, wf].map((id) => queue.waitForJob(id, { timeout: 15_000 })));
      await w.stop();
      const byId = new Map(all.map((j) => [j.id, j]));
      for (const id of good) assert.equal(byId.get(id)!.status, 'completed', 'a neighbour that returned "sent" completed');
      assert.equal(byId.get(retry)!.status, 'completed');
      assert.equal(retried, 1, 'the retry outcome carrying a NUL was stored (the job ran again)');
      const [nul, half, huge] = bad.map((id) => byId.get(id)!);
      for (const j of [nul!, half!, huge!]) {
        assert.equal(j.status, 'failed');
        assert.ok(storable(j.lastError ?? ''), 'the stored error text is storable');
        assert.ok((j.lastError ?? '').length <= ERROR_TEXT_MAX, `bounded: ${(j.lastError ?? '').length} characters`);
      }
      assert.equal(nul!.lastError, 'bad header: a\uFFFDb');
      assert.equal(half!.lastError, 'half a pair \uFFFD here');
      assert.ok(huge!.lastError!.startsWith('xxxx'));
      assert.match(huge!.lastError!, /truncated/);
      const w2 = byId.get(wf)!;
      assert.equal(w2.status, 'failed');
      assert.equal(w2.lastError, 'step says \uFFFD and \uFFFD');
      const steps = await ts.storage.stepList({ jobId: wf });
      assert.equal(steps.length, 1);
      assert.equal(steps[0]!.status, 'failed');
      assert.equal(steps[0]!.error, 'step says \uFFFD and \uFFFD');
    });

    for (const phase of ['before', 'after'] as const) {
      it(`a checkpoint write that fails once (${phase === 'before' ? 'nothing written' : 'committed, reply lost'}) re-runs no step and loses no attempt`, async () => {
        const faulty = new FaultyStorage(ts.storage);
        const queue = new Queue(faulty.storage);
        const runs = { s1: 0, s2: 0, s3: 0 };
        for (const s of ['s1', 's2', 's3'] as const) {
          queue.register(`${phase}-${s}`, async (n: number) => {
            runs[s]++;
            return n + 1;
          });
        }
        queue.register(`${phase}-wf`, async (_: unknown, ctx) => {
          const a = await ctx.call<number>(`${phase}-s1`, 0);
          const b = await ctx.call<number>(`${phase}-s2`, a);
          return ctx.call<number>(`${phase}-s3`, b);
        });
        const isS2 = (s: StepRecordParams): boolean => s.step.stepName === `${phase}-s2`;
        const fault = faulty.fail({ method: 'stepRecordMany', phase, when: (p) => p.items.some(isS2) });
        const q = `ckpt-${phase}`;
        const id = await queue.enqueue(`${phase}-wf`, null, { queue: q, retries: 3 });
        const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 1 } }, backoff: () => 20 });
        const job = await queue.waitForJob(id, { timeout: 15_000 });
        await w.stop();
        assert.equal(fault.fired, 1);
        assert.equal(job.status, 'completed', `completed (last error: ${job.lastError ?? 'none'})`);
        assert.equal(job.result, 3);
        assert.deepEqual(runs, { s1: 1, s2: 1, s3: 1 }, 'each step ran once');
        assert.equal(job.attempt, 1, 'no attempt was spent on the failed write');
      });
    }

    it('a schedule fire that fails once is retried: no slot is lost or fired twice', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      queue.register('tick-fault', async () => 'ok');
      const period = 250;
      const q = 'sched-fault';
      await queue.schedule('tick-fault', every(period), { queue: q, missed: 'all' });
      const first = (await queue.schedules()).find((s) => s.name === 'tick-fault')!.nextRunAt.getTime();
      const fault = faulty.fail({ method: 'scheduleFire', error: 'connection-reset' });
      const w = startWorker(queue, { ...quick, scheduler: true, queues: { [q]: { concurrency: 2 } } });
      await waitFor(async () => (await jobsOf(queue, 'tick-fault')).filter((j) => j.status === 'completed').length >= 4, { message: '4 fires', timeout: 15_000 });
      await w.stop();
      await queue.unschedule('tick-fault');
      assert.equal(fault.fired, 1);
      const slots = uniqueSlots(await jobsOf(queue, 'tick-fault'));
      assert.equal(slots[0], first, 'the slot whose fire failed was fired on the retry');
      assertConsecutive(slots, period, 'fired slots');
    });

    it('heartbeats failing for longer than the lease abort the run before the job can be reclaimed; the re-run starts after the abort', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const other: Storage = await ts.another();
      const signals: AbortSignal[] = [];
      const aborted: { reason: unknown; at: number }[] = [];
      const oldAbortedAtRestart: boolean[] = [];
      queue.register('long-run', async (_: unknown, ctx) => {
        if (signals.length > 0) oldAbortedAtRestart.push(signals.every((s) => s.aborted));
        signals.push(ctx.abortSignal);
        if (signals.length > 1) return 'second run';
        await new Promise<void>((resolve) => ctx.abortSignal.addEventListener('abort', () => resolve()));
        aborted.push({ reason: ctx.abortSignal.reason, at: Date.now() });
        return 'aborted run';
      });
      const q = 'hb-fail';
      const id = await queue.enqueue('long-run', null, { queue: q, retries: 2 });
      const w = startWorker(queue, { ...quick, leaseTimeout: 1000, maintenanceInterval: 60_000, queues: { [q]: { concurrency: 1 } } });
      await waitFor(() => signals.length === 1, { message: 'first run started' });
      const hb = faulty.fail({ method: 'jobHeartbeat', times: Infinity, error: 'connection-reset' });
      let reclaimedAt = 0;
      await waitFor(
        async () => {
          const r = await other.jobReclaimExpired({ limit: 10 });
          if (r.some((j) => j.id === id)) reclaimedAt = Date.now();
          return reclaimedAt;
        },
        { message: 'the job was reclaimed', timeout: 10_000 },
      );
      hb.remove();
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.ok(hb.fired >= 1);
      assert.equal(aborted.length, 1, 'the first run saw its abortSignal');
      assert.ok(aborted[0]!.reason instanceof LeaseLostError, `aborted with LeaseLostError, got ${String(aborted[0]!.reason)}`);
      assert.ok(aborted[0]!.at <= reclaimedAt, 'the run was aborted before another owner could take the job');
      assert.deepEqual(oldAbortedAtRestart, [true], 'the re-run started only after the old run was aborted');
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 'second run');
    });

    it('a worker that claims a job it still runs (its lease was lost unnoticed) aborts the old run first', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const other: Storage = await ts.another();
      const signals: AbortSignal[] = [];
      const oldAbortedAtRestart: boolean[] = [];
      let reason: unknown;
      queue.register('unnoticed', async (_: unknown, ctx) => {
        if (signals.length > 0) oldAbortedAtRestart.push(signals.every((s) => s.aborted));
        signals.push(ctx.abortSignal);
        if (signals.length > 1) return 'second run';
        await new Promise<void>((resolve) => ctx.abortSignal.addEventListener('abort', () => resolve()));
        reason = ctx.abortSignal.reason;
        return 'aborted run';
      });
      const q = 'reclaim-own';
      const id = await queue.enqueue('unnoticed', null, { queue: q, retries: 2 });
      // A free slot, so the worker can claim the job again while its first run still holds one.
      const w = startWorker(queue, { ...quick, leaseTimeout: 1000, maintenanceInterval: 60_000, queues: { [q]: { concurrency: 2 } } });
      await waitFor(() => signals.length === 1, { message: 'first run started' });
      // Heartbeats "succeed" without reaching the database: the worker believes it holds the lease.
      const hb = faulty.fail({ method: 'jobHeartbeat', times: Infinity, respond: (p) => p.runs.map((r) => r.jobId) });
      await waitFor(async () => (await other.jobReclaimExpired({ limit: 10 })).some((j) => j.id === id), { message: 'the job was reclaimed', timeout: 10_000 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      hb.remove();
      await w.stop();
      assert.equal(signals.length, 2, 'the same worker claimed the job again');
      assert.deepEqual(oldAbortedAtRestart, [true], 'the old run was aborted before the new one started');
      assert.ok(reason instanceof LeaseLostError, `aborted with LeaseLostError, got ${String(reason)}`);
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 'second run');
    });

    it('the heartbeat reads the status of every lost run in one call (a large cancel)', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const started = new Set<string>();
      const reasons = new Map<string, unknown>();
      queue.register('hangs', async (_: unknown, ctx) => {
        started.add(ctx.job.id);
        await new Promise<void>((resolve) => ctx.abortSignal.addEventListener('abort', () => resolve()));
        reasons.set(ctx.job.id, ctx.abortSignal.reason);
      });
      const q = 'big-cancel';
      const ids = await queue.enqueueBatch(Array.from({ length: 30 }, () => ({ type: 'hangs', args: null, options: { queue: q } })));
      // A lease long enough that the runs are not given up while heartbeats are held back, however slow the cancels.
      const w = startWorker(queue, { ...quick, leaseTimeout: 30_000, queues: { [q]: { concurrency: 30 } } });
      await waitFor(() => started.size === 30, { message: 'all running' });
      // Heartbeats are held back while the jobs are cancelled one by one, so that the next one
      // finds all 30 runs lost at once.
      const held = faulty.fail({ method: 'jobHeartbeat', times: Infinity });
      for (const id of ids) await ts.storage.jobCancel({ id });
      const gets = faulty.calls('jobGet');
      const many = faulty.calls('jobGetMany');
      held.remove();
      await waitFor(() => reasons.size === 30, { message: 'every run aborted' });
      const getsAfter = faulty.calls('jobGet') - gets;
      const manyAfter = faulty.calls('jobGetMany') - many;
      await w.stop();
      assert.equal(getsAfter, 0, 'no per-job reads');
      assert.equal(manyAfter, 1, 'the 30 lost runs were read in one call');
      for (const r of reasons.values()) assert.equal((r as Error).name, 'JobCancelledError');
    });
  });
}
