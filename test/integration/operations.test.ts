/**
 * The operations API on `Queue`, on every driver: `listJobs` (filters, keyset pages that stay
 * exact while a worker finishes jobs and new ones arrive between pages, every bad filter
 * refused), the bulk actions (`retryJobs` of 10,000 failed jobs in batches with progress while
 * a worker on another queue keeps going, `cancelJobs`, `deleteJobs`, `deleteJob`, with every
 * refusal and skip reason) and `queues()` (counts, paused flag, oldest due pending age).
 *
 * Skips that need a job to change between a bulk action's listing and its batch are made
 * exact with a storage wrapper that changes the job right before the batch's call.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { InvalidArgumentError, InvalidStateError, JobNotFoundError } from '../../src/errors.js';
import type { Storage } from '../../src/storage/storage.js';
import {
  SKIP_ALREADY_FINISHED,
  SKIP_PARENT_UNFINISHED,
  SKIP_UNFINISHED_SUBJOBS,
  SKIP_UNIQUE_HELD,
  skipNotFinished,
} from '../../src/storage/shared/contract-messages.js';
import type { Job, JobStatus } from '../../src/types.js';
import type { BulkProgress, ListJobsOptions } from '../../src/queue/operator-types.js';
import { sub } from '../../src/workflow/fan-out.js';
import {
  applied,
  cancelledJob,
  claim,
  claimChildren,
  completedJob,
  failedJob,
  fanOutParent,
  fenceOf,
  insertJob,
  jobInsert,
  newId,
  pausedJob,
  runningJob,
  uniqueName,
  waitForClockPast,
} from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** A name without `_` (a LIKE wildcard), unique in the run. */
function tagName(prefix: string): string {
  return uniqueName(prefix).replace(/_/g, '');
}

/** Handler permits: a handler takes one before finishing, so the test decides how many jobs finish and when. */
class Permits {
  #left = 0;
  #unlimited = false;
  readonly #waiters: (() => void)[] = [];
  /** Lets `n` more handlers through. */
  give(n: number): void {
    this.#left += n;
    this.#drain();
  }
  /** Lets every handler through from now on. */
  openAll(): void {
    this.#unlimited = true;
    this.#drain();
  }
  /** Resolves once a permit is available (and takes it). */
  take(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#drain();
    });
  }
  #drain(): void {
    while (this.#waiters.length > 0 && (this.#unlimited || this.#left > 0)) {
      if (!this.#unlimited) this.#left--;
      this.#waiters.shift()!();
    }
  }
}

/**
 * A storage that forwards every call to `inner`, except that before each call of `method`,
 * `hook(params)` runs first (on `inner`, so the hook's own calls are not intercepted).
 */
function interceptBefore(inner: Storage, method: keyof Storage, hook: (params: unknown) => Promise<void>): Storage {
  return new Proxy(inner, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      if (prop !== method) return fn;
      return async (params: unknown) => {
        await hook(params);
        return fn(params);
      };
    },
  });
}

/** Every job matching `options`, walking pages of `pageSize`. */
async function listAll(queue: Queue, options: ListJobsOptions, pageSize = 500): Promise<Job[]> {
  const out: Job[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await queue.listJobs({ ...options, limit: pageSize, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...page.jobs);
    if (page.nextCursor === undefined) return out;
    cursor = page.nextCursor;
  }
}

const sorted = (ids: readonly string[]): string[] => [...ids].sort();
const idsOf = (jobs: readonly Job[]): string[] => sorted(jobs.map((j) => j.id));

for (const [name, make] of storageMatrix()) {
  describe(`operations API (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`operations-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('listJobs pages stay exact while a worker finishes jobs and new ones arrive between pages', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('page');
      const type = uniqueName('page-job');
      const permits = new Permits();
      let finished = 0;
      queue.register(type, async (a: { i: number; fail: boolean }) => {
        await permits.take();
        if (a.fail) throw new Error(`page job ${a.i} failed`);
        return a.i;
      });
      queue.onJobComplete((j) => void (j.queue === q && finished++));
      queue.onJobFail((j) => void (j.queue === q && finished++));
      const ids = await queue.enqueueBatch(Array.from({ length: 73 }, (_, i) => ({ type, args: { i, fail: i % 4 === 0 }, options: { queue: q, retries: 0 } })));
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } } });
      let extra = 0;
      /** Between two pages: a new job arrives and `n` jobs finish. */
      const churn = async (n: number): Promise<void> => {
        await queue.enqueue(type, { i: 1000 + extra++, fail: false }, { queue: q, retries: 0 });
        const target = finished + n;
        permits.give(n);
        await waitFor(() => finished >= target, { message: `${target} jobs finished` });
      };
      try {
        // Newest first, every status: the jobs that existed before the walk, each exactly once.
        const before = new Map((await listAll(queue, { queue: q })).map((j) => [j.id, j.status]));
        assert.deepEqual(sorted([...before.keys()]), sorted(ids));
        const seen: Job[] = [];
        let cursor: string | undefined;
        let pages = 0;
        for (;;) {
          const page = await queue.listJobs({ queue: q, limit: 7, ...(cursor === undefined ? {} : { cursor }) });
          pages++;
          assert.ok(page.jobs.length <= 7, `page ${pages} holds ${page.jobs.length} jobs`);
          seen.push(...page.jobs);
          if (page.nextCursor === undefined) break;
          assert.equal(page.jobs.length, 7, 'only the last page is short');
          cursor = page.nextCursor;
          await churn(3);
        }
        assert.equal(pages, Math.ceil(73 / 7));
        const seenIds = seen.map((j) => j.id);
        assert.equal(new Set(seenIds).size, seenIds.length, 'no job shown twice');
        assert.deepEqual(sorted(seenIds), sorted(ids), 'every job that existed before the walk, and no other');
        for (let i = 1; i < seen.length; i++) {
          assert.ok(seen[i - 1]!.id > seen[i]!.id, 'newest first');
          assert.ok(seen[i - 1]!.createdAt.getTime() >= seen[i]!.createdAt.getTime(), 'createdAt not increasing');
        }
        const changed = seen.filter((j) => j.status !== before.get(j.id));
        assert.ok(changed.length >= 10, `jobs did change state during the walk (${changed.length} changed)`);
        const statuses = new Set(seen.map((j) => j.status));
        for (const s of ['pending', 'completed', 'failed'] as const) assert.ok(statuses.has(s), `the walk saw a ${s} job`);

        // Oldest first, only live jobs, while they leave that status: no job twice, each shown
        // in a matching status, and every job live before and after the walk is shown.
        const live: JobStatus[] = ['pending', 'running'];
        const liveBefore = new Set((await listAll(queue, { queue: q, status: live })).map((j) => j.id));
        const ascSeen: Job[] = [];
        cursor = undefined;
        for (;;) {
          const page = await queue.listJobs({ queue: q, status: live, order: 'asc', limit: 7, ...(cursor === undefined ? {} : { cursor }) });
          ascSeen.push(...page.jobs);
          if (page.nextCursor === undefined) break;
          cursor = page.nextCursor;
          await churn(2);
        }
        const ascIds = ascSeen.map((j) => j.id);
        assert.equal(new Set(ascIds).size, ascIds.length, 'no job shown twice (asc)');
        for (let i = 1; i < ascIds.length; i++) assert.ok(ascIds[i - 1]! < ascIds[i]!, 'oldest first');
        assert.ok(ascSeen.every((j) => live.includes(j.status)), 'each shown job matched the status filter when read');
        const liveAfter = new Set((await listAll(queue, { queue: q, status: live })).map((j) => j.id));
        const stayed = [...liveBefore].filter((id) => liveAfter.has(id));
        assert.ok(stayed.length > 0, 'some jobs stayed live through the walk');
        for (const id of stayed) assert.ok(ascIds.includes(id), `job ${id}, live all along, was shown`);
      } finally {
        permits.openAll();
        await w.stop();
      }
    });

    it('listJobs filters: status (one or several), queue, type, tenant, parentId, search, created range, order', async () => {
      const s = ts.storage;
      const queue = new Queue(s);
      const tag = tagName('f');
      const qa = `qa${tag}`;
      const qb = `qb${tag}`;
      const typeA = `MailSend${tag}`;
      const typeB = `Report${tag}`;
      const t1 = `t1${tag}`;
      const t2 = `t2${tag}`;
      const qr = `qr${tag}`;
      // Group A. Jobs claimed from qa get a priority above its pending job.
      const a1 = await insertJob(s, { queue: qa, type: typeA, tenant: t1 });
      const a2 = (await failedJob(s, { queue: qa, type: typeA, tenant: t2, priority: 5 }, `SMTP TimeOut-${tag} after 30s`)).id;
      const a3 = (await completedJob(s, { queue: qb, type: typeB, tenant: t1 })).id;
      const a4 = (await cancelledJob(s, { queue: qb, type: typeA })).id;
      const groupA = [a1, a2, a3, a4];
      const aRows = await Promise.all(groupA.map((id) => queue.getJob(id)));
      const lastA = Math.max(...aRows.map((j) => j!.createdAt.getTime()));
      await waitForClockPast(s, lastA + 1);
      // Group B, created strictly later.
      const b1 = (await failedJob(s, { queue: qb, type: typeB, tenant: t1 }, 'connection refused (50% of pool)')).id;
      const b2 = (await runningJob(s, { queue: qr, type: typeB })).row.id;
      const b3 = (await failedJob(s, { queue: qa, type: typeA, priority: 5 }, `timeout-${tag}: upstream`)).id;
      const b4 = (await pausedJob(s, { queue: qa, type: typeA })).id;
      const groupB = [b1, b2, b3, b4];
      const bRows = await Promise.all(groupB.map((id) => queue.getJob(id)));
      const firstB = Math.min(...bRows.map((j) => j!.createdAt.getTime()));
      assert.ok(firstB > lastA, 'group B was created after group A');
      const all = [...groupA, ...groupB];

      const ids = async (o: ListJobsOptions): Promise<string[]> => idsOf(await listAll(queue, o));
      assert.deepEqual(await ids({ queue: qa }), sorted([a1, a2, b3, b4]));
      assert.deepEqual(await ids({ queue: qa, status: 'failed' }), sorted([a2, b3]));
      assert.deepEqual(await ids({ queue: qa, status: ['failed', 'paused'] }), sorted([a2, b3, b4]));
      assert.deepEqual(await ids({ queue: qr, status: ['running'] }), [b2]);
      assert.deepEqual(await ids({ queue: qa, status: ['running', 'waiting'] }), []);
      assert.deepEqual(await ids({ queue: qb }), sorted([a3, a4, b1]));
      assert.deepEqual(await ids({ type: typeB }), sorted([a3, b1, b2]));
      assert.deepEqual(await ids({ tenant: t1 }), sorted([a1, a3, b1]));
      assert.deepEqual(await ids({ queue: qa, type: typeA, status: 'failed', tenant: t2 }), [a2], 'every field must match');
      assert.deepEqual(await ids({ queue: qa, type: typeB, status: 'failed' }), []);
      // Search: a substring of the last error or of the type, case-insensitive, literal.
      assert.deepEqual(await ids({ search: `TIMEOUT-${tag}` }), sorted([a2, b3]));
      assert.deepEqual(await ids({ search: `port${tag.toUpperCase()}` }), sorted([a3, b1, b2]), 'a substring of the type');
      assert.deepEqual(await ids({ search: tag }), sorted(all));
      assert.deepEqual(await ids({ search: '50%', queue: qb }), [b1], 'a % is taken literally');
      assert.deepEqual(await ids({ search: '%', queue: qa }), [], 'a % is not a wildcard');
      // Creation instants, strict bounds.
      assert.deepEqual(await ids({ search: tag, createdAfter: new Date(lastA) }), sorted(groupB));
      assert.deepEqual(await ids({ search: tag, createdBefore: new Date(firstB) }), sorted(groupA));
      const created = [...aRows, ...bRows].map((j) => j!.createdAt.getTime());
      const lo = Math.min(...created);
      const hi = Math.max(...created);
      const inside = [...aRows, ...bRows].filter((j) => j!.createdAt.getTime() > lo && j!.createdAt.getTime() < hi).map((j) => j!.id);
      assert.deepEqual(await ids({ search: tag, createdAfter: new Date(lo), createdBefore: new Date(hi) }), sorted(inside));
      assert.deepEqual(await ids({ search: tag, createdAfter: new Date(hi) }), []);
      // Order and pages.
      const desc = (await listAll(queue, { search: tag }, 3)).map((j) => j.id);
      const asc = (await listAll(queue, { search: tag, order: 'asc' }, 3)).map((j) => j.id);
      assert.deepEqual(desc, [...all].sort().reverse());
      assert.deepEqual(asc, [...all].sort());
      const first = await queue.listJobs({ search: tag, limit: 8 });
      assert.equal(first.jobs.length, 8);
      assert.equal(first.nextCursor, undefined, 'no cursor when the page holds the last job');
      const page = await queue.listJobs({ search: tag });
      assert.equal(page.jobs.length, 8, 'default limit (50) holds them all');
      // parentId: a fan-out's sub-jobs.
      const fo = await fanOutParent(s, { n: 3 }, { queue: qa, priority: 10 });
      assert.deepEqual(await ids({ parentId: fo.parentId }), sorted(fo.childIds));
      assert.deepEqual(await ids({ parentId: fo.parentId, status: 'running' }), []);
      assert.deepEqual(await ids({ parentId: newId() }), []);
      // A listed job is a full Job.
      const [failedA2] = (await queue.listJobs({ queue: qa, tenant: t2 })).jobs;
      assert.equal(failedA2?.lastError, `SMTP TimeOut-${tag} after 30s`);
      assert.equal(failedA2?.type, typeA);
      assert.equal(failedA2?.tenant, t2);
    });

    it('listJobs refuses bad filters, limits and cursors with InvalidArgumentError', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('bad');
      await queue.enqueue('x', {}, { queue: q });
      await queue.enqueue('x', {}, { queue: q });
      const descPage = await queue.listJobs({ queue: q, limit: 1 });
      const ascPage = await queue.listJobs({ queue: q, limit: 1, order: 'asc' });
      assert.ok(descPage.nextCursor && ascPage.nextCursor);
      const bad: [string, unknown][] = [
        ['limit 0', { limit: 0 }],
        ['limit 501', { limit: 501 }],
        ['limit 1.5', { limit: 1.5 }],
        ['limit as text', { limit: '10' }],
        ['unknown status', { status: 'done' }],
        ['empty status list', { status: [] }],
        ['a bad status in a list', { status: ['failed', 'nope'] }],
        ['bad queue name', { queue: 'no spaces allowed' }],
        ['empty type', { type: '' }],
        ['empty tenant', { tenant: '' }],
        ['empty search', { search: '' }],
        ['search longer than 255', { search: 'x'.repeat(256) }],
        ['createdAfter as text', { createdAfter: '2024-01-01' }],
        ['invalid createdBefore', { createdBefore: new Date('nope') }],
        ['unknown order', { order: 'newest' }],
        ['unknown option', { state: 'failed' }],
        ['options not an object', 'failed'],
        ['empty cursor', { cursor: '' }],
        ['cursor not base64url', { cursor: 'not a cursor!' }],
        ['cursor of nothing', { cursor: Buffer.from('hello', 'utf8').toString('base64url') }],
        ['cursor with a tampered order', { cursor: Buffer.from(`up.${newId()}`, 'utf8').toString('base64url') }],
        ['cursor with no id', { cursor: Buffer.from('desc.', 'utf8').toString('base64url') }],
        ['a desc cursor in asc order', { order: 'asc', cursor: descPage.nextCursor }],
        ['an asc cursor in desc order', { cursor: ascPage.nextCursor }],
        ['cursor as a number', { cursor: 7 }],
      ];
      for (const [what, options] of bad) {
        await assert.rejects(queue.listJobs(options as ListJobsOptions), InvalidArgumentError, what);
      }
      // Each cursor works in its own order.
      assert.equal((await queue.listJobs({ queue: q, limit: 1, cursor: descPage.nextCursor })).jobs.length, 1);
      assert.equal((await queue.listJobs({ queue: q, limit: 1, order: 'asc', cursor: ascPage.nextCursor })).jobs.length, 1);
      // The bulk actions check their filters the same way.
      await assert.rejects(queue.retryJobs({ status: 'done' as JobStatus }), InvalidArgumentError);
      await assert.rejects(queue.cancelJobs({ createdAfter: 'x' as unknown as Date }), InvalidArgumentError);
      await assert.rejects(queue.deleteJobs({ cursor: 'x' } as never), InvalidArgumentError, 'no cursor on a bulk action');
      await assert.rejects(queue.retryJobs({ queue: q }, { batchSize: 0 }), InvalidArgumentError);
      await assert.rejects(queue.retryJobs({ queue: q }, { batchSize: 501 }), InvalidArgumentError);
      await assert.rejects(queue.retryJobs({ queue: q }, { onProgress: 'yes' as never }), InvalidArgumentError);
    });

    it('listJobs takes a well-formed cursor made by hand as a keyset boundary: it pages from that key', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('forged');
      const ids = [await queue.enqueue('x', {}, { queue: q }), await queue.enqueue('x', {}, { queue: q })];
      // Every id sorts after '0000' and before 'zzzz'.
      const from = (id: string, order: 'asc' | 'desc'): string => Buffer.from(`${order}.${id}`, 'utf8').toString('base64url');
      assert.deepEqual((await queue.listJobs({ queue: q, cursor: from('zzzz', 'desc') })).jobs.map((j) => j.id), [...ids].reverse());
      assert.deepEqual((await queue.listJobs({ queue: q, cursor: from('0000', 'desc') })).jobs, []);
      assert.deepEqual((await queue.listJobs({ queue: q, order: 'asc', cursor: from(ids[0]!, 'asc') })).jobs.map((j) => j.id), [ids[1]]);
    });

    it('retryJobs retries 10,000 failed jobs in batches with progress; a worker on another queue is never stalled', async (t) => {
      const s = ts.storage;
      const queue = new Queue(s);
      const q = uniqueName('bulk');
      const N = 10_000;
      const CHUNK = 500;
      for (let i = 0; i < N; i += CHUNK) {
        await s.jobInsertMany({ jobs: Array.from({ length: CHUNK }, () => jobInsert({ queue: q, type: 'bulk-job', maxRetries: 0 })) });
        const rows = await claim(s, q, CHUNK);
        assert.equal(rows.length, CHUNK);
        const done = await s.jobFinishMany({ items: rows.map((r) => ({ ...fenceOf(r), outcome: 'failed' as const, error: 'bulk boom' })) });
        assert.ok(applied(done).every(Boolean));
      }
      assert.equal((await queue.stats({ queue: q })).failed, N);

      // Another "process" works another queue, one job at a time, all along.
      const other = new Queue(await ts.another());
      const oq = uniqueName('busy');
      other.register('tick', () => 'tock');
      const completions: number[] = [];
      let onDone: (() => void) | undefined;
      other.onJobComplete((j) => {
        if (j.queue !== oq) return;
        completions.push(performance.now());
        onDone?.();
      });
      const w = startWorker(other, { queues: { [oq]: { concurrency: 1 } } });
      let producing = true;
      const producer = (async () => {
        while (producing) {
          const done = new Promise<void>((resolve) => (onDone = resolve));
          await other.enqueue('tick', {}, { queue: oq });
          await done;
        }
      })();
      let bulkStart = 0;
      let bulkEnd = 0;
      const progress: BulkProgress[] = [];
      let outcome;
      try {
        await waitFor(() => completions.length >= 3, { message: 'the other worker runs' });
        bulkStart = performance.now();
        outcome = await queue.retryJobs({ status: 'failed', queue: q }, { onProgress: (p) => progress.push({ ...p }) });
        bulkEnd = performance.now();
      } finally {
        producing = false;
        await producer;
        await w.stop();
      }
      assert.equal(outcome.count, N);
      assert.deepEqual(outcome.skipped, []);
      assert.ok(progress.length > 1, `progress reported per batch (${progress.length} calls)`);
      for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.done > progress[i - 1]!.done, 'progress is monotonic');
      assert.ok(progress.every((p) => p.total === N && p.skipped === 0));
      assert.equal(progress.at(-1)!.done, N);
      const stats = await queue.stats({ queue: q });
      assert.equal(stats.pending, N, 'every job is pending again');
      assert.equal(stats.failed, 0);
      const [sample] = (await queue.listJobs({ queue: q, limit: 1 })).jobs;
      assert.equal(sample?.status, 'pending');
      assert.equal(sample?.attempt, 0, 'retried from scratch');
      // The other queue's worker kept completing jobs during the whole bulk action.
      const during = completions.filter((t) => t > bulkStart && t < bulkEnd);
      const marks = [bulkStart, ...during, bulkEnd];
      let longest = 0;
      for (let i = 1; i < marks.length; i++) longest = Math.max(longest, marks[i]! - marks[i - 1]!);
      const took = Math.round(bulkEnd - bulkStart);
      t.diagnostic(`bulk retry of ${N}: ${took} ms, ${progress.length} batches, ${during.length} completions on the other queue meanwhile, longest gap ${Math.round(longest)} ms`);
      assert.ok(during.length >= 3, `the other worker completed jobs during the bulk (${during.length} in ${took} ms)`);
      assert.ok(longest < 1_000, `longest gap between the other worker's completions: ${Math.round(longest)} ms (bulk took ${took} ms)`);
      // Nothing failed is left to retry.
      assert.deepEqual(await queue.retryJobs({ status: 'failed', queue: q }), { count: 0, skipped: [] });
    });

    it('retryJobs: failed and cancelled jobs by default, a held unique key is skipped, other statuses refused', async () => {
      const s = ts.storage;
      const queue = new Queue(s);
      const q = uniqueName('rq');
      const key = uniqueName('uk');
      const f1 = (await failedJob(s, { queue: q })).id;
      const c1 = (await cancelledJob(s, { queue: q })).id;
      const held = (await failedJob(s, { queue: q, uniqueKey: key })).id;
      const holder = await insertJob(s, { queue: q, uniqueKey: key });
      await completedJob(s, { queue: q, priority: 10 });
      const r = await queue.retryJobs({ queue: q });
      assert.equal(r.count, 2);
      assert.deepEqual(r.skipped, [{ id: held, reason: SKIP_UNIQUE_HELD }]);
      for (const id of [f1, c1, holder]) assert.equal((await queue.getJob(id))?.status, 'pending');
      assert.equal((await queue.getJob(held))?.status, 'failed');
      for (const status of ['pending', 'running', 'waiting', 'paused', 'completed'] as const) {
        await assert.rejects(queue.retryJobs({ status, queue: q }), InvalidArgumentError, status);
      }
      await assert.rejects(queue.retryJobs({ status: ['failed', 'pending'], queue: q }), InvalidArgumentError);
    });

    it('cancelJobs cancels matching live jobs (a running handler is aborted); a job finished meanwhile is skipped', async () => {
      const s = ts.storage;
      const q = uniqueName('cq');
      const qv = uniqueName('cqv');
      const type = uniqueName('cancel-me');
      const aborted: string[] = [];
      const started = new Gate();
      const victim = await insertJob(s, { queue: qv, type });
      // Right before the victim's cancel, it runs and completes.
      const queue = new Queue(
        interceptBefore(s, 'jobCancel', async (p) => {
          if ((p as { id: string }).id !== victim) return;
          const [row] = await claim(s, qv, 1);
          assert.equal(row?.id, victim);
          await s.jobFinishMany({ items: [{ ...fenceOf(row), outcome: 'completed', resultJson: '1' }] });
        }),
      );
      queue.register(type, async (_: unknown, ctx) => {
        started.open();
        await new Promise((resolve) => ctx.abortSignal.addEventListener('abort', resolve));
        aborted.push(ctx.job.id);
        throw ctx.abortSignal.reason;
      });
      const runningId = await queue.enqueue(type, {}, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      try {
        await started.promise;
        const pending = [await queue.enqueue(type, {}, { queue: q }), await queue.enqueue(type, {}, { queue: q }), await queue.enqueue(type, {}, { queue: q, delay: 60_000 })];
        const done = (await completedJob(s, { queue: q, type, priority: 10 })).id;
        await assert.rejects(queue.cancelJobs({ type, status: 'completed' }), InvalidArgumentError);
        await assert.rejects(queue.cancelJobs({ type, status: ['pending', 'failed'] }), InvalidArgumentError);
        const r = await queue.cancelJobs({ type });
        assert.equal(r.count, 4, 'the running job and three pending ones');
        assert.deepEqual(r.skipped, [{ id: victim, reason: SKIP_ALREADY_FINISHED }]);
        for (const id of [runningId, ...pending]) assert.equal((await queue.getJob(id))?.status, 'cancelled', id);
        assert.equal((await queue.getJob(victim))?.status, 'completed');
        assert.equal((await queue.getJob(done))?.status, 'completed');
        await waitFor(() => aborted.includes(runningId), { message: 'the running handler is aborted' });
        assert.deepEqual(await queue.cancelJobs({ type }), { count: 0, skipped: [] }, 'nothing live is left');
      } finally {
        await w.stop();
      }
    });

    it('deleteJobs and deleteJob delete finished jobs with their subtrees and refuse every other case', async () => {
      const s = ts.storage;
      const q = uniqueName('dq');
      const kids = uniqueName('dkids');
      const type = uniqueName('del');
      // A finished workflow whose sub-jobs run on another queue.
      const base = new Queue(s);
      base.register('del-kid', (n: number) => n * 2);
      base.register('del-wf', async (n: number, ctx) => (await ctx.fanOut<number>([sub('del-kid', n), sub('del-kid', n + 1)], { queue: kids })).map((r) => r.value));
      const wf = await base.enqueue('del-wf', 1, { queue: q });
      const w = startWorker(base, { queues: { [q]: {}, [kids]: {} } });
      const wfJob = await base.waitForJob(wf, { timeout: 10_000 });
      await w.stop();
      assert.deepEqual(wfJob.result, [2, 4]);
      const wfKids = (await base.listJobs({ parentId: wf })).jobs.map((j) => j.id);
      assert.equal(wfKids.length, 2);

      const completed = (await completedJob(s, { queue: q, type })).id;
      const failed = (await failedJob(s, { queue: q, type })).id;
      const cancelled = (await cancelledJob(s, { queue: q, type })).id;
      // Listed as failed, then retried and running by the time its batch runs.
      const raced = (await failedJob(s, { queue: q, type })).id;
      const pending = await insertJob(s, { queue: q, type, delayMs: 60_000 });
      const queue = new Queue(
        interceptBefore(s, 'jobDeleteMany', async (p) => {
          if (!(p as { ids: string[] }).ids.includes(raced)) return;
          await s.jobRetry({ id: raced });
          const [row] = await claim(s, q, 1, { workerId: 'racer' });
          assert.equal(row?.id, raced);
        }),
      );
      const r = await queue.deleteJobs({ queue: q });
      assert.equal(r.count, 4, 'the workflow (once) and three finished jobs');
      assert.deepEqual(r.skipped, [{ id: raced, reason: skipNotFinished('running') }], 'a running job is not deleted');
      for (const id of [wf, ...wfKids, completed, failed, cancelled]) assert.equal(await queue.getJob(id), undefined, `${id} deleted`);
      await assert.rejects(queue.getSteps(wf), JobNotFoundError, 'its checkpoints went with it');
      assert.equal((await queue.getJob(raced))?.status, 'running');
      assert.ok((await queue.getJob(pending))?.status);

      // A sub-job of an unfinished parent is not deleted alone.
      const fo = await fanOutParent(s, { n: 2, strategy: 'collect-all' }, { queue: q });
      const fences = await claimChildren(s, fo);
      await s.jobFinishMany({ items: [{ ...fences[0]!, outcome: 'failed', error: 'kid down' }] });
      assert.equal((await queue.getJob(fo.parentId))?.status, 'waiting');
      const r2 = await queue.deleteJobs({ parentId: fo.parentId });
      assert.deepEqual(r2, { count: 0, skipped: [{ id: fo.childIds[0]!, reason: SKIP_PARENT_UNFINISHED }] });
      await assert.rejects(queue.deleteJob(fo.childIds[0]!), (e: unknown) => e instanceof InvalidStateError && e.message.includes(SKIP_PARENT_UNFINISHED));
      await assert.rejects(queue.deleteJob(fo.parentId), InvalidStateError, 'a waiting parent');
      assert.equal((await queue.getJob(fo.childIds[0]!))?.status, 'failed');

      // A finished job with an unfinished sub-job is not deleted.
      const parent = (await completedJob(s, { queue: q, type: `${type}-p` })).id;
      const child = await insertJob(s, { queue: kids, parentId: parent });
      const r3 = await queue.deleteJobs({ type: `${type}-p` });
      assert.deepEqual(r3, { count: 0, skipped: [{ id: parent, reason: SKIP_UNFINISHED_SUBJOBS }] });
      await assert.rejects(queue.deleteJob(parent), InvalidStateError);
      assert.ok(await queue.getJob(child));

      // deleteJob: unknown id, unfinished job, then a finished one.
      await assert.rejects(queue.deleteJob(newId()), JobNotFoundError);
      await assert.rejects(queue.deleteJob(pending), (e: unknown) => e instanceof InvalidStateError && e.message.includes(skipNotFinished('pending')));
      await assert.rejects(queue.deleteJob(raced), InvalidStateError, 'a running job');
      const last = (await failedJob(s, { queue: q, type })).id;
      await queue.deleteJob(last);
      assert.equal(await queue.getJob(last), undefined);
      await assert.rejects(queue.deleteJob(last), JobNotFoundError, 'deleted already');
      for (const status of ['pending', 'running', 'waiting', 'paused'] as const) {
        await assert.rejects(queue.deleteJobs({ status, queue: q }), InvalidArgumentError, status);
      }
    });

    it('queues(): counts per status, paused flag, oldest due pending age', async () => {
      const s = ts.storage;
      const queue = new Queue(s);
      const q = uniqueName('qs');
      const type = uniqueName('qs-job');
      const gate = new Gate();
      queue.register(type, () => gate.promise);
      const first = await queue.enqueue(type, {}, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      try {
        await waitFor(async () => (await queue.getJob(first))?.status === 'running', { message: 'first job running' });
        const due = await queue.enqueue(type, {}, { queue: q });
        await queue.enqueue(type, {}, { queue: q });
        await queue.enqueue(type, {}, { queue: q, delay: 60_000 });
        await pausedJob(s, { queue: q });
        await failedJob(s, { queue: q, priority: 10 });
        await completedJob(s, { queue: q, priority: 10 });
        await cancelledJob(s, { queue: q });
        const runAt = (await queue.getJob(due))!.runAt.getTime();
        await waitForClockPast(s, runAt + 50);
        const row = (await queue.queues()).find((r) => r.name === q);
        const now = await s.clockNow();
        assert.ok(row, `queue ${q} listed`);
        const { oldestPendingAgeMs, ...counts } = row;
        assert.deepEqual(counts, { name: q, paused: false, pending: 3, running: 1, waiting: 0, failed: 1, pausedJobs: 1 });
        assert.equal(typeof oldestPendingAgeMs, 'number');
        assert.ok(oldestPendingAgeMs! >= 50 && oldestPendingAgeMs! <= now - runAt + 5, `oldestPendingAgeMs ${oldestPendingAgeMs} in [50, ${now - runAt}]`);

        await queue.pauseQueue(q);
        const paused = (await queue.queues()).find((r) => r.name === q);
        assert.equal(paused?.paused, true);
        assert.equal(paused?.pending, 3, 'a paused queue still reports its jobs');
        await queue.resumeQueue(q);
        assert.equal((await queue.queues()).find((r) => r.name === q)?.paused, false);

        // Only a job that is not due yet: no age.
        const later = uniqueName('qs-later');
        await queue.enqueue(type, {}, { queue: later, delay: 60_000 });
        const lr = (await queue.queues()).find((r) => r.name === later);
        assert.equal(lr?.pending, 1);
        assert.equal(lr && 'oldestPendingAgeMs' in lr, false, 'no oldestPendingAgeMs without a due pending job');
        // A paused queue with no job at all is listed.
        const empty = uniqueName('qs-empty');
        await queue.pauseQueue(empty);
        const er = (await queue.queues()).find((r) => r.name === empty);
        assert.deepEqual(er, { name: empty, paused: true, pending: 0, running: 0, waiting: 0, failed: 0, pausedJobs: 0 });
        const names = (await queue.queues()).map((r) => r.name);
        assert.equal(new Set(names).size, names.length, 'each queue once');
      } finally {
        gate.open();
        await w.stop();
      }
    });
  });
}
