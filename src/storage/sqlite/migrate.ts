/**
 * Schema migration on SQLite: one `BEGIN IMMEDIATE` transaction takes the file's write lock
 * (other connections and processes wait on `busy_timeout`), reads the ledger, refuses a schema
 * newer than the code, and applies the missing migrations in order (DDL is transactional).
 * @internal
 */
import { SchemaTooNewError } from '../../errors.js';
import type { Logger } from '../../types.js';
import type { SqliteDatabaseLike } from './connection.js';
import type { Migration } from './migrations.generated.js';
import { MIGRATIONS_CREATE_LEDGER, MIGRATIONS_INSERT, MIGRATIONS_MAX_VERSION } from './queries/admin.js';
import { int } from './rows.js';

/**
 * Applies missing migrations; returns the versions applied (empty when up to date).
 * @throws SchemaTooNewError when the ledger holds a version the code does not know
 */
export function migrate(db: SqliteDatabaseLike, migrations: readonly Migration[], now: () => number, logger?: Logger): number[] {
  const known = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  const run = db.transaction((): number[] => {
    db.exec(MIGRATIONS_CREATE_LEDGER);
    const row = db.prepare(MIGRATIONS_MAX_VERSION).get() as { version: number | bigint | null } | undefined;
    const current = row?.version == null ? 0 : int(row.version);
    if (current > known) throw new SchemaTooNewError(current, known);
    const applied: number[] = [];
    const insert = db.prepare(MIGRATIONS_INSERT);
    for (const m of migrations) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      insert.run(m.version, m.name, now());
      applied.push(m.version);
    }
    return applied;
  });
  const applied = run.immediate();
  if (applied.length > 0) logger?.info('sqlite schema migrated', { versions: applied });
  return applied;
}
