/**
 * `sdj` against SQLite (a temp file), plus what only a file-based database has: a missing file
 * is an error (and is not created) for every command but `migrate`, and SDJ_DATABASE_URL.
 * @storage sqlite
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';
import { fails, ok, okJson, sdj } from './run-cli.js';
import { runCliSuite } from './suite.js';

runCliSuite('sqlite', async () => {
  const path = tempSqlitePath('cli');
  return { args: ['--db', path], open: () => new SqliteStorage(path), cleanup: async () => removeSqliteFiles(path) };
});

describe('sdj on a SQLite file', () => {
  it('refuses a missing file, without creating it, except for migrate', async () => {
    const path = tempSqlitePath('cli-missing');
    try {
      for (const args of [['status'], ['jobs', 'list'], ['jobs', 'show', 'x'], ['prune']]) {
        fails(await sdj(['--db', path, ...args]), 1, new RegExp(`^sdj: no SQLite database at ${path} \\(create one with: sdj --db ${path} migrate\\)$`), args.join(' '));
      }
      assert.equal(existsSync(path), false, 'no file created by accident');
      ok(await sdj(['--db', `file://${path}`, 'migrate']), 'migrate through a file:// URL');
      assert.equal(existsSync(path), true);
      const env = { SDJ_DATABASE_URL: path };
      assert.deepEqual(okJson(await sdj(['status', '--json'], { env }), 'SDJ_DATABASE_URL'), { queues: [] });
      assert.equal(ok(await sdj(['status'], { env }), 'empty status').trim(), 'No queues yet: no job has been enqueued.');
      fails(await sdj(['--schema', 'x', 'status'], { env }), 2, /^sdj: --schema applies to PostgreSQL only$/, '--schema on SQLite');
      ok(await sdj(['status'], { env: { ...env, SDJ_SCHEMA: 'ignored' } }), 'SDJ_SCHEMA is for PostgreSQL only and ignored');
    } finally {
      removeSqliteFiles(path);
    }
  });

  it('a file that is not a database fails with one line', async () => {
    fails(await sdj(['--db', '/tmp', 'status']), 1, /^sdj: \/tmp is not a SQLite database file$/, 'a directory');
    const path = tempSqlitePath('cli-garbage');
    try {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(path, 'this is not sqlite '.repeat(100));
      fails(await sdj(['--db', path, 'status']), 1, /^sdj: database error \(SQLite database \/.+\): /, 'not a database');
    } finally {
      removeSqliteFiles(path);
    }
  });
});
