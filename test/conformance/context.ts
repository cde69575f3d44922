/**
 * Per-describe storage for the conformance suite: one isolated storage per block (schema or
 * database creation is the slow part on PostgreSQL and MySQL), tests inside a block use their own
 * queue, type and schedule names so they cannot see each other's rows.
 */
import { after, before } from 'node:test';
import type { Storage } from '../../src/storage/storage.js';
import type { StorageMaker, TestStorage } from '../helpers/storages.js';
import { clockedDb, type ClockedDb } from '../helpers/schedule-helpers.js';

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

/** A second isolated storage whose clock the test sets by hand. */
export interface ManualClock {
  readonly s: Storage;
  /** The current instant (ms). */
  now: number;
}

/**
 * Registers hooks that open, for the block, a second isolated database whose storage reads the
 * returned clock (starting at a whole second near now); the getter throws before the hook ran.
 */
export function useManualClock(ctx: SuiteStorage, label: string): () => ManualClock {
  let db: ClockedDb | undefined;
  let manual: ManualClock | undefined;
  before(async () => {
    db = await clockedDb(ctx.s.dialect, label);
    const state = { now: Math.floor(Date.now() / 1000) * 1000 };
    const s = await db.open(() => state.now);
    manual = Object.assign(state, { s });
  });
  after(async () => {
    await db?.cleanup();
  });
  return () => {
    if (!manual) throw new Error('manual clock storage is not ready');
    return manual;
  };
}
