/**
 * The pages: one HTML shell (a fixed document, no data in it) and the compiled front end
 * (`dist/dashboard/ui/`, made by `npm run build`), read once and served from memory.
 * @module
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';

/** The HTML shell. Assets are relative, so the same document works under any base path. */
const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Jobs dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/app.css">
</head>
<body>
<div id="app"><noscript>The jobs dashboard needs JavaScript.</noscript></div>
<script type="module" src="assets/app.js"></script>
</body>
</html>
`;

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  map: 'application/json; charset=utf-8',
};

/** Where the compiled front end is: beside this module in dist/, or dist/ when run from src/. */
function uiDir(): string | undefined {
  for (const rel of ['./ui/', '../../dist/dashboard/ui/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}app.js`)) return dir;
  }
  return undefined;
}

let cache: Map<string, Buffer> | undefined;

/** The built files by name (read once per process). */
function assets(): Map<string, Buffer> {
  if (cache !== undefined) return cache;
  const dir = uiDir();
  const files = new Map<string, Buffer>();
  if (dir !== undefined) {
    for (const name of readdirSync(dir)) if (/^[a-z0-9.-]+\.(js|css|svg|map)$/.test(name)) files.set(name, readFileSync(`${dir}${name}`));
  }
  if (files.size > 0) cache = files;
  return files;
}

/** Adds the page routes to `app` (under the base path `base`, '' for the root). @internal */
export function addPageRoutes(app: Hono, base: string): void {
  const shell = (): Response =>
    new Response(SHELL, { headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' } });
  app.get('/', (c) => {
    // `/jobs` → `/jobs/`, so that the shell's relative asset URLs resolve under the base path.
    if (base !== '' && !new URL(c.req.url).pathname.endsWith('/')) return c.redirect(`${base}/`, 308);
    return shell();
  });
  app.get('/assets/:file', (c) => {
    const name = c.req.param('file');
    const body = assets().get(name);
    if (body === undefined) {
      const built = assets().size > 0;
      return c.text(built ? 'not found' : 'the dashboard front end is not built (npm run build)', built ? 404 : 503);
    }
    return c.body(new Uint8Array(body), 200, { 'Content-Type': TYPES[name.slice(name.lastIndexOf('.') + 1)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache' });
  });
}
