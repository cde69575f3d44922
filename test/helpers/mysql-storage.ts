/**
 * Isolated MySQL/MariaDB storages for tests: a fresh database per call
 * (`sdj_t_<hash of label>_<random>`), migrated; `another()` makes another `MysqlStorage` on the
 * same database; `cleanup()` closes every instance and drops the database.
 * The server comes from `MYSQL_URL` (default `mysql://root@127.0.0.1:3306/`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { MysqlStorage, type MysqlStorageOptions } from '../../src/storage/mysql/mysql-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import type { StorageMaker, TestStorage } from './storages.js';

/** The admin connection's subset used here. */
interface AdminConnection {
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
}

/** The server URL of the tests (any database path is replaced). */
export function mysqlServerUrl(): string {
  return process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/';
}

/** The URL of one database on the test server. */
export function mysqlDatabaseUrl(database: string): string {
  const u = new URL(mysqlServerUrl());
  u.pathname = `/${database}`;
  return u.toString();
}

/** Runs statements on a short-lived connection to the test server (no database selected). */
export async function mysqlAdmin(statements: string[]): Promise<void> {
  const mysql = createRequire(import.meta.url)('mysql2/promise') as { createConnection(uri: string): Promise<AdminConnection> };
  const u = new URL(mysqlServerUrl());
  u.pathname = '/';
  const conn = await mysql.createConnection(u.toString());
  try {
    for (const sql of statements) await conn.query(sql);
  } finally {
    await conn.end();
  }
}

/** A fresh database name for `label`: `sdj_t_<hash>_<random>` (safe as an identifier). */
export function freshDatabaseName(label: string): string {
  const hash = createHash('sha1').update(label).digest('hex').slice(0, 12);
  return `sdj_t_${hash}_${randomBytes(4).toString('hex')}`;
}

/** Creates an empty database and returns its name. */
export async function createTestDatabase(label: string): Promise<string> {
  const db = freshDatabaseName(label);
  await mysqlAdmin([`CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`]);
  return db;
}

/** Drops a test database. */
export async function dropTestDatabase(db: string): Promise<void> {
  await mysqlAdmin([`DROP DATABASE IF EXISTS \`${db}\``]);
}

/** A fresh, migrated MySQL storage on its own database. */
export const makeMysqlStorage: StorageMaker = async (label: string): Promise<TestStorage> => {
  return makeMysqlStorageWith(label, {});
};

/** Like {@link makeMysqlStorage}, with driver options for every instance. */
export async function makeMysqlStorageWith(label: string, options: MysqlStorageOptions): Promise<TestStorage> {
  const db = await createTestDatabase(label);
  const url = mysqlDatabaseUrl(db);
  const made: MysqlStorage[] = [];
  const open = (): MysqlStorage => {
    const s = new MysqlStorage(url, { connectionLimit: 5, ...options });
    made.push(s);
    return s;
  };
  const storage = open();
  try {
    await storage.migrate();
  } catch (e) {
    await storage.close();
    await dropTestDatabase(db);
    throw e;
  }
  return {
    storage,
    another: async (): Promise<Storage> => open(),
    cleanup: async () => {
      for (const s of made.splice(0)) await s.close();
      await dropTestDatabase(db);
    },
  };
}
