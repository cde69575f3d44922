/**
 * PostgreSQL driver: the plain claim of one queue (`FLOW_CLAIM_PLAIN_ONE`), the statement a
 * limited claim of a single queue tries first. It claims a plain plan in one round trip (every
 * group of the queue's first ready jobs has room for them, no queue or rate limit in play), says
 * `empty` without a write when there is nothing to claim, and otherwise hands the claim to the
 * full read, after which that queue skips it for `PLAIN_SKIP_MS`. Changes committed while it
 * waits for a row (the flow-state version, the queue row, a job row) are honoured as by the full
 * claim: a version moved claims nothing on this attempt, a queue paused claims nothing, a job
 * paused is left.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PLAIN_SKIP_MS } from '../../src/storage/postgres/flow-ops.js';
import type { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { FLOW_CANDIDATES, FLOW_CLAIM, FLOW_CLAIM_PLAIN_ONE } from '../../src/storage/postgres/queries/flow.js';
import type { JobClaimLimitedResult } from '../../src/storage/storage.js';
import { insertJob, mustGet, uniqueName } from '../helpers/factories.js';
import { recordedStorage } from '../helpers/pg-recording-pool.js';
import { makePostgresStorage, PG_URL, pgAdmin } from '../helpers/postgres-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

describe('postgres flow control: the plain claim of one queue', () => {
  let ts: TestStorage;
  let q: string;
  let rival: pg.Client;
  before(async () => {
    ts = await makePostgresStorage('pg-flow-plain-one');
    q = `"${(ts.storage as PostgresStorage).schema}"`;
    rival = new pg.Client({ connectionString: PG_URL });
    await rival.connect();
  });
  after(async () => {
    await rival.end();
    await ts.cleanup();
  });

  const text = (sql: string): string => sql.replaceAll('{s}', q);

  /** A storage of its own (its own skip memory) on a recording pool. */
  const recorded = () => recordedStorage(q.slice(1, -1));

  async function version(): Promise<number> {
    return Number((await pgAdmin<{ v: string }>(`SELECT version AS v FROM ${q}.sdj_flow_state WHERE id = 1`))[0]!.v);
  }

  async function statuses(ids: readonly string[]): Promise<string[]> {
    return Promise.all(ids.map(async (id) => (await mustGet(ts.storage, id)).status));
  }

  /** Waits until a statement on the schema (not the rival's) waits for a lock. */
  async function claimWaitsForALock(): Promise<void> {
    await waitFor(
      async () =>
        (await pgAdmin<{ n: string }>(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position($1 IN query) > 0 AND pid <> $2",
          [q, (rival as unknown as { processID: number }).processID],
        ))[0]!.n !== '0',
      { message: 'the claim waits for a lock the rival holds' },
    );
  }

  it('claims the first jobs in claim order, of several groups with room, in one statement that moves the version once', async () => {
    const s = ts.storage;
    const [ta, tb] = [uniqueName('t'), uniqueName('t')];
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: ta, concurrency: 2, rateLimit: null, ratePeriodMs: null });
    await s.limitSet({ scope: 'type', name: tb, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    const a1 = await insertJob(s, { queue, type: ta, concurrencyKey: 'x' });
    const b1 = await insertJob(s, { queue, type: tb, concurrencyKey: 'x', priority: 5 });
    const a2 = await insertJob(s, { queue, type: ta, concurrencyKey: 'x' });
    const b2 = await insertJob(s, { queue, type: tb, concurrencyKey: 'y' });
    const later = await insertJob(s, { queue, type: ta, concurrencyKey: 'x' });
    const r = recorded();
    try {
      const v0 = await version();
      const got = await r.claim(queue, 4);
      assert.deepEqual(got.rows.map((row) => row.id), [b1, a1, a2, b2], 'claim order: priority, then first in');
      assert.deepEqual([got.retryInMs, got.saturated], [null, false]);
      assert.ok(got.rows.every((row) => row.status === 'running' && row.lockedBy === 'w' && row.attempt === 1));
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)]);
      assert.equal(await version(), v0 + 1);
      assert.deepEqual(await statuses([later]), ['pending']);
    } finally {
      await r.done();
    }
  });

  it('says there is nothing to claim without a write: an empty queue, and a paused queue holding ready jobs', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    await s.limitSet({ scope: 'type', name: type, concurrency: 5, rateLimit: null, ratePeriodMs: null });
    const paused = uniqueName('q');
    const ids = [await insertJob(s, { queue: paused, type }), await insertJob(s, { queue: paused, type })];
    await s.queueSetPaused({ queue: paused, paused: true });
    const r = recorded();
    try {
      const v0 = await version();
      for (const queue of [uniqueName('q'), paused]) {
        r.pool.texts.length = 0;
        assert.deepEqual(await r.claim(queue, 5), { rows: [], retryInMs: null, saturated: false });
        assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)], 'one statement');
      }
      assert.equal(await version(), v0, 'no compare-and-set');
      assert.deepEqual(await statuses(ids), ['pending', 'pending']);
      await s.queueSetPaused({ queue: paused, paused: false });
      r.pool.texts.length = 0;
      assert.deepEqual((await r.claim(paused, 5)).rows.map((row) => row.id), ids, 'resumed: claimed at once (no skip after empty)');
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)]);
    } finally {
      await r.done();
    }
  });

  /** A queue whose plan is not plain, and what the full claim makes of it. */
  const notPlain: [what: string, make: (s: TestStorage['storage']) => Promise<{ queue: string; check: (got: JobClaimLimitedResult, ids: string[]) => void; ids: string[] }>][] = [
    [
      'a group without room for its candidates',
      async (s) => {
        const type = uniqueName('t');
        const queue = uniqueName('q');
        await s.limitSet({ scope: 'type', name: type, concurrency: 2, rateLimit: null, ratePeriodMs: null });
        const ids = [await insertJob(s, { queue, type }), await insertJob(s, { queue, type }), await insertJob(s, { queue, type })];
        return { queue, ids, check: (got, all) => assert.deepEqual([got.rows.map((row) => row.id), got.saturated], [all.slice(0, 2), true]) };
      },
    ],
    [
      'a rate limit',
      async (s) => {
        const type = uniqueName('t');
        const queue = uniqueName('q');
        await s.limitSet({ scope: 'type', name: type, concurrency: null, rateLimit: 1, ratePeriodMs: 3_600_000 });
        const ids = [await insertJob(s, { queue, type }), await insertJob(s, { queue, type })];
        return {
          queue,
          ids,
          check: (got, all) => {
            assert.deepEqual(got.rows.map((row) => row.id), [all[0]]);
            assert.ok(got.retryInMs !== null && got.retryInMs > 3_500_000, `the next start in an hour: ${got.retryInMs}`);
          },
        };
      },
    ],
    [
      'a queue limit',
      async (s) => {
        const type = uniqueName('t');
        const queue = uniqueName('q');
        await s.limitSet({ scope: 'type', name: type, concurrency: 10, rateLimit: null, ratePeriodMs: null });
        await s.limitSet({ scope: 'queue', name: queue, concurrency: 1, rateLimit: null, ratePeriodMs: null });
        const ids = [await insertJob(s, { queue, type }), await insertJob(s, { queue, type: uniqueName('plain') })];
        return { queue, ids, check: (got, all) => assert.deepEqual([got.rows.map((row) => row.id), got.saturated], [[all[0]], true]) };
      },
    ],
  ];

  for (const [what, make] of notPlain) {
    it(`hands ${what} to the full read, which plans it as before; the queue then skips the plain claim for ${PLAIN_SKIP_MS} ms`, async () => {
      const { queue, ids, check } = await make(ts.storage);
      const r = recorded();
      try {
        const v0 = await version();
        const missed = performance.now();
        const got = await r.claim(queue, 5);
        check(got, ids);
        assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE), text(FLOW_CANDIDATES), text(FLOW_CLAIM)]);
        assert.equal(await version(), v0 + 1, 'one compare-and-set: the full claim');
        // Skipped while the skip lasts (a claim that finds nothing more is the read alone), then tried again.
        await waitFor(
          async () => {
            r.pool.texts.length = 0;
            const before = performance.now();
            await r.claim(queue, 5);
            if (r.pool.texts[0] === text(FLOW_CLAIM_PLAIN_ONE)) {
              assert.ok(before - missed >= PLAIN_SKIP_MS, `tried again ${before - missed} ms after the miss`);
              return true;
            }
            assert.deepEqual(r.pool.texts, [text(FLOW_CANDIDATES)]);
            return false;
          },
          { timeout: PLAIN_SKIP_MS * 10, message: 'the plain claim is tried again after the skip' },
        );
      } finally {
        await r.done();
      }
    });
  }

  it('a claim of two queues reads fully (the plain claim is for one queue)', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const [qa, qb] = [uniqueName('q'), uniqueName('q')];
    await s.limitSet({ scope: 'type', name: type, concurrency: 5, rateLimit: null, ratePeriodMs: null });
    const ids = [await insertJob(s, { queue: qa, type }), await insertJob(s, { queue: qb, type })];
    const r = recorded();
    try {
      const got = await r.s.jobClaimLimited({ workerId: 'w', queues: [{ name: qa, limit: 2 }, { name: qb, limit: 2 }], leaseMs: 60_000 });
      assert.deepEqual(got.rows.map((row) => row.id).sort(), [...ids].sort());
      assert.deepEqual(r.pool.texts, [text(FLOW_CANDIDATES)], 'the first read claims a plain plan of several queues');
    } finally {
      await r.done();
    }
  });

  // A plain plan whose version moved before it stored: the plain claim of one queue, and the
  // first read of a claim of two queues (which claims a plain plan by itself as well).
  for (const [what, first, twoQueues] of [
    ['the plain claim of one queue', FLOW_CLAIM_PLAIN_ONE, false],
    ['the first read of a claim of two queues', FLOW_CANDIDATES, true],
  ] as const) {
    it(`${what}: a version moved while it waits for the flow-state row claims nothing on it, tries again, and the limit holds`, async () => {
      const s = ts.storage;
      const type = uniqueName('t');
      const [qa, qb] = [uniqueName('q'), uniqueName('q')];
      await s.limitSet({ scope: 'type', name: type, concurrency: 2, rateLimit: null, ratePeriodMs: null });
      const other = await insertJob(s, { queue: qa, type });
      const ids = [await insertJob(s, { queue: qb, type }), await insertJob(s, { queue: qb, type })];
      const r = recorded();
      try {
        // A rival claim in flight holds the flow-state row (version moved) and starts the type's
        // job of another queue. The claim reads before it commits: room for both of its jobs.
        await rival.query('BEGIN');
        await rival.query(`UPDATE ${q}.sdj_flow_state SET version = version + 1 WHERE id = 1`);
        await rival.query(`UPDATE ${q}.sdj_jobs_live SET status = 'running', locked_by = 'rival', lease_expires_at = 9e15 WHERE id = $1`, [other]);
        const queues = twoQueues ? [{ name: qb, limit: 5 }, { name: uniqueName('q'), limit: 5 }] : [{ name: qb, limit: 5 }];
        const claiming = r.s.jobClaimLimited({ workerId: 'w', queues, leaseMs: 60_000 });
        await claimWaitsForALock();
        await rival.query('COMMIT');
        const got = await claiming;
        assert.deepEqual(got.rows.map((row) => row.id), [ids[0]], 'one job: the rival holds the other slot');
        assert.equal(r.pool.texts[0], text(first));
        assert.equal(r.pool.texts.filter((t) => t === text(first)).length, 2, 'the plain plan lost, then the claim read again');
        assert.deepEqual(await statuses([other, ...ids]), ['running', 'running', 'pending']);
      } finally {
        await rival.query('ROLLBACK').catch(() => {});
        await r.done();
      }
    });
  }

  it('a queue paused while it waits for the queue row: nothing is claimed', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 5, rateLimit: null, ratePeriodMs: null });
    await s.queueSetPaused({ queue, paused: false });
    const ids = [await insertJob(s, { queue, type }), await insertJob(s, { queue, type })];
    const r = recorded();
    try {
      await rival.query('BEGIN');
      await rival.query(`UPDATE ${q}.sdj_queues SET paused = true WHERE name = $1`, [queue]);
      const claiming = r.claim(queue, 5);
      await claimWaitsForALock();
      await rival.query('COMMIT');
      assert.deepEqual((await claiming).rows, []);
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)]);
      assert.deepEqual(await statuses(ids), ['pending', 'pending']);
    } finally {
      await r.done();
    }
  });

  it('a job paused while it waits for the job row is left; the others are claimed', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 5, rateLimit: null, ratePeriodMs: null });
    const ids = [await insertJob(s, { queue, type }), await insertJob(s, { queue, type }), await insertJob(s, { queue, type })];
    const r = recorded();
    try {
      await rival.query('BEGIN');
      await rival.query(`UPDATE ${q}.sdj_jobs_live SET status = 'paused' WHERE id = $1`, [ids[1]]);
      const claiming = r.claim(queue, 5);
      await claimWaitsForALock();
      await rival.query('COMMIT');
      assert.deepEqual((await claiming).rows.map((row) => row.id), [ids[0], ids[2]]);
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)]);
      assert.deepEqual(await statuses(ids), ['running', 'paused', 'running']);
    } finally {
      await r.done();
    }
  });
});
