/**
 * The dashboard's HTTP API on every driver, through its fetch handler, against a real database
 * with a real worker: authorize is asked for every request with its action and a denial is a
 * 403 that changes nothing; cross-site mutations and mutations of a read-only dashboard are
 * refused; listings filter, search and page; a workflow's checkpoints and fan-out children are
 * served; bulk retry, queue pause and resume, schedules, redaction, and the live stream.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { dashboard, type DashboardAction, type Dashboard } from '../../src/dashboard/index.js';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import { sub } from '../../src/workflow/fan-out.js';
import { uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';
import { getJson, ORIGIN, postJson } from './requests.js';

interface JobJ { id: string; status: string; type: string; args?: unknown; result?: unknown; lastError?: string; redacted?: string[] }

for (const [name, make] of storageMatrix()) {
  describe(`dashboard API (${name})`, () => {
    let ts: TestStorage;
    let queue: Queue;
    const uis: Dashboard[] = [];
    const q = uniqueName('dash');
    const open = (o: Parameters<typeof dashboard>[1]): Dashboard => {
      const ui = dashboard(queue, o);
      uis.push(ui);
      return ui;
    };
    before(async () => {
      ts = await make(`dashboard-api-${name}`);
      queue = new Queue(ts.storage);
      queue.register('flaky', async (a: { fail: boolean }) => {
        if (a.fail) throw new Error('upstream timeout 504');
        return 'fine';
      });
      queue.register('leaf', async (n: number) => n * 2);
      queue.register('flow', async (_a: unknown, ctx) => {
        const one = await ctx.call<number>('leaf', 1);
        const kids = await ctx.fanOut([sub('leaf', 2, { queue: q }), sub('leaf', 3, { queue: q })]);
        return { one, kids: kids.length };
      });
    });
    afterEach(stopAllWorkers);
    after(async () => {
      for (const ui of uis) ui.close();
      await ts.cleanup();
    });

    it('asks authorize for every request with its action; a denial is a 403 that changes nothing', async () => {
      const asked: [string, DashboardAction][] = [];
      let allow = (_a: DashboardAction): boolean => true;
      const ui = open({ authorize: (req, action) => (asked.push([new URL(req.url).pathname, action]), allow(action)) });
      const id = await queue.enqueue('flaky', { fail: true }, { queue: `${q}_auth`, retries: 0 });
      const w = startWorker(queue, { queues: { [`${q}_auth`]: { concurrency: 1 } } });
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'failed');
      await w.stop();
      assert.equal((await ui.fetch(new Request(`${ORIGIN}/`))).status, 200);
      assert.equal((await getJson(ui, '/api/jobs')).status, 200);
      assert.equal((await ui.fetch(new Request(`${ORIGIN}/assets/app.js`))).status, 200);
      allow = (a) => a === 'view';
      const denied = await postJson<{ error: { code: string } }>(ui, `/api/jobs/${id}/retry`);
      assert.equal(denied.status, 403);
      assert.equal(denied.body.error.code, 'FORBIDDEN');
      assert.equal((await queue.getJob(id))?.status, 'failed', 'the denied retry did nothing');
      allow = () => false;
      assert.equal((await getJson(ui, '/api/jobs')).status, 403);
      assert.equal((await ui.fetch(new Request(`${ORIGIN}/`))).status, 403);
      allow = () => {
        throw new Error('auth service down');
      };
      assert.equal((await getJson(ui, '/api/queues')).status, 403, 'a throwing authorize denies');
      assert.deepEqual(asked.map(([, a]) => a), ['view', 'view', 'view', 'retry', 'view', 'view', 'view']);
      allow = () => true;
      assert.equal((await postJson(ui, `/api/jobs/${id}/retry`)).status, 200);
      assert.notEqual((await queue.getJob(id))?.status, 'failed');
      assert.deepEqual(asked.at(-1), [`/api/jobs/${id}/retry`, 'retry']);
      await queue.cancelJob(id);
    });

    it('refuses cross-site mutations, and every mutation of a read-only dashboard', async () => {
      const qn = `${q}_csrf`;
      await queue.enqueue('leaf', 1, { queue: qn });
      const asked: DashboardAction[] = [];
      const ui = open({ authorize: (_r, a) => (asked.push(a), true), trustedOrigins: ['https://ops.example.com'] });
      const attempts: Record<string, string | null>[] = [
        { 'x-sdj-dashboard': null },
        { 'content-type': 'text/plain' },
        { 'content-type': 'application/x-www-form-urlencoded' },
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
        { 'sec-fetch-site': null, origin: 'https://evil.example' },
      ];
      for (const headers of attempts) {
        const r = await postJson<{ error: { code: string } }>(ui, `/api/queues/${qn}/pause`, {}, headers);
        assert.equal(r.status, 403, JSON.stringify(headers));
        assert.equal(r.body.error.code, 'CROSS_SITE');
      }
      assert.equal(asked.length, 0, 'a cross-site request is refused before authorize');
      assert.equal((await queue.queues()).find((x) => x.name === qn)?.paused, false);
      // A browser without Sec-Fetch-Site, from a trusted origin, and a non-browser client.
      assert.equal((await postJson(ui, `/api/queues/${qn}/pause`, {}, { 'sec-fetch-site': null, origin: 'https://ops.example.com' })).status, 200);
      assert.equal((await postJson(ui, `/api/queues/${qn}/resume`, {}, { 'sec-fetch-site': null, origin: null })).status, 200);

      const ro = open({ authorize: (_r, a) => (asked.push(a), true), readOnly: true });
      asked.length = 0;
      const refused = await postJson<{ error: { code: string } }>(ro, `/api/queues/${qn}/pause`);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error.code, 'READ_ONLY');
      assert.equal(asked.length, 0, 'a read-only dashboard refuses before authorize');
      assert.equal((await getJson<{ readOnly: boolean }>(ro, '/api/config')).body.readOnly, true);
      assert.equal((await queue.queues()).find((x) => x.name === qn)?.paused, false);
      assert.equal((await ro.fetch(new Request(`${ORIGIN}/api/jobs`, { method: 'DELETE' }))).status, 405);
    });

    it('lists with filters, search and keyset pages; serves a workflow with its checkpoints and sub-jobs', async () => {
      const ui = open({ insecure: true });
      const failedIds = await Promise.all([0, 1, 2].map((i) => queue.enqueue('flaky', { fail: true, i }, { queue: q, retries: 0 })));
      await queue.enqueue('flaky', { fail: false }, { queue: q });
      const flowId = await queue.enqueue('flow', {}, { queue: q });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 4 } } });
      await Promise.all([...failedIds, flowId].map((id) => queue.waitForJob(id, { timeout: 15_000 })));
      await w.stop();

      const failed = await getJson<{ jobs: JobJ[]; nextCursor?: string }>(ui, `/api/jobs?status=failed&queue=${q}&search=TIMEOUT&limit=2`);
      assert.equal(failed.status, 200);
      assert.match(failed.res.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(failed.body.jobs.length, 2);
      assert.ok(failed.body.nextCursor);
      const rest = await getJson<{ jobs: JobJ[]; nextCursor?: string }>(ui, `/api/jobs?status=failed&queue=${q}&search=TIMEOUT&limit=2&cursor=${encodeURIComponent(failed.body.nextCursor)}`);
      assert.deepEqual([...failed.body.jobs, ...rest.body.jobs].map((j) => j.id).sort(), [...failedIds].sort());
      assert.equal(rest.body.nextCursor, undefined);
      assert.equal((await getJson(ui, `/api/jobs?status=failed&queue=${q}&search=nomatch`)).body['jobs'] instanceof Array, true);
      assert.equal((await getJson(ui, '/api/jobs?status=broken')).status, 400);
      assert.equal((await getJson(ui, '/api/jobs?limit=9999')).status, 400);
      assert.equal((await getJson(ui, '/api/jobs/00000000-0000-7000-8000-000000000000')).status, 404);

      const detail = await getJson<{ job: JobJ; steps: { name: string; status: string; output?: unknown }[]; children: { jobs: JobJ[] } }>(ui, `/api/jobs/${flowId}`);
      assert.equal(detail.body.job.status, 'completed');
      assert.deepEqual(detail.body.job.result, { one: 2, kids: 2 });
      assert.deepEqual(detail.body.steps.slice(0, 2).map((s) => [s.name, s.status]), [['leaf', 'completed'], ['fan-out', 'completed']]);
      assert.equal(detail.body.steps[0]!.output, 2);
      assert.equal(detail.body.children.jobs.length, 2);
      assert.ok(detail.body.children.jobs.every((c) => c.type === 'leaf' && c.status === 'completed'));
    });

    it('bulk-retries the failed jobs of a filter, and refuses a bulk action without a status', async () => {
      const ui = open({ insecure: true });
      const qn = `${q}_bulk`;
      const ids = await Promise.all([0, 1, 2].map((i) => queue.enqueue('flaky', { fail: true, i }, { queue: qn, retries: 0 })));
      const w = startWorker(queue, { queues: { [qn]: { concurrency: 3 } } });
      await Promise.all(ids.map((id) => queue.waitForJob(id, { timeout: 10_000 })));
      await w.stop();
      assert.equal((await postJson(ui, '/api/bulk/retry', { filter: { queue: qn } })).status, 400);
      const r = await postJson<{ count: number; skippedCount: number }>(ui, '/api/bulk/retry', { filter: { status: 'failed', queue: qn } });
      assert.equal(r.status, 200);
      assert.equal(r.body.count, 3);
      for (const id of ids) assert.equal((await queue.getJob(id))?.status, 'pending');
      await queue.cancelJobs({ queue: qn, status: 'pending' });
    });

    it('pauses and resumes a queue, lists schedules, and redacts payloads when asked', async () => {
      const qn = `${q}_pause`;
      await queue.enqueue('flaky', { fail: false, secret: 's3cr3t' }, { queue: qn });
      const ui = open({ insecure: true });
      assert.equal((await postJson(ui, `/api/queues/${qn}/pause`)).status, 200);
      assert.equal((await getJson<{ queues: { name: string; paused: boolean }[] }>(ui, '/api/queues')).body.queues.find((x) => x.name === qn)?.paused, true);
      assert.equal((await postJson(ui, `/api/queues/${qn}/resume`)).status, 200);
      assert.equal((await queue.queues()).find((x) => x.name === qn)?.paused, false);

      const sched = uniqueName('nightly');
      await queue.schedule(sched, every(3_600_000), { args: { token: 'hidden-arg' }, type: 'leaf' });
      const list = await getJson<{ schedules: { name: string; nextRunAt: string; overdue: boolean; options: { args?: unknown } }[] }>(ui, '/api/schedules');
      const s = list.body.schedules.find((x) => x.name === sched);
      assert.ok(s && Date.parse(s.nextRunAt) > Date.now() - 1000 && s.overdue === false);

      const red = open({ insecure: true, redact: true });
      const jobs = await getJson<{ jobs: JobJ[] }>(red, `/api/jobs?queue=${qn}`);
      const text = JSON.stringify(jobs.body) + JSON.stringify((await getJson(red, '/api/schedules')).body);
      assert.doesNotMatch(text, /s3cr3t|hidden-arg/);
      assert.deepEqual(jobs.body.jobs[0]!.redacted, ['args', 'meta']);
      assert.equal((await getJson(red, '/api/jobs?search=x')).status, 400, 'search matches hidden error texts');
      const some = open({ insecure: true, redact: { results: true } });
      assert.match(JSON.stringify((await getJson(some, `/api/jobs?queue=${qn}`)).body), /s3cr3t/);
      await queue.unschedule(sched);
      await queue.cancelJobs({ queue: qn, status: 'pending' });
    });

    it('streams live snapshots to every page from one shared read, and ends the streams on close()', async () => {
      const ui = dashboard(queue, { insecure: true, pollInterval: 250 });
      const readers = await Promise.all([0, 1].map(async () => {
        const res = await ui.fetch(new Request(`${ORIGIN}/api/live`));
        assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
        return res.body!.getReader();
      }));
      const decoder = new TextDecoder();
      for (const reader of readers) {
        let text = '';
        while (!text.includes('\n\n')) text += decoder.decode((await reader.read()).value);
        assert.match(text, /^event: snapshot\ndata: \{"version":\d+,/);
        const snap = JSON.parse(/data: (.*)/.exec(text)![1]!) as { stats: Record<string, number> };
        assert.equal(typeof snap.stats['pending'], 'number');
      }
      ui.close();
      for (const reader of readers) {
        for (;;) if ((await reader.read()).done) break;
      }
    });
  });
}
