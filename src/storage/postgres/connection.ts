/**
 * Connections of the PostgreSQL driver: the structural subset of `pg` it uses (so users may pass
 * their own `pg.Pool`), lazy creation of a pool from a connection string (`pg` is an optional
 * peer dependency, loaded only then), identifier quoting, and the transaction helper.
 * @internal
 */
import { createRequire } from 'node:module';
import { InvalidArgumentError, StorageError } from '../../errors.js';
import { missingDriverPackageMessage } from '../shared/contract-messages.js';
import { withTxRetry } from '../shared/tx-retry.js';
import { isRetryableTxError } from './translate-error.js';

/** A query as `pg` accepts it: `name` makes it a per-connection prepared statement. */
export interface PgQueryConfig {
  /** Prepared statement name (optional). */
  name?: string;
  /** SQL text with `$n` placeholders. */
  text: string;
  /** Bound parameter values. */
  values?: unknown[];
}

/** The part of a `pg` result the driver reads. */
export interface PgQueryResultLike {
  /** Result rows as objects keyed by column name. */
  rows: unknown[];
  /** Rows affected (null for some utility statements). */
  rowCount: number | null;
}

/** Anything that runs queries: a pool, a pooled client or a plain `pg.Client`. */
export interface PgQueryableLike {
  /** Runs one statement. */
  query(config: PgQueryConfig): Promise<PgQueryResultLike>;
}

/** A `pg` notification (`LISTEN`). */
export interface PgNotificationLike {
  /** The channel notified. */
  channel: string;
  /** The payload (may be absent). */
  payload?: string | undefined;
}

/** A client checked out of a pool: the driver's transactions and its listener run on one. */
export interface PgPoolClientLike extends PgQueryableLike {
  /** Returns the client to its pool; pass an error (or true) to destroy it instead. */
  release(err?: Error | boolean): void;
  /** Subscribes to client events (`notification`, `error`, `end`). */
  on(event: 'notification', listener: (msg: PgNotificationLike) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  /** Removes an event listener. */
  removeListener(event: 'notification', listener: (msg: PgNotificationLike) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'end', listener: () => void): unknown;
}

/**
 * The subset of a `pg.Pool` the driver uses. Pass your own pool to share connections; the
 * driver then never ends it.
 */
export interface PgPoolLike extends PgQueryableLike {
  /** Checks a client out of the pool. */
  connect(): Promise<PgPoolClientLike>;
  /** Closes every connection of the pool. */
  end(): Promise<void>;
}

/** The names an unquoted schema may have: a letter or underscore, then up to 62 more. */
const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Validates and double-quotes an identifier (the schema name). Quoting keeps its case.
 * @throws InvalidArgumentError when `name` is not a plain identifier
 */
export function quoteIdent(name: string): string {
  if (typeof name !== 'string' || !IDENT_RE.test(name)) {
    throw new InvalidArgumentError(`invalid PostgreSQL schema name ${JSON.stringify(name)}: expected letters, digits and underscores, not starting with a digit, at most 63 characters`);
  }
  return `"${name}"`;
}

/** True when `v` looks like a `pg.Pool` (or any object with `query`, `connect` and `end`). */
export function isPgPoolLike(v: unknown): v is PgPoolLike {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o['query'] === 'function' && typeof o['connect'] === 'function' && typeof o['end'] === 'function';
}

type PoolConstructor = new (config: { connectionString: string; max: number }) => PgPoolLike & {
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'connect', listener: (client: PgPoolClientLike) => void): unknown;
};

/**
 * Creates a `pg.Pool` for a connection string, loading `pg` lazily. Errors of idle pooled
 * clients (a server restart, `pg_terminate_backend`) are reported to `onIdleError`, and errors
 * of checked-out clients are left to the statement using them, instead of crashing the process.
 * @throws StorageError when `pg` is not installed
 */
export function createPool(connectionString: string, max: number, onIdleError: (err: Error) => void): PgPoolLike {
  let pg: { Pool: PoolConstructor };
  try {
    pg = createRequire(import.meta.url)('pg') as { Pool: PoolConstructor };
  } catch (cause) {
    throw new StorageError(missingDriverPackageMessage('PostgresStorage', 'pg'), { cause });
  }
  const pool = new pg.Pool({ connectionString, max });
  pool.on('error', onIdleError);
  // pg-pool takes its own 'error' listener off a client while the client is checked out. An
  // error the server sends in that window — e.g. a FATAL arriving in the same packet that
  // completed the connection, before the caller could attach a listener — would be an unhandled
  // 'error' event and crash the process. So every client keeps a listener of ours for its whole
  // life; whatever statement was using the client still fails with the error.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return pool;
}

/**
 * Runs `fn` in a transaction on a client of `pool`: BEGIN (or `begin`), fn, COMMIT; ROLLBACK on error.
 * A transaction that fails with a retryable error (deadlock, serialization failure; see
 * `isRetryableTxError`) runs again from the top under the shared retry policy
 * (shared/tx-retry.ts), so `fn` must be a pure function of the database state.
 */
export function withTx<T>(pool: PgPoolLike, fn: (c: PgPoolClientLike) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  return withTxRetry(() => txOnce(pool, fn, begin), { isRetryable: isRetryableTxError });
}

/**
 * One attempt of {@link withTx}. `begin` opens the transaction: `BEGIN`, or a simple query
 * starting with it that does more in the same round trip (`queries/flow.ts` `FLOW_BEGIN_LOCKED`).
 */
async function txOnce<T>(pool: PgPoolLike, fn: (c: PgPoolClientLike) => Promise<T>, begin: string): Promise<T> {
  const c = await pool.connect();
  let broken: Error | undefined;
  // A checked-out client has no 'error' listener (the pool removes its own): a connection the
  // server drops (restart, pg_terminate_backend) would emit an unhandled 'error' between two
  // statements and crash the process. Note it instead; the client is destroyed on release.
  const onError = (err: Error): void => {
    broken ??= err;
  };
  c.on('error', onError);
  try {
    await c.query({ text: begin });
    const value = await fn(c);
    await c.query({ text: 'COMMIT' });
    return value;
  } catch (e) {
    try {
      await c.query({ text: 'ROLLBACK' });
    } catch (rollbackError) {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw e;
  } finally {
    c.release(broken);
    // The pool put its own listener back; a late error after a broken release is swallowed by it.
    c.removeListener('error', onError);
  }
}
