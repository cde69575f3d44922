/**
 * PostgreSQL: migration 2 splits `sdj_jobs` into a live and a history partition. A schema left
 * at version 1 and holding jobs in every status (with steps, signals, fan-outs and unique keys)
 * is migrated: every row is kept byte for byte, each in the partition of its status, every read
 * answers as before, the jobs carry on (claims, finishes that count on a fan-out, signals,
 * resumes, retries) and unique keys keep their meaning.
 *
 * Then the races the partitioned layout brings. A statement about to lock or update a row that
 * a concurrent transaction moved to the other partition with an UPDATE gets SQLSTATE 40001
 * ("tuple to be locked was already moved to another partition"), where one table would have
 * re-checked the row and skipped it. The driver moves rows by DELETE and INSERT, which its
 * concurrent statements skip like a row that stopped matching: each case holds one of the
 * driver's own moving statements in an open transaction, starts an operation, waits until the
 * server reports it blocked behind that transaction, commits, and requires the answer of the
 * one-table layout with no 40001 raised at all (a pool wrapper records every error). A move made
 * by someone else's UPDATE still raises it; the driver then runs the statement again. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { DuplicateJobError, InvalidStateError } from '../../src/errors.js';
import { MIGRATIONS_CREATE_LEDGER, MIGRATIONS_CREATE_SCHEMA } from '../../src/storage/postgres/queries/admin.js';
import { SCHEMA_PLACEHOLDER } from '../../src/storage/postgres/migrate.js';
import { MIGRATIONS } from '../../src/storage/postgres/migrations.generated.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import type { PgPoolClientLike, PgPoolLike, PgQueryResultLike } from '../../src/storage/postgres/connection.js';
import { JOB_LOCK_FOR_RETRY, JOB_RETRY } from '../../src/storage/postgres/queries/jobs.js';
import { JOB_CANCEL_MANY } from '../../src/storage/postgres/queries/fan-out.js';
import { JOB_FINISH_COMPLETED } from '../../src/storage/postgres/queries/run.js';
import type { Fence } from '../../src/storage/storage.js';
import { applied, claimOne, failedJob, insertJob, jobInsert, mustGet, runningJob, stepRow, uniqueName } from '../helpers/factories.js';
import { PG_URL, pgAdmin, testSchemaName } from '../helpers/postgres-storage.js';
import { waitFor } from '../helpers/wait-for.js';

const LIVE = ['pending', 'running', 'waiting', 'paused'];
const DONE = ['completed', 'failed', 'cancelled'];
const BULK_DONE = 5_000;
const BULK_LIVE = 500;

/** Opens a client on the test server; the caller ends it. */
async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  return c;
}

/** Creates `schema` at version 1 exactly as the migrator would, and records it in the ledger. */
async function createAtVersion1(c: pg.Client, schema: string): Promise<void> {
  const q = `"${schema}"`;
  await c.query(MIGRATIONS_CREATE_SCHEMA.replaceAll('{s}', q));
  await c.query(MIGRATIONS_CREATE_LEDGER.replaceAll('{s}', q));
  const v1 = MIGRATIONS.find((m) => m.version === 1)!;
  await c.query(v1.sql.replaceAll(SCHEMA_PLACEHOLDER, q));
  await c.query(`INSERT INTO ${q}.sdj_migrations (version, name, applied_at) VALUES (1, $1, 0)`, [v1.name]);
}

/** A v1 job row: defaults for every column, overridden by `o`. */
function row(id: string, status: string, o: Record<string, unknown> = {}): Record<string, unknown> {
  const t = 1_700_000_000_000;
  return {
    id, type: 'mig', queue: 'mq', status, priority: 0, attempt: 0, max_retries: 3, run_count: 0, args: `{"id":"${id}"}`,
    result: null, meta: null, last_error: null, run_at: t, created_at: t, started_at: null,
    completed_at: DONE.includes(status) ? t + 5 : null, timeout_ms: null, unique_key: null, tenant: null, parent_id: null,
    fan_out_id: null, fan_out_index: null, locked_by: null, lease_expires_at: null, heartbeat_at: null, wake_at: null,
    wait_signal: null, ...o,
  };
}

const FAR = Date.now() + 3_600_000;
const RUN = { attempt: 1, run_count: 1, locked_by: 'w-old', started_at: 1_700_000_000_010, lease_expires_at: FAR, heartbeat_at: Date.now() };

/** The hand-made v1 jobs: every status, a waiting fan-out parent, a finished workflow, unique keys. */
const JOBS = [
  row('p-live-key', 'pending', { unique_key: 'k-live', meta: '{"m":1}', priority: 5 }),
  row('p-paused', 'paused'),
  row('r-running', 'running', RUN),
  row('w-signal', 'waiting', { wait_signal: 'go', attempt: 0, run_count: 1 }),
  row('w-sleep', 'waiting', { wake_at: FAR, run_count: 1 }),
  row('fp-parent', 'waiting', { run_count: 1, type: 'parent' }),
  row('fc-done', 'completed', { parent_id: 'fp-parent', fan_out_id: 'fo-live', fan_out_index: 0, result: '"r0"', ...RUN, locked_by: null, lease_expires_at: null, heartbeat_at: null }),
  row('fc-running', 'running', { parent_id: 'fp-parent', fan_out_id: 'fo-live', fan_out_index: 1, ...RUN }),
  row('c-done-key', 'completed', { unique_key: 'k-done', result: '{"ok":true}', attempt: 1, run_count: 1 }),
  row('f-failed', 'failed', { last_error: 'boom', attempt: 4, run_count: 4 }),
  row('x-cancelled-key', 'cancelled', { unique_key: 'k-live' }),
  row('wf-root', 'completed', { result: '"all"', run_count: 2, type: 'parent' }),
  row('wf-kid-0', 'completed', { parent_id: 'wf-root', fan_out_id: 'fo-done', fan_out_index: 0, result: '1' }),
  row('wf-kid-1', 'completed', { parent_id: 'wf-root', fan_out_id: 'fo-done', fan_out_index: 1, result: '2' }),
];

/** Inserts the hand-made jobs, their steps, signals and fan-outs, and the bulk rows. */
async function seed(c: pg.Client, schema: string): Promise<void> {
  const q = `"${schema}"`;
  const cols = Object.keys(JOBS[0]!);
  for (const j of JOBS) {
    await c.query(`INSERT INTO ${q}.sdj_jobs (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, cols.map((k) => j[k]));
  }
  const steps: [string, number, string, string, string | null][] = [
    ['w-signal', 0, 'prep', 'completed', '1'],
    ['w-sleep', 0, 'nap', 'completed', String(FAR)],
    ['fp-parent', 0, 'fan-out', 'completed', '"fo-live"'],
    ['wf-root', 0, 'fan-out', 'completed', '"fo-done"'],
    ['wf-root', 1, 'sum', 'completed', '3'],
  ];
  for (const [id, i, name, status, out] of steps) {
    await c.query(`INSERT INTO ${q}.sdj_steps (job_id, step_index, step_name, status, output, created_at) VALUES ($1, $2, $3, $4, $5, 1)`, [id, i, name, status, out]);
  }
  await c.query(`INSERT INTO ${q}.sdj_signals (job_id, name, payload, created_at) VALUES ('w-signal', 'other', '"buffered"', 1), ('wf-root', 'x', '"old"', 1)`);
  await c.query(`UPDATE ${q}.sdj_signals SET consumed_at = 2 WHERE job_id = 'wf-root'`);
  await c.query(
    `INSERT INTO ${q}.sdj_fan_outs (id, parent_id, step_index, strategy, threshold, total, succeeded, failed, cancelled, status, deadline_at, created_at, decided_at)
     VALUES ('fo-live', 'fp-parent', 0, 'collect-all', NULL, 2, 1, 0, 0, 'running', NULL, 1, NULL),
            ('fo-done', 'wf-root', 0, 'fail-fast', NULL, 2, 2, 0, 0, 'succeeded', NULL, 1, 3)`,
  );
  await c.query(`INSERT INTO ${q}.sdj_queues (name, paused, updated_at) VALUES ('mq', false, 1), ('bulk', false, 1)`);
  await c.query(
    `INSERT INTO ${q}.sdj_jobs (id, type, queue, status, attempt, run_count, args, result, run_at, created_at, completed_at)
     SELECT 'bulk-done-' || n, 'bulk', 'bulk', (ARRAY['completed', 'failed', 'cancelled'])[1 + n % 3], 1, 1, '{"n":' || n || '}',
       CASE WHEN n % 3 = 0 THEN '"r' || n || '"' END, 1, 1, 2 + n
     FROM generate_series(1, ${BULK_DONE}) n`,
  );
  await c.query(
    `INSERT INTO ${q}.sdj_jobs (id, type, queue, status, args, run_at, created_at, unique_key)
     SELECT 'bulk-live-' || lpad(n::text, 5, '0'), 'bulk', 'bulk', 'pending', '{"n":' || n || '}', 1, 1, 'bulk-key-' || n
     FROM generate_series(1, ${BULK_LIVE}) n`,
  );
}

/**
 * Every row of a table as JSON text, in a stable order (compared before and after); `columns`
 * (default: all) keeps the comparison to the columns of version 1 once later migrations add some.
 */
async function dump(c: pg.Client, schema: string, table: string, order: string, columns = '*'): Promise<string[]> {
  const r = await c.query(`SELECT row_to_json(t)::text AS j FROM (SELECT ${columns} FROM "${schema}".${table}) t ORDER BY ${order}`);
  return r.rows.map((x: { j: string }) => x.j);
}

describe('postgres: migration 2 (live and history partitions)', () => {
  const schema = testSchemaName('pg-history-migration');
  let admin: pg.Client;
  const storages: PostgresStorage[] = [];
  let s: PostgresStorage;
  const before1: Record<string, string[]> = {};
  let statusCounts: Map<string, number>;

  before(async () => {
    admin = await client();
    await createAtVersion1(admin, schema);
    await seed(admin, schema);
    before1['jobs'] = await dump(admin, schema, 'sdj_jobs', 'id');
    before1['steps'] = await dump(admin, schema, 'sdj_steps', 'job_id, step_index');
    before1['signals'] = await dump(admin, schema, 'sdj_signals', 'seq');
    before1['fan_outs'] = await dump(admin, schema, 'sdj_fan_outs', 'id');
    const counts = await admin.query(`SELECT status, count(*)::int AS n FROM "${schema}".sdj_jobs GROUP BY status`);
    statusCounts = new Map(counts.rows.map((r: { status: string; n: number }) => [r.status, r.n]));
    // Several processes start at once: one migrates, the others find the schema current.
    for (let i = 0; i < 4; i++) storages.push(new PostgresStorage(PG_URL, { schema, max: 4 }));
    await Promise.all(storages.map((x) => x.migrate()));
    s = storages[0]!;
  });
  after(async () => {
    for (const x of storages) await x.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  it('applies version 2 once and keeps every row of every table byte for byte', async () => {
    const ledger = await admin.query(`SELECT version FROM "${schema}".sdj_migrations ORDER BY version`);
    assert.deepEqual(
      ledger.rows.map((r: { version: number }) => r.version),
      MIGRATIONS.map((m) => m.version),
    );
    assert.ok(MIGRATIONS.length >= 2);
    assert.equal(before1['jobs']!.length, JOBS.length + BULK_DONE + BULK_LIVE);
    const v1Columns = Object.keys(JSON.parse(before1['jobs']![0]!) as Record<string, unknown>).join(', ');
    assert.deepEqual(await dump(admin, schema, 'sdj_jobs', 'id', v1Columns), before1['jobs']);
    assert.deepEqual(await dump(admin, schema, 'sdj_steps', 'job_id, step_index'), before1['steps']);
    assert.deepEqual(await dump(admin, schema, 'sdj_signals', 'seq'), before1['signals']);
    assert.deepEqual(await dump(admin, schema, 'sdj_fan_outs', 'id'), before1['fan_outs']);
  });

  it('puts finished jobs in the history partition and live jobs in the live one', async () => {
    const r = await admin.query(
      `SELECT (SELECT relname::text FROM pg_class pc WHERE pc.oid = j.tableoid) AS part, status, count(*)::int AS n FROM "${schema}".sdj_jobs j GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    for (const x of r.rows as { part: string; status: string; n: number }[]) {
      const expected = LIVE.includes(x.status) ? 'sdj_jobs_live' : 'sdj_jobs_history';
      assert.equal(x.part, expected, `${x.status} rows in ${x.part}`);
      assert.equal(x.n, statusCounts.get(x.status), `${x.status} rows kept`);
    }
    assert.equal(r.rows.length, statusCounts.size);
    const only = await admin.query(`SELECT count(*)::int AS n FROM ONLY "${schema}".sdj_jobs_live WHERE status <> ALL($1)`, [LIVE]);
    assert.equal(only.rows[0].n, 0);
  });

  it('answers every read as before: jobs, counts, listings, steps, fan-outs and their children', async () => {
    for (const j of JOBS) {
      const got = await mustGet(s, j['id'] as string);
      assert.equal(got.status, j['status']);
      assert.equal(got.argsJson, j['args']);
      assert.equal(got.resultJson, j['result']);
      assert.equal(got.uniqueKey, j['unique_key']);
    }
    const many = await s.jobGetMany({ ids: ['bulk-done-1', 'bulk-live-00001', 'fc-done', 'fc-running', 'nope'] });
    assert.deepEqual(many.map((j) => j.id).sort(), ['bulk-done-1', 'bulk-live-00001', 'fc-done', 'fc-running']);
    const counts = await s.jobCountByStatus({});
    for (const [status, n] of statusCounts) assert.equal(counts[status as keyof typeof counts], n, status);
    const kids = await s.jobList({ parentId: 'fp-parent', limit: 10, order: 'asc' });
    assert.deepEqual(kids.map((k) => k.id).sort(), ['fc-done', 'fc-running']);
    assert.deepEqual((await s.jobList({ statuses: ['failed'], queue: 'mq', limit: 10 })).map((j) => j.id), ['f-failed']);
    assert.deepEqual((await s.stepList({ jobId: 'wf-root' })).map((x) => [x.stepName, x.outputJson]), [['fan-out', '"fo-done"'], ['sum', '3']]);
    const done = await s.fanOutCollect({ id: 'fo-done' });
    assert.equal(done?.fanOut.status, 'succeeded');
    assert.deepEqual(done?.children.map((k) => k.resultJson), ['1', '2']);
    const live = await s.fanOutCollect({ id: 'fo-live' });
    assert.deepEqual(live?.children.map((k) => [k.id, k.status, k.resultJson]), [['fc-done', 'completed', '"r0"'], ['fc-running', 'running', null]]);
  });

  it('carries the migrated jobs on: heartbeat, a child finish that decides its fan-out, signal, resume, claim', async () => {
    const runFence: Fence = { jobId: 'r-running', workerId: 'w-old', runCount: 1 };
    assert.deepEqual(await s.jobHeartbeat({ workerId: 'w-old', runs: [runFence], leaseMs: 60_000 }), ['r-running']);
    const kid: Fence = { jobId: 'fc-running', workerId: 'w-old', runCount: 1 };
    assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...kid, outcome: 'completed', resultJson: '"r1"' }] })), [true]);
    const fo = await s.fanOutCollect({ id: 'fo-live' });
    assert.equal(fo?.fanOut.status, 'succeeded');
    assert.equal(fo?.fanOut.succeeded, 2);
    assert.deepEqual(fo?.children.map((k) => k.resultJson), ['"r0"', '"r1"']);
    assert.equal((await mustGet(s, 'fp-parent')).status, 'pending', 'the parent is resumed');
    await s.signalSend({ jobId: 'w-signal', name: 'go', payloadJson: '"now"' });
    assert.equal((await mustGet(s, 'w-signal')).status, 'pending');
    await s.jobResume({ id: 'p-paused' });
    assert.equal((await mustGet(s, 'p-paused')).status, 'pending');
    const bulk = await s.jobClaim({ workerId: 'w-new', queues: [{ name: 'bulk', limit: BULK_LIVE + 10 }], leaseMs: 60_000 });
    assert.equal(bulk.length, BULK_LIVE);
    assert.equal(bulk[0]!.id, 'bulk-live-00001', 'claim order kept');
    const parts = await admin.query(`SELECT DISTINCT (SELECT relname::text FROM pg_class pc WHERE pc.oid = j.tableoid) AS part FROM "${schema}".sdj_jobs j WHERE id = ANY($1)`, [['fc-running', 'r-running']]);
    assert.deepEqual(parts.rows.map((r: { part: string }) => r.part).sort(), ['sdj_jobs_history', 'sdj_jobs_live']);
  });

  it('keeps unique keys: one live job per key, a finished job frees its key, a retry cannot take a held key', async () => {
    await assert.rejects(insertJob(s, { queue: 'mq', uniqueKey: 'k-live' }), DuplicateJobError);
    const skipped = await s.jobInsertMany({ jobs: [jobInsert({ queue: 'mq', uniqueKey: 'k-live' })], onConflict: 'skip' });
    assert.deepEqual(skipped.inserted, []);
    await insertJob(s, { queue: uniqueName('q'), uniqueKey: 'k-done' });
    await assert.rejects(s.jobRetry({ id: 'x-cancelled-key' }), DuplicateJobError);
    assert.equal((await mustGet(s, 'x-cancelled-key')).status, 'cancelled', 'nothing half-written');
    // The key's holder finishes: the key is free, and the cancelled job may take it again.
    const holder = await claimOne(s, 'mq', 'p-live-key');
    assert.deepEqual(applied(await s.jobFinishMany({ items: [{ jobId: holder.id, workerId: holder.lockedBy!, runCount: holder.runCount, outcome: 'completed', resultJson: null }] })), [true]);
    await s.jobRetry({ id: 'x-cancelled-key' });
    const back = await mustGet(s, 'x-cancelled-key');
    assert.equal(back.status, 'pending');
    await assert.rejects(insertJob(s, { queue: 'mq', uniqueKey: 'k-live' }), DuplicateJobError);
    const part = await admin.query(`SELECT (SELECT relname::text FROM pg_class pc WHERE pc.oid = j.tableoid) AS part FROM "${schema}".sdj_jobs j WHERE id = 'x-cancelled-key'`);
    assert.equal(part.rows[0].part, 'sdj_jobs_live', 'a retried job moves back to the live partition');
  });
});

/** A pool that records the SQLSTATE of every failed statement (its clients' too). */
function recordingPool(): { pool: PgPoolLike; codes: string[]; end: () => Promise<void> } {
  const inner = new pg.Pool({ connectionString: PG_URL, max: 6 });
  const codes: string[] = [];
  const record = <T>(p: Promise<T>): Promise<T> =>
    p.catch((e: unknown) => {
      codes.push(String((e as { code?: unknown }).code));
      throw e;
    });
  const wrapped = new WeakSet<object>();
  const pool: PgPoolLike = {
    query: (cfg) => record(inner.query(cfg)),
    connect: async () => {
      const c = await inner.connect();
      if (!wrapped.has(c)) {
        wrapped.add(c);
        // pg-pool's own `query` calls the client with a callback (no promise): pass those through.
        const q = c.query.bind(c) as (...args: unknown[]) => Promise<PgQueryResultLike> | undefined;
        (c as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
          const r = q(...args);
          return r === undefined ? r : record(r);
        };
      }
      return c as unknown as PgPoolClientLike;
    },
    end: async () => {},
  };
  return { pool, codes, end: () => inner.end() };
}

/** A transaction on its own connection, held open until committed. */
interface Held {
  /** Runs one of the driver's statements (`{s}` = the schema) in the transaction. */
  run(template: string, values: unknown[]): Promise<number>;
  /** Resolves once another backend waits for this transaction's locks. */
  blocking(): Promise<void>;
  /** Commits and closes the connection. */
  commit(): Promise<void>;
}

async function hold(schema: string): Promise<Held> {
  const c = await client();
  const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
  await c.query('BEGIN');
  return {
    run: async (template, values) => (await c.query(template.replaceAll('{s}', `"${schema}"`), values)).rowCount ?? 0,
    blocking: async () => {
      await waitFor(async () => (await pgAdmin<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [pid]))[0]!.n > 0, {
        timeout: 10_000,
        message: 'the operation waits for the held transaction',
      });
    },
    commit: async () => {
      try {
        await c.query('COMMIT');
      } finally {
        await c.end();
      }
    },
  };
}

/** Starts `op` once `setup` ran in a held transaction; commits when `op` waits for it; returns what `op` settled with. */
async function underHeld<T>(schema: string, setup: (h: Held) => Promise<void>, op: () => Promise<T>, meanwhile?: () => Promise<void>): Promise<T> {
  const h = await hold(schema);
  let p: Promise<T> | undefined;
  try {
    await setup(h);
    p = op();
    p.catch(() => {});
    await h.blocking();
    await meanwhile?.();
  } finally {
    await h.commit();
  }
  return p;
}

/** The driver's cancel of one job, as `jobCancel` runs it. */
const driverCancel = (id: string) => (h: Held) => h.run(JOB_CANCEL_MANY, [null, [id]]).then(() => undefined);

/** The driver's completion of one run, as `jobFinishMany` runs it. */
const driverComplete = (f: Fence) => (h: Held) =>
  h.run(JOB_FINISH_COMPLETED, [null, [f.jobId], [f.workerId], [f.runCount], ['"done"']]).then((n) => assert.equal(n, 1));

/** Someone else's move: an UPDATE of the status through `sdj_jobs`. */
const updateTo = (id: string, status: string) => (h: Held) =>
  h
    .run(`UPDATE {s}.sdj_jobs SET status = $2, completed_at = 1, locked_by = NULL, lease_expires_at = NULL, heartbeat_at = NULL WHERE id = $1`, [id, status])
    .then((n) => assert.equal(n, 1));

describe('postgres: statements racing a move to history', () => {
  let rec: ReturnType<typeof recordingPool>;
  let s: PostgresStorage;
  let schema: string;
  before(async () => {
    rec = recordingPool();
    schema = testSchemaName('pg-history-races');
    s = new PostgresStorage(rec.pool, { schema });
    await s.migrate();
  });
  after(async () => {
    await s.close();
    await rec.end();
    await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  });
  /** Asserts that no statement failed with 40001 since the last check. */
  function noSerializationFailure(): void {
    assert.deepEqual(rec.codes.splice(0).filter((c) => c === '40001'), []);
  }

  it('a heartbeat waiting on its job being finished does not report it held', async () => {
    const { fence } = await runningJob(s);
    const other = await runningJob(s);
    const held = await underHeld(schema, driverComplete(fence), () => s.jobHeartbeat({ workerId: fence.workerId, runs: [fence, other.fence], leaseMs: 60_000 }));
    assert.deepEqual(held, [other.fence.jobId]);
    noSerializationFailure();
  });

  it('a finish, a release, a checkpoint and a suspend waiting on a cancel apply nothing', async () => {
    const a = await runningJob(s);
    assert.deepEqual(applied(await underHeld(schema, driverCancel(a.fence.jobId), () => s.jobFinishMany({ items: [{ ...a.fence, outcome: 'completed', resultJson: '1' }] }))), [false]);
    const row = await mustGet(s, a.fence.jobId);
    assert.equal(row.status, 'cancelled');
    assert.equal(row.resultJson, null);
    const b = await runningJob(s);
    assert.deepEqual(await underHeld(schema, driverCancel(b.fence.jobId), () => s.jobRelease({ runs: [b.fence] })), []);
    const c = await runningJob(s);
    assert.equal(await underHeld(schema, driverCancel(c.fence.jobId), () => s.stepRecord({ fence: c.fence, step: stepRow(c.fence.jobId, 0) })), false);
    assert.deepEqual(await s.stepList({ jobId: c.fence.jobId }), []);
    const d = await runningJob(s);
    assert.equal(await underHeld(schema, driverCancel(d.fence.jobId), () => s.jobSuspend({ fence: d.fence, step: null, wakeAt: Date.now() + 60_000, waitSignal: null })), false);
    assert.equal((await mustGet(s, d.fence.jobId)).status, 'cancelled');
    noSerializationFailure();
  });

  it('a claim whose snapshot still showed a job pending skips it once cancelled', async () => {
    const queue = uniqueName('q');
    const gone = await insertJob(s, { queue });
    const stays = await insertJob(s, { queue });
    // The claim reads the queue row FOR SHARE first, after its snapshot was taken: the held
    // transaction locks that row, so the claim waits with the cancelled job still pending in
    // its snapshot.
    const rows = await underHeld(
      schema,
      async (h) => {
        await h.run('SELECT 1 FROM {s}.sdj_queues WHERE name = $1 FOR UPDATE', [queue]);
        await driverCancel(gone)(h);
      },
      () => s.jobClaim({ workerId: 'w', queues: [{ name: queue, limit: 5 }], leaseMs: 60_000 }),
    );
    assert.deepEqual(rows.map((r) => r.id), [stays]);
    noSerializationFailure();
  });

  it('a claim whose snapshot still showed a job pending skips it once another worker claimed and finished it', async () => {
    const queue = uniqueName('q');
    const first = await insertJob(s, { queue });
    const second = await insertJob(s, { queue });
    const other = new PostgresStorage(PG_URL, { schema, max: 2 });
    try {
      const rows = await underHeld(
        schema,
        (h) => h.run('SELECT 1 FROM {s}.sdj_queues WHERE name = $1 FOR UPDATE', [queue]).then(() => undefined),
        () => s.jobClaim({ workerId: 'w', queues: [{ name: queue, limit: 5 }], leaseMs: 60_000 }),
        async () => {
          // Meanwhile another worker's claim of `first` commits (its own claim statement would
          // wait for the queue row too, so the same row change is made directly), then its finish.
          await pgAdmin(`UPDATE "${schema}".sdj_jobs_live SET status = 'running', attempt = 1, run_count = 1, locked_by = 'w2', lease_expires_at = 9e12 WHERE id = $1`, [first]);
          const stored = await other.jobFinishMany({ items: [{ jobId: first, workerId: 'w2', runCount: 1, outcome: 'completed', resultJson: '2' }] });
          assert.deepEqual(applied(stored), [true]);
        },
      );
      assert.deepEqual(rows.map((r) => r.id), [second]);
      assert.equal((await mustGet(s, first)).status, 'completed');
      noSerializationFailure();
    } finally {
      await other.close();
    }
  });

  it('pause, signal, cancel and retry waiting on a move answer with the state after it', async () => {
    const pending = await insertJob(s, { queue: uniqueName('q') });
    await assert.rejects(
      underHeld(schema, driverCancel(pending), () => s.jobPause({ id: pending })),
      (e) => e instanceof InvalidStateError,
    );
    const run = await runningJob(s);
    await assert.rejects(
      underHeld(schema, driverComplete(run.fence), () => s.signalSend({ jobId: run.fence.jobId, name: 'x', payloadJson: null })),
      (e) => e instanceof InvalidStateError,
      'a signal to a job that finished meanwhile: the job is found, finished',
    );
    const run2 = await runningJob(s);
    assert.deepEqual(await underHeld(schema, driverComplete(run2.fence), () => s.jobCancel({ id: run2.fence.jobId })), []);
    assert.equal((await mustGet(s, run2.fence.jobId)).status, 'completed');
    const failed = await failedJob(s);
    await assert.rejects(
      underHeld(
        schema,
        async (h) => {
          await h.run(JOB_LOCK_FOR_RETRY, [failed.id]);
          await h.run(JOB_RETRY, [null, failed.id, 'unused', 1, 0]);
        },
        () => s.jobRetry({ id: failed.id }),
      ),
      (e) => e instanceof InvalidStateError,
      'a second retry finds the job pending again, not missing',
    );
    noSerializationFailure();
  });

  it("someone else's UPDATE moving a row makes a waiting statement fail with 40001; the driver runs it again", async () => {
    const { fence } = await runningJob(s);
    const other = await runningJob(s);
    const held = await underHeld(schema, updateTo(fence.jobId, 'completed'), () => s.jobHeartbeat({ workerId: fence.workerId, runs: [fence, other.fence], leaseMs: 60_000 }));
    assert.deepEqual(held, [other.fence.jobId]);
    assert.ok(rec.codes.splice(0).includes('40001'), 'the server raised 40001 and the statement ran again');
  });
});
