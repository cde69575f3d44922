/** Requests to a dashboard's fetch handler, as its pages (or an attacker's) would send them. */
import type { Dashboard } from '../../src/dashboard/index.js';

/** The origin the test requests pretend to be served from. */
export const ORIGIN = 'http://dash.test';

/** GET `path` (under the origin) and the parsed JSON body. */
export async function getJson<T = Record<string, unknown>>(ui: Dashboard, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T; res: Response }> {
  const res = await ui.fetch(new Request(`${ORIGIN}${path}`, { headers }));
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, res };
}

/** POST `path` the way the dashboard's own pages do (same-site, JSON, with the header); `headers` override. */
export async function postJson<T = Record<string, unknown>>(
  ui: Dashboard,
  path: string,
  body: unknown = {},
  headers: Record<string, string | null> = {},
): Promise<{ status: number; body: T }> {
  const h: Record<string, string> = {};
  const all: Record<string, string | null> = { 'content-type': 'application/json', 'x-sdj-dashboard': '1', 'sec-fetch-site': 'same-origin', origin: ORIGIN, ...headers };
  for (const [k, v] of Object.entries(all)) if (v !== null) h[k] = v;
  const res = await ui.fetch(new Request(`${ORIGIN}${path}`, { method: 'POST', headers: h, body: JSON.stringify(body) }));
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}
