/**
 * PostgreSQL driver: a type rate limit holds fleet-wide when jobs of the type sit in two queues,
 * one of them with a queue limit (concurrency and rate), and claims of both queues race claims
 * of one queue from other connections. Every start is replayed, in `started_at` order, through
 * the rate rule (`nextTat`): each must have come at or after its turn. And a limit stored again,
 * or a faster rate stored while a claim holds the flow-state row, never moves a group's tat back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { nextTat } from '../../src/storage/shared/flow-plan.js';
import type { Storage } from '../../src/storage/storage.js';
import { fenceOf, jobInsert, uniqueName, waitForClockPast } from '../helpers/factories.js';
import { makePostgresStorage, PG_URL, pgAdmin } from '../helpers/postgres-storage.js';
import { waitFor } from '../helpers/wait-for.js';
import type { TestStorage } from '../helpers/storages.js';

/** The starts that came before their turn (replaying the rule over sorted start times). */
function earlyStarts(starts: number[], interval: number): { at: number; tat: number }[] {
  let tat: number | undefined;
  const early: { at: number; tat: number }[] = [];
  for (const at of [...starts].sort((a, b) => a - b)) {
    if (tat !== undefined && tat > at) early.push({ at, tat });
    tat = nextTat(tat, at, interval);
  }
  return early;
}

describe('postgres flow control: a type rate limit across a queue with a queue limit', () => {
  let ts: TestStorage;
  let stores: Storage[];
  before(async () => {
    ts = await makePostgresStorage('pg-flow-rate-race');
    stores = [ts.storage, await ts.another(), await ts.another(), await ts.another(), await ts.another()];
  });
  after(async () => ts.cleanup());

  it('claims of [plain, metered] racing claims of [plain] start the type no faster than its rate', async () => {
    const s = ts.storage;
    const type = uniqueName('rated');
    const plain = uniqueName('chaos');
    const metered = uniqueName('metered');
    const interval = 50;
    await s.limitSet({ scope: 'type', name: type, concurrency: null, rateLimit: 20, ratePeriodMs: 1000 });
    await s.limitSet({ scope: 'queue', name: metered, concurrency: 4, rateLimit: 12, ratePeriodMs: 1000 });
    const other = uniqueName('other');
    const jobs = [
      ...Array.from({ length: 30 }, (_, i) => jobInsert({ queue: plain, type, priority: i % 3 })),
      ...Array.from({ length: 12 }, (_, i) => jobInsert({ queue: metered, type, priority: 3 - (i % 3) })),
      ...Array.from({ length: 12 }, () => jobInsert({ queue: metered, type: other })),
    ];
    await s.jobInsertMany({ jobs });
    const ids = new Set(jobs.filter((j) => j.type === type).map((j) => j.id));
    const deadline = Date.now() + 2_000;
    const claimed: { id: string; startedAt: number; queue: string; worker: string; run: number }[] = [];
    let more = 0;
    // Each worker claims as soon as it can; a run fails its first attempt now and then (retried at once).
    const loop = async (st: Storage, worker: string, queues: string[]): Promise<void> => {
      while (Date.now() < deadline) {
        const r = await st.jobClaimLimited({ workerId: worker, queues: queues.map((name) => ({ name, limit: 2 })), leaseMs: 60_000 });
        for (const row of r.rows) if (ids.has(row.id)) claimed.push({ id: row.id, startedAt: row.startedAt!, queue: row.queue, worker, run: row.runCount });
        if (r.rows.length > 0) {
          await new Promise((res) => setTimeout(res, (more % 3) * 7));
          await st.jobFinishMany({
            items: r.rows.map((row) =>
              row.runCount === 1 && (more++ % 4 === 0) ? { ...fenceOf(row), outcome: 'retry' as const, error: 'x', delayMs: 0 } : { ...fenceOf(row), outcome: 'completed' as const, resultJson: null },
            ),
          });
        }
        if (r.rows.length === 0) await new Promise((res) => setTimeout(res, r.retryInMs === null ? 2 : Math.min(r.retryInMs, 10)));
      }
    };
    const feed = async (): Promise<void> => {
      while (Date.now() < deadline) {
        const more = [
          ...Array.from({ length: 6 }, (_, i) => jobInsert({ queue: plain, type, priority: i % 3 })),
          ...Array.from({ length: 3 }, (_, i) => jobInsert({ queue: metered, type, priority: 3 - (i % 3) })),
          ...Array.from({ length: 12 }, () => jobInsert({ queue: metered, type: other, priority: 5 })),
        ];
        for (const j of more) if (j.type === type) ids.add(j.id);
        await s.jobInsertMany({ jobs: more });
        await s.queueSetPaused({ queue: metered, paused: true });
        await new Promise((res) => setTimeout(res, 20));
        await s.queueSetPaused({ queue: metered, paused: false });
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    await Promise.all([
      feed(),
      loop(stores[0]!, 'w1', [plain, metered]),
      loop(stores[1]!, 'w2', [plain]),
      loop(stores[2]!, 'w3', [metered]),
      loop(stores[3]!, 'w4', [plain, metered]),
      loop(stores[4]!, 'w5', [metered, plain]),
    ]);
    assert.ok(claimed.length >= 10, `enough starts to tell (${claimed.length})`);
    const early = earlyStarts(claimed.map((c) => c.startedAt), interval);
    assert.deepEqual(early, [], `every start at or after its turn: ${JSON.stringify(claimed.sort((a, b) => a.startedAt - b.startedAt))}`);
  });
});

describe('postgres flow control: a candidate of a rate-limited type read without its mark', () => {
  let ts: TestStorage;
  before(async () => {
    ts = await makePostgresStorage('pg-flow-rate-mark');
  });
  after(async () => ts.cleanup());

  it('a job of the type in a queue with a queue limit is held by the type rate even when not marked limited', async () => {
    const s = ts.storage;
    const q = `"${(s as PostgresStorage).schema}"`;
    const type = uniqueName('rated');
    const plain = uniqueName('chaos');
    const metered = uniqueName('metered');
    await s.limitSet({ scope: 'type', name: type, concurrency: null, rateLimit: 1, ratePeriodMs: 60_000 });
    await s.limitSet({ scope: 'queue', name: metered, concurrency: 4, rateLimit: 12, ratePeriodMs: 1000 });
    const first = jobInsert({ queue: plain, type });
    const held = jobInsert({ queue: metered, type });
    await s.jobInsertMany({ jobs: [first, held] });
    // The group starts its one job of the minute.
    const started = await s.jobClaimLimited({ workerId: 'w1', queues: [{ name: plain, limit: 2 }], leaseMs: 60_000 });
    assert.deepEqual(started.rows.map((r) => r.id), [first.id]);
    // The job in the metered queue lost its mark: the claim reads it with the queue's other jobs.
    await pgAdmin(`UPDATE ${q}.sdj_jobs_live SET limited = 0 WHERE id = $1`, [held.id]);
    const r = await s.jobClaimLimited({ workerId: 'w2', queues: [{ name: metered, limit: 2 }], leaseMs: 60_000 });
    assert.deepEqual(r.rows, [], 'held back by the type rate');
    assert.ok(r.retryInMs !== null && r.retryInMs > 1_000, `waits for the group's turn (${r.retryInMs})`);
  });
});

describe('postgres flow control: a limit stored again never moves a tat back', () => {
  let ts: TestStorage;
  let q: string;
  before(async () => {
    ts = await makePostgresStorage('pg-flow-rate-cap');
    q = `"${(ts.storage as PostgresStorage).schema}"`;
  });
  after(async () => ts.cleanup());

  /** The stored tat of a rate group ('' key). */
  async function tatOf(name: string, scope: 'type' | 'queue' = 'type'): Promise<number> {
    return Number((await pgAdmin<{ tat: number }>(`SELECT tat FROM ${q}.sdj_rate_state WHERE scope = $2 AND name = $1 AND rkey = ''`, [name, scope]))[0]!.tat);
  }

  it('the same rate stored again (with a now behind the claims) leaves the rate state alone', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    const limit = { scope: 'type' as const, name: type, concurrency: null, rateLimit: 1, ratePeriodMs: 60_000 };
    await s.limitSet(limit);
    await s.jobInsertMany({ jobs: [jobInsert({ queue, type }), jobInsert({ queue, type })] });
    assert.equal((await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 2 }], leaseMs: 60_000 })).rows.length, 1);
    const before = await tatOf(type);
    // A process whose clock runs 10 s behind the database stores the same limit.
    const late = new PostgresStorage(PG_URL, { schema: q.slice(1, -1), clock: () => Date.now() - 10_000 });
    try {
      await late.limitSet(limit);
    } finally {
      await late.close();
    }
    assert.equal(await tatOf(type), before, 'the tat did not move back');
    assert.deepEqual((await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 2 }], leaseMs: 60_000 })).rows, [], 'the group still waits');
  });

  for (const scope of ['type', 'queue'] as const) {
  it(`${scope} limit: a faster rate caps the tat from a now read after the version row is held, not before (a claim stored meanwhile keeps its turn)`, async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    await s.limitSet({ scope, name: type, concurrency: null, rateLimit: 1, ratePeriodMs: 60_000 });
    // The group's state: a start long ago.
    await pgAdmin(`INSERT INTO ${q}.sdj_rate_state (scope, name, rkey, tat) VALUES ($3, $1, '', $2)`, [type, (await s.clockNow()) - 50_000, scope]);
    // A claim holds the flow-state row (as the locked fallback does) while a faster rate is stored.
    const holder = new pg.Client({ connectionString: PG_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`UPDATE ${q}.sdj_flow_state SET version = version + 1 WHERE id = 1`);
      const startedAt = await s.clockNow();
      const setting = s.limitSet({ scope, name: type, concurrency: null, rateLimit: 1, ratePeriodMs: 30_000 });
      await waitFor(
        async () => (await pgAdmin<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%sdj_rate_state%' AND query NOT LIKE '%pg_stat_activity%'`))[0]!.n !== '0',
        { message: 'limitSet waits for the flow-state row' },
      );
      await waitForClockPast(s, startedAt + 300);
      // The claim starts a job now and stores its tat: at most now + the new interval.
      const r = await holder.query<{ tat: number }>(
        `UPDATE ${q}.sdj_rate_state SET tat = floor(extract(epoch from clock_timestamp()) * 1000) + 29900
         WHERE scope = $2 AND name = $1 AND rkey = '' RETURNING tat`,
        [type, scope],
      );
      await holder.query('COMMIT');
      await setting;
      assert.equal(await tatOf(type, scope), Number(r.rows[0]!.tat), 'the claim\'s tat kept');
    } finally {
      await holder.end();
    }
  });
  }
});
