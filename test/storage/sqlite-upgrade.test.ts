/**
 * SQLite: upgrading a database file made at schema version 1. The file is made with version 1's
 * SQL and ledger row only, filled with jobs in every status and workflows written through the
 * storage contract (test/helpers/upgrade-fixtures.ts) plus plain rows inserted with SQL — written
 * on a shadow file at the latest version (today's code writes columns version 1 does not have),
 * read there through the API, then copied, rowids kept, into version 1's columns — then opened as
 * an application does (`migrate()`, `new Queue`) by this process while two other processes open
 * it too: the test holds the file's write lock until both have printed that they are about to
 * migrate, then releases it and this process migrates while they wait for the lock (their
 * `busy_timeout`). Then: versions 2, 3 and 4 were applied once, by one of the three, and the others
 * ran without error; every row of every table is the same in version 1's columns (`quote()` of
 * each, with its rowid), and the new columns hold their defaults; the schema changes only by the
 * objects of migrations 2, 3 and 4; the prune index is built over the finished roots already there
 * and read by the prune statement (EXPLAIN QUERY PLAN); every read answers as before; runs keep
 * their leases and finish by their fence; workflows, signals and a worker carry on; a prune
 * deletes exactly the due finished roots with their subtrees and rows; and an up-to-date file
 * opens without running a migration again.
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
const V4 = MIGRATIONS.find((m) => m.version === 4)!;
const V5 = MIGRATIONS.find((m) => m.version === 5)!;
/** Every version after 1, which the upgrade applies. */
const LATER = MIGRATIONS.filter((m) => m.version > 1);
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

/** Every table but the ledger, by name. */
function tablesOf(db: BetterSqlite3.Database): string[] {
  return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sdj_migrations' ORDER BY name").pluck().all() as string[];
}

/** The stored columns of every table but the ledger, in order (`table_info` leaves generated ones out). */
function columnsOf(db: BetterSqlite3.Database): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const t of tablesOf(db)) out[t] = db.prepare(`SELECT name FROM pragma_table_info('${t}') ORDER BY cid`).pluck().all() as string[];
  return out;
}

/** Every row of the tables of `columns`: rowid and `quote()` of each of its columns, in rowid order. */
function dumpRows(db: BetterSqlite3.Database, columns: Record<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [t, list] of Object.entries(columns)) {
    const cols = list.map((c) => `quote("${c}")`);
    out[t] = db.prepare(`SELECT rowid || ':' || ${cols.join(" || '|' || ")} FROM "${t}" ORDER BY rowid`).pluck().all() as string[];
  }
  return out;
}

/**
 * Copies every row of the tables of `columns` from the file at `from` into those columns of
 * `db`'s file, rowids kept; `sqlite_sequence` last, replacing what the copy of `sdj_signals` put
 * there.
 */
function copyRows(db: BetterSqlite3.Database, from: string, columns: Record<string, string[]>): void {
  const order = Object.keys(columns).sort((a, b) => Number(a === 'sqlite_sequence') - Number(b === 'sqlite_sequence'));
  db.prepare('ATTACH DATABASE ? AS shadow').run(from);
  try {
    db.transaction(() => {
      for (const t of order) {
        const cols = columns[t]!.map((c) => `"${c}"`).join(', ');
        db.exec(`DELETE FROM main."${t}"`);
        db.exec(`INSERT INTO main."${t}" (rowid, ${cols}) SELECT rowid, ${cols} FROM shadow."${t}" ORDER BY rowid`);
      }
    }).immediate();
  } finally {
    db.exec('DETACH DATABASE shadow');
  }
}

/**
 * What a copy into `columns` leaves out of `db`: the rows of each table not in `columns`, and
 * the rows of each table whose other stored columns do not all hold their defaults.
 */
function leftOut(db: BetterSqlite3.Database, columns: Record<string, string[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tablesOf(db)) {
    const extra = (db.prepare(`SELECT name, dflt_value AS d FROM pragma_table_info('${t}') ORDER BY cid`).all() as { name: string; d: string | null }[])
      .filter((c) => columns[t] !== undefined && !columns[t].includes(c.name));
    const differs = extra.length === 0 ? '' : ` WHERE NOT (${extra.map((c) => `"${c.name}" IS ${c.d ?? 'NULL'}`).join(' AND ')})`;
    if (columns[t] === undefined || extra.length > 0) out[t] = db.prepare(`SELECT count(*) FROM "${t}"${differs}`).pluck().get() as number;
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
  const shadowPath = tempSqlitePath('sqlite-upgrade-shadow');
  const before1: {
    api?: unknown; rows?: Record<string, string[]>; schema?: string[]; columns?: Record<string, string[]>; leftOut?: Record<string, number>;
    shadowRows?: Record<string, string[]>;
  } = {};
  let others: { applied: number[]; code: number | null }[];

  before(async () => {
    createAtVersion1(path);
    raw = new Database(path);
    s = new SqliteStorage(path, { clock: () => at.now, logger: log.logger });
    queue = new Queue(s);
    before1.columns = columnsOf(raw);
    // Written and read on a file at the latest version, then copied into version 1's columns.
    const shadow = new SqliteStorage(shadowPath, { clock: () => at.now });
    const shadowRaw = new Database(shadowPath);
    try {
      await shadow.migrate();
      seeded = await seedAtVersion1(shadow, at);
      insertBulk(shadowRaw, bulkRows());
      // Queue rows (the seed makes none), so that the queue limit columns are added to rows.
      for (const [queue, paused] of [['idle-paused', [true]], ['idle-resumed', [true, false]]] as const) {
        for (const p of paused) await shadow.queueSetPaused({ queue, paused: p });
      }
      before1.api = await readThroughApi(new Queue(shadow), shadow, seeded);
      before1.leftOut = leftOut(shadowRaw, before1.columns);
      before1.shadowRows = dumpRows(shadowRaw, before1.columns);
    } finally {
      await shadow.close();
      shadowRaw.close();
    }
    copyRows(raw, shadowPath, before1.columns);
    before1.rows = dumpRows(raw, before1.columns);
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
    removeSqliteFiles(shadowPath);
  });

  it('applies versions 2, 3 and 4 once, by one of the processes, while the others open the file meanwhile without error', () => {
    const all = [log.applied.flat(), ...others.map((o) => o.applied)];
    assert.deepEqual(all.filter((a) => a.length > 0), [LATER.map((m) => m.version)], `versions applied by each: ${JSON.stringify(all)}`);
    const clocks = [T_NOW, T_NOW + 1, T_NOW + 2];
    const winner = clocks[all.findIndex((a) => a.length > 0)];
    assert.deepEqual(ledger(raw), [[1, V1.name, 1], [2, V2.name, winner], [3, V3.name, winner], [4, V4.name, winner], ...LATER.filter((m) => m.version > 4).map((m) => [m.version, m.name, winner])]);
  });

  it('keeps every row of every table in version 1\'s columns, rowid and all, and the new columns and tables hold their defaults', () => {
    // sdj_event_head's one row is migration 6's own (the event id counter), not the seed's.
    assert.deepEqual(
      before1.leftOut,
      { sdj_event_head: 1, sdj_event_subscribers: 0, sdj_events: 0, sdj_jobs: 0, sdj_queues: 0, sdj_rate_state: 0, sdj_type_limits: 0, sdj_workers: 0 },
      'the seed wrote nothing that version 1 cannot hold',
    );
    assert.deepEqual(before1.rows, before1.shadowRows, 'the copy holds the rows written at the latest version, rowids kept');
    assert.deepEqual(dumpRows(raw, before1.columns!), before1.rows);
    const jobs = before1.rows!['sdj_jobs']!.length;
    const queues = before1.rows!['sdj_queues']!.length;
    assert.equal(jobs, bulkRows().length + Object.keys(seeded.ids).length);
    assert.equal(queues, 2, 'the paused and the resumed queue');
    const added = (t: string) => (raw.prepare(`SELECT name FROM pragma_table_xinfo('${t}') ORDER BY cid`).pluck().all() as string[]).filter((c) => !before1.columns![t]!.includes(c));
    assert.deepEqual(added('sdj_jobs'), ['concurrency_key', 'rate_key', 'limited', 'debounce_key', 'concurrency_group', 'rate_group', 'progress_value', 'progress_message', 'progress_at']);
    assert.deepEqual(added('sdj_queues'), ['concurrency', 'rate_limit', 'rate_period_ms']);
    for (const t of Object.keys(before1.columns!)) if (t !== 'sdj_jobs' && t !== 'sdj_queues') assert.deepEqual(added(t), [], t);
    const jobDefaults = raw.prepare('SELECT limited, concurrency_key, rate_key, debounce_key, concurrency_group, rate_group, count(*) FROM sdj_jobs GROUP BY 1, 2, 3, 4, 5, 6').raw().all();
    assert.deepEqual(jobDefaults, [[0, null, null, null, '', '', jobs]], 'every job: not limited, no keys, groups read as empty');
    const progressDefaults = raw.prepare('SELECT progress_value, progress_message, progress_at, count(*) FROM sdj_jobs GROUP BY 1, 2, 3').raw().all();
    assert.deepEqual(progressDefaults, [[null, null, null, jobs]], 'every job: no progress');
    const queueDefaults = raw.prepare('SELECT concurrency, rate_limit, rate_period_ms, count(*) FROM sdj_queues GROUP BY 1, 2, 3').raw().all();
    assert.deepEqual(queueDefaults, [[null, null, null, queues]], 'every queue: no limits');
    const newTables = tablesOf(raw).filter((t) => before1.columns![t] === undefined);
    assert.deepEqual(newTables, ['sdj_event_head', 'sdj_event_subscribers', 'sdj_events', 'sdj_rate_state', 'sdj_type_limits', 'sdj_workers']);
    for (const t of newTables.filter((n) => n !== 'sdj_event_head')) assert.equal(raw.prepare(`SELECT count(*) FROM "${t}"`).pluck().get(), 0, `${t} starts empty`);
    assert.deepEqual(raw.prepare('SELECT singleton, last_id FROM sdj_event_head').raw().all(), [[1, 0]], 'the event id counter starts at 0');
    assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
  });

  it('changes the schema only by the objects of migrations 2, 3 and 4: the new columns on sdj_jobs and sdj_queues, the claim index replaced, the new indexes and tables', () => {
    const now = dumpSchema(raw);
    const was = before1.schema!;
    const parse = (x: string) => JSON.parse(x) as Record<string, string | null>;
    const removed = was.filter((x) => !now.includes(x)).map(parse);
    const added = now.filter((x) => !was.includes(x)).map(parse);
    assert.deepEqual(removed.map((x) => [x['type'], x['name']]), [['index', 'sdj_jobs_claim'], ['table', 'sdj_jobs'], ['table', 'sdj_queues']]);
    assert.deepEqual(added.map((x) => [x['type'], x['name'], x['tbl_name']]), [
      ['index', 'sdj_event_subscribers_expires', 'sdj_event_subscribers'],
      ['index', 'sdj_events_at', 'sdj_events'],
      ['index', 'sdj_jobs_claim', 'sdj_jobs'],
      ['index', 'sdj_jobs_debounce', 'sdj_jobs'],
      ['index', 'sdj_jobs_failed', 'sdj_jobs'],
      ['index', 'sdj_jobs_limited', 'sdj_jobs'],
      ['index', 'sdj_jobs_prune', 'sdj_jobs'],
      ['index', 'sdj_jobs_unique_done', 'sdj_jobs'],
      ['index', 'sdj_workers_expires', 'sdj_workers'],
      ['index', 'sqlite_autoindex_sdj_event_subscribers_1', 'sdj_event_subscribers'],
      ['index', 'sqlite_autoindex_sdj_type_limits_1', 'sdj_type_limits'],
      ['index', 'sqlite_autoindex_sdj_workers_1', 'sdj_workers'],
      ['table', 'sdj_event_head', 'sdj_event_head'],
      ['table', 'sdj_event_subscribers', 'sdj_event_subscribers'],
      ['table', 'sdj_events', 'sdj_events'],
      ['table', 'sdj_jobs', 'sdj_jobs'],
      ['table', 'sdj_queues', 'sdj_queues'],
      ['table', 'sdj_rate_state', 'sdj_rate_state'],
      ['table', 'sdj_type_limits', 'sdj_type_limits'],
      ['table', 'sdj_workers', 'sdj_workers'],
    ]);
    const sqlOf = (list: Record<string, string | null>[], type: string, name: string) => list.find((x) => x['type'] === type && x['name'] === name)!['sql']!;
    // ADD COLUMN appends each definition, as migration 4 wrote it, to the table's CREATE sql.
    const appended = (t: string) => [V4, V5].flatMap((v) => [...v.sql.matchAll(new RegExp(`^ALTER TABLE ${t} ADD COLUMN (.+);$`, 'gm'))]).map((m) => `, ${m[1]}`).join('');
    for (const t of ['sdj_jobs', 'sdj_queues']) assert.equal(sqlOf(added, 'table', t), `${sqlOf(removed, 'table', t).slice(0, -1)}${appended(t)})`, t);
    assert.match(appended('sdj_jobs'), /^, concurrency_key TEXT, rate_key TEXT, limited INTEGER NOT NULL DEFAULT 0 .*, debounce_key TEXT, concurrency_group TEXT GENERATED .*, rate_group TEXT GENERATED .*, progress_value REAL, progress_message TEXT, progress_at INTEGER$/);
    assert.equal(appended('sdj_queues'), ', concurrency INTEGER, rate_limit INTEGER, rate_period_ms INTEGER');
    const claim = "CREATE INDEX sdj_jobs_claim ON sdj_jobs (queue, priority DESC, run_at, id) WHERE status = 'pending'";
    assert.equal(sqlOf(removed, 'index', 'sdj_jobs_claim'), claim);
    assert.equal(sqlOf(added, 'index', 'sdj_jobs_claim'), `${claim} AND limited = 0`, 'same columns, limited jobs left out');
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

  it('opens an up-to-date file without running a migration again', async () => {
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
