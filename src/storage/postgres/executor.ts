/**
 * Renders the driver's statements for one schema and runs them as named prepared statements
 * (parsed and planned once per connection). The statement name is a hash of the rendered text,
 * so storages on different schemas can share a user's pool without clashing.
 *
 * A statement run on the pool is a transaction of its own: when the server aborts it with a
 * retryable error (a deadlock, or a serialization failure such as a row it was about to lock
 * having been moved to the other partition of `sdj_jobs` by an UPDATE of someone else's — the
 * driver itself moves rows by DELETE and INSERT, see `queries/common.ts`), nothing of it
 * remains, and it runs again under the shared retry policy (shared/tx-retry.ts) in a fresh
 * snapshot. Statements on a client of an open transaction are not retried here: their
 * transaction is (`withTx`), or belongs to the caller.
 * @internal
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../types.js';
import type { ClaimConnection } from './claim-connection.js';
import { withTxRetry } from '../shared/tx-retry.js';
import { quoteIdent, type PgPoolLike, type PgQueryableLike, type PgQueryResultLike } from './connection.js';
import { isRetryableTxError } from './translate-error.js';

/** A rendered statement. */
interface Rendered {
  name: string;
  text: string;
}

/** Everything the operation modules need: the pool, statement runner, clock and channel. */
export class PgExec {
  /** The quoted schema. */
  readonly schemaSql: string;
  /** The LISTEN/NOTIFY channel of this schema. */
  readonly channel: string;
  readonly #cache = new Map<string, Rendered>();
  readonly #clock: (() => number) | undefined;
  /** The limited claim's own connection (absent: it runs on the pool). */
  claimConnection: ClaimConnection | undefined;

  /**
   * @param pool the pool statements run on by default
   * @param schema the validated schema name
   * @param clock injected clock (tests); undefined = the database clock
   * @param logger the injected logger
   */
  constructor(
    readonly pool: PgPoolLike,
    readonly schema: string,
    clock: (() => number) | undefined,
    readonly logger: Logger,
  ) {
    this.schemaSql = quoteIdent(schema);
    this.channel = channelFor(schema);
    this.#clock = clock;
  }

  /** The `now` parameter of a statement: the injected clock's time, or null (database clock). */
  now(): number | null {
    return this.#clock ? Math.floor(this.#clock()) : null;
  }

  /**
   * Runs `fn` (a unit of the limited claim) on the limited claim's own connection when the
   * storage keeps one (see `claim-connection.ts`), else on the pool.
   */
  onClaimConnection<T>(fn: (c: PgQueryableLike) => Promise<T>): Promise<T> {
    return this.claimConnection ? this.claimConnection.run(fn) : fn(this.pool);
  }

  /** The statement `template` rendered for this schema. */
  render(template: string): Rendered {
    let r = this.#cache.get(template);
    if (r === undefined) {
      const text = template.replaceAll('{s}', this.schemaSql);
      r = { name: `sdj_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`, text };
      this.#cache.set(template, r);
    }
    return r;
  }

  /**
   * Runs a statement on `c` (default: the pool) and returns its rows. On the pool (autocommit)
   * a statement aborted with a retryable error runs again (see the module comment).
   */
  async rows<R>(template: string, values: unknown[] = [], c: PgQueryableLike = this.pool): Promise<R[]> {
    const { name, text } = this.render(template);
    const run = (): Promise<PgQueryResultLike> => c.query({ name, text, values });
    const res = c === this.pool ? await withTxRetry(run, { isRetryable: isRetryableTxError }) : await run();
    return res.rows as R[];
  }

  /**
   * Runs a statement that locks one job row by id, on `c` inside an open transaction, and
   * returns the row (undefined when the job does not exist). A job that moved between the
   * partitions of `sdj_jobs` (deleted from one, inserted into the other) while the lock waited
   * is gone from that statement's snapshot; at READ COMMITTED the next statement sees the new
   * row, so the lock is tried again (at most three times in all) before "not found" is believed.
   */
  async lockJob<R>(template: string, values: unknown[], c: PgQueryableLike): Promise<R | undefined> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.one<R>(template, values, c);
      if (r !== undefined || attempt === 3) return r;
    }
  }

  /** Runs a statement and returns its first row (undefined when none). */
  async one<R>(template: string, values: unknown[] = [], c: PgQueryableLike = this.pool): Promise<R | undefined> {
    return (await this.rows<R>(template, values, c))[0];
  }

  /**
   * Runs a statement without prepared-statement caching, planned for the values given (DDL,
   * one-off statements, and listings whose text follows each call's filter).
   */
  async exec(template: string, values: unknown[] = [], c: PgQueryableLike = this.pool): Promise<unknown[]> {
    const res = await c.query({ text: template.replaceAll('{s}', this.schemaSql), values });
    return res.rows;
  }
}

/**
 * The NOTIFY channel of a schema: `sdj_<schema>`, or a hashed form when that would exceed
 * PostgreSQL's 63-byte identifier limit.
 */
export function channelFor(schema: string): string {
  const plain = `sdj_${schema}`;
  if (plain.length <= 63) return plain;
  return `sdj_${schema.slice(0, 40)}_${createHash('sha1').update(schema).digest('hex').slice(0, 16)}`;
}
