/**
 * PostgreSQL driver: the limited claim's own connection (`claim-connection.ts`). Its statements
 * run on one backend however busy the rest of the pool is; two claims at once still claim
 * exactly (the second runs on the pool); a backend that ends while the connection is idle costs
 * no claim, one that ends during a use is given up when the use ends, and one that ends under a
 * statement costs that claim only; a retryable failure reruns the claim on the same backend,
 * any other failure fails it once and gives the backend up; `close()` (during a claim, twice)
 * leaves no backend behind; a pool too small for it, or the user's own, runs the limited claim
 * on the pool.
 */
import assert from 'node:assert/strict';
import { once, type EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { StorageError } from '../../src/errors.js';
import { ClaimConnection } from '../../src/storage/postgres/claim-connection.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { DEFAULT_TX_RETRY_POLICY } from '../../src/storage/shared/tx-retry.js';
import type { JobClaimLimitedParams } from '../../src/storage/storage.js';
import { insertJob, uniqueName } from '../helpers/factories.js';
import { PG_URL, pgAdmin, testSchemaName } from '../helpers/postgres-storage.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A condition on `pg_stat_activity` (whose `query` keeps the first 1024 bytes): the last
 * statement was a limited claim's first statement on the schema `$1` (the plain claim of one
 * queue, or the first candidate read).
 */
const FIRST_READ = `((query LIKE '%$3::int AS lim)%' AND position('"' || $1 || '".sdj_jobs_live' IN query) > 0)
  OR (query NOT LIKE '%WITH RECURSIVE%' AND query LIKE '%AS walk%' AND position('"' || $1 || '".sdj_type_limits' IN query) > 0))`;

/** The backends of the test database whose last statement was a limited claim's first read on `schema`. */
async function claimBackends(schema: string): Promise<number[]> {
  const rows = await pgAdmin<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND ${FIRST_READ} ORDER BY pid`,
    [schema],
  );
  return rows.map((r) => r.pid);
}

/** The test server's connection string with `application_name` set to `app`. */
function urlFor(app: string): string {
  return `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}application_name=${encodeURIComponent(app)}`;
}

/** The backends connected with `application_name` `app`. */
async function backendsNamed(app: string): Promise<number[]> {
  const rows = await pgAdmin<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid', [app]);
  return rows.map((r) => r.pid);
}

/** Ends backend `pid` and waits until it is gone from `pg_stat_activity`. */
async function terminate(pid: number): Promise<void> {
  await pgAdmin('SELECT pg_terminate_backend($1)', [pid]);
  await waitFor(async () => (await pgAdmin('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 0, { message: `backend ${pid} is gone` });
}

/** Resolves on `emitter`'s next `event`; rejects when none comes within `ms` (the wait keeps the process alive). */
async function nextEvent(emitter: EventEmitter, event: string, ms = 10_000): Promise<unknown[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`no '${event}' event within ${ms} ms`)), ms);
  try {
    return await once(emitter, event, { signal: ac.signal });
  } finally {
    clearTimeout(timer);
  }
}

/** A migrated storage on a schema of its own, with a type limit and ready jobs of that type on one queue. */
interface Fixture {
  s: PostgresStorage;
  schema: string;
  /** The `application_name` of every connection of the storage's pool. */
  app: string;
  type: string;
  queue: string;
  /** The jobs inserted, in order. */
  ids: string[];
  /** The user's pool the storage runs on, when asked for one. */
  pool: pg.Pool | undefined;
  /** Limited-claim parameters for the queue. */
  params(limit: number): JobClaimLimitedParams;
  /** Closes the storage (and the user's pool) and drops the schema. */
  cleanup(): Promise<void>;
}

/**
 * Opens a {@link Fixture}: a pool of `max` created by the storage, or with `userPool` a
 * `pg.Pool` of 10 passed in (the storage never ends it).
 */
async function openStorage(label: string, opts: { max?: number; userPool?: boolean; concurrency: number; jobs: number }): Promise<Fixture> {
  const schema = testSchemaName(label);
  const app = schema;
  const pool = opts.userPool ? new pg.Pool({ connectionString: urlFor(app), max: 10 }) : undefined;
  const s = pool ? new PostgresStorage(pool, { schema }) : new PostgresStorage(urlFor(app), { schema, max: opts.max ?? 8 });
  const type = uniqueName('t');
  const queue = uniqueName('q');
  await s.migrate();
  await s.limitSet({ scope: 'type', name: type, concurrency: opts.concurrency, rateLimit: null, ratePeriodMs: null });
  const ids: string[] = [];
  for (let i = 0; i < opts.jobs; i++) ids.push(await insertJob(s, { queue, type }));
  return {
    s,
    schema,
    app,
    type,
    queue,
    ids,
    pool,
    params: (limit) => ({ workerId: 'w', queues: [{ name: queue, limit }], leaseMs: 600_000 }),
    cleanup: async () => {
      await s.close();
      await pool?.end();
      await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  };
}

/**
 * Makes every update of `schema`'s `sdj_flow_state` (each limited claim that claims writes it)
 * fail with SQLSTATE `state` the first `times` times. The calls are counted and the first 8
 * callers' backend pids kept in sequences, which a rolled-back statement does not undo.
 * @returns the number of updates so far, the pids of the backends that ran the first 8 (in call
 *   order), and the remover
 */
async function failFlowStateUpdates(
  schema: string,
  state: string,
  times: number,
): Promise<{ calls(): Promise<number>; pids(): Promise<number[]>; remove(): Promise<void> }> {
  const q = `"${schema}"`;
  const seqs = Array.from({ length: 8 }, (_, i) => `CREATE SEQUENCE ${q}.sdj_test_pid_${i + 1};`).join('\n');
  await pgAdmin(`
    CREATE SEQUENCE ${q}.sdj_test_calls;
    ${seqs}
    CREATE FUNCTION ${q}.sdj_test_fail() RETURNS trigger LANGUAGE plpgsql AS $f$
    DECLARE n bigint := nextval(format('%I.sdj_test_calls', TG_TABLE_SCHEMA)::regclass);
    BEGIN
      IF n <= 8 THEN PERFORM setval(format('%I.sdj_test_pid_%s', TG_TABLE_SCHEMA, n)::regclass, pg_backend_pid()); END IF;
      IF n <= ${times} THEN RAISE EXCEPTION 'forced failure %', n USING ERRCODE = '${state}'; END IF;
      RETURN NEW;
    END $f$;
    CREATE TRIGGER sdj_test_fail BEFORE UPDATE ON ${q}.sdj_flow_state FOR EACH ROW EXECUTE FUNCTION ${q}.sdj_test_fail();
  `);
  return {
    calls: async () => {
      const [row] = await pgAdmin<{ n: string; set: boolean }>(`SELECT last_value::text AS n, is_called AS set FROM ${q}.sdj_test_calls`);
      return row!.set ? Number(row!.n) : 0;
    },
    pids: async () => {
      const pids: number[] = [];
      for (let i = 1; i <= 8; i++) {
        const [row] = await pgAdmin<{ pid: string; set: boolean }>(`SELECT last_value::text AS pid, is_called AS set FROM ${q}.sdj_test_pid_${i}`);
        if (!row!.set) break;
        pids.push(Number(row!.pid));
      }
      return pids;
    },
    remove: async () => {
      await pgAdmin(`DROP TRIGGER sdj_test_fail ON ${q}.sdj_flow_state; DROP FUNCTION ${q}.sdj_test_fail(); DROP SEQUENCE ${q}.sdj_test_calls, ${Array.from({ length: 8 }, (_, i) => `${q}.sdj_test_pid_${i + 1}`).join(', ')}`);
    },
  };
}

describe('postgres: the limited claim runs on a connection of its own', () => {
  let f: Fixture;
  let s: PostgresStorage;
  let schema: string;
  const params = (limit: number): JobClaimLimitedParams => f.params(limit);

  before(async () => {
    f = await openStorage('pg-claim-connection', { max: 8, concurrency: 10_000, jobs: 200 });
    ({ s, schema } = f);
  });
  after(async () => {
    await f.cleanup();
  });

  /**
   * The backend of the latest limited claim (the claim connection's, when no claim ran on the
   * pool since); other backends may still show the first read of a claim that ran on the pool.
   */
  async function claimBackend(): Promise<number> {
    const [row] = await pgAdmin<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND ${FIRST_READ} ORDER BY query_start DESC LIMIT 1`,
      [schema],
    );
    assert.ok(row, 'a claim backend is found');
    return row.pid;
  }

  it('runs every limited claim on one backend while the rest of the pool is busy', async () => {
    const pids = new Set<number>();
    for (let i = 0; i < 12; i++) {
      // Other statements hold 0, 1 or 2 of the pool's connections while the claim runs, so a
      // claim on the pool would get a different connection from one claim to the next.
      const others = Array.from({ length: i % 3 }, () => s.clockNow());
      const r = await s.jobClaimLimited(params(2));
      await Promise.all(others);
      assert.equal(r.rows.length, 2);
      for (const pid of await claimBackends(schema)) pids.add(pid);
    }
    assert.equal(pids.size, 1, `the claims ran on backends ${[...pids].join(', ')}`);
  });

  it('two claims at once both claim, never the same job (the second runs on the pool)', async () => {
    const [a, b] = await Promise.all([s.jobClaimLimited(params(5)), s.jobClaimLimited(params(5))]);
    const ids = [...a.rows, ...b.rows].map((r) => r.id);
    assert.equal(ids.length, 10);
    assert.equal(new Set(ids).size, 10, 'no job claimed twice');
  });

  it('a backend killed while the connection is idle costs no claim; the next runs on a new backend', async () => {
    await s.jobClaimLimited(params(1));
    const pid = await claimBackend();
    await terminate(pid);
    for (let i = 0; i < 3; i++) assert.equal((await s.jobClaimLimited(params(1))).rows.length, 1, `claim ${i + 1}`);
    assert.notEqual(await claimBackend(), pid);
  });

  it('a backend killed under a claim fails that claim only; the next runs on a new backend', async () => {
    await s.jobClaimLimited(params(1));
    const pid = await claimBackend();
    const holder = new pg.Client({ connectionString: PG_URL });
    await holder.connect();
    try {
      // Hold the flow-state row: the claim's compare-and-set waits for it.
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${schema}".sdj_flow_state WHERE id = 1 FOR UPDATE`);
      const failing = assert.rejects(s.jobClaimLimited(params(1)), (e) => e instanceof StorageError && e.transient);
      await waitFor(async () => (await pgAdmin(`SELECT 1 FROM pg_stat_activity WHERE pid = $2 AND wait_event_type = 'Lock' AND ${FIRST_READ}`, [schema, pid])).length > 0, {
        message: 'the claim waits for the flow-state row',
      });
      await terminate(pid);
      await failing;
      await holder.query('ROLLBACK');
    } finally {
      await holder.end();
    }
    for (let i = 0; i < 3; i++) assert.equal((await s.jobClaimLimited(params(1))).rows.length, 1, `claim ${i + 1}`);
    assert.notEqual(await claimBackend(), pid);
  });

  it('a serialization failure runs the claim again on the same backend', async () => {
    await s.jobClaimLimited(params(1));
    const pid = await claimBackend();
    const trap = await failFlowStateUpdates(schema, '40001', 1);
    try {
      assert.equal((await s.jobClaimLimited(params(1))).rows.length, 1);
      assert.equal(await trap.calls(), 2, 'one failed attempt, one rerun');
      assert.deepEqual(await trap.pids(), [pid, pid], 'the failed attempt and the rerun ran on the claim backend');
    } finally {
      await trap.remove();
    }
    assert.equal(await claimBackend(), pid);
  });

  it('a deadlock on every attempt fails the claim after the retry policy’s attempts, all on the same backend', async () => {
    await s.jobClaimLimited(params(1));
    const pid = await claimBackend();
    const attempts = DEFAULT_TX_RETRY_POLICY.maxAttempts;
    assert.ok(attempts <= 8, 'the trap keeps the pids of 8 calls');
    const trap = await failFlowStateUpdates(schema, '40P01', 1_000);
    try {
      await assert.rejects(s.jobClaimLimited(params(1)), (e) => e instanceof StorageError && /\(40P01\)/.test(e.message));
      assert.equal(await trap.calls(), attempts);
      assert.deepEqual(await trap.pids(), Array.from({ length: attempts }, () => pid));
    } finally {
      await trap.remove();
    }
    assert.equal((await s.jobClaimLimited(params(1))).rows.length, 1);
    assert.equal(await claimBackend(), pid);
  });

  it('any other failure fails the claim once, without a rerun, and gives the backend up', async () => {
    await s.jobClaimLimited(params(1));
    const pid = await claimBackend();
    const trap = await failFlowStateUpdates(schema, 'P0001', 1_000);
    try {
      await assert.rejects(s.jobClaimLimited(params(1)), (e) => e instanceof StorageError && /forced failure 1 \(P0001\)/.test(e.message));
      assert.equal(await trap.calls(), 1, 'one attempt');
      assert.deepEqual(await trap.pids(), [pid]);
    } finally {
      await trap.remove();
    }
    await waitFor(async () => (await backendsNamed(f.app)).every((p) => p !== pid), { message: 'the failed backend is ended' });
    assert.equal((await s.jobClaimLimited(params(1))).rows.length, 1);
    assert.notEqual(await claimBackend(), pid);
  });
});

describe('postgres: ClaimConnection on a pool', () => {
  /** The backend pid of `c`. */
  async function pidOf(c: pg.ClientBase | pg.Pool): Promise<number> {
    return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  }

  /**
   * A pool as a user makes it: an 'error' listener on the pool and none on its clients, so an
   * 'error' event of a checked-out client that nothing listens to would crash the process.
   * Runs `fn` with the pool and a claim connection on it, then closes both.
   */
  async function withPool(fn: (pool: pg.Pool, cc: ClaimConnection, app: string) => Promise<void>): Promise<void> {
    const app = testSchemaName('pg-claim-connection-pool');
    const pool = new pg.Pool({ connectionString: urlFor(app), max: 4 });
    pool.on('error', () => {});
    const cc = new ClaimConnection(pool);
    try {
      await fn(pool, cc, app);
    } finally {
      // Ending the pool waits for the connection it keeps checked out.
      cc.close();
      await pool.end();
    }
    await waitFor(async () => (await backendsNamed(app)).length === 0, { message: 'no backend of the pool is left' });
  }

  it('a backend killed while the connection is idle is given up at once; the next use checks out another', async () => {
    await withPool(async (pool, cc) => {
      const pid = await cc.run((c) => pidOf(c as pg.PoolClient));
      const removed = nextEvent(pool, 'remove');
      await pgAdmin('SELECT pg_terminate_backend($1)', [pid]);
      await removed;
      assert.equal(pool.totalCount, 0, 'the failed connection is out of the pool');
      const next = await cc.run((c) => pidOf(c as pg.PoolClient));
      assert.notEqual(next, pid);
    });
  });

  it('a backend killed during a use is destroyed when the use ends; the next use checks out another', async () => {
    await withPool(async (pool, cc) => {
      const pid = await cc.run(async (c) => {
        const pid = await pidOf(c as pg.PoolClient);
        const failed = nextEvent(c as pg.PoolClient, 'error');
        await pgAdmin('SELECT pg_terminate_backend($1)', [pid]);
        await failed;
        return pid;
      });
      assert.equal(pool.totalCount, 0, 'the failed connection is out of the pool');
      const next = await cc.run((c) => pidOf(c as pg.PoolClient));
      assert.notEqual(next, pid);
    });
  });

  it('close() twice gives the connection back once; a use after close() runs on the pool', async () => {
    await withPool(async (pool, cc, app) => {
      const pid = await cc.run((c) => pidOf(c as pg.PoolClient));
      assert.equal(pool.idleCount, 0, 'the connection is checked out');
      cc.close();
      cc.close();
      assert.equal(pool.idleCount, 1, 'the connection is back in the pool');
      const used = await cc.run(async (c) => {
        assert.equal(c, pool);
        return pidOf(pool);
      });
      assert.equal(used, pid, 'the pool reuses the connection given back');
      assert.deepEqual(await backendsNamed(app), [pid]);
    });
  });

  it('close() twice during a use gives the connection back once, when the use ends', async () => {
    await withPool(async (pool, cc) => {
      let inUse!: () => void;
      const started = new Promise<void>((resolve) => (inUse = resolve));
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const using = cc.run(async (c) => {
        inUse();
        await finished;
        return pidOf(c as pg.PoolClient);
      });
      await started;
      cc.close();
      cc.close();
      assert.equal(pool.idleCount, 0, 'the connection in use is not given back');
      finish();
      await using;
      assert.equal(pool.idleCount, 1, 'given back when the use ends');
      assert.equal(pool.totalCount, 1);
    });
  });
});

describe('postgres: closing a storage with its claim connection', () => {
  it('close() during a limited claim waits for it, and leaves no backend behind', async () => {
    const f = await openStorage('pg-claim-connection-close', { max: 8, concurrency: 5, jobs: 1 });
    const { s, schema } = f;
    const holder = new pg.Client({ connectionString: PG_URL });
    await holder.connect();
    try {
      await s.jobClaimLimited(f.params(1)).then((r) => assert.equal(r.rows.length, 1));
      await insertJob(s, { queue: f.queue, type: f.type });
      // Hold the flow-state row: the next claim's compare-and-set waits for it.
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${schema}".sdj_flow_state WHERE id = 1 FOR UPDATE`);
      const claiming = s.jobClaimLimited(f.params(1));
      await waitFor(async () => (await pgAdmin(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND ${FIRST_READ}`, [schema])).length > 0, {
        message: 'the claim waits for the flow-state row',
      });
      let closed = false;
      const closing = s.close().then(() => (closed = true));
      await holder.query('ROLLBACK');
      const r = await claiming;
      assert.equal(r.rows.length, 1, 'the claim in flight finished');
      assert.notEqual(r.rows[0]!.id, f.ids[0]);
      await closing;
      assert.ok(closed);
      await waitFor(async () => (await backendsNamed(f.app)).length === 0, { message: 'no backend of the storage is left' });
      await assert.rejects(s.jobClaimLimited(f.params(1)), { name: 'StorageClosedError' });
      await s.close();
    } finally {
      await holder.end();
      await f.cleanup();
    }
  });

  it('close() after limited claims leaves no backend behind', async () => {
    const f = await openStorage('pg-claim-connection-closed', { max: 8, concurrency: 5, jobs: 3 });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await f.s.jobClaimLimited(f.params(1))).rows.length, 1);
      await f.s.clockNow();
      assert.equal((await backendsNamed(f.app)).length, 2, 'the claim connection and one of the pool');
      await f.s.close();
      await waitFor(async () => (await backendsNamed(f.app)).length === 0, { message: 'no backend of the storage is left' });
    } finally {
      await f.cleanup();
    }
  });

  /**
   * A limited claim, then another statement: on the pool (which hands out the connection given
   * back last) the statement runs on the claim's backend, so one backend is left and none of them
   * last ran a limited claim. Then two claims at once under a limit of 3 with one job running:
   * two more start.
   */
  async function claimsOnThePool(f: Fixture): Promise<void> {
    assert.equal((await f.s.jobClaimLimited(f.params(1))).rows.length, 1);
    await f.s.clockNow();
    assert.equal((await backendsNamed(f.app)).length, 1, 'no connection is kept for the limited claim');
    assert.deepEqual(await claimBackends(f.schema), [], 'the claim backend ran the next statement');
    const [a, b] = await Promise.all([f.s.jobClaimLimited(f.params(3)), f.s.jobClaimLimited(f.params(3)), f.s.clockNow()]);
    assert.equal(a.rows.length + b.rows.length, 2, 'the limit of 3 holds');
  }

  for (const max of [1, 2, 7]) {
    it(`a pool of ${max} runs the limited claim on the pool`, async () => {
      const f = await openStorage(`pg-claim-connection-${max}`, { max, concurrency: 3, jobs: 5 });
      try {
        await claimsOnThePool(f);
      } finally {
        await f.cleanup();
      }
    });
  }

  it('the user’s own pool runs the limited claim on the pool, and stays open after close()', async () => {
    const f = await openStorage('pg-claim-connection-user', { userPool: true, concurrency: 3, jobs: 5 });
    try {
      await claimsOnThePool(f);
      assert.equal(f.pool!.idleCount, f.pool!.totalCount, 'no connection of the pool is checked out');
      await f.s.close();
      assert.equal((await f.pool!.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1);
    } finally {
      await f.cleanup();
    }
  });
});
