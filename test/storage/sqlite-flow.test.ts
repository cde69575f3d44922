/**
 * SQLite driver: flow control beyond the shared conformance suite — the plans of the ordinary
 * claim (its claim index, which now holds no limited job) and of the limited claim's reads (the
 * limited index, one seek per group; the running rows through the lease index; no full scan of
 * the jobs anywhere in the limit operations); a limited claim reading the same bytes of the file
 * whether a full or rate-blocked group's backlog holds 10 jobs or 20,000; the walk of a group in
 * claim order; pending counts that include limited jobs; random flows on which the claim, which
 * reads only part of the ready jobs, decides exactly what `planLimitedClaim` decides over all of
 * them; and the upgrade of a file at schema version 3 with jobs in every status.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { MIGRATIONS } from '../../src/storage/sqlite/migrations.generated.js';
import { MIGRATIONS_CREATE_LEDGER, MIGRATIONS_INSERT } from '../../src/storage/sqlite/queries/admin.js';
import * as flow from '../../src/storage/sqlite/queries/flow.js';
import * as jobs from '../../src/storage/sqlite/queries/jobs.js';
import { QUEUE_SUMMARY } from '../../src/storage/sqlite/queries/listing.js';
import * as limits from '../../src/storage/sqlite/queries/limits.js';
import { JOB_CLAIM } from '../../src/storage/sqlite/queries/run.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import type { LimitRow } from '../../src/storage/flow-rows.js';
import { planLimitedClaim, queueGroup, typeGroup, type FlowCandidate } from '../../src/storage/shared/flow-plan.js';
import type { JobInsert, Storage } from '../../src/storage/storage.js';
import { claimLimited, completeRows, idsOf, setTypeLimit } from '../conformance/flow-helpers.js';
import { claim, jobInsert, mustGet, uniqueName } from '../helpers/factories.js';
import { removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

/** Temp files made by this file, removed at the end. */
const paths: string[] = [];
function tempPath(label: string): string {
  const p = tempSqlitePath(`sqlite-flow-${label}`);
  paths.push(p);
  return p;
}
after(() => {
  for (const p of paths) removeSqliteFiles(p);
});

/** The plan of a statement on `db`, one detail line per step (every parameter bound to `fill`). */
function planOf(db: BetterSqlite3.Database, sql: string, fill: (name: string) => unknown = () => 1): string[] {
  const st = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const named = [...new Set([...sql.matchAll(/@(\w+)/g)].map((m) => m[1]!))];
  const rows = (named.length > 0 ? st.all(Object.fromEntries(named.map((n) => [n, fill(n)]))) : st.all(...Array<unknown>((sql.match(/\?/g) ?? []).length).fill(1))) as {
    detail: string;
  }[];
  return rows.map((r) => r.detail.trim());
}

/** JSON list parameters of the flow statements get an empty list; the others 1. */
const jsonLists = (n: string): unknown => (['queues', 'types', 'groups', 'ids', 'tats'].includes(n) ? '[]' : 1);

/** A migrated in-memory database, to plan statements on. */
function plannedDb(): BetterSqlite3.Database {
  const db = new Database(':memory:');
  for (const m of MIGRATIONS) db.exec(m.sql);
  return db;
}

/** Inserts `n` jobs (one batch) and returns them. */
async function insertN(s: Storage, n: number, fields: Partial<JobInsert>): Promise<JobInsert[]> {
  const batch = Array.from({ length: n }, () => jobInsert(fields));
  await s.jobInsertMany({ jobs: batch });
  return batch;
}

describe('sqlite flow control: query plans', () => {
  let db: BetterSqlite3.Database;
  before(() => (db = plannedDb()));
  after(() => db.close());

  it('the ordinary claim reads its claim index, which holds only pending jobs that are not limited, in claim order', () => {
    const plan = planOf(db, JOB_CLAIM);
    assert.ok(plan.includes('SEARCH sdj_jobs USING COVERING INDEX sdj_jobs_claim (queue=?)'), plan.join('; '));
    assert.ok(!plan.some((d) => d.includes('TEMP B-TREE')), `no sort: ${plan.join('; ')}`);
    const sql = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'sdj_jobs_claim'").pluck().get() as string;
    assert.match(sql, /\(queue, priority DESC, run_at, id\) WHERE status = 'pending' AND limited = 0$/);
  });

  it('the group walk seeks the limited index past each group (next rate key, else concurrency key, else type)', () => {
    const plan = planOf(db, flow.FLOW_GROUPS, jsonLists);
    for (const range of ['', ' AND type=? AND concurrency_group=? AND rate_group>?', ' AND type=? AND concurrency_group>?', ' AND type>?']) {
      assert.ok(plan.includes(`SEARCH x USING INDEX sdj_jobs_limited (queue=?${range})`), `${range}: ${plan.join('; ')}`);
    }
    assert.ok(!plan.some((d) => d.includes('TEMP B-TREE') || /^SCAN (sdj_jobs|x|j|c)\b/.test(d)), plan.join('; '));
  });

  it("a group's jobs are read from the limited index in claim order, each after the one before by a seek", () => {
    const plan = planOf(db, flow.FLOW_GROUP_JOBS, jsonLists);
    const group = 'queue=? AND type=? AND concurrency_group=? AND rate_group=?';
    assert.ok(plan.includes(`SEARCH x USING INDEX sdj_jobs_limited (${group})`), plan.join('; '));
    for (const next of [' AND priority=? AND run_at=? AND id>?', ' AND priority=? AND run_at>? AND run_at<?', ' AND priority<?']) {
      assert.ok(plan.includes(`SEARCH x USING INDEX sdj_jobs_limited (${group}${next})`), `${next}: ${plan.join('; ')}`);
    }
    assert.ok(!plan.some((d) => d.includes('TEMP B-TREE') || /^SCAN (sdj_jobs|x|j|c)\b/.test(d)), plan.join('; '));
  });

  it('the other reads of the limited claim go through their indexes', () => {
    assert.deepEqual(planOf(db, flow.FLOW_QUEUE_JOBS), ['SEARCH j USING INDEX sdj_jobs_claim (queue=?)']);
    assert.deepEqual(planOf(db, flow.FLOW_QUEUE_ANY_LIMITED), ['SEARCH j USING INDEX sdj_jobs_limited (queue=?)']);
    assert.ok(planOf(db, flow.FLOW_RUNNING, jsonLists).includes('SCAN sdj_jobs USING INDEX sdj_jobs_lease'));
    assert.ok(planOf(db, flow.FLOW_CLAIM, jsonLists).includes('SEARCH sdj_jobs USING INDEX sqlite_autoindex_sdj_jobs_1 (id=?)'));
  });

  it('no statement of the limit operations, the inserts or the counts scans the jobs table', () => {
    const statements = { ...flow, ...limits, ...jobs, QUEUE_SUMMARY };
    const names = Object.keys(statements).filter((n) => /FLOW_|LIMIT|TYPE_|RATE_|DEBOUNCE|UNIQUE|COUNT_BY|QUEUE_SUMMARY|JOB_INSERT/.test(n));
    assert.ok(names.length >= 20, names.join(', '));
    for (const name of names) {
      const plan = planOf(db, (statements as Record<string, string>)[name]!, jsonLists);
      assert.ok(!plan.some((d) => /^SCAN (sdj_jobs|x|j|c|r)$/.test(d)), `${name} scans the jobs: ${plan.join('; ')}`);
    }
    assert.ok(planOf(db, jobs.JOB_UNIQUE_FINISHED_HOLDER).includes('SEARCH sdj_jobs USING INDEX sdj_jobs_unique_done (unique_key=? AND completed_at>?)'));
    assert.ok(planOf(db, jobs.JOB_DEBOUNCE_HOLDER).includes('SEARCH sdj_jobs USING INDEX sdj_jobs_debounce (type=? AND debounce_key=?)'));
  });
});

/** Bytes this process has read through read() calls so far (Linux: /proc/self/io, rchar). */
function bytesRead(): number {
  const m = /^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
  return Number(m![1]);
}

describe('sqlite flow control: cost of a limited claim', () => {
  const hasProcIo = existsSync('/proc/self/io');

  for (const kind of ['concurrency', 'rate'] as const) {
    it(`a ${kind}-blocked group's backlog is never read: the claim reads as much of the file with 20,000 jobs in it as with 10`, { skip: !hasProcIo && 'needs /proc/self/io (Linux)', timeout: 120_000 }, async () => {
      const path = tempPath(`backlog-${kind}`);
      const s = new SqliteStorage(path);
      await s.migrate();
      const type = uniqueName('t');
      const q = uniqueName('q');
      await setTypeLimit(s, type, kind === 'concurrency' ? { concurrency: 1 } : { rateLimit: 1, ratePeriodMs: 3_600_000 });
      const hot = kind === 'concurrency' ? { concurrencyKey: 'hot' } : { rateKey: 'hot' };
      const pad = JSON.stringify('x'.repeat(200));
      await insertN(s, 10, { queue: q, type, priority: 10, argsJson: pad, ...hot });
      assert.equal((await claimLimited(s, q, 1)).rows.length, 1, 'the hot group is now blocked');

      /** On a fresh connection (empty page cache, schema loaded), claims the cold job `key` and returns the bytes read. */
      const measure = async (key: string): Promise<number> => {
        const cold = (await insertN(s, 1, { queue: q, type, priority: -10, ...(kind === 'concurrency' ? { concurrencyKey: key } : { rateKey: key }) }))[0]!;
        const fresh = new SqliteStorage(path);
        try {
          await fresh.limitList();
          const before = bytesRead();
          const r = await fresh.jobClaimLimited({ workerId: 'w', queues: [{ name: q, limit: 1 }], leaseMs: 60_000 });
          const read = bytesRead() - before;
          assert.deepEqual(idsOf(r.rows), [cold.id]);
          return read;
        } finally {
          await fresh.close();
        }
      };
      const small = await measure('cold-1');
      for (let i = 0; i < 20; i++) await insertN(s, 1_000, { queue: q, type, priority: 10, argsJson: pad, ...hot });
      const big = await measure('cold-2');
      const raw = new Database(path, { readonly: true });
      const indexBytes = raw.prepare("SELECT SUM(pgsize) FROM dbstat WHERE name = 'sdj_jobs_limited'").pluck().get() as number;
      raw.close();
      await s.close();
      assert.ok(indexBytes > 500_000, `the limited index holds the backlog: ${indexBytes} bytes`);
      // A deeper B-tree costs a page more per seek; the backlog would cost hundreds of pages.
      assert.ok(big <= small + 16 * 4096, `read ${small} bytes with a backlog of 10, ${big} with 20,010 (limited index: ${indexBytes})`);
      assert.ok(big < indexBytes / 4, `read ${big} bytes, the limited index is ${indexBytes}`);
    });
  }
});

describe('sqlite flow control: behaviour', () => {
  let path: string;
  let s: SqliteStorage;
  before(async () => {
    path = tempPath('behaviour');
    s = new SqliteStorage(path);
    await s.migrate();
  });
  after(async () => s.close());

  it("a group's jobs are claimed in claim order across priorities and equal run_at (the walk steps by priority, run_at, id)", async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    await setTypeLimit(s, type, { concurrency: 25 });
    const batch = Array.from({ length: 30 }, (_, i) => jobInsert({ queue: q, type, concurrencyKey: 'k', priority: [0, 2, 1][i % 3]! }));
    await s.jobInsertMany({ jobs: batch });
    const expected = [...batch].sort((a, b) => b.priority - a.priority || (a.id < b.id ? -1 : 1)).slice(0, 25).map((j) => j.id);
    const r = await claimLimited(s, q, 100);
    assert.deepEqual([idsOf(r.rows), r.saturated], [expected, true]);
  });

  it('pending counts, the queue summary and limit usage count limited jobs with the others', async () => {
    const type = uniqueName('t');
    const q = uniqueName('q');
    await setTypeLimit(s, type, { concurrency: 1 });
    await insertN(s, 3, { queue: q, type });
    await insertN(s, 2, { queue: q });
    assert.equal((await s.jobCountByStatus({ queue: q })).pending, 5);
    const summary = (await s.queueSummary()).find((r) => r.name === q);
    assert.equal(summary?.pending, 5);
    assert.equal((await s.limitUsage()).find((u) => u.scope === 'type' && u.name === type)?.pending, 3);
  });
});

/** A small deterministic random generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * What `planLimitedClaim` decides over every ready job of the queues (read with SQL, no index
 * tricks): the plan the driver's claim must make.
 */
function oraclePlan(db: BetterSqlite3.Database, now: number, want: Map<string, number>, list: LimitRow[]) {
  const paused = new Set(db.prepare('SELECT name FROM sdj_queues WHERE paused = 1').pluck().all() as string[]);
  const live = new Map([...want].filter(([q]) => !paused.has(q)));
  const typeLimits = new Map(list.filter((l) => l.scope === 'type').map((l) => [l.name, l]));
  const queueLimits = new Map(list.filter((l) => l.scope === 'queue').map((l) => [l.name, l]));
  const running = new Map<string, number>();
  for (const r of db.prepare("SELECT type, coalesce(concurrency_key, '') AS k, queue FROM sdj_jobs WHERE status = 'running'").all() as { type: string; k: string; queue: string }[]) {
    for (const g of [typeGroup(r.type, r.k), queueGroup(r.queue)]) running.set(g, (running.get(g) ?? 0) + 1);
  }
  const tat = new Map<string, number>();
  for (const r of db.prepare('SELECT scope, name, rkey, tat FROM sdj_rate_state').all() as { scope: string; name: string; rkey: string; tat: number }[]) {
    tat.set(r.scope === 'type' ? typeGroup(r.name, r.rkey) : queueGroup(r.name), r.tat);
  }
  const rows = db
    .prepare("SELECT id, queue, type, priority, run_at AS runAt, concurrency_key AS concurrencyKey, rate_key AS rateKey, limited FROM sdj_jobs NOT INDEXED WHERE status = 'pending' AND run_at <= ?")
    .all(now) as (FlowCandidate & { limited: number })[];
  const candidates = rows.filter((r) => live.has(r.queue) && (r.limited === 1 || queueLimits.has(r.queue)));
  return planLimitedClaim({ now, want: live, typeLimits, queueLimits, running, tat, candidates });
}

describe('sqlite flow control: the claim reads enough for the plan', () => {
  let path: string;
  let s: SqliteStorage;
  let raw: BetterSqlite3.Database;
  const clock = { now: 1_900_000_000_000 };
  before(async () => {
    path = tempPath('oracle');
    s = new SqliteStorage(path, { clock: () => clock.now });
    await s.migrate();
    raw = new Database(path, { readonly: true });
  });
  after(async () => {
    raw.close();
    await s.close();
  });

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 107, 219]) {
    it(`claims exactly what the plan over every ready job claims (random flows, seed ${seed})`, async () => {
      const rnd = random(seed);
      const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const tag = uniqueName('o');
      const types = [0, 1, 2].map((i) => `${tag}-t${i}`);
      const queues = [0, 1].map((i) => `${tag}-q${i}`);
      await setTypeLimit(s, types[0]!, { concurrency: 1 + Math.floor(rnd() * 3) });
      await setTypeLimit(s, types[1]!, { concurrency: 2 + Math.floor(rnd() * 4), rateLimit: 1 + Math.floor(rnd() * 3), ratePeriodMs: 1_000 });
      if (rnd() < 0.6) await s.limitSet({ scope: 'queue', name: queues[1]!, concurrency: 3 + Math.floor(rnd() * 6), rateLimit: rnd() < 0.5 ? 5 : null, ratePeriodMs: 1_000 });
      const batch = Array.from({ length: 120 }, () =>
        jobInsert({
          queue: pick(queues),
          type: pick([...types, `${tag}-free`]),
          priority: pick([0, 0, 1, 5]),
          delayMs: pick([0, 0, 0, 50, 400]),
          concurrencyKey: pick([null, '', 'a', 'b', 'c']),
          rateKey: pick([null, 'x', 'y']),
        }),
      );
      await s.jobInsertMany({ jobs: batch });
      for (let round = 0; round < 12; round++) {
        clock.now += pick([0, 30, 100, 350]);
        const want = new Map(queues.map((q) => [q, 1 + Math.floor(rnd() * 6)]));
        const expected = oraclePlan(raw, clock.now, want, await s.limitList());
        const r = await s.jobClaimLimited({ workerId: 'w', queues: [...want].map(([name, limit]) => ({ name, limit })), leaseMs: 60_000 });
        assert.deepEqual(idsOf(r.rows), expected.picked, `round ${round}: the jobs claimed`);
        assert.deepEqual([r.retryInMs, r.saturated], [expected.retryInMs, expected.saturated], `round ${round}: retryInMs, saturated`);
        const done = r.rows.filter(() => rnd() < 0.5);
        await completeRows(s, done);
      }
    });
  }
});

/** Creates a file at schema version 3 (migrations 1–3 and their ledger rows), as the migrator would. */
function createAtVersion3(path: string): BetterSqlite3.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.transaction(() => {
    db.exec(MIGRATIONS_CREATE_LEDGER);
    for (const m of MIGRATIONS.filter((x) => x.version <= 3)) {
      db.exec(m.sql);
      db.prepare(MIGRATIONS_INSERT).run(m.version, m.name, 1);
    }
  }).immediate();
  return db;
}

describe('sqlite flow control: upgrade of a file at schema version 3', () => {
  const path = tempPath('upgrade');
  const now = 1_900_000_000_000;
  let raw: BetterSqlite3.Database;
  let s: SqliteStorage;
  const applied: number[][] = [];

  before(async () => {
    raw = createAtVersion3(path);
    const ins = raw.prepare(`INSERT INTO sdj_jobs (id, type, queue, status, priority, run_at, created_at, completed_at, unique_key, locked_by, lease_expires_at, run_count, attempt)
      VALUES (@id, @type, @queue, @status, 0, @runAt, @runAt, @completedAt, @uniqueKey, @lockedBy, @lease, @runs, @runs)`);
    const row = { type: 'mail', queue: 'q3', runAt: now - 1_000, completedAt: null, uniqueKey: null, lockedBy: null, lease: null, runs: 0 };
    raw.transaction(() => {
      for (let i = 0; i < 50; i++) ins.run({ ...row, id: `p${String(i).padStart(3, '0')}`, status: 'pending', type: i % 2 === 0 ? 'mail' : 'sms' });
      ins.run({ ...row, id: 'r1', status: 'running', lockedBy: 'old-worker', lease: now + 60_000, runs: 1 });
      ins.run({ ...row, id: 'c1', status: 'completed', completedAt: now - 500, uniqueKey: 'report-1', runs: 1 });
      ins.run({ ...row, id: 'f1', status: 'failed', completedAt: now - 500, uniqueKey: 'report-2', runs: 1 });
      ins.run({ ...row, id: 'z1', status: 'paused' });
    }).immediate();
    const info = (m: string, f?: Record<string, unknown>): void => void (m === 'sqlite schema migrated' && applied.push(f?.['versions'] as number[]));
    const none = (): void => {};
    s = new SqliteStorage(path, { clock: () => now, logger: { debug: none, warn: none, error: none, info } });
    await s.migrate();
  });
  after(async () => {
    await s.close();
    raw.close();
  });

  it('applies the versions after 3 only, once; the jobs read with the new columns at their defaults', async () => {
    assert.deepEqual(applied, [MIGRATIONS.map((m) => m.version).filter((v) => v > 3)]);
    for (const id of ['p000', 'p001', 'r1', 'c1', 'z1']) {
      const j = await mustGet(s, id);
      assert.deepEqual([j.limited, j.concurrencyKey, j.rateKey, j.debounceKey], [false, null, null, null], id);
    }
    assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
  });

  it('builds the new indexes over the jobs already there', () => {
    const count = (index: string, where: string): unknown => raw.prepare(`SELECT count(*) FROM sdj_jobs INDEXED BY ${index} WHERE ${where}`).pluck().get();
    assert.equal(count('sdj_jobs_claim', "status = 'pending' AND limited = 0"), 50);
    assert.equal(count('sdj_jobs_limited', "status = 'pending' AND limited = 1"), 0);
    assert.equal(count('sdj_jobs_unique_done', "unique_key IS NOT NULL AND status IN ('completed', 'failed', 'cancelled')"), 2);
    const names = raw.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name IN ('sdj_jobs_debounce', 'sdj_type_limits', 'sdj_rate_state') ORDER BY name").pluck().all();
    assert.deepEqual(names, ['sdj_jobs_debounce', 'sdj_rate_state', 'sdj_type_limits']);
  });

  it('the jobs carry on: a dedup window sees an old finished job, a new type limit marks the old pending jobs, both claims take theirs', async () => {
    const dup = jobInsert({ uniqueKey: 'report-1', uniqueForMs: 60_000 });
    assert.deepEqual(await s.jobInsertMany({ jobs: [dup], onConflict: 'existing' }), { inserted: [], ids: ['c1'] });
    await setTypeLimit(s, 'sms', { concurrency: 2 });
    assert.equal((await mustGet(s, 'p001')).limited, true);
    assert.equal((await mustGet(s, 'p000')).limited, false);
    const plain = await claim(s, 'q3', 100);
    assert.deepEqual(new Set(plain.map((r) => r.type)), new Set(['mail']));
    assert.equal(plain.length, 25);
    const limited = await claimLimited(s, 'q3', 100);
    assert.deepEqual([limited.rows.length, limited.saturated, limited.rows.every((r) => r.type === 'sms')], [2, true, true]);
    await completeRows(s, limited.rows);
    assert.equal((await claimLimited(s, 'q3', 100)).rows.length, 2);
  });
});
