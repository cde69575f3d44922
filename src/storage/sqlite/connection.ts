/**
 * Opening the SQLite database: a path (the driver opens and owns the connection), `':memory:'`,
 * or a `better-sqlite3` `Database` the user passes in (left as configured, never closed by us).
 * `better-sqlite3` is an optional peer dependency, loaded lazily only when given a path.
 * @internal
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { InvalidArgumentError, StorageError } from '../../errors.js';
import { missingDriverPackageMessage } from '../shared/contract-messages.js';

/** The parameters of a function (spelled like `@types/better-sqlite3` so its `Database` fits). */
type ArgumentTypes<F> = F extends (...args: infer A) => unknown ? A : never;

/** The subset of a `better-sqlite3` `Statement` the driver uses. */
export interface SqliteStatementLike {
  /** Executes; returns the number of rows changed. */
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  /** The first row, or undefined. */
  get(...params: unknown[]): unknown;
  /** Every row. */
  all(...params: unknown[]): unknown[];
  /** Switches raw mode (rows as arrays in column order); returns the statement. */
  raw(toggle?: boolean): SqliteStatementLike;
}

/** A `better-sqlite3` transaction function (`db.transaction(fn)`). */
export interface SqliteTransactionLike<A extends unknown[], R> {
  /** Runs in `BEGIN` (deferred) or a savepoint when already inside a transaction. */
  (...args: A): R;
  /** Runs in `BEGIN IMMEDIATE` (or a savepoint when already inside a transaction). */
  immediate(...args: A): R;
}

/**
 * The subset of a `better-sqlite3` `Database` the driver uses; pass your own instance to
 * share a connection (the driver then never closes it).
 */
export interface SqliteDatabaseLike {
  /** Compiles a statement. */
  prepare(source: string): SqliteStatementLike;
  /** Wraps `fn` in a transaction function. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  transaction<F extends (...args: any[]) => unknown>(fn: F): SqliteTransactionLike<ArgumentTypes<F>, ReturnType<F>>;
  /** Runs one or more statements without results. */
  exec(source: string): unknown;
  /** Runs a PRAGMA. */
  pragma(source: string, options?: { simple?: boolean }): unknown;
  /** Closes the connection. */
  close(): unknown;
  /** True while a transaction is open on this connection. */
  readonly inTransaction: boolean;
  /** True until closed. */
  readonly open: boolean;
  /** True for an in-memory database. */
  readonly memory: boolean;
  /** The file name the database was opened with. */
  readonly name: string;
}

/** Connection options of {@link openDatabase}. */
export interface OpenOptions {
  /** How long a writer waits for the file lock before failing with SQLITE_BUSY (ms). */
  busyTimeoutMs?: number;
}

/** An open database and whether the driver owns it. */
export interface OpenedDatabase {
  db: SqliteDatabaseLike;
  /** True when the driver opened the connection (and so closes it). */
  owned: boolean;
}

/** Default busy timeout: how long a write waits for another connection's write lock. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

type DatabaseConstructor = new (filename: string, options?: { timeout?: number }) => SqliteDatabaseLike;

/** True when `v` looks like a `better-sqlite3` `Database`. */
export function isSqliteDatabaseLike(v: unknown): v is SqliteDatabaseLike {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o['prepare'] === 'function' && typeof o['transaction'] === 'function' && typeof o['exec'] === 'function';
}

/**
 * The caller's connection passed as `jobInsertMany({ tx })`, checked: a `better-sqlite3`
 * `Database` open on the same file as the storage's own connection `own`.
 * @throws InvalidArgumentError
 */
export function checkCallerDatabase(tx: unknown, own: SqliteDatabaseLike): SqliteDatabaseLike {
  if (!isSqliteDatabaseLike(tx)) {
    throw new InvalidArgumentError('SqliteStorage: transaction must be the better-sqlite3 Database your transaction runs on');
  }
  if (!tx.memory && !own.memory && resolve(tx.name) !== resolve(own.name)) {
    throw new InvalidArgumentError(`SqliteStorage: the transaction's database (${tx.name}) is not this storage's file (${own.name})`);
  }
  return tx;
}

/**
 * Opens (or adopts) the database. For a path: loads `better-sqlite3`, sets `journal_mode=WAL`
 * (files only), `busy_timeout`, `synchronous=NORMAL` and `temp_store=MEMORY`. A user `Database` is left as
 * configured, except `busy_timeout` when `busyTimeoutMs` is given explicitly.
 * @throws InvalidArgumentError, StorageError
 */
export function openDatabase(pathOrDb: string | SqliteDatabaseLike, options: OpenOptions): OpenedDatabase {
  const busy = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isInteger(busy) || busy < 0) {
    throw new InvalidArgumentError(`SqliteStorage: busyTimeoutMs must be an integer >= 0, got ${String(busy)}`);
  }
  if (typeof pathOrDb !== 'string') {
    if (!isSqliteDatabaseLike(pathOrDb)) {
      throw new InvalidArgumentError('SqliteStorage: expected a file path, ":memory:" or a better-sqlite3 Database');
    }
    if (options.busyTimeoutMs !== undefined) pathOrDb.pragma(`busy_timeout = ${busy}`);
    return { db: pathOrDb, owned: false };
  }
  if (pathOrDb === '') throw new InvalidArgumentError('SqliteStorage: the database path is empty');
  const Database = loadBetterSqlite3();
  let db: SqliteDatabaseLike;
  try {
    db = new Database(pathOrDb, { timeout: busy });
  } catch (cause) {
    throw new StorageError(`SqliteStorage: cannot open ${pathOrDb}`, { cause });
  }
  try {
    db.pragma(`busy_timeout = ${busy}`);
    if (!db.memory) db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('temp_store = MEMORY');
  } catch (cause) {
    db.close();
    throw new StorageError(`SqliteStorage: cannot configure ${pathOrDb}`, { cause });
  }
  return { db, owned: true };
}

function loadBetterSqlite3(): DatabaseConstructor {
  try {
    const mod = createRequire(import.meta.url)('better-sqlite3') as DatabaseConstructor | { default: DatabaseConstructor };
    return typeof mod === 'function' ? mod : mod.default;
  } catch (cause) {
    throw new StorageError(missingDriverPackageMessage('SqliteStorage', 'better-sqlite3'), { cause });
  }
}
