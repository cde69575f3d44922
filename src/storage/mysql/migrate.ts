/**
 * Schema migration of the MySQL/MariaDB driver. MySQL has no transactional DDL, so instead of
 * one transaction the migrator holds a named lock (`GET_LOCK`, per database) on one connection
 * while it reads the ledger, refuses a schema newer than the code, runs each missing
 * migration's statements one by one (each idempotent) and records the ledger row last.
 * @internal
 */
import { createHash } from 'node:crypto';
import { SchemaTooNewError, StorageError } from '../../errors.js';
import { select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { MIGRATIONS } from './migrations.generated.js';
import { num } from './rows.js';
import { MIGRATIONS_APPLIED, MIGRATIONS_CREATE_LEDGER, MIGRATIONS_CURRENT_DB, MIGRATIONS_LOCK, MIGRATIONS_INSERT, MIGRATIONS_UNLOCK } from './queries/admin.js';

/** Seconds to wait for another process's migration. */
const LOCK_TIMEOUT_S = 30;

/** The statements of a migration file: split on `;` at a line end, comment lines dropped. */
export function splitStatements(sql: string): string[] {
  const body = sql
    .split('\n')
    .filter((line) => !/^\s*--/.test(line))
    .join('\n');
  return body
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The lock name for a database: `sdj_migrate_<db>` (hashed when too long for GET_LOCK's 64 characters). */
function lockName(db: string): string {
  const name = `sdj_migrate_${db}`;
  return name.length <= 64 ? name : `sdj_migrate_${createHash('sha1').update(db).digest('hex')}`;
}

/** `Storage.migrate`. @throws SchemaTooNewError */
export async function migrate(ctx: DriverContext): Promise<void> {
  const known = MIGRATIONS.reduce((m, x) => Math.max(m, x.version), 0);
  await ctx.db.withConnection(async (conn) => {
    const [dbRow] = await select(conn, MIGRATIONS_CURRENT_DB);
    const db = dbRow?.['db'];
    if (typeof db !== 'string' || db === '') throw new StorageError('mysql: no database selected (put the database name in the connection URL)');
    const name = lockName(db);
    const [got] = await select(conn, MIGRATIONS_LOCK, [name, LOCK_TIMEOUT_S]);
    if (got?.['got'] === null || got?.['got'] === undefined || num(got['got']) !== 1) {
      throw new StorageError(`mysql: could not take the migration lock ${name} within ${LOCK_TIMEOUT_S} s`);
    }
    try {
      await write(conn, MIGRATIONS_CREATE_LEDGER);
      const applied = new Set((await select(conn, MIGRATIONS_APPLIED)).map((r) => num(r['version'])));
      const highest = Math.max(0, ...applied);
      if (highest > known) throw new SchemaTooNewError(highest, known);
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        for (const stmt of splitStatements(m.sql)) await write(conn, stmt);
        await write(conn, MIGRATIONS_INSERT, [m.version, m.name, ctx.now()]);
      }
    } finally {
      await select(conn, MIGRATIONS_UNLOCK, [name]).catch(() => undefined);
    }
  });
}
