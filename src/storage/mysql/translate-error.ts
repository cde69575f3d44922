/**
 * The one place where MySQL/MariaDB error codes and mysql2 errors are interpreted.
 * @internal
 */
import { DuplicateJobError, DurableJobsError, StorageError } from '../../errors.js';

/** The unique index over non-terminal jobs' keys (see migrations/0001_init.sql). */
const UNIQUE_KEY_INDEX = 'sdj_jobs_unique_active';

interface MysqlErrorFields {
  code?: unknown;
  errno?: unknown;
  sqlMessage?: unknown;
  message?: unknown;
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
  return new StorageError(`mysql: ${message}${code}`, { cause: e });
}
