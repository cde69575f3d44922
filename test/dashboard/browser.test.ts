/**
 * The dashboard in a real headless Chromium against a real database with a real worker
 * (SQLite and PostgreSQL): a failing job found by filter and search, opened, retried and seen
 * to complete without a reload; a queue paused and resumed from the page with the worker
 * honouring it; a bulk retry of failed jobs; a `<script>` payload rendered as text; a denied
 * user's mutation refused with 403; a cross-site POST from another origin refused; schedules
 * with their next fire (time and relative) and an overdue mark; relative times that move on
 * without a reload; a prune from the page; a queue paused by keyboard alone; main pages that fit
 * a 1280-pixel-wide window. The first driver's run writes the README's screenshots
 * (docs/images/dashboard-*.png).
 *
 * "Old" jobs and an overdue schedule come from a second storage on the same database whose
 * clock runs two days behind: no test waits for time to pass.
 * @serial
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { dashboard, type Dashboard, type DashboardAction } from '../../src/dashboard/index.js';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import { sub } from '../../src/workflow/fan-out.js';
import type { Storage } from '../../src/storage/storage.js';
import { completedJob, failedJob, uniqueName } from '../helpers/factories.js';
import { clockedDb } from '../helpers/schedule-helpers.js';
import { driverSelected, storageMatrix, type TestStorage } from '../helpers/storages.js';
import { holdsFor, startWorker, type Started } from '../helpers/workflow-harness.js';
import { startBrowser, type TestBrowser } from './browser.js';

const IMAGES = new URL('../../docs/images/', import.meta.url).pathname;
const drivers = storageMatrix().filter(([d]) => d === 'sqlite' || d === 'postgres');
const screenshotDriver = drivers[0]?.[0];
const DAY = 24 * 3600_000;

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

for (const [name] of drivers) {
  describe(`dashboard in Chromium (${name})`, () => {
    let ts: TestStorage;
    let queue: Queue;
    let ui: Dashboard;
    let browser: TestBrowser;
    let page: Page;
    let base: string;
    let worker: Started;
    /** The same database, seen through a clock two days behind. */
    let past: Storage;
    const servers: Server[] = [];
    let denyMutations = false;
    const q = uniqueName('web');
    const state = { broken: true };
    /** The page fits the window's width: no horizontal scrolling (the window is 1280 px wide). */
    const fitsWidth = async (what: string): Promise<void> => {
      const [scroll, client] = (await page.evaluate('[document.documentElement.scrollWidth, document.documentElement.clientWidth]')) as [number, number];
      assert.ok(scroll <= client, `${what}: ${scroll} px wide in a ${client} px window`);
    };
    const shoot = async (file: string): Promise<void> => {
      if (name !== screenshotDriver) return;
      mkdirSync(IMAGES, { recursive: true });
      await page.screenshot({ path: `${IMAGES}dashboard-${file}.png` });
    };

    before(async () => {
      const db = await clockedDb(name, `dashboard-web-${name}`);
      ts = { storage: await db.open(() => Date.now()), another: () => db.open(() => Date.now()), cleanup: () => db.cleanup() };
      past = await db.open(() => Date.now() - 2 * DAY);
      queue = new Queue(ts.storage);
      queue.register('charge-card', async (a: { order: string }, ctx) => {
        await ctx.progress(0.3, 'authorizing the card');
        if (state.broken) throw new Error(`card declined for order ${a.order}`);
        return { charged: a.order };
      });
      queue.register('resize', async (n: number) => ({ size: n * 100 }));
      queue.register('publish', async (_a: unknown, ctx) => {
        const cover = await ctx.call<{ size: number }>('resize', 1);
        await ctx.fanOut([sub('resize', 2, { queue: q }), sub('resize', 3, { queue: q })]);
        return { cover };
      });
      ui = dashboard(queue, { basePath: '/ops', pollInterval: 250, authorize: (_r, a: DashboardAction) => a === 'view' || !denyMutations });
      const s = await listen(ui.node);
      servers.push(s.server);
      base = `${s.url}/ops/`;
      worker = startWorker(queue, { queues: { [q]: { concurrency: 4 } } });
      browser = await startBrowser();
      page = await browser.browser.newPage();
      page.setDefaultTimeout(15_000);
      page.on('dialog', (d) => void d.accept());
    });
    afterEach(() => {
      denyMutations = false;
    });
    after(async () => {
      await worker?.stop();
      await browser?.close();
      ui?.close();
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      await ts?.cleanup();
    });

    it('finds a failing job by filter and search, opens it, retries it, and sees it complete without a reload', async () => {
      const id = await queue.enqueue('charge-card', { order: 'A-1001' }, { queue: q, retries: 0 });
      await queue.enqueue('resize', 5, { queue: q });
      await queue.waitForJob(id, { timeout: 15_000 });
      const flow = await queue.enqueue('publish', {}, { queue: q });
      await queue.waitForJob(flow, { timeout: 15_000 });

      await page.goto(`${base}#/`);
      await page.getByText('Throughput').waitFor();
      await shoot('overview');
      await page.getByRole('link', { name: 'Jobs', exact: true }).click();
      await page.getByLabel('Status').selectOption('failed');
      await page.getByLabel('Queue').fill(q);
      await page.getByLabel('Search').fill('card declined');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.waitForURL(/#\/jobs\?.*status=failed/);
      const row = page.locator(`tr[data-job-id="${id}"]`);
      await row.waitFor();
      // The unfiltered page stays shown until the filtered one arrives: wait for it to go.
      await page.locator('tr[data-job-id]').nth(1).waitFor({ state: 'detached' });
      assert.equal(await page.locator('tr[data-job-id]').count(), 1);
      await shoot('jobs');
      await row.getByRole('link').click();
      await page.waitForURL(new RegExp(`#/jobs/${id}$`));
      await page.getByText('card declined for order A-1001').first().waitFor();
      await page.evaluate('window.marker = 1');
      state.broken = false;
      await page.getByRole('button', { name: 'Retry', exact: true }).click();
      await page.locator('.actions .badge', { hasText: 'completed' }).waitFor();
      await page.getByText('"charged": "A-1001"').waitFor();
      assert.equal(await page.evaluate('window.marker'), 1, 'no reload happened');
      assert.equal((await queue.getJob(id))?.status, 'completed');

      // A workflow: its checkpoints and its fan-out children, opened as a tree.
      await page.goto(`${base}#/jobs/${flow}`);
      await page.getByRole('heading', { name: 'Checkpoints' }).waitFor();
      assert.equal(await page.locator('table.steps tbody tr').count() >= 2, true);
      await page.getByRole('heading', { name: 'Sub-jobs' }).waitFor();
      assert.equal(await page.locator('ul.tree > li').count(), 2);
      await shoot('job');
      // Its timeline; a job that received a signal lists it under "Signals".
      await page.getByRole('heading', { name: 'Timeline' }).waitFor();
      const signalled = await queue.enqueue('resize', 4, { queue: `${q}_idle` });
      await queue.signal(signalled, 'go-ahead', { by: 'ops' });
      await page.goto(`${base}#/jobs/${signalled}`);
      await page.locator('section', { has: page.getByRole('heading', { name: 'Signals' }) }).getByText('go-ahead').waitFor();
      await queue.cancelJob(signalled);
    });

    it('pauses and resumes a queue from the page, and the worker honours it', async () => {
      const qn = q;
      // queues() lists the queues that hold unfinished jobs: a delayed one keeps this one listed.
      const later = await queue.enqueue('resize', 0, { queue: qn, delay: 3_600_000 });
      await page.goto(`${base}#/queues`);
      await page.getByRole('button', { name: `Pause ${qn}`, exact: true }).click();
      await page.getByRole('button', { name: `Resume ${qn}`, exact: true }).waitFor();
      assert.equal((await queue.queues()).find((x) => x.name === qn)?.paused, true);
      const id = await queue.enqueue('resize', 7, { queue: qn });
      await holdsFor(async () => (await queue.getJob(id))?.status === 'pending', 600, 'a paused queue runs nothing');
      // Its limits, with how full they are, and the oldest pending job's age.
      await queue.setQueueLimits(qn, { concurrency: 8, rateLimit: { limit: 50, period: 1_000 } });
      const row = page.locator(`tr[data-queue="${qn}"]`);
      await row.getByText('concurrency 0/8 running').waitFor();
      await row.getByText('rate 50 per s').waitFor();
      assert.match((await row.locator('td.oldest').textContent()) ?? '', /^\d/);
      await fitsWidth('queues');
      await shoot('queues');
      await queue.setQueueLimits(qn, null);
      await page.getByRole('button', { name: `Resume ${qn}`, exact: true }).click();
      await page.getByRole('button', { name: `Pause ${qn}`, exact: true }).waitFor();
      assert.equal((await queue.waitForJob(id, { timeout: 15_000 })).status, 'completed');
      await queue.cancelJob(later);
    });

    it('bulk-retries the failed jobs of a filter', async () => {
      state.broken = true;
      const ids = await Promise.all(['B-1', 'B-2', 'B-3'].map((order) => queue.enqueue('charge-card', { order }, { queue: q, retries: 0 })));
      await Promise.all(ids.map((id) => queue.waitForJob(id, { timeout: 15_000 })));
      state.broken = false;
      await page.goto(`${base}#/jobs?status=failed&queue=${q}&type=charge-card`);
      await page.locator('tr[data-job-id]').nth(2).waitFor();
      // Each failed run reported its progress before it threw: a small bar per row.
      const bars = page.locator('tr[data-job-id] td.progress-cell');
      assert.equal(await bars.locator('progress').count(), 3);
      assert.equal(await bars.first().locator('progress').getAttribute('value'), '0.3');
      assert.match((await bars.first().textContent()) ?? '', /30%/);
      await fitsWidth('jobs');
      await page.getByRole('button', { name: 'Retry all' }).click();
      await page.getByText('Retry all: done').waitFor();
      for (const id of ids) assert.equal((await queue.waitForJob(id, { timeout: 15_000 })).status, 'completed');
      await page.getByText('No job matches.').waitFor();
    });

    it('renders a <script> payload as text', async () => {
      const payload = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">';
      const id = await queue.enqueue('resize', { note: payload } as unknown as number, { queue: `${q}_idle` });
      await page.goto(`${base}#/jobs/${id}`);
      await page.getByText('window.pwned = 1', { exact: false }).first().waitFor();
      assert.match((await page.locator('pre.payload').first().textContent()) ?? '', /<script>window\.pwned = 1<\/script>/);
      assert.equal(await page.evaluate('window.pwned'), undefined);
      assert.equal(await page.locator('main script, main img').count(), 0);
      await queue.cancelJob(id);
    });

    it('refuses a denied user (403) and a cross-site POST', async () => {
      const qn = q;
      const later = await queue.enqueue('resize', 0, { queue: qn, delay: 3_600_000 });
      denyMutations = true;
      await page.goto(`${base}#/queues`);
      await page.getByRole('button', { name: `Pause ${qn}`, exact: true }).click();
      await page.getByText(/Refused: not allowed to pause/).waitFor();
      assert.equal((await queue.queues()).find((x) => x.name === qn)?.paused, false);
      denyMutations = false;

      // Another origin (another port) tries a simple no-cors POST and a forged form post.
      const evil = await listen((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!doctype html><title>evil</title>');
      });
      servers.push(evil.server);
      const other = await browser.browser.newPage();
      try {
        await other.goto(`${evil.url}/`);
        const target = `${base}api/queues/${qn}/pause`;
        const outcome = await other.evaluate(async (url) => {
          // Refused (403 CROSS_SITE); the browser may also withhold the answer (Cross-Origin-Resource-Policy).
          await fetch(url, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{}' }).catch(() => undefined);
          try {
            await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-sdj-dashboard': '1' }, body: '{}' });
            return 'sent';
          } catch {
            return 'blocked';
          }
        }, target);
        assert.equal(outcome, 'blocked', 'the preflight of a custom header is never granted');
        // Written as text: this test file is compiled without the DOM's types.
        await other.evaluate(`(() => { const f = document.createElement('form'); f.method = 'POST'; f.action = ${JSON.stringify(target)}; document.body.append(f); f.submit(); })()`);
        await other.waitForURL(target);
        assert.match((await other.textContent('body')) ?? '', /CROSS_SITE/);
      } finally {
        await other.close();
      }
      assert.equal((await queue.queues()).find((x) => x.name === qn)?.paused, false);
      await queue.cancelJob(later);
    });

    it('shows schedules (next fire, overdue) and workers, ticks relative times, and reads in dark mode', async () => {
      const hourly = uniqueName('hourly');
      await queue.schedule(hourly, every(3_600_000), { type: 'resize', args: 1, queue: q });
      // Defined through a clock two days behind, its next fire is two days past; no worker here
      // runs the scheduler (`scheduler: true`), so nothing fires it: overdue.
      const stale = uniqueName('stale');
      await new Queue(past).schedule(stale, every(3_600_000), { type: 'resize', args: 2, queue: q });
      const next = (await queue.schedules()).find((x) => x.name === hourly)!.nextRunAt;
      await page.goto(`${base}#/schedules`);
      const fire = page.locator(`tr[data-schedule="${hourly}"] td.next-fire`);
      await fire.waitFor();
      assert.equal(await fire.locator('time').getAttribute('datetime'), next.toISOString());
      assert.match((await fire.textContent()) ?? '', /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})? \((in \d+ (s|min)|just now)\)\s*$/);
      assert.equal(await fire.getByText('overdue').count(), 0);
      const late = page.locator(`tr[data-schedule="${stale}"] td.next-fire`);
      assert.match((await late.textContent()) ?? '', /\(\d+ (d|h \d+ min) ago\)\s*overdue$/);
      await fitsWidth('schedules');
      await shoot('schedules');
      // "Created just now" moves on by itself, without a reload or new data.
      const idle = `${q}_tick`;
      const fresh = await queue.enqueue('resize', 1, { queue: idle, delay: 3_600_000 });
      await page.goto(`${base}#/jobs?queue=${idle}`);
      const created = page.locator(`tr[data-job-id="${fresh}"] time`);
      const before = await created.textContent();
      await page.waitForFunction(([el, text]) => el?.textContent !== text, [await created.elementHandle(), before] as const);
      await queue.cancelJob(fresh);
      await page.goto(`${base}#/workers`);
      await page.locator(`td[title="${worker.worker.id}"]`).waitFor();
      await fitsWidth('workers');
      await shoot('workers');
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.goto(`${base}#/`);
      await page.getByText('Throughput').waitFor();
      await fitsWidth('overview');
      const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
      assert.equal(bg, 'rgb(20, 23, 28)');
      await shoot('overview-dark');
      await page.emulateMedia({ colorScheme: 'light' });
    });

    it("pauses and resumes a queue by keyboard alone, with a visible focus ring", async () => {
      const later = await queue.enqueue('resize', 0, { queue: q, delay: 3_600_000 });
      await page.goto(`${base}#/queues`);
      await page.reload(); // the focus starts at the top of the document
      const pause = page.getByRole('button', { name: `Pause ${q}`, exact: true });
      await pause.waitFor();
      const focused = (): Promise<unknown> => page.evaluate('document.activeElement?.textContent');
      for (let i = 0; i < 40 && (await focused()) !== `Pause ${q}`; i++) await page.keyboard.press('Tab');
      assert.equal(await focused(), `Pause ${q}`, 'Tab reaches the Pause button');
      assert.equal(await page.evaluate('getComputedStyle(document.activeElement).outlineStyle'), 'solid', 'the focus is visible');
      await page.keyboard.press('Enter');
      await page.getByRole('button', { name: `Resume ${q}`, exact: true }).waitFor();
      assert.equal((await queue.queues()).find((x) => x.name === q)?.paused, true);
      // The focus stays on the button, now Resume.
      assert.equal(await focused(), `Resume ${q}`);
      await page.keyboard.press('Enter');
      await pause.waitFor();
      assert.equal((await queue.queues()).find((x) => x.name === q)?.paused, false);
      await queue.cancelJob(later);
    });

    it('prunes from the page: what retention says is due, then finished jobs older than a day', async () => {
      const oldQueue = uniqueName('old');
      const oldDone = await completedJob(past, { queue: oldQueue, type: 'resize' });
      const oldFailed = await failedJob(past, { queue: oldQueue, type: 'charge-card' });
      const fresh = await queue.enqueue('resize', 9, { queue: q });
      await queue.waitForJob(fresh, { timeout: 15_000 });
      await page.goto(`${base}#/queues`);
      const prune = page.getByRole('button', { name: 'Prune now' });
      // The default ages (7 days completed, 30 days failed) keep two-day-old jobs.
      await prune.click();
      await page.locator('.prune-outcome', { hasText: 'Pruned: 0 finished jobs deleted.' }).waitFor();
      assert.ok(await queue.getJob(oldDone.id));
      await page.getByLabel('Every finished job, whatever its status, older than').check();
      await page.getByLabel('Age', { exact: true }).fill('1');
      await page.getByLabel('Unit', { exact: true }).selectOption('days');
      await prune.click();
      await page.locator('.prune-outcome', { hasText: 'Pruned: 2 finished jobs deleted.' }).waitFor();
      assert.equal(await queue.getJob(oldDone.id), undefined);
      assert.equal(await queue.getJob(oldFailed.id), undefined);
      assert.equal((await queue.getJob(fresh))?.status, 'completed', 'a job finished just now is kept');
    });
  });
}

if (!driverSelected('sqlite') && !driverSelected('postgres')) {
  describe('dashboard in Chromium', () => {
    it('runs on SQLite or PostgreSQL only (neither is selected)', () => undefined);
  });
}
