/**
 * Conformance: the fleet-event feed and presence rows — `eventAppendMany` (dense ids in item
 * order, taken in commit order, payloads byte for byte), `eventReadAfter` (id order, after an id,
 * at most a limit), `eventPrune` (by count and by age; the head survives, so a reader can tell how
 * many events it missed), the subscriber presence operations (`eventSubscriberBeat` with the head
 * it returns, `eventSubscribersActive`, expiry, `eventSubscriberRemove`), and bad params refused
 * with `InvalidArgumentError` before anything is written.
 *
 * The feed is database-wide and the block's tests share one storage: each test works relative to
 * the head it finds, and removes the presence rows it made.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import type { EventAppendItem, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import { assertBetween, instances, uniqueName, waitForClockPast } from '../helpers/factories.js';
import { useManualClock, useStorage } from './context.js';

/** An event to append, with defaults. */
function item(n: number, overrides: Partial<EventAppendItem> = {}): EventAppendItem {
  return { type: 'job.started', jobId: `job-${n}`, origin: 'conformance', payloadJson: JSON.stringify({ n }), ...overrides };
}

/** The newest id given so far (through a beat of a throwaway subscriber, removed again). */
async function headOf(s: Storage): Promise<number> {
  const id = uniqueName('head');
  const { headId } = await s.eventSubscriberBeat({ id, ttlMs: 60_000 });
  await s.eventSubscriberRemove({ id });
  return headId;
}

/** Registers the fleet-event feed tests. */
export function describeEvents(make: StorageMaker): void {
  describe('fleet events: feed and presence', () => {
    const ctx = useStorage(make, 'conformance-events');
    const clock = useManualClock(ctx, 'conformance-events-manual');

    it('appends with consecutive ids in item order and reads them back byte for byte', async () => {
      const s = ctx.s;
      const head = await headOf(s);
      const before = await s.clockNow();
      const odd = JSON.stringify({ nul: 'a\u0000b', lone: '\ud800x\udc00', emoji: '😀', quote: '"\\' });
      assert.ok(!odd.includes('\u0000'), 'JSON text carries NUL escaped');
      const items = [item(1), item(2, { jobId: null, type: 'events.gap', payloadJson: odd }), item(3, { origin: 'other-origin' })];
      const ids = await s.eventAppendMany({ events: items });
      const after = await s.clockNow();
      assert.deepEqual(ids, [head + 1, head + 2, head + 3]);
      const rows = await s.eventReadAfter({ afterId: head, limit: 10 });
      assert.deepEqual(
        rows.map((r) => ({ id: r.id, type: r.type, jobId: r.jobId, origin: r.origin, payloadJson: r.payloadJson })),
        items.map((it, i) => ({ id: head + 1 + i, ...it })),
      );
      for (const r of rows) assertBetween(r.at, before, after, 'event at');
      assert.deepEqual(JSON.parse(rows[1]!.payloadJson), JSON.parse(odd), 'NUL and lone surrogates survive as escapes');
      assert.equal(await headOf(s), head + 3);
    });

    it('reads after an id, in id order, at most limit rows; an empty append takes no id', async () => {
      const s = ctx.s;
      const head = await headOf(s);
      assert.deepEqual(await s.eventAppendMany({ events: [] }), []);
      assert.equal(await headOf(s), head, 'an empty append takes no id');
      await s.eventAppendMany({ events: [1, 2, 3, 4, 5].map((n) => item(n)) });
      const page1 = await s.eventReadAfter({ afterId: head, limit: 2 });
      assert.deepEqual(page1.map((r) => r.id), [head + 1, head + 2]);
      const page2 = await s.eventReadAfter({ afterId: page1[1]!.id, limit: 10 });
      assert.deepEqual(page2.map((r) => r.id), [head + 3, head + 4, head + 5]);
      assert.deepEqual(await s.eventReadAfter({ afterId: head + 5, limit: 10 }), []);
    });

    it('concurrent appends from several instances get dense, distinct ids, each batch consecutive', async () => {
      const s = ctx.s;
      const others = await instances(ctx.ts, 4);
      const head = await headOf(s);
      const batches = await Promise.all(
        others.flatMap((o, k) => [0, 1, 2].map((b) => o.eventAppendMany({ events: [1, 2, 3].map((n) => item(n, { origin: `inst-${k}-${b}` })) }))),
      );
      for (const ids of batches) assert.deepEqual(ids, [ids[0]!, ids[0]! + 1, ids[0]! + 2], 'a batch takes consecutive ids');
      const all = batches.flat().sort((a, b) => a - b);
      assert.deepEqual(all, Array.from({ length: 36 }, (_, i) => head + 1 + i), 'ids are dense and distinct');
      const rows = await s.eventReadAfter({ afterId: head, limit: 100 });
      assert.deepEqual(rows.map((r) => r.id), all);
      for (const ids of batches) {
        const origins = new Set(rows.filter((r) => ids.includes(r.id)).map((r) => r.origin));
        assert.equal(origins.size, 1, 'each batch is stored as one');
      }
    });

    it('a reader that reads while others append never sees an id before all smaller ids', async () => {
      const s = ctx.s;
      const writers = await instances(ctx.ts, 3);
      let cursor = await headOf(s);
      const target = cursor + 3 * 20 * 2;
      let writing = true;
      const write = Promise.all(
        writers.map(async (w) => {
          for (let i = 0; i < 20; i++) await w.eventAppendMany({ events: [item(i), item(i)] });
        }),
      ).finally(() => (writing = false));
      while (writing || cursor < target) {
        const rows = await s.eventReadAfter({ afterId: cursor, limit: 7 });
        for (const r of rows) {
          assert.equal(r.id, cursor + 1, 'no id is skipped by a reader (nothing was pruned)');
          cursor = r.id;
        }
        if (rows.length === 0 && !writing) break;
      }
      await write;
      assert.equal(cursor, target);
    });

    it('prunes by count: every event but the newest `keep` ids; the head survives a prune of all', async () => {
      const s = ctx.s;
      const head = await headOf(s);
      await s.eventAppendMany({ events: Array.from({ length: 10 }, (_, n) => item(n)) });
      const deleted = await s.eventPrune({ keep: 3 });
      assert.ok(deleted >= 7, `deleted ${deleted}`);
      const left = await s.eventReadAfter({ afterId: 0, limit: 100 });
      assert.deepEqual(left.map((r) => r.id), [head + 8, head + 9, head + 10]);
      // A reader still at `head + 2` learns that 5 events it never read were pruned.
      assert.equal(left[0]!.id - (head + 2) - 1, 5);
      assert.equal(await s.eventPrune({ keep: 0 }), 3);
      assert.deepEqual(await s.eventReadAfter({ afterId: 0, limit: 100 }), []);
      assert.equal(await s.eventPrune({ keep: 0 }), 0);
      const [next] = await s.eventAppendMany({ events: [item(11)] });
      assert.equal(next, head + 11, 'ids go on after the pruned ones, never reused');
    });

    it('prunes by age on the storage clock, and by whichever of age and count deletes more', async () => {
      const m = clock();
      const s = m.s;
      await s.eventPrune({ keep: 0 });
      const t0 = m.now;
      const old = await s.eventAppendMany({ events: [item(1), item(2)] });
      m.now = t0 + 10_000;
      const fresh = await s.eventAppendMany({ events: [item(3)] });
      const rows = await s.eventReadAfter({ afterId: 0, limit: 10 });
      assert.deepEqual(rows.map((r) => r.at), [t0, t0, t0 + 10_000], 'at is the storage clock');
      assert.equal(await s.eventPrune({ olderThanMs: 10_000 }), 0, 'an event exactly that old stays');
      assert.equal(await s.eventPrune({ olderThanMs: 9_999 }), old.length, 'the two older events go');
      assert.deepEqual((await s.eventReadAfter({ afterId: 0, limit: 10 })).map((r) => r.id), fresh);
      await s.eventAppendMany({ events: [item(4), item(5)] });
      assert.equal(await s.eventPrune({ olderThanMs: 60_000, keep: 1 }), 2, 'the count deletes more than the age here');
      assert.equal((await s.eventReadAfter({ afterId: 0, limit: 10 })).length, 1);
      m.now = t0 + 100_000;
      assert.equal(await s.eventPrune({ olderThanMs: 60_000, keep: 1_000 }), 1, 'the age deletes more than the count here');
    });

    it('presence: a beat is active until it expires or is removed, and returns the head', async () => {
      const s = ctx.s;
      const a = `sub-${randomBytes(4).toString('hex')}`;
      const b = `sub-${randomBytes(4).toString('hex')}`;
      const base = await s.eventSubscribersActive();
      const [id] = await s.eventAppendMany({ events: [item(1)] });
      assert.deepEqual(await s.eventSubscriberBeat({ id: a, ttlMs: 60_000 }), { headId: id });
      assert.equal(await s.eventSubscribersActive(), base + 1);
      assert.deepEqual(await s.eventSubscriberBeat({ id: a, ttlMs: 60_000 }), { headId: id }, 'beating again upserts');
      assert.equal(await s.eventSubscribersActive(), base + 1);
      await s.eventSubscriberBeat({ id: b, ttlMs: 1 });
      const t = await s.clockNow();
      await waitForClockPast(s, t + 5);
      assert.equal(await s.eventSubscribersActive(), base + 1, 'an expired row is no longer active');
      await s.eventSubscriberRemove({ id: a });
      await s.eventSubscriberRemove({ id: a });
      assert.equal(await s.eventSubscribersActive(), base);
      // The next beat of anyone deletes the expired row: beating `b` again makes it active anew.
      await s.eventSubscriberBeat({ id: b, ttlMs: 60_000 });
      assert.equal(await s.eventSubscribersActive(), base + 1);
      await s.eventSubscriberRemove({ id: b });
    });

    it('bad params are refused with InvalidArgumentError and nothing is written', async () => {
      const s = ctx.s;
      const head = await headOf(s);
      const active = await s.eventSubscribersActive();
      const bad: [string, () => Promise<unknown>][] = [
        ['prune without bounds', () => s.eventPrune({})],
        ['prune negative keep', () => s.eventPrune({ keep: -1 })],
        ['prune fractional age', () => s.eventPrune({ olderThanMs: 1.5 })],
        ['read limit 0', () => s.eventReadAfter({ afterId: 0, limit: 0 })],
        ['read limit too big', () => s.eventReadAfter({ afterId: 0, limit: 10_001 })],
        ['read negative after', () => s.eventReadAfter({ afterId: -1, limit: 1 })],
        ['append empty type', () => s.eventAppendMany({ events: [item(1), item(2, { type: '' })] })],
        ['append long type', () => s.eventAppendMany({ events: [item(1, { type: 'x'.repeat(65) })] })],
        ['append raw NUL', () => s.eventAppendMany({ events: [item(1, { payloadJson: '"a\u0000"' })] })],
        ['append NUL origin', () => s.eventAppendMany({ events: [item(1, { origin: 'a\u0000' })] })],
        ['beat ttl 0', () => s.eventSubscriberBeat({ id: 'x', ttlMs: 0 })],
        ['beat empty id', () => s.eventSubscriberBeat({ id: '', ttlMs: 1_000 })],
        ['remove empty id', () => s.eventSubscriberRemove({ id: '' })],
      ];
      for (const [what, call] of bad) await assert.rejects(call, InvalidArgumentError, what);
      assert.equal(await headOf(s), head, 'no id was taken');
      assert.equal(await s.eventSubscribersActive(), active);
    });
  });
}
