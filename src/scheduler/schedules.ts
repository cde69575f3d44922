/**
 * Schedule builders — `every`, `daily`, `weekly`, `cron` — and the {@link Schedule} value they
 * return. A schedule is pure: it knows its fire times ("slots") and how to store itself
 * (`toJSON()` → {@link ScheduleSpec}, rebuilt by {@link scheduleFromSpec}); it never touches
 * storage. Every builder validates at construction and throws `InvalidScheduleError`.
 *
 * Times are UTC unless a `timezone` (IANA name) is given. `daily`, `weekly` and `cron` use
 * croner (see `cron.ts` for its DST rules); `every(ms)` is plain arithmetic on the epoch.
 * @module
 */
import { InvalidArgumentError, InvalidScheduleError } from '../errors.js';
import { assertTimeZone, compileCron, show, type CompiledCron } from './cron.js';

/** The stored form of a schedule (what `toJSON()` returns and `scheduleFromSpec` reads). */
export type ScheduleSpec =
  | { readonly kind: 'every'; readonly ms: number }
  | { readonly kind: 'daily'; readonly hour: number; readonly minute: number; readonly timezone?: string }
  | { readonly kind: 'weekly'; readonly day: number; readonly hour: number; readonly minute: number; readonly timezone?: string }
  | { readonly kind: 'cron'; readonly expr: string; readonly timezone?: string };

/** Options of `daily`, `weekly` and `cron`. */
export interface ScheduleZoneOptions {
  /** IANA time zone the wall-clock times are read in (e.g. `'Europe/Berlin'`). @default UTC */
  timezone?: string;
}

/** English day names `weekly` accepts (any letter case), full or three-letter. */
export type WeekdayName =
  | 'sunday' | 'monday' | 'tuesday' | 'wednesday' | 'thursday' | 'friday' | 'saturday'
  | 'sun' | 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat';

/**
 * A recurring set of fire times ("slots"). Immutable; build one with {@link every},
 * {@link daily}, {@link weekly}, {@link cron} or {@link scheduleFromSpec}.
 */
export interface Schedule {
  /** The stored form of this schedule. */
  readonly spec: ScheduleSpec;
  /**
   * The first slot strictly after `after`.
   * @throws InvalidArgumentError when `after` is not a valid Date
   */
  next(after: Date): Date;
  /**
   * The latest slot at or before `atOrBefore`, or `undefined` when there is none.
   * @throws InvalidArgumentError when `atOrBefore` is not a valid Date
   */
  latest(atOrBefore: Date): Date | undefined;
  /** The spec, so `JSON.stringify(schedule)` gives the stored form. */
  toJSON(): ScheduleSpec;
  /** A human-readable description, e.g. `daily at 09:00 UTC`. */
  toString(): string;
}

/** Largest `every()` interval: 1000 years, which keeps every slot a valid `Date`. */
export const MAX_EVERY_MS = 1000 * 365.25 * 24 * 3600 * 1000;

const DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;

class ScheduleValue implements Schedule {
  readonly spec: ScheduleSpec;
  readonly #next: (after: number) => number | undefined;
  readonly #latest: (atOrBefore: number) => number | undefined;
  readonly #text: string;

  constructor(spec: ScheduleSpec, text: string, next: (t: number) => number | undefined, latest: (t: number) => number | undefined) {
    this.spec = Object.freeze(spec);
    this.#text = text;
    this.#next = next;
    this.#latest = latest;
    Object.freeze(this);
  }

  next(after: Date): Date {
    const t = this.#next(instant(after, 'next'));
    if (t === undefined) throw new InvalidScheduleError(`${this.#text} has no fire time after ${after.toISOString()}`);
    return new Date(t);
  }

  latest(atOrBefore: Date): Date | undefined {
    const t = this.#latest(instant(atOrBefore, 'latest'));
    return t === undefined ? undefined : new Date(t);
  }

  toJSON(): ScheduleSpec {
    return this.spec;
  }

  toString(): string {
    return this.#text;
  }
}

/**
 * Fires every `ms` milliseconds, on slots aligned to the Unix epoch (`k * ms`), so every
 * process computes the same slot instants whenever it starts.
 * @param ms the interval, a positive integer of milliseconds (at most {@link MAX_EVERY_MS})
 * @example queue.schedule('health-check', every(60_000)) // at :00 of every minute (UTC)
 * @throws InvalidScheduleError when `ms` is not a positive finite integer
 */
export function every(ms: number): Schedule {
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms <= 0 || ms > MAX_EVERY_MS) {
    throw new InvalidScheduleError(`every: ms must be a positive finite integer of milliseconds (at most ${MAX_EVERY_MS}), got ${show(ms)}`);
  }
  return new ScheduleValue(
    { kind: 'every', ms },
    `every ${ms} ms`,
    (after) => (Math.floor(after / ms) + 1) * ms,
    (at) => Math.floor(at / ms) * ms,
  );
}

/**
 * Fires once a day at `hour:minute` (UTC unless `options.timezone`). In a zone, a time skipped
 * by a DST spring-forward fires at the first valid time after the gap; a time repeated at
 * fall-back fires once.
 * @param hour 0–23
 * @param minute 0–59 (default 0)
 * @param options `{ timezone }`
 * @example queue.schedule('daily-report', daily(9, 0)) // 09:00 UTC
 * @example daily(9, 30, { timezone: 'Europe/Berlin' })
 * @throws InvalidScheduleError on an hour or minute that is not an integer in range, or an unknown time zone
 */
export function daily(hour: number, minute = 0, options?: ScheduleZoneOptions): Schedule {
  const h = checkInt(hour, 'hour', 0, 23, 'daily');
  const m = checkInt(minute, 'minute', 0, 59, 'daily');
  const timezone = zoneOf(options, 'daily');
  const c = compileCron(`${m} ${h} * * *`, timezone, 'daily');
  return fromCron(withZone({ kind: 'daily', hour: h, minute: m }, timezone), `daily at ${hhmm(h, m)} ${timezone ?? 'UTC'}`, c);
}

/**
 * Fires once a week on `day` at `hour:minute` (UTC unless `options.timezone`).
 * @param day 0–6 (0 = Sunday) or an English day name, full or three-letter, any case
 * @param hour 0–23
 * @param minute 0–59 (default 0)
 * @param options `{ timezone }`
 * @example queue.schedule('weekly-backup', weekly('sunday', 2, 0)) // or weekly(0, 2, 0)
 * @throws InvalidScheduleError on an unknown day name, a day, hour or minute out of range, or an unknown time zone
 */
export function weekly(day: number | WeekdayName | Capitalize<WeekdayName> | Uppercase<WeekdayName> | (string & {}), hour: number, minute = 0, options?: ScheduleZoneOptions): Schedule {
  const d = parseDay(day);
  const h = checkInt(hour, 'hour', 0, 23, 'weekly');
  const m = checkInt(minute, 'minute', 0, 59, 'weekly');
  const timezone = zoneOf(options, 'weekly');
  const c = compileCron(`${m} ${h} * * ${d}`, timezone, 'weekly');
  const name = DAY_NAMES[d] ?? String(d);
  const text = `weekly on ${name[0]?.toUpperCase()}${name.slice(1)} at ${hhmm(h, m)} ${timezone ?? 'UTC'}`;
  return fromCron(withZone({ kind: 'weekly', day: d, hour: h, minute: m }, timezone), text, c);
}

/**
 * Fires on a cron expression, read in UTC unless `options.timezone`. Five fields
 * (`minute hour day-of-month month day-of-week`) or six with a leading seconds field;
 * ranges, steps, lists, month/day names and croner's `L`, `W`, `#` extensions; nicknames
 * such as `@daily`. DST transitions follow croner (see `cron.ts`).
 * @param expr the cron expression
 * @param options `{ timezone }`
 * @example queue.schedule('hourly-task', cron('0 * * * *'))
 * @example cron('0 9 * * 1-5', { timezone: 'Europe/Berlin' }) // weekdays 09:00 Berlin time
 * @example cron('*\/15 * * * * *') // every 15 seconds
 * @throws InvalidScheduleError on a malformed expression, a year (7th) field, an expression that
 *   never fires (`0 0 30 2 *`), or an unknown time zone
 */
export function cron(expr: string, options?: ScheduleZoneOptions): Schedule {
  const timezone = zoneOf(options, 'cron');
  const c = compileCron(expr, timezone, 'cron');
  return fromCron(withZone({ kind: 'cron', expr: c.expr }, timezone), `cron "${c.expr}" ${timezone ?? 'UTC'}`, c);
}

/**
 * Rebuilds a schedule from its stored form (`schedule.toJSON()`), validating it as the
 * builders do.
 * @param spec a {@link ScheduleSpec} (typically `JSON.parse(row.specJson)`)
 * @example scheduleFromSpec({ kind: 'cron', expr: '0 * * * *' })
 * @throws InvalidScheduleError when `spec` is not a valid spec
 */
export function scheduleFromSpec(spec: ScheduleSpec): Schedule {
  const s: unknown = spec;
  if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new InvalidScheduleError(`schedule spec must be an object, got ${show(s)}`);
  const o = s as Record<string, unknown>;
  const tz = o['timezone'] === undefined ? undefined : { timezone: o['timezone'] as string };
  switch (o['kind']) {
    case 'every':
      onlyKeys(o, ['kind', 'ms']);
      return every(o['ms'] as number);
    case 'daily':
      onlyKeys(o, ['kind', 'hour', 'minute', 'timezone']);
      return daily(o['hour'] as number, o['minute'] as number, tz);
    case 'weekly':
      onlyKeys(o, ['kind', 'day', 'hour', 'minute', 'timezone']);
      if (typeof o['day'] !== 'number') throw new InvalidScheduleError(`schedule spec: weekly day must be a number 0-6, got ${show(o['day'])}`);
      return weekly(o['day'], o['hour'] as number, o['minute'] as number, tz);
    case 'cron':
      onlyKeys(o, ['kind', 'expr', 'timezone']);
      return cron(o['expr'] as string, tz);
    default:
      throw new InvalidScheduleError(`schedule spec: unknown kind ${show(o['kind'])} (expected "every", "daily", "weekly" or "cron")`);
  }
}

/**
 * Rebuilds a schedule from the JSON text of its spec (a stored `specJson`).
 * @example scheduleFromJson(JSON.stringify(every(60_000))).next(new Date())
 * @throws InvalidScheduleError when the text is not JSON or not a valid spec
 */
export function scheduleFromJson(json: string): Schedule {
  let spec: unknown;
  try {
    spec = JSON.parse(json);
  } catch (e) {
    throw new InvalidScheduleError(`schedule spec is not valid JSON: ${show(json)}`, { cause: e });
  }
  return scheduleFromSpec(spec as ScheduleSpec);
}

/**
 * True when `value` is a schedule made by this module's builders.
 * @example if (!isSchedule(s)) throw new InvalidArgumentError('not a schedule')
 */
export function isSchedule(value: unknown): value is Schedule {
  return value instanceof ScheduleValue;
}

function fromCron(spec: ScheduleSpec, text: string, c: CompiledCron): Schedule {
  return new ScheduleValue(spec, text, (t) => c.next(t), (t) => c.latest(t));
}

function withZone<T extends object>(spec: T, timezone: string | undefined): T & { timezone?: string } {
  return timezone === undefined ? spec : { ...spec, timezone };
}

function zoneOf(options: unknown, where: string): string | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidScheduleError(`${where}: options must be an object like { timezone: 'Europe/Berlin' }, got ${show(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'timezone') {
      const hint = k.toLowerCase() === 'timezone' ? ' (did you mean "timezone"?)' : '';
      throw new InvalidScheduleError(`${where}: unknown option "${k}"${hint}; the only option is "timezone"`);
    }
  }
  return o['timezone'] === undefined ? undefined : assertTimeZone(o['timezone'], where);
}

function parseDay(day: unknown): number {
  if (typeof day === 'string') {
    const key = day.trim().toLowerCase();
    const i = DAY_NAMES.findIndex((n) => n === key || (key.length === 3 && n.startsWith(key)));
    if (i < 0) {
      throw new InvalidScheduleError(`weekly: unknown day name ${show(day)} (expected sunday..saturday or sun..sat, any case)`);
    }
    return i;
  }
  if (typeof day !== 'number') throw new InvalidScheduleError(`weekly: day must be 0-6 (0 = Sunday) or a day name, got ${show(day)}`);
  return checkInt(day, 'day', 0, 6, 'weekly', ' (0 = Sunday)');
}

function checkInt(value: unknown, field: string, min: number, max: number, where: string, note = ''): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidScheduleError(`${where}: ${field} must be an integer from ${min} to ${max}${note}, got ${show(value)}`);
  }
  return value;
}

function onlyKeys(o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new InvalidScheduleError(`schedule spec (${String(o['kind'])}): unknown field "${k}"`);
  }
}

function instant(d: unknown, method: string): number {
  const t = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(t)) throw new InvalidArgumentError(`schedule.${method}() expects a valid Date, got ${show(d)}`);
  return t;
}

function hhmm(h: number, m: number): string {
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
}
