/**
 * The dashboard's JSON reads (`GET <basePath>/api/...`) and its live stream of server-sent
 * events. Each read is one or a few calls of the public Queue API; none scans every job.
 * @module
 */
import type { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Queue } from '../index.js';
import type { LiveFeed, LiveSnapshot } from './live-feed.js';
import type { ResolvedOptions } from './options.js';
import { addJobRoutes } from './job-routes.js';
import { jobOut, listOptionsOf, scheduleOut } from './payloads.js';

/** A comment line sent this often keeps an idle live stream open through proxies. */
const KEEPALIVE_MS = 15_000;

/** The version of the JSON API; the pages check it. */
export const API_VERSION = 1;

/** What the pages need to know about this dashboard (`GET api/config`). */
export interface DashboardConfig {
  apiVersion: number;
  readOnly: boolean;
  redact: { args: boolean; results: boolean; errors: boolean };
  /** ms between live reads. */
  pollInterval: number;
}

/** Adds the read routes to `app` (already under the base path). @internal */
export function addReadRoutes(app: Hono, queue: Queue, options: ResolvedOptions, feed: LiveFeed): void {
  const { redact } = options;
  const noStore = { 'Cache-Control': 'no-store' };

  app.get('/api/config', (c) => {
    const config: DashboardConfig = { apiVersion: API_VERSION, readOnly: options.readOnly, redact, pollInterval: options.pollInterval };
    return c.json(config, 200, noStore);
  });

  // Counts capped (`feed.counts()`): a page load never counts every job.
  app.get('/api/overview', async (c) => c.json({ ...(await feed.counts()), series: feed.series(), at: Date.now() }, 200, noStore));

  app.get('/api/jobs', async (c) => {
    const page = await queue.listJobs(listOptionsOf(new URL(c.req.url).searchParams, redact));
    // A page short of its size with `scanExhausted`: the scan budget ran out; `nextCursor` continues it.
    const scan = page.scanExhausted === true ? { scanExhausted: true, scanned: page.scanned } : {};
    return c.json({ jobs: page.jobs.map((j) => jobOut(j, redact)), nextCursor: page.nextCursor, ...scan }, 200, noStore);
  });

  addJobRoutes(app, queue, options);

  app.get('/api/queues', async (c) => c.json({ queues: await feed.queues(), countCap: feed.countCap }, 200, noStore));
  app.get('/api/workers', async (c) => c.json({ workers: await queue.workers() }, 200, noStore));
  app.get('/api/schedules', async (c) => {
    const now = Date.now();
    return c.json({ schedules: (await queue.schedules()).map((s) => scheduleOut(s, redact, now)), at: now }, 200, noStore);
  });

  app.get('/api/live', (c) =>
    streamSSE(c, async (stream) => {
      let wake: () => void = () => undefined;
      const send = (s: LiveSnapshot): void => {
        void stream.writeSSE({ event: 'snapshot', data: JSON.stringify(s) }).catch(() => wake());
      };
      const unsubscribe = feed.subscribe(send);
      const keepalive = setInterval(() => void stream.write(': keepalive\n\n').catch(() => wake()), KEEPALIVE_MS);
      try {
        await new Promise<void>((resolve) => {
          wake = resolve;
          stream.onAbort(resolve);
          if (c.req.raw.signal.aborted) resolve();
          c.req.raw.signal.addEventListener('abort', () => resolve(), { once: true });
          feed.onClose(resolve);
        });
      } finally {
        clearInterval(keepalive);
        unsubscribe();
      }
    }),
  );
}
