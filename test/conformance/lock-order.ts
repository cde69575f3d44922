/**
 * Conformance: the writers that touch both job rows and fan-out rows — reclaims of expired
 * fan-out children (some failing, some with a subtree of their own), finishes of their siblings
 * that decide the fan-out and cancel the dying ones, and cancels of whole trees — racing on
 * several storage instances. Every transaction takes its locks in the driver's one lock order,
 * so none of them fails, and every child is counted once, by its final outcome.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideFanOut } from '../../src/storage/fan-out-rules.js';
import type { FanOutRow, Fence, Storage } from '../../src/storage/storage.js';
import type { StorageMaker, TestStorage } from '../helpers/storages.js';
import { applied, claim, claimOne, fenceOf, instances, jobInsert, mustGet, newId, runningJob, stepRow, suspendIntoFanOut, uniqueName, waitForClockPast } from '../helpers/factories.js';
import { useStorage } from './context.js';
import { finish } from './fan-out-helpers.js';
import { expectCountsMatchChildren } from './fan-out-retry.js';

/** Children per tree and what each is for. */
const DOOMED = [0, 1, 2]; // claimed with a lease that expires: c0, c1 fail on reclaim (no retries), c2 goes back to pending
const STRATEGIES: FanOutRow['strategy'][] = ['fail-fast', 'threshold', 'collect-all'];

/**
 * A parent waiting on a fan-out F of 6 children, where c0 already resumed from its own fan-out
 * G (g0 completed, g1 pending). c0, c1 and c2 are claimed later with an expiring lease; c3, c4
 * and c5 are running under a live lease.
 */
interface RaceTree {
  parentId: string;
  fanOutId: string;
  childQueue: string;
  kids: string[];
  subFanOutId: string;
  live: Fence[];
}

async function makeRaceTree(s: Storage, strategy: FanOutRow['strategy']): Promise<RaceTree> {
  const { fence } = await runningJob(s, { type: 'parent' });
  const fanOutId = newId();
  const childQueue = uniqueName('race');
  const children = [0, 0, 1, 0, 0, 0].map((maxRetries, i) => jobInsert({ type: 'child', queue: childQueue, parentId: fence.jobId, fanOutId, fanOutIndex: i, maxRetries }));
  const ok = await s.jobSuspendFanOut({
    fence,
    step: stepRow(fence.jobId, 0, { stepName: 'fan-out', outputJson: JSON.stringify(fanOutId) }),
    fanOut: { id: fanOutId, strategy, threshold: strategy === 'threshold' ? 0.5 : null, timeoutMs: null },
    children,
  });
  assert.equal(ok, true);
  const kids = children.map((c) => c.id);
  // c0 fans out to G (need 1 of 2): g0 completes, which resumes c0; g1 stays pending.
  const c0 = await claimOne(s, childQueue, kids[0]);
  const sub = await suspendIntoFanOut(s, fenceOf(c0), { n: 2, strategy: 'threshold', threshold: 0.5 });
  await finish(s, fenceOf(await claimOne(s, sub.childQueue, sub.childIds[0])), 'completed');
  assert.equal((await mustGet(s, kids[0]!)).status, 'pending', 'c0 resumed from its own fan-out');
  const live = (await s.jobClaim({ workerId: 'live', queues: [{ name: childQueue, limit: 6 }], leaseMs: 600_000 })).filter((r) => !DOOMED.includes(r.fanOutIndex!));
  // The claim above took c0..c5; hand c0..c2 back so they can be claimed with an expiring lease.
  const all = await s.jobList({ fanOutId, limit: 10, order: 'asc' });
  const back = all.filter((r) => DOOMED.includes(r.fanOutIndex!)).map((r) => fenceOf(r));
  assert.equal((await s.jobRelease({ runs: back })).length, 3);
  return { parentId: fence.jobId, fanOutId, childQueue, kids, subFanOutId: sub.fanOutId, live: live.map(fenceOf) };
}

/**
 * Twelve {@link RaceTree}s (fail-fast, threshold and collect-all) whose doomed children's leases
 * have expired, then at once on six more instances: three reclaimers (limit 2, so reclaims span
 * trees), c3 failing in every tree, c4 and c5 completing two trees per call, and every third tree
 * cancelled whole. Afterwards what is left pending runs and completes, and every fan-out must
 * count each child once, by its final outcome, and be decided. Any error fails the race.
 */
export async function raceReclaimsFinishesCancels(ts: TestStorage): Promise<void> {
  const s = ts.storage;
  const trees: RaceTree[] = [];
  for (let i = 0; i < 12; i++) trees.push(await makeRaceTree(s, STRATEGIES[i % STRATEGIES.length]!));
  // The doomed children of every tree: one claim each, so their leases expire together.
  let expiry = 0;
  for (const t of trees) {
    const rows = await claim(s, t.childQueue, 3, { workerId: 'doomed', leaseMs: 1 });
    assert.deepEqual(rows.map((r) => r.id), t.kids.slice(0, 3));
    expiry = Math.max(expiry, rows[0]!.leaseExpiresAt!);
  }
  await waitForClockPast(s, expiry);

  const [r1, r2, r3, fx, fy, cz] = await instances(ts, 6);
  const doomed = new Set(trees.flatMap((t) => t.kids.slice(0, 3)));
  const reclaimed = new Set<string>();
  const reclaimer = async (r: Storage): Promise<void> => {
    for (let idle = 0; idle < 3; ) {
      const got = await r.jobReclaimExpired({ limit: 2 });
      for (const j of got) {
        assert.ok(!reclaimed.has(j.id), `job ${j.id} reclaimed twice`);
        reclaimed.add(j.id);
      }
      idle = got.length === 0 ? idle + 1 : 0;
    }
  };
  await Promise.all([
    reclaimer(r1!),
    reclaimer(r2!),
    reclaimer(r3!),
    // c3 fails (deciding fail-fast and threshold fan-outs failed, cancelling the doomed ones).
    (async () => {
      for (const t of trees) applied(await fx!.jobFinishMany({ items: [{ ...t.live[0]!, outcome: 'failed', error: 'c3' }] }));
    })(),
    // c4 and c5 complete, two trees per call.
    (async () => {
      for (let i = 0; i < trees.length; i += 2) {
        const items = trees.slice(i, i + 2).flatMap((t) => t.live.slice(1).map((f) => ({ ...f, outcome: 'completed' as const, resultJson: '1' })));
        await fy!.jobFinishMany({ items });
      }
    })(),
    // Every third tree is cancelled whole.
    (async () => {
      for (const t of trees.filter((_, i) => i % 3 === 1)) await cz!.jobCancel({ id: t.parentId });
    })(),
  ]);
  for (const id of reclaimed) assert.ok(doomed.has(id), `a job that was not expired was reclaimed: ${id}`);

  // Whatever is left pending (c2 back from its reclaim, g1 of an undecided G) runs and completes.
  for (const t of trees) {
    for (const q of [t.childQueue, ...(await s.jobList({ fanOutId: t.subFanOutId, limit: 10 })).map((g) => g.queue)]) {
      for (const row of await claim(s, q, 10)) await finish(s, fenceOf(row), 'completed');
    }
  }
  for (const t of trees) {
    for (const id of [t.fanOutId, t.subFanOutId]) {
      const f = await expectCountsMatchChildren(s, id);
      const kids = await s.jobList({ fanOutId: id, limit: 10 });
      assert.deepEqual(kids.filter((k) => !['completed', 'failed', 'cancelled'].includes(k.status)).map((k) => k.status), [], `fan-out ${id}: every child ended`);
      assert.notEqual(f.status, 'running', `fan-out ${id} (${f.strategy}) is decided once every child ended`);
      if (f.strategy === 'fail-fast') assert.equal(f.status, f.failed + f.cancelled > 0 ? 'failed' : 'succeeded');
      if (f.strategy === 'collect-all') assert.equal(f.status, 'succeeded');
      if (f.strategy === 'threshold' && f.status === 'succeeded') assert.equal(decideFanOut({ ...f, failed: 0, cancelled: 0 }), 'succeeded', 'a threshold fan-out succeeded with enough successes');
    }
    const parent = await mustGet(s, t.parentId);
    assert.ok(['pending', 'cancelled'].includes(parent.status), `parent ${t.parentId} is ${parent.status}`);
  }
}

/** Registers the lock-order race tests. */
export function describeLockOrder(make: StorageMaker): void {
  describe('fan-outs: reclaims, finishes and cancels racing on several instances', () => {
    const ctx = useStorage(make, 'conformance-lock-order');

    it('none fails, and every fan-out counts each child once, by its final outcome', async () => {
      await raceReclaimsFinishesCancels(ctx.ts);
    });
  });
}
