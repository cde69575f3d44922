/**
 * The database a chaos run uses: a fresh PostgreSQL schema, MySQL database or SQLite file,
 * described by plain environment variables so worker processes open the same one; the
 * library's storage on it; and a tiny SQL client (`ChaosDb`) for the run's own tables
 * (`chaos_effects`) and for the audit's reads of the library's tables.
 * Everything runs on 127.0.0.1 (`DATABASE_URL`, `MYSQL_URL` override the servers).
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Storage } from '../../src/storage/storage.js';
import type { Backend } from './options.js';
import { pruneMark } from './prune-archive.js';

const require = createRequire(import.meta.url);

/** Environment naming the run's database; passed to every worker process. */
export type BackendEnv = Record<string, string>;

/** A minimal SQL client: `?` placeholders in every dialect, rows as plain objects. */
export interface ChaosDb {
  readonly backend: Backend;
  /** Runs a statement. */
  run(sql: string, params?: unknown[]): Promise<void>;
  /** Runs a query and returns its rows. */
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Closes the connections. */
  close(): Promise<void>;
}

const PG_URL = process.env['DATABASE_URL'] ?? 'postgres://root@127.0.0.1:5432/test';
const MYSQL_URL = process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/';

/** Creates a fresh, empty database for a run; returns its env and how to drop it. */
export async function createBackend(backend: Backend, seed: number): Promise<{ env: BackendEnv; drop: () => Promise<void>; where: string }> {
  const tag = `chaos_${seed}_${randomBytes(3).toString('hex')}`;
  switch (backend) {
    case 'postgres': {
      await pgAdmin(`CREATE SCHEMA "${tag}"`);
      return {
        env: { CHAOS_BACKEND: backend, CHAOS_PG_URL: PG_URL, CHAOS_PG_SCHEMA: tag },
        drop: () => pgAdmin(`DROP SCHEMA IF EXISTS "${tag}" CASCADE`),
        where: `PostgreSQL schema ${tag}`,
      };
    }
    case 'mysql': {
      await mysqlAdmin(`CREATE DATABASE \`${tag}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
      const u = new URL(MYSQL_URL);
      u.pathname = `/${tag}`;
      return {
        env: { CHAOS_BACKEND: backend, CHAOS_MYSQL_URL: u.toString() },
        drop: () => mysqlAdmin(`DROP DATABASE IF EXISTS \`${tag}\``),
        where: `MySQL database ${tag}`,
      };
    }
    case 'sqlite': {
      const dir = mkdtempSync(join(tmpdir(), `sdj-${tag}-`));
      const path = join(dir, 'chaos.db');
      return {
        env: { CHAOS_BACKEND: backend, CHAOS_SQLITE_PATH: path },
        drop: async () => rmSync(dir, { recursive: true, force: true }),
        where: `SQLite file ${path}`,
      };
    }
  }
}

/** Opens the library's storage on the run's database. */
export async function openStorage(env: BackendEnv, poolSize = 6): Promise<Storage> {
  switch (env['CHAOS_BACKEND']) {
    case 'postgres': {
      const { PostgresStorage } = await import('../../src/storage/postgres/postgres-storage.js');
      return new PostgresStorage(env['CHAOS_PG_URL']!, { schema: env['CHAOS_PG_SCHEMA']!, max: poolSize });
    }
    case 'mysql': {
      const { MysqlStorage } = await import('../../src/storage/mysql/mysql-storage.js');
      return new MysqlStorage(env['CHAOS_MYSQL_URL']!, { connectionLimit: poolSize });
    }
    case 'sqlite':
      return openSqliteStorage(env['CHAOS_SQLITE_PATH']!);
    default:
      throw new Error(`unknown CHAOS_BACKEND ${String(env['CHAOS_BACKEND'])}`);
  }
}

/** The settings the SQLite driver gives a connection it opens itself (connection.ts). */
const SQLITE_BUSY_MS = 5000;

type SqliteDb = {
  pragma(s: string): unknown;
  function(name: string, options: { deterministic: boolean }, fn: () => unknown): unknown;
  prepare(s: string): { run(...p: unknown[]): unknown; all(...p: unknown[]): unknown[] };
  close(): void;
};

/** A better-sqlite3 connection configured as the driver configures its own, with `chaos_prune_tx()`. */
function openSqlite(path: string): SqliteDb {
  const Database = require('better-sqlite3') as new (p: string, o: { timeout: number }) => SqliteDb;
  const db = new Database(path, { timeout: SQLITE_BUSY_MS });
  db.pragma(`busy_timeout = ${SQLITE_BUSY_MS}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.function('chaos_prune_tx', { deterministic: false }, () => pruneMark.token);
  return db;
}

/**
 * The SQLite storage on a connection of the run's (see prune-archive.ts): each `jobPrune` call
 * runs under a token of its own, which the archive trigger reads. The driver runs the whole call
 * synchronously inside `jobPrune()`, so no other storage call of the process shares the token.
 */
async function openSqliteStorage(path: string): Promise<Storage> {
  const { SqliteStorage } = await import('../../src/storage/sqlite/sqlite-storage.js');
  const db = openSqlite(path);
  const storage = new SqliteStorage(db as never, { busyTimeoutMs: SQLITE_BUSY_MS });
  return new Proxy(storage, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      const fn = v as (...a: unknown[]) => unknown;
      if (prop === 'jobPrune') {
        return (...args: unknown[]) => {
          pruneMark.token = `${process.pid}:${++pruneMark.seq}`;
          try {
            return fn.apply(target, args);
          } finally {
            pruneMark.token = null;
          }
        };
      }
      if (prop === 'close') return async () => (fn.apply(target, []) as Promise<void>).finally(() => db.close());
      return fn.bind(target);
    },
  });
}

/** Opens a `ChaosDb` on the run's database. */
export function openChaosDb(env: BackendEnv, poolSize = 3): ChaosDb {
  switch (env['CHAOS_BACKEND']) {
    case 'postgres':
      return pgDb(env['CHAOS_PG_URL']!, env['CHAOS_PG_SCHEMA']!, poolSize);
    case 'mysql':
      return mysqlDb(env['CHAOS_MYSQL_URL']!, poolSize);
    case 'sqlite':
      return sqliteDb(env['CHAOS_SQLITE_PATH']!);
    default:
      throw new Error(`unknown CHAOS_BACKEND ${String(env['CHAOS_BACKEND'])}`);
  }
}

/** The run's own table: one row per side effect a handler performed. */
export async function createEffectsTable(db: ChaosDb): Promise<void> {
  await db.run(`CREATE TABLE chaos_effects (
    id VARCHAR(32) NOT NULL PRIMARY KEY,
    kind VARCHAR(16) NOT NULL,
    job_id VARCHAR(40) NOT NULL,
    step INTEGER NULL,
    worker VARCHAR(32) NOT NULL,
    pid INTEGER NOT NULL,
    run_count INTEGER NOT NULL,
    state VARCHAR(12) NULL,
    info TEXT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT NULL,
    owner VARCHAR(64) NULL,
    claimed_at BIGINT NULL)`);
  await db.run('CREATE INDEX chaos_effects_job ON chaos_effects (job_id)');
}

interface PgPool {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  end(): Promise<void>;
  on(event: 'error', fn: (err: Error) => void): unknown;
}

async function pgAdmin(sql: string): Promise<void> {
  const { Client } = require('pg') as { Client: new (c: { connectionString: string }) => { connect(): Promise<void>; query(s: string): Promise<unknown>; end(): Promise<void> } };
  const c = new Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function pgDb(url: string, schema: string, max: number): ChaosDb {
  const { Pool } = require('pg') as { Pool: new (c: object) => PgPool };
  const pool = new Pool({ connectionString: url, max, options: `-c search_path=${schema}` });
  // An idle client dropped by the server (kill, restart) must not crash the process.
  pool.on('error', () => {});
  const numbered = (sql: string): string => {
    let n = 0;
    return sql.replace(/\?/g, () => `$${++n}`);
  };
  return {
    backend: 'postgres',
    run: async (sql, params = []) => {
      await pool.query(numbered(sql), params);
    },
    all: async <T>(sql: string, params: unknown[] = []) => (await pool.query(numbered(sql), params)).rows as T[],
    close: () => pool.end(),
  };
}

interface MysqlPool {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  end(): Promise<void>;
}

async function mysqlAdmin(sql: string): Promise<void> {
  const mysql = require('mysql2/promise') as { createConnection(uri: string): Promise<{ query(s: string): Promise<unknown>; end(): Promise<void> }> };
  const u = new URL(MYSQL_URL);
  u.pathname = '/';
  const c = await mysql.createConnection(u.toString());
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function mysqlDb(url: string, connectionLimit: number): ChaosDb {
  const mysql = require('mysql2/promise') as { createPool(c: object): MysqlPool };
  const pool = mysql.createPool({ uri: url, connectionLimit, supportBigNumbers: true, bigNumberStrings: false });
  return {
    backend: 'mysql',
    run: async (sql, params = []) => {
      await pool.query(sql, params);
    },
    all: async <T>(sql: string, params: unknown[] = []) => (await pool.query(sql, params))[0] as T[],
    close: () => pool.end(),
  };
}

function sqliteDb(path: string): ChaosDb {
  const db = openSqlite(path);
  db.pragma('busy_timeout = 10000');
  return {
    backend: 'sqlite',
    run: async (sql, params = []) => {
      db.prepare(sql).run(...params);
    },
    all: async <T>(sql: string, params: unknown[] = []) => db.prepare(sql).all(...params) as T[],
    close: async () => db.close(),
  };
}
