/**
 * What every SQLite operation receives ({@link SqliteContext}): the connection's prepared
 * statements, its synchronous `BEGIN IMMEDIATE` transaction runner and the clock. Each SQL text
 * is compiled once per connection and reused (the hot path never re-parses SQL).
 *
 * Not exported from the package entry points. No declaration here carries the JSDoc internal
 * tag: `SqliteStorage` names {@link SqliteContext} as its base class's context type, so it must
 * stay in the published declaration files.
 */
import type { Logger } from '../../types.js';
import { checkCallerDatabase, type SqliteDatabaseLike, type SqliteStatementLike, type SqliteTransactionLike } from './connection.js';

/** Cached statements on one connection: what the SQL-running helpers receive. */
export interface Statements {
  /** The prepared statement for `sql` on this connection. */
  st(sql: string): SqliteStatementLike;
  /** The prepared statement for `sql` in raw mode (rows as arrays in column order). */
  raw(sql: string): SqliteStatementLike;
}

/** A {@link Statements} over one connection, caching by SQL text. */
export class StatementCache implements Statements {
  readonly #db: SqliteDatabaseLike;
  readonly #cache = new Map<string, SqliteStatementLike>();
  readonly #rawCache = new Map<string, SqliteStatementLike>();

  /** @param db the connection statements are prepared on */
  constructor(db: SqliteDatabaseLike) {
    this.#db = db;
  }

  /** The prepared statement for `sql`, compiled on first use. */
  st(sql: string): SqliteStatementLike {
    let stmt = this.#cache.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#cache.set(sql, stmt);
    }
    return stmt;
  }

  /** The prepared statement for `sql` in raw mode, compiled on first use. */
  raw(sql: string): SqliteStatementLike {
    let stmt = this.#rawCache.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql).raw(true);
      this.#rawCache.set(sql, stmt);
    }
    return stmt;
  }

  /** Forgets every statement (after close, or when the schema changed). */
  clear(): void {
    this.#cache.clear();
    this.#rawCache.clear();
  }
}

type Body = () => unknown;

/** Statements and a transaction runner on one connection. */
interface Connection {
  stmts: StatementCache;
  tx: SqliteTransactionLike<[Body], unknown>;
}

/**
 * The SQLite driver's operation context: the storage's connection, its statements, its
 * transaction runner and its clock. Every write runs as one synchronous `BEGIN IMMEDIATE`
 * transaction ({@link SqliteContext.write}); nothing here ever awaits.
 */
export class SqliteContext {
  /** The storage's connection. */
  readonly db: SqliteDatabaseLike;
  /** Receives migration notices. */
  readonly logger: Logger | undefined;
  readonly #own: Connection;
  readonly #clock: () => number;
  /** Statement caches and transaction runners for callers' connections passed as `tx`. */
  readonly #callers = new WeakMap<SqliteDatabaseLike, Connection>();

  /**
   * @param db the storage's connection
   * @param clock the clock (ms) leases and run-at compare against
   * @param logger receives migration notices
   */
  constructor(db: SqliteDatabaseLike, clock: () => number, logger: Logger | undefined) {
    this.db = db;
    this.logger = logger;
    this.#clock = clock;
    this.#own = { stmts: new StatementCache(db), tx: db.transaction((fn: Body) => fn()) };
  }

  /** The clock's reading, in integer ms. */
  now(): number {
    return Math.floor(this.#clock());
  }

  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction; `now` is read once the lock is held. */
  write<T>(fn: (c: Statements, now: number) => T): T {
    return this.#own.tx.immediate(() => fn(this.#own.stmts, this.now())) as T;
  }

  /** Runs a read (single statements, autocommit). */
  read<T>(fn: (c: Statements) => T): T {
    return fn(this.#own.stmts);
  }

  /**
   * Runs `fn` on a caller's connection (`jobInsertMany({ tx })`): in a savepoint when the
   * caller's transaction is open, else in its own `BEGIN IMMEDIATE` transaction.
   * @throws InvalidArgumentError when `tx` is not a `Database` on this storage's file
   */
  writeOn<T>(tx: unknown, fn: (c: Statements, now: number) => T): T {
    const conn = this.#caller(tx);
    return conn.tx.immediate(() => fn(conn.stmts, this.now())) as T;
  }

  /** Forgets the prepared statements (on close). */
  clear(): void {
    this.#own.stmts.clear();
  }

  #caller(tx: unknown): Connection {
    const db = checkCallerDatabase(tx, this.db);
    let conn = this.#callers.get(db);
    if (conn === undefined) {
      conn = { stmts: new StatementCache(db), tx: db.transaction((fn: Body) => fn()) };
      this.#callers.set(db, conn);
    }
    return conn;
  }
}
