/**
 * The SQLite storage driver, on `better-sqlite3`.
 *
 * How it works: `better-sqlite3` is synchronous, so every method runs its whole state change as
 * one synchronous `BEGIN IMMEDIATE` transaction and never holds a transaction across an `await`
 * (the operations, in `job-ops.ts`, `listing.ts`, `bulk-ops.ts`, `run-ops.ts`, `progress-ops.ts`,
 * `flow-ops.ts`, `limits.ts`, `workflow-ops.ts`, `schedule-ops.ts`, `worker-registry.ts` and `event-ops.ts`,
 * return their results synchronously; the shared `BaseStorage` facade settles the promises).
 * Several `SqliteStorage` instances — in one process or in many — can therefore share one
 * database file: writers serialize on the file lock (WAL mode, `busy_timeout`, default 5 s),
 * readers never block. Statements are prepared once per instance.
 *
 * Known limits:
 * - Writes serialize on the file lock; there is no LISTEN/NOTIFY (no `listen()`):
 *   workers learn about other processes' writes by reading `PRAGMA data_version` (`dataVersion()`,
 *   a shared-memory read) every few milliseconds, and claim when it moved. Fleet-event
 *   subscribers (`queue.events({ fleet: true })`) likewise poll the change feed (no `eventListen()`).
 * - Durability: `synchronous = NORMAL` in WAL mode (set on connections the driver opens). A
 *   commit is in the WAL before the call returns, so it survives the crash of any process; only
 *   an OS crash or power loss can roll back the last commits (`FULL` would fsync every commit).
 * - `temp_store = MEMORY` (set on connections the driver opens): the small temporary b-trees
 *   SQLite builds while it runs a statement (the `IN` lists of partial-index predicates, on every
 *   finish) live in memory. With temporary files, finishing jobs spent most of its time in page
 *   faults (docs/storage.md). On a `Database` of your own, set it yourself.
 * - The clock is the host's (`Date.now()`, or the injected `clock`): processes sharing a file
 *   must have reasonably synchronized clocks.
 * - `':memory:'` databases are private to one connection: use a file to share jobs between
 *   instances.
 * - Retention (`jobPrune`): SQLite has no row locks to skip; a prune is one `BEGIN IMMEDIATE`
 *   transaction of at most `limit` roots, so it is the only writer while it runs (and so the
 *   only pruner). It answers `busy` only when the write lock could not be had within the busy
 *   timeout.
 * - `jobInsertMany({ tx })` (enqueue inside your own transaction) takes your `better-sqlite3`
 *   `Database`, which must be open on the same database file. The inserts run on it directly
 *   (in a savepoint when your transaction is open). `better-sqlite3` transactions are
 *   synchronous: call `enqueue` inside the transaction function without awaiting in between —
 *   the inserts happen before `enqueue` first yields. Do not call other storage methods of a
 *   storage opened on a *different* connection while your write transaction is open: that
 *   connection would wait for your lock synchronously until `busy_timeout`, then fail.
 * @module
 */
import type { DurableJobsError } from '../../errors.js';
import type { Logger } from '../../types.js';
import { BaseStorage, operationsFrom } from '../shared/base-storage.js';
import { openDatabase, type SqliteDatabaseLike } from './connection.js';
import * as bulk from './bulk-ops.js';
import * as events from './event-ops.js';
import * as flow from './flow-ops.js';
import * as jobs from './job-ops.js';
import * as limits from './limits.js';
import * as counts from './counts.js';
import * as listing from './listing.js';
import * as patches from './patch-ops.js';
import * as retention from './retention.js';
import { migrate } from './migrate.js';
import * as progress from './progress-ops.js';
import * as run from './run-ops.js';
import * as sched from './schedule-ops.js';
import { SqliteContext } from './statements.js';
import { translateError } from './translate-error.js';
import * as workers from './worker-registry.js';
import * as wf from './workflow-ops.js';

export type { SqliteDatabaseLike } from './connection.js';

/** Options of {@link SqliteStorage}. */
export interface SqliteStorageOptions {
  /** The clock (ms since the epoch) leases and run-at compare against. @default Date.now */
  clock?: () => number;
  /**
   * How long a write waits for another connection's lock before failing (ms). Applied to
   * connections the driver opens, and to a passed-in `Database` only when given explicitly.
   * @default 5000
   */
  busyTimeoutMs?: number;
  /** Receives migration notices. Silent by default. */
  logger?: Logger;
}

/** Every `Storage` method: the function of the same name in the file the storage docs name. */
const OPERATIONS = operationsFrom<SqliteContext, SqliteDatabaseLike>({
  migrate,
  ...jobs,
  ...listing,
  ...counts,
  ...patches,
  ...bulk,
  ...events,
  ...retention,
  ...run,
  ...progress,
  ...flow,
  ...limits,
  ...wf,
  ...sched,
  ...workers,
});

/**
 * Storage on SQLite through `better-sqlite3` (loaded lazily, only when given a path).
 * @example
 * const storage = new SqliteStorage('jobs.db'); // or ':memory:', or a better-sqlite3 Database
 * await storage.migrate();
 */
export class SqliteStorage extends BaseStorage<SqliteContext, SqliteDatabaseLike> {
  /** Always `'sqlite'`. */
  readonly dialect = 'sqlite' as const;

  readonly #ctx: SqliteContext;
  readonly #owned: boolean;

  /**
   * @param pathOrDb a file path, `':memory:'`, or a `better-sqlite3` `Database` (never closed by us)
   * @param options clock, busy timeout, logger
   * @throws InvalidArgumentError, StorageError (better-sqlite3 missing, file cannot be opened)
   */
  constructor(pathOrDb: string | SqliteDatabaseLike, options: SqliteStorageOptions = {}) {
    const opened = openDatabase(pathOrDb, options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs });
    const ctx = new SqliteContext(opened.db, options.clock ?? Date.now, options.logger);
    super(OPERATIONS, ctx, options.logger);
    this.#ctx = ctx;
    this.#owned = opened.owned;
  }

  /** `PRAGMA data_version`: changes when another connection committed (cross-process wake-ups). */
  dataVersion(): Promise<number> {
    return this.call('dataVersion', (ctx) => Number(ctx.db.pragma('data_version', { simple: true })));
  }

  /** Driver errors become typed errors (a unique-key clash a `DuplicateJobError`, the rest `StorageError`). */
  protected override translateError(e: unknown): DurableJobsError {
    return translateError(e);
  }

  /** Forgets the prepared statements and closes the connection if this instance opened it. */
  protected override closeResources(): Promise<void> {
    this.#ctx.clear();
    if (this.#owned && this.#ctx.db.open) this.#ctx.db.close();
    return Promise.resolve();
  }
}
