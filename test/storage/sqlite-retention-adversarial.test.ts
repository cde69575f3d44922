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
import { pruneWideRoot } from '../helpers/retention-fixtures.js';
import { removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

describe('sqlite: retention, adversarial', () => {
  it('a root with 20,000 descendants goes whole in one worker-sized batch (limit 100), with the other due roots', async (t) => {
    const path = tempSqlitePath('sqlite-radv-wide');
    const s = new SqliteStorage(path);
    const raw = new Database(path);
    try {
      await s.migrate();
      const { first: r, ms, total } = await pruneWideRoot(s, 150, 100, (rootId) => {
        // The children are written straight into the file: 20,000 claims and finishes would only slow the test.
        raw.exec('BEGIN');
        const kid = raw.prepare("INSERT INTO sdj_jobs (id, type, queue, status, attempt, run_count, run_at, created_at, completed_at, parent_id) VALUES (?, 'kid', 'k', 'completed', 1, 1, 1, 1, 2, ?)");
        const step = raw.prepare("INSERT INTO sdj_steps (job_id, step_index, step_name, status, created_at) VALUES (?, 0, 's', 'completed', 1)");
        for (let i = 1; i <= 20_000; i++) {
          kid.run(`kid-${i}`, rootId);
          step.run(`kid-${i}`);
        }
        raw.exec('COMMIT');
      });
      t.diagnostic(`one batch: ${JSON.stringify(r)}, the write lock held ${ms} ms`);
      assert.equal(r.roots, 100);
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
