/**
 * PostgreSQL driver, adversarial: the plain claim of one queue (`FLOW_CLAIM_PLAIN_ONE`, run first
 * by `jobClaimLimited` for a claim of exactly one queue) under real concurrency and edge inputs.
 * Many storages on pools of their own claim at once while limits are lowered, raised and
 * deleted, a queue limit or a rate limit appears, the queue is paused and resumed, jobs are
 * cancelled, paused and replaced by debounces; the tests check from the table (a sampler on a
 * connection of its own, and the claimers' own records) that a (type, concurrency key) group
 * never runs more jobs than its limit, that a queue limit and a pause hold from the moment they
 * return, that no statement deadlocks, and that claim order, NULL/'' keys, delayed jobs, huge
 * limits, odd queue names and the per-queue skip memory behave.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { FLOW_CANDIDATES, FLOW_CLAIM, FLOW_CLAIM_PLAIN_ONE } from '../../src/storage/postgres/queries/flow.js';
import type { JobClaimLimitedResult, JobRow, Storage } from '../../src/storage/storage.js';
import { insertJob, jobInsert, uniqueName } from '../helpers/factories.js';
import { recordedStorage } from '../helpers/pg-recording-pool.js';
import { makePostgresStorage, PG_URL } from '../helpers/postgres-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

/** An error's message with its SQLSTATE (own or of its cause), for failure reports. */
function describeError(e: unknown): string {
  const err = e as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  const code = err.code ?? err.cause?.code ?? '?';
  return `[${code}] ${err.message ?? String(e)}${err.cause?.message ? ` (cause: ${err.cause.message})` : ''}`;
}

describe('postgres flow control: the plain claim of one queue, adversarial', () => {
  let ts: TestStorage;
  let schema: string;
  let q: string;
  let admin: pg.Client;
  before(async () => {
    ts = await makePostgresStorage('pg-flow-plain-one-adv');
    schema = (ts.storage as PostgresStorage).schema;
    q = `"${schema}"`;
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
  });
  after(async () => {
    await admin.end();
    await ts.cleanup();
  });

  const text = (sql: string): string => sql.replaceAll('{s}', q);

  /** Storages opened by {@link storages}, closed after each test (the server's connections are few). */
  const opened: PostgresStorage[] = [];
  afterEach(async () => {
    for (const st of opened.splice(0)) await st.close();
  });

  /** `n` storages on the schema, each on a pool of its own (other processes). */
  function storages(n: number): PostgresStorage[] {
    const made = Array.from({ length: n }, () => new PostgresStorage(PG_URL, { schema, max: 3 }));
    opened.push(...made);
    return made;
  }

  /** Running limited jobs per (type, concurrency key as ''), as committed now. */
  async function runningGroups(types: readonly string[]): Promise<Map<string, number>> {
    const r = await admin.query<{ g: string; n: string }>(
      `SELECT type || '/' || coalesce(concurrency_key, '') AS g, count(*) AS n FROM ${q}.sdj_jobs_live
       WHERE status = 'running' AND type = ANY($1::text[]) GROUP BY 1`,
      [types],
    );
    return new Map(r.rows.map((row) => [row.g, Number(row.n)]));
  }

  /** Running jobs of a queue, as committed now. */
  async function runningInQueue(queue: string): Promise<number> {
    const r = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${q}.sdj_jobs_live WHERE status = 'running' AND queue = $1`, [queue]);
    return Number(r.rows[0]!.n);
  }

  /** Ids of a queue's running jobs, sorted. */
  async function runningIds(queue: string): Promise<string[]> {
    const r = await admin.query<{ id: string }>(`SELECT id FROM ${q}.sdj_jobs_live WHERE status = 'running' AND queue = $1 ORDER BY id`, [queue]);
    return r.rows.map((row) => row.id);
  }

  /** Inserts `n` jobs in one batch; `make(i)` gives each its overrides. */
  async function insertMany(s: Storage, n: number, make: (i: number) => Partial<ReturnType<typeof jobInsert>>): Promise<string[]> {
    const jobs = Array.from({ length: n }, (_, i) => jobInsert(make(i)));
    const { inserted } = await s.jobInsertMany({ jobs });
    assert.equal(inserted.length, n);
    return jobs.map((j) => j.id);
  }

  /**
   * A sampler: reads the running counts per group on a connection of its own, back to back, until
   * stopped; keeps the most seen per group (every sample is one committed state).
   */
  function sampler(types: readonly string[]): { stop: () => Promise<Map<string, number>> } {
    const max = new Map<string, number>();
    let stopping = false;
    const c = new pg.Client({ connectionString: PG_URL });
    const loop = (async () => {
      await c.connect();
      try {
        while (!stopping) {
          const r = await c.query<{ g: string; n: string }>(
            `SELECT type || '/' || coalesce(concurrency_key, '') AS g, count(*) AS n FROM ${q}.sdj_jobs_live
             WHERE status = 'running' AND type = ANY($1::text[]) GROUP BY 1`,
            [types],
          );
          for (const row of r.rows) max.set(row.g, Math.max(max.get(row.g) ?? 0, Number(row.n)));
        }
      } finally {
        await c.end();
      }
    })();
    return {
      stop: async () => {
        stopping = true;
        await loop;
        return max;
      },
    };
  }

  /** Completes claimed rows (fenced): every finish applies, but those of jobs cancelled while they ran. */
  async function finish(s: Storage, rows: readonly JobRow[]): Promise<void> {
    if (rows.length === 0) return;
    const got = await s.jobFinishMany({ items: rows.map((r) => ({ jobId: r.id, workerId: r.lockedBy!, runCount: r.runCount, outcome: 'completed' as const, resultJson: null })) });
    for (const [i, t] of got.entries()) {
      if (t !== null) continue;
      const job = await s.jobGet({ id: rows[i]!.id });
      assert.equal(job?.status, 'cancelled', `a finish not applied is of a job cancelled while it ran (${rows[i]!.id})`);
    }
  }

  /**
   * Claim loops: `perStorage` loops on each storage claiming from `queue` (limit `limit()`) until
   * `stop()` holds. Each claimed row is recorded in the claimers' own live count per group (raised
   * after the claim returned, lowered before the finish is sent: a lower bound of the table's
   * count, so a count over `cap` is a real excess) and finished at once while `finishing()` holds.
   * Errors are collected, never thrown.
   */
  function claimLoops(opts: {
    storages: readonly Storage[];
    perStorage: number;
    queue: string | (() => string);
    limit: () => number;
    stop: () => boolean;
    finishing: () => boolean;
    cap: (group: string) => number;
  }) {
    const live = new Map<string, number>();
    const excess: string[] = [];
    const errors: string[] = [];
    const claimedIds: string[] = [];
    const finishes = new Set<Promise<void>>();
    let claims = 0;
    const group = (r: JobRow): string => `${r.type}/${r.concurrencyKey ?? ''}`;
    const loops = opts.storages.flatMap((s) =>
      Array.from({ length: opts.perStorage }, async () => {
        while (!opts.stop()) {
          let got: JobClaimLimitedResult;
          try {
            got = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: typeof opts.queue === 'string' ? opts.queue : opts.queue(), limit: opts.limit() }], leaseMs: 60_000 });
          } catch (e) {
            errors.push(`claim: ${describeError(e)}`);
            continue;
          }
          claims++;
          for (const r of got.rows) {
            claimedIds.push(r.id);
            const g = group(r);
            const n = (live.get(g) ?? 0) + 1;
            live.set(g, n);
            if (n > opts.cap(g)) excess.push(`${g}: ${n} > ${opts.cap(g)}`);
          }
          if (opts.finishing() && got.rows.length > 0) {
            for (const r of got.rows) live.set(group(r), live.get(group(r))! - 1);
            const p = finish(s, got.rows).catch((e: unknown) => {
              errors.push(`finish: ${describeError(e)}`);
            });
            finishes.add(p);
            await p;
            finishes.delete(p);
          }
        }
      }),
    );
    return {
      excess,
      errors,
      claimedIds,
      claims: () => claims,
      /** Resolves when every finish sent so far is done. */
      settled: () => Promise.all([...finishes]),
      done: () => Promise.all(loops),
    };
  }

  /** Completed jobs of a type. */
  async function completedCount(type: string): Promise<number> {
    const r = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${q}.sdj_jobs WHERE type = $1 AND status = 'completed'`, [type]);
    return Number(r.rows[0]!.n);
  }

  it('8 storages × 50 claimers of three queues against keyed limits of 2 (NULL and \'\' one group, fleet-wide across queues): no group ever runs more than 2, every job runs once', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queues = [uniqueName('q'), uniqueName('q'), uniqueName('q')];
    await s.limitSet({ scope: 'type', name: type, concurrency: 2, rateLimit: null, ratePeriodMs: null });
    const keys = [null, '', 'a', 'b', 'a', null];
    const n = 150;
    await insertMany(s, n, (i) => ({ queue: queues[i % 3]!, type, concurrencyKey: keys[i % keys.length] ?? null, priority: i % 4 }));
    const many = storages(8);
    const sample = sampler([type]);
    let done = 0;
    const loops = claimLoops({
      storages: many,
      perStorage: 50,
      queue: () => queues[Math.floor(Math.random() * 3)]!,
      limit: () => 1 + Math.floor(Math.random() * 3),
      stop: () => done >= n,
      finishing: () => true,
      cap: () => 2,
    });
    try {
      await waitFor(async () => (done = await completedCount(type)) >= n || loops.errors.length > 20, { timeout: 40_000, message: 'every job completed' });
    } finally {
      done = n;
      await loops.done();
    }
    const max = await sample.stop();
    assert.deepEqual(loops.errors, []);
    assert.deepEqual(loops.excess, [], "the claimers' own records");
    for (const [g, m] of max) assert.ok(m <= 2, `sampled ${g}: ${m} running > 2`);
    assert.equal(new Set(loops.claimedIds).size, loops.claimedIds.length, 'no job claimed twice');
    assert.equal(loops.claimedIds.length, n);
    assert.deepEqual([...max.keys()].sort(), [`${type}/`, `${type}/a`, `${type}/b`], "NULL and '' are one group");
  });

  it('a wide limit (room for most claims, as the plain statement plans it): 8 storages × 50 claimers never exceed a limit of 7', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 7, rateLimit: null, ratePeriodMs: null });
    const n = 180;
    await insertMany(s, n, () => ({ queue, type }));
    const many = storages(8);
    const sample = sampler([type]);
    let stop = false;
    const loops = claimLoops({ storages: many, perStorage: 50, queue, limit: () => 1 + Math.floor(Math.random() * 2), stop: () => stop, finishing: () => true, cap: () => 7 });
    try {
      await waitFor(async () => (await completedCount(type)) >= n || loops.errors.length > 20, { timeout: 40_000, message: 'every job completed' });
    } finally {
      stop = true;
      await loops.done();
    }
    const max = await sample.stop();
    assert.deepEqual(loops.errors, []);
    assert.deepEqual(loops.excess, []);
    assert.ok((max.get(`${type}/`) ?? 0) <= 7, `sampled ${max.get(`${type}/`)} running > 7`);
    assert.equal(new Set(loops.claimedIds).size, n, 'every job once');
  });

  it('a limit lowered mid-storm holds from the moment it returns; raised, the claims fill it exactly; deleted, the fast claim stops without errors', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 6, rateLimit: null, ratePeriodMs: null });
    await insertMany(s, 150, () => ({ queue, type }));
    const many = storages(6);
    let finishing = true;
    let stop = false;
    let cap = 6;
    const loops = claimLoops({ storages: many, perStorage: 15, queue, limit: () => 1 + Math.floor(Math.random() * 3), stop: () => stop, finishing: () => finishing, cap: () => cap });
    try {
      await waitFor(async () => (await completedCount(type)) >= 30, { timeout: 20_000, message: 'the storm is under way' });
      // Lower the limit while claims are in flight; then nothing finishes any more.
      finishing = false;
      await s.limitSet({ scope: 'type', name: type, concurrency: 2, rateLimit: null, ratePeriodMs: null });
      await loops.settled();
      const r1 = await runningInQueue(queue);
      const c1 = loops.claims();
      await waitFor(() => loops.claims() >= c1 + 200, { timeout: 20_000, message: '200 more claims after the lowering' });
      const r2 = await runningInQueue(queue);
      assert.ok(r2 <= Math.max(r1, 2), `after lowering to 2: ${r1} running then ${r2}`);
      if (r1 >= 2) assert.equal(r2, r1, 'a group at or over its new limit starts nothing');
      // Raised: the claims fill it exactly.
      cap = 8;
      await s.limitSet({ scope: 'type', name: type, concurrency: 8, rateLimit: null, ratePeriodMs: null });
      await waitFor(async () => (await runningInQueue(queue)) >= Math.max(r2, 8), { timeout: 20_000, message: 'the raised limit is filled' });
      const c3 = loops.claims();
      await waitFor(() => loops.claims() >= c3 + 100, { timeout: 20_000, message: '100 more claims' });
      assert.equal(await runningInQueue(queue), Math.max(r2, 8));
      // Deleted: the jobs leave the limited claim; it claims nothing more and fails nothing.
      const r3 = await runningInQueue(queue);
      assert.equal(await s.limitDelete({ scope: 'type', name: type }), true);
      const c4 = loops.claims();
      await waitFor(() => loops.claims() >= c4 + 100, { timeout: 20_000, message: '100 claims after the delete' });
      assert.equal(await runningInQueue(queue), r3);
    } finally {
      stop = true;
      await loops.done();
    }
    assert.deepEqual(loops.errors, []);
    assert.equal(new Set(loops.claimedIds).size, loops.claimedIds.length, 'no job claimed twice');
  });

  it('a queue limit set mid-storm holds from the moment it returns', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 100, rateLimit: null, ratePeriodMs: null });
    await insertMany(s, 200, () => ({ queue, type }));
    const many = storages(6);
    let finishing = true;
    let stop = false;
    const loops = claimLoops({ storages: many, perStorage: 15, queue, limit: () => 1 + Math.floor(Math.random() * 2), stop: () => stop, finishing: () => finishing, cap: () => 100 });
    try {
      await waitFor(async () => (await completedCount(type)) >= 20, { timeout: 20_000, message: 'the storm is under way' });
      finishing = false;
      await s.limitSet({ scope: 'queue', name: queue, concurrency: 3, rateLimit: null, ratePeriodMs: null });
      await loops.settled();
      const r1 = await runningInQueue(queue);
      const c1 = loops.claims();
      await waitFor(() => loops.claims() >= c1 + 200, { timeout: 20_000, message: '200 more claims after the queue limit' });
      const r2 = await runningInQueue(queue);
      assert.ok(r2 <= Math.max(r1, 3), `queue limit 3: ${r1} running when it was set, ${r2} after`);
    } finally {
      stop = true;
      await loops.done();
    }
    assert.deepEqual(loops.errors, []);
  });

  it('a rate limit added to the type mid-storm: at most one more start after it returns', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 100, rateLimit: null, ratePeriodMs: null });
    await insertMany(s, 200, () => ({ queue, type }));
    const many = storages(6);
    let stop = false;
    const loops = claimLoops({ storages: many, perStorage: 15, queue, limit: () => 2, stop: () => stop, finishing: () => true, cap: () => 100 });
    const started = async (): Promise<number> =>
      Number((await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${q}.sdj_jobs WHERE type = $1 AND attempt > 0`, [type])).rows[0]!.n);
    try {
      await waitFor(async () => (await completedCount(type)) >= 20, { timeout: 20_000, message: 'the storm is under way' });
      await s.limitSet({ scope: 'type', name: type, concurrency: 100, rateLimit: 1, ratePeriodMs: 3_600_000 });
      const s1 = await started();
      const c1 = loops.claims();
      await waitFor(() => loops.claims() >= c1 + 200, { timeout: 20_000, message: '200 more claims after the rate limit' });
      const s2 = await started();
      assert.ok(s2 <= s1 + 1, `rate 1/h: ${s1} started when it was set, ${s2} after`);
    } finally {
      stop = true;
      await loops.done();
    }
    assert.deepEqual(loops.errors, []);
  });

  it('a queue paused mid-storm starts nothing from the moment the pause returns; resumed, the claims go on', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 100, rateLimit: null, ratePeriodMs: null });
    await insertMany(s, 200, () => ({ queue, type }));
    const many = storages(6);
    let finishing = true;
    let stop = false;
    const loops = claimLoops({ storages: many, perStorage: 15, queue, limit: () => 1 + Math.floor(Math.random() * 3), stop: () => stop, finishing: () => finishing, cap: () => 100 });
    try {
      await waitFor(async () => (await completedCount(type)) >= 20, { timeout: 20_000, message: 'the storm is under way' });
      finishing = false;
      await s.queueSetPaused({ queue, paused: true });
      await loops.settled();
      const before = await runningIds(queue);
      const c1 = loops.claims();
      await waitFor(() => loops.claims() >= c1 + 200, { timeout: 20_000, message: '200 claims while paused' });
      assert.deepEqual(await runningIds(queue), before, 'nothing started while paused');
      await s.queueSetPaused({ queue, paused: false });
      await waitFor(async () => (await runningInQueue(queue)) > before.length, { timeout: 20_000, message: 'claims resume' });
    } finally {
      stop = true;
      await loops.done();
    }
    assert.deepEqual(loops.errors, []);
  });

  it('no deadlock or serialization failure: claims against limit changes, pauses, cancels, job pauses and debounce inserts', async () => {
    const s = ts.storage;
    const [ta, tb] = [uniqueName('t'), uniqueName('t')];
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: ta, concurrency: 4, rateLimit: null, ratePeriodMs: null });
    const ids = await insertMany(s, 300, (i) => ({ queue, type: i % 3 === 0 ? tb : ta, concurrencyKey: i % 2 === 0 ? null : 'k' }));
    const many = storages(6);
    const sample = sampler([ta]);
    let stop = false;
    const loops = claimLoops({ storages: many, perStorage: 8, queue, limit: () => 1 + Math.floor(Math.random() * 4), stop: () => stop, finishing: () => true, cap: (g) => (g.startsWith(`${ta}/`) ? 4 : Infinity) });
    const auxErrors: string[] = [];
    const rounds = 40;
    /** A loop of `rounds` operations; errors other than the expected ones are kept. */
    const aux = (op: (i: number) => Promise<unknown>, expected: (e: unknown) => boolean = () => false) =>
      (async () => {
        for (let i = 0; i < rounds; i++) {
          try {
            await op(i);
          } catch (e) {
            if (!expected(e)) auxErrors.push(describeError(e));
          }
        }
      })();
    const pick = (): string => ids[Math.floor(Math.random() * ids.length)]!;
    const stateRace = (e: unknown): boolean => ['InvalidStateError', 'JobNotFoundError'].includes((e as Error).name);
    try {
      await Promise.all([
        // Type A's limit toggled (an update of its row), type B's created and deleted (lock, mark, unmark).
        aux((i) => s.limitSet({ scope: 'type', name: ta, concurrency: i % 2 === 0 ? 3 : 4, rateLimit: null, ratePeriodMs: null })),
        aux((i) => (i % 2 === 0 ? s.limitSet({ scope: 'type', name: tb, concurrency: 2, rateLimit: null, ratePeriodMs: null }) : s.limitDelete({ scope: 'type', name: tb }))),
        aux((i) => s.queueSetPaused({ queue, paused: i % 2 === 0 })),
        aux(() => s.jobCancel({ id: pick() }), stateRace),
        aux(async () => {
          const id = pick();
          await s.jobPause({ id });
          await s.jobResume({ id });
        }, stateRace),
        aux((i) => s.jobInsertMany({ jobs: [jobInsert({ queue, type: ta, debounceKey: `d${i % 3}`, concurrencyKey: 'k' })] })),
        aux(() => s.jobInsertMany({ jobs: [jobInsert({ queue, type: tb }), jobInsert({ queue, type: ta, priority: 9 })] })),
        aux(() => s.limitSet({ scope: 'queue', name: queue, concurrency: null, rateLimit: null, ratePeriodMs: null }).then(() => s.limitDelete({ scope: 'queue', name: queue }))),
      ]);
    } finally {
      await s.queueSetPaused({ queue, paused: false });
      stop = true;
      await loops.done();
    }
    const max = await sample.stop();
    const all = [...loops.errors, ...auxErrors];
    assert.deepEqual(all.filter((e) => e.includes('40P01') || e.includes('40001')), [], 'no deadlock, no serialization failure');
    assert.deepEqual(all, []);
    assert.deepEqual(loops.excess, []);
    for (const [g, m] of max) assert.ok(m <= 4, `sampled ${g}: ${m} running > 4 (limit toggled 3/4)`);
  });

  it("NULL and '' keys are one group on the plain path: limit 1 starts one of them, and none while the other runs", async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    const a = await insertJob(s, { queue, type, concurrencyKey: null });
    const b = await insertJob(s, { queue, type, concurrencyKey: '' });
    const first = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 1 }], leaseMs: 60_000 });
    assert.deepEqual(first.rows.map((r) => r.id), [a]);
    const second = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 1 }], leaseMs: 60_000 });
    assert.deepEqual(second.rows, [], `'' waits for NULL`);
    await finish(s, first.rows);
    const third = await s.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 1 }], leaseMs: 60_000 });
    assert.deepEqual(third.rows.map((r) => r.id), [b]);
  });

  it('limit 1 with 4 storages × 25 concurrent claims of one job: never two running', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    const n = 40;
    await insertMany(s, n, (i) => ({ queue, type, concurrencyKey: i % 2 === 0 ? null : '' }));
    const many = storages(4);
    const sample = sampler([type]);
    let stop = false;
    const loops = claimLoops({ storages: many, perStorage: 25, queue, limit: () => 1, stop: () => stop, finishing: () => true, cap: () => 1 });
    try {
      await waitFor(async () => (await completedCount(type)) >= n || loops.errors.length > 20, { timeout: 30_000, message: 'every job completed' });
    } finally {
      stop = true;
      await loops.done();
    }
    const max = await sample.stop();
    assert.deepEqual(loops.errors, []);
    assert.deepEqual(loops.excess, []);
    assert.deepEqual([...max], [[`${type}/`, 1]]);
  });

  it('claim order on the plain path: priority desc, then run_at, then id; delayed jobs are left, whatever their priority', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 50, rateLimit: null, ratePeriodMs: null });
    const now = await s.clockNow();
    const p0 = await insertJob(s, { queue, type, priority: 0 });
    const p5a = await insertJob(s, { queue, type, priority: 5 });
    const p5b = await insertJob(s, { queue, type, priority: 5 });
    const p5c = await insertJob(s, { queue, type, priority: 5 });
    // An insert's run_at is at least its now: earlier run_at values are set on the rows.
    await admin.query(`UPDATE ${q}.sdj_jobs_live SET run_at = $2 WHERE id = $1`, [p5a, now - 1000]);
    await admin.query(`UPDATE ${q}.sdj_jobs_live SET run_at = $2 WHERE id = ANY($1::text[])`, [[p5b, p5c], now - 2000]);
    const neg = await insertJob(s, { queue, type, priority: -2147483648 });
    const delayed = await insertJob(s, { queue, type, priority: 2147483647, delayMs: 3_600_000 });
    const r = recorded();
    try {
      const got = await r.claim(queue, 4);
      assert.deepEqual(got.rows.map((row) => row.id), [p5b, p5c, p5a, p0]);
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)]);
      const rest = await r.claim(queue, 10);
      assert.deepEqual(rest.rows.map((row) => row.id), [neg], 'the lowest priority; the delayed job waits');
      const statusOf = await admin.query<{ status: string }>(`SELECT status FROM ${q}.sdj_jobs_live WHERE id = $1`, [delayed]);
      assert.equal(statusOf.rows[0]!.status, 'pending');
    } finally {
      await r.done();
    }
  });

  it('a job marked limited whose type has no type limit is claimed by the plain path, in claim order with the others', async () => {
    const s = ts.storage;
    const [limitedType, bare] = [uniqueName('t'), uniqueName('t')];
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: limitedType, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    const a = await insertJob(s, { queue, type: limitedType });
    const stray = await insertJob(s, { queue, type: bare, priority: 1 });
    await admin.query(`UPDATE ${q}.sdj_jobs_live SET limited = 1 WHERE id = $1`, [stray]);
    const r = recorded();
    try {
      const got = await r.claim(queue, 5);
      assert.deepEqual(got.rows.map((row) => row.id), [stray, a]);
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)]);
    } finally {
      await r.done();
    }
  });

  it('the skip memory is per queue and per storage: a queue that was not plain does not make another skip', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const [full, plain1, plain2] = [uniqueName('q'), uniqueName('q'), uniqueName('q')];
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    const other = uniqueName('t');
    await s.limitSet({ scope: 'type', name: other, concurrency: 10, rateLimit: null, ratePeriodMs: null });
    await insertJob(s, { queue: full, type });
    await insertJob(s, { queue: full, type });
    const p1 = await insertJob(s, { queue: plain1, type: other });
    const p2 = await insertJob(s, { queue: plain2, type: other });
    const r = recorded();
    const r2 = recorded();
    try {
      assert.equal((await r.claim(full, 2)).rows.length, 1);
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE), text(FLOW_CANDIDATES), text(FLOW_CLAIM)]);
      r.pool.texts.length = 0;
      assert.deepEqual((await r.claim(plain1, 2)).rows.map((row) => row.id), [p1]);
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)], 'another queue is not skipped');
      r.pool.texts.length = 0;
      assert.deepEqual((await r.claim(full, 2)).rows, []);
      assert.deepEqual(r.pool.texts, [text(FLOW_CANDIDATES)], 'the queue that was not plain is skipped');
      assert.deepEqual((await r2.claim(plain2, 2)).rows.map((row) => row.id), [p2]);
      r2.pool.texts.length = 0;
      assert.deepEqual((await r2.claim(full, 2)).rows, []);
      assert.equal(r2.pool.texts[0], text(FLOW_CLAIM_PLAIN_ONE), 'another storage does not skip it');
    } finally {
      await r.done();
      await r2.done();
    }
  });

  it('huge limits: a type limit of 2^31-1 and a claim of 2^31-1 take every ready job in one plain statement', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 2147483647, rateLimit: null, ratePeriodMs: null });
    const ids = await insertMany(s, 30, () => ({ queue, type }));
    const r = recorded();
    try {
      const got = await r.claim(queue, 2147483647);
      assert.deepEqual(got.rows.map((row) => row.id), ids);
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)]);
    } finally {
      await r.done();
    }
  });

  // The hand-over goes to FLOW_CANDIDATES, whose sizes (`limit + 8`, `1024 + 32 × limit`) are
  // 32-bit: a claim asks for at most CLAIM_LIMIT_MAX jobs per queue (flow-ops.ts), so the same
  // claim works whether its plan is plain or not.
  it('huge limits: a claim of 2^31-1 in a queue whose plan is not plain is handed over and claims (no integer overflow in the full read)', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    const ids = await insertMany(s, 3, () => ({ queue, type }));
    const r = recorded();
    try {
      const got = await r.claim(queue, 2147483647);
      assert.deepEqual(got.rows.map((row) => row.id), [ids[0]]);
    } finally {
      await r.done();
    }
  });

  it('queue names with quotes, backslashes, LIKE wildcards, spaces and non-ASCII claim their own jobs only', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    await s.limitSet({ scope: 'type', name: type, concurrency: 20, rateLimit: null, ratePeriodMs: null });
    const base = uniqueName('q');
    const names = [`${base} '"\\`, `${base}%`, `${base}_`, `${base}_x`, `${base} é 🚀`, `${base}\u0001;--`];
    const byName = new Map<string, string>();
    for (const name of names) byName.set(name, await insertJob(s, { queue: name, type }));
    const r = recorded();
    try {
      for (const name of names) {
        r.pool.texts.length = 0;
        const got = await r.claim(name, 5);
        assert.deepEqual(got.rows.map((row) => [row.id, row.queue]), [[byName.get(name), name]], name);
        assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)]);
      }
    } finally {
      await r.done();
    }
  });

  it('a version that keeps moving: claims still end (in the locked fallback) and respect the limit', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 3, rateLimit: null, ratePeriodMs: null });
    await insertMany(s, 10, () => ({ queue, type }));
    let bumping = true;
    const bumper = (async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        while (bumping) await c.query(`UPDATE ${q}.sdj_flow_state SET version = version + 1 WHERE id = 1`);
      } finally {
        await c.end();
      }
    })();
    try {
      const many = storages(3);
      const got = await Promise.all(many.flatMap((m) => [m, m].map((x) => x.jobClaimLimited({ workerId: 'w', queues: [{ name: queue, limit: 2 }], leaseMs: 60_000 }))));
      assert.equal(got.reduce((n, g) => n + g.rows.length, 0), 3);
    } finally {
      bumping = false;
      await bumper;
    }
    assert.equal(await runningInQueue(queue), 3);
    assert.deepEqual(await runningGroups([type]), new Map([[`${type}/`, 3]]));
  });

  const recorded = () => recordedStorage(schema);


  it('a job moved into a full group (as a debounce moves it) while the plain claim waits for its row is left; the group stays at its limit', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    const busy = await insertJob(s, { queue: uniqueName('q'), type, concurrencyKey: 'full' });
    assert.equal((await s.jobClaimLimited({ workerId: 'w', queues: [{ name: (await admin.query<{ queue: string }>(`SELECT queue FROM ${q}.sdj_jobs_live WHERE id = $1`, [busy])).rows[0]!.queue, limit: 1 }], leaseMs: 60_000 })).rows.length, 1);
    const x = await insertJob(s, { queue, type, concurrencyKey: 'a' });
    const y = await insertJob(s, { queue, type, concurrencyKey: 'b' });
    const rival = new pg.Client({ connectionString: PG_URL });
    await rival.connect();
    const r = recorded();
    try {
      await rival.query('BEGIN');
      await rival.query(`UPDATE ${q}.sdj_jobs_live SET concurrency_key = 'full' WHERE id = $1`, [x]);
      const claiming = r.claim(queue, 2);
      await waitFor(
        async () =>
          (
            await admin.query<{ n: string }>(
              "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position($1 IN query) > 0 AND pid <> $2",
              [q, (rival as unknown as { processID: number }).processID],
            )
          ).rows[0]!.n !== '0',
        { message: 'the claim waits for the row the rival holds' },
      );
      await rival.query('COMMIT');
      assert.deepEqual((await claiming).rows.map((row) => row.id), [y]);
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE)]);
      assert.deepEqual(await runningGroups([type]), new Map([[`${type}/full`, 1], [`${type}/b`, 1]]));
    } finally {
      await rival.query('ROLLBACK').catch(() => {});
      await rival.end();
      await r.done();
    }
  });

  it('a plan that is not plain is handed over: the full read, then FLOW_CLAIM', async () => {
    const s = ts.storage;
    const type = uniqueName('t');
    const queue = uniqueName('q');
    await s.limitSet({ scope: 'type', name: type, concurrency: 1, rateLimit: null, ratePeriodMs: null });
    await insertMany(s, 2, () => ({ queue, type }));
    const r = recorded();
    try {
      await r.claim(queue, 2);
      assert.deepEqual(r.pool.texts, [text(FLOW_CLAIM_PLAIN_ONE), text(FLOW_CANDIDATES), text(FLOW_CLAIM)]);
    } finally {
      await r.done();
    }
  });
});
