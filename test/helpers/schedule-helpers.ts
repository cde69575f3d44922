/**
 * Helpers for schedule tests: the jobs a schedule fired (read through the Queue API), their
 * slot instants (`job.meta.scheduledFor`), slot-sequence assertions, and storages with an
 * injectable clock on every dialect (to stage downtime of many minutes in a test that lasts
 * a second).
 */
import assert from 'node:assert/strict';
import type { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import type { Job } from '../../src/types.js';

/** Every job of `type`, oldest first, read with `queue.getJob`. */
export async function jobsOf(queue: Queue, type: string): Promise<Job[]> {
  const rows = await queue.storage.jobList({ type, limit: 10_000, order: 'asc' });
  const jobs = await Promise.all(rows.map((r) => queue.getJob(r.id)));
  return jobs.filter((j): j is Job => j !== undefined);
}

/** The slot instant (ms) of a fired job, from `meta.scheduledFor`. */
export function slotOf(job: Job): number {
  const s = job.meta['scheduledFor'];
  assert.equal(typeof s, 'string', `job ${job.id} has meta.scheduledFor`);
  const t = Date.parse(s as string);
  assert.ok(Number.isFinite(t), `meta.scheduledFor of ${job.id} is an ISO date: ${String(s)}`);
  return t;
}

/** Slot instants of `jobs`, ascending, after asserting that no slot was fired twice. */
export function uniqueSlots(jobs: readonly Job[]): number[] {
  const slots = jobs.map(slotOf).sort((a, b) => a - b);
  const dup = slots.find((s, i) => i > 0 && slots[i - 1] === s);
  assert.equal(dup, undefined, `slot ${dup === undefined ? '' : new Date(dup).toISOString()} fired more than once`);
  return slots;
}

/** Asserts that `slots` (ascending) are exactly `period` apart: none missing, none repeated. */
export function assertConsecutive(slots: readonly number[], period: number, what: string): void {
  for (let i = 1; i < slots.length; i++) {
    const gap = slots[i]! - slots[i - 1]!;
    assert.equal(gap, period, `${what}: slots ${iso(slots[i - 1]!)} → ${iso(slots[i]!)} are ${gap} ms apart, expected ${period}`);
  }
}

/** ISO text of an instant. */
export function iso(t: number): string {
  return new Date(t).toISOString();
}

/** A database that opens storages with a given clock (each instance may have its own). */
export interface ClockedDb {
  /** A migrated storage on the shared database whose clock is `clock`. */
  open(clock: () => number): Promise<Storage>;
  /** Closes every storage opened and drops the database/schema/file. */
  cleanup(): Promise<void>;
}

/** A fresh isolated database of `dialect` whose storages take an injected clock. */
export async function clockedDb(dialect: string, label: string): Promise<ClockedDb> {
  const made: Storage[] = [];
  const track = async (s: Storage): Promise<Storage> => {
    made.push(s);
    await s.migrate();
    return s;
  };
  const closeAll = async (): Promise<void> => {
    for (const s of made.splice(0)) await s.close();
  };
  switch (dialect) {
    case 'sqlite': {
      const { SqliteStorage } = await import('../../src/storage/sqlite/sqlite-storage.js');
      const { removeSqliteFiles, tempSqlitePath } = await import('./sqlite-storage.js');
      const path = tempSqlitePath(label);
      return {
        open: (clock) => track(new SqliteStorage(path, { clock })),
        cleanup: async () => {
          await closeAll();
          removeSqliteFiles(path);
        },
      };
    }
    case 'postgres': {
      const { PostgresStorage } = await import('../../src/storage/postgres/postgres-storage.js');
      const { PG_URL, pgAdmin, testSchemaName } = await import('./postgres-storage.js');
      const schema = testSchemaName(label);
      return {
        open: (clock) => track(new PostgresStorage(PG_URL, { schema, clock, max: 4 })),
        cleanup: async () => {
          await closeAll();
          await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        },
      };
    }
    case 'mysql': {
      const { MysqlStorage } = await import('../../src/storage/mysql/mysql-storage.js');
      const { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } = await import('./mysql-storage.js');
      const db = await createTestDatabase(label);
      return {
        open: (clock) => track(new MysqlStorage(mysqlDatabaseUrl(db), { clock, connectionLimit: 5 })),
        cleanup: async () => {
          await closeAll();
          await dropTestDatabase(db);
        },
      };
    }
    default:
      throw new Error(`clockedDb: unsupported dialect ${dialect}`);
  }
}
