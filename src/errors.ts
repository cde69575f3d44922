/**
 * Error classes with stable string codes, and the control-flow helpers `noRetry` / `retryAfter`.
 * This module imports nothing.
 * @module
 */

/** Stable machine-readable codes of every library error. */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'SERIALIZATION'
  | 'PAYLOAD_TOO_LARGE'
  | 'DUPLICATE_JOB'
  | 'JOB_NOT_FOUND'
  | 'INVALID_STATE'
  | 'UNKNOWN_JOB_TYPE'
  | 'DETERMINISM'
  | 'NO_RETRY'
  | 'RETRY_AFTER'
  | 'JOB_TIMEOUT'
  | 'JOB_CANCELLED'
  | 'LEASE_LOST'
  | 'RUN_SUSPENDED'
  | 'WAIT_TIMEOUT'
  | 'FAN_OUT_FAILED'
  | 'SCHEMA_TOO_NEW'
  | 'STORAGE'
  | 'STORAGE_CLOSED'
  | 'INVALID_SCHEDULE'
  | 'PAYLOAD_DECODE_FAILED'
  | 'PAYLOAD_ENCODE_FAILED'
  | 'PAYLOAD_OPAQUE';

/** Base class of every error the library throws. */
export class DurableJobsError extends Error {
  /** Stable code; safe to branch on. */
  readonly code: ErrorCode;
  /** @param code stable code @param message human-readable text @param options `{ cause }` */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An option or argument is invalid (wrong type, NaN, negative, malformed name...). */
export class InvalidArgumentError extends DurableJobsError {
  /** @param message what is wrong */
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/** A payload (args, result, meta, signal) cannot be encoded as JSON without loss. */
export class SerializationError extends DurableJobsError {
  /** @param message what could not be encoded, with its path */
  constructor(message: string, options?: { cause?: unknown }) {
    super('SERIALIZATION', message, options);
  }
}

/** An encoded payload is larger than the configured limit. */
export class PayloadTooLargeError extends DurableJobsError {
  /** @param what which payload @param bytes its size @param limit the limit */
  constructor(
    readonly what: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super('PAYLOAD_TOO_LARGE', `${what} is ${bytes} bytes encoded, over the limit of ${limit} bytes`);
  }
}

/**
 * A job with the same `unique` key is already pending, running, waiting or paused — or, with
 * `uniqueFor`, finished within that window.
 */
export class DuplicateJobError extends DurableJobsError {
  /** @param uniqueKey the clashing key */
  constructor(
    readonly uniqueKey: string,
    options?: { cause?: unknown },
  ) {
    super('DUPLICATE_JOB', `a job with unique key "${uniqueKey}" already exists (not finished, or finished within uniqueFor)`, options);
  }
}

/** No job has this id. */
export class JobNotFoundError extends DurableJobsError {
  /** @param jobId the id looked up */
  constructor(readonly jobId: string) {
    super('JOB_NOT_FOUND', `job ${jobId} not found`);
  }
}

/** The operation does not apply to the job in its current status. */
export class InvalidStateError extends DurableJobsError {
  /** @param message what was attempted and the job's status */
  constructor(message: string) {
    super('INVALID_STATE', message);
  }
}

/** A worker claimed a job whose type has no registered handler. */
export class UnknownJobTypeError extends DurableJobsError {
  /** @param jobType the unregistered type */
  constructor(readonly jobType: string) {
    super('UNKNOWN_JOB_TYPE', `no handler registered for job type "${jobType}"`);
  }
}

/** A workflow replay asked for a different step than the one recorded at that position. */
export class DeterminismError extends DurableJobsError {
  /** @param message expected vs actual step */
  constructor(message: string) {
    super('DETERMINISM', message);
  }
}

/** A job run exceeded its `timeout`. */
export class JobTimeoutError extends DurableJobsError {
  /** @param ms the timeout that passed */
  constructor(readonly timeoutMs: number) {
    super('JOB_TIMEOUT', `job timed out after ${timeoutMs} ms`);
  }
}

/** The job was cancelled while it ran (the reason of `ctx.abortSignal`). */
export class JobCancelledError extends DurableJobsError {
  constructor() {
    super('JOB_CANCELLED', 'job was cancelled');
  }
}

/** The worker lost the job's lease (reclaimed elsewhere, cancelled, or shutting down). */
export class LeaseLostError extends DurableJobsError {
  /** @param message why the lease was lost */
  constructor(message = 'the job lease was lost') {
    super('LEASE_LOST', message);
  }
}

/**
 * What `next()` of a run middleware rejects with when the run suspended: the workflow waits
 * (fan-out, durable sleep or signal wait) and a later run resumes it. Not a failure: rethrow it
 * (the job waits whatever the middleware does).
 */
export class RunSuspendedError extends DurableJobsError {
  /** @param reason what the workflow waits for */
  constructor(readonly reason: 'fan-out' | 'sleep' | 'signal') {
    super('RUN_SUSPENDED', `the run suspended (${reason}); a later run resumes the workflow`);
  }
}

/** `waitForJob` (or another wait) gave up before the job reached a terminal state. */
export class WaitTimeoutError extends DurableJobsError {
  /** @param message what was waited for */
  constructor(message: string) {
    super('WAIT_TIMEOUT', message);
  }
}

/** A fan-out was decided as failed (fail-fast, threshold out of reach, or timeout). */
export class FanOutFailedError extends DurableJobsError {
  /** @param message why @param results per-child outcomes known at the decision */
  constructor(
    message: string,
    readonly results: readonly { index: number; value?: unknown; error?: string }[] = [],
  ) {
    super('FAN_OUT_FAILED', message);
  }
}

/** The database schema is newer than this version of the library. */
export class SchemaTooNewError extends DurableJobsError {
  /** @param found version in the database @param known highest version the code knows */
  constructor(
    readonly found: number,
    readonly known: number,
  ) {
    super('SCHEMA_TOO_NEW', `database schema version ${found} is newer than this library knows (${known}); upgrade simple-durable-jobs`);
  }
}

/** The database failed (connection lost, constraint, ...); `cause` holds the driver error. */
export class StorageError extends DurableJobsError {
  /**
   * True when the failure says nothing about the call itself: the connection was lost or
   * refused, the server is shutting down or busy, a deadlock or serialization conflict. The
   * same call may succeed when tried again; the engine retries fenced writes that failed so
   * for as long as their run holds its lease.
   */
  readonly transient: boolean;

  /** @param message what failed @param options `cause`: the driver error; `transient`: see {@link StorageError.transient} */
  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super('STORAGE', message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.transient = options?.transient ?? false;
  }
}

/** True when `e` is a {@link StorageError} marked transient. @internal */
export function isTransientStorageError(e: unknown): boolean {
  return e instanceof StorageError && e.transient;
}

/** The storage was used after `close()`. */
export class StorageClosedError extends DurableJobsError {
  constructor() {
    super('STORAGE_CLOSED', 'storage is closed');
  }
}

/** A schedule definition is invalid (cron syntax, range, day name, time zone). */
export class InvalidScheduleError extends DurableJobsError {
  /** @param message what is wrong */
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_SCHEDULE', message, options);
  }
}

/**
 * A payload codec (`QueueOptions.codec`) could not encode or decode a stored payload: a value
 * that no key of an encrypted codec opens (a wrong or dropped key, altered text), a value
 * written by another codec, or a codec that threw. Code `PAYLOAD_DECODE_FAILED` (reading) or
 * `PAYLOAD_ENCODE_FAILED` (writing; nothing was written). A run that meets it fails at once,
 * without a retry: a retry cannot help until the keys change (then `queue.retryJobs` runs the
 * jobs again). The message names the payload and the job, never a key.
 */
export class CodecError extends SerializationError {
  override readonly code: ErrorCode;
  /** @param operation `decode` or `encode` @param message what failed, and why */
  constructor(
    readonly operation: 'decode' | 'encode',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = operation === 'decode' ? 'PAYLOAD_DECODE_FAILED' : 'PAYLOAD_ENCODE_FAILED';
  }
}

/**
 * A search asked to look into payload text that the queue's codec stores opaquely (encrypted):
 * `search` of `listJobs` and the bulk actions matches `lastError`, which the
 * database holds as ciphertext. Filter by type, status, queue, tenant or time instead.
 */
export class PayloadOpaqueError extends DurableJobsError {
  /** @param message what cannot be searched, and why */
  constructor(message: string) {
    super('PAYLOAD_OPAQUE', message);
  }
}

/** Wraps an error so the job fails now, with no retry. Create with {@link noRetry}. */
export class NoRetryError extends DurableJobsError {
  /** @param cause the underlying error */
  constructor(cause: unknown) {
    super('NO_RETRY', messageOf(cause), { cause });
  }
}

/** Wraps an error so the job retries no earlier than `delayMs` from now. Create with {@link retryAfter}. */
export class RetryAfterError extends DurableJobsError {
  /** @param delayMs the minimum delay @param cause the underlying error */
  constructor(
    readonly delayMs: number,
    cause: unknown,
  ) {
    super('RETRY_AFTER', messageOf(cause), { cause });
  }
}

/**
 * Marks an error as permanent: the job (or step) fails now without retrying.
 * @example throw noRetry(new Error('invalid endpoint'))
 */
export function noRetry(err: unknown): NoRetryError {
  return new NoRetryError(err);
}

/**
 * The longest delay the library stores, in ms (100 years): `delay`, `sleep`, `retryAfter`, a
 * backoff result, fan-out and signal-wait deadlines. Anything longer cannot be told apart
 * from "never" and risks overflowing a run-at time.
 * @internal
 */
export const MAX_DELAY_MS = 100 * 365 * 24 * 3600 * 1000;

/**
 * Asks for a retry no earlier than `ms` from now, however long (up to 100 years, the longest
 * delay the library stores; still bounded by `retries`).
 * @example throw retryAfter(5 * 60_000, new Error('rate limited'))
 * @throws InvalidArgumentError when `ms` is not a finite number between 0 and 100 years
 */
export function retryAfter(ms: number, err: unknown): RetryAfterError {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new InvalidArgumentError(`retryAfter: delay must be a finite number >= 0, got ${String(ms)}`);
  }
  if (ms > MAX_DELAY_MS) {
    throw new InvalidArgumentError(`retryAfter: delay must be at most ${MAX_DELAY_MS} ms (100 years), got ${String(ms)}`);
  }
  return new RetryAfterError(ms, err);
}

/** True when `e` is a library error, optionally with the given code. */
export function isDurableJobsError(e: unknown, code?: ErrorCode): e is DurableJobsError {
  return e instanceof DurableJobsError && (code === undefined || e.code === code);
}

/**
 * The message of any thrown value, always a string and never throwing: an Error's `message`
 * (printed when it is not a string), a string as is, anything else as JSON or `String()`. A
 * value that cannot be printed at all (its `message` getter throws, no JSON and no string form)
 * gets a text saying so, so the failure is still recorded. @internal
 */
export function messageOf(e: unknown): string {
  try {
    if (e instanceof Error) {
      const m: unknown = e.message;
      return typeof m === 'string' ? m : printed(m);
    }
    return printed(e);
  } catch {
    return `a thrown ${typeof e} whose message cannot be read`;
  }
}

/** A value as text: a string as is, else JSON, else `String()`. Throws when none works. */
function printed(v: unknown): string {
  if (typeof v === 'string') return v;
  try {
    const json = JSON.stringify(v) as string | undefined;
    if (json !== undefined) return json;
  } catch {
    // no JSON form (a cycle, a BigInt, a throwing toJSON): fall back to String()
  }
  return String(v);
}
