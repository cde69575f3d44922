/** Missed-slot policies: which due slots a tick fires and where the schedule goes next. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidScheduleError } from '../../../src/errors.js';
import {
  DEFAULT_MISSED_GRACE_MS,
  MAX_CATCH_UP_FIRES,
  checkMissedPolicy,
  isMissedPolicy,
  missedPolicyOf,
  planFires,
  type MissedPolicy,
} from '../../../src/scheduler/missed.js';
import { cron, every, type Schedule } from '../../../src/scheduler/schedules.js';

const t = (iso: string): number => Date.parse(iso);
const isos = (ms: readonly number[]): string[] => ms.map((x) => new Date(x).toISOString());
const POLICIES: MissedPolicy[] = ['skip', 'latest', 'all'];

describe('planFires', () => {
  const hourly = cron('0 * * * *');

  it('fires nothing and keeps next_run_at when nothing is due yet', () => {
    for (const missed of POLICIES) {
      const plan = planFires({ schedule: hourly, nextRunAt: t('2027-01-01T11:00:00Z'), now: t('2027-01-01T10:59:59.999Z'), missed });
      assert.deepEqual(plan, { slots: [], slotAt: undefined, nextRunAt: t('2027-01-01T11:00:00Z'), dropped: false }, missed);
    }
  });

  it('fires the single due slot on time under every policy', () => {
    for (const missed of POLICIES) {
      for (const late of [0, 5, 30_000]) {
        const plan = planFires({ schedule: hourly, nextRunAt: t('2027-01-01T10:00:00Z'), now: t('2027-01-01T10:00:00Z') + late, missed });
        assert.deepEqual(isos(plan.slots), ['2027-01-01T10:00:00.000Z'], `${missed} +${late}`);
        assert.equal(plan.slotAt, t('2027-01-01T10:00:00Z'));
        assert.equal(plan.nextRunAt, t('2027-01-01T11:00:00Z'), 'next slot strictly after now');
        assert.equal(plan.dropped, false);
      }
    }
  });

  it("defaults to 'latest': after downtime spanning several slots, exactly one catch-up fire", () => {
    // Stored 10:00; the scheduler was down until 13:20. Due: 10:00, 11:00, 12:00, 13:00.
    const plan = planFires({ schedule: hourly, nextRunAt: t('2027-01-01T10:00:00Z'), now: t('2027-01-01T13:20:00Z') });
    assert.deepEqual(isos(plan.slots), ['2027-01-01T13:00:00.000Z']);
    assert.equal(plan.slotAt, t('2027-01-01T13:00:00Z'));
    assert.equal(plan.nextRunAt, t('2027-01-01T14:00:00Z'));
    assert.equal(plan.dropped, true);
    assert.deepEqual(planFires({ schedule: hourly, nextRunAt: t('2027-01-01T10:00:00Z'), now: t('2027-01-01T13:20:00Z'), missed: 'latest' }), plan);
  });

  it("'skip' fires none of the missed slots and moves on to the next future slot", () => {
    const plan = planFires({ schedule: hourly, nextRunAt: t('2027-01-01T10:00:00Z'), now: t('2027-01-01T13:20:00Z'), missed: 'skip' });
    assert.deepEqual(plan.slots, []);
    assert.equal(plan.slotAt, t('2027-01-01T13:00:00Z'), 'recorded as handled');
    assert.equal(plan.nextRunAt, t('2027-01-01T14:00:00Z'));
    assert.equal(plan.dropped, true);
  });

  it("'skip' still fires the current slot when it is within the grace period", () => {
    // Down from 10:00 to 13:00:20: 10:00-12:00 are missed, 13:00 is 20 s late (on time).
    const plan = planFires({ schedule: hourly, nextRunAt: t('2027-01-01T10:00:00Z'), now: t('2027-01-01T13:00:20Z'), missed: 'skip' });
    assert.deepEqual(isos(plan.slots), ['2027-01-01T13:00:00.000Z']);
    assert.equal(plan.dropped, true);
    // A short interval's latest slot is always recent, so it keeps firing after an outage.
    const fast = planFires({ schedule: every(1_000), nextRunAt: t('2027-01-01T10:00:00Z'), now: t('2027-01-01T11:00:00.500Z'), missed: 'skip' });
    assert.deepEqual(isos(fast.slots), ['2027-01-01T11:00:00.000Z']);
    assert.equal(fast.nextRunAt, t('2027-01-01T11:00:01Z'));
    // The grace period is configurable; exactly graceMs late is missed.
    const strict = planFires({ schedule: hourly, nextRunAt: t('2027-01-01T10:00:00Z'), now: t('2027-01-01T10:00:05Z'), missed: 'skip', graceMs: 5_000 });
    assert.deepEqual(strict.slots, []);
    assert.equal(DEFAULT_MISSED_GRACE_MS, 60_000);
  });

  it("'all' fires every missed slot, oldest first", () => {
    const plan = planFires({ schedule: hourly, nextRunAt: t('2027-01-01T10:00:00Z'), now: t('2027-01-01T13:20:00Z'), missed: 'all' });
    assert.deepEqual(isos(plan.slots), ['2027-01-01T10:00:00.000Z', '2027-01-01T11:00:00.000Z', '2027-01-01T12:00:00.000Z', '2027-01-01T13:00:00.000Z']);
    assert.equal(plan.slotAt, t('2027-01-01T13:00:00Z'));
    assert.equal(plan.nextRunAt, t('2027-01-01T14:00:00Z'));
    assert.equal(plan.dropped, false);
  });

  it("'all' is capped at the most recent MAX_CATCH_UP_FIRES slots", () => {
    assert.equal(MAX_CATCH_UP_FIRES, 1000);
    const minutely = cron('* * * * *');
    const from = t('2027-01-01T00:00:00Z');
    const now = from + 5_000 * 60_000 + 30_000; // 5001 slots due
    const plan = planFires({ schedule: minutely, nextRunAt: from, now, missed: 'all' });
    assert.equal(plan.slots.length, 1000);
    assert.equal(plan.slots.at(-1), from + 5_000 * 60_000, 'the newest due slot is fired');
    assert.equal(plan.slots[0], from + 4_001 * 60_000, 'older slots are dropped');
    assert.ok(plan.slots.every((s, i) => i === 0 || s - plan.slots[i - 1]! === 60_000));
    assert.equal(plan.dropped, true);
    const small = planFires({ schedule: every(1_000), nextRunAt: 0, now: 10_500, missed: 'all', maxFires: 3 });
    assert.deepEqual(small.slots, [8_000, 9_000, 10_000]);
    assert.equal(small.nextRunAt, 11_000);
  });

  it('counts a slot exactly at now as due', () => {
    const plan = planFires({ schedule: hourly, nextRunAt: t('2027-01-01T10:00:00Z'), now: t('2027-01-01T12:00:00Z'), missed: 'all' });
    assert.deepEqual(isos(plan.slots), ['2027-01-01T10:00:00.000Z', '2027-01-01T11:00:00.000Z', '2027-01-01T12:00:00.000Z']);
    assert.equal(plan.nextRunAt, t('2027-01-01T13:00:00Z'));
  });

  it('treats a stored next_run_at off the schedule grid (spec changed) as a due slot', () => {
    const plan = planFires({ schedule: hourly, nextRunAt: t('2027-01-01T10:17:00Z'), now: t('2027-01-01T10:30:00Z'), missed: 'latest' });
    assert.deepEqual(isos(plan.slots), ['2027-01-01T10:17:00.000Z']);
    assert.equal(plan.nextRunAt, t('2027-01-01T11:00:00Z'));
    const all = planFires({ schedule: hourly, nextRunAt: t('2027-01-01T10:17:00Z'), now: t('2027-01-01T12:30:00Z'), missed: 'all' });
    assert.deepEqual(isos(all.slots), ['2027-01-01T10:17:00.000Z', '2027-01-01T11:00:00.000Z', '2027-01-01T12:00:00.000Z']);
  });

  it("'all' catches up across a DST fall-back (both passes of the repeated hour) and month ends", () => {
    const berlin = cron('*/30 * * * *', { timezone: 'Europe/Berlin' });
    const plan = planFires({ schedule: berlin, nextRunAt: t('2026-10-25T00:00:00Z'), now: t('2026-10-25T02:10:00Z'), missed: 'all' });
    assert.deepEqual(isos(plan.slots), [
      '2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', // 02:00, 02:30 CEST
      '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z', // 02:00, 02:30 CET
      '2026-10-25T02:00:00.000Z', // 03:00 CET
    ]);
    const monthEnd = planFires({ schedule: cron('0 0 31 * *'), nextRunAt: t('2027-01-31T00:00:00Z'), now: t('2027-09-01T00:00:00Z'), missed: 'all' });
    assert.deepEqual(isos(monthEnd.slots), [
      '2027-01-31T00:00:00.000Z', '2027-03-31T00:00:00.000Z', '2027-05-31T00:00:00.000Z', '2027-07-31T00:00:00.000Z', '2027-08-31T00:00:00.000Z',
    ]);
    assert.equal(monthEnd.nextRunAt, t('2027-10-31T00:00:00Z'));
  });

  it('handles a year of downtime on a per-second schedule without enumerating it', () => {
    const schedules: Schedule[] = [every(1_000), cron('* * * * * *')];
    for (const schedule of schedules) {
      const now = t('2028-01-01T00:00:00.250Z');
      const latest = planFires({ schedule, nextRunAt: t('2027-01-01T00:00:00Z'), now });
      assert.deepEqual(isos(latest.slots), ['2028-01-01T00:00:00.000Z'], String(schedule));
      assert.equal(latest.nextRunAt, t('2028-01-01T00:00:01Z'));
      const all = planFires({ schedule, nextRunAt: t('2027-01-01T00:00:00Z'), now, missed: 'all' });
      assert.equal(all.slots.length, MAX_CATCH_UP_FIRES);
      assert.equal(all.slots.at(-1), t('2028-01-01T00:00:00Z'));
    }
  });

  it('rejects an unknown policy', () => {
    assert.throws(
      () => planFires({ schedule: hourly, nextRunAt: 0, now: 1, missed: 'some' as MissedPolicy }),
      (e: unknown) => e instanceof InvalidScheduleError && /missed must be "skip", "latest" or "all", got "some"/.test(e.message),
    );
  });
});

describe('policy parsing', () => {
  it('recognises the three policies', () => {
    for (const p of POLICIES) {
      assert.equal(isMissedPolicy(p), true);
      assert.equal(checkMissedPolicy(p), p);
    }
    for (const bad of ['LATEST', '', null, undefined, 1]) assert.equal(isMissedPolicy(bad), false);
    assert.throws(() => checkMissedPolicy('never'), InvalidScheduleError);
  });

  it("reads `missed` from a schedule row's options JSON, defaulting to 'latest'", () => {
    assert.equal(missedPolicyOf('{"missed":"all"}'), 'all');
    assert.equal(missedPolicyOf('{"missed":"skip","args":{"a":1}}'), 'skip');
    assert.equal(missedPolicyOf('{}'), 'latest');
    assert.equal(missedPolicyOf('null'), 'latest');
    assert.equal(missedPolicyOf(''), 'latest');
    assert.equal(missedPolicyOf(null), 'latest');
    assert.throws(() => missedPolicyOf('{"missed":"sometimes"}'), /missed must be "skip", "latest" or "all"/);
    assert.throws(() => missedPolicyOf('{oops'), /schedule options are not valid JSON/);
    assert.throws(() => missedPolicyOf('[1]'), /schedule options must be a JSON object/);
  });
});
