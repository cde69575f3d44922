// Table and index sizes of one run's database, for retention-steady (lib/retention.mjs), read
// from the database's own catalog while the run goes on, and PostgreSQL's autovacuum stand-in.
//
// A sample is { totalBytes, totalRows, tables: { name: { bytes, indexBytes, rows } }, extra }:
// - PostgreSQL: every relation of the schema: tables by pg_table_size (heap, TOAST, free space
//   and visibility maps), indexes by pg_relation_size; partitions count as tables (the
//   partitioned parent has no storage of its own). Rows: count(*) of each table.
// - SQLite: the database's pages (page_count × page_size, free pages included: what the file
//   holds once checkpointed); per table and index the pages the `dbstat` virtual table
//   attributes to it; extra: the free-list pages and the WAL file's size. Rows: count(*).
// - MySQL/MariaDB: information_schema.TABLES data_length and index_length after ANALYZE TABLE
//   (InnoDB refreshes them only then); extra: data_free, and the size of the tables' .ibd files
//   (one per table with innodb_file_per_table) where the server lists it. Rows: count(*).
import { createRequire } from 'node:module';
import { statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { REPO_DIR } from './util.mjs';

const requireRoot = createRequire(path.join(REPO_DIR, 'package.json'));
const SAMPLER_APP = 'sdj-bench-sampler';
const ident = (name) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe identifier: ${name}`);
  return `"${name}"`;
};

/** Adds one relation's bytes to its table (an index adds to the table it belongs to). */
function add(tables, { table, bytes, index }) {
  const t = (tables[table] ??= { bytes: 0, indexBytes: 0, rows: 0 });
  if (index) t.indexBytes += bytes;
  else t.bytes += bytes;
}

function finish(tables, counts, totalBytes, extra = {}) {
  let totalRows = 0;
  for (const [name, n] of Object.entries(counts)) {
    (tables[name] ??= { bytes: 0, indexBytes: 0, rows: 0 }).rows = n;
    totalRows += n;
  }
  totalBytes ??= Object.values(tables).reduce((s, t) => s + t.bytes + t.indexBytes, 0);
  return { totalBytes, totalRows, tables, extra };
}

async function postgresSampler(cfg, schema = 'sdj') {
  const u = new URL(cfg.url);
  u.searchParams.set('application_name', SAMPLER_APP);
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  return {
    async sample() {
      const { rows } = await client.query(
        `select c.relname as name, c.relkind = 'i' as index, coalesce(t.relname, c.relname) as table,
                (case when c.relkind = 'i' then pg_relation_size(c.oid) else pg_table_size(c.oid) end)::float8 as bytes
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           left join pg_index x on x.indexrelid = c.oid left join pg_class t on t.oid = x.indrelid
          where n.nspname = $1 and c.relkind in ('r', 'i')`,
        [schema],
      );
      const tables = {};
      for (const r of rows) add(tables, r);
      const names = rows.filter((r) => !r.index).map((r) => r.name);
      const counted = await client.query(
        names.map((n) => `select '${n}' as name, count(*)::float8 as n from ${ident(schema)}.${ident(n)}`).join(' union all '),
      );
      const dead = await client.query('select relname, n_dead_tup::float8 as n from pg_stat_user_tables where schemaname = $1', [schema]);
      const extra = { deadTuples: Object.fromEntries(dead.rows.map((r) => [r.relname, r.n])) };
      return finish(tables, Object.fromEntries(counted.rows.map((r) => [r.name, r.n])), undefined, extra);
    },
    close: () => client.end(),
  };
}

function sqliteSampler(cfg) {
  const Database = requireRoot('better-sqlite3');
  const db = new Database(cfg.file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  const schema = db.prepare("select name, type, tbl_name as tbl from sqlite_schema where type in ('table', 'index')");
  const dbstat = db.prepare('select name, sum(pgsize) as bytes from dbstat group by name');
  const fileSize = (f) => {
    try {
      return statSync(f).size;
    } catch {
      return 0;
    }
  };
  return {
    async sample() {
      // One read transaction: the pages, the free list and the counts of one snapshot.
      return db.transaction(() => {
        const kinds = new Map(schema.all().map((r) => [r.name, r]));
        const tables = {};
        for (const r of dbstat.all()) {
          const k = kinds.get(r.name);
          add(tables, { table: k?.tbl ?? r.name, bytes: r.bytes, index: k?.type === 'index' });
        }
        const counts = {};
        for (const [name, k] of kinds) {
          if (k.type === 'table' && !name.startsWith('sqlite_')) counts[name] = db.prepare(`select count(*) as n from ${ident(name)}`).get().n;
        }
        const pageSize = db.pragma('page_size', { simple: true });
        const total = db.pragma('page_count', { simple: true }) * pageSize;
        const extra = { freeBytes: db.pragma('freelist_count', { simple: true }) * pageSize, walBytes: fileSize(`${cfg.file}-wal`) };
        return finish(tables, counts, total, extra);
      })();
    },
    async close() {
      db.close();
    },
  };
}

async function mysqlSampler(cfg) {
  const mysql = requireRoot('mysql2/promise');
  const conn = await mysql.createConnection(cfg.url);
  const [[{ db }]] = await conn.query('select database() as db');
  // The tablespace files: MariaDB lists them in INNODB_SYS_TABLESPACES, MySQL 8 in INNODB_TABLESPACES.
  const files = async () => {
    for (const view of ['INNODB_SYS_TABLESPACES', 'INNODB_TABLESPACES']) {
      try {
        const [[r]] = await conn.query(`select sum(file_size) as bytes from information_schema.${view} where name like ?`, [`${db}/%`]);
        return Number(r.bytes ?? 0);
      } catch {
        /* not this server's view */
      }
    }
    return undefined;
  };
  return {
    async sample() {
      const [list] = await conn.query("select table_name as name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE'", [db]);
      const names = list.map((r) => r.name);
      for (const n of names) await conn.query(`analyze table \`${n}\``);
      const [rows] = await conn.query(
        'select table_name as name, data_length as data, index_length as idx, data_free as free from information_schema.tables where table_schema = ? and table_name in (?)',
        [db, names],
      );
      const tables = {};
      let free = 0;
      for (const r of rows) {
        add(tables, { table: r.name, bytes: Number(r.data) });
        add(tables, { table: r.name, bytes: Number(r.idx), index: true });
        free += Number(r.free);
      }
      const [counted] = await conn.query(names.map((n) => `select '${n}' as name, count(*) as n from \`${n}\``).join(' union all '));
      return finish(tables, Object.fromEntries(counted.map((r) => [r.name, Number(r.n)])), undefined, { freeBytes: free, fileBytes: await files() });
    },
    close: () => conn.end(),
  };
}

/** A sampler of the sizes of the run's database `cfg` ({ sample(), close() }). */
export async function sizeSampler(cfg) {
  if (cfg.kind === 'postgres') return postgresSampler(cfg);
  if (cfg.kind === 'sqlite') return sqliteSampler(cfg);
  if (cfg.kind === 'mysql') return mysqlSampler(cfg);
  throw new Error(`retention-steady: no size sampler for ${cfg.kind}`);
}

const AV_SETTINGS = ['autovacuum', 'autovacuum_naptime', 'autovacuum_vacuum_threshold', 'autovacuum_vacuum_scale_factor',
  'autovacuum_vacuum_insert_threshold', 'autovacuum_vacuum_insert_scale_factor', 'autovacuum_analyze_threshold', 'autovacuum_analyze_scale_factor'];

/** The server's autovacuum settings ({ autovacuum: 'on'|'off', autovacuum_naptime: '1min', ... }). */
export async function autovacuumSettings(cfg) {
  const client = new pg.Client({ connectionString: cfg.url, application_name: SAMPLER_APP });
  await client.connect();
  try {
    const { rows } = await client.query('select name, setting from pg_settings where name = any($1)', [AV_SETTINGS]);
    return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
  } finally {
    await client.end();
  }
}

/**
 * Autovacuum's decision, taken by the harness: `check()` vacuums (and analyzes) each table of
 * the schema whose dead or inserted rows (or changed rows, for ANALYZE) pass the thresholds
 * autovacuum would apply (the server's settings, overridden by the table's storage parameters),
 * from pg_stat_user_tables. Returns { vacuums, analyzes } done by this check. `schema` null:
 * every user table of the database (peers keep their tables in schemas of their own).
 */
export async function autovacuumStandIn(cfg, settings, schema = 'sdj') {
  const client = new pg.Client({ connectionString: cfg.url, application_name: SAMPLER_APP });
  await client.connect();
  const num = (k) => Number(settings[k]);
  return {
    async check() {
      const { rows } = await client.query(
        `select s.schemaname as schema, s.relname as name, s.n_dead_tup::float8 as dead, s.n_ins_since_vacuum::float8 as ins,
                s.n_mod_since_analyze::float8 as mod, greatest(c.reltuples, 0)::float8 as tuples, c.reloptions as opts
           from pg_stat_user_tables s join pg_class c on c.oid = s.relid
          where ($1::text is null or s.schemaname = $1) and c.relkind = 'r'`,
        [schema],
      );
      let vacuums = 0;
      let analyzes = 0;
      for (const r of rows) {
        const own = Object.fromEntries((r.opts ?? []).map((o) => o.split('=')));
        const opt = (k) => Number(own[k] ?? num(k));
        const vacuum = r.dead > opt('autovacuum_vacuum_threshold') + opt('autovacuum_vacuum_scale_factor') * r.tuples ||
          r.ins > opt('autovacuum_vacuum_insert_threshold') + opt('autovacuum_vacuum_insert_scale_factor') * r.tuples;
        const analyze = r.mod > opt('autovacuum_analyze_threshold') + opt('autovacuum_analyze_scale_factor') * r.tuples;
        if (!vacuum && !analyze) continue;
        const what = vacuum && analyze ? 'vacuum (analyze)' : vacuum ? 'vacuum' : 'analyze';
        await client.query(`${what} ${ident(r.schema)}.${ident(r.name)}`);
        vacuums += vacuum ? 1 : 0;
        analyzes += analyze ? 1 : 0;
      }
      return { vacuums, analyzes };
    },
    close: () => client.end(),
  };
}
