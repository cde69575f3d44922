/**
 * PostgreSQL: `jobPrune` on a real server, under concurrency. One prune per schema at a time
 * (a second caller is `busy`), several instances pruning at once delete each job once, a root
 * with an unfinished descendant is skipped without using up the limit, rows and fan-outs held by
 * other transactions are skipped (never waited for), a retry of a finished child racing a prune
 * never loses the child, a workflow goes with its checkpoints, signals and fan-outs once every
 * job in it is past its age, and the plan of the due roots keeps its index ranges and probes.
 * Each test runs on a schema of its own: a prune sees every finished job of its schema.
 * @storage postgres
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { InvalidArgumentError, JobNotFoundError } from '../../src/errors.js';
import { pruneLockKey } from '../../src/storage/postgres/retention.js';
import { JOB_PRUNE } from '../../src/storage/postgres/queries/jobs.js';
import type { PgQueryConfig } from '../../src/storage/postgres/connection.js';
import { PostgresStorage, type PgPoolLike } from '../../src/storage/postgres/postgres-storage.js';
import type { JobPruneParams, JobPruneResult, Storage } from '../../src/storage/storage.js';
import {
  claim,
  claimChildren,
  claimOne,
  completedJob,
  failedJob,
  cancelledJob,
  fanOutParent,
  fenceOf,
  insertJob,
  jobInsert,
  mustGet,
  runningJob,
  stepRow,
  uniqueName,
  waitForClockPast,
} from '../helpers/factories.js';
import { openClient, withSchema } from '../helpers/postgres-schema.js';
import { PG_URL, pgAdmin, testSchemaName } from '../helpers/postgres-storage.js';
import { waitFor } from '../helpers/wait-for.js';

/** Every finished status due as soon as it finished (strictly before now). */
const NOW_AGES: JobPruneParams['olderThanMs'] = { completed: 0, failed: 0, cancelled: 0 };

const HOUR = 3_600_000;

/** Ids of the jobs left in a schema. */
async function jobIds(schema: string): Promise<Set<string>> {
  return new Set((await pgAdmin<{ id: string }>(`SELECT id FROM "${schema}".sdj_jobs`)).map((r) => r.id));
}

/** Rows of the workflow tables that belong to the jobs `ids`. */
async function workflowRows(schema: string, ids: readonly string[]): Promise<{ steps: number; signals: number; fanOuts: number }> {
  const n = async (sql: string): Promise<number> => Number((await pgAdmin<{ n: string }>(sql, [ids]))[0]?.n);
  return {
    steps: await n(`SELECT count(*) AS n FROM "${schema}".sdj_steps WHERE job_id = ANY($1::text[])`),
    signals: await n(`SELECT count(*) AS n FROM "${schema}".sdj_signals WHERE job_id = ANY($1::text[])`),
    fanOuts: await n(`SELECT count(*) AS n FROM "${schema}".sdj_fan_outs WHERE parent_id = ANY($1::text[])`),
  };
}

/** A finished root with a child: the root runs, the child is inserted and run to `child`, then the root completes. */
async function rootWithChild(s: Storage, child: 'completed' | 'failed'): Promise<{ rootId: string; childId: string; completedAt: number }> {
  const root = await runningJob(s);
  const childId = await insertJob(s, { queue: uniqueName('kid'), parentId: root.row.id });
  const kid = fenceOf(await claimOne(s, (await mustGet(s, childId)).queue, childId));
  await s.jobFinishMany({ items: [child === 'completed' ? { ...kid, outcome: 'completed', resultJson: null } : { ...kid, outcome: 'failed', error: 'x' }] });
  await s.jobFinishMany({ items: [{ ...root.fence, outcome: 'completed', resultJson: null }] });
  const done = await mustGet(s, root.row.id);
  return { rootId: root.row.id, childId, completedAt: done.completedAt! };
}

/**
 * A finished workflow: a parent whose fan-out of `n` children all completed (each with a
 * checkpoint and a buffered signal), resumed and completed. Returns every id, parent first.
 */
async function finishedWorkflow(s: Storage, n: number): Promise<{ ids: string[]; fanOutId: string; completedAt: number }> {
  const p = await fanOutParent(s, { n, strategy: 'collect-all' });
  const kids = await claimChildren(s, p);
  for (const f of kids) {
    assert.equal(await s.stepRecord({ fence: f, step: stepRow(f.jobId, 0) }), true);
    await s.signalSend({ jobId: f.jobId, name: 'poke', payloadJson: '1' });
  }
  await s.jobFinishMany({ items: kids.map((f) => ({ ...f, outcome: 'completed' as const, resultJson: '1' })) });
  const parent = fenceOf(await claimOne(s, p.queue, p.parentId));
  await s.jobFinishMany({ items: [{ ...parent, outcome: 'completed', resultJson: null }] });
  const done = await mustGet(s, p.parentId);
  return { ids: [p.parentId, ...p.childIds], fanOutId: p.fanOutId, completedAt: done.completedAt! };
}

/** `n` roots finished with `outcome` in one batch each step; returns their ids and the latest completion time. */
async function finishedRoots(s: Storage, n: number, outcome: 'completed' | 'failed'): Promise<{ ids: string[]; completedAt: number }> {
  const queue = uniqueName('q');
  const jobs = Array.from({ length: n }, () => jobInsert({ queue }));
  await s.jobInsertMany({ jobs });
  const rows = await claim(s, queue, n);
  assert.equal(rows.length, n);
  const stored = await s.jobFinishMany({
    items: rows.map((r) => (outcome === 'completed' ? { ...fenceOf(r), outcome, resultJson: null } : { ...fenceOf(r), outcome, error: 'x' })),
  });
  return { ids: jobs.map((j) => j.id), completedAt: Math.max(...stored.map((t) => t ?? 0)) };
}

/** A pool that counts the statements sent through it and its clients. */
function countingPool(): { pool: PgPoolLike; count: () => number } {
  const real = new pg.Pool({ connectionString: PG_URL, max: 2 });
  let n = 0;
  const patched = new WeakSet<object>();
  const pool: PgPoolLike = {
    query: (config: PgQueryConfig) => real.query(config),
    connect: async () => {
      const c = await real.connect();
      if (!patched.has(c)) {
        // The pool's own query() runs on these clients too (with a callback): pass every argument on.
        patched.add(c);
        const client = c as unknown as { query: (...args: unknown[]) => unknown };
        const query = client.query.bind(c);
        client.query = (...args: unknown[]) => {
          n++;
          return query(...args);
        };
      }
      return c;
    },
    end: () => real.end(),
  };
  return { pool, count: () => n };
}

/** Where {@link pausedPrune} makes the prune statement wait: after its snapshot, before it locks anything. */
const PAUSE_AT = 'tree AS (\n  SELECT d.id AS root, d.id, d.status, d.run_count, d.completed_at FROM due d\n';

/**
 * Runs the driver's prune statement (every status due at once, limit 10) on its own connection
 * and transaction, made to sleep between taking its snapshot and locking the subtrees; calls
 * `during` while it sleeps. When the server aborts it with a serialization failure (a row it
 * was about to lock moved to another partition of `sdj_jobs` meanwhile), the transaction runs
 * again without the pause, as the driver's transaction retry does. Returns the statement's
 * result and whether it had to run again.
 */
async function pausedPrune(schema: string, during: () => Promise<void>): Promise<{ deleted: number; roots: number; again: boolean }> {
  assert.ok(JOB_PRUNE.includes(PAUSE_AT), 'the prune statement no longer has the pause point of this test');
  const plain = JOB_PRUNE.replaceAll('{s}', `"${schema}"`);
  const paused = JOB_PRUNE.replace(
    PAUSE_AT,
    `pause AS MATERIALIZED (SELECT pg_sleep(0.3) AS z),\n${PAUSE_AT.replace('FROM due d\n', 'FROM due d WHERE (SELECT count(*) FROM pause) = 1\n')}`,
  ).replaceAll('{s}', `"${schema}"`);
  const c = await openClient();
  const run = async (text: string): Promise<{ deleted: number; roots: number }> => {
    await c.query('BEGIN');
    await c.query('SET LOCAL jit = off');
    const r = (await c.query<{ deleted: string; roots: string }>(text, [null, 0, 0, 0, 10])).rows[0]!;
    await c.query('COMMIT');
    return { deleted: Number(r.deleted), roots: Number(r.roots) };
  };
  try {
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const running = run(paused).then(
      (r) => ({ ...r, again: false }),
      (e: unknown) => e,
    );
    await waitFor(async () => (await pgAdmin('SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = $2', [pid, 'PgSleep'])).length > 0, {
      message: 'the prune statement sleeps',
    });
    await during();
    const first = await running;
    if (!(first instanceof Error)) return first as { deleted: number; roots: number; again: boolean };
    assert.equal((first as Error & { code?: string }).code, '40001', String(first));
    await c.query('ROLLBACK');
    return { ...(await run(plain)), again: true };
  } finally {
    await c.end();
  }
}

/** A node of `EXPLAIN (FORMAT JSON)`. */
interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Subplan Name'?: string;
  Filter?: string;
  Plans?: PlanNode[];
}

/** Every node of a plan tree, each with its ancestors (nearest last). */
function planNodes(n: PlanNode, up: PlanNode[] = []): { node: PlanNode; up: PlanNode[] }[] {
  return [{ node: n, up }, ...(n.Plans ?? []).flatMap((c) => planNodes(c, [...up, n]))];
}

describe('postgres: jobPrune', () => {
  it('is busy while another transaction holds the prune lock, and prunes once it is released', async () => {
    await withSchema('pg-prune-busy', async (ts, schema) => {
      const s = ts.storage;
      const done = await completedJob(s);
      await waitForClockPast(s, done.completedAt!);
      const holder = await openClient();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [pruneLockKey(schema)]);
        const busy: JobPruneResult = { deleted: 0, roots: 0, busy: true };
        assert.deepEqual(await s.jobPrune({ olderThanMs: NOW_AGES, limit: 10 }), busy);
        assert.deepEqual(await (await ts.another()).jobPrune({ olderThanMs: NOW_AGES, limit: 10 }), busy, 'another instance');
        assert.ok(await s.jobGet({ id: done.id }), 'a busy prune deleted a job');
        await holder.query('COMMIT');
      } finally {
        await holder.end();
      }
      assert.deepEqual(await s.jobPrune({ olderThanMs: NOW_AGES, limit: 10 }), { deleted: 1, roots: 1, busy: false });
      assert.equal(await s.jobGet({ id: done.id }), undefined);
    });
  });

  it('takes one transaction of three statements (BEGIN, lock, prune, COMMIT: four round trips), three when busy', async () => {
    const schema = testSchemaName('pg-prune-trips');
    const { pool, count } = countingPool();
    const s = new PostgresStorage(pool, { schema });
    const holder = await openClient();
    try {
      await s.migrate();
      const done = await completedJob(s);
      await waitForClockPast(s, done.completedAt!);
      let before = count();
      assert.deepEqual(await s.jobPrune({ olderThanMs: NOW_AGES, limit: 10 }), { deleted: 1, roots: 1, busy: false });
      assert.equal(count() - before, 4);
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [pruneLockKey(schema)]);
      before = count();
      assert.equal((await s.jobPrune({ olderThanMs: NOW_AGES, limit: 10 })).busy, true);
      assert.equal(count() - before, 3);
      before = count();
      assert.deepEqual(await s.jobPrune({ olderThanMs: { completed: null, failed: null, cancelled: null }, limit: 10 }), { deleted: 0, roots: 0, busy: false });
      assert.equal(count() - before, 0, 'every status kept: no statement');
    } finally {
      await holder.end();
      await s.close();
      await pool.end();
      await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });

  it('deletes the oldest due roots first, at most limit per call, by the age of each status', async () => {
    await withSchema('pg-prune-limit', async (ts) => {
      const s = ts.storage;
      const old: string[] = [];
      for (let i = 0; i < 5; i++) old.push((await completedJob(s)).id);
      const failed = await failedJob(s);
      const cancelled = await cancelledJob(s);
      const live = await insertJob(s, { queue: uniqueName('q') });
      await waitForClockPast(s, Math.max(failed.completedAt!, cancelled.completedAt!));
      // Failed jobs kept forever, cancelled ones for an hour: only the completed roots are due.
      const ages = { completed: 0, failed: null, cancelled: HOUR };
      assert.deepEqual(await s.jobPrune({ olderThanMs: ages, limit: 2 }), { deleted: 2, roots: 2, busy: false });
      assert.deepEqual(await Promise.all(old.map(async (id) => (await s.jobGet({ id })) !== undefined)), [false, false, true, true, true], 'oldest first');
      assert.deepEqual(await s.jobPrune({ olderThanMs: ages, limit: 2 }), { deleted: 2, roots: 2, busy: false });
      assert.deepEqual(await s.jobPrune({ olderThanMs: ages, limit: 2 }), { deleted: 1, roots: 1, busy: false }, 'fewer than limit: nothing else due');
      assert.deepEqual(await s.jobPrune({ olderThanMs: ages, limit: 2 }), { deleted: 0, roots: 0, busy: false });
      for (const id of [failed.id, cancelled.id, live]) assert.ok(await s.jobGet({ id }), `${id} was pruned`);
      assert.deepEqual(await s.jobPrune({ olderThanMs: { completed: HOUR, failed: 0, cancelled: 0 }, limit: 10 }), { deleted: 2, roots: 2, busy: false });
      assert.equal((await mustGet(s, live)).status, 'pending', 'a live job is never pruned');
    });
  });

  it('deletes a workflow with its checkpoints, signals and fan-outs, and nothing of a workflow not due', async () => {
    await withSchema('pg-prune-workflow', async (ts, schema) => {
      const s = ts.storage;
      const due = await finishedWorkflow(s, 3);
      const kept = await finishedWorkflow(s, 2);
      await waitForClockPast(s, kept.completedAt);
      // The kept workflow completed later: an age between the two keeps it. Each job counts:
      // the root alone past the age is not enough, its children must be too.
      const age = (ids: readonly string[]) => pgAdmin(`UPDATE "${schema}".sdj_jobs SET completed_at = completed_at - $2::bigint WHERE id = ANY($1::text[])`, [ids, 2 * HOUR]);
      const ages = { completed: HOUR, failed: 0, cancelled: 0 };
      await age(due.ids.slice(0, 1));
      assert.deepEqual(await s.jobPrune({ olderThanMs: ages, limit: 10 }), { deleted: 0, roots: 0, busy: false }, 'children younger than the age');
      await age(due.ids.slice(1));
      const before = await workflowRows(schema, due.ids);
      assert.deepEqual(before, { steps: 4, signals: 3, fanOuts: 1 }, 'the workflow has a checkpoint per job, a signal per child and its fan-out');
      const keptBefore = await workflowRows(schema, kept.ids);
      assert.deepEqual(await s.jobPrune({ olderThanMs: ages, limit: 10 }), { deleted: 4, roots: 1, busy: false });
      const left = await jobIds(schema);
      assert.deepEqual(due.ids.filter((id) => left.has(id)), [], 'jobs of the pruned workflow left');
      assert.deepEqual(await workflowRows(schema, due.ids), { steps: 0, signals: 0, fanOuts: 0 });
      assert.equal(await s.fanOutGet({ id: due.fanOutId }), undefined);
      assert.deepEqual(kept.ids.filter((id) => !left.has(id)), [], 'jobs of the kept workflow pruned');
      assert.deepEqual(await workflowRows(schema, kept.ids), keptBefore);
    });
  });

  it('skips a root with a running child or grandchild without using up the limit, and prunes it once all finished', async () => {
    await withSchema('pg-prune-live-child', async (ts) => {
      const s = ts.storage;
      // Oldest: a completed root whose child still runs.
      const r1 = await runningJob(s);
      const c1 = await runningJob(s, { parentId: r1.row.id });
      await s.jobFinishMany({ items: [{ ...r1.fence, outcome: 'completed', resultJson: null }] });
      // Then: a completed root and child whose grandchild still runs.
      const r2 = await runningJob(s);
      const c2 = await runningJob(s, { parentId: r2.row.id });
      const g2 = await runningJob(s, { parentId: c2.row.id });
      await s.jobFinishMany({ items: [{ ...c2.fence, outcome: 'completed', resultJson: null }] });
      await s.jobFinishMany({ items: [{ ...r2.fence, outcome: 'completed', resultJson: null }] });
      // Newest: a plain completed root.
      const r3 = await completedJob(s);
      await waitForClockPast(s, r3.completedAt!);
      assert.deepEqual(await s.jobPrune({ olderThanMs: NOW_AGES, limit: 1 }), { deleted: 1, roots: 1, busy: false }, 'the blocked roots did not use up the limit');
      assert.equal(await s.jobGet({ id: r3.id }), undefined);
      assert.deepEqual(await s.jobPrune({ olderThanMs: NOW_AGES, limit: 10 }), { deleted: 0, roots: 0, busy: false });
      for (const id of [r1.row.id, c1.row.id, r2.row.id, c2.row.id, g2.row.id]) assert.ok(await s.jobGet({ id }), `${id} was pruned`);
      const stored = await s.jobFinishMany({
        items: [
          { ...c1.fence, outcome: 'completed', resultJson: null },
          { ...g2.fence, outcome: 'failed', error: 'x' },
        ],
      });
      await waitForClockPast(s, Math.max(...stored.map((t) => t ?? 0)));
      assert.deepEqual(await s.jobPrune({ olderThanMs: NOW_AGES, limit: 10 }), { deleted: 5, roots: 2, busy: false });
    });
  });

  it('skips, without waiting, a root whose row, subtree row or fan-out another transaction holds', async () => {
    await withSchema('pg-prune-held', async (ts, schema) => {
      const s = ts.storage;
      const wf = await finishedWorkflow(s, 2);
      await waitForClockPast(s, wf.completedAt);
      const holds = [
        ['the root', `SELECT id FROM "${schema}".sdj_jobs WHERE id = $1 FOR UPDATE`, wf.ids[0]],
        ['a child', `SELECT id FROM "${schema}".sdj_jobs WHERE id = $1 FOR UPDATE`, wf.ids[2]],
        ['a child (shared lock)', `SELECT id FROM "${schema}".sdj_jobs WHERE id = $1 FOR KEY SHARE`, wf.ids[1]],
        ['the fan-out', `SELECT id FROM "${schema}".sdj_fan_outs WHERE id = $1 FOR UPDATE`, wf.fanOutId],
      ] as const;
      const holder = await openClient();
      try {
        for (const [what, sql, id] of holds) {
          await holder.query('BEGIN');
          assert.equal((await holder.query(sql, [id])).rowCount, 1);
          assert.deepEqual(await s.jobPrune({ olderThanMs: NOW_AGES, limit: 10 }), { deleted: 0, roots: 0, busy: false }, `pruned while ${what} was held`);
          await holder.query('ROLLBACK');
        }
      } finally {
        await holder.end();
      }
      assert.deepEqual(await s.jobPrune({ olderThanMs: NOW_AGES, limit: 10 }), { deleted: 3, roots: 1, busy: false });
      assert.deepEqual(await workflowRows(schema, wf.ids), { steps: 0, signals: 0, fanOuts: 0 });
    });
  });

  it('4 instances pruning at once delete every job exactly once', async () => {
    await withSchema('pg-prune-race', async (ts, schema) => {
      const s = ts.storage;
      const a = await finishedRoots(s, 120, 'completed');
      const b = await finishedRoots(s, 40, 'failed');
      const workflows = [];
      for (let i = 0; i < 6; i++) workflows.push(await finishedWorkflow(s, 3));
      const total = a.ids.length + b.ids.length + workflows.length * 4;
      const roots = a.ids.length + b.ids.length + workflows.length;
      await waitForClockPast(s, Math.max(a.completedAt, b.completedAt, ...workflows.map((w) => w.completedAt)));
      const limit = 7;
      const pruners = await Promise.all([0, 1, 2, 3].map(() => ts.another()));
      const results: JobPruneResult[] = [];
      await Promise.all(
        pruners.map(async (p) => {
          for (let calls = 0; calls < 5_000; calls++) {
            const r = await p.jobPrune({ olderThanMs: NOW_AGES, limit });
            results.push(r);
            if (!r.busy && r.roots < limit) return;
          }
          assert.fail('a pruner never saw the end');
        }),
      );
      assert.equal(results.filter((r) => r.roots > limit).length, 0, 'a call exceeded its limit');
      assert.equal(results.filter((r) => r.busy && (r.deleted > 0 || r.roots > 0)).length, 0, 'a busy call deleted');
      assert.equal(results.reduce((n, r) => n + r.deleted, 0), total, 'jobs deleted, summed over every call');
      assert.equal(results.reduce((n, r) => n + r.roots, 0), roots, 'roots deleted, summed over every call');
      assert.equal((await jobIds(schema)).size, 0);
      assert.deepEqual(await workflowRows(schema, workflows.flatMap((w) => w.ids)), { steps: 0, signals: 0, fanOuts: 0 });
    });
  });

  it('a retry of a finished child racing a prune never loses the child (30 rounds)', async (t) => {
    await withSchema('pg-prune-retry-race', async (ts) => {
      const s = ts.storage;
      const pruner = await ts.another();
      const retrier = await ts.another();
      const outcomes = { pruned: 0, retried: 0 };
      for (let round = 0; round < 30; round++) {
        const wf = await rootWithChild(s, 'failed');
        await waitForClockPast(s, wf.completedAt);
        const [prune, retry] = await Promise.allSettled(
          round % 2 === 0
            ? [pruner.jobPrune({ olderThanMs: NOW_AGES, limit: 10 }), retrier.jobRetry({ id: wf.childId })]
            : [Promise.resolve().then(() => pruner.jobPrune({ olderThanMs: NOW_AGES, limit: 10 })), retrier.jobRetry({ id: wf.childId })],
        );
        assert.equal(prune.status, 'fulfilled', `round ${round}: prune failed: ${prune.status === 'rejected' ? String(prune.reason) : ''}`);
        const root = await s.jobGet({ id: wf.rootId });
        const child = await s.jobGet({ id: wf.childId });
        if (retry.status === 'fulfilled') {
          outcomes.retried++;
          assert.equal(child?.status, 'pending', `round ${round}: the retried child was lost`);
          assert.ok(root, `round ${round}: the root of a live child was pruned`);
          // The root stays blocked by its pending child in later rounds: only each round's root is due.
          assert.deepEqual(prune.value, { deleted: 0, roots: 0, busy: false }, `round ${round}`);
        } else {
          outcomes.pruned++;
          assert.ok(retry.reason instanceof JobNotFoundError, `round ${round}: retry failed with ${String(retry.reason)}`);
          assert.equal(root, undefined, `round ${round}`);
          assert.equal(child, undefined, `round ${round}`);
          assert.deepEqual(prune.value, { deleted: 2, roots: 1, busy: false }, `round ${round}`);
        }
      }
      assert.equal(outcomes.pruned + outcomes.retried, 30);
      t.diagnostic(`prune first: ${outcomes.pruned} rounds, retry first: ${outcomes.retried} rounds`);
    });
  });

  it('leaves a workflow whose child was retried, or retried and run again, after the prune took its snapshot', async (t) => {
    await withSchema('pg-prune-snapshot', async (ts, schema) => {
      const s = ts.storage;
      // Control: nothing happens during the pause, the workflow goes.
      const control = await rootWithChild(s, 'failed');
      await waitForClockPast(s, control.completedAt);
      assert.deepEqual(await pausedPrune(schema, async () => {}), { deleted: 2, roots: 1, again: false });

      // Retried: back to pending (the workflow stays blocked by it, not due, for the rest of the test).
      const retried = await rootWithChild(s, 'failed');
      await waitForClockPast(s, retried.completedAt);
      const r1 = await pausedPrune(schema, () => s.jobRetry({ id: retried.childId }));
      assert.deepEqual({ ...r1, again: undefined }, { deleted: 0, roots: 0, again: undefined });
      assert.equal((await mustGet(s, retried.childId)).status, 'pending');
      assert.ok(await s.jobGet({ id: retried.rootId }));

      // Retried, run and failed again: finished as in the snapshot, but not the same run.
      const rerun = await rootWithChild(s, 'failed');
      await waitForClockPast(s, rerun.completedAt);
      const r2 = await pausedPrune(schema, async () => {
        await s.jobRetry({ id: rerun.childId });
        const f = fenceOf(await claimOne(s, (await mustGet(s, rerun.childId)).queue, rerun.childId));
        await s.jobFinishMany({ items: [{ ...f, outcome: 'failed', error: 'again' }] });
      });
      if (r2.again) {
        // Run again in a fresh snapshot, the workflow was whole and finished: it may go.
        assert.deepEqual(r2, { deleted: 2, roots: 1, again: true });
      } else {
        assert.deepEqual(r2, { deleted: 0, roots: 0, again: false });
        assert.equal((await mustGet(s, rerun.childId)).lastError, 'again');
      }
      t.diagnostic(`aborted by the server and run again: retry ${r1.again}, rerun ${r2.again}`);
    });
  });

  it('plans the due roots as one range of sdj_jobs_prune per status, without a full sort, and walks each subtree through the parent indexes', async () => {
    await withSchema('pg-prune-plan', async (_ts, schema) => {
      const q = `"${schema}"`;
      // Rows written straight into the table, then analyzed: finished roots of each status, workflows
      // of four children, live jobs (a tenth of them below finished roots).
      const insert = (select: string) =>
        pgAdmin(`INSERT INTO ${q}.sdj_jobs (id, type, queue, status, attempt, run_count, run_at, created_at, completed_at, parent_id) ${select}`);
      await insert(`SELECT 'c-' || n, 't', 'q', 'completed', 1, 1, 1, 1, n, NULL FROM generate_series(1, 20000) n`);
      await insert(`SELECT 'f-' || n, 't', 'q', 'failed', 1, 1, 1, 1, n, NULL FROM generate_series(1, 3000) n`);
      await insert(`SELECT 'x-' || n, 't', 'q', 'cancelled', 1, 1, 1, 1, n, NULL FROM generate_series(1, 2000) n`);
      await insert(`SELECT 'w-' || n || '-' || k, 't', 'q', 'failed', 1, 1, 1, 1, n, 'c-' || n FROM generate_series(1, 2000) n, generate_series(1, 4) k`);
      await insert(`SELECT 'p-' || n, 't', 'q', 'pending', 0, 0, 1, 1, NULL, CASE WHEN n % 10 = 0 THEN 'c-' || n END FROM generate_series(1, 3000) n`);
      await pgAdmin(`ANALYZE ${q}.sdj_jobs`);
      const [row] = await pgAdmin<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${JOB_PRUNE.replaceAll('{s}', q)}`, [null, HOUR, 0, 0, 500]);
      const due = planNodes(row!['QUERY PLAN'][0].Plan).find((n) => n.node['Subplan Name'] === 'CTE due')?.node;
      assert.ok(due, 'the due CTE is planned on its own');
      const nodes = planNodes(due);
      const types = new Set(nodes.map((n) => n.node['Node Type']));
      for (const t of ['Seq Scan', 'Hash', 'Hash Join', 'Merge Join']) assert.ok(!types.has(t), `${t} in the due part: ${JSON.stringify(due)}`);
      assert.deepEqual(nodes.filter((n) => /hashed/.test(n.node.Filter ?? '')), [], 'the subtree check runs per root read, not hashed over every job');
      const ranges = nodes.filter((n) => n.node['Index Name'] === 'sdj_jobs_prune');
      assert.deepEqual(
        ranges.map((n) => /status = '(\w+)'/.exec(n.node['Index Cond'] ?? '')?.[1]),
        ['completed', 'failed', 'cancelled'],
        'one index range per status',
      );
      for (const r of ranges) {
        const fence = r.up.map((n) => n['Node Type']).lastIndexOf('Limit');
        assert.ok(fence >= 0, 'each status is limited on its own');
        assert.ok(!r.up.slice(fence).some((n) => n['Node Type'] === 'Sort'), 'the due rows of a status are read in order, not sorted whole');
      }
      const probes = nodes.filter((n) => /^sdj_jobs_(history|live)_parent$/.test(n.node['Index Name'] ?? '') && /^\(parent_id = \w+\.id\)$/.test(n.node['Index Cond'] ?? ''));
      assert.equal(probes.length, 12, 'per status: the children and each deeper level, in both partitions, are probes of the parent indexes');
    });
  });

  it('rejects a negative or non-finite age with InvalidArgumentError and deletes nothing', async () => {
    await withSchema('pg-prune-bad', async (ts) => {
      const s = ts.storage;
      const done = await completedJob(s);
      await waitForClockPast(s, done.completedAt!);
      for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
        await assert.rejects(s.jobPrune({ olderThanMs: { completed: 0, failed: bad, cancelled: 0 }, limit: 10 }), InvalidArgumentError, String(bad));
      }
      await assert.rejects(s.jobPrune({ olderThanMs: NOW_AGES, limit: 1.5 }), InvalidArgumentError);
      assert.ok(await s.jobGet({ id: done.id }));
    });
  });
});
