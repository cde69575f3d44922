/**
 * MySQL/MariaDB driver: `jobPrune` beyond the shared conformance — the fleet-wide named lock
 * (`busy`, freed after every call, also after a failure that rolls everything back), rows other
 * transactions hold (skipped, never waited for), the plans of its locks and deletes (key lookups
 * only), concurrent pruners on several instances, a retry of a finished child racing a prune,
 * each job's own age checked again under the locks, oldest-first order across statuses with
 * passed-over roots, the round trips of a call, every way a job finishes leaving it where the
 * prune looks, and the migration that adds the prune index (plans of the claim, reclaim and
 * prune; a database at version 1 with finished jobs).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { JobNotFoundError, StorageError } from '../../src/errors.js';
import { MysqlStorage, type MysqlPoolLike, type MysqlQueryOptions } from '../../src/storage/mysql/mysql-storage.js';
import { splitStatements } from '../../src/storage/mysql/migrate.js';
import { MIGRATIONS } from '../../src/storage/mysql/migrations.generated.js';
import { MIGRATIONS_CREATE_LEDGER } from '../../src/storage/mysql/queries/admin.js';
import {
  PRUNE_DELETE_FAN_OUTS,
  PRUNE_DELETE_JOBS,
  PRUNE_DELETE_SIGNALS,
  PRUNE_DELETE_STEPS,
  PRUNE_LOCK_FAN_OUTS,
  PRUNE_LOCK_JOBS,
  pruneDueSql,
} from '../../src/storage/mysql/queries/jobs.js';
import { CLAIM_SELECT, RECLAIM_CANDIDATES } from '../../src/storage/mysql/queries/run.js';
import type { JobPruneParams, Storage } from '../../src/storage/storage.js';
import { finish } from '../conformance/fan-out-helpers.js';
import {
  cancelledJob,
  claim,
  claimChildren,
  claimOne,
  completedJob,
  failedJob,
  fanOutParent,
  fenceOf,
  insertJob,
  jobInsert,
  mustGet,
  runningJob,
  stepRow,
  uniqueName,
  waitingJob,
} from '../helpers/factories.js';
import { mysql, type MysqlClientPool } from '../helpers/mysql-client.js';
import { createTestDatabase, dropTestDatabase, mysqlAdmin, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';

const ALL0: JobPruneParams['olderThanMs'] = { completed: 0, failed: 0, cancelled: 0 };

/** A fresh migrated database (or `database`, migrated unless `migrate` is false): storages on it share the clock `at.now`, `raw` is a plain connection. */
async function fixture(label: string, database?: string, migrate = true) {
  const db = database ?? (await createTestDatabase(label));
  const url = mysqlDatabaseUrl(db);
  const at = { now: Date.UTC(2030, 0, 1) };
  const made: MysqlStorage[] = [];
  const open = (pool?: MysqlPoolLike): MysqlStorage => {
    const s = new MysqlStorage(pool ?? url, { clock: () => at.now, connectionLimit: 3 });
    made.push(s);
    return s;
  };
  const s = open();
  if (migrate) await s.migrate();
  const raw = await mysql.createConnection(url);
  const rows = async <T = Record<string, unknown>>(sql: string, values: unknown[] = []): Promise<T[]> => (await raw.query(sql, values))[0] as T[];
  return {
    db, url, at, s, raw, rows, open,
    cleanup: async () => {
      for (const x of made) await x.close();
      await raw.end();
      await dropTestDatabase(db);
    },
  };
}
type Fixture = Awaited<ReturnType<typeof fixture>>;

/** A finished workflow: a root whose collect-all fan-out had a failed and a completed child, each with a checkpoint, plus a buffered signal on the root. */
async function finishedWorkflow(s: Storage) {
  const p = await fanOutParent(s, { n: 2, strategy: 'collect-all' });
  await s.signalSend({ jobId: p.parentId, name: 'note', payloadJson: '1' });
  const fences = await claimChildren(s, p);
  for (const [i, f] of fences.entries()) {
    assert.equal(await s.stepRecord({ fence: f, step: stepRow(f.jobId, 0) }), true);
    await finish(s, f, i === 0 ? 'failed' : 'completed');
  }
  await finish(s, fenceOf(await claimOne(s, p.queue, p.parentId)), 'completed');
  return { rootId: p.parentId, childIds: p.childIds, fanOutId: p.fanOutId, ids: [p.parentId, ...p.childIds] };
}

/** Rows left in every table for these jobs. */
async function leftFor(f: Fixture, ids: string[]): Promise<Record<string, number>> {
  const [r] = await f.rows(
    'SELECT (SELECT COUNT(*) FROM sdj_jobs WHERE id IN (?)) AS jobs, (SELECT COUNT(*) FROM sdj_steps WHERE job_id IN (?)) AS steps, ' +
      '(SELECT COUNT(*) FROM sdj_signals WHERE job_id IN (?)) AS signals, (SELECT COUNT(*) FROM sdj_fan_outs WHERE parent_id IN (?)) AS fan_outs',
    [ids, ids, ids, ids],
  );
  return Object.fromEntries(Object.entries(r!).map(([k, v]) => [k, Number(v)]));
}

const NONE = { jobs: 0, steps: 0, signals: 0, fan_outs: 0 };

/** Jobs whose parent no longer exists. */
async function orphans(f: Fixture): Promise<string[]> {
  const rows = await f.rows<{ id: string }>('SELECT c.id FROM sdj_jobs c LEFT JOIN sdj_jobs p ON p.id = c.parent_id WHERE c.parent_id IS NOT NULL AND p.id IS NULL');
  return rows.map((r) => r.id);
}

/** Whether nobody holds the named lock. */
async function lockFree(f: Fixture, name: string): Promise<boolean> {
  const [r] = await f.rows<{ free: number }>('SELECT IS_FREE_LOCK(?) AS free', [name]);
  return Number(r?.free) === 1;
}

/** Pools made by {@link hookedPool}, ended after the tests (a storage leaves a pool it was given open). */
const pools: MysqlClientPool[] = [];

/** A mysql2 pool on `url` whose every statement goes through `hook` first (counting, failing on purpose, changing rows meanwhile). */
function hookedPool(url: string, hook: (sql: string) => void | Promise<void>): MysqlPoolLike {
  const pool = mysql.createPool({ uri: url, connectionLimit: 2 });
  pools.push(pool);
  return {
    query: async (o: MysqlQueryOptions) => (await hook(o.sql), pool.query(o)),
    getConnection: async () => {
      const c = await pool.getConnection();
      return { query: async (o: MysqlQueryOptions) => (await hook(o.sql), c.query(o)), release: () => c.release(), destroy: () => c.destroy() };
    },
    end: () => pool.end(),
  };
}

describe('mysql: jobPrune', () => {
  const open: Fixture[] = [];
  const use = async (label: string, database?: string, migrate = true): Promise<Fixture> => {
    const f = await fixture(label, database, migrate);
    open.push(f);
    return f;
  };
  after(async () => {
    for (const f of open) await f.cleanup();
    for (const p of pools) await p.end();
  });

  it('answers busy while another session holds the prune lock (named after the database, hashed when long), which every call frees', async () => {
    const long = `sdj_t_prune_${randomBytes(24).toString('hex')}`.slice(0, 60);
    await mysqlAdmin([`CREATE DATABASE \`${long}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`]);
    for (const [f, name] of [
      await use('mysql-prune-busy').then((x) => [x, `sdj_prune_${x.db}`] as const),
      await use('', long).then((x) => [x, `sdj_prune_${createHash('sha1').update(long).digest('hex')}`] as const),
    ]) {
      const job = await completedJob(f.s);
      f.at.now += 1;
      await f.raw.query('SELECT GET_LOCK(?, 0)', [name]);
      assert.deepEqual(await f.s.jobPrune({ olderThanMs: ALL0, limit: 10 }), { deleted: 0, roots: 0, busy: true });
      assert.equal((await mustGet(f.s, job.id)).status, 'completed');
      await f.raw.query('SELECT RELEASE_LOCK(?)', [name]);
      assert.deepEqual(await f.s.jobPrune({ olderThanMs: ALL0, limit: 10 }), { deleted: 1, roots: 1, busy: false });
      assert.ok(await lockFree(f, name), `${name} is free after the call`);
    }
  });

  it('a prune that fails midway rolls back whole and frees the lock', async () => {
    const f = await use('mysql-prune-failure');
    const w = await finishedWorkflow(f.s);
    f.at.now += 1;
    let armed = true;
    const s = f.open(
      hookedPool(f.url, (sql) => {
        if (armed && sql === PRUNE_DELETE_FAN_OUTS) {
          armed = false;
          throw new Error('a statement failing on purpose');
        }
      }),
    );
    await assert.rejects(s.jobPrune({ olderThanMs: ALL0, limit: 10 }), StorageError);
    assert.deepEqual(await leftFor(f, w.ids), { jobs: 3, steps: 3, signals: 1, fan_outs: 1 }, 'nothing deleted');
    assert.ok(await lockFree(f, `sdj_prune_${f.db}`));
    assert.deepEqual(await s.jobPrune({ olderThanMs: ALL0, limit: 10 }), { deleted: 3, roots: 1, busy: false });
    assert.deepEqual(await leftFor(f, w.ids), NONE);
  });

  it('costs 8 round trips when nothing is due, 13 for plain jobs, 15 with fan-outs (one of them the read of flow-control leftovers)', async () => {
    const f = await use('mysql-prune-round-trips');
    let n = 0;
    const s = f.open(hookedPool(f.url, () => void n++));
    const count = async (): Promise<number> => {
      n = 0;
      await s.jobPrune({ olderThanMs: ALL0, limit: 100 });
      return n;
    };
    assert.equal(await count(), 8);
    for (let i = 0; i < 3; i++) await completedJob(f.s);
    f.at.now += 1;
    assert.equal(await count(), 13);
    await finishedWorkflow(f.s);
    await finishedWorkflow(f.s);
    f.at.now += 1;
    assert.equal(await count(), 15);
  });

  it("reaches the rows it locks and deletes by key only, whatever share of each table the ids are (the plans of its statements)", async () => {
    // A locking statement that scans a table waits for every row another transaction holds there.
    const f = await use('mysql-prune-plans');
    await f.raw.query('SET SESSION max_recursive_iterations = 10000').catch(() => f.raw.query('SET SESSION cte_max_recursion_depth = 10000'));
    const statements: [string, string, string, boolean][] = [
      ['sdj_fan_outs', PRUNE_LOCK_FAN_OUTS, 'PRIMARY', false],
      ['sdj_jobs', PRUNE_LOCK_JOBS, 'PRIMARY', false],
      ['sdj_steps', PRUNE_DELETE_STEPS, 'PRIMARY', true],
      ['sdj_signals', PRUNE_DELETE_SIGNALS, 'sdj_signals_job_name', true],
      ['sdj_fan_outs', PRUNE_DELETE_FAN_OUTS, 'PRIMARY', true],
      ['sdj_jobs', PRUNE_DELETE_JOBS, 'PRIMARY', true],
    ];
    for (const [rowsPerTable, ids] of [[10, 10], [300, 100], [1_000, 1_000]] as const) {
      for (const t of ['sdj_steps', 'sdj_signals', 'sdj_fan_outs', 'sdj_jobs']) await f.raw.query(`DELETE FROM ${t}`);
      const each = (columns: string) => `WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rowsPerTable}) SELECT ${columns} FROM n`;
      const id = "CONCAT('job-', LPAD(i, 6, '0'))";
      await f.raw.query(`INSERT INTO sdj_jobs (id, type, queue, status, attempt, run_count, run_at, created_at, completed_at) ${each(`${id}, 't', 'q', 'completed', 1, 1, 1, 1, 2`)}`);
      await f.raw.query(`INSERT INTO sdj_steps (job_id, step_index, step_name, status, created_at) ${each(`${id}, 0, 's', 'completed', 1`)}`);
      await f.raw.query(`INSERT INTO sdj_signals (job_id, name, payload, created_at) ${each(`${id}, 'note', '1', 1`)}`);
      await f.raw.query(`INSERT INTO sdj_fan_outs (id, parent_id, step_index, strategy, total, status, created_at) ${each(`${id}, ${id}, 1, 'collect-all', 0, 'succeeded', 1`)}`);
      for (const t of ['sdj_steps', 'sdj_signals', 'sdj_fan_outs', 'sdj_jobs']) await f.raw.query(`ANALYZE TABLE ${t}`);
      const list = Array.from({ length: ids }, (_, i) => `job-${String(1 + i * (rowsPerTable / ids)).padStart(6, '0')}`);
      for (const [table, sql, key, json] of statements) {
        const values = sql === PRUNE_LOCK_JOBS ? [null, list] : [json ? JSON.stringify(list) : list];
        const [plan] = (await f.raw.query(`EXPLAIN ${sql}`, values)) as [{ table: string; type: string; key: string | null }[], unknown];
        const reads = plan.filter((r) => r.table !== 'd').map((r) => ({ type: r.type, key: r.key }));
        assert.equal(reads.length, 1, `${sql}: ${JSON.stringify(plan)}`);
        assert.ok(['eq_ref', 'ref', 'range'].includes(reads[0]!.type) && reads[0]!.key === key, `${table}, ${ids} ids of ${rowsPerTable} rows, ${sql}: ${JSON.stringify(reads)}`);
      }
    }
  });

  it('pruners on several instances delete every job once, with its steps, signals and fan-outs, and nothing live', async () => {
    const f = await use('mysql-prune-concurrent');
    const flows = [];
    for (let i = 0; i < 12; i++) flows.push(await finishedWorkflow(f.s));
    for (let i = 0; i < 12; i++) flows.push({ ids: [(await completedJob(f.s)).id] });
    const live = await runningJob(f.s);
    assert.equal(await f.s.stepRecord({ fence: live.fence, step: stepRow(live.fence.jobId, 0) }), true);
    f.at.now += 1;
    const pruners = [f.s, f.open(), f.open(), f.open()];
    const results = await Promise.all(
      pruners.map(async (s) => {
        const got = { deleted: 0, roots: 0, busy: 0 };
        for (;;) {
          const r = await s.jobPrune({ olderThanMs: ALL0, limit: 2 });
          got.deleted += r.deleted;
          got.roots += r.roots;
          if (r.busy) {
            got.busy++;
            await delay(2);
          } else if (r.roots < 2) return got;
        }
      }),
    );
    const ids = flows.flatMap((w) => w.ids);
    assert.equal(results.reduce((t, r) => t + r.roots, 0), 24, 'every root deleted once');
    assert.equal(results.reduce((t, r) => t + r.deleted, 0), ids.length, 'every job deleted once');
    assert.deepEqual(await leftFor(f, ids), NONE);
    assert.deepEqual(await leftFor(f, [live.fence.jobId]), { jobs: 1, steps: 1, signals: 0, fan_outs: 0 });
    assert.equal((await mustGet(f.s, live.fence.jobId)).lockedBy, live.fence.workerId);
  });

  it('skips a root whose child is running, leaving both rows as they were', async () => {
    const f = await use('mysql-prune-running-child');
    const root = await completedJob(f.s);
    const child = await runningJob(f.s, { parentId: root.id });
    const before = [await mustGet(f.s, root.id), await mustGet(f.s, child.fence.jobId)];
    f.at.now += 3_600_000;
    assert.deepEqual(await f.s.jobPrune({ olderThanMs: ALL0, limit: 10 }), { deleted: 0, roots: 0, busy: false });
    assert.deepEqual([await mustGet(f.s, root.id), await mustGet(f.s, child.fence.jobId)], before);
    await finish(f.s, child.fence, 'completed');
    f.at.now += 1;
    assert.deepEqual(await f.s.jobPrune({ olderThanMs: ALL0, limit: 10 }), { deleted: 2, roots: 1, busy: false });
  });

  it("checks each job's own age again under the locks: a failed child retried and completed after the plan keeps its workflow until the completed age passed", async () => {
    const f = await use('mysql-prune-own-age-locked');
    const root = await completedJob(f.s);
    const child = await failedJob(f.s, { parentId: root.id });
    f.at.now += 5_000;
    const ages = { completed: 3_000, failed: 0, cancelled: 0 };
    let armed = true;
    const s = f.open(
      hookedPool(f.url, async (sql) => {
        // Between the plan (which saw the child failed 5 s ago: due) and the lock of the rows.
        if (armed && sql === PRUNE_LOCK_JOBS) {
          armed = false;
          await f.s.jobRetry({ id: child.id });
          await finish(f.s, fenceOf(await claimOne(f.s, child.queue, child.id)), 'completed');
        }
      }),
    );
    assert.deepEqual(await s.jobPrune({ olderThanMs: ages, limit: 10 }), { deleted: 0, roots: 0, busy: false });
    assert.equal(armed, false, 'the child changed between the plan and the locks');
    assert.equal((await mustGet(f.s, child.id)).status, 'completed');
    assert.equal((await leftFor(f, [root.id, child.id])).jobs, 2, 'the child completed 0 ms ago: not past the completed age');
    f.at.now += 3_000;
    assert.deepEqual(await s.jobPrune({ olderThanMs: ages, limit: 10 }), { deleted: 0, roots: 0, busy: false }, 'exactly the age is not past it');
    f.at.now += 1;
    assert.deepEqual(await s.jobPrune({ olderThanMs: ages, limit: 10 }), { deleted: 2, roots: 1, busy: false });
  });

  it('leaves a workflow whole while another transaction holds its fan-out or one of its jobs, without waiting', async () => {
    const f = await use('mysql-prune-held-rows');
    const held = await finishedWorkflow(f.s);
    const other = await finishedWorkflow(f.s);
    f.at.now += 1;
    const hold = async (sql: string, id: string): Promise<void> => {
      await f.raw.query('START TRANSACTION');
      await f.raw.query(sql, [id]);
    };
    // The prune resolves while the row is still held: it never waits for it (the server would make it wait 50 s).
    const unwaited = async (): Promise<unknown> => {
      const pruning = f.s.jobPrune({ olderThanMs: ALL0, limit: 10 });
      const late = delay(5_000, 'late' as const);
      try {
        const first = await Promise.race([pruning, late]);
        assert.notEqual(first, 'late', 'the prune waited for a row another transaction holds');
        return first;
      } finally {
        await f.raw.query('COMMIT');
        await pruning.catch(() => undefined);
      }
    };
    await hold('SELECT id FROM sdj_fan_outs WHERE id = ? FOR UPDATE', held.fanOutId);
    assert.deepEqual(await unwaited(), { deleted: 3, roots: 1, busy: false });
    assert.deepEqual(await leftFor(f, other.ids), NONE);
    assert.deepEqual(await leftFor(f, held.ids), { jobs: 3, steps: 3, signals: 1, fan_outs: 1 });
    await hold('SELECT id FROM sdj_jobs WHERE id = ? FOR UPDATE', held.childIds[1]!);
    assert.deepEqual(await unwaited(), { deleted: 0, roots: 0, busy: false });
    assert.deepEqual(await f.s.jobPrune({ olderThanMs: ALL0, limit: 10 }), { deleted: 3, roots: 1, busy: false });
    assert.deepEqual(await leftFor(f, held.ids), NONE);
  });

  it('a retry of a finished child racing a prune never loses the child', async (t) => {
    const f = await use('mysql-prune-retry-race');
    const [pruner, retrier] = [f.open(), f.open()];
    const seen = { retried: 0, pruned: 0 };
    for (let i = 0; i < 40; i++) {
      const w = await finishedWorkflow(f.s);
      const failedChild = w.childIds[0]!;
      f.at.now += 1;
      // Either call starts first, the other 0 to 4 ms later, so the prune meets the retry at every step.
      const lag = delay(i % 5);
      const pruning = i % 2 === 0 ? pruner.jobPrune({ olderThanMs: ALL0, limit: 10 }) : lag.then(() => pruner.jobPrune({ olderThanMs: ALL0, limit: 10 }));
      const retrying = i % 2 === 1 ? retrier.jobRetry({ id: failedChild }) : lag.then(() => retrier.jobRetry({ id: failedChild }));
      const [pruned, retried] = await Promise.allSettled([pruning, retrying]);
      assert.equal(pruned.status, 'fulfilled');
      assert.deepEqual(await orphans(f), [], 'no job outlives its parent');
      if (retried.status === 'fulfilled') {
        seen.retried++;
        assert.equal(pruned.value.deleted, 0, 'the workflow with a retried child is left whole');
        assert.equal((await mustGet(f.s, failedChild)).status, 'pending', 'the retried child is there, pending');
        assert.equal((await mustGet(f.s, w.rootId)).status, 'completed');
        await finish(f.s, fenceOf(await claimOne(f.s, (await mustGet(f.s, failedChild)).queue, failedChild)), 'completed');
        f.at.now += 1;
        assert.deepEqual(await f.s.jobPrune({ olderThanMs: ALL0, limit: 10 }), { deleted: 3, roots: 1, busy: false });
      } else {
        seen.pruned++;
        assert.ok(retried.reason instanceof JobNotFoundError, `the retry found the child gone: ${String(retried.reason)}`);
        assert.equal(pruned.value.deleted, 3);
      }
      assert.deepEqual(await leftFor(f, w.ids), NONE);
    }
    assert.equal(seen.retried + seen.pruned, 40);
    t.diagnostic(`retry first: ${seen.retried}, prune first: ${seen.pruned}`);
  });

  it('deletes the oldest due roots first whatever their status, passing over roots with live jobs below without counting them', async () => {
    const f = await use('mysql-prune-order');
    const blocked = [];
    for (let i = 0; i < 5; i++) {
      const root = await completedJob(f.s);
      blocked.push(root.id, await insertJob(f.s, { queue: uniqueName('q'), parentId: root.id }));
    }
    const due: string[] = [];
    for (const make of [completedJob, failedJob, cancelledJob, completedJob]) {
      f.at.now += 10;
      due.push((await make(f.s)).id);
    }
    f.at.now += 1;
    assert.deepEqual(await f.s.jobPrune({ olderThanMs: ALL0, limit: 2 }), { deleted: 2, roots: 2, busy: false });
    assert.deepEqual(await leftFor(f, due.slice(0, 2)), NONE, 'the two oldest: a completed and a failed root');
    assert.equal((await leftFor(f, due.slice(2))).jobs, 2);
    assert.deepEqual(await f.s.jobPrune({ olderThanMs: { completed: 0, failed: 0, cancelled: null }, limit: 2 }), { deleted: 1, roots: 1, busy: false });
    assert.equal((await leftFor(f, [due[2]!])).jobs, 1, 'a null age keeps the cancelled root');
    assert.deepEqual(await f.s.jobPrune({ olderThanMs: ALL0, limit: 2 }), { deleted: 1, roots: 1, busy: false });
    assert.equal((await leftFor(f, blocked)).jobs, 10, 'roots with a pending child stay');
    await assert.rejects(f.s.jobPrune({ olderThanMs: { ...ALL0, failed: -1 }, limit: 2 }), /olderThanMs.failed/);
  });

  it('every way a root job finishes leaves it in the prune index (no lease, a completion time), and a prune deletes it', async () => {
    const f = await use('mysql-prune-every-end');
    const ended: string[] = [];
    ended.push((await completedJob(f.s)).id, (await failedJob(f.s)).id, (await cancelledJob(f.s)).id);
    const running = await runningJob(f.s);
    assert.deepEqual(await f.s.jobCancel({ id: running.row.id }), [running.row.id]);
    const waiting = await waitingJob(f.s, {}, { wakeAt: f.at.now + 60_000 });
    assert.deepEqual(await f.s.jobCancel({ id: waiting.row.id }), [waiting.row.id]);
    const expiring = await runningJob(f.s, { maxRetries: 0 }, { leaseMs: 1_000 });
    f.at.now += 1_001;
    assert.deepEqual((await f.s.jobReclaimExpired({ limit: 10 })).map((r) => [r.id, r.status]), [[expiring.row.id, 'failed']]);
    const retried = await failedJob(f.s);
    await f.s.jobRetry({ id: retried.id });
    await finish(f.s, fenceOf(await claimOne(f.s, retried.queue, retried.id)), 'completed');
    ended.push(running.row.id, waiting.row.id, expiring.row.id, retried.id);
    const live = await runningJob(f.s);
    const seen = await f.rows<{ id: string }>(
      "SELECT id FROM sdj_jobs FORCE INDEX (sdj_jobs_prune) WHERE status IN ('completed', 'failed', 'cancelled') AND lease_expires_at IS NULL AND parent_id IS NULL AND completed_at IS NOT NULL",
    );
    assert.deepEqual(seen.map((r) => r.id).sort(), [...ended].sort());
    f.at.now += 1;
    assert.deepEqual(await f.s.jobPrune({ olderThanMs: ALL0, limit: 100 }), { deleted: ended.length, roots: ended.length, busy: false });
    assert.equal((await mustGet(f.s, live.row.id)).status, 'running');
  });

  it('migration 2 replaces sdj_jobs_lease with sdj_jobs_prune, runs again harmlessly, and leaves the claim, reclaim and prune plans on their indexes', async () => {
    const f = await use('mysql-prune-migration');
    const indexes = async (): Promise<string[]> =>
      (await f.rows<{ k: string }>("SELECT DISTINCT index_name AS k FROM information_schema.statistics WHERE table_schema = ? AND table_name = 'sdj_jobs' ORDER BY k", [f.db])).map((r) => r.k);
    const expected = [
      'PRIMARY',
      'sdj_jobs_claim',
      'sdj_jobs_created',
      'sdj_jobs_debounce',
      'sdj_jobs_fan_out',
      'sdj_jobs_flow',
      'sdj_jobs_parent',
      'sdj_jobs_prune',
      'sdj_jobs_unique_active',
      'sdj_jobs_unique_key',
      'sdj_jobs_wake',
    ];
    assert.deepEqual(await indexes(), expected);
    const columns = await f.rows<{ c: string }>(
      "SELECT column_name AS c FROM information_schema.statistics WHERE table_schema = ? AND table_name = 'sdj_jobs' AND index_name = 'sdj_jobs_prune' ORDER BY seq_in_index",
      [f.db],
    );
    assert.deepEqual(columns.map((r) => r.c), ['status', 'lease_expires_at', 'parent_id', 'completed_at']);
    const m2 = MIGRATIONS.find((m) => m.version === 2);
    assert.ok(m2);
    for (const stmt of splitStatements(m2.sql)) await f.raw.query(stmt);
    assert.deepEqual(await indexes(), expected, 'a second run changes nothing');

    // Plans of a table this small follow its statistics: jobs, then fresh statistics. (The current
    // code cannot write a database at version 1, so the claim's plan is checked on its own: its
    // index, read in order.)
    await f.s.jobInsertMany({ jobs: Array.from({ length: 1000 }, () => jobInsert({ queue: 'other' })) });
    await f.s.jobInsertMany({ jobs: Array.from({ length: 200 }, () => jobInsert({ queue: 'q' })) });
    const ran = [...(await claim(f.s, 'other', 1000)), ...(await claim(f.s, 'q', 20))];
    const done = ran.filter((r) => r.queue === 'other');
    assert.equal(done.length, 1000);
    await f.s.jobFinishMany({ items: done.map((r) => ({ ...fenceOf(r), outcome: 'completed' as const, resultJson: null })) });
    await f.raw.query('ANALYZE TABLE sdj_jobs');
    const plan = async (sql: string, values: unknown[]) => {
      const [rows] = (await f.raw.query(`EXPLAIN ${sql}`, values)) as [{ key: string | null; Extra: string | null }[], unknown];
      return rows;
    };
    const [claimPlan] = await plan(CLAIM_SELECT, [null, 'q', null, 10]);
    assert.equal(claimPlan?.key, 'sdj_jobs_claim');
    assert.doesNotMatch(claimPlan?.Extra ?? '', /filesort/);
    const [reclaim] = await plan(RECLAIM_CANDIDATES, [null, 10]);
    assert.equal(reclaim?.key, 'sdj_jobs_prune');
    assert.doesNotMatch(reclaim?.Extra ?? '', /filesort/);
    const due = await plan(pruneDueSql(3, false), ['completed', null, 0, 10, 'failed', null, 0, 10, 'cancelled', null, 0, 10, 10]);
    const ranges = due.filter((r) => r.key === 'sdj_jobs_prune');
    assert.equal(ranges.length, 3, JSON.stringify(due));
    for (const r of ranges) assert.doesNotMatch(r.Extra ?? '', /filesort/);
  });

  it('a database at version 1 with finished jobs migrates online to the latest version, and the prune then finds those jobs', async () => {
    const db = await createTestDatabase('mysql-prune-from-v1');
    const conn = await mysql.createConnection(mysqlDatabaseUrl(db));
    try {
      for (const stmt of splitStatements(MIGRATIONS.find((m) => m.version === 1)!.sql)) await conn.query(stmt);
      await conn.query(MIGRATIONS_CREATE_LEDGER);
      await conn.query("INSERT INTO sdj_migrations (version, name, applied_at) VALUES (1, 'init', 0)");
    } finally {
      await conn.end();
    }
    const f = await use('mysql-prune-from-v1', db, false);
    // Rows as version 1 holds them (the current code writes columns version 1 does not have):
    // three finished roots, and a run holding a lease of 10 minutes.
    const t = f.at.now;
    const finished = ['0000000000f1', '0000000000f2', '0000000000f3'];
    const liveId = '0000000000a1';
    await f.raw.query(
      'INSERT INTO sdj_jobs (id, type, queue, status, attempt, run_count, run_at, created_at, started_at, completed_at, locked_by, lease_expires_at, heartbeat_at) VALUES ?',
      [
        [
          [finished[0], 't', 'q', 'completed', 1, 1, t - 10, t - 10, t - 5, t - 1, null, null, t - 5],
          [finished[1], 't', 'q', 'failed', 1, 1, t - 10, t - 10, t - 5, t - 1, null, null, t - 5],
          [finished[2], 't', 'q', 'cancelled', 0, 0, t - 10, t - 10, null, t - 1, null, null, null],
          [liveId, 't', 'q', 'running', 1, 1, t - 10, t - 10, t - 5, null, 'w', t + 10 * 60_000 - 1, t - 5],
        ],
      ],
    );
    const live = { row: { id: liveId } };
    await f.s.migrate();
    assert.deepEqual(
      (await f.rows<{ version: number }>('SELECT version FROM sdj_migrations ORDER BY version')).map((r) => r.version),
      MIGRATIONS.map((m) => m.version),
    );
    f.at.now += 1;
    assert.deepEqual(await f.s.jobPrune({ olderThanMs: ALL0, limit: 10 }), { deleted: 3, roots: 3, busy: false });
    assert.deepEqual(await leftFor(f, finished), NONE);
    assert.equal((await mustGet(f.s, live.row.id)).status, 'running');
    // The lease the run took on version 1 still expires through the new index.
    f.at.now += 10 * 60_000;
    assert.deepEqual((await f.s.jobReclaimExpired({ limit: 10 })).map((r) => r.id), [live.row.id]);
  });
});
