#!/usr/bin/env node
// `npm test`: check what must not be rebuilt first (generated SQL freshness, file sizes), then
// build, lint, type-check, check the packed declarations, and run the test files with Node's
// test runner.
//
// STORAGE=sqlite,postgres,mysql selects the drivers (default: all three). A test file bound to
// one driver — its name carries the driver (`postgres-lock-order.test.ts`) or its header says
// `@storage <driver>` — runs only when that driver is selected; files covering every driver
// take the selection from test/helpers/storages.ts. A selected driver whose database is down
// fails its tests: nothing is skipped silently.
//
// A file whose header says `@serial` runs after the others, alone.
//
// `--checks-only` runs the checks and the build but no test file; `--list` prints the test files
// the selection would run, without building or running anything. Other arguments are test files
// to run instead of every file under test/ (with SDJ_SKIP_BUILD=1, no checks and no build).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

const DRIVERS = ['sqlite', 'postgres', 'mysql'];
const root = new URL('..', import.meta.url).pathname;

function run(cmd, args, extraEnv = {}) {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...extraEnv } });
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s, exit ${r.status ?? r.signal})`);
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function find(dir, out = []) {
  for (const name of readdirSync(join(root, dir))) {
    const p = join(dir, name);
    if (statSync(join(root, p)).isDirectory()) find(p, out);
    else if (p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** The driver a test file is bound to, or undefined when it covers the selected matrix. */
export function boundDriver(file, head) {
  const marked = /@storage\s+(sqlite|postgres|mysql)\b/.exec(head);
  if (marked) return marked[1];
  const tokens = basename(file, '.test.ts').split('-');
  return DRIVERS.find((d) => tokens.includes(d));
}

// An empty STORAGE means every driver, like an unset one; the test processes get the resolved list.
const selected = (process.env['STORAGE'] || DRIVERS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
for (const d of selected) {
  if (!DRIVERS.includes(d)) {
    console.error(`unknown STORAGE entry "${d}" (expected ${DRIVERS.join(', ')})`);
    process.exit(2);
  }
}
process.env['STORAGE'] = selected.join(',');

const flags = new Set(process.argv.slice(2).filter((a) => a.startsWith('--')));
for (const f of flags) {
  if (f !== '--checks-only' && f !== '--list') {
    console.error(`unknown option ${f} (expected --checks-only or --list)`);
    process.exit(2);
  }
}
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (!process.env.SDJ_SKIP_BUILD && !flags.has('--list')) {
  // Before any rebuild: a stale committed generated module must fail here, not be regenerated.
  run('npm', ['run', '--silent', 'check']);
  run('npm', ['run', '--silent', 'build']);
  run('npx', ['eslint', '.']);
  run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
  run(process.execPath, ['scripts/check-pack.mjs']);
}
if (flags.has('--checks-only')) process.exit(0);
const files = (only.length ? only : find('test').sort()).filter((f) => {
  const driver = boundDriver(f, readFileSync(join(root, f), 'utf8').slice(0, 2000));
  return driver === undefined || selected.includes(driver);
});
console.log(`\nSTORAGE=${selected.join(',')}: ${files.length} test files`);
if (flags.has('--list')) {
  console.log(files.join('\n'));
  process.exit(0);
}
// A file whose header says `@serial` measures timing that other test files running beside it
// would skew (a rate reached across processes): it runs after the others, alone.
const serial = files.filter((f) => /@serial\b/.test(readFileSync(join(root, f), 'utf8').slice(0, 2000)));
const parallel = files.filter((f) => !serial.includes(f));
const testArgs = ['--import', 'tsx', '--import', './test/setup/leaked-workers.ts', '--test', '--test-timeout=300000'];
if (parallel.length > 0) run(process.execPath, [...testArgs, '--test-concurrency=3', ...parallel]);
if (serial.length > 0) run(process.execPath, [...testArgs, '--test-concurrency=1', ...serial]);
