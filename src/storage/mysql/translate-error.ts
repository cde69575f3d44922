/**
 * The one place where MySQL/MariaDB error codes and mysql2 errors are interpreted.
 * @internal
 */
import { DuplicateJobError, DurableJobsError, StorageError } from '../../errors.js';
import { isNetworkCode } from '../network-errors.js';

/** The unique index over non-terminal jobs' keys (see migrations/0001_init.sql). */
const UNIQUE_KEY_INDEX = 'sdj_jobs_unique_active';

interface MysqlErrorFields {
  code?: unknown;
  errno?: unknown;
  sqlMessage?: unknown;
  message?: unknown;
  fatal?: unknown;
}

function fields(e: unknown): MysqlErrorFields {
  return typeof e === 'object' && e !== null ? (e as MysqlErrorFields) : {};
}

/** True when `e` is ER_DUP_ENTRY (1062) on the `sdj_jobs_unique_active` index. */
export function isUniqueKeyViolation(e: unknown): boolean {
  const f = fields(e);
  if (f.code !== 'ER_DUP_ENTRY' && f.errno !== 1062) return false;
  const msg = typeof f.sqlMessage === 'string' ? f.sqlMessage : typeof f.message === 'string' ? f.message : '';
  return msg.includes(UNIQUE_KEY_INDEX);
}

/** The clashing key from `Duplicate entry 'abc' for key 'sdj_jobs_unique_active'` (may be cut short by the server). */
function keyFromMessage(e: unknown): string | undefined {
  const f = fields(e);
  const msg = typeof f.sqlMessage === 'string' ? f.sqlMessage : '';
  const m = /^Duplicate entry '(.*)' for key '(?:[^']*\.)?sdj_jobs_unique_active'$/s.exec(msg);
  return m?.[1];
}

/** ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, and MariaDB's ER_CHECKREAD (snapshot isolation conflict). */
const RETRYABLE_TX_ERRNOS = new Set([1213, 1205, 1020]);

/**
 * The dialect's predicate for the shared transaction retry (`shared/tx-retry.ts`): true for
 * errors after which the transaction is rolled back and may safely run again.
 */
export function isRetryableTxError(e: unknown): boolean {
  const errno = fields(e).errno;
  return typeof errno === 'number' && RETRYABLE_TX_ERRNOS.has(errno);
}

/**
 * Server errors after which the same call may succeed: deadlock (1213), lock wait timeout
 * (1205), MariaDB's snapshot conflict (1020), too many connections (1040), server shutdown
 * (1053), connection killed (1927), server gone away (2006) and lost connection (2013).
 */
const TRANSIENT_ERRNOS = new Set([1213, 1205, 1020, 1040, 1053, 1927, 2006, 2013]);

/** mysql2's own codes of a connection that closed or could not be had. */
const LOST_CONNECTION_CODES = new Set(['PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_CON_COUNT_ERROR', 'POOL_CLOSED_CONNECTION']);

/**
 * True when `e` says nothing about the call that failed: one of {@link TRANSIENT_ERRNOS}, a
 * socket error, or an error mysql2 marks fatal (the connection is gone, as when a call is made
 * on a connection the server closed), except an oversize packet (1153), which the same call
 * would meet again.
 */
export function isTransientError(e: unknown): boolean {
  const f = fields(e);
  if (f.errno === 1153 || f.code === 'ER_NET_PACKET_TOO_LARGE') return false;
  if (typeof f.errno === 'number' && TRANSIENT_ERRNOS.has(f.errno)) return true;
  if (f.fatal === true) return true;
  return isNetworkCode(f.code) || (typeof f.code === 'string' && LOST_CONNECTION_CODES.has(f.code));
}

/**
 * Maps a driver error to a library error: ER_DUP_ENTRY on the unique-key index becomes
 * `DuplicateJobError` (naming `uniqueKey` when the caller knows it, else the key in the server
 * message), library errors pass through, everything else becomes a `StorageError` carrying the
 * driver error as `cause`.
 */
export function translateError(e: unknown, uniqueKey?: string | null): DurableJobsError {
  if (e instanceof DurableJobsError) return e;
  if (isUniqueKeyViolation(e)) return new DuplicateJobError(uniqueKey ?? keyFromMessage(e) ?? '(unknown)', { cause: e });
  const f = fields(e);
  const message = e instanceof Error ? e.message : String(e);
  const code = typeof f.code === 'string' ? ` (${f.code})` : '';
  return new StorageError(`mysql: ${message}${code}`, { cause: e, transient: isTransientError(e) });
}
