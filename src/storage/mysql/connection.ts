/**
 * Connections for the MySQL/MariaDB driver: the structural types of the `mysql2/promise`
 * objects it uses, lazy creation of its own pool, and transactions with deadlock retry.
 *
 * Values are bound through mysql2 `?` placeholders (escaped by the client; arrays expand to
 * lists). Every transaction runs at READ COMMITTED: decisions are taken on rows read with
 * locking reads, and READ COMMITTED keeps InnoDB from taking gap locks that make concurrent
 * claimers and inserters deadlock.
 */
import { createRequire } from 'node:module';
import { StorageError } from '../../errors.js';
import { missingDriverPackageMessage } from '../shared/contract-messages.js';
import { type TxRetryOptions, withTxRetry } from '../shared/tx-retry.js';
import { SET_SESSION_READ_COMMITTED, SET_TX_READ_COMMITTED, TX_BEGIN, TX_COMMIT, TX_ROLLBACK } from './queries/admin.js';
import { isRetryableTxError } from './translate-error.js';

/** Per-query options the driver passes to mysql2 (so a user pool's own defaults cannot change the row shapes). */
export interface MysqlQueryOptions {
  sql: string;
  values?: unknown[];
  rowsAsArray?: boolean;
  nestTables?: boolean;
  supportBigNumbers?: boolean;
  bigNumberStrings?: boolean;
  typeCast?: boolean;
}

/** What mysql2 returns for INSERT/UPDATE/DELETE. */
export interface MysqlResultHeader {
  affectedRows: number;
  insertId?: number | string;
}

/** The subset of a `mysql2/promise` connection the driver uses. */
export interface MysqlConnectionLike {
  query(options: MysqlQueryOptions): Promise<[unknown, unknown]>;
}

/** A connection checked out of a pool. */
export interface MysqlPoolConnectionLike extends MysqlConnectionLike {
  release(): void;
  destroy?(): void;
}

/**
 * The subset of a `mysql2/promise` pool the driver uses. A callback-style `mysql2` pool is
 * accepted too (the driver calls its `promise()`).
 */
export interface MysqlPoolLike extends MysqlConnectionLike {
  getConnection(): Promise<MysqlPoolConnectionLike>;
  end(): Promise<void>;
}

/** A callback-style mysql2 pool or connection, which offers a promise wrapper. */
export interface MysqlPromisable<T> {
  promise(): T;
}

/** Anything the driver can run a statement on (its pool or one checked-out connection). */
export type Executor = MysqlConnectionLike;

/** Options of {@link MysqlDb}. */
export interface MysqlDbOptions {
  /** Pool size of a pool the driver creates. @default 10 */
  connectionLimit?: number;
}

/** The shared transaction-retry rule (`shared/tx-retry.ts`) with this dialect's predicate. */
const TX_RETRY: TxRetryOptions = { isRetryable: isRetryableTxError };

/** Unwraps a callback-style mysql2 object into its promise API. @internal */
export function promiseApi<T>(x: T | MysqlPromisable<T>): T {
  const p = (x as { promise?: unknown }).promise;
  return typeof p === 'function' ? (x as MysqlPromisable<T>).promise() : (x as T);
}

/**
 * True for ER_NET_PACKET_TOO_LARGE (1153): the statement was longer than the server's
 * `max_allowed_packet`. The server closes the connection that sent it. @internal
 */
export function isPacketTooLarge(e: unknown): boolean {
  const f = (typeof e === 'object' && e !== null ? e : {}) as { code?: unknown; errno?: unknown };
  return f.errno === 1153 || f.code === 'ER_NET_PACKET_TOO_LARGE';
}

/** True for a connection reset or broken pipe while a statement was sent. @internal */
export function isConnectionReset(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/** True when the connection that raised `e` cannot run another statement (mysql2 marked the error fatal, or an oversize packet). */
function leavesConnectionBroken(e: unknown): boolean {
  return isPacketTooLarge(e) || (typeof e === 'object' && e !== null && (e as { fatal?: unknown }).fatal === true);
}

/** Estimated sizes (bytes) of statements the server refused as too large, by their error. */
const refusedSizes = new WeakMap<object, number>();

/** The estimated size of the statement whose refusal is `e` (see {@link isPacketTooLarge}). @internal */
export function refusedStatementBytes(e: unknown): number | undefined {
  return typeof e === 'object' && e !== null ? refusedSizes.get(e) : undefined;
}

/** About the bytes a bound value adds to the statement text mysql2 builds. */
function valueBytes(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8') + 2;
  if (Buffer.isBuffer(v)) return 2 * v.length + 3;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + valueBytes(x) + 2, 2);
  return 8;
}

/** Runs one statement and returns mysql2's result (rows or a result header). @internal */
export async function run(ex: Executor, sql: string, values: unknown[] = []): Promise<unknown> {
  try {
    const [result] = await ex.query({ sql, values, rowsAsArray: false, nestTables: false, supportBigNumbers: true, bigNumberStrings: false, typeCast: true });
    return result;
  } catch (e) {
    // The server answers an oversize packet with ER_NET_PACKET_TOO_LARGE and closes the
    // connection; under load the client may see the reset first. Either way the statement's
    // size is noted, so the facade can tell an oversize statement from a network failure.
    if ((isPacketTooLarge(e) || isConnectionReset(e)) && typeof e === 'object' && e !== null) {
      refusedSizes.set(e, Buffer.byteLength(sql, 'utf8') + valueBytes(values));
    }
    throw e;
  }
}

/** Runs a SELECT and returns its rows. @internal */
export async function select<R = Record<string, unknown>>(ex: Executor, sql: string, values: unknown[] = []): Promise<R[]> {
  return (await run(ex, sql, values)) as R[];
}

/** Runs a write and returns the affected row count. @internal */
export async function write(ex: Executor, sql: string, values: unknown[] = []): Promise<number> {
  return Number((await run(ex, sql, values) as MysqlResultHeader).affectedRows);
}

/** The driver's database handle: a pool (its own or the user's) plus transactions. */
export class MysqlDb {
  readonly #source: string | MysqlPoolLike;
  readonly #limit: number;
  #pool: MysqlPoolLike | undefined;
  /** True when the driver created the pool (and therefore ends it, and set the session isolation). */
  #owns = false;

  constructor(source: string | MysqlPoolLike | MysqlPromisable<MysqlPoolLike>, options: MysqlDbOptions = {}) {
    this.#source = typeof source === 'string' ? source : promiseApi(source);
    this.#limit = options.connectionLimit ?? 10;
  }

  /** The pool, created on first use when the driver was given a connection string. */
  get pool(): MysqlPoolLike {
    if (this.#pool) return this.#pool;
    if (typeof this.#source !== 'string') return (this.#pool = this.#source);
    this.#pool = createPool(this.#source, this.#limit);
    this.#owns = true;
    return this.#pool;
  }

  /** Ends the pool if the driver created it. */
  async end(): Promise<void> {
    const pool = this.#pool;
    if (pool && this.#owns) {
      this.#pool = undefined;
      await pool.end();
    }
  }

  /** Runs statements without a transaction on one pooled connection, run again on deadlock (shared policy). */
  autocommit<T>(fn: (ex: Executor) => Promise<T>): Promise<T> {
    return withTxRetry(() => this.withConnection(fn), TX_RETRY);
  }

  /**
   * Runs `fn` on one pooled connection (no transaction). A connection left unusable by a
   * failure (an oversize packet, a fatal error) is destroyed, not handed to the next caller.
   */
  async withConnection<T>(fn: (conn: MysqlPoolConnectionLike) => Promise<T>): Promise<T> {
    const conn = await this.pool.getConnection();
    let broken = false;
    try {
      return await fn(conn);
    } catch (e) {
      broken = leavesConnectionBroken(e);
      throw e;
    } finally {
      if (broken && conn.destroy) conn.destroy();
      else conn.release();
    }
  }

  /**
   * Runs `fn` in a READ COMMITTED transaction on one connection; commits when it returns,
   * rolls back when it throws. On deadlock or lock-wait timeout the whole transaction runs
   * again under the shared retry policy (`fn` must have no side effects outside the database).
   */
  tx<T>(fn: (conn: Executor) => Promise<T>): Promise<T> {
    return withTxRetry(() => this.#txOnce(fn), TX_RETRY);
  }

  /** One attempt of {@link tx}. */
  async #txOnce<T>(fn: (conn: Executor) => Promise<T>): Promise<T> {
    const conn = await this.pool.getConnection();
    let broken = false;
    try {
      if (!this.#owns) await run(conn, SET_TX_READ_COMMITTED);
      await run(conn, TX_BEGIN);
      const out = await fn(conn);
      await run(conn, TX_COMMIT);
      return out;
    } catch (e) {
      broken = leavesConnectionBroken(e);
      try {
        if (!broken) await run(conn, TX_ROLLBACK);
      } catch {
        broken = true;
      }
      throw e;
    } finally {
      if (broken && conn.destroy) conn.destroy();
      else conn.release();
    }
  }
}

interface Mysql2Module {
  createPool(config: Record<string, unknown>): MysqlPoolLike & {
    on(event: 'connection', listener: (conn: { query(sql: string, cb: (err: unknown) => void): unknown }) => void): unknown;
  };
}

function createPool(url: string, connectionLimit: number): MysqlPoolLike {
  let mysql: Mysql2Module;
  try {
    mysql = createRequire(import.meta.url)('mysql2/promise') as Mysql2Module;
  } catch (cause) {
    throw new StorageError(missingDriverPackageMessage('MysqlStorage', 'mysql2'), { cause });
  }
  const pool = mysql.createPool({
    uri: url,
    connectionLimit,
    supportBigNumbers: true,
    bigNumberStrings: false,
    charset: 'utf8mb4',
    enableKeepAlive: true,
  });
  // Queued on the new connection before any statement of the caller that asked for it.
  pool.on('connection', (conn) => {
    conn.query(SET_SESSION_READ_COMMITTED, () => {});
  });
  return pool;
}
