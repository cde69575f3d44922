/**
 * Prepared-statement cache: each SQL text is compiled once per connection and reused (the hot
 * path never re-parses SQL).
 * @internal
 */
import type { SqliteDatabaseLike, SqliteStatementLike } from './connection.js';

/** What every SQLite operation module receives: cached statements on one connection. */
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
