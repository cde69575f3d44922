/**
 * The storage matrix for behaviour tests. `STORAGE=sqlite,postgres,mysql` picks the drivers
 * (default: all three). A driver in the matrix whose database is unreachable FAILS its tests;
 * nothing is skipped silently.
 */
import type { Storage } from '../../src/storage/storage.js';

/** A fresh, migrated, isolated storage plus its cleanup. */
export interface TestStorage {
  storage: Storage;
  /** Makes another storage instance on the same database/schema/file (another "process"). */
  another: () => Promise<Storage>;
  /** Closes every instance made and drops the isolated schema/database/file. */
  cleanup: () => Promise<void>;
}

/** A factory for isolated test storages of one dialect. `label` names the isolation unit. */
export type StorageMaker = (label: string) => Promise<TestStorage>;

// Loaded lazily so a run of one driver never loads the others' packages.
const ALL: Record<string, StorageMaker> = {
  sqlite: async (label) => (await import('./sqlite-storage.js')).makeSqliteStorage(label),
  postgres: async (label) => (await import('./postgres-storage.js')).makePostgresStorage(label),
  mysql: async (label) => (await import('./mysql-storage.js')).makeMysqlStorage(label),
};

/** The drivers selected by STORAGE (default: every driver). */
export function storageMatrix(): [name: string, make: StorageMaker][] {
  const wanted = (process.env['STORAGE'] ?? 'sqlite,postgres,mysql').split(',').map((s) => s.trim()).filter(Boolean);
  return wanted.map((name) => {
    const make = ALL[name];
    if (!make) throw new Error(`unknown STORAGE entry "${name}" (expected sqlite, postgres or mysql)`);
    return [name, make];
  });
}

/** Whether STORAGE selects `name` (for files that hold one block per driver). */
export function driverSelected(name: string): boolean {
  return storageMatrix().some(([d]) => d === name);
}
