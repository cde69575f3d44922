/**
 * The PostgreSQL driver (PostgreSQL >= 12). Claims use `FOR UPDATE SKIP LOCKED` in one
 * statement across queues; enqueues and other wake paths `pg_notify` the schema's channel in
 * their transaction, delivered at commit to `listen()` subscribers; time comes from the
 * database clock (`clock_timestamp()`), unless a `clock` is injected for tests.
 *
 * Limits:
 * - Statements run as named prepared statements: behind a transaction-pooling PgBouncer, use a
 *   version that tracks prepared statements (>= 1.21) or a session pool.
 * - `jobInsertMany({ tx })` runs on the caller's client inside their transaction: a unique-key
 *   clash (`DuplicateJobError`) aborts that transaction, as any failed statement does.
 * - Notifications sent while the listener is reconnecting are lost (workers keep polling).
 * - Fleet events: appends notify a channel of their own (`sdjev_<schema>`); a process with an
 *   open `queue.events({ fleet: true })` keeps one more pooled connection checked out to LISTEN.
 * - Each column of a batch travels as one array parameter, so a batch carrying more than 8 M
 *   characters of payload is split into several statements: inserts and outcomes in one
 *   transaction, checkpoints (each independent) one statement per part (see `batch-parts.ts`).
 * @module
 */
import { InvalidArgumentError, type DurableJobsError } from '../../errors.js';
import { silentLogger } from '../../internal/logger.js';
import type { Logger } from '../../types.js';
import { BaseStorage, operationsFrom } from '../shared/base-storage.js';
import type { Unlisten } from '../storage.js';
import { createPool, isPgPoolLike, quoteIdent, type PgPoolLike, type PgQueryableLike } from './connection.js';
import { PgExec } from './executor.js';
import { ClaimConnection, MIN_POOL_FOR_CLAIM_CONNECTION } from './claim-connection.js';
import * as bulk from './bulk-ops.js';
import * as events from './event-ops.js';
import * as flow from './flow-ops.js';
import * as jobs from './job-ops.js';
import * as limits from './limits.js';
import * as counts from './counts.js';
import * as listing from './listing.js';
import * as patches from './patch-ops.js';
import * as retention from './retention.js';
import { PgListener } from './listener.js';
import { migrate } from './migrate.js';
import * as progress from './progress-ops.js';
import * as run from './run-ops.js';
import * as sched from './schedule-ops.js';
import { translateError } from './translate-error.js';
import * as workers from './worker-registry.js';
import * as wf from './workflow-ops.js';

export type { PgPoolClientLike, PgPoolLike, PgQueryableLike } from './connection.js';

/** Options of {@link PostgresStorage}. */
export interface PostgresStorageOptions {
  /** The schema holding the tables (created by `migrate()`). @default 'sdj' */
  schema?: string;
  /** Injected clock (ms) for tests; by default the database clock rules. */
  clock?: () => number;
  /** Where connection trouble is reported. @default silent */
  logger?: Logger;
  /**
   * Pool size when the driver creates the pool from a connection string. Of these, a worker
   * keeps one checked out for LISTEN and, with flow-control limits and `max` of 8 or more, one
   * for the limited claim (its large statements are then prepared on that connection only).
   * @default 10
   */
  max?: number;
}

/** Every `Storage` method: the exported function of the same name in its operations module. */
const OPERATIONS = operationsFrom<PgExec, PgQueryableLike>({
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
  ...wf,
  ...sched,
  ...workers,
  ...flow,
  ...limits,
});

/** The pool a storage runs on, and whether it created (and so ends) it. */
function openPool(urlOrPool: string | PgPoolLike, max: number, logger: Logger): { pool: PgPoolLike; owned: boolean } {
  if (typeof urlOrPool === 'string') {
    return { pool: createPool(urlOrPool, max, (err) => logger.warn('idle PostgreSQL connection failed', { error: err.message })), owned: true };
  }
  if (isPgPoolLike(urlOrPool)) return { pool: urlOrPool, owned: false };
  throw new InvalidArgumentError('PostgresStorage expects a connection string or a pg.Pool');
}

/**
 * Storage on PostgreSQL.
 * @example
 * const storage = new PostgresStorage(process.env.DATABASE_URL!, { schema: 'jobs' });
 * await storage.migrate();
 */
export class PostgresStorage extends BaseStorage<PgExec, PgQueryableLike> {
  /** Always `'postgres'`. */
  readonly dialect = 'postgres' as const;
  /** The schema this storage uses. */
  readonly schema: string;

  readonly #x: PgExec;
  readonly #ownsPool: boolean;
  readonly #listener: PgListener;
  /** Fleet-event appends (`eventListen`): a LISTEN connection of its own, opened only while a fleet subscriber listens. */
  readonly #eventListener: PgListener;

  /**
   * @param urlOrPool a connection string (the driver creates and owns a `pg.Pool`) or your own
   *   `pg.Pool` (never ended by `close()`)
   * @throws InvalidArgumentError on an invalid schema name, pool size, clock or connection argument
   */
  constructor(urlOrPool: string | PgPoolLike, options: PostgresStorageOptions = {}) {
    const schema = options.schema ?? 'sdj';
    quoteIdent(schema);
    const max = options.max ?? 10;
    if (!Number.isInteger(max) || max < 1) throw new InvalidArgumentError(`max must be an integer >= 1, got ${String(max)}`);
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new InvalidArgumentError('clock must be a function');
    const logger = options.logger ?? silentLogger;
    const { pool, owned } = openPool(urlOrPool, max, logger);
    const x = new PgExec(pool, schema, options.clock, logger);
    super(OPERATIONS, x, logger);
    this.schema = schema;
    this.#x = x;
    this.#ownsPool = owned;
    this.#listener = new PgListener(pool, x.channel, logger);
    this.#eventListener = new PgListener(pool, events.eventChannelFor(schema), logger);
    if (owned && max >= MIN_POOL_FOR_CLAIM_CONNECTION) x.claimConnection = new ClaimConnection(pool);
  }

  /** Subscribes to this schema's LISTEN/NOTIFY wake-ups (one shared connection; reconnects by itself). */
  listen(onWake: (queue: string) => void): Promise<Unlisten> {
    return this.call('listen', () => this.#listener.subscribe(onWake));
  }

  /**
   * Subscribes to fleet-event appends of this schema (LISTEN/NOTIFY on a channel of their own,
   * one shared connection while anyone listens; reconnects by itself).
   */
  eventListen(onAppend: () => void): Promise<Unlisten> {
    return this.call('eventListen', () => this.#eventListener.subscribe(() => onAppend()));
  }

  /** Driver errors become typed errors (a unique-key clash a `DuplicateJobError`, the rest `StorageError`). */
  protected override translateError(e: unknown): DurableJobsError {
    return translateError(e);
  }

  /** Stops the listener and ends the pool if the driver created it. */
  protected override async closeResources(): Promise<void> {
    await this.#listener.close();
    await this.#eventListener.close();
    this.#x.claimConnection?.close();
    if (this.#ownsPool) await this.#x.pool.end();
  }
}
