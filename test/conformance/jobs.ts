/**
 * Conformance: inserting and reading jobs — round trips, run_at, listing, counts, unique keys,
 * wake-ups of listeners.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuplicateJobError, StorageError } from '../../src/errors.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/storage/codec.js';
import { JOB_STATUSES } from '../../src/types.js';
import type { StorageMaker } from '../helpers/storages.js';
import {
  assertBetween,
  assertRowTypes,
  bigJson,
  cancelledJob,
  claimOne,
  completedJob,
  failedJob,
  insertJob,
  instances,
  jobInsert,
  mustGet,
  pausedJob,
  runningJob,
  uniqueName,
  waitingJob,
} from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';
import { useStorage } from './context.js';

/** Registers the job insert/read tests. */
export function describeJobs(make: StorageMaker): void {
  describe('jobs: insert, get, list, counts', () => {
    const ctx = useStorage(make, 'conformance-jobs');

    it('reports its dialect and an integer clock close to the host clock', async () => {
      const s = ctx.s;
      assert.ok(['sqlite', 'postgres', 'mysql'].includes(s.dialect));
      const now = await s.clockNow();
      assert.ok(Number.isSafeInteger(now), `clockNow() = ${String(now)} is not an integer`);
      // A time-zone mix-up (e.g. MySQL NOW() read as UTC) shows as hours of difference.
      assert.ok(Math.abs(now - Date.now()) < 5_000, `clockNow() is ${now - Date.now()} ms off the host clock`);
    });

    it('inserts a job and reads every field back', async () => {
      const s = ctx.s;
      const job = jobInsert({
        type: uniqueName('type'),
        queue: uniqueName('q'),
        priority: -7,
        maxRetries: 0,
        argsJson: '{"b":1,  "a":[1,2,3]}',
        metaJson: '{"region":"us"}',
        timeoutMs: 30_000,
        uniqueKey: uniqueName('key'),
        tenant: 'tenant-a',
      });
      const t0 = await s.clockNow();
      const res = await s.jobInsertMany({ jobs: [job] });
      const t1 = await s.clockNow();
      assert.deepEqual(res, { inserted: [job.id], ids: [job.id] });
      const row = await mustGet(s, job.id);
      assertRowTypes(row);
      assertBetween(row.createdAt, t0, t1, 'createdAt');
      assertBetween(row.runAt, row.createdAt, t1, 'run_at of an undelayed job');
      assert.deepEqual(row, {
        id: job.id,
        type: job.type,
        queue: job.queue,
        status: 'pending',
        priority: -7,
        attempt: 0,
        maxRetries: 0,
        runCount: 0,
        argsJson: '{"b":1,  "a":[1,2,3]}',
        resultJson: null,
        metaJson: '{"region":"us"}',
        lastError: null,
        runAt: row.runAt,
        createdAt: row.createdAt,
        startedAt: null,
        completedAt: null,
        timeoutMs: 30_000,
        uniqueKey: job.uniqueKey,
        tenant: 'tenant-a',
        parentId: null,
        fanOutId: null,
        fanOutIndex: null,
        lockedBy: null,
        leaseExpiresAt: null,
        heartbeatAt: null,
        wakeAt: null,
        waitSignal: null,
        concurrencyKey: null,
        rateKey: null,
        limited: false,
        debounceKey: null,
        progressValue: null,
        progressMessage: null,
        progressAt: null,
      });
    });

    it('returns undefined for an unknown id and inserts nothing for an empty batch', async () => {
      const s = ctx.s;
      assert.equal(await s.jobGet({ id: '00000000-0000-7000-8000-000000000000' }), undefined);
      assert.deepEqual(await s.jobInsertMany({ jobs: [] }), { inserted: [], ids: [] });
    });

    it('reads jobs by id in one call: rows as jobGet returns them, missing ids left out', async () => {
      const s = ctx.s;
      const rows = [
        (await runningJob(s)).row,
        await completedJob(s),
        await failedJob(s),
        await cancelledJob(s),
        await pausedJob(s),
        (await waitingJob(s, {}, { waitSignal: 'go' })).row,
      ];
      const pending = await insertJob(s, { queue: uniqueName('q'), argsJson: '{"a":1}', metaJson: '{"m":true}' });
      const ids = [...rows.map((r) => r.id), pending];
      const missing = ['00000000-0000-7000-8000-000000000001', 'no-such-job', ''];
      const got = await s.jobGetMany({ ids: [missing[0]!, ...ids.slice(0, 3), missing[1]!, ...ids.slice(3), missing[2]!] });
      const byId = new Map(got.map((r) => [r.id, r]));
      assert.equal(got.length, ids.length, 'one row per job found');
      assert.deepEqual([...byId.keys()].sort(), [...ids].sort());
      for (const id of ids) assert.deepEqual(byId.get(id), await mustGet(s, id), `job ${id} reads as jobGet reads it`);
      for (const r of got) assertRowTypes(r);
      assert.deepEqual(await s.jobGetMany({ ids: missing }), []);
    });

    it('reads each job once when ids repeat, and nothing for an empty list', async () => {
      const s = ctx.s;
      const a = await insertJob(s, { queue: uniqueName('q') });
      const b = await insertJob(s, { queue: uniqueName('q') });
      const got = await s.jobGetMany({ ids: [a, b, a, a, 'missing', b, 'missing'] });
      assert.deepEqual(got.map((r) => r.id).sort(), [a, b].sort());
      assert.deepEqual(await s.jobGetMany({ ids: [] }), []);
    });

    it('reads 5,000 jobs by id, and 5,000 found among 12,000 ids', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const jobs = Array.from({ length: 5_000 }, (_, i) => jobInsert({ queue: q, argsJson: `{"i":${i}}` }));
      await s.jobInsertMany({ jobs });
      const ids = jobs.map((j) => j.id);
      const all = await s.jobGetMany({ ids });
      assert.equal(all.length, 5_000);
      assert.deepEqual(all.map((r) => r.id).sort(), [...ids].sort());
      const args = new Map(jobs.map((j) => [j.id, j.argsJson]));
      assert.ok(all.every((r) => r.argsJson === args.get(r.id) && r.queue === q && r.status === 'pending'), 'rows carry their own columns');
      // Found ids interleaved with 7,000 missing ones (a long list the driver may split).
      const mixed = ids.flatMap((id, i) => (i < 3_500 ? [id, `${id}-gone-a`, `${id}-gone-b`] : [id]));
      assert.equal(mixed.length, 12_000);
      const found = await s.jobGetMany({ ids: mixed });
      assert.equal(found.length, 5_000);
      assert.equal(new Set(found.map((r) => r.id)).size, 5_000, 'no job read twice');
    });

    it('stores payloads byte for byte (key order, spacing, unicode, escapes, big numbers)', async () => {
      const s = ctx.s;
      const payloads = [
        '{"z":1,"a":2}',
        '{ "a" : 1 }',
        '"é€😀\\u2028\\n\\"q\\""',
        '[12345678901234567890, 1.0, 1e400, -0]',
        '{"a":{"a":{"a":[]}}}',
        'null',
        '""',
      ];
      const jobs = payloads.map((p, i) => jobInsert({ queue: uniqueName('q'), argsJson: p, metaJson: payloads[payloads.length - 1 - i] ?? null }));
      await s.jobInsertMany({ jobs });
      for (const [i, j] of jobs.entries()) {
        const row = await mustGet(s, j.id);
        assert.equal(row.argsJson, payloads[i]);
        assert.equal(row.metaJson, payloads[payloads.length - 1 - i]);
      }
    });

    it('stores a payload of the default 1 MiB limit, multi-byte characters included', async () => {
      const s = ctx.s;
      const big = bigJson(DEFAULT_MAX_PAYLOAD_BYTES);
      const id = await insertJob(s, { queue: uniqueName('q'), argsJson: big, metaJson: big });
      const row = await mustGet(s, id);
      assert.ok(row.argsJson === big, 'argsJson changed in the round trip');
      assert.ok(row.metaJson === big, 'metaJson changed in the round trip');
    });

    it('inserts nothing when a batch fails on its last row (atomic batch)', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const jobs = Array.from({ length: 300 }, () => jobInsert({ queue: q }));
      jobs.push(jobInsert({ queue: q, id: jobs[0]!.id }));
      await assert.rejects(s.jobInsertMany({ jobs }), StorageError, 'a primary-key clash is a StorageError');
      assert.deepEqual(await s.jobList({ queue: q, limit: 1_000 }), []);
    });

    it('inserts a batch of 5,000 jobs with one run_at and claims them in batch order', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const jobs = Array.from({ length: 5_000 }, (_, i) => jobInsert({ queue: q, argsJson: `{"i":${i}}`, metaJson: '{}', tenant: 't', uniqueKey: `${q}:${i}` }));
      const res = await s.jobInsertMany({ jobs });
      assert.deepEqual(res.inserted, jobs.map((j) => j.id));
      const rows = await s.jobList({ queue: q, limit: 10_000 });
      assert.equal(rows.length, 5_000);
      const runAts = new Set(rows.map((r) => r.runAt)).size;
      assert.equal(runAts, 1, `one batch has ${runAts} different run_at values (one "now" per batch)`);
      assert.equal(new Set(rows.map((r) => r.createdAt)).size, 1, 'one batch, one created_at');
      const claimed = await s.jobClaim({ workerId: 'w', queues: [{ name: q, limit: 5_000 }], leaseMs: 60_000 });
      assert.equal(claimed.length, 5_000);
      const firstOutOfOrder = claimed.findIndex((r, i) => r.id !== jobs[i]!.id);
      assert.equal(firstOutOfOrder, -1, `claim order departs from batch order at index ${firstOutOfOrder}`);
    });

    it('computes run_at = max(now + delayMs, runAt)', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const t0 = await s.clockNow();
      const delayed = jobInsert({ queue: q, delayMs: 5_000 });
      const future = jobInsert({ queue: q, runAt: t0 + 20_000 });
      const past = jobInsert({ queue: q, runAt: t0 - 60_000 });
      const both = jobInsert({ queue: q, delayMs: 60_000, runAt: t0 + 1_000 });
      const both2 = jobInsert({ queue: q, delayMs: 1_000, runAt: t0 + 90_000 });
      await s.jobInsertMany({ jobs: [delayed, future, past, both, both2] });
      const t1 = await s.clockNow();
      assertBetween((await mustGet(s, delayed.id)).runAt, t0 + 5_000, t1 + 5_000, 'delayed run_at');
      assert.equal((await mustGet(s, future.id)).runAt, t0 + 20_000);
      assertBetween((await mustGet(s, past.id)).runAt, t0, t1, 'run_at of a job whose runAt passed');
      assertBetween((await mustGet(s, both.id)).runAt, t0 + 60_000, t1 + 60_000, 'run_at when the delay wins');
      assert.equal((await mustGet(s, both2.id)).runAt, t0 + 90_000, 'run_at when runAt wins');
    });

    it('gives every job of one batch the same run_at and keeps tenant, timeout and priority per job', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const jobs = [0, 1, 2, 3].map((i) => jobInsert({ queue: q, priority: i, tenant: `t${i}`, timeoutMs: 1_000 + i }));
      await s.jobInsertMany({ jobs });
      const rows = await Promise.all(jobs.map((j) => mustGet(s, j.id)));
      assert.equal(new Set(rows.map((r) => r.runAt)).size, 1, 'one batch, one run_at');
      rows.forEach((r, i) => {
        assert.equal(r.priority, i);
        assert.equal(r.tenant, `t${i}`);
        assert.equal(r.timeoutMs, 1_000 + i);
      });
    });

    it('lists jobs by filters, newest first by default, with limit, offset and asc order', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const typeA = uniqueName('ta');
      const typeB = uniqueName('tb');
      const jobs = [0, 1, 2, 3, 4].map((i) => jobInsert({ queue: q, type: i % 2 === 0 ? typeA : typeB }));
      await s.jobInsertMany({ jobs });
      const ids = jobs.map((j) => j.id);
      const byQueue = await s.jobList({ queue: q, limit: 100 });
      assert.deepEqual(byQueue.map((r) => r.id), [...ids].reverse(), 'newest first');
      const asc = await s.jobList({ queue: q, limit: 100, order: 'asc' });
      assert.deepEqual(asc.map((r) => r.id), ids);
      const page = await s.jobList({ queue: q, limit: 2, afterId: ids[0]!, order: 'asc' });
      assert.deepEqual(page.map((r) => r.id), ids.slice(1, 3));
      const ofA = await s.jobList({ type: typeA, limit: 100, order: 'asc' });
      assert.deepEqual(ofA.map((r) => r.id), [ids[0], ids[2], ids[4]]);
      await s.jobCancel({ id: ids[1]! });
      const cancelled = await s.jobList({ queue: q, statuses: ['cancelled'], limit: 100 });
      assert.deepEqual(cancelled.map((r) => r.id), [ids[1]]);
      const pendingB = await s.jobList({ queue: q, type: typeB, statuses: ['pending'], limit: 100 });
      assert.deepEqual(pendingB.map((r) => r.id), [ids[3]]);
      assert.deepEqual(await s.jobList({ queue: uniqueName('q'), limit: 10 }), []);
      for (const r of byQueue) assertRowTypes(r);
    });

    it('counts jobs by status, per queue and over all queues', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const empty = await s.jobCountByStatus({ queue: q });
      assert.deepEqual(Object.keys(empty).sort(), [...JOB_STATUSES].sort());
      for (const st of JOB_STATUSES) assert.equal(empty[st], 0);
      // Each helper claims from q, so q must hold no other ready job meanwhile.
      await completedJob(s, { queue: q });
      await failedJob(s, { queue: q });
      await waitingJob(s, { queue: q }, { waitSignal: 'x' });
      await cancelledJob(s, { queue: q });
      await pausedJob(s, { queue: q });
      await s.jobInsertMany({ jobs: [jobInsert({ queue: q }), jobInsert({ queue: q }), jobInsert({ queue: q })] });
      await claimOne(s, q);
      const counts = await s.jobCountByStatus({ queue: q });
      assert.deepEqual(counts, { pending: 2, running: 1, waiting: 1, completed: 1, failed: 1, cancelled: 1, paused: 1 });
      for (const v of Object.values(counts)) assert.equal(typeof v, 'number');
      const all = await s.jobCountByStatus({});
      for (const st of JOB_STATUSES) assert.ok(all[st] >= counts[st], `all-queue ${st} count ${all[st]} < ${counts[st]}`);
    });

    it('delivers a wake-up to listeners when jobs are inserted (drivers with listen())', async (t) => {
      const s = ctx.s;
      if (!s.listen) {
        t.skip('driver has no listen(): wake-ups come from dataVersion() or the poll interval');
        return;
      }
      const other = await ctx.ts.another();
      assert.ok(other.listen, 'another instance of a listen() driver has listen()');
      const woken: string[] = [];
      const unlisten = await other.listen((queue) => woken.push(queue));
      try {
        const q = uniqueName('q');
        await insertJob(s, { queue: q });
        await waitFor(() => woken.includes(q), { timeout: 5_000, message: 'listener woken' });
      } finally {
        await unlisten();
      }
    });
  });

  describe('jobs: unique keys', () => {
    const ctx = useStorage(make, 'conformance-unique');

    it('rejects a second non-terminal job with the same key with DuplicateJobError', async () => {
      const s = ctx.s;
      const key = uniqueName('key');
      const first = await insertJob(s, { queue: uniqueName('q'), uniqueKey: key });
      const dup = jobInsert({ queue: uniqueName('q'), uniqueKey: key });
      await assert.rejects(s.jobInsertMany({ jobs: [dup] }), (e) => e instanceof DuplicateJobError && e.uniqueKey === key);
      assert.equal(await s.jobGet({ id: dup.id }), undefined);
      assert.equal((await mustGet(s, first)).status, 'pending');
      // Jobs without a key never clash.
      await s.jobInsertMany({ jobs: [jobInsert(), jobInsert()] });
    });

    it("rejects a whole batch on a clash with onConflict 'error' (existing row or within the batch)", async () => {
      const s = ctx.s;
      const key = uniqueName('key');
      await insertJob(s, { uniqueKey: key });
      const batch = [jobInsert(), jobInsert({ uniqueKey: key }), jobInsert()];
      await assert.rejects(s.jobInsertMany({ jobs: batch, onConflict: 'error' }), DuplicateJobError);
      for (const j of batch) assert.equal(await s.jobGet({ id: j.id }), undefined, 'nothing of the batch is inserted');

      const key2 = uniqueName('key');
      const inner = [jobInsert(), jobInsert({ uniqueKey: key2 }), jobInsert({ uniqueKey: key2 })];
      await assert.rejects(s.jobInsertMany({ jobs: inner }), (e) => e instanceof DuplicateJobError && e.uniqueKey === key2);
      for (const j of inner) assert.equal(await s.jobGet({ id: j.id }), undefined, 'nothing of the batch is inserted');
    });

    it("skips clashing jobs with onConflict 'skip' and inserts the others", async () => {
      const s = ctx.s;
      const key = uniqueName('key');
      const key2 = uniqueName('key');
      const existing = await insertJob(s, { uniqueKey: key });
      const a = jobInsert();
      const clash = jobInsert({ uniqueKey: key });
      const b = jobInsert({ uniqueKey: key2 });
      const b2 = jobInsert({ uniqueKey: key2 });
      const c = jobInsert();
      const res = await s.jobInsertMany({ jobs: [a, clash, b, b2, c], onConflict: 'skip' });
      assert.deepEqual(res.inserted, [a.id, b.id, c.id]);
      assert.equal(await s.jobGet({ id: clash.id }), undefined);
      assert.equal(await s.jobGet({ id: b2.id }), undefined);
      assert.equal((await mustGet(s, existing)).uniqueKey, key);
      assert.equal((await mustGet(s, b.id)).uniqueKey, key2);
    });

    it('compares keys exactly: case and trailing spaces make different keys', async () => {
      const s = ctx.s;
      const base = uniqueName('Key');
      const variants = [base, base.toLowerCase(), base.toUpperCase(), `${base} `, `${base}é`, `${base}e`];
      const res = await s.jobInsertMany({ jobs: variants.map((k) => jobInsert({ uniqueKey: k })) });
      assert.equal(res.inserted.length, variants.length);
      for (const id of res.inserted) assert.equal((await mustGet(s, id)).uniqueKey, variants[res.inserted.indexOf(id)]);
    });

    it('holds the key while the job is pending, running, waiting or paused', async () => {
      const s = ctx.s;
      const holders = {
        pending: async (key: string) => insertJob(s, { uniqueKey: key }),
        running: async (key: string) => (await runningJob(s, { uniqueKey: key })).row.id,
        waiting: async (key: string) => (await waitingJob(s, { uniqueKey: key }, { waitSignal: 'x' })).row.id,
        paused: async (key: string) => (await pausedJob(s, { uniqueKey: key })).id,
      };
      for (const [status, hold] of Object.entries(holders)) {
        const key = uniqueName('key');
        const id = await hold(key);
        assert.equal((await mustGet(s, id)).status, status);
        await assert.rejects(s.jobInsertMany({ jobs: [jobInsert({ uniqueKey: key })] }), DuplicateJobError, `key held while ${status}`);
      }
    });

    it('frees the key once the job is completed, failed or cancelled', async () => {
      const s = ctx.s;
      const enders = {
        completed: (key: string) => completedJob(s, { uniqueKey: key }),
        failed: (key: string) => failedJob(s, { uniqueKey: key }),
        cancelled: (key: string) => cancelledJob(s, { uniqueKey: key }),
      };
      for (const [status, end] of Object.entries(enders)) {
        const key = uniqueName('key');
        const first = await end(key);
        assert.equal(first.status, status);
        const again = await insertJob(s, { uniqueKey: key });
        assert.equal((await mustGet(s, again)).uniqueKey, key, `key free again after ${status}`);
        // ... and held again by the new job.
        await assert.rejects(s.jobInsertMany({ jobs: [jobInsert({ uniqueKey: key })] }), DuplicateJobError);
        // The terminal job keeps its key for display.
        assert.equal((await mustGet(s, first.id)).uniqueKey, key);
      }
    });

    it('creates exactly one row for 20 concurrent inserts of one key from separate instances', async () => {
      const key = uniqueName('key');
      const type = uniqueName('type');
      const all = await instances(ctx.ts, 20);
      const results = await Promise.allSettled(all.map((inst) => inst.jobInsertMany({ jobs: [jobInsert({ type, uniqueKey: key })] })));
      const ok = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (const r of rejected) assert.ok(r.reason instanceof DuplicateJobError, `unexpected rejection: ${String(r.reason)}`);
      assert.equal(ok.length, 1, `${ok.length} inserts succeeded`);
      assert.equal((await ctx.s.jobList({ type, limit: 100 })).length, 1);

      // The same race with onConflict 'skip': no errors, one row.
      const key2 = uniqueName('key');
      const type2 = uniqueName('type');
      const skipped = await Promise.all(all.map((inst) => inst.jobInsertMany({ jobs: [jobInsert({ type: type2, uniqueKey: key2 })], onConflict: 'skip' })));
      assert.equal(skipped.reduce((n, r) => n + r.inserted.length, 0), 1);
      assert.equal((await ctx.s.jobList({ type: type2, limit: 100 })).length, 1);
    });
  });
}
