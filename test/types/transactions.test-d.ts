/**
 * Type tests of enqueueing inside the caller's own transaction, checked by
 * `tsc --noEmit -p tsconfig.json` (never run): a queue takes its transaction handle type from
 * its storage, so passing another database's handle as `transaction` fails to compile. Every
 * `@ts-expect-error` line must really be an error.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Connection as MysqlConnection, PoolConnection as MysqlPoolConnection } from 'mysql2/promise';
import type { Client as PgClient, PoolClient as PgPoolClient } from 'pg';
import { Queue } from '../../src/queue/queue.js';
import type { MysqlStorage } from '../../src/storage/mysql/mysql-storage.js';
import type { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import type { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import type { Storage } from '../../src/storage/storage.js';

/** The database handles a caller may hold. */
export interface Handles {
  sqlite: BetterSqlite3.Database;
  pgClient: PgClient;
  pgPoolClient: PgPoolClient;
  mysqlConnection: MysqlConnection;
  mysqlPoolConnection: MysqlPoolConnection;
}

export function sqliteQueue(storage: SqliteStorage, h: Handles): void {
  const queue = new Queue(storage);
  const def = queue.register('t', (_args: { n: number }) => 1);

  // The better-sqlite3 Database (inside db.transaction) is accepted everywhere a transaction goes.
  void queue.enqueue('t', { n: 1 }, { transaction: h.sqlite });
  void queue.enqueueBatch([{ type: 't', args: { n: 1 } }], { transaction: h.sqlite });
  void def.enqueue({ n: 1 }, { transaction: h.sqlite, priority: 1 });
  void queue.enqueue('t', { n: 1 }, { priority: 1 });

  // @ts-expect-error a pg client is not a SQLite transaction
  void queue.enqueue('t', { n: 1 }, { transaction: h.pgClient });
  // @ts-expect-error a pg pool client is not a SQLite transaction
  void queue.enqueueBatch([{ type: 't', args: { n: 1 } }], { transaction: h.pgPoolClient });
  // @ts-expect-error a mysql2 connection is not a SQLite transaction
  void def.enqueue({ n: 1 }, { transaction: h.mysqlConnection });
  // @ts-expect-error not a handle at all
  void queue.enqueue('t', { n: 1 }, { transaction: 'BEGIN' });
}

export function postgresQueue(storage: PostgresStorage, h: Handles): void {
  const queue = new Queue(storage);
  const def = queue.register('t', (_args: { n: number }) => 1);

  // A pg client or a client checked out of a pg pool (inside BEGIN) is accepted.
  void queue.enqueue('t', { n: 1 }, { transaction: h.pgClient });
  void queue.enqueue('t', { n: 1 }, { transaction: h.pgPoolClient });
  void queue.enqueueBatch([{ type: 't', args: { n: 1 } }], { transaction: h.pgPoolClient });
  void def.enqueue({ n: 1 }, { transaction: h.pgClient });

  // @ts-expect-error a better-sqlite3 Database is not a PostgreSQL transaction
  void queue.enqueue('t', { n: 1 }, { transaction: h.sqlite });
  // @ts-expect-error a better-sqlite3 Database is not a PostgreSQL transaction
  void def.enqueue({ n: 1 }, { transaction: h.sqlite });
  // @ts-expect-error a mysql2 connection is not a PostgreSQL transaction
  void queue.enqueueBatch([{ type: 't', args: { n: 1 } }], { transaction: h.mysqlPoolConnection });
}

export function mysqlQueue(storage: MysqlStorage, h: Handles): void {
  const queue = new Queue(storage);
  const def = queue.register('t', (_args: { n: number }) => 1);

  // A mysql2 connection (inside beginTransaction) is accepted.
  void queue.enqueue('t', { n: 1 }, { transaction: h.mysqlConnection });
  void queue.enqueueBatch([{ type: 't', args: { n: 1 } }], { transaction: h.mysqlPoolConnection });
  void def.enqueue({ n: 1 }, { transaction: h.mysqlPoolConnection });

  // @ts-expect-error a better-sqlite3 Database is not a MySQL transaction
  void queue.enqueue('t', { n: 1 }, { transaction: h.sqlite });
  // @ts-expect-error a better-sqlite3 Database is not a MySQL transaction
  void def.enqueue({ n: 1 }, { transaction: h.sqlite });
  // (A pg client is not refused at compile time: the MySQL handle type asks only for a
  // `query(options)` method, which a pg client has too.)
}

/** A queue over the storage interface itself (any driver) keeps accepting any handle, as before. */
export function anyStorageQueue(storage: Storage, h: Handles): void {
  const queue = new Queue(storage);
  void queue.enqueue('t', {}, { transaction: h.sqlite });
  void queue.enqueue('t', {}, { transaction: h.pgClient });
  const s: Storage = queue.storage;
  void s;
}
