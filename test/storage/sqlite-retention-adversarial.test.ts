/**
 * SQLite: retention against a root with thousands of descendants. A worker-sized batch (100
 * roots) deletes such a workflow whole, with its checkpoints, in one `BEGIN IMMEDIATE`
 * transaction; the time that transaction holds the file's write lock is reported. Pins
 * behaviour that held when tried.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import type { JobPruneParams } from '../../src/storage/storage.js';
import { claim, fenceOf, jobInsert, runningJob, uniqueName, waitForClockPast } from '../helpers/factories.js';
import { removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
const ALL0: JobPruneParams['olderThanMs'] = { completed: 0, failed: 0, cancelled: 0 };

describe('sqlite: retention, adversarial', () => {
  it('a root with 20,000 descendants goes whole in one worker-sized batch (limit 100), with the other due roots', async (t) => {
    const path = tempSqlitePath('sqlite-radv-wide');
    const s = new SqliteStorage(path);
    const raw = new Database(path);
    try {
      await s.migrate();
      const root = await runningJob(s);
      // The children are written straight into the file: 20,000 claims and finishes would only slow the test.
      raw.exec('BEGIN');
      const kid = raw.prepare("INSERT INTO sdj_jobs (id, type, queue, status, attempt, run_count, run_at, created_at, completed_at, parent_id) VALUES (?, 'kid', 'k', 'completed', 1, 1, 1, 1, 2, ?)");
      const step = raw.prepare("INSERT INTO sdj_steps (job_id, step_index, step_name, status, created_at) VALUES (?, 0, 's', 'completed', 1)");
      for (let i = 1; i <= 20_000; i++) {
        kid.run(`kid-${i}`, root.fence.jobId);
        step.run(`kid-${i}`);
      }
      raw.exec('COMMIT');
      const stored = await s.jobFinishMany({ items: [{ ...root.fence, outcome: 'completed', resultJson: null }] });
      const queue = uniqueName('q');
      await s.jobInsertMany({ jobs: Array.from({ length: 150 }, () => jobInsert({ queue })) });
      const others = await s.jobFinishMany({ items: (await claim(s, queue, 150)).map((r) => ({ ...fenceOf(r), outcome: 'completed' as const, resultJson: null })) });
      await waitForClockPast(s, Math.max(...[...stored, ...others].map((x) => x ?? 0)));
      const started = performance.now();
      const r = await s.jobPrune({ olderThanMs: ALL0, limit: 100 });
      t.diagnostic(`one batch: ${JSON.stringify(r)}, the write lock held ${Math.round(performance.now() - started)} ms`);
      assert.equal(r.roots, 100);
      let total = r.deleted;
      for (;;) {
        const next = await s.jobPrune({ olderThanMs: ALL0, limit: 100 });
        total += next.deleted;
        if (next.roots < 100) break;
      }
      assert.equal(total, 20_001 + 150);
      const left = raw.prepare('SELECT (SELECT count(*) FROM sdj_jobs) AS jobs, (SELECT count(*) FROM sdj_steps) AS steps').get() as { jobs: number; steps: number };
      assert.deepEqual(left, { jobs: 0, steps: 0 });
    } finally {
      raw.close();
      await s.close();
      removeSqliteFiles(path);
    }
  });
});
