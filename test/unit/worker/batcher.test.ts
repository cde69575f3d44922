/**
 * The coalescing `Batcher` with a fake write function: items pushed together go in one call; a
 * failed call is split so one bad item does not sink its neighbours; a database that is down
 * costs about 2·log2(n) calls, not 2n; items written again after a failure that report "not
 * applied" come back `unsure`; items pushed while a call is in flight go together into the next
 * one (never two calls at once); `drain()` (the worker's stop) writes what is queued without
 * waiting for the scheduled flush; items a call returned no result for get the fallback; a
 * failed flush does not stop later ones.
 */
import { afterEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, BatchWriteError } from '../../../src/internal/batcher.js';
import { deferred, type Deferred } from '../../../src/internal/deferred.js';
import { flush } from './fakes.js';

/** A fake batch write that records its calls and fails those `fails` picks. */
function fakeWrite(fails: (items: number[]) => boolean, result: (n: number) => boolean | 'unsure' = () => true) {
  const calls: number[][] = [];
  const write = async (items: number[]): Promise<(boolean | 'unsure')[]> => {
    calls.push([...items]);
    if (fails(items)) throw new Error(`refused ${items.join(',')}`);
    return items.map(result);
  };
  return { calls, write };
}

/** Pushes `items` in one turn and collects each one's settlement. */
async function pushAll<R>(b: Batcher<number, R>, items: number[]): Promise<PromiseSettledResult<R>[]> {
  return Promise.allSettled(items.map((i) => b.push(i)));
}

describe('Batcher', () => {
  it('writes items pushed in one turn in one call, capped at maxBatch', async () => {
    const f = fakeWrite(() => false);
    const b = new Batcher(f.write, 4, false);
    const out = await pushAll(b, [1, 2, 3, 4, 5, 6]);
    await b.drain();
    assert.deepEqual(f.calls, [[1, 2, 3, 4], [5, 6]]);
    assert.ok(out.every((o) => o.status === 'fulfilled' && o.value === true), 'every item written');
  });

  it('isolates one bad item: its neighbours are written, it alone is rejected (alone = true)', async () => {
    const f = fakeWrite((items) => items.includes(6));
    const b = new Batcher(f.write, 100, false);
    const items = Array.from({ length: 16 }, (_, i) => i);
    const out = await pushAll(b, items);
    out.forEach((o, i) => {
      if (i === 6) {
        assert.equal(o.status, 'rejected');
        const err = (o as PromiseRejectedResult).reason as BatchWriteError;
        assert.ok(err instanceof BatchWriteError, 'rejected with a BatchWriteError');
        assert.equal(err.alone, true);
        assert.match(String((err.error as Error).message), /refused 6/);
      } else {
        assert.equal(o.status, 'fulfilled', `item ${i} was written`);
      }
    });
    const written = f.calls.filter((c) => !c.includes(6)).flat().sort((a, c) => a - c);
    assert.deepEqual(written, items.filter((i) => i !== 6), 'every neighbour written exactly once');
    assert.ok(f.calls.length <= 2 * Math.log2(16) + 2, `${f.calls.length} calls`);
  });

  it('isolates two bad items in different halves and in the same pair', async () => {
    for (const bad of [[1, 12], [4, 5]]) {
      const f = fakeWrite((items) => items.some((i) => bad.includes(i)));
      const b = new Batcher(f.write, 100, false);
      const out = await pushAll(b, Array.from({ length: 16 }, (_, i) => i));
      const rejected = out.flatMap((o, i) => (o.status === 'rejected' ? [i] : []));
      assert.deepEqual(rejected, bad, `only ${bad.join(' and ')} rejected`);
    }
  });

  it('a database that is down costs about 2·log2(n) calls; items never written alone are rejected with alone = false', async () => {
    const f = fakeWrite(() => true);
    const b = new Batcher(f.write, 1000, false);
    const out = await pushAll(b, Array.from({ length: 1000 }, (_, i) => i));
    assert.ok(f.calls.length <= 2 * Math.ceil(Math.log2(1000)) + 1, `${f.calls.length} calls for 1000 items`);
    const reasons = out.map((o) => (o as PromiseRejectedResult).reason as BatchWriteError);
    assert.ok(reasons.every((r) => r instanceof BatchWriteError), 'every item rejected with a BatchWriteError');
    assert.equal(reasons.filter((r) => r.alone).length, 2, 'two items were tried alone (the first leaf and its sibling)');
  });

  it('an item written again after a failure that reports "not applied" resolves unsure', async () => {
    let first = true;
    const f = fakeWrite(
      () => {
        const fail = first;
        first = false;
        return fail;
      },
      (n) => n !== 2,
    );
    const b = new Batcher<number, boolean | 'unsure'>(f.write, 100, false, 'unsure');
    const out = await pushAll(b, [1, 2, 3, 4]);
    assert.deepEqual(
      out.map((o) => (o as PromiseFulfilledResult<boolean | 'unsure'>).value),
      [true, 'unsure', true, true],
    );
    const plain = new Batcher<number, boolean | 'unsure'>(fakeWrite(() => false, (n) => n !== 2).write, 100, false, 'unsure');
    assert.deepEqual(await Promise.all([1, 2].map((i) => plain.push(i))), [true, false], 'without a failure, "not applied" is certain');
  });

  it('drain waits for every queued item', async () => {
    const f = fakeWrite((items) => items.includes(3));
    const b = new Batcher(f.write, 2, false);
    const settled: number[] = [];
    for (const i of [1, 2, 3, 4, 5]) b.push(i).then(() => settled.push(i), () => settled.push(-i));
    await b.drain();
    await Promise.resolve();
    assert.deepEqual([...settled].sort((a, c) => a - c), [-3, 1, 2, 4, 5]);
  });

  describe('timing and lifecycle', () => {
    afterEach(() => mock.timers.reset());

    it('items pushed while a call is in flight go together into the next call; never two calls at once', async () => {
      const calls: { items: number[]; reply: Deferred<boolean[]> }[] = [];
      let inFlight = 0;
      let overlapped = false;
      const b = new Batcher<number, boolean>(
        (items) => {
          if (inFlight > 0) overlapped = true;
          inFlight++;
          const reply = deferred<boolean[]>();
          calls.push({ items, reply });
          return reply.promise.finally(() => inFlight--);
        },
        100,
        false,
      );
      const first = b.push(1);
      await flush();
      assert.deepEqual(calls.map((c) => c.items), [[1]]);
      const later = [2, 3, 4].map((i) => b.push(i));
      await flush();
      assert.equal(calls.length, 1, 'no second call while the first is in flight');
      calls[0]!.reply.resolve([true]);
      assert.equal(await first, true);
      await flush();
      assert.deepEqual(calls.map((c) => c.items), [[1], [2, 3, 4]], 'everything pushed meanwhile in one call');
      calls[1]!.reply.resolve([true, false, true]);
      assert.deepEqual(await Promise.all(later), [true, false, true], 'each caller gets its own item\'s result');
      assert.equal(overlapped, false);
    });

    it('drain() writes what is queued without waiting for the scheduled flush, in batches of maxBatch', async () => {
      mock.timers.enable({ apis: ['setImmediate'] });
      const f = fakeWrite(() => false);
      const b = new Batcher(f.write, 2, false);
      const pushed = [1, 2, 3, 4, 5].map((i) => b.push(i));
      await b.drain();
      assert.deepEqual(f.calls, [[1, 2], [3, 4], [5]], 'written by drain() alone: the scheduled flush never ran');
      assert.deepEqual(await Promise.all(pushed), [true, true, true, true, true]);
      await b.drain();
      assert.equal(f.calls.length, 3, 'draining an empty batcher writes nothing');
    });

    it('items a call returned no result for get the fallback ("not applied")', async () => {
      const b = new Batcher<number, string>(async (items) => items.slice(0, 2).map((i) => `stored ${i}`), 10, 'not applied');
      assert.deepEqual(await Promise.all([1, 2, 3].map((i) => b.push(i))), ['stored 1', 'stored 2', 'not applied']);
    });

    it('a failed flush rejects its own items only and does not stop later flushes', async () => {
      let down = true;
      const f = fakeWrite(() => down);
      const b = new Batcher(f.write, 10, false);
      const failed = await pushAll(b, [1, 2]);
      assert.ok(failed.every((o) => o.status === 'rejected' && o.reason instanceof BatchWriteError), 'every item of the failed flush is rejected');
      down = false;
      assert.deepEqual(await Promise.all([3, 4].map((i) => b.push(i))), [true, true]);
      assert.deepEqual(f.calls.at(-1), [3, 4], 'the failed items are not carried into later calls');
    });
  });
});
