/**
 * The run's record of every row deleted from the library's jobs, steps, fan-outs and signals
 * tables, kept by the database itself: a trigger copies each deleted row into a `chaos_deleted_*`
 * table in the deleting transaction, with the database's time of the deletion and who deleted
 * it. The library cannot leave a row out or dress it up: the copy commits or rolls back with the
 * delete. A retry deletes rows too (the checkpoints, fan-outs and descendants of the job it
 * restarts): the audit keeps apart what a prune deleted (`in_prune`) from the rest.
 *
 * Who deleted, per backend:
 * - PostgreSQL: `tx` is the transaction id; `in_prune` says whether the transaction held the
 *   fleet's prune lock (the advisory lock of the schema) at that moment. Jobs: every row deleted
 *   from the `sdj_jobs_history` partition (finished jobs: prunes, and retries moving a job back
 *   to live), plus unfinished rows deleted through `sdj_jobs` (a statement trigger; a finish
 *   moves its row by deleting it from `sdj_jobs_live` by name, which this does not see).
 * - MySQL/MariaDB: `tx` is the connection id, `stmt_at` the deleting statement's start (µs),
 *   `in_prune` whether that connection held the named prune lock. MySQL has no transaction id a
 *   trigger can read (audit-deletions.ts says how one prune is recognised).
 * - SQLite: each process's storage runs on a connection opened by the run (backend.ts) that
 *   defines `chaos_prune_tx()`: the token of the `Storage.jobPrune` call in progress in that
 *   process, else NULL. SQLite runs a whole call synchronously, in one transaction, so the token
 *   names exactly the transaction that deleted. `in_prune` is `tx IS NOT NULL`.
 */
import { createHash } from 'node:crypto';
import { pruneLockKey } from '../../src/storage/postgres/retention.js';
import type { Backend } from './options.js';
import type { BackendEnv, ChaosDb } from './backend.js';

/** The token of the `jobPrune` call running in this process (SQLite; see the module header). */
export const pruneMark: { token: string | null; seq: number } = { token: null, seq: 0 };

type ColType = 'key' | 'int' | 'big' | 'real' | 'text';

/** The archived tables and the columns copied from each. */
export const ARCHIVED = {
  jobs: {
    table: 'sdj_jobs',
    cols: { id: 'key', parent_id: 'key', type: 'key', queue: 'key', status: 'key', attempt: 'int', max_retries: 'int', run_count: 'int', args: 'text', result: 'text', meta: 'text', last_error: 'text', fan_out_id: 'key', fan_out_index: 'int', completed_at: 'big', limited: 'int' },
  },
  steps: { table: 'sdj_steps', cols: { job_id: 'key', step_index: 'int', step_name: 'key', status: 'key', output: 'text', error: 'text' } },
  fan_outs: {
    table: 'sdj_fan_outs',
    cols: { id: 'key', parent_id: 'key', strategy: 'key', threshold: 'real', total: 'int', succeeded: 'int', failed: 'int', cancelled: 'int', status: 'key', created_at: 'big', decided_at: 'big' },
  },
  signals: { table: 'sdj_signals', cols: { job_id: 'key', name: 'key', payload: 'text', consumed_at: 'big' } },
} as const satisfies Record<string, { table: string; cols: Record<string, ColType> }>;

/** Which archive. */
export type ArchiveKind = keyof typeof ARCHIVED;

const TYPES: Record<Backend, Record<ColType, string>> = {
  postgres: { key: 'text', int: 'integer', big: 'bigint', real: 'double precision', text: 'text' },
  mysql: { key: 'VARCHAR(512)', int: 'INT', big: 'BIGINT', real: 'DOUBLE', text: 'LONGTEXT' },
  sqlite: { key: 'TEXT', int: 'INTEGER', big: 'INTEGER', real: 'REAL', text: 'TEXT' },
};
const SEQ: Record<Backend, string> = { postgres: 'bigserial PRIMARY KEY', mysql: 'BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY', sqlite: 'INTEGER PRIMARY KEY' };
const MS_NOW: Record<Backend, string> = {
  postgres: 'floor(extract(epoch from clock_timestamp()) * 1000)::bigint',
  mysql: "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000",
  sqlite: "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)",
};

/** The archive table of `kind`. */
export const archiveOf = (kind: ArchiveKind): string => `chaos_deleted_${kind}`;

/** Creates the archive tables and the triggers that fill them (after the library's migrations). */
export async function createPruneArchive(db: ChaosDb, env: BackendEnv): Promise<void> {
  const b = db.backend;
  let held: string;
  let s = '';
  if (b === 'postgres') {
    s = `"${env['CHAOS_PG_SCHEMA']!}".`;
    held = `EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = ${pruneLockKey(env['CHAOS_PG_SCHEMA']!)}::bigint)`;
  } else if (b === 'mysql') {
    const [row] = await db.all<{ name: string }>('SELECT DATABASE() AS name');
    const name = row!.name;
    // The library's lock name (mysql/queries/admin.ts `PRUNE_LOCK`), for this database.
    const lock = name.length <= 54 ? `sdj_prune_${name}` : `sdj_prune_${createHash('sha1').update(name).digest('hex')}`;
    held = `IFNULL(IS_USED_LOCK('${lock}') = CONNECTION_ID(), 0)`;
  } else held = 'chaos_prune_tx() IS NOT NULL';
  const tx = { postgres: 'txid_current()::text', mysql: 'CONNECTION_ID()', sqlite: 'chaos_prune_tx()' }[b];
  const stmt = b === 'mysql' ? "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))" : 'NULL';
  const bool = { postgres: 'boolean', mysql: 'TINYINT', sqlite: 'INTEGER' }[b];
  const suffix = b === 'mysql' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin' : '';
  for (const [kind, spec] of Object.entries(ARCHIVED) as [ArchiveKind, (typeof ARCHIVED)[ArchiveKind]][]) {
    const names = Object.keys(spec.cols);
    const defs = Object.entries(spec.cols).map(([c, t]) => `${c} ${TYPES[b][t as ColType]} NULL`);
    await db.run(
      `CREATE TABLE ${s}${archiveOf(kind)} (seq ${SEQ[b]}, ${defs.join(', ')}, deleted_at ${TYPES[b].big} NOT NULL, stmt_at ${TYPES[b].big} NULL, ` +
        `tx ${TYPES[b].key} NULL, in_prune ${bool} NOT NULL, source ${TYPES[b].key} NOT NULL)${suffix}`,
    );
    const into = `INSERT INTO ${s}${archiveOf(kind)} (${names.join(', ')}, deleted_at, stmt_at, tx, in_prune, source)`;
    const values = (row: string, source: string): string => `${names.map((c) => `${row}.${c}`).join(', ')}, ${MS_NOW[b]}, ${stmt}, ${tx}, ${held}, '${source}'`;
    if (b === 'mysql') {
      await db.run(`CREATE TRIGGER chaos_archive_${kind} AFTER DELETE ON ${spec.table} FOR EACH ROW ${into} VALUES (${values('OLD', 'table')})`);
    } else if (b === 'sqlite') {
      await db.run(`CREATE TRIGGER chaos_archive_${kind} AFTER DELETE ON ${spec.table} BEGIN ${into} VALUES (${values('OLD', 'table')}); END`);
    } else {
      const fn = `${s}chaos_archive_${kind}`;
      await db.run(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${into} VALUES (${values('OLD', kind === 'jobs' ? 'history' : 'table')}); RETURN NULL; END $$`);
      const on = kind === 'jobs' ? `${s}sdj_jobs_history` : `${s}${spec.table}`;
      await db.run(`CREATE TRIGGER chaos_archive_${kind} AFTER DELETE ON ${on} FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
      if (kind === 'jobs') {
        await db.run(
          `CREATE FUNCTION ${fn}_live() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${into} SELECT ${values('o', 'live')} FROM chaos_old_rows o ` +
            `WHERE o.status NOT IN ('completed', 'failed', 'cancelled'); RETURN NULL; END $$`,
        );
        await db.run(`CREATE TRIGGER chaos_archive_jobs_live AFTER DELETE ON ${s}sdj_jobs REFERENCING OLD TABLE AS chaos_old_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}_live()`);
      }
    }
  }
}

/** The database's clock now, in ms (the clock the library's prune compares ages with). */
export async function dbNow(db: ChaosDb): Promise<number> {
  const [row] = await db.all<{ t: unknown }>(`SELECT ${MS_NOW[db.backend]} AS t`);
  return Number(row!.t);
}

/** One archived row as the audit reads it. */
export interface DeletedRow {
  seq: number;
  /** The copied columns, as named in the library's table. */
  row: Record<string, unknown>;
  deletedAt: number;
  stmtAt: number | null;
  tx: string | null;
  inPrune: boolean;
  source: string;
}

/** Reads one archive in deletion order (large results of `chaos.big` left out, as for live rows). */
export async function readDeleted(db: ChaosDb, kind: ArchiveKind): Promise<DeletedRow[]> {
  const cols = Object.keys(ARCHIVED[kind].cols).map((c) => (kind === 'jobs' && c === 'result' ? "CASE WHEN type = 'chaos.big' THEN NULL ELSE result END AS result" : c));
  const rows = await db.all<Record<string, unknown>>(`SELECT seq, ${cols.join(', ')}, deleted_at, stmt_at, tx, in_prune, source FROM ${archiveOf(kind)} ORDER BY seq`);
  return rows.map((r) => ({
    seq: Number(r['seq']),
    row: r,
    deletedAt: Number(r['deleted_at']),
    stmtAt: r['stmt_at'] === null || r['stmt_at'] === undefined ? null : Number(r['stmt_at']),
    tx: r['tx'] === null || r['tx'] === undefined ? null : String(r['tx']),
    inPrune: r['in_prune'] === true || Number(r['in_prune']) === 1,
    source: String(r['source']),
  }));
}

/** The stored result of a deleted `chaos.big` job (read one at a time). */
export async function deletedResult(db: ChaosDb, seq: number): Promise<string | null> {
  const [row] = await db.all<{ result: string | null }>(`SELECT result FROM ${archiveOf('jobs')} WHERE seq = ?`, [seq]);
  return row?.result ?? null;
}
