/**
 * A PostgreSQL pool whose statements are recorded, for tests that count a driver's round trips
 * or act just before one of its statements.
 */
import pg from 'pg';
import type { PgPoolClientLike, PgPoolLike, PgQueryableLike } from '../../src/storage/postgres/connection.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import type { JobClaimLimitedResult } from '../../src/storage/storage.js';
import { PG_URL } from './postgres-storage.js';

/** A pool of its own on the test server whose statements are recorded (texts in order); `end()` ends it. */
export function recordingPool(onQuery: (text: string) => Promise<void> | void = () => {}): PgPoolLike & { texts: string[] } {
  const real = new pg.Pool({ connectionString: PG_URL, max: 2 });
  const texts: string[] = [];
  const run = async (q: PgQueryableLike, config: Parameters<PgPoolLike['query']>[0]) => {
    await onQuery(config.text);
    texts.push(config.text);
    return q.query(config);
  };
  return {
    texts,
    query: (config) => run(real as unknown as PgQueryableLike, config),
    connect: async () => {
      const c = (await real.connect()) as unknown as PgPoolClientLike;
      // A wrapper, not a patched client: pg-pool's own queries on the client keep its methods.
      return {
        query: (config: Parameters<PgPoolLike['query']>[0]) => run(c, config),
        release: (err?: Error | boolean) => c.release(err),
        on: ((event: never, listener: never) => c.on(event, listener)) as PgPoolClientLike['on'],
        removeListener: ((event: never, listener: never) => c.removeListener(event, listener)) as PgPoolClientLike['removeListener'],
      };
    },
    end: () => real.end(),
  };
}

/**
 * A storage of its own on schema `schema` over a {@link recordingPool} (so its own per-storage
 * state, such as the limited claim's skip memory), with a limited claim of one queue by worker
 * `w`; `done()` closes the storage and the pool.
 */
export function recordedStorage(schema: string) {
  const pool = recordingPool();
  const s = new PostgresStorage(pool, { schema });
  return {
    s,
    pool,
    claim: (queue: string, limit: number): Promise<JobClaimLimitedResult> => s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit }], leaseMs: 60_000 }),
    done: async () => {
      await s.close();
      await pool.end();
    },
  };
}
