/**
 * MySQL/MariaDB driver: the operator tools as only this driver does them — the plans of
 * listings and of the queue summary over a few thousand jobs (primary-key walks in id order,
 * never a sort of the matching rows, and no completed row read by the summary), a retry batch
 * racing another transaction for a unique key, bulk skips, and the retry from the failed step of
 * a workflow whose last checkpoint is a failed fan-out, on the database clock.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MysqlStorage } from '../../src/storage/mysql/mysql-storage.js';
import { BULK_DELETE_FAN_OUTS, BULK_DELETE_JOBS, JOB_LOCK_MANY } from '../../src/storage/mysql/queries/bulk.js';
import { jobCountStatement, jobListStatement, QUEUE_SUMMARY, type FilteredStatement } from '../../src/storage/mysql/queries/listing.js';
import {
  SKIP_NOT_FOUND,
  SKIP_PARENT_UNFINISHED,
  SKIP_UNFINISHED_SUBJOBS,
  SKIP_UNIQUE_HELD,
  skipNotFinished,
  skipNotRetryable,
} from '../../src/storage/shared/contract-messages.js';
import type { JobListParams, Storage } from '../../src/storage/storage.js';
import { expectFanOut, finish } from '../conformance/fan-out-helpers.js';
import {
  claimChildren,
  claimOne,
  completedJob,
  failedJob,
  fanOutParent,
  fenceOf,
  insertJob,
  jobInsert,
  mustGet,
  newId,
  runningJob,
  uniqueName,
} from '../helpers/factories.js';
import { mysql, type MysqlClient } from '../helpers/mysql-client.js';
import { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';
import { waitFor } from '../helpers/wait-for.js';

/** One row of `EXPLAIN`. */
interface PlanRow {
  table: string | null;
  type: string | null;
  key: string | null;
  Extra: string | null;
}

/** A migrated storage on a database of its own, with a plain connection beside it. */
async function openDatabase(label: string): Promise<{ s: MysqlStorage; c: MysqlClient; url: string; close: () => Promise<void> }> {
  const db = await createTestDatabase(label);
  const url = mysqlDatabaseUrl(db);
  const s = new MysqlStorage(url, { connectionLimit: 5 });
  await s.migrate();
  const c = await mysql.createConnection(url);
  return {
    s,
    c,
    url,
    close: async () => {
      await c.end();
      await s.close();
      await dropTestDatabase(db);
    },
  };
}

/** 6,000 jobs over five queues: completed, every 100th failed, some cancelled, the last 500 pending. */
function seedRows(): unknown[][] {
  const rows: unknown[][] = [];
  for (let i = 1; i <= 6000; i++) {
    const status = i % 100 === 0 ? 'failed' : i % 250 === 1 ? 'cancelled' : i > 5500 ? 'pending' : 'completed';
    const id = i.toString(16).padStart(12, '0');
    rows.push([id, i % 7 === 0 ? 'report' : 'mail', `plan-q${i % 5}`, status, 1000 + i, 1000 + i, i % 100 === 0 ? `SMTP timeout ${i}` : null, i <= 5500 ? 2000 + i : null]);
  }
  return rows;
}

describe('mysql operations: plans over a few thousand jobs', () => {
  let db: Awaited<ReturnType<typeof openDatabase>>;
  before(async () => {
    db = await openDatabase('mysql-operations-plans');
    const rows = seedRows();
    for (let i = 0; i < rows.length; i += 1000) {
      await db.c.query('INSERT INTO sdj_jobs (id, type, queue, status, run_at, created_at, last_error, completed_at) VALUES ?', [rows.slice(i, i + 1000)]);
    }
    await db.c.query('ANALYZE TABLE sdj_jobs');
  });
  after(async () => db.close());

  /** The plan of a statement with its values. */
  async function plan(st: FilteredStatement): Promise<PlanRow[]> {
    const [rows] = await db.c.query(`EXPLAIN ${st.sql}`, st.values);
    return rows as PlanRow[];
  }

  /** Asserts a listing reads one index in id order, with no sort. */
  async function expectIdWalk(p: JobListParams, key: string): Promise<void> {
    const rows = await plan(jobListStatement(p));
    const text = JSON.stringify(rows);
    assert.equal(rows.length, 1, text);
    assert.equal(rows[0]!.key, key, text);
    assert.doesNotMatch(rows[0]!.Extra ?? '', /filesort|temporary/, text);
  }

  it('failed, failed and cancelled, no filter, a search, a queue: the primary key walked in id order, never sorted', async () => {
    for (const p of [
      { statuses: ['failed'], limit: 50 },
      { statuses: ['failed', 'cancelled'], limit: 50 },
      { statuses: ['failed'], queue: 'plan-q0', limit: 50, afterId: '000000000900' },
      { limit: 50 },
      { limit: 50, order: 'asc', afterId: '000000000800' },
      { search: 'timeout', limit: 50 },
      { statuses: ['pending'], limit: 50, order: 'asc' },
      { createdAfter: 5000, createdBefore: 6000, limit: 50 },
    ] as JobListParams[]) {
      await expectIdWalk(p, 'PRIMARY');
    }
    await expectIdWalk({ parentId: 'none', limit: 50 }, 'sdj_jobs_parent');
    const rows = await db.s.jobList({ statuses: ['failed'], limit: 3 });
    assert.deepEqual(rows.map((r) => r.id), ['000000001770', '00000000170c', '0000000016a8']);
    const page2 = await db.s.jobList({ statuses: ['failed'], limit: 2, afterId: '00000000170c' });
    assert.deepEqual(page2.map((r) => r.id), ['0000000016a8', '000000001644']);
    assert.deepEqual((await db.s.jobList({ search: 'TIMEOUT 12', limit: 5, order: 'asc' })).map((r) => r.lastError), ['SMTP timeout 1200']);
    assert.equal(await db.s.jobCount({ statuses: ['failed'] }), 60);
    assert.equal(await db.s.jobCount({ search: '%' }), 0, 'a % is no wildcard');
    const count = await plan(jobCountStatement({ statuses: ['failed'] }));
    assert.doesNotMatch(JSON.stringify(count), /"type":"ALL"/, 'a count by status reads an index range');
  });

  it('queueSummary reads the live and failed jobs through status ranges: no completed row, no full scan', async () => {
    const rows = await plan({ sql: QUEUE_SUMMARY, values: [null] });
    const text = JSON.stringify(rows);
    const jobs = rows.filter((r) => r.table === 'j');
    assert.ok(jobs.length >= 1, text);
    for (const r of jobs) {
      assert.notEqual(r.type, 'ALL', text);
      assert.notEqual(r.type, 'index', text);
    }
    assert.ok(jobs.some((r) => r.key === 'sdj_jobs_wake' && r.type === 'range'), text);
    const summary = (await db.s.queueSummary()).filter((r) => r.name.startsWith('plan-q'));
    assert.deepEqual(summary.map((r) => [r.name, r.pending, r.failed]), [
      ['plan-q0', 95, 60],
      ['plan-q1', 98, 0],
      ['plan-q2', 100, 0],
      ['plan-q3', 100, 0],
      ['plan-q4', 100, 0],
    ]);
  });

  it('bulk locks and deletes reach rows by their keys only', async () => {
    const ids = ['000000000064', '0000000000c8', '00000000012c'];
    const lock = await plan({ sql: JOB_LOCK_MANY.replace(' FOR UPDATE', ''), values: [ids] });
    assert.deepEqual(lock.map((r) => [r.key, r.type]), [['PRIMARY', 'range']], JSON.stringify(lock));
    for (const sql of [BULK_DELETE_JOBS, BULK_DELETE_FAN_OUTS]) {
      const rows = await plan({ sql, values: [JSON.stringify(ids)] });
      const x = rows.find((r) => r.table === 'x');
      assert.ok(x && (x.type === 'eq_ref' || x.type === 'ref'), JSON.stringify(rows));
    }
  });
});

describe('mysql operations: bulk actions and retries', () => {
  let db: Awaited<ReturnType<typeof openDatabase>>;
  let s: Storage;
  before(async () => {
    db = await openDatabase('mysql-operations-bulk');
    s = db.s;
  });
  after(async () => db.close());

  it('a retry batch whose unique key another transaction takes meanwhile skips that job and retries the rest', async () => {
    const key = uniqueName('key');
    const clash = await failedJob(s, { uniqueKey: key });
    const other = await failedJob(s);
    const holderConn = await mysql.createConnection(db.url);
    try {
      await holderConn.query('START TRANSACTION');
      const holder = jobInsert({ uniqueKey: key, queue: uniqueName('q') });
      await s.jobInsertMany({ jobs: [holder], tx: holderConn });
      const batch = s.jobRetryMany({ ids: [other.id, clash.id] });
      // The batch's check cannot see the uncommitted key; its write of the clashing job waits on
      // the unique index until that transaction ends (an UPDATE staying in the processlist; its
      // state is 'Sending data' when its SET list reads another table, as the retry's does).
      await waitFor(
        async () => {
          const [r] = await db.c.query(
            "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db = DATABASE() AND state IN ('Updating', 'Sending data') AND info LIKE 'UPDATE sdj_jobs SET status%'",
          );
          return Number((r as { n: number }[])[0]?.n ?? 0) > 0;
        },
        { timeout: 5_000, message: 'the batch waits for the other transaction' },
      );
      await holderConn.query('COMMIT');
      assert.deepEqual(await batch, { done: [other.id], skipped: [{ id: clash.id, reason: SKIP_UNIQUE_HELD }] });
      assert.equal((await mustGet(s, clash.id)).status, 'failed');
      assert.equal((await mustGet(s, other.id)).status, 'pending');
      assert.equal((await mustGet(s, holder.id)).status, 'pending');
    } finally {
      await holderConn.end();
    }
  });

  it('two jobs of one unique key in one batch: the first is retried, the second skipped', async () => {
    const key = uniqueName('key');
    const a = await failedJob(s, { uniqueKey: key });
    const b = await failedJob(s, { uniqueKey: key });
    assert.deepEqual(await s.jobRetryMany({ ids: [a.id, b.id] }), { done: [a.id], skipped: [{ id: b.id, reason: SKIP_UNIQUE_HELD }] });
  });

  it('every skip reason in one retry batch and one delete batch', async () => {
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
    // A completed root whose child still runs, and a completed child of a running parent.
    const root = await runningJob(s);
    const kid = await runningJob(s, { parentId: root.fence.jobId });
    await finish(s, root.fence, 'completed');
    const live = await runningJob(s);
    const done = await completedJob(s, { parentId: live.fence.jobId });
    const d = await s.jobDeleteMany({ ids: [held.id, pending, unknown, root.fence.jobId, done.id] });
    assert.deepEqual(d, {
      done: [held.id],
      skipped: [
        { id: pending, reason: skipNotFinished('pending') },
        { id: unknown, reason: SKIP_NOT_FOUND },
        { id: root.fence.jobId, reason: SKIP_UNFINISHED_SUBJOBS },
        { id: done.id, reason: SKIP_PARENT_UNFINISHED },
      ],
    });
    assert.equal((await mustGet(s, kid.fence.jobId)).status, 'running');
  });

  it('fromFailedStep on the database clock: a failed fan-out at the last checkpoint reopens, its deadline moved by the same instant as run_at', async () => {
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
    const steps = await db.s.stepList({ jobId: p.parentId, withTimes: true });
    assert.equal(steps.length, 1, 'the fan-out checkpoint is kept');
    assert.equal(typeof steps[0]!.createdAt, 'number', 'a checkpoint carries its created_at');
  });
});
