/**
 * Who may do what: every request is put to `authorize` with its action, and every mutation must
 * come from the dashboard's own pages. Refusals are JSON `{ error: { code, message } }` with 403.
 *
 * Cross-site requests: a mutation is a POST that must carry the header {@link CSRF_HEADER} and a
 * JSON body. A page of another site cannot send either without a CORS preflight, which the
 * dashboard never grants, so a forged form or `fetch` from elsewhere never reaches an action.
 * As a second line, a browser's `Sec-Fetch-Site` must say `same-origin`, and where a browser
 * sends no such header, its `Origin` must be the dashboard's own (or a trusted one). No state
 * is kept (no token store), so any number of servers can serve the same dashboard. With
 * `allowedHosts`, a request for another host name (DNS rebinding) is refused before all that.
 * @module
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { DashboardAction, ResolvedOptions } from './options.js';
import { bodyTextOf } from './payloads.js';

/** The request header every mutation must carry (any non-empty value; the pages send `1`). */
export const CSRF_HEADER = 'x-sdj-dashboard';

/** Content Security Policy of every response: only the dashboard's own scripts, styles and API. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * Headers of every response, refusals, errors and requests outside the base path included:
 * no framing (clickjacking), no MIME sniffing, no embedding by other sites. @internal
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

/** The refusal codes of the dashboard's JSON errors. @internal */
export type RefusalCode = 'FORBIDDEN' | 'CROSS_SITE' | 'READ_ONLY' | 'HOST_NOT_ALLOWED';

/** A JSON error response. @internal */
export function problem(c: Context, status: 400 | 403 | 404 | 405 | 409 | 413 | 500, code: string, message: string): Response {
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

/** Whether the request's host name is one of `allowedHosts` (always, when none are given). @internal */
export function hostAllowed(options: ResolvedOptions, request: Request): boolean {
  if (options.allowedHosts === undefined) return true;
  const host = new URL(request.url).hostname;
  return options.allowedHosts.some((h) => host === h || (h.startsWith('.') && (host === h.slice(1) || host.endsWith(h))));
}

/**
 * Guards every request: its host must be allowed; a read (GET or HEAD) asks `authorize` for
 * `view`; other methods but POST get 405. A HEAD is answered without a body, and the body the
 * route made is cancelled, so a HEAD of the live stream leaves no stream running. @internal
 */
export function viewGuard(options: ResolvedOptions): MiddlewareHandler {
  return async (c, next) => {
    if (!hostAllowed(options, c.req.raw)) return problem(c, 403, 'HOST_NOT_ALLOWED', `this dashboard does not answer for the host ${new URL(c.req.url).host}`);
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') {
      if (!(await allowed(options, c.req.raw, 'view'))) return problem(c, 403, 'FORBIDDEN', 'not allowed to view the dashboard');
    } else if (method !== 'POST') {
      c.header('Allow', 'GET, HEAD, POST');
      return problem(c, 405, 'METHOD_NOT_ALLOWED', `${method} is not served`);
    }
    await next();
    if (method === 'HEAD' && c.res.body !== null) {
      await c.res.body.cancel().catch(() => undefined);
      c.res = new Response(null, c.res);
    }
    return undefined;
  };
}

/**
 * Guards one mutation route: same-site check, `readOnly`, then `authorize(request, action)`.
 * `authorize` gets a copy of the request, so it may read the body without taking it from the
 * action. @internal
 */
export function actionGuard(options: ResolvedOptions, action: DashboardAction): MiddlewareHandler {
  return async (c, next) => {
    const reason = crossSiteReason(options, c.req.raw);
    if (reason !== undefined) return problem(c, 403, 'CROSS_SITE', reason);
    if (options.readOnly) return problem(c, 403, 'READ_ONLY', 'the dashboard is read-only');
    if (options.authorize !== undefined) {
      // authorize gets a copy of the request with the body (read once, within its limit), so it
      // may read the body without taking it from the action.
      const raw = c.req.raw;
      const copy = new Request(raw.url, { method: raw.method, headers: raw.headers, body: await bodyTextOf(raw) });
      if (!(await allowed(options, copy, action))) return problem(c, 403, 'FORBIDDEN', `not allowed to ${action}`);
    }
    await next();
    return undefined;
  };
}
