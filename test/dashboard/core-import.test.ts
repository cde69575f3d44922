/**
 * The core entry point never loads the dashboard: a child process imports the BUILT
 * `dist/index.js` with a loader that records every module it resolves; none may be a dashboard
 * module, Hono or the Node adapter. The same probe on `dist/dashboard/index.js` sees Hono.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = new URL('../..', import.meta.url).pathname;
const recorder = new URL('../otel/fixtures/record-loads.mjs', import.meta.url).pathname;

/** The module URLs a fresh process resolves when it imports `entry` (relative to dist/). */
function loadsOf(entry: string): string[] {
  const file = join(root, 'dist', entry);
  assert.ok(existsSync(file), `${file} is missing: run npm run build`);
  const dir = mkdtempSync(join(tmpdir(), 'sdj-loads-'));
  try {
    const loads = join(dir, 'loads.txt');
    const r = spawnSync(process.execPath, ['--import', recorder, '--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(file).href)});`], {
      cwd: root,
      env: { ...process.env, SDJ_LOADS_FILE: loads },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return readFileSync(loads, 'utf8').split('\n').filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const dashboardish = (u: string): boolean => /\/dist\/dashboard\/|\/node_modules\/(hono|@hono)\//.test(u);

describe('the core import and the dashboard', () => {
  it('importing the package root loads no dashboard module, no Hono', () => {
    const loads = loadsOf('index.js');
    assert.ok(loads.some((u) => u.endsWith('/dist/index.js')), 'the probe saw the entry point');
    assert.deepEqual(loads.filter(dashboardish), []);
  });

  it('importing the CLI loads no dashboard module until `sdj dashboard` runs', () => {
    assert.deepEqual(loadsOf('cli/program.js').filter(dashboardish), []);
  });

  it('importing simple-durable-jobs/dashboard loads Hono (the probe sees it)', () => {
    assert.ok(loadsOf('dashboard/index.js').some((u) => u.includes('/node_modules/hono/')));
  });
});
