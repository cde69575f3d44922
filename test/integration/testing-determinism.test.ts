/**
 * The users' test kit (`createTestQueue`, in-memory SQLite only): the same scenario gives the
 * same trace 1,000 times in a row; bad arguments are typed errors; close() is idempotent; a
 * handler cannot wait for the kit that runs it; the older helpers stay exported.
 * @storage sqlite
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as testing from '../../src/testing/index.js';
import { createTestQueue, TEST_CLOCK_START, type TestQueue } from '../../src/testing/index.js';
import { daily, retryAfter, sub } from '../../src/index.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * A representative scenario: a daily schedule, a workflow that sleeps, fans out and waits for a
 * signal that times out, a job that retries with backoff, priorities at one instant. Returns
 * its trace: every run's type, args, attempt, virtual start and end, and outcome, then every
 * job's final status.
 */
async function scenario(): Promise<string[]> {
  const t = await createTestQueue();
  try {
    const q = t.queue;
    q.register('report', async () => 'ok');
    q.register('part', async (n: number) => n * 2);
    q.register('flow', async (n: number, ctx) => {
      await ctx.sleep(HOUR * n);
      const parts = await ctx.fanOut<number>([sub('part', n), sub('part', n + 1, { priority: 5 })]);
      const answer = await ctx.waitForSignal('go', { timeout: HOUR });
      return { parts: parts.map((p) => p.value), answer: answer ?? null };
    });
    let calls = 0;
    q.register('flaky', async () => {
      calls++;
      if (calls === 1) throw retryAfter(30 * 60_000, new Error('busy'));
      if (calls === 2) throw new Error('still busy');
    });
    await q.schedule('report', daily(6, 30));
    await q.enqueue('flow', 1);
    await q.enqueue('flow', 2, { priority: 3 });
    await q.enqueue('flaky', null, { retries: 3 });
    await t.clock.advance(2 * DAY);
    const trace = t.runs.map((r) => `${r.type}(${JSON.stringify(r.args)}) #${r.attempt} ${r.startedAt.toISOString()}→${r.endedAt?.toISOString() ?? '-'} ${r.outcome ?? '-'}`);
    const jobs = await q.listJobs({ order: 'asc', limit: 500 });
    for (const j of jobs.jobs) trace.push(`${j.type} ${j.status} ${JSON.stringify(j.result ?? null)}`);
    return trace;
  } finally {
    await t.close();
  }
}

describe('createTestQueue: determinism and API', () => {
  let t: TestQueue | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('the same scenario gives an identical trace 1,000 times in a row', async () => {
    const first = await scenario();
    assert.ok(first.length > 10, `the scenario did something: ${first.join('\n')}`);
    assert.ok(first.some((l) => l.startsWith('flow') && l.includes('completed')));
    for (let i = 1; i < 1000; i++) {
      const trace = await scenario();
      if (trace.join('\n') !== first.join('\n')) assert.deepEqual(trace, first, `run ${i + 1} differs`);
    }
  });

  it('the clock starts at the documented instant, or at `now`', async () => {
    t = await createTestQueue();
    assert.equal(t.clock.now().toISOString(), '2025-01-01T00:00:00.000Z');
    assert.equal(TEST_CLOCK_START.toISOString(), '2025-01-01T00:00:00.000Z');
    await t.close();
    t = await createTestQueue({ now: new Date('2030-06-15T12:00:00Z') });
    assert.equal(t.clock.now().toISOString(), '2030-06-15T12:00:00.000Z');
    const id = await t.queue.enqueue('x', null);
    assert.equal((await t.queue.getJob(id))?.createdAt.toISOString(), '2030-06-15T12:00:00.000Z', 'the storage reads the virtual clock');
  });

  it('bad arguments reject with InvalidArgumentError and move nothing', async () => {
    t = await createTestQueue();
    const q = t;
    const bad: unknown[] = [-1, NaN, Infinity, -Infinity, '1000', null, undefined];
    for (const ms of bad) {
      await assert.rejects(q.clock.advance(ms as number), { code: 'INVALID_ARGUMENT' }, `advance(${String(ms)})`);
    }
    await assert.rejects(q.clock.set(new Date(Number.NaN)), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(q.clock.set(new Date(TEST_CLOCK_START.getTime() - 1)), { code: 'INVALID_ARGUMENT' }, 'time never moves back');
    await assert.rejects(q.clock.set('2025-02-01' as unknown as Date), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(q.clock.sleep(-5), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(q.clock.sleep(NaN), { code: 'INVALID_ARGUMENT' });
    assert.equal(q.clock.now().getTime(), TEST_CLOCK_START.getTime());
    await assert.rejects(createTestQueue({ now: new Date('nope') }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(createTestQueue({ now: 5 as unknown as Date }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(createTestQueue({ leaseTimeout: 0 }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(createTestQueue({ clock: 1 } as never), { code: 'INVALID_ARGUMENT' });
    await q.clock.advance(0);
  });

  it('close() twice resolves; the queue refuses to drain or advance after it', async () => {
    t = await createTestQueue();
    const q = t;
    await q.close();
    await q.close();
    await assert.rejects(q.drain(), { code: 'INVALID_STATE' });
    await assert.rejects(q.clock.advance(1), { code: 'INVALID_STATE' });
  });

  it('close() abandons a handler parked on the virtual clock', async () => {
    t = await createTestQueue();
    const q = t;
    let reason: unknown;
    q.queue.register('forever', async (_a: null, ctx) => {
      await q.clock.sleep(Infinity, { signal: ctx.abortSignal }).catch((err: unknown) => (reason = err));
    });
    await q.queue.enqueue('forever', null);
    await q.clock.advance(DAY);
    assert.equal(q.runs[0]?.outcome, undefined, 'still running');
    await q.close();
    assert.equal((reason as { code?: string } | undefined)?.code, 'LEASE_LOST');
    assert.equal(q.runs[0]?.outcome, 'abandoned');
  });

  it('a handler that calls drain() or advance() gets InvalidStateError instead of waiting for itself', async () => {
    t = await createTestQueue();
    const q = t;
    const codes: unknown[] = [];
    q.queue.register('impatient', async () => {
      for (const p of [q.drain(), q.clock.advance(1000), q.clock.set(new Date(TEST_CLOCK_START.getTime() + 1))]) {
        await p.catch((err: { code?: string }) => codes.push(err.code));
      }
    });
    await q.queue.enqueue('impatient', null);
    await q.drain();
    assert.deepEqual(codes, ['INVALID_STATE', 'INVALID_STATE', 'INVALID_STATE']);
    assert.equal(q.runs[0]?.outcome, 'completed');
  });

  it('calls made without awaiting run one after the other', async () => {
    t = await createTestQueue();
    const q = t;
    const at: number[] = [];
    q.queue.register('n', async () => void at.push(q.clock.now().getTime()));
    await q.queue.enqueue('n', null, { delay: HOUR });
    await Promise.all([q.clock.advance(HOUR), q.clock.advance(HOUR), q.drain()]);
    assert.deepEqual(at, [TEST_CLOCK_START.getTime() + HOUR]);
    assert.equal(q.clock.now().getTime(), TEST_CLOCK_START.getTime() + 2 * HOUR);
  });

  it('hooks and events see the runs the kit makes', async () => {
    t = await createTestQueue();
    const q = t;
    const completed: string[] = [];
    q.queue.onJobComplete((job) => void completed.push(`${job.type}@${job.completedAt?.toISOString()}`));
    q.queue.register('hooked', async () => 1);
    await q.queue.enqueue('hooked', null, { delay: 5000 });
    await q.clock.advance(5000);
    assert.deepEqual(completed, ['hooked@2025-01-01T00:00:05.000Z']);
  });

  it('the older helpers stay exported beside createTestQueue', () => {
    assert.equal(typeof testing.requireEnqueued, 'function');
    assert.equal(typeof testing.runJobOnce, 'function');
    assert.equal(typeof testing.createTestQueue, 'function');
  });
});
