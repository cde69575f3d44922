/**
 * PostgreSQL: retention under attack. `queue.prune()` while another transaction holds one due
 * root; the prune's connection terminated by the server in the middle of its statement; a
 * schema upgraded from version 1 with jobs in every status (running ones with live and expired
 * leases, finished roots with running children) and then pruned, reclaimed and finished; a root
 * with thousands of descendants against the batch limit.
 *
 * Each test pins behaviour that held when tried; a case written to fail on the code of its day
 * is named `BREAK:` until it passes.
 * Each test runs on a schema of its own.
 * @storage postgres
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { isDurableJobsError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { SCHEMA_PLACEHOLDER } from '../../src/storage/postgres/migrate.js';
import { MIGRATIONS } from '../../src/storage/postgres/migrations.generated.js';
import { PostgresStorage, type PgQueryableLike } from '../../src/storage/postgres/postgres-storage.js';
import { MIGRATIONS_CREATE_LEDGER, MIGRATIONS_CREATE_SCHEMA } from '../../src/storage/postgres/queries/admin.js';
import { applied, claimOne, fenceOf, mustGet, waitForClockPast } from '../helpers/factories.js';
import { openClient, withSchema } from '../helpers/postgres-schema.js';
import { PG_URL, pgAdmin, testSchemaName } from '../helpers/postgres-storage.js';
import { ALL0, finishedRoots, finishedWorkflow, pruneWideRoot, settle } from '../helpers/retention-fixtures.js';
import { waitFor } from '../helpers/wait-for.js';

const DAY = 24 * 3600_000;

/** Jobs left in the schema. */
async function countJobs(schema: string): Promise<number> {
  return Number((await pgAdmin<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".sdj_jobs`))[0]!.n);
}

describe('postgres: retention, adversarial', () => {
  it('queue.prune() deletes every due root although one of them is held by another transaction for a moment', async () => {
    // JOB_PRUNE counts a root it skipped (a row held elsewhere) in its LIMIT but not in `roots`,
    // so the first batch deletes fewer roots than its limit while more are due: pruneAll
    // (src/core/retention.ts) carries on until a batch deletes no root.
    await withSchema('pg-radv-held', async (ts, schema) => {
      const s = ts.storage;
      const done = await finishedRoots(s, 700);
      await waitForClockPast(s, done.completedAt);
      const holder = await openClient();
      try {
        await holder.query('BEGIN');
        const held = await holder.query(`SELECT id FROM "${schema}".sdj_jobs WHERE parent_id IS NULL ORDER BY completed_at, id LIMIT 1 FOR UPDATE`);
        assert.equal(held.rowCount, 1);
        const deleted = await new Queue(s).prune({ olderThan: 0 });
        assert.equal(deleted, 699, `every due root but the held one (left: ${await countJobs(schema)})`);
      } finally {
        await holder.query('ROLLBACK');
        await holder.end();
      }
    });
  });

  it('a user transaction that enqueued a job and is still open does not hold a prune back (small database, worker-sized batch)', async () => {
    await withSchema('pg-radv-user-tx', async (ts) => {
      const s = ts.storage;
      const done = await finishedRoots(s, 300);
      await waitForClockPast(s, done.completedAt);
      const user = await openClient();
      try {
        await user.query('BEGIN');
        await new Queue(s).enqueue('signup-mail', {}, { transaction: user as unknown as PgQueryableLike });
        const r = await Promise.race([s.jobPrune({ olderThanMs: ALL0, limit: 100 }), delay(5_000).then(() => 'still waiting after 5 s' as const)]);
        assert.deepEqual(r, { deleted: 100, roots: 100, busy: false });
      } finally {
        await user.query('COMMIT');
        await user.end();
      }
    });
  });

  it('the prune connection terminated by the server mid-statement: nothing half-deleted, the lock is free, the next prune deletes the workflow', async (t) => {
    await withSchema('pg-radv-kill', async (ts, schema) => {
      const s = ts.storage;
      const { id, recorded, stored } = await finishedWorkflow(s);
      assert.equal(recorded, true);
      assert.deepEqual(applied(stored), [true, true]);
      // The prune's delete of signals sleeps in a statement trigger: the statement is caught mid-way.
      // Only the first run sleeps: a sequence is not rolled back with the transaction.
      await pgAdmin(`CREATE SEQUENCE "${schema}".radv_runs`);
      await pgAdmin(
        `CREATE FUNCTION "${schema}".radv_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF nextval('"${schema}".radv_runs') = 1 THEN PERFORM pg_sleep(30); END IF; RETURN NULL; END $$`,
      );
      await pgAdmin(`CREATE TRIGGER radv_slow AFTER DELETE ON "${schema}".sdj_signals FOR EACH STATEMENT EXECUTE FUNCTION "${schema}".radv_slow()`);
      const pruning = settle(s.jobPrune({ olderThanMs: ALL0, limit: 10 }));
      const [backend] = await waitFor(
        async () => {
          const rows = await pgAdmin<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE $1`, [`%${schema}%`]);
          return rows.length > 0 ? rows : undefined;
        },
        { message: 'the prune statement sleeps in the trigger' },
      );
      await pgAdmin('SELECT pg_terminate_backend($1)', [backend!.pid]);
      const out = await pruning;
      t.diagnostic('e' in out ? `the prune rejected: ${String(out.e)}` : `the prune resolved: ${JSON.stringify(out.r)}`);
      const left = await countJobs(schema);
      if ('e' in out) {
        assert.ok(isDurableJobsError(out.e), `a typed error: ${String(out.e)}`);
        assert.equal(left, 2, 'the workflow is whole after the failed prune');
        assert.equal((await s.stepList({ jobId: id })).length, 1, 'its checkpoint too');
      } else {
        assert.deepEqual(out.r, { deleted: 2, roots: 1, busy: false }, 'run again on a new connection');
        assert.equal(left, 0);
      }
      // The pool hands out working connections and the advisory lock went with the session.
      for (let i = 0; i < 6; i++) assert.ok(await s.clockNow());
      const again = await s.jobPrune({ olderThanMs: ALL0, limit: 10 });
      assert.equal(again.busy, false);
      assert.equal(await countJobs(schema), 0);
      assert.deepEqual(await s.stepList({ jobId: id }), []);
    });
  });

  it('a root with 20,000 descendants goes whole in one worker-sized batch (limit 100), with the other due roots', async (t) => {
    await withSchema('pg-radv-wide', async (ts, schema) => {
      const q = `"${schema}"`;
      const { first: r, ms, total } = await pruneWideRoot(ts.storage, 150, 100, async (rootId) => {
        // The children are written straight into history: 20,000 claims and finishes would only slow the test.
        await pgAdmin(
          `INSERT INTO ${q}.sdj_jobs (id, type, queue, status, attempt, run_count, run_at, created_at, completed_at, parent_id)
           SELECT 'kid-' || n, 'kid', 'k', 'completed', 1, 1, 1, 1, 2, $1 FROM generate_series(1, 20000) n`,
          [rootId],
        );
        await pgAdmin(
          `INSERT INTO ${q}.sdj_steps (job_id, step_index, step_name, status, created_at) SELECT 'kid-' || n, 0, 's', 'completed', 1 FROM generate_series(1, 20000) n`,
        );
      });
      t.diagnostic(`one batch: ${JSON.stringify(r)} in ${ms} ms`);
      assert.equal(r.roots, 100);
      assert.equal(r.busy, false);
      assert.equal(total, 20_001 + 150);
      assert.equal(await countJobs(schema), 0);
      assert.equal(Number((await pgAdmin<{ n: string }>(`SELECT count(*) AS n FROM ${q}.sdj_steps`))[0]!.n), 0);
    });
  });
});

// ------------------------------------------------------------------- upgrade from version 1

/** Creates `schema` at version 1 exactly as the migrator would, and records it in the ledger. */
async function createAtVersion1(schema: string): Promise<void> {
  const q = `"${schema}"`;
  await pgAdmin(MIGRATIONS_CREATE_SCHEMA.replaceAll('{s}', q));
  await pgAdmin(MIGRATIONS_CREATE_LEDGER.replaceAll('{s}', q));
  const v1 = MIGRATIONS.find((m) => m.version === 1)!;
  const c = await openClient();
  try {
    await c.query(v1.sql.replaceAll(SCHEMA_PLACEHOLDER, q));
  } finally {
    await c.end();
  }
  await pgAdmin(`INSERT INTO ${q}.sdj_migrations (version, name, applied_at) VALUES (1, $1, 0)`, [v1.name]);
}

/** A version-1 job row: its own queue (the id), defaults, overridden by `o`. */
function v1Row(id: string, status: string, o: Record<string, unknown> = {}): Record<string, unknown> {
  const old = Date.parse('2023-11-14T22:13:20Z');
  const finished = ['completed', 'failed', 'cancelled'].includes(status);
  return {
    id, type: 'mig', queue: id, status, attempt: 0, max_retries: 3, run_count: 0, run_at: old, created_at: old,
    completed_at: finished ? old + 5 : null, unique_key: null, parent_id: null, locked_by: null, lease_expires_at: null,
    heartbeat_at: null, started_at: null, ...o,
  };
}

describe('postgres: retention after an upgrade from version 1', () => {
  it('prunes exactly the old finished workflows with nothing live or recent in them; leased jobs carry on, finish into history and are pruned in turn once past their age', async () => {
    const schema = testSchemaName('pg-radv-upgrade');
    const storages: PostgresStorage[] = [];
    try {
      await createAtVersion1(schema);
      const now = Date.now();
      const lease = (ms: number): Record<string, unknown> => ({ attempt: 1, run_count: 1, locked_by: 'w-old', started_at: now - 60_000, lease_expires_at: now + ms, heartbeat_at: now - 1_000 });
      const rows = [
        v1Row('old-done', 'completed'),
        v1Row('old-failed', 'failed', { attempt: 4, run_count: 4 }),
        v1Row('old-cancelled-key', 'cancelled', { unique_key: 'k' }),
        v1Row('recent-done', 'completed', { completed_at: now - DAY }),
        v1Row('wf-root', 'completed'),
        v1Row('wf-kid', 'completed', { parent_id: 'wf-root' }),
        // A finished root whose child still runs, its lease expired (the worker died).
        v1Row('stuck-root', 'completed'),
        v1Row('stuck-kid', 'running', { parent_id: 'stuck-root', ...lease(-60_000) }),
        // A cancelled root whose child still runs with a live lease.
        v1Row('cx-root', 'cancelled'),
        v1Row('cx-kid', 'running', { parent_id: 'cx-root', ...lease(3_600_000) }),
        v1Row('waiting-parent', 'waiting', { run_count: 1 }),
        v1Row('done-kid', 'completed', { parent_id: 'waiting-parent' }),
        v1Row('run-live', 'running', { ...lease(3_600_000), unique_key: 'k' }),
        v1Row('run-expired', 'running', { ...lease(-60_000), attempt: 4, run_count: 4 }),
        v1Row('pending', 'pending'),
        v1Row('paused', 'paused'),
      ];
      const cols = Object.keys(rows[0]!);
      for (const r of rows) {
        await pgAdmin(`INSERT INTO "${schema}".sdj_jobs (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, cols.map((k) => r[k]));
      }
      for (const id of ['wf-root', 'stuck-root', 'run-live']) {
        await pgAdmin(`INSERT INTO "${schema}".sdj_steps (job_id, step_index, step_name, status, created_at) VALUES ($1, 0, 's', 'completed', 1)`, [id]);
      }
      for (let i = 0; i < 2; i++) storages.push(new PostgresStorage(PG_URL, { schema, max: 4 }));
      await Promise.all(storages.map((x) => x.migrate()));
      const s = storages[0]!;
      const queue = new Queue(s);

      assert.equal(await queue.prune(), 5, 'old-done, old-failed, old-cancelled-key and the workflow of two');
      const ids = (await pgAdmin<{ id: string }>(`SELECT id FROM "${schema}".sdj_jobs ORDER BY id`)).map((r) => r.id);
      assert.deepEqual(ids, ['cx-kid', 'cx-root', 'done-kid', 'paused', 'pending', 'recent-done', 'run-expired', 'run-live', 'stuck-kid', 'stuck-root', 'waiting-parent']);
      assert.deepEqual(await s.stepList({ jobId: 'wf-root' }), []);
      assert.equal((await s.stepList({ jobId: 'stuck-root' })).length, 1, 'a kept workflow keeps its checkpoints');

      const reclaimed = await s.jobReclaimExpired({ limit: 10 });
      assert.deepEqual(reclaimed.map((r) => [r.id, r.status]).sort(), [['run-expired', 'failed'], ['stuck-kid', 'pending']]);
      assert.deepEqual(await s.jobHeartbeat({ workerId: 'w-old', runs: [{ jobId: 'cx-kid', runCount: 1 }], leaseMs: 60_000 }), ['cx-kid']);
      const cx = await s.jobFinishMany({ items: [{ jobId: 'cx-kid', workerId: 'w-old', runCount: 1, outcome: 'completed', resultJson: null }] });
      const stuck = fenceOf(await claimOne(s, 'stuck-kid', 'stuck-kid'));
      const st = await s.jobFinishMany({ items: [{ ...stuck, outcome: 'completed', resultJson: null }] });
      const live = await s.jobFinishMany({ items: [{ jobId: 'run-live', workerId: 'w-old', runCount: 1, outcome: 'completed', resultJson: null }] });
      assert.deepEqual(applied([...cx, ...st, ...live]), [true, true, true]);
      await waitForClockPast(s, Math.max(...[...cx, ...st, ...live].map((t) => t ?? 0)));
      assert.equal(await queue.prune(), 0, 'the two workflows whose running child has just finished wait for that child\'s age');
      assert.equal(await queue.prune({ olderThan: 0 }), 7, 'those two workflows, recent-done, run-expired (failed just now), run-live');
      const partitions = await pgAdmin<{ id: string; part: string; status: string }>(
        `SELECT id, status, (SELECT relname::text FROM pg_class pc WHERE pc.oid = j.tableoid) AS part FROM "${schema}".sdj_jobs j ORDER BY id`,
      );
      assert.deepEqual(
        partitions.map((r) => [r.id, r.status, r.part]),
        [
          ['done-kid', 'completed', 'sdj_jobs_history'],
          ['paused', 'paused', 'sdj_jobs_live'],
          ['pending', 'pending', 'sdj_jobs_live'],
          ['waiting-parent', 'waiting', 'sdj_jobs_live'],
        ],
      );
      assert.equal((await mustGet(s, 'done-kid')).status, 'completed', 'the finished child of a waiting parent is kept');
    } finally {
      for (const x of storages) await x.close();
      await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });
});
