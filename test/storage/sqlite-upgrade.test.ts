/**
 * SQLite: upgrading a database file made at schema version 1. The file is made with version 1's
 * SQL and ledger row only, filled through the storage contract with jobs in every status and
 * workflows (test/helpers/upgrade-fixtures.ts) plus plain rows inserted with SQL, then opened as
 * an application does (`migrate()`, `new Queue`) by this process while two other processes open
 * it too: the test holds the file's write lock until both have printed that they are about to
 * migrate, then releases it and this process migrates while they wait for the lock (their
 * `busy_timeout`). Then: versions 2 and 3 were applied once, by one of the three, and the others ran
 * without error; every row of every table is the same, column by column (`quote()` of each, with its
 * rowid), the only change to the schema is the new index, built over the finished roots already
 * there and read by the prune statement (EXPLAIN QUERY PLAN); every read answers as before; runs
 * keep their leases and finish by their fence; workflows, signals and a worker carry on; a prune
 * deletes exactly the due finished roots with their subtrees and rows; and an up-to-date file
 * opens without running migration 2 again.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { Queue } from '../../src/queue/queue.js';
import { MIGRATIONS } from '../../src/storage/sqlite/migrations.generated.js';
import { MIGRATIONS_CREATE_LEDGER, MIGRATIONS_INSERT } from '../../src/storage/sqlite/queries/admin.js';
import { JOB_PRUNE_ROOTS } from '../../src/storage/sqlite/queries/jobs.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import type { Logger } from '../../src/types.js';
import { removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';
import {
  BULK_DONE, T_NOW, bulkRows, itCarriesOnAfterUpgrade, readThroughApi, seedAtVersion1, type BulkRow, type ManualClock, type PruneRow, type Seeded,
} from '../helpers/upgrade-fixtures.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
const V1 = MIGRATIONS.find((m) => m.version === 1)!;
const V2 = MIGRATIONS.find((m) => m.version === 2)!;
const V3 = MIGRATIONS.find((m) => m.version === 3)!;
const SRC = new URL('../../src/', import.meta.url).pathname;

/** Makes the file at version 1 exactly as the migrator would (WAL, ledger, version 1's SQL, its ledger row). */
function createAtVersion1(path: string): void {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.transaction(() => {
      db.exec(MIGRATIONS_CREATE_LEDGER);
      db.exec(V1.sql);
      db.prepare(MIGRATIONS_INSERT).run(1, V1.name, 1);
    }).immediate();
  } finally {
    db.close();
  }
}

/** Inserts plain job rows with version 1's columns, in one transaction. */
function insertBulk(db: BetterSqlite3.Database, rows: readonly BulkRow[]): void {
  const cols = Object.keys(rows[0]!);
  const st = db.prepare(`INSERT INTO sdj_jobs (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`);
  db.transaction(() => rows.forEach((r) => st.run(r))).immediate();
}

/** Every row of every table but the ledger: rowid and `quote()` of each column, in rowid order. */
function dumpRows(db: BetterSqlite3.Database): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sdj_migrations' ORDER BY name").pluck().all() as string[];
  for (const t of tables) {
    const cols = (db.prepare(`SELECT name FROM pragma_table_info('${t}') ORDER BY cid`).pluck().all() as string[]).map((c) => `quote("${c}")`);
    out[t] = db.prepare(`SELECT rowid || ':' || ${cols.join(" || '|' || ")} FROM "${t}" ORDER BY rowid`).pluck().all() as string[];
  }
  return out;
}

/** Every schema object but the ledger: type, name, table and SQL. */
function dumpSchema(db: BetterSqlite3.Database): string[] {
  return (db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name <> 'sdj_migrations' ORDER BY type, name").all() as Record<string, unknown>[]).map((r) => JSON.stringify(r));
}

/** The ledger's rows. */
function ledger(db: BetterSqlite3.Database): unknown[] {
  return db.prepare('SELECT version, name, applied_at FROM sdj_migrations ORDER BY version').raw().all();
}

/** A logger that collects the versions each `migrate()` reports applied. */
function migrationLog(): { logger: Logger; applied: number[][] } {
  const appliedLog: number[][] = [];
  const nothing = (): void => {};
  const logger: Logger = {
    debug: nothing, warn: nothing, error: nothing,
    info: (message, fields) => void (message === 'sqlite schema migrated' && appliedLog.push(fields?.['versions'] as number[])),
  };
  return { logger, applied: appliedLog };
}

/**
 * Another process that opens the file with its own clock and migrates: it prints `ready` right
 * before `migrate()`, then the versions its migration applied, as JSON.
 */
function migratorProcess(path: string, clock: number): { ready: Promise<void>; done: Promise<{ applied: number[]; code: number | null }> } {
  const code = `
    import { SqliteStorage } from ${JSON.stringify(`${SRC}storage/sqlite/sqlite-storage.js`)};
    const applied = [];
    const none = () => {};
    const logger = { debug: none, warn: none, error: none, info: (m, f) => { if (m === 'sqlite schema migrated') applied.push(...f.versions); } };
    const s = new SqliteStorage(process.env.SDJ_DB, { clock: () => Number(process.env.SDJ_CLOCK), busyTimeoutMs: 30000, logger });
    console.log('ready');
    await s.migrate();
    await s.close();
    console.log(JSON.stringify({ applied }));`;
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env: { ...process.env, SDJ_DB: path, SDJ_CLOCK: String(clock) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: string[] = [];
  let readyResolve!: () => void;
  const ready = new Promise<void>((resolve) => (readyResolve = resolve));
  createInterface({ input: proc.stdout }).on('line', (l) => (lines.push(l), l === 'ready' && readyResolve()));
  const exited = new Promise<number | null>((resolve) => proc.on('close', (c) => resolve(c)));
  return {
    ready: Promise.race([ready, exited.then((c) => Promise.reject(new Error(`migrator exited (${c}) before ready:\n${stderr}`)))]),
    done: exited.then((c) => {
      const last = lines.at(-1) ?? '';
      assert.equal(c, 0, `migrator failed:\n${stderr}`);
      return { applied: (JSON.parse(last) as { applied: number[] }).applied, code: c };
    }),
  };
}

/** Every job as the prune model needs it. */
function pruneRows(db: BetterSqlite3.Database): PruneRow[] {
  return db.prepare('SELECT id, parent_id AS parentId, status, completed_at AS completedAt FROM sdj_jobs').all() as PruneRow[];
}

/** The owning job of every step, signal and fan-out row, sorted. */
function owners(db: BetterSqlite3.Database): Record<string, string[]> {
  const of = (sql: string) => (db.prepare(sql).pluck().all() as string[]).sort();
  return { steps: of('SELECT job_id FROM sdj_steps'), signals: of('SELECT job_id FROM sdj_signals'), fanOuts: of('SELECT parent_id FROM sdj_fan_outs') };
}

describe('sqlite: upgrade of a file at schema version 1', () => {
  const path = tempSqlitePath('sqlite-upgrade');
  const at: ManualClock = { now: 0 };
  const log = migrationLog();
  let raw: BetterSqlite3.Database;
  let s: SqliteStorage;
  let queue: Queue;
  let seeded: Seeded;
  let pruneBeforeUpgrade: unknown;
  const before1: { api?: unknown; rows?: Record<string, string[]>; schema?: string[] } = {};
  let others: { applied: number[]; code: number | null }[];

  before(async () => {
    createAtVersion1(path);
    raw = new Database(path);
    s = new SqliteStorage(path, { clock: () => at.now, logger: log.logger });
    seeded = await seedAtVersion1(s, at);
    insertBulk(raw, bulkRows());
    queue = new Queue(s);
    before1.api = await readThroughApi(queue, s, seeded);
    before1.rows = dumpRows(raw);
    before1.schema = dumpSchema(raw);
    try {
      raw.prepare(`EXPLAIN QUERY PLAN ${JOB_PRUNE_ROOTS}`);
    } catch (e) {
      pruneBeforeUpgrade = (e as Error).message;
    }

    // The upgrade: two other processes open the file and reach migrate() while the write lock is
    // held; it is released, and this process migrates too.
    const lock = new Database(path);
    lock.exec('BEGIN IMMEDIATE');
    const procs = [1, 2].map((i) => migratorProcess(path, T_NOW + i));
    try {
      await Promise.all(procs.map((p) => p.ready));
    } finally {
      lock.exec('COMMIT');
      lock.close();
    }
    await s.migrate();
    others = await Promise.all(procs.map((p) => p.done));
  });
  after(async () => {
    await s.close();
    raw.close();
    removeSqliteFiles(path);
  });

  it('applies versions 2 and 3 once, by one of the processes, while the others open the file meanwhile without error', () => {
    const all = [log.applied.flat(), ...others.map((o) => o.applied)];
    assert.deepEqual(all.filter((a) => a.length > 0), [[2, 3]], `versions applied by each: ${JSON.stringify(all)}`);
    const clocks = [T_NOW, T_NOW + 1, T_NOW + 2];
    const winner = clocks[all.findIndex((a) => a.length > 0)];
    assert.deepEqual(ledger(raw), [[1, V1.name, 1], [2, V2.name, winner], [3, V3.name, winner]]);
  });

  it('keeps every row of every table, column by column, and changes the schema only by the prune index and the operations objects', () => {
    const { sdj_workers: workers, ...rows } = dumpRows(raw);
    assert.deepEqual(workers, [], 'the worker registry starts empty');
    assert.deepEqual(rows, before1.rows);
    assert.equal(before1.rows!['sdj_jobs']!.length, bulkRows().length + Object.keys(seeded.ids).length);
    const now = dumpSchema(raw);
    const added = now.filter((x) => !before1.schema!.includes(x));
    assert.deepEqual(now.filter((x) => !added.includes(x)), before1.schema, 'nothing removed or changed');
    const names = added.map((x) => JSON.parse(x) as Record<string, string>).map((x) => [x['type'], x['name'], x['tbl_name']]);
    assert.deepEqual(names.sort(), [
      ['index', 'sdj_jobs_failed', 'sdj_jobs'],
      ['index', 'sdj_jobs_prune', 'sdj_jobs'],
      ['index', 'sdj_workers_expires', 'sdj_workers'],
      ['index', 'sqlite_autoindex_sdj_workers_1', 'sdj_workers'],
      ['table', 'sdj_workers', 'sdj_workers'],
    ]);
    assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
  });

  it('builds the prune index over the finished roots already there, and the prune statement reads it', () => {
    assert.match(String(pruneBeforeUpgrade), /no such index: sdj_jobs_prune/, 'before the upgrade the prune statement cannot be prepared');
    assert.deepEqual(raw.prepare("SELECT name FROM pragma_index_info('sdj_jobs_prune') ORDER BY seqno").pluck().all(), ['status', 'completed_at']);
    const where = "parent_id IS NULL AND completed_at IS NOT NULL AND status IN ('completed', 'failed', 'cancelled')";
    const viaIndex = raw.prepare(`SELECT count(*) FROM sdj_jobs INDEXED BY sdj_jobs_prune WHERE ${where}`).pluck().get();
    const viaTable = raw.prepare(`SELECT count(*) FROM sdj_jobs NOT INDEXED WHERE ${where}`).pluck().get();
    assert.equal(viaTable, BULK_DONE + 8, 'the bulk roots and the 8 hand-made finished roots');
    assert.equal(viaIndex, viaTable);
    const plan = (raw.prepare(`EXPLAIN QUERY PLAN ${JOB_PRUNE_ROOTS}`).all({ status: 'completed', cutoff: 1, completed: 1, failed: 1, cancelled: 1, limit: 10 }) as { detail: string }[]).map((r) => r.detail);
    assert.match(plan.join(' | '), /SEARCH r USING INDEX sdj_jobs_prune \(status=\? AND completed_at<\?\)/);
  });

  itCarriesOnAfterUpgrade(() => ({ queue, s, at, seeded, apiBefore: before1.api, pruneRows: () => pruneRows(raw), owners: () => owners(raw) }));

  it('opens an up-to-date file without running migration 2 again', async () => {
    const ledgerBefore = ledger(raw);
    const logged = log.applied.length;
    const db = new Database(path);
    const execs: string[] = [];
    const exec = db.exec.bind(db);
    db.exec = (sql: string) => (execs.push(sql), exec(sql));
    const again = migrationLog();
    const other = new SqliteStorage(db, { logger: again.logger });
    try {
      await other.migrate();
      await other.migrate();
      await s.migrate();
    } finally {
      await other.close();
      db.close();
    }
    assert.deepEqual(again.applied, []);
    assert.equal(log.applied.length, logged);
    assert.deepEqual(execs, [MIGRATIONS_CREATE_LEDGER, MIGRATIONS_CREATE_LEDGER]);
    assert.deepEqual(ledger(raw), ledgerBefore);
  });
});
