/**
 * SQLite driver: the operator tools beyond the shared conformance suite — the query plans of
 * `jobList`, `jobCount` and `queueSummary` on a table of a few thousand jobs (id-ordered walks,
 * no sort of the matching rows, no completed row read by the summary), the new partial index
 * changing no other statement's plan, a `fromFailedStep` retry of a workflow whose last
 * checkpoint is a failed fan-out, and the bulk actions with every skip reason.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import {
  SKIP_NOT_FOUND,
  SKIP_PARENT_UNFINISHED,
  SKIP_UNFINISHED_SUBJOBS,
  SKIP_UNIQUE_HELD,
  skipNotFinished,
  skipNotRetryable,
} from '../../src/storage/shared/contract-messages.js';
import { MIGRATIONS } from '../../src/storage/sqlite/migrations.generated.js';
import * as bulk from '../../src/storage/sqlite/queries/bulk.js';
import * as fanOut from '../../src/storage/sqlite/queries/fan-out.js';
import * as jobs from '../../src/storage/sqlite/queries/jobs.js';
import { jobCountStatement, jobListStatement, QUEUE_SUMMARY } from '../../src/storage/sqlite/queries/listing.js';
import * as retry from '../../src/storage/sqlite/queries/retry.js';
import * as run from '../../src/storage/sqlite/queries/run.js';
import * as workers from '../../src/storage/sqlite/queries/workers.js';
import * as workflow from '../../src/storage/sqlite/queries/workflow.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import type { BulkSkip, JobFilter, JobListParams } from '../../src/storage/storage.js';
import { expectFanOut, finish } from '../conformance/fan-out-helpers.js';
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
  newId,
  pausedJob,
  runningJob,
  stepRow,
  uniqueName,
  waitingJob,
} from '../helpers/factories.js';
import { removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

/** The storage over a file, with its own `Database` (to plan statements) and a settable clock. */
interface Fixture {
  db: BetterSqlite3.Database;
  s: SqliteStorage;
  clock: { now: number };
  path: string;
}

async function open(label: string): Promise<Fixture> {
  const path = tempSqlitePath(label);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  const clock = { now: 1_800_000_000_000 };
  const s = new SqliteStorage(db, { clock: () => clock.now });
  await s.migrate();
  return { db, s, clock, path };
}

async function close(f: Fixture): Promise<void> {
  await f.s.close();
  f.db.close();
  removeSqliteFiles(f.path);
}

/** The plan of a statement, one detail line per step. */
function planOf(db: BetterSqlite3.Database, sql: string, values: unknown[] | Record<string, unknown>): string[] {
  const st = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const rows = (Array.isArray(values) ? st.all(...values) : st.all(values)) as { detail: string }[];
  return rows.map((r) => r.detail);
}

const sortsRows = (plan: string[]): boolean => plan.some((d) => d.includes('TEMP B-TREE'));

describe('sqlite operations: query plans on a few thousand jobs', () => {
  let f: Fixture;
  before(async () => {
    f = await open('sqlite-ops-plans');
    const q = 'plans';
    // 3000 jobs: most completed, some failed, cancelled, paused, running and pending.
    const all = Array.from({ length: 3_000 }, (_, i) => jobInsert({ queue: q, type: `T${i % 5}`, maxRetries: 0 }));
    await f.s.jobInsertMany({ jobs: all });
    const rows = await claim(f.s, q, 2_800);
    await f.s.jobFinishMany({
      items: rows.map((r, i) => (i % 20 === 0 ? { ...fenceOf(r), outcome: 'failed' as const, error: `E${i}` } : { ...fenceOf(r), outcome: 'completed' as const, resultJson: null })),
    });
    for (const id of all.slice(2_800, 2_820).map((j) => j.id)) await f.s.jobCancel({ id });
    for (const id of all.slice(2_820, 2_830).map((j) => j.id)) await f.s.jobPause({ id });
    await claim(f.s, q, 20);
    await f.s.queueSetPaused({ queue: 'idle', paused: true });
  });
  after(() => close(f));

  const listPlan = (p: JobListParams): string[] => {
    const st = jobListStatement(p);
    return planOf(f.db, st.sql, st.values);
  };

  it('no filter, a search, a type and live statuses walk the primary key in id order (no sort), pages too', () => {
    const cases: JobListParams[] = [
      { limit: 50 },
      { limit: 50, order: 'asc' },
      { limit: 50, afterId: newId() },
      { limit: 50, search: 'e1' },
      { limit: 50, type: 'T1', queue: 'plans' },
      { limit: 50, statuses: ['pending'] },
      { limit: 50, statuses: ['completed'], createdAfter: 0 },
      { limit: 50, statuses: ['running', 'waiting'] },
    ];
    for (const p of cases) {
      const plan = listPlan(p);
      assert.ok(plan.some((d) => d.includes('sqlite_autoindex_sdj_jobs_1')), `${JSON.stringify(p)}: ${plan.join('; ')}`);
      assert.ok(!sortsRows(plan), `${JSON.stringify(p)} sorts: ${plan.join('; ')}`);
    }
  });

  it('failed (or cancelled) jobs are read through sdj_jobs_failed in id order, with or without other filters', () => {
    for (const p of [
      { limit: 50, statuses: ['failed'] },
      { limit: 50, statuses: ['failed'], order: 'asc', afterId: newId() },
      { limit: 50, statuses: ['cancelled'], search: 'timeout' },
      { limit: 50, statuses: ['failed'], queue: 'plans', type: 'T2' },
    ] as JobListParams[]) {
      const plan = listPlan(p);
      assert.ok(plan.some((d) => d.includes('sdj_jobs_failed')), `${JSON.stringify(p)}: ${plan.join('; ')}`);
      assert.ok(!sortsRows(plan), `${JSON.stringify(p)} sorts: ${plan.join('; ')}`);
    }
  });

  it('a parent or fan-out filter reads only those children', () => {
    assert.ok(listPlan({ limit: 10, parentId: newId() }).some((d) => d.includes('sdj_jobs_parent')));
    assert.ok(listPlan({ limit: 10, fanOutId: newId() }).some((d) => d.includes('sdj_jobs_fan_out')));
  });

  it('counts of finished or paused statuses read the covering index sdj_jobs_done only', () => {
    for (const p of [{ statuses: ['failed'] }, { statuses: ['completed', 'cancelled'], queue: 'plans' }] as JobFilter[]) {
      const st = jobCountStatement(p);
      const plan = planOf(f.db, st.sql, st.values);
      assert.ok(plan.some((d) => d.includes('COVERING INDEX sdj_jobs_done')), `${JSON.stringify(p)}: ${plan.join('; ')}`);
    }
  });

  it('queueSummary reads each status through its partial index: no scan of the table', async () => {
    const plan = planOf(f.db, QUEUE_SUMMARY, { now: f.clock.now });
    assert.ok(!plan.some((d) => /^SCAN sdj_jobs$/.test(d.trim())), `a full scan of sdj_jobs: ${plan.join('; ')}`);
    for (const index of ['sdj_jobs_claim', 'sdj_jobs_lease', 'sdj_jobs_wake', 'sdj_jobs_done']) {
      assert.ok(plan.some((d) => d.includes(index)), `${index} not used: ${plan.join('; ')}`);
    }
    assert.equal(plan.filter((d) => d.includes('COVERING INDEX sdj_jobs_done (status=?)')).length, 2, 'paused and failed: one range each');
    const rows = (await f.s.queueSummary()).filter((r) => r.name === 'plans' || r.name === 'idle');
    assert.deepEqual(rows, [
      { name: 'idle', paused: true, pending: 0, running: 0, waiting: 0, pausedJobs: 0, failed: 0, oldestPendingAgeMs: null },
      { name: 'plans', paused: false, pending: 150, running: 20, waiting: 0, pausedJobs: 10, failed: 140, oldestPendingAgeMs: 0 },
    ]);
    assert.equal(await f.s.jobCount({ statuses: ['failed'], queue: 'plans' }), 140);
    assert.equal(await f.s.jobCount({}), 3_000);
  });

  it('sdj_jobs_failed changes the plan of no other statement of the driver', () => {
    const statements = Object.entries({ ...bulk, ...fanOut, ...jobs, ...retry, ...run, ...workers, ...workflow }).filter(
      (e): e is [string, string] => typeof e[1] === 'string' && /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b/i.test(e[1]),
    );
    const plansWith = (dropFailedIndex: boolean): Map<string, string> => {
      const db = new Database(':memory:');
      try {
        for (const m of MIGRATIONS) db.exec(m.sql);
        if (dropFailedIndex) db.exec('DROP INDEX sdj_jobs_failed');
        // Every parameter bound to 'failed': a status bound so could pick the partial index.
        return new Map(
          statements.map(([name, sql]) => {
            const named = [...sql.matchAll(/@(\w+)/g)].map((m) => m[1]!);
            const st = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
            const rows = named.length > 0 ? st.all(Object.fromEntries(named.map((n) => [n, 'failed']))) : st.all(...Array<string>((sql.match(/\?/g) ?? []).length).fill('failed'));
            return [name, (rows as { detail: string }[]).map((r) => r.detail).join(' | ')];
          }),
        );
      } finally {
        db.close();
      }
    };
    assert.ok(statements.length > 20);
    assert.deepEqual(plansWith(false), plansWith(true));
  });
});

/** Skips sorted by id. */
const sorted = (skips: readonly BulkSkip[]): BulkSkip[] => [...skips].sort((a, b) => a.id.localeCompare(b.id));

describe('sqlite operations: retry from the failed step and bulk actions', () => {
  let f: Fixture;
  before(async () => {
    f = await open('sqlite-ops-actions');
  });
  after(() => close(f));

  it('fromFailedStep on a failed fan-out: completed children kept, failed and cancelled ones pending, fan-out running again', async () => {
    const { s, clock } = f;
    const p = await fanOutParent(s, { n: 4, stepIndex: 1, timeoutMs: 30_000, child: { maxRetries: 0 } });
    const [c0, c1] = await claimChildren(s, p);
    await finish(s, c0!, 'completed');
    assert.equal(await s.stepRecord({ fence: c1!, step: stepRow(c1!.jobId, 0) }), true);
    await finish(s, c1!, 'failed');
    await expectFanOut(s, p.fanOutId, { status: 'failed', succeeded: 1, failed: 1, cancelled: 2 });
    const run = await claimOne(s, p.queue, p.parentId);
    await finish(s, fenceOf(run), 'failed');
    const c0Before = await mustGet(s, c0!.jobId);
    clock.now += 5_000;
    await s.jobRetry({ id: p.parentId, fromFailedStep: true });
    const parent = await mustGet(s, p.parentId);
    assert.deepEqual([parent.status, parent.attempt, parent.runAt], ['pending', 0, clock.now]);
    assert.equal((await s.stepList({ jobId: p.parentId })).length, 1, 'the fan-out checkpoint is kept');
    const fan = await expectFanOut(s, p.fanOutId, { status: 'running', decidedAt: null, succeeded: 1, failed: 0, cancelled: 0 });
    assert.equal(fan.deadlineAt, clock.now + 30_000);
    assert.deepEqual(await mustGet(s, c0!.jobId), c0Before);
    for (const id of p.childIds.slice(1)) assert.deepEqual([(await mustGet(s, id)).status, (await mustGet(s, id)).runAt], ['pending', clock.now]);
    assert.deepEqual(await s.stepList({ jobId: c1!.jobId }), [], 'a retried child starts clean');
    // The parent replays into the fan-out and waits; the children finish and wake it.
    const again = await claimOne(s, p.queue, p.parentId);
    assert.equal(await s.jobSuspend({ fence: fenceOf(again), step: null, wakeAt: fan.deadlineAt, waitSignal: null }), true);
    for (const k of await claim(s, p.childQueue, 3)) await finish(s, fenceOf(k), 'completed');
    await expectFanOut(s, p.fanOutId, { status: 'succeeded', succeeded: 4 });
    assert.equal((await mustGet(s, p.parentId)).status, 'pending');
  });

  it('jobRetryMany: every skip reason, and a unique key held skips that job alone', async () => {
    const { s } = f;
    const key = uniqueName('key');
    const held = await failedJob(s, { uniqueKey: key });
    await insertJob(s, { uniqueKey: key, queue: uniqueName('q') });
    const ok = await failedJob(s);
    const cancelled = await cancelledJob(s);
    const pending = await insertJob(s, { queue: uniqueName('q') });
    const done = await completedJob(s);
    const unknown = newId();
    const r = await s.jobRetryMany({ ids: [held.id, ok.id, pending, unknown, done.id, cancelled.id, ok.id] });
    assert.deepEqual(r.done, [ok.id, cancelled.id]);
    assert.deepEqual(
      sorted(r.skipped),
      sorted([
        { id: held.id, reason: SKIP_UNIQUE_HELD },
        { id: pending, reason: skipNotRetryable('pending') },
        { id: unknown, reason: SKIP_NOT_FOUND },
        { id: done.id, reason: skipNotRetryable('completed') },
      ]),
    );
    assert.equal((await mustGet(s, held.id)).status, 'failed');
    // Two failed jobs of one key: the first is retried, the second finds its key held.
    const k2 = uniqueName('key');
    const [x, y] = [await failedJob(s, { uniqueKey: k2 }), await failedJob(s, { uniqueKey: k2 })];
    assert.deepEqual(await s.jobRetryMany({ ids: [x.id, y.id] }), { done: [x.id], skipped: [{ id: y.id, reason: SKIP_UNIQUE_HELD }] });
  });

  it('jobDeleteMany: every skip reason; a deleted subtree takes its checkpoints, signals and fan-outs', async () => {
    const { s } = f;
    // A finished workflow: a parent whose fan-out children completed.
    const p = await fanOutParent(s, { n: 2 });
    for (const k of await claimChildren(s, p)) await finish(s, k, 'completed');
    const run = await claimOne(s, p.queue, p.parentId);
    await s.signalSend({ jobId: p.parentId, name: 'left', payloadJson: null });
    await finish(s, fenceOf(run), 'completed');
    // A live workflow with a finished child; a finished root with a live child.
    const live = await fanOutParent(s, { n: 2, strategy: 'collect-all' });
    const [lk] = await claimChildren(s, live);
    await finish(s, lk!, 'completed');
    const root = await runningJob(s);
    const kid = await insertJob(s, { queue: uniqueName('q'), parentId: root.fence.jobId });
    await finish(s, root.fence, 'completed');
    const waiting = (await waitingJob(s, {}, { waitSignal: 'go' })).row.id;
    const paused = (await pausedJob(s)).id;
    const unknown = newId();
    const ids = [p.parentId, p.childIds[0]!, lk!.jobId, root.fence.jobId, waiting, paused, unknown];
    const r = await s.jobDeleteMany({ ids });
    assert.deepEqual(r.done, [p.parentId, p.childIds[0]!], 'a child of a parent deleted before it in the call counts as done');
    assert.deepEqual(
      sorted(r.skipped),
      sorted([
        { id: lk!.jobId, reason: SKIP_PARENT_UNFINISHED },
        { id: root.fence.jobId, reason: SKIP_UNFINISHED_SUBJOBS },
        { id: waiting, reason: skipNotFinished('waiting') },
        { id: paused, reason: skipNotFinished('paused') },
        { id: unknown, reason: SKIP_NOT_FOUND },
      ]),
    );
    for (const id of [p.parentId, ...p.childIds]) assert.equal(await s.jobGet({ id }), undefined);
    assert.equal(await s.fanOutGet({ id: p.fanOutId }), undefined);
    assert.deepEqual(await s.stepList({ jobId: p.parentId }), []);
    assert.equal(f.db.prepare('SELECT COUNT(*) AS n FROM sdj_signals WHERE job_id = ?').get(p.parentId)?.['n' as never], 0);
    assert.ok(await s.jobGet({ id: kid }));
  });
});
