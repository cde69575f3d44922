/**
 * The one place where PostgreSQL SQLSTATEs and `pg` errors are interpreted.
 * @internal
 */
import { DuplicateJobError, DurableJobsError, StorageError } from '../../errors.js';
import { isNetworkCode } from '../network-errors.js';

/** The unique index over live jobs' keys, on the live partition (see migrations/0002_live_and_history.sql). */
const UNIQUE_KEY_INDEX = 'sdj_jobs_unique_key';

interface PgErrorFields {
  code?: unknown;
  constraint?: unknown;
  detail?: unknown;
}

/** True when `e` is a unique violation (23505) of the `sdj_jobs_unique_key` index. */
export function isUniqueKeyViolation(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const { code, constraint } = e as PgErrorFields;
  return code === '23505' && constraint === UNIQUE_KEY_INDEX;
}

/** The clashing key from a violation's detail: `Key (unique_key)=(abc) already exists.` */
function keyFromDetail(e: unknown): string | undefined {
  const detail = (e as PgErrorFields).detail;
  if (typeof detail !== 'string') return undefined;
  const m = /^Key \(unique_key\)=\((.*)\) already exists\.?$/s.exec(detail);
  return m?.[1];
}

/** SQLSTATEs after which a whole transaction is worth running again: serialization failure, deadlock detected. */
const RETRYABLE_TX_STATES = new Set(['40001', '40P01']);

/** The SQLSTATE of a `pg` error, if any. */
export function sqlState(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as PgErrorFields).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * True when a transaction (or a single statement outside one) that failed with `e` was rolled
 * back whole and may run again from the top: a serialization failure (40001) or a deadlock
 * (40P01). The predicate of this driver's transaction retry (shared/tx-retry.ts).
 */
export function isRetryableTxError(e: unknown): boolean {
  const state = sqlState(e);
  return state !== undefined && RETRYABLE_TX_STATES.has(state);
}

/**
 * SQLSTATEs after which the same call may succeed: serialization failure and deadlock,
 * lock not available, too many connections, the server shutting down or starting.
 */
const TRANSIENT_STATES = new Set(['40001', '40P01', '55P03', '53300', '57P01', '57P02', '57P03']);

/** Messages of `pg` when the connection ended under a call (these carry no code). */
const LOST_CONNECTION = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i;

/**
 * True when `e` says nothing about the call that failed: a connection-class SQLSTATE (08...),
 * one of {@link TRANSIENT_STATES}, a socket error, or the pool's lost-connection messages.
 */
export function isTransientError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const code = (e as PgErrorFields).code;
  if (typeof code === 'string' && (code.startsWith('08') || TRANSIENT_STATES.has(code) || isNetworkCode(code))) return true;
  return typeof code !== 'string' && e instanceof Error && LOST_CONNECTION.test(e.message);
}

/**
 * Maps a driver error to a library error: a violation of the unique-key index becomes
 * `DuplicateJobError` (naming the key in the server's detail), library errors pass through,
 * everything else becomes a `StorageError` carrying the driver error as `cause` (marked
 * transient per {@link isTransientError}).
 */
export function translateError(e: unknown): DurableJobsError {
  if (e instanceof DurableJobsError) return e;
  if (isUniqueKeyViolation(e)) return new DuplicateJobError(keyFromDetail(e) ?? '(unknown)', { cause: e });
  const code = typeof e === 'object' && e !== null ? (e as PgErrorFields).code : undefined;
  const message = e instanceof Error ? e.message : String(e);
  return new StorageError(`postgres: ${message}${typeof code === 'string' ? ` (${code})` : ''}`, { cause: e, transient: isTransientError(e) });
}
