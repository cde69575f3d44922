/**
 * Conformance: `jobClaimLimited` — the claim of limited jobs and of queue-limited queues:
 * concurrency per type (with and without keys, a null key counting as ''), per queue and both at
 * once, counted from the rows (so a finish, release, cancel, lease reclaim or suspend frees the
 * slot); GCRA rate limits on the storage clock (starts at least period / limit apart, the exact
 * `retryInMs`, state kept across claims, catch-up of up to min(T, 1 s) of lateness, one start per
 * group per claim, at most limit + 1 starts in a window of one period); fairness (a full or
 * rate-blocked group's backlog never hides another group's job); claim order among the jobs
 * allowed; paused queues and jobs; the `saturated` flag; and claimers on separate instances.
 *
 * Limits are database-wide, so each test uses its own type and queue names. Rate tests and
 * exact instants run on a second isolated database whose storage takes a clock the test sets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobRow, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import { applied, claim, fenceOf, insertJob, instances, jobInsert, mustGet, uniqueName } from '../helpers/factories.js';
import { useManualClock, useStorage } from './context.js';
import { claimLimited, completeRows, idsOf, setQueueLimit, setTypeLimit, useSharedClock } from './flow-helpers.js';

/** Inserts `n` jobs of `type` in `queue` (one batch) and returns their ids in insert order. */
async function insertN(s: Storage, n: number, fields: Parameters<typeof jobInsert>[0]): Promise<string[]> {
  const jobs = Array.from({ length: n }, () => jobInsert(fields));
  await s.jobInsertMany({ jobs });
  return idsOf(jobs);
}

/** Inserts one job per entry (one batch) and returns their ids in order. */
async function insertEach(s: Storage, fields: Parameters<typeof jobInsert>[0][]): Promise<string[]> {
  const jobs = fields.map((f) => jobInsert(f));
  await s.jobInsertMany({ jobs });
  return idsOf(jobs);
}

/** The ids among `rows` of one queue, in order. */
function idsIn(rows: readonly JobRow[], queue: string): string[] {
  return idsOf(rows.filter((r) => r.queue === queue));
}

/**
 * The rate rule for one group with a backlog, written out apart from the drivers: a claim at
 * `now` starts one job iff tat <= now, setting tat = max(tat, now − c) + T with c = min(T, 1 s)
 * (computed as now + (T − c) when now − c wins, so c = T gives exactly now); it reports the
 * wait for the next start, at least 1 ms.
 */
class RateModel {
  #tat = -Infinity;
  constructor(readonly interval: number) {}

  claim(now: number): { started: boolean; retryInMs: number } {
    const started = this.#tat <= now;
    if (started) {
      const c = Math.min(this.interval, 1_000);
      this.#tat = this.#tat > now - c ? this.#tat + this.interval : now + (this.interval - c);
    }
    return { started, retryInMs: Math.max(1, Math.ceil(this.#tat - now)) };
  }
}

/** The most instants of `at` within one window [x, x + ms) starting at one of them. */
function mostInWindow(at: readonly number[], ms: number): number {
  return Math.max(0, ...at.map((x) => at.filter((y) => y >= x && y < x + ms).length));
}

/** Ways a running job gives its slot back, each applied to a job claimed by the limited claim. */
const FREEING: [what: string, free: (s: Storage, row: JobRow, advance: (ms: number) => void) => Promise<void>][] = [
  ['completing', async (s, row) => completeRows(s, [row])],
  ['failing', async (s, row) => assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fenceOf(row), outcome: 'failed', error: 'x' }] })), [true])],
  ['a retry outcome', async (s, row) => assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fenceOf(row), outcome: 'retry', error: 'x', delayMs: 0 }] })), [true])],
  ['release', async (s, row) => assert.deepEqual(await s.jobRelease({ runs: [fenceOf(row)] }), [row.id])],
  ['cancel', async (s, row) => assert.deepEqual(await s.jobCancel({ id: row.id }), [row.id])],
  [
    'a lease reclaim',
    async (s, row, advance) => {
      advance(row.leaseExpiresAt! - row.startedAt! + 1);
      assert.ok((await s.jobReclaimExpired({ limit: 1_000 })).some((r) => r.id === row.id && r.status === 'pending'), 'the job was reclaimed');
    },
  ],
  ['a suspend', async (s, row) => assert.equal(await s.jobSuspend({ fence: fenceOf(row), step: null, wakeAt: null, waitSignal: 'go' }), true)],
];

/** Registers the limited claim tests. */
export function describeFlowClaim(make: StorageMaker): void {
  describe('flow control: jobClaimLimited and concurrency', () => {
    const ctx = useStorage(make, 'conformance-flow-claim');
    const clock = useManualClock(ctx, 'conformance-flow-claim-manual');

    it('sets a claimed job running exactly as jobClaim does, on the storage clock; the returned row is the stored row', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { concurrency: 3 });
      const id = await insertJob(m.s, { queue: q, type, argsJson: '{"x":1}', concurrencyKey: 'k' });
      m.now += 7;
      const r = await m.s.jobClaimLimited({ workerId: 'worker-9', queues: [{ name: q, limit: 5 }], leaseMs: 12_345 });
      assert.deepEqual([r.retryInMs, r.saturated], [null, false]);
      assert.equal(r.rows.length, 1);
      const row = r.rows[0]!;
      assert.deepEqual(
        [row.id, row.status, row.attempt, row.runCount, row.lockedBy, row.startedAt, row.heartbeatAt, row.leaseExpiresAt, row.limited, row.concurrencyKey],
        [id, 'running', 1, 1, 'worker-9', m.now, m.now, m.now + 12_345, true, 'k'],
      );
      assert.deepEqual(await mustGet(m.s, id), row);
      assert.deepEqual((await claimLimited(m.s, q)).rows, [], 'a running job is not claimed again');
    });

    it('a type concurrency limit without keys: at most `concurrency` running at once, saturated while full', async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(s, type, { concurrency: 2 });
      const ids = await insertN(s, 5, { queue: q, type });
      const first = await claimLimited(s, q, 10);
      assert.deepEqual([idsOf(first.rows), first.saturated, first.retryInMs], [ids.slice(0, 2), true, null]);
      const none = await claimLimited(s, q, 10);
      assert.deepEqual([none.rows, none.saturated], [[], true]);
      await completeRows(s, first.rows.slice(0, 1));
      assert.deepEqual(idsOf((await claimLimited(s, q, 10)).rows), [ids[2]], 'one slot freed, one job claimed');
    });

    it('a keyed type concurrency limit counts per key; a null key and "" are one group', async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(s, type, { concurrency: 1 });
      const [a1, , b, nul, , c] = await insertEach(s, ['a', 'a', 'b', null, '', 'c'].map((k) => ({ queue: q, type, concurrencyKey: k })));
      const r = await claimLimited(s, q, 10);
      assert.deepEqual([idsOf(r.rows), r.saturated], [[a1, b, nul, c], true]);
    });

    it('a queue concurrency limit counts every running job of the queue, limited or not', async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(s, type, { concurrency: 10 });
      const ids = await insertEach(s, [{ queue: q }, { queue: q, type }, { queue: q }, { queue: q, type }]);
      await setQueueLimit(s, q, { concurrency: 3 });
      const r = await claimLimited(s, q, 10);
      assert.deepEqual([idsOf(r.rows), r.saturated], [ids.slice(0, 3), true]);
      await completeRows(s, r.rows.filter((row) => row.type === type));
      assert.deepEqual(idsOf((await claimLimited(s, q, 10)).rows), [ids[3]]);
    });

    it('type and queue limits at once: a job starts only while every group it belongs to has room', async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const limitedQ = uniqueName('q');
      const freeQ = uniqueName('q');
      await setTypeLimit(s, type, { concurrency: 3 });
      await setQueueLimit(s, limitedQ, { concurrency: 2 });
      await insertN(s, 3, { queue: limitedQ, type });
      await insertN(s, 3, { queue: freeQ, type });
      const inQ = await claimLimited(s, limitedQ, 10);
      assert.deepEqual([inQ.rows.length, inQ.saturated], [2, true], 'the queue limit binds');
      const inFree = await claimLimited(s, freeQ, 10);
      assert.deepEqual([inFree.rows.length, inFree.saturated], [1, true], 'the type limit binds: 2 running in the other queue count');
      await completeRows(s, inQ.rows.slice(0, 1));
      const both = await claimLimited(s, [{ name: limitedQ, limit: 10 }, { name: freeQ, limit: 10 }]);
      assert.equal(both.rows.length, 1, 'one type slot freed: one job, whichever queue');
      assert.equal((await claimLimited(s, [{ name: limitedQ, limit: 10 }, { name: freeQ, limit: 10 }])).rows.length, 0);
    });

    it('jobs running before the limit was set count; below a lowered limit, nothing starts until the count is under it', async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const q = uniqueName('q');
      await insertN(s, 5, { queue: q, type });
      const early = await claim(s, q, 3);
      assert.equal(early.length, 3);
      await setTypeLimit(s, type, { concurrency: 2 });
      assert.deepEqual((await claimLimited(s, q, 10)).rows, []);
      await completeRows(s, early.slice(0, 1));
      const still = await claimLimited(s, q, 10);
      assert.deepEqual([still.rows, still.saturated], [[], true], '2 running, limit 2');
      await completeRows(s, early.slice(1, 2));
      assert.equal((await claimLimited(s, q, 10)).rows.length, 1);
    });

    for (const [what, free] of FREEING) {
      it(`${what} frees the slot of a running job`, async () => {
        const m = clock();
        const type = uniqueName('t');
        const q = uniqueName('q');
        await setTypeLimit(m.s, type, { concurrency: 1 });
        await insertN(m.s, 3, { queue: q, type, maxRetries: 5 });
        const first = await claimLimited(m.s, q, 10, { leaseMs: 1_000 });
        assert.equal(first.rows.length, 1);
        assert.deepEqual([(await claimLimited(m.s, q)).rows.length, (await claimLimited(m.s, q)).saturated], [0, true], 'held');
        await free(m.s, first.rows[0]!, (ms) => (m.now += ms));
        const next = await claimLimited(m.s, q, 10);
        assert.equal(next.rows.length, 1, `${what}: a job is claimed in the freed slot`);
        const after = await claimLimited(m.s, q, 10);
        assert.deepEqual([after.rows.length, after.saturated], [0, true], 'and the limit holds again');
      });
    }

    it('a woken workflow waits for a slot like any other job', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { concurrency: 1 });
      const [sleeper, other] = await insertN(m.s, 2, { queue: q, type });
      const [row] = (await claimLimited(m.s, q)).rows;
      assert.equal(row?.id, sleeper);
      assert.equal(await m.s.jobSuspend({ fence: fenceOf(row!), step: null, wakeAt: m.now + 1_000, waitSignal: null }), true);
      assert.deepEqual(idsOf((await claimLimited(m.s, q)).rows), [other], 'the sleeping job holds no slot');
      m.now += 1_000;
      assert.ok((await m.s.jobWakeDue({ limit: 1_000 })).includes(sleeper!));
      assert.deepEqual([(await mustGet(m.s, sleeper!)).limited, (await claim(m.s, q, 5)).length], [true, 0], 'still limited: not for the ordinary claim');
      const held = await claimLimited(m.s, q);
      assert.deepEqual([held.rows, held.saturated], [[], true]);
    });

    it('saturated: false when no ready job waits on a full group, or when the claim limit held jobs back', async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(s, type, { concurrency: 1 });
      await insertJob(s, { queue: q, type });
      assert.equal((await claimLimited(s, q)).rows.length, 1);
      assert.deepEqual(await claimLimited(s, q), { rows: [], retryInMs: null, saturated: false }, 'full, nothing pending');
      await insertJob(s, { queue: q, type, delayMs: 60_000 });
      assert.deepEqual(await claimLimited(s, q), { rows: [], retryInMs: null, saturated: false }, 'full, only a future job');
      const roomy = uniqueName('t');
      const q2 = uniqueName('q');
      await setTypeLimit(s, roomy, { concurrency: 5 });
      await insertN(s, 3, { queue: q2, type: roomy });
      const r = await claimLimited(s, q2, 1);
      assert.deepEqual([r.rows.length, r.saturated, r.retryInMs], [1, false, null]);
    });

    it('skips paused queues and paused jobs', async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const pausedQ = uniqueName('q');
      const q = uniqueName('q');
      const limitedPausedQ = uniqueName('q');
      await setTypeLimit(s, type, { concurrency: 10 });
      await insertN(s, 2, { queue: pausedQ, type });
      await insertJob(s, { queue: limitedPausedQ });
      await setQueueLimit(s, limitedPausedQ, { concurrency: 10 });
      const [pausedJob, ready] = await insertN(s, 2, { queue: q, type });
      await s.queueSetPaused({ queue: pausedQ, paused: true });
      await s.queueSetPaused({ queue: limitedPausedQ, paused: true });
      await s.jobPause({ id: pausedJob! });
      const all = [pausedQ, q, limitedPausedQ].map((name) => ({ name, limit: 10 }));
      assert.deepEqual(idsOf((await claimLimited(s, all)).rows), [ready]);
      await s.jobResume({ id: pausedJob! });
      await s.queueSetPaused({ queue: pausedQ, paused: false });
      await s.queueSetPaused({ queue: limitedPausedQ, paused: false });
      const r = await claimLimited(s, all);
      assert.deepEqual([idsIn(r.rows, q), idsIn(r.rows, pausedQ).length, idsIn(r.rows, limitedPausedQ).length], [[pausedJob], 2, 1]);
    });

    it('claim order among the jobs allowed: priority desc, run_at, id within a queue; at most `limit` per queue', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { concurrency: 2 });
      const t = m.now;
      // Inserted first (smallest id) but due last: run_at, not id, puts it behind c1 and c2.
      await insertEach(m.s, [{ queue: q, type, concurrencyKey: 'c', delayMs: 10 }]);
      m.now = t + 5;
      const [a1, a2, , b1, b2, , c1, c2] = await insertEach(m.s, [
        { queue: q, type, concurrencyKey: 'a', priority: 5 },
        { queue: q, type, concurrencyKey: 'a', priority: 9 },
        { queue: q, type, concurrencyKey: 'a', priority: 0 },
        { queue: q, type, concurrencyKey: 'b', priority: 1 },
        { queue: q, type, concurrencyKey: 'b', priority: 7 },
        { queue: q, type, concurrencyKey: 'b', priority: 1 },
        { queue: q, type, concurrencyKey: 'c', priority: 0 },
        { queue: q, type, concurrencyKey: 'c', priority: 0 },
      ]);
      m.now = t + 10;
      assert.deepEqual(idsOf((await claimLimited(m.s, q, 3)).rows), [a2, b2, a1], 'the first three allowed, in claim order');
      const rest = await claimLimited(m.s, q, 10);
      assert.deepEqual([idsOf(rest.rows), rest.saturated], [[b1, c1, c2], true], 'a is full; then b1 before b3 (id), c1 and c2 before the later run_at');

      const q1 = uniqueName('q');
      const q2 = uniqueName('q');
      const free = uniqueName('t');
      await setTypeLimit(m.s, free, { concurrency: 100 });
      const [, r] = await insertEach(m.s, [{ queue: q1, type: free, priority: 1 }, { queue: q1, type: free, priority: 3 }]);
      const [, v, w] = await insertEach(m.s, [{ queue: q2, type: free }, { queue: q2, type: free, priority: 2 }, { queue: q2, type: free, priority: 1 }]);
      const both = await claimLimited(m.s, [{ name: q1, limit: 1 }, { name: q2, limit: 2 }]);
      assert.deepEqual([idsIn(both.rows, q1), idsIn(both.rows, q2), both.saturated], [[r], [v, w], false]);
    });

    it('one group with room for every job asked for: its first ready jobs in claim order, none due later; with less room, the limit holds', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { concurrency: 4 });
      // Due later and first by priority: a claim that ignored run_at would take it first.
      await insertEach(m.s, [{ queue: q, type, priority: 9, delayMs: 60_000 }]);
      const [j1, j2, j3, j4, j5] = await insertEach(m.s, [
        { queue: q, type, priority: 1 },
        { queue: q, type, priority: 3 },
        { queue: q, type },
        { queue: q, type, priority: 3 },
        { queue: q, type },
      ]);
      const first = await claimLimited(m.s, q, 2);
      assert.deepEqual([idsOf(first.rows), first.saturated, first.retryInMs], [[j2, j4], false, null], 'room 4 for 2: the first two in claim order');
      assert.ok(first.rows.every((r) => r.status === 'running'));
      const second = await claimLimited(m.s, q, 3);
      assert.deepEqual([idsOf(second.rows), second.saturated, second.retryInMs], [[j1, j3], true, null], 'room 2 for 3: two, then j5 finds the group full');
      const third = await claimLimited(m.s, q, 1);
      assert.deepEqual([idsOf(third.rows), third.saturated], [[], true], 'full: nothing, saturated');
      assert.equal((await m.s.jobGet({ id: j5! }))?.status, 'pending');
    });
  });

  describe('flow control: jobClaimLimited and rate limits', () => {
    const ctx = useStorage(make, 'conformance-flow-rate');
    const clock = useManualClock(ctx, 'conformance-flow-rate-manual');

    /** Claims at each step (the clock set to `at`) and checks the ids claimed and `retryInMs`. */
    async function steps(m: { s: Storage; now: number }, q: string, t: number, expect: [at: number, claimed: string[], retryInMs: number | null][]): Promise<void> {
      for (const [at, claimed, retryInMs] of expect) {
        m.now = at;
        const r = await claimLimited(m.s, q, 10);
        assert.deepEqual([idsOf(r.rows), r.retryInMs, r.saturated], [claimed, retryInMs, false], `claim at t + ${at - t}`);
      }
    }

    it('starts are period / limit apart when on time, retryInMs is the exact wait, the state is kept across claims, and an idle group starts two at most', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { rateLimit: 2, ratePeriodMs: 1_000 });
      const ids = await insertN(m.s, 8, { queue: q, type });
      const t = m.now;
      // T = 500 ms, c = 500 ms: a group without state starts at t with tat = t, so once more at t.
      await steps(m, q, t, [
        [t, [ids[0]!], 1],
        [t, [ids[1]!], 500],
        [t, [], 500],
        [t + 200, [], 300],
        [t + 499, [], 1],
        [t + 500, [ids[2]!], 500],
        [t + 10_000, [ids[3]!], 1],
        [t + 10_000, [ids[4]!], 500],
        [t + 10_000, [], 500],
        [t + 10_499, [], 1],
        [t + 10_500, [ids[5]!], 500],
      ]);
    });

    it('catch-up: a start up to c = min(period / limit, 1 s) late keeps its turn; lateness beyond c is lost', async () => {
      const m = clock();
      const fast = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, fast, { rateLimit: 10, ratePeriodMs: 1_000 });
      const ids = await insertN(m.s, 12, { queue: q, type: fast });
      const t = m.now;
      // T = c = 100 ms.
      await steps(m, q, t, [
        [t, [ids[0]!], 1],
        [t, [ids[1]!], 100],
        [t + 150, [ids[2]!], 50], // 50 late: tat = t + 100 + 100, not t + 150 + 100
        [t + 199, [], 1],
        [t + 200, [ids[3]!], 100],
        [t + 450, [ids[4]!], 1], // 150 late: 100 forgiven, tat = t + 450 - 100 + 100
        [t + 450, [ids[5]!], 100],
        [t + 549, [], 1],
        [t + 550, [ids[6]!], 100],
      ]);

      const slow = uniqueName('t');
      const q2 = uniqueName('q');
      await setTypeLimit(m.s, slow, { rateLimit: 1, ratePeriodMs: 5_000 });
      const s = await insertN(m.s, 4, { queue: q2, type: slow });
      const t2 = m.now;
      // T = 5 s, c = 1 s.
      await steps(m, q2, t2, [
        [t2, [s[0]!], 4_000], // no state: tat = t2 - 1000 + 5000
        [t2 + 6_500, [s[1]!], 4_000], // 2.5 s late, 1 s forgiven: tat = t2 + 5500 + 5000
        [t2 + 11_300, [s[2]!], 4_200], // 0.8 s late, all forgiven: tat = t2 + 10500 + 5000
        [t2 + 15_499, [], 1],
      ]);
    });

    it('a fractional interval: 3 per second follows the rule at every claim of a 13 ms sweep', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { rateLimit: 3, ratePeriodMs: 1_000 });
      await insertN(m.s, 40, { queue: q, type });
      const t = m.now;
      const model = new RateModel(1_000 / 3);
      const starts: number[] = [];
      for (let at = t; at <= t + 3_000; at += 13) {
        m.now = at;
        const r = await claimLimited(m.s, q);
        const want = model.claim(at);
        assert.deepEqual([r.rows.length, r.retryInMs], [want.started ? 1 : 0, want.retryInMs], `claim at t + ${at - t}`);
        if (want.started) starts.push(at);
      }
      assert.deepEqual(
        starts.map((x) => x - t),
        [0, 13, 338, 676, 1_001, 1_339, 1_677, 2_002, 2_340, 2_678],
        'each start at the first step at or after its tat (t + 1001: 9.33 ms of lateness at t + 676 forgiven)',
      );
      assert.equal(mostInWindow(starts, 1_000), 4, 'limit + 1 in the first second (the idle group started twice), never more');
    });

    it('the bound: claims at any times never start more than limit + 1 jobs of a group in a window of one period, and do reach it', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { rateLimit: 3, ratePeriodMs: 1_000 });
      await insertN(m.s, 60, { queue: q, type });
      const t = m.now;
      const model = new RateModel(1_000 / 3);
      const starts: number[] = [];
      let seed = 7;
      let at = t;
      while (at <= t + 8_000) {
        m.now = at;
        const r = await claimLimited(m.s, q);
        const want = model.claim(at);
        assert.deepEqual([r.rows.length, r.retryInMs], [want.started ? 1 : 0, want.retryInMs], `claim at t + ${at - t}`);
        starts.push(...r.rows.map(() => at));
        // Gaps of 0 to 700 ms (a fixed pseudo-random sequence): on time, late, and bursts.
        seed = (seed * 48_271) % 2_147_483_647;
        at += seed % 8 === 0 ? 0 : seed % 701;
      }
      assert.equal(starts.length, 19);
      assert.equal(mostInWindow(starts, 1_000), 4, 'the most starts in any 1 s window: limit + 1');
    });

    it('1000 per second: T = c = 1 ms, so an idle group starts two in one millisecond, then one per millisecond', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { rateLimit: 1_000, ratePeriodMs: 1_000 });
      const ids = await insertN(m.s, 5, { queue: q, type });
      const t = m.now;
      await steps(m, q, t, [
        [t, [ids[0]!], 1],
        [t, [ids[1]!], 1],
        [t, [], 1],
        [t + 1, [ids[2]!], 1],
        [t + 1, [], 1],
      ]);
    });

    it('rate keys: each key is its own group; a null key and "" are one group', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { rateLimit: 1, ratePeriodMs: 1_000 });
      const [x1, x2, y, nul, empty] = await insertEach(m.s, ['x', 'x', 'y', null, ''].map((k) => ({ queue: q, type, rateKey: k })));
      const r = await claimLimited(m.s, q, 10);
      assert.deepEqual([idsOf(r.rows), r.retryInMs, r.saturated], [[x1, y, nul], 1, false], 'one start per group per claim');
      const again = await claimLimited(m.s, q, 10);
      assert.deepEqual([idsOf(again.rows), again.retryInMs], [[x2, empty], null], 'the groups x and null/"" had no state: a second start each');
      const t = m.now;
      m.now = t + 300;
      await insertEach(m.s, [{ queue: q, type, rateKey: 'z' }, { queue: q, type, rateKey: 'x' }]);
      const z = await claimLimited(m.s, q, 10);
      assert.deepEqual([z.rows.map((row) => row.rateKey), z.retryInMs], [['z'], 700], 'a new key starts at once; x waits for t + 1000');
    });

    it('a queue rate and a type rate at once: a job waits for both, and a job held back consumes no start', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      const q2 = uniqueName('q');
      await setTypeLimit(m.s, type, { rateLimit: 1, ratePeriodMs: 400 });
      await setQueueLimit(m.s, q, { rateLimit: 1, ratePeriodMs: 1_000 });
      const [qa1, qa2, qa3, qb1, qp] = await insertEach(m.s, [{ queue: q, type }, { queue: q, type }, { queue: q, type }, { queue: q2, type }, { queue: q }]);
      const both = [
        { name: q, limit: 10 },
        { name: q2, limit: 10 },
      ];
      const t = m.now;
      const expect: [at: number, claimed: string[], retryInMs: number | null][] = [
        [t, [qa1!], 1],
        [t, [qa2!], 400],
        // qa3: the type allows a start, the queue does not; qb1 takes the type's start.
        [t + 400, [qb1!], 600],
        [t + 1_000, [qa3!], 1_000],
        [t + 2_000, [qp!], null],
      ];
      for (const [at, claimed, retryInMs] of expect) {
        m.now = at;
        const r = await claimLimited(m.s, both);
        assert.deepEqual([idsOf(r.rows), r.retryInMs], [claimed, retryInMs], `claim at t + ${at - t}`);
      }
    });

    it('retryInMs: null when no ready job waits on a rate; the smallest wait among blocked groups; a full group gives none', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      // T = 2 s, c = 1 s: a start leaves the group blocked for at least a second.
      await setTypeLimit(m.s, type, { rateLimit: 1, ratePeriodMs: 2_000 });
      await insertJob(m.s, { queue: q, type, rateKey: 'x' });
      const t = m.now;
      assert.deepEqual((await claimLimited(m.s, q)).retryInMs, null, 'the only job started');
      await insertJob(m.s, { queue: q, type, rateKey: 'x', delayMs: 5_000 });
      assert.deepEqual(await claimLimited(m.s, q), { rows: [], retryInMs: null, saturated: false }, 'only a future job');
      m.now = t + 300;
      await insertEach(m.s, [{ queue: q, type, rateKey: 'y' }, { queue: q, type, rateKey: 'y' }, { queue: q, type, rateKey: 'x' }]);
      assert.deepEqual((await claimLimited(m.s, q)).retryInMs, 700, 'y started at t + 300; x waits for t + 1000, y for t + 1300');
      m.now = t + 400;
      assert.deepEqual((await claimLimited(m.s, q)).retryInMs, 600);

      const both = uniqueName('t');
      const q3 = uniqueName('q');
      await setTypeLimit(m.s, both, { concurrency: 1, rateLimit: 1, ratePeriodMs: 1_000 });
      await insertN(m.s, 2, { queue: q3, type: both });
      const first = await claimLimited(m.s, q3);
      assert.deepEqual([first.rows.length, first.retryInMs, first.saturated], [1, null, true], 'the job left is full first: no wait reported');
      m.now += 1_000;
      assert.deepEqual(await claimLimited(m.s, q3), { rows: [], retryInMs: null, saturated: true }, 'still full once the rate allows a start');
    });
  });

  describe('flow control: jobClaimLimited fairness', () => {
    const ctx = useStorage(make, 'conformance-flow-fair');
    const clock = useManualClock(ctx, 'conformance-flow-fair-manual');

    it("a full key with a backlog of 500 does not hide another key's job", async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(s, type, { concurrency: 1 });
      await insertN(s, 500, { queue: q, type, concurrencyKey: 'hot', priority: 10 });
      assert.equal((await claimLimited(s, q, 1)).rows.length, 1);
      const cold = await insertJob(s, { queue: q, type, concurrencyKey: 'cold', priority: -10 });
      const r = await claimLimited(s, q, 1);
      assert.deepEqual([idsOf(r.rows), r.saturated], [[cold], true]);
    });

    it("a rate-blocked key with a backlog of 500 does not hide another key's job", async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { rateLimit: 1, ratePeriodMs: 60_000 });
      await insertN(m.s, 500, { queue: q, type, rateKey: 'hot', priority: 10 });
      assert.equal((await claimLimited(m.s, q, 1)).rows.length, 1);
      const cold = await insertJob(m.s, { queue: q, type, rateKey: 'cold', priority: -10 });
      const r = await claimLimited(m.s, q, 1);
      // T = 60 s, c = 1 s: hot's start left its tat 59 s ahead.
      assert.deepEqual([idsOf(r.rows), r.retryInMs], [[cold], 59_000]);
    });

    it('in a queue-limited queue, a full type with a backlog does not hide the queue\'s other jobs', async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(s, type, { concurrency: 1 });
      await setQueueLimit(s, q, { concurrency: 10 });
      await insertN(s, 300, { queue: q, type, priority: 10 });
      assert.equal((await claimLimited(s, q, 1)).rows.length, 1);
      const plain = await insertJob(s, { queue: q, priority: -10 });
      const r = await claimLimited(s, q, 1);
      assert.deepEqual([idsOf(r.rows), r.saturated], [[plain], true]);
    });

    it('a rate-blocked rate key does not hide a job of the same concurrency key with another rate key', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { concurrency: 1, rateLimit: 1, ratePeriodMs: 60_000 });
      await insertJob(m.s, { queue: q, type, concurrencyKey: 'b', rateKey: 'x' });
      assert.equal((await claimLimited(m.s, q)).rows.length, 1, 'rate key x is now blocked for 59 s (T = 60 s, c = 1 s)');
      await insertN(m.s, 200, { queue: q, type, concurrencyKey: 'a', rateKey: 'x', priority: 5 });
      const target = await insertJob(m.s, { queue: q, type, concurrencyKey: 'a', rateKey: 'y' });
      assert.deepEqual(idsOf((await claimLimited(m.s, q, 1)).rows), [target]);
    });

    it("many keys: one claim takes every key's free room", async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(s, type, { concurrency: 2 });
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
      await s.jobInsertMany({ jobs: keys.flatMap((k) => [0, 1, 2, 3, 4].map(() => jobInsert({ queue: q, type, concurrencyKey: k }))) });
      const r = await claimLimited(s, q, 500);
      const perKey = new Map<string, number>();
      for (const row of r.rows) perKey.set(row.concurrencyKey!, (perKey.get(row.concurrencyKey!) ?? 0) + 1);
      assert.deepEqual([r.rows.length, perKey.size, Math.max(...perKey.values()), r.saturated], [80, 40, 2, true]);
    });
  });

  describe('flow control: concurrent limited claimers', () => {
    const ctx = useStorage(make, 'conformance-flow-concurrent');
    const shared = useSharedClock(ctx, 'conformance-flow-concurrent-clock', 4);

    // Each instance claims from its own queue, and the limits span the queues: racing claimers
    // then pick different jobs, so only the serialization of limited claims keeps the counts.
    it('claimers on separate instances never exceed a concurrency limit and claim each job once', { timeout: 120_000 }, async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const perKey = 2;
      const keys = ['k0', 'k1', 'k2'];
      const queues = [0, 1, 2, 3].map(() => uniqueName('q'));
      await setTypeLimit(s, type, { concurrency: perKey });
      const total = 96;
      await s.jobInsertMany({ jobs: Array.from({ length: total }, (_, i) => jobInsert({ queue: queues[i % 4]!, type, concurrencyKey: keys[i % 3]! })) });
      const insts = [s, ...(await instances(ctx.ts, 3))];
      const running = new Map<string, number>();
      let done = 0;
      const claimed = new Set<string>();
      const violations: string[] = [];
      await Promise.all(
        insts.map(async (inst, i) => {
          while (done < total) {
            const r = await inst.jobClaimLimited({ workerId: `w${i}`, queues: [{ name: queues[i]!, limit: 3 }], leaseMs: 60_000 });
            if (r.rows.length === 0) {
              await new Promise((resolve) => setTimeout(resolve, 1));
              continue;
            }
            for (const row of r.rows) {
              if (claimed.has(row.id)) violations.push(`${row.id} claimed twice`);
              claimed.add(row.id);
              const k = row.concurrencyKey!;
              running.set(k, (running.get(k) ?? 0) + 1);
              if (running.get(k)! > perKey) violations.push(`key ${k}: ${running.get(k)} running`);
            }
            const stored = await inst.jobList({ type, statuses: ['running'], limit: 1_000 });
            for (const k of keys) {
              const n = stored.filter((row) => row.concurrencyKey === k).length;
              if (n > perKey) violations.push(`stored: ${n} running with key ${k}`);
            }
            await new Promise((resolve) => setImmediate(resolve));
            // Counted free before the finish is sent: the counters never run ahead of the rows.
            for (const row of r.rows) running.set(row.concurrencyKey!, running.get(row.concurrencyKey!)! - 1);
            await completeRows(inst, r.rows);
            done += r.rows.length;
          }
        }),
      );
      assert.deepEqual(violations, []);
      assert.equal(claimed.size, total);
      assert.equal((await s.jobList({ type, statuses: ['completed'], limit: 1_000 })).length, total);
    });

    it('claimers on separate instances at one instant start one job per rate group (two after idling), and fill one concurrency slot once', async () => {
      const c = shared();
      const [first] = c.all;
      /** One concurrent limited claim per instance, each of its own queue; the rows of all. */
      const round = async (queues: readonly string[]): Promise<JobRow[]> =>
        (await Promise.all(c.all.map((inst, i) => inst.jobClaimLimited({ workerId: `w${i}`, queues: [{ name: queues[i]!, limit: 10 }], leaseMs: 60_000 })))).flatMap((r) => r.rows);
      const rated = uniqueName('t');
      const rq = [0, 1, 2, 3].map(() => uniqueName('q'));
      await setTypeLimit(first!, rated, { rateLimit: 1, ratePeriodMs: 1_000 });
      await first!.jobInsertMany({ jobs: Array.from({ length: 24 }, (_, i) => jobInsert({ queue: rq[i % 4]!, type: rated, rateKey: `r${i % 3}` })) });
      // T = c = 1 s: a key without state starts twice at the first instant (limit + 1), then once a second.
      assert.deepEqual((await round(rq)).map((r) => r.rateKey).sort(), ['r0', 'r0', 'r1', 'r1', 'r2', 'r2'], 'two starts per idle key');
      for (let n = 1; n < 3; n++) {
        c.now += 1_000;
        const rows = await round(rq);
        assert.deepEqual(rows.map((r) => r.rateKey).sort(), ['r0', 'r1', 'r2'], `round ${n}: one start per key`);
      }
      const counted = uniqueName('t');
      const cq = [0, 1, 2, 3].map(() => uniqueName('q'));
      await setTypeLimit(first!, counted, { concurrency: 1 });
      await first!.jobInsertMany({ jobs: Array.from({ length: 8 }, (_, i) => jobInsert({ queue: cq[i % 4]!, type: counted })) });
      assert.equal((await round(cq)).length, 1, 'one slot, four claimers of four queues: one job');
    });
  });
}
