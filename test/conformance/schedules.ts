/**
 * Conformance: schedules — upsert (the same spec keeps next_run_at, a changed spec takes the new
 * one, a slot already fired is never due again), list, due list, compare-and-set fires (one
 * winner among concurrent schedulers), unique clashes skipped, delete.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScheduleRow, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import { assertBetween, insertJob, instances, jobInsert, mustGet, uniqueName } from '../helpers/factories.js';
import { useStorage } from './context.js';

async function getSchedule(s: Storage, name: string): Promise<ScheduleRow | undefined> {
  return (await s.scheduleList()).find((r) => r.name === name);
}

async function mustGetSchedule(s: Storage, name: string): Promise<ScheduleRow> {
  const row = await getSchedule(s, name);
  assert.ok(row, `schedule ${name} not found`);
  return row;
}

/** Registers the schedule tests. */
export function describeSchedules(make: StorageMaker): void {
  describe('schedules', () => {
    const ctx = useStorage(make, 'conformance-schedules');

    it('creates a schedule and lists it with every field', async () => {
      const s = ctx.s;
      const name = uniqueName('sched');
      const next = (await s.clockNow()) + 60_000;
      const t0 = await s.clockNow();
      assert.deepEqual(await s.scheduleUpsert({ name, specJson: '{"every":60000}', optionsJson: '{"args":{"é":1}}', nextRunAt: next }), { stored: true });
      const t1 = await s.clockNow();
      const row = await mustGetSchedule(s, name);
      assertBetween(row.createdAt, t0, t1, 'createdAt');
      assert.deepEqual(row, {
        name,
        specJson: '{"every":60000}',
        optionsJson: '{"args":{"é":1}}',
        nextRunAt: next,
        lastRunAt: null,
        lastJobId: null,
        createdAt: row.createdAt,
        updatedAt: row.updatedAt,
      });
      assert.ok(Number.isSafeInteger(row.updatedAt) && row.updatedAt >= row.createdAt);
    });

    it('replaces a definition: the same spec keeps next_run_at, a changed spec takes the new one', async () => {
      const s = ctx.s;
      const name = uniqueName('sched');
      const base = await s.clockNow();
      await s.scheduleUpsert({ name, specJson: '"v1"', optionsJson: '{}', nextRunAt: base + 1_000 });
      const created = await mustGetSchedule(s, name);
      assert.deepEqual(await s.scheduleUpsert({ name, specJson: '"v1"', optionsJson: '{"q":"x"}', nextRunAt: base + 2_000 }), { stored: true });
      let row = await mustGetSchedule(s, name);
      assert.equal(row.specJson, '"v1"');
      assert.equal(row.optionsJson, '{"q":"x"}', 'options replaced');
      assert.equal(row.nextRunAt, base + 1_000, 'next_run_at kept: the spec is the same');
      assert.equal(row.createdAt, created.createdAt);
      assert.ok(row.updatedAt >= created.updatedAt);
      assert.deepEqual(await s.scheduleUpsert({ name, specJson: '"v2"', optionsJson: '{}', nextRunAt: base + 3_000 }), { stored: true });
      row = await mustGetSchedule(s, name);
      assert.equal(row.specJson, '"v2"');
      assert.equal(row.optionsJson, '{}');
      assert.equal(row.nextRunAt, base + 3_000, 'next_run_at replaced: the spec changed');
      assert.equal(row.createdAt, created.createdAt);
      assert.equal((await s.scheduleList()).filter((r) => r.name === name).length, 1);
    });

    it('a late definition of the same spec from another instance never moves next_run_at back to a fired slot', async () => {
      const a = ctx.s;
      const b = await ctx.ts.another();
      const name = uniqueName('sched');
      const slot = (await a.clockNow()) - 500;
      // Both processes computed the same first slot; A stored and fired it before B's upsert landed.
      await a.scheduleUpsert({ name, specJson: '{"every":60000}', optionsJson: '{}', nextRunAt: slot });
      const job = jobInsert({ type: uniqueName('type') });
      assert.deepEqual(await a.scheduleFire({ name, expectedNextRunAt: slot, nextRunAt: slot + 60_000, slotAt: slot, jobs: [job] }), [job.id]);
      const stored = await b.scheduleUpsert({ name, specJson: '{"every":60000}', optionsJson: '{"v":2}', nextRunAt: slot });
      const row = await mustGetSchedule(a, name);
      assert.equal(row.nextRunAt, slot + 60_000, 'next_run_at stayed after the fired slot');
      assert.equal(row.lastRunAt, slot);
      assert.equal(row.optionsJson, '{"v":2}');
      assert.deepEqual(stored, { stored: true });
      assert.ok(!(await b.scheduleListDue({ limit: 1000 })).some((r) => r.name === name), 'the fired slot is not due again');
      assert.equal(await b.scheduleFire({ name, expectedNextRunAt: slot, nextRunAt: slot + 60_000, slotAt: slot, jobs: [jobInsert({ type: job.type })] }), null);
      assert.equal((await a.jobList({ type: job.type, limit: 10 })).length, 1, 'the slot fired once');
    });

    it('refuses a changed spec whose first slot is not after the last fired slot, writing nothing', async () => {
      const a = ctx.s;
      const b = await ctx.ts.another();
      const name = uniqueName('sched');
      const slot = (await a.clockNow()) - 500;
      await a.scheduleUpsert({ name, specJson: '"old"', optionsJson: '{"o":1}', nextRunAt: slot });
      assert.deepEqual(await a.scheduleFire({ name, expectedNextRunAt: slot, nextRunAt: slot + 60_000, slotAt: slot, jobs: [] }), []);
      const fired = await mustGetSchedule(a, name);
      for (const early of [slot, slot - 30_000]) {
        const refused = await b.scheduleUpsert({ name, specJson: '"new"', optionsJson: '{"o":2}', nextRunAt: early });
        assert.deepEqual(await mustGetSchedule(a, name), fired, 'a refused upsert changes nothing');
        assert.deepEqual(refused, { stored: false, lastRunAt: slot });
      }
      // Computed again after the last fired slot, the new spec is taken.
      assert.deepEqual(await b.scheduleUpsert({ name, specJson: '"new"', optionsJson: '{"o":2}', nextRunAt: slot + 30_000 }), { stored: true });
      const row = await mustGetSchedule(a, name);
      assert.deepEqual([row.specJson, row.optionsJson, row.nextRunAt, row.lastRunAt], ['"new"', '{"o":2}', slot + 30_000, slot]);
    });

    it('lists schedules by name', async () => {
      const s = ctx.s;
      const prefix = uniqueName('order');
      for (const n of ['c', 'a', 'b']) {
        await s.scheduleUpsert({ name: `${prefix}-${n}`, specJson: '{}', optionsJson: '{}', nextRunAt: 1 });
      }
      const names = (await s.scheduleList()).map((r) => r.name);
      assert.deepEqual(names.filter((n) => n.startsWith(prefix)), [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`]);
    });

    it('lists due schedules (next_run_at <= now), at most limit', async () => {
      const s = ctx.s;
      const now = await s.clockNow();
      const due = uniqueName('due');
      const notDue = uniqueName('later');
      await s.scheduleUpsert({ name: due, specJson: '{}', optionsJson: '{}', nextRunAt: now - 1_000 });
      await s.scheduleUpsert({ name: notDue, specJson: '{}', optionsJson: '{}', nextRunAt: now + 3_600_000 });
      const list = await s.scheduleListDue({ limit: 1000 });
      assert.ok(list.some((r) => r.name === due));
      assert.ok(!list.some((r) => r.name === notDue));
      for (const r of list) assert.ok(r.nextRunAt <= (await s.clockNow()));
      for (let i = 0; i < 3; i++) {
        await s.scheduleUpsert({ name: uniqueName('due'), specJson: '{}', optionsJson: '{}', nextRunAt: now - 10 });
      }
      const limited = await s.scheduleListDue({ limit: 2 });
      assert.equal(limited.length, 2);
    });

    it('fires by compare-and-set: inserts the jobs, advances next_run_at, records the slot', async () => {
      const s = ctx.s;
      const name = uniqueName('sched');
      const slot = (await s.clockNow()) - 500;
      await s.scheduleUpsert({ name, specJson: '{}', optionsJson: '{}', nextRunAt: slot });
      const job = jobInsert({ type: uniqueName('type'), queue: uniqueName('q'), uniqueKey: `${name}:${slot}`, argsJson: '{"slot":1}' });
      const ids = await s.scheduleFire({ name, expectedNextRunAt: slot, nextRunAt: slot + 60_000, slotAt: slot, jobs: [job] });
      assert.deepEqual(ids, [job.id]);
      const row = await mustGetSchedule(s, name);
      assert.equal(row.nextRunAt, slot + 60_000);
      assert.equal(row.lastRunAt, slot);
      assert.equal(row.lastJobId, job.id);
      const stored = await mustGet(s, job.id);
      assert.equal(stored.status, 'pending');
      assert.equal(stored.argsJson, '{"slot":1}');
      assert.equal(stored.uniqueKey, `${name}:${slot}`);

      // A stale expectation loses: nothing inserted, nothing changed.
      const late = jobInsert({ type: job.type, queue: job.queue });
      assert.equal(await s.scheduleFire({ name, expectedNextRunAt: slot, nextRunAt: slot + 60_000, slotAt: slot, jobs: [late] }), null);
      assert.equal(await s.jobGet({ id: late.id }), undefined);
      assert.deepEqual(await mustGetSchedule(s, name), row);
      assert.equal(await s.scheduleFire({ name: uniqueName('none'), expectedNextRunAt: slot, nextRunAt: slot + 1, slotAt: slot, jobs: [] }), null);
    });

    it('a fire with no jobs (a skipped slot) still advances the schedule', async () => {
      const s = ctx.s;
      const name = uniqueName('sched');
      await s.scheduleUpsert({ name, specJson: '{}', optionsJson: '{}', nextRunAt: 1_000 });
      assert.deepEqual(await s.scheduleFire({ name, expectedNextRunAt: 1_000, nextRunAt: 2_000, slotAt: 1_000, jobs: [] }), []);
      const row = await mustGetSchedule(s, name);
      assert.equal(row.nextRunAt, 2_000);
      assert.equal(row.lastRunAt, 1_000);
    });

    it('of 10 concurrent fires of one slot from separate instances exactly one wins', async () => {
      const s = ctx.s;
      const name = uniqueName('sched');
      const type = uniqueName('type');
      const slot = (await s.clockNow()) - 100;
      await s.scheduleUpsert({ name, specJson: '{}', optionsJson: '{}', nextRunAt: slot });
      const all = await instances(ctx.ts, 10);
      // No unique key: only the compare-and-set keeps the slot from firing twice.
      const results = await Promise.all(
        all.map((inst) => inst.scheduleFire({ name, expectedNextRunAt: slot, nextRunAt: slot + 1_000, slotAt: slot, jobs: [jobInsert({ type })] })),
      );
      const winners = results.filter((r) => r !== null);
      assert.equal(winners.length, 1, `${winners.length} fires won`);
      assert.equal(winners[0]!.length, 1);
      const jobs = await s.jobList({ type, limit: 100 });
      assert.deepEqual(jobs.map((j) => j.id), winners[0]);
      assert.equal((await mustGetSchedule(s, name)).lastJobId, winners[0]![0]);
    });

    it('skips fire jobs whose unique key clashes instead of failing the fire', async () => {
      const s = ctx.s;
      const name = uniqueName('sched');
      const key = `${name}:slot`;
      const existing = await insertJob(s, { uniqueKey: key });
      await s.scheduleUpsert({ name, specJson: '{}', optionsJson: '{}', nextRunAt: 5_000 });
      const clash = jobInsert({ uniqueKey: key });
      const other = jobInsert({ uniqueKey: `${name}:other` });
      const ids = await s.scheduleFire({ name, expectedNextRunAt: 5_000, nextRunAt: 6_000, slotAt: 5_000, jobs: [clash, other] });
      assert.deepEqual(ids, [other.id]);
      assert.equal(await s.jobGet({ id: clash.id }), undefined);
      assert.equal((await mustGet(s, existing)).status, 'pending');
      const row = await mustGetSchedule(s, name);
      assert.equal(row.nextRunAt, 6_000);
      assert.equal(row.lastRunAt, 5_000);
    });

    it('deletes a schedule and reports whether it existed', async () => {
      const s = ctx.s;
      const name = uniqueName('sched');
      await s.scheduleUpsert({ name, specJson: '{}', optionsJson: '{}', nextRunAt: 1 });
      assert.equal(await s.scheduleDelete({ name }), true);
      assert.equal(await getSchedule(s, name), undefined);
      assert.equal(await s.scheduleDelete({ name }), false);
      assert.equal(await s.scheduleFire({ name, expectedNextRunAt: 1, nextRunAt: 2, slotAt: 1, jobs: [] }), null);
    });
  });
}
