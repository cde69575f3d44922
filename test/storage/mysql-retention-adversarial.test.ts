/**
 * MySQL/MariaDB: retention under attack. A prune next to a user transaction that is still open
 * and wrote rows the prune's statements pass by (a job it enqueued; checkpoints, signals and a
 * fan-out of a live job), the worker's timers and its graceful stop meanwhile; a prune that meets
 * a row lock anyway (its short lock wait); `queue.prune()` while another transaction holds one due
 * root; the prune's connection killed by the server in the middle of its transaction (the error
 * reported, the named prune lock, the pool and the rows afterwards); a root with thousands of
 * descendants against the batch limit.
 *
 * Each test runs on a database of its own, on the database clock.
 * @storage mysql
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { isDurableJobsError, StorageError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { MysqlStorage, type MysqlTransaction } from '../../src/storage/mysql/mysql-storage.js';
import { applied, jobInsert, runningJob, waitForClockPast } from '../helpers/factories.js';
import { mysql, type MysqlClient } from '../helpers/mysql-client.js';
import { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';
import { ALL0, finishedRoots, finishedWorkflow, pruneWideRoot, settle } from '../helpers/retention-fixtures.js';
import { waitFor } from '../helpers/wait-for.js';

/** A fresh migrated database with a storage on it and a plain connection; cleaned up after `fn`. */
async function withDatabase(label: string, fn: (s: MysqlStorage, raw: MysqlClient, db: string) => Promise<void>): Promise<void> {
  const db = await createTestDatabase(label);
  const s = new MysqlStorage(mysqlDatabaseUrl(db), { connectionLimit: 3 });
  const raw = await mysql.createConnection(mysqlDatabaseUrl(db));
  try {
    await s.migrate();
    await fn(s, raw, db);
  } finally {
    await s.close();
    await raw.end();
    await dropTestDatabase(db);
  }
}

/** Rows of a query on `raw`. */
async function rows<T = Record<string, unknown>>(raw: MysqlClient, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await raw.query(sql, values))[0] as T[];
}

/** Jobs left in the database. */
async function countJobs(raw: MysqlClient): Promise<number> {
  return Number((await rows<{ n: number }>(raw, 'SELECT COUNT(*) AS n FROM sdj_jobs'))[0]!.n);
}

describe('mysql: retention, adversarial', () => {
  it('a prune never waits for a row lock: a user transaction that enqueued a job and is still open does not stall it', async () => {
    // retention.ts's header: "The transaction never waits for a lock". A `DELETE ... WHERE id IN
    // (?)` may scan the whole table when the ids are a large share of it (here 100 of 300 jobs, a
    // worker-sized batch on a small database: MariaDB does), and a scan in a locking statement
    // waits for every row another transaction holds, here the uncommitted row of a job enqueued
    // inside the caller's own transaction. The prune's deletes look their rows up by key instead.
    await withDatabase('mysql-radv-user-tx', async (s, raw, db) => {
      const done = await finishedRoots(s, 300);
      await waitForClockPast(s, done.completedAt);
      const user = await mysql.createConnection(mysqlDatabaseUrl(db));
      try {
        await user.query('START TRANSACTION');
        await new Queue(s).enqueue('signup-mail', {}, { transaction: user as unknown as MysqlTransaction });
        const pruning = s.jobPrune({ olderThanMs: ALL0, limit: 100 });
        const first = await Promise.race([pruning.then((r) => r), delay(5_000).then(() => 'still waiting after 5 s' as const)]);
        const state = await rows<{ state: string; info: string }>(
          raw,
          "SELECT STATE AS state, LEFT(INFO, 40) AS info FROM information_schema.PROCESSLIST WHERE DB = ? AND COMMAND <> 'Sleep' AND ID <> CONNECTION_ID()",
          [db],
        );
        await user.query('COMMIT');
        await pruning.catch(() => undefined);
        assert.deepEqual(first, { deleted: 100, roots: 100, busy: false }, `the prune waited behind the open transaction: ${JSON.stringify(state)}`);
      } finally {
        await user.query('ROLLBACK').catch(() => undefined);
        await user.end();
      }
    });
  });

  it("a worker's timers and graceful stop do not hang on its prune while a user transaction that enqueued a job stays open", async () => {
    // The prune runs inside the worker's maintenance pass (worker.ts), which also wakes due
    // timers and reclaims expired leases; a pass in flight holds back the next one, and
    // stop() waits for it. A prune stalled as the test above would have it (a small database, an
    // open transaction that enqueued a job) would stall every timer of the worker and its shutdown.
    await withDatabase('mysql-radv-worker-stall', async (s, _raw, db) => {
      const done = await finishedRoots(s, 300);
      await waitForClockPast(s, done.completedAt);
      const queue = new Queue(s, { retention: { completed: 0 } });
      queue.register('napper', async (_a, ctx) => {
        await ctx.sleep(200);
        return 'woke';
      });
      const user = await mysql.createConnection(mysqlDatabaseUrl(db));
      const worker = queue.newWorker({ pollInterval: 20, maintenanceInterval: 50, heartbeatInterval: 50, drainTimeout: 500, handleSignals: false, pruneInterval: 10 });
      try {
        await user.query('START TRANSACTION');
        await queue.enqueue('signup-mail', {}, { transaction: user as unknown as MysqlTransaction, queue: 'elsewhere' });
        void worker.start();
        const napper = await queue.enqueue('napper', {});
        const outcome = await queue.waitForJob(napper, { timeout: 10_000 }).then(
          (j) => j.status,
          (e: unknown) => String(e),
        );
        const stopped = await Promise.race([worker.stop().then(() => 'stopped'), delay(5_000).then(() => 'stop() still waiting after 5 s')]);
        assert.deepEqual({ outcome, stopped }, { outcome: 'completed', stopped: 'stopped' }, 'a 200 ms sleep wakes, and stop() returns, while the transaction is open');
      } finally {
        await user.query('COMMIT').catch(() => undefined);
        await worker.stop();
        await user.end();
      }
    });
  });

  it("a prune never waits for a row lock: checkpoints, signals and a fan-out of a live job that an open transaction wrote do not stall it", async () => {
    // The prune also deletes checkpoints, signals and fan-outs. MariaDB scans sdj_signals and
    // sdj_fan_outs for `WHERE ... IN (?)` when the ids are a large share of them (100 of 300
    // here), and would wait for the rows the open transaction wrote next to the pruned ones.
    await withDatabase('mysql-radv-user-tx-rows', async (s, raw, db) => {
      const done = await finishedRoots(s, 300);
      await raw.query("INSERT INTO sdj_steps (job_id, step_index, step_name, status, created_at) SELECT id, 0, 's', 'completed', 1 FROM sdj_jobs");
      await raw.query("INSERT INTO sdj_signals (job_id, name, payload, created_at) SELECT id, 'note', '1', 1 FROM sdj_jobs");
      await raw.query(
        "INSERT INTO sdj_fan_outs (id, parent_id, step_index, strategy, total, status, created_at) SELECT CONCAT('fo-', id), id, 1, 'collect-all', 0, 'succeeded', 1 FROM sdj_jobs",
      );
      const live = await runningJob(s);
      await waitForClockPast(s, done.completedAt);
      const user = await mysql.createConnection(mysqlDatabaseUrl(db));
      try {
        await user.query('START TRANSACTION');
        const id = live.fence.jobId;
        await user.query("INSERT INTO sdj_steps (job_id, step_index, step_name, status, created_at) VALUES (?, 0, 's', 'completed', 1)", [id]);
        await user.query("INSERT INTO sdj_signals (job_id, name, payload, created_at) VALUES (?, 'note', '1', 1)", [id]);
        await user.query("INSERT INTO sdj_fan_outs (id, parent_id, step_index, strategy, total, status, created_at) VALUES (?, ?, 1, 'collect-all', 0, 'running', 1)", [
          `fo-${id}`,
          id,
        ]);
        const pruning = s.jobPrune({ olderThanMs: ALL0, limit: 100 });
        const first = await Promise.race([pruning.then((r) => r), delay(5_000).then(() => 'still waiting after 5 s' as const)]);
        await user.query('COMMIT');
        await pruning.catch(() => undefined);
        assert.deepEqual(first, { deleted: 100, roots: 100, busy: false });
        const [left] = await rows<Record<string, number>>(
          raw,
          'SELECT (SELECT COUNT(*) FROM sdj_steps) AS steps, (SELECT COUNT(*) FROM sdj_signals) AS signals, (SELECT COUNT(*) FROM sdj_fan_outs) AS fan_outs',
        );
        assert.deepEqual(Object.fromEntries(Object.entries(left!).map(([k, v]) => [k, Number(v)])), { steps: 201, signals: 201, fan_outs: 201 });
      } finally {
        await user.query('ROLLBACK').catch(() => undefined);
        await user.end();
      }
    });
  });

  it('a prune that meets a row lock anyway gives up after its 1 s lock wait, once, with a transient error and nothing deleted; the pooled connection gets its own lock wait back', async () => {
    // Nothing the prune runs waits for a lock; a trigger on its delete of signals makes one
    // (it updates a row another transaction holds). The pool has one connection, whose session
    // lock wait is 7 s: the prune's own, 1 s, ends the wait, which is not run again.
    await withDatabase('mysql-radv-lock-wait', async (_s, raw, db) => {
      const pool = mysql.createPool({ uri: mysqlDatabaseUrl(db), connectionLimit: 1 });
      const s = new MysqlStorage(pool);
      const holder = await mysql.createConnection(mysqlDatabaseUrl(db));
      try {
        await pool.query('SET SESSION innodb_lock_wait_timeout = 7');
        const { fence } = await runningJob(s);
        await s.signalSend({ jobId: fence.jobId, name: 'poke', payloadJson: '1' });
        const stored = await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: null }] });
        await waitForClockPast(s, stored[0] ?? 0);
        await raw.query('CREATE TABLE radv_tries (n INT NOT NULL) ENGINE = MyISAM');
        await raw.query('INSERT INTO radv_tries VALUES (0)');
        await raw.query('CREATE TABLE radv_gate (id INT PRIMARY KEY, v INT NOT NULL) ENGINE = InnoDB');
        await raw.query('INSERT INTO radv_gate VALUES (1, 0)');
        await raw.query('CREATE TRIGGER radv_wait AFTER DELETE ON sdj_signals FOR EACH ROW BEGIN UPDATE radv_tries SET n = n + 1; UPDATE radv_gate SET v = v + 1 WHERE id = 1; END');
        await holder.query('START TRANSACTION');
        await holder.query('SELECT v FROM radv_gate WHERE id = 1 FOR UPDATE');
        const out = await Promise.race([settle(s.jobPrune({ olderThanMs: ALL0, limit: 10 })), delay(15_000).then(() => ({ r: 'still waiting after 15 s' }))]);
        assert.ok('e' in out, `the prune fails: ${JSON.stringify(out)}`);
        assert.ok(out.e instanceof StorageError && out.e.transient, `a transient StorageError: ${String(out.e)}`);
        assert.equal((out.e.cause as { errno?: unknown }).errno, 1205, 'a lock wait timeout');
        assert.equal(Number((await rows<{ n: number }>(raw, 'SELECT n FROM radv_tries'))[0]!.n), 1, 'run once');
        assert.equal(await countJobs(raw), 1, 'nothing deleted');
        const [lock] = await rows<{ free: number }>(raw, 'SELECT IS_FREE_LOCK(?) AS free', [`sdj_prune_${db}`]);
        assert.equal(Number(lock?.free), 1, 'the prune lock is free');
        const lockWait = async (): Promise<number> => Number(((await pool.query('SELECT @@SESSION.innodb_lock_wait_timeout AS s'))[0] as { s: number }[])[0]!.s);
        assert.equal(await lockWait(), 7, 'the session lock wait is restored after a failure');
        await holder.query('COMMIT');
        assert.deepEqual(await s.jobPrune({ olderThanMs: ALL0, limit: 10 }), { deleted: 1, roots: 1, busy: false });
        assert.equal(await lockWait(), 7, 'and after a prune that deleted');
      } finally {
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
        await s.close();
        await pool.end();
      }
    });
  });

  it('queue.prune() deletes every due root although one of them is held by another transaction for a moment', async () => {
    // The driver plans `limit` roots, then skips the one another transaction holds (step 3 of
    // retention.ts) and answers roots = limit - 1; pruneAll (src/core/retention.ts) goes on to the
    // next batch all the same, and stops only after a batch that deleted no root.
    await withDatabase('mysql-radv-held', async (s, raw, db) => {
      for (let i = 0; i < 20_000; i += 1_000) {
        await s.jobInsertMany({ jobs: Array.from({ length: 1_000 }, () => jobInsert({ queue: 'later', delayMs: 3_600_000 })) });
      }
      const done = await finishedRoots(s, 700);
      await waitForClockPast(s, done.completedAt);
      const holder = await mysql.createConnection(mysqlDatabaseUrl(db));
      try {
        // The oldest due root, locked by its primary key alone (a locking scan would lock every row it reads).
        const [oldest] = await rows<{ id: string }>(raw, 'SELECT id FROM sdj_jobs WHERE parent_id IS NULL AND completed_at IS NOT NULL ORDER BY completed_at, id LIMIT 1');
        await holder.query('START TRANSACTION');
        const [held] = (await holder.query('SELECT id FROM sdj_jobs WHERE id = ? FOR UPDATE', [oldest!.id])) as [unknown[], unknown];
        assert.equal(held.length, 1);
        const deleted = await Promise.race([new Queue(s).prune({ olderThan: 0 }), delay(20_000).then(() => -1)]);
        assert.equal(deleted, 699, `every due root but the held one (jobs left: ${(await countJobs(raw)) - 20_000} finished)`);
      } finally {
        await holder.query('ROLLBACK');
        await holder.end();
      }
    });
  });

  it('the prune connection killed mid-transaction: nothing half-deleted, the named lock is free, the pool recovers, the next prune deletes the workflow', async (t) => {
    await withDatabase('mysql-radv-kill', async (s, raw, db) => {
      const { id, recorded, stored } = await finishedWorkflow(s);
      assert.equal(recorded, true);
      assert.deepEqual(applied(stored), [true, true]);
      // The prune's delete of signals sleeps in a trigger, once: the count lives in a table that
      // a rollback does not undo.
      await raw.query('CREATE TABLE radv_runs (n INT NOT NULL) ENGINE = MyISAM');
      await raw.query('INSERT INTO radv_runs VALUES (0)');
      await raw.query(
        'CREATE TRIGGER radv_slow AFTER DELETE ON sdj_signals FOR EACH ROW BEGIN UPDATE radv_runs SET n = n + 1; IF (SELECT n FROM radv_runs) = 1 THEN DO SLEEP(30); END IF; END',
      );
      const pruning = settle(s.jobPrune({ olderThanMs: ALL0, limit: 10 }));
      const [sleeper] = await waitFor(
        async () => {
          const found = await rows<{ id: number }>(raw, "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE = 'User sleep'", [db]);
          return found.length > 0 ? found : undefined;
        },
        { message: 'the prune sleeps in the trigger' },
      );
      await raw.query(`KILL CONNECTION ${Number(sleeper!.id)}`);
      const out = await pruning;
      t.diagnostic('e' in out ? `the prune rejected: ${String(out.e)}` : `the prune resolved: ${JSON.stringify(out.r)}`);
      const left = await countJobs(raw);
      if ('e' in out) {
        assert.ok(isDurableJobsError(out.e), `a typed error: ${String(out.e)}`);
        // The error of the killed statement, not the unlock's on the dead connection after it.
        const cause = (out.e as { cause?: { code?: unknown; errno?: unknown } }).cause;
        assert.ok(cause?.code === 'PROTOCOL_CONNECTION_LOST' || cause?.errno === 1927, `the connection's loss is reported: ${String(out.e)}`);
        assert.equal(left, 2, 'the workflow is whole after the failed prune');
        assert.equal((await s.stepList({ jobId: id })).length, 1, 'its checkpoint too');
      } else {
        assert.deepEqual(out.r, { deleted: 2, roots: 1, busy: false }, 'run again on a new connection');
        assert.equal(left, 0);
      }
      const [lock] = await rows<{ free: number }>(raw, 'SELECT IS_FREE_LOCK(?) AS free', [`sdj_prune_${db}`]);
      assert.equal(Number(lock?.free), 1, 'the named prune lock went with the killed session');
      // Every pooled connection works (a dead one would fail here), and the prune runs again.
      await Promise.all(Array.from({ length: 6 }, () => s.clockNow()));
      const again = await s.jobPrune({ olderThanMs: ALL0, limit: 10 });
      assert.equal(again.busy, false);
      assert.equal(await countJobs(raw), 0);
      assert.deepEqual(await s.stepList({ jobId: id }), []);
    });
  });

  it('a root with 20,000 descendants goes whole in one worker-sized batch (limit 100), with the other due roots', async (t) => {
    await withDatabase('mysql-radv-wide', async (s, raw) => {
      const { first: r, ms, total } = await pruneWideRoot(s, 150, 100, async (rootId) => {
        // The children are written straight into the table: 20,000 claims and finishes would only slow the test.
        // The generator below recurses 20,000 times: lift the server's cap (MySQL's name, else MariaDB's).
        await raw.query('SET SESSION cte_max_recursion_depth = 100000').catch(() => raw.query('SET SESSION max_recursive_iterations = 100000'));
        await raw.query(
          'INSERT INTO sdj_jobs (id, type, queue, status, attempt, run_count, run_at, created_at, completed_at, parent_id) ' +
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT CONCAT('kid-', i), 'kid', 'k', 'completed', 1, 1, 1, 1, 2, ? FROM n",
          [rootId],
        );
        await raw.query(
          'INSERT INTO sdj_steps (job_id, step_index, step_name, status, created_at) ' +
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT CONCAT('kid-', i), 0, 's', 'completed', 1 FROM n",
        );
      });
      t.diagnostic(`one batch: ${JSON.stringify(r)} in ${ms} ms`);
      assert.equal(r.roots, 100);
      assert.equal(r.busy, false);
      assert.equal(total, 20_001 + 150);
      assert.equal(await countJobs(raw), 0);
      assert.equal(Number((await rows<{ n: number }>(raw, 'SELECT COUNT(*) AS n FROM sdj_steps'))[0]!.n), 0);
    });
  });
});
