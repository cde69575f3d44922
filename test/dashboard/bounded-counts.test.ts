/**
 * The dashboard's counts stay bounded, on every driver: the overview, the live snapshot and the
 * queues read `queue.stats({ cap })` and `queue.queues({ cap })`, say how far they counted
 * (`countCap`), and a count above it reads `cap + 1` and shows as `100,000+`; below it every
 * count is exact. A feed made with a small cap shows the capped side without a million jobs.
 * The cap is checked by the public methods. And the statements behind the overview read indexes
 * only: each driver's plan of them (EXPLAIN) is asserted over a few thousand jobs — no scan of
 * the jobs table, on PostgreSQL no sequential scan of `sdj_jobs_history`.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { Hono } from 'hono';
import pg from 'pg';
import { dashboard } from '../../src/dashboard/index.js';
import { COUNT_CAP, LiveFeed } from '../../src/dashboard/live-feed.js';
import { resolveOptions } from '../../src/dashboard/options.js';
import { addReadRoutes } from '../../src/dashboard/read-routes.js';
import { countText } from '../../src/dashboard/ui/count-text.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { MysqlStorage } from '../../src/storage/mysql/mysql-storage.js';
import { jobCountCapped, queueCountsCapped } from '../../src/storage/mysql/queries/counts.js';
import type { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { JOB_COUNT_CAPPED as PG_COUNTS, QUEUE_SUMMARY_CAPPED as PG_SUMMARY } from '../../src/storage/postgres/queries/counts.js';
import { JOB_COUNT_CAPPED as SQLITE_COUNTS, QUEUE_COUNTS_CAPPED, QUEUE_NAMES } from '../../src/storage/sqlite/queries/counts.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../../src/storage/sqlite/migrations.generated.js';
import { cancelledJob, completedJob, failedJob, insertJob, pausedJob, uniqueName } from '../helpers/factories.js';
import { mysql, type MysqlClient } from '../helpers/mysql-client.js';
import { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';
import { makePostgresStorage, PG_URL } from '../helpers/postgres-storage.js';
import { driverSelected, storageMatrix, type TestStorage } from '../helpers/storages.js';

const ORIGIN = 'http://dash.test';

/** GET `path` from a fetch handler; the parsed body. */
async function getBody<T>(fetch: (r: Request) => Promise<Response> | Response, path: string): Promise<T> {
  const res = await fetch(new Request(`${ORIGIN}${path}`));
  assert.equal(res.status, 200, path);
  return (await res.json()) as T;
}

/** The first live snapshot a fetch handler streams. */
async function firstSnapshot<T>(fetch: (r: Request) => Promise<Response> | Response): Promise<T> {
  const ac = new AbortController();
  const res = await fetch(new Request(`${ORIGIN}/api/live`, { signal: ac.signal }));
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (!/event: snapshot\ndata: .*\n\n/.test(text)) {
      const { value, done } = await reader.read();
      assert.equal(done, false, 'the stream ended before a snapshot');
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    ac.abort();
    await reader.cancel().catch(() => undefined);
  }
  return JSON.parse(/data: (.*)\n/.exec(text)![1]!) as T;
}

/** Queue rows without their ages (which grow between two reads). */
function noAge(rows: object[]): object[] {
  return rows.map((r) => ({ ...r, oldestPendingAgeMs: undefined }));
}

interface CountsBody {
  stats: Record<string, number>;
  queues: { name: string; pending: number; failed: number; pausedJobs: number }[];
  countCap: number;
}

for (const [name, make] of storageMatrix()) {
  describe(`dashboard bounded counts (${name})`, () => {
    let ts: TestStorage;
    let queue: Queue;
    const q = uniqueName('dash-cap');
    before(async () => {
      ts = await make(`dashboard-bounded-${name}`);
      queue = new Queue(ts.storage);
      const s = ts.storage;
      for (let i = 0; i < 4; i++) await completedJob(s, { queue: q });
      for (let i = 0; i < 6; i++) await failedJob(s, { queue: q });
      await cancelledJob(s, { queue: q });
      for (let i = 0; i < 2; i++) await pausedJob(s, { queue: q });
      for (let i = 0; i < 5; i++) await insertJob(s, { queue: q });
    });
    after(async () => ts.cleanup());

    it('a count above the cap reads cap + 1 and shows as "cap+": overview, queues and live snapshot', async () => {
      const feed = new LiveFeed(queue, 250, 3);
      const app = new Hono({ strict: false });
      addReadRoutes(app, queue, resolveOptions({ insecure: true }), feed);
      const fetch = (r: Request): Promise<Response> => Promise.resolve(app.fetch(r));
      try {
        const overview = await getBody<CountsBody>(fetch, '/api/overview');
        assert.equal(overview.countCap, 3);
        assert.deepEqual(overview.stats, { pending: 4, running: 0, waiting: 0, completed: 4, failed: 4, cancelled: 1, paused: 2 });
        assert.deepEqual(
          Object.fromEntries(Object.entries(overview.stats).map(([k, v]) => [k, countText(v, overview.countCap)])),
          { pending: '3+', running: '0', waiting: '0', completed: '3+', failed: '3+', cancelled: '1', paused: '2' },
        );
        const row = overview.queues.find((r) => r.name === q);
        assert.deepEqual([row?.pending, row?.failed, row?.pausedJobs], [4, 4, 2]);
        const queues = await getBody<{ queues: CountsBody['queues']; countCap: number }>(fetch, '/api/queues');
        assert.equal(queues.countCap, 3);
        assert.deepEqual(noAge(queues.queues), noAge(overview.queues));
        const snap = await firstSnapshot<CountsBody>(fetch);
        assert.equal(snap.countCap, 3);
        assert.deepEqual(snap.stats, overview.stats);
      } finally {
        feed.close();
      }
    });

    it('below the cap every count is exact: the default dashboard counts up to 100,000', async () => {
      const ui = dashboard(queue, { insecure: true });
      try {
        const overview = await getBody<CountsBody>((r) => ui.fetch(r), '/api/overview');
        assert.equal(overview.countCap, COUNT_CAP);
        assert.equal(COUNT_CAP, 100_000);
        assert.deepEqual(overview.stats, await queue.stats());
        assert.deepEqual(noAge(overview.queues), noAge(JSON.parse(JSON.stringify(await queue.queues())) as object[]));
        assert.equal(countText(100_000, COUNT_CAP), '100,000');
        assert.equal(countText(100_001, COUNT_CAP), '100,000+');
        const snap = await firstSnapshot<CountsBody>((r) => ui.fetch(r));
        assert.deepEqual([snap.countCap, snap.stats], [COUNT_CAP, overview.stats]);
      } finally {
        ui.close();
      }
    });

    it('queue.stats({ cap }) and queue.queues({ cap }) cap as documented and refuse a bad cap', async () => {
      const exact = await queue.stats({ queue: q });
      const two = await queue.stats({ queue: q, cap: 2 });
      assert.deepEqual(two, Object.fromEntries(Object.entries(exact).map(([k, v]) => [k, Math.min(v, 3)])));
      assert.equal((await queue.queues({ cap: 0 })).find((r) => r.name === q)?.failed, 1);
      for (const cap of [-1, 1.5, '10', Number.NaN]) {
        await assert.rejects(queue.stats({ cap: cap as number }), InvalidArgumentError, `stats cap ${String(cap)}`);
        await assert.rejects(queue.queues({ cap: cap as number }), InvalidArgumentError, `queues cap ${String(cap)}`);
      }
      await assert.rejects(queue.queues({ limit: 3 } as never), InvalidArgumentError);
    });
  });
}

if (driverSelected('sqlite')) {
  describe('dashboard bounded counts: SQLite plans', () => {
    it('every read of sdj_jobs behind the overview goes through an index', () => {
      const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
      const db = new Database(':memory:');
      try {
        for (const m of SQLITE_MIGRATIONS) db.exec(m.sql);
        for (const [label, sql, params] of [
          ['counts', SQLITE_COUNTS, { cap1: 100_001 }],
          ['queue names', QUEUE_NAMES, {}],
          ['queue counts', QUEUE_COUNTS_CAPPED, { cap1: 100_001, queue: 'q' }],
        ] as const) {
          const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail);
          const reads = plan.filter((d) => /\bsdj_jobs\b/.test(d));
          assert.ok(reads.length > 0, label);
          for (const d of reads) assert.match(d, /USING (COVERING )?INDEX sdj_jobs_/, `${label}: ${plan.join('; ')}`);
        }
      } finally {
        db.close();
      }
    });
  });
}

if (driverSelected('postgres')) {
  describe('dashboard bounded counts: PostgreSQL plans', () => {
    let ts: TestStorage;
    let c: pg.Client;
    let schemaSql: string;
    before(async () => {
      ts = await makePostgresStorage('dashboard-bounded-plans');
      schemaSql = `"${(ts.storage as PostgresStorage).schema}"`;
      c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      // 20,000 jobs: mostly completed (some sub-jobs), every 50th failed, every 300th cancelled, the last 500 pending.
      await c.query(`
INSERT INTO ${schemaSql}.sdj_jobs (id, type, queue, status, run_at, created_at, completed_at, parent_id, last_error)
SELECT lpad(to_hex(i), 12, '0'), 'mail', 'plan-q' || (i % 5),
  CASE WHEN i > 19500 THEN 'pending' WHEN i % 50 = 0 THEN 'failed' WHEN i % 300 = 1 THEN 'cancelled' ELSE 'completed' END,
  1000 + i, 1000 + i, CASE WHEN i <= 19500 THEN 2000 + i END, CASE WHEN i % 10 = 3 THEN lpad(to_hex(i - 1), 12, '0') END,
  CASE WHEN i % 50 = 0 THEN 'timeout' END
FROM generate_series(1, 20000) i`);
      await c.query(`VACUUM ANALYZE ${schemaSql}.sdj_jobs_live`);
      await c.query(`VACUUM ANALYZE ${schemaSql}.sdj_jobs_history`);
    });
    after(async () => {
      await c.end();
      await ts.cleanup();
    });

    async function plan(sql: string, values: unknown[]): Promise<string> {
      const r = await c.query({ text: `EXPLAIN (COSTS OFF) ${sql.replaceAll('{s}', schemaSql)}`, values });
      return r.rows.map((x: Record<string, string>) => x['QUERY PLAN']).join('\n');
    }

    it('the counts and the queue summary read history only through its indexes: no sequential scan of sdj_jobs_history', async () => {
      for (const [label, text] of [
        ['counts', await plan(PG_COUNTS, [100_001])],
        ['queue summary', await plan(PG_SUMMARY, [null, 100_001])],
      ] as const) {
        assert.doesNotMatch(text, /Seq Scan on sdj_jobs_history/, `${label}:\n${text}`);
        assert.match(text, /Index Only Scan using sdj_jobs_history_failed_queue/, `${label}:\n${text}`);
        // The 500 pending jobs of the live partition may be read by a sequential scan and sorted:
        // for so few rows the planner is free to prefer it (no plan of the live partition is asserted).
      }
      assert.match(await plan(PG_COUNTS, [100_001]), /Index Only Scan using sdj_jobs_prune/, 'completed roots from the prune index');
      const counts = await ts.storage.jobCountByStatusCapped({ cap: 100_000 });
      assert.deepEqual(counts, await ts.storage.jobCountByStatus({}));
    });
  });
}

if (driverSelected('mysql')) {
  describe('dashboard bounded counts: MySQL/MariaDB plans', () => {
    let db: string;
    let s: MysqlStorage;
    let c: MysqlClient;
    before(async () => {
      db = await createTestDatabase('dashboard-bounded-plans');
      s = new MysqlStorage(mysqlDatabaseUrl(db), { connectionLimit: 3 });
      await s.migrate();
      c = await mysql.createConnection(mysqlDatabaseUrl(db));
      const rows: unknown[][] = [];
      for (let i = 1; i <= 6000; i++) {
        const status = i > 5500 ? 'pending' : i % 50 === 0 ? 'failed' : i % 300 === 1 ? 'cancelled' : 'completed';
        rows.push([i.toString(16).padStart(12, '0'), 'mail', `plan-q${i % 5}`, status, 1000 + i, 1000 + i, i <= 5500 ? 2000 + i : null]);
      }
      for (let i = 0; i < rows.length; i += 1000) {
        await c.query('INSERT INTO sdj_jobs (id, type, queue, status, run_at, created_at, completed_at) VALUES ?', [rows.slice(i, i + 1000)]);
      }
      await c.query('ANALYZE TABLE sdj_jobs');
    });
    after(async () => {
      await c.end();
      await s.close();
      await dropTestDatabase(db);
    });

    it('every count is one range of a status or queue-and-status index, read in the index alone', async () => {
      for (const [label, st, key] of [
        ['counts', jobCountCapped(100_001), 'sdj_jobs_wake'],
        ['queue counts', queueCountsCapped(['plan-q0', 'plan-q1'], 100_001, null), 'sdj_jobs_claim'],
      ] as const) {
        const [rows] = await c.query(`EXPLAIN ${st.sql}`, st.values);
        const reads = (rows as { table: string | null; type: string | null; key: string | null; Extra: string | null }[]).filter((r) => r.table === 'sdj_jobs');
        assert.ok(reads.length >= 6, `${label}: ${JSON.stringify(rows)}`);
        for (const r of reads) {
          assert.equal(r.key, key, `${label}: ${JSON.stringify(r)}`);
          assert.ok(r.type === 'ref' || r.type === 'range', `${label}: ${JSON.stringify(r)}`);
          assert.match(r.Extra ?? '', /Using index/, `${label}: ${JSON.stringify(r)}`);
        }
      }
      assert.deepEqual(await s.jobCountByStatusCapped({ cap: 100_000 }), await s.jobCountByStatus({}));
    });
  });
}
