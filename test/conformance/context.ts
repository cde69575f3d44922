/**
 * Per-describe storage for the conformance suite: one isolated storage per block (schema or
 * database creation is the slow part on PostgreSQL and MySQL), tests inside a block use their own
 * queue, type and schedule names so they cannot see each other's rows.
 */
import { after, before } from 'node:test';
import type { Storage } from '../../src/storage/storage.js';
import type { StorageMaker, TestStorage } from '../helpers/storages.js';

/** The storage of the current describe block, available once its `before` hook ran. */
export interface SuiteStorage {
  /** The block's main instance. */
  readonly s: Storage;
  /** The block's isolated storage (for `another()`). */
  readonly ts: TestStorage;
}

/** Registers `before`/`after` hooks that make an isolated storage for the block and clean it up. */
export function useStorage(make: StorageMaker, label: string): SuiteStorage {
  let current: TestStorage | undefined;
  before(async () => {
    current = await make(label);
  });
  after(async () => {
    const ts = current;
    current = undefined;
    if (ts) await ts.cleanup();
  });
  const get = (): TestStorage => {
    if (!current) throw new Error(`conformance storage "${label}" is not ready`);
    return current;
  };
  return {
    get ts() {
      return get();
    },
    get s() {
      return get().storage;
    },
  };
}
