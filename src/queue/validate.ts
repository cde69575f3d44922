/**
 * Input validation shared by the producer and worker APIs. Every check throws
 * `InvalidArgumentError` with a message naming the offending field.
 * @internal
 */
import { InvalidArgumentError } from '../errors.js';

/** Queue names: a letter or digit, then letters, digits, `_ . : -`; at most 128 characters. */
export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const MAX_NAME = 255;
const MAX_INT32 = 2_147_483_647;
/** Upper bound for delays and durations: 100 years. */
const MAX_DURATION = 100 * 365 * 24 * 3600 * 1000;

/**
 * An unpaired UTF-16 surrogate. Such text has no UTF-8 form: every driver would store it as
 * U+FFFD, so a name or tag holding one would not come back as given.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Job types and step names: non-empty strings of at most 255 characters without control characters. */
export function checkName(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field} must be a string, got ${describe(value)}`);
  if (value.length === 0) throw new InvalidArgumentError(`${field} must not be empty`);
  if (value.length > MAX_NAME) throw new InvalidArgumentError(`${field} is longer than ${MAX_NAME} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new InvalidArgumentError(`${field} must not contain control characters`);
  if (LONE_SURROGATE.test(value)) throw new InvalidArgumentError(`${field} must be well-formed Unicode (it holds an unpaired surrogate)`);
  return value;
}

/** A queue name matching {@link QUEUE_NAME_PATTERN}. */
export function checkQueueName(value: unknown, field = 'queue'): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field} must be a string, got ${describe(value)}`);
  if (!QUEUE_NAME_PATTERN.test(value)) {
    throw new InvalidArgumentError(
      `${field} "${value.slice(0, 140)}" is not a valid queue name (letters, digits, _ . : -; starting with a letter or digit; at most 128 characters)`,
    );
  }
  return value;
}

/** An integer in [min, max]. */
export function checkInt(value: unknown, field: string, min: number, max = MAX_INT32): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new InvalidArgumentError(`${field} must be an integer, got ${describe(value)}`);
  if (value < min || value > max) throw new InvalidArgumentError(`${field} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** A finite duration in ms, >= min, rounded up to a whole millisecond. */
export function checkDuration(value: unknown, field: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidArgumentError(`${field} must be a finite number of milliseconds, got ${describe(value)}`);
  if (value < min) throw new InvalidArgumentError(`${field} must be >= ${min} ms, got ${value}`);
  if (value > MAX_DURATION) throw new InvalidArgumentError(`${field} is longer than 100 years`);
  return Math.ceil(value);
}

/** A valid `Date`. */
export function checkDate(value: unknown, field: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new InvalidArgumentError(`${field} must be a valid Date, got ${describe(value)}`);
  return value;
}

/**
 * A short free-form tag (unique key, tenant): non-empty string of at most 255 characters,
 * well-formed Unicode without NUL (which PostgreSQL text cannot hold).
 */
export function checkTag(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field} must be a string, got ${describe(value)}`);
  if (value.length === 0 || value.length > MAX_NAME) throw new InvalidArgumentError(`${field} must be 1 to ${MAX_NAME} characters`);
  if (value.includes('\u0000')) throw new InvalidArgumentError(`${field} must not contain NUL characters`);
  if (LONE_SURROGATE.test(value)) throw new InvalidArgumentError(`${field} must be well-formed Unicode (it holds an unpaired surrogate)`);
  return value;
}

/** A plain options object whose keys are all in `allowed` (`undefined` means none given). */
export function checkOptions<T extends object>(value: unknown, field: string, allowed: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(`${field} must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new InvalidArgumentError(`${field} has an unknown option "${key}" (known: ${allowed.join(', ')})`);
  }
  return value as Partial<T>;
}

/** A short description of a value's type for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return `"${value.slice(0, 40)}"`;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : 'a Date';
  return typeof value;
}

/**
 * Job types that `ctx.call` could confuse with the workflow's own checkpoints
 * (`fan-out`, `sleep`, `signal:<name>`) are reserved.
 */
export function checkJobType(value: unknown, field = 'job type'): string {
  const name = checkName(value, field);
  if (name === 'fan-out' || name === 'sleep' || name.startsWith('signal:')) {
    throw new InvalidArgumentError(`${field} "${name}" is reserved for workflow checkpoints (fan-out, sleep, signal:*); choose another name`);
  }
  return name;
}
