/**
 * MySQL/MariaDB driver: flow control as only this driver does it — the plans (the ordinary claim
 * keeps reading its claim index, over (queue, 'pending', limited = 0); the limited claim finds a
 * queue's groups by a loose scan of `sdj_jobs_wake` and reads a job or two per group through
 * `sdj_jobs_flow`, so a full or rate-blocked group's backlog is never read), the round trips of a
 * limited claim (its read before the flow lock, the claim that takes the lock only if no claim,
 * limit change or pause came between, and what it does when one did; a job cancelled or paused
 * or a limit lowered between the read and the claim), a read that keeps only the
 * first open groups, rows held by other transactions, the lock that orders a type limit's
 * appearance with an insert in flight, the `limited` mark across limit changes and retries, exact
 * keys (no trailing-space padding), retention of rate state, and migration 4 over a database at
 * version 3 holding jobs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { splitStatements } from '../../src/storage/mysql/migrate.js';
import { MIGRATIONS } from '../../src/storage/mysql/migrations.generated.js';
import { MysqlStorage, type MysqlPoolLike, type MysqlQueryOptions } from '../../src/storage/mysql/mysql-storage.js';
import { MIGRATIONS_CREATE_LEDGER } from '../../src/storage/mysql/queries/admin.js';
import { CLAIM_LIMITED_LOCK, FLOW_LOCK, claimLimitedRead } from '../../src/storage/mysql/queries/flow.js';
import { CLAIM_SELECT } from '../../src/storage/mysql/queries/run.js';
import type { Storage } from '../../src/storage/storage.js';
import { claimLimited, completeRows, idsOf, setQueueLimit, setTypeLimit } from '../conformance/flow-helpers.js';
import { applied, cancelledJob, claim, completedJob, failedJob, fenceOf, insertJob, jobInsert, mustGet, pausedJob, runningJob, uniqueName, waitingJob } from '../helpers/factories.js';
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
    /** A storage on a pool of its own whose statements go through `hook` (SQL text) before they are sent. */
    hooked(hook: (sql: string) => void | Promise<void>): MysqlStorage {
      const pool = mysql.createPool({ uri: url, connectionLimit: 2 });
      pools.push(pool);
      const wrap = (q: (o: MysqlQueryOptions) => Promise<[unknown, unknown]>) => async (o: MysqlQueryOptions) => {
        await hook(o.sql);
        return q(o);
      };
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
    const read = claimLimitedRead(db.at.now, [{ name: q, limit: 10 }], 10);
    const plan = await explain(db.c, read.sql, read.values);
    const groupScan = plan.filter((r) => r.key === 'sdj_jobs_wake');
    assert.ok(groupScan.some((r) => /Using index for group-by/.test(r.Extra ?? '')), JSON.stringify(plan));
    assert.ok(plan.filter((r) => r.key === 'sdj_jobs_flow').length >= 2, JSON.stringify(plan));
    for (const r of plan.filter((x) => x.table === 'f' || x.key === 'sdj_jobs_flow')) assert.doesNotMatch(r.Extra ?? '', /filesort/);
  });

  it("reads as many rows with a backlog of 20,000 behind a full key and a rate-blocked key as without it, and the cold key's job is claimed", async () => {
    const cold = await insertJob(db.s, { queue: q, type: 'keyed', concurrencyKey: 'cold' });
    // On the storages' clock (their jobs are ready at it); both forms: the first open groups ranked, every group.
    const forms = [10, null].map((groups) => claimLimitedRead(db.at.now, [{ name: q, limit: 10 }], groups));
    const withBacklog: number[] = [];
    for (const read of forms) withBacklog.push(await rowsRead(db.c, read.sql, read.values));
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
      for (const [i, read] of forms.entries()) {
        const without = await rowsRead(small.c, read.sql, read.values);
        assert.ok(withBacklog[i]! <= without + 10, `rows read: ${withBacklog[i]} with the backlog, ${without} without`);
        // A few dozen: the groups, a probe or two each, and the work tables of the ranking.
        assert.ok(withBacklog[i]! < 150, `rows read: ${withBacklog[i]}`);
      }
    } finally {
      await small.close();
    }
    const r = await claimLimited(db.s, q, 10);
    // T = 1 h, catch-up c = 1 s: the start left tat at T − c from then.
    assert.deepEqual([idsOf(r.rows), r.saturated, r.retryInMs], [[cold], true, 3_599_000]);
  });
});

describe('mysql flow control: round trips and the flow lock', () => {
  let db: Db;
  before(async () => {
    db = await openDatabase('mysql-flow-round-trips');
  });
  after(async () => db.close());

  /** A storage on a pool of its own and the statements it sent during `f` (isolation-level statements left out). */
  function counted() {
    const sqls: string[] = [];
    const s = db.hooked((sql) => void sqls.push(sql));
    const count = async (f: () => Promise<unknown>): Promise<string[]> => {
      sqls.length = 0;
      await f();
      return sqls.filter((x) => !x.startsWith('SET TRANSACTION'));
    };
    return { s, count };
  }

  it('a limited claim: 1 statement when nothing is claimed; 5 when it claims (read, start, lock of the rows, claim, commit), one more for a rate row the read did not see', async () => {
    const { s, count } = counted();
    const q = uniqueName('q');
    await setTypeLimit(db.s, 'rt-conc', { concurrency: 5 });
    await setTypeLimit(db.s, 'rt-rate', { rateLimit: 10, ratePeriodMs: 1_000 });
    assert.equal((await count(() => insertJob(s, { queue: q, type: 'rt-conc' }))).length, 1, 'a plain insert is one statement');
    const claimed = await count(() => claimLimited(s, q, 1));
    assert.equal(claimed.length, 5, claimed.join('\n'));
    assert.match(claimed[0]!, /^SELECT 'n'/, 'the read comes first, outside the transaction');
    assert.match(claimed[3]!, /^UPDATE sdj_flow_locks l JOIN sdj_jobs j/, 'the flow lock is taken by the claim itself');
    await insertJob(db.s, { queue: q, type: 'rt-rate' });
    assert.equal((await count(() => claimLimited(s, q, 1))).length, 6, 'the first start of a group upserts its rate row');
    assert.deepEqual(await count(() => claimLimited(s, q, 1)), [claimLimitedRead(null, [{ name: q, limit: 1 }], null).sql], 'nothing ready: the read alone');
    // The group's row is recent now: the claim statement moves it.
    await db.s.jobInsertMany({ jobs: [0, 1].map(() => jobInsert({ queue: q, type: 'rt-rate' })) });
    assert.equal((await count(() => claimLimited(s, q, 1))).length, 5);
    // A group with room for several jobs: one more read for the rest of the group.
    await db.s.jobInsertMany({ jobs: [0, 1, 2, 3].map(() => jobInsert({ queue: q, type: 'rt-conc' })) });
    const n = await count(async () => assert.equal((await claimLimited(s, q, 10)).rows.length, 4));
    assert.equal(n.length, 6);
  });

  it('a claim overtaken between its read and its claim by another claim of its concurrency group reads the state again under the lock, and the limit holds', async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    await setTypeLimit(db.s, type, { concurrency: 1 });
    // Two flow groups of one concurrency group (key k, rate keys x and y).
    const [first] = await insertEachOf(db.s, 1, { queue: q, type, concurrencyKey: 'k', rateKey: 'x' });
    const [second] = await insertEachOf(db.s, 1, { queue: q, type, concurrencyKey: 'k', rateKey: 'y' });
    let overtake = true;
    const sqls: string[] = [];
    const s = db.hooked(async (sql) => {
      sqls.push(sql);
      if (overtake && sql.startsWith('UPDATE sdj_flow_locks l JOIN')) {
        overtake = false;
        // The first job is held by the claim in flight: the other claim skips its group and takes the second.
        const inner = await claimLimited(db.s, q, 10);
        assert.deepEqual([idsOf(inner.rows), inner.retryInMs], [[second], 1], 'a claim that met a held row asks to be called again soon');
      }
    });
    const r = await claimLimited(s, q, 10);
    assert.deepEqual([r.rows, r.saturated], [[], true], 'the group is full once the other claim committed');
    assert.ok(sqls.includes(FLOW_LOCK), 'the claim took the lock');
    assert.deepEqual(sqls.filter((x) => x.startsWith("SELECT 'n'")).map((x) => x.includes("'h'")), [true, false], 'the read, then the state alone under the lock');
    assert.deepEqual([(await mustGet(db.s, first!)).status, (await mustGet(db.s, second!)).status], ['pending', 'running']);
  });

  it('a limit change or a pause between the read and the claim is seen by the state read under the lock', async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    await setTypeLimit(db.s, type, { concurrency: 5 });
    const [job] = await insertEachOf(db.s, 1, { queue: q, type });
    let pause = true;
    const s = db.hooked(async (sql) => {
      if (pause && sql.startsWith('UPDATE sdj_flow_locks l JOIN')) {
        pause = false;
        await db.s.queueSetPaused({ queue: q, paused: true });
      }
    });
    assert.deepEqual(await claimLimited(s, q, 10), { rows: [], retryInMs: null, saturated: false }, 'paused after the read: nothing claimed');
    await db.s.queueSetPaused({ queue: q, paused: false });
    // Another type's limit changes after the read: the claim takes the lock, reads the state
    // again, and the state still allows the job it holds.
    let changes = 1;
    const sqls: string[] = [];
    const t = db.hooked(async (sql) => {
      sqls.push(sql);
      if (changes > 0 && sql.startsWith('UPDATE sdj_flow_locks l JOIN')) {
        changes--;
        await setTypeLimit(db.s, uniqueName('t'), { concurrency: 1 });
      }
    });
    assert.deepEqual(idsOf((await claimLimited(t, q, 10)).rows), [job]);
    assert.deepEqual(sqls.filter((x) => x.startsWith("SELECT 'n'")).map((x) => x.includes("'h'")), [true, false], 'the read, then the state alone under the lock');
    assert.ok(sqls.includes(FLOW_LOCK));
    assert.equal((await mustGet(db.s, job!)).status, 'running');
  });
});

/** Inserts `n` jobs one statement each (ids in insertion order). */
async function insertEachOf(s: Storage, n: number, fields: Parameters<typeof jobInsert>[0]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await insertJob(s, fields));
  return ids;
}

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

describe('mysql flow control: retention and the rate state', () => {
  let db: Db;
  before(async () => {
    db = await openDatabase('mysql-flow-rate-prune');
  });
  after(async () => db.close());

  it("keeps a rate row whose tat passed by less than a minute: a claim whose now was read a little before retention's still sees it", async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    // T = 50 ms: an idle group starts two at once (catch-up), the second moving tat to t + 50.
    await setTypeLimit(db.s, type, { rateLimit: 1, ratePeriodMs: 50 });
    const ids = await Promise.all([0, 1, 2].map(() => insertJob(db.s, { queue: q, type })));
    const t = db.at.now;
    assert.equal((await claimLimited(db.s, q, 10)).rows.length, 1);
    assert.equal((await claimLimited(db.s, q, 10)).rows.length, 1);
    // Retention with an age set (a call with none does nothing at all).
    const prune = async (): Promise<void> => void (await db.s.jobPrune({ olderThanMs: { completed: 86_400_000, failed: null, cancelled: null }, limit: 100 }));
    const tat = async (): Promise<number[]> => (await db.rows<{ tat: number }>('SELECT tat FROM sdj_rate_state WHERE name = ?', [type])).map((r) => Number(r.tat));
    assert.deepEqual(await tat(), [t + 50]);
    // Retention runs with its now 10 ms past the tat; a claim whose now is 2 ms before the tat follows.
    db.at.now = t + 60;
    await prune();
    assert.deepEqual(await tat(), [t + 50], 'the row is kept');
    db.at.now = t + 48;
    const r = await claimLimited(db.s, q, 10);
    assert.deepEqual([r.rows.length, r.retryInMs], [0, 2], 'the third start waits for t + 50');
    db.at.now = t + 50;
    assert.deepEqual(idsOf((await claimLimited(db.s, q, 10)).rows).length, 1);
    // A minute later, retention deletes it.
    db.at.now = t + 100 + 60_001;
    await prune();
    assert.deepEqual(await tat(), []);
    assert.equal(ids.length, 3);
  });
});

describe('mysql flow control: a read that keeps only the first open groups', () => {
  let db: Db;
  before(async () => {
    db = await openDatabase('mysql-flow-cutoff');
  });
  after(async () => db.close());

  /** The reads (`claimLimitedRead`) among statements, and whether each ranked the groups. */
  const reads = (sqls: string[]): boolean[] => sqls.filter((x) => x.startsWith("SELECT 'n'")).map((x) => x.includes('ROW_NUMBER()'));

  it('claims the first groups in claim order, skipping full and blocked ones, as a read of every group would', async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    await setTypeLimit(db.s, type, { concurrency: 1 });
    // 40 groups of one job each, in claim order: the first read of a queue reads every group,
    // the next ones (more than a few groups seen) the first open ones only.
    const keyed: string[] = [];
    for (let i = 0; i < 40; i++) keyed.push(await insertJob(db.s, { queue: q, type, concurrencyKey: `k${String(i).padStart(2, '0')}` }));
    const sqls: string[] = [];
    const s = db.hooked((sql) => void sqls.push(sql));
    const first = await claimLimited(s, q, 5);
    assert.deepEqual([idsOf(first.rows), first.saturated], [keyed.slice(0, 5), false]);
    // Second jobs for the five running keys, ahead of every other job in claim order: full groups first.
    for (let i = 0; i < 5; i++) await insertJob(db.s, { queue: q, type, concurrencyKey: `k0${i}`, priority: 5 });
    const next = await claimLimited(s, q, 5);
    assert.deepEqual([idsOf(next.rows), next.saturated], [keyed.slice(5, 10), true]);
    assert.deepEqual(reads(sqls), [false, true]);
  });

  it('reads every group when the first ones could not fill the claim (a group left full by a start of its concurrency key)', async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    await setTypeLimit(db.s, type, { concurrency: 1 });
    for (let i = 0; i < 40; i++) await insertJob(db.s, { queue: q, type, concurrencyKey: `f${i}` });
    const sqls: string[] = [];
    const s = db.hooked((sql) => void sqls.push(sql));
    assert.equal((await claimLimited(s, q, 1)).rows.length, 1, 'a first claim: the queue has many groups');
    // Flow groups (a, x0) … (a, x29) ahead of the others, all of concurrency key a, then (b, z).
    const ax = await insertEach(db.s, Array.from({ length: 30 }, (_, i) => ({ queue: q, type, concurrencyKey: 'a', rateKey: `x${i}`, priority: 5 })));
    const [bz] = await insertEach(db.s, [{ queue: q, type, concurrencyKey: 'b', rateKey: 'z', priority: 4 }]);
    sqls.length = 0;
    const r = await claimLimited(s, q, 2);
    assert.deepEqual([idsOf(r.rows), r.saturated], [[ax[0], bz], true]);
    assert.deepEqual(reads(sqls), [true, true], 'the first open groups (all of key a), then every group');
    assert.equal((await mustGet(db.s, ax[1]!)).status, 'pending');
  });
});

/** Inserts jobs one statement each (ids in insertion order). */
async function insertEach(s: Storage, jobs: Parameters<typeof jobInsert>[0][]): Promise<string[]> {
  const ids: string[] = [];
  for (const j of jobs) ids.push(await insertJob(s, j));
  return ids;
}

describe('mysql flow control: the limited mark follows the type limit', () => {
  let db: Db;
  before(async () => {
    db = await openDatabase('mysql-flow-marks');
  });
  after(async () => db.close());

  /** `limited` and whether `flow_group` is set, per id. */
  async function marks(ids: string[]): Promise<[boolean, boolean][]> {
    const rows = await db.rows<{ id: string; limited: number; g: number }>('SELECT id, limited, flow_group IS NOT NULL AS g FROM sdj_jobs WHERE id IN (?)', [ids]);
    const by = new Map(rows.map((r) => [r.id, [Number(r.limited) === 1, Number(r.g) === 1] as [boolean, boolean]]));
    return ids.map((id) => by.get(id)!);
  }

  it('limitSet and limitDelete re-mark every job of the type that is not finished: pending, running, waiting and paused', async () => {
    const type = uniqueName('t');
    const live = [
      await insertJob(db.s, { type }),
      (await runningJob(db.s, { type })).row.id,
      (await waitingJob(db.s, { type }, { waitSignal: 'go' })).row.id,
      (await pausedJob(db.s, { type })).id,
    ];
    const done = [(await completedJob(db.s, { type })).id, (await failedJob(db.s, { type })).id, (await cancelledJob(db.s, { type })).id];
    const no: [boolean, boolean] = [false, false];
    const yes: [boolean, boolean] = [true, true];
    assert.deepEqual(await marks([...live, ...done]), [no, no, no, no, no, no, no]);
    await setTypeLimit(db.s, type, { concurrency: 1 });
    assert.deepEqual(await marks([...live, ...done]), [yes, yes, yes, yes, no, no, no]);
    assert.equal(await db.s.limitDelete({ scope: 'type', name: type }), true);
    assert.deepEqual(await marks([...live, ...done]), [no, no, no, no, no, no, no]);
  });

  it('a job going back to pending is limited exactly when its type has a limit then: jobRetry, jobRetryMany, a retry from the failed step, a failed attempt rescheduled', async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    const f1 = (await failedJob(db.s, { type, queue: q })).id;
    const f2 = (await failedJob(db.s, { type, queue: q })).id;
    const f3 = (await failedJob(db.s, { type, queue: q })).id;
    const c1 = (await cancelledJob(db.s, { type, queue: q })).id;
    const run = await runningJob(db.s, { type, queue: q });
    await setTypeLimit(db.s, type, { concurrency: 10 });
    assert.deepEqual((await marks([f1, f2, f3, c1])).map((m) => m[0]), [false, false, false, false], 'finished jobs keep their mark');
    await db.s.jobRetry({ id: f1 });
    await db.s.jobRetry({ id: f2, fromFailedStep: true });
    await db.s.jobRetryMany({ ids: [f3, c1] });
    assert.deepEqual(applied(await db.s.jobFinishMany({ items: [{ ...fenceOf(run.row), outcome: 'retry', error: 'again', delayMs: 0 }] })), [true]);
    const back = [f1, f2, f3, c1, run.row.id];
    assert.deepEqual(await marks(back), back.map(() => [true, true]));
    assert.deepEqual(await claim(db.s, q, 10), [], 'not for the ordinary claim');
    const limited = await claimLimited(db.s, q, 10);
    assert.deepEqual(idsOf(limited.rows).sort(), [...back].sort());

    // And the other way: the limit removed while they ran, they go back to pending unlimited.
    assert.equal(await db.s.limitDelete({ scope: 'type', name: type }), true);
    const rescheduled = limited.rows[0]!;
    const failing = limited.rows[1]!;
    assert.deepEqual(applied(await db.s.jobFinishMany({ items: [{ ...fenceOf(rescheduled), outcome: 'retry', error: 'again', delayMs: 0 }, { ...fenceOf(failing), outcome: 'failed', error: 'x' }] })), [true, true]);
    await db.s.jobRetry({ id: failing.id });
    assert.deepEqual(await marks([rescheduled.id, failing.id]), [[false, false], [false, false]]);
    assert.deepEqual(idsOf(await claim(db.s, q, 10)).sort(), [rescheduled.id, failing.id].sort(), 'ordinary jobs again');
  });
});

describe('mysql flow control: a held row', () => {
  let db: Db;
  before(async () => {
    db = await openDatabase('mysql-flow-held');
  });
  after(async () => db.close());

  it('a claim that finds its pick held by another transaction leaves that flow group for this call, and asks to be called again in 1 ms', async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    await setTypeLimit(db.s, type, { concurrency: 2 });
    const [a1, a2] = await insertEachOf(db.s, 2, { queue: q, type, concurrencyKey: 'a' });
    const [b1] = await insertEachOf(db.s, 1, { queue: q, type, concurrencyKey: 'b' });
    const conn = await mysql.createConnection(mysqlDatabaseUrl((await db.rows<{ d: string }>('SELECT DATABASE() AS d'))[0]!.d));
    try {
      await conn.query('START TRANSACTION');
      await conn.query('SELECT id FROM sdj_jobs WHERE id = ? FOR UPDATE', [a1]);
      // a1, a2 and b1 are locked in one statement: a1 is skipped, the others are the claim's.
      const r = await claimLimited(db.s, q, 10);
      assert.deepEqual([idsOf(r.rows), r.retryInMs], [[a2, b1], 1]);
      await conn.query('COMMIT');
      assert.deepEqual(idsOf((await claimLimited(db.s, q, 10)).rows), [a1]);
      // A group whose first job is held gives nothing more in that call, though it has room.
      await completeRows(db.s, [...r.rows, await mustGet(db.s, a1!)]);
      const [a3, a4] = await insertEachOf(db.s, 2, { queue: q, type, concurrencyKey: 'a' });
      await conn.query('START TRANSACTION');
      await conn.query('SELECT id FROM sdj_jobs WHERE id = ? FOR UPDATE', [a3]);
      const held = await claimLimited(db.s, q, 1);
      assert.deepEqual([held.rows, held.retryInMs], [[], 1]);
      await conn.query('COMMIT');
      assert.deepEqual(idsOf((await claimLimited(db.s, q, 10)).rows), [a3, a4]);
    } finally {
      await conn.end();
    }
  });
});

describe('mysql flow control: changes between the read and the claim', () => {
  let db: Db;
  before(async () => {
    db = await openDatabase('mysql-flow-between');
  });
  after(async () => db.close());

  /** A storage that runs `change` once, just before the claim locks the rows it picked. */
  function changedBeforeLock(change: () => Promise<unknown>): MysqlStorage {
    let pending = true;
    return db.hooked(async (sql) => {
      if (pending && sql === CLAIM_LIMITED_LOCK) {
        pending = false;
        await change();
      }
    });
  }

  it('a picked job cancelled or paused after the read is left as it is, and the claim takes the next job', async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    await setTypeLimit(db.s, type, { concurrency: 1 });
    const [first, second, third] = await insertEachOf(db.s, 3, { queue: q, type });
    const r = await claimLimited(changedBeforeLock(() => db.s.jobCancel({ id: first! })), q, 10);
    assert.ok(!idsOf(r.rows).includes(first!), 'the cancelled job is not claimed');
    assert.equal((await mustGet(db.s, first!)).status, 'cancelled');
    await completeRows(db.s, r.rows);
    const again = await claimLimited(changedBeforeLock(() => db.s.jobPause({ id: second! })), q, 10);
    assert.ok(!idsOf(again.rows).includes(second!), 'the paused job is not claimed');
    assert.equal((await mustGet(db.s, second!)).status, 'paused');
    await completeRows(db.s, again.rows);
    assert.deepEqual(idsOf((await claimLimited(db.s, q, 10)).rows), [third], 'the limit still admits one job');
  });

  it('a concurrency limit lowered after the read holds: the claim starts no more jobs than the new limit', async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    await setTypeLimit(db.s, type, { concurrency: 3 });
    const ids = await insertEachOf(db.s, 3, { queue: q, type });
    const r = await claimLimited(changedBeforeLock(() => setTypeLimit(db.s, type, { concurrency: 1 })), q, 10);
    assert.deepEqual(idsOf(r.rows), [ids[0]], 'one job: the limit as it is when the claim commits');
    assert.deepEqual((await db.rows<{ n: number }>("SELECT COUNT(*) AS n FROM sdj_jobs WHERE type = ? AND status = 'running'", [type]))[0]!.n, 1);
  });
});
