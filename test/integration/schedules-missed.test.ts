/**
 * Missed-slot policies through a worker restart, on every driver. Storages get an injected
 * clock so a test can stage 25 minutes of downtime: a ten-minute schedule fires on time,
 * every scheduler stops, the clock jumps past two more slots, and two schedulers restart.
 * Also: a failed fire is retried, and schedulers whose clocks disagree (by less than a
 * period) still fire each slot once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import type { MissedPolicy } from '../../src/scheduler/missed.js';
import type { Storage } from '../../src/storage/storage.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { assertConsecutive, clockedDb, iso, jobsOf, uniqueSlots } from '../helpers/schedule-helpers.js';

const fast = { pollInterval: 20, maintenanceInterval: 50, handleSignals: false } as const;
const MIN = 60_000;
const PERIOD = 10 * MIN;
/** A ten-minute boundary in the future (any will do: the clock is injected). */
const F = Date.UTC(2031, 0, 1);

/** The slots each policy fires: s1 on time, then (after downtime over F+20 and F+30) per policy. */
const EXPECTED: Record<MissedPolicy, number[]> = {
  latest: [F + 10 * MIN, F + 30 * MIN],
  all: [F + 10 * MIN, F + 20 * MIN, F + 30 * MIN],
  skip: [F + 10 * MIN],
};

for (const [dialect] of storageMatrix()) {
  describe(`missed schedule slots (${dialect})`, () => {
    for (const policy of ['latest', 'all', 'skip'] as const) {
      it(`missed: '${policy}' — after downtime over two slots, two restarted schedulers fire ${EXPECTED[policy].length - 1} of them`, async () => {
        const db = await clockedDb(dialect, `missed-${policy}-${dialect}`);
        const shift = { ms: 0 };
        const clock = (): number => Date.now() + shift.ms;
        const setNow = (t: number): void => void (shift.ms = t - Date.now());
        try {
          setNow(F + 9.5 * MIN);
          const queues = [new Queue(await db.open(clock)), new Queue(await db.open(clock))];
          for (const q of queues) q.register('tick', async () => {});
          const [q0] = queues as [Queue, Queue];
          await q0.schedule('tick', every(PERIOD), { missed: policy, queue: 'missed' });
          const info = async (): Promise<Awaited<ReturnType<Queue['schedules']>>[number]> => (await q0.schedules())[0]!;
          assert.equal((await info()).nextRunAt.getTime(), F + 10 * MIN, 'first fire: the next slot after registration');
          const options = { ...fast, scheduler: true, queues: { missed: { concurrency: 1 } } };

          // Running: the first slot comes due and fires on time.
          const w = q0.newWorker(options);
          const r = w.start();
          try {
            setNow(F + 10 * MIN + 500);
            await waitFor(async () => (await jobsOf(q0, 'tick')).some((j) => j.status === 'completed'), { message: 'on-time fire' });
          } finally {
            await w.stop();
            await r;
          }

          // Down for 25 minutes: F+20 and F+30 pass with no scheduler running.
          setNow(F + 35 * MIN);
          assert.equal((await info()).nextRunAt.getTime(), F + 20 * MIN, 'the first missed slot is stored');
          const workers = queues.map((q) => q.newWorker(options));
          const running = workers.map((x) => x.start());
          try {
            await waitFor(async () => (await info()).nextRunAt.getTime() === F + 40 * MIN, { message: 'the restart handled the missed slots' });
            await waitFor(async () => (await jobsOf(q0, 'tick')).filter((j) => j.status === 'completed').length >= EXPECTED[policy].length, { message: 'fired jobs ran' });
          } finally {
            await Promise.all(workers.map((x) => x.stop()));
            await Promise.all(running);
          }
          const slots = uniqueSlots(await jobsOf(q0, 'tick'));
          assert.deepEqual(slots.map(iso), EXPECTED[policy].map(iso));
          const after = await info();
          assert.equal(after.lastRunAt?.getTime(), F + 30 * MIN, 'the latest due slot is recorded as handled');
          assert.equal(after.nextRunAt.getTime(), F + 40 * MIN);
        } finally {
          await db.cleanup();
        }
      });
    }

    it('a slot whose fire failed is retried, not lost', async () => {
      const db = await clockedDb(dialect, `fire-fails-${dialect}`);
      const shift = { ms: 0 };
      const setNow = (t: number): void => void (shift.ms = t - Date.now());
      try {
        setNow(F + 9.5 * MIN);
        const real = await db.open(() => Date.now() + shift.ms);
        // The first fire fails as a lost connection would; later ones go through.
        let fires = 0;
        const flaky = new Proxy(real, {
          get(target, prop) {
            const v: unknown = Reflect.get(target, prop, target);
            if (prop === 'scheduleFire') {
              return async (...args: Parameters<Storage['scheduleFire']>) => {
                if (fires++ === 0) throw new Error('connection reset during the fire');
                return target.scheduleFire(...args);
              };
            }
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        });
        const queue = new Queue(flaky);
        queue.register('tick', async () => {});
        await queue.schedule('tick', every(PERIOD), { queue: 'flaky' });
        const worker = queue.newWorker({ ...fast, scheduler: true, queues: { flaky: { concurrency: 1 } } });
        const running = worker.start();
        try {
          setNow(F + 10 * MIN + 100);
          await waitFor(async () => (await jobsOf(queue, 'tick')).some((j) => j.status === 'completed'), { message: 'the retried fire' });
        } finally {
          await worker.stop();
          await running;
        }
        assert.ok(fires >= 2, `the fire was retried (${fires} attempts)`);
        assert.deepEqual(uniqueSlots(await jobsOf(queue, 'tick')).map(iso), [iso(F + 10 * MIN)]);
        assert.equal((await queue.schedules())[0]?.nextRunAt.getTime(), F + 20 * MIN);
      } finally {
        await db.cleanup();
      }
    });

    it('schedulers whose clocks disagree by ±150 ms fire each slot once', async () => {
      const db = await clockedDb(dialect, `skew-${dialect}`);
      const period = 400;
      try {
        const skews = [0, 150, -150];
        const queues = await Promise.all(skews.map(async (s) => new Queue(await db.open(() => Date.now() + s))));
        for (const q of queues) q.register('skewed', async () => {});
        const [q0] = queues as [Queue];
        await q0.schedule('skewed', every(period), { queue: 'skewed', missed: 'all' }); // no merging on a slow database
        const first = (await q0.schedules())[0]!.nextRunAt.getTime();
        const workers = queues.map((q) => q.newWorker({ ...fast, scheduler: true, queues: { skewed: { concurrency: 2 } } }));
        const running = workers.map((w) => w.start());
        try {
          await waitFor(async () => (await jobsOf(q0, 'skewed')).filter((j) => j.status === 'completed').length >= 6, { message: 'six fires' });
        } finally {
          await Promise.all(workers.map((w) => w.stop()));
          await Promise.all(running);
        }
        const slots = uniqueSlots(await jobsOf(q0, 'skewed'));
        assert.equal(iso(slots[0]!), iso(first), 'the first fire is the next slot after registration');
        assertConsecutive(slots, period, 'skewed schedulers');
      } finally {
        await db.cleanup();
      }
    });
  });
}
