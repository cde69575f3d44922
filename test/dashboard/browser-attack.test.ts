/**
 * Hostile strings through the real dashboard in headless Chromium (SQLite): a job type, tenant,
 * unique key, meta, args, result, progress message, error text, checkpoint names, signal name,
 * sub-job, schedule name and worker name that each carry `<script>`, `"><img onerror>` and
 * `javascript:`; every page that shows them, hostile filters and routes in the link, and a
 * route with a dot segment for an id. No script runs, no element is injected, every link stays
 * a `#` route, and the page keeps working.
 * @serial
 * @storage sqlite
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { dashboard, type Dashboard } from '../../src/dashboard/index.js';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import { sub } from '../../src/workflow/fan-out.js';
import { uniqueName } from '../helpers/factories.js';
import { makeSqliteStorage } from '../helpers/sqlite-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, type Started } from '../helpers/workflow-harness.js';
import { startBrowser, type TestBrowser } from './browser.js';

/** Each piece, if it ever ran, counts in `window.__xss`. */
const H = `"><img src=x onerror="window.__xss=(window.__xss||0)+1"><script>window.__xss=(window.__xss||0)+1</script><svg onload="window.__xss=1">javascript:window.__xss=1`;

/** What must hold on every page: nothing ran, nothing was injected, every link is a route. */
async function clean(page: Page, where: string): Promise<void> {
  const found = (await page.evaluate(`(() => {
    const app = document.getElementById('app');
    const bad = [];
    if (window.__xss !== undefined) bad.push('script ran: ' + window.__xss);
    for (const el of app.querySelectorAll('script, img, svg:not([class]), iframe, object, embed')) bad.push('element: ' + el.outerHTML.slice(0, 80));
    for (const el of app.querySelectorAll('*')) {
      for (const a of el.attributes) if (/^on/i.test(a.name)) bad.push('handler attribute: ' + a.name);
    }
    for (const a of app.querySelectorAll('a[href]')) if (!a.getAttribute('href').startsWith('#')) bad.push('link: ' + a.getAttribute('href'));
    return bad;
  })()`)) as string[];
  assert.deepEqual(found, [], where);
}

describe('hostile strings in the dashboard in Chromium (sqlite)', () => {
  let ts: TestStorage;
  let queue: Queue;
  let ui: Dashboard;
  let server: Server;
  let browser: TestBrowser;
  let page: Page;
  let base: string;
  let worker: Started;
  const q = uniqueName('xss');
  const errors: string[] = [];
  const flowType = `flow${H}`;
  const stepType = `step${H}`;
  const childType = `child${H}`;
  let flowId = '';
  let childId = '';

  before(async () => {
    ts = await makeSqliteStorage('dashboard-browser-attack');
    queue = new Queue(ts.storage);
    queue.register(stepType, async (a: unknown) => ({ [H]: a }));
    queue.register(childType, async () => {
      throw new Error(`${H}\nsecond line ${H}`);
    });
    queue.register(flowType, async (_a: unknown, ctx) => {
      await ctx.progress(0.5, H);
      await ctx.call(stepType, H);
      await ctx.fanOut([sub(childType, H, { queue: q, retries: 0 })], { strategy: 'collect-all' });
      await ctx.waitForSignal(`sig${H}`);
    });
    worker = startWorker(queue, { name: `worker${H}`, queues: { [q]: { concurrency: 2 } } });
    flowId = await queue.enqueue(flowType, { [H]: H }, { queue: q, tenant: H, unique: H, meta: { [H]: H } });
    await waitFor(async () => (await queue.getJob(flowId))?.status === 'waiting' && (await queue.getSteps(flowId)).some((s) => s.name.startsWith('signal:')), { timeout: 20_000 });
    childId = (await queue.listJobs({ parentId: flowId })).jobs[0]!.id;
    await queue.schedule(`sched${H}`, every(3_600_000), { type: stepType, queue: q, args: H, tenant: H });
    ui = dashboard(queue, { basePath: '/x', pollInterval: 250, insecure: true });
    server = createServer(ui.node).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x/`;
    browser = await startBrowser();
    page = await browser.browser.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => void d.dismiss());
  });
  after(async () => {
    await worker?.stop();
    await browser?.close();
    ui?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await queue?.unschedule(`sched${H}`).catch(() => undefined);
    await ts?.cleanup();
  });

  it('shows every hostile string as text on every page, running nothing', async () => {
    await page.goto(`${base}#/`);
    await page.getByText('Throughput').waitFor();
    await clean(page, 'overview');

    await page.goto(`${base}#/jobs?queue=${q}`);
    await page.locator(`tr[data-job-id="${flowId}"]`).waitFor();
    await page.locator(`tr[data-job-id="${childId}"] .error-cell`).waitFor();
    assert.equal(await page.locator(`tr[data-job-id="${flowId}"] td`).nth(1).textContent(), flowType);
    await clean(page, 'jobs');

    await page.goto(`${base}#/jobs/${flowId}`);
    await page.getByRole('heading', { name: 'Checkpoints' }).waitFor();
    await page.getByRole('heading', { name: 'Sub-jobs' }).waitFor();
    await page.getByRole('heading', { name: 'Send a signal' }).waitFor();
    const text = (await page.locator('main').textContent()) ?? '';
    for (const shown of [flowType, stepType, `signal:sig${H}`]) assert.ok(text.includes(shown), `the page shows ${shown.slice(0, 20)}… as text`);
    await page.getByRole('button', { name: `Open sub-jobs of ${childId}` }).waitFor();
    await clean(page, 'job page');

    await page.goto(`${base}#/jobs/${childId}`);
    await page.getByRole('heading', { name: 'Last error' }).waitFor();
    assert.ok(((await page.locator('pre.error-text').textContent()) ?? '').includes(H));
    await clean(page, 'sub-job page');

    await page.goto(`${base}#/schedules`);
    await page.getByText(`sched${H}`).waitFor();
    await clean(page, 'schedules');
    await page.goto(`${base}#/workers`);
    await page.getByText(`worker${H}`, { exact: false }).first().waitFor();
    await clean(page, 'workers');
    await page.goto(`${base}#/queues`);
    await page.getByText(q).first().waitFor();
    await clean(page, 'queues');
    assert.deepEqual(errors, []);
  });

  it('takes hostile filters and routes from the link as text, and keeps working after a route with a dot segment', async () => {
    const filter = new URLSearchParams({ status: 'failed', type: H, tenant: H, search: H, queue: q }).toString();
    await page.goto(`${base}#/jobs?${filter}`);
    await page.getByRole('group', { name: 'Bulk actions' }).waitFor();
    assert.equal(await page.getByLabel('Type').inputValue(), H);
    // The bulk confirmation names the hostile filter as text (the dialog is dismissed: nothing done).
    await page.getByRole('button', { name: 'Delete all' }).click();
    await clean(page, 'hostile filter');

    const broken: string[] = [];
    for (const route of [`#/jobs/${encodeURIComponent(H)}`, `#/${encodeURIComponent(H)}`, '#/jobs/..', '#/jobs/.', '#/jobs/%2E', '#/jobs/%E0%A4%A', `#/jobs/${flowId}/..`]) {
      await page.goto('about:blank');
      await page.goto(`${base}${route}`);
      // Settled: the view answered (a job, an error, "No such view"), or the page threw.
      await waitFor(async () => errors.length > 0 || (await page.evaluate(`(() => { const m = document.querySelector('main'); return m.textContent !== '' && !m.textContent.includes('Loading'); })()`)), { message: route });
      await clean(page, route);
      for (const e of errors.splice(0)) broken.push(`${route}: ${e}`);
    }
    assert.deepEqual(broken, [], 'no route breaks the page');
    assert.equal((await queue.getJob(childId))?.status, 'failed', 'the dismissed bulk delete did nothing');
  });
});
