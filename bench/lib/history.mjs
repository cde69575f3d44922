// The fixture of drain-after-history: `count` finished (completed) jobs written straight into
// our storage with SQL, since enqueueing and running millions of jobs through the API would
// take far longer than the shape itself. Only this benchmark fixture writes SQL outside
// src/storage; the library never does (see bench/README.md).
//
// The rows go through the jobs table (`sdj_jobs`, or BENCH_HISTORY_TABLE), so a schema that
// routes finished rows elsewhere (partitions of a parent table) places them itself. The column
// list is read from the migrated database's catalog at run time (what the library's migrations
// created, whichever build of it runs), never copied here: every NOT NULL column without a
// default gets a value, known columns get realistic ones.
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { REPO_DIR } from './util.mjs';

export const HISTORY_TABLE = process.env.BENCH_HISTORY_TABLE || 'sdj_jobs';
const PG_BATCH = 1_000_000;
const SQLITE_BATCH = 250_000;
/** Finished over the last 6 hours: well inside the default retention (completed: 7 days). */
const SPAN_MS = 6 * 3600 * 1000;

const ident = (name) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe identifier: ${name}`);
  return `"${name}"`;
};

/**
 * SQL expressions for the columns the fixture sets, given `g` (row number), `t` (finish time,
 * ms) and a hex formatter for the dialect. Ids are time-ordered UUIDv7-shaped text like the
 * library's, older than any job enqueued afterwards.
 */
function knownColumns(d) {
  return {
    id: d.uuid,
    type: "'noop'",
    queue: "'default'",
    status: "'completed'",
    priority: '0',
    attempt: '1',
    max_retries: '0',
    run_count: '1',
    args: `'{"i":' || ${d.g} || '}'`,
    run_at: `${d.t} - 5`,
    created_at: `${d.t} - 5`,
    started_at: `${d.t} - 2`,
    completed_at: d.t,
  };
}

/** A neutral value for a NOT NULL column the fixture does not know (added by a later migration). */
function filler(name, type) {
  const t = type.toLowerCase();
  if (/char|text|json|uuid/.test(t)) return "''";
  if (/int|numeric|real|double|float|decimal/.test(t)) return '0';
  if (/bool/.test(t)) return 'false';
  throw new Error(`history fixture: cannot fill NOT NULL column ${name} of type ${type}; extend bench/lib/history.mjs`);
}

/** The column list and expressions of the insert, from the catalog rows [{ name, type, notNull, hasDefault }]. */
function plan(columns, d) {
  if (columns.length === 0) throw new Error(`history fixture: table ${HISTORY_TABLE} not found after migrate()`);
  const known = knownColumns(d);
  const names = [];
  const exprs = [];
  for (const c of columns) {
    if (c.generated) continue;
    if (known[c.name] !== undefined) {
      names.push(c.name);
      exprs.push(known[c.name]);
    } else if (c.notNull && !c.hasDefault) {
      names.push(c.name);
      exprs.push(filler(c.name, c.type));
    }
  }
  for (const needed of ['id', 'status']) if (!names.includes(needed)) throw new Error(`history fixture: ${HISTORY_TABLE} has no ${needed} column`);
  return { names, exprs };
}

/** Writes `count` completed jobs into a migrated PostgreSQL database (schema `schema`), then VACUUM ANALYZE and CHECKPOINT. */
export async function seedHistoryPostgres(url, { count, schema = 'sdj', log = () => {} }) {
  const client = new pg.Client({ connectionString: url, application_name: 'sdj-bench-fixture' });
  await client.connect();
  try {
    const { rows } = await client.query(
      `select column_name as name, data_type as type, is_nullable = 'NO' as "notNull",
              (column_default is not null or is_identity = 'YES') as "hasDefault", is_generated <> 'NEVER' as generated
         from information_schema.columns where table_schema = $1 and table_name = $2 order by ordinal_position`,
      [schema, HISTORY_TABLE],
    );
    const hex = (x, w) => `lpad(to_hex(${x}), ${w}, '0')`;
    const t = '($3::bigint + (g * $4::bigint) / $5::bigint)';
    const h = hex(t, 12);
    const { names, exprs } = plan(rows, {
      g: 'g',
      t,
      uuid: `substr(${h}, 1, 8) || '-' || substr(${h}, 9, 4) || '-7' || ${hex('g % 4096', 3)} || '-8' || ${hex('(g / 4096) % 4096', 3)} || '-' || ${hex('g', 12)}`,
    });
    const sql = `insert into ${ident(schema)}.${ident(HISTORY_TABLE)} (${names.map(ident).join(', ')})
      select ${exprs.join(', ')} from generate_series($1::bigint, $2::bigint) as g`;
    const start = Date.now() - SPAN_MS - 60_000;
    for (let from = 0; from < count; from += PG_BATCH) {
      const to = Math.min(count, from + PG_BATCH) - 1;
      await client.query(sql, [from, to, start, SPAN_MS, count]);
      log(`history: ${to + 1} of ${count} rows`);
    }
    // A deployment that finished these jobs over hours would have been vacuumed and analyzed by autovacuum.
    await client.query(`vacuum (analyze) ${ident(schema)}.${ident(HISTORY_TABLE)}`);
    await client.query('checkpoint').catch(() => {}); // needs superuser or pg_checkpoint; keeps the fixture's WAL out of the timed drain
  } finally {
    await client.end();
  }
}

/** Writes `count` completed jobs into a migrated SQLite file, then checkpoints the WAL. */
export function seedHistorySqlite(file, { count, log = () => {} }) {
  const Database = createRequire(path.join(REPO_DIR, 'package.json'))('better-sqlite3');
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 10000');
    const columns = db
      .prepare(`select name, type, "notnull" as "notNull", dflt_value is not null as "hasDefault", hidden <> 0 as "generated" from pragma_table_xinfo(?)`)
      .all(HISTORY_TABLE)
      .map((c) => ({ ...c, notNull: Boolean(c.notNull), hasDefault: Boolean(c.hasDefault), generated: Boolean(c.generated) }));
    const t = '(@start + (g * @span) / @count)';
    const { names, exprs } = plan(columns, {
      g: 'g',
      t,
      uuid: `printf('%08x-%04x-7%03x-8%03x-%012x', ${t} / 65536, ${t} % 65536, g % 4096, (g / 4096) % 4096, g)`,
    });
    const insert = db.prepare(`insert into ${ident(HISTORY_TABLE)} (${names.map(ident).join(', ')})
      with recursive s(g) as (select @from union all select g + 1 from s where g < @to)
      select ${exprs.join(', ')} from s`);
    const start = Date.now() - SPAN_MS - 60_000;
    for (let from = 0; from < count; from += SQLITE_BATCH) {
      const to = Math.min(count, from + SQLITE_BATCH) - 1;
      insert.run({ from, to, start, span: SPAN_MS, count });
      log(`history: ${to + 1} of ${count} rows`);
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}
