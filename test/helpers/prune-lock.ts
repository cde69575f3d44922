/**
 * A fresh database of one dialect on which a test can hold "the prune lock" from another
 * connection, as another process's prune would, to see `jobPrune` answer `busy`.
 *
 * - SQLite has no lock of its own for pruning: a prune is one `BEGIN IMMEDIATE` transaction, and
 *   what it waits for is the file's write lock. The holder is a second connection inside
 *   `BEGIN IMMEDIATE`; the storage is opened with a short busy timeout, after which its prune
 *   reports `busy`.
 * - PostgreSQL and MySQL take a fleet-wide lock of the driver's own before pruning; the holder
 *   takes the same lock on a connection of its own.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { Storage } from '../../src/storage/storage.js';

/** A database to prune on, and a way to hold its prune lock from elsewhere. */
export interface PruneLockFixture {
  /** A migrated storage on a fresh database. */
  readonly storage: Storage;
  /** Takes the prune lock on another connection; resolves with its release. */
  hold(): Promise<() => Promise<void>>;
  /** Closes everything and drops the database. */
  cleanup(): Promise<void>;
}

/** Busy timeout of the SQLite fixture's storage: how long its prune waits for the write lock. */
export const SQLITE_FIXTURE_BUSY_MS = 50;

/** A {@link PruneLockFixture} for `dialect`. */
export async function pruneLockFixture(dialect: string, label: string): Promise<PruneLockFixture> {
  switch (dialect) {
    case 'sqlite': {
      const { SqliteStorage } = await import('../../src/storage/sqlite/sqlite-storage.js');
      const { removeSqliteFiles, tempSqlitePath } = await import('./sqlite-storage.js');
      const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
      const path = tempSqlitePath(label);
      const storage = new SqliteStorage(path, { busyTimeoutMs: SQLITE_FIXTURE_BUSY_MS });
      await storage.migrate();
      const holders: BetterSqlite3.Database[] = [];
      return {
        storage,
        hold: async () => {
          const db = new Database(path);
          holders.push(db);
          db.exec('BEGIN IMMEDIATE');
          return async () => {
            if (db.inTransaction) db.exec('ROLLBACK');
            db.close();
          };
        },
        cleanup: async () => {
          for (const db of holders) if (db.open) db.close();
          await storage.close();
          removeSqliteFiles(path);
        },
      };
    }
    case 'mysql': {
      // The driver's prune lock is the named lock `sdj_prune_<database>` (src/storage/mysql/queries/admin.ts).
      const { MysqlStorage } = await import('../../src/storage/mysql/mysql-storage.js');
      const { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } = await import('./mysql-storage.js');
      const mysql = createRequire(import.meta.url)('mysql2/promise') as {
        createConnection(uri: string): Promise<{ query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>; end(): Promise<void> }>;
      };
      const db = await createTestDatabase(label);
      const storage = new MysqlStorage(mysqlDatabaseUrl(db), { connectionLimit: 3 });
      await storage.migrate();
      const holders: { end(): Promise<void> }[] = [];
      return {
        storage,
        hold: async () => {
          const conn = await mysql.createConnection(mysqlDatabaseUrl(db));
          holders.push(conn);
          const [rows] = (await conn.query('SELECT GET_LOCK(?, 5) AS got', [`sdj_prune_${db}`])) as [{ got: number }[], unknown];
          if (Number(rows[0]?.got) !== 1) throw new Error(`could not take sdj_prune_${db}`);
          return async () => {
            await conn.query('SELECT RELEASE_LOCK(?)', [`sdj_prune_${db}`]);
          };
        },
        cleanup: async () => {
          for (const conn of holders.splice(0)) await conn.end();
          await storage.close();
          await dropTestDatabase(db);
        },
      };
    }
    case 'postgres': {
      const pg = (await import('pg')).default;
      const { pruneLockKey } = await import('../../src/storage/postgres/retention.js');
      const { PostgresStorage } = await import('../../src/storage/postgres/postgres-storage.js');
      const { PG_URL, pgAdmin, testSchemaName } = await import('./postgres-storage.js');
      const schema = testSchemaName(label);
      const storage = new PostgresStorage(PG_URL, { schema, max: 4 });
      await storage.migrate();
      const holders: InstanceType<typeof pg.Client>[] = [];
      return {
        storage,
        hold: async () => {
          const c = new pg.Client({ connectionString: PG_URL });
          holders.push(c);
          await c.connect();
          await c.query('BEGIN');
          await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [pruneLockKey(schema)]);
          return async () => {
            await c.query('ROLLBACK');
            await c.end();
            holders.splice(holders.indexOf(c), 1);
          };
        },
        cleanup: async () => {
          for (const c of holders.splice(0)) await c.end().catch(() => {});
          await storage.close();
          await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        },
      };
    }
    default:
      throw new Error(`pruneLockFixture: unknown dialect ${dialect}`);
  }
}
