/**
 * Conformance: the flow-control side of `jobInsertMany` — unique windows (`uniqueForMs`: a
 * finished holder clashes while it finished less than the window ago, on the storage clock),
 * `onConflict: 'existing'` (the holder's id: live, finished, or the first item of the batch),
 * debounce (the pending job of the same type and key is replaced, keeping its id, created_at,
 * attempt and last_error; a holder that is not pending leaves a new pending job; the later of two
 * items of one batch wins), the `ids` array aligned with the items, and `jobPrune` dropping
 * rate state older than a minute (and keeping younger state, which a late start still counts).
 *
 * Exact instants run on a second isolated database whose storage takes a clock the test sets;
 * concurrent debounces run on the driver's own clock with several instances.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuplicateJobError } from '../../src/errors.js';
import type { JobInsert, JobRow, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import { applied, cancelledJob, claimOne, completedJob, failedJob, fenceOf, insertJob, instances, jobInsert, mustGet, pausedJob, runningJob, uniqueName, waitingJob } from '../helpers/factories.js';
import { useManualClock, useStorage } from './context.js';
import { claimLimited, idsOf, setTypeLimit } from './flow-helpers.js';

/** A finished job of each terminal status, holding `uniqueKey`. */
const FINISHED: [status: string, make: (s: Storage, f: Partial<JobInsert>) => Promise<JobRow>][] = [
  ['completed', (s, f) => completedJob(s, f)],
  ['failed', (s, f) => failedJob(s, f)],
  ['cancelled', (s, f) => cancelledJob(s, f)],
];

/** A live job of each non-terminal status, holding `uniqueKey`. */
const LIVE: [status: string, make: (s: Storage, f: Partial<JobInsert>) => Promise<string>][] = [
  ['pending', (s, f) => insertJob(s, { queue: uniqueName('q'), ...f })],
  ['running', async (s, f) => (await runningJob(s, f)).fence.jobId],
  ['waiting', async (s, f) => (await waitingJob(s, f, { waitSignal: 'go' })).row.id],
  ['paused', async (s, f) => (await pausedJob(s, f)).id],
];

/** Jobs with `debounceKey` = key of `type`, by status. */
async function holders(s: Storage, type: string, key: string): Promise<JobRow[]> {
  return (await s.jobList({ type, limit: 1_000, order: 'asc' })).filter((r) => r.debounceKey === key);
}

/** Registers the insert tests of flow control. */
export function describeFlowInsert(make: StorageMaker): void {
  describe('flow control: unique windows (uniqueForMs)', () => {
    const ctx = useStorage(make, 'conformance-flow-unique');
    const clock = useManualClock(ctx, 'conformance-flow-unique-manual');

    for (const [status, finish] of FINISHED) {
      it(`a ${status} holder clashes while it finished less than uniqueForMs ago, and follows onConflict`, async () => {
        const m = clock();
        const key = uniqueName('key');
        const holder = await finish(m.s, { uniqueKey: key });
        const t = m.now;
        assert.deepEqual([holder.status, holder.completedAt], [status, t]);
        m.now = t + 999;
        const clash = (): JobInsert => jobInsert({ uniqueKey: key, uniqueForMs: 1_000 });
        const refused = clash();
        await assert.rejects(m.s.jobInsertMany({ jobs: [refused] }), (e) => e instanceof DuplicateJobError && e.uniqueKey === key);
        assert.equal(await m.s.jobGet({ id: refused.id }), undefined);
        assert.deepEqual(await m.s.jobInsertMany({ jobs: [clash()], onConflict: 'skip' }), { inserted: [], ids: [null] });
        assert.deepEqual(await m.s.jobInsertMany({ jobs: [clash()], onConflict: 'existing' }), { inserted: [], ids: [holder.id] });
        const otherKey = jobInsert({ uniqueKey: uniqueName('key'), uniqueForMs: 1_000 });
        assert.deepEqual(await m.s.jobInsertMany({ jobs: [otherKey], onConflict: 'existing' }), { inserted: [otherKey.id], ids: [otherKey.id] }, 'another key');
        m.now = t + 1_000;
        const after = clash();
        assert.deepEqual(await m.s.jobInsertMany({ jobs: [after], onConflict: 'existing' }), { inserted: [after.id], ids: [after.id] }, 'finished exactly uniqueForMs ago: no clash');
      });
    }

    it('without uniqueForMs (absent or null) a finished holder never clashes', async () => {
      const m = clock();
      const key = uniqueName('key');
      await completedJob(m.s, { uniqueKey: key });
      const a = jobInsert({ uniqueKey: key, queue: uniqueName('q') });
      assert.deepEqual(await m.s.jobInsertMany({ jobs: [a] }), { inserted: [a.id], ids: [a.id] });
      await m.s.jobCancel({ id: a.id });
      const b = jobInsert({ uniqueKey: key, uniqueForMs: null });
      assert.deepEqual(await m.s.jobInsertMany({ jobs: [b] }), { inserted: [b.id], ids: [b.id] });
    });

    it("'existing' names the live holder before a finished one, and a finished holder for every item of a batch", async () => {
      const m = clock();
      const key = uniqueName('key');
      await completedJob(m.s, { uniqueKey: key });
      m.now += 1;
      const live = await insertJob(m.s, { uniqueKey: key });
      assert.deepEqual(await m.s.jobInsertMany({ jobs: [jobInsert({ uniqueKey: key, uniqueForMs: 60_000 })], onConflict: 'existing' }), { inserted: [], ids: [live] });
      await m.s.jobCancel({ id: live });
      m.now += 10_000;
      const other = uniqueName('key');
      const otherDone = await completedJob(m.s, { uniqueKey: other });
      m.now += 1;
      const batch = [jobInsert({ uniqueKey: other, uniqueForMs: 60_000 }), jobInsert({ uniqueKey: other, uniqueForMs: 60_000 })];
      assert.deepEqual(await m.s.jobInsertMany({ jobs: batch, onConflict: 'existing' }), { inserted: [], ids: [otherDone.id, otherDone.id] });
    });

    it("a window clash with onConflict 'error' rejects the whole batch", async () => {
      const m = clock();
      const key = uniqueName('key');
      await failedJob(m.s, { uniqueKey: key });
      const plain = jobInsert();
      await assert.rejects(m.s.jobInsertMany({ jobs: [plain, jobInsert({ uniqueKey: key, uniqueForMs: 5_000 })], onConflict: 'error' }), DuplicateJobError);
      assert.equal(await m.s.jobGet({ id: plain.id }), undefined);
    });
  });

  describe("flow control: onConflict 'existing' and ids", () => {
    const ctx = useStorage(make, 'conformance-flow-existing');

    for (const [status, live] of LIVE) {
      it(`names a ${status} holder`, async () => {
        const s = ctx.s;
        const key = uniqueName('key');
        const holder = await live(s, { uniqueKey: key });
        assert.deepEqual(await s.jobInsertMany({ jobs: [jobInsert({ uniqueKey: key })], onConflict: 'existing' }), { inserted: [], ids: [holder] });
        assert.deepEqual(await s.jobInsertMany({ jobs: [jobInsert({ uniqueKey: key })], onConflict: 'skip' }), { inserted: [], ids: [null] });
      });
    }

    it("two items of one batch with one key: the first is inserted, both resolve to it ('skip': the second is null)", async () => {
      const s = ctx.s;
      const key = uniqueName('key');
      const [a, b] = [jobInsert({ uniqueKey: key }), jobInsert({ uniqueKey: key })];
      assert.deepEqual(await s.jobInsertMany({ jobs: [a, b], onConflict: 'existing' }), { inserted: [a.id], ids: [a.id, a.id] });
      assert.equal(await s.jobGet({ id: b.id }), undefined);
      const key2 = uniqueName('key');
      const [c, d] = [jobInsert({ uniqueKey: key2 }), jobInsert({ uniqueKey: key2 })];
      assert.deepEqual(await s.jobInsertMany({ jobs: [c, d], onConflict: 'skip' }), { inserted: [c.id], ids: [c.id, null] });
    });

    it('ids align with the items of a mixed batch: own id, holder, replaced job, null', async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const held = uniqueName('key');
      const fresh = uniqueName('key');
      const holder = await insertJob(s, { uniqueKey: held });
      const debounced = await insertJob(s, { type, debounceKey: 'dk', queue: uniqueName('q') });
      const mk = (): JobInsert[] => [
        jobInsert(),
        jobInsert({ uniqueKey: held }),
        jobInsert({ type, debounceKey: 'dk' }),
        jobInsert({ uniqueKey: fresh }),
        jobInsert({ uniqueKey: fresh }),
        jobInsert(),
      ];
      const items = mk();
      const r = await s.jobInsertMany({ jobs: items, onConflict: 'existing' });
      assert.deepEqual(r.ids, [items[0]!.id, holder, debounced, items[3]!.id, items[3]!.id, items[5]!.id]);
      assert.deepEqual([...r.inserted].sort(), [items[0]!.id, items[3]!.id, items[5]!.id].sort());
      const again = mk();
      const r2 = await s.jobInsertMany({ jobs: again, onConflict: 'skip' });
      assert.deepEqual(r2.ids, [again[0]!.id, null, debounced, null, null, again[5]!.id], "'skip': the fresh key is now held too");
      const plain = [jobInsert(), jobInsert()];
      assert.deepEqual(await s.jobInsertMany({ jobs: plain }), { inserted: idsOf(plain), ids: idsOf(plain) });
    });
  });

  describe('flow control: debounce', () => {
    const ctx = useStorage(make, 'conformance-flow-debounce');
    const clock = useManualClock(ctx, 'conformance-flow-debounce-manual');

    it('replaces the pending job of the same type and key: new fields and run_at; id, created_at, attempt and last_error kept', async () => {
      const m = clock();
      const type = uniqueName('t');
      const [q1, q2] = [uniqueName('q'), uniqueName('q')];
      const t = m.now;
      const first = jobInsert({ type, queue: q1, debounceKey: 'k', argsJson: '1', metaJson: '{"m":1}', tenant: 'a', concurrencyKey: 'c1', rateKey: 'r1' });
      assert.deepEqual(await m.s.jobInsertMany({ jobs: [first] }), { inserted: [first.id], ids: [first.id] });
      const running = await claimOne(m.s, q1, first.id);
      assert.deepEqual(applied(await m.s.jobFinishMany({ items: [{ ...fenceOf(running), outcome: 'retry', error: 'boom', delayMs: 60_000 }] })), [true]);
      const before = await mustGet(m.s, first.id);
      assert.deepEqual([before.status, before.attempt, before.lastError], ['pending', 1, 'boom']);
      m.now = t + 100;
      const second = jobInsert({
        type,
        queue: q2,
        debounceKey: 'k',
        priority: 7,
        maxRetries: 9,
        argsJson: '2',
        metaJson: '{"m":2}',
        delayMs: 3_000,
        timeoutMs: 5_000,
        tenant: 'b',
        concurrencyKey: 'c2',
        rateKey: null,
      });
      assert.deepEqual(await m.s.jobInsertMany({ jobs: [second] }), { inserted: [], ids: [first.id] });
      assert.equal(await m.s.jobGet({ id: second.id }), undefined);
      const replaced = await mustGet(m.s, first.id);
      assert.deepEqual(replaced, {
        ...before,
        queue: q2,
        priority: 7,
        maxRetries: 9,
        argsJson: '2',
        metaJson: '{"m":2}',
        runAt: t + 100 + 3_000,
        timeoutMs: 5_000,
        tenant: 'b',
        concurrencyKey: 'c2',
        rateKey: null,
      });
      assert.deepEqual([replaced.createdAt, replaced.attempt, replaced.lastError, replaced.debounceKey], [t, 1, 'boom', 'k']);
      m.now = t + 200;
      await m.s.jobInsertMany({ jobs: [jobInsert({ type, queue: q2, debounceKey: 'k', runAt: t + 50_000 })] });
      assert.equal((await mustGet(m.s, first.id)).runAt, t + 50_000, 'run_at from runAt, as for an insert');
      await m.s.jobInsertMany({ jobs: [jobInsert({ type, queue: q2, debounceKey: 'k' })] });
      assert.equal((await mustGet(m.s, first.id)).runAt, t + 200, 'a debounce may also move run_at earlier');
      assert.equal((await holders(m.s, type, 'k')).length, 1);
    });

    it('the key is scoped to the type; a replaced job of a limited type stays limited', async () => {
      const m = clock();
      const [type, other] = [uniqueName('t'), uniqueName('t')];
      const a = await insertJob(m.s, { type, debounceKey: 'k' });
      const b = jobInsert({ type: other, debounceKey: 'k' });
      assert.deepEqual(await m.s.jobInsertMany({ jobs: [b] }), { inserted: [b.id], ids: [b.id] }, 'same key, other type: a job of its own');
      await setTypeLimit(m.s, type, { concurrency: 1 });
      const r = await m.s.jobInsertMany({ jobs: [jobInsert({ type, debounceKey: 'k', argsJson: '"x"' })] });
      assert.deepEqual(r.ids, [a]);
      assert.deepEqual([(await mustGet(m.s, a)).limited, (await mustGet(m.s, b.id)).limited], [true, false]);
    });

    it('a holder that is not pending is left alone: a new pending job holds the key, and later debounces replace that one', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      const holder = await insertJob(m.s, { type, queue: q, debounceKey: 'k', argsJson: '"old"' });
      await claimOne(m.s, q, holder);
      const fresh = jobInsert({ type, queue: q, debounceKey: 'k', argsJson: '"new"' });
      assert.deepEqual(await m.s.jobInsertMany({ jobs: [fresh] }), { inserted: [fresh.id], ids: [fresh.id] }, 'running holder: a new job');
      const running = await mustGet(m.s, holder);
      assert.deepEqual([running.status, running.argsJson], ['running', '"old"']);
      assert.deepEqual((await m.s.jobInsertMany({ jobs: [jobInsert({ type, queue: q, debounceKey: 'k', argsJson: '"newer"' })] })).ids, [fresh.id]);
      assert.equal((await mustGet(m.s, fresh.id)).argsJson, '"newer"');
      await m.s.jobPause({ id: fresh.id });
      const third = jobInsert({ type, queue: q, debounceKey: 'k' });
      assert.deepEqual(await m.s.jobInsertMany({ jobs: [third] }), { inserted: [third.id], ids: [third.id] }, 'paused holder: a new job');
      await completedJob(m.s, { type, debounceKey: 'other' });
      const fourth = jobInsert({ type, debounceKey: 'other' });
      assert.deepEqual((await m.s.jobInsertMany({ jobs: [fourth] })).ids, [fourth.id], 'finished holder: a new job');
    });

    for (const [what, back] of [
      ['a retry outcome', async (s: Storage, row: JobRow) => assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fenceOf(row), outcome: 'retry', error: 'x', delayMs: 0 }] })), [true])],
      ['a release', async (s: Storage, row: JobRow) => assert.deepEqual(await s.jobRelease({ runs: [fenceOf(row)] }), [row.id])],
    ] as const) {
      it(`a running holder that goes back to pending (${what}) while a newer job holds the key still does`, async () => {
        const m = clock();
        const type = uniqueName('t');
        const q = uniqueName('q');
        const holder = await insertJob(m.s, { type, queue: q, debounceKey: 'k' });
        const row = await claimOne(m.s, q, holder);
        const newer = await insertJob(m.s, { type, queue: q, debounceKey: 'k' });
        await back(m.s, row);
        assert.deepEqual([(await mustGet(m.s, holder)).status, (await mustGet(m.s, newer)).status], ['pending', 'pending']);
      });
    }

    it('two items of one batch with the same type and key: the later replaces the earlier', async () => {
      const m = clock();
      const type = uniqueName('t');
      const [a, b] = [jobInsert({ type, debounceKey: 'k', argsJson: '1' }), jobInsert({ type, debounceKey: 'k', argsJson: '2', priority: 3 })];
      assert.deepEqual(await m.s.jobInsertMany({ jobs: [a, b] }), { inserted: [a.id], ids: [a.id, a.id] });
      const row = await mustGet(m.s, a.id);
      assert.deepEqual([row.argsJson, row.priority], ['2', 3]);
      assert.equal(await m.s.jobGet({ id: b.id }), undefined);
      const [c, d] = [jobInsert({ type, debounceKey: 'k', argsJson: '3' }), jobInsert({ type, debounceKey: 'k', argsJson: '4' })];
      assert.deepEqual(await m.s.jobInsertMany({ jobs: [c, d] }), { inserted: [], ids: [a.id, a.id] }, 'with a pending holder: both name it');
      assert.deepEqual((await holders(m.s, type, 'k')).map((r) => [r.id, r.argsJson]), [[a.id, '4']]);
    });

    it('concurrent debounces of one key on separate instances leave exactly one pending job, which every call names', { timeout: 60_000 }, async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const insts = [s, ...(await instances(ctx.ts, 3))];
      const results = await Promise.all(
        insts.map(async (inst, i) => {
          const out: (string | null)[] = [];
          for (let n = 0; n < 5; n++) out.push(...(await inst.jobInsertMany({ jobs: [jobInsert({ type, debounceKey: 'k', argsJson: `"${i}-${n}"` })] })).ids);
          return out;
        }),
      );
      const pending = (await holders(s, type, 'k')).filter((r) => r.status === 'pending');
      assert.equal(pending.length, 1, 'one pending job');
      assert.deepEqual([...new Set(results.flat())], [pending[0]!.id], 'every call resolved to it');
    });
  });

  describe('flow control: debounce racing claims', () => {
    const ctx = useStorage(make, 'conformance-flow-debounce-race');

    it('a debounce racing a claim on another instance never rewrites a claimed job, nor loses its own arguments', { timeout: 60_000 }, async () => {
      const s = ctx.s;
      const type = uniqueName('t');
      const q = uniqueName('q');
      const [claimer] = await instances(ctx.ts, 1);
      const n = 40;
      const ids: string[] = [];
      const claimedArgs = new Map<string, string | null>();
      let debouncing = true;
      const claiming = (async () => {
        while (debouncing) {
          for (const row of await claimer!.jobClaim({ workerId: 'racer', queues: [{ name: q, limit: 5 }], leaseMs: 60_000 })) claimedArgs.set(row.id, row.argsJson);
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      try {
        for (let i = 0; i < n; i++) {
          const r = await s.jobInsertMany({ jobs: [jobInsert({ type, queue: q, debounceKey: 'k', argsJson: String(i) })] });
          ids.push(r.ids[0]!);
        }
      } finally {
        debouncing = false;
        await claiming;
      }
      const rows = new Map((await s.jobGetMany({ ids: [...new Set([...ids, ...claimedArgs.keys()])] })).map((r) => [r.id, r]));
      for (const [i, id] of ids.entries()) {
        const args = Number(rows.get(id)?.argsJson);
        assert.ok(args >= i, `call ${i} named job ${id}, which holds the arguments of call ${args}`);
      }
      for (const [id, args] of claimedArgs) assert.equal(rows.get(id)?.argsJson, args, `job ${id} was changed after its claim`);
      assert.ok((await holders(s, type, 'k')).filter((r) => r.status === 'pending').length <= 1, 'at most one pending job holds the key');
    });
  });

  describe('flow control: jobPrune and rate state', () => {
    const ctx = useStorage(make, 'conformance-flow-prune');
    const clock = useManualClock(ctx, 'conformance-flow-prune-manual');

    it('keeps rate state younger than 60 s (a late start still counts it); a group behaves the same once older state is dropped', async () => {
      const m = clock();
      const type = uniqueName('t');
      const q = uniqueName('q');
      // T = c = 1 s.
      await setTypeLimit(m.s, type, { rateLimit: 1, ratePeriodMs: 1_000 });
      await m.s.jobInsertMany({ jobs: [0, 1, 2, 3, 4, 5].map(() => jobInsert({ queue: q, type })) });
      const prune = async (): Promise<void> => {
        // Ages no job reaches: the prune runs (and drops old rate state) without deleting a job.
        const year = 365 * 86_400_000;
        const pruned = await m.s.jobPrune({ olderThanMs: { completed: year, failed: year, cancelled: year }, limit: 10 });
        assert.equal(pruned.busy, false);
      };
      const t = m.now;
      assert.equal((await claimLimited(m.s, q)).rows.length, 1, 'no state: tat = t');
      assert.equal((await claimLimited(m.s, q)).rows.length, 1, 'tat = t + 1000');
      m.now = t + 1_500;
      await prune();
      const late = await claimLimited(m.s, q);
      assert.deepEqual([late.rows.length, late.retryInMs], [1, 500], 'the tat t + 1000 was kept: the start 500 ms late sets t + 2000, not t + 1500');
      m.now = t + 62_001;
      await prune();
      const fresh = await claimLimited(m.s, q);
      assert.deepEqual([fresh.rows.length, fresh.retryInMs], [1, 1], 'state older than a minute: as none (tat = now)');
      const second = await claimLimited(m.s, q);
      assert.deepEqual([second.rows.length, second.retryInMs], [1, 1_000]);
    });
  });
}
