/**
 * Attacks through the data, on every driver: secrets in args, meta, results, progress
 * messages, errors, checkpoint outputs, signal payloads, fan-out children and schedules must not
 * appear in any response of a dashboard that redacts them (listings, job pages, sub-job pages,
 * schedules, overview, the live stream), nor be found by search; hostile filters, ids, cursors,
 * limits and dates are refused (400) or matched literally, never a 500; hostile names come back
 * as the same JSON text.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { dashboard, type Dashboard, type DashboardOptions } from '../../src/dashboard/index.js';
import { noRetry } from '../../src/index.js';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import { sub } from '../../src/workflow/fan-out.js';
import { uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { getJson, ORIGIN, postJson } from './requests.js';

interface Row { id: string; redacted?: string[] }

/** Every read a page can make, as one text: listings, each job's page, schedules, overview, queues, workers, a live snapshot. */
async function everything(ui: Dashboard, q: string, ids: readonly string[]): Promise<string> {
  const parts: string[] = [];
  const read = async (path: string): Promise<unknown> => {
    const r = await getJson(ui, path);
    assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
    parts.push(JSON.stringify(r.body));
    return r.body;
  };
  await read(`/api/jobs?queue=${q}&limit=500`);
  for (const s of ['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'paused']) await read(`/api/jobs?status=${s}&limit=500`);
  for (const id of ids) {
    await read(`/api/jobs/${id}`);
    await read(`/api/jobs?parentId=${id}&order=asc`);
  }
  for (const path of ['/api/schedules', '/api/overview', '/api/queues', '/api/workers', '/api/config']) await read(path);
  const live = await ui.fetch(new Request(`${ORIGIN}/api/live`));
  const reader = live.body!.getReader();
  let text = '';
  while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
  await reader.cancel();
  parts.push(text);
  return parts.join('\n');
}

for (const [name, make] of storageMatrix()) {
  describe(`dashboard attacks through the data (${name})`, () => {
    let ts: TestStorage;
    let queue: Queue;
    const uis: Dashboard[] = [];
    const q = uniqueName('leak');
    const ids: string[] = [];
    const sched = uniqueName('sched');
    const open = (o: DashboardOptions): Dashboard => {
      const ui = dashboard(queue, o);
      uis.push(ui);
      return ui;
    };

    before(async () => {
      ts = await make(`dashboard-attack-data-${name}`);
      queue = new Queue(ts.storage);
      queue.register('leaf', async (a: { s: string }, ctx) => {
        await ctx.progress(0.5, `S3CRET-progress-${a.s}`);
        return { token: `S3CRET-result-leaf-${a.s}` };
      });
      queue.register('boom', async (a: { s: string }) => {
        throw new Error(`S3CRET-error-child-${a.s}`);
      });
      queue.register('flow', async (_a: { s: string }, ctx) => {
        await ctx.call('leaf', { s: 'step-arg' });
        await ctx.progress(0.7, 'S3CRET-progress-flow');
        await ctx.fanOut([sub('leaf', { s: 'child-arg' }, { queue: q }), sub('boom', { s: 'child-arg' }, { queue: q, retries: 0 })], { strategy: 'collect-all' });
        const got = await ctx.waitForSignal<{ token: string }>('go');
        return { token: 'S3CRET-result-flow', signalled: got !== undefined };
      });
      queue.register('flow-fails', async (_a: unknown, ctx) => {
        await ctx.call('step-fails', {});
      });
      queue.register('step-fails', async () => {
        throw noRetry(new Error('S3CRET-error-step'));
      });

      const w = startWorker(queue, { queues: { [q]: { concurrency: 4 } } });
      const flow = await queue.enqueue('flow', { s: 'S3CRET-arg-root' }, { queue: q, meta: { token: 'S3CRET-meta' }, tenant: 'tenant-visible' });
      const failing = await queue.enqueue('flow-fails', { s: 'S3CRET-arg-failing' }, { queue: q, retries: 0 });
      await waitFor(async () => (await queue.getJob(flow))?.status === 'waiting' && (await queue.getSteps(flow)).some((s) => s.name === 'signal:go'), { timeout: 20_000 });
      await queue.signal(flow, 'go', { token: 'S3CRET-signal-payload' });
      await Promise.all([flow, failing].map((id) => queue.waitForJob(id, { timeout: 20_000 })));
      await w.stop();
      ids.push(...(await queue.listJobs({ queue: q, limit: 500 })).jobs.map((j) => j.id));
      await queue.schedule(sched, every(3_600_000), { type: 'leaf', queue: q, args: { s: 'S3CRET-sched-arg' }, meta: { k: 'S3CRET-sched-meta' } });
      const all = await everything(open({ insecure: true }), q, ids);
      // The unredacted dashboard shows each secret: the checks below hide something real.
      for (const s of ['arg-root', 'meta', 'result-leaf', 'progress-flow', 'error-child', 'error-step', 'signal-payload', 'sched-arg', 'sched-meta', 'result-flow']) {
        assert.match(all, new RegExp(`S3CRET-${s}`), s);
      }
    });
    afterEach(stopAllWorkers);
    after(async () => {
      for (const ui of uis) ui.close();
      await queue.unschedule(sched);
      await ts.cleanup();
    });

    it('redact: true hides every payload from every response, and names what it hid', async () => {
      const ui = open({ insecure: true, redact: true });
      const all = await everything(ui, q, ids);
      assert.doesNotMatch(all, /S3CRET/);
      const rows = (await getJson<{ jobs: Row[] }>(ui, `/api/jobs?queue=${q}&limit=500`)).body.jobs;
      assert.ok(rows.every((r) => r.redacted?.includes('args') && r.redacted.includes('meta')));
      assert.equal((await getJson(ui, '/api/jobs?search=S3CRET')).status, 400, 'search would be an oracle on error texts');
      assert.equal((await postJson(ui, '/api/bulk/cancel', { filter: { status: 'pending', search: 'S3CRET' } })).status, 400);
      const sent = await postJson(ui, `/api/jobs/${ids[0]}/signal`, { name: 'late', payload: { token: 'S3CRET-echo' } });
      assert.doesNotMatch(JSON.stringify(sent.body), /S3CRET/, 'a signal is not echoed');
    });

    it('each redact part hides its own payloads', async () => {
      const args = await everything(open({ insecure: true, redact: { args: true } }), q, ids);
      assert.doesNotMatch(args, /S3CRET-(arg|meta|signal-payload|sched-arg|sched-meta)/);
      assert.match(args, /S3CRET-result-leaf/);
      const results = await everything(open({ insecure: true, redact: { results: true } }), q, ids);
      assert.doesNotMatch(results, /S3CRET-(result|progress)/, 'results, checkpoint outputs and progress messages');
      assert.match(results, /S3CRET-arg-root/);
      const errors = await everything(open({ insecure: true, redact: { errors: true } }), q, ids);
      assert.doesNotMatch(errors, /S3CRET-error/);
      assert.match(errors, /S3CRET-result-leaf/);
      // Search matches only error texts and types: with args hidden it finds no job by its args.
      const argsUi = open({ insecure: true, redact: { args: true } });
      assert.deepEqual((await getJson<{ jobs: Row[] }>(argsUi, `/api/jobs?queue=${q}&search=S3CRET-arg`)).body.jobs, []);
    });

    it('refuses hostile limits, cursors, dates, ids and filters with 400 (never 500), and matches SQL-looking text literally', async () => {
      const ui = open({ insecure: true });
      const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
      const bad = [
        ...['0', '501', '-1', '1e9', '1.5', ' 5', 'abc', '9999', '0x10'].map((l) => `/api/jobs?limit=${encodeURIComponent(l)}`),
        ...['!!!', 'x'.repeat(500), b64('desc.\u0000'), b64('asc.x'), b64('sideways.x'), b64('desc.')].map((c) => `/api/jobs?cursor=${encodeURIComponent(c)}`),
        ...['garbage', '2024-13-45', 'Infinity', ''].filter(Boolean).map((d) => `/api/jobs?createdAfter=${encodeURIComponent(d)}`),
        ...['queue', 'type', 'tenant', 'parentId', 'search'].map((f) => `/api/jobs?${f}=a%00b`),
        `/api/jobs?queue=${encodeURIComponent("'; DROP TABLE jobs; --")}`,
        '/api/jobs?status=failed,evil',
        '/api/jobs?order=sideways',
        `/api/jobs?search=${'x'.repeat(300)}`,
        '/api/jobs/%00',
        `/api/jobs/${'x'.repeat(300)}`,
        '/api/jobs/a%0Ab',
      ];
      for (const path of bad) {
        const r = await getJson<{ error: { code: string } }>(ui, path);
        assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
      }
      for (const d of ['+275760-09-13T00:00:00.000Z', '-271821-04-20T00:00:00.000Z', '9999-12-31T23:59:59Z', '0000-01-01T00:00:00Z', '1970-01-01T00:00:00Z']) {
        for (const f of ['createdAfter', 'createdBefore']) {
          const r = await getJson(ui, `/api/jobs?${f}=${encodeURIComponent(d)}`);
          assert.equal(r.status, 200, `${f}=${d}: ${JSON.stringify(r.body)}`);
        }
      }
      const literal = ["' OR '1'='1", '%', '_', '\\', '"; --', '\u{1F600}', 'é', '\uFFFD'].flatMap((s) => ['type', 'tenant', 'search', 'parentId'].map((f) => `/api/jobs?${f}=${encodeURIComponent(s)}`));
      for (const path of [...literal, `/api/jobs?cursor=${b64("desc.' OR 1=1 --")}&queue=${q}`]) {
        const r = await getJson<{ jobs: unknown[] }>(ui, path);
        assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
        if (!path.includes('cursor')) assert.deepEqual(r.body.jobs, [], `${path} matches nothing`);
      }
      for (const path of ["/api/jobs/' OR 1=1 --", '/api/jobs/%ED%A0%80', '/api/jobs/%F0%9F%98%80', '/api/jobs/%25', '/api/jobs/..%2F..']) {
        const r = await getJson<{ error: { code: string } }>(ui, path.replace(/ /g, '%20'));
        assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status} ${JSON.stringify(r.body)}`);
      }
      // Lone surrogates and NUL in JSON bodies.
      const none = '00000000-0000-7000-8000-000000000000';
      for (const [path, body] of [
        ['/api/bulk/cancel', { filter: { status: 'pending', type: '\ud800' } }],
        ['/api/bulk/cancel', { filter: { status: 'pending', tenant: 'a\u0000b' } }],
        ['/api/bulk/cancel', { filter: { status: 'pending', createdAfter: '+999999-01-01T00:00:00Z' } }],
        [`/api/jobs/${none}/signal`, { name: '\udc00' }],
        [`/api/jobs/${none}/signal`, { name: 5 }],
      ] as [string, unknown][]) {
        const r = await postJson(ui, path, body);
        assert.ok(r.status === 400 || r.status === 404, `${path} ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
      }
      const surrogatePayload = await postJson(ui, `/api/jobs/${none}/signal`, { name: 'go', payload: { s: '\ud800' } });
      assert.equal(surrogatePayload.status, 404);
    });

    it('sends hostile names back as the same JSON text, as application/json with nosniff', async () => {
      const ui = open({ insecure: true });
      const hostile = '<script>window.__pwned=1</script>"><img src=x onerror=alert(1)>javascript:alert(1)';
      const id = await queue.enqueue(hostile, { html: '</pre><script>alert(1)</script>' }, { queue: q, tenant: hostile, unique: `u-${hostile}` });
      const res = await ui.fetch(new Request(`${ORIGIN}/api/jobs?type=${encodeURIComponent(hostile)}`));
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      const body = (await res.json()) as { jobs: { id: string; type: string; tenant: string; unique: string; args: { html: string } }[] };
      assert.deepEqual(body.jobs.map((j) => [j.id, j.type, j.tenant, j.unique, j.args.html]), [[id, hostile, hostile, `u-${hostile}`, '</pre><script>alert(1)</script>']]);
      await queue.cancelJob(id);
    });
  });
}
