/**
 * MySQL/MariaDB driver: flow control as only this driver does it — the plans (the ordinary claim
 * keeps reading its claim index, over (queue, 'pending', limited = 0); the limited claim finds a
 * queue's groups by a loose scan of `sdj_jobs_wake` and reads two jobs per group through
 * `sdj_jobs_flow`, so a full or rate-blocked group's backlog is never read), the round trips of a
 * limited claim and of an insert, the lock that orders a type limit's appearance with an insert in
 * flight, exact keys (no trailing-space padding), and migration 4 over a database at version 3
 * holding jobs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { splitStatements } from '../../src/storage/mysql/migrate.js';
import { MIGRATIONS } from '../../src/storage/mysql/migrations.generated.js';
import { MysqlStorage, type MysqlPoolLike, type MysqlQueryOptions } from '../../src/storage/mysql/mysql-storage.js';
import { MIGRATIONS_CREATE_LEDGER } from '../../src/storage/mysql/queries/admin.js';
import { claimLimitedRead } from '../../src/storage/mysql/queries/flow.js';
import { CLAIM_SELECT } from '../../src/storage/mysql/queries/run.js';
import type { Storage } from '../../src/storage/storage.js';
import { claimLimited, completeRows, idsOf, setQueueLimit, setTypeLimit } from '../conformance/flow-helpers.js';
import { claim, completedJob, insertJob, jobInsert, mustGet, uniqueName } from '../helpers/factories.js';
import { mysql, type MysqlClient, type MysqlClientPool } from '../helpers/mysql-client.js';
import { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';
import { waitFor } from '../helpers/wait-for.js';

/** One row of `EXPLAIN`. */
interface PlanRow {
  table: string | null;
  type: string | null;
  key: string | null;
  key_len: string | null;
  Extra: string | null;
}

/** A migrated database of its own: a storage on the injected clock `at.now`, a plain connection. */
async function openDatabase(label: string, opts: { migrate?: boolean } = {}) {
  const db = await createTestDatabase(label);
  const url = mysqlDatabaseUrl(db);
  const at = { now: Date.UTC(2030, 0, 1) };
  const made: MysqlStorage[] = [];
  const pools: MysqlClientPool[] = [];
  const open = (pool?: MysqlPoolLike): MysqlStorage => {
    const s = new MysqlStorage(pool ?? url, { clock: () => at.now, connectionLimit: 4 });
    made.push(s);
    return s;
  };
  const s = open();
  if (opts.migrate !== false) await s.migrate();
  const c = await mysql.createConnection(url);
  return {
    s,
    c,
    at,
    open,
    /** A storage on a pool of its own whose statements are counted by `hook` (SQL text). */
    hooked(hook: (sql: string) => void): MysqlStorage {
      const pool = mysql.createPool({ uri: url, connectionLimit: 2 });
      pools.push(pool);
      const wrap = (q: (o: MysqlQueryOptions) => Promise<[unknown, unknown]>) => async (o: MysqlQueryOptions) => (hook(o.sql), q(o));
      return open({
        query: wrap((o) => pool.query(o)),
        getConnection: async () => {
          const conn = await pool.getConnection();
          return { query: wrap((o) => conn.query(o)), release: () => conn.release(), destroy: () => conn.destroy() };
        },
        end: () => pool.end(),
      });
    },
    rows: async <T = Record<string, unknown>>(sql: string, values: unknown[] = []): Promise<T[]> => (await c.query(sql, values))[0] as T[],
    close: async () => {
      for (const x of made) await x.close();
      for (const p of pools) await p.end();
      await c.end();
      await dropTestDatabase(db);
    },
  };
}
type Db = Awaited<ReturnType<typeof openDatabase>>;

/** The plan of a statement. */
async function explain(c: MysqlClient, sql: string, values: unknown[]): Promise<PlanRow[]> {
  return (await c.query(`EXPLAIN ${sql}`, values))[0] as PlanRow[];
}

/** Rows the server read to run a statement on `c` (the session's handler counters, before and after). */
async function rowsRead(c: MysqlClient, sql: string, values: unknown[]): Promise<number> {
  const total = async (): Promise<number> => {
    const [r] = await c.query("SHOW SESSION STATUS LIKE 'Handler_read%'");
    return (r as { Value: string }[]).reduce((n, x) => n + Number(x.Value), 0);
  };
  // SHOW STATUS reads rows itself: its own share is taken off.
  const overhead = -(await total()) + (await total());
  const before = await total();
  await c.query(sql, values);
  return (await total()) - before - overhead;
}

/** Inserts `n` jobs in batches of 500. */
async function insertMany(s: Storage, n: number, fields: Parameters<typeof jobInsert>[0]): Promise<void> {
  for (let i = 0; i < n; i += 500) await s.jobInsertMany({ jobs: Array.from({ length: Math.min(500, n - i) }, () => jobInsert(fields)) });
}

describe('mysql flow control: plans and reads over a backlog', () => {
  let db: Db;
  const q = 'fq';
  const BACKLOG = 10_000;
  before(async () => {
    db = await openDatabase('mysql-flow-plans');
    const s = db.s;
    await setTypeLimit(s, 'keyed', { concurrency: 1 });
    await setTypeLimit(s, 'rated', { rateLimit: 1, ratePeriodMs: 3_600_000 });
    // A full key and a rate-blocked key, each with a backlog; plain jobs in the same queue.
    await insertMany(s, 1, { queue: q, type: 'keyed', concurrencyKey: 'hot', priority: 9 });
    await insertMany(s, 1, { queue: q, type: 'rated', rateKey: 'r', priority: 9 });
    assert.equal((await claimLimited(s, q, 10)).rows.length, 2);
    await insertMany(s, BACKLOG, { queue: q, type: 'keyed', concurrencyKey: 'hot', priority: 9 });
    await insertMany(s, BACKLOG, { queue: q, type: 'rated', rateKey: 'r', priority: 9 });
    await insertMany(s, 2_000, { queue: q, type: 'plain' });
    await db.c.query('ANALYZE TABLE sdj_jobs');
  });
  after(async () => db.close());

  it('the ordinary claim reads the range (queue, pending, limited = 0) of sdj_jobs_claim in claim order, and takes plain jobs only', async () => {
    const [p] = await explain(db.c, CLAIM_SELECT, [null, q, null, 10]);
    assert.equal(p?.key, 'sdj_jobs_claim', JSON.stringify(p));
    assert.doesNotMatch(p?.Extra ?? '', /filesort/);
    // queue (1020 + 2), status (64 + 2), limited (1): the three equality parts.
    assert.ok(Number(p?.key_len) >= 1089, `key_len ${String(p?.key_len)}`);
    const rows = await claim(db.s, q, 50);
    assert.equal(rows.length, 50);
    assert.ok(rows.every((r) => r.type === 'plain' && !r.limited));
    await completeRows(db.s, rows);
  });

  it("the limited claim's read finds the groups by a loose scan of sdj_jobs_wake and probes each group through sdj_jobs_flow", async () => {
    const read = claimLimitedRead(db.at.now, [{ name: q, limit: 10 }]);
    const plan = await explain(db.c, read.sql, read.values);
    const groupScan = plan.filter((r) => r.key === 'sdj_jobs_wake');
    assert.ok(groupScan.some((r) => /Using index for group-by/.test(r.Extra ?? '')), JSON.stringify(plan));
    assert.ok(plan.filter((r) => r.key === 'sdj_jobs_flow').length >= 2, JSON.stringify(plan));
    for (const r of plan.filter((x) => x.table === 'f' || x.key === 'sdj_jobs_flow')) assert.doesNotMatch(r.Extra ?? '', /filesort/);
  });

  it("reads as many rows with a backlog of 20,000 behind a full key and a rate-blocked key as without it, and the cold key's job is claimed", async () => {
    const cold = await insertJob(db.s, { queue: q, type: 'keyed', concurrencyKey: 'cold' });
    // On the storages' clock (their jobs are ready at it).
    const read = claimLimitedRead(db.at.now, [{ name: q, limit: 10 }]);
    const withBacklog = await rowsRead(db.c, read.sql, read.values);
    const small = await openDatabase('mysql-flow-plans-small');
    try {
      await setTypeLimit(small.s, 'keyed', { concurrency: 1 });
      await setTypeLimit(small.s, 'rated', { rateLimit: 1, ratePeriodMs: 3_600_000 });
      await insertMany(small.s, 2, { queue: q, type: 'keyed', concurrencyKey: 'hot', priority: 9 });
      await insertMany(small.s, 2, { queue: q, type: 'rated', rateKey: 'r', priority: 9 });
      assert.equal((await claimLimited(small.s, q, 10)).rows.length, 2);
      await insertJob(small.s, { queue: q, type: 'keyed', concurrencyKey: 'cold' });
      await insertMany(small.s, 2_000 - 50, { queue: q, type: 'plain' });
      await small.c.query('ANALYZE TABLE sdj_jobs');
      assert.equal(small.at.now, db.at.now);
      const without = await rowsRead(small.c, read.sql, read.values);
      assert.ok(withBacklog <= without + 10, `rows read: ${withBacklog} with the backlog, ${without} without`);
      assert.ok(withBacklog < 100, `rows read: ${withBacklog}`);
    } finally {
      await small.close();
    }
    const r = await claimLimited(db.s, q, 10);
    assert.deepEqual([idsOf(r.rows), r.saturated, r.retryInMs], [[cold], true, 3_600_000]);
  });
});

describe('mysql flow control: round trips', () => {
  let db: Db;
  before(async () => {
    db = await openDatabase('mysql-flow-round-trips');
  });
  after(async () => db.close());

  it('a limited claim: 6 statements when it claims, 7 with rate state, 4 when nothing is ready (on a pool of its own, each transaction adds its isolation level)', async () => {
    const sqls: string[] = [];
    const s = db.hooked((sql) => void sqls.push(sql));
    const count = async (f: () => Promise<unknown>): Promise<number> => {
      sqls.length = 0;
      await f();
      return sqls.filter((x) => !x.startsWith('SET TRANSACTION')).length;
    };
    const q = uniqueName('q');
    await setTypeLimit(db.s, 'rt-conc', { concurrency: 5 });
    await setTypeLimit(db.s, 'rt-rate', { rateLimit: 10, ratePeriodMs: 1_000 });
    assert.equal(await count(() => insertJob(s, { queue: q, type: 'rt-conc' })), 1, 'a plain insert is one statement');
    assert.equal(await count(() => claimLimited(s, q, 1)), 6);
    await insertJob(db.s, { queue: q, type: 'rt-rate' });
    assert.equal(await count(() => claimLimited(s, q, 1)), 7);
    assert.equal(await count(() => claimLimited(s, q, 1)), 4);
    // A group with room for several jobs: one more read for the rest of the group.
    await db.s.jobInsertMany({ jobs: [0, 1, 2, 3].map(() => jobInsert({ queue: q, type: 'rt-conc' })) });
    const n = await count(async () => assert.equal((await claimLimited(s, q, 10)).rows.length, 4));
    assert.equal(n, 7);
  });
});

describe('mysql flow control: a type limit appearing while an insert is in flight', () => {
  let db: Db;
  before(async () => {
    db = await openDatabase('mysql-flow-remark');
  });
  after(async () => db.close());

  it('waits for the insert, then marks its job limited; a job of another type stays as it is', async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    const conn = await mysql.createConnection(mysqlDatabaseUrl((await db.rows<{ d: string }>('SELECT DATABASE() AS d'))[0]!.d));
    try {
      await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await conn.query('START TRANSACTION');
      const job = jobInsert({ queue: q, type });
      const other = jobInsert({ queue: q, type: `${type} ` });
      await db.s.jobInsertMany({ jobs: [job, other], tx: conn });
      const set = setTypeLimit(db.s, type, { concurrency: 1 });
      await waitFor(
        async () => {
          const r = await db.rows<{ n: number }>(
            "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db = DATABASE() AND info LIKE 'SELECT id FROM sdj_flow_locks WHERE id = 2%'",
          );
          return Number(r[0]?.n ?? 0) > 0;
        },
        { timeout: 5_000, message: 'the limit waits for the insert' },
      );
      await conn.query('COMMIT');
      await set;
      assert.equal((await mustGet(db.s, job.id)).limited, true);
      assert.equal((await mustGet(db.s, other.id)).limited, false, "'t ' is another type than 't'");
      assert.deepEqual(idsOf(await claim(db.s, q, 10)), [other.id]);
      assert.deepEqual(idsOf((await claimLimited(db.s, q, 10)).rows), [job.id]);
    } finally {
      await conn.end();
    }
  });

  it("keys compare exactly: 'k' and 'k ' are two concurrency groups, and two debounce keys", async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    await setTypeLimit(db.s, type, { concurrency: 1 });
    const ids = [await insertJob(db.s, { queue: q, type, concurrencyKey: 'k' }), await insertJob(db.s, { queue: q, type, concurrencyKey: 'k ' })];
    const r = await claimLimited(db.s, q, 10);
    assert.deepEqual(idsOf(r.rows).sort(), [...ids].sort());
    await completeRows(db.s, r.rows);
    const d = uniqueName('t');
    const a = await db.s.jobInsertMany({ jobs: [jobInsert({ queue: q, type: d, debounceKey: 'k' })] });
    const b = await db.s.jobInsertMany({ jobs: [jobInsert({ queue: q, type: d, debounceKey: 'k ' })] });
    assert.notEqual(a.ids[0], b.ids[0]);
  });
});

describe('mysql flow control: migration 4 over a database at version 3 holding jobs', () => {
  let db: Db;
  const t0 = Date.UTC(2030, 0, 1);
  before(async () => {
    db = await openDatabase('mysql-flow-migration', { migrate: false });
    for (const m of MIGRATIONS.filter((x) => x.version <= 3)) for (const stmt of splitStatements(m.sql)) await db.c.query(stmt);
    await db.c.query(MIGRATIONS_CREATE_LEDGER);
    for (const m of MIGRATIONS.filter((x) => x.version <= 3)) await db.c.query('INSERT INTO sdj_migrations (version, name, applied_at) VALUES (?, ?, 0)', [m.version, m.name]);
    // Rows as version 3 holds them: pending jobs of two types, a finished job holding a unique key.
    const rows: unknown[][] = [];
    for (let i = 1; i <= 300; i++) rows.push([`p${String(i).padStart(5, '0')}`, i % 2 === 0 ? 'sms' : 'mail', 'mq', 'pending', t0 - 1000 + i, t0 - 1000, null, null]);
    rows.push(['done1', 'mail', 'mq', 'completed', t0 - 2000, t0 - 2000, t0 - 500, 'order-1']);
    await db.c.query('INSERT INTO sdj_jobs (id, type, queue, status, run_at, created_at, completed_at, unique_key) VALUES ?', [rows]);
    await db.s.migrate();
  });
  after(async () => db.close());

  it('applies version 4 once: the columns read at their defaults, the tables and indexes exist, a second run changes nothing', async () => {
    assert.deepEqual((await db.rows<{ v: number }>('SELECT version AS v FROM sdj_migrations ORDER BY version')).map((r) => r.v), MIGRATIONS.map((m) => m.version));
    const j = await mustGet(db.s, 'p00001');
    assert.deepEqual([j.limited, j.concurrencyKey, j.rateKey, j.debounceKey], [false, null, null, null]);
    const indexes = async (): Promise<string[]> =>
      (await db.rows<{ k: string }>("SELECT DISTINCT index_name AS k FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'sdj_jobs' ORDER BY k")).map((r) => r.k);
    const before = await indexes();
    for (const k of ['sdj_jobs_claim', 'sdj_jobs_wake', 'sdj_jobs_flow', 'sdj_jobs_debounce', 'sdj_jobs_unique_key']) assert.ok(before.includes(k), k);
    const claimCols = await db.rows<{ c: string }>(
      "SELECT column_name AS c FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'sdj_jobs' AND index_name = 'sdj_jobs_claim' ORDER BY seq_in_index",
    );
    assert.deepEqual(claimCols.map((r) => r.c), ['queue', 'status', 'limited', 'priority', 'run_at', 'id']);
    const m4 = MIGRATIONS.find((m) => m.version === 4)!;
    for (const stmt of splitStatements(m4.sql)) await db.c.query(stmt);
    assert.deepEqual(await indexes(), before, 'a second run changes nothing');
    const [n] = await db.rows<{ n: number }>('SELECT COUNT(*) AS n FROM sdj_flow_locks');
    assert.equal(Number(n?.n), 2);
  });

  it('the old jobs carry on: a type limit marks the old pending jobs, each claim takes its own, and a dedup window sees the old finished job', async () => {
    await setTypeLimit(db.s, 'sms', { concurrency: 2 });
    assert.equal((await mustGet(db.s, 'p00002')).limited, true);
    assert.equal((await mustGet(db.s, 'p00001')).limited, false);
    const plain = await claim(db.s, 'mq', 500);
    assert.equal(plain.length, 150);
    assert.ok(plain.every((r) => r.type === 'mail'));
    const limited = await claimLimited(db.s, 'mq', 10);
    assert.deepEqual([idsOf(limited.rows), limited.saturated], [['p00002', 'p00004'], true]);
    db.at.now = t0;
    const dup = jobInsert({ uniqueKey: 'order-1', uniqueForMs: 1_000 });
    assert.deepEqual(await db.s.jobInsertMany({ jobs: [dup], onConflict: 'existing' }), { inserted: [], ids: ['done1'] });
    await setQueueLimit(db.s, 'mq', { concurrency: 100 });
    assert.deepEqual(await claim(db.s, 'mq', 10), [], 'a queue limit takes the queue from the ordinary claim');
    const late = await completedJob(db.s, { queue: 'mq2' });
    assert.equal(late.limited, false);
  });
});
