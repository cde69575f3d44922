/**
 * Schema migration of the MySQL/MariaDB driver, through the shared migrator (lock → ledger →
 * refuse newer → apply → record). MySQL has no transactional DDL, so instead of one transaction
 * the lock is a named lock (`GET_LOCK`, per database) on one connection, each migration's
 * statements run one by one (each idempotent) and the ledger row is written last.
 * @internal
 */
import { createHash } from 'node:crypto';
import { StorageError } from '../../errors.js';
import { runMigrationsAsync, type MigrationDialect } from '../shared/migrator.js';
import { type MysqlPoolConnectionLike, select, write } from './connection.js';
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

/**
 * MySQL's {@link MigrationDialect}: the lock is `GET_LOCK` on one connection, held until the
 * last ledger row is written (MySQL has no transactional DDL: each statement is idempotent, and
 * a migration is recorded only after all of its statements succeeded).
 */
function mysqlMigrationDialect(ctx: DriverContext): MigrationDialect<MysqlPoolConnectionLike> {
  return {
    withLock: (fn) =>
      ctx.db.withConnection(async (conn) => {
        const [dbRow] = await select(conn, MIGRATIONS_CURRENT_DB);
        const db = dbRow?.['db'];
        if (typeof db !== 'string' || db === '') throw new StorageError('mysql: no database selected (put the database name in the connection URL)');
        const name = lockName(db);
        const [got] = await select(conn, MIGRATIONS_LOCK, [name, LOCK_TIMEOUT_S]);
        if (got?.['got'] === null || got?.['got'] === undefined || num(got['got']) !== 1) {
          throw new StorageError(`mysql: could not take the migration lock ${name} within ${LOCK_TIMEOUT_S} s`);
        }
        try {
          return await fn(conn);
        } finally {
          await select(conn, MIGRATIONS_UNLOCK, [name]).catch(() => undefined);
        }
      }),
    ensureLedger: async (conn) => void (await write(conn, MIGRATIONS_CREATE_LEDGER)),
    appliedVersions: async (conn) => (await select(conn, MIGRATIONS_APPLIED)).map((r) => num(r['version'])),
    apply: async (conn, m) => {
      for (const stmt of splitStatements(m.sql)) await write(conn, stmt);
    },
    record: async (conn, m) => void (await write(conn, MIGRATIONS_INSERT, [m.version, m.name, ctx.now()])),
  };
}

/** `Storage.migrate`. @throws SchemaTooNewError */
export async function migrate(ctx: DriverContext): Promise<void> {
  await runMigrationsAsync(mysqlMigrationDialect(ctx), MIGRATIONS);
}
