/**
 * Cross-process wake-ups over PostgreSQL LISTEN/NOTIFY. One dedicated connection (checked out of
 * the driver's pool) listens on the schema's channel for every subscriber of a storage; when it
 * fails (server restart, `pg_terminate_backend`, network loss caught by a periodic ping) it is
 * dropped and re-established with exponential backoff. Notifications sent while disconnected
 * are lost: workers keep a polling fallback.
 * @internal
 */
import type { Logger } from '../../types.js';
import type { PgNotificationLike, PgPoolClientLike, PgPoolLike } from './connection.js';
import { LISTENER_PING, listenSql, unlistenSql } from './queries/admin.js';

/** Reconnect and health-check timings of a {@link PgListener}. */
export interface ListenerOptions {
  /** First reconnect delay (ms). @default 100 */
  minBackoffMs?: number;
  /** Longest reconnect delay (ms). @default 10000 */
  maxBackoffMs?: number;
  /** How often the idle connection is pinged to detect silent loss (ms). @default 30000 */
  pingIntervalMs?: number;
}

/** One LISTEN connection shared by the subscribers of a storage instance. */
export class PgListener {
  readonly #subs = new Set<(queue: string) => void>();
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #pingMs: number;
  #client: PgPoolClientLike | undefined;
  #connecting: Promise<boolean> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #backoff: number;
  #closed = false;
  /** Removes our event handlers from a healthy client before it goes back to the pool. */
  readonly #detach = new WeakMap<PgPoolClientLike, () => void>();

  /**
   * @param pool where the dedicated connection comes from
   * @param channel the NOTIFY channel (a validated identifier)
   * @param logger where connection trouble is reported
   */
  constructor(
    private readonly pool: PgPoolLike,
    private readonly channel: string,
    private readonly logger: Logger,
    opts: ListenerOptions = {},
  ) {
    this.#minBackoff = opts.minBackoffMs ?? 100;
    this.#maxBackoff = opts.maxBackoffMs ?? 10_000;
    this.#pingMs = opts.pingIntervalMs ?? 30_000;
    this.#backoff = this.#minBackoff;
  }

  /** True while a LISTEN connection is established. */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /**
   * Adds a subscriber. Resolves once the channel is listened to (or, when the database cannot
   * be reached now, once a reconnect is scheduled). The returned function removes it; the
   * connection is given back when the last subscriber leaves.
   */
  async subscribe(onWake: (queue: string) => void): Promise<() => Promise<void>> {
    if (this.#closed) throw new Error('listener is closed');
    this.#subs.add(onWake);
    if (this.#client === undefined) await this.#connect();
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      this.#subs.delete(onWake);
      if (this.#subs.size === 0) await this.#disconnect();
    };
  }

  /** Stops listening for good. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#subs.clear();
    await this.#disconnect();
  }

  #connect(): Promise<boolean> {
    this.#connecting ??= this.#doConnect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #doConnect(): Promise<boolean> {
    if (this.#client !== undefined) return true;
    let client: PgPoolClientLike | undefined;
    try {
      client = await this.pool.connect();
      const c = client;
      const onNotification = (msg: PgNotificationLike): void => this.#onNotification(msg);
      const onError = (err: Error): void => this.#onFailure(c, err);
      const onEnd = (): void => this.#onFailure(c, new Error('connection ended'));
      c.on('notification', onNotification);
      c.on('error', onError);
      c.on('end', onEnd);
      this.#detach.set(c, () => {
        c.removeListener('notification', onNotification);
        c.removeListener('error', onError);
        c.removeListener('end', onEnd);
      });
      await c.query({ text: listenSql(this.channel) });
      if (this.#closed || this.#subs.size === 0) {
        await this.#release(c, false);
        return false;
      }
      this.#client = c;
      this.#backoff = this.#minBackoff;
      this.#startPing();
      this.logger.debug('listening for wake-ups', { channel: this.channel });
      return true;
    } catch (err) {
      if (client !== undefined) await this.#release(client, true);
      this.logger.warn('wake-up listener could not connect; retrying', { channel: this.channel, error: String(err), retryInMs: this.#backoff });
      this.#scheduleReconnect();
      return false;
    }
  }

  #onNotification(msg: PgNotificationLike): void {
    if (msg.channel !== this.channel) return;
    const queue = msg.payload ?? '';
    for (const fn of [...this.#subs]) {
      try {
        fn(queue);
      } catch (err) {
        this.logger.error('wake-up subscriber threw', { error: String(err) });
      }
    }
  }

  #onFailure(c: PgPoolClientLike, err: Error): void {
    if (this.#client !== c) return;
    this.#client = undefined;
    this.#stopPing();
    // #release catches every failure of its own: it never rejects.
    void this.#release(c, true);
    if (this.#closed || this.#subs.size === 0) return;
    this.logger.warn('wake-up listener lost its connection; reconnecting', { channel: this.channel, error: err.message, retryInMs: this.#backoff });
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#subs.size === 0 || this.#retryTimer !== undefined) return;
    const delay = Math.round(this.#backoff * (0.75 + Math.random() * 0.5));
    this.#backoff = Math.min(this.#backoff * 2, this.#maxBackoff);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      // #connect never rejects: a failed attempt is logged and schedules the next one.
      void this.#connect().then((ok) => {
        if (ok) this.logger.info('wake-up listener reconnected', { channel: this.channel });
      });
    }, delay);
    this.#retryTimer.unref();
  }

  #startPing(): void {
    this.#stopPing();
    this.#pingTimer = setInterval(() => {
      const c = this.#client;
      if (c === undefined) return;
      c.query({ text: LISTENER_PING }).catch((err: unknown) => this.#onFailure(c, err instanceof Error ? err : new Error(String(err))));
    }, this.#pingMs);
    this.#pingTimer.unref();
  }

  #stopPing(): void {
    if (this.#pingTimer !== undefined) clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
  }

  async #disconnect(): Promise<void> {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#stopPing();
    await this.#connecting;
    const c = this.#client;
    this.#client = undefined;
    if (c !== undefined) await this.#release(c, false);
  }

  async #release(c: PgPoolClientLike, broken: boolean): Promise<void> {
    if (!broken) {
      try {
        await c.query({ text: unlistenSql(this.channel) });
      } catch {
        broken = true;
      }
    }
    // A broken client keeps our handlers: it may still emit 'error' while being destroyed.
    if (!broken) this.#detach.get(c)?.();
    try {
      c.release(broken ? new Error('listener connection dropped') : undefined);
    } catch {
      // already released
    }
  }
}
