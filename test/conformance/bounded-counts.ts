/**
 * Conformance: the bounded counts — `jobCountByStatusCapped` (each status exact up to the cap,
 * `cap + 1` above it, over every queue or one; pending jobs limited or not counted together;
 * completed jobs at any depth of a workflow, whatever the failed and cancelled jobs around them)
 * and `queueSummaryCapped` (the rows of `queueSummary`, same queues, order and oldest pending age
 * over every priority and limited jobs, each count capped the same way), and their refusal of a
 * cap that is not a whole number from 0.
 *
 * Counts over every queue are database-wide: each block has its own isolated storage and its
 * tests run in order, each adding jobs the next ones count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import type { QueueSummaryRow, Storage } from '../../src/storage/storage.js';
import type { JobStatus } from '../../src/types.js';
import type { StorageMaker } from '../helpers/storages.js';
import { cancelledJob, completedJob, failedJob, insertJob, pausedJob, runningJob, uniqueName, waitingJob } from '../helpers/factories.js';
import { useManualClock, useStorage } from './context.js';
import { setTypeLimit } from './flow-helpers.js';

/** Every status, as the counts report them. */
const STATUSES: readonly JobStatus[] = ['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'paused'];

/** Exact counts capped as the bounded counts cap them: `cap + 1` above `cap`. */
function capped(exact: Record<JobStatus, number>, cap: number): Record<JobStatus, number> {
  return Object.fromEntries(STATUSES.map((s) => [s, Math.min(exact[s], cap + 1)])) as Record<JobStatus, number>;
}

/** A summary row capped the same way. */
function cappedRow(r: QueueSummaryRow, cap: number): QueueSummaryRow {
  const c = (n: number): number => Math.min(n, cap + 1);
  return { ...r, pending: c(r.pending), running: c(r.running), waiting: c(r.waiting), pausedJobs: c(r.pausedJobs), failed: c(r.failed) };
}

/** Asserts the capped counts equal the exact ones capped, for every cap from 0 to `upTo` and a large one, over all queues and over `queues`. */
async function expectCapsMatch(s: Storage, upTo: number, queues: readonly string[]): Promise<void> {
  for (const queue of [undefined, ...queues]) {
    const p = queue === undefined ? {} : { queue };
    const exact = await s.jobCountByStatus(p);
    for (const cap of [...Array.from({ length: upTo + 1 }, (_, i) => i), 1_000_000]) {
      assert.deepEqual(await s.jobCountByStatusCapped({ ...p, cap }), capped(exact, cap), `queue ${queue ?? '(all)'}, cap ${cap}`);
    }
  }
}

/**
 * Adds to `q` 3 pending jobs (1 limited), 3 completed (2 of them sub-jobs of a future job in
 * `<q>-roots`), 4 failed, 2 cancelled and 1 paused; one running job in `<q>-r1` and one waiting in `<q>-w`.
 */
async function fill(s: Storage, q: string, limitedType: string): Promise<void> {
  // Jobs that run first: each is claimed from a queue holding no other ready job.
  const root = await insertJob(s, { queue: `${q}-roots`, delayMs: 3_600_000 });
  await runningJob(s, { queue: `${q}-r1` });
  await completedJob(s, { queue: q });
  await completedJob(s, { queue: q, parentId: root });
  await completedJob(s, { queue: q, parentId: root });
  for (let i = 0; i < 4; i++) await failedJob(s, { queue: q }, `boom ${i}`);
  await waitingJob(s, { queue: `${q}-w` }, { waitSignal: 'go' });
  await cancelledJob(s, { queue: q });
  await cancelledJob(s, { queue: q });
  await pausedJob(s, { queue: q });
  await insertJob(s, { queue: q });
  await insertJob(s, { queue: q, priority: 5 });
  await insertJob(s, { queue: q, type: limitedType });
}

/** Registers the bounded count tests. */
export function describeBoundedCounts(make: StorageMaker): void {
  describe('operator view: jobCountByStatusCapped', () => {
    const ctx = useStorage(make, 'conformance-bounded-counts');

    it('an empty storage counts zero everywhere, whatever the cap', async () => {
      const zero = Object.fromEntries(STATUSES.map((st) => [st, 0]));
      for (const cap of [0, 1, 100_000]) {
        assert.deepEqual(await ctx.s.jobCountByStatusCapped({ cap }), zero);
        assert.deepEqual(await ctx.s.jobCountByStatusCapped({ cap, queue: 'nowhere' }), zero);
      }
    });

    it('each status exact up to the cap and cap + 1 above it, over every queue and in one', async () => {
      const s = ctx.s;
      const [a, b] = [uniqueName('qa'), uniqueName('qb')];
      const limitedType = uniqueName('limited');
      await setTypeLimit(s, limitedType, { concurrency: 5 });
      await fill(s, a, limitedType);
      await failedJob(s, { queue: b });
      await completedJob(s, { queue: b });
      await insertJob(s, { queue: b });
      // Running jobs of `a` itself (runningJob claims from a fresh queue unless told otherwise).
      await runningJob(s, { queue: `${a}-run` });
      const inA = await s.jobCountByStatus({ queue: a });
      assert.deepEqual(inA, { pending: 3, running: 0, waiting: 0, completed: 3, failed: 4, cancelled: 2, paused: 1 });
      await expectCapsMatch(s, 4, [a, b, `${a}-run`, `${a}-w`, 'nowhere']);
    });

    it('pending jobs limited or not are counted together before the cap applies', async () => {
      const s = ctx.s;
      const q = uniqueName('qp');
      const limitedType = uniqueName('limited');
      await setTypeLimit(s, limitedType, { concurrency: 1 });
      for (let i = 0; i < 2; i++) await insertJob(s, { queue: q });
      for (let i = 0; i < 2; i++) await insertJob(s, { queue: q, type: limitedType });
      assert.equal((await s.jobCountByStatusCapped({ queue: q, cap: 10 })).pending, 4);
      assert.equal((await s.jobCountByStatusCapped({ queue: q, cap: 3 })).pending, 4, 'cap + 1: more than 3');
      assert.equal((await s.jobCountByStatusCapped({ queue: q, cap: 2 })).pending, 3, 'never more than cap + 1');
      assert.equal((await s.jobCountByStatusCapped({ queue: q, cap: 1 })).pending, 2);
    });

    it('completed jobs are exact below the cap however many failed and cancelled jobs surround them', async () => {
      const s = ctx.s;
      const q = uniqueName('qf');
      for (let i = 0; i < 6; i++) await failedJob(s, { queue: q });
      for (let i = 0; i < 3; i++) await cancelledJob(s, { queue: q });
      await completedJob(s, { queue: q });
      const parent = await insertJob(s, { queue: q, delayMs: 3_600_000 });
      await completedJob(s, { queue: q, parentId: parent });
      await expectCapsMatch(s, 3, [q]);
      assert.deepEqual(await s.jobCountByStatusCapped({ queue: q, cap: 1 }), { pending: 1, running: 0, waiting: 0, completed: 2, failed: 2, cancelled: 2, paused: 0 });
    });

    it('refuses a cap that is not a whole number from 0', async () => {
      for (const cap of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER]) {
        await assert.rejects(ctx.s.jobCountByStatusCapped({ cap }), InvalidArgumentError, `cap ${cap}`);
        await assert.rejects(ctx.s.queueSummaryCapped({ cap }), InvalidArgumentError, `cap ${cap}`);
      }
    });
  });

  describe('operator view: queueSummaryCapped', () => {
    const ctx = useStorage(make, 'conformance-bounded-summary');
    const clock = useManualClock(ctx, 'conformance-bounded-summary-manual');

    it('the rows of queueSummary: same queues, order and ages; each count capped at cap + 1', async () => {
      const m = clock();
      const s = m.s;
      const q = uniqueName('q').replace(/_/g, '');
      const limitedType = uniqueName('limited');
      await setTypeLimit(s, limitedType, { concurrency: 5 });
      await fill(s, q, limitedType);
      // Oldest pending: a low-priority job older than the high-priority ones; a limited job older than the others.
      const old = uniqueName('q').replace(/_/g, '');
      const oldLimited = uniqueName('q').replace(/_/g, '');
      await insertJob(s, { queue: old, priority: -3 });
      await insertJob(s, { queue: oldLimited, type: limitedType });
      m.now += 1_000;
      await insertJob(s, { queue: old, priority: 9 });
      await insertJob(s, { queue: old, priority: 2 });
      await insertJob(s, { queue: oldLimited, priority: 8 });
      m.now += 250;
      const future = uniqueName('q').replace(/_/g, '');
      await insertJob(s, { queue: future, delayMs: 60_000 });
      const idle = uniqueName('q').replace(/_/g, '');
      await s.queueSetPaused({ queue: idle, paused: true });
      const finishedOnly = uniqueName('q').replace(/_/g, '');
      await completedJob(s, { queue: finishedOnly });
      await cancelledJob(s, { queue: finishedOnly });
      for (let i = 0; i < 3; i++) await runningJob(s, { queue: `${q}-many` });

      const exact = await s.queueSummary();
      assert.ok(exact.length >= 9);
      assert.equal(exact.find((r) => r.name === old)?.oldestPendingAgeMs, 1_250, 'the low-priority job, older than the high-priority ones');
      assert.equal(exact.find((r) => r.name === oldLimited)?.oldestPendingAgeMs, 1_250, 'the limited job, older than the other');
      assert.equal(exact.find((r) => r.name === finishedOnly), undefined);
      for (const cap of [0, 1, 2, 3, 5, 1_000_000]) {
        assert.deepEqual(await s.queueSummaryCapped({ cap }), exact.map((r) => cappedRow(r, cap)), `cap ${cap}`);
      }
    });

    it('on the driver clock, a due pending job has an age and counts as the exact summary does', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      await failedJob(s, { queue: q });
      for (let i = 0; i < 4; i++) await insertJob(s, { queue: q, priority: i % 2 });
      const [row] = (await s.queueSummaryCapped({ cap: 2 })).filter((r) => r.name === q);
      assert.ok(row !== undefined);
      assert.deepEqual({ ...row, oldestPendingAgeMs: 0 }, { name: q, paused: false, pending: 3, running: 0, waiting: 0, pausedJobs: 0, failed: 1, oldestPendingAgeMs: 0 });
      assert.ok(row.oldestPendingAgeMs !== null && row.oldestPendingAgeMs >= 0);
    });
  });
}
