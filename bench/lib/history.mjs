// The fixture of drain-after-history: `count` finished (completed) jobs written straight into
// our storage with SQL, since enqueueing and running millions of jobs through the API would
// take far longer than the shape itself. Only the benchmark fixtures (this file and
// bench/dashboard-million.mjs, which calls it) write SQL outside src/storage; the library never
// does (see bench/README.md).
//
// With `mix: true` (bench/dashboard-million.mjs) the rows are what a busy deployment keeps
// instead of identical completed no-ops: 4 % failed with a few kinds of varied error texts
// (about 40 % of them mention "timeout"; one row in 50,000 says "quota exhausted"), 0.5 %
// cancelled, the rest completed; five queues (half in `default`), twenty job types plus a rare
// one (`rare-audit`, one row in 100,000). See MIX below. On PostgreSQL, SQLite and MySQL/MariaDB.
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

/** What the `mix` rows hold (shares of rows; texts to search for). */
export const MIX = {
  /** Rows whose `g % 1000` is below this are failed (4 %)... */
  failedPerMille: 40,
  /** ...then below this cancelled (0.5 %); the rest completed. */
  cancelledPerMille: 45,
  queues: ['default', 'default', 'default', 'default', 'default', 'emails', 'emails', 'reports', 'webhooks', 'billing'],
  types: [
    'send-email', 'render-report', 'deliver-webhook', 'charge-card', 'sync-account',
    'resize-image', 'index-document', 'send-sms', 'export-csv', 'import-csv',
    'refresh-cache', 'notify-slack', 'compute-invoice', 'archive-order', 'geocode',
    'transcode-video', 'scan-upload', 'rollup-metrics', 'expire-sessions', 'noop',
  ],
  /** One row in 100,000 has this type (`g % 100000 === 4321`). */
  rareType: 'rare-audit',
  /** A text about 40 % of the failed rows hold. */
  commonError: 'timeout',
  /** A text one row in 50,000 holds (`g % 50000 === 17`: always a failed row). */
  rareError: 'quota exhausted',
};

/** A SQL string literal of a constant text (no quotes inside). */
const lit = (text) => {
  if (/['\\]/.test(text)) throw new Error(`unsafe literal: ${text}`);
  return `'${text}'`;
};

/** `CASE <k> WHEN 0 THEN <v0> ... END` over a list of constant texts. */
const pick = (k, list) => `CASE ${k} ${list.map((v, i) => `WHEN ${i} THEN ${lit(v)}`).join(' ')} END`;

/**
 * SQL expressions for the columns the fixture sets, given `g` (row number), `t` (finish time,
 * ms), and the dialect's integer division `div(a, b)` and text concatenation `cat(...parts)`.
 * Ids are time-ordered UUIDv7-shaped text like the library's, older than any job enqueued
 * afterwards. With `mix`, status, queue, type, attempts and error text vary by row (see MIX).
 */
function knownColumns(d, mix) {
  const g = d.g;
  const base = {
    id: d.uuid,
    type: "'noop'",
    queue: "'default'",
    status: "'completed'",
    priority: '0',
    attempt: '1',
    max_retries: '0',
    run_count: '1',
    args: d.cat(`'{"i":'`, g, `'}'`),
    run_at: `${d.t} - 5`,
    created_at: `${d.t} - 5`,
    started_at: `${d.t} - 2`,
    completed_at: d.t,
  };
  if (!mix) return base;
  const m = `(${g} % 1000)`;
  const failed = `${m} < ${MIX.failedPerMille}`;
  const cancelled = `${m} < ${MIX.cancelledPerMille}`;
  const kind = `(${d.div(g, 11)} % 8)`;
  const error = `CASE WHEN ${g} % 50000 = 17 THEN ${d.cat(`'${MIX.rareError} for tenant acme-'`, `${g} % 97`)} ELSE CASE ${kind}
    WHEN 0 THEN ${d.cat("'upstream timeout 504 after '", `${g} % 3000`, "' ms'")}
    WHEN 1 THEN ${d.cat("'read ETIMEDOUT 10.0.'", `${g} % 255`, "'.'", `${g} % 7`, "':443'")}
    WHEN 2 THEN ${d.cat("'connect ECONNREFUSED 10.1.'", `${g} % 255`, "'.'", `${g} % 13`, "':5432'")}
    WHEN 3 THEN ${d.cat("'validation failed: field \"email\" of record '", g, "' is not an address'")}
    WHEN 4 THEN ${d.cat("'rate limited by provider, retry after '", `${g} % 120`, "' s'")}
    WHEN 5 THEN ${d.cat("'TypeError: Cannot read properties of undefined (reading \"id\") at handler line '", `${g} % 400`)}
    WHEN 6 THEN ${d.cat("'gateway timeout while calling billing api (request '", g, "')'")}
    ELSE ${d.cat("'lease expired after 30000 ms; retries spent (worker w-'", `${g} % 16`, "')'")} END END`;
  return {
    ...base,
    status: `CASE WHEN ${failed} THEN 'failed' WHEN ${cancelled} THEN 'cancelled' ELSE 'completed' END`,
    queue: pick(`(${d.div(g, 7)} % ${MIX.queues.length})`, MIX.queues),
    type: `CASE WHEN ${g} % 100000 = 4321 THEN ${lit(MIX.rareType)} ELSE ${pick(`(${d.div(g, 3)} % ${MIX.types.length})`, MIX.types)} END`,
    attempt: `CASE WHEN ${failed} THEN 4 ELSE 1 END`,
    max_retries: '3',
    run_count: `CASE WHEN ${failed} THEN 4 ELSE 1 END`,
    last_error: `CASE WHEN ${failed} THEN ${error} WHEN ${cancelled} THEN 'cancelled by operator' ELSE NULL END`,
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
function plan(columns, d, mix = false) {
  if (columns.length === 0) throw new Error(`history fixture: table ${HISTORY_TABLE} not found after migrate()`);
  const known = knownColumns(d, mix);
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

/** `||` concatenation (PostgreSQL, SQLite), each part parenthesized (SQLite binds `||` tighter than `%`). */
const pipes = (...parts) => `(${parts.map((p) => `(${p})`).join(' || ')})`;

/**
 * Writes `count` finished jobs (completed, or the `mix`) into a migrated PostgreSQL database
 * (schema `schema`), finished over the last `spanMs`, then VACUUM ANALYZE and CHECKPOINT.
 */
export async function seedHistoryPostgres(url, { count, schema = 'sdj', log = () => {}, mix = false, spanMs = SPAN_MS }) {
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
    const { names, exprs } = plan(
      rows,
      {
        g: 'g',
        t,
        div: (a, b) => `(${a}) / ${b}`,
        cat: pipes,
        uuid: `substr(${h}, 1, 8) || '-' || substr(${h}, 9, 4) || '-7' || ${hex('g % 4096', 3)} || '-8' || ${hex('(g / 4096) % 4096', 3)} || '-' || ${hex('g', 12)}`,
      },
      mix,
    );
    const sql = `insert into ${ident(schema)}.${ident(HISTORY_TABLE)} (${names.map(ident).join(', ')})
      select ${exprs.join(', ')} from generate_series($1::bigint, $2::bigint) as g`;
    const start = Date.now() - spanMs - 60_000;
    for (let from = 0; from < count; from += PG_BATCH) {
      const to = Math.min(count, from + PG_BATCH) - 1;
      await client.query(sql, [from, to, start, spanMs, count]);
      log(`history: ${to + 1} of ${count} rows`);
    }
    // A deployment that finished these jobs over hours would have been vacuumed and analyzed by autovacuum.
    await client.query(`vacuum (analyze) ${ident(schema)}.${ident(HISTORY_TABLE)}`);
    await client.query('checkpoint').catch(() => {}); // needs superuser or pg_checkpoint; keeps the fixture's WAL out of the timed drain
  } finally {
    await client.end();
  }
}

/** Writes `count` finished jobs (completed, or the `mix`) into a migrated SQLite file, finished over the last `spanMs`, then checkpoints the WAL. */
export function seedHistorySqlite(file, { count, log = () => {}, mix = false, spanMs = SPAN_MS }) {
  const Database = createRequire(path.join(REPO_DIR, 'package.json'))('better-sqlite3');
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 10000');
    const columns = db
      .prepare(`select name, type, "notnull" as "notNull", dflt_value is not null as "hasDefault", hidden <> 0 as "generated" from pragma_table_xinfo(?)`)
      .all(HISTORY_TABLE)
      .map((c) => ({ ...c, notNull: Boolean(c.notNull), hasDefault: Boolean(c.hasDefault), generated: Boolean(c.generated) }));
    // better-sqlite3 binds numbers as REAL: the cast keeps the times integers, as the library writes them.
    const t = 'CAST(@start + (g * @span) / @count AS INTEGER)';
    const { names, exprs } = plan(
      columns,
      {
        g: 'g',
        t,
        div: (a, b) => `(${a}) / ${b}`,
        cat: pipes,
        uuid: `printf('%08x-%04x-7%03x-8%03x-%012x', ${t} / 65536, ${t} % 65536, g % 4096, (g / 4096) % 4096, g)`,
      },
      mix,
    );
    const insert = db.prepare(`insert into ${ident(HISTORY_TABLE)} (${names.map(ident).join(', ')})
      with recursive s(g) as (select @from union all select g + 1 from s where g < @to)
      select ${exprs.join(', ')} from s`);
    const start = Date.now() - spanMs - 60_000;
    for (let from = 0; from < count; from += SQLITE_BATCH) {
      const to = Math.min(count, from + SQLITE_BATCH) - 1;
      insert.run({ from, to, start, span: spanMs, count });
      log(`history: ${to + 1} of ${count} rows`);
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** Rows per INSERT ... SELECT on MySQL/MariaDB (the generator below yields 100,000 numbers). */
const MYSQL_BATCH = 100_000;

/**
 * Writes `count` finished jobs (completed, or the `mix`) into a migrated MySQL/MariaDB database,
 * finished over the last `spanMs`, then ANALYZE TABLE. Row numbers come from a cross join of
 * five ten-row derived tables (no sequence engine or recursion limit needed); the constants are
 * numbers this function computes, written into the statement.
 */
export async function seedHistoryMysql(url, { count, log = () => {}, mix = false, spanMs = SPAN_MS }) {
  const mysql = createRequire(path.join(REPO_DIR, 'package.json'))('mysql2/promise');
  const conn = await mysql.createConnection(url);
  try {
    const [rows] = await conn.query(
      `select column_name as name, data_type as type, is_nullable = 'NO' as notNull,
              column_default is not null and upper(column_default) <> 'NULL' as hasDefault,
              upper(extra) like '%GENERATED%' as \`generated\`
         from information_schema.columns where table_schema = database() and table_name = ? order by ordinal_position`,
      [HISTORY_TABLE],
    );
    const columns = rows.map((c) => ({ name: String(c.name), type: String(c.type), notNull: Boolean(Number(c.notNull)), hasDefault: Boolean(Number(c.hasDefault)), generated: Boolean(Number(c.generated)) }));
    const start = Math.trunc(Date.now() - spanMs - 60_000);
    const t = `(${start} + (g * ${Math.trunc(spanMs)}) DIV ${Math.trunc(count)})`;
    const hex = (x, w) => `LPAD(LOWER(HEX(${x})), ${w}, '0')`;
    const { names, exprs } = plan(
      columns,
      {
        g: 'g',
        t,
        div: (a, b) => `(${a}) DIV ${b}`,
        cat: (...parts) => `CONCAT(${parts.join(', ')})`,
        uuid: `CONCAT(${hex(`${t} DIV 65536`, 8)}, '-', ${hex(`${t} % 65536`, 4)}, '-7', ${hex('g % 4096', 3)}, '-8', ${hex('(g DIV 4096) % 4096', 3)}, '-', ${hex('g', 12)})`,
      },
      mix,
    );
    const digits = 'SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9';
    const numbers = `SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS n FROM (${digits}) a, (${digits}) b, (${digits}) c, (${digits}) e, (${digits}) f`;
    for (let from = 0; from < count; from += MYSQL_BATCH) {
      const to = Math.min(count, from + MYSQL_BATCH) - 1;
      await conn.query(`INSERT INTO \`${HISTORY_TABLE}\` (${names.map((n) => `\`${n}\``).join(', ')})
        SELECT ${exprs.join(', ')} FROM (SELECT ${from} + n AS g FROM (${numbers}) ns WHERE n <= ${to - from}) s`);
      log(`history: ${to + 1} of ${count} rows`);
    }
    await conn.query(`ANALYZE TABLE \`${HISTORY_TABLE}\``);
  } finally {
    await conn.end();
  }
}
