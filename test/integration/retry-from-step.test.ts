/**
 * `queue.retryJob(id, { fromFailedStep: true })` on every driver: a 5-step workflow whose
 * step 3 failed resumes at step 3 (steps 1 and 2 are replayed from their checkpoints, not run),
 * whether the failure was checkpointed (a `noRetry` step error) or not; the default retry
 * starts over; a workflow whose fail-fast fan-out failed re-runs only its failed and cancelled
 * sub-jobs. `getSteps` shows the checkpoints before and after.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { InvalidArgumentError, InvalidStateError, JobNotFoundError, noRetry } from '../../src/errors.js';
import type { StepInfo } from '../../src/queue/operator-types.js';
import { sub, values } from '../../src/workflow/fan-out.js';
import { newId, uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

const STEPS = ['s1', 's2', 's3', 's4', 's5'] as const;

/** A 5-step workflow on a fresh queue: each step adds 1; step 3 fails while `failing` is set. */
function fiveSteps(queue: Queue, how: 'retryable' | 'noRetry') {
  const q = uniqueName('wf5');
  const prefix = uniqueName('step');
  const calls: Record<string, number> = Object.fromEntries(STEPS.map((s) => [s, 0]));
  const state = { failing: true };
  for (const s of STEPS) {
    queue.register(`${prefix}-${s}`, (n: number) => {
      calls[s]!++;
      if (s === 's3' && state.failing) {
        const err = new Error('step 3 is down');
        throw how === 'noRetry' ? noRetry(err) : err;
      }
      return n + 1;
    });
  }
  const type = `${prefix}-flow`;
  queue.register(type, async (start: number, ctx) => {
    let v = start;
    for (const s of STEPS) v = await ctx.call<number>(`${prefix}-${s}`, v);
    return { total: v };
  });
  return { q, type, prefix, calls, state };
}

/** Steps as comparable tuples: index, name, status, output. */
function shape(steps: StepInfo[]): unknown[] {
  return steps.map((s) => [s.index, s.name, s.status, s.output]);
}

for (const [name, make] of storageMatrix()) {
  describe(`retryJob fromFailedStep (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`retry-from-step-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    for (const how of ['retryable', 'noRetry'] as const) {
      it(`a 5-step workflow whose step 3 failed (${how} error) resumes at step 3: steps 1 and 2 are not run again`, async () => {
        const queue = new Queue(ts.storage);
        const wf = fiveSteps(queue, how);
        const id = await queue.enqueue(wf.type, 10, { queue: wf.q, retries: 0 });
        const w = startWorker(queue, { queues: { [wf.q]: { concurrency: 1 } } });
        try {
          const failed = await queue.waitForJob(id, { timeout: 10_000 });
          assert.equal(failed.status, 'failed');
          assert.equal(failed.lastError, 'step 3 is down');
          assert.deepEqual(wf.calls, { s1: 1, s2: 1, s3: 1, s4: 0, s5: 0 });
          const before = await queue.getSteps(id);
          const kept = [
            [0, `${wf.prefix}-s1`, 'completed', 11],
            [1, `${wf.prefix}-s2`, 'completed', 12],
          ];
          if (how === 'noRetry') {
            // A noRetry step error is checkpointed as a failed step.
            assert.deepEqual(shape(before), [...kept, [2, `${wf.prefix}-s3`, 'failed', undefined]]);
            assert.equal(before[2]?.error, 'step 3 is down');
          } else {
            assert.deepEqual(shape(before), kept, 'a retryable step error is not checkpointed');
          }
          for (const s of before) {
            assert.ok(s.at instanceof Date && !Number.isNaN(s.at.getTime()), 'at is a Date');
            assert.ok(Math.abs(s.at.getTime() - failed.createdAt.getTime()) < 60_000, 'at is a recent instant');
          }
          assert.ok(before[0]!.at.getTime() <= before[1]!.at.getTime());

          wf.state.failing = false;
          await queue.retryJob(id, { fromFailedStep: true });
          const done = await queue.waitForJob<number, { total: number }>(id, { timeout: 10_000 });
          assert.equal(done.status, 'completed');
          assert.deepEqual(done.result, { total: 15 }, 'replayed outputs feed the later steps');
          assert.deepEqual(wf.calls, { s1: 1, s2: 1, s3: 2, s4: 1, s5: 1 }, 'only steps 3 to 5 ran again');
          const afterSteps = await queue.getSteps(id);
          assert.deepEqual(
            shape(afterSteps),
            STEPS.map((s, i) => [i, `${wf.prefix}-${s}`, 'completed', 11 + i]),
          );
          assert.equal(afterSteps[0]!.at.getTime(), before[0]!.at.getTime(), 'the checkpoints of steps 1 and 2 were kept');
          assert.equal(afterSteps[1]!.at.getTime(), before[1]!.at.getTime());
          for (let i = 1; i < afterSteps.length; i++) assert.ok(afterSteps[i - 1]!.at.getTime() <= afterSteps[i]!.at.getTime(), 'steps in time order');
        } finally {
          await w.stop();
        }
      });
    }

    it('the default retryJob starts over: all 5 steps run again', async () => {
      const queue = new Queue(ts.storage);
      const wf = fiveSteps(queue, 'retryable');
      const id = await queue.enqueue(wf.type, 0, { queue: wf.q, retries: 0 });
      const w = startWorker(queue, { queues: { [wf.q]: { concurrency: 1 } } });
      try {
        assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'failed');
        assert.equal((await queue.getSteps(id)).length, 2);
        wf.state.failing = false;
        await queue.retryJob(id);
        const done = await queue.waitForJob<number, { total: number }>(id, { timeout: 10_000 });
        assert.equal(done.status, 'completed');
        assert.deepEqual(done.result, { total: 5 });
        assert.equal(done.attempt, 1, 'attempts start over');
        assert.deepEqual(wf.calls, { s1: 2, s2: 2, s3: 2, s4: 1, s5: 1 }, 'every step ran again');
        assert.equal((await queue.getSteps(id)).length, 5);
      } finally {
        await w.stop();
      }
    });

    it('retryJob fromFailedStep refuses a live job, an unknown id and a bad option; getSteps of an unknown id rejects', async () => {
      const queue = new Queue(ts.storage);
      const id = await queue.enqueue('never-run', {}, { queue: uniqueName('idle') });
      await assert.rejects(queue.retryJob(id, { fromFailedStep: true }), InvalidStateError);
      await assert.rejects(queue.retryJob(newId(), { fromFailedStep: true }), JobNotFoundError);
      await assert.rejects(queue.retryJob(id, { fromFailedStep: 'yes' as unknown as boolean }), InvalidArgumentError);
      await assert.rejects(queue.retryJob(id, { fromStep: 2 } as never), InvalidArgumentError);
      await assert.rejects(queue.getSteps(newId()), JobNotFoundError);
      assert.deepEqual(await queue.getSteps(id), [], 'a job without checkpoints has none');
    });

    it('a failed fail-fast fan-out: only its failed and cancelled children run again, completed ones are not re-run', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('fo');
      const kidsQ = uniqueName('fo-kids');
      const prefix = uniqueName('fo');
      const failing = new Set([1, 3]);
      const runs = new Map<number, number>();
      const calls = { pre: 0, post: 0 };
      let okCompleted = 0;
      queue.register(`${prefix}-pre`, () => {
        calls.pre++;
        return 'prepared';
      });
      queue.register(`${prefix}-post`, (n: number) => {
        calls.post++;
        return n;
      });
      queue.register(`${prefix}-kid`, async (a: { v: number }) => {
        runs.set(a.v, (runs.get(a.v) ?? 0) + 1);
        if (failing.has(a.v)) {
          // Fail only once the others completed, so that they are not cancelled by the decision.
          await waitFor(() => okCompleted >= 3, { message: 'the other children completed' });
          throw new Error(`child ${a.v} is down`);
        }
        return a.v * 10;
      });
      queue.onJobComplete((j) => void (j.type === `${prefix}-kid` && okCompleted++));
      queue.register(`${prefix}-flow`, async (_: unknown, ctx) => {
        const pre = await ctx.call<string>(`${prefix}-pre`);
        const rs = await ctx.fanOut<number>([0, 1, 2, 3, 4].map((v) => sub(`${prefix}-kid`, { v })), { strategy: 'fail-fast', retries: 0, queue: kidsQ });
        const sum = await ctx.call<number>(`${prefix}-post`, values(rs).reduce((x, y) => x + y, 0));
        return { pre, values: values(rs), sum };
      });
      const id = await queue.enqueue(`${prefix}-flow`, {}, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 }, [kidsQ]: { concurrency: 10 } } });
      try {
        const failed = await queue.waitForJob(id, { timeout: 15_000 });
        assert.equal(failed.status, 'failed');
        // The children have all ended (failed, or cancelled by the fail-fast decision).
        const kids = await waitFor(
          async () => {
            const list = (await queue.listJobs({ parentId: id, order: 'asc' })).jobs;
            return list.length === 5 && list.every((k) => ['completed', 'failed', 'cancelled'].includes(k.status)) ? list : undefined;
          },
          { message: 'children finished' },
        );
        const byIndex = new Map(kids.map((k) => [(k.args as { v: number }).v, k]));
        const statusOf = (v: number): string => byIndex.get(v)!.status;
        assert.deepEqual([0, 2, 4].map(statusOf), ['completed', 'completed', 'completed']);
        assert.ok(
          [1, 3].every((v) => ['failed', 'cancelled'].includes(statusOf(v))) && [1, 3].some((v) => statusOf(v) === 'failed'),
          `children 1 and 3 failed or were cancelled: ${[1, 3].map(statusOf).join(', ')}`,
        );
        const runsBefore = new Map(runs);
        assert.deepEqual([0, 2, 4].map((v) => runsBefore.get(v)), [1, 1, 1]);
        const stepsBefore = await queue.getSteps(id);
        assert.deepEqual(
          stepsBefore.map((s) => [s.index, s.name, s.status]),
          [
            [0, `${prefix}-pre`, 'completed'],
            [1, 'fan-out', 'completed'],
          ],
        );
        assert.equal(stepsBefore[0]!.output, 'prepared');
        assert.equal(calls.post, 0);

        failing.clear();
        await queue.retryJob(id, { fromFailedStep: true });
        const done = await queue.waitForJob<unknown, { pre: string; values: number[]; sum: number }>(id, { timeout: 15_000 });
        assert.equal(done.status, 'completed', `parent ${done.status}: ${done.lastError ?? ''}`);
        assert.deepEqual(done.result, { pre: 'prepared', values: [0, 10, 20, 30, 40], sum: 100 });
        assert.deepEqual(calls, { pre: 1, post: 1 }, 'the step before the fan-out was replayed, the one after ran once');
        for (const v of [0, 2, 4]) assert.equal(runs.get(v), 1, `completed child ${v} was not re-run`);
        for (const v of [1, 3]) assert.equal(runs.get(v), (runsBefore.get(v) ?? 0) + 1, `child ${v} ran again once`);
        const kidsAfter = (await queue.listJobs({ parentId: id, order: 'asc' })).jobs;
        assert.deepEqual(
          sortedIds(kidsAfter.map((k) => k.id)),
          sortedIds(kids.map((k) => k.id)),
          'the same children were retried, no new ones made',
        );
        assert.ok(kidsAfter.every((k) => k.status === 'completed'));
        for (const v of [0, 2, 4]) {
          const k = kidsAfter.find((j) => (j.args as { v: number }).v === v)!;
          assert.equal(k.completedAt?.getTime(), byIndex.get(v)!.completedAt?.getTime(), `child ${v} kept its first completion`);
        }
        const stepsAfter = await queue.getSteps(id);
        assert.deepEqual(
          stepsAfter.map((s) => [s.index, s.name, s.status]),
          [
            [0, `${prefix}-pre`, 'completed'],
            [1, 'fan-out', 'completed'],
            [2, `${prefix}-post`, 'completed'],
          ],
        );
        assert.equal(stepsAfter[2]!.output, 100);
      } finally {
        await w.stop();
      }
    });
  });
}

function sortedIds(ids: string[]): string[] {
  return [...ids].sort();
}
