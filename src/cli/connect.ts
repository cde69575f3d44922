/**
 * From `--db` / `SDJ_DATABASE_URL` to a storage: `postgres://` and `postgresql://` URLs open
 * PostgreSQL, `mysql://` and `mariadb://` URLs open MySQL/MariaDB, a `file://` URL or anything
 * else is a SQLite file path. A SQLite file must already exist, except for `sdj migrate`, so a
 * typo never leaves an empty database behind.
 * @module
 */
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MysqlStorage, PostgresStorage, SqliteStorage, type Storage } from '../index.js';
import { CliError, UsageError } from './errors.js';

/** Where the jobs live, as parsed from `--db`. */
export type DbTarget =
  | { kind: 'postgres'; url: string; schema?: string }
  | { kind: 'mysql'; url: string }
  | { kind: 'sqlite'; path: string };

/** Connection options as given on the command line or in the environment. */
export interface ConnectOptions {
  /** `--db` or `SDJ_DATABASE_URL`. */
  db?: string | undefined;
  /** `--schema` or `SDJ_SCHEMA`. */
  schema?: string | undefined;
  /** Whether the schema came from `--schema` itself (an error for a non-PostgreSQL database) rather than the environment. */
  schemaFromFlag?: boolean;
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const EXPECTED = 'expected a postgres://, postgresql://, mysql:// or mariadb:// URL, or a SQLite file path';

/**
 * Reads the database target.
 * @throws UsageError when none is given, the URL is malformed or its scheme is unknown, or
 * `--schema` is given for a database other than PostgreSQL
 */
export function parseTarget(o: ConnectOptions): DbTarget {
  const db = o.db?.trim();
  if (db === undefined || db === '') throw new UsageError('no database given: pass --db <url-or-file> or set SDJ_DATABASE_URL');
  const scheme = SCHEME.exec(db)?.[1]?.toLowerCase();
  let target: DbTarget;
  if (scheme === 'postgres' || scheme === 'postgresql') {
    checkUrl(db, 'PostgreSQL');
    const schema = o.schema?.trim();
    return schema === undefined || schema === '' ? { kind: 'postgres', url: db } : { kind: 'postgres', url: db, schema };
  } else if (scheme === 'mysql' || scheme === 'mariadb') {
    checkUrl(db, 'MySQL/MariaDB');
    // The MySQL client knows mysql:// only; MariaDB speaks the same protocol.
    target = { kind: 'mysql', url: scheme === 'mariadb' ? `mysql${db.slice('mariadb'.length)}` : db };
  } else if (scheme === 'file') {
    let path: string;
    try {
      path = fileURLToPath(db);
    } catch {
      throw new UsageError(`bad database URL: not a valid file:// URL (${EXPECTED})`);
    }
    target = { kind: 'sqlite', path };
  } else if (scheme !== undefined) {
    throw new UsageError(`unsupported database URL scheme "${scheme}://" (${EXPECTED})`);
  } else {
    target = { kind: 'sqlite', path: db };
  }
  if (o.schemaFromFlag === true && o.schema !== undefined) throw new UsageError('--schema applies to PostgreSQL only');
  return target;
}

/** A malformed URL is bad usage; its text is not repeated, since it may hold a password. */
function checkUrl(url: string, what: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`bad database URL: not a valid ${what} URL (e.g. ${what === 'PostgreSQL' ? 'postgres' : 'mysql'}://user:password@host:port/database)`);
  }
  if (parsed.hostname === '' && what !== 'PostgreSQL') {
    throw new UsageError(`bad database URL: no host in the ${what} URL (e.g. mysql://user:password@host:3306/database)`);
  }
}

/**
 * Opens the storage of a target (connections are made on first use). With `create: false` a
 * SQLite file that does not exist is an error instead of a new, empty database.
 * @throws CliError when the SQLite file is missing or not a file; UsageError on a bad schema name
 */
export function openStorage(target: DbTarget, options: { create: boolean }): Storage {
  switch (target.kind) {
    case 'postgres':
      return target.schema === undefined ? new PostgresStorage(target.url) : new PostgresStorage(target.url, { schema: target.schema });
    case 'mysql':
      return new MysqlStorage(target.url);
    case 'sqlite': {
      const exists = existsSync(target.path);
      if (exists && !statSync(target.path).isFile()) throw new CliError(`${target.path} is not a SQLite database file`);
      if (!exists && !options.create) {
        throw new CliError(`no SQLite database at ${target.path} (create one with: sdj --db ${target.path} migrate)`);
      }
      return new SqliteStorage(target.path);
    }
  }
}

/** A short, password-free name of the target for messages (`PostgreSQL at host:5432/db, schema s`). */
export function describeTarget(target: DbTarget): string {
  if (target.kind === 'sqlite') return `SQLite database ${target.path}`;
  const u = new URL(target.url);
  const where = `${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  if (target.kind === 'mysql') return `MySQL/MariaDB at ${where}`;
  return `PostgreSQL at ${where}, schema ${target.schema ?? 'sdj'}`;
}
