/**
 * PostgreSQL driver: the operator tools as only PostgreSQL does them — the plans of listings
 * and of the queue summary over a few thousand jobs (id-order walks of the primary keys or of
 * `sdj_jobs_history_failed`, never a sort, and no completed row read by the summary), a retry
 * batch racing another transaction for a unique key, and the retry from the failed step of a
 * workflow whose last checkpoint is a failed fan-out, on the database clock.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { jobCountStatement, jobListStatement, QUEUE_SUMMARY, type FilteredStatement } from '../../src/storage/postgres/queries/listing.js';
import { SKIP_NOT_FOUND, SKIP_UNIQUE_HELD, skipNotFinished, skipNotRetryable } from '../../src/storage/shared/contract-messages.js';
import type { JobListParams } from '../../src/storage/storage.js';
import { expectFanOut, finish } from '../conformance/fan-out-helpers.js';
import { claimChildren, claimOne, failedJob, fanOutParent, fenceOf, insertJob, jobInsert, mustGet, newId, uniqueName } from '../helpers/factories.js';
import { makePostgresStorage, PG_URL, pgAdmin } from '../helpers/postgres-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

/** Rows of the plan fixture: completed, failed, cancelled and pending jobs over five queues. */
const SEED = `
INSERT INTO {s}.sdj_jobs (id, type, queue, status, run_at, created_at, last_error, completed_at)
SELECT lpad(to_hex(i), 12, '0'), CASE WHEN i % 7 = 0 THEN 'report' ELSE 'mail' END, 'plan-q' || (i % 5),
  CASE WHEN i % 100 = 0 THEN 'failed' WHEN i % 250 = 1 THEN 'cancelled' WHEN i > 5500 THEN 'pending' ELSE 'completed' END,
  1000 + i, 1000 + i, CASE WHEN i % 100 = 0 THEN 'SMTP timeout ' || i END, CASE WHEN i <= 5500 THEN 2000 + i END
FROM generate_series(1, 6000) i`;

describe('postgres operations: plans over a few thousand jobs', () => {
  let ts: TestStorage;
  let c: pg.Client;
  let schemaSql: string;
  before(async () => {
    ts = await makePostgresStorage('pg-operations-plans');
    schemaSql = `"${(ts.storage as PostgresStorage).schema}"`;
    c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(SEED.replaceAll('{s}', schemaSql));
    await c.query(`ANALYZE ${schemaSql}.sdj_jobs_live`);
    await c.query(`ANALYZE ${schemaSql}.sdj_jobs_history`);
  });
  after(async () => {
    await c.end();
    await ts.cleanup();
  });

  /** The plan of a statement with its values (planned for them, as the driver's unnamed statements are). */
  async function plan(st: FilteredStatement): Promise<string> {
    const r = await c.query({ text: `EXPLAIN (COSTS OFF) ${st.text.replaceAll('{s}', schemaSql)}`, values: st.values });
    return r.rows.map((x: Record<string, string>) => x['QUERY PLAN']).join('\n');
  }

  /** Asserts a listing's plan walks indexes in id order: no sort, no sequential scan. */
  async function expectIdWalk(p: JobListParams, uses: RegExp[], avoids: RegExp[] = []): Promise<string> {
    const text = await plan(jobListStatement(p));
    assert.doesNotMatch(text, /\bSort\b(?! Key)/, `no sort:\n${text}`);
    assert.doesNotMatch(text, /Seq Scan/, `no sequential scan:\n${text}`);
    for (const re of uses) assert.match(text, re, `${String(re)}:\n${text}`);
    for (const re of avoids) assert.doesNotMatch(text, re, `${String(re)}:\n${text}`);
    return text;
  }

  it('failed (or failed and cancelled) jobs, newest first: sdj_jobs_history_failed walked backwards, the live partition pruned', async () => {
    for (const statuses of [['failed'], ['failed', 'cancelled'], ['cancelled']] as const) {
      await expectIdWalk({ statuses: [...statuses], limit: 50 }, [/Index Scan Backward using sdj_jobs_history_failed/], [/sdj_jobs_live/, /sdj_jobs_history_pkey/]);
    }
    await expectIdWalk({ statuses: ['failed'], queue: 'plan-q0', limit: 50, afterId: '000000000900' }, [/sdj_jobs_history_failed/], [/sdj_jobs_live/]);
    const count = await plan(jobCountStatement({ statuses: ['failed'] }));
    assert.match(count, /Index Only Scan using sdj_jobs_history_failed/, count);
  });

  it('no filter and a search: both primary keys merged in id order, in either direction', async () => {
    await expectIdWalk({ limit: 50 }, [/Merge Append/, /Index Scan Backward using sdj_jobs_history_pkey/, /Index Scan Backward using sdj_jobs_live_pkey/]);
    await expectIdWalk({ limit: 50, order: 'asc', afterId: '000000000800' }, [/Merge Append/, /Index Cond: \(id > /]);
    await expectIdWalk({ search: 'timeout', limit: 50 }, [/Merge Append/, /strpos\(lower/]);
    await expectIdWalk({ statuses: ['pending'], limit: 50, order: 'asc' }, [/Index Scan using sdj_jobs_live_pkey/], [/sdj_jobs_history/]);
    const rows = await ts.storage.jobList({ statuses: ['failed'], limit: 3 });
    assert.deepEqual(rows.map((r) => r.id), ['000000001770', '00000000170c', '0000000016a8']);
  });

  it('queueSummary reads history only through sdj_jobs_history_failed', async () => {
    const text = await plan({ text: QUEUE_SUMMARY, values: [null] });
    assert.match(text, /Index Only Scan using sdj_jobs_history_failed/, text);
    assert.doesNotMatch(text, /sdj_jobs_history_pkey|Seq Scan on sdj_jobs_history|sdj_jobs_prune|sdj_jobs_history_parent/, text);
    const rows = (await ts.storage.queueSummary()).filter((r) => r.name.startsWith('plan-q'));
    assert.deepEqual(rows.map((r) => [r.name, r.pending, r.failed]), [
      ['plan-q0', 95, 60],
      ['plan-q1', 98, 0],
      ['plan-q2', 100, 0],
      ['plan-q3', 100, 0],
      ['plan-q4', 100, 0],
    ]);
  });
});

describe('postgres operations: bulk actions and retries', () => {
  let ts: TestStorage;
  before(async () => {
    ts = await makePostgresStorage('pg-operations-bulk');
  });
  after(async () => ts.cleanup());

  it('a retry batch whose unique key another transaction takes meanwhile skips that job and retries the rest', async () => {
    const s = ts.storage;
    const key = uniqueName('key');
    const clash = await failedJob(s, { uniqueKey: key });
    const other = await failedJob(s);
    // Another transaction holds the key, uncommitted: the batch's check cannot see it, and its
    // write waits on the unique index until that transaction ends.
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query('BEGIN');
      const holder = jobInsert({ uniqueKey: key, queue: uniqueName('q') });
      await s.jobInsertMany({ jobs: [holder], tx: c });
      const batch = s.jobRetryMany({ ids: [other.id, clash.id] });
      // Polled from another connection: inside a transaction, pg_stat_activity keeps its first snapshot.
      await waitFor(
        async () => {
          const r = await pgAdmin<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0", [
            (s as PostgresStorage).schema,
          ]);
          return (r[0]?.n ?? 0) > 0;
        },
        { timeout: 5_000, message: 'the batch waits for the other transaction' },
      );
      await c.query('COMMIT');
      assert.deepEqual(await batch, { done: [other.id], skipped: [{ id: clash.id, reason: SKIP_UNIQUE_HELD }] });
      assert.equal((await mustGet(s, clash.id)).status, 'failed');
      assert.equal((await mustGet(s, other.id)).status, 'pending');
      assert.equal((await mustGet(s, holder.id)).status, 'pending');
    } finally {
      await c.end();
    }
  });

  it('every skip reason in one retry batch and one delete batch', async () => {
    const s = ts.storage;
    const key = uniqueName('key');
    const held = await failedJob(s, { uniqueKey: key });
    await insertJob(s, { uniqueKey: key, queue: uniqueName('q') });
    const pending = await insertJob(s, { queue: uniqueName('q') });
    const failed = await failedJob(s);
    const unknown = newId();
    const r = await s.jobRetryMany({ ids: [held.id, pending, failed.id, unknown] });
    assert.deepEqual(r, {
      done: [failed.id],
      skipped: [
        { id: held.id, reason: SKIP_UNIQUE_HELD },
        { id: pending, reason: skipNotRetryable('pending') },
        { id: unknown, reason: SKIP_NOT_FOUND },
      ],
    });
    const d = await s.jobDeleteMany({ ids: [held.id, pending, unknown] });
    assert.deepEqual(d, { done: [held.id], skipped: [{ id: pending, reason: skipNotFinished('pending') }, { id: unknown, reason: SKIP_NOT_FOUND }] });
  });

  it('fromFailedStep on the database clock: a failed fan-out at the last checkpoint reopens, its deadline moved by the same instant as run_at', async () => {
    const s = ts.storage;
    const p = await fanOutParent(s, { n: 3, stepIndex: 0, timeoutMs: 30_000, child: { maxRetries: 0 } });
    const [c0, c1] = await claimChildren(s, p);
    await finish(s, c0!, 'completed');
    await finish(s, c1!, 'failed');
    const decided = await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 1, failed: 1, cancelled: 1 });
    const run = await claimOne(s, p.queue, p.parentId);
    await finish(s, fenceOf(run), 'failed');
    await s.jobRetry({ id: p.parentId, fromFailedStep: true });
    const parent = await mustGet(s, p.parentId);
    assert.equal(parent.status, 'pending');
    const fan = await expectFanOut(s, p.fanOutId, { status: 'running', decidedAt: null, succeeded: 1, failed: 0, cancelled: 0 });
    assert.equal(fan.deadlineAt, parent.runAt + (decided.deadlineAt! - decided.createdAt), 'deadline moved with the retry instant');
    const kids = await s.jobGetMany({ ids: p.childIds });
    assert.deepEqual(p.childIds.map((id) => kids.find((k) => k.id === id)?.status), ['completed', 'pending', 'pending']);
    for (const k of kids.filter((x) => x.status === 'pending')) assert.equal(k.runAt, parent.runAt);
    assert.equal((await s.stepList({ jobId: p.parentId })).length, 1, 'the fan-out checkpoint is kept');
  });
});
