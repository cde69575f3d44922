/**
 * The dashboard as a Node `(req, res)` handler, for node:http, Express, Fastify and anything
 * else that hands out Node's request and response. The conversion to and from Web requests is
 * `@hono/node-server`'s (streaming responses included, so the live stream works).
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';

/** A Node request as frameworks hand it over: maybe mounted (Express), maybe with its body read. */
type FrameworkRequest = IncomingMessage & { originalUrl?: unknown; body?: unknown; rawBody?: unknown };

/**
 * Makes the Node handler of a fetch handler.
 * - Express rewrites `req.url` under a mount point (`app.use('/jobs', …)`); the full path is in
 *   `req.originalUrl`, which is used when present, so the base path matches either way.
 * - A body parser that ran before (`express.json()`) has consumed the stream: its parsed object
 *   is sent on as the JSON body.
 * @internal
 */
export function nodeHandler(fetch: (request: Request) => Promise<Response>): (req: IncomingMessage, res: ServerResponse) => void {
  // Leave the process's global Request and Response alone: the adapter would replace them otherwise.
  const listener = getRequestListener((request) => fetch(request), { overrideGlobalObjects: false });
  return (req, res) => {
    const r = req as FrameworkRequest;
    if (typeof r.originalUrl === 'string' && r.originalUrl.startsWith('/')) r.url = r.originalUrl;
    if (r.readableEnded && r.rawBody === undefined && r.body !== undefined && typeof r.body === 'object') {
      r.rawBody = Buffer.from(JSON.stringify(r.body));
    }
    void listener(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('internal error');
    });
  };
}
