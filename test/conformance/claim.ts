/**
 * Conformance: claiming — the fields a claim sets, order (priority, run_at, id), delays, limits,
 * several queues per call, paused queues and jobs, and concurrent claimers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobRow } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import { assertBetween, assertRowTypes, claim, insertJob, instances, jobInsert, mustGet, uniqueName, waitingJob } from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';
import { useStorage } from './context.js';

/** Registers the claim tests. */
export function describeClaim(make: StorageMaker): void {
  describe('claim', () => {
    const ctx = useStorage(make, 'conformance-claim');

    it('turns a pending job running with attempt, run count, owner, start, heartbeat and lease', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const id = await insertJob(s, { queue: q, argsJson: '{"x":1}' });
      const t0 = await s.clockNow();
      const rows = await s.jobClaim({ workerId: 'worker-1', queues: [{ name: q, limit: 10 }], leaseMs: 12_345 });
      const t1 = await s.clockNow();
      assert.equal(rows.length, 1);
      const row = rows[0]!;
      assertRowTypes(row);
      assert.equal(row.id, id);
      assert.equal(row.status, 'running');
      assert.equal(row.attempt, 1);
      assert.equal(row.runCount, 1);
      assert.equal(row.lockedBy, 'worker-1');
      assert.equal(row.argsJson, '{"x":1}');
      assertBetween(row.startedAt, t0, t1, 'startedAt');
      assert.equal(row.heartbeatAt, row.startedAt, 'heartbeat_at = now = started_at');
      assert.equal(row.leaseExpiresAt, row.startedAt! + 12_345, 'lease_expires_at = now + leaseMs');
      assert.deepEqual(await mustGet(s, id), row, 'the returned row is the stored row');
      assert.deepEqual(await claim(s, q, 10), [], 'a running job is not claimed again');
    });

    it('returns nothing from an empty or unknown queue', async () => {
      assert.deepEqual(await claim(ctx.s, uniqueName('q'), 5), []);
    });

    it('matches queue names exactly (case-sensitive)', async () => {
      const s = ctx.s;
      const q = uniqueName('Queue');
      const upper = await insertJob(s, { queue: q });
      const lower = await insertJob(s, { queue: q.toLowerCase() });
      assert.deepEqual((await claim(s, q.toLowerCase(), 10)).map((r) => r.id), [lower]);
      assert.deepEqual((await claim(s, q, 10)).map((r) => r.id), [upper]);
    });

    it('claims by priority, highest first', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const low = await insertJob(s, { queue: q, priority: -5 });
      const mid = await insertJob(s, { queue: q, priority: 0 });
      const high1 = await insertJob(s, { queue: q, priority: 10 });
      const high2 = await insertJob(s, { queue: q, priority: 10 });
      const top = await insertJob(s, { queue: q, priority: 1_000 });
      const rows = await claim(s, q, 10);
      assert.deepEqual(rows.map((r) => r.id), [top, high1, high2, mid, low]);
    });

    it('claims equal priorities first-in first-out, across inserts and within one batch', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const a = await insertJob(s, { queue: q });
      const batch = [0, 1, 2, 3, 4].map((i) => jobInsert({ queue: q, fanOutIndex: null, argsJson: String(i) }));
      await s.jobInsertMany({ jobs: batch });
      const z = await insertJob(s, { queue: q });
      const order: string[] = [];
      for (;;) {
        const rows = await claim(s, q, 1);
        if (rows.length === 0) break;
        order.push(rows[0]!.id);
      }
      assert.deepEqual(order, [a, ...batch.map((j) => j.id), z]);
    });

    it('orders by run_at before id: an older id that became ready later runs later', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const t0 = await s.clockNow();
      const later = await insertJob(s, { queue: q, runAt: t0 + 150 });
      const sooner = await insertJob(s, { queue: q });
      await waitFor(async () => (await s.clockNow()) >= t0 + 150, { timeout: 5_000 });
      const rows = await claim(s, q, 10);
      assert.deepEqual(rows.map((r) => r.id), [sooner, later]);
    });

    it('does not claim a delayed job before its run_at, and claims it after', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const delayed = jobInsert({ queue: q, delayMs: 300 });
      const t0 = await s.clockNow();
      const absolute = jobInsert({ queue: q, runAt: t0 + 300 });
      const far = jobInsert({ queue: q, delayMs: 3_600_000 });
      await s.jobInsertMany({ jobs: [delayed, absolute, far] });
      // Nothing is claimable yet (unless the machine stalled past run_at: the check below holds anyway).
      const got: JobRow[] = [];
      await waitFor(
        async () => {
          got.push(...(await claim(s, q, 10)));
          return got.length >= 2;
        },
        { timeout: 5_000, message: 'delayed jobs claimed' },
      );
      assert.deepEqual(got.map((r) => r.id).sort(), [delayed.id, absolute.id].sort());
      for (const r of got) assert.ok(r.startedAt! >= r.runAt, `claimed at ${r.startedAt}, before its run_at ${r.runAt}`);
      assert.ok(got.every((r) => r.runAt >= t0 + 300), 'run_at honours the delay');
      assert.deepEqual(await claim(s, q, 10), [], 'the job delayed by an hour stays');
    });

    it('claims at most limit jobs per queue', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const jobs = [0, 1, 2, 3, 4].map(() => jobInsert({ queue: q }));
      await s.jobInsertMany({ jobs });
      const first = await claim(s, q, 2);
      const second = await claim(s, q, 2);
      const third = await claim(s, q, 2);
      assert.deepEqual(first.map((r) => r.id), [jobs[0]!.id, jobs[1]!.id]);
      assert.deepEqual(second.map((r) => r.id), [jobs[2]!.id, jobs[3]!.id]);
      assert.deepEqual(third.map((r) => r.id), [jobs[4]!.id]);
    });

    it('claims from several queues in one call, each with its own limit, and no other queue', async () => {
      const s = ctx.s;
      const q1 = uniqueName('q');
      const q2 = uniqueName('q');
      const q3 = uniqueName('q');
      const j1 = [0, 1, 2].map(() => jobInsert({ queue: q1 }));
      const j2 = [0, 1, 2].map(() => jobInsert({ queue: q2 }));
      const j3 = [jobInsert({ queue: q3 })];
      await s.jobInsertMany({ jobs: [...j1, ...j2, ...j3] });
      const rows = await s.jobClaim({ workerId: 'w', queues: [{ name: q1, limit: 2 }, { name: q2, limit: 1 }], leaseMs: 60_000 });
      assert.deepEqual(rows.filter((r) => r.queue === q1).map((r) => r.id), [j1[0]!.id, j1[1]!.id]);
      assert.deepEqual(rows.filter((r) => r.queue === q2).map((r) => r.id), [j2[0]!.id]);
      assert.equal(rows.length, 3);
      assert.equal((await mustGet(s, j3[0]!.id)).status, 'pending');
    });

    it('skips a paused queue, also within a multi-queue claim, until it is resumed', async () => {
      const s = ctx.s;
      const q1 = uniqueName('q');
      const q2 = uniqueName('q');
      const a = await insertJob(s, { queue: q1 });
      const b = await insertJob(s, { queue: q2 });
      await s.queueSetPaused({ queue: q1, paused: true });
      const rows = await s.jobClaim({ workerId: 'w', queues: [{ name: q1, limit: 5 }, { name: q2, limit: 5 }], leaseMs: 60_000 });
      assert.deepEqual(rows.map((r) => r.id), [b]);
      assert.deepEqual(await claim(s, q1, 5), []);
      assert.equal((await mustGet(s, a)).status, 'pending');
      await s.queueSetPaused({ queue: q1, paused: false });
      assert.deepEqual((await claim(s, q1, 5)).map((r) => r.id), [a]);
    });

    it('does not claim paused or waiting jobs', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const paused = await insertJob(s, { queue: q });
      await s.jobPause({ id: paused });
      const { row: waiting } = await waitingJob(s, { queue: q }, { waitSignal: 'never' });
      assert.deepEqual(await claim(s, q, 10), []);
      assert.equal((await mustGet(s, waiting.id)).status, 'waiting');
      await s.jobResume({ id: paused });
      assert.deepEqual((await claim(s, q, 10)).map((r) => r.id), [paused]);
    });

    it('never gives one job to two concurrent claimers, under concurrent inserts', async () => {
      const s = ctx.s;
      const q = uniqueName('q');
      const initial = Array.from({ length: 150 }, () => jobInsert({ queue: q }));
      await s.jobInsertMany({ jobs: initial });
      const claimers = await instances(ctx.ts, 6);
      const claimed = new Map<string, string>();
      const dupes: string[] = [];
      let inserting = true;
      const extra: string[] = [];
      const inserter = (async () => {
        for (let i = 0; i < 10; i++) {
          const batch = Array.from({ length: 5 }, () => jobInsert({ queue: q }));
          await claimers[i % claimers.length]!.jobInsertMany({ jobs: batch });
          extra.push(...batch.map((j) => j.id));
        }
        inserting = false;
      })();
      const limit = 7;
      await Promise.all(
        claimers.map(async (inst, i) => {
          const workerId = `claimer-${i}`;
          for (let round = 0; round < 1_000; round++) {
            const rows = await inst.jobClaim({ workerId, queues: [{ name: q, limit }], leaseMs: 60_000 });
            assert.ok(rows.length <= limit, `claimed ${rows.length} > limit ${limit}`);
            for (const r of rows) {
              if (claimed.has(r.id)) dupes.push(r.id);
              claimed.set(r.id, workerId);
              assert.equal(r.lockedBy, workerId);
            }
            if (rows.length === 0 && !inserting && (await inst.jobCountByStatus({ queue: q })).pending === 0) return;
          }
          throw new Error(`${workerId} did not drain the queue`);
        }),
      );
      await inserter;
      assert.deepEqual(dupes, [], 'jobs claimed twice');
      assert.equal(claimed.size, 200);
      for (const j of [...initial.map((x) => x.id), ...extra]) assert.ok(claimed.has(j), `job ${j} never claimed`);
      const rows = await s.jobList({ queue: q, limit: 1_000 });
      for (const r of rows) {
        assert.equal(r.status, 'running');
        assert.equal(r.runCount, 1, `job ${r.id} claimed ${r.runCount} times`);
        assert.equal(r.lockedBy, claimed.get(r.id), `job ${r.id} owned by ${r.lockedBy}, claimed by ${claimed.get(r.id)}`);
      }
    });
  });
}
