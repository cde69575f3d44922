/**
 * Conformance: retention — `jobPrune` deletes finished workflows whose age has passed, whole:
 * a root with its subtree, checkpoints, signals and fan-outs; never a live job, never part of a
 * workflow whose root or any descendant is unfinished, never a child before its parent; at
 * most `limit` roots per call; ages compared on the database clock; one prune at a time across
 * processes (`busy`), and concurrent pruners delete each job once.
 *
 * Time runs on a second isolated database whose storage takes a clock the test sets (no real
 * waits); one test runs on the driver's own clock. Pruning is database-wide, so each test on
 * the manual clock first deletes whatever earlier tests left finished ({@link clearFinished}).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobPruneParams, JobPruneResult, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import { pruneLockFixture } from '../helpers/prune-lock.js';
import {
  applied,
  cancelledJob,
  claimChildren,
  claimOne,
  completedJob,
  failedJob,
  fanOutParent,
  fenceOf,
  insertJob,
  instances,
  jobInsert,
  mustGet,
  pausedJob,
  runningJob,
  stepRow,
  suspendIntoFanOut,
  uniqueName,
  waitForClockPast,
  waitingJob,
} from '../helpers/factories.js';
import { useManualClock, useStorage, type ManualClock } from './context.js';
import { expectWoken, finish } from './fan-out-helpers.js';

type Ages = JobPruneParams['olderThanMs'];

/** The same age for every status. */
const all = (age: number | null): Ages => ({ completed: age, failed: age, cancelled: age });

/** One `jobPrune` call, with its result checked for shape. */
async function prune(s: Storage, olderThanMs: Ages, limit = 10_000): Promise<JobPruneResult> {
  const r = await s.jobPrune({ olderThanMs, limit });
  assert.ok(Number.isSafeInteger(r.deleted) && Number.isSafeInteger(r.roots), `counts are integers: ${JSON.stringify(r)}`);
  assert.ok(r.roots <= limit && r.roots <= r.deleted, `roots within limit and deleted: ${JSON.stringify(r)}`);
  if (r.busy) assert.deepEqual(r, { deleted: 0, roots: 0, busy: true }, 'a busy prune deletes nothing');
  return r;
}

/** Moves the clock on and deletes every finished workflow left by earlier tests. */
async function clearFinished(m: ManualClock): Promise<void> {
  m.now += 1_000;
  const r = await prune(m.s, all(0));
  assert.equal(r.busy, false);
}

/** A completed root with one completed child (a workflow of two jobs), on the manual clock. */
async function rootWithChild(s: Storage): Promise<{ rootId: string; childId: string }> {
  const root = await completedJob(s);
  const child = await completedJob(s, { parentId: root.id });
  return { rootId: root.id, childId: child.id };
}

/** Asserts every id still exists, unchanged when `before` rows are given. */
async function expectKept(s: Storage, ids: string[], what: string): Promise<void> {
  for (const id of ids) assert.ok(await s.jobGet({ id }), `${what}: job ${id} was deleted`);
}

/** Asserts no id exists any more. */
async function expectGone(s: Storage, ids: string[], what: string): Promise<void> {
  for (const id of ids) assert.equal(await s.jobGet({ id }), undefined, `${what}: job ${id} is still there`);
}

/** Registers the retention tests. */
export function describeRetention(make: StorageMaker): void {
  describe('retention: jobPrune', () => {
    const ctx = useStorage(make, 'conformance-retention');
    const clock = useManualClock(ctx, 'conformance-retention-manual');

    it('a finished job stays readable until its age has passed, then goes with its steps, signals and fan-out rows', async () => {
      const m = clock();
      await clearFinished(m);
      const { fence } = await runningJob(m.s);
      const id = fence.jobId;
      assert.equal(await m.s.stepRecord({ fence, step: stepRow(id, 0, { outputJson: '"one"' }) }), true);
      await m.s.signalSend({ jobId: id, name: 'sig', payloadJson: '"left over"' });
      const fan = await suspendIntoFanOut(m.s, fence, { n: 1, stepIndex: 1 });
      const [kid] = await claimChildren(m.s, fan);
      await finish(m.s, kid!, 'completed');
      const again = await claimOne(m.s, (await mustGet(m.s, id)).queue, id);
      assert.deepEqual(applied(await m.s.jobFinishMany({ items: [{ ...fenceOf(again), outcome: 'completed', resultJson: '1' }] })), [true]);
      const done = await mustGet(m.s, id);
      assert.equal(done.completedAt, m.now);

      m.now = done.completedAt! + 5_000;
      assert.deepEqual(await prune(m.s, all(5_000)), { deleted: 0, roots: 0, busy: false }, 'an age exactly reached is not past');
      assert.equal((await mustGet(m.s, id)).status, 'completed');
      assert.equal((await m.s.stepList({ jobId: id })).length, 2, 'its checkpoints are still readable');
      assert.ok(await m.s.fanOutGet({ id: fan.fanOutId }));

      m.now += 1;
      assert.deepEqual(await prune(m.s, all(5_000)), { deleted: 2, roots: 1, busy: false });
      await expectGone(m.s, [id, fan.childIds[0]!], 'after its age');
      assert.deepEqual(await m.s.stepList({ jobId: id }), [], 'checkpoints deleted');
      assert.equal(await m.s.fanOutGet({ id: fan.fanOutId }), undefined, 'fan-out row deleted');
      // The signal is gone too: a new job given the same id finds no signal to consume.
      await m.s.jobInsertMany({ jobs: [jobInsert({ id, queue: uniqueName('q') })] });
      const reborn = await claimOne(m.s, (await mustGet(m.s, id)).queue, id);
      const r = await m.s.signalConsumeOrWait({ fence: fenceOf(reborn), stepIndex: 0, stepName: 'wait', signalName: 'sig', deadlineAt: null });
      assert.deepEqual(r, { kind: 'suspended' }, 'no signal of the pruned job was left behind');
    });

    it('ages apply per status; a null age keeps that status forever', async () => {
      const m = clock();
      await clearFinished(m);
      const c = await completedJob(m.s);
      const f = await failedJob(m.s);
      const x = await cancelledJob(m.s);
      const t0 = m.now;
      const ages: Ages = { completed: 100, failed: 200, cancelled: null };
      m.now = t0 + 150;
      assert.deepEqual(await prune(m.s, ages), { deleted: 1, roots: 1, busy: false });
      await expectGone(m.s, [c.id], 'completed past 100 ms');
      await expectKept(m.s, [f.id, x.id], 'failed and cancelled before their ages');
      m.now = t0 + 250;
      assert.deepEqual(await prune(m.s, ages), { deleted: 1, roots: 1, busy: false });
      await expectGone(m.s, [f.id], 'failed past 200 ms');
      m.now = t0 + 10 * 365 * 24 * 3600_000;
      assert.deepEqual(await prune(m.s, ages), { deleted: 0, roots: 0, busy: false });
      assert.deepEqual(await prune(m.s, all(null)), { deleted: 0, roots: 0, busy: false }, 'every age null: nothing is due');
      assert.equal((await mustGet(m.s, x.id)).status, 'cancelled', 'a null age keeps the job');
      assert.deepEqual(await prune(m.s, { completed: null, failed: null, cancelled: 0 }), { deleted: 1, roots: 1, busy: false });
    });

    it('a workflow is never pruned while its root or any job below it is unfinished, then goes as a whole', async () => {
      const m = clock();
      await clearFinished(m);
      const p = await fanOutParent(m.s, { n: 2, strategy: 'collect-all' });
      const [c1, c2] = await claimChildren(m.s, p);
      const g = await suspendIntoFanOut(m.s, c1!, { n: 1 });
      await finish(m.s, c2!, 'completed');
      const [gFence] = await claimChildren(m.s, g);
      const everyone = [p.parentId, ...p.childIds, ...g.childIds];
      m.now += 3_600_000;
      assert.equal((await prune(m.s, all(0))).roots, 0, 'root waiting, a child waiting, a grandchild running');
      await expectKept(m.s, everyone, 'unfinished workflow');

      await finish(m.s, gFence!, 'completed');
      await expectWoken(m.s, p.childIds[0]!);
      const c1Again = await claimOne(m.s, p.childQueue, p.childIds[0]!);
      await finish(m.s, fenceOf(c1Again), 'completed');
      await expectWoken(m.s, p.parentId);
      m.now += 3_600_000;
      assert.equal((await prune(m.s, all(0))).roots, 0, 'every descendant finished, the root is not');
      await expectKept(m.s, everyone, 'unfinished root');

      const pAgain = await claimOne(m.s, p.queue, p.parentId);
      m.now += 1_000;
      await finish(m.s, fenceOf(pAgain), 'completed');
      const rootDone = m.now;
      m.now = rootDone + 500;
      assert.equal((await prune(m.s, all(1_000))).roots, 0, 'children past their age, the root not: a child never goes before its parent');
      await expectKept(m.s, everyone, 'root before its age');

      m.now = rootDone + 1_001;
      assert.deepEqual(await prune(m.s, all(1_000)), { deleted: 4, roots: 1, busy: false });
      await expectGone(m.s, everyone, 'whole workflow');
      assert.equal(await m.s.fanOutGet({ id: p.fanOutId }), undefined);
      assert.equal(await m.s.fanOutGet({ id: g.fanOutId }), undefined);
      for (const id of [p.parentId, p.childIds[0]!]) assert.deepEqual(await m.s.stepList({ jobId: id }), []);
    });

    it('a workflow goes only once every job in it has passed its own status\'s age; a null age keeps the whole workflow', async () => {
      const m = clock();
      await clearFinished(m);
      // A completed root with a failed child (handled by the workflow) and a child that completed later.
      const root = await completedJob(m.s);
      const t0 = m.now;
      const failedChild = await failedJob(m.s, { parentId: root.id });
      m.now = t0 + 5_000;
      const lateChild = await completedJob(m.s, { parentId: root.id });
      const everyone = [root.id, failedChild.id, lateChild.id];

      m.now = t0 + 4_000;
      assert.equal((await prune(m.s, { completed: 3_000, failed: 0, cancelled: 0 }, 1)).roots, 0, 'the late child is not past its age yet');
      m.now = t0 + 8_001;
      assert.equal((await prune(m.s, { completed: 3_000, failed: null, cancelled: 0 })).roots, 0, 'failed jobs are kept forever: so is their workflow');
      assert.equal((await prune(m.s, { completed: 3_000, failed: 10_000, cancelled: 0 })).roots, 0, 'the failed child is younger than the failed age');
      await expectKept(m.s, everyone, 'workflow with a job not yet due');

      const due = await completedJob(m.s);
      m.now += 1;
      assert.deepEqual(await prune(m.s, { completed: 0, failed: 10_000, cancelled: 0 }, 1), { deleted: 1, roots: 1, busy: false }, 'a workflow held back does not use up the limit');
      await expectGone(m.s, [due.id], 'the due root');
      m.now = t0 + 10_001;
      assert.deepEqual(await prune(m.s, { completed: 3_000, failed: 10_000, cancelled: 0 }), { deleted: 3, roots: 1, busy: false });
      await expectGone(m.s, everyone, 'once every job passed its age');
    });

    it('a finished root with an unfinished descendant at any depth is skipped, and does not use up the limit', async () => {
      const m = clock();
      await clearFinished(m);
      const root = await completedJob(m.s);
      const mid = await completedJob(m.s, { parentId: root.id });
      const deep = await insertJob(m.s, { queue: uniqueName('q'), parentId: mid.id });
      m.now += 1_000;
      const due = await completedJob(m.s);
      m.now += 60_000;
      assert.deepEqual(await prune(m.s, all(0), 1), { deleted: 1, roots: 1, busy: false }, 'the due root is deleted, the skipped one not counted');
      await expectGone(m.s, [due.id], 'due root');
      await expectKept(m.s, [root.id, mid.id, deep], 'root with a pending grandchild');

      const deepRun = await claimOne(m.s, (await mustGet(m.s, deep)).queue, deep);
      await finish(m.s, fenceOf(deepRun), 'failed');
      m.now += 1;
      assert.deepEqual(await prune(m.s, all(0)), { deleted: 3, roots: 1, busy: false });
      await expectGone(m.s, [root.id, mid.id, deep], 'once everything below is finished');
    });

    it('live jobs are never touched, however old', async () => {
      const m = clock();
      await clearFinished(m);
      const pending = await insertJob(m.s, { queue: uniqueName('q') });
      const running = await runningJob(m.s);
      assert.equal(await m.s.stepRecord({ fence: running.fence, step: stepRow(running.fence.jobId, 0) }), true);
      const waiting = await waitingJob(m.s, {}, { waitSignal: 'go' });
      const paused = await pausedJob(m.s);
      const ids = [pending, running.fence.jobId, waiting.row.id, paused.id];
      const before = await Promise.all(ids.map((id) => mustGet(m.s, id)));
      m.now += 100 * 365 * 24 * 3600_000;
      assert.deepEqual(await prune(m.s, all(0)), { deleted: 0, roots: 0, busy: false });
      assert.deepEqual(await Promise.all(ids.map((id) => mustGet(m.s, id))), before, 'live rows unchanged');
      assert.equal((await m.s.stepList({ jobId: running.fence.jobId })).length, 1, 'a running job keeps its checkpoints');
    });

    it('deletes at most `limit` roots per call, each with its subtree; fewer than the limit means nothing else is due', async () => {
      const m = clock();
      await clearFinished(m);
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await rootWithChild(m.s));
      m.now += 1_000;
      assert.deepEqual(await prune(m.s, all(0), 2), { deleted: 4, roots: 2, busy: false });
      assert.deepEqual(await prune(m.s, all(0), 2), { deleted: 4, roots: 2, busy: false });
      assert.deepEqual(await prune(m.s, all(0), 2), { deleted: 2, roots: 1, busy: false });
      assert.deepEqual(await prune(m.s, all(0), 2), { deleted: 0, roots: 0, busy: false });
      await expectGone(m.s, made.flatMap((w) => [w.rootId, w.childId]), 'all five workflows');
    });

    it('refuses a bad age or limit with the same typed error on every driver, deleting nothing', async () => {
      const m = clock();
      await clearFinished(m);
      const job = await completedJob(m.s);
      m.now += 1_000;
      const bad: [Ages, number, RegExp][] = [
        [{ completed: -1, failed: 0, cancelled: 0 }, 10, /^jobPrune: olderThanMs\.completed must be null or a number of ms from 0 to Number\.MAX_SAFE_INTEGER, got -1$/],
        [{ completed: 0, failed: 2 ** 63, cancelled: 0 }, 10, /olderThanMs\.failed .* got 9223372036854776000$/],
        [{ completed: 0, failed: Number.NaN, cancelled: 0 }, 10, /olderThanMs\.failed .* got NaN$/],
        [{ completed: 0, failed: 0, cancelled: Number.POSITIVE_INFINITY }, 10, /olderThanMs\.cancelled .* got Infinity$/],
        [{ completed: '5' as unknown as number, failed: 0, cancelled: 0 }, 10, /olderThanMs\.completed .* got 5$/],
        [all(0), 1.5, /^jobPrune: limit must be a whole number >= 0, got 1\.5$/],
        [all(0), -1, /limit must be a whole number >= 0, got -1$/],
      ];
      for (const [olderThanMs, limit, message] of bad) {
        await assert.rejects(m.s.jobPrune({ olderThanMs, limit }), (e: Error) => e.name === 'InvalidArgumentError' && message.test(e.message), `${JSON.stringify(olderThanMs)} / ${limit}`);
      }
      assert.deepEqual(await prune(m.s, all(0), 0), { deleted: 0, roots: 0, busy: false }, 'a limit of 0 deletes nothing');
      assert.deepEqual(await prune(m.s, all(null)), { deleted: 0, roots: 0, busy: false }, 'null everywhere keeps everything');
      await expectKept(m.s, [job.id], 'after refused and empty prunes');
      assert.deepEqual(await prune(m.s, all(Number.MAX_SAFE_INTEGER)), { deleted: 0, roots: 0, busy: false }, 'the longest age is accepted');
      assert.deepEqual(await prune(m.s, all(0.9)), { deleted: 1, roots: 1, busy: false }, 'a fractional age is floored');
    });

    it('ages are measured on the driver clock', async () => {
      const s = ctx.s;
      const job = await completedJob(s);
      assert.equal((await prune(s, { completed: 3_600_000, failed: null, cancelled: null })).roots, 0, 'an hour has not passed');
      await expectKept(s, [job.id], 'young job');
      await waitForClockPast(s, job.completedAt!);
      assert.deepEqual(await prune(s, { completed: 0, failed: null, cancelled: null }), { deleted: 1, roots: 1, busy: false });
      await expectGone(s, [job.id], 'once the clock passed its completion');
    });

    it('pruners racing from several instances delete each job once and nothing live', async () => {
      const s = ctx.s;
      await prune(s, all(0));
      const workflows = [];
      for (let i = 0; i < 30; i++) workflows.push(await rootWithChild(s));
      const live = await insertJob(s, { queue: uniqueName('q') });
      const last = await mustGet(s, workflows.at(-1)!.childId);
      await waitForClockPast(s, last.completedAt!);
      const pruners = await instances(ctx.ts, 3);
      const totals = await Promise.all(
        [s, ...pruners].map(async (inst) => {
          let deleted = 0;
          let roots = 0;
          for (let rounds = 0; rounds < 1_000; rounds++) {
            const r = await prune(inst, all(0), 3);
            deleted += r.deleted;
            roots += r.roots;
            if (!r.busy && r.roots < 3) return { deleted, roots };
            if (r.busy) await new Promise((resolve) => setTimeout(resolve, 5));
          }
          throw new Error('a pruner never finished');
        }),
      );
      assert.equal(totals.reduce((n, t) => n + t.roots, 0), 30, 'every root deleted once');
      assert.equal(totals.reduce((n, t) => n + t.deleted, 0), 60, 'every job deleted once');
      await expectGone(s, workflows.flatMap((w) => [w.rootId, w.childId]), 'every workflow');
      assert.equal((await mustGet(s, live)).status, 'pending', 'the live job is untouched');
    });

    it('a prune while another holds the prune lock answers busy and deletes nothing', async () => {
      const fx = await pruneLockFixture(ctx.s.dialect, 'conformance-retention-busy');
      try {
        const job = await completedJob(fx.storage);
        await waitForClockPast(fx.storage, job.completedAt!);
        const release = await fx.hold();
        let r: JobPruneResult;
        try {
          r = await prune(fx.storage, all(0));
        } finally {
          await release();
        }
        assert.deepEqual(r, { deleted: 0, roots: 0, busy: true });
        await expectKept(fx.storage, [job.id], 'while busy');
        assert.deepEqual(await prune(fx.storage, all(0)), { deleted: 1, roots: 1, busy: false }, 'once the lock is free');
      } finally {
        await fx.cleanup();
      }
    });
  });
}
