/**
 * PostgreSQL driver: the storage conformance suite, plus what only PostgreSQL does —
 * LISTEN/NOTIFY wake-ups (and their reconnection), user-supplied pools and transactions,
 * schema isolation, concurrent migrations, and SKIP LOCKED claims under contention.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { InvalidArgumentError, SchemaTooNewError } from '../../src/errors.js';
import { channelFor } from '../../src/storage/postgres/executor.js';
import { MIGRATIONS } from '../../src/storage/postgres/migrations.generated.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import type { Logger } from '../../src/types.js';
import { runStorageConformance } from '../conformance/index.js';
import { decideFanOut } from '../../src/storage/fan-out-rules.js';
import { claimChildren, claimOne, fanOutParent, insertJob, jobInsert, mustGet, uniqueName } from '../helpers/factories.js';
import { makePostgresStorage, PG_URL, pgAdmin, testSchemaName } from '../helpers/postgres-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

runStorageConformance('postgres', makePostgresStorage);

/** A logger that keeps every message. */
function recordingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const log = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** The backend pids currently listening on a schema's channel (their last query was LISTEN). */
async function listenerPids(schema: string): Promise<number[]> {
  const rows = await pgAdmin<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE query = $1', [`LISTEN "${channelFor(schema)}"`]);
  return rows.map((r) => r.pid);
}

/** Drops a schema made outside a maker. */
async function dropSchema(schema: string): Promise<void> {
  await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

describe('postgres: LISTEN/NOTIFY wake-ups', () => {
  let ts: TestStorage;
  before(async () => {
    ts = await makePostgresStorage('pg-listen');
  });
  after(async () => ts.cleanup());

  it('wakes a listener of another instance when jobs are inserted, once per queue', async () => {
    const other = await ts.another();
    const woken: string[] = [];
    const unlisten = await other.listen!((q) => woken.push(q));
    try {
      const q1 = uniqueName('q');
      const q2 = uniqueName('q');
      await ts.storage.jobInsertMany({ jobs: [jobInsert({ queue: q1 }), jobInsert({ queue: q1 }), jobInsert({ queue: q2 })] });
      await waitFor(() => woken.includes(q1) && woken.includes(q2), { timeout: 5_000, message: 'both queues woken' });
      assert.equal(woken.filter((q) => q === q1).length, 1, 'one notification per queue and transaction');
    } finally {
      await unlisten();
    }
  });

  it('wakes listeners when jobs become pending again (release, resume)', async () => {
    const s = ts.storage;
    const woken: string[] = [];
    const unlisten = await (await ts.another()).listen!((q) => woken.push(q));
    try {
      const q = uniqueName('q');
      const id = await insertJob(s, { queue: q });
      await waitFor(() => woken.includes(q));
      woken.length = 0;
      const row = await claimOne(s, q, id);
      assert.deepEqual(await s.jobRelease({ runs: [{ jobId: id, workerId: row.lockedBy!, runCount: row.runCount }] }), [id]);
      await waitFor(() => woken.includes(q), { message: 'woken by release' });
      woken.length = 0;
      await s.jobPause({ id });
      await s.jobResume({ id });
      await waitFor(() => woken.includes(q), { message: 'woken by resume' });
    } finally {
      await unlisten();
    }
  });

  it('reconnects by itself after its connection is terminated, and logs it', async () => {
    const logger = recordingLogger();
    const schema = (ts.storage as PostgresStorage).schema;
    const listening = new PostgresStorage(PG_URL, { schema, logger, max: 2 });
    const woken: string[] = [];
    const unlisten = await listening.listen((q) => woken.push(q));
    try {
      const [pid] = await listenerPids(schema);
      assert.ok(pid !== undefined, 'the listener connection is visible');
      await pgAdmin('SELECT pg_terminate_backend($1)', [pid]);
      await waitFor(async () => (await listenerPids(schema)).some((p) => p !== pid), { timeout: 10_000, message: 'listener back' });
      assert.ok(logger.lines.some((l) => l.level === 'warn' && /lost its connection/.test(l.message)), 'the loss was logged');
      const q = uniqueName('q');
      await insertJob(ts.storage, { queue: q });
      await waitFor(() => woken.includes(q), { timeout: 5_000, message: 'woken after reconnect' });
    } finally {
      await unlisten();
      await listening.close();
    }
  });

  it("enqueues inside the caller's transaction: visible and notified only at commit", async () => {
    const s = ts.storage;
    const woken: string[] = [];
    const unlisten = await (await ts.another()).listen!((q) => woken.push(q));
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const q = uniqueName('q');
      const rolledBack = jobInsert({ queue: q });
      await client.query('BEGIN');
      assert.deepEqual(await s.jobInsertMany({ jobs: [rolledBack], tx: client }), { inserted: [rolledBack.id], ids: [rolledBack.id] });
      await client.query('ROLLBACK');
      assert.equal(await s.jobGet({ id: rolledBack.id }), undefined);

      const committed = jobInsert({ queue: q });
      await client.query('BEGIN');
      await s.jobInsertMany({ jobs: [committed], tx: client });
      assert.equal(await s.jobGet({ id: committed.id }), undefined, 'invisible before commit');
      assert.ok(!woken.includes(q), 'notified before commit');
      await client.query('COMMIT');
      assert.equal((await mustGet(s, committed.id)).status, 'pending');
      await waitFor(() => woken.includes(q), { message: 'notified at commit' });
    } finally {
      await client.end();
      await unlisten();
    }
  });
});

describe('postgres: pools, schemas, migrations', () => {
  it('leaves a user-supplied pg.Pool open on close()', async () => {
    const schema = testSchemaName('pg-user-pool');
    const pool = new pg.Pool({ connectionString: PG_URL, max: 3 });
    try {
      const s = new PostgresStorage(pool, { schema });
      await s.migrate();
      const id = await insertJob(s, { queue: uniqueName('q') });
      const unlisten = await s.listen(() => {});
      await unlisten();
      await s.close();
      const { rows } = await pool.query<{ status: string }>(`SELECT status FROM "${schema}".sdj_jobs WHERE id = $1`, [id]);
      assert.deepEqual(rows, [{ status: 'pending' }], 'the pool still works after close()');
    } finally {
      await dropSchema(schema);
      await pool.end();
    }
  });

  it('isolates schemas: rows, claims and wake-ups of one are invisible to another', async () => {
    const a = await makePostgresStorage('pg-iso-a');
    const b = await makePostgresStorage('pg-iso-b');
    try {
      const wokenA: string[] = [];
      const wokenB: string[] = [];
      const offA = await (await a.another()).listen!((q) => wokenA.push(q));
      const offB = await b.storage.listen!((q) => wokenB.push(q));
      const q = uniqueName('q');
      const id = await insertJob(a.storage, { queue: q });
      assert.equal(await b.storage.jobGet({ id }), undefined);
      assert.deepEqual(await b.storage.jobClaim({ workerId: 'w', queues: [{ name: q, limit: 10 }], leaseMs: 60_000 }), []);
      assert.equal((await b.storage.jobCountByStatus({})).pending, 0);
      await waitFor(() => wokenA.includes(q));
      assert.ok(!wokenB.includes(q), 'a wake-up crossed schemas');
      await offA();
      await offB();
      assert.equal((await claimOne(a.storage, q, id)).status, 'running');
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  it('rejects an invalid schema name with InvalidArgumentError', () => {
    for (const schema of ['', '1abc', 'bad-name', 'a"b', 'x'.repeat(64), 'sdj; DROP TABLE t', 'é', 'a.b']) {
      assert.throws(() => new PostgresStorage(PG_URL, { schema }), InvalidArgumentError, JSON.stringify(schema));
    }
    assert.throws(() => new PostgresStorage(PG_URL, { max: 0 }), InvalidArgumentError);
  });

  it('10 concurrent migrate() calls on a fresh schema all succeed and apply each version once', async () => {
    const schema = testSchemaName('pg-migrate-race');
    const all = Array.from({ length: 10 }, () => new PostgresStorage(PG_URL, { schema, max: 1 }));
    try {
      const results = await Promise.allSettled(all.map((s) => s.migrate()));
      assert.deepEqual(
        results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)),
        [],
      );
      const ledger = await pgAdmin<{ version: number }>(`SELECT version FROM "${schema}".sdj_migrations ORDER BY version`);
      assert.deepEqual(
        ledger.map((r) => r.version),
        MIGRATIONS.map((m) => m.version),
      );
      await insertJob(all[3]!, { queue: uniqueName('q') });
    } finally {
      for (const s of all) await s.close();
      await dropSchema(schema);
    }
  });

  it('refuses a schema newer than the code with SchemaTooNewError', async () => {
    const ts = await makePostgresStorage('pg-too-new');
    try {
      const schema = (ts.storage as PostgresStorage).schema;
      await pgAdmin(`INSERT INTO "${schema}".sdj_migrations (version, name, applied_at) VALUES (999, 'from_the_future', 0)`);
      const other = await ts.another();
      await assert.rejects(other.migrate(), (e) => e instanceof SchemaTooNewError && e.found === 999 && e.known === MIGRATIONS.length);
    } finally {
      await ts.cleanup();
    }
  });

  it('uses an injected clock for now, run_at and leases', async () => {
    const schema = testSchemaName('pg-clock');
    let t = 1_700_000_000_000;
    const s = new PostgresStorage(PG_URL, { schema, clock: () => t, max: 2 });
    try {
      await s.migrate();
      assert.equal(await s.clockNow(), t);
      const q = uniqueName('q');
      const id = await insertJob(s, { queue: q, delayMs: 1_000 });
      const row = await mustGet(s, id);
      assert.equal(row.createdAt, t);
      assert.equal(row.runAt, t + 1_000);
      assert.deepEqual(await s.jobClaim({ workerId: 'w', queues: [{ name: q, limit: 1 }], leaseMs: 500 }), []);
      t += 1_000;
      const claimed = await claimOne(s, q, id, { leaseMs: 500 });
      assert.equal(claimed.startedAt, t);
      assert.equal(claimed.leaseExpiresAt, t + 500);
      assert.deepEqual(await s.jobReclaimExpired({ limit: 10 }), []);
      t += 501;
      assert.deepEqual((await s.jobReclaimExpired({ limit: 10 })).map((r) => r.id), [id]);
    } finally {
      await s.close();
      await dropSchema(schema);
    }
  });
});

describe('postgres: claims under contention', () => {
  let ts: TestStorage;
  before(async () => {
    ts = await makePostgresStorage('pg-contention');
  });
  after(async () => ts.cleanup());

  it('4 instances claiming from 2,000 jobs (limit 7) never share a job nor exceed the limit', async () => {
    const q = uniqueName('q');
    const jobs = Array.from({ length: 2_000 }, () => jobInsert({ queue: q }));
    await ts.storage.jobInsertMany({ jobs });
    const claimers: Storage[] = await Promise.all([0, 1, 2, 3].map(() => ts.another()));
    const owner = new Map<string, string>();
    const dupes: string[] = [];
    let over = 0;
    await Promise.all(
      claimers.map(async (s, i) => {
        const workerId = `claimer-${i}`;
        for (;;) {
          const rows = await s.jobClaim({ workerId, queues: [{ name: q, limit: 7 }], leaseMs: 60_000 });
          if (rows.length > 7) over++;
          for (const r of rows) {
            if (owner.has(r.id)) dupes.push(r.id);
            owner.set(r.id, workerId);
          }
          if (rows.length === 0) return;
        }
      }),
    );
    assert.deepEqual(dupes, [], 'jobs claimed twice');
    assert.equal(over, 0, 'a claim returned more than its limit');
    assert.equal(owner.size, 2_000);
    const counts = await ts.storage.jobCountByStatus({ queue: q });
    assert.equal(counts.running, 2_000);
    assert.equal(counts.pending, 0);
    const perWorker = new Map<string, number>();
    for (const w of owner.values()) perWorker.set(w, (perWorker.get(w) ?? 0) + 1);
    assert.equal(perWorker.size, 4, 'every instance claimed some jobs');
  });

  it('a claim in flight when a pause lands does not take jobs of the paused queue', async () => {
    const s = ts.storage;
    const schema = (s as PostgresStorage).schema;
    const q = uniqueName('q');
    const id = await insertJob(s, { queue: q });
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      // Another session pauses the queue but has not committed yet.
      await admin.query('BEGIN');
      await admin.query(`UPDATE "${schema}".sdj_queues SET paused = true WHERE name = $1`, [q]);
      const claiming = s.jobClaim({ workerId: 'w', queues: [{ name: q, limit: 5 }], leaseMs: 60_000 });
      await waitFor(
        async () =>
          (await pgAdmin<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1", [`%"${schema}".sdj_queues%FOR SHARE%`]))[0]?.n !==
          '0',
        { message: 'the claim waits for the pausing transaction' },
      );
      await admin.query('COMMIT');
      assert.deepEqual(await claiming, [], 'the in-flight claim took a job of a paused queue');
      assert.equal((await mustGet(s, id)).status, 'pending');
    } finally {
      await admin.end();
      await s.queueSetPaused({ queue: q, paused: false });
    }
  });
});

describe('postgres: fan-out accounting under concurrency', () => {
  let ts: TestStorage;
  before(async () => {
    ts = await makePostgresStorage('pg-fan-out-stress');
  });
  after(async () => ts.cleanup());

  it('children finished, failed and cancelled at once from 4 instances: counted once, decided once, no deadlock escapes', async () => {
    const s = ts.storage;
    const strategies = ['fail-fast', 'collect-all', 'threshold'] as const;
    const parents = [];
    for (let i = 0; i < 12; i++) {
      const strategy = strategies[i % 3]!;
      const p = await fanOutParent(s, { n: 8, strategy, threshold: strategy === 'threshold' ? 0.6 : null });
      parents.push({ ...p, fences: await claimChildren(s, p) });
    }
    const workers = await Promise.all([0, 1, 2, 3].map(() => ts.another()));
    const canceller = await ts.another();
    // Every child gets one action; the actions of all fan-outs are interleaved across instances.
    const actions = parents.flatMap((p, pi) =>
      p.fences.map((f, ci) => ({ f, kind: (pi + ci) % 5 === 0 ? 'cancel' : (pi * 3 + ci) % 4 === 0 ? 'failed' : 'completed' })),
    );
    await Promise.all([
      ...workers.map(async (w, wi) => {
        const mine = actions.filter((a, i) => a.kind !== 'cancel' && i % 4 === wi);
        for (let i = 0; i < mine.length; i += 3) {
          await w.jobFinishMany({
            items: mine.slice(i, i + 3).map(({ f, kind }) =>
              kind === 'failed' ? { ...f, outcome: 'failed' as const, error: 'x' } : { ...f, outcome: 'completed' as const, resultJson: '1' },
            ),
          });
        }
      }),
      (async () => {
        for (const a of actions.filter((x) => x.kind === 'cancel')) await canceller.jobCancel({ id: a.f.jobId });
      })(),
    ]);
    for (const p of parents) {
      const f = await s.fanOutGet({ id: p.fanOutId });
      assert.ok(f);
      assert.equal(f.succeeded + f.failed + f.cancelled, f.total, `fan-out ${f.strategy}: every child counted exactly once`);
      assert.notEqual(f.status, 'running', 'every fan-out is decided once all children ended');
      assert.notEqual(f.decidedAt, null);
      // Whatever the order, the final counters pin the decision down where the rule allows.
      const bad = f.failed + f.cancelled;
      if (f.strategy === 'collect-all') assert.equal(f.status, 'succeeded');
      if (f.strategy === 'fail-fast') assert.equal(f.status, bad >= 1 ? 'failed' : 'succeeded');
      if (f.strategy === 'threshold' && decideFanOut({ ...f, succeeded: f.succeeded, failed: 0, cancelled: 0 }) === 'running') assert.equal(f.status, 'failed');
      if (f.strategy === 'threshold' && decideFanOut({ ...f, succeeded: 0 }) === 'running') assert.equal(f.status, 'succeeded');
      const kids = await s.jobList({ fanOutId: p.fanOutId, limit: 100 });
      assert.deepEqual(
        kids.filter((k) => !['completed', 'failed', 'cancelled'].includes(k.status)).map((k) => k.status),
        [],
        'no child left unfinished',
      );
      const parent = await mustGet(s, p.parentId);
      assert.equal(parent.status, 'pending', 'the parent was resumed');
    }
  });
});
