/**
 * The dashboard as a Node `(req, res, next?)` handler, for node:http, Express, Fastify and
 * anything else that hands out Node's request and response. The conversion to and from Web
 * requests is `@hono/node-server`'s (streaming responses included, so the live stream works).
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { SECURITY_HEADERS } from './request-guard.js';

/** A Node request as frameworks hand it over: maybe mounted (Express), maybe with its body read. */
type FrameworkRequest = IncomingMessage & { originalUrl?: unknown; body?: unknown; rawBody?: unknown };

/** Whether the path of `url` (`/jobs/api?x`) is `base` or under it (always, for the root). */
function under(url: string, base: string): boolean {
  if (base === '') return true;
  const path = url.split('?', 1)[0]!;
  return path === base || path.startsWith(`${base}/`);
}

/**
 * Makes the Node handler of a fetch handler serving under `basePath`.
 * - Express rewrites `req.url` under a mount point (`app.use('/jobs', …)`); the full path is in
 *   `req.originalUrl`, which is used when present, so the base path matches either way.
 * - Given a `next` (Express middleware), a request outside the base path goes on to it
 *   untouched (`app.use(ui.node)` leaves the app's other routes alone).
 * - A body parser that ran before (`express.json()`) has consumed the stream: its parsed object
 *   is sent on as the JSON body.
 * @internal
 */
export function nodeHandler(
  fetch: (request: Request) => Promise<Response>,
  basePath: string,
): (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void {
  // Leave the process's global Request and Response alone: the adapter would replace them otherwise.
  const listener = getRequestListener((request) => fetch(request), { overrideGlobalObjects: false });
  return (req, res, next) => {
    const r = req as FrameworkRequest;
    const url = typeof r.originalUrl === 'string' && r.originalUrl.startsWith('/') ? r.originalUrl : (r.url ?? '/');
    if (typeof next === 'function' && !under(url, basePath)) {
      next();
      return;
    }
    r.url = url;
    if (r.readableEnded && r.rawBody === undefined && r.body !== undefined && typeof r.body === 'object') {
      r.rawBody = Buffer.from(JSON.stringify(r.body));
    }
    void listener(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
      res.end('internal error');
    });
  };
}
