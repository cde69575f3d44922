/**
 * PostgreSQL: the driver's transactions take their locks in one order (the fan-outs they count
 * on, in id order, before any job row), so the race of reclaims, finishes and cancels of the
 * conformance suite runs without a single deadlock. The driver retries a transaction that
 * PostgreSQL aborted as a deadlock, so the race itself cannot tell; the server's own counter can.
 * The race runs on a database of its own, whose `pg_stat_database.deadlocks` nothing else
 * touches.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { raceReclaimsFinishesCancels } from '../conformance/lock-order.js';
import { PG_URL, pgAdmin } from '../helpers/postgres-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

/** A fresh database on the test server, with a storage maker over it. */
async function makeDatabase(): Promise<{ name: string; open: () => Promise<TestStorage> }> {
  const name = `sdj_lock_${randomBytes(4).toString('hex')}`;
  await pgAdmin(`CREATE DATABASE "${name}"`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  const open = async (): Promise<TestStorage> => {
    const made: PostgresStorage[] = [];
    const make = (): PostgresStorage => {
      const s = new PostgresStorage(url.toString(), { schema: `race_${randomBytes(3).toString('hex')}`, max: 4 });
      made.push(s);
      return s;
    };
    const storage = make();
    await storage.migrate();
    const schema = storage.schema;
    return {
      storage,
      another: async (): Promise<Storage> => {
        const s = new PostgresStorage(url.toString(), { schema, max: 4 });
        made.push(s);
        return s;
      },
      cleanup: async () => {
        for (const s of made.splice(0)) await s.close();
      },
    };
  };
  return { name, open };
}

/** Deadlocks the server detected in a database, once its sessions have ended (their stats flushed). */
async function deadlocksIn(database: string): Promise<number> {
  await waitFor(async () => (await pgAdmin<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1', [database]))[0]?.n === '0', {
    message: `the sessions on ${database} ended`,
  });
  const rows = await pgAdmin<{ deadlocks: string }>('SELECT deadlocks FROM pg_stat_database WHERE datname = $1', [database]);
  return Number(rows[0]?.deadlocks ?? NaN);
}

describe('postgres: lock order', () => {
  let db: Awaited<ReturnType<typeof makeDatabase>>;
  before(async () => {
    db = await makeDatabase();
  });
  after(async () => {
    await pgAdmin(`DROP DATABASE IF EXISTS "${db.name}" WITH (FORCE)`);
  });

  it('reclaims, finishes and cancels racing on several instances never deadlock', async () => {
    for (let round = 0; round < 3; round++) {
      const ts = await db.open();
      try {
        await raceReclaimsFinishesCancels(ts);
      } finally {
        await ts.cleanup();
      }
    }
    assert.equal(await deadlocksIn(db.name), 0, 'deadlocks detected by the server (each one a transaction aborted and retried)');
  });
});
