// Paths and small helpers shared by targets and the orchestrator.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(BENCH_DIR, '..');
// BENCH_SDJ_DIST points at another build of the library (e.g. a scratch checkout).
export const DIST_ENTRY = path.resolve(process.env.BENCH_SDJ_DIST || path.join(REPO_DIR, 'dist', 'index.js'));
export const REDIS_URL = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379/0';

/** Version of a package installed in bench/node_modules (or the repo root's). */
export function pkgVersion(name) {
  for (const base of [BENCH_DIR, REPO_DIR]) {
    const file = path.join(base, 'node_modules', name, 'package.json');
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')).version;
  }
  return 'not installed';
}

export function repoVersion() {
  return JSON.parse(readFileSync(path.join(REPO_DIR, 'package.json'), 'utf8')).version;
}

/** Split an array into chunks of at most size n. */
export function chunks(list, n) {
  const out = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
}

/** Make a database-identifier-safe name for one isolated run of one target. */
export function runDbName(env, target) {
  return `${env.dbPrefix}${env.seq}_${target.replace(/[^a-z0-9]/g, '')}`;
}
