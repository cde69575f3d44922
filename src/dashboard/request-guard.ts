/**
 * Who may do what: every request is put to `authorize` with its action, and every mutation must
 * come from the dashboard's own pages. Refusals are JSON `{ error: { code, message } }` with 403.
 *
 * Cross-site requests: a mutation is a POST that must carry the header {@link CSRF_HEADER} and a
 * JSON body. A page of another site cannot send either without a CORS preflight, which the
 * dashboard never grants, so a forged form or `fetch` from elsewhere never reaches an action.
 * As a second line, a browser's `Sec-Fetch-Site` must say `same-origin`, and where a browser
 * sends no such header, its `Origin` must be the dashboard's own (or a trusted one). No state
 * is kept (no token store), so any number of servers can serve the same dashboard.
 * @module
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { DashboardAction, ResolvedOptions } from './options.js';

/** The request header every mutation must carry (any non-empty value; the pages send `1`). */
export const CSRF_HEADER = 'x-sdj-dashboard';

/** The refusal codes of the dashboard's JSON errors. @internal */
export type RefusalCode = 'FORBIDDEN' | 'CROSS_SITE' | 'READ_ONLY';

/** A JSON error response. @internal */
export function problem(c: Context, status: 400 | 403 | 404 | 405 | 409 | 500, code: string, message: string): Response {
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code, message } }, status);
}

/** Asks `authorize`; a throw or a rejection denies. @internal */
export async function allowed(options: ResolvedOptions, request: Request, action: DashboardAction): Promise<boolean> {
  if (options.authorize === undefined) return true;
  try {
    return (await options.authorize(request, action)) === true;
  } catch {
    return false;
  }
}

/** Why a mutation request is not from the dashboard's own page, or undefined when it is. @internal */
export function crossSiteReason(options: ResolvedOptions, request: Request): string | undefined {
  const h = request.headers;
  if ((h.get(CSRF_HEADER) ?? '') === '') return `a mutation must carry the ${CSRF_HEADER} header`;
  const type = (h.get('content-type') ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type !== 'application/json') return 'a mutation must send a JSON body (content-type: application/json)';
  const site = h.get('sec-fetch-site');
  if (site !== null) return site === 'same-origin' ? undefined : `a mutation from another site is refused (sec-fetch-site: ${site})`;
  const origin = h.get('origin');
  if (origin !== null && origin !== new URL(request.url).origin && !options.trustedOrigins.has(origin)) return `a mutation from another origin is refused (${origin})`;
  return undefined;
}

/** Every read (GET or HEAD) asks `authorize` for `view`; other methods but POST get 405. @internal */
export function viewGuard(options: ResolvedOptions): MiddlewareHandler {
  return async (c, next) => {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') {
      if (!(await allowed(options, c.req.raw, 'view'))) return problem(c, 403, 'FORBIDDEN', 'not allowed to view the dashboard');
    } else if (method !== 'POST') {
      c.header('Allow', 'GET, HEAD, POST');
      return problem(c, 405, 'METHOD_NOT_ALLOWED', `${method} is not served`);
    }
    await next();
    return undefined;
  };
}

/** Guards one mutation route: same-site check, `readOnly`, then `authorize(request, action)`. @internal */
export function actionGuard(options: ResolvedOptions, action: DashboardAction): MiddlewareHandler {
  return async (c, next) => {
    const reason = crossSiteReason(options, c.req.raw);
    if (reason !== undefined) return problem(c, 403, 'CROSS_SITE', reason);
    if (options.readOnly) return problem(c, 403, 'READ_ONLY', 'the dashboard is read-only');
    if (!(await allowed(options, c.req.raw, action))) return problem(c, 403, 'FORBIDDEN', `not allowed to ${action}`);
    await next();
    return undefined;
  };
}
