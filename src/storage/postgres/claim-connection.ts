/**
 * The limited claim's own connection. The limited claim's statements (`queries/flow.ts`) are
 * large: a connection pays for parsing them, loading the catalog entries of the flow tables and
 * planning them (custom plans before the generic one) once, about 10–20 ms of server time. Run on
 * any connection of the pool, a worker pays that on every one of them, which a short drain
 * notices (docs/flow-control.md, "What it costs"). A storage that created its pool with at least
 * {@link MIN_POOL_FOR_CLAIM_CONNECTION} connections therefore keeps one of them checked out for
 * the limited claim once it first runs, so the statements are prepared on that one only.
 *
 * - One user at a time: a limited claim that finds it busy (two workers on one storage) runs on
 *   the pool, as it would without it; nothing waits for it.
 * - Every statement on it is a transaction of its own, as on the pool; a retryable failure
 *   (deadlock, serialization failure) rolled that transaction back whole and left the
 *   connection as it was, so the caller's unit runs again on it under the shared retry policy
 *   (its prepared statements kept).
 * - Any other failure gives the connection up (destroyed, not returned to the pool: a
 *   connection that failed may be broken); the next use checks out a fresh one.
 * - While checked out it has an 'error' listener of its own (so an error of the connection, such
 *   as the server ending it, is never an unhandled 'error' event): a connection that fails while
 *   idle is given up at once, one that fails during a use when that use ends. So a backend that
 *   ends while the connection waits costs no claim.
 * - `close()` returns it to the pool (at once when idle, else when the use in flight ends), so
 *   ending the pool does not wait for it.
 * @internal
 */
import { withTxRetry } from '../shared/tx-retry.js';
import type { PgPoolClientLike, PgPoolLike, PgQueryableLike } from './connection.js';
import { isRetryableTxError } from './translate-error.js';

/**
 * The smallest pool a storage takes a connection out of for the limited claim: a smaller pool
 * keeps every connection for the work around the handlers (with LISTEN holding one already).
 */
export const MIN_POOL_FOR_CLAIM_CONNECTION = 8;

/** A pooled connection kept checked out for one kind of statement. */
export class ClaimConnection {
  readonly #pool: PgPoolLike;
  #client: PgPoolClientLike | undefined;
  /** The connection failed during a use: it is destroyed when that use ends. */
  #broken = false;
  #busy = false;
  #closed = false;

  constructor(pool: PgPoolLike) {
    this.#pool = pool;
  }

  /**
   * Runs `fn` with the connection (checked out on first use), or with the pool when the
   * connection is in use or closed. `fn` must be safe to run again from the top: on the
   * connection a retryable failure reruns it (each of its statements is a transaction of its own).
   */
  async run<T>(fn: (c: PgQueryableLike) => Promise<T>): Promise<T> {
    // On the pool each statement is retried by itself (`PgExec.rows`).
    if (this.#busy || this.#closed) return fn(this.#pool);
    this.#busy = true;
    try {
      return await withTxRetry(() => this.#once(fn), { isRetryable: isRetryableTxError });
    } finally {
      this.#busy = false;
      if (this.#broken) this.#giveUp(true);
      else if (this.#closed) this.#giveUp(false);
    }
  }

  async #once<T>(fn: (c: PgQueryableLike) => Promise<T>): Promise<T> {
    // A connection that failed during the attempt before is not used again.
    if (this.#broken) this.#giveUp(true);
    const c = this.#client ?? (await this.#checkOut());
    try {
      return await fn(c);
    } catch (e) {
      // A retryable failure rolled back its statement's transaction and left the connection
      // usable; any other may have broken it: destroy it, the next use checks out another.
      if (!isRetryableTxError(e)) this.#giveUp(true);
      throw e;
    }
  }

  async #checkOut(): Promise<PgPoolClientLike> {
    const c = await this.#pool.connect();
    c.on('error', this.#onError);
    this.#client = c;
    return c;
  }

  /** The 'error' listener of the checked-out connection: give it up now when idle, else after the use. */
  readonly #onError = (): void => {
    if (this.#busy) this.#broken = true;
    else this.#giveUp(true);
  };

  /** Returns the connection to the pool (now when idle, else after the use in flight). */
  close(): void {
    this.#closed = true;
    if (!this.#busy) this.#giveUp(false);
  }

  /** Returns the connection to the pool, or destroys it (`destroy`); nothing when none is checked out. */
  #giveUp(destroy: boolean): void {
    const c = this.#client;
    this.#client = undefined;
    this.#broken = false;
    if (c === undefined) return;
    // The pool puts its own 'error' listener back on release; ours comes off only after it.
    c.release(destroy);
    c.removeListener('error', this.#onError);
  }
}
