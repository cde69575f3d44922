/**
 * Schedules through the public API on every driver: define / replace / list / unschedule,
 * validation, the first fire at the next slot, every slot once across two schedulers, a
 * re-definition taking effect, `overlap: false`, and catch-up after real downtime.
 * Missed-slot policies with staged downtime are in schedules-missed.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { InvalidArgumentError, InvalidScheduleError } from '../../src/errors.js';
import { cron, daily, every, weekly, type Schedule } from '../../src/scheduler/schedules.js';
import type { Job } from '../../src/types.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { assertConsecutive, iso, jobsOf, slotOf, uniqueSlots } from '../helpers/schedule-helpers.js';

const fast = { pollInterval: 20, maintenanceInterval: 50, handleSignals: false } as const;

/** A gate a handler can wait on. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = (): void => {};
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('schedule builders reject bad input with a clear message', () => {
  const cases: [string, () => Schedule, RegExp][] = [
    ['a malformed cron string', () => cron('not a cron'), /cron: invalid cron expression "not a cron": expected 5 fields/],
    ['a cron minute out of range', () => cron('61 * * * *'), /minute \(0-59\) value out of range/],
    ['a cron hour out of range', () => cron('0 24 * * *'), /hour \(0-23\) value out of range/],
    ['an unknown cron day name', () => cron('0 9 * * funday'), /day-of-week \(0-7 or SUN-SAT\) field "funday"/],
    ['a cron that never fires', () => cron('0 0 30 2 *'), /never fires/],
    ['a cron year field', () => cron('0 0 1 1 * 2030 *'), /year field/],
    ['an unknown cron time zone', () => cron('0 9 * * 1-5', { timezone: 'Mars/Olympus_Mons' }), /cron: unknown time zone "Mars\/Olympus_Mons"/],
    ['a daily hour out of range', () => daily(24, 0), /daily: hour must be an integer from 0 to 23, got 24/],
    ['a daily minute out of range', () => daily(9, 60), /daily: minute must be an integer from 0 to 59, got 60/],
    ['a fractional daily minute', () => daily(9, 1.5), /daily: minute must be an integer/],
    ['an unknown daily time zone', () => daily(9, 0, { timezone: 'Nowhere/Land' }), /daily: unknown time zone "Nowhere\/Land"/],
    ['an unknown weekly day name', () => weekly('funday', 2, 0), /weekly: unknown day name "funday"/],
    ['a weekly day number out of range', () => weekly(7, 2, 0), /weekly: day must be an integer from 0 to 6/],
    ['a weekly hour out of range', () => weekly('sunday', -1, 0), /weekly: hour must be an integer from 0 to 23, got -1/],
    ['an unknown weekly time zone', () => weekly('mon', 9, 0, { timezone: 'Europe/Atlantis' }), /weekly: unknown time zone "Europe\/Atlantis"/],
    ['a non-positive interval', () => every(0), /every: ms must be a positive finite integer/],
  ];
  for (const [what, build, message] of cases) {
    it(`rejects ${what}`, () => {
      assert.throws(build, (e: unknown) => {
        assert.ok(e instanceof InvalidScheduleError, `InvalidScheduleError, got ${String(e)}`);
        assert.equal(e.code, 'INVALID_SCHEDULE');
        assert.match(e.message, message);
        return true;
      });
    });
  }
});

for (const [name, make] of storageMatrix()) {
  describe(`schedules (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`schedules-${name}`);
    });
    after(() => ts.cleanup());

    it('queue.schedule rejects invalid definitions (a promise, nothing stored)', async () => {
      const queue = new Queue(ts.storage);
      const bad: [string, () => Promise<void>, RegExp, new (...a: never[]) => Error][] = [
        ['not a schedule', () => queue.schedule('v-1', '0 * * * *' as unknown as Schedule), /expected a schedule made by every\(\), daily\(\), weekly\(\) or cron\(\)/, InvalidScheduleError],
        ['a bad missed policy', () => queue.schedule('v-2', every(1000), { missed: 'sometimes' as 'all' }), /missed must be "skip", "latest" or "all"/, InvalidScheduleError],
        ['a bad overlap', () => queue.schedule('v-3', every(1000), { overlap: 'no' as unknown as boolean }), /overlap must be a boolean/, InvalidArgumentError],
        ['an unknown option', () => queue.schedule('v-4', every(1000), { cron: '* * * * *' } as object), /unknown option "cron"/, InvalidArgumentError],
        ['an empty name', () => queue.schedule('', every(1000)), /schedule name/, InvalidArgumentError],
        ['a bad priority', () => queue.schedule('v-6', every(1000), { priority: 1.5 }), /priority/, InvalidArgumentError],
      ];
      for (const [what, call, message, type] of bad) {
        const p = call();
        assert.ok(p instanceof Promise, `${what}: returns a promise`);
        await assert.rejects(p, (e: unknown) => {
          assert.ok(e instanceof type, `${what}: ${type.name}, got ${String(e)}`);
          assert.match((e as Error).message, message, what);
          return true;
        });
      }
      const stored = (await queue.schedules()).filter((s) => s.name.startsWith('v-') || s.name === '');
      assert.deepEqual(stored, []);
    });

    it('defines, lists, replaces and unschedules', async () => {
      const queue = new Queue(ts.storage);
      const t0 = await ts.storage.clockNow();
      await queue.schedule('list-a', every(60_000), { args: { x: 1 }, queue: 'reports', priority: 5, retries: 2, missed: 'all', overlap: false });
      await queue.schedule('list-b', daily(9, 30, { timezone: 'Europe/Berlin' }), { type: 'report' });
      const t1 = await ts.storage.clockNow();
      const mine = async (): Promise<Awaited<ReturnType<Queue['schedules']>>> => (await queue.schedules()).filter((s) => s.name.startsWith('list-'));
      const [a, b, ...rest] = await mine();
      assert.equal(rest.length, 0);
      assert.ok(a && b);
      assert.equal(a.name, 'list-a');
      assert.equal(a.type, 'list-a', 'the job type defaults to the schedule name');
      assert.deepEqual(a.schedule, { kind: 'every', ms: 60_000 });
      assert.equal(a.description, 'every 60000 ms');
      const aNext = a.nextRunAt.getTime();
      assert.equal(aNext % 60_000, 0, 'every() slots are aligned to the epoch');
      assert.ok(aNext > t0 && aNext <= t1 + 60_000, `next fire ${iso(aNext)} is the first slot after registration`);
      assert.equal(a.lastRunAt, undefined);
      assert.equal(a.lastJobId, undefined);
      assert.deepEqual(a.options, { args: { x: 1 }, queue: 'reports', priority: 5, retries: 2, missed: 'all', overlap: false });
      assert.equal(b.name, 'list-b');
      assert.equal(b.type, 'report');
      assert.deepEqual(b.schedule, { kind: 'daily', hour: 9, minute: 30, timezone: 'Europe/Berlin' });
      assert.equal(b.description, 'daily at 09:30 Europe/Berlin');
      assert.equal(b.nextRunAt.getTime(), daily(9, 30, { timezone: 'Europe/Berlin' }).next(new Date(t1)).getTime());

      // Same schedule, new options: the definition is replaced, the next fire is kept.
      await queue.schedule('list-a', every(60_000), { args: { x: 2 } });
      const [a2] = await mine();
      assert.deepEqual(a2?.options, { args: { x: 2 } });
      assert.equal(a2?.nextRunAt.getTime(), aNext);

      // A new schedule under the same name: the next fire is the new schedule's next slot.
      await queue.schedule('list-a', cron('0 */6 * * *'));
      const [a3] = await mine();
      assert.deepEqual(a3?.schedule, { kind: 'cron', expr: '0 */6 * * *' });
      assert.equal(a3?.nextRunAt.getTime(), cron('0 */6 * * *').next(new Date(await ts.storage.clockNow())).getTime());
      assert.deepEqual(a3?.options, {});

      assert.equal(await queue.unschedule('list-a'), true);
      assert.equal(await queue.unschedule('list-a'), false);
      assert.deepEqual((await mine()).map((s) => s.name), ['list-b']);
      assert.equal(await queue.unschedule('list-b'), true);
      assert.deepEqual(await mine(), []);
    });

    it('first fires at the next slot after registration, then every slot exactly once across two schedulers', async () => {
      const period = 300;
      const queues = [new Queue(ts.storage), new Queue(await ts.another())];
      for (const q of queues) q.register('fire-once', async () => 'ok');
      const registeredAt = await ts.storage.clockNow();
      // missed: 'all' so that a slow database cannot merge two due slots into one fire: the
      // subject here is exactly-once, not the missed policy (schedules-missed.test.ts).
      const opts = { args: { n: 1 }, queue: 'sched-once', priority: 7, retries: 1, meta: { team: 'ops' }, missed: 'all' } as const;
      await queues[0]!.schedule('fire-once', every(period), opts);
      const registeredBy = await ts.storage.clockNow();
      const first = (await queues[0]!.schedules()).find((s) => s.name === 'fire-once')!.nextRunAt.getTime();
      // The definition reads the clock somewhere between these two instants.
      assert.ok(first > registeredAt && first <= registeredBy + period, `first slot ${iso(first)} is the next one after registration (${iso(registeredAt)}..${iso(registeredBy)})`);
      const workers = queues.map((q) => q.newWorker({ ...fast, scheduler: true, queues: { 'sched-once': { concurrency: 2 } } }));
      const running = workers.map((w) => w.start());
      try {
        await waitFor(async () => (await jobsOf(queues[0]!, 'fire-once')).filter((j) => j.status === 'completed').length >= 6, { message: '6 fires' });
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
        await Promise.all(running);
      }
      const jobs = await jobsOf(queues[0]!, 'fire-once');
      const slots = uniqueSlots(jobs);
      assert.equal(slots[0], first, 'no slot before registration fired');
      assertConsecutive(slots, period, 'two schedulers');
      for (const j of jobs) {
        assert.deepEqual(j.args, { n: 1 });
        assert.equal(j.queue, 'sched-once');
        assert.equal(j.priority, 7);
        assert.equal(j.maxRetries, 1);
        assert.equal(j.meta['team'], 'ops');
        assert.equal(j.meta['schedule'], 'fire-once');
      }
      const info = (await queues[0]!.schedules()).find((s) => s.name === 'fire-once')!;
      const last = jobs.find((j) => slotOf(j) === slots.at(-1));
      assert.equal(info.lastRunAt?.getTime(), slots.at(-1));
      assert.equal(info.lastJobId, last?.id);
      assert.equal(info.nextRunAt.getTime(), slots.at(-1)! + period);
      assert.equal(await queues[0]!.unschedule('fire-once'), true);
    });

    it('a schedule defined while a scheduler runs is picked up at its next slot, with no burst or gap', async () => {
      const period = 200;
      const queue = new Queue(ts.storage);
      queue.register('late-def', async () => {});
      await queue.schedule('late-def-idle', daily(3, 0), { queue: 'sched-late' });
      let started = false;
      const noop = (): void => {};
      const logger = { debug: noop, warn: noop, error: noop, info: (m: string) => void (started ||= m === 'worker started') };
      const worker = queue.newWorker({ ...fast, logger, scheduler: true, queues: { 'sched-late': { concurrency: 2 } } });
      const running = worker.start();
      let first: number;
      try {
        await waitFor(() => started, { message: 'the worker and its scheduler started' });
        await queue.schedule('late-def', every(period), { queue: 'sched-late', missed: 'all' });
        first = (await queue.schedules()).find((s) => s.name === 'late-def')!.nextRunAt.getTime();
        await waitFor(async () => (await jobsOf(queue, 'late-def')).length >= 3, { message: 'three fires' });
        await queue.unschedule('late-def');
        await queue.unschedule('late-def-idle');
      } finally {
        await worker.stop();
        await running;
      }
      const slots = uniqueSlots(await jobsOf(queue, 'late-def'));
      assert.equal(iso(slots[0]!), iso(first), 'the first slot after the definition fired');
      assertConsecutive(slots, period, 'from the first slot');
    });

    it('a re-definition applies from the next fire; unschedule stops firing', async () => {
      const period = 300;
      const queue = new Queue(ts.storage);
      queue.register('redef', async () => {});
      queue.register('marker', async () => {});
      await queue.schedule('redef', every(period), { args: 'v1', queue: 'sched-redef', missed: 'all' });
      const worker = queue.newWorker({ ...fast, scheduler: true, queues: { 'sched-redef': { concurrency: 2 } } });
      const running = worker.start();
      let before: Job[];
      let after: Job[];
      try {
        await waitFor(async () => (await jobsOf(queue, 'redef')).some((j) => j.args === 'v1'), { message: 'a v1 fire' });
        await queue.schedule('redef', every(period), { args: 'v2', queue: 'sched-redef', missed: 'all' });
        const firstV2 = await waitFor(async () => (await jobsOf(queue, 'redef')).find((j) => j.args === 'v2'), { message: 'a v2 fire' });
        await waitFor(async () => (await jobsOf(queue, 'redef')).filter((j) => slotOf(j) > slotOf(firstV2)).length >= 2, { message: 'two more fires' });

        assert.equal(await queue.unschedule('redef'), true);
        before = await jobsOf(queue, 'redef');
        // Three slots of a marker schedule pass: at least three slots of the removed one.
        await queue.schedule('marker', every(period), { queue: 'sched-redef' });
        await waitFor(async () => (await jobsOf(queue, 'marker')).length >= 3, { message: 'three marker fires' });
        after = await jobsOf(queue, 'redef');
        assert.equal(await queue.unschedule('marker'), true);
      } finally {
        await worker.stop();
        await running;
      }
      const slots = uniqueSlots(after);
      assertConsecutive(slots, period, 'keeping the next fire on re-definition');
      const switchAt = Math.min(...after.filter((j) => j.args === 'v2').map(slotOf));
      for (const j of after) assert.equal(j.args, slotOf(j) < switchAt ? 'v1' : 'v2', `slot ${iso(slotOf(j))}`);
      assert.deepEqual(after.map((j) => j.id), before.map((j) => j.id), 'no fire after unschedule');
      assert.ok(!(await queue.schedules()).some((s) => s.name === 'redef'));
    });

    it('overlap: false skips slots while the previous run is unfinished; the default overlaps', async () => {
      const period = 200;
      const queue = new Queue(ts.storage);
      const first = gate();
      let calls = 0;
      queue.register('no-overlap', async () => {
        if (calls++ === 0) await first.wait;
      });
      const other = gate();
      let active = 0;
      let maxActive = 0;
      queue.register('overlapping', async () => {
        maxActive = Math.max(maxActive, ++active);
        await other.wait;
        active--;
      });
      await queue.schedule('no-overlap', every(period), { overlap: false, queue: 'sched-overlap' });
      await queue.schedule('overlapping', every(period), { queue: 'sched-overlap' });
      const worker = queue.newWorker({ ...fast, scheduler: true, queues: { 'sched-overlap': { concurrency: 10 } } });
      const running = worker.start();
      let skippedUpTo = 0;
      try {
        const blocked = await waitFor(async () => (await jobsOf(queue, 'no-overlap')).find((j) => j.status === 'running'), { message: 'first run started' });
        // The scheduler moves on at least three slots while the first run holds on.
        const info = await waitFor(async () => {
          const s = (await queue.schedules()).find((x) => x.name === 'no-overlap');
          return s?.lastRunAt && s.lastRunAt.getTime() >= slotOf(blocked) + 3 * period ? s : undefined;
        }, { message: 'three slots passed' });
        skippedUpTo = info.lastRunAt!.getTime();
        assert.deepEqual((await jobsOf(queue, 'no-overlap')).map((j) => j.id), [blocked.id], 'no job while the first one runs');
        assert.equal(info.lastJobId, blocked.id, 'skipped fires record no job');
        first.open();
        await waitFor(async () => (await jobsOf(queue, 'no-overlap')).filter((j) => j.status === 'completed').length >= 3, { message: 'fires resume' });
        await waitFor(() => maxActive >= 2, { message: 'overlapping runs of the default schedule' });
        other.open();
        await queue.unschedule('no-overlap');
        await queue.unschedule('overlapping');
      } finally {
        first.open();
        other.open();
        await worker.stop();
        await running;
      }
      const jobs = await jobsOf(queue, 'no-overlap');
      const slots = uniqueSlots(jobs);
      assert.ok(slots[1]! > skippedUpTo, `the slots skipped while blocked were not fired later (next fired ${iso(slots[1]!)})`);
      const done = jobs.filter((j) => j.completedAt && j.startedAt).sort((x, y) => x.startedAt!.getTime() - y.startedAt!.getTime());
      for (let i = 1; i < done.length; i++) {
        assert.ok(done[i]!.createdAt.getTime() >= done[i - 1]!.completedAt!.getTime(), 'each run was fired after the previous one finished');
      }
    });

    it('after downtime spanning several slots, fires one catch-up slot by default, then every slot', async () => {
      const period = 300;
      const queue = new Queue(ts.storage);
      queue.register('catch-up', async () => {});
      await queue.schedule('catch-up', every(period), { queue: 'sched-catch-up' });
      const options = { ...fast, scheduler: true, queues: { 'sched-catch-up': { concurrency: 2 } } };
      let worker = queue.newWorker(options);
      let running = worker.start();
      try {
        await waitFor(async () => (await jobsOf(queue, 'catch-up')).length >= 2, { message: 'two fires' });
      } finally {
        await worker.stop();
        await running;
      }
      const lastBefore = Math.max(...(await jobsOf(queue, 'catch-up')).map(slotOf));
      const stoppedAt = await ts.storage.clockNow();
      // No scheduler runs for more than five slots.
      await waitFor(async () => (await ts.storage.clockNow()) >= stoppedAt + 5 * period + 50, { message: 'downtime' });
      const due = (await queue.schedules()).find((s) => s.name === 'catch-up')!;
      assert.equal(due.nextRunAt.getTime(), lastBefore + period, 'the first missed slot is still stored');
      const restartAt = await ts.storage.clockNow();
      worker = queue.newWorker(options);
      running = worker.start();
      try {
        await waitFor(async () => (await jobsOf(queue, 'catch-up')).filter((j) => slotOf(j) > lastBefore).length >= 3, { message: 'fires after restart' });
        await queue.unschedule('catch-up');
      } finally {
        await worker.stop();
        await running;
      }
      const slots = uniqueSlots(await jobsOf(queue, 'catch-up'));
      const afterRestart = slots.filter((s) => s > lastBefore);
      const catchUp = afterRestart[0]!;
      assert.ok(catchUp >= restartAt - period, `one catch-up fire, the latest missed slot (${iso(catchUp)}), not the ${(catchUp - lastBefore) / period - 1} slots before it`);
      assert.ok(afterRestart.filter((s) => s <= restartAt).length <= 1, 'at most one fire for the slots missed before the restart');
    });
  });
}
