/**
 * Schema migrations of the PostgreSQL driver: one transaction holding a per-schema
 * `pg_advisory_xact_lock`, so any number of processes may call `migrate()` at once; missing
 * versions are applied in order and recorded in `sdj_migrations`; a ledger newer than this
 * code fails with `SchemaTooNewError`.
 * @internal
 */
import { createHash } from 'node:crypto';
import { SchemaTooNewError } from '../../errors.js';
import { withTx } from './connection.js';
import type { PgExec } from './executor.js';
import { MIGRATIONS } from './migrations.generated.js';
import {
  MIGRATIONS_CREATE_LEDGER,
  MIGRATIONS_CREATE_SCHEMA,
  MIGRATIONS_INSERT,
  MIGRATIONS_LOCK,
  MIGRATIONS_MAX_VERSION,
  MIGRATIONS_SCHEMA_EXISTS,
} from './queries/admin.js';

/** The placeholder the migration files use for the quoted schema. */
export const SCHEMA_PLACEHOLDER = ':SCHEMA';

/** The highest migration version this code knows. */
export const KNOWN_VERSION = MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0);

/** The advisory lock key of a schema's migrations (a signed 64-bit integer, as text). */
export function migrationLockKey(schema: string): string {
  const h = createHash('sha1').update(`simple-durable-jobs:migrate:${schema}`).digest();
  return h.readBigInt64BE(0).toString();
}

/** Creates or upgrades the schema. @throws SchemaTooNewError */
export async function migrate(x: PgExec): Promise<void> {
  await withTx(x.pool, async (c) => {
    await x.exec(MIGRATIONS_LOCK, [migrationLockKey(x.schema)], c);
    const exists = await x.exec(MIGRATIONS_SCHEMA_EXISTS, [x.schema], c);
    if (exists.length === 0) await x.exec(MIGRATIONS_CREATE_SCHEMA, [], c);
    await x.exec(MIGRATIONS_CREATE_LEDGER, [], c);
    const [row] = (await x.exec(MIGRATIONS_MAX_VERSION, [], c)) as { version: number | null }[];
    const current = row?.version ?? 0;
    if (current > KNOWN_VERSION) throw new SchemaTooNewError(current, KNOWN_VERSION);
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      // Simple-query protocol (no parameters): a migration file holds several statements.
      await c.query({ text: m.sql.replaceAll(SCHEMA_PLACEHOLDER, x.schemaSql) });
      await x.exec(MIGRATIONS_INSERT, [x.now(), m.version, m.name], c);
    }
  });
}
