/**
 * The one schema migrator: lock → ledger → refuse a newer schema → apply → record. A dialect
 * supplies only how to take its lock and the statements ({@link MigrationDialect}):
 * - PostgreSQL: `withLock` opens a transaction and takes a per-schema `pg_advisory_xact_lock`
 *   (DDL is transactional, so a failed migration leaves nothing behind);
 * - MySQL/MariaDB: `withLock` holds `GET_LOCK` on one connection (no transactional DDL: each
 *   migration's statements are idempotent and its ledger row is written last);
 * - SQLite: `withLock` runs a synchronous `BEGIN IMMEDIATE` transaction; every step returns
 *   plain values, so {@link runMigrationsSync} never leaves the transaction's function.
 * Any number of processes may migrate at once: the lock serializes them, and the ones that come
 * second find the ledger complete.
 *
 * Internal to the storage layer: every export carries the JSDoc internal tag (so it is
 * stripped from the published declaration files), and none is exported from the package.
 */
import { SchemaTooNewError } from '../../errors.js';
import { chain, isPromiseLike, type MaybePromise } from './maybe-async.js';

/** One migration file as `scripts/build-sql.mjs` compiles it. @internal */
export interface MigrationFile {
  /** Ledger version (`NNNN` of `NNNN_name.sql`), unique, ascending. */
  readonly version: number;
  /** The file's name part. */
  readonly name: string;
  /** The file's SQL text. */
  readonly sql: string;
}

/** What a dialect supplies to {@link runMigrations}. `C` is the connection the lock is held on. @internal */
export interface MigrationDialect<C> {
  /**
   * Runs `fn` while holding the dialect's migration lock (and, where DDL is transactional, inside
   * one transaction that commits when `fn` returns and rolls back when it throws).
   */
  withLock<T>(fn: (conn: C) => MaybePromise<T>): MaybePromise<T>;
  /** Creates what the ledger needs (schema, `sdj_migrations`) when missing. */
  ensureLedger(conn: C): MaybePromise<void>;
  /** Every version recorded in the ledger. */
  appliedVersions(conn: C): MaybePromise<readonly number[]>;
  /** Runs one migration's SQL. */
  apply(conn: C, m: MigrationFile): MaybePromise<void>;
  /** Records one applied migration in the ledger. */
  record(conn: C, m: MigrationFile): MaybePromise<void>;
}

/** The highest version among `migrations` (0 for none): the schema this code knows. @internal */
export function knownVersion(migrations: readonly MigrationFile[]): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

/**
 * The migrations to apply, in version order: those the ledger does not hold.
 * @throws SchemaTooNewError when the ledger holds a version above every known one
 * @internal
 */
export function planMigrations(applied: readonly number[], migrations: readonly MigrationFile[]): MigrationFile[] {
  const known = knownVersion(migrations);
  const found = applied.reduce((max, v) => Math.max(max, v), 0);
  if (found > known) throw new SchemaTooNewError(found, known);
  const done = new Set(applied);
  return migrations.filter((m) => !done.has(m.version)).sort((a, b) => a.version - b.version);
}

/**
 * Lock → ledger → refuse newer → apply → record. Returns the versions applied (empty when the
 * schema was up to date); synchronous when every dialect step is.
 * @throws SchemaTooNewError when the ledger holds a version this code does not know
 * @internal
 */
export function runMigrations<C>(d: MigrationDialect<C>, migrations: readonly MigrationFile[]): MaybePromise<number[]> {
  return d.withLock((conn) =>
    chain(d.ensureLedger(conn), () =>
      chain(d.appliedVersions(conn), (applied) => applyFrom(d, conn, planMigrations(applied, migrations), 0)),
    ),
  );
}

/** Applies and records `todo[i..]` in order; returns their versions. */
function applyFrom<C>(d: MigrationDialect<C>, conn: C, todo: readonly MigrationFile[], i: number): MaybePromise<number[]> {
  const m = todo[i];
  if (m === undefined) return todo.map((x) => x.version);
  return chain(d.apply(conn, m), () => chain(d.record(conn, m), () => applyFrom(d, conn, todo, i + 1)));
}

/**
 * {@link runMigrations} for a dialect whose every step is synchronous (SQLite).
 * @throws SchemaTooNewError; TypeError when a step returned a promise
 * @internal
 */
export function runMigrationsSync<C>(d: MigrationDialect<C>, migrations: readonly MigrationFile[]): number[] {
  const out = runMigrations(d, migrations);
  if (isPromiseLike(out)) throw new TypeError('runMigrationsSync: a migration step returned a promise');
  return out;
}

/** {@link runMigrations} as a promise, for the asynchronous dialects. @internal */
export async function runMigrationsAsync<C>(d: MigrationDialect<C>, migrations: readonly MigrationFile[]): Promise<number[]> {
  return runMigrations(d, migrations);
}
