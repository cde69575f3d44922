/**
 * The users' test kit (`createTestQueue`) under the mistakes users make in their tests: an advance
 * far too long for a fast schedule, a handler that never settles, a job timeout on a handler
 * that ignores its abort signal, an advance past the last valid Date, close() under a stuck
 * drain, big backlogs, two kits at once. Each must end with a clear, typed error or the
 * documented behaviour — never a hung test run.
 * @storage sqlite
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestQueue, TEST_CLOCK_START, type TestQueue } from '../../src/testing/index.js';
import { every } from '../../src/index.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;
const T0 = TEST_CLOCK_START.getTime();

/** Settles with the promise, or rejects when it takes longer than `ms` of real time (a hung kit fails the test instead of hanging it). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms of real time`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('createTestQueue: adversarial use', () => {
  let t: TestQueue | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('advancing 100 years over an every(1 s) schedule stops at the run budget with a clear error; the kit stays usable', async () => {
    t = await createTestQueue({ maxRuns: 200 });
    const q = t;
    q.queue.register('tick', async () => {});
    await q.queue.schedule('tick', every(1000));
    const err = await within(
      q.clock.advance(100 * YEAR).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message: string },
      ),
      20_000,
      'advance(100 years)',
    );
    assert.equal(err?.code, 'INVALID_STATE');
    assert.match(err?.message ?? '', /200 runs/);
    assert.match(err?.message ?? '', /"tick"/, 'the error names the job type that ran most');
    assert.match(err?.message ?? '', /maxRuns/, 'the error says how to raise the bound');
    assert.equal(q.runs.length, 200);
    const stoppedAt = q.clock.now().getTime();
    assert.ok(stoppedAt > T0 && stoppedAt < T0 + HOUR, 'time stopped where the budget ran out');
    // The budget is per call: the kit goes on.
    await q.queue.unschedule('tick');
    await q.clock.advance(DAY);
    assert.equal(q.clock.now().getTime(), stoppedAt + DAY);
  });

  it('instants that start no run count too: a deduplicated schedule under a parked handler cannot spin forever', async () => {
    t = await createTestQueue({ maxRuns: 200 });
    const q = t;
    q.queue.register('held', async () => {
      await q.clock.sleep(Infinity); // holds the one slot for ever
    });
    q.queue.register('tick', async () => {});
    await q.queue.enqueue('held', null);
    await q.queue.schedule('tick', every(1000), { overlap: false }); // after the first fire, each slot dedups: no run
    const err = await within(
      q.clock.advance(100 * YEAR).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message: string },
      ),
      20_000,
      'advance(100 years)',
    );
    assert.equal(err?.code, 'INVALID_STATE');
    assert.match(err?.message ?? '', /200 instants/);
  });

  it('a job that keeps enqueueing itself at the same instant makes drain() reject at the run budget', async () => {
    t = await createTestQueue({ maxRuns: 100 });
    const q = t;
    q.queue.register('again', async (n: number) => void (await q.queue.enqueue('again', n + 1)));
    await q.queue.enqueue('again', 0);
    await assert.rejects(within(q.drain(), 20_000, 'drain()'), (e: { code?: string; message: string }) => e.code === 'INVALID_STATE' && /"again"/.test(e.message));
    assert.equal(q.clock.now().getTime(), T0, 'drain() never moved time');
  });

  it('a handler that never settles and never parks makes drain() reject after stallTimeout, naming the job and the fix', async () => {
    t = await createTestQueue({ stallTimeout: 300 });
    const q = t;
    let aborted: unknown;
    q.queue.register('hangs', async (_a: null, ctx) => {
      ctx.abortSignal.addEventListener('abort', () => (aborted = ctx.abortSignal.reason));
      await new Promise(() => {}); // neither real I/O that ends nor the virtual clock
    });
    const id = await q.queue.enqueue('hangs', null);
    const started = performance.now();
    const err = await within(
      q.drain().then(
        () => undefined,
        (e: unknown) => e as { code?: string; message: string },
      ),
      10_000,
      'drain()',
    );
    assert.ok(performance.now() - started < 5_000);
    assert.equal(err?.code, 'WAIT_TIMEOUT');
    assert.match(err?.message ?? '', /"hangs"/);
    assert.ok(err?.message.includes(id), 'the error names the job id');
    assert.match(err?.message ?? '', /t\.clock\.sleep/, 'the error points at the virtual-clock wait');
    assert.match(err?.message ?? '', /stallTimeout/);
    assert.equal((aborted as { code?: string } | undefined)?.code, 'LEASE_LOST', 'the stuck handler is told to stop');
    assert.equal(q.runs[0]?.outcome, 'abandoned');
    // The kit stays usable: the job is taken back when its lease runs out, as a crashed worker's would be.
    q.queue.register('other', async () => 'ok');
    const other = await q.queue.enqueue('other', null);
    await q.drain();
    assert.equal((await q.queue.getJob(other))?.status, 'completed');
  });

  it('a handler that waits only on its abortSignal under a job timeout: the kit says to use t.clock.sleep, which fires the timeout on time', async () => {
    t = await createTestQueue({ stallTimeout: 300 });
    const q = t;
    q.queue.register('waits-for-abort', async (_a: null, ctx) => {
      await new Promise((_r, reject) => ctx.abortSignal.addEventListener('abort', () => reject(ctx.abortSignal.reason)));
    });
    await q.queue.enqueue('waits-for-abort', null, { timeout: MINUTE, retries: 0 });
    await assert.rejects(within(q.clock.advance(HOUR), 10_000, 'advance()'), (e: { code?: string; message: string }) => e.code === 'WAIT_TIMEOUT' && /abortSignal/.test(e.message));

    q.queue.register('sleeps-until-abort', async (_a: null, ctx) => {
      await q.clock.sleep(Infinity, { signal: ctx.abortSignal });
    });
    const at = q.clock.now().getTime();
    const id = await q.queue.enqueue('sleeps-until-abort', null, { timeout: MINUTE, retries: 0 });
    await q.clock.advance(HOUR);
    const job = await q.queue.getJob(id);
    assert.equal(job?.status, 'failed');
    assert.equal(job?.completedAt?.getTime(), at + MINUTE);
  });

  it('a job timeout on a handler that ignores its abortSignal fails the job as timed out at its instant and frees the slot', async () => {
    t = await createTestQueue();
    const q = t;
    q.queue.register('ignores-abort', async () => {
      await q.clock.sleep(HOUR); // an hour of work that does not listen to ctx.abortSignal
      return 'finished anyway';
    });
    const ran: number[] = [];
    q.queue.register('next', async () => void ran.push(q.clock.now().getTime()));
    const id = await q.queue.enqueue('ignores-abort', null, { timeout: 10 * MINUTE, retries: 0 });
    await q.queue.enqueue('next', null, { delay: MINUTE });
    await q.clock.advance(2 * HOUR);
    const job = await q.queue.getJob(id);
    assert.equal(job?.status, 'failed');
    assert.match(job?.lastError ?? '', /timed out/, `failed for its timeout, not a lost lease (${job?.lastError})`);
    assert.equal(job?.completedAt?.getTime(), T0 + 10 * MINUTE);
    assert.deepEqual(ran, [T0 + 10 * MINUTE], 'the next job ran as soon as the timed-out run gave its slot back');
    assert.deepEqual(
      q.runsOf('ignores-abort').map((r) => [r.outcome, r.endedAt?.getTime()]),
      [['failed', T0 + 10 * MINUTE]],
    );
  });

  it('advance() and set() past the last valid Date reject and leave the clock where it was', async () => {
    t = await createTestQueue();
    const q = t;
    await assert.rejects(q.clock.advance(Number.MAX_SAFE_INTEGER), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(q.clock.advance(8.64e15), { code: 'INVALID_ARGUMENT' });
    assert.equal(q.clock.now().getTime(), T0);
    q.queue.register('later', async () => {});
    await q.queue.enqueue('later', null, { delay: 1000 });
    await q.clock.advance(1000);
    assert.equal(q.runs.length, 1);
  });

  it('close() while drain() waits for a stuck handler settles both', async () => {
    t = await createTestQueue({ stallTimeout: 60_000 });
    const q = t;
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    q.queue.register('stuck', async () => {
      entered();
      await new Promise(() => {});
    });
    await q.queue.enqueue('stuck', null);
    const draining = q.drain();
    await inHandler;
    await within(Promise.all([draining, q.close()]), 5_000, 'drain() and close()');
    assert.equal(q.runs[0]?.outcome, 'abandoned');
    await assert.rejects(q.queue.enqueue('stuck', null), { code: 'STORAGE_CLOSED' });
  });

  it('draining a backlog of 2,000 jobs takes time linear in the backlog, not quadratic', async () => {
    t = await createTestQueue();
    const q = t;
    let n = 0;
    q.queue.register('item', async () => void n++);
    await q.queue.enqueueBatch(Array.from({ length: 2000 }, (_, i) => ({ type: 'item', args: i })));
    await within(q.drain(), 10_000, 'drain() of 2,000 jobs'); // quadratic: ~20 s; linear: ~1 s
    assert.equal(n, 2000);
  });

  it('two test queues at once keep their own clocks, schedules and events', async () => {
    t = await createTestQueue();
    const a = t;
    const b = await createTestQueue({ now: new Date('2030-06-01T00:00:00Z') });
    try {
      const seen: string[] = [];
      const events: string[] = [];
      const stream = b.queue.events();
      const collecting = (async () => {
        for await (const e of stream) if (e.type === 'job.completed') events.push(e.job.type);
      })();
      a.queue.register('a-tick', async () => void seen.push(`a@${a.clock.now().toISOString()}`));
      b.queue.register('b-tick', async () => void seen.push(`b@${b.clock.now().toISOString()}`));
      await a.queue.schedule('a-tick', every(HOUR));
      await b.queue.schedule('b-tick', every(2 * HOUR));
      await Promise.all([a.clock.advance(2 * HOUR), b.clock.advance(4 * HOUR)]);
      assert.deepEqual(
        seen.filter((s) => s.startsWith('a')),
        ['a@2025-01-01T01:00:00.000Z', 'a@2025-01-01T02:00:00.000Z'],
      );
      assert.deepEqual(
        seen.filter((s) => s.startsWith('b')),
        ['b@2030-06-01T02:00:00.000Z', 'b@2030-06-01T04:00:00.000Z'],
      );
      assert.deepEqual(await a.queue.schedules().then((s) => s.map((x) => x.name)), ['a-tick']);
      await stream.return?.();
      await collecting;
      assert.ok(events.every((e) => e === 'b-tick'));
    } finally {
      await b.close();
    }
  });
});
