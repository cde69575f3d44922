/**
 * Storages that several real processes can open: a SQLite file or a PostgreSQL schema,
 * described by plain environment variables so a child process can open the same one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Storage } from '../../src/storage/storage.js';

/** Environment that names a shared storage. */
export type StorageEnv = Record<string, string>;

/** Default PostgreSQL URL for tests. */
export const PG_URL = process.env['DATABASE_URL'] ?? 'postgres://root@127.0.0.1:5432/test';
/** Default MySQL URL (no database) for tests. */
export const MYSQL_URL = process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/';

/** Opens the storage an env describes. */
export async function openStorage(env: StorageEnv): Promise<Storage> {
  switch (env['SDJ_DIALECT']) {
    case 'sqlite': {
      const { SqliteStorage } = await import('../../src/storage/sqlite/sqlite-storage.js');
      return new SqliteStorage(env['SDJ_SQLITE_PATH']!);
    }
    case 'postgres': {
      const { PostgresStorage } = await import('../../src/storage/postgres/postgres-storage.js');
      return new PostgresStorage(env['SDJ_PG_URL']!, { schema: env['SDJ_PG_SCHEMA']! });
    }
    case 'mysql': {
      const { MysqlStorage } = await import('../../src/storage/mysql/mysql-storage.js');
      return new MysqlStorage(env['SDJ_MYSQL_URL']!);
    }
    default:
      throw new Error(`unknown SDJ_DIALECT ${env['SDJ_DIALECT']}`);
  }
}

/** A fresh shared storage of a dialect: its env, a migrated instance, and cleanup. */
export async function sharedStorage(dialect: string): Promise<{ env: StorageEnv; storage: Storage; cleanup: () => Promise<void> }> {
  const tag = randomBytes(4).toString('hex');
  let env: StorageEnv;
  let drop: () => Promise<void> = async () => {};
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'sdj-proc-'));
    env = { SDJ_DIALECT: 'sqlite', SDJ_SQLITE_PATH: join(dir, 'jobs.db') };
    drop = async () => rmSync(dir, { recursive: true, force: true });
  } else if (dialect === 'postgres') {
    const schema = `sdj_p_${tag}`;
    env = { SDJ_DIALECT: 'postgres', SDJ_PG_URL: PG_URL, SDJ_PG_SCHEMA: schema };
    drop = async () => {
      const pg = (await import('pg')).default;
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    };
  } else if (dialect === 'mysql') {
    const db = `sdj_p_${tag}`;
    const mysql = (await import('mysql2/promise')).default;
    const c = await mysql.createConnection(MYSQL_URL);
    await c.query(`CREATE DATABASE ${db}`);
    await c.end();
    env = { SDJ_DIALECT: 'mysql', SDJ_MYSQL_URL: `${MYSQL_URL.replace(/\/$/, '')}/${db}` };
    drop = async () => {
      const c2 = await mysql.createConnection(MYSQL_URL);
      await c2.query(`DROP DATABASE IF EXISTS ${db}`);
      await c2.end();
    };
  } else throw new Error(`unknown dialect ${dialect}`);
  const storage = await openStorage(env);
  await storage.migrate();
  return {
    env,
    storage,
    cleanup: async () => {
      await storage.close();
      await drop();
    },
  };
}
