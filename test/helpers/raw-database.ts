/**
 * A migrated, isolated storage of one driver together with raw access to its database, for tests
 * that read every table directly: PostgreSQL and MySQL through a pool the test owns (the storage
 * is given the same pool), SQLite through its file. `textCells()` returns every text value of
 * every base table of the schema, whatever its column.
 */
import { createRequire } from 'node:module';
import pg from 'pg';
import { MysqlStorage } from '../../src/storage/mysql/mysql-storage.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } from './mysql-storage.js';
import { mysql } from './mysql-client.js';
import { PG_URL, testSchemaName } from './postgres-storage.js';
import { removeSqliteFiles, tempSqlitePath } from './sqlite-storage.js';

/** One text value stored in a table. */
export interface TextCell {
  table: string;
  column: string;
  value: string;
}

/** A storage with raw access to its tables. */
export interface RawDatabase {
  storage: Storage;
  /** Every text value of every table of the storage's schema (binary values read as UTF-8). */
  textCells(): Promise<TextCell[]>;
  /** The names of the schema's tables. */
  tables(): Promise<string[]>;
  cleanup(): Promise<void>;
}

function cellsOf(table: string, rows: Record<string, unknown>[]): TextCell[] {
  const out: TextCell[] = [];
  for (const row of rows) {
    for (const [column, v] of Object.entries(row)) {
      if (typeof v === 'string') out.push({ table, column, value: v });
      else if (Buffer.isBuffer(v)) out.push({ table, column, value: v.toString('utf8') });
    }
  }
  return out;
}

interface SqliteFile {
  prepare(sql: string): { all(): Record<string, unknown>[] };
  close(): void;
}

async function sqlite(label: string): Promise<RawDatabase> {
  const path = tempSqlitePath(label);
  const storage = new SqliteStorage(path);
  await storage.migrate();
  const Database = createRequire(import.meta.url)('better-sqlite3') as new (p: string, o: { readonly: boolean }) => SqliteFile;
  const read = <T>(f: (db: SqliteFile) => T): T => {
    const db = new Database(path, { readonly: true });
    try {
      return f(db);
    } finally {
      db.close();
    }
  };
  const tables = (): string[] => read((db) => db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => String(r['name'])));
  return {
    storage,
    tables: async () => tables(),
    textCells: async () => read((db) => tables().flatMap((t) => cellsOf(t, db.prepare(`SELECT * FROM "${t}"`).all()))),
    cleanup: async () => {
      await storage.close();
      removeSqliteFiles(path);
    },
  };
}

async function postgres(label: string): Promise<RawDatabase> {
  const schema = testSchemaName(label);
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
  const storage = new PostgresStorage(pool, { schema });
  await storage.migrate();
  const tables = async (): Promise<string[]> =>
    (await pool.query<{ t: string }>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1", [schema])).rows.map((r) => r.t);
  return {
    storage,
    tables,
    textCells: async () => {
      const out: TextCell[] = [];
      for (const t of await tables()) out.push(...cellsOf(t, (await pool.query(`SELECT * FROM "${schema}"."${t}"`)).rows as Record<string, unknown>[]));
      return out;
    },
    cleanup: async () => {
      await storage.close();
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    },
  };
}

async function mysqlDb(label: string): Promise<RawDatabase> {
  const db = await createTestDatabase(label);
  const pool = mysql.createPool({ uri: mysqlDatabaseUrl(db), connectionLimit: 5 });
  const storage = new MysqlStorage(pool);
  await storage.migrate();
  const tables = async (): Promise<string[]> => {
    const [rows] = await pool.query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1");
    return (rows as { t: string }[]).map((r) => r.t);
  };
  return {
    storage,
    tables,
    textCells: async () => {
      const out: TextCell[] = [];
      for (const t of await tables()) {
        const [rows] = await pool.query(`SELECT * FROM \`${t}\``);
        out.push(...cellsOf(t, rows as Record<string, unknown>[]));
      }
      return out;
    },
    cleanup: async () => {
      await storage.close();
      await pool.end();
      await dropTestDatabase(db);
    },
  };
}

/** A fresh storage of `driver` (`sqlite`, `postgres` or `mysql`) with raw access to its tables. */
export function openRawDatabase(driver: string, label: string): Promise<RawDatabase> {
  switch (driver) {
    case 'sqlite':
      return sqlite(label);
    case 'postgres':
      return postgres(label);
    case 'mysql':
      return mysqlDb(label);
    default:
      throw new Error(`unknown driver ${driver}`);
  }
}
