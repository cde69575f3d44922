/**
 * Errors of a schema older than the code: a storage error naming a table or column a later
 * migration adds gets a hint to run `migrate()`.
 * @internal
 */
import { StorageError } from '../errors.js';

/** Tables and columns added by later migrations: what needs them, and the schema version that adds them. */
const LATER: readonly { pattern: RegExp; what: string; version: number }[] = [
  { pattern: /sdj_workers/, what: 'the worker registry', version: 3 },
  { pattern: /sdj_limits|sdj_rate_state|\blimited\b|concurrency_key|rate_key|debounce_key/, what: 'flow control (limits, dedup windows, debounce)', version: 4 },
];

/** A storage error about a table or column the schema lacks says what to do: the schema predates it. */
export function withMigrateHint(e: unknown): unknown {
  if (!(e instanceof StorageError) || e.transient) return e;
  const later = LATER.find((l) => l.pattern.test(e.message));
  if (!later) return e;
  return new StorageError(`${e.message} — ${later.what} needs schema version ${later.version} or later: run migrate() (or sdj migrate)`, { cause: e });
}
