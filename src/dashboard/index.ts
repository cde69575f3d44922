/**
 * `simple-durable-jobs/dashboard`: the jobs dashboard in the browser, as a Web `fetch` handler
 * and a Node `(req, res)` handler, mounted under any base path. It uses only the package's
 * public API; the core import never loads it. See docs/dashboard.md.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Hono } from 'hono';
import { isDurableJobsError, type Queue } from '../index.js';
import { addActionRoutes } from './action-routes.js';
import { LiveFeed } from './live-feed.js';
import { nodeHandler } from './node-handler.js';
import { resolveOptions, type DashboardOptions } from './options.js';
import { addReadRoutes } from './read-routes.js';
import { problem, SECURITY_HEADERS, viewGuard } from './request-guard.js';
import { addPageRoutes } from './ui-assets.js';

export { DASHBOARD_ACTIONS } from './options.js';
export type { DashboardAction, DashboardAuthorize, DashboardOptions, RedactOptions } from './options.js';
export { CSRF_HEADER } from './request-guard.js';
export type { DashboardConfig } from './read-routes.js';
export type { LiveSnapshot, ThroughputSeries } from './live-feed.js';
export type { DashboardJob } from './payloads.js';

/** The dashboard's handlers. */
export interface Dashboard {
  /** The Web-standard handler: Hono, Bun, Deno, Next.js route handlers, anything that speaks `Request`/`Response`. */
  fetch(request: Request): Promise<Response>;
  /**
   * The Node handler: node:http, Express, Fastify. Given a `next` (Express middleware), a
   * request outside the base path is passed on to it instead of answered with a 404.
   */
  node(req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  /** The base path it serves under (`''` for the root). */
  readonly basePath: string;
  /** Ends the live streams of open pages and stops the shared reads; later requests are still served. */
  close(): void;
}

/** `res` with the security headers (a copy when its headers cannot be changed). */
function secured(res: Response): Response {
  let out = res;
  try {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) out.headers.set(k, v);
  } catch {
    out = new Response(res.body, res);
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) out.headers.set(k, v);
  }
  return out;
}

/** The HTTP status of an error thrown by the Queue API or the request's reading. */
function statusOf(e: unknown): 400 | 404 | 409 | 413 | 500 {
  if (isDurableJobsError(e, 'INVALID_ARGUMENT') || isDurableJobsError(e, 'SERIALIZATION')) return 400;
  if (isDurableJobsError(e, 'PAYLOAD_TOO_LARGE')) return 413;
  if (isDurableJobsError(e, 'JOB_NOT_FOUND')) return 404;
  if (isDurableJobsError(e, 'INVALID_STATE') || isDurableJobsError(e, 'DUPLICATE_JOB')) return 409;
  return 500;
}

/**
 * Makes the dashboard of a queue: pages for jobs, workflows, queues, schedules and workers,
 * with a JSON API under `<basePath>/api/` and a live stream of changes.
 *
 * Every request is put to `authorize(request, action)` (`view` for reads); every mutation is a
 * POST that must come from the dashboard's own page (see docs/dashboard.md, "Security").
 * @throws InvalidArgumentError when an option is invalid, or when neither `authorize` nor
 * `insecure: true` is given
 * @example
 * import { dashboard } from 'simple-durable-jobs/dashboard';
 * const ui = dashboard(queue, { basePath: '/jobs', authorize: (req) => isAdmin(req) });
 * http.createServer(ui.node).listen(3000);  // or app.use(ui.node) in Express
 */
export function dashboard(queue: Queue, options: DashboardOptions): Dashboard {
  const resolved = resolveOptions(options);
  const feed = new LiveFeed(queue, resolved.pollInterval);
  const app = new Hono({ strict: false }).basePath(resolved.basePath || '/');
  app.use('*', viewGuard(resolved));
  addPageRoutes(app, resolved.basePath);
  addReadRoutes(app, queue, resolved, feed);
  addActionRoutes(app, queue, resolved);
  app.notFound((c) => problem(c, 404, 'NOT_FOUND', 'no such page or API route'));
  app.onError((e, c) => {
    const status = statusOf(e);
    const code = isDurableJobsError(e) ? e.code : 'INTERNAL';
    if (status !== 500) return problem(c, status, code, e instanceof Error ? e.message : String(e));
    // A driver's message can hold table names, addresses or stored values: only onError sees it.
    try {
      resolved.onError?.(e, c.req.raw);
    } catch {
      // The operator's reporting failed; the answer stays the same.
    }
    return problem(c, 500, code, `the dashboard could not answer this request (${code})`);
  });
  const fetch = async (request: Request): Promise<Response> => secured(await app.fetch(request));
  return { fetch, node: nodeHandler(fetch, resolved.basePath), basePath: resolved.basePath, close: () => feed.close() };
}
