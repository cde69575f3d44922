/**
 * `ctx.patched` under operator actions and odd use, on every driver: `patchStatus` with a
 * rolling deploy (a worker still on old code starts a run after the patch was first recorded),
 * retries from scratch (one and in bulk) dropping the answers, deletes and pruning removing them,
 * a thousand ids and the same id in a loop in one run, an encrypted deployment (answers still
 * counted, steps and step middleware never see them), and a marker write that cannot be stored
 * (no later checkpoint, the answer unchanged after the fault is gone).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Queue } from '../../src/queue/queue.js';
import { encryptedCodec } from '../../src/core/encrypted-codec.js';
import type { Storage } from '../../src/storage/storage.js';
import type { JobContext } from '../../src/workflow/job-context.js';
import { uniqueName } from '../helpers/factories.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

type Ctx = JobContext<unknown>;

/** The stored answers of a job, by id. */
async function answers(s: Storage, id: string): Promise<Record<string, boolean>> {
  const out: Record<string, boolean> = {};
  for (const r of await s.stepList({ jobId: id })) if (r.stepIndex < 0) out[r.stepName.replace(/^patched:/, '')] = JSON.parse(r.outputJson ?? 'null') as boolean;
  return out;
}

/** Resolves once the job waits for the signal `name`. */
async function waitingFor(s: Storage, id: string, name: string): Promise<void> {
  await waitFor(
    async () => {
      const job = await s.jobGet({ id });
      if (job?.status === 'failed') throw new Error(`job ${id} failed: ${job.lastError}`);
      return job?.status === 'waiting' && job.waitSignal === name;
    },
    { timeout: 15_000, message: `job ${id} waiting for ${name}` },
  );
}

for (const [name, make] of storageMatrix()) {
  describe(`ctx.patched under operators (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`patched-ops-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('rolling deploy: a run old code started after the patch was first recorded counts once `deployedAt` says when the deploy ended', async () => {
      const s = ts.storage;
      const q = uniqueName('patchq');
      const type = uniqueName('rolling');
      const newQ = new Queue(s);
      const oldQ = new Queue(s);
      for (const qu of [newQ, oldQ]) for (const n of ['A', 'X']) qu.register(n, () => n);
      newQ.register(type, async (_: unknown, ctx: Ctx) => {
        await ctx.call('A');
        if (ctx.patched('p')) await ctx.call('X');
        await ctx.waitForSignal('go');
      });
      oldQ.register(type, async (_: unknown, ctx: Ctx) => {
        await ctx.call('A');
        await ctx.waitForSignal('go');
      });
      // A new worker records the patch first.
      const wNew = startWorker(newQ, { queues: { [q]: { concurrency: 1 } } });
      const first = await newQ.enqueue(type, {}, { queue: q });
      await waitingFor(s, first, 'go');
      await wNew.stop();
      assert.deepEqual(await answers(s, first), { p: true });
      // An old worker, still up, starts a run afterwards and records it past the point.
      const wOld = startWorker(oldQ, { queues: { [q]: { concurrency: 1 } } });
      const late = await oldQ.enqueue(type, {}, { queue: q });
      await waitingFor(s, late, 'go');
      await wOld.stop();
      assert.deepEqual(await answers(s, late), {});
      const deployedAt = new Date((await s.clockNow()) + 1);
      const [told] = await newQ.patchStatus({ type, patch: 'p', deployedAt });
      assert.equal(told?.inFlightPredating, 1, 'the late old-code run may take the old branch');
      assert.equal(told?.safeToRemoveOldBranch, false);
      // Without it, the anchor is the first answer: the late run is not seen (the documented limit).
      const [byFirst] = await newQ.patchStatus({ type, patch: 'p' });
      assert.equal(byFirst?.inFlightPredating, 0);
      await assert.rejects(newQ.patchStatus({ deployedAt: 'yesterday' as never }), { code: 'INVALID_ARGUMENT' });
      // Once the late run replays on new code it stores `false`, with or without the anchor.
      const w = startWorker(newQ, { queues: { [q]: { concurrency: 1 } } });
      await newQ.signal(late, 'go', null);
      await newQ.signal(first, 'go', null);
      assert.equal((await newQ.waitForJob(late, { timeout: 15_000 })).status, 'completed');
      assert.equal((await newQ.waitForJob(first, { timeout: 15_000 })).status, 'completed');
      assert.deepEqual(await answers(s, late), { p: false });
      const [done] = await newQ.patchStatus({ type, patch: 'p', deployedAt });
      assert.deepEqual([done?.recordedNew, done?.recordedOld, done?.inFlightPredating, done?.safeToRemoveOldBranch], [1, 1, 0, true]);
      await w.stop();
    });

    it('retryJob and retryJobs from scratch drop the answers; deleteJob and prune remove them', async () => {
      const s = ts.storage;
      const q = uniqueName('patchq');
      const type = uniqueName('scratch');
      const state = { fail: true };
      const queue = new Queue(s);
      queue.register('A', () => 'a');
      queue.register('B', () => 'b');
      queue.register('C', () => {
        if (state.fail) throw new Error('C is down');
        return 'c';
      });
      const seen: boolean[] = [];
      // v1 recorded A and B, then C failed: a retry from the failed step on v2 replays a history
      // past the point (`false`, stored); a retry from scratch must decide again (`true`).
      let v2 = false;
      queue.register(type, async (_: unknown, ctx: Ctx) => {
        await ctx.call('A');
        if (v2) seen.push(ctx.patched('s'));
        await ctx.call('B');
        await ctx.call('C');
      });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } } });
      const one = await queue.enqueue(type, {}, { queue: q, retries: 0 });
      const bulk = await queue.enqueue(type, {}, { queue: q, retries: 0 });
      for (const id of [one, bulk]) assert.equal((await queue.waitForJob(id, { timeout: 15_000 })).status, 'failed');
      v2 = true;
      // A retry from the failed step replays A: `false` stored; then a retry from scratch: `true`.
      await queue.retryJob(one, { fromFailedStep: true });
      assert.equal((await queue.waitForJob(one, { timeout: 15_000 })).status, 'failed');
      assert.deepEqual(await answers(s, one), { s: false });
      await queue.retryJob(one);
      assert.equal((await queue.waitForJob(one, { timeout: 15_000 })).status, 'failed');
      assert.deepEqual(await answers(s, one), { s: true }, 'a retry from scratch decides again on the code it meets');
      await queue.retryJob(bulk, { fromFailedStep: true });
      assert.equal((await queue.waitForJob(bulk, { timeout: 15_000 })).status, 'failed');
      assert.deepEqual(await answers(s, bulk), { s: false });
      state.fail = false;
      const outcome = await queue.retryJobs({ type, status: 'failed' });
      assert.equal(outcome.count, 2);
      for (const id of [one, bulk]) assert.equal((await queue.waitForJob(id, { timeout: 15_000 })).status, 'completed');
      assert.deepEqual(await answers(s, bulk), { s: true });
      assert.deepEqual(seen, [false, true, false, true, true]);
      const [st] = await queue.patchStatus({ type, patch: 's' });
      assert.deepEqual([st?.recordedNew, st?.recordedOld], [2, 0]);
      await w.stop();
      await queue.deleteJob(one);
      assert.deepEqual(await answers(s, one), {});
      const [afterDelete] = await queue.patchStatus({ type, patch: 's' });
      assert.equal(afterDelete?.recordedNew, 1);
      await queue.prune({ olderThan: 0 });
      assert.deepEqual(await answers(s, bulk), {});
      assert.deepEqual(await queue.patchStatus({ type }), [], 'no answers of pruned jobs are left');
    });

    it('a thousand ids and one id asked in a loop: each decided once, stored once, numbered -1, -2, …', async () => {
      const s = ts.storage;
      const q = uniqueName('patchq');
      const type = uniqueName('many');
      const queue = new Queue(s);
      queue.register('A', (i: number) => i);
      queue.register(type, async (_: unknown, ctx: Ctx) => {
        const got: boolean[] = [];
        for (let i = 0; i < 1000; i++) got.push(ctx.patched(`id-${i}`));
        for (let i = 0; i < 3; i++) {
          got.push(ctx.patched('loop'));
          await ctx.call('A', i);
        }
        return got.every(Boolean) ? got.length : -1;
      });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const id = await queue.enqueue(type, {}, { queue: q });
      const job = await queue.waitForJob(id, { timeout: 30_000 });
      await w.stop();
      assert.equal(job.status, 'completed', job.lastError);
      assert.equal(job.result, 1003);
      const rows = (await s.stepList({ jobId: id })).filter((r) => r.stepIndex < 0).sort((a, b) => b.stepIndex - a.stepIndex);
      assert.equal(rows.length, 1001);
      rows.forEach((r, i) => assert.equal(r.stepIndex, -1 - i));
      assert.equal(rows[1000]?.stepName, 'patched:loop');
      assert.deepEqual((await queue.getSteps(id)).map((x) => x.name), ['A', 'A', 'A']);
      const status = await queue.patchStatus({ type });
      assert.equal(status.length, 1000, 'at most the limit of pairs');
      assert.equal(status[0]?.patch, 'id-0');
    });

    it('under an encrypted codec: answers stay countable, step middleware and getSteps never see them', async () => {
      const s = ts.storage;
      const q = uniqueName('patchq');
      const type = uniqueName('sealed');
      const queue = new Queue(s, { codec: encryptedCodec({ key: randomBytes(32) }) });
      const steps: string[] = [];
      queue.useStep(async (step, next) => {
        steps.push(`${step.name}@${step.index}`);
        return next();
      });
      queue.register('A', () => 'secret-a');
      queue.register(type, async (_: unknown, ctx: Ctx) => {
        await ctx.call('A');
        const p = ctx.patched('enc');
        await ctx.call('A');
        return p;
      });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const id = await queue.enqueue(type, {}, { queue: q });
      assert.equal((await queue.waitForJob(id, { timeout: 15_000 })).result, true);
      await w.stop();
      assert.deepEqual(steps, ['A@0', 'A@1']);
      const raw = await s.stepList({ jobId: id });
      assert.ok(raw.filter((r) => r.stepIndex >= 0).every((r) => r.outputJson?.startsWith('sdj1:')), 'step outputs are sealed');
      assert.deepEqual(await answers(s, id), { enc: true });
      const [st] = await queue.patchStatus({ type });
      assert.deepEqual([st?.patch, st?.recordedNew, st?.safeToRemoveOldBranch], ['enc', 1, true]);
      assert.deepEqual((await queue.getSteps(id)).map((x) => x.output), ['secret-a', 'secret-a']);
    });

    it('an answer that cannot be stored: no later checkpoint, and after the fault the run gets the same answer', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const isMarker = (p: { items: { step: { stepName: string } }[] }) => p.items.some((i) => i.step.stepName === 'patched:u');
      const many = faulty.fail({ method: 'stepRecordMany', when: isMarker, times: Infinity, error: 'packet-too-large' });
      const one = faulty.fail({ method: 'stepRecord', when: (p) => p.step.stepName === 'patched:u', times: Infinity, error: 'packet-too-large' });
      const q = uniqueName('patchq');
      const type = uniqueName('unstorable');
      const queue = new Queue(faulty.storage);
      const ran: string[] = [];
      for (const n of ['A', 'X', 'B']) queue.register(n, () => void ran.push(n));
      queue.register(type, async (_: unknown, ctx: Ctx) => {
        await ctx.call('A');
        const p = ctx.patched('u');
        if (p) await ctx.call('X');
        await ctx.call('B');
        return p;
      });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const id = await queue.enqueue(type, {}, { queue: q, retries: 0 });
      const failed = await queue.waitForJob(id, { timeout: 20_000 });
      assert.equal(failed.status, 'failed');
      assert.match(failed.lastError ?? '', /max_allowed_packet/);
      assert.deepEqual(
        (await ts.storage.stepList({ jobId: id })).map((r) => r.stepName),
        ['A'],
        'X ran but is not checkpointed without the answer that led to it',
      );
      many.remove();
      one.remove();
      await queue.retryJob(id, { fromFailedStep: true });
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      assert.equal(job.status, 'completed', job.lastError);
      assert.equal(job.result, true, 'the same answer as the runs that could not store it');
      assert.deepEqual(await answers(ts.storage, id), { u: true });
      assert.deepEqual(ran, ['A', 'X', 'X', 'B']);
      // A run that ends right after asking: its outcome waited for the write, which failed; nothing
      // after the answer was stored, so a replay would decide the same way again.
      faulty.fail({ method: 'stepRecordMany', when: (p) => p.items.some((i) => i.step.stepName === 'patched:v'), times: Infinity, error: 'packet-too-large' });
      faulty.fail({ method: 'stepRecord', when: (p) => p.step.stepName === 'patched:v', times: Infinity, error: 'packet-too-large' });
      const short = uniqueName('short');
      queue.register(short, (_: unknown, ctx: Ctx) => ctx.patched('v'));
      const sid = await queue.enqueue(short, {}, { queue: q, retries: 0 });
      const sj = await queue.waitForJob(sid, { timeout: 20_000 });
      assert.deepEqual([sj.status, sj.result], ['completed', true]);
      assert.deepEqual(await answers(ts.storage, sid), {});
      await w.stop();
    });
  });
}
