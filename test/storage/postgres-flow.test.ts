/**
 * PostgreSQL driver: flow control as only PostgreSQL does it — the plans (the ordinary claim keeps
 * its claim index with `limited = 0`, generic plan included; the limited claim's candidate read
 * walks `sdj_jobs_limited` and never reads a full or rate-blocked group's backlog), the round
 * trips of a limited claim, the lock that orders a type limit's appearance with the inserts that
 * mark jobs from it, and migration 4 over a schema at version 3 holding jobs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { PgPoolLike } from '../../src/storage/postgres/connection.js';
import { SCHEMA_PLACEHOLDER } from '../../src/storage/postgres/migrate.js';
import { MIGRATIONS } from '../../src/storage/postgres/migrations.generated.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { MIGRATIONS_CREATE_LEDGER, MIGRATIONS_CREATE_SCHEMA } from '../../src/storage/postgres/queries/admin.js';
import { FLOW_CANDIDATES } from '../../src/storage/postgres/queries/flow.js';
import { TYPE_LIMIT_INSERT, TYPE_LIMITS_LOCK } from '../../src/storage/postgres/queries/limits.js';
import { JOB_CLAIM_MANY, JOB_CLAIM_ONE } from '../../src/storage/postgres/queries/run.js';
import { claim, insertJob, jobInsert, mustGet, uniqueName } from '../helpers/factories.js';
import { makePostgresStorage, PG_URL, pgAdmin, testSchemaName } from '../helpers/postgres-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

/** A node of `EXPLAIN (FORMAT JSON)`. */
interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  'Index Cond'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

/** Every node of a plan tree. */
function nodesOf(n: PlanNode): PlanNode[] {
  return [n, ...(n.Plans ?? []).flatMap(nodesOf)];
}

/** Opens a client on the test server; the caller ends it. */
async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  return c;
}

/** The plan of `sql` (rendered for `q`) as a tree, executed when `analyze`. */
async function planOf(c: pg.Client, sql: string, q: string, values: unknown[], analyze = false): Promise<PlanNode> {
  const r = await c.query(`EXPLAIN (FORMAT JSON${analyze ? ', ANALYZE' : ''}) ${sql.replaceAll('{s}', q)}`, values);
  return (r.rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan;
}

describe('postgres flow control: the ordinary claim keeps its plan', () => {
  let ts: TestStorage;
  let c: pg.Client;
  let q: string;
  before(async () => {
    ts = await makePostgresStorage('pg-flow-claim-plan');
    q = `"${(ts.storage as PostgresStorage).schema}"`;
    c = await client();
    // A backlog of plain jobs and of limited jobs in the same queues, analyzed.
    await c.query(`INSERT INTO ${q}.sdj_jobs (id, type, queue, status, run_at, created_at, limited, concurrency_key)
      SELECT lpad(to_hex(i), 12, '0'), CASE WHEN i % 2 = 0 THEN 'lim' ELSE 'plain' END, 'cq' || (i % 3), 'pending', i, i,
        (i % 2 = 0)::int, 'k' || (i % 50)
      FROM generate_series(1, 6000) i`);
    await c.query(`ANALYZE ${q}.sdj_jobs_live`);
  });
  after(async () => {
    await c.end();
    await ts.cleanup();
  });

  it('claims through sdj_jobs_claim (predicate limited = 0), one index range per queue, custom and generic plans alike', async () => {
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      await c.query(`SET plan_cache_mode = ${mode}`);
      await c.query('DEALLOCATE ALL');
      await c.query(`PREPARE one(bigint, text, int, text, bigint) AS ${JOB_CLAIM_ONE.replaceAll('{s}', q)}`);
      await c.query(`PREPARE many(bigint, text[], int[], text, bigint) AS ${JOB_CLAIM_MANY.replaceAll('{s}', q)}`);
      for (const exec of ["EXECUTE one(NULL, 'cq1', 10, 'w', 60000)", "EXECUTE many(NULL, '{cq0,cq2}', '{5,5}', 'w', 60000)"]) {
        const r = await c.query(`EXPLAIN (FORMAT JSON) ${exec}`);
        const nodes = nodesOf((r.rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan);
        const scans = nodes.filter((n) => n['Relation Name'] === 'sdj_jobs_live' && n['Node Type'] !== 'Tid Scan' && n['Node Type'] !== 'ModifyTable');
        assert.deepEqual(
          scans.map((n) => [n['Node Type'], n['Index Name']]),
          [['Index Scan', 'sdj_jobs_claim']],
          `${mode} ${exec}: ${JSON.stringify(scans)}`,
        );
        assert.ok(nodes.some((n) => n['Node Type'] === 'Tid Scan'), 'rows updated by ctid');
      }
    }
    await c.query('RESET plan_cache_mode');
    await c.query('DEALLOCATE ALL');
    const def = await c.query(`SELECT pg_get_indexdef(i.indexrelid) AS d FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
      JOIN pg_namespace n ON n.oid = x.relnamespace WHERE x.relname = 'sdj_jobs_claim' AND n.nspname = $1`, [q.slice(1, -1)]);
    assert.match((def.rows[0] as { d: string }).d, /\(queue, priority DESC, run_at, id\) WHERE \(\(status = 'pending'::text\) AND \(limited = 0\)\)/);
  });

  it('the ordinary claim takes plain jobs only, and claims them as before', async () => {
    const rows = await claim(ts.storage, 'cq1', 20);
    assert.equal(rows.length, 20);
    assert.ok(rows.every((r) => r.type === 'plain' && !r.limited && r.status === 'running'));
  });
});

describe('postgres flow control: the limited claim', () => {
  let ts: TestStorage;
  let c: pg.Client;
  let q: string;
  const type = 'acct-sync';
  before(async () => {
    ts = await makePostgresStorage('pg-flow-limited-plan');
    q = `"${(ts.storage as PostgresStorage).schema}"`;
    c = await client();
    await ts.storage.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    await ts.storage.limitSet({ scope: 'type', name: 'rated', concurrency: null, rateLimit: 1, ratePeriodMs: 3_600_000 });
    // Key `big` holds a backlog of 3000 ready jobs, keys k1..k20 hold 3 each, and the rated type
    // holds a backlog of 2000 under one rate key.
    await c.query(`INSERT INTO ${q}.sdj_jobs (id, type, queue, status, run_at, created_at, limited, concurrency_key)
      SELECT 'b' || lpad(i::text, 6, '0'), '${type}', 'lq', 'pending', 1, 1, 1, 'big' FROM generate_series(1, 3000) i`);
    await c.query(`INSERT INTO ${q}.sdj_jobs (id, type, queue, status, run_at, created_at, limited, concurrency_key)
      SELECT 's' || lpad(i::text, 6, '0'), '${type}', 'lq', 'pending', 2, 2, 1, 'k' || (i % 20) FROM generate_series(1, 60) i`);
    await c.query(`INSERT INTO ${q}.sdj_jobs (id, type, queue, status, run_at, created_at, limited, rate_key)
      SELECT 'r' || lpad(i::text, 6, '0'), 'rated', 'lq', 'pending', 1, 1, 1, 'only' FROM generate_series(1, 2000) i`);
    await c.query(`ANALYZE ${q}.sdj_jobs_live`);
  });
  after(async () => {
    await c.end();
    await ts.cleanup();
  });

  /** Rows read from the live partition's indexes (the scans that ran) by one execution of the candidate read. */
  async function rowsRead(limit: number): Promise<{ byIndex: Map<string, number>; seq: number }> {
    await c.query('SET jit = off');
    const plan = await planOf(c, FLOW_CANDIDATES, q, [null, ['lq'], [limit]], true);
    const byIndex = new Map<string, number>();
    let seq = 0;
    for (const n of nodesOf(plan)) {
      const read = (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 0);
      if (n['Relation Name'] !== 'sdj_jobs_live' || (n['Actual Loops'] ?? 0) === 0) continue;
      if (n['Node Type'] === 'Seq Scan') seq += 1;
      else byIndex.set(n['Index Name'] ?? n['Node Type'], (byIndex.get(n['Index Name'] ?? n['Node Type']) ?? 0) + read);
    }
    return { byIndex, seq };
  }

  it('walks the groups through sdj_jobs_limited: a few rows per group, whatever the backlog', async () => {
    const { byIndex, seq } = await rowsRead(10);
    assert.equal(seq, 0, 'no sequential scan of the live partition');
    assert.deepEqual([...byIndex.keys()].sort(), ['sdj_jobs_lease', 'sdj_jobs_limited']);
    // 22 groups (big, k0..k19, rated/only): one skip-scan probe each and at most room + 1 jobs each.
    assert.ok(byIndex.get('sdj_jobs_limited')! <= 22 * 3 + 1, `rows read from sdj_jobs_limited: ${byIndex.get('sdj_jobs_limited')}`);
  });

  it("a full group's and a rate-blocked group's backlogs are never read, and do not hide the other groups", async () => {
    const s = ts.storage;
    const first = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: 'lq', limit: 100 }], leaseMs: 600_000 });
    // One per concurrency key (big and k0..k19) and one start of the rate group.
    assert.equal(first.rows.length, 22);
    assert.equal(first.saturated, true);
    const { byIndex } = await rowsRead(10);
    // Every group is now full or blocked: one probe per group and one job per such group at most.
    assert.ok(byIndex.get('sdj_jobs_limited')! <= 22 * 2 + 1, `rows read from sdj_jobs_limited: ${byIndex.get('sdj_jobs_limited')}`);
    const k3 = first.rows.find((r) => r.concurrencyKey === 'k3')!;
    await s.jobFinishMany({ items: [{ jobId: k3.id, workerId: 'w', runCount: k3.runCount, outcome: 'completed', resultJson: null }] });
    const next = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: 'lq', limit: 10 }], leaseMs: 600_000 });
    assert.deepEqual(next.rows.map((r) => r.concurrencyKey), ['k3'], 'the freed key is found behind 5000 held-back jobs');
    assert.equal(next.saturated, true);
    assert.ok(next.retryInMs !== null && next.retryInMs > 3_500_000, 'the rated group reports its next start');
  });

  it('takes four round trips when it claims, three when it claims nothing (BEGIN with the lock, read, claim, COMMIT)', async () => {
    const counted = new pg.Pool({ connectionString: PG_URL, max: 2 });
    let queries = 0;
    const patched = new WeakSet<object>();
    const pool: PgPoolLike = {
      query: (config) => {
        queries++;
        return counted.query(config);
      },
      connect: async () => {
        const cl = await counted.connect();
        if (!patched.has(cl)) {
          patched.add(cl);
          const query = cl.query.bind(cl) as (config: unknown) => Promise<unknown>;
          (cl as unknown as { query: unknown }).query = (config: unknown) => {
            queries++;
            return query(config);
          };
        }
        return cl as unknown as Awaited<ReturnType<PgPoolLike['connect']>>;
      },
      end: () => counted.end(),
    };
    const s = new PostgresStorage(pool, { schema: q.slice(1, -1) });
    try {
      const queue = uniqueName('rt');
      const limitedType = uniqueName('t');
      await s.limitSet({ scope: 'type', name: limitedType, concurrency: 1, rateLimit: null, ratePeriodMs: null });
      await s.jobInsertMany({ jobs: [jobInsert({ queue, type: limitedType }), jobInsert({ queue, type: limitedType })] });
      queries = 0;
      assert.equal((await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 5 }], leaseMs: 60_000 })).rows.length, 1);
      assert.equal(queries, 4, 'claiming');
      queries = 0;
      const none = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 5 }], leaseMs: 60_000 });
      assert.deepEqual([none.rows.length, none.saturated], [0, true]);
      assert.equal(queries, 3, 'nothing to claim');
    } finally {
      await s.close();
      await counted.end();
    }
  });
});

describe('postgres flow control: a type limit and concurrent inserts', () => {
  let ts: TestStorage;
  before(async () => {
    ts = await makePostgresStorage('pg-flow-mark-lock');
  });
  after(async () => ts.cleanup());

  it('an insert started while a type limit appears waits for it and is marked limited (its snapshot is taken after the lock)', async () => {
    const s = ts.storage;
    const schema = (s as PostgresStorage).schema;
    const q = `"${schema}"`;
    const type = uniqueName('t');
    const holder = await client();
    try {
      // What limitSet does for a new row, held open.
      await holder.query('BEGIN');
      await holder.query(TYPE_LIMITS_LOCK.replaceAll('{s}', q));
      await holder.query(TYPE_LIMIT_INSERT.replaceAll('{s}', q), [null, type, 1, null, null]);
      const job = jobInsert({ type, queue: uniqueName('q') });
      const inserting = s.jobInsertMany({ jobs: [job] });
      await waitFor(
        async () =>
          (await pgAdmin<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%sdj_type_limits%' AND query LIKE '%unnest%'`))[0]!.n > 0,
        { message: 'the insert waits for the limit' },
      );
      await holder.query('COMMIT');
      assert.deepEqual((await inserting).inserted, [job.id]);
      assert.equal((await mustGet(s, job.id)).limited, true);
    } finally {
      await holder.end();
    }
  });

  it('a type limit re-marks every live job of its type (a suspended or paused job returns to the claim that fits it)', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    const pending = await insertJob(s, { type, queue });
    const paused = await insertJob(s, { type, queue });
    await s.jobPause({ id: paused });
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    assert.deepEqual([(await mustGet(s, pending)).limited, (await mustGet(s, paused)).limited], [true, true]);
    await s.jobResume({ id: paused });
    assert.deepEqual(await claim(s, queue, 10), [], 'the ordinary claim leaves them');
    assert.equal(await s.limitDelete({ scope: 'type', name: type }), true);
    assert.deepEqual([(await mustGet(s, pending)).limited, (await mustGet(s, paused)).limited], [false, false]);
  });
});

describe('postgres flow control: migration 4 over a schema holding jobs', () => {
  const schema = testSchemaName('pg-flow-migration');
  const q = `"${schema}"`;
  let admin: pg.Client;
  let s: PostgresStorage;
  before(async () => {
    admin = await client();
    await admin.query(MIGRATIONS_CREATE_SCHEMA.replaceAll('{s}', q));
    await admin.query(MIGRATIONS_CREATE_LEDGER.replaceAll('{s}', q));
    for (const m of MIGRATIONS.filter((x) => x.version <= 3)) {
      await admin.query(m.sql.replaceAll(SCHEMA_PLACEHOLDER, q));
      await admin.query(`INSERT INTO ${q}.sdj_migrations (version, name, applied_at) VALUES ($1, $2, 0)`, [m.version, m.name]);
    }
    await admin.query(`INSERT INTO ${q}.sdj_queues (name, paused, updated_at) VALUES ('mq', false, 1)`);
    await admin.query(`INSERT INTO ${q}.sdj_jobs (id, type, queue, status, attempt, run_count, run_at, created_at, completed_at, unique_key, locked_by, lease_expires_at)
      VALUES ('m-pending', 'sync', 'mq', 'pending', 0, 0, 1, 1, NULL, NULL, NULL, NULL),
             ('m-pending-2', 'sync', 'mq', 'pending', 0, 0, 2, 2, NULL, NULL, NULL, NULL),
             ('m-running', 'sync', 'mq', 'running', 1, 1, 1, 1, NULL, NULL, 'w-old', 9999999999999),
             ('m-done', 'sync', 'mq', 'completed', 1, 1, 1, 1, 5, 'daily', NULL, NULL)`);
    s = new PostgresStorage(PG_URL, { schema, max: 2 });
    await s.migrate();
  });
  after(async () => {
    await s.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${q} CASCADE`);
    await admin.end();
  });

  it('adds the columns with their defaults to every existing row, and builds the indexes and tables', async () => {
    for (const id of ['m-pending', 'm-running', 'm-done']) {
      const row = await mustGet(s, id);
      assert.deepEqual([row.concurrencyKey, row.rateKey, row.limited, row.debounceKey], [null, null, false, null], id);
    }
    const idx = await admin.query(
      `SELECT c.relname::text AS name, i.indisvalid AS valid, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`,
      [schema],
    );
    const defs = new Map((idx.rows as { name: string; valid: boolean; def: string }[]).map((r) => [r.name, r]));
    for (const name of ['sdj_jobs_claim', 'sdj_jobs_limited', 'sdj_jobs_debounce', 'sdj_jobs_history_unique_key', 'sdj_type_limits_pkey', 'sdj_rate_state_pkey']) {
      assert.equal(defs.get(name)?.valid, true, `${name} exists and is valid`);
    }
    assert.match(defs.get('sdj_jobs_claim')!.def, /ON .*sdj_jobs_live .*WHERE \(\(status = 'pending'::text\) AND \(limited = 0\)\)/);
    assert.match(defs.get('sdj_jobs_limited')!.def, /ON .*sdj_jobs_live .*WHERE \(\(status = 'pending'::text\) AND \(limited = 1\)\)/);
    assert.match(defs.get('sdj_jobs_history_unique_key')!.def, /ON .*sdj_jobs_history /);
    const cols = await admin.query(`SELECT column_name::text AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'sdj_queues' ORDER BY ordinal_position`, [schema]);
    assert.deepEqual(cols.rows.map((r: { c: string }) => r.c), ['name', 'paused', 'updated_at', 'concurrency', 'rate_limit', 'rate_period_ms']);
  });

  it('old jobs carry on: a pending job is claimed by the ordinary claim, a later type limit marks the rest, a finished key dedups in a window', async () => {
    const [row] = await s.jobClaim({ workerId: 'w', queues: [{ name: 'mq', limit: 1 }], leaseMs: 60_000 });
    assert.equal(row?.id, 'm-pending');
    await s.limitSet({ scope: 'type', name: 'sync', concurrency: 2, rateLimit: null, ratePeriodMs: null });
    assert.equal((await mustGet(s, 'm-pending-2')).limited, true);
    const u = (await s.limitUsage()).find((x) => x.name === 'sync')!;
    assert.deepEqual([u.running, u.keysRunning, u.keysFull, u.pending], [2, 1, 1, 1], 'the running jobs of before count');
    const dup = jobInsert({ uniqueKey: 'daily', uniqueForMs: 10 * 365 * 86_400_000 });
    assert.deepEqual(await s.jobInsertMany({ jobs: [dup], onConflict: 'existing' }), { inserted: [], ids: ['m-done'] });
  });
});
