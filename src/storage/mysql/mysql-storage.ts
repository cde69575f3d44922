/**
 * `MysqlStorage`: the storage driver for MySQL 8 and MariaDB >= 10.6 (both have
 * `FOR UPDATE SKIP LOCKED`, recursive CTEs and indexed generated columns).
 *
 * Known limits:
 * - No cross-process wake-ups (no `listen()`): workers of other processes find new jobs by
 *   polling, and fleet-event subscribers poll the change feed (no `eventListen()`).
 * - Values are bound with mysql2 `?` placeholders, which the client escapes. A server running
 *   with `sql_mode = NO_BACKSLASH_ESCAPES` is not supported.
 * - A single payload must fit the server's `max_allowed_packet` (16 MiB by default on MariaDB,
 *   64 MiB on MySQL). Job inserts are split into statements of at most about 4 MiB of payload;
 *   outcome batches (`jobFinishMany`) into statements of at most half the server's
 *   `max_allowed_packet` (read once per storage, and only for a batch over 1 MiB; at most
 *   16 MiB each), all in one transaction.
 * - Times are BIGINT ms (UTC) computed with `UTC_TIMESTAMP(6)`, so the session and server
 *   `time_zone` do not matter.
 * @module
 */
import { type DurableJobsError, PayloadTooLargeError } from '../../errors.js';
import { silentLogger } from '../../internal/logger.js';
import type { Logger } from '../../types.js';
import { BaseStorage, operationsFrom } from '../shared/base-storage.js';
import type { MaybePromise } from '../shared/maybe-async.js';
import type { Dialect } from '../storage.js';
import { MysqlDb, isConnectionReset, type MysqlConnectionLike, type MysqlPoolLike, type MysqlPromisable, isPacketTooLarge, refusedStatementBytes } from './connection.js';
import type { DriverContext } from './driver-context.js';
import * as bulk from './bulk-ops.js';
import * as events from './event-ops.js';
import * as flow from './flow-ops.js';
import * as inserts from './job-insert.js';
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
import { packetLimitOf } from './statement-budget.js';
import { translateError } from './translate-error.js';
import * as workers from './worker-registry.js';
import * as wf from './workflow-ops.js';

/** The structural mysql2 types the driver accepts (see `connection.ts`). */
export type { MysqlConnectionLike, MysqlPoolConnectionLike, MysqlPoolLike, MysqlQueryOptions } from './connection.js';

/**
 * The caller's open transaction `jobInsertMany` (`EnqueueOptions.transaction`) accepts: a
 * `mysql2/promise` connection, or a callback-style one (its promise wrapper is used).
 */
export type MysqlTransaction = MysqlConnectionLike | MysqlPromisable<MysqlConnectionLike>;

/** Options of {@link MysqlStorage}. */
export interface MysqlStorageOptions {
  /** A clock (ms) replacing the database clock, for tests. */
  clock?: () => number;
  /** Where the driver logs; silent by default. */
  logger?: Logger;
  /** Size of the pool the driver creates from a connection string. @default 10 */
  connectionLimit?: number;
}

/** Below this size a connection reset during a statement is never taken for an oversize-packet refusal. */
const SUSPECT_STATEMENT_BYTES = 1024 * 1024;

/** Every `Storage` method: the function of the same name in the file the storage docs name. */
const OPERATIONS = operationsFrom<DriverContext, MysqlTransaction>({
  migrate,
  ...jobs,
  ...inserts,
  ...flow,
  ...limits,
  ...listing,
  ...counts,
  ...patches,
  ...bulk,
  ...events,
  ...retention,
  ...run,
  ...progress,
  ...wf,
  ...sched,
  ...workers,
});

/**
 * The MySQL 8 / MariaDB >= 10.6 storage driver.
 * @example
 * const storage = new MysqlStorage('mysql://user:pass@127.0.0.1:3306/app');
 * await storage.migrate();
 */
export class MysqlStorage extends BaseStorage<DriverContext, MysqlTransaction> {
  /** Always `'mysql'`. */
  readonly dialect: Dialect = 'mysql';

  readonly #db: MysqlDb;
  readonly #logger: Logger;

  /**
   * @param urlOrPool a `mysql://` URL naming the database (the driver then creates and owns a
   *   mysql2 pool), or your own `mysql2/promise` pool (or callback pool), which `close()` leaves open.
   * @param options clock, logger and pool size
   */
  constructor(urlOrPool: string | MysqlPoolLike | MysqlPromisable<MysqlPoolLike>, options: MysqlStorageOptions = {}) {
    const db = new MysqlDb(urlOrPool, options.connectionLimit === undefined ? {} : { connectionLimit: options.connectionLimit });
    const clock = options.clock;
    const logger = options.logger ?? silentLogger;
    super(OPERATIONS, { db, now: clock ? () => Math.floor(clock()) : () => null }, logger);
    this.#db = db;
    this.#logger = logger;
  }

  /** Driver errors become typed errors; a statement over `max_allowed_packet` a `PayloadTooLargeError`. */
  protected override translateError(e: unknown, op: string): MaybePromise<DurableJobsError> {
    if (isPacketTooLarge(e)) return this.#packetTooLarge(op, e);
    // A reset while sending a statement larger than any packet the server takes is its refusal.
    if (isConnectionReset(e) && (refusedStatementBytes(e) ?? 0) > SUSPECT_STATEMENT_BYTES) return this.#resetOrTooLarge(op, e);
    return translateError(e);
  }

  /** A connection reset during a large statement: `PayloadTooLargeError` when it exceeded the server's limit, else the reset. */
  async #resetOrTooLarge(op: string, e: unknown): Promise<DurableJobsError> {
    try {
      const limit = await packetLimitOf(this.#db, this.#db.pool);
      if ((refusedStatementBytes(e) ?? 0) > limit) return await this.#packetTooLarge(op, e);
    } catch {
      // the limit cannot be read: report the reset as it is
    }
    return translateError(e);
  }

  /** Ends the pool the driver created (a pool passed in is left open). */
  protected override closeResources(): Promise<void> {
    return this.#db.end();
  }

  /**
   * The typed error of a statement the server refused as longer than its `max_allowed_packet`:
   * `PayloadTooLargeError` naming the statement's estimated size and the server's limit (a
   * `StorageError` when the limit cannot be read).
   */
  async #packetTooLarge(op: string, e: unknown): Promise<DurableJobsError> {
    try {
      const limit = await packetLimitOf(this.#db, this.#db.pool);
      const bytes = Math.max(refusedStatementBytes(e) ?? 0, limit + 1); // escaping can grow the text past the estimate
      this.#logger.debug('mysql storage operation refused: statement over max_allowed_packet', { op, bytes, limit });
      return new PayloadTooLargeError(`the ${op} statement (over the server's max_allowed_packet)`, bytes, limit);
    } catch {
      return translateError(e);
    }
  }
}
