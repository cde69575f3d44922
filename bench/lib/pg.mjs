// PostgreSQL admin helpers: fresh per-run databases and server-side statistics.
// Everything stays on loopback; the base URL can be overridden with BENCH_PG_URL.
import pg from 'pg';

export const PG_BASE_URL = process.env.BENCH_PG_URL || 'postgres://root@127.0.0.1:5432/test';

export function urlFor(database) {
  const u = new URL(PG_BASE_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Application name of the harness's own producer connections (its polls), which server CPU figures leave out. */
export const PRODUCER_APP = 'sdj-bench-producer';

/** url with `application_name` set (node-postgres reads it from the connection string). */
export function withAppName(url, name = PRODUCER_APP) {
  const u = new URL(url);
  u.searchParams.set('application_name', name);
  return u.toString();
}

export async function withAdmin(fn) {
  const client = new pg.Client({ connectionString: PG_BASE_URL, application_name: 'sdj-bench-admin' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const ident = (name) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe identifier: ${name}`);
  return `"${name}"`;
};

export async function createDatabase(name) {
  await withAdmin(async (c) => {
    await c.query(`drop database if exists ${ident(name)} with (force)`);
    await c.query(`create database ${ident(name)}`);
  });
}

export async function dropDatabase(name) {
  await withAdmin((c) => c.query(`drop database if exists ${ident(name)} with (force)`));
}

/** Drop leftover databases whose name starts with prefix (e.g. from a killed run of this orchestrator). */
export async function dropDatabasesLike(prefix) {
  await withAdmin(async (c) => {
    const { rows } = await c.query('select datname from pg_database where starts_with(datname, $1)', [prefix]);
    for (const r of rows) await c.query(`drop database if exists ${ident(r.datname)} with (force)`);
  });
}

export async function serverVersion() {
  return withAdmin(async (c) => (await c.query('show server_version')).rows[0].server_version);
}

/** Wait until no client other than the admin is connected to database (so its stats are flushed). */
export async function waitNoBackends(database, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  await withAdmin(async (c) => {
    for (;;) {
      const { rows } = await c.query(
        'select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [database],
      );
      if (rows[0].n === 0 || Date.now() > deadline) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  });
}

/**
 * Server-side counters for one database: committed+rolled-back transactions
 * (pg_stat_database) and, when pg_stat_statements is loaded, executed statements.
 */
export async function serverCounters(database) {
  return withAdmin(async (c) => {
    await c.query('select pg_stat_clear_snapshot()');
    const { rows } = await c.query(
      'select (xact_commit + xact_rollback)::float8 as xacts from pg_stat_database where datname = $1',
      [database],
    );
    let statements;
    try {
      const r = await c.query(
        'select coalesce(sum(calls), 0)::float8 as calls from pg_stat_statements where dbid = (select oid from pg_database where datname = $1)',
        [database],
      );
      statements = r.rows[0].calls;
    } catch {
      statements = undefined; // pg_stat_statements not in shared_preload_libraries
    }
    return { xacts: rows[0]?.xacts, statements };
  });
}
