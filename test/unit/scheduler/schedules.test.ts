/** Schedule builders: next/latest fire times with fixed instants, DST, validation. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, InvalidScheduleError } from '../../../src/errors.js';
import {
  cron,
  daily,
  every,
  isSchedule,
  scheduleFromJson,
  scheduleFromSpec,
  weekly,
  type Schedule,
  type ScheduleSpec,
} from '../../../src/scheduler/schedules.js';

const at = (iso: string): Date => new Date(iso);
const iso = (d: Date | undefined): string | undefined => d?.toISOString();

/** The next n fire times after `from`, as ISO strings. */
function nextN(s: Schedule, from: string, n: number): string[] {
  const out: string[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) {
    t = s.next(t);
    out.push(t.toISOString());
  }
  return out;
}

/** Asserts that `fn` throws InvalidScheduleError with a message matching `re`. */
function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidScheduleError, `expected InvalidScheduleError, got ${String(e)}`);
    assert.equal(e.code, 'INVALID_SCHEDULE');
    assert.match(e.message, re);
    return true;
  });
}

describe('every(ms)', () => {
  it('fires on epoch-aligned slots, strictly after the given instant', () => {
    const s = every(60_000);
    assert.equal(iso(s.next(at('2027-03-04T10:00:00.000Z'))), '2027-03-04T10:01:00.000Z');
    assert.equal(iso(s.next(at('2027-03-04T10:00:59.999Z'))), '2027-03-04T10:01:00.000Z');
    assert.equal(iso(s.next(at('2027-03-04T10:00:00.001Z'))), '2027-03-04T10:01:00.000Z');
    assert.equal(iso(s.latest(at('2027-03-04T10:00:00.000Z'))), '2027-03-04T10:00:00.000Z');
    assert.equal(iso(s.latest(at('2027-03-04T10:00:59.999Z'))), '2027-03-04T10:00:00.000Z');
  });

  it('gives every process the same slots whatever instant it starts from', () => {
    const s = every(7_000);
    // Processes starting at arbitrary instants all land on multiples of 7000 ms since the epoch.
    for (const start of ['2027-01-01T00:00:00.123Z', '2027-01-01T00:00:03.456Z', '2027-05-17T13:37:42.999Z']) {
      const t = s.next(at(start)).getTime();
      assert.equal(t % 7_000, 0, start);
      assert.ok(t > at(start).getTime() && t - at(start).getTime() <= 7_000, start);
    }
    // Every instant inside one slot sees the same next slot, in independently built schedules.
    const slot = 1_798_761_601_000; // a multiple of 7000
    for (const offset of [0, 1, 3_456, 6_999]) {
      assert.equal(every(7_000).next(new Date(slot + offset)).getTime(), slot + 7_000, `offset ${offset}`);
      assert.equal(every(7_000).latest(new Date(slot + offset))?.getTime(), slot, `offset ${offset}`);
    }
  });

  it('supports sub-second and long intervals', () => {
    assert.equal(every(250).next(new Date(1_000)).getTime(), 1_250);
    const day = 86_400_000;
    assert.equal(iso(every(day).next(at('2027-06-15T13:00:00Z'))), '2027-06-16T00:00:00.000Z');
  });

  it('rejects ms that is not a positive finite integer', () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, -Infinity, '1000', null, undefined, 1e20]) {
      rejects(() => every(bad as number), /every: ms must be a positive finite integer/);
    }
  });
});

describe('daily(hour, minute)', () => {
  it('fires at hour:minute UTC by default', () => {
    const s = daily(9, 0);
    assert.deepEqual(nextN(s, '2027-01-01T08:59:59Z', 2), ['2027-01-01T09:00:00.000Z', '2027-01-02T09:00:00.000Z']);
    assert.equal(iso(s.next(at('2027-01-01T09:00:00Z'))), '2027-01-02T09:00:00.000Z', 'strictly after');
    assert.equal(iso(daily(23, 59).next(at('2027-12-31T23:59:30Z'))), '2028-01-01T23:59:00.000Z');
    assert.equal(iso(s.latest(at('2027-01-02T08:00:00Z'))), '2027-01-01T09:00:00.000Z');
  });

  it('reads the time in a named zone and follows its DST (Europe/Berlin)', () => {
    const s = daily(9, 30, { timezone: 'Europe/Berlin' });
    // CET (UTC+1) before 2026-03-29, CEST (UTC+2) after.
    assert.deepEqual(nextN(s, '2026-03-27T12:00:00Z', 3), [
      '2026-03-28T08:30:00.000Z',
      '2026-03-29T07:30:00.000Z',
      '2026-03-30T07:30:00.000Z',
    ]);
  });

  it('spring-forward gap: a skipped wall-clock time fires right after the gap, once (Europe/Berlin)', () => {
    // 2026-03-29 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    const s = daily(2, 30, { timezone: 'Europe/Berlin' });
    assert.deepEqual(nextN(s, '2026-03-28T12:00:00Z', 3), [
      '2026-03-29T01:00:00.000Z', // 03:00 CEST, the first valid time after the gap
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
      '2026-03-31T00:30:00.000Z',
    ]);
  });

  it('fall-back overlap: a repeated wall-clock time fires once, at its first occurrence (Europe/Berlin)', () => {
    // 2026-10-25 03:00 CEST falls back to 02:00 CET; 02:30 happens at 00:30Z and 01:30Z.
    const s = daily(2, 30, { timezone: 'Europe/Berlin' });
    assert.deepEqual(nextN(s, '2026-10-24T12:00:00Z', 3), [
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
      '2026-10-27T01:30:00.000Z',
    ]);
  });

  it('rejects out-of-range, non-integer and NaN hours and minutes', () => {
    rejects(() => daily(24, 0), /daily: hour must be an integer from 0 to 23, got 24/);
    rejects(() => daily(-1, 0), /daily: hour must be an integer from 0 to 23, got -1/);
    rejects(() => daily(9.5, 0), /hour must be an integer.*got 9\.5/);
    rejects(() => daily(NaN, 0), /hour must be an integer.*got NaN/);
    rejects(() => daily(9, 60), /daily: minute must be an integer from 0 to 59, got 60/);
    rejects(() => daily(9, -1), /minute must be an integer from 0 to 59/);
    rejects(() => daily(9, Infinity), /minute must be an integer.*got Infinity/);
    rejects(() => daily('9' as unknown as number, 0), /hour must be an integer.*got "9"/);
  });

  it('rejects unknown time zones and unknown options', () => {
    rejects(() => daily(9, 0, { timezone: 'Mars/Olympus_Mons' }), /daily: unknown time zone "Mars\/Olympus_Mons"/);
    rejects(() => daily(9, 0, { timezone: '' }), /timezone must be a non-empty IANA time zone name/);
    rejects(() => daily(9, 0, { timeZone: 'Europe/Berlin' } as never), /unknown option "timeZone" \(did you mean "timezone"\?\)/);
  });
});

describe('weekly(day, hour, minute)', () => {
  it('fires on the given weekday (2027-01-03 is a Sunday)', () => {
    const s = weekly(0, 2, 0);
    assert.deepEqual(nextN(s, '2027-01-01T00:00:00Z', 2), ['2027-01-03T02:00:00.000Z', '2027-01-10T02:00:00.000Z']);
    assert.equal(iso(weekly(5, 17, 45).next(at('2027-01-01T17:45:00Z'))), '2027-01-08T17:45:00.000Z', 'Friday, strictly after');
  });

  it('accepts English day names, full or three-letter, in any case', () => {
    const from = at('2027-01-01T00:00:00Z'); // a Friday
    const expected: Record<string, string> = {
      sunday: '2027-01-03', monday: '2027-01-04', tuesday: '2027-01-05', wednesday: '2027-01-06',
      thursday: '2027-01-07', friday: '2027-01-01', saturday: '2027-01-02',
    };
    for (const [name, day] of Object.entries(expected)) {
      const want = `${day}T12:00:00.000Z`;
      for (const spelled of [name, name.toUpperCase(), name[0]!.toUpperCase() + name.slice(1), name.slice(0, 3), name.slice(0, 3).toUpperCase()]) {
        assert.equal(iso(weekly(spelled, 12, 0).next(from)), want, spelled);
      }
    }
    assert.deepEqual(weekly('Sunday', 2, 0).toJSON(), weekly(0, 2, 0).toJSON());
  });

  it('rejects unknown day names and out-of-range days', () => {
    rejects(() => weekly('funday', 2, 0), /weekly: unknown day name "funday"/);
    rejects(() => weekly('su', 2, 0), /unknown day name "su"/);
    rejects(() => weekly('sundays', 2, 0), /unknown day name "sundays"/);
    rejects(() => weekly(7, 2, 0), /weekly: day must be an integer from 0 to 6 \(0 = Sunday\), got 7/);
    rejects(() => weekly(-1, 2, 0), /day must be an integer from 0 to 6/);
    rejects(() => weekly(1.5, 2, 0), /day must be an integer/);
    rejects(() => weekly(NaN, 2, 0), /day must be an integer.*got NaN/);
    rejects(() => weekly(1, 24, 0), /weekly: hour must be an integer from 0 to 23/);
    rejects(() => weekly(1, 2, 75), /weekly: minute must be an integer from 0 to 59/);
    rejects(() => weekly(1, 2, 0, { timezone: 'Nowhere/Land' }), /weekly: unknown time zone "Nowhere\/Land"/);
  });

  it('follows DST in America/New_York', () => {
    // Sundays 09:00 New York: EST (UTC-5) until 2026-03-08, EDT (UTC-4) after.
    const s = weekly('sun', 9, 0, { timezone: 'America/New_York' });
    assert.deepEqual(nextN(s, '2026-02-28T00:00:00Z', 2), ['2026-03-01T14:00:00.000Z', '2026-03-08T13:00:00.000Z']);
  });
});

describe('cron(expr)', () => {
  it('supports ranges, steps, lists and names, in UTC by default', () => {
    assert.deepEqual(nextN(cron('0 * * * *'), '2027-01-01T10:30:00Z', 2), ['2027-01-01T11:00:00.000Z', '2027-01-01T12:00:00.000Z']);
    assert.deepEqual(nextN(cron('*/20 9-10 * * *'), '2027-01-01T09:30:00Z', 4), [
      '2027-01-01T09:40:00.000Z', '2027-01-01T10:00:00.000Z', '2027-01-01T10:20:00.000Z', '2027-01-01T10:40:00.000Z',
    ]);
    assert.deepEqual(nextN(cron('15 8 1,15 * *'), '2027-01-02T00:00:00Z', 2), ['2027-01-15T08:15:00.000Z', '2027-02-01T08:15:00.000Z']);
    // 2027-01-01 is a Friday; MON-FRI skips the weekend.
    assert.deepEqual(nextN(cron('0 9 * * MON-FRI'), '2027-01-01T10:00:00Z', 2), ['2027-01-04T09:00:00.000Z', '2027-01-05T09:00:00.000Z']);
    assert.deepEqual(nextN(cron('0 0 1 jan,Jul *'), '2027-01-01T00:00:00Z', 2), ['2027-07-01T00:00:00.000Z', '2028-01-01T00:00:00.000Z']);
    assert.equal(iso(cron('@daily').next(at('2027-01-01T00:00:00Z'))), '2027-01-02T00:00:00.000Z');
  });

  it('is strictly after: a fire time equal to `after` is not returned', () => {
    assert.equal(iso(cron('0 * * * *').next(at('2027-01-01T10:00:00.000Z'))), '2027-01-01T11:00:00.000Z');
    assert.equal(iso(cron('0 * * * *').next(at('2027-01-01T09:59:59.999Z'))), '2027-01-01T10:00:00.000Z');
    assert.equal(iso(cron('0 * * * *').latest(at('2027-01-01T10:00:00.000Z'))), '2027-01-01T10:00:00.000Z');
    assert.equal(iso(cron('0 * * * *').latest(at('2027-01-01T09:59:59.999Z'))), '2027-01-01T09:00:00.000Z');
  });

  it('supports an optional leading seconds field (6 fields)', () => {
    assert.deepEqual(nextN(cron('*/15 * * * * *'), '2027-01-01T00:00:00.500Z', 3), [
      '2027-01-01T00:00:15.000Z', '2027-01-01T00:00:30.000Z', '2027-01-01T00:00:45.000Z',
    ]);
    assert.equal(iso(cron('30 0 12 * * *').next(at('2027-01-01T00:00:00Z'))), '2027-01-01T12:00:30.000Z');
  });

  it('handles month ends: day 31 only in months that have one', () => {
    assert.deepEqual(nextN(cron('0 0 31 * *'), '2027-01-31T00:00:00Z', 4), [
      '2027-03-31T00:00:00.000Z', '2027-05-31T00:00:00.000Z', '2027-07-31T00:00:00.000Z', '2027-08-31T00:00:00.000Z',
    ]);
    assert.equal(iso(cron('0 0 L * *').next(at('2027-02-01T00:00:00Z'))), '2027-02-28T00:00:00.000Z');
  });

  it('handles leap days: Feb 29 from 2027 lands on 2028-02-29', () => {
    assert.deepEqual(nextN(cron('0 0 29 2 *'), '2027-01-01T00:00:00Z', 2), ['2028-02-29T00:00:00.000Z', '2032-02-29T00:00:00.000Z']);
    assert.equal(iso(cron('0 0 29 2 *').latest(at('2031-01-01T00:00:00Z'))), '2028-02-29T00:00:00.000Z');
  });

  it('spring-forward in Europe/Berlin: interval jobs skip the gap, fixed-time jobs fire after it', () => {
    // 2026-03-29: 02:00 CET (01:00Z) jumps to 03:00 CEST.
    const interval = cron('*/30 * * * *', { timezone: 'Europe/Berlin' });
    assert.deepEqual(nextN(interval, '2026-03-28T23:45:00Z', 4), [
      '2026-03-29T00:00:00.000Z', // 01:00 CET
      '2026-03-29T00:30:00.000Z', // 01:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST (02:00 and 02:30 do not exist)
      '2026-03-29T01:30:00.000Z', // 03:30 CEST
    ]);
    const fixed = cron('30 2 * * *', { timezone: 'Europe/Berlin' });
    assert.deepEqual(nextN(fixed, '2026-03-28T12:00:00Z', 2), ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
  });

  it('fall-back in Europe/Berlin: interval jobs fire on both passes, fixed-time jobs once', () => {
    // 2026-10-25: 03:00 CEST (01:00Z) falls back to 02:00 CET; 02:00-02:59 happens twice.
    const interval = cron('*/30 * * * *', { timezone: 'Europe/Berlin' });
    assert.deepEqual(nextN(interval, '2026-10-24T23:45:00Z', 5), [
      '2026-10-25T00:00:00.000Z', // 02:00 CEST
      '2026-10-25T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T01:00:00.000Z', // 02:00 CET
      '2026-10-25T01:30:00.000Z', // 02:30 CET
      '2026-10-25T02:00:00.000Z', // 03:00 CET
    ]);
    const fixed = cron('30 2 * * *', { timezone: 'Europe/Berlin' });
    assert.deepEqual(nextN(fixed, '2026-10-24T12:00:00Z', 2), ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    // latest() agrees with next() across the overlap.
    assert.equal(iso(interval.latest(at('2026-10-25T01:15:00Z'))), '2026-10-25T01:00:00.000Z');
    assert.equal(iso(fixed.latest(at('2026-10-25T01:45:00Z'))), '2026-10-25T00:30:00.000Z');
  });

  it('spring-forward and fall-back in America/New_York', () => {
    // 2026-03-08 02:00 EST jumps to 03:00 EDT; 2026-11-01 02:00 EDT falls back to 01:00 EST.
    const nine = cron('0 9 * * *', { timezone: 'America/New_York' });
    assert.deepEqual(nextN(nine, '2026-03-06T15:00:00Z', 3), ['2026-03-07T14:00:00.000Z', '2026-03-08T13:00:00.000Z', '2026-03-09T13:00:00.000Z']);
    assert.deepEqual(nextN(nine, '2026-10-30T15:00:00Z', 3), ['2026-10-31T13:00:00.000Z', '2026-11-01T14:00:00.000Z', '2026-11-02T14:00:00.000Z']);
    const gap = cron('30 2 * * *', { timezone: 'America/New_York' });
    assert.deepEqual(nextN(gap, '2026-03-07T12:00:00Z', 2), ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z']);
    const overlap = cron('30 1 * * *', { timezone: 'America/New_York' });
    assert.deepEqual(nextN(overlap, '2026-10-31T12:00:00Z', 2), ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
    const hourly = cron('15 * * * *', { timezone: 'America/New_York' });
    assert.deepEqual(nextN(hourly, '2026-11-01T05:00:00Z', 3), [
      '2026-11-01T05:15:00.000Z', // 01:15 EDT
      '2026-11-01T06:15:00.000Z', // 01:15 EST
      '2026-11-01T07:15:00.000Z', // 02:15 EST
    ]);
  });

  it('rejects malformed expressions with a message naming the problem', () => {
    rejects(() => cron(''), /cron: expression must not be empty/);
    rejects(() => cron('   '), /cron: expression must not be empty/);
    rejects(() => cron(42 as unknown as string), /cron: expression must be a string, got 42/);
    rejects(() => cron('* * * *'), /expected 5 fields .* or 6 .*got 4/);
    rejects(() => cron('not a cron'), /invalid cron expression "not a cron": expected 5 fields/);
    rejects(() => cron('0 0 1 1 * 2030'.replace('2030', '2030 x')), /the year field \(7th\) is not supported/);
    rejects(() => cron('61 * * * *'), /invalid cron expression "61 \* \* \* \*": minute \(0-59\) value out of range/);
    rejects(() => cron('0 24 * * *'), /invalid cron expression "0 24 \* \* \*": hour \(0-23\) value out of range/);
    rejects(() => cron('0 0 32 * *'), /invalid cron expression .*: day-of-month \(1-31\) value out of range/);
    rejects(() => cron('0 0 0 * *'), /day-of-month \(1-31\) value out of range/);
    rejects(() => cron('0 0 * 13 *'), /month \(1-12 or JAN-DEC\) value out of range/);
    rejects(() => cron('0 0 * * 8'), /day-of-week \(0-7 or SUN-SAT\) value out of range/);
    rejects(() => cron('60 0 0 * * *'), /second \(0-59\) value out of range/);
    rejects(() => cron('*/0 * * * *'), /invalid cron expression .*stepping/);
    rejects(() => cron('0 0 * FOO *'), /invalid cron expression "0 0 \* FOO \*"/);
    rejects(() => cron('5-1 * * * *'), /invalid cron expression "5-1 \* \* \* \*"/);
    rejects(() => cron('@reboot'), /cron: unsupported nickname "@reboot"/);
    rejects(() => cron('2030-01-23T00:00:00'), /expected 5 fields/);
    rejects(() => cron('0 0 30 2 *'), /cron expression "0 0 30 2 \*" never fires/);
  });

  it('rejects unknown time zones', () => {
    rejects(() => cron('0 * * * *', { timezone: 'Mars/Base' }), /cron: unknown time zone "Mars\/Base"/);
    rejects(() => cron('0 * * * *', { timezone: 5 as unknown as string }), /cron: timezone must be a non-empty IANA time zone name, got 5/);
    rejects(() => cron('0 * * * *', 'Europe/Berlin' as never), /cron: options must be an object/);
  });
});

describe('stored form', () => {
  const samples: [string, Schedule][] = [
    ['every', every(90_000)],
    ['daily', daily(9, 5)],
    ['daily tz', daily(23, 0, { timezone: 'Asia/Tokyo' })],
    ['weekly', weekly('fri', 17, 30)],
    ['weekly tz', weekly(1, 8, 0, { timezone: 'America/New_York' })],
    ['cron', cron('*/5 9-17 * * 1-5')],
    ['cron tz seconds', cron('0 */10 * * * *', { timezone: 'Europe/Berlin' })],
  ];

  for (const [label, s] of samples) {
    it(`round-trips through JSON (${label})`, () => {
      const json = JSON.stringify(s);
      const back = scheduleFromJson(json);
      assert.ok(isSchedule(back));
      assert.deepEqual(back.toJSON(), s.toJSON());
      assert.equal(String(back), String(s));
      assert.deepEqual(nextN(back, '2026-10-24T00:00:00Z', 5), nextN(s, '2026-10-24T00:00:00Z', 5));
    });
  }

  it('has readable specs and descriptions', () => {
    assert.deepEqual(daily(9, 0).toJSON(), { kind: 'daily', hour: 9, minute: 0 });
    assert.deepEqual(weekly('Sunday', 2, 0).toJSON(), { kind: 'weekly', day: 0, hour: 2, minute: 0 });
    assert.deepEqual(cron(' 0 9 * * 1-5 ', { timezone: 'Europe/Berlin' }).toJSON(), { kind: 'cron', expr: '0 9 * * 1-5', timezone: 'Europe/Berlin' });
    assert.equal(String(daily(9, 0)), 'daily at 09:00 UTC');
    assert.equal(String(weekly('sun', 2, 0, { timezone: 'Europe/Berlin' })), 'weekly on Sunday at 02:00 Europe/Berlin');
    assert.equal(String(every(60_000)), 'every 60000 ms');
    assert.ok(Object.isFrozen(daily(9, 0)) && Object.isFrozen(daily(9, 0).spec));
  });

  it('validates specs it rebuilds', () => {
    rejects(() => scheduleFromJson('{nope'), /schedule spec is not valid JSON/);
    rejects(() => scheduleFromSpec(null as unknown as ScheduleSpec), /schedule spec must be an object, got null/);
    rejects(() => scheduleFromSpec({ kind: 'hourly' } as unknown as ScheduleSpec), /unknown kind "hourly"/);
    rejects(() => scheduleFromSpec({ kind: 'every', ms: -5 }), /every: ms must be a positive finite integer/);
    rejects(() => scheduleFromSpec({ kind: 'daily', hour: 25, minute: 0 }), /daily: hour must be an integer from 0 to 23/);
    rejects(() => scheduleFromSpec({ kind: 'weekly', day: 'sun', hour: 1, minute: 0 } as unknown as ScheduleSpec), /weekly day must be a number 0-6/);
    rejects(() => scheduleFromSpec({ kind: 'cron', expr: '0 * * * *', timezone: 'Bad/Zone' }), /unknown time zone "Bad\/Zone"/);
    rejects(() => scheduleFromSpec({ kind: 'every', ms: 1000, extra: 1 } as unknown as ScheduleSpec), /unknown field "extra"/);
  });

  it('rejects invalid Dates passed to next() and latest()', () => {
    assert.throws(() => every(1000).next(new Date(NaN)), InvalidArgumentError);
    assert.throws(() => cron('0 * * * *').latest('2027-01-01' as unknown as Date), InvalidArgumentError);
    assert.equal(isSchedule({ next: () => new Date() }), false);
  });
});
