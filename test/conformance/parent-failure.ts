/**
 * Conformance: a job that fails with fan-out children (a `failed` outcome of `jobFinishMany`,
 * or `jobReclaimExpired` with its attempts spent) cancels its unfinished subtree in the same
 * transaction, with the same fan-out accounting as `jobCancel`; completing, retrying or a stale
 * fence leaves the children alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Fence, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import { applied, claim, claimOne, fanOutParent, fenceOf, mustGet, reclaimUntil, suspendIntoFanOut, type FanOutSetup } from '../helpers/factories.js';
import { useStorage } from './context.js';
import { expectFanOut, finish } from './fan-out-helpers.js';

/**
 * A running parent P whose threshold fan-out F (need 2 of 6) already succeeded, with the rest
 * of its subtree unfinished:
 * - c0, c1 completed (they decided F and woke P); c2 running; c4 pending; c5 paused;
 * - c3 waiting on its own fail-fast fan-out G of 3: g0 running, g1 completed, g2 pending.
 * P was claimed again after the wake-up and holds `parent`.
 */
interface Tree {
  parentId: string;
  parent: Fence;
  /** The stale fence of P's run that suspended into F. */
  staleParent: Fence;
  f: FanOutSetup;
  g: FanOutSetup;
  /** Fences of c2 and g0 (still running). */
  c2: Fence;
  g0: Fence;
}

async function makeTree(s: Storage, opts: { maxRetries?: number; parentLeaseMs?: number } = {}): Promise<Tree> {
  const p = await fanOutParent(s, { n: 6, strategy: 'threshold', threshold: 0.3 }, { maxRetries: opts.maxRetries ?? 3 });
  const [c0, c1, c2, c3] = (await claim(s, p.childQueue, 4)).map(fenceOf);
  assert.deepEqual([c0, c1, c2, c3].map((c) => c?.jobId), p.childIds.slice(0, 4), 'children are claimed in fan-out order');
  const g = await suspendIntoFanOut(s, c3!, { n: 3, strategy: 'fail-fast' });
  const [g0, g1] = (await claim(s, g.childQueue, 2)).map(fenceOf);
  await finish(s, g1!, 'completed');
  await s.jobPause({ id: p.childIds[5]! });
  await finish(s, c0!, 'completed');
  await finish(s, c1!, 'completed');
  await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 2, failed: 0, cancelled: 0 });
  const resumed = await claimOne(s, p.queue, p.parentId, opts.parentLeaseMs === undefined ? {} : { leaseMs: opts.parentLeaseMs });
  return { parentId: p.parentId, parent: fenceOf(resumed), staleParent: p.fence, f: p, g, c2: c2!, g0: g0! };
}

/** Asserts every job's status, by id. */
async function expectStatuses(s: Storage, expected: Record<string, string>): Promise<void> {
  const actual: Record<string, string> = {};
  for (const id of Object.keys(expected)) actual[id] = (await mustGet(s, id)).status;
  assert.deepEqual(actual, expected);
}

/** The tree's statuses when nothing was cancelled (P as given). */
function untouched(t: Tree, parentStatus: string): Record<string, string> {
  const [c0, c1, c2, c3, c4, c5] = t.f.childIds;
  const [g0, g1, g2] = t.g.childIds;
  return {
    [t.parentId]: parentStatus,
    [c0!]: 'completed',
    [c1!]: 'completed',
    [c2!]: 'running',
    [c3!]: 'waiting',
    [c4!]: 'pending',
    [c5!]: 'paused',
    [g0!]: 'running',
    [g1!]: 'completed',
    [g2!]: 'pending',
  };
}

/** Asserts the tree after P failed: its unfinished descendants cancelled and accounted, nothing resumed. */
async function expectSubtreeCancelled(s: Storage, t: Tree): Promise<void> {
  const [c0, c1, c2, c3, c4, c5] = t.f.childIds;
  const [g0, g1, g2] = t.g.childIds;
  await expectStatuses(s, {
    [t.parentId]: 'failed',
    [c0!]: 'completed',
    [c1!]: 'completed',
    [c2!]: 'cancelled',
    [c3!]: 'cancelled',
    [c4!]: 'cancelled',
    [c5!]: 'cancelled',
    [g0!]: 'cancelled',
    [g1!]: 'completed',
    [g2!]: 'cancelled',
  });
  for (const id of [c2!, c3!, c4!, c5!, g0!, g2!]) {
    const row = await mustGet(s, id);
    assert.notEqual(row.completedAt, null, `cancelled job ${id} has completed_at`);
    assert.equal(row.lockedBy, null, `cancelled job ${id} holds no lease`);
    assert.equal(row.leaseExpiresAt, null);
    assert.equal(row.wakeAt, null);
  }
  // F was decided before; the four cancelled children are still counted on it.
  await expectFanOut(s, t.f.fanOutId, { status: 'succeeded', succeeded: 2, failed: 0, cancelled: 4 });
  // G (owned by the cancelled c3) counts its cancelled children, which decides it failed.
  await expectFanOut(s, t.g.fanOutId, { status: 'failed', succeeded: 1, failed: 0, cancelled: 2 });
  // The cancelled runs lost their fences: heartbeats no longer hold them, late finishes do nothing.
  assert.deepEqual(await s.jobHeartbeat({ workerId: t.c2.workerId, runs: [t.c2, t.g0].map((r) => ({ jobId: r.jobId, runCount: r.runCount })), leaseMs: 60_000 }), []);
  await finish(s, t.c2, 'completed', false);
  await finish(s, t.g0, 'failed', false);
  // Nothing is resumed: not c3 by its decided fan-out, not P.
  const woken = await s.jobWakeDue({ limit: 1000 });
  assert.ok(!woken.includes(c3!) && !woken.includes(t.parentId));
  assert.equal((await mustGet(s, c3!)).status, 'cancelled');
  assert.deepEqual(await s.jobCancel({ id: t.parentId }), [], 'the failed parent is terminal');
}

/** Registers the parent-failure tests. */
export function describeParentFailure(make: StorageMaker): void {
  describe('fan-outs: a failing parent cancels its unfinished subtree', () => {
    const ctx = useStorage(make, 'conformance-parent-failure');

    it('a failed outcome cancels running, pending, waiting and paused children and grandchildren, with their accounting', async () => {
      const s = ctx.s;
      const t = await makeTree(s);
      await expectStatuses(s, untouched(t, 'running'));
      await finish(s, t.parent, 'failed');
      assert.equal((await mustGet(s, t.parentId)).lastError, `failed ${t.parentId}`);
      await expectSubtreeCancelled(s, t);
    });

    it('a reclaim that fails the parent (attempts spent) cancels its subtree the same way', async () => {
      const s = ctx.s;
      const t = await makeTree(s, { maxRetries: 0, parentLeaseMs: 30 });
      const reclaimed = await reclaimUntil(s, [t.parentId]);
      assert.equal(reclaimed.get(t.parentId)?.status, 'failed');
      await expectSubtreeCancelled(s, t);
    });

    it('outcomes batched with the failure apply first; the cancel takes only what is still unfinished', async () => {
      const s = ctx.s;
      const t = await makeTree(s);
      const items = [
        { ...t.parent, outcome: 'failed' as const, error: 'parent broke' },
        { ...t.c2, outcome: 'completed' as const, resultJson: '"c2"' },
      ];
      assert.deepEqual(applied(await s.jobFinishMany({ items })), [true, true]);
      const [, , c2, c3, c4, c5] = t.f.childIds;
      await expectStatuses(s, { [t.parentId]: 'failed', [c2!]: 'completed', [c3!]: 'cancelled', [c4!]: 'cancelled', [c5!]: 'cancelled' });
      await expectFanOut(s, t.f.fanOutId, { status: 'succeeded', succeeded: 3, failed: 0, cancelled: 3 });
      await expectFanOut(s, t.g.fanOutId, { status: 'failed', succeeded: 1, failed: 0, cancelled: 2 });
    });

    it('a completing parent leaves its unfinished children alone; they finish and are counted later', async () => {
      const s = ctx.s;
      const t = await makeTree(s);
      await finish(s, t.parent, 'completed');
      await expectStatuses(s, untouched(t, 'completed'));
      await expectFanOut(s, t.f.fanOutId, { status: 'succeeded', succeeded: 2, failed: 0, cancelled: 0 });
      await expectFanOut(s, t.g.fanOutId, { status: 'running', succeeded: 1, failed: 0, cancelled: 0 });
      await finish(s, t.c2, 'completed');
      await expectFanOut(s, t.f.fanOutId, { status: 'succeeded', succeeded: 3, failed: 0, cancelled: 0 });
      assert.equal((await mustGet(s, t.parentId)).status, 'completed', 'a late child does not disturb the completed parent');
    });

    it('a retry outcome, or a reclaim back to pending, leaves the children alone', async () => {
      const s = ctx.s;
      const t = await makeTree(s);
      await finish(s, t.parent, 'retry');
      await expectStatuses(s, untouched(t, 'pending'));

      const r = await makeTree(s, { maxRetries: 3, parentLeaseMs: 30 });
      const reclaimed = await reclaimUntil(s, [r.parentId]);
      assert.equal(reclaimed.get(r.parentId)?.status, 'pending');
      await expectStatuses(s, untouched(r, 'pending'));
      await expectFanOut(s, r.f.fanOutId, { status: 'succeeded', succeeded: 2, failed: 0, cancelled: 0 });
      await expectFanOut(s, r.g.fanOutId, { status: 'running', succeeded: 1, failed: 0, cancelled: 0 });
    });

    it('a failed outcome whose fence is stale cancels nothing', async () => {
      const s = ctx.s;
      const t = await makeTree(s);
      const stale = [
        { ...t.staleParent, outcome: 'failed' as const, error: 'zombie' },
        { ...t.parent, workerId: 'someone-else', outcome: 'failed' as const, error: 'impostor' },
        { ...t.parent, runCount: t.parent.runCount + 1, outcome: 'failed' as const, error: 'future' },
      ];
      assert.deepEqual(applied(await s.jobFinishMany({ items: stale })), [false, false, false]);
      await expectStatuses(s, untouched(t, 'running'));
      await expectFanOut(s, t.f.fanOutId, { status: 'succeeded', succeeded: 2, failed: 0, cancelled: 0 });
      await expectFanOut(s, t.g.fanOutId, { status: 'running', succeeded: 1, failed: 0, cancelled: 0 });
      assert.equal((await mustGet(s, t.parentId)).lastError, null);
    });

    it('a failing fan-out child is counted on its own fan-out as before, and cancels its own children', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'fail-fast' });
      const [x, y] = (await claim(s, p.childQueue, 2)).map(fenceOf);
      // x suspends into a threshold fan-out that succeeds with one grandchild still running.
      const g = await suspendIntoFanOut(s, x!, { n: 2, strategy: 'threshold', threshold: 0.5 });
      const [g0] = (await claim(s, g.childQueue, 2)).map(fenceOf);
      await finish(s, g0!, 'completed');
      await expectFanOut(s, g.fanOutId, { status: 'succeeded', succeeded: 1, cancelled: 0 });
      const xAgain = fenceOf(await claimOne(s, p.childQueue, x!.jobId));
      await finish(s, xAgain, 'failed');
      await expectStatuses(s, { [x!.jobId]: 'failed', [y!.jobId]: 'cancelled', [g.childIds[0]!]: 'completed', [g.childIds[1]!]: 'cancelled' });
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 1, cancelled: 1 });
      await expectFanOut(s, g.fanOutId, { status: 'succeeded', succeeded: 1, failed: 0, cancelled: 1 });
      assert.equal((await mustGet(s, p.parentId)).status, 'pending', 'the fail-fast decision woke the parent');
    });

    it('jobCancel counts the cancelled descendants on their own fan-outs too', async () => {
      const s = ctx.s;
      const p = await fanOutParent(s, { n: 2, strategy: 'fail-fast' });
      const [, c1] = (await claim(s, p.childQueue, 2)).map(fenceOf);
      const g = await suspendIntoFanOut(s, c1!, { n: 2, strategy: 'fail-fast' });
      await claim(s, g.childQueue, 1);
      const cancelled = await s.jobCancel({ id: p.parentId });
      assert.deepEqual([...cancelled].sort(), [p.parentId, ...p.childIds, ...g.childIds].sort());
      await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 0, failed: 0, cancelled: 2 });
      await expectFanOut(s, g.fanOutId, { status: 'failed', succeeded: 0, failed: 0, cancelled: 2 });
      assert.equal((await mustGet(s, c1!.jobId)).status, 'cancelled', 'the decided fan-out does not resume its cancelled parent');
    });
  });
}
