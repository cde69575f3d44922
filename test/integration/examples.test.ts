/**
 * Runs every program in examples/ as a real child process (`node --import tsx examples/<f>.ts`)
 * and checks its exit code and a few lines of its output. Examples import
 * 'simple-durable-jobs', which resolves to the built dist/: it is rebuilt first when older
 * than src/. Examples that read SDJ_EXAMPLE_DB get a temp SQLite file (and must create it).
 * examples/distributed.ts needs PostgreSQL: three copies share a fresh schema (SDJ_SCHEMA),
 * one of them enqueueing 300 tasks; every task runs exactly once and all three exit.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PG_URL, pgAdmin } from '../helpers/postgres-storage.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const EXAMPLES = join(ROOT, 'examples');
const TIMEOUT_MS = 60_000;

/** What one run printed. */
interface Run {
  code: number | string | null;
  stdout: string;
  stderr: string;
  lines: string[];
}

/** Runs an example to completion (killed after TIMEOUT_MS). */
function runExample(file: string, args: string[] = [], env: Record<string, string> = {}, onLine?: (line: string) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', join(EXAMPLES, file), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      if (onLine) for (const l of parts) onLine(l);
    });
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), TIMEOUT_MS);
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, stdout, stderr, lines: stdout.split('\n').filter((l) => l !== '') });
    });
  });
}

/** Asserts that lines matching `expected` appear in this order (strings match a whole line). */
function assertInOrder(run: Run, expected: readonly (string | RegExp)[], file: string): void {
  let from = 0;
  for (const e of expected) {
    const i = run.lines.findIndex((l, j) => j >= from && (typeof e === 'string' ? l === e : e.test(l)));
    assert.ok(i >= 0, `${file}: expected a line ${String(e)} (in order) in:\n${run.stdout}\nstderr:\n${run.stderr}`);
    from = i + 1;
  }
}

/** Expected lines, in order, of each single-process example. */
const EXPECTED: Record<string, { inOrder: (string | RegExp)[]; check?: (run: Run) => void }> = {
  'basic.ts': {
    inOrder: ['Sending email to admin@example.com: Report', 'Sending email to user@example.com: Hello', /^stats: .*"completed":2.*"failed":0/],
  },
  'demo.ts': {
    inOrder: [
      /send-email → urgent@example\.com/,
      /send-email → low@example\.com/,
      /process-order completed \("shipped with receipt-123"\) after 2 attempts; steps run: validate, charge, ship, ship$/,
      /sum-of-squares via fan-out of 4 sub-jobs = 30$/,
      /schedule "heartbeat" fired/,
      /^final counts: .*"failed":0/,
    ],
  },
  'error-handling.ts': {
    inOrder: ['[FAIL] /invalid: invalid endpoint', '/invalid: failed (last error: invalid endpoint)', /^\/rate-limited: completed/, /^\/flaky: completed/],
    check: (run) => assert.ok(run.lines.includes('[DONE] /flaky after 3 attempt(s)'), 'flaky succeeds on its third attempt'),
  },
  'fan-out.ts': {
    inOrder: ['Generated 3 thumbnails (3 ok, 0 failed, all ok: true)', /^parent completed: \[".*image1\.jpg\/thumb",".*image2\.jpg\/thumb",".*image3\.jpg\/thumb"\]$/],
  },
  'observability.ts': {
    inOrder: [/^\[FAIL\] \S+: always fails$/, /^events seen: /],
    check: (run) => {
      const seen = JSON.parse(run.lines.find((l) => l.startsWith('events seen: '))!.slice('events seen: '.length)) as Record<string, number>;
      assert.equal(seen['job.completed'], 1);
      assert.equal(seen['job.failed'], 1);
      assert.equal(seen['job.retrying'], 1);
      assert.ok(run.lines.some((l) => /^\[DONE\] \S+ completed in \d+ ms$/.test(l)));
    },
  },
  'priority.ts': {
    inOrder: ['Processing: CRITICAL', 'Processing: URGENT', 'Processing: medium', 'Processing: low-priority-1', 'Processing: low-priority-2'],
  },
  'scheduled.ts': {
    inOrder: [
      /^daily-report\s+daily at 09:00 UTC\s+next: \d{4}-\d\d-\d\dT09:00:00\.000Z$/,
      /^eu-report\s+cron "0 9 \* \* 1-5" Europe\/Berlin\s+next: \d{4}-\d\d-\d\dT0[78]:00:00\.000Z$/,
      /^health-check\s+every 500 ms\s+next: \S+\.(000|500)Z$/,
      /^hourly-task\s+cron "0 \* \* \* \*" UTC\s+next: \S+:00:00\.000Z$/,
      /^weekly-backup\s+weekly on Sunday at 02:00 UTC\s+next: \S+T02:00:00\.000Z$/,
      /Health check: OK$/,
      /Health check: OK$/,
    ],
  },
  'sleep-and-signals.ts': {
    inOrder: ['Waiting for approval...', 'Approved by alice; publishing.', 'job completed: "published by alice"'],
  },
  'workflow.ts': {
    inOrder: ['Validating order...', 'Charging payment for ORD-001...', 'Shipping order (receipt receipt-123)...', 'workflow completed after 2 attempts; payment charged 1 time(s)'],
  },
};

/** Rebuilds dist/ when it is missing or older than any file in src/. */
function ensureBuilt(): void {
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
      const p = join(dir, e.name);
      return Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }, 0);
  const built = join(ROOT, 'dist', 'index.js');
  if (existsSync(built) && statSync(built).mtimeMs >= newest(join(ROOT, 'src'))) return;
  const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `npm run build failed:\n${r.stdout}\n${r.stderr}`);
}

const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.ts')).sort();
const wanted = (process.env['STORAGE'] ?? 'sqlite,postgres,mysql').split(',').map((s) => s.trim());

describe('examples', () => {
  before(() => ensureBuilt());

  it('covers every example', () => {
    const unknown = files.filter((f) => f !== 'distributed.ts' && !(f in EXPECTED));
    assert.deepEqual(unknown, [], 'every example in examples/ has expected output in this test');
  });

  for (const file of files.filter((f) => f !== 'distributed.ts')) {
    it(`examples/${file} runs`, async () => {
      const expected = EXPECTED[file];
      const dir = mkdtempSync(join(tmpdir(), 'sdj-example-'));
      const db = join(dir, 'example.db');
      try {
        const run = await runExample(file, [], { SDJ_EXAMPLE_DB: db });
        assert.equal(run.code, 0, `examples/${file} exited with ${String(run.code)}; stderr:\n${run.stderr}\nstdout:\n${run.stdout}`);
        if (readFileSync(join(EXAMPLES, file), 'utf8').includes('SDJ_EXAMPLE_DB')) assert.ok(existsSync(db), `examples/${file} used SDJ_EXAMPLE_DB`);
        assert.ok(expected, `no expected output for examples/${file}`);
        assertInOrder(run, expected.inOrder, file);
        expected.check?.(run);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('examples/distributed.ts: three copies on PostgreSQL run every task once', { skip: !wanted.includes('postgres') && 'STORAGE excludes postgres' }, async () => {
    const schema = `sdj_ex_${randomBytes(4).toString('hex')}`;
    const env = { DATABASE_URL: PG_URL, SDJ_SCHEMA: schema };
    try {
      // The enqueuer first (it migrates and enqueues before its worker starts), then two more.
      let started = false;
      let onStarted = (): void => {};
      const enqueued = new Promise<void>((resolve) => (onStarted = resolve));
      const first = runExample('distributed.ts', ['--id', 'worker-1', '--enqueue', '300', '--exit-when-idle'], env, (l) => {
        if (l === '[worker-1] Starting...') {
          started = true;
          onStarted();
        }
      });
      await Promise.race([enqueued, first]);
      if (!started) {
        const r = await first;
        assert.fail(`worker-1 exited (${String(r.code)}) before starting:\n${r.stderr}`);
      }
      const others = ['worker-2', 'worker-3'].map((id) => runExample('distributed.ts', ['--id', id, '--exit-when-idle'], env));
      const runs = await Promise.all([first, ...others]);
      runs.forEach((r, i) => {
        assert.equal(r.code, 0, `worker-${i + 1} exited with ${String(r.code)}; stderr:\n${r.stderr}`);
        assert.ok(r.lines.includes(`[worker-${i + 1}] Starting...`));
      });
      const tasks = runs.flatMap((r) => r.lines.map((l) => /^\[worker-\d\] Processing task (\d+)$/.exec(l)?.[1]).filter((t) => t !== undefined)).map(Number);
      assert.equal(tasks.length, 300, 'each task ran exactly once');
      assert.deepEqual([...new Set(tasks)].sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i));
    } finally {
      await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });
});
