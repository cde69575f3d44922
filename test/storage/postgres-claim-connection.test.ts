/**
 * PostgreSQL driver: the limited claim's own connection (`claim-connection.ts`). Its statements
 * run on one backend however busy the rest of the pool is; two claims at once still claim
 * exactly (the second runs on the pool); a backend killed under it costs at most one failed
 * claim; `close()` during a claim waits for it and leaves no backend behind; a pool too small
 * for it, or the user's own, runs the limited claim on the pool.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { StorageError } from '../../src/errors.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import type { JobClaimLimitedParams } from '../../src/storage/storage.js';
import { insertJob, uniqueName } from '../helpers/factories.js';
import { PG_URL, pgAdmin, testSchemaName } from '../helpers/postgres-storage.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A condition on `pg_stat_activity` (whose `query` keeps the first 1024 bytes): the last
 * statement was a limited claim's first read on the schema `$1`.
 */
const FIRST_READ = `query NOT LIKE '%WITH RECURSIVE%' AND query LIKE '%AS walk%' AND position('"' || $1 || '".sdj_type_limits' IN query) > 0`;

/** The backends of the test database whose last statement was a limited claim's first read on `schema`. */
async function claimBackends(schema: string): Promise<number[]> {
  const rows = await pgAdmin<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND ${FIRST_READ} ORDER BY pid`,
    [schema],
  );
  return rows.map((r) => r.pid);
}

/** Backends of the test database other than this one whose last statement named `schema`. */
async function backendsOf(schema: string): Promise<number> {
  const rows = await pgAdmin<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND position($1 IN query) > 0`,
    [`"${schema}".`],
  );
  return rows[0]!.n;
}

describe('postgres: the limited claim runs on a connection of its own', () => {
  const schema = testSchemaName('pg-claim-connection');
  let s: PostgresStorage;
  const type = uniqueName('t');
  const queue = uniqueName('q');
  const params = (limit: number): JobClaimLimitedParams => ({ workerId: 'w', queues: [{ name: queue, limit }], leaseMs: 600_000 });

  before(async () => {
    s = new PostgresStorage(PG_URL, { schema, max: 8 });
    await s.migrate();
    await s.limitSet({ scope: 'type', name: type, concurrency: 10_000, rateLimit: null, ratePeriodMs: null });
    for (let i = 0; i < 200; i++) await insertJob(s, { queue, type });
  });
  after(async () => {
    await s.close();
    await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  });

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

  it('a backend killed under it costs at most one failed claim; the next runs on a new backend', async () => {
    await s.jobClaimLimited(params(1));
    const [pid] = await claimBackends(schema);
    assert.ok(pid !== undefined, 'the claim backend is found');
    await pgAdmin('SELECT pg_terminate_backend($1)', [pid]);
    await waitFor(async () => !(await claimBackends(schema)).includes(pid!), { message: 'the backend is gone' });
    let failed = 0;
    let got = 0;
    for (let i = 0; i < 3; i++) {
      try {
        got += (await s.jobClaimLimited(params(1))).rows.length;
      } catch (e) {
        assert.ok(e instanceof StorageError, `a typed error: ${String(e)}`);
        failed++;
      }
    }
    assert.ok(failed <= 1, `${failed} claims failed`);
    assert.equal(got, 3 - failed);
    const now = await claimBackends(schema);
    assert.equal(now.length, 1);
    assert.notEqual(now[0], pid);
  });
});

describe('postgres: closing a storage with its claim connection', () => {
  it('close() during a limited claim waits for it, and leaves no backend behind', async () => {
    const schema = testSchemaName('pg-claim-connection-close');
    const s = new PostgresStorage(PG_URL, { schema, max: 8 });
    const holder = new pg.Client({ connectionString: PG_URL });
    await holder.connect();
    try {
      await s.migrate();
      const type = uniqueName('t');
      const queue = uniqueName('q');
      await s.limitSet({ scope: 'type', name: type, concurrency: 5, rateLimit: null, ratePeriodMs: null });
      const id = await insertJob(s, { queue, type });
      await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 1 }], leaseMs: 600_000 }).then((r) => assert.equal(r.rows.length, 1));
      await insertJob(s, { queue, type });
      // Hold the flow-state row: the next claim's compare-and-set waits for it.
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${schema}".sdj_flow_state WHERE id = 1 FOR UPDATE`);
      const claiming = s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 1 }], leaseMs: 600_000 });
      await waitFor(async () => (await pgAdmin(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND ${FIRST_READ}`, [schema])).length > 0, {
        message: 'the claim waits for the flow-state row',
      });
      let closed = false;
      const closing = s.close().then(() => (closed = true));
      await holder.query('ROLLBACK');
      const r = await claiming;
      assert.equal(r.rows.length, 1, 'the claim in flight finished');
      assert.notEqual(r.rows[0]!.id, id);
      await closing;
      assert.ok(closed);
      await waitFor(async () => (await backendsOf(schema)) === 0, { message: 'no backend of the storage is left' });
      await assert.rejects(s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 1 }], leaseMs: 600_000 }), { name: 'StorageClosedError' });
      await s.close();
    } finally {
      await holder.end();
      await s.close();
      await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });

  for (const max of [1, 7]) {
    it(`a pool of ${max} runs the limited claim on the pool`, async () => {
      const schema = testSchemaName(`pg-claim-connection-${max}`);
      const s = new PostgresStorage(PG_URL, { schema, max });
      try {
        await s.migrate();
        const type = uniqueName('t');
        const queue = uniqueName('q');
        await s.limitSet({ scope: 'type', name: type, concurrency: 2, rateLimit: null, ratePeriodMs: null });
        for (let i = 0; i < 3; i++) await insertJob(s, { queue, type });
        const p: JobClaimLimitedParams = { workerId: 'w', queues: [{ name: queue, limit: 3 }], leaseMs: 600_000 };
        const [a, b] = await Promise.all([s.jobClaimLimited(p), s.jobClaimLimited(p), s.clockNow()]);
        assert.equal(a.rows.length + b.rows.length, 2, 'the limit of 2 holds');
      } finally {
        await s.close();
        await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      }
    });
  }
});
