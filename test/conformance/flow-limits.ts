/**
 * Conformance: flow-control limit rows — `limitSet` / `limitDelete` / `limitList` /
 * `limitUsage`, the `limited` mark of jobs (decided at insert, re-marked when a type limit row
 * appears or disappears), and the ordinary claim's exclusions: `jobClaim` never takes a limited
 * job nor any job of a queue with a queue limit.
 *
 * Limit rows and rate state are database-wide, so each test uses its own type and queue names.
 * Exact instants (updatedAt, rate state, nextStartAt) run on a second isolated database whose
 * storage takes a clock the test sets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LimitRow, LimitUsageRow, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import { claim, insertJob, jobInsert, mustGet, uniqueName } from '../helpers/factories.js';
import { useManualClock, useStorage } from './context.js';
import { claimLimited, completeRows, idsOf, listedLimits, setQueueLimit, setTypeLimit, usageOf } from './flow-helpers.js';

/** A name without `_`, so that every collation sorts names made from it alike. */
function plainName(prefix: string): string {
  return uniqueName(prefix).replace(/_/g, '').toLowerCase();
}

/** A limit row as `limitList` returns it. */
function limitRow(scope: LimitRow['scope'], name: string, l: Partial<LimitRow>, updatedAt: number): LimitRow {
  return { scope, name, concurrency: l.concurrency ?? null, rateLimit: l.rateLimit ?? null, ratePeriodMs: l.ratePeriodMs ?? null, updatedAt };
}

/** A usage row with every count zero. */
function idle(scope: LimitRow['scope'], name: string): LimitUsageRow {
  return { scope, name, running: 0, keysRunning: 0, keysFull: 0, pending: 0, nextStartAt: null };
}

/** Whether the queue is listed paused by `queueSummary`. */
async function queuePaused(s: Storage, queue: string): Promise<boolean | undefined> {
  return (await s.queueSummary()).find((r) => r.name === queue)?.paused;
}

/** The `limited` flags of jobs, by id order given. */
async function limitedFlags(s: Storage, ids: readonly string[]): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const id of ids) out.push((await mustGet(s, id)).limited);
  return out;
}

/** Registers the limit row, marking and usage tests. */
export function describeFlowLimits(make: StorageMaker): void {
  describe('flow control: limit rows', () => {
    const ctx = useStorage(make, 'conformance-flow-limits');
    const clock = useManualClock(ctx, 'conformance-flow-limits-manual');

    it('limitList: type rows then queue rows, each by name, with the stored limits and updatedAt on the storage clock', async () => {
      const m = clock();
      const tag = plainName('l');
      await setTypeLimit(m.s, `${tag}b`, { concurrency: 2 });
      await setQueueLimit(m.s, `${tag}c`, { concurrency: 3, rateLimit: 1, ratePeriodMs: 2_000 });
      m.now += 5;
      await setTypeLimit(m.s, `${tag}a`, { rateLimit: 5, ratePeriodMs: 1_000 });
      await setQueueLimit(m.s, `${tag}a`, { concurrency: 1 });
      const t = m.now;
      const rows = (await m.s.limitList()).filter((r) => r.name.startsWith(tag));
      assert.deepEqual(rows, [
        limitRow('type', `${tag}a`, { rateLimit: 5, ratePeriodMs: 1_000 }, t),
        limitRow('type', `${tag}b`, { concurrency: 2 }, t - 5),
        limitRow('queue', `${tag}a`, { concurrency: 1 }, t),
        limitRow('queue', `${tag}c`, { concurrency: 3, rateLimit: 1, ratePeriodMs: 2_000 }, t - 5),
      ]);
      const all = await m.s.limitList();
      const firstQueue = all.findIndex((r) => r.scope === 'queue');
      assert.ok(firstQueue === -1 || all.slice(firstQueue).every((r) => r.scope === 'queue'), 'every type row comes before every queue row');
    });

    it('limitSet upserts: a second set replaces every limit of the row and moves updatedAt', async () => {
      const m = clock();
      const type = plainName('t');
      const queue = plainName('q');
      await setTypeLimit(m.s, type, { concurrency: 2, rateLimit: 10, ratePeriodMs: 1_000 });
      await setQueueLimit(m.s, queue, { concurrency: 4 });
      m.now += 1_000;
      await setTypeLimit(m.s, type, { concurrency: 7 });
      await setQueueLimit(m.s, queue, { rateLimit: 3, ratePeriodMs: 60_000 });
      assert.deepEqual(await listedLimits(m.s, 'type', [type]), [limitRow('type', type, { concurrency: 7 }, m.now)]);
      assert.deepEqual(await listedLimits(m.s, 'queue', [queue]), [limitRow('queue', queue, { rateLimit: 3, ratePeriodMs: 60_000 }, m.now)]);
    });

    it('a type and a queue of the same name are separate rows', async () => {
      const m = clock();
      const name = plainName('same');
      await setTypeLimit(m.s, name, { concurrency: 1 });
      await setQueueLimit(m.s, name, { concurrency: 9 });
      assert.deepEqual((await m.s.limitList()).filter((r) => r.name === name), [limitRow('type', name, { concurrency: 1 }, m.now), limitRow('queue', name, { concurrency: 9 }, m.now)]);
      assert.equal(await m.s.limitDelete({ scope: 'queue', name }), true);
      assert.deepEqual((await m.s.limitList()).filter((r) => r.name === name), [limitRow('type', name, { concurrency: 1 }, m.now)], 'deleting the queue limit keeps the type limit');
    });

    it('limitDelete removes the row and says whether a limit existed', async () => {
      const s = ctx.s;
      const type = plainName('t');
      const queue = plainName('q');
      await setTypeLimit(s, type, { concurrency: 1 });
      await setQueueLimit(s, queue, { rateLimit: 1, ratePeriodMs: 1_000 });
      assert.equal(await s.limitDelete({ scope: 'type', name: type }), true);
      assert.equal(await s.limitDelete({ scope: 'type', name: type }), false, 'already deleted');
      assert.equal(await s.limitDelete({ scope: 'queue', name: queue }), true);
      assert.equal(await s.limitDelete({ scope: 'queue', name: queue }), false, 'already cleared');
      assert.equal(await s.limitDelete({ scope: 'type', name: plainName('never') }), false);
      assert.equal(await s.limitDelete({ scope: 'queue', name: plainName('never') }), false);
      assert.deepEqual(await listedLimits(s, 'type', [type]), []);
      assert.deepEqual(await listedLimits(s, 'queue', [queue]), []);
    });

    it('a queue limit and the pause flag live side by side: neither a limit change nor a pause change clears the other', async () => {
      const s = ctx.s;
      const queue = plainName('q');
      await s.queueSetPaused({ queue, paused: true });
      assert.equal(await s.limitDelete({ scope: 'queue', name: queue }), false, 'a paused queue row with no limit has no limit to delete');
      await setQueueLimit(s, queue, { concurrency: 2 });
      assert.equal(await queuePaused(s, queue), true, 'setting a limit keeps the pause');
      await s.queueSetPaused({ queue, paused: false });
      await s.queueSetPaused({ queue, paused: true });
      assert.deepEqual((await listedLimits(s, 'queue', [queue])).map((r) => r.concurrency), [2], 'pausing and resuming keep the limit');
      assert.equal(await s.limitDelete({ scope: 'queue', name: queue }), true);
      assert.equal(await queuePaused(s, queue), true, 'deleting the limit keeps the pause');
      await s.queueSetPaused({ queue, paused: false });
      const id = await insertJob(s, { queue });
      assert.deepEqual(idsOf(await claim(s, queue, 5)), [id], 'resumed, without a limit: the ordinary claim takes its job');
    });

    it('a faster rate applies at once (a next start at most one new interval away), a slower one keeps the spacing; deleting the limit drops the state', async () => {
      const m = clock();
      const type = plainName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { rateLimit: 1, ratePeriodMs: 1_000 });
      await m.s.jobInsertMany({ jobs: [0, 1, 2, 3, 4, 5, 6].map(() => jobInsert({ queue: q, type })) });
      const t = m.now;
      const step = async (at: number, started: number, retryInMs: number | null, what: string): Promise<void> => {
        m.now = at;
        const r = await claimLimited(m.s, q);
        assert.deepEqual([r.rows.length, r.retryInMs], [started, retryInMs], what);
      };
      await step(t, 1, 1, 'no state: tat = t');
      await step(t, 1, 1_000, 'tat = t + 1000');
      await setTypeLimit(m.s, type, { rateLimit: 1, ratePeriodMs: 500 });
      await step(t + 499, 0, 1, 'faster: the next start moved from t + 1000 to t + 500');
      await step(t + 500, 1, 500, 'then starts are 500 ms apart');
      await setTypeLimit(m.s, type, { rateLimit: 1, ratePeriodMs: 2_000 });
      await step(t + 999, 0, 1, 'slower: the next start stays at t + 1000');
      await step(t + 1_000, 1, 2_000, 'then starts are 2 s apart');
      assert.equal(await m.s.limitDelete({ scope: 'type', name: type }), true);
      await setTypeLimit(m.s, type, { rateLimit: 1, ratePeriodMs: 500 });
      await step(t + 1_000, 1, 1, 'a limit set again starts with no rate state');

      const queue = uniqueName('q');
      await setQueueLimit(m.s, queue, { rateLimit: 1, ratePeriodMs: 1_000 });
      await m.s.jobInsertMany({ jobs: [0, 1, 2, 3, 4].map(() => jobInsert({ queue })) });
      assert.equal((await claimLimited(m.s, queue)).rows.length, 1);
      assert.equal((await claimLimited(m.s, queue)).rows.length, 1);
      assert.equal((await claimLimited(m.s, queue)).rows.length, 0, 'no state, then tat = now + 1000');
      await setQueueLimit(m.s, queue, { rateLimit: 1, ratePeriodMs: 200 });
      const sooner = await claimLimited(m.s, queue);
      assert.deepEqual([sooner.rows.length, sooner.retryInMs], [0, 200], 'a faster queue rate: the next start 200 ms away');
      assert.equal(await m.s.limitDelete({ scope: 'queue', name: queue }), true);
      await setQueueLimit(m.s, queue, { rateLimit: 1, ratePeriodMs: 1_000 });
      assert.equal((await claimLimited(m.s, queue)).rows.length, 1, 'a queue limit set again starts with no rate state');
    });
  });

  describe('flow control: limited jobs and the ordinary claim', () => {
    const ctx = useStorage(make, 'conformance-flow-marking');

    it('a job is inserted limited exactly when its type has a type limit row; keys are stored as given', async () => {
      const s = ctx.s;
      const limitedType = uniqueName('t');
      const freeType = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(s, limitedType, { concurrency: 5 });
      const a = jobInsert({ queue: q, type: limitedType, concurrencyKey: 'acct-1', rateKey: 'r' });
      const b = jobInsert({ queue: q, type: freeType, concurrencyKey: '', rateKey: null });
      const c = jobInsert({ queue: q, type: limitedType });
      await s.jobInsertMany({ jobs: [a, b, c] });
      const [ra, rb, rc] = [await mustGet(s, a.id), await mustGet(s, b.id), await mustGet(s, c.id)];
      assert.deepEqual([ra.limited, rb.limited, rc.limited], [true, false, true]);
      assert.deepEqual([ra.concurrencyKey, ra.rateKey, ra.debounceKey], ['acct-1', 'r', null]);
      assert.deepEqual([rb.concurrencyKey, rb.rateKey], ['', null], "'' is stored as '', not as null");
      assert.deepEqual([rc.concurrencyKey, rc.rateKey, rc.debounceKey], [null, null, null], 'omitted keys read as null');
    });

    it("limitSet of a new type row marks the type's pending jobs limited; limitDelete unmarks them", async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const other = uniqueName('t');
      const q = uniqueName('q');
      const mine = [0, 1, 2].map(() => jobInsert({ queue: q, type }));
      const theirs = jobInsert({ queue: q, type: other });
      await s.jobInsertMany({ jobs: [...mine, theirs] });
      const all = [...idsOf(mine), theirs.id];
      assert.deepEqual(await limitedFlags(s, all), [false, false, false, false]);
      await setTypeLimit(s, type, { concurrency: 1 });
      assert.deepEqual(await limitedFlags(s, all), [true, true, true, false], 'only the pending jobs of that type');
      await setTypeLimit(s, type, { concurrency: 2 });
      assert.deepEqual(await limitedFlags(s, all), [true, true, true, false], 'an update keeps the marks');
      assert.deepEqual(idsOf(await claim(s, q, 10)), [theirs.id], 'the ordinary claim leaves the limited jobs');
      assert.equal(await s.limitDelete({ scope: 'type', name: type }), true);
      assert.deepEqual(await limitedFlags(s, idsOf(mine)), [false, false, false]);
      assert.deepEqual(idsOf(await claim(s, q, 10)), idsOf(mine), 'unmarked, they are ordinary jobs again');
      const later = await insertJob(s, { queue: q, type });
      assert.equal((await mustGet(s, later)).limited, false, 'inserted after the delete: not limited');
    });

    it('jobClaim never takes a limited job, whatever its priority; jobClaimLimited takes only those in a queue without a queue limit', async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(s, type, { concurrency: 100 });
      const limited = [jobInsert({ queue: q, type, priority: 50 }), jobInsert({ queue: q, type, priority: -50 })];
      const plain = [jobInsert({ queue: q, priority: 10 }), jobInsert({ queue: q, priority: 0 })];
      await s.jobInsertMany({ jobs: [limited[0]!, plain[0]!, limited[1]!, plain[1]!] });
      const first = await claimLimited(s, q, 10);
      assert.deepEqual(idsOf(first.rows), idsOf(limited), 'the limited claim takes the limited jobs, by priority');
      await completeRows(s, first.rows);
      await s.jobInsertMany({ jobs: [jobInsert({ queue: q, type, priority: 99 })] });
      assert.deepEqual(idsOf(await claim(s, q, 10)), idsOf(plain), 'the ordinary claim takes the others, by priority');
      assert.equal((await claimLimited(s, q, 10)).rows.length, 1, 'the limited job left for the limited claim');
      const plainOnly = uniqueName('q');
      await insertJob(s, { queue: plainOnly });
      assert.deepEqual((await claimLimited(s, plainOnly, 10)).rows, [], 'a queue without limits has nothing for the limited claim');
    });

    for (const [what, limits] of [
      ['concurrency', { concurrency: 10 }],
      ['rate', { rateLimit: 10, ratePeriodMs: 1_000 }],
    ] as const) {
      it(`jobClaim skips every job of a queue with a queue ${what} limit, and still claims the other queues of the call`, async () => {
        const s = ctx.s;
        const limitedQ = uniqueName('q');
        const freeQ = uniqueName('q');
        const held = [await insertJob(s, { queue: limitedQ, priority: 5 }), await insertJob(s, { queue: limitedQ })];
        const free = await insertJob(s, { queue: freeQ });
        await setQueueLimit(s, limitedQ, limits);
        assert.equal((await mustGet(s, held[0]!)).limited, false, 'a queue limit does not mark jobs');
        const rows = await s.jobClaim({ workerId: 'w', queues: [{ name: limitedQ, limit: 5 }, { name: freeQ, limit: 5 }], leaseMs: 60_000 });
        assert.deepEqual(idsOf(rows), [free]);
        const limitedRows = await claimLimited(s, limitedQ, 1);
        assert.deepEqual(idsOf(limitedRows.rows), [held[0]], 'the limited claim takes the queue-limited jobs, in claim order');
        assert.equal(await s.limitDelete({ scope: 'queue', name: limitedQ }), true);
        assert.deepEqual(idsOf(await claim(s, limitedQ, 5)), [held[1]], 'limit deleted: the ordinary claim takes the rest');
      });
    }
  });

  describe('flow control: limitUsage', () => {
    const ctx = useStorage(make, 'conformance-flow-usage');
    const clock = useManualClock(ctx, 'conformance-flow-usage-manual');

    it('a keyed type concurrency limit: running, keys running, keys full and pending (a null key counts as the key "")', async () => {
      const m = clock();
      const type = plainName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { concurrency: 2 });
      assert.deepEqual(await usageOf(m.s, 'type', type), idle('type', type));
      const keys: (string | null)[] = ['a', 'a', 'a', 'b', null, '', ''];
      await m.s.jobInsertMany({ jobs: keys.map((k) => jobInsert({ queue: q, type, concurrencyKey: k })) });
      assert.deepEqual(await usageOf(m.s, 'type', type), { ...idle('type', type), pending: 7 });
      const claimed = await claimLimited(m.s, q, 10);
      assert.equal(claimed.rows.length, 5, "a: 2, b: 1, '': 2 (null and '')");
      assert.deepEqual(await usageOf(m.s, 'type', type), { ...idle('type', type), running: 5, keysRunning: 3, keysFull: 2, pending: 2 });
      await completeRows(m.s, claimed.rows.filter((r) => r.concurrencyKey === 'a'));
      assert.deepEqual(await usageOf(m.s, 'type', type), { ...idle('type', type), running: 3, keysRunning: 2, keysFull: 1, pending: 2 });
    });

    it('jobs of a type already running when its limit is set count in its usage', async () => {
      const m = clock();
      const type = plainName('t');
      const q = uniqueName('q');
      await m.s.jobInsertMany({ jobs: [0, 1, 2].map(() => jobInsert({ queue: q, type })) });
      assert.equal((await claim(m.s, q, 2)).length, 2);
      await setTypeLimit(m.s, type, { concurrency: 1 });
      assert.deepEqual(await usageOf(m.s, 'type', type), { ...idle('type', type), running: 2, keysRunning: 1, keysFull: 1, pending: 1 });
    });

    it('a queue limit counts every job of the queue; nextStartAt is the blocked rate group\'s next start, null once it passed', async () => {
      const m = clock();
      const queue = plainName('q');
      const type = plainName('t');
      await setQueueLimit(m.s, queue, { concurrency: 3, rateLimit: 2, ratePeriodMs: 1_000 });
      await setTypeLimit(m.s, type, { concurrency: 10 });
      await m.s.jobInsertMany({ jobs: [jobInsert({ queue }), jobInsert({ queue, type }), jobInsert({ queue }), jobInsert({ queue })] });
      const t = m.now;
      assert.deepEqual(await usageOf(m.s, 'queue', queue), { ...idle('queue', queue), pending: 4 });
      assert.equal((await claimLimited(m.s, queue)).rows.length, 1);
      assert.deepEqual(await usageOf(m.s, 'queue', queue), { ...idle('queue', queue), running: 1, keysRunning: 1, pending: 3 }, 'no state: tat = t, not after now');
      assert.equal((await claimLimited(m.s, queue)).rows.length, 1);
      assert.deepEqual(await usageOf(m.s, 'queue', queue), { ...idle('queue', queue), running: 2, keysRunning: 1, pending: 2, nextStartAt: t + 500 });
      m.now = t + 500;
      assert.equal((await claimLimited(m.s, queue)).rows.length, 1);
      assert.deepEqual(await usageOf(m.s, 'queue', queue), { ...idle('queue', queue), running: 3, keysRunning: 1, keysFull: 1, pending: 1, nextStartAt: t + 1_000 });
      m.now = t + 999;
      assert.equal((await usageOf(m.s, 'queue', queue)).nextStartAt, t + 1_000);
      m.now = t + 1_000;
      assert.equal((await usageOf(m.s, 'queue', queue)).nextStartAt, null, 'a tat that is not after now blocks nothing');
      assert.equal((await usageOf(m.s, 'type', type)).running, 1, 'the limited job in the queue counts for its type too');
    });

    it('nextStartAt: the smallest tat after now among the keys, a fractional tat rounded up', async () => {
      const m = clock();
      const type = plainName('t');
      const q = uniqueName('q');
      await setTypeLimit(m.s, type, { rateLimit: 3, ratePeriodMs: 1_000 });
      await m.s.jobInsertMany({ jobs: ['x', 'x', 'x', 'y', 'y', 'y'].map((k) => jobInsert({ queue: q, type, rateKey: k })) });
      const t = m.now;
      assert.equal((await claimLimited(m.s, [{ name: q, limit: 1 }])).rows.length, 1, 'key x starts at t');
      assert.equal((await usageOf(m.s, 'type', type)).nextStartAt, null, 'no state before: tat = t, not after now');
      assert.equal((await claimLimited(m.s, [{ name: q, limit: 1 }])).rows.length, 1, 'and again at t');
      assert.equal((await usageOf(m.s, 'type', type)).nextStartAt, t + 334, 'tat t + 333.33 rounded up');
      m.now = t + 100;
      assert.equal((await claimLimited(m.s, q)).rows.length, 1, 'key y starts at t + 100');
      assert.equal((await claimLimited(m.s, q)).rows.length, 1, 'and again');
      assert.equal((await usageOf(m.s, 'type', type)).nextStartAt, t + 334);
      m.now = t + 334;
      assert.equal((await usageOf(m.s, 'type', type)).nextStartAt, t + 434, 'key x passed: key y, t + 433.33 rounded up');
      const u = await usageOf(m.s, 'type', type);
      assert.deepEqual([u.keysFull, u.running, u.pending], [0, 4, 2], 'no concurrency limit: no key is full');
    });

    it('limitUsage lists the limits of limitList, in the same order, numbers as numbers', async () => {
      const m = clock();
      await setTypeLimit(m.s, plainName('t'), { concurrency: 1 });
      await setQueueLimit(m.s, plainName('q'), { rateLimit: 1, ratePeriodMs: 100 });
      const list = await m.s.limitList();
      const usage = await m.s.limitUsage();
      assert.deepEqual(usage.map((u) => [u.scope, u.name]), list.map((l) => [l.scope, l.name]));
      for (const u of usage) {
        for (const k of ['running', 'keysRunning', 'keysFull', 'pending'] as const) assert.ok(Number.isSafeInteger(u[k]), `${u.name}.${k} is an integer number`);
        assert.ok(u.nextStartAt === null || Number.isSafeInteger(u.nextStartAt), `${u.name}.nextStartAt is an integer or null`);
      }
      for (const l of list) {
        assert.ok(Number.isSafeInteger(l.updatedAt), `${l.name}.updatedAt is an integer number`);
        for (const k of ['concurrency', 'rateLimit', 'ratePeriodMs'] as const) assert.ok(l[k] === null || Number.isSafeInteger(l[k]), `${l.name}.${k} is an integer or null`);
      }
    });
  });
}
