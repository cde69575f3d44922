/**
 * MySQL/MariaDB: the driver's transactions take their locks in one order (the fan-outs they
 * count on, in id order, before any job row), so the race of reclaims, finishes and cancels of
 * the conformance suite runs without a single deadlock. The driver retries a transaction that
 * InnoDB aborted as a deadlock, so the race itself cannot tell; what the server answered can.
 * Every instance of the race runs on a pool of its own wrapped to record each statement the
 * server refused as a deadlock (1213) or a lock-wait timeout (1205). The race runs on a database
 * of its own, and InnoDB only ever aborts a transaction of a deadlock it is part of, so tests
 * writing to other databases of the same server cannot add to (or hide from) the record — unlike
 * the server-wide `Innodb_deadlocks` counter. The same recording checks that the order costs a
 * finish of plain jobs nothing: still one locking read and one update.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { MysqlStorage, type MysqlPoolConnectionLike, type MysqlPoolLike, type MysqlQueryOptions } from '../../src/storage/mysql/mysql-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { raceReclaimsFinishesCancels } from '../conformance/lock-order.js';
import { applied, claim, fenceOf, jobInsert, uniqueName } from '../helpers/factories.js';
import { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';
import type { TestStorage } from '../helpers/storages.js';

/** Server errors that mean a lock conflict the driver would retry. */
const LOCK_ERRNOS = new Map([
  [1213, 'deadlock'],
  [1205, 'lock wait timeout'],
]);

/** A mysql2/promise pool, as created here. */
interface Mysql2Pool extends MysqlPoolLike {
  on(event: 'connection', listener: (conn: { query(sql: string, cb: (err: unknown) => void): unknown }) => void): unknown;
}

const mysql = createRequire(import.meta.url)('mysql2/promise') as { createPool(config: Record<string, unknown>): Mysql2Pool };

/** One lock conflict the server reported: its kind and the statement it aborted. */
interface Conflict {
  kind: string;
  sql: string;
}

/** What the instances of one storage record. */
interface Recorder {
  /** Every lock conflict the server reported. */
  conflicts: Conflict[];
  /** The text of every statement sent, in order. */
  statements: string[];
}

/** Runs a statement, recording it and the lock conflict it ends with, if any. */
async function recorded(rec: Recorder, run: () => Promise<[unknown, unknown]>, options: MysqlQueryOptions): Promise<[unknown, unknown]> {
  rec.statements.push(options.sql);
  try {
    return await run();
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno;
    const kind = typeof errno === 'number' ? LOCK_ERRNOS.get(errno) : undefined;
    if (kind !== undefined) rec.conflicts.push({ kind, sql: options.sql.slice(0, 120) });
    throw e;
  }
}

/**
 * A pool on `url` set up as the driver sets up its own (READ COMMITTED sessions), whose
 * statements and lock conflicts go to `rec`.
 */
function recordingPool(url: string, rec: Recorder): MysqlPoolLike {
  const pool = mysql.createPool({ uri: url, connectionLimit: 4, charset: 'utf8mb4', supportBigNumbers: true, bigNumberStrings: false });
  pool.on('connection', (conn) => {
    conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', () => {});
  });
  return {
    query: (options) => recorded(rec, () => pool.query(options), options),
    getConnection: async (): Promise<MysqlPoolConnectionLike> => {
      const conn = await pool.getConnection();
      return {
        query: (options) => recorded(rec, () => conn.query(options), options),
        release: () => conn.release(),
        destroy: () => conn.destroy?.(),
      };
    },
    end: () => pool.end(),
  };
}

/** A migrated storage on `database` whose instances all record into `rec`. */
async function openRecording(database: string, rec: Recorder): Promise<TestStorage> {
  const url = mysqlDatabaseUrl(database);
  const pools: MysqlPoolLike[] = [];
  const made: MysqlStorage[] = [];
  const open = (): MysqlStorage => {
    const pool = recordingPool(url, rec);
    pools.push(pool);
    const s = new MysqlStorage(pool);
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
      for (const p of pools.splice(0)) await p.end();
    },
  };
}

describe('mysql: lock order', () => {
  let database = '';
  before(async () => {
    database = await createTestDatabase('mysql-lock-order');
  });
  after(async () => {
    if (database) await dropTestDatabase(database);
  });

  it('reclaims, finishes and cancels racing on several instances never deadlock', async () => {
    const rec: Recorder = { conflicts: [], statements: [] };
    const ts = await openRecording(database, rec);
    try {
      for (let round = 0; round < 3; round++) await raceReclaimsFinishesCancels(ts);
    } finally {
      await ts.cleanup();
    }
    assert.deepEqual(rec.conflicts, [], 'lock conflicts reported by the server (each one a transaction aborted and retried)');
  });

  it('a finish of plain jobs keeps to one transaction of two statements', async () => {
    const rec: Recorder = { conflicts: [], statements: [] };
    const ts = await openRecording(database, rec);
    try {
      const s = ts.storage;
      const queue = uniqueName('plain');
      await s.jobInsertMany({ jobs: Array.from({ length: 100 }, () => jobInsert({ queue })) });
      const rows = await claim(s, queue, 100);
      assert.equal(rows.length, 100);
      rec.statements.length = 0;
      const done = applied(await s.jobFinishMany({
        items: rows.map((r, i) => (i % 2 === 0 ? { ...fenceOf(r), outcome: 'completed' as const, resultJson: '1' } : { ...fenceOf(r), outcome: 'failed' as const, error: 'e' })),
      }));
      assert.deepEqual(done, rows.map(() => true));
      // A user pool's transactions start by setting their isolation level; the driver's own pool sets it once per session.
      const sent = rec.statements.filter((sql) => !sql.startsWith('SET TRANSACTION')).map((sql) => sql.split(' ', 1)[0]);
      assert.deepEqual(sent, ['START', 'SELECT', 'UPDATE', 'COMMIT']);
    } finally {
      await ts.cleanup();
    }
  });
});
