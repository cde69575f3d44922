/**
 * Isolated PostgreSQL storages for tests: a fresh schema per call, named from a hash of the
 * label plus randomness (`sdj_t_<hash>`), migrated; `another()` makes another
 * `PostgresStorage` on the same schema (another "process"); `cleanup()` closes every instance
 * and drops the schema. The server comes from DATABASE_URL (default: local trust auth as root).
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStorage, type PostgresStorageOptions } from '../../src/storage/postgres/postgres-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import type { StorageMaker, TestStorage } from './storages.js';

/** The test server's connection string. */
export const PG_URL = process.env['DATABASE_URL'] ?? 'postgres://root@127.0.0.1:5432/test';

/** A fresh schema name for `label`: `sdj_t_<8 hex of the label>_<8 random hex>`. */
export function testSchemaName(label: string): string {
  const h = createHash('sha1').update(label).digest('hex').slice(0, 8);
  return `sdj_t_${h}_${randomBytes(4).toString('hex')}`;
}

/** Runs one statement on a short-lived connection (admin work: drop schema, terminate backends). */
export async function pgAdmin<R = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return (await c.query(text, values)).rows as R[];
  } finally {
    await c.end();
  }
}

/** A fresh, migrated PostgreSQL storage on its own schema. */
export function makePostgresStorageWith(options: Omit<PostgresStorageOptions, 'schema'> = {}): StorageMaker {
  return async (label: string): Promise<TestStorage> => {
    const schema = testSchemaName(label);
    const made: PostgresStorage[] = [];
    const open = (): PostgresStorage => {
      const s = new PostgresStorage(PG_URL, { ...options, schema, max: options.max ?? 4 });
      made.push(s);
      return s;
    };
    const storage = open();
    await storage.migrate();
    return {
      storage,
      another: async (): Promise<Storage> => open(),
      cleanup: async () => {
        for (const s of made.splice(0)) await s.close();
        await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      },
    };
  };
}

/** A fresh, migrated PostgreSQL storage on its own schema, database clock. */
export const makePostgresStorage: StorageMaker = makePostgresStorageWith();
