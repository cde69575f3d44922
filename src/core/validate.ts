/**
 * Input validation shared by the producer and worker APIs. Every check throws
 * `InvalidArgumentError` with a message naming the offending field.
 *
 * Durations come in two kinds, each checked here and nowhere else:
 * - **timer durations** arm a Node.js timer, which cannot wait longer than 2^31 − 1 ms (about
 *   24.8 days; a longer delay fires after 1 ms): a worker's `leaseTimeout`,
 *   `heartbeatInterval`, `pollInterval`, `maintenanceInterval` and `drainTimeout`, a job's
 *   `timeout`, and `waitForJob`'s `pollInterval` ({@link checkTimerDuration});
 * - **stored durations** become a time in the database and are woken by maintenance, so they
 *   may be longer, up to 100 years: `delay`, `sleep`, `retryAfter`, a fan-out's `timeout`, a
 *   signal wait's `timeout`, and `waitForJob`'s `timeout` (which re-arms a short poll timer)
 *   ({@link checkDuration}).
 * @internal
 */
import { InvalidArgumentError, MAX_DELAY_MS } from '../errors.js';
import type { Logger } from '../types.js';

/** Queue names: a letter or digit, then letters, digits, `_ . : -`; at most 128 characters. */
export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
/** Longest name (type, schedule, queue-free tags) in characters. */
export const MAX_NAME = 255;
const MAX_INT32 = 2_147_483_647;
/** The longest delay a Node.js timer carries: 2^31 − 1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2_147_483_647;
/** Most retries a job may have (`retries`, `defaultRetries`). */
export const MAX_RETRIES = 10_000;
/** Largest `maxPayloadBytes`: 256 MiB, well inside what every driver and a JS string can carry. */
export const MAX_PAYLOAD_LIMIT = 256 * 1024 * 1024;
/** Longest worker name: its id (name, `:`, 12 hex digits) must fit `locked_by` (255 characters on MySQL). */
export const MAX_WORKER_NAME = 200;

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

/** A stored duration: finite ms, >= min, at most 100 years, rounded up to a whole millisecond. */
export function checkDuration(value: unknown, field: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidArgumentError(`${field} must be a finite number of milliseconds, got ${describe(value)}`);
  if (value < min) throw new InvalidArgumentError(`${field} must be >= ${min} ms, got ${value}`);
  if (value > MAX_DELAY_MS) throw new InvalidArgumentError(`${field} must be at most ${MAX_DELAY_MS} ms (100 years), got ${value}`);
  return Math.ceil(value);
}

/** A timer duration: finite ms, >= min, at most {@link MAX_TIMER_MS}, rounded up to a whole millisecond. */
export function checkTimerDuration(value: unknown, field: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidArgumentError(`${field} must be a finite number of milliseconds, got ${describe(value)}`);
  if (value < min) throw new InvalidArgumentError(`${field} must be >= ${min} ms, got ${value}`);
  if (value > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`${field} must be at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest a timer can wait), got ${value}`);
  }
  return Math.ceil(value);
}

/** The durations a worker runs on, in ms. */
export interface WorkerTimings {
  leaseMs: number;
  heartbeatMs: number;
  pollMs: number;
  maintenanceMs: number;
  drainMs: number;
}

/**
 * A worker's duration options, with their defaults. Every one arms a timer (the lease is
 * bounded the same way). The heartbeat must come at most every half lease, so a live worker
 * renews its leases at least twice per lease and a late or failed heartbeat does not cost it
 * its jobs; the default, min(lease / 3, 2 s), does.
 */
export function checkWorkerTimings(
  o: { leaseTimeout?: unknown; heartbeatInterval?: unknown; pollInterval?: unknown; maintenanceInterval?: unknown; drainTimeout?: unknown },
  defaultPollMs: number,
): WorkerTimings {
  const leaseMs = o.leaseTimeout === undefined ? 30_000 : checkTimerDuration(o.leaseTimeout, 'leaseTimeout', 200);
  const heartbeatMs = o.heartbeatInterval === undefined ? Math.min(Math.floor(leaseMs / 3), 2000) : checkTimerDuration(o.heartbeatInterval, 'heartbeatInterval', 10);
  if (heartbeatMs > leaseMs / 2) {
    throw new InvalidArgumentError(
      `heartbeatInterval (${heartbeatMs} ms) must be at most half of leaseTimeout (${leaseMs} ms): a worker heartbeating less often loses its running jobs to reclaims`,
    );
  }
  return {
    leaseMs,
    heartbeatMs,
    pollMs: o.pollInterval === undefined ? defaultPollMs : checkTimerDuration(o.pollInterval, 'pollInterval', 5),
    maintenanceMs: o.maintenanceInterval === undefined ? 1000 : checkTimerDuration(o.maintenanceInterval, 'maintenanceInterval', 10),
    drainMs: o.drainTimeout === undefined ? 10_000 : checkTimerDuration(o.drainTimeout, 'drainTimeout'),
  };
}

/**
 * A worker name (the readable prefix of its id, stored as the lease owner): 1 to
 * {@link MAX_WORKER_NAME} characters, well-formed Unicode without control characters, so the
 * id fits `locked_by` on every driver and compares equal to what was stored.
 */
export function checkWorkerName(value: unknown): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`name must be a string, got ${describe(value)}`);
  if (value.length === 0 || value.length > MAX_WORKER_NAME) throw new InvalidArgumentError(`name must be 1 to ${MAX_WORKER_NAME} characters, got ${value.length}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new InvalidArgumentError('name must not contain control characters');
  if (LONE_SURROGATE.test(value)) throw new InvalidArgumentError('name must be well-formed Unicode (it holds an unpaired surrogate)');
  return value;
}

/** A boolean option. */
export function checkBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${field} must be a boolean, got ${describe(value)}`);
  return value;
}

/** A logger: an object with `debug`, `info`, `warn` and `error` functions. */
export function checkLogger(value: unknown, field = 'logger'): Logger {
  const ok =
    value !== null &&
    typeof value === 'object' &&
    (['debug', 'info', 'warn', 'error'] as const).every((k) => typeof (value as Record<string, unknown>)[k] === 'function');
  if (!ok) throw new InvalidArgumentError(`${field} must be an object with debug, info, warn and error functions, got ${describe(value)}`);
  return value as Logger;
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
