/**
 * `writeWhileHeld` with fake writes, on mocked timers (no real waits): a failed write is retried
 * while the run holds its lease; it stops when the probe says the lease is lost, when `held()`
 * turns false or when the signal aborts (at once, not after the backoff); an item that keeps
 * failing alone while its lease is confirmed is reported unwritable (soon when other writes
 * succeed meanwhile, after seconds when nothing tells), while a database that fails the probe
 * too is retried.
 */
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { BatchWriteError } from '../../../src/internal/batcher.js';
import { UNWRITABLE_AFTER, UNWRITABLE_AFTER_ALONE, writeWhileHeld, type HeldWrite, type HeldWriteResult } from '../../../src/internal/write-retry.js';
import { flush } from './fakes.js';

/** A write that fails its first `n` calls (in a batch: not alone), then returns true. */
function failing(n: number, alone = false): { calls: number; fn: (i: string) => Promise<boolean> } {
  const w = {
    calls: 0,
    fn: async (_: string): Promise<boolean> => {
      w.calls++;
      if (w.calls <= n) throw new BatchWriteError(new Error(`down ${w.calls}`), alone);
      return true;
    },
  };
  return w;
}

function base(over: Partial<HeldWrite<string, boolean>>): HeldWrite<string, boolean> {
  return {
    item: 'x',
    first: async () => true,
    alone: async () => true,
    probe: async () => true,
    held: () => true,
    ...over,
  };
}

/**
 * Runs a write to its end on mocked time, moving the clock 50 ms at a time (the retry waits are
 * timers); returns its result and the mocked time it took.
 */
async function settle(w: HeldWrite<string, boolean>, onStart?: () => void): Promise<{ r: HeldWriteResult<boolean>; elapsed: number }> {
  let r: HeldWriteResult<boolean> | undefined;
  void writeWhileHeld(w).then((v) => (r = v));
  onStart?.();
  let elapsed = 0;
  await flush();
  while (r === undefined) {
    assert.ok(elapsed < 120_000, 'the write ended within two minutes of retries');
    mock.timers.tick(50);
    elapsed += 50;
    await flush();
  }
  return { r, elapsed };
}

describe('writeWhileHeld', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('writes at once when the first attempt succeeds', async () => {
    assert.deepEqual(await settle(base({})), { r: { kind: 'written', value: true, retried: false }, elapsed: 0 });
  });

  it('retries a batch failure (coalesced again) until it is written', async () => {
    const w = failing(3);
    let probes = 0;
    const { r } = await settle(base({ first: w.fn, probe: async () => (probes++, true) }));
    assert.deepEqual(r, { kind: 'written', value: true, retried: true });
    assert.equal(w.calls, 4);
    assert.equal(probes, 0, 'no probe for a failure shared with other items');
  });

  it('stops when held() turns false', async () => {
    let held = true;
    const { r } = await settle(
      base({
        first: async () => {
          held = false;
          throw new BatchWriteError(new Error('down'), false);
        },
        held: () => held,
      }),
    );
    assert.equal(r.kind, 'lost');
  });

  it('stops when the probe says the lease is lost', async () => {
    const { r } = await settle(base({ first: failing(9, true).fn, probe: async () => false }));
    assert.equal(r.kind, 'lost');
  });

  it(`reports an item unwritable after ${UNWRITABLE_AFTER} solo failures with the lease confirmed while other writes succeed`, async () => {
    const alone = failing(99, true);
    let others = 0;
    const first = async (): Promise<boolean> => {
      others++; // a neighbour's write succeeded in the same flush
      throw new BatchWriteError(new Error('refused'), true);
    };
    const { r } = await settle(base({ first, alone: alone.fn, progress: () => others }));
    assert.equal(r.kind, 'unwritable');
    assert.equal(alone.calls, UNWRITABLE_AFTER - 1, 'the first solo failure plus one more solo write');
  });

  it(`with no other write to compare, waits for ${UNWRITABLE_AFTER_ALONE} solo failures (seconds of retries) before giving the item up`, async () => {
    const alone = failing(99, true);
    const { r, elapsed } = await settle(base({ first: failing(1, true).fn, alone: alone.fn, progress: () => 0 }));
    assert.equal(r.kind, 'unwritable');
    assert.equal(alone.calls, UNWRITABLE_AFTER_ALONE - 1);
    assert.ok(elapsed >= 3000, `retried for ${elapsed} ms (mocked time)`);
  });

  it('keeps retrying a solo failure while the probe fails too (the database is down), then writes', async () => {
    const alone = failing(4, true);
    let probes = 0;
    const { r } = await settle(
      base({
        first: failing(1, true).fn,
        alone: alone.fn,
        probe: async () => {
          if (++probes <= 5) throw new Error('database down');
          return true;
        },
      }),
    );
    assert.deepEqual(r, { kind: 'written', value: true, retried: true });
  });

  it('an aborted signal ends the wait between retries at once', async () => {
    const ctl = new AbortController();
    const { r, elapsed } = await settle(base({ first: failing(99).fn, signal: ctl.signal }), () => setImmediate(() => ctl.abort()));
    assert.equal(r.kind, 'lost');
    assert.equal(elapsed, 0, 'did not wait out the backoff');
  });
});
