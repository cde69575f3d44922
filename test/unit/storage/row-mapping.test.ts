/**
 * The shared row mapping, on rows read from a real SQLite file: mapped keyed rows, raw tuples
 * and safe-integer (bigint) rows equal what `SqliteStorage` returns for the same rows, and so do
 * the shapes the other clients produce (BIGINT as text as `pg` returns it, text as byte buffers
 * as mysql2 returns binary columns). Values no client returns are refused with a StorageError.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { StorageError } from '../../../src/errors.js';
import { SqliteStorage } from '../../../src/storage/sqlite/sqlite-storage.js';
import type { JobRow } from '../../../src/storage/storage.js';
import {
  compareClaimOrder,
  createColumnCoercer,
  JOB_COLUMN_NAMES,
  mapFanOutRow,
  mapJobRow,
  mapJobTuple,
  mapReclaimedJob,
  mapScheduleRow,
  mapStepRow,
  type DbRecord,
} from '../../../src/storage/shared/row-mapping.js';
import { jobInsert, newId } from '../../helpers/factories.js';
import { removeSqliteFiles, tempSqlitePath } from '../../helpers/sqlite-storage.js';

const c = createColumnCoercer('test');

/** A row as `pg` returns BIGINT columns: every integer as decimal text. */
function asPgRow(r: DbRecord): DbRecord {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' && Number.isInteger(v) ? String(v) : v]));
}

/** A row as mysql2 returns binary text columns: every string as a Buffer. */
function asBufferRow(r: DbRecord): DbRecord {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' ? Buffer.from(v, 'utf8') : v]));
}

describe('row mapping (real SQLite rows)', () => {
  const path = tempSqlitePath('row-mapping');
  let storage: SqliteStorage;
  let db: Database.Database;
  const jobId = newId();
  const plainId = newId();
  const fanOutId = newId();

  before(async () => {
    storage = new SqliteStorage(path);
    await storage.migrate();
    await storage.jobInsertMany({ jobs: [jobInsert({ id: jobId, argsJson: '{"a":"é"}', metaJson: '{}', uniqueKey: 'u1', tenant: 't', timeoutMs: 5000 }), jobInsert({ id: plainId })] });
    await storage.scheduleUpsert({ name: 'nightly', specJson: '{"cron":"0 0 * * *"}', optionsJson: '{}', nextRunAt: 1_700_000_000_000 });
    db = new Database(path);
    // Fill the columns the contract's writes would set later, so no mapped field is trivially null.
    db.prepare(
      `UPDATE sdj_jobs SET status = 'waiting', result = '"r"', last_error = 'boom', started_at = 11, completed_at = 12, parent_id = 'p', fan_out_id = ?,
       fan_out_index = 3, locked_by = 'w', lease_expires_at = 13, heartbeat_at = 14, wake_at = 15, wait_signal = 'sig' WHERE id = ?`,
    ).run(fanOutId, jobId);
    db.prepare("INSERT INTO sdj_steps (job_id, step_index, step_name, status, output, error, created_at) VALUES (?, 2, 'call', 'failed', NULL, 'bad', 1)").run(jobId);
    db.prepare("INSERT INTO sdj_fan_outs (id, parent_id, step_index, strategy, threshold, total, succeeded, failed, cancelled, status, deadline_at, created_at, decided_at) VALUES (?, ?, 1, 'threshold', 0.7, 10, 7, 2, 1, 'succeeded', 99, 5, 6)").run(fanOutId, jobId);
  });

  after(async () => {
    db.close();
    await storage.close();
    removeSqliteFiles(path);
  });

  const jobRecords = (d: Database.Database): DbRecord[] => d.prepare('SELECT * FROM sdj_jobs ORDER BY id').all() as DbRecord[];

  it('maps keyed job rows, raw tuples and bigint rows as the driver does', async () => {
    const want = await storage.jobGetMany({ ids: [jobId, plainId] });
    want.sort((a, b) => (a.id < b.id ? -1 : 1));
    assert.equal(want[0]?.fanOutIndex ?? want[1]?.fanOutIndex, 3);
    assert.deepEqual(jobRecords(db).map((r) => mapJobRow(c, r)), want);
    const tuples = db.prepare(`SELECT ${JOB_COLUMN_NAMES.join(', ')} FROM sdj_jobs ORDER BY id`).raw().all() as unknown[][];
    assert.deepEqual(tuples.map((t) => mapJobTuple(c, t)), want);
    const big = new Database(path, { readonly: true });
    big.defaultSafeIntegers(true);
    try {
      const rows = jobRecords(big);
      assert.equal(typeof rows[0]?.['run_at'], 'bigint');
      assert.deepEqual(rows.map((r) => mapJobRow(c, r)), want);
    } finally {
      big.close();
    }
  });

  it('maps the same rows in the shapes pg (BIGINT as text) and mysql2 (binary text) return', async () => {
    const want = (await storage.jobGetMany({ ids: [jobId, plainId] })).sort((a, b) => (a.id < b.id ? -1 : 1));
    assert.deepEqual(jobRecords(db).map(asPgRow).map((r) => mapJobRow(c, r)), want);
    assert.deepEqual(jobRecords(db).map(asBufferRow).map((r) => mapJobRow(c, r)), want);
  });

  it('maps step, fan-out and schedule rows as the driver does (a threshold stays fractional)', async () => {
    const step = db.prepare('SELECT * FROM sdj_steps').get() as DbRecord;
    assert.deepEqual(mapStepRow(c, step), (await storage.stepList({ jobId }))[0]);
    const fan = db.prepare('SELECT * FROM sdj_fan_outs').get() as DbRecord;
    const wantFan = await storage.fanOutGet({ id: fanOutId });
    assert.equal(wantFan?.threshold, 0.7);
    assert.deepEqual(mapFanOutRow(c, fan), wantFan);
    assert.deepEqual(mapFanOutRow(c, { ...asPgRow(fan), threshold: '0.7' }), wantFan, 'DECIMAL as text');
    const sched = db.prepare('SELECT * FROM sdj_schedules').get() as DbRecord;
    assert.deepEqual(mapScheduleRow(c, sched), (await storage.scheduleList())[0]);
    assert.deepEqual(mapScheduleRow(c, asBufferRow(sched)), (await storage.scheduleList())[0]);
    assert.deepEqual(mapScheduleRow(c, asPgRow(sched)), (await storage.scheduleList())[0]);
  });

  it('maps a reclaimed job', () => {
    assert.deepEqual(mapReclaimedJob(c, { id: 'j', type: 't', queue: 'q', status: 'failed', attempt: '4', max_retries: 3n }), { id: 'j', type: 't', queue: 'q', status: 'failed', attempt: 4, maxRetries: 3 });
  });
});

describe('createColumnCoercer', () => {
  it('accepts numbers, bigints and numeric text; refuses other values with a StorageError naming the dialect', () => {
    const m = createColumnCoercer('mysql');
    assert.equal(m.int(5), 5);
    assert.equal(m.int(5n), 5);
    assert.equal(m.int('1700000000000'), 1_700_000_000_000);
    assert.equal(m.optInt(null), null);
    assert.equal(m.optInt(undefined), null);
    assert.equal(m.num('0.25'), 0.25);
    assert.equal(m.optNum(null), null);
    for (const bad of ['abc', '', 1.5, 2n ** 60n, null, {}]) {
      assert.throws(() => m.int(bad), (e) => e instanceof StorageError && e.message.startsWith('mysql: expected'), `int(${String(bad)})`);
    }
    for (const bad of ['NaN', 'Infinity', ' ', true]) assert.throws(() => m.num(bad), StorageError, `num(${String(bad)})`);
  });

  it('accepts text and byte buffers; refuses numbers as text', () => {
    const m = createColumnCoercer('pg');
    assert.equal(m.str('x'), 'x');
    assert.equal(m.str(Buffer.from('héllo')), 'héllo');
    assert.equal(m.str(new Uint8Array(Buffer.from('ok'))), 'ok');
    assert.equal(m.optStr(null), null);
    assert.throws(() => m.str(5), (e) => e instanceof StorageError && e.message.startsWith('pg: expected text'));
  });
});

describe('compareClaimOrder', () => {
  it('orders by priority descending, then run_at, then id', () => {
    const row = (id: string, priority: number, runAt: number) => ({ id, priority, runAt }) as JobRow;
    const rows = [row('b', 0, 5), row('a', 0, 5), row('c', 1, 9), row('d', 0, 1)];
    assert.deepEqual(rows.sort(compareClaimOrder).map((r) => r.id), ['c', 'd', 'a', 'b']);
  });
});
