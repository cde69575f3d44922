/**
 * Errors of a schema older than the code: a storage error naming a table a later migration adds
 * gets a hint to run `migrate()`.
 * @internal
 */
import { StorageError } from '../errors.js';

/** A storage error about the missing registry table says what to do: the schema predates it. */
export function withMigrateHint(e: unknown): unknown {
  if (!(e instanceof StorageError) || e.transient || !/sdj_workers/.test(e.message)) return e;
  return new StorageError(`${e.message} — the worker registry needs schema version 3 or later: run migrate() (or sdj migrate)`, { cause: e });
}
