/**
 * The job page in a real headless Chromium (SQLite), with operators acting while it is open: a
 * workflow with 250 checkpoints shown a page at a time with a pager, a large output fetched
 * whole on demand; a timeline ordered by time for a workflow retried from its failed step (its
 * first checkpoint older than its last run), a cancelled delayed job (no "due" entry after its
 * end), a pending one due in years and a signal wait with a timeout (its deadline); a job
 * deleted, and another pruned, by another process while its page is open (the page says so,
 * stops asking for it and the app keeps working); a running job cancelled from its page; a
 * failed workflow retried from its failed step from its page; a signal sent from the page's
 * form (a bad JSON payload sends nothing and says why, a good one wakes the job); a read-only
 * dashboard without the signal form and the Retention section; an age over 100 years refused
 * by the Retention form before anything is sent.
 * @serial
 * @storage sqlite
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { dashboard, type Dashboard } from '../../src/dashboard/index.js';
import { noRetry } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { runningJob, stepRow, uniqueName } from '../helpers/factories.js';
import { makeSqliteStorage } from '../helpers/sqlite-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, type Started } from '../helpers/workflow-harness.js';
import { startBrowser, type TestBrowser } from './browser.js';

const YEAR = 365 * 24 * 3600_000;

async function listen(ui: Dashboard): Promise<{ server: Server; base: string }> {
  const server = createServer(ui.node).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ops/` };
}

/** The timeline's entries: their text and instant, in page order. */
async function timeline(page: Page): Promise<{ text: string; at: number }[]> {
  await page.getByRole('heading', { name: 'Timeline' }).waitFor();
  return (await page.evaluate(`[...document.querySelectorAll('ol.timeline li')].map((li) => ({ text: li.textContent, at: Date.parse(li.querySelector('time').getAttribute('datetime')) }))`)) as {
    text: string;
    at: number;
  }[];
}

describe('the job page in Chromium, with operators acting while it is open (sqlite)', () => {
  let ts: TestStorage;
  let queue: Queue;
  /** The same database through another storage: "another process". */
  let other: Queue;
  let ui: Dashboard;
  let roUi: Dashboard;
  const servers: Server[] = [];
  let base: string;
  let roBase: string;
  let browser: TestBrowser;
  let page: Page;
  let worker: Started;
  const q = uniqueName('page');
  const pageErrors: string[] = [];
  const state = { fail: true, firstRuns: 0 };

  before(async () => {
    ts = await makeSqliteStorage('dashboard-browser-job-page');
    queue = new Queue(ts.storage);
    other = new Queue(await ts.another());
    queue.register('first-step', async (n: number) => {
      state.firstRuns++;
      return n + 1;
    });
    queue.register('resumable', async (_: unknown, ctx) => {
      const first = await ctx.call<number>('first-step', 1);
      if (state.fail) throw noRetry(new Error('the second step broke'));
      return first;
    });
    queue.register('approval', async (_: unknown, ctx) => ctx.waitForSignal<{ by: string }>('approve', { timeout: 3_600_000 }));
    queue.register('endless', async (_: unknown, ctx) => {
      await new Promise((resolve) => ctx.abortSignal.addEventListener('abort', resolve));
      throw ctx.abortSignal.reason;
    });
    queue.register('quick', async () => 'done');
    ui = dashboard(queue, { basePath: '/ops', pollInterval: 250, insecure: true });
    roUi = dashboard(queue, { basePath: '/ops', pollInterval: 250, insecure: true, readOnly: true });
    const a = await listen(ui);
    const b = await listen(roUi);
    servers.push(a.server, b.server);
    base = a.base;
    roBase = b.base;
    worker = startWorker(queue, { queues: { [q]: { concurrency: 4 } } });
    browser = await startBrowser();
    page = await browser.browser.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('dialog', (d) => void d.accept());
  });
  after(async () => {
    await worker?.stop();
    await browser?.close();
    ui?.close();
    roUi?.close();
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await ts?.cleanup();
  });

  it('shows a long history a page at a time, and a large output whole on demand', async () => {
    const { fence } = await runningJob(ts.storage, { type: 'long-history', queue: uniqueName('hist') });
    const big = { blob: 'b'.repeat(10_000), tail: 'THE-END' };
    const items = Array.from({ length: 250 }, (_, i) => ({ fence, step: stepRow(fence.jobId, i, { stepName: `step-${i}`, outputJson: JSON.stringify(i === 0 ? big : i) }) }));
    assert.ok((await ts.storage.stepRecordMany({ items })).every(Boolean));
    await page.goto(`${base}#/jobs/${fence.jobId}`);
    const pager = page.getByRole('navigation', { name: 'Pages of checkpoints' });
    await pager.getByText('Showing checkpoints 1–100, more follow.').waitFor();
    assert.equal(await page.locator('table.steps tbody tr').count(), 100);
    await page.locator('.timeline-partial').waitFor();
    await page.getByRole('button', { name: 'Show output of checkpoint 0' }).click();
    await page.locator('table.steps pre.payload', { hasText: 'THE-END' }).waitFor();
    await pager.getByRole('button', { name: 'Next checkpoints' }).click();
    await pager.getByText('Showing checkpoints 101–200, more follow.').waitFor();
    assert.equal(await page.locator('table.steps tbody tr').first().locator('td').first().textContent(), '100');
    await pager.getByRole('button', { name: 'Next checkpoints' }).click();
    await pager.getByText('Showing checkpoints 201–250, the last ones.').waitFor();
    assert.equal(await pager.getByRole('button', { name: 'Next checkpoints' }).count(), 0);
    await pager.getByRole('button', { name: 'Previous checkpoints' }).click();
    await pager.getByText('Showing checkpoints 101–200, more follow.').waitFor();
    await pager.getByRole('button', { name: 'First checkpoints' }).click();
    await pager.getByText('Showing checkpoints 1–100, more follow.').waitFor();
    await queue.cancelJob(fence.jobId);
  });

  it('retries a failed workflow from its failed step from the page; the timeline stays in time order', async () => {
    const id = await queue.enqueue('resumable', {}, { queue: q, retries: 0 });
    assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'failed');
    await page.goto(`${base}#/jobs/${id}`);
    await page.locator('.actions .badge', { hasText: 'failed' }).waitFor();
    state.fail = false;
    await page.getByRole('button', { name: 'Retry from failed step' }).click();
    await page.locator('.actions .badge', { hasText: 'completed' }).waitFor();
    assert.equal(state.firstRuns, 1, 'the kept step did not run again');
    const entries = await timeline(page);
    for (let i = 1; i < entries.length; i++) assert.ok(entries[i]!.at >= entries[i - 1]!.at, `in time order: ${entries.map((e) => e.text).join(' | ')}`);
    const at = (re: RegExp): number => entries.findIndex((e) => re.test(e.text));
    assert.ok(at(/^.*Enqueued/) === 0);
    assert.ok(at(/Checkpoint 0 "first-step"/) < at(/Last run started/), 'the kept checkpoint is older than the last run');
    assert.ok(at(/Completed/) === entries.length - 1);
  });

  it('dates a delayed job sensibly: cancelled (no due entry after its end), pending due in years (last)', async () => {
    const cancelled = await queue.enqueue('quick', {}, { queue: q, delay: 10 * YEAR });
    await queue.cancelJob(cancelled);
    await page.goto(`${base}#/jobs/${cancelled}`);
    await page.locator('.actions .badge', { hasText: 'cancelled' }).waitFor();
    const ended = await timeline(page);
    assert.deepEqual(
      ended.map((e) => /Enqueued|Due to run|Cancelled/.exec(e.text)?.[0]),
      ['Enqueued', 'Cancelled'],
    );
    const later = await queue.enqueue('quick', {}, { queue: uniqueName('later'), delay: 10 * YEAR });
    await page.goto(`${base}#/jobs/${later}`);
    await page.locator('.actions .badge', { hasText: 'pending' }).waitFor();
    const due = await timeline(page);
    assert.match(due.at(-1)!.text, /Due to run/);
    await queue.cancelJob(later);
  });

  it('sends a signal from the form: a bad JSON payload sends nothing and says why; the wait deadline is on the timeline', async () => {
    const id = await queue.enqueue('approval', {}, { queue: q });
    await waitFor(async () => (await queue.getJob(id))?.status === 'waiting', { message: 'waits for approve' });
    await page.goto(`${base}#/jobs/${id}`);
    await page.locator('.actions .badge', { hasText: 'waiting' }).waitFor();
    const entries = await timeline(page);
    assert.match(entries.at(-1)!.text, /Wait for signal "approve" times out/);
    const form = page.locator('section', { has: page.getByRole('heading', { name: 'Send a signal' }) });
    await form.getByLabel('Name').fill('approve');
    await form.getByLabel('Payload (JSON)').fill('{by: alice}');
    await form.getByRole('button', { name: 'Send' }).click();
    await page.locator('.notice.error', { hasText: 'Nothing sent: the payload is not valid JSON' }).waitFor();
    assert.deepEqual(await queue.getSignals(id), [], 'nothing sent');
    assert.equal(await form.getByLabel('Name').inputValue(), 'approve', 'the form keeps what was typed');
    await form.getByLabel('Payload (JSON)').fill('{"by":"alice"}');
    await form.getByRole('button', { name: 'Send' }).click();
    await page.locator('.actions .badge', { hasText: 'completed' }).waitFor();
    await page.locator('table.signals', { hasText: 'approve' }).waitFor();
    assert.deepEqual((await queue.getJob(id))?.result, { by: 'alice' });
  });

  it('cancels a running job from its page', async () => {
    const id = await queue.enqueue('endless', {}, { queue: q });
    await waitFor(async () => (await queue.getJob(id))?.status === 'running', { message: 'running' });
    await page.goto(`${base}#/jobs/${id}`);
    await page.locator('.actions .badge', { hasText: 'running' }).waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('.actions .badge', { hasText: 'cancelled' }).waitFor();
    await page.getByRole('button', { name: 'Delete' }).waitFor();
  });

  it('says so when another process deletes or prunes the open job, stops asking for it, and keeps working', async () => {
    for (const how of ['deleted', 'pruned'] as const) {
      const id = await queue.enqueue('quick', {}, { queue: q });
      await queue.waitForJob(id, { timeout: 10_000 });
      const asked: string[] = [];
      const onRequest = (r: { url: () => string }): void => void (r.url().includes(`/api/jobs/${id}`) && asked.push(r.url()));
      page.on('request', onRequest);
      await page.goto(`${base}#/jobs/${id}`);
      await page.locator('.actions .badge', { hasText: 'completed' }).waitFor();
      if (how === 'deleted') await other.deleteJob(id);
      else assert.ok((await other.prune({ olderThan: 0 })) >= 1);
      await page.locator('.gone', { hasText: 'This job no longer exists' }).waitFor();
      assert.equal(await page.locator('.actions').count(), 0, 'no action on a job that is gone');
      // Live changes keep coming: the page does not ask for the job again.
      const seen = asked.length;
      await page.evaluate(`window.__snaps = 0; window.__live = new EventSource('api/live'); window.__live.addEventListener('snapshot', () => window.__snaps++);`);
      for (let i = 0; i < 3; i++) {
        const n = (await page.evaluate('window.__snaps')) as number;
        await queue.waitForJob(await queue.enqueue('quick', {}, { queue: q }), { timeout: 10_000 });
        await page.waitForFunction((seen) => (globalThis as unknown as { __snaps: number }).__snaps > seen, n);
      }
      await page.evaluate('window.__live.close()');
      assert.equal(asked.length, seen, `${how}: no more reads of a job that is gone`);
      page.off('request', onRequest);
      await page.getByRole('link', { name: 'Back to the jobs' }).click();
      await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    }
    assert.deepEqual(pageErrors, []);
  });

  it('read-only: no signal form, no action and no Retention section', async () => {
    const id = await queue.enqueue('approval', {}, { queue: q });
    await waitFor(async () => (await queue.getJob(id))?.status === 'waiting', { message: 'waits' });
    await page.goto(`${roBase}#/jobs/${id}`);
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Send a signal' }).count(), 0);
    assert.equal(await page.locator('.actions button').count(), 0);
    await page.goto(`${roBase}#/queues`);
    await page.getByRole('heading', { name: 'Queues' }).waitFor();
    await page.locator(`tr[data-queue="${q}"]`).waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Retention' }).count(), 0);
    await queue.cancelJob(id);
  });

  it('refuses an age over 100 years in the Retention form before anything is sent', async () => {
    await page.goto(`${base}#/queues`);
    await page.getByRole('heading', { name: 'Retention' }).waitFor();
    const posts: string[] = [];
    const onRequest = (r: { method: () => string; url: () => string }): void => void (r.method() === 'POST' && posts.push(r.url()));
    page.on('request', onRequest);
    await page.getByRole('spinbutton', { name: 'Age' }).fill('36501');
    await page.getByLabel('Unit').selectOption('days');
    await page.getByRole('button', { name: 'Prune now' }).click();
    await page.locator('.notice.error', { hasText: 'The age must be a number from 0 to 100 years' }).waitFor();
    page.off('request', onRequest);
    assert.deepEqual(posts, [], 'nothing sent');
    assert.deepEqual(pageErrors, []);
  });
});
