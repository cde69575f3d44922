/**
 * `listJobs({ scanLimit })` on every driver: a page reads at most `scanLimit` jobs after its
 * cursor and comes back short (even empty) with `scanExhausted`, `scanned` and a cursor that
 * continues right after the last job read; walking every page gives exactly the jobs, in the
 * same order, of a walk without a budget — for every filter kind, in both orders, also while
 * jobs are inserted, finished and deleted between pages; filters the budget does not apply to
 * are listed as without one; bad values are refused (docs/operations.md, "Looking").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { InvalidArgumentError } from '../../src/errors.js';
import type { JobPage, ListJobsOptions } from '../../src/queue/operator-types.js';
import type { Storage } from '../../src/storage/storage.js';
import { encryptedCodec } from '../../src/index.js';
import { applied, claim, completedJob, failedJob, fenceOf, insertJob, jobInsert, uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';

/** Every page of a listing, walked through `nextCursor`. */
async function walk(queue: Queue, options: ListJobsOptions, between?: () => Promise<void>): Promise<{ ids: string[]; pages: JobPage[] }> {
  const ids: string[] = [];
  const pages: JobPage[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 5_000; i++) {
    const page = await queue.listJobs({ ...options, ...(cursor === undefined ? {} : { cursor }) });
    pages.push(page);
    ids.push(...page.jobs.map((j) => j.id));
    if (page.nextCursor === undefined) return { ids, pages };
    cursor = page.nextCursor;
    if (between) await between();
  }
  throw new Error('walk: too many pages');
}

/** Asserts the budget's promises on every page of a walk. */
function checkPages(pages: JobPage[], limit: number, scanLimit: number, what: string): void {
  for (const [i, p] of pages.entries()) {
    assert.ok(p.jobs.length <= limit, `${what}, page ${i}: at most ${limit} jobs`);
    if (p.scanExhausted === true) {
      assert.equal(p.scanned, scanLimit, `${what}, page ${i}: scanned is the budget`);
      assert.notEqual(p.nextCursor, undefined, `${what}, page ${i}: a spent budget continues`);
    } else assert.equal(p.scanned, undefined, `${what}, page ${i}: scanned only with scanExhausted`);
  }
}

const ORDERS = ['asc', 'desc'] as const;

for (const [name, make] of storageMatrix()) {
  describe(`listJobs scan budget (${name})`, () => {
    describe('short pages and continuation', () => {
      let ts: TestStorage;
      let queue: Queue;
      /** 30 jobs, oldest first; `rare` at positions 3, 17 and 25. */
      let ids: string[];
      let rare: string;
      before(async () => {
        ts = await make(`scan-budget-short-${name}`);
        queue = new Queue(ts.storage);
        rare = uniqueName('rare');
        const jobs = Array.from({ length: 30 }, (_, i) => jobInsert({ type: [3, 17, 25].includes(i) ? rare : 'common', queue: 'q' }));
        await ts.storage.jobInsertMany({ jobs });
        ids = jobs.map((j) => j.id);
      });
      after(() => ts.cleanup());

      it('asc: each page reads scanLimit jobs, returns its matches, and continues after the last job read', async () => {
        const p1 = await queue.listJobs({ type: rare, order: 'asc', limit: 5, scanLimit: 10 });
        assert.deepEqual(p1.jobs.map((j) => j.id), [ids[3]]);
        assert.equal(p1.scanExhausted, true);
        assert.equal(p1.scanned, 10);
        const p2 = await queue.listJobs({ type: rare, order: 'asc', limit: 5, scanLimit: 10, cursor: p1.nextCursor! });
        assert.deepEqual(p2.jobs.map((j) => j.id), [ids[17]], 'the second page starts right after job 9, the last read');
        assert.equal(p2.scanExhausted, true);
        const p3 = await queue.listJobs({ type: rare, order: 'asc', limit: 5, scanLimit: 10, cursor: p2.nextCursor! });
        assert.deepEqual(p3.jobs.map((j) => j.id), [ids[25]]);
        assert.equal(p3.scanExhausted, true, 'ten jobs followed the cursor: the scan cannot know it reached the end');
        const p4 = await queue.listJobs({ type: rare, order: 'asc', limit: 5, scanLimit: 10, cursor: p3.nextCursor! });
        assert.deepEqual(p4, { jobs: [] }, 'nothing after the last job: the end, no flag');
        const p5 = await queue.listJobs({ type: rare, order: 'asc', limit: 5, scanLimit: 11, cursor: p2.nextCursor! });
        assert.deepEqual(p5, { jobs: [p3.jobs[0]] }, 'fewer jobs than the budget follow the cursor: the last page');
      });

      it('desc: an empty page says the budget ran out and continues the scan', async () => {
        const p1 = await queue.listJobs({ type: rare, limit: 5, scanLimit: 4 });
        assert.deepEqual(p1.jobs, [], 'jobs 29..26 hold no match');
        assert.equal(p1.scanExhausted, true);
        assert.equal(p1.scanned, 4);
        const p2 = await queue.listJobs({ type: rare, limit: 5, scanLimit: 4, cursor: p1.nextCursor! });
        assert.deepEqual(p2.jobs.map((j) => j.id), [ids[25]], 'jobs 25..22');
        const all = await walk(queue, { type: rare, limit: 5, scanLimit: 4 });
        assert.deepEqual(all.ids, [ids[25], ids[17], ids[3]]);
        assert.equal(all.pages.length, 8, 'thirty jobs, four at a time, then the page after the last one');
      });

      it('a page that fills before the budget runs out is an ordinary page; one that fills with the budget is flagged', async () => {
        const full = await queue.listJobs({ type: rare, order: 'asc', limit: 1, scanLimit: 20 });
        assert.deepEqual(full.jobs.map((j) => j.id), [ids[3]]);
        assert.equal(full.scanExhausted, undefined, 'a second match was found within the budget');
        const next = await queue.listJobs({ type: rare, order: 'asc', limit: 1, scanLimit: 20, cursor: full.nextCursor! });
        assert.deepEqual(next.jobs.map((j) => j.id), [ids[17]], 'the next page starts after the last job shown');
        const exact = await queue.listJobs({ type: rare, order: 'asc', limit: 1, scanLimit: 10 });
        assert.deepEqual(exact.jobs.map((j) => j.id), [ids[3]]);
        assert.equal(exact.scanExhausted, true, 'a full page, and no further match within the budget');
        const after = await queue.listJobs({ type: rare, order: 'asc', limit: 1, scanLimit: 10, cursor: exact.nextCursor! });
        assert.deepEqual(after.jobs.map((j) => j.id), [ids[17]], 'continued after job 9, the last read');
      });

      it('without scanLimit nothing changes: pages fill, no flag', async () => {
        const page = await queue.listJobs({ type: rare, order: 'asc', limit: 2 });
        assert.deepEqual(page.jobs.map((j) => j.id), [ids[3], ids[17]]);
        assert.deepEqual(Object.keys(page).sort(), ['jobs', 'nextCursor']);
        const budgeted = await queue.listJobs({ type: rare, order: 'asc', limit: 2, scanLimit: 1_000_000 });
        assert.deepEqual(budgeted, page, 'a budget larger than the table changes nothing');
      });

      it('refuses a scanLimit that is not a whole number from 1 to 1,000,000', async () => {
        for (const bad of [0, -1, 1.5, 1_000_001, Number.NaN, Number.POSITIVE_INFINITY, '100', null, true]) {
          await assert.rejects(queue.listJobs({ type: rare, scanLimit: bad as number }), (e: unknown) => e instanceof InvalidArgumentError && /scanLimit/.test(e.message), `scanLimit ${String(bad)}`);
        }
        assert.equal((await queue.listJobs({ type: rare, scanLimit: 1 })).scanned, 1);
        assert.equal((await queue.listJobs({ status: 'pending', scanLimit: 1 })).jobs.length, 30, 'a budget is accepted where it does not apply');
      });
    });

    describe('every filter kind walks exactly as without a budget', () => {
      let ts: TestStorage;
      let queue: Queue;
      let parentId: string;
      let mid: number;
      before(async () => {
        ts = await make(`scan-budget-exact-${name}`);
        queue = new Queue(ts.storage);
        await writeMix(ts.storage);
        const all = await queue.listJobs({ order: 'asc', limit: 500 });
        parentId = all.jobs[5]!.id;
        for (let i = 0; i < 4; i++) await insertJob(ts.storage, { type: 'child', queue: 'qa', parentId });
        mid = all.jobs[Math.floor(all.jobs.length / 2)]!.createdAt.getTime();
      });
      after(() => ts.cleanup());

      // Whether the budget applies: yes, no, or as the driver reads those statuses (their own index).
      const filters = (): [string, ListJobsOptions, boolean | 'driver'][] => [
        ['type', { type: 'rare' }, true],
        ['tenant', { tenant: 't-rare' }, true],
        ['search in errors', { search: 'QUOTA' }, true],
        ['search in types', { search: 'are' }, true],
        ['createdAfter', { createdAfter: new Date(mid) }, true],
        ['createdBefore', { createdBefore: new Date(mid) }, true],
        ['queue', { queue: 'qb' }, true],
        ['failed and a type', { status: 'failed', type: 'rare' }, 'driver'],
        ['statuses and a search', { status: ['pending', 'completed'], search: 'rare' }, 'driver'],
        ['statuses alone', { status: 'completed' }, false],
        ['a parent', { parentId }, false],
        ['a parent and a type', { parentId, type: 'child' }, false],
        ['no filter', {}, false],
      ];

      for (const order of ORDERS) {
        it(`${order}: every filter, budgets of 1, 7 and 1,000`, async () => {
          for (const [what, f, applies] of filters()) {
            const plain = await walk(queue, { ...f, order, limit: 3 });
            for (const scanLimit of [1, 7, 1_000]) {
              const label = `${what} ${order} scanLimit ${scanLimit}`;
              const budgeted = await walk(queue, { ...f, order, limit: 3, scanLimit });
              assert.deepEqual(budgeted.ids, plain.ids, `${label}: the same jobs in the same order`);
              checkPages(budgeted.pages, 3, scanLimit, label);
              const spent = budgeted.pages.some((p) => p.scanExhausted === true);
              if (applies === false) assert.equal(spent, false, `${label}: the budget does not apply`);
              else if (applies === true && scanLimit === 1) assert.equal(spent, true, `${label}: a budget of one job runs out`);
            }
            assert.ok(plain.ids.length > 0 || what === 'a parent and a type', `${what}: the fixture has matches`);
          }
        });
      }
    });

    describe('pages while jobs change', () => {
      let ts: TestStorage;
      let queue: Queue;
      before(async () => {
        ts = await make(`scan-budget-live-${name}`);
        queue = new Queue(ts.storage);
      });
      after(() => ts.cleanup());

      for (const order of ORDERS) {
        it(`${order}: jobs matching throughout are listed exactly once, in order, while others are inserted, finished and deleted`, async () => {
          const s = ts.storage;
          const type = uniqueName('t');
          const other = uniqueName('o');
          const busy = uniqueName('q');
          const original: string[] = [];
          const doomed: string[] = [];
          for (let i = 0; i < 36; i++) {
            if (i % 4 === 0) original.push(await insertJob(s, { type, queue: uniqueName('q') }));
            else doomed.push((await completedJob(s, { type: other })).id);
            if (i % 6 === 0) await insertJob(s, { type: other, queue: busy });
          }
          const added: string[] = [];
          const between = async (): Promise<void> => {
            // New jobs (one that matches), some finished, and finished non-matching ones deleted
            // on both sides of the cursor: the scan's windows shift under it.
            const jobs = [jobInsert({ type, queue: uniqueName('q') }), jobInsert({ type: other, queue: busy })];
            await s.jobInsertMany({ jobs });
            added.push(jobs[0]!.id);
            const claimed = await claim(s, busy, 1);
            if (claimed.length > 0) assert.ok(applied(await s.jobFinishMany({ items: claimed.map((r) => ({ ...fenceOf(r), outcome: 'completed' as const, resultJson: null })) })).every(Boolean));
            const gone = [doomed.shift(), doomed.pop()].filter((id): id is string => id !== undefined);
            if (gone.length > 0) assert.equal((await s.jobDeleteMany({ ids: gone })).done.length, gone.length);
          };
          const { ids, pages } = await walk(queue, { type, order, limit: 2, scanLimit: 3 }, between);
          checkPages(pages, 2, 3, order);
          assert.ok(pages.some((p) => p.scanExhausted === true && p.jobs.length < 2), 'some pages came back short');
          assert.equal(new Set(ids).size, ids.length, 'no job listed twice');
          if (order === 'desc') assert.deepEqual(ids, [...original].reverse(), 'desc: exactly the jobs older than the first page');
          else assert.deepEqual(ids, [...original, ...added], 'asc: every job, the new ones at the end');
        });
      }
    });

    describe('through a payload codec', () => {
      let ts: TestStorage;
      before(async () => {
        ts = await make(`scan-budget-codec-${name}`);
      });
      after(() => ts.cleanup());

      it('decodes the listed jobs and refuses a search of encrypted errors', async () => {
        const queue = new Queue(ts.storage, { codec: encryptedCodec({ key: Buffer.alloc(32, 7) }) });
        const type = uniqueName('sealed');
        await queue.enqueue(type, { secret: 42 });
        await queue.enqueue('noise', {});
        const page = await queue.listJobs({ type, scanLimit: 1 });
        assert.deepEqual(page.jobs, [], 'the newest job is not of the type');
        assert.equal(page.scanExhausted, true);
        const next = await queue.listJobs({ type, scanLimit: 1, cursor: page.nextCursor! });
        assert.deepEqual(next.jobs.map((j) => j.args), [{ secret: 42 }]);
        await assert.rejects(queue.listJobs({ search: 'x', scanLimit: 10 }), /search cannot be used/);
      });
    });
  });
}

/**
 * The exactness fixture, oldest first: pending jobs in two queues, completed and failed ones
 * (their errors varied), a rare type, a rare tenant and a rare error text among many others.
 */
async function writeMix(s: Storage): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const type = i % 17 === 4 ? 'rare' : `common-${i % 3}`;
    const tenant = i % 23 === 9 ? 't-rare' : `t-${i % 2}`;
    const queue = i % 5 === 0 ? 'qb' : 'qa';
    if (i % 3 === 0) await failedJob(s, { type, tenant, queue, priority: 5 }, i % 19 === 2 ? 'Quota exhausted for tenant' : `error ${i % 4}`);
    else if (i % 3 === 1) await completedJob(s, { type, tenant, queue, priority: 5 });
    else await insertJob(s, { type, tenant, queue });
  }
}
