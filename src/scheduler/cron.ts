/**
 * Thin wrapper over the `croner` library: parses a cron expression once and answers two
 * questions in a time zone — "the next fire strictly after t" and "the latest fire at or
 * before t". No cron parsing happens here; croner does it all.
 *
 * Accepted syntax (croner's, restricted to what repeats forever):
 * - 5 fields `minute hour day-of-month month day-of-week`, or 6 with a leading `second` field;
 *   ranges `1-5`, steps `*\/15` and `0-30/10`, lists `1,15`, month and day names (`JAN`, `mon`),
 *   `L`, `W`, `#`, `?` and the `+` AND-modifier, and the nicknames `@hourly`, `@daily`
 *   (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`).
 * - Not accepted: the 7th (year) field, one-off dates (ISO strings), `@reboot`, and
 *   expressions that never fire (such as `0 0 30 2 *`).
 * - Day-of-month and day-of-week combine with OR (Vixie cron), unless the day-of-week field
 *   starts with `+`.
 *
 * Time zones and DST follow croner (Vixie cron rules, as croner documents them):
 * - Without a time zone, expressions are read in UTC (never the host's local zone).
 * - A fixed-time job (a single value in second, minute and hour, e.g. `30 2 * * *`) whose
 *   wall-clock time falls in a spring-forward gap fires at the first valid time after the gap,
 *   the same day; a time that occurs twice at fall-back fires once, at its first occurrence.
 * - An interval job (wildcard, step, range or list in second, minute or hour) skips the times
 *   inside a gap and fires on both occurrences of a repeated time.
 * @module
 */
import { Cron } from 'croner';
import { InvalidScheduleError, messageOf } from '../errors.js';

/** Nicknames croner understands and that repeat forever. */
const NICKNAMES = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

/** A far-past reference for the "does it ever fire" check (expressions repeat every 400 years). */
const NEVER_FIRES_REFERENCE = Date.UTC(2000, 0, 1);

/**
 * Returns `timezone` when the runtime's `Intl` knows it (IANA names such as `Europe/Berlin`,
 * `UTC`, `Etc/GMT+5`; case-insensitive as `Intl` is).
 * @param timezone the zone to check
 * @param where the constructor named in the error message
 * @example assertTimeZone('Europe/Berlin', 'cron') // 'Europe/Berlin'
 * @throws InvalidScheduleError when `timezone` is not a non-empty string or is unknown
 */
export function assertTimeZone(timezone: unknown, where: string): string {
  if (typeof timezone !== 'string' || timezone.trim() === '') {
    throw new InvalidScheduleError(`${where}: timezone must be a non-empty IANA time zone name, got ${show(timezone)}`);
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch (e) {
    throw new InvalidScheduleError(`${where}: unknown time zone "${timezone}" (expected an IANA name such as "Europe/Berlin")`, { cause: e });
  }
  return timezone;
}

/**
 * A cron expression parsed by croner and bound to a time zone (UTC when none).
 * Create with {@link compileCron}. Fire times are whole seconds.
 */
export class CompiledCron {
  /** The expression as given (trimmed). */
  readonly expr: string;
  /** The IANA time zone, or `undefined` for UTC. */
  readonly timezone: string | undefined;
  readonly #cron: Cron;

  /** @internal use {@link compileCron} */
  constructor(expr: string, timezone: string | undefined, cron: Cron) {
    this.expr = expr;
    this.timezone = timezone;
    this.#cron = cron;
  }

  /**
   * The first fire time strictly after `afterMs` (epoch ms), or `undefined` past year 9999.
   * @example compileCron('0 * * * *').next(Date.UTC(2027, 0, 1, 10)) // Date.UTC(2027, 0, 1, 11)
   */
  next(afterMs: number): number | undefined {
    let cursor = afterMs;
    // croner strips milliseconds and searches from the next second, so the result is
    // already strictly later; the loop only guards that promise.
    for (let i = 0; i < 3; i++) {
      const d = this.#cron.nextRun(new Date(cursor));
      if (d === null) return undefined;
      const t = d.getTime();
      if (t > afterMs) return t;
      cursor = t;
    }
    return undefined;
  }

  /**
   * The latest fire time at or before `atOrBeforeMs` (epoch ms), or `undefined` when none.
   * @example compileCron('0 * * * *').latest(Date.UTC(2027, 0, 1, 10, 30)) // Date.UTC(2027, 0, 1, 10)
   */
  latest(atOrBeforeMs: number): number | undefined {
    // previousRuns excludes a run exactly at the reference, so look from one ms later.
    let ref = atOrBeforeMs + 1;
    for (let i = 0; i < 3; i++) {
      const d = this.#cron.previousRuns(1, new Date(ref))[0];
      if (d === undefined) return undefined;
      const t = d.getTime();
      if (t <= atOrBeforeMs) return t;
      ref = t;
    }
    return undefined;
  }
}

/**
 * Parses a cron expression with croner, read in `timezone` (UTC when omitted).
 * @param expr 5 fields, or 6 with leading seconds, or a nickname such as `@daily`
 * @param timezone an IANA time zone name
 * @param where the constructor named in error messages
 * @example compileCron('0 9 * * 1-5', 'Europe/Berlin').next(Date.now())
 * @throws InvalidScheduleError on a malformed expression (field count, value out of range,
 *   bad step, unknown name), a year field, an expression that never fires, or an unknown zone
 */
export function compileCron(expr: unknown, timezone?: string, where = 'cron'): CompiledCron {
  if (typeof expr !== 'string') throw new InvalidScheduleError(`${where}: expression must be a string, got ${show(expr)}`);
  const text = expr.trim();
  if (text === '') throw new InvalidScheduleError(`${where}: expression must not be empty`);
  const zone = timezone === undefined ? undefined : assertTimeZone(timezone, where);
  if (text.startsWith('@')) {
    if (!NICKNAMES.has(text.toLowerCase())) {
      throw new InvalidScheduleError(`${where}: unsupported nickname "${text}" (expected one of ${[...NICKNAMES].join(', ')})`);
    }
  } else {
    const fields = text.split(/\s+/).length;
    if (fields === 7) {
      throw new InvalidScheduleError(`${where}: invalid cron expression "${text}": the year field (7th) is not supported`);
    }
    if (fields !== 5 && fields !== 6) {
      throw new InvalidScheduleError(
        `${where}: invalid cron expression "${text}": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with a leading second field), got ${fields}`,
      );
    }
  }
  let cron: Cron;
  try {
    // No callback: croner starts no timer. utcOffset 0 is croner's fast path for UTC.
    cron = new Cron(text, zone === undefined ? { mode: '5-or-6-parts', utcOffset: 0 } : { mode: '5-or-6-parts', timezone: zone });
  } catch (e) {
    throw new InvalidScheduleError(`${where}: invalid cron expression "${text}": ${explain(messageOf(e))}`, { cause: e });
  }
  const compiled = new CompiledCron(text, zone, cron);
  let first: number | undefined;
  try {
    first = compiled.next(NEVER_FIRES_REFERENCE);
  } catch (e) {
    throw new InvalidScheduleError(`${where}: invalid cron expression "${text}": ${messageOf(e)}`, { cause: e });
  }
  if (first === undefined) {
    throw new InvalidScheduleError(`${where}: cron expression "${text}" never fires (no date matches it)`);
  }
  return compiled;
}

/** Field names and ranges for croner's "Invalid value for <field>: <n>" (its n is 0-based for day and month). */
const FIELD_RANGES: Record<string, string> = {
  second: 'second (0-59)',
  minute: 'minute (0-59)',
  hour: 'hour (0-23)',
  day: 'day-of-month (1-31)',
  month: 'month (1-12 or JAN-DEC)',
  dayOfWeek: 'day-of-week (0-7 or SUN-SAT)',
};

/** croner's 0-based "configuration entry" index (seconds first, also for 5-field input) → field key. */
const ENTRY_FIELDS = ['second', 'minute', 'hour', 'day', 'month', 'dayOfWeek'];

/** croner's parse error, without its prefix and with field names users know. */
function explain(message: string): string {
  const m = message.replace(/^CronPattern:\s*/, '');
  const range = /^Invalid value for (\w+): /.exec(m);
  const field = range ? FIELD_RANGES[range[1] ?? ''] : undefined;
  if (field) return `${field} value out of range`;
  const entry = /^configuration entry (\d+) \((.*)\) contains illegal characters/.exec(m);
  const entryField = entry ? FIELD_RANGES[ENTRY_FIELDS[Number(entry[1])] ?? ''] : undefined;
  if (entry && entryField) return `${entryField} field ${JSON.stringify(entry[2])} contains an unknown name or illegal characters`;
  return m;
}

/** A short rendering of any value for error messages. @internal */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return String(value);
  if (value instanceof Date) return `Date(${Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString()})`;
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}
