/**
 * MySQL/MariaDB driver: the storage conformance suite plus dialect-specific cases — user pools,
 * time zones, concurrent migrations, schema version guard, concurrent claimers, enqueue inside
 * the caller's transaction.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { DuplicateJobError, SchemaTooNewError } from '../../src/errors.js';
import { MysqlStorage, type MysqlPoolLike } from '../../src/storage/mysql/mysql-storage.js';
import { MIGRATIONS } from '../../src/storage/mysql/migrations.generated.js';
import { runStorageConformance } from '../conformance/index.js';
import { applied, insertJob, jobInsert, mustGet, uniqueName } from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';
import { createTestDatabase, dropTestDatabase, makeMysqlStorage, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';

runStorageConformance('mysql', makeMysqlStorage);

/** The parts of mysql2/promise these tests use. */
interface TestPool extends MysqlPoolLike {
  on(event: 'connection', listener: (conn: { query(sql: string, cb: (err: unknown) => void): unknown }) => void): unknown;
  query(sql: string | { sql: string; values?: unknown[] }, values?: unknown[]): Promise<[unknown, unknown]>;
}
interface TestConnection {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  query(options: { sql: string; values?: unknown[] }): Promise<[unknown, unknown]>;
  beginTransaction(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  end(): Promise<void>;
}
interface Mysql2 {
  createPool(config: Record<string, unknown>): TestPool;
  createConnection(uri: string): Promise<TestConnection>;
}
const mysql = createRequire(import.meta.url)('mysql2/promise') as Mysql2;
const mysqlCallback = createRequire(import.meta.url)('mysql2') as { createPool(config: Record<string, unknown>): { promise(): TestPool; end(cb: () => void): void } };

/** The newest schema version the code knows: the last generated migration's. */
const LATEST_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

/** How far the database clock may be from the host clock (the server may be another machine). */
const CLOCK_TOLERANCE_MS = 5_000;

/** A user pool on `db` whose sessions use the given time zone. */
function zonedPool(db: string, timeZone: string): TestPool {
  const pool = mysql.createPool({ uri: mysqlDatabaseUrl(db), connectionLimit: 4 });
  pool.on('connection', (conn) => {
    conn.query(`SET time_zone = '${timeZone}'`, () => {});
  });
  return pool;
}

describe('mysql driver specifics', () => {
  let db = '';
  before(async () => {
    db = await createTestDatabase('mysql-specifics');
    const s = new MysqlStorage(mysqlDatabaseUrl(db));
    await s.migrate();
    await s.close();
  });
  after(async () => {
    if (db) await dropTestDatabase(db);
  });

  it('close() leaves a pool the user passed open', async () => {
    const pool = mysql.createPool({ uri: mysqlDatabaseUrl(db), connectionLimit: 2 });
    try {
      const s = new MysqlStorage(pool);
      await s.migrate();
      const id = await insertJob(s, { queue: uniqueName('q') });
      await s.close();
      const [rows] = await pool.query('SELECT status FROM sdj_jobs WHERE id = ?', [id]);
      assert.deepEqual(rows, [{ status: 'pending' }]);
    } finally {
      await pool.end();
    }
  });

  it('accepts a callback-style mysql2 pool', async () => {
    const pool = mysqlCallback.createPool({ uri: mysqlDatabaseUrl(db), connectionLimit: 2 });
    try {
      const s = new MysqlStorage(pool);
      const id = await insertJob(s, { queue: uniqueName('q') });
      assert.equal((await mustGet(s, id)).status, 'pending');
      await s.close();
    } finally {
      await new Promise<void>((resolve) => pool.end(() => resolve()));
    }
  });

  it('stores times as UTC milliseconds whatever the session time zone', async () => {
    const east = zonedPool(db, '+05:30');
    const west = zonedPool(db, '-08:00');
    try {
      const [[zone]] = (await east.query('SELECT @@session.time_zone AS tz')) as [{ tz: string }[], unknown];
      assert.equal(zone?.tz, '+05:30', 'the session time zone is in effect');
      const se = new MysqlStorage(east);
      const sw = new MysqlStorage(west);
      const host0 = Date.now();
      const [te, tw] = [await se.clockNow(), await sw.clockNow()];
      const host1 = Date.now();
      for (const t of [te, tw]) {
        assert.ok(Number.isSafeInteger(t));
        assert.ok(t >= host0 - CLOCK_TOLERANCE_MS && t <= host1 + CLOCK_TOLERANCE_MS, `clock ${t} is ${t - host0} ms off the host clock`);
      }
      assert.ok(Math.abs(te - tw) < 1_000, 'both zones read the same instant');
      // Millisecond precision: not every reading is a whole second.
      const readings = [te, tw, await se.clockNow(), await sw.clockNow(), await se.clockNow()];
      assert.ok(readings.some((t) => t % 1000 !== 0), `clock readings look truncated to seconds: ${readings.join(', ')}`);

      const runAt = Date.UTC(2031, 2, 30, 1, 30, 0, 123);
      const job = jobInsert({ queue: uniqueName('q'), runAt });
      await se.jobInsertMany({ jobs: [job] });
      const seenEast = await mustGet(se, job.id);
      const seenWest = await mustGet(sw, job.id);
      assert.equal(seenEast.runAt, runAt, 'run_at round-trips exactly');
      assert.deepEqual(seenWest, seenEast, 'both zones read the same row');
      assert.ok(Math.abs(seenEast.createdAt - host0) < CLOCK_TOLERANCE_MS, 'created_at is UTC ms');

      // A job delayed by a minute from the western zone is not due yet for the eastern zone, which a
      // clock read from local NOW() (5.5 hours ahead of UTC there) would get wrong.
      const q = uniqueName('q');
      const delayed = jobInsert({ queue: q, delayMs: 60_000 });
      await sw.jobInsertMany({ jobs: [delayed] });
      assert.deepEqual(await se.jobClaim({ workerId: 'e', queues: [{ name: q, limit: 1 }], leaseMs: 1_000 }), []);
      const row = await mustGet(se, delayed.id);
      assert.equal(row.runAt - row.createdAt, 60_000, 'run_at = created_at + delay');
      await se.close();
      await sw.close();
    } finally {
      await east.end();
      await west.end();
    }
  });

  it('keeps UTC milliseconds on its own pool when the server-wide time zone is not UTC', async (t) => {
    const admin = await mysql.createConnection(mysqlDatabaseUrl(db));
    const [[orig]] = (await admin.query('SELECT @@global.time_zone AS tz')) as [{ tz: string }[], unknown];
    assert.ok(orig);
    try {
      await admin.query("SET GLOBAL time_zone = '+09:00'");
    } catch (e) {
      await admin.end();
      t.skip(`cannot change the global time zone: ${(e as Error).message}`);
      return;
    }
    const s = new MysqlStorage(mysqlDatabaseUrl(db));
    try {
      const probe = await mysql.createConnection(mysqlDatabaseUrl(db));
      const [[zone]] = (await probe.query('SELECT @@session.time_zone AS tz')) as [{ tz: string }[], unknown];
      await probe.end();
      assert.equal(zone?.tz, '+09:00', 'new sessions take the global zone');
      const host0 = Date.now();
      const now = await s.clockNow();
      assert.ok(Math.abs(now - host0) < CLOCK_TOLERANCE_MS, `clock ${now} is ${now - host0} ms off the host clock`);
      const runAt = host0 + 3_600_000 + 7;
      const job = jobInsert({ queue: uniqueName('q'), runAt });
      await s.jobInsertMany({ jobs: [job] });
      const row = await mustGet(s, job.id);
      assert.equal(row.runAt, runAt);
      assert.ok(Math.abs(row.createdAt - host0) < CLOCK_TOLERANCE_MS, `created_at ${row.createdAt} is ${row.createdAt - host0} ms off`);
    } finally {
      await s.close();
      await admin.query('SET GLOBAL time_zone = ?', [orig.tz]);
      await admin.end();
    }
  });

  it('a queue pause waits for claims in flight, and later claims skip the queue', async () => {
    const s = new MysqlStorage(mysqlDatabaseUrl(db));
    const raw = await mysql.createConnection(mysqlDatabaseUrl(db));
    try {
      const q = uniqueName('q');
      const id = await insertJob(s, { queue: q });
      await s.queueSetPaused({ queue: q, paused: false });
      // What a claim holds while it runs: a share lock on its queue's row.
      await raw.beginTransaction();
      await raw.query('SELECT name FROM sdj_queues WHERE name = ? LOCK IN SHARE MODE', [q]);
      let paused = false;
      const pausing = s.queueSetPaused({ queue: q, paused: true }).then(() => {
        paused = true;
      });
      await waitFor(
        async () => {
          // The pause's statement reached the server and is still executing (blocked).
          const [rows] = (await raw.query(
            "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db = ? AND command = 'Query' AND info LIKE 'INSERT INTO sdj_queues%'",
            [db],
          )) as [{ n: number }[], unknown];
          return Number(rows[0]?.n) > 0;
        },
        { message: 'the pause waits for the claim in flight' },
      );
      assert.equal(paused, false, 'the pause did not wait for the claim in flight');
      await raw.commit();
      await pausing;
      assert.deepEqual(await s.jobClaim({ workerId: 'w', queues: [{ name: q, limit: 5 }], leaseMs: 1_000 }), []);
      assert.equal((await mustGet(s, id)).status, 'pending');
    } finally {
      await raw.end();
      await s.close();
    }
  });

  it('uses an injected clock for every time it writes and compares', async () => {
    let t = Date.UTC(2030, 0, 1);
    const s = new MysqlStorage(mysqlDatabaseUrl(db), { clock: () => t });
    try {
      assert.equal(await s.clockNow(), t);
      const q = uniqueName('q');
      const job = jobInsert({ queue: q, delayMs: 5_000 });
      await s.jobInsertMany({ jobs: [job] });
      const row = await mustGet(s, job.id);
      assert.equal(row.createdAt, t);
      assert.equal(row.runAt, t + 5_000);
      assert.deepEqual(await s.jobClaim({ workerId: 'w', queues: [{ name: q, limit: 1 }], leaseMs: 1_000 }), []);
      t += 5_000;
      const [claimed] = await s.jobClaim({ workerId: 'w', queues: [{ name: q, limit: 1 }], leaseMs: 1_000 });
      assert.equal(claimed?.startedAt, t);
      assert.equal(claimed?.leaseExpiresAt, t + 1_000);
      assert.deepEqual(await s.jobReclaimExpired({ limit: 10 }), []);
      t += 1_000;
      assert.deepEqual(await s.jobReclaimExpired({ limit: 10 }), [], 'the lease is held through the millisecond it ends');
      t += 1;
      assert.deepEqual((await s.jobReclaimExpired({ limit: 10 })).map((r) => r.id), [job.id]);
    } finally {
      await s.close();
    }
  });

  it('10 concurrent migrate() calls on a fresh database all succeed and apply each version once', async () => {
    const fresh = await createTestDatabase('mysql-concurrent-migrate');
    const all = Array.from({ length: 10 }, () => new MysqlStorage(mysqlDatabaseUrl(fresh), { connectionLimit: 2 }));
    try {
      const results = await Promise.allSettled(all.map((s) => s.migrate()));
      for (const r of results) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
      const conn = await mysql.createConnection(mysqlDatabaseUrl(fresh));
      try {
        const [ledger] = await conn.query('SELECT version, name FROM sdj_migrations ORDER BY version');
        assert.deepEqual(
          ledger,
          MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
        );
        const [tables] = (await conn.query(
          "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? AND table_name LIKE 'sdj\\_%' ORDER BY table_name",
          [fresh],
        )) as [{ t: string }[], unknown];
        assert.deepEqual(
          tables.map((r) => r.t),
          [
            'sdj_debounce_locks',
            'sdj_events',
            'sdj_event_head',
            'sdj_event_subscribers',
            'sdj_fan_outs',
            'sdj_flow_locks',
            'sdj_jobs',
            'sdj_migrations',
            'sdj_queues',
            'sdj_rate_state',
            'sdj_schedules',
            'sdj_signals',
            'sdj_steps',
            'sdj_type_limits',
            'sdj_workers',
          ],
        );
      } finally {
        await conn.end();
      }
      await insertJob(all[3]!, { queue: uniqueName('q') });
    } finally {
      for (const s of all) await s.close();
      await dropTestDatabase(fresh);
    }
  });

  it('refuses a schema newer than the code with SchemaTooNewError', async () => {
    const fresh = await createTestDatabase('mysql-schema-too-new');
    const s = new MysqlStorage(mysqlDatabaseUrl(fresh));
    try {
      await s.migrate();
      const conn = await mysql.createConnection(mysqlDatabaseUrl(fresh));
      await conn.query("INSERT INTO sdj_migrations (version, name, applied_at) VALUES (999, 'future', 0)");
      await conn.end();
      await assert.rejects(s.migrate(), (e) => e instanceof SchemaTooNewError && e.found === 999 && e.known === LATEST_VERSION);
      // The lock was released: another instance gets the same answer instead of a lock timeout.
      const other = new MysqlStorage(mysqlDatabaseUrl(fresh));
      await assert.rejects(other.migrate(), SchemaTooNewError);
      await other.close();
    } finally {
      await s.close();
      await dropTestDatabase(fresh);
    }
  });

  it('4 instances claiming 1,000 jobs concurrently never share a job nor exceed a limit', async () => {
    const q = uniqueName('q');
    const url = mysqlDatabaseUrl(db);
    const seed = new MysqlStorage(url);
    const jobs = Array.from({ length: 1_000 }, (_, i) => jobInsert({ queue: q, priority: i % 5 }));
    await seed.jobInsertMany({ jobs });
    const claimers = Array.from({ length: 4 }, () => new MysqlStorage(url, { connectionLimit: 3 }));
    const owner = new Map<string, string>();
    const dupes: string[] = [];
    try {
      await Promise.all(
        claimers.map(async (s, i) => {
          const workerId = `claimer-${i}`;
          const limit = 3 + i * 4;
          for (;;) {
            const rows = await s.jobClaim({ workerId, queues: [{ name: q, limit }], leaseMs: 60_000 });
            assert.ok(rows.length <= limit, `claimed ${rows.length} > limit ${limit}`);
            if (rows.length === 0) return;
            for (const r of rows) {
              if (owner.has(r.id)) dupes.push(r.id);
              owner.set(r.id, workerId);
            }
            // Churn: finish half of each batch while the others keep claiming.
            const done = rows.filter((_, k) => k % 2 === 0);
            const ok = applied(await s.jobFinishMany({ items: done.map((r) => ({ jobId: r.id, workerId, runCount: r.runCount, outcome: 'completed' as const, resultJson: null })) }));
            assert.ok(ok.every(Boolean));
          }
        }),
      );
      assert.deepEqual(dupes, []);
      assert.equal(owner.size, 1_000);
      const counts = await seed.jobCountByStatus({ queue: q });
      assert.equal(counts.pending, 0);
      assert.equal(counts.running + counts.completed, 1_000);
      const rows = await seed.jobList({ queue: q, limit: 2_000 });
      for (const r of rows) {
        assert.equal(r.runCount, 1, `job ${r.id} claimed ${r.runCount} times`);
        assert.equal(r.lockedBy ?? owner.get(r.id), owner.get(r.id));
      }
    } finally {
      for (const s of [seed, ...claimers]) await s.close();
    }
  });

  it('enqueues inside the caller’s transaction: visible on commit, gone on rollback', async () => {
    const s = new MysqlStorage(mysqlDatabaseUrl(db));
    const conn = await mysql.createConnection(mysqlDatabaseUrl(db));
    try {
      const q = uniqueName('q');
      const kept = jobInsert({ queue: q });
      const dropped = jobInsert({ queue: q });
      await conn.beginTransaction();
      assert.deepEqual(await s.jobInsertMany({ jobs: [kept], tx: conn }), { inserted: [kept.id], ids: [kept.id] });
      assert.equal(await s.jobGet({ id: kept.id }), undefined, 'not visible before commit');
      await conn.commit();
      assert.equal((await mustGet(s, kept.id)).status, 'pending');
      await conn.beginTransaction();
      await s.jobInsertMany({ jobs: [dropped], tx: conn });
      await conn.rollback();
      assert.equal(await s.jobGet({ id: dropped.id }), undefined, 'rolled back with the caller');

      // A batch of several statements that fails inserts nothing, and leaves the caller's
      // transaction usable (its earlier writes commit).
      const key = uniqueName('key');
      await insertJob(s, { queue: q, uniqueKey: key });
      const before = jobInsert({ queue: q });
      const batch = [...Array.from({ length: 700 }, () => jobInsert({ queue: q })), jobInsert({ queue: q, uniqueKey: key })];
      await conn.beginTransaction();
      await s.jobInsertMany({ jobs: [before], tx: conn });
      await assert.rejects(s.jobInsertMany({ jobs: batch, tx: conn }), (e) => e instanceof DuplicateJobError && e.uniqueKey === key);
      await conn.commit();
      assert.equal((await mustGet(s, before.id)).status, 'pending');
      for (const j of [batch[0]!, batch[699]!]) assert.equal(await s.jobGet({ id: j.id }), undefined, 'part of the failed batch was kept');
    } finally {
      await conn.end();
      await s.close();
    }
  });
});
