/**
 * Isolated SQLite storages for tests: one temp file per call (named after the label), migrated;
 * `another()` opens another `SqliteStorage` on the same file; `cleanup()` closes every instance
 * and deletes the file with its `-wal` and `-shm` companions.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import type { StorageMaker, TestStorage } from './storages.js';

/** A temp database path for `label` (not created yet). */
export function tempSqlitePath(label: string): string {
  const safe = label.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 60);
  return join(tmpdir(), `sdj-${safe}-${process.pid}-${randomBytes(4).toString('hex')}.db`);
}

/** Deletes a database file and its WAL companions. */
export function removeSqliteFiles(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
}

/** A fresh, migrated SQLite storage on a temp file. */
export const makeSqliteStorage: StorageMaker = async (label: string): Promise<TestStorage> => {
  const path = tempSqlitePath(label);
  const made: SqliteStorage[] = [];
  const open = (): SqliteStorage => {
    const s = new SqliteStorage(path);
    made.push(s);
    return s;
  };
  const storage = open();
  await storage.migrate();
  return {
    storage,
    another: async (): Promise<Storage> => open(),
    cleanup: async () => {
      for (const s of made.splice(0)) await s.close();
      removeSqliteFiles(path);
    },
  };
};
