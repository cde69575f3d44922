/**
 * PostgreSQL driver: flow control as only PostgreSQL does it — the plans (the ordinary claim keeps
 * its claim index with `limited = 0`, generic plan included; the limited claim's reads use their
 * indexes with or without statistics, read a few rows per group whatever the backlog, and settle
 * on generic plans; its claim is a TID scan), the optimistic limited claim (its round trips, a
 * compare-and-set that loses when the flow-state version moved, every limit change moving it,
 * the locked fallback after repeated losses; a job cancelled or paused, a queue paused or a limit
 * lowered between the read and the compare-and-set; a plain first read whose version moved before
 * it stored: postgres-flow-plain-one.test.ts), the lock that orders a type limit's appearance
 * with the inserts that mark jobs from it, the `limited` mark of jobs in every status and of
 * jobs going back to pending, and migration 4 over a schema at version 3 holding jobs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { OPTIMISTIC_ATTEMPTS } from '../../src/storage/postgres/flow-ops.js';
import { SCHEMA_PLACEHOLDER } from '../../src/storage/postgres/migrate.js';
import { MIGRATIONS } from '../../src/storage/postgres/migrations.generated.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { MIGRATIONS_CREATE_LEDGER, MIGRATIONS_CREATE_SCHEMA } from '../../src/storage/postgres/queries/admin.js';
import { FIRST_READ_EXTRA, FLOW_BEGIN_LOCKED, FLOW_CANDIDATES, FLOW_CANDIDATES_DEEP, FLOW_CLAIM, FLOW_CLAIM_PLAIN_ONE } from '../../src/storage/postgres/queries/flow.js';
import { TYPE_LIMIT_INSERT, TYPE_LIMITS_LOCK } from '../../src/storage/postgres/queries/limits.js';
import { JOB_CLAIM_MANY, JOB_CLAIM_ONE } from '../../src/storage/postgres/queries/run.js';
import { applied, cancelledJob, claim, failedJob, insertJob, jobInsert, mustGet, pausedJob, runningJob, uniqueName, waitingJob } from '../helpers/factories.js';
import { makePostgresStorage, PG_URL, pgAdmin, testSchemaName } from '../helpers/postgres-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { recordingPool } from '../helpers/pg-recording-pool.js';
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

/** The parameters of a candidate read of queue `lq` (the first read also takes a worker and a lease). */
function readParams(sql: string, limit: number, complete: boolean): unknown[] {
  if (sql === FLOW_CLAIM_PLAIN_ONE) return [null, 'lq', limit, 'w', 60_000];
  return sql === FLOW_CANDIDATES ? [null, ['lq'], [limit], complete, 'w', 60_000] : [null, ['lq'], [limit], complete];
}

/** The statement text of a prepared statement of the driver, rendered for schema `q`. */
function rendered(sql: string, q: string): string {
  return sql.replaceAll('{s}', q);
}

describe('postgres flow control: the limited claim reads', () => {
  let ts: TestStorage;
  let c: pg.Client;
  let q: string;
  const type = 'acct-sync';
  before(async () => {
    ts = await makePostgresStorage('pg-flow-limited-plan');
    q = `"${(ts.storage as PostgresStorage).schema}"`;
    c = await client();
    await c.query('SET jit = off');
    await ts.storage.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    await ts.storage.limitSet({ scope: 'type', name: 'rated', concurrency: null, rateLimit: 1, ratePeriodMs: 3_600_000 });
    // Key `big` holds a backlog of 3000 ready jobs first in claim order, keys k0..k19 hold 3 each
    // behind it, and the rated type holds a backlog of 2000 under one rate key. The live table
    // keeps the statistics the migration left (of an empty table), as in a fresh deployment.
    await c.query(`INSERT INTO ${q}.sdj_jobs (id, type, queue, status, run_at, created_at, limited, concurrency_key)
      SELECT 'b' || lpad(i::text, 6, '0'), '${type}', 'lq', 'pending', 1, 1, 1, 'big' FROM generate_series(1, 3000) i`);
    await c.query(`INSERT INTO ${q}.sdj_jobs (id, type, queue, status, run_at, created_at, limited, concurrency_key)
      SELECT 's' || lpad(i::text, 6, '0'), '${type}', 'lq', 'pending', 2, 2, 1, 'k' || (i % 20) FROM generate_series(1, 60) i`);
    await c.query(`INSERT INTO ${q}.sdj_jobs (id, type, queue, status, run_at, created_at, limited, rate_key)
      SELECT 'r' || lpad(i::text, 6, '0'), 'rated', 'lq', 'pending', 1, 1, 1, 'only' FROM generate_series(1, 2000) i`);
  });
  after(async () => {
    await c.end();
    await ts.cleanup();
  });

  /** Rows read from the live partition per index (the scans that ran), and the sequential scans, by one execution. */
  async function rowsRead(sql: string, limit: number, complete = false): Promise<{ byIndex: Map<string, number>; seq: number }> {
    const plan = await planOf(c, sql, q, readParams(sql, limit, complete), true);
    const byIndex = new Map<string, number>();
    let seq = 0;
    for (const n of nodesOf(plan)) {
      const read = (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 0);
      if (n['Relation Name'] !== 'sdj_jobs_live' || (n['Actual Loops'] ?? 0) === 0) continue;
      // The first read's own claim (a plain plan only; never here): nothing read.
      if (n['Node Type'] === 'ModifyTable' || n['Node Type'] === 'Tid Scan') {
        assert.equal(read, 0, 'the read claimed nothing');
        continue;
      }
      if (n['Node Type'] === 'Seq Scan') seq += 1;
      else byIndex.set(n['Index Name'] ?? n['Node Type'], (byIndex.get(n['Index Name'] ?? n['Node Type']) ?? 0) + read);
    }
    return { byIndex, seq };
  }

  /** Checks the three reads' index use and rows read in the current state. */
  async function checkReads(what: string): Promise<void> {
    // The plain claim of one queue: its first `limit` ready jobs, and the running counts.
    const plainOne = await rowsRead(FLOW_CLAIM_PLAIN_ONE, 10);
    assert.equal(plainOne.seq, 0, `${what}: no sequential scan of the live partition (plain claim of one queue)`);
    assert.deepEqual([...plainOne.byIndex.keys()].sort(), ['sdj_jobs_limited_claim', 'sdj_jobs_running'], what);
    assert.ok(plainOne.byIndex.get('sdj_jobs_limited_claim')! <= 10, `${what}: plain claim of one queue: ${plainOne.byIndex.get('sdj_jobs_limited_claim')}`);
    const first = await rowsRead(FLOW_CANDIDATES, 10);
    assert.equal(first.seq, 0, `${what}: no sequential scan of the live partition (first read)`);
    assert.deepEqual([...first.byIndex.keys()].sort(), ['sdj_jobs_limited_claim', 'sdj_jobs_running'], what);
    assert.ok(first.byIndex.get('sdj_jobs_limited_claim')! <= 10 + FIRST_READ_EXTRA, `${what}: first read: ${first.byIndex.get('sdj_jobs_limited_claim')}`);
    const deep = await rowsRead(FLOW_CANDIDATES_DEEP, 10);
    assert.equal(deep.seq, 0, `${what}: no sequential scan (deep read)`);
    assert.ok(deep.byIndex.get('sdj_jobs_limited_claim')! <= 1024 + 32 * 10, `${what}: deep read in claim order: ${deep.byIndex.get('sdj_jobs_limited_claim')}`);
    // Its groups (one here: the backlog in front is all of `big`) read up to room + 1 jobs each.
    assert.ok((deep.byIndex.get('sdj_jobs_limited') ?? 0) <= 22 * 3, `${what}: deep read by group: ${deep.byIndex.get('sdj_jobs_limited')}`);
    const complete = await rowsRead(FLOW_CANDIDATES_DEEP, 10, true);
    assert.equal(complete.seq, 0, `${what}: no sequential scan (complete read)`);
    assert.equal(complete.byIndex.get('sdj_jobs_limited_claim') ?? 0, 0, `${what}: the complete read walks the groups`);
    // 22 groups (big, k0..k19, rated/only): one skip-scan probe each and at most room + 1 jobs each.
    assert.ok(complete.byIndex.get('sdj_jobs_limited')! <= 22 * 4 + 1, `${what}: complete read: ${complete.byIndex.get('sdj_jobs_limited')}`);
  }

  it('read through their indexes without statistics (as deployed) and with them: a few rows per group, whatever the backlog', async () => {
    await checkReads('no statistics');
    await c.query(`ANALYZE ${q}.sdj_jobs_live`);
    await checkReads('analyzed');
  });

  it("a full group's and a rate-blocked group's backlogs do not hide the other groups", async () => {
    const s = ts.storage;
    const first = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: 'lq', limit: 100 }], leaseMs: 600_000 });
    // One per concurrency key (big and k0..k19) and one start of the rate group.
    assert.equal(first.rows.length, 22);
    assert.equal(first.saturated, true);
    const k3 = first.rows.find((r) => r.concurrencyKey === 'k3')!;
    await s.jobFinishMany({ items: [{ jobId: k3.id, workerId: 'w', runCount: k3.runCount, outcome: 'completed', resultJson: null }] });
    const next = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: 'lq', limit: 10 }], leaseMs: 600_000 });
    assert.deepEqual(next.rows.map((r) => r.concurrencyKey), ['k3'], 'the freed key is found behind 5000 held-back jobs');
    assert.equal(next.saturated, true);
    assert.ok(next.retryInMs !== null && next.retryInMs > 3_500_000, 'the rated group reports its next start');
  });

  it('each read reports the running count of every concurrency group of its candidates', async () => {
    const running = new Map(
      (await c.query(`SELECT concurrency_key AS k, count(*)::int AS n FROM ${q}.sdj_jobs_live WHERE status = 'running' AND type = $1 GROUP BY 1`, [type])).rows.map(
        (r: { k: string; n: number }) => [r.k, r.n],
      ),
    );
    assert.ok(running.size > 0, 'jobs of the type are running');
    for (const [sql, complete] of [[FLOW_CANDIDATES, false], [FLOW_CANDIDATES_DEEP, false], [FLOW_CANDIDATES_DEEP, true]] as const) {
      const [row] = (await c.query(rendered(sql, q), readParams(sql, 10, complete))).rows as { read: [number, string, [string, string, string, string, number, number, string][], unknown, [string, string, number][]] }[];
      const [, , jobs, , allCounts] = row!.read;
      const keys = new Set(jobs.filter((j) => j[3] === type).map((j) => j[6]));
      const counts = allCounts.filter((x) => x[0] === type);
      assert.deepEqual(counts.map((x) => x[1]).sort(), [...keys].sort(), `one count per key (complete: ${complete})`);
      for (const [, key, n] of counts) assert.equal(n, running.get(key) ?? 0, `key ${key} (complete: ${complete})`);
    }
  });

  it('every statement of the limited claim settles on a generic plan (it is not planned on each claim)', async () => {
    const statements: [name: string, sql: string, types: string, args: string][] = [
      ['cand', FLOW_CANDIDATES, 'bigint, text[], int[], boolean, text, bigint', "NULL, '{lq}', '{10}', false, 'w', 1000"],
      ['one', FLOW_CLAIM_PLAIN_ONE, 'bigint, text, int, text, bigint', "NULL, 'lq', 10, 'w', 1000"],
      ['deep', FLOW_CANDIDATES_DEEP, 'bigint, text[], int[], boolean', "NULL, '{lq}', '{10}', false"],
      ['walk', FLOW_CANDIDATES_DEEP, 'bigint, text[], int[], boolean', "NULL, '{lq}', '{10}', true"],
      // A version no claim reads: the compare-and-set fails and nothing is written.
      ['claim', FLOW_CLAIM, 'bigint, bigint, text[], text[], text[], text[], text, bigint, text[], text[], text[], double precision[], tid[]',
        "NULL, -1, '{x}', '{lq}', '{NULL}', '{NULL}', 'w', 1000, '{type}', '{rated}', '{only}', '{1}', '{\"(0,1)\"}'"],
    ];
    try {
      for (const [name, sql, types, args] of statements) {
        await c.query(`PREPARE ${name}(${types}) AS ${rendered(sql, q)}`);
        for (let i = 0; i < 8; i++) await c.query(`EXECUTE ${name}(${args})`);
      }
      const r = await c.query('SELECT name, generic_plans::int AS g, custom_plans::int AS c FROM pg_prepared_statements ORDER BY name');
      for (const row of r.rows as { name: string; g: number; c: number }[]) assert.ok(row.g >= 3 && row.c <= 5, `${row.name}: ${row.g} generic, ${row.c} custom`);
      assert.equal(r.rows.length, statements.length);
      // The claim updates the jobs at the addresses read: a TID scan, whatever the statistics.
      const plan = (await c.query(`EXPLAIN (FORMAT JSON) EXECUTE claim(${statements[4]![3]})`)).rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] };
      const scans = nodesOf(plan['QUERY PLAN'][0].Plan).filter((n) => n['Relation Name'] === 'sdj_jobs_live' && n['Node Type'] !== 'ModifyTable');
      assert.deepEqual(scans.map((n) => n['Node Type']), ['Tid Scan']);
    } finally {
      await c.query('DEALLOCATE ALL');
    }
  });
});

describe('postgres flow control: the optimistic claim', () => {
  let ts: TestStorage;
  let q: string;
  before(async () => {
    ts = await makePostgresStorage('pg-flow-optimistic');
    q = `"${(ts.storage as PostgresStorage).schema}"`;
  });
  after(async () => ts.cleanup());

  /** The flow-state version. */
  async function version(): Promise<number> {
    return Number((await pgAdmin<{ v: string }>(`SELECT version AS v FROM ${q}.sdj_flow_state WHERE id = 1`))[0]!.v);
  }

  it('takes one round trip when its plan is plain, and when it claims nothing; two when it claims a plan that is not, after one more for a queue whose plan was plain last; no transaction', async () => {
    const pool = recordingPool();
    const s = new PostgresStorage(pool, { schema: q.slice(1, -1) });
    try {
      const queue = uniqueName('rt');
      const limitedType = uniqueName('t');
      await s.limitSet({ scope: 'type', name: limitedType, concurrency: 1, rateLimit: null, ratePeriodMs: null });
      await s.jobInsertMany({ jobs: [jobInsert({ queue, type: limitedType }), jobInsert({ queue, type: limitedType })] });
      pool.texts.length = 0;
      assert.equal((await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 5 }], leaseMs: 60_000 })).rows.length, 1);
      assert.deepEqual(
        pool.texts,
        [rendered(FLOW_CLAIM_PLAIN_ONE, q), rendered(FLOW_CANDIDATES, q), rendered(FLOW_CLAIM, q)],
        'claiming a plan that is not plain: the plain claim of one queue finds so, then read, then compare-and-set',
      );
      pool.texts.length = 0;
      const none = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 5 }], leaseMs: 60_000 });
      assert.deepEqual([none.rows.length, none.saturated], [0, true]);
      assert.deepEqual(pool.texts, [rendered(FLOW_CANDIDATES, q)], 'nothing to claim: the read only (the queue skips the plain claim for a while)');
      // Room for every job asked for, no rate or queue limit: the read claims by itself.
      const roomy = uniqueName('t');
      const roomyQ = uniqueName('rt');
      await s.limitSet({ scope: 'type', name: roomy, concurrency: 10, rateLimit: null, ratePeriodMs: null });
      const jobs = [jobInsert({ queue: roomyQ, type: roomy }), jobInsert({ queue: roomyQ, type: roomy, priority: 5 }), jobInsert({ queue: roomyQ, type: roomy })];
      await s.jobInsertMany({ jobs });
      pool.texts.length = 0;
      const plain = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: roomyQ, limit: 2 }], leaseMs: 60_000 });
      assert.deepEqual(plain.rows.map((r) => r.id), [jobs[1]!.id, jobs[0]!.id], 'the first two in claim order');
      assert.deepEqual([plain.retryInMs, plain.saturated], [null, false]);
      assert.deepEqual(pool.texts, [rendered(FLOW_CLAIM_PLAIN_ONE, q)], 'a plain plan: one round trip, the plain claim of one queue');
    } finally {
      await s.close();
      await pool.end();
    }
  });

  it('a plan whose version moved stores nothing: no job claimed, no rate state written', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: 1, ratePeriodMs: 60_000 });
    const id = await insertJob(s, { queue, type });
    /** A candidate read's job ids, now and version. */
    const readOf = async () => {
      const [row] = await pgAdmin<{ read: [number, string, string[][]] }>(rendered(FLOW_CANDIDATES, q), [null, [queue], [5], false, 'w', 60_000]);
      const [now, version, jobs] = row!.read;
      return { ids: jobs.map((j) => j[1]!), tids: jobs.map((j) => j[2]!), now, version };
    };
    const read = await readOf();
    assert.deepEqual(read.ids, [id]);
    // Another limited claim, or a limit change, stored in between.
    await s.limitSet({ scope: 'queue', name: uniqueName('q'), concurrency: 3, rateLimit: null, ratePeriodMs: null });
    const lost = await pgAdmin<{ won: boolean; id: string | null }>(rendered(FLOW_CLAIM, q), [
      read.now, read.version, [id], [queue], [null], [null], 'w', 60_000, ['type'], [type], [''], [Number(read.now) + 60_000], read.tids,
    ]);
    assert.deepEqual(lost.map((r) => [r.won, r.id]), [[false, null]]);
    assert.equal((await mustGet(s, id)).status, 'pending');
    assert.deepEqual(await pgAdmin(`SELECT * FROM ${q}.sdj_rate_state WHERE name = $1`, [type]), []);
    // Read again: the claim stores its plan and moves the version on.
    const again = await readOf();
    const won = await pgAdmin<{ won: boolean; id: string | null }>(rendered(FLOW_CLAIM, q), [
      again.now, again.version, [id], [queue], [null], [null], 'w', 60_000, ['type'], [type], [''], [Number(again.now) + 60_000], again.tids,
    ]);
    assert.deepEqual(won.map((r) => [r.won, r.id]), [[true, id]]);
    const [state] = await pgAdmin<{ version: string }>(`SELECT version FROM ${q}.sdj_flow_state WHERE id = 1`);
    assert.equal(Number(state!.version), Number(again.version) + 1, 'the claim moved the version on by one');
    assert.equal((await mustGet(s, id)).status, 'running');
  });

  it('every change of a limit moves the version, in the transaction that makes it', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    const changes: [string, () => Promise<unknown>][] = [
      ['a new type limit', () => s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null })],
      ['a type limit changed', () => s.limitSet({ scope: 'type', name: type, concurrency: 2, rateLimit: null, ratePeriodMs: null })],
      ['a type limit deleted', () => s.limitDelete({ scope: 'type', name: type })],
      ['a queue limit set', () => s.limitSet({ scope: 'queue', name: queue, concurrency: 1, rateLimit: null, ratePeriodMs: null })],
      ['a queue limit deleted', () => s.limitDelete({ scope: 'queue', name: queue })],
    ];
    for (const [what, change] of changes) {
      const before = await version();
      await change();
      assert.ok((await version()) > before, what);
    }
  });

  it('a claim that keeps losing its compare-and-set claims holding the flow-state row', async () => {
    const s0 = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s0.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    const ids = [await insertJob(s0, { queue, type }), await insertJob(s0, { queue, type })];
    const claimText = rendered(FLOW_CLAIM, q);
    const lockText = rendered(FLOW_BEGIN_LOCKED, q);
    let rival = true;
    // Before each compare-and-set, a rival moves the version on (as another claim that stored first would).
    const pool = recordingPool(async (text) => {
      if (text === claimText && rival) await pgAdmin(`UPDATE ${q}.sdj_flow_state SET version = version + 1 WHERE id = 1`);
      if (text === lockText) rival = false;
    });
    const s = new PostgresStorage(pool, { schema: q.slice(1, -1) });
    try {
      const r = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 5 }], leaseMs: 60_000 });
      assert.deepEqual(r.rows.map((row) => row.id), [ids[0]], 'one job, within the limit');
      assert.equal(pool.texts.filter((t) => t === claimText).length, OPTIMISTIC_ATTEMPTS + 1);
      assert.equal(pool.texts.filter((t) => t === lockText).length, 1, 'then the locked transaction');
      assert.ok(pool.texts.includes('COMMIT'));
    } finally {
      await s.close();
      await pool.end();
    }
    assert.deepEqual((await claimLimitedOnce(s0, queue)).rows, [], 'the limit holds');
  });
});

/** One limited claim of `queue` by another worker. */
function claimLimitedOnce(s: PostgresStorage | TestStorage['storage'], queue: string) {
  return s.jobClaimLimited({ workerId: 'w2', queues: [{ name: queue, limit: 5 }], leaseMs: 60_000 });
}

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

  it('a type limit re-marks every live job of its type, whatever its status, and a job of the type going back to pending is marked from the limits as they are then', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    const pending = await insertJob(s, { type, queue });
    const paused = (await pausedJob(s, { type, queue })).id;
    const running = await runningJob(s, { type });
    const retrying = await runningJob(s, { type });
    const waiting = (await waitingJob(s, { type }, { waitSignal: 'go' })).row.id;
    const cancelled = [(await cancelledJob(s, { type })).id, (await cancelledJob(s, { type })).id, (await cancelledJob(s, { type })).id];
    const live = [pending, paused, running.row.id, retrying.row.id, waiting];
    const marks = async (ids: string[]) => Promise.all(ids.map(async (id) => (await mustGet(s, id)).limited));
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    assert.deepEqual(await marks(live), [true, true, true, true, true], 'pending, paused, running, running, waiting');
    assert.deepEqual(await marks(cancelled), [false, false, false], 'finished jobs keep their mark');
    // Back to pending: a failed attempt rescheduled, a retry, a bulk retry, a retry from the failed step.
    assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...retrying.fence, outcome: 'retry', error: 'x', delayMs: 0 }] })), [true]);
    await s.jobRetry({ id: cancelled[0]! });
    await s.jobRetryMany({ ids: [cancelled[1]!] });
    await s.jobRetry({ id: cancelled[2]!, fromFailedStep: true });
    assert.deepEqual(await marks([retrying.row.id, ...cancelled]), [true, true, true, true], 'each marked from the limit now stored');
    await s.jobResume({ id: paused });
    assert.deepEqual(await claim(s, queue, 10), [], 'the ordinary claim leaves them');
    assert.equal(await s.limitDelete({ scope: 'type', name: type }), true);
    assert.deepEqual(await marks([...live, ...cancelled]), [false, false, false, false, false, false, false, false]);
    // And the other way: retried while no limit is stored, a job is not limited.
    const again = (await cancelledJob(s, { type })).id;
    const finished = await failedJob(s, { type });
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    await s.limitDelete({ scope: 'type', name: type });
    await s.jobRetry({ id: again });
    await s.jobRetryMany({ ids: [finished.id] });
    assert.deepEqual(await marks([again, finished.id]), [false, false]);
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
             ('m-done', 'sync', 'mq', 'completed', 1, 1, 1, 1, (floor(extract(epoch from clock_timestamp()) * 1000))::bigint - 1000, 'daily', NULL, NULL)`);
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
    for (const name of ['sdj_jobs_claim', 'sdj_jobs_limited_claim', 'sdj_jobs_limited', 'sdj_jobs_running', 'sdj_jobs_debounce', 'sdj_jobs_history_unique_key', 'sdj_type_limits_pkey', 'sdj_rate_state_pkey', 'sdj_flow_state_pkey']) {
      assert.equal(defs.get(name)?.valid, true, `${name} exists and is valid`);
    }
    assert.match(defs.get('sdj_jobs_claim')!.def, /ON .*sdj_jobs_live .*WHERE \(\(status = 'pending'::text\) AND \(limited = 0\)\)/);
    assert.match(defs.get('sdj_jobs_limited')!.def, /ON .*sdj_jobs_live .*WHERE \(\(status = 'pending'::text\) AND \(limited = 1\)\)/);
    assert.match(defs.get('sdj_jobs_limited_claim')!.def, /ON .*sdj_jobs_live .*\(queue, priority DESC, run_at, id\) WHERE \(\(status = 'pending'::text\) AND \(limited = 1\) AND/);
    assert.match(defs.get('sdj_jobs_running')!.def, /ON .*sdj_jobs_live .*WHERE \(\(status = 'running'::text\) AND \(limited = 1\)\)/);
    const flow = await admin.query(`SELECT id, version::int AS version FROM ${q}.sdj_flow_state`);
    assert.deepEqual(flow.rows, [{ id: 1, version: 0 }], 'one flow-state row, at version 0');
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
    const dup = jobInsert({ uniqueKey: 'daily', uniqueForMs: 60_000 });
    assert.deepEqual(await s.jobInsertMany({ jobs: [dup], onConflict: 'existing' }), { inserted: [], ids: ['m-done'] });
  });
});

describe('postgres flow control: changes between the read and the compare-and-set', () => {
  let ts: TestStorage;
  let q: string;
  before(async () => {
    ts = await makePostgresStorage('pg-flow-between');
    q = `"${(ts.storage as PostgresStorage).schema}"`;
  });
  after(async () => ts.cleanup());

  /** Runs one limited claim of `queue` on a pool of its own that runs `change` once, just before the claim's compare-and-set. */
  async function claimChangedBefore(queue: string, change: () => Promise<unknown>) {
    const claimText = rendered(FLOW_CLAIM, q);
    let pending = true;
    const pool = recordingPool(async (text) => {
      if (pending && text === claimText) {
        pending = false;
        await change();
      }
    });
    const s = new PostgresStorage(pool, { schema: q.slice(1, -1) });
    try {
      const r = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 5 }], leaseMs: 60_000 });
      assert.equal(pending, false, 'the claim reached its compare-and-set');
      return r;
    } finally {
      await s.close();
      await pool.end();
    }
  }

  it('a picked job cancelled or paused after the read is left as it is', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    const ids = [await insertJob(s, { queue, type }), await insertJob(s, { queue, type }), await insertJob(s, { queue, type })];
    const cancelled = await claimChangedBefore(queue, () => s.jobCancel({ id: ids[0]! }));
    assert.ok(!cancelled.rows.some((r) => r.id === ids[0]), 'the cancelled job is not claimed');
    assert.equal((await mustGet(s, ids[0]!)).status, 'cancelled');
    const paused = await claimChangedBefore(queue, () => s.jobPause({ id: ids[1]! }));
    assert.ok(!paused.rows.some((r) => r.id === ids[1]), 'the paused job is not claimed');
    assert.equal((await mustGet(s, ids[1]!)).status, 'paused');
    const running = await pgAdmin<{ id: string }>(`SELECT id FROM ${q}.sdj_jobs_live WHERE type = $1 AND status = 'running'`, [type]);
    assert.ok(running.length <= 1 && running.every((r) => r.id === ids[2]), JSON.stringify(running));
  });

  it('a queue paused after the read: nothing is claimed from it', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    const ids = [await insertJob(s, { queue, type }), await insertJob(s, { queue, type })];
    const r = await claimChangedBefore(queue, () => s.queueSetPaused({ queue, paused: true }));
    assert.deepEqual(r.rows, []);
    assert.deepEqual([(await mustGet(s, ids[0]!)).status, (await mustGet(s, ids[1]!)).status], ['pending', 'pending']);
    await s.queueSetPaused({ queue, paused: false });
    assert.deepEqual((await claimLimitedOnce(s, queue)).rows.map((row) => row.id), [ids[0]]);
  });

  it('a concurrency limit lowered after the read holds: the claim starts no more jobs than the new limit', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 2, rateLimit: null, ratePeriodMs: null });
    const ids = [await insertJob(s, { queue, type }), await insertJob(s, { queue, type }), await insertJob(s, { queue, type })];
    const r = await claimChangedBefore(queue, () => s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null }));
    assert.deepEqual(r.rows.map((row) => row.id), [ids[0]], 'one job: the limit as it is when the claim stores its plan');
    const running = await pgAdmin<{ n: string }>(`SELECT count(*) AS n FROM ${q}.sdj_jobs_live WHERE type = $1 AND status = 'running'`, [type]);
    assert.equal(Number(running[0]!.n), 1);
  });
});
