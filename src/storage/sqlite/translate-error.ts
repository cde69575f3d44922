/**
 * The one place where SQLite / better-sqlite3 error codes are interpreted.
 * @internal
 */
import { DuplicateJobError, DurableJobsError, StorageError } from '../../errors.js';

/** True when `e` is a unique violation of the `sdj_jobs.unique_key` partial index. */
export function isUniqueKeyViolation(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  if (code !== 'SQLITE_CONSTRAINT_UNIQUE' || typeof message !== 'string') return false;
  return message.includes('sdj_jobs.unique_key') || message.includes('sdj_jobs_unique_key');
}

/** True when `e` is SQLITE_BUSY or SQLITE_LOCKED (any extended code): another connection holds the lock. */
export function isTransientError(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/**
 * Maps a driver error to a library error: a unique-key violation becomes `DuplicateJobError`
 * (`uniqueKey` names the clashing key when the caller knows it), library errors pass through,
 * everything else becomes a `StorageError` carrying the driver error as `cause` (marked transient per {@link isTransientError}).
 */
export function translateError(e: unknown, uniqueKey?: string | null): DurableJobsError {
  if (e instanceof DurableJobsError) return e;
  if (isUniqueKeyViolation(e)) return new DuplicateJobError(uniqueKey ?? '(unknown)', { cause: e });
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  const message = e instanceof Error ? e.message : String(e);
  return new StorageError(`sqlite: ${message}${typeof code === 'string' ? ` (${code})` : ''}`, { cause: e, transient: isTransientError(e) });
}
