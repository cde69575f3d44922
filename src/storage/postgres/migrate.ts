/**
 * Schema migration on PostgreSQL, through the shared migrator (lock → ledger → refuse newer →
 * apply → record): the lock is one transaction holding a per-schema `pg_advisory_xact_lock`, so
 * any number of processes may call `migrate()` at once; DDL is transactional, so a failed
 * migration leaves nothing behind.
 * @internal
 */
import { createHash } from 'node:crypto';
import { runMigrationsAsync, type MigrationDialect } from '../shared/migrator.js';
import { withTx, type PgPoolClientLike } from './connection.js';
import type { PgExec } from './executor.js';
import { MIGRATIONS } from './migrations.generated.js';
import {
  MIGRATIONS_CREATE_LEDGER,
  MIGRATIONS_CREATE_SCHEMA,
  MIGRATIONS_INSERT,
  MIGRATIONS_LOCK,
  MIGRATIONS_SCHEMA_EXISTS,
  MIGRATIONS_VERSIONS,
} from './queries/admin.js';
import { toInt } from './rows.js';

/** The placeholder the migration files use for the quoted schema. */
export const SCHEMA_PLACEHOLDER = ':SCHEMA';

/** The advisory lock key of a schema's migrations (a signed 64-bit integer, as text). */
export function migrationLockKey(schema: string): string {
  const h = createHash('sha1').update(`simple-durable-jobs:migrate:${schema}`).digest();
  return h.readBigInt64BE(0).toString();
}

/** PostgreSQL's {@link MigrationDialect}: one transaction on one pooled client. */
function pgMigrationDialect(x: PgExec): MigrationDialect<PgPoolClientLike> {
  return {
    withLock: (fn) =>
      withTx(x.pool, async (c) => {
        await x.exec(MIGRATIONS_LOCK, [migrationLockKey(x.schema)], c);
        return fn(c);
      }),
    ensureLedger: async (c) => {
      if ((await x.exec(MIGRATIONS_SCHEMA_EXISTS, [x.schema], c)).length === 0) await x.exec(MIGRATIONS_CREATE_SCHEMA, [], c);
      await x.exec(MIGRATIONS_CREATE_LEDGER, [], c);
    },
    appliedVersions: async (c) => ((await x.exec(MIGRATIONS_VERSIONS, [], c)) as { version: unknown }[]).map((r) => toInt(r.version)),
    // Simple-query protocol (no parameters): a migration file holds several statements.
    apply: async (c, m) => void (await c.query({ text: m.sql.replaceAll(SCHEMA_PLACEHOLDER, x.schemaSql) })),
    record: async (c, m) => void (await x.exec(MIGRATIONS_INSERT, [x.now(), m.version, m.name], c)),
  };
}

/**
 * Creates or upgrades the schema (a no-op when up to date) and logs the versions applied.
 * @throws SchemaTooNewError when the ledger holds a version the code does not know
 */
export async function migrate(x: PgExec): Promise<void> {
  const applied = await runMigrationsAsync(pgMigrationDialect(x), MIGRATIONS);
  if (applied.length > 0) x.logger.info('postgres schema migrated', { schema: x.schema, versions: applied });
}
