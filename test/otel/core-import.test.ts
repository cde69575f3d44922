/**
 * The core entry point never loads OpenTelemetry: a child process imports the BUILT
 * `dist/index.js` with a loader that records every module it resolves, then lists the CommonJS
 * require cache; neither may name an `@opentelemetry` module. The same probe on
 * `dist/otel/index.js` must see `@opentelemetry/api` (the probe itself works).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = new URL('../..', import.meta.url).pathname;
const recorder = new URL('./fixtures/record-loads.mjs', import.meta.url).pathname;

/** The modules a fresh process loads when it imports `entry`: ESM resolutions and the require cache. */
function loadsOf(entry: string): { esm: string[]; cjs: string[] } {
  const file = join(root, 'dist', entry);
  assert.ok(existsSync(file), `${file} is missing: run npm run build`);
  const dir = mkdtempSync(join(tmpdir(), 'sdj-loads-'));
  try {
    const loads = join(dir, 'loads.txt');
    const script = `await import(${JSON.stringify(pathToFileURL(file).href)});
const { createRequire } = await import('node:module');
console.log(JSON.stringify(Object.keys(createRequire(${JSON.stringify(join(root, 'package.json'))}).cache)));`;
    const r = spawnSync(process.execPath, ['--import', recorder, '--input-type=module', '-e', script], { cwd: root, env: { ...process.env, SDJ_LOADS_FILE: loads }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return { esm: readFileSync(loads, 'utf8').split('\n').filter(Boolean), cjs: JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]') as string[] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the core import and OpenTelemetry', () => {
  it('importing the package root loads no @opentelemetry module', () => {
    const { esm, cjs } = loadsOf('index.js');
    assert.ok(esm.some((u) => u.endsWith('/dist/index.js')), 'the probe saw the entry point');
    assert.deepEqual(esm.filter((u) => u.includes('@opentelemetry')), []);
    assert.deepEqual(cjs.filter((p) => p.includes('@opentelemetry')), []);
  });

  it('importing simple-durable-jobs/otel loads @opentelemetry/api (the probe sees it)', () => {
    const { esm, cjs } = loadsOf('otel/index.js');
    assert.ok([...esm, ...cjs].some((u) => u.includes('@opentelemetry/api')));
  });
});
