/**
 * Conformance: queues and workers as an operator sees them — `queueSummary` (counts per status
 * of live and failed jobs, paused queues with no jobs, the oldest due pending age; completed and
 * cancelled jobs not counted) and the worker registry (`workerBeat` upserts keeping `startedAt`,
 * `workerList` of rows not expired, by name then id, `workerRemove`).
 *
 * Both read database-wide, so each test looks only at its own queue names and worker ids.
 * Exact ages and expiries run on a second isolated database whose storage takes a clock the
 * test sets; one test of each runs on the driver's own clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { QueueSummaryRow, Storage, WorkerBeatParams, WorkerRow } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import {
  assertBetween,
  cancelledJob,
  claimOne,
  completedJob,
  failedJob,
  insertJob,
  pausedJob,
  runningJob,
  uniqueName,
  waitForClockPast,
  waitingJob,
} from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';
import { useManualClock, useStorage } from './context.js';

/** The summary row of `name`, or undefined when the queue is not listed. */
async function summaryOf(s: Storage, name: string): Promise<QueueSummaryRow | undefined> {
  const rows = await s.queueSummary();
  assert.equal(rows.filter((r) => r.name === name).length <= 1, true, `queue ${name} listed once`);
  return rows.find((r) => r.name === name);
}

/** A summary row with every count zero. */
function emptyRow(name: string, paused: boolean): QueueSummaryRow {
  return { name, paused, pending: 0, running: 0, waiting: 0, pausedJobs: 0, failed: 0, oldestPendingAgeMs: null };
}

/** A name without `_`, so that every collation sorts names made from it alike. */
function plainName(prefix: string): string {
  return uniqueName(prefix).replace(/_/g, '');
}

/** The listed workers among `ids`, in list order. */
async function listed(s: Storage, ids: readonly string[]): Promise<WorkerRow[]> {
  return (await s.workerList()).filter((w) => ids.includes(w.id));
}

/** Beat parameters with defaults. */
function beat(id: string, overrides: Partial<WorkerBeatParams> = {}): WorkerBeatParams {
  return { id, name: 'worker', host: 'host-1', pid: 4242, queues: ['default'], running: 0, ttlMs: 30_000, ...overrides };
}

/** Registers the queue summary and worker registry tests. */
export function describeQueuesAndWorkers(make: StorageMaker): void {
  describe('operator view: queueSummary', () => {
    const ctx = useStorage(make, 'conformance-queue-summary');
    const clock = useManualClock(ctx, 'conformance-queue-summary-manual');

    it('counts live and failed jobs per status; completed and cancelled jobs are not counted', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      await runningJob(s, { queue: q });
      await waitingJob(s, { queue: q }, { waitSignal: 'go' });
      await failedJob(s, { queue: q });
      await failedJob(s, { queue: q });
      await completedJob(s, { queue: q });
      await completedJob(s, { queue: q });
      await cancelledJob(s, { queue: q });
      await pausedJob(s, { queue: q });
      const first = await insertJob(s, { queue: q });
      await insertJob(s, { queue: q });
      await insertJob(s, { queue: q, delayMs: 60_000 });
      const runAt = (await s.jobGet({ id: first }))!.runAt;
      const row = await summaryOf(s, q);
      const after = await s.clockNow();
      assert.ok(row, `queue ${q} is listed`);
      assert.deepEqual({ ...row, oldestPendingAgeMs: 0 }, { ...emptyRow(q, false), pending: 3, running: 1, waiting: 1, pausedJobs: 1, failed: 2, oldestPendingAgeMs: 0 });
      assertBetween(row.oldestPendingAgeMs, 0, after - runAt, 'oldestPendingAgeMs');

      const finishedOnly = uniqueName('q');
      await completedJob(s, { queue: finishedOnly });
      await cancelledJob(s, { queue: finishedOnly });
      assert.equal(await summaryOf(s, finishedOnly), undefined, 'a queue with only completed and cancelled jobs is not listed');
      const failedOnly = uniqueName('q');
      await failedJob(s, { queue: failedOnly });
      assert.deepEqual(await summaryOf(s, failedOnly), { ...emptyRow(failedOnly, false), failed: 1 });
      const futureOnly = uniqueName('q');
      await insertJob(s, { queue: futureOnly, delayMs: 60_000 });
      assert.deepEqual(await summaryOf(s, futureOnly), { ...emptyRow(futureOnly, false), pending: 1 }, 'only future jobs: no pending age');
    });

    it('lists paused queues with no jobs, flags paused queues, and sorts by name', async () => {
      const s = ctx.s;
      const base = plainName('s');
      const [a, b, c] = [`${base}a`, `${base}b`, `${base}c`];
      await insertJob(s, { queue: a });
      await insertJob(s, { queue: c });
      await s.queueSetPaused({ queue: b, paused: true });
      await s.queueSetPaused({ queue: c, paused: true });
      const rows = await s.queueSummary();
      const names = rows.map((r) => r.name);
      const at = [a, b, c].map((n) => names.indexOf(n));
      assert.ok(at.every((i) => i >= 0), `every queue listed: ${JSON.stringify(at)}`);
      assert.deepEqual([...at].sort((x, y) => x - y), at, 'sorted by name');
      assert.deepEqual(rows[at[1]!], emptyRow(b, true), 'a paused queue with no jobs');
      assert.equal(rows[at[0]!]!.paused, false);
      const rc = rows[at[2]!]!;
      assert.deepEqual([rc.paused, rc.pending, typeof rc.oldestPendingAgeMs], [true, 1, 'number'], 'a paused queue still reports its due jobs');
      await s.queueSetPaused({ queue: b, paused: false });
      await s.queueSetPaused({ queue: c, paused: false });
      const rb = await summaryOf(s, b);
      assert.ok(rb === undefined || rb.paused === false, 'a resumed queue is no longer paused');
      assert.equal((await summaryOf(s, c))?.paused, false);
    });

    it('oldestPendingAgeMs is now − the oldest due run_at on the storage clock; null with no due pending job', async () => {
      const m = clock();
      const q = uniqueName('q');
      const t = m.now;
      await insertJob(m.s, { queue: q });
      m.now += 1_500;
      const second = await insertJob(m.s, { queue: q });
      await insertJob(m.s, { queue: q, delayMs: 10_000 });
      assert.deepEqual(await summaryOf(m.s, q), { ...emptyRow(q, false), pending: 3, oldestPendingAgeMs: 1_500 });
      m.now += 500;
      await m.s.queueSetPaused({ queue: q, paused: true });
      assert.deepEqual(await summaryOf(m.s, q), { ...emptyRow(q, true), pending: 3, oldestPendingAgeMs: 2_000 }, 'pausing the queue does not hide its age');
      await m.s.queueSetPaused({ queue: q, paused: false });
      await claimOne(m.s, q);
      assert.deepEqual(await summaryOf(m.s, q), { ...emptyRow(q, false), pending: 2, running: 1, oldestPendingAgeMs: 500 }, 'a claimed job no longer counts');
      await m.s.jobPause({ id: second });
      assert.deepEqual(await summaryOf(m.s, q), { ...emptyRow(q, false), pending: 1, running: 1, pausedJobs: 1 }, 'only a future job: null');
      m.now = t + 1_500 + 10_000;
      assert.equal((await summaryOf(m.s, q))?.oldestPendingAgeMs, 0, 'due at its very run_at');
      m.now += 7;
      assert.equal((await summaryOf(m.s, q))?.oldestPendingAgeMs, 7);
    });
  });

  describe('operator view: worker registry', () => {
    const ctx = useStorage(make, 'conformance-workers');
    const clock = useManualClock(ctx, 'conformance-workers-manual');

    it('a beat upserts the row: startedAt kept, lastSeenAt and the other fields from the latest beat', async () => {
      const m = clock();
      const id = uniqueName('w');
      const t = m.now;
      await m.s.workerBeat(beat(id, { name: 'alpha', host: 'box-1', pid: 4242, queues: ['emails', 'reports'], running: 0 }));
      assert.deepEqual(await listed(m.s, [id]), [{ id, name: 'alpha', host: 'box-1', pid: 4242, queues: ['emails', 'reports'], running: 0, startedAt: t, lastSeenAt: t }]);
      m.now += 1_000;
      await m.s.workerBeat(beat(id, { name: 'alpha', host: 'box-1', pid: 4242, queues: ['emails'], running: 3 }));
      assert.deepEqual(await listed(m.s, [id]), [{ id, name: 'alpha', host: 'box-1', pid: 4242, queues: ['emails'], running: 3, startedAt: t, lastSeenAt: t + 1_000 }]);
    });

    it('queues round trip: none, unicode, quotes, commas', async () => {
      const m = clock();
      const odd = ['é-queue 😀', 'q"uote', "it's", 'a,b', '[x]', 'back\\slash'];
      const a = uniqueName('w');
      const b = uniqueName('w');
      await m.s.workerBeat(beat(a, { queues: [] }));
      await m.s.workerBeat(beat(b, { queues: odd }));
      const rows = await listed(m.s, [a, b]);
      assert.deepEqual(rows.find((r) => r.id === a)?.queues, []);
      assert.deepEqual(rows.find((r) => r.id === b)?.queues, odd);
    });

    it('a row is listed until its expiry has passed (inclusive), and again after a new beat', async () => {
      const m = clock();
      const id = uniqueName('w');
      const t = m.now;
      await m.s.workerBeat(beat(id, { ttlMs: 1_000 }));
      m.now = t + 1_000;
      assert.equal((await listed(m.s, [id])).length, 1, 'listed at its expiry instant');
      m.now += 1;
      assert.deepEqual(await listed(m.s, [id]), [], 'gone once its expiry passed');
      await m.s.workerBeat(beat(id, { ttlMs: 1_000 }));
      assert.deepEqual((await listed(m.s, [id])).map((w) => w.lastSeenAt), [m.now]);
    });

    it("a beat deletes other workers' expired rows, not live ones", async () => {
      const m = clock();
      const t = m.now;
      const gone = uniqueName('w');
      const alive = uniqueName('w');
      await m.s.workerBeat(beat(gone, { ttlMs: 100 }));
      await m.s.workerBeat(beat(alive, { ttlMs: 10_000 }));
      m.now = t + 200;
      const beater = uniqueName('w');
      await m.s.workerBeat(beat(beater));
      // Back before the first row's expiry: a row still stored would be listed again.
      m.now = t + 50;
      assert.deepEqual((await listed(m.s, [gone, alive, beater])).map((w) => w.id).sort(), [alive, beater].sort());
      m.now = t + 200;
    });

    it('workerRemove deletes the row; removing an unknown or removed id does nothing', async () => {
      const m = clock();
      const a = uniqueName('w');
      const b = uniqueName('w');
      await m.s.workerBeat(beat(a));
      await m.s.workerBeat(beat(b));
      await m.s.workerRemove({ id: a });
      assert.deepEqual((await listed(m.s, [a, b])).map((w) => w.id), [b]);
      await m.s.workerRemove({ id: a });
      await m.s.workerRemove({ id: uniqueName('never') });
      assert.deepEqual((await listed(m.s, [a, b])).map((w) => w.id), [b]);
    });

    it('lists workers by name, then id', async () => {
      const m = clock();
      const tag = plainName('w');
      const ids = [`${tag}-3`, `${tag}-1`, `${tag}-2`, `${tag}-4`];
      const names = [`${tag}-beta`, `${tag}-beta`, `${tag}-alpha`, `${tag}-alpha`];
      for (const [i, id] of ids.entries()) await m.s.workerBeat(beat(id, { name: names[i]! }));
      assert.deepEqual((await listed(m.s, ids)).map((w) => w.id), [`${tag}-2`, `${tag}-4`, `${tag}-1`, `${tag}-3`]);
    });

    it("on the driver's clock: lastSeenAt moves with each beat, startedAt stays, a short ttl expires", async () => {
      const s = ctx.s;
      const id = uniqueName('w');
      const t0 = await s.clockNow();
      await s.workerBeat(beat(id, { pid: 77, running: 1 }));
      const t1 = await s.clockNow();
      const [first] = await listed(s, [id]);
      assert.ok(first, 'listed after its first beat');
      assertBetween(first.startedAt, t0, t1, 'startedAt');
      assert.equal(first.lastSeenAt, first.startedAt);
      assert.ok(Number.isSafeInteger(first.pid) && Number.isSafeInteger(first.running), 'pid and running are numbers');
      await waitForClockPast(s, first.lastSeenAt);
      await s.workerBeat(beat(id, { pid: 77, running: 2, ttlMs: 300 }));
      const [second] = await listed(s, [id]);
      assert.ok(second && second.lastSeenAt > first.lastSeenAt, 'lastSeenAt moved');
      assert.deepEqual([second.startedAt, second.running], [first.startedAt, 2]);
      await waitFor(async () => (await listed(s, [id])).length === 0, { timeout: 5_000, message: 'the worker expires after its ttl' });
      assert.ok((await s.clockNow()) > second.lastSeenAt + 300, 'not before its expiry');
    });
  });
}
