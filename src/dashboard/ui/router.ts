/**
 * Hash routes, so every view has a deep link under any base path without server routes:
 * `#/` overview, `#/jobs?status=failed`, `#/jobs/<id>`, `#/queues`, `#/schedules`, `#/workers`.
 */
import { useEffect, useState } from 'preact/hooks';

/** Where the page is. */
export interface Route {
  /** `/jobs`, `/jobs/<id>`, ... */
  path: string;
  /** The query after the path. */
  query: URLSearchParams;
}

function current(): Route {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path = '/', query = ''] = hash.split('?', 2);
  return { path, query: new URLSearchParams(query) };
}

/** The link of a view: `#/jobs?status=failed`. Empty query values are left out. */
export function href(path: string, query: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

/** Goes to a view (a new history entry). */
export function navigate(path: string, query: Record<string, string | undefined> = {}): void {
  location.hash = href(path, query);
}

/** The current route, re-rendering on every change. */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const on = (): void => setRoute(current());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
