/**
 * Adversarial tests of the operator actions on every driver: bulk `retryJobs` / `cancelJobs` /
 * `deleteJobs` and `retryJob(id, { fromFailedStep: true })` used the way an operator uses them —
 * mid-flight (workers running, children finishing, sub-jobs retried one by one meanwhile), with
 * faults on the writes, with duplicates and unique keys — and workflows that must then complete
 * correctly (no step re-run that had completed, fan-out results in order).
 *
 * Each test states the documented behaviour it checks (storage JSDoc of `jobRetry`,
 * `jobRetryMany`, `jobDeleteMany`; docs/operations.md).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { DuplicateJobError, InvalidStateError, noRetry } from '../../src/errors.js';
import type { Storage } from '../../src/storage/storage.js';
import { SKIP_UNIQUE_HELD } from '../../src/storage/shared/contract-messages.js';
import { sub, values } from '../../src/workflow/fan-out.js';
import { cancelledJob, claim, uniqueName } from '../helpers/factories.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

const FINISHED = ['completed', 'failed', 'cancelled'];

/** The steps of a job as [index, name, status]. */
async function stepShape(queue: Queue, id: string): Promise<unknown[]> {
  return (await queue.getSteps(id)).map((s) => [s.index, s.name, s.status]);
}

/** The children of a job, oldest first, once every one of them has finished. */
async function finishedKids(queue: Queue, id: string, n: number) {
  return waitFor(
    async () => {
      const list = (await queue.listJobs({ parentId: id, order: 'asc' })).jobs;
      return list.length === n && list.every((k) => FINISHED.includes(k.status)) ? list : undefined;
    },
    { message: `the ${n} children of ${id} finished`, timeout: 10_000 },
  );
}

/** A storage whose `jobRetryMany` runs `beforeBatch` first when the batch holds `id`. */
function hookRetryMany(inner: Storage, id: () => string, beforeBatch: () => Promise<void>): Storage {
  return new Proxy(inner, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (prop === 'jobRetryMany') {
        return async (p: { ids: string[] }) => {
          if (p.ids.includes(id())) await beforeBatch();
          return target.jobRetryMany(p);
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

for (const [name, make] of storageMatrix()) {
  describe(`operator actions, adversarial (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`ops-adv-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('fromFailedStep keeps a signal wait that timed out: the workflow resumes at the step that failed, not at the wait', async () => {
      // docs/operations.md: only "a failed step (one that threw noRetry) or a timer or signal
      // wait in progress is dropped"; "anything else is kept". A wait that timed out is done.
      const queue = new Queue(ts.storage);
      const q = uniqueName('sigto');
      const p = uniqueName('sigto');
      const state = { failing: true, boom: 0 };
      queue.register(`${p}-boom`, () => {
        state.boom++;
        if (state.failing) throw new Error('boom is down');
        return 'ok';
      });
      queue.register(`${p}-flow`, async (_: unknown, ctx) => {
        const got = await ctx.waitForSignal('go', { timeout: 150 });
        const r = await ctx.call<string>(`${p}-boom`);
        return { got: got ?? null, r };
      });
      const id = await queue.enqueue(`${p}-flow`, {}, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'failed');
      await w.stop();
      const before = await stepShape(queue, id);
      assert.deepEqual(before, [[0, 'signal:go', 'failed']], 'the timed-out wait is checkpointed');
      state.failing = false;
      await queue.retryJob(id, { fromFailedStep: true });
      assert.deepEqual(await stepShape(queue, id), before, 'the finished (timed-out) signal wait is kept');
    });

    it('fromFailedStep on a workflow cancelled while sleeping keeps the timer: it wakes at its original time (docs/operations.md)', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('sleep');
      const p = uniqueName('sleep');
      queue.register(`${p}-flow`, async (_: unknown, ctx) => {
        await ctx.sleep(60_000);
        return 'woke';
      });
      const id = await queue.enqueue(`${p}-flow`, {}, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting', { message: 'sleeping' });
      await w.stop();
      await queue.cancelJob(id);
      const before = await ts.storage.stepList({ jobId: id });
      await queue.retryJob(id, { fromFailedStep: true });
      assert.deepEqual(await ts.storage.stepList({ jobId: id }), before, '"a durable sleep keeps its wake time"');
      assert.equal(before.length, 1);
      assert.equal(before[0]!.stepName, 'sleep');
    });

    it('fromFailedStep refused for a held unique key leaves the reopened fan-out, its children and the checkpoints untouched', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('uk');
      const p = uniqueName('uk');
      const key = uniqueName('key');
      queue.register(`${p}-kid`, (a: { v: number }) => {
        if (a.v === 1) throw new Error('kid 1 down');
        return a.v;
      });
      queue.register(`${p}-flow`, async (_: unknown, ctx) => {
        const rs = await ctx.fanOut<number>([0, 1, 2].map((v) => sub(`${p}-kid`, { v })), { strategy: 'collect-all', retries: 0 });
        if (rs.some((r) => r.error)) throw noRetry(new Error('a kid failed'));
        return values(rs);
      });
      const id = await queue.enqueue(`${p}-flow`, {}, { queue: q, retries: 0, unique: key });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 5 } } });
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'failed');
      await w.stop();
      const kidsBefore = (await finishedKids(queue, id, 3)).map((k) => [k.id, k.status]);
      const stepsBefore = await stepShape(queue, id);
      await queue.enqueue('idle', {}, { queue: uniqueName('idle'), unique: key });
      await assert.rejects(queue.retryJob(id, { fromFailedStep: true }), DuplicateJobError);
      await assert.rejects(queue.retryJob(id), DuplicateJobError);
      assert.equal((await queue.getJob(id))?.status, 'failed');
      assert.deepEqual((await queue.listJobs({ parentId: id, order: 'asc' })).jobs.map((k) => [k.id, k.status]), kidsBefore, 'children untouched');
      assert.deepEqual(await stepShape(queue, id), stepsBefore, 'checkpoints untouched');
    });

    it('retryJobs over a failed workflow and its failed sub-jobs retries the workflow first and never retries a sub-job it then deletes', async () => {
      // The operator retries "everything failed of tenant T" after a fix, one job per batch. The
      // walk is oldest first, so the workflow is retried (from scratch: its old sub-jobs go) before
      // its sub-jobs are reached; they are neither retried (and claimed by a worker in between,
      // then deleted under it) nor reported as skipped.
      const queue = new Queue(ts.storage);
      const q = uniqueName('bulkwf');
      const kidsQ = uniqueName('bulkwf-kids');
      const p = uniqueName('bulkwf');
      const tenant = uniqueName('t');
      queue.register(`${p}-kid`, () => {
        throw new Error('kid down');
      });
      queue.register(`${p}-flow`, async (_: unknown, ctx) => values(await ctx.fanOut([0, 1].map((v) => sub(`${p}-kid`, { v })), { retries: 0, queue: kidsQ })));
      const id = await queue.enqueue(`${p}-flow`, {}, { queue: q, retries: 0, tenant });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 }, [kidsQ]: { concurrency: 2 } } });
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'failed');
      await w.stop();
      const kids = await finishedKids(queue, id, 2);
      const claimedBetween: string[] = [];
      const op = new Queue(
        hookRetryMany(
          ts.storage,
          () => id,
          async () => {
            // A worker of another process claims whatever sub-job is pending between two batches.
            for (const row of await claim(ts.storage, kidsQ, 10, { workerId: 'other-process' })) claimedBetween.push(row.id);
          },
        ),
      );
      const r = await op.retryJobs({ tenant }, { batchSize: 1 });
      assert.equal(r.count, 1, 'the workflow, once; its sub-jobs went with it');
      assert.deepEqual(r.skipped, []);
      assert.deepEqual(claimedBetween, [], 'no old sub-job was retried before its workflow');
      assert.equal((await ts.storage.jobGet({ id }))?.status, 'pending');
      for (const k of kids) assert.equal(await ts.storage.jobGet({ id: k.id }), undefined, `old sub-job ${k.id} dropped by the restart`);
    });

    it('retryJobs of 500 cancelled jobs sharing one unique key: one retried, 499 skipped as held', async () => {
      const q = uniqueName('uk500');
      const key = uniqueName('key');
      for (let i = 0; i < 500; i++) await cancelledJob(ts.storage, { queue: q, uniqueKey: key });
      const queue = new Queue(ts.storage);
      const r = await queue.retryJobs({ queue: q }, { batchSize: 500 });
      assert.equal(r.count, 1);
      assert.equal(r.skipped.length, 499);
      assert.ok(r.skipped.every((s) => s.reason === SKIP_UNIQUE_HELD));
      assert.equal((await queue.listJobs({ queue: q, status: 'pending' })).jobs.length, 1);
      // The same ids again, many times over, straight to the storage: nothing more moves.
      const ids = (await queue.listJobs({ queue: q, status: 'cancelled', limit: 500 })).jobs.map((j) => j.id);
      const again = await ts.storage.jobRetryMany({ ids: [...ids, ...ids, ids[0]!] });
      assert.deepEqual(again.done, []);
      assert.equal(again.skipped.length, 499, 'an id given many times is reported once');
    });

    it('fromFailedStep on a nested workflow (a fan-out child that is itself a workflow) while its parent still waits: the parent completes with results in order', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('nest');
      const p = uniqueName('nest');
      const calls = { s1: 0, g: 0, s2: 0, slow: 0 };
      const state = { failing: true };
      const slowGate = new Gate();
      queue.register(`${p}-s1`, () => ++calls.s1 && 's1');
      queue.register(`${p}-g`, (a: { v: number }) => {
        calls.g++;
        return a.v * 100;
      });
      queue.register(`${p}-s2`, (n: number) => {
        calls.s2++;
        if (state.failing) throw noRetry(new Error('s2 down'));
        return n + 1;
      });
      queue.register(`${p}-child`, async (_: unknown, ctx) => {
        await ctx.call(`${p}-s1`);
        const gs = await ctx.fanOut<number>([1, 2].map((v) => sub(`${p}-g`, { v })), { retries: 0 });
        return ctx.call<number>(`${p}-s2`, values(gs).reduce((x, y) => x + y, 0));
      });
      queue.register(`${p}-slow`, async () => {
        calls.slow++;
        await slowGate.promise;
        return 'slow';
      });
      queue.register(`${p}-flow`, async (_: unknown, ctx) => {
        const rs = await ctx.fanOut([sub(`${p}-child`, {}), sub(`${p}-slow`, {})], { strategy: 'collect-all', retries: 0 });
        if (rs.some((r) => r.error)) throw noRetry(new Error(`a sub-job failed: ${rs.map((r) => r.error?.message ?? 'ok').join(', ')}`));
        return values(rs);
      });
      const id = await queue.enqueue(`${p}-flow`, {}, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 6 } } });
      try {
        const child = await waitFor(
          async () => (await queue.listJobs({ parentId: id, type: `${p}-child`, status: 'failed' })).jobs[0],
          { message: 'the nested workflow failed', timeout: 10_000 },
        );
        assert.equal((await queue.getJob(id))?.status, 'waiting', 'the parent still waits for its slow sub-job');
        state.failing = false;
        await queue.retryJob(child.id, { fromFailedStep: true });
        assert.equal((await queue.waitForJob(child.id, { timeout: 10_000 })).status, 'completed');
        slowGate.open();
        const done = await queue.waitForJob(id, { timeout: 10_000 });
        assert.equal(done.status, 'completed', `parent ${done.status}: ${done.lastError ?? ''}`);
        assert.deepEqual(done.result, [301, 'slow']);
        assert.deepEqual(calls, { s1: 1, g: 2, s2: 2, slow: 1 }, 'only the failed step of the nested workflow ran again');
      } finally {
        slowGate.open();
        await w.stop();
      }
    });

    it('a workflow cancelled while a sub-job runs, then fromFailedStep while that cancelled run is still in its handler: the stale run cannot write, results are in order', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('cxl');
      const p = uniqueName('cxl');
      const runs = new Map<number, number>();
      const hold = new Gate();
      const started = { held: false };
      queue.register(`${p}-kid`, async (a: { v: number }) => {
        const n = (runs.get(a.v) ?? 0) + 1;
        runs.set(a.v, n);
        if (a.v === 1 && n === 1) {
          started.held = true;
          await hold.promise; // ignores its abort signal, as a careless handler does
          return -1;
        }
        return a.v * 10;
      });
      queue.register(`${p}-flow`, async (_: unknown, ctx) => values(await ctx.fanOut<number>([0, 1, 2].map((v) => sub(`${p}-kid`, { v })), { retries: 0 })));
      const id = await queue.enqueue(`${p}-flow`, {}, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 6 } } });
      try {
        await waitFor(async () => started.held && (await queue.listJobs({ parentId: id, status: 'completed' })).jobs.length === 2, { message: 'kids 0 and 2 done, kid 1 held' });
        await queue.cancelJob(id);
        await finishedKids(queue, id, 3);
        await queue.retryJob(id, { fromFailedStep: true });
        await assert.rejects(queue.retryJob(id, { fromFailedStep: true }), InvalidStateError, 'twice in a row: the second is refused');
        hold.open();
        const done = await queue.waitForJob(id, { timeout: 10_000 });
        assert.equal(done.status, 'completed', `parent ${done.status}: ${done.lastError ?? ''}`);
        assert.deepEqual(done.result, [0, 10, 20], 'the stale run of kid 1 did not write its result');
        assert.deepEqual([runs.get(0), runs.get(1), runs.get(2)], [1, 2, 1]);
      } finally {
        hold.open();
        await w.stop();
      }
    });

    it('fromFailedStep on a workflow that failed by lease expiry: completed steps are not re-run, the stale run cannot write', async () => {
      const faulty = new FaultyStorage(ts.storage);
      faulty.fail({ method: 'jobHeartbeat', times: Infinity });
      const queue = new Queue(faulty.storage);
      const q = uniqueName('lease');
      const p = uniqueName('lease');
      const calls = { a: 0, b: 0 };
      const hold = new Gate();
      queue.register(`${p}-a`, () => ++calls.a);
      queue.register(`${p}-b`, async () => {
        calls.b++;
        if (calls.b === 1) {
          await hold.promise;
          return 'stale';
        }
        return 'fresh';
      });
      queue.register(`${p}-flow`, async (_: unknown, ctx) => {
        const a = await ctx.call<number>(`${p}-a`);
        const b = await ctx.call<string>(`${p}-b`);
        return { a, b };
      });
      const id = await queue.enqueue(`${p}-flow`, {}, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } }, leaseTimeout: 300, heartbeatInterval: 100 });
      try {
        const failed = await queue.waitForJob(id, { timeout: 10_000 });
        assert.equal(failed.status, 'failed');
        assert.match(failed.lastError ?? '', /lease expired/);
        faulty.clear();
        await queue.retryJob(id, { fromFailedStep: true });
        const done = await queue.waitForJob(id, { timeout: 10_000 });
        hold.open();
        assert.equal(done.status, 'completed', `${done.status}: ${done.lastError ?? ''}`);
        assert.deepEqual(done.result, { a: 1, b: 'fresh' });
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual((await queue.getSteps(id)).map((s) => [s.index, s.status, s.output]), [
          [0, 'completed', 1],
          [1, 'completed', 'fresh'],
        ]);
        assert.equal(calls.a, 1);
      } finally {
        hold.open();
        await w.stop();
      }
    });

    it('retryJobs while a worker runs and the jobs keep failing: each job is retried once, none twice, none missed', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('flaky');
      const runs = new Map<string, number>();
      queue.register(`${q}-job`, (_: unknown, ctx) => {
        runs.set(ctx.job.id, (runs.get(ctx.job.id) ?? 0) + 1);
        throw new Error('still down');
      });
      const ids = await queue.enqueueBatch(Array.from({ length: 120 }, (_, i) => ({ type: `${q}-job`, args: i, options: { queue: q, retries: 0 } })));
      const w = startWorker(queue, { queues: { [q]: { concurrency: 8 } } });
      try {
        await waitFor(async () => (await queue.listJobs({ queue: q, status: 'failed', limit: 500 })).jobs.length === 120, { message: 'all failed', timeout: 15_000 });
        const r = await queue.retryJobs({ queue: q }, { batchSize: 7 });
        assert.equal(r.count, 120);
        assert.deepEqual(r.skipped, []);
        await waitFor(async () => (await queue.listJobs({ queue: q, status: 'failed', limit: 500 })).jobs.length === 120, { message: 'all failed again', timeout: 15_000 });
        assert.ok(ids.every((id) => runs.get(id) === 2), `runs per job: ${[...new Set(runs.values())].join(',')}`);
      } finally {
        await w.stop();
      }
    });

    it('a lost reply in the middle of retryJobs: the batches before it and the lost one are committed, a second retryJobs does the rest', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const q = uniqueName('lost');
      for (let i = 0; i < 30; i++) await cancelledJob(ts.storage, { queue: q });
      let call = 0;
      faulty.fail({ method: 'jobRetryMany', phase: 'after', when: () => ++call === 2 });
      const seen: number[] = [];
      await assert.rejects(queue.retryJobs({ queue: q }, { batchSize: 10, onProgress: (pr) => seen.push(pr.done) }));
      assert.deepEqual(seen, [10], 'progress was reported for the first batch');
      assert.equal((await queue.listJobs({ queue: q, status: 'pending', limit: 100 })).jobs.length, 20);
      const r = await queue.retryJobs({ queue: q }, { batchSize: 10 });
      assert.equal(r.count, 10);
      assert.equal((await queue.listJobs({ queue: q, status: 'pending', limit: 100 })).jobs.length, 30);
    });

    it('deleteJobs while a worker completes a late sub-job of the finished workflow being deleted', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('late');
      const p = uniqueName('late');
      const tenant = uniqueName('t');
      const hold = new Gate();
      queue.register(`${p}-kid`, async (a: { v: number }) => {
        if (a.v === 2) await hold.promise;
        return a.v;
      });
      queue.register(`${p}-flow`, async (_: unknown, ctx) => {
        const rs = await ctx.fanOut([0, 1, 2].map((v) => sub(`${p}-kid`, { v })), { strategy: { threshold: 0.5 }, retries: 0 });
        return rs.length;
      });
      const id = await queue.enqueue(`${p}-flow`, {}, { queue: q, retries: 0, tenant });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 6 } } });
      try {
        assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'completed');
        const first = await queue.deleteJobs({ tenant });
        assert.ok(first.skipped.some((s) => s.id === id), 'the parent with a running sub-job is kept');
        hold.open();
        await waitFor(async () => (await queue.listJobs({ tenant, status: ['pending', 'running'] })).jobs.length === 0, { message: 'late kid done' });
        const second = await queue.deleteJobs({ tenant });
        assert.deepEqual(second.skipped, []);
        assert.equal((await queue.listJobs({ tenant })).jobs.length, 0);
      } finally {
        hold.open();
        await w.stop();
      }
    });

    for (const kidState of ['completed', 'running'] as const) {
      it(`fromFailedStep after the failed sub-jobs were retried one by one (now ${kidState}): the workflow completes with every sub-job's result`, async () => {
        // The runbook path: retry the failed jobs (the sub-jobs among them), then resume the
        // workflow from its failed step. No sub-job is failed or cancelled any more, so the
        // fan-out is not reopened; it stays decided `failed` and the replay throws again.
        const queue = new Queue(ts.storage);
        const q = uniqueName('kids1by1');
        const p = uniqueName('kids1by1');
        const state = { failing: true };
        const hold = new Gate();
        queue.register(`${p}-kid`, async (a: { v: number }) => {
          if (a.v === 1 && state.failing) {
            // Fail once the others completed, so that the fail-fast decision cancels none of them.
            await waitFor(() => okDone >= 2, { message: 'kids 0 and 2 completed' });
            throw new Error('kid 1 down');
          }
          if (a.v === 1 && kidState === 'running') await hold.promise;
          return a.v * 10;
        });
        let okDone = 0;
        queue.onJobComplete((j) => void (j.type === `${p}-kid` && okDone++));
        queue.register(`${p}-flow`, async (_: unknown, ctx) => values(await ctx.fanOut<number>([0, 1, 2].map((v) => sub(`${p}-kid`, { v })), { strategy: 'fail-fast', retries: 0 })));
        const id = await queue.enqueue(`${p}-flow`, {}, { queue: q, retries: 0 });
        const w = startWorker(queue, { queues: { [q]: { concurrency: 6 } } });
        try {
          assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'failed');
          const kid1 = (await finishedKids(queue, id, 3))[1]!;
          assert.equal(kid1.status, 'failed');
          state.failing = false;
          await queue.retryJob(kid1.id);
          if (kidState === 'completed') assert.equal((await queue.waitForJob(kid1.id, { timeout: 10_000 })).status, 'completed');
          else await waitFor(async () => (await queue.getJob(kid1.id))?.status === 'running', { message: 'kid 1 running again' });
          await queue.retryJob(id, { fromFailedStep: true });
          hold.open();
          const done = await queue.waitForJob(id, { timeout: 10_000 });
          assert.equal(done.status, 'completed', `parent ${done.status}: ${done.lastError ?? ''}`);
          assert.deepEqual(done.result, [0, 10, 20]);
        } finally {
          hold.open();
          await w.stop();
        }
      });
    }

    it('cancelJobs over a running workflow and its sub-jobs leaves the workflow cancelled, not failed', async () => {
      // Bulk cancel walks newest first: the sub-jobs are cancelled before their parent, the
      // first one decides the fail-fast fan-out, the parent is woken, and a worker fails it
      // (FanOutFailedError) before the action reaches it: it is then skipped as "already finished".
      const queue = new Queue(ts.storage);
      const q = uniqueName('bulkcxl');
      const kidsQ = uniqueName('bulkcxl-kids');
      const p = uniqueName('bulkcxl');
      const tenant = uniqueName('t');
      queue.register(`${p}-flow`, async (_: unknown, ctx) => values(await ctx.fanOut([0, 1, 2].map((v) => sub(`${p}-kid`, { v })), { retries: 0, queue: kidsQ })));
      const id = await queue.enqueue(`${p}-flow`, {}, { queue: q, retries: 0, tenant });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      try {
        await waitFor(async () => (await queue.getJob(id))?.status === 'waiting', { message: 'parent waits on its fan-out' });
        const hooked = new Proxy(ts.storage, {
          get(target, prop) {
            const v: unknown = Reflect.get(target, prop, target);
            if (prop === 'jobCancel') {
              return async (pr: { id: string }) => {
                // The operator's action is slower than the worker between two batches.
                if (pr.id === id) await waitFor(async () => ['failed', 'completed', 'cancelled'].includes((await target.jobGet({ id }))?.status ?? ''), { timeout: 3_000 }).catch(() => undefined);
                return target.jobCancel(pr);
              };
            }
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        });
        const r = await new Queue(hooked).cancelJobs({ tenant }, { batchSize: 1 });
        const parent = await queue.getJob(id);
        assert.equal(parent?.status, 'cancelled', `the workflow ended ${parent?.status} (${parent?.lastError ?? ''}); skipped: ${JSON.stringify(r.skipped.map((s) => s.reason))}`);
      } finally {
        await w.stop();
      }
    });
  });
}
