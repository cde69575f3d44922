/**
 * Schema migration on SQLite, through the shared migrator (lock → ledger → refuse newer → apply
 * → record): the lock is one `BEGIN IMMEDIATE` transaction, which takes the file's write lock
 * (other connections and processes wait on `busy_timeout`); DDL is transactional, so a failed
 * migration leaves nothing behind. Every step is synchronous.
 * @internal
 */
import { runMigrationsSync, type MigrationDialect } from '../shared/migrator.js';
import type { SqliteDatabaseLike } from './connection.js';
import { MIGRATIONS } from './migrations.generated.js';
import { MIGRATIONS_CREATE_LEDGER, MIGRATIONS_INSERT, MIGRATIONS_VERSIONS } from './queries/admin.js';
import { int } from './rows.js';
import type { SqliteContext } from './statements.js';

/** SQLite's {@link MigrationDialect} on one connection; `now` stamps the ledger rows. */
function sqliteMigrationDialect(db: SqliteDatabaseLike, now: () => number): MigrationDialect<SqliteDatabaseLike> {
  return {
    withLock: (fn) => db.transaction(() => fn(db)).immediate(),
    ensureLedger: (conn) => void conn.exec(MIGRATIONS_CREATE_LEDGER),
    appliedVersions: (conn) => (conn.prepare(MIGRATIONS_VERSIONS).all() as { version: number | bigint }[]).map((r) => int(r.version)),
    apply: (conn, m) => void conn.exec(m.sql),
    record: (conn, m) => void conn.prepare(MIGRATIONS_INSERT).run(m.version, m.name, now()),
  };
}

/**
 * Applies the missing migrations (a no-op when up to date) and logs the versions applied.
 * @throws SchemaTooNewError when the ledger holds a version the code does not know
 */
export function migrate(ctx: SqliteContext): void {
  const applied = runMigrationsSync(
    sqliteMigrationDialect(ctx.db, () => ctx.now()),
    MIGRATIONS,
  );
  if (applied.length > 0) ctx.logger?.info('sqlite schema migrated', { versions: applied });
}
