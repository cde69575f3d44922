/**
 * MySQL/MariaDB: upgrading a database made at schema version 1. The database is made with
 * version 1's statements and ledger row only, filled with jobs in every status and workflows
 * written through the storage contract (test/helpers/upgrade-fixtures.ts) plus plain rows inserted
 * with SQL — written on a database at the latest version (today's code writes columns version 1
 * does not have), read there through the API, then copied into version 1's columns —
 * then opened as an application does (`migrate()`, `new Queue`). Another session holds a read of
 * `sdj_jobs` open, so the migration's ALTER TABLE waits for the table's metadata lock; two other
 * storages (other processes) start migrating while it waits, wait for the migration lock, and find
 * the schema current once it is released. Then: version 2 was applied once, by the first; every
 * row of every table is the same, column by column; the tables' definitions differ only by the
 * index the migration replaced; the new index holds the rows already there and serves the prune
 * and the reclaim (EXPLAIN); every read answers as before; runs keep their leases and finish by
 * their fence; workflows, signals and a worker carry on; a prune deletes exactly the due finished
 * roots with their subtrees and rows; and an up-to-date database opens without running
 * migration 2 again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Queue } from '../../src/queue/queue.js';
import { splitStatements } from '../../src/storage/mysql/migrate.js';
import { MIGRATIONS } from '../../src/storage/mysql/migrations.generated.js';
import { MysqlStorage, type MysqlPoolLike, type MysqlQueryOptions } from '../../src/storage/mysql/mysql-storage.js';
import { MIGRATIONS_APPLIED, MIGRATIONS_CREATE_LEDGER } from '../../src/storage/mysql/queries/admin.js';
import { pruneDueSql } from '../../src/storage/mysql/queries/jobs.js';
import { RECLAIM_CANDIDATES } from '../../src/storage/mysql/queries/run.js';
import { mysql, type MysqlClient, type MysqlClientPool } from '../helpers/mysql-client.js';
import { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';
import {
  AGE, BULK_DONE, T_NOW, bulkRows, itCarriesOnAfterUpgrade, readThroughApi, seedAtVersion1, type BulkRow, type ManualClock, type PruneRow, type Seeded,
} from '../helpers/upgrade-fixtures.js';
import { waitFor } from '../helpers/wait-for.js';

const V1 = MIGRATIONS.find((m) => m.version === 1)!;
const V2 = MIGRATIONS.find((m) => m.version === 2)!;
const V3 = MIGRATIONS.find((m) => m.version === 3)!;
const V4 = MIGRATIONS.find((m) => m.version === 4)!;
/** The versions after 4, which the upgrade applies too. */
const AFTER_4 = MIGRATIONS.filter((m) => m.version > 4);
/** Every table but the ledger, with the order of its primary key. */
const TABLES: Record<string, string> = {
  sdj_jobs: 'id', sdj_steps: 'job_id, step_index', sdj_fan_outs: 'id', sdj_signals: 'seq', sdj_schedules: 'name', sdj_queues: 'name',
};

/** A plain connection that returns big numbers and times as the server's text, so rows compare exactly. */
function connect(url: string): Promise<MysqlClient> {
  return mysql.createConnection({ uri: url, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
}

/** Rows of a statement. */
async function rows<T = Record<string, unknown>>(c: MysqlClient, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await c.query(sql, values))[0] as T[];
}

/** Makes the database at version 1 exactly as the migrator would: version 1's statements, the ledger, its row. */
async function createAtVersion1(c: MysqlClient): Promise<void> {
  for (const stmt of splitStatements(V1.sql)) await c.query(stmt);
  await c.query(MIGRATIONS_CREATE_LEDGER);
  await c.query('INSERT INTO sdj_migrations (version, name, applied_at) VALUES (1, ?, 1)', [V1.name]);
}

/** Inserts plain job rows with version 1's columns, 500 to a statement. */
async function insertBulk(c: MysqlClient, all: readonly BulkRow[]): Promise<void> {
  const cols = Object.keys(all[0]!) as (keyof BulkRow)[];
  for (let i = 0; i < all.length; i += 500) {
    await c.query(`INSERT INTO sdj_jobs (${cols.join(', ')}) VALUES ?`, [all.slice(i, i + 500).map((r) => cols.map((k) => r[k]))]);
  }
}

/** The stored columns of every table but the ledger (generated ones left out). */
async function columnsOf(c: MysqlClient): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of Object.keys(TABLES)) {
    const r = await rows<{ c: string }>(
      c,
      "SELECT column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND extra NOT LIKE '%GENERATED%' ORDER BY ordinal_position",
      [t],
    );
    out[t] = r.map((x) => x.c);
  }
  return out;
}

/** Every row of every table but the ledger, in primary key order, every column (the generated one too), or only `columns`. */
async function dumpRows(c: MysqlClient, columns?: Record<string, string[]>): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [t, order] of Object.entries(TABLES)) out[t] = await rows(c, `SELECT ${columns?.[t]?.join(', ') ?? '*'} FROM ${t} ORDER BY ${order}`);
  return out;
}

/** Rows dumped with every column, kept to `columns` per table. */
function dumpRowsAt(all: Record<string, unknown[]>, columns: Record<string, string[]>): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const [t, list] of Object.entries(all)) {
    out[t] = list.map((r) => Object.fromEntries((columns[t] ?? []).map((k) => [k, (r as Record<string, unknown>)[k]])));
  }
  return out;
}

/** Copies the rows of every table but the ledger from database `from` into the same columns of the current one. */
async function copyRows(c: MysqlClient, from: string): Promise<void> {
  for (const [t, cols] of Object.entries(await columnsOf(c))) {
    await c.query(`INSERT INTO ${t} (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM \`${from}\`.${t}`);
  }
}

/** Each table's definition. */
async function dumpSchema(c: MysqlClient): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of Object.keys(TABLES)) out[t] = (await rows<{ 'Create Table': string }>(c, `SHOW CREATE TABLE ${t}`))[0]!['Create Table'];
  return out;
}

/** The ledger's rows. */
async function ledger(c: MysqlClient): Promise<unknown[]> {
  return (await rows<Record<string, unknown>>(c, 'SELECT version, name, applied_at FROM sdj_migrations ORDER BY version')).map((r) => [Number(r['version']), r['name'], Number(r['applied_at'])]);
}

/** Pools made by {@link recordingPool}, ended after the tests (a storage leaves a pool it was given open). */
const pools: MysqlClientPool[] = [];

/** A pool on `url` that records every statement run on it. */
function recordingPool(url: string): { pool: MysqlPoolLike; sql: string[] } {
  const pool = mysql.createPool({ uri: url, connectionLimit: 2 });
  pools.push(pool);
  const sql: string[] = [];
  return {
    sql,
    pool: {
      query: (o: MysqlQueryOptions) => (sql.push(o.sql), pool.query(o)),
      getConnection: async () => {
        const c = await pool.getConnection();
        return { query: (o: MysqlQueryOptions) => (sql.push(o.sql), c.query(o)), release: () => c.release(), destroy: () => c.destroy() };
      },
      end: () => pool.end(),
    } as MysqlPoolLike,
  };
}

/** Statements that belong to migration 2 (its check, its ALTER TABLE through a prepared statement). */
const MIGRATION_2 = /information_schema\.statistics|sdj_ddl|ALTER TABLE/i;

/** Threads of the test database in a state, with their statement. */
async function threads(c: MysqlClient, db: string): Promise<{ state: string; info: string }[]> {
  return rows(c, "SELECT COALESCE(state, '') AS state, COALESCE(info, '') AS info FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()", [db]);
}

/** Every job as the prune model needs it. */
async function pruneRows(c: MysqlClient): Promise<PruneRow[]> {
  const r = await rows<{ id: string; parentId: string | null; status: string; completedAt: string | null }>(c, 'SELECT id, parent_id AS parentId, status, completed_at AS completedAt FROM sdj_jobs');
  return r.map((x) => ({ ...x, completedAt: x.completedAt === null ? null : Number(x.completedAt) }));
}

/** The owning job of every step, signal and fan-out row, sorted. */
async function owners(c: MysqlClient): Promise<Record<string, string[]>> {
  const of = async (sql: string) => (await rows<{ o: string }>(c, sql)).map((r) => r.o).sort();
  return { steps: await of('SELECT job_id AS o FROM sdj_steps'), signals: await of('SELECT job_id AS o FROM sdj_signals'), fanOuts: await of('SELECT parent_id AS o FROM sdj_fan_outs') };
}

/** The access path of each table a statement reads. */
async function plan(c: MysqlClient, sql: string, values: unknown[]): Promise<{ key: string | null; Extra: string | null }[]> {
  return rows(c, `EXPLAIN ${sql}`, values);
}

const DUE_VALUES = ['completed', null, AGE, 10, 'failed', null, AGE, 10, 'cancelled', null, AGE, 10, 10];

describe('mysql: upgrade of a database at schema version 1', () => {
  const at: ManualClock = { now: 0 };
  let db: string;
  let url: string;
  let raw: MysqlClient;
  let s: MysqlStorage;
  const others: MysqlStorage[] = [];
  const othersSql: string[][] = [];
  let queue: Queue;
  let seeded: Seeded;
  let pruneBeforeUpgrade: unknown;
  let shadowDb: string | undefined;
  const before1: { api?: unknown; rows?: Record<string, unknown[]>; schema?: Record<string, string>; columns?: Record<string, string[]> } = {};

  before(async () => {
    db = await createTestDatabase('mysql-upgrade');
    url = mysqlDatabaseUrl(db);
    raw = await connect(url);
    await createAtVersion1(raw);
    s = new MysqlStorage(url, { clock: () => at.now, connectionLimit: 3 });
    queue = new Queue(s);
    // Written and read on a database at the latest version, then copied into version 1's columns.
    shadowDb = await createTestDatabase('mysql-upgrade-shadow');
    const shadow = new MysqlStorage(mysqlDatabaseUrl(shadowDb), { clock: () => at.now, connectionLimit: 3 });
    const shadowRaw = await connect(mysqlDatabaseUrl(shadowDb));
    try {
      await shadow.migrate();
      seeded = await seedAtVersion1(shadow, at);
      await insertBulk(shadowRaw, bulkRows());
      before1.api = await readThroughApi(new Queue(shadow), shadow, seeded);
    } finally {
      await shadow.close();
      await shadowRaw.end();
    }
    await copyRows(raw, shadowDb);
    before1.columns = await columnsOf(raw);
    before1.rows = await dumpRows(raw);
    before1.schema = await dumpSchema(raw);
    pruneBeforeUpgrade = await plan(raw, pruneDueSql(3, false), DUE_VALUES).catch((e: Error) => e.message);

    // The upgrade: a session reading sdj_jobs holds its metadata lock, so this storage's ALTER
    // TABLE waits; meanwhile two other storages start migrating and wait for the migration lock.
    const reader = await connect(url);
    await reader.query('START TRANSACTION');
    await reader.query('SELECT id FROM sdj_jobs LIMIT 1');
    let upgrades: Promise<void>[] = [];
    try {
      upgrades.push(s.migrate());
      await waitFor(async () => (await threads(raw, db)).some((t) => /metadata lock/i.test(t.state)), { message: 'the ALTER TABLE waits for the metadata lock' });
      for (let i = 1; i <= 2; i++) {
        const rec = recordingPool(url);
        othersSql.push(rec.sql);
        const o = new MysqlStorage(rec.pool, { clock: () => T_NOW + i });
        others.push(o);
        upgrades.push(o.migrate());
      }
      await waitFor(async () => (await threads(raw, db)).filter((t) => /GET_LOCK/i.test(t.info)).length === 2, { message: 'the other storages wait for the migration lock' });
    } finally {
      await reader.query('COMMIT');
      await reader.end();
    }
    const settled = await Promise.allSettled(upgrades);
    upgrades = [];
    assert.deepEqual(settled.filter((r) => r.status === 'rejected'), [], 'every storage migrated without error');
  });
  after(async () => {
    await s.close();
    for (const o of others) await o.close();
    for (const p of pools) await p.end();
    await raw.end();
    await dropTestDatabase(db);
    if (shadowDb !== undefined) await dropTestDatabase(shadowDb);
  });

  it('applies version 2 once, by the first storage; the others, started during the migration, only read the ledger', async () => {
    assert.deepEqual(await ledger(raw), [[1, V1.name, 1], [2, V2.name, T_NOW], [3, V3.name, T_NOW], [4, V4.name, T_NOW], ...AFTER_4.map((m) => [m.version, m.name, T_NOW])]);
    for (const sql of othersSql) {
      assert.ok(sql.includes(MIGRATIONS_APPLIED), 'it read the ledger');
      assert.deepEqual(sql.filter((x) => MIGRATION_2.test(x)), [], 'it ran nothing of migration 2');
    }
  });

  it('keeps every row of every table, column by column, and changes the definitions only by the index replaced and the flow-control objects', async () => {
    assert.deepEqual(await dumpRows(raw, before1.columns), await dumpRowsAt(before1.rows!, before1.columns!));
    assert.equal(before1.rows!['sdj_jobs']!.length, bulkRows().length + Object.keys(seeded.ids).length);
    const now = await dumpSchema(raw);
    const was = before1.schema!;
    for (const t of Object.keys(TABLES)) if (t !== 'sdj_jobs' && t !== 'sdj_queues') assert.equal(now[t], was[t], t);
    const lines = (x: string) => x.split('\n').map((l) => l.trim().replace(/,$/, ''));
    const added = (t: string) => lines(now[t]!).filter((l) => !lines(was[t]!).includes(l));
    const removed = (t: string) => lines(was[t]!).filter((l) => !lines(now[t]!).includes(l));
    assert.deepEqual(added('sdj_queues').map((l) => l.split(' ')[0]), ['`concurrency`', '`rate_limit`', '`rate_period_ms`'], 'migration 4: queue limits');
    assert.deepEqual(removed('sdj_queues'), []);
    const keys = added('sdj_jobs').filter((l) => l.startsWith('KEY'));
    assert.deepEqual(keys.sort(), [
      'KEY `sdj_jobs_claim` (`queue`,`status`,`limited`,`priority` DESC,`run_at`,`id`)',
      'KEY `sdj_jobs_debounce` (`debounce_active`)',
      'KEY `sdj_jobs_flow` (`flow_queue`,`flow_group`,`priority` DESC,`run_at`,`id`)',
      'KEY `sdj_jobs_prune` (`status`,`lease_expires_at`,`parent_id`,`completed_at`)',
      'KEY `sdj_jobs_unique_key` (`unique_key`)',
      'KEY `sdj_jobs_wake` (`status`,`wake_at`,`queue`,`limited`,`flow_group`)',
    ]);
    assert.deepEqual(
      added('sdj_jobs').filter((l) => !l.startsWith('KEY')).map((l) => l.split(' ')[0]),
      ['`concurrency_key`', '`rate_key`', '`limited`', '`debounce_key`', '`flow_group`', '`flow_queue`', '`debounce_active`', '`progress_value`', '`progress_message`', '`progress_at`'],
      'migration 4: job columns; migration 5: progress',
    );
    assert.deepEqual(removed('sdj_jobs').sort(), [
      'KEY `sdj_jobs_claim` (`queue`,`status`,`priority` DESC,`run_at`,`id`)',
      'KEY `sdj_jobs_lease` (`status`,`lease_expires_at`)',
      'KEY `sdj_jobs_wake` (`status`,`wake_at`)',
    ]);
    const check = await rows<{ Msg_type: string; Msg_text: string }>(raw, 'CHECK TABLE sdj_jobs EXTENDED');
    assert.deepEqual(check.map((r) => [r.Msg_type, r.Msg_text]), [['status', 'OK']]);
  });

  it('builds the prune index over the rows already there, and the prune and the reclaim read it', async () => {
    assert.match(String(pruneBeforeUpgrade), /sdj_jobs_prune/, 'before the upgrade the prune statement names a missing index');
    const where = "status IN ('completed', 'failed', 'cancelled') AND lease_expires_at IS NULL AND parent_id IS NULL AND completed_at IS NOT NULL";
    const [viaIndex] = await rows<{ n: number }>(raw, `SELECT COUNT(*) AS n FROM sdj_jobs FORCE INDEX (sdj_jobs_prune) WHERE ${where}`);
    const [viaTable] = await rows<{ n: number }>(raw, `SELECT COUNT(*) AS n FROM sdj_jobs IGNORE INDEX (sdj_jobs_prune) WHERE ${where}`);
    assert.equal(Number(viaTable!.n), BULK_DONE + 8, 'the bulk roots and the 8 hand-made finished roots');
    assert.equal(Number(viaIndex!.n), Number(viaTable!.n));
    await raw.query('ANALYZE TABLE sdj_jobs');
    const due = await plan(raw, pruneDueSql(3, false), DUE_VALUES);
    const ranges = due.filter((r) => r.key === 'sdj_jobs_prune');
    assert.equal(ranges.length, 3, JSON.stringify(due));
    for (const r of ranges) assert.doesNotMatch(r.Extra ?? '', /filesort/);
    const [reclaim] = await plan(raw, RECLAIM_CANDIDATES, [null, 10]);
    assert.equal(reclaim?.key, 'sdj_jobs_prune');
  });

  itCarriesOnAfterUpgrade(() => ({ queue, s, at, seeded, apiBefore: before1.api, pruneRows: () => pruneRows(raw), owners: () => owners(raw) }));

  it('opens an up-to-date database without running migration 2 again', async () => {
    const ledgerBefore = await ledger(raw);
    const rec = recordingPool(url);
    const again = new MysqlStorage(rec.pool);
    try {
      await again.migrate();
      await again.migrate();
      await s.migrate();
    } finally {
      await again.close();
    }
    assert.equal(rec.sql.filter((x) => x === MIGRATIONS_APPLIED).length, 2, 'each migrate() read the ledger');
    assert.deepEqual(rec.sql.filter((x) => MIGRATION_2.test(x)), []);
    assert.deepEqual(await ledger(raw), ledgerBefore);
  });
});
