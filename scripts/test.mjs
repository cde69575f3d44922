#!/usr/bin/env node
// `npm test`: build, check (lint, types, generated SQL, file sizes), then run every test file
// with Node's test runner. STORAGE=sqlite,postgres,mysql selects drivers (default: all).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
function run(cmd, args, extraEnv = {}) {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...extraEnv } });
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

const only = process.argv.slice(2);
if (!process.env.SDJ_SKIP_BUILD) {
  run('npm', ['run', '--silent', 'build']);
  run('npm', ['run', '--silent', 'check']);
  run('npx', ['eslint', '.']);
  run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
}
const files = only.length ? only : find('test').sort();
run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=3', '--test-timeout=300000', ...files]);
