/**
 * PostgreSQL tests that need a schema of their own for one test, and a connection beside the
 * storage (to hold row locks, or to act as a user's transaction).
 */
import pg from 'pg';
import type { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { makePostgresStorage, PG_URL } from './postgres-storage.js';
import type { TestStorage } from './storages.js';

/** Runs `fn` on a fresh migrated schema (the storage and the schema's name), cleaned up afterwards. */
export async function withSchema(label: string, fn: (ts: TestStorage, schema: string) => Promise<void>): Promise<void> {
  const ts = await makePostgresStorage(label);
  try {
    await fn(ts, (ts.storage as PostgresStorage).schema);
  } finally {
    await ts.cleanup();
  }
}

/** A connection outside every storage; the caller ends it. */
export async function openClient(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  return c;
}
