/**
 * The users' test kit on its virtual clock (`createTestQueue`, SQLite only: the kit is in-memory
 * SQLite by design): schedules, durable sleeps, retry backoff, signal and fan-out timeouts, job
 * timeouts, delay/runAt and time-zone crons all follow `clock.advance()`, nothing runs before its
 * virtual instant, and each scenario takes well under a second of real time.
 * @storage sqlite
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestQueue, TEST_CLOCK_START, type TestQueue } from '../../src/testing/index.js';
import { cron, daily, every, retryAfter, sub } from '../../src/index.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const T0 = TEST_CLOCK_START.getTime();
/** A generous real-time bound: a sanity check, not a timing assertion. */
const REAL_BOUND_MS = 1000;

const iso = (ms: number): string => new Date(ms).toISOString();

describe('createTestQueue: virtual clock', () => {
  let t: TestQueue | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('a daily(9, 0) report over 30 virtual days fires 30 times, each at 09:00 of its day, in order', async () => {
    const started = performance.now();
    t = await createTestQueue();
    const q = t;
    const seen: { at: number; slot: string }[] = [];
    q.queue.register('daily-report', async (_args, ctx) => {
      seen.push({ at: q.clock.now().getTime(), slot: String(ctx.job.meta['scheduledFor']) });
    });
    await q.queue.schedule('daily-report', daily(9, 0));
    await q.clock.advance(30 * DAY);
    assert.equal(seen.length, 30);
    seen.forEach((s, i) => {
      const due = T0 + i * DAY + 9 * HOUR;
      assert.equal(iso(s.at), iso(due), `report ${i} ran at its slot, never before`);
      assert.equal(s.slot, iso(due));
    });
    assert.deepEqual(
      q.runsOf('daily-report').map((r) => r.outcome),
      Array(30).fill('completed'),
    );
    assert.equal(q.clock.now().getTime(), T0 + 30 * DAY);
    assert.ok(performance.now() - started < REAL_BOUND_MS, 'ran in well under a second of real time');
  });

  it('a workflow that sleeps 7 days between steps wakes at each virtual instant; drain() does not wait for it', async () => {
    const started = performance.now();
    t = await createTestQueue();
    const q = t;
    const steps: string[] = [];
    q.queue.register('step', async (name: string) => void steps.push(`${name}@${q.clock.now().toISOString()}`));
    q.queue.register('onboarding', async (_args: null, ctx) => {
      await ctx.call('step', 'welcome');
      await ctx.sleep(7 * DAY);
      await ctx.call('step', 'tips');
      await ctx.sleep(7 * DAY);
      await ctx.call('step', 'survey');
    });
    const id = await q.queue.enqueue('onboarding', null);
    await q.drain();
    assert.deepEqual(steps, [`welcome@${iso(T0)}`]);
    assert.equal((await q.queue.getJob(id))?.status, 'waiting');
    await q.clock.advance(7 * DAY - 1);
    assert.equal(steps.length, 1, 'nothing ran before the wake time');
    await q.clock.advance(1);
    assert.deepEqual(steps, [`welcome@${iso(T0)}`, `tips@${iso(T0 + 7 * DAY)}`]);
    await q.clock.advance(30 * DAY);
    assert.deepEqual(steps, [`welcome@${iso(T0)}`, `tips@${iso(T0 + 7 * DAY)}`, `survey@${iso(T0 + 14 * DAY)}`]);
    assert.equal((await q.queue.getJob(id))?.status, 'completed');
    assert.deepEqual(
      q.runsOf('onboarding').map((r) => [r.startedAt.toISOString(), r.outcome]),
      [
        [iso(T0), 'suspended'],
        [iso(T0 + 7 * DAY), 'suspended'],
        [iso(T0 + 14 * DAY), 'completed'],
      ],
    );
    assert.ok(performance.now() - started < REAL_BOUND_MS);
  });

  it('retryAfter(one hour) retries exactly one virtual hour later, not before', async () => {
    const started = performance.now();
    t = await createTestQueue();
    const q = t;
    let calls = 0;
    q.queue.register('flaky-api', async () => {
      if (++calls === 1) throw retryAfter(3_600_000, new Error('rate limited'));
      return 'ok';
    });
    const id = await q.queue.enqueue('flaky-api', null);
    await q.drain();
    assert.equal((await q.queue.getJob(id))?.status, 'pending');
    await q.clock.advance(HOUR - 1);
    assert.equal(calls, 1, 'not retried before the hour');
    await q.clock.advance(1);
    assert.equal(calls, 2);
    const job = await q.queue.getJob(id);
    assert.equal(job?.status, 'completed');
    assert.deepEqual(
      q.runsOf('flaky-api').map((r) => [r.attempt, r.startedAt.getTime() - T0, r.outcome, r.error]),
      [
        [1, 0, 'retrying', 'rate limited'],
        [2, HOUR, 'completed', undefined],
      ],
    );
    assert.ok(performance.now() - started < REAL_BOUND_MS);
  });

  it('the default exponential backoff runs on the virtual clock (no jitter in the kit: 1 s, 2 s, 4 s)', async () => {
    t = await createTestQueue();
    const q = t;
    q.queue.register('always-fails', async () => {
      throw new Error('down');
    });
    const id = await q.queue.enqueue('always-fails', null, { retries: 3 });
    await q.clock.advance(HOUR);
    assert.deepEqual(
      q.runsOf('always-fails').map((r) => [r.attempt, r.startedAt.getTime() - T0, r.outcome]),
      [
        [1, 0, 'retrying'],
        [2, 1000, 'retrying'],
        [3, 3000, 'retrying'],
        [4, 7000, 'failed'],
      ],
    );
    assert.equal((await q.queue.getJob(id))?.status, 'failed');
  });

  it('a custom backoff is used as given', async () => {
    t = await createTestQueue({ backoff: (attempt) => attempt * HOUR });
    const q = t;
    q.queue.register('fails', async () => {
      throw new Error('no');
    });
    await q.queue.enqueue('fails', null, { retries: 2 });
    await q.clock.advance(DAY);
    assert.deepEqual(
      q.runsOf('fails').map((r) => r.startedAt.getTime() - T0),
      [0, HOUR, 3 * HOUR],
    );
  });

  it('a signal wait times out after a virtual day; a signal sent in time is received', async () => {
    const started = performance.now();
    t = await createTestQueue();
    const q = t;
    const answers: { at: number; value: unknown }[] = [];
    q.queue.register('approval', async (_args: null, ctx) => {
      const value = await ctx.waitForSignal<{ by: string }>('approve', { timeout: DAY });
      answers.push({ at: q.clock.now().getTime(), value: value ?? 'timed out' });
    });
    const late = await q.queue.enqueue('approval', null);
    await q.drain();
    await q.clock.advance(DAY - 1);
    assert.deepEqual(answers, [], 'still waiting one ms before the deadline');
    assert.equal((await q.queue.getJob(late))?.status, 'waiting');
    await q.clock.advance(1);
    assert.deepEqual(answers, [{ at: T0 + DAY, value: 'timed out' }]);

    const inTime = await q.queue.enqueue('approval', null);
    await q.drain();
    await q.clock.advance(HOUR);
    await q.queue.signal(inTime, 'approve', { by: 'alice' });
    await q.drain();
    assert.deepEqual(answers[1], { at: T0 + DAY + HOUR, value: { by: 'alice' } });
    assert.equal((await q.queue.getJob(inTime))?.status, 'completed');
    assert.ok(performance.now() - started < REAL_BOUND_MS);
  });

  it('a job timeout fires on the virtual clock while the handler waits on t.clock.sleep', async () => {
    t = await createTestQueue();
    const q = t;
    let aborted: unknown;
    q.queue.register('slow-export', async (_args: null, ctx) => {
      try {
        await q.clock.sleep(HOUR, { signal: ctx.abortSignal }); // stands for an hour of work
      } catch (err) {
        aborted = err;
        throw err;
      }
    });
    const id = await q.queue.enqueue('slow-export', null, { timeout: 10 * MINUTE, retries: 0 });
    await q.drain();
    assert.equal((await q.queue.getJob(id))?.status, 'running', 'parked on the virtual clock: drain() resolved without it');
    await q.clock.advance(10 * MINUTE - 1);
    assert.equal(aborted, undefined, 'not aborted before its timeout');
    await q.clock.advance(1);
    const job = await q.queue.getJob(id);
    assert.equal(job?.status, 'failed');
    assert.match(job?.lastError ?? '', /timed out|timeout/i);
    assert.equal((aborted as { code?: string } | undefined)?.code, 'JOB_TIMEOUT');
    assert.equal(q.runsOf('slow-export')[0]?.endedAt?.getTime(), T0 + 10 * MINUTE);
  });

  it('a handler parked for days keeps its lease: it is not reclaimed, and it finishes on its one attempt', async () => {
    t = await createTestQueue();
    const q = t;
    const reclaimed: string[] = [];
    q.queue.register('long-haul', async () => {
      await q.clock.sleep(3 * DAY);
      return 'done';
    });
    const stream = q.queue.events();
    const collecting = (async () => {
      for await (const e of stream) if (e.type === 'job.reclaimed') reclaimed.push(e.jobId);
    })();
    const id = await q.queue.enqueue('long-haul', null);
    await q.clock.advance(5 * DAY);
    const job = await q.queue.getJob(id);
    assert.equal(job?.status, 'completed');
    assert.equal(job?.attempt, 1);
    assert.equal(job?.completedAt?.getTime(), T0 + 3 * DAY);
    assert.equal(q.runs.length, 1);
    assert.deepEqual(reclaimed, []);
    await stream.return?.();
    await collecting;
  });

  it('a fan-out times out on the virtual clock: the parent resumes at its deadline and fails', async () => {
    t = await createTestQueue();
    const q = t;
    q.queue.register('resize', async (ms: number, ctx) => {
      await ctx.sleep(ms);
      return ms;
    });
    let error: string | undefined;
    q.queue.register('batch', async (_args: null, ctx) => {
      try {
        await ctx.fanOut([sub('resize', 10 * MINUTE), sub('resize', 3 * HOUR)], { timeout: HOUR });
      } catch (err) {
        error = (err as Error).message;
        throw err;
      }
    });
    const id = await q.queue.enqueue('batch', null, { retries: 0 });
    await q.clock.advance(HOUR - 1);
    assert.equal((await q.queue.getJob(id))?.status, 'waiting', 'still waiting before the deadline');
    await q.clock.advance(1);
    const parent = await q.queue.getJob(id);
    assert.equal(parent?.status, 'failed');
    assert.match(error ?? '', /timed out/);
    assert.equal(parent?.completedAt?.getTime(), T0 + HOUR);
    const kids = await q.queue.listJobs({ parentId: id, order: 'asc' });
    assert.deepEqual(
      kids.jobs.map((k) => k.status),
      ['completed', 'cancelled'],
    );
  });

  it('delay and runAt: each job runs at its virtual instant, in due order across queues', async () => {
    t = await createTestQueue();
    const q = t;
    const ran: string[] = [];
    q.queue.register('note', async (name: string) => void ran.push(`${name}@${q.clock.now().getTime() - T0}`));
    await q.queue.enqueue('note', 'at-2h', { runAt: new Date(T0 + 2 * HOUR), queue: 'slow' });
    await q.queue.enqueue('note', 'in-10m', { delay: 10 * MINUTE });
    await q.queue.enqueue('note', 'now', { queue: 'other' });
    await q.clock.advance(DAY);
    assert.deepEqual(ran, ['now@0', `in-10m@${10 * MINUTE}`, `at-2h@${2 * HOUR}`]);
  });

  it('jobs due at one instant run by priority, then in enqueue order, across queues', async () => {
    t = await createTestQueue();
    const q = t;
    const ran: string[] = [];
    q.queue.register('p', async (name: string) => void ran.push(name));
    await q.queue.enqueue('p', 'a');
    await q.queue.enqueue('p', 'b', { priority: 10, queue: 'q2' });
    await q.queue.enqueue('p', 'c');
    await q.queue.enqueue('p', 'd', { queue: 'q2' });
    await q.queue.enqueueBatch([
      { type: 'p', args: 'e' },
      { type: 'p', args: 'f', options: { priority: 10 } },
    ]);
    assert.deepEqual(ran, [], 'nothing runs until drain()');
    await q.drain();
    assert.deepEqual(ran, ['b', 'f', 'a', 'c', 'd', 'e']);
  });

  it('a time-zone cron fires at its local wall-clock time (Berlin 09:00 on weekdays, across the DST change)', async () => {
    t = await createTestQueue({ now: new Date('2025-03-27T00:00:00Z') }); // a Thursday; DST starts Sunday 30 March
    const q = t;
    const at: string[] = [];
    q.queue.register('eu-report', async () => void at.push(q.clock.now().toISOString()));
    await q.queue.schedule('eu-report', cron('0 9 * * 1-5', { timezone: 'Europe/Berlin' }));
    await q.clock.advance(7 * DAY);
    assert.deepEqual(at, [
      '2025-03-27T08:00:00.000Z', // Thu, CET (UTC+1)
      '2025-03-28T08:00:00.000Z', // Fri
      '2025-03-31T07:00:00.000Z', // Mon, CEST (UTC+2)
      '2025-04-01T07:00:00.000Z',
      '2025-04-02T07:00:00.000Z',
    ]);
  });

  it('a rate limit is honoured on the virtual clock: each held-back start runs at the instant it is allowed', async () => {
    t = await createTestQueue();
    const q = t;
    q.queue.register('sync', async () => {}, { rateLimit: { limit: 1, period: MINUTE } });
    for (let i = 0; i < 3; i++) await q.queue.enqueue('sync', i);
    await q.clock.advance(HOUR);
    const starts = q.runsOf('sync').map((r) => r.startedAt.getTime() - T0);
    assert.equal(starts.length, 3);
    assert.equal(starts[0], 0);
    for (let i = 1; i < 3; i++) {
      const gap = (starts[i] ?? 0) - (starts[i - 1] ?? 0);
      assert.ok(gap > 0 && gap <= MINUTE, `start ${i} came at its allowed instant (${gap} ms after the previous), not at the end of the advance`);
    }
  });

  it('clock.set() moves to a date, visiting every slot in between', async () => {
    t = await createTestQueue();
    const q = t;
    q.queue.register('tick', async () => {});
    await q.queue.schedule('tick', every(HOUR));
    await q.clock.set(new Date(T0 + 5 * HOUR));
    assert.deepEqual(
      q.runsOf('tick').map((r) => r.startedAt.getTime() - T0),
      [HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR, 5 * HOUR],
    );
    assert.equal(q.clock.now().getTime(), T0 + 5 * HOUR);
  });

  it('drain() runs what is due now and resolves; jobs for later and signal waits stay waiting', async () => {
    t = await createTestQueue();
    const q = t;
    q.queue.register('waits', async (_a: null, ctx) => void (await ctx.waitForSignal('never')));
    q.queue.register('later', async () => {});
    const w = await q.queue.enqueue('waits', null);
    const l = await q.queue.enqueue('later', null, { delay: DAY });
    await q.drain();
    await q.drain();
    assert.equal((await q.queue.getJob(w))?.status, 'waiting');
    assert.equal((await q.queue.getJob(l))?.status, 'pending');
    assert.equal(q.clock.now().getTime(), T0, 'drain() never moves time');
  });
});
