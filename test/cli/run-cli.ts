/**
 * Runs the built `sdj` (dist/cli/main.js) as a child process, as a user's shell would, and
 * collects its exit code, stdout and stderr. `npm test` builds dist/ before the tests run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The built command. */
export const CLI = join(new URL('../..', import.meta.url).pathname, 'dist', 'cli', 'main.js');

/** What a run of `sdj` produced. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link sdj}. */
export interface RunOptions {
  /** Extra environment (undefined removes a variable). */
  env?: Record<string, string | undefined>;
  /** Kills the process after this long (ms). @default 20000 */
  timeout?: number;
}

/** Fails with a clear message when dist/ has no CLI (the tests need `npm run build` first). */
export function assertBuilt(): void {
  assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first (npm test does)`);
}

/**
 * Runs `node dist/cli/main.js ...args`. The environment is the test process's, without the
 * variables `sdj` reads (SDJ_DATABASE_URL, SDJ_SCHEMA, NO_COLOR, FORCE_COLOR), plus `env`.
 */
export function sdj(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of ['SDJ_DATABASE_URL', 'SDJ_SCHEMA', 'NO_COLOR', 'FORCE_COLOR', 'NODE_OPTIONS']) delete env[k];
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout ?? 20_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Asserts a successful run (exit 0, nothing on stderr) and returns its stdout. */
export function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.equal(r.stderr, '', `${what}: nothing on stderr`);
  return r.stdout;
}

/** Asserts a successful `--json` run and returns the parsed document. */
export function okJson<T = Record<string, unknown>>(r: CliResult, what: string): T {
  return JSON.parse(ok(r, what)) as T;
}

/**
 * Asserts a failed run: the exit code, nothing on stdout, and exactly one stderr line
 * `sdj: ...` matching `message`, without a stack trace.
 */
export function fails(r: CliResult, code: 1 | 2, message: RegExp, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${String(r.code)}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^sdj: /, `${what}: the line starts with "sdj: "`);
  assert.match(lines[0]!, message, what);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
}

/** The lines of a table's output whose first column is `key`. */
export function rowOf(table: string, key: string): string[] {
  const line = table.split('\n').find((l) => l.split(/\s{2,}/)[0] === key);
  assert.ok(line !== undefined, `no row "${key}" in:\n${table}`);
  return line.split(/\s{2,}/);
}
