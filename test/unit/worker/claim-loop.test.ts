/**
 * `ClaimLoop` over a fake `jobClaim` whose replies the test gives, with mocked timers: each
 * claim asks for no more than the free slots of each queue (handler slots, and at most 2N jobs
 * whose outcome is not written yet); freed slots are refilled in batches only while more work is
 * known to wait; one claim at a time, a wake during a claim runs one more right after it; empty
 * claims poll every `pollMs`, failed ones back off exponentially up to 10 s and recover;
 * `pause()` gives back what a claim in flight brings and claims nothing until `resume()`;
 * `stop()` waits for the claim in flight and claims nothing afterwards.
 */
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { deferred, type Deferred } from '../../../src/internal/deferred.js';
import type { JobClaimParams, JobRow } from '../../../src/storage/storage.js';
import { ClaimLoop } from '../../../src/worker/claim-loop.js';
import { fakeStorage, flush, jobRow, recordingLogger } from './fakes.js';

const POLL_MS = 1_000;

/** One `jobClaim` call: what it asked for, and its reply (the test answers it). */
interface ClaimCall {
  queues: { name: string; limit: number }[];
  reply: Deferred<JobRow[]>;
}

/** A claim loop over a fake storage, with everything it reported. */
function harness(queues: Record<string, number>) {
  const calls: ClaimCall[] = [];
  let inFlight = 0;
  let overlapped = false;
  const storage = fakeStorage({
    jobClaim: (p: JobClaimParams) => {
      if (inFlight > 0) overlapped = true;
      inFlight++;
      const reply = deferred<JobRow[]>();
      calls.push({ queues: p.queues.map((q) => ({ ...q })), reply });
      return reply.promise.finally(() => inFlight--);
    },
  });
  const claimed: JobRow[] = [];
  const unwanted: JobRow[] = [];
  const errors: unknown[] = [];
  const loop = new ClaimLoop({
    storage,
    workerId: 'w',
    leaseMs: 30_000,
    pollMs: POLL_MS,
    queues: new Map(Object.entries(queues)),
    logger: recordingLogger(),
    onClaimed: (row) => void claimed.push(row),
    onUnwanted: (rows) => void unwanted.push(...rows),
    onError: (err) => void errors.push(err),
  });
  return {
    loop,
    calls,
    claimed,
    unwanted,
    errors,
    /** Whether two claims were ever in flight at once. */
    get overlapped() {
      return overlapped;
    },
    /** The last call (asserting there is one). */
    last(): ClaimCall {
      const c = calls.at(-1);
      assert.ok(c, 'a claim was made');
      return c;
    },
    /** Answers the last call with `n` rows per queue, and lets the loop see the answer. */
    async answer(rows: Record<string, number>): Promise<JobRow[]> {
      const made = Object.entries(rows).flatMap(([queue, n]) => Array.from({ length: n }, () => jobRow({ queue })));
      this.last().reply.resolve(made);
      await flush();
      return made;
    },
    /** Fails the last call. */
    async fail(err: Error): Promise<void> {
      this.last().reply.reject(err);
      await flush();
    },
  };
}

/** Moves mocked time forward by `ms` and lets what it started run. */
async function advance(ms: number): Promise<void> {
  mock.timers.tick(ms);
  await flush();
}

describe('ClaimLoop', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setImmediate'] }));
  afterEach(() => mock.timers.reset());

  it('claims once at start, asking each queue for its concurrency', async () => {
    const h = harness({ a: 3, b: 1 });
    h.loop.start();
    assert.equal(h.calls.length, 1);
    assert.deepEqual(h.last().queues, [
      { name: 'a', limit: 3 },
      { name: 'b', limit: 1 },
    ]);
    const rows = await h.answer({ a: 2 });
    assert.deepEqual(h.claimed, rows, 'every claimed row is handed on, in order');
    await h.loop.stop();
  });

  it('never asks a queue for more than its free handler slots; a full worker makes no claim', async () => {
    const h = harness({ a: 3, b: 1 });
    h.loop.start();
    await h.answer({ a: 3 });
    h.loop.wake('a');
    h.loop.wake('b');
    assert.equal(h.calls.length, 2);
    assert.deepEqual(h.last().queues, [{ name: 'b', limit: 1 }], 'the full queue is not asked');
    await h.answer({ b: 1 });
    h.loop.wake('a');
    h.loop.wake('b');
    await advance(POLL_MS);
    assert.equal(h.calls.length, 2, 'no claim while every slot is taken, neither on a wake nor on the poll');
    h.loop.slotFreed('a');
    await advance(0);
    assert.equal(h.calls.length, 3);
    assert.deepEqual(h.last().queues, [{ name: 'a', limit: 1 }], 'exactly the freed slot');
    await h.answer({});
    await h.loop.stop();
  });

  it('holds at most 2N jobs per queue: outcomes not yet written bound the next claim', async () => {
    const h = harness({ a: 2 });
    h.loop.start();
    await h.answer({ a: 2 });
    // Both handlers are done; their outcomes are still being written.
    h.loop.slotFreed('a');
    h.loop.slotFreed('a');
    await advance(0);
    assert.deepEqual(h.last().queues, [{ name: 'a', limit: 2 }], 'the freed handler slots are refilled');
    await h.answer({ a: 2 });
    h.loop.slotFreed('a');
    h.loop.slotFreed('a');
    h.loop.wake('a');
    await advance(POLL_MS);
    assert.equal(h.calls.length, 2, 'four outcomes unwritten (2N): no claim although every handler slot is free');
    h.loop.released('a');
    await advance(0);
    assert.equal(h.calls.length, 3);
    assert.deepEqual(h.last().queues, [{ name: 'a', limit: 1 }], 'one outcome written: one more job');
    await h.answer({});
    await h.loop.stop();
  });

  it('refills in batches of a third of the slots while more work is known to wait', async () => {
    const h = harness({ a: 6 });
    h.loop.start();
    await h.answer({ a: 6 });
    h.loop.slotFreed('a');
    await advance(0);
    assert.equal(h.calls.length, 1, 'one free slot of six is not worth a claim yet');
    h.loop.slotFreed('a');
    await advance(0);
    assert.equal(h.calls.length, 2);
    assert.deepEqual(h.last().queues, [{ name: 'a', limit: 2 }]);
    await h.answer({ a: 1 });
    // The claim came back short: nothing more is known to wait, so freed slots wait for the poll.
    for (let i = 0; i < 5; i++) h.loop.slotFreed('a');
    await advance(0);
    assert.equal(h.calls.length, 2, 'no refill once a claim came back short');
    await advance(POLL_MS);
    assert.equal(h.calls.length, 3, 'the poll claims');
    assert.deepEqual(h.last().queues, [{ name: 'a', limit: 5 }]);
    await h.answer({});
    await h.loop.stop();
  });

  it('frees slots that all settle in one turn with one claim, not one each', async () => {
    const h = harness({ a: 3 });
    h.loop.start();
    await h.answer({ a: 3 });
    h.loop.slotFreed('a');
    h.loop.slotFreed('a');
    h.loop.slotFreed('a');
    await advance(0);
    assert.equal(h.calls.length, 2);
    assert.deepEqual(h.last().queues, [{ name: 'a', limit: 3 }]);
    await h.answer({});
    await h.loop.stop();
  });

  it('makes one claim at a time; a wake during a claim runs one more right after it', async () => {
    const h = harness({ a: 4 });
    h.loop.start();
    h.loop.wake('a');
    h.loop.wake('a');
    assert.equal(h.calls.length, 1, 'no second claim while one is in flight');
    await h.answer({ a: 1 });
    assert.equal(h.calls.length, 2, 'the wake is not lost: one more claim follows at once');
    assert.deepEqual(h.last().queues, [{ name: 'a', limit: 3 }]);
    await h.answer({});
    assert.equal(h.calls.length, 2, 'two wakes during one claim cost one claim');
    assert.equal(h.overlapped, false);
    await h.loop.stop();
  });

  it('ignores wakes of queues it does not serve, and wakes before start', async () => {
    const h = harness({ a: 1 });
    h.loop.wake('a');
    await advance(POLL_MS);
    assert.equal(h.calls.length, 0, 'not started');
    h.loop.start();
    await h.answer({});
    h.loop.wake('other');
    await advance(0);
    assert.equal(h.calls.length, 1, 'a wake of another queue claims nothing');
    h.loop.wake('a');
    assert.equal(h.calls.length, 2);
    await h.answer({});
    await h.loop.stop();
  });

  it('polls every pollMs after an empty claim, and not sooner', async () => {
    const h = harness({ a: 2 });
    h.loop.start();
    await h.answer({});
    await advance(POLL_MS - 1);
    assert.equal(h.calls.length, 1);
    await advance(1);
    assert.equal(h.calls.length, 2);
    await h.answer({});
    await advance(POLL_MS);
    assert.equal(h.calls.length, 3);
    await h.answer({});
    await h.loop.stop();
  });

  it('backs off exponentially after failed claims (reported each time), up to 10 s, and polls normally after a success', async () => {
    const h = harness({ a: 1 });
    h.loop.start();
    const waits: number[] = [];
    for (let i = 0; i < 9; i++) {
      await h.fail(new Error(`down ${i}`));
      const before = h.calls.length;
      let waited = 0;
      while (h.calls.length === before) {
        await advance(100);
        waited += 100;
        assert.ok(waited <= 10_000, 'a claim follows within 10 s');
      }
      waits.push(waited);
    }
    assert.deepEqual(waits, [200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000, 10_000]);
    assert.deepEqual(
      h.errors.map((e) => (e as Error).message),
      Array.from({ length: 9 }, (_, i) => `down ${i}`),
    );
    await h.answer({});
    await advance(POLL_MS - 1);
    assert.equal(h.calls.length, 10, 'after a success the next claim waits the poll interval…');
    await advance(1);
    assert.equal(h.calls.length, 11, '…and no longer');
    await h.fail(new Error('down again'));
    await advance(199);
    assert.equal(h.calls.length, 11);
    await advance(1);
    assert.equal(h.calls.length, 12, 'the backoff starts over after a success');
    await h.answer({});
    await h.loop.stop();
  });

  it('pause(): a claim in flight gives its jobs back; nothing is claimed until resume()', async () => {
    const h = harness({ a: 2 });
    h.loop.start();
    h.loop.pause();
    assert.equal(h.loop.paused, true);
    const rows = await h.answer({ a: 2 });
    assert.deepEqual(h.claimed, [], 'a paused worker starts nothing');
    assert.deepEqual(h.unwanted, rows, 'the jobs are given back');
    h.loop.wake('a');
    h.loop.slotFreed('a');
    await advance(10 * POLL_MS);
    assert.equal(h.calls.length, 1, 'no claim while paused, neither on a wake nor on a timer');
    h.loop.resume();
    assert.equal(h.loop.paused, false);
    assert.equal(h.calls.length, 2);
    assert.deepEqual(h.last().queues, [{ name: 'a', limit: 2 }], 'given-back jobs take no slot');
    await h.answer({ a: 1 });
    assert.equal(h.claimed.length, 1);
    await h.loop.stop();
  });

  it('stop() waits for the claim in flight, hands on its jobs, and claims nothing afterwards', async () => {
    const h = harness({ a: 2 });
    h.loop.start();
    let stopped = false;
    const stopping = h.loop.stop().then(() => (stopped = true));
    await flush();
    assert.equal(stopped, false, 'stop() waits for the claim in flight');
    const rows = await h.answer({ a: 2 });
    await stopping;
    assert.deepEqual(h.claimed, rows, 'the jobs of the last claim still run');
    h.loop.wake('a');
    h.loop.slotFreed('a');
    h.loop.released('a');
    await advance(60 * POLL_MS);
    assert.equal(h.calls.length, 1, 'no claim after stop()');
  });

  it('stop() cancels the poll and the error backoff; stop before start and a double stop are no-ops', async () => {
    const idle = harness({ a: 1 });
    await idle.loop.stop();
    await idle.loop.stop();
    assert.equal(idle.calls.length, 0);

    const h = harness({ a: 1 });
    h.loop.start();
    await h.fail(new Error('down'));
    await h.loop.stop();
    await h.loop.stop();
    await advance(60_000);
    assert.equal(h.calls.length, 1, 'no claim after stop(), though a backoff was pending');
    h.loop.start();
    assert.equal(h.calls.length, 2, 'a restart claims again');
    await h.answer({});
    await h.loop.stop();
    await advance(60_000);
    assert.equal(h.calls.length, 2, 'no claim after stop(), though a poll was pending');
  });
});
