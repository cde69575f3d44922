/**
 * Conformance: the operator's view of jobs — `jobList` with every `JobFilter` field alone and
 * combined, in both orders, in keyset pages (`afterId`), and `jobCount` agreeing with it.
 *
 * The filter tests read one fixture (jobs of every status, queue, type, tenant, parent, fan-out,
 * error text and creation instant) written once on a second isolated database whose clock the
 * test sets, so creation instants are exact and the database holds nothing else: each expected
 * listing is computed from the fixture's rows by a model of the filter and compared in full.
 * Pages taken while jobs are inserted and finish between them run on the driver's own clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobFilter, JobRow, Storage } from '../../src/storage/storage.js';
import type { JobStatus } from '../../src/types.js';
import type { StorageMaker } from '../helpers/storages.js';
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
  waitingJob,
} from '../helpers/factories.js';
import { useManualClock, useStorage, type ManualClock } from './context.js';
import { finish } from './fan-out-helpers.js';

const ALL_STATUSES: JobStatus[] = ['pending', 'running', 'waiting', 'paused', 'completed', 'failed', 'cancelled'];
const LOWEST_ID = '00000000-0000-7000-8000-000000000000';

/** The jobs of the filter fixture and the names they use. */
interface Fixture {
  /** Every job of the fixture database, as `jobGetMany` reads them. */
  rows: JobRow[];
  /** Creation instants: t[0] < t[1] < t[2] < t[3]. */
  t: number[];
  qa: string;
  qb: string;
  qc: string;
  typeA: string;
  typeB: string;
  flowType: string;
  stepType: string;
  parentId: string;
  fanOutId: string;
  /** Ids by role, for the literal search cases. */
  byRole: Record<string, string>;
}

/**
 * Writes the fixture: at t0 jobs of every live status and three failures; at t1 a completed, a
 * cancelled and failures whose errors hold `_`, `%`-like text and a backslash; at t2 a
 * collect-all fan-out (children completed, failed, running) plus a plain child of its parent.
 */
async function writeFixture(m: ManualClock): Promise<Fixture> {
  const s = m.s;
  // No `_` in the names: a `_` taken as a LIKE wildcard would then match every row.
  const tag = uniqueName('x').replace(/_/g, '');
  const qa = `qa${tag}`;
  const qb = `qb${tag}`;
  const qc = `qc${tag}`;
  const typeA = `MailSend${tag}`;
  const typeB = `report${tag}`;
  const flowType = `Flow${tag}`;
  const stepType = `Step${tag}`;
  const t: number[] = [m.now];
  // Claimed jobs get a priority above the pending ones already in their queue.
  const hi = { priority: 5 };
  const byRole: Record<string, string> = {};
  byRole['pending'] = await insertJob(s, { queue: qa, type: typeA, tenant: 't1' });
  byRole['future'] = await insertJob(s, { queue: qa, type: typeA, tenant: 't2', delayMs: 60_000 });
  byRole['paused'] = (await pausedJob(s, { queue: qa, type: typeB })).id;
  byRole['running'] = (await runningJob(s, { ...hi, queue: qa, type: typeB, tenant: 't1' })).fence.jobId;
  byRole['waiting'] = (await waitingJob(s, { ...hi, queue: qa, type: typeA }, { waitSignal: 'go' })).row.id;
  byRole['timeout'] = (await failedJob(s, { ...hi, queue: qa, type: typeA, tenant: 't1' }, 'SMTP Timeout after 30s')).id;
  byRole['percent'] = (await failedJob(s, { ...hi, queue: qb, type: typeB }, 'disk 100% full')).id;
  byRole['percentWord'] = (await failedJob(s, { ...hi, queue: qb, type: typeB, tenant: 't2' }, 'disk 100 percent full')).id;
  m.now += 10;
  t.push(m.now);
  byRole['completed'] = (await completedJob(s, { ...hi, queue: qb, type: typeA })).id;
  byRole['cancelled'] = (await cancelledJob(s, { queue: qb, type: typeA, tenant: 't1' })).id;
  byRole['underscore'] = (await failedJob(s, { ...hi, queue: qa, type: typeB }, 'bad key user_id')).id;
  byRole['noUnderscore'] = (await failedJob(s, { ...hi, queue: qa, type: typeB }, 'bad key userXid')).id;
  byRole['backslash'] = (await failedJob(s, { ...hi, queue: qb, type: typeA }, 'path C:\\tmp\\x')).id;
  m.now += 10;
  t.push(m.now);
  const p = await fanOutParent(s, { n: 3, strategy: 'collect-all', childQueue: qc, child: { type: stepType, tenant: 't2', maxRetries: 0 } }, { ...hi, queue: qa, type: flowType });
  const [c0, c1] = await claimChildren(s, p);
  await finish(s, c0!, 'completed');
  await s.jobFinishMany({ items: [{ ...c1!, outcome: 'failed', error: 'Child Exploded' }] });
  byRole['plainChild'] = await insertJob(s, { queue: qc, type: stepType, parentId: p.parentId });
  m.now += 10;
  t.push(m.now);
  const ids = [...Object.values(byRole), p.parentId, ...p.childIds];
  const rows = await s.jobGetMany({ ids });
  assert.equal(rows.length, ids.length, 'every fixture job exists');
  return { rows, t, qa, qb, qc, typeA, typeB, flowType, stepType, parentId: p.parentId, fanOutId: p.fanOutId, byRole };
}

/** The model of a filter: ids of the rows it matches, ascending. */
function expectedIds(rows: readonly JobRow[], f: JobFilter): string[] {
  const needle = f.search?.toLowerCase();
  return rows
    .filter(
      (r) =>
        (f.statuses === undefined || f.statuses.includes(r.status)) &&
        (f.queue === undefined || r.queue === f.queue) &&
        (f.type === undefined || r.type === f.type) &&
        (f.tenant === undefined || r.tenant === f.tenant) &&
        (f.parentId === undefined || r.parentId === f.parentId) &&
        (f.fanOutId === undefined || r.fanOutId === f.fanOutId) &&
        (needle === undefined || r.type.toLowerCase().includes(needle) || (r.lastError ?? '').toLowerCase().includes(needle)) &&
        (f.createdAfter === undefined || r.createdAt > f.createdAfter) &&
        (f.createdBefore === undefined || r.createdAt < f.createdBefore),
    )
    .map((r) => r.id)
    .sort();
}

/** Lists every page of `size` rows after the previous page's last id; returns the ids in order. */
export async function listPages(s: Storage, f: JobFilter, order: 'asc' | 'desc', size: number): Promise<string[]> {
  const out: string[] = [];
  let afterId: string | undefined;
  for (let i = 0; i < 10_000; i++) {
    const page = await s.jobList({ ...f, order, limit: size, ...(afterId === undefined ? {} : { afterId }) });
    assert.ok(page.length <= size, `a page holds at most ${size} rows, got ${page.length}`);
    out.push(...page.map((r) => r.id));
    if (page.length < size) return out;
    afterId = page[page.length - 1]!.id;
  }
  throw new Error('listPages: too many pages');
}

/** Asserts listing, pages and count of one filter against the model. */
async function expectFilter(s: Storage, fx: Fixture, f: JobFilter, what: string, exact?: string[]): Promise<string[]> {
  const want = expectedIds(fx.rows, f);
  if (exact) assert.deepEqual(want, [...exact].sort(), `${what}: the model agrees with the test's expectation`);
  const desc = [...want].reverse();
  const label = `${what} ${JSON.stringify(f)}`;
  assert.deepEqual((await s.jobList({ ...f, limit: 1_000 })).map((r) => r.id), desc, `${label}: newest first by default`);
  assert.deepEqual((await s.jobList({ ...f, limit: 1_000, order: 'desc' })).map((r) => r.id), desc, `${label}: desc`);
  assert.deepEqual((await s.jobList({ ...f, limit: 1_000, order: 'asc' })).map((r) => r.id), want, `${label}: asc`);
  assert.deepEqual(await listPages(s, f, 'asc', 2), want, `${label}: asc pages of 2`);
  assert.deepEqual(await listPages(s, f, 'desc', 3), desc, `${label}: desc pages of 3`);
  assert.equal(await s.jobCount(f), want.length, `${label}: jobCount equals the listing's size`);
  return want;
}

/** Registers the listing tests. */
export function describeListing(make: StorageMaker): void {
  describe('operator listing: jobList filters, keyset pages, jobCount', () => {
    const ctx = useStorage(make, 'conformance-listing');
    const clock = useManualClock(ctx, 'conformance-listing-manual');
    let fixture: Promise<Fixture> | undefined;
    const fx = (): Promise<Fixture> => (fixture ??= writeFixture(clock()));

    it('lists every job with an empty filter, rows as jobGet reads them, and honours limit', async () => {
      const f = await fx();
      const s = clock().s;
      const all = await expectFilter(s, f, {}, 'no filter');
      assert.equal(all.length, f.rows.length);
      const byId = new Map(f.rows.map((r) => [r.id, r]));
      for (const r of await s.jobList({ limit: 1_000 })) assert.deepEqual(r, byId.get(r.id), `job ${r.id} as jobGet reads it`);
      assert.deepEqual((await s.jobList({ limit: 2, order: 'asc' })).map((r) => r.id), all.slice(0, 2));
      assert.deepEqual((await s.jobList({ limit: 1 })).map((r) => r.id), all.slice(-1));
      assert.deepEqual(await s.jobList({ limit: 0 }), [], 'limit 0 reads nothing');
    });

    it('filters by statuses: one, several, every one, and none (an empty array matches nothing)', async () => {
      const f = await fx();
      const s = clock().s;
      const failed = [f.byRole['timeout']!, f.byRole['percent']!, f.byRole['percentWord']!, f.byRole['underscore']!, f.byRole['noUnderscore']!, f.byRole['backslash']!];
      const failedChild = f.rows.find((r) => r.fanOutId !== null && r.status === 'failed')!.id;
      await expectFilter(s, f, { statuses: ['failed'] }, 'failed', [...failed, failedChild]);
      await expectFilter(s, f, { statuses: ['cancelled'] }, 'cancelled', [f.byRole['cancelled']!]);
      await expectFilter(s, f, { statuses: ['paused'] }, 'paused jobs', [f.byRole['paused']!]);
      await expectFilter(s, f, { statuses: ['pending', 'waiting'] }, 'pending or waiting', [
        f.byRole['pending']!,
        f.byRole['future']!,
        f.byRole['waiting']!,
        f.byRole['plainChild']!,
        f.parentId,
      ]);
      await expectFilter(s, f, { statuses: ['running', 'completed'] }, 'running or completed');
      assert.equal((await expectFilter(s, f, { statuses: ALL_STATUSES }, 'every status')).length, f.rows.length);
      await expectFilter(s, f, { statuses: [] }, 'empty statuses', []);
      await expectFilter(s, f, { statuses: [], queue: f.qa }, 'empty statuses and a queue', []);
    });

    it('filters by queue, type, tenant, parent and fan-out, each alone; unknown values and other case match nothing', async () => {
      const f = await fx();
      const s = clock().s;
      assert.ok((await expectFilter(s, f, { queue: f.qa }, 'queue a')).length >= 8);
      await expectFilter(s, f, { queue: f.qb }, 'queue b');
      await expectFilter(s, f, { queue: f.qc }, 'queue c');
      await expectFilter(s, f, { queue: f.qa.toUpperCase() }, 'queue in other case', []);
      await expectFilter(s, f, { queue: uniqueName('nope') }, 'unknown queue', []);
      await expectFilter(s, f, { type: f.typeA }, 'type A');
      await expectFilter(s, f, { type: f.typeB }, 'type B');
      await expectFilter(s, f, { type: f.typeA.toLowerCase() }, 'type in other case', []);
      await expectFilter(s, f, { tenant: 't1' }, 'tenant t1', [f.byRole['pending']!, f.byRole['running']!, f.byRole['timeout']!, f.byRole['cancelled']!]);
      await expectFilter(s, f, { tenant: 't2' }, 'tenant t2');
      await expectFilter(s, f, { tenant: 'T1' }, 'tenant in other case', []);
      const kids = await expectFilter(s, f, { parentId: f.parentId }, 'children of the parent');
      assert.equal(kids.length, 4, 'three fan-out children and one plain child');
      assert.equal((await expectFilter(s, f, { fanOutId: f.fanOutId }, 'fan-out children')).length, 3);
      await expectFilter(s, f, { parentId: newId() }, 'unknown parent', []);
      await expectFilter(s, f, { fanOutId: newId() }, 'unknown fan-out', []);
    });

    it('searches last_error and type as a case-insensitive literal substring (% _ and \\ are not wildcards)', async () => {
      const f = await fx();
      const s = clock().s;
      const r = f.byRole;
      await expectFilter(s, f, { search: 'timeout' }, 'error, lower case', [r['timeout']!]);
      await expectFilter(s, f, { search: 'SMTP TIMEOUT AFTER' }, 'error, upper case', [r['timeout']!]);
      await expectFilter(s, f, { search: 'child exploded' }, 'error of a fan-out child', [f.rows.find((x) => x.lastError === 'Child Exploded')!.id]);
      const ofTypeA = f.rows.filter((x) => x.type === f.typeA).map((x) => x.id);
      await expectFilter(s, f, { search: f.typeA.toLowerCase() }, 'type, other case', ofTypeA);
      await expectFilter(s, f, { search: 'mailsend' }, 'type prefix, other case', ofTypeA);
      await expectFilter(s, f, { search: '100%' }, 'literal %', [r['percent']!]);
      await expectFilter(s, f, { search: '%' }, 'a lone %', [r['percent']!]);
      await expectFilter(s, f, { search: 'user_id' }, 'literal _', [r['underscore']!]);
      await expectFilter(s, f, { search: '_' }, 'a lone _', [r['underscore']!]);
      await expectFilter(s, f, { search: 'C:\\tmp' }, 'a backslash', [r['backslash']!]);
      await expectFilter(s, f, { search: '\\' }, 'a lone backslash', [r['backslash']!]);
      await expectFilter(s, f, { search: 'disk 100' }, 'two failures', [r['percent']!, r['percentWord']!]);
      await expectFilter(s, f, { search: "it's \"quoted\"" }, 'quotes match nothing here', []);
      await expectFilter(s, f, { search: uniqueName('nomatch') }, 'no match', []);
    });

    it('filters by creation time, bounds strict: createdAfter (created_at >), createdBefore (created_at <)', async () => {
      const f = await fx();
      const s = clock().s;
      const at = (i: number): string[] => f.rows.filter((r) => r.createdAt === f.t[i]).map((r) => r.id);
      for (let i = 0; i < 3; i++) assert.ok(at(i).length > 0, `the fixture has jobs created at t${i}`);
      await expectFilter(s, f, { createdAfter: f.t[1]! }, 'after t1', at(2));
      await expectFilter(s, f, { createdAfter: f.t[1]! - 1 }, 'after t1 - 1', [...at(1), ...at(2)]);
      await expectFilter(s, f, { createdBefore: f.t[1]! }, 'before t1', at(0));
      await expectFilter(s, f, { createdBefore: f.t[1]! + 1 }, 'before t1 + 1', [...at(0), ...at(1)]);
      await expectFilter(s, f, { createdAfter: f.t[0]!, createdBefore: f.t[2]! }, 'strictly between t0 and t2', at(1));
      await expectFilter(s, f, { createdAfter: f.t[1]!, createdBefore: f.t[1]! }, 'an empty window', []);
      await expectFilter(s, f, { createdAfter: f.t[0]! - 1 }, 'after everything old', f.rows.map((r) => r.id));
      await expectFilter(s, f, { createdBefore: f.t[3]! }, 'before the end', f.rows.map((r) => r.id));
    });

    it('combines filters (AND)', async () => {
      const f = await fx();
      const s = clock().s;
      const r = f.byRole;
      await expectFilter(s, f, { statuses: ['failed'], queue: f.qa }, 'failed in queue a', [r['timeout']!, r['underscore']!, r['noUnderscore']!]);
      await expectFilter(s, f, { statuses: ['failed', 'cancelled'], type: f.typeA, tenant: 't1' }, 'failed or cancelled, type A, tenant t1', [
        r['timeout']!,
        r['cancelled']!,
      ]);
      await expectFilter(s, f, { parentId: f.parentId, statuses: ['pending', 'running'] }, 'live children');
      await expectFilter(s, f, { fanOutId: f.fanOutId, statuses: ['failed', 'completed'], tenant: 't2', queue: f.qc, type: f.stepType }, 'finished fan-out children');
      await expectFilter(s, f, { search: 'disk', tenant: 't2' }, 'search and tenant', [r['percentWord']!]);
      await expectFilter(s, f, { search: 'bad key', createdAfter: f.t[0]!, createdBefore: f.t[2]!, statuses: ['failed'] }, 'search in a window', [
        r['underscore']!,
        r['noUnderscore']!,
      ]);
      await expectFilter(s, f, { queue: f.qa, createdBefore: f.t[1]!, statuses: ['pending', 'running', 'waiting', 'paused'] }, 'live in queue a at t0');
      await expectFilter(s, f, { queue: f.qb, type: f.typeB, search: 'timeout' }, 'a contradiction', []);
    });

    it('keyset pages: afterId splits the listing exactly, also after an id no row has', async () => {
      const f = await fx();
      const s = clock().s;
      const all = expectedIds(f.rows, {});
      for (const size of [1, 2, 5, all.length, all.length + 1]) {
        assert.deepEqual(await listPages(s, {}, 'asc', size), all, `asc pages of ${size}`);
        assert.deepEqual(await listPages(s, {}, 'desc', size), [...all].reverse(), `desc pages of ${size}`);
      }
      const mid = all[4]!;
      assert.deepEqual((await s.jobList({ limit: 100, order: 'asc', afterId: mid })).map((r) => r.id), all.slice(5), 'asc: ids > afterId');
      assert.deepEqual((await s.jobList({ limit: 100, order: 'desc', afterId: mid })).map((r) => r.id), all.slice(0, 4).reverse(), 'desc: ids < afterId');
      assert.deepEqual((await s.jobList({ limit: 2, order: 'asc', afterId: mid, queue: f.qa })).map((r) => r.id), expectedIds(f.rows, { queue: f.qa }).filter((id) => id > mid).slice(0, 2));
      const beyond = newId();
      assert.deepEqual((await s.jobList({ limit: 100, afterId: beyond })).map((r) => r.id), [...all].reverse(), 'desc after an id newer than every row');
      assert.deepEqual(await s.jobList({ limit: 100, order: 'asc', afterId: beyond }), []);
      assert.deepEqual((await s.jobList({ limit: 100, order: 'asc', afterId: LOWEST_ID })).map((r) => r.id), all);
      assert.deepEqual(await s.jobList({ limit: 100, order: 'desc', afterId: LOWEST_ID }), []);
    });

    it('jobListScan: the matches among the next scanLimit jobs, where the scan stopped, and jobList where the budget does not apply', async () => {
      const f = await fx();
      const s = clock().s;
      const all = expectedIds(f.rows, {});
      // Filters the budget applies to: the model is exact (the database holds the fixture alone).
      const budgeted: JobFilter[] = [{ type: f.typeA }, { search: 'disk' }, { tenant: 't1' }, { queue: f.qb }, { createdAfter: f.t[1]! - 1 }, { createdBefore: f.t[1]! }, { search: uniqueName('none') }];
      for (const filter of budgeted) {
        const want = expectedIds(f.rows, filter);
        for (const order of ['asc', 'desc'] as const) {
          const inOrder = order === 'asc' ? all : [...all].reverse();
          for (const [scanLimit, limit, from] of [[1, 5, -1], [3, 5, -1], [4, 1, 2], [5, 2, 6], [all.length, 100, -1], [all.length + 3, 1, 3]] as const) {
            const afterId = from < 0 ? undefined : inOrder[from]!;
            const label = `${JSON.stringify(filter)} ${order} scanLimit ${scanLimit} limit ${limit} after #${from}`;
            const window = inOrder.slice(from + 1, from + 1 + scanLimit);
            const matches = window.filter((id) => want.includes(id));
            const got = await s.jobListScan({ ...filter, order, limit, scanLimit, ...(afterId === undefined ? {} : { afterId }) });
            assert.deepEqual(got.rows.map((r) => r.id), matches.slice(0, limit), `${label}: the matches among the jobs read`);
            const stopped = window.length === scanLimit && matches.length < limit;
            assert.equal(got.scanEnd, stopped ? window[window.length - 1] : null, `${label}: where the scan stopped`);
          }
          // Walking on: each read continues after the scan's end, or after the last row of a full one.
          const seen: string[] = [];
          let afterId: string | undefined;
          for (let i = 0; i < 100; i++) {
            const r = await s.jobListScan({ ...filter, order, limit: 2, scanLimit: 3, ...(afterId === undefined ? {} : { afterId }) });
            seen.push(...r.rows.map((x) => x.id));
            afterId = r.scanEnd ?? (r.rows.length === 2 ? r.rows[1]!.id : undefined);
            if (afterId === undefined) break;
          }
          assert.deepEqual(seen, order === 'asc' ? want : [...want].reverse(), `${JSON.stringify(filter)} ${order}: a walk finds every match once`);
        }
      }
      // Filters listed through an index: the budget is left aside.
      for (const filter of [{}, { statuses: ['completed', 'running'] }, { parentId: f.parentId }, { fanOutId: f.fanOutId, type: f.stepType }] as JobFilter[]) {
        for (const order of ['asc', 'desc'] as const) {
          const got = await s.jobListScan({ ...filter, order, limit: 100, scanLimit: 1 });
          assert.deepEqual(got, { rows: await s.jobList({ ...filter, order, limit: 100 }), scanEnd: null }, `${JSON.stringify(filter)} ${order}: as jobList`);
        }
      }
      assert.deepEqual(await s.jobListScan({ type: f.typeA, limit: 0, scanLimit: 5 }), { rows: [], scanEnd: null }, 'limit 0 reads nothing');
      assert.deepEqual(await s.jobListScan({ statuses: [], type: f.typeA, limit: 5, scanLimit: 5 }), { rows: [], scanEnd: null }, 'an empty status list matches nothing');
    });
  });

  describe('operator listing: pages while jobs change', () => {
    const ctx = useStorage(make, 'conformance-listing-live');

    /** Jobs of one type split over two queues (even positions in the first); ids in order. */
    async function twoQueues(s: Storage): Promise<{ type: string; busy: string; idle: string; original: string[] }> {
      const type = uniqueName('t');
      const busy = uniqueName('q');
      const idle = uniqueName('q');
      const jobs = Array.from({ length: 21 }, (_, i) => jobInsert({ type, queue: i % 2 === 0 ? busy : idle }));
      await s.jobInsertMany({ jobs });
      return { type, busy, idle, original: jobs.map((j) => j.id) };
    }

    /** Between two pages: inserts two jobs of `type` into `queue` and completes its three oldest ready ones. */
    async function churn(s: Storage, type: string, queue: string, added: string[]): Promise<void> {
      const jobs = [jobInsert({ type, queue }), jobInsert({ type, queue })];
      await s.jobInsertMany({ jobs });
      added.push(...jobs.map((j) => j.id));
      const claimed = await claim(s, queue, 3);
      const items = claimed.map((r) => ({ ...fenceOf(r), outcome: 'completed' as const, resultJson: null }));
      if (items.length > 0) assert.ok(applied(await s.jobFinishMany({ items })).every(Boolean));
    }

    /** Pages through `f` in `order`, churning the busy queue between pages. */
    async function churnedPages(s: Storage, type: string, busy: string, f: JobFilter, order: 'asc' | 'desc'): Promise<{ seen: string[]; added: string[] }> {
      const seen: string[] = [];
      const added: string[] = [];
      let afterId: string | undefined;
      for (let i = 0; i < 200; i++) {
        const page = await s.jobList({ ...f, order, limit: 4, ...(afterId === undefined ? {} : { afterId }) });
        seen.push(...page.map((r) => r.id));
        if (page.length < 4) return { seen, added };
        afterId = page[page.length - 1]!.id;
        await churn(s, type, busy, added);
      }
      throw new Error('churnedPages: too many pages');
    }

    /** Asserts no id was listed twice. */
    function expectNoDuplicates(seen: string[], what: string): void {
      const dup = seen.find((id, i) => seen.indexOf(id) !== i);
      assert.equal(dup, undefined, `${what}: job ${dup ?? ''} listed twice`);
    }

    for (const order of ['desc', 'asc'] as const) {
      it(`${order}: every job present throughout is listed exactly once; new jobs only after the cursor`, async () => {
        const s = ctx.s;
        const { type, busy, original } = await twoQueues(s);
        const { seen, added } = await churnedPages(s, type, busy, { type }, order);
        expectNoDuplicates(seen, order);
        assert.ok(added.length >= 8, 'jobs were inserted between pages');
        for (const id of original) assert.equal(seen.filter((x) => x === id).length, 1, `job ${id} listed once`);
        if (order === 'desc') assert.deepEqual(seen, [...original].reverse(), 'desc: only the jobs older than the cursor');
        else assert.deepEqual(seen, [...original, ...added], 'asc: every job, the new ones at the end');
        assert.equal(await s.jobCount({ type }), original.length + added.length);
      });

      it(`${order}: with a status filter, jobs matching throughout are listed once, none twice`, async () => {
        const s = ctx.s;
        const { type, busy, idle, original } = await twoQueues(s);
        const f: JobFilter = { type, statuses: ['pending'] };
        const { seen } = await churnedPages(s, type, busy, f, order);
        expectNoDuplicates(seen, order);
        const stillPending = await s.jobList({ ...f, limit: 1_000, order: 'asc' });
        const throughout = stillPending.map((r) => r.id).filter((id) => original.includes(id));
        const idleIds = stillPending.filter((r) => r.queue === idle).map((r) => r.id);
        assert.equal(idleIds.length, 10, "the idle queue's jobs stayed pending throughout");
        for (const id of throughout) assert.equal(seen.filter((x) => x === id).length, 1, `job ${id}, pending throughout, listed once`);
        const ordered = order === 'asc' ? [...seen].sort() : [...seen].sort().reverse();
        assert.deepEqual(seen, ordered, `pages are in ${order} id order`);
        assert.equal(await s.jobCount(f), stillPending.length);
      });
    }
  });
}
