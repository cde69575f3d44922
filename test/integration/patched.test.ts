/**
 * `ctx.patched(id)` on every driver: a workflow deployed in four versions (v1: A, B, C; v2: adds
 * X behind `patched('add-x')`; v2b: drops B behind `patched('drop-b')`; v3: drops the old
 * branches) with runs suspended on signal waits between versions, each resumed by the next
 * version's worker (a new Queue on the same database): every run completes on the branch its
 * history calls for, no DeterminismError, and `patchStatus` says unsafe while a run that took or
 * may take the old branch is in flight and safe once none is. v3 replaying a v1 history that went
 * past the change fails with a DeterminismError naming the position and both steps. Answers stay
 * fixed across retries, `retryJob(id, { fromFailedStep: true })` and a second ask; a stored
 * `true` is durable before the next checkpoint; bad ids and misuse are refused.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { DeterminismError, InvalidArgumentError, LeaseLostError, noRetry } from '../../src/errors.js';
import type { StepRecordParams, Storage } from '../../src/storage/storage.js';
import { Replay } from '../../src/workflow/replay.js';
import type { JobContext } from '../../src/workflow/job-context.js';
import { insertJob, uniqueName } from '../helpers/factories.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, holdsFor, startWorker, stopAllWorkers, type Started } from '../helpers/workflow-harness.js';

type Ctx = JobContext<unknown>;

/** The ordinary steps of a job (names by index) and its stored answers (id → answer). */
async function history(s: Storage, id: string): Promise<{ steps: string[]; answers: Record<string, boolean> }> {
  const rows = await s.stepList({ jobId: id });
  const steps = rows.filter((r) => r.stepIndex >= 0).sort((a, b) => a.stepIndex - b.stepIndex);
  steps.forEach((r, i) => assert.equal(r.stepIndex, i, `steps of ${id} are contiguous`));
  const answers: Record<string, boolean> = {};
  for (const r of rows.filter((x) => x.stepIndex < 0)) answers[r.stepName.replace(/^patched:/, '')] = JSON.parse(r.outputJson ?? 'null') as boolean;
  return { steps: steps.map((r) => r.stepName), answers };
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
  describe(`ctx.patched (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`patched-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('three deploys with runs in flight from each: every run completes on the branch its history calls for', async () => {
      const s = ts.storage;
      const q = uniqueName('patchq');
      const type = uniqueName('order-flow');
      const ran = new Map<string, string[]>();
      const step = (n: string) => (_: unknown, ctx: Ctx) => {
        ran.set(ctx.job.id, [...(ran.get(ctx.job.id) ?? []), n]);
        return n;
      };
      const versions: Record<string, (args: unknown, ctx: Ctx) => Promise<string>> = {
        v1: async (_, ctx) => {
          await ctx.call('A');
          await ctx.waitForSignal('go1');
          await ctx.call('B');
          await ctx.waitForSignal('go2');
          await ctx.call('C');
          await ctx.waitForSignal('go3');
          return 'v1';
        },
        v2: async (_, ctx) => {
          await ctx.call('A');
          await ctx.waitForSignal('go1');
          if (ctx.patched('add-x')) await ctx.call('X');
          await ctx.call('B');
          await ctx.waitForSignal('go2');
          await ctx.call('C');
          await ctx.waitForSignal('go3');
          return 'v2';
        },
        v2b: async (_, ctx) => {
          await ctx.call('A');
          await ctx.waitForSignal('go1');
          if (ctx.patched('add-x')) await ctx.call('X');
          if (!ctx.patched('drop-b')) await ctx.call('B');
          await ctx.waitForSignal('go2');
          await ctx.call('C');
          await ctx.waitForSignal('go3');
          return 'v2b';
        },
        v3: async (_, ctx) => {
          await ctx.call('A');
          await ctx.waitForSignal('go1');
          await ctx.call('X');
          await ctx.waitForSignal('go2');
          await ctx.call('C');
          await ctx.waitForSignal('go3');
          return 'v3';
        },
      };
      let worker: Started | undefined;
      let queue!: Queue;
      /** Deploys a version: a new Queue on the same database, its worker replacing the last one. */
      const deploy = async (v: string): Promise<void> => {
        await worker?.stop();
        queue = new Queue(s);
        for (const n of ['A', 'B', 'C', 'X']) queue.register(n, step(n));
        queue.register(type, versions[v]!);
        worker = startWorker(queue, { queues: { [q]: { concurrency: 8 } } });
      };
      const enqueue = () => queue.enqueue(type, {}, { queue: q, retries: 0 });
      const status = async (patch: string) => {
        const [st, ...rest] = await queue.patchStatus({ type, patch });
        assert.equal(rest.length, 0);
        assert.ok(st, `a status for ${patch}`);
        return st;
      };

      // v1: r1a waits before B; r1b and r1c went past B (the point v2 changes) and wait at go2.
      await deploy('v1');
      const [r1a, r1b, r1c] = [await enqueue(), await enqueue(), await enqueue()];
      for (const id of [r1a, r1b, r1c]) await waitingFor(s, id, 'go1');
      await queue.signal(r1b, 'go1');
      await queue.signal(r1c, 'go1');
      for (const id of [r1b, r1c]) await waitingFor(s, id, 'go2');
      assert.deepEqual(await queue.patchStatus({ type }), [], 'no run asked yet');

      // v2: a new run reaches the point on new code; r1a (not past it yet) takes the new branch;
      // r1b (recorded past it by v1) takes the old one.
      await deploy('v2');
      const r2a = await enqueue();
      const r2b = await enqueue();
      for (const id of [r2a, r2b]) await waitingFor(s, id, 'go1');
      await queue.signal(r2b, 'go1');
      await waitingFor(s, r2b, 'go2');
      assert.deepEqual(await history(s, r2b), { steps: ['A', 'signal:go1', 'X', 'B', 'signal:go2'], answers: { 'add-x': true } });
      let st = await status('add-x');
      assert.deepEqual(
        { inFlightNew: st.inFlightNew, inFlightOld: st.inFlightOld, inFlightPredating: st.inFlightPredating, safe: st.safeToRemoveOldBranch },
        { inFlightNew: 1, inFlightOld: 0, inFlightPredating: 4, safe: false },
        'r1a, r1b, r1c and r2a (created before the first answer) have not asked',
      );
      await queue.signal(r1a, 'go1');
      await waitingFor(s, r1a, 'go2');
      assert.deepEqual(await history(s, r1a), { steps: ['A', 'signal:go1', 'X', 'B', 'signal:go2'], answers: { 'add-x': true } });
      await queue.signal(r1b, 'go2');
      await waitingFor(s, r1b, 'go3');
      assert.deepEqual(await history(s, r1b), { steps: ['A', 'signal:go1', 'B', 'signal:go2', 'C', 'signal:go3'], answers: { 'add-x': false } });
      st = await status('add-x');
      assert.deepEqual(
        { inFlightNew: st.inFlightNew, inFlightOld: st.inFlightOld, inFlightPredating: st.inFlightPredating, recordedNew: st.recordedNew, recordedOld: st.recordedOld, safe: st.safeToRemoveOldBranch },
        { inFlightNew: 2, inFlightOld: 1, inFlightPredating: 2, recordedNew: 2, recordedOld: 1, safe: false },
        'r1b took the old branch and is in flight; r1c and r2a have not asked',
      );

      // v2b: drops B for runs that reach it on new code.
      await deploy('v2b');
      const r3a = await enqueue();
      await waitingFor(s, r3a, 'go1');
      for (const id of [r2a, r3a]) await queue.signal(id, 'go1');
      for (const id of [r2a, r3a]) await waitingFor(s, id, 'go2');
      for (const id of [r2a, r3a]) {
        assert.deepEqual(await history(s, id), { steps: ['A', 'signal:go1', 'X', 'signal:go2'], answers: { 'add-x': true, 'drop-b': true } }, `run ${id}`);
      }
      await queue.signal(r1a, 'go2'); // recorded B before v2b: keeps it
      await waitingFor(s, r1a, 'go3');
      assert.deepEqual(await history(s, r1a), { steps: ['A', 'signal:go1', 'X', 'B', 'signal:go2', 'C', 'signal:go3'], answers: { 'add-x': true, 'drop-b': false } });
      await queue.signal(r2b, 'go2');
      await waitingFor(s, r2b, 'go3');
      await queue.signal(r1b, 'go3'); // v1 history, old branch of both patches
      const done1b = await queue.waitForJob(r1b, { timeout: 15_000 });
      assert.equal(done1b.status, 'completed', done1b.lastError);
      assert.deepEqual(await history(s, r1b), { steps: ['A', 'signal:go1', 'B', 'signal:go2', 'C', 'signal:go3'], answers: { 'add-x': false, 'drop-b': false } });
      assert.deepEqual(ran.get(r1b), ['A', 'B', 'C'], 'every step of r1b ran once');
      for (const id of [r1a, r2b]) await queue.signal(id, 'go3');
      for (const id of [r1a, r2b]) assert.equal((await queue.waitForJob(id, { timeout: 15_000 })).status, 'completed');
      assert.equal((await status('add-x')).safeToRemoveOldBranch, false, 'r1c (v1 history past the point) is still in flight');
      assert.equal((await status('drop-b')).safeToRemoveOldBranch, false);

      // v3 replaying r1c's v1 history (B where v3 asks for X) diverges, loudly.
      await deploy('v3');
      await queue.signal(r1c, 'go2');
      const failed = await queue.waitForJob(r1c, { timeout: 15_000 });
      assert.equal(failed.status, 'failed');
      assert.match(failed.lastError ?? '', /replay diverged at step 2: the history has "B" but the code now asks for "X".*ctx\.patched\(id\).*cancel the run/);
      st = await status('add-x');
      assert.equal(st.inFlightPredating, 0);
      assert.equal(st.safeToRemoveOldBranch, true, 'no in-flight run took or may take the old branch of add-x');
      assert.equal((await status('drop-b')).safeToRemoveOldBranch, true);

      // The runs of v2 and v2b in flight finish on v3 (their answers match v3's code), and so does a new one.
      const r4a = await enqueue();
      await waitingFor(s, r4a, 'go1');
      await queue.signal(r4a, 'go1');
      for (const id of [r2a, r3a, r4a]) await waitingFor(s, id, 'go2');
      for (const id of [r2a, r3a, r4a]) await queue.signal(id, 'go2');
      for (const id of [r2a, r3a, r4a]) await waitingFor(s, id, 'go3');
      for (const id of [r2a, r3a, r4a]) await queue.signal(id, 'go3');
      for (const id of [r2a, r3a, r4a]) {
        const job = await queue.waitForJob(id, { timeout: 15_000 });
        assert.equal(job.status, 'completed', `${id}: ${job.lastError}`);
        assert.deepEqual((await history(s, id)).steps, ['A', 'signal:go1', 'X', 'signal:go2', 'C', 'signal:go3']);
      }
      assert.deepEqual((await history(s, r4a)).answers, {}, 'v3 asks nothing');
      assert.deepEqual(
        (await queue.getSteps(r2a)).map((x) => x.index),
        [0, 1, 2, 3, 4, 5],
        'getSteps lists steps only, not the stored answers',
      );
      await worker?.stop();
    });

    it('answers stay fixed across a retry, a second ask, and retryJob fromFailedStep', async () => {
      const q = uniqueName('patchq');
      const queue = new Queue(ts.storage);
      const type = uniqueName('retrying');
      const state = { failB: 1, failF: true };
      const ran: string[] = [];
      queue.register('A', () => void ran.push('A'));
      queue.register('X', () => void ran.push('X'));
      queue.register('B', () => {
        ran.push('B');
        if (state.failB-- > 0) throw new Error('B is down once');
      });
      queue.register('F', () => {
        ran.push('F');
        if (state.failF) throw noRetry(new Error('F refused'));
      });
      // On a first run the answer is true; B fails once after X was checkpointed, so the retry
      // replays X only if it gets `true` again; F fails for good, and the retry from the failed
      // step must again get `true`.
      queue.register(type, async (_: unknown, ctx: Ctx) => {
        await ctx.call('A');
        const first = ctx.patched('p');
        if (first) await ctx.call('X');
        await ctx.call('B');
        await ctx.call('F');
        return { first, again: ctx.patched('p') };
      });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } } });
      const id = await queue.enqueue(type, {}, { queue: q, retries: 2 });
      const failedJob = await queue.waitForJob(id, { timeout: 15_000 });
      assert.equal(failedJob.status, 'failed', 'F refused');
      assert.equal(failedJob.attempt, 2, 'B failed once, then F for good');
      state.failF = false;
      await queue.retryJob(id, { fromFailedStep: true });
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      assert.equal(job.status, 'completed', job.lastError);
      assert.deepEqual(job.result, { first: true, again: true });
      assert.deepEqual(ran, ['A', 'X', 'B', 'B', 'F', 'F'], 'A and X ran once; B and F ran again');
      assert.deepEqual(await history(ts.storage, id), { steps: ['A', 'X', 'B', 'F'], answers: { p: true } });

      // A run whose history went past the point before the patch existed answers `false`, and
      // asked again later (where nothing of the history lies ahead any more) still `false`.
      const oldType = uniqueName('old-history');
      queue.register(oldType, async (_: unknown, ctx: Ctx) => {
        await ctx.call('A');
        await ctx.call('B');
        await ctx.call('F');
        return 'v1';
      });
      state.failF = true;
      const old = await queue.enqueue(oldType, {}, { queue: q, retries: 0 });
      assert.equal((await queue.waitForJob(old, { timeout: 15_000 })).status, 'failed');
      await w.stop();
      const queue2 = new Queue(ts.storage);
      for (const n of ['A', 'B', 'X', 'F']) queue2.register(n, () => void ran.push(n));
      queue2.register(oldType, async (_: unknown, ctx: Ctx) => {
        await ctx.call('A');
        const first = ctx.patched('q');
        if (first) await ctx.call('X');
        await ctx.call('B');
        await ctx.call('F');
        return { first, again: ctx.patched('q') };
      });
      ran.length = 0;
      const w2 = startWorker(queue2, { queues: { [q]: { concurrency: 2 } } });
      await queue2.retryJob(old, { fromFailedStep: true });
      const done = await queue2.waitForJob(old, { timeout: 15_000 });
      assert.equal(done.status, 'completed', done.lastError);
      assert.deepEqual(done.result, { first: false, again: false });
      assert.deepEqual(ran, ['F'], 'X never ran; A and B were replayed');
      assert.deepEqual(await history(ts.storage, old), { steps: ['A', 'B', 'F'], answers: { q: false } });
      await w2.stop();
    });

    it('a `true` answer is stored before the next checkpoint', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const gate = new Gate();
      const isMarker = (p: { items: { step: { stepName: string } }[] }) => p.items.some((i) => i.step.stepName === 'patched:d');
      // The answer's first write fails (its retry then waits for the gate): the checkpoint writer
      // is free meanwhile, so only the run's own ordering keeps X's checkpoint back.
      faulty.fail({ method: 'stepRecordMany', when: isMarker, error: 'connection-reset' });
      faulty.fail({ method: 'stepRecordMany', when: isMarker, times: Infinity, respond: (p) => gate.promise.then(() => ts.storage.stepRecordMany(p)) });
      faulty.fail({ method: 'stepRecord', when: (p) => p.step.stepName === 'patched:d', times: Infinity, respond: (p) => gate.promise.then(() => ts.storage.stepRecord(p)) });
      const q = uniqueName('patchq');
      const queue = new Queue(faulty.storage);
      const type = uniqueName('ordered');
      const xRan = new Gate();
      queue.register('A', () => 'a');
      queue.register('X', () => {
        xRan.open();
        return 'x';
      });
      queue.register('B', () => 'b');
      queue.register(type, async (_: unknown, ctx: Ctx) => {
        await ctx.call('A');
        if (ctx.patched('d')) await ctx.call('X');
        await ctx.call('B');
      });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const id = await queue.enqueue(type, {}, { queue: q });
      await xRan.promise;
      // The answer's write is held: X ran, but its checkpoint must not be stored before the answer.
      await holdsFor(async () => (await history(ts.storage, id)).steps.length === 1, 300, 'X was checkpointed before the answer that led to it');
      gate.open();
      assert.equal((await queue.waitForJob(id, { timeout: 15_000 })).status, 'completed');
      assert.deepEqual(await history(ts.storage, id), { steps: ['A', 'X', 'B'], answers: { d: true } });
      await w.stop();
    });

    it('a run writes no checkpoint before its stored answers (the step cursor on its own)', async () => {
      const s = ts.storage;
      const q = uniqueName('patchq');
      const id = await insertJob(s, { queue: q, type: 'ordered' });
      const [row] = await s.jobClaim({ workerId: 'w-order', queues: [{ name: q, limit: 1 }], leaseMs: 60_000 });
      assert.equal(row?.id, id);
      const gate = new Gate();
      const held: string[] = [];
      // Answers are written only once the gate opens; other checkpoints at once.
      const write = (p: StepRecordParams): Promise<boolean> => {
        if (!p.step.stepName.startsWith('patched:')) return s.stepRecord(p);
        held.push(p.step.stepName);
        return gate.promise.then(() => s.stepRecord(p));
      };
      const replay = new Replay(s, { jobId: id, workerId: 'w-order', runCount: row!.runCount }, write);
      assert.equal(replay.patched('d'), true);
      assert.equal(replay.patched('d'), true, 'asked again: the same answer, no second write');
      const recorded = replay.record({ stepIndex: replay.take(), stepName: 'X', status: 'completed', outputJson: '1', error: null });
      await waitFor(() => held.length === 1, { message: 'the answer write started' });
      await holdsFor(async () => (await history(s, id)).steps.length === 0, 200, 'X was stored before the answer that led to it');
      gate.open();
      await recorded;
      assert.deepEqual(held, ['patched:d']);
      assert.deepEqual(await history(s, id), { steps: ['X'], answers: { d: true } });
      await replay.settle();
    });

    it('refuses a bad id at once, inside a step, and after the run is over', async () => {
      const q = uniqueName('patchq');
      const queue = new Queue(ts.storage);
      const type = uniqueName('misuse');
      let late: Ctx | undefined;
      const seen: string[] = [];
      const codeOf = (f: () => unknown): string => {
        try {
          return `ok ${String(f())}`;
        } catch (e) {
          return (e as { code?: string }).code ?? String(e);
        }
      };
      queue.register('inner', (_: unknown, ctx: Ctx) => {
        seen.push(`step: ${codeOf(() => ctx.patched('x'))}`);
      });
      queue.register(type, async (_: unknown, ctx: Ctx) => {
        for (const bad of ['', 'x'.repeat(256), 'a\u0000b', 42 as unknown as string]) {
          seen.push(codeOf(() => ctx.patched(bad)));
        }
        seen.push(codeOf(() => ctx.patched('x'.repeat(255))));
        await ctx.call('inner');
        late = ctx;
      });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const id = await queue.enqueue(type, {}, { queue: q });
      assert.equal((await queue.waitForJob(id, { timeout: 15_000 })).status, 'completed');
      assert.deepEqual(seen, ['INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'ok true', 'step: NO_RETRY']);
      assert.throws(() => late!.patched('later'), LeaseLostError);
      assert.throws(() => late!.patched(''), InvalidArgumentError);
      await assert.rejects(queue.patchStatus({ type: '' }), InvalidArgumentError);
      await assert.rejects(queue.patchStatus({ nope: 1 } as never), InvalidArgumentError);
      assert.ok(DeterminismError);
      await w.stop();
    });
  });
}
