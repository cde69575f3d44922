/**
 * The jobs page's scan budget through the dashboard's fetch handler, on every driver: `GET
 * /api/jobs` with a filter few jobs match reads at most `LIST_SCAN_LIMIT` jobs and answers a
 * short (here empty) page with `scanExhausted`, `scanned` and a cursor that continues the scan;
 * a status listing and a page that fills are ordinary pages; a bulk action on the same filter
 * acts on every matching job, whatever the budget.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dashboard, type Dashboard } from '../../src/dashboard/index.js';
import { LIST_SCAN_LIMIT } from '../../src/dashboard/payloads.js';
import { Queue } from '../../src/queue/queue.js';
import { jobInsert, uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { getJson, postJson } from './requests.js';

interface PageBody {
  jobs: { id: string; type: string }[];
  nextCursor?: string;
  scanExhausted?: boolean;
  scanned?: number;
}

for (const [name, make] of storageMatrix()) {
  describe(`dashboard jobs page scan budget (${name})`, () => {
    let ts: TestStorage;
    let ui: Dashboard;
    const rare = uniqueName('rare');
    const common = uniqueName('common');
    let rareIds: string[];
    before(async () => {
      ts = await make(`dashboard-scan-budget-${name}`);
      ui = dashboard(new Queue(ts.storage), { insecure: true });
      // Three old jobs of a rare type, then a budget's worth of newer ones of another type.
      const old = Array.from({ length: 3 }, () => jobInsert({ type: rare, queue: 'q' }));
      await ts.storage.jobInsertMany({ jobs: old });
      rareIds = old.map((j) => j.id);
      for (let done = 0; done < LIST_SCAN_LIMIT; done += 5_000) {
        await ts.storage.jobInsertMany({ jobs: Array.from({ length: Math.min(5_000, LIST_SCAN_LIMIT - done) }, () => jobInsert({ type: common, queue: 'q' })) });
      }
    });
    after(async () => {
      ui.close();
      await ts.cleanup();
    });

    it('a rare filter comes back short, with a cursor that continues the scan to its matches', async () => {
      const first = await getJson<PageBody>(ui, `/api/jobs?type=${rare}&limit=50`);
      assert.equal(first.status, 200);
      assert.deepEqual(first.body.jobs, [], 'the newest jobs read hold no match');
      assert.equal(first.body.scanExhausted, true);
      assert.equal(first.body.scanned, LIST_SCAN_LIMIT);
      assert.equal(typeof first.body.nextCursor, 'string');
      const next = await getJson<PageBody>(ui, `/api/jobs?type=${rare}&limit=50&cursor=${first.body.nextCursor!}`);
      assert.deepEqual(next.body.jobs.map((j) => j.id), [...rareIds].reverse());
      assert.equal(next.body.scanExhausted, undefined, 'fewer jobs than the budget were left: the last page');
      assert.equal(next.body.nextCursor, undefined);
    });

    it('a search few jobs match comes back short the same way; a page that fills is an ordinary page', async () => {
      const search = await getJson<PageBody>(ui, `/api/jobs?search=${rare}&limit=50`);
      assert.equal(search.body.scanExhausted, true);
      assert.deepEqual(search.body.jobs, []);
      const filled = await getJson<PageBody>(ui, `/api/jobs?type=${common}&limit=50`);
      assert.equal(filled.body.jobs.length, 50);
      assert.equal(filled.body.scanExhausted, undefined);
      assert.equal(typeof filled.body.nextCursor, 'string');
    });

    it('listings the budget does not apply to fill their page: statuses alone, no filter', async () => {
      for (const path of ['/api/jobs?status=pending&limit=50', '/api/jobs?limit=50']) {
        const page = await getJson<PageBody>(ui, path);
        assert.equal(page.body.jobs.length, 50, path);
        assert.deepEqual(Object.keys(page.body).sort(), ['jobs', 'nextCursor'], `${path}: no scan fields`);
      }
    });

    it('a bulk action on the rare filter acts on every matching job', async () => {
      const r = await postJson<{ count: number; skippedCount: number }>(ui, '/api/bulk/cancel', { filter: { status: 'pending', type: rare } });
      assert.equal(r.status, 200);
      assert.equal(r.body.count, 3);
      assert.equal(r.body.skippedCount, 0);
    });
  });
}
