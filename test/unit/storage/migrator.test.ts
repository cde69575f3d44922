/**
 * The shared migrator (lock → ledger → refuse newer → apply → record), driven by a fake
 * dialect that records every step, and on real SQLite files with the dialect the SQLite driver
 * uses (`BEGIN IMMEDIATE` as the lock): the schema it builds from the driver's migrations equals
 * the one `SqliteStorage.migrate()` builds, the lock is taken before the ledger is read, a
 * failing migration leaves nothing behind, and a newer ledger is refused.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { SchemaTooNewError } from '../../../src/errors.js';
import { MIGRATIONS } from '../../../src/storage/sqlite/migrations.generated.js';
import { SqliteStorage } from '../../../src/storage/sqlite/sqlite-storage.js';
import { isPromiseLike } from '../../../src/storage/shared/maybe-async.js';
import {
  knownVersion,
  planMigrations,
  runMigrations,
  runMigrationsAsync,
  runMigrationsSync,
  type MigrationDialect,
  type MigrationFile,
} from '../../../src/storage/shared/migrator.js';
import { removeSqliteFiles, tempSqlitePath } from '../../helpers/sqlite-storage.js';

const FILES: MigrationFile[] = [
  { version: 1, name: 'init', sql: 'one' },
  { version: 2, name: 'more', sql: 'two' },
  { version: 3, name: 'last', sql: 'three' },
];

/** A database of the fake dialect: a ledger and a one-holder lock with a waiting line. */
class FakeDb {
  ledger: number[] | undefined;
  log: string[] = [];
  #held = false;
  #waiting: (() => void)[] = [];

  async acquire(): Promise<void> {
    while (this.#held) await new Promise<void>((r) => this.#waiting.push(r));
    this.#held = true;
  }

  release(): void {
    this.#held = false;
    this.#waiting.shift()?.();
  }

  get held(): boolean {
    return this.#held;
  }
}

/** An asynchronous dialect over `db` (non-transactional, as on MySQL); `failOn` makes one apply fail. */
function asyncDialect(db: FakeDb, who = 'x', failOn?: number): MigrationDialect<string> {
  const step = async (entry: string): Promise<void> => {
    await Promise.resolve();
    db.log.push(`${who}:${entry}`);
  };
  return {
    withLock: async (fn) => {
      await db.acquire();
      db.log.push(`${who}:lock`);
      try {
        return await fn(who);
      } finally {
        db.log.push(`${who}:unlock`);
        db.release();
      }
    },
    ensureLedger: async () => {
      await step('ledger');
      db.ledger ??= [];
    },
    appliedVersions: async () => {
      await step('read');
      return [...(db.ledger ?? [])];
    },
    apply: async (_c, m) => {
      if (m.version === failOn) throw new Error(`migration ${m.version} failed`);
      await step(`apply ${m.version}`);
    },
    record: async (_c, m) => {
      await step(`record ${m.version}`);
      db.ledger?.push(m.version);
    },
  };
}

/** A synchronous dialect over `db` (the lock is a flag). */
function syncDialect(db: FakeDb): MigrationDialect<string> {
  return {
    withLock: (fn) => fn('s'),
    ensureLedger: () => {
      db.ledger ??= [];
    },
    appliedVersions: () => [...(db.ledger ?? [])],
    apply: (_c, m) => void db.log.push(`apply ${m.version}`),
    record: (_c, m) => void db.ledger?.push(m.version),
  };
}

describe('planMigrations', () => {
  it('returns the versions the ledger lacks, in version order, and refuses a newer ledger', () => {
    const shuffled = [FILES[2]!, FILES[0]!, FILES[1]!];
    assert.deepEqual(planMigrations([], shuffled).map((m) => m.version), [1, 2, 3]);
    assert.deepEqual(planMigrations([1, 3], shuffled).map((m) => m.version), [2]);
    assert.deepEqual(planMigrations([1, 2, 3], shuffled), []);
    assert.equal(knownVersion(FILES), 3);
    assert.throws(() => planMigrations([1, 4], FILES), (e) => e instanceof SchemaTooNewError && e.found === 4 && e.known === 3);
  });
});

describe('runMigrations (fake dialect)', () => {
  it('runs lock → ledger → read → apply and record each → unlock, and is a no-op the second time', async () => {
    const db = new FakeDb();
    assert.deepEqual(await runMigrationsAsync(asyncDialect(db), FILES), [1, 2, 3]);
    assert.deepEqual(db.log, ['x:lock', 'x:ledger', 'x:read', 'x:apply 1', 'x:record 1', 'x:apply 2', 'x:record 2', 'x:apply 3', 'x:record 3', 'x:unlock']);
    db.log = [];
    assert.deepEqual(await runMigrationsAsync(asyncDialect(db), FILES), []);
    assert.deepEqual(db.log, ['x:lock', 'x:ledger', 'x:read', 'x:unlock']);
  });

  it('refuses a ledger newer than the code, applying nothing and releasing the lock', async () => {
    const db = new FakeDb();
    db.ledger = [1, 2, 3, 7];
    await assert.rejects(runMigrationsAsync(asyncDialect(db), FILES), (e) => e instanceof SchemaTooNewError && e.found === 7 && e.known === 3);
    assert.deepEqual(db.log, ['x:lock', 'x:ledger', 'x:read', 'x:unlock']);
    assert.equal(db.held, false);
  });

  it('stops at a failing migration: earlier ones stay recorded, later ones are not tried', async () => {
    const db = new FakeDb();
    await assert.rejects(runMigrationsAsync(asyncDialect(db, 'x', 2), FILES), /migration 2 failed/);
    assert.deepEqual(db.ledger, [1]);
    assert.equal(db.held, false);
    assert.deepEqual(await runMigrationsAsync(asyncDialect(db), FILES), [2, 3], 'the next run picks up where it stopped');
  });

  it('concurrent runs serialize on the lock: each migration is applied once', async () => {
    const db = new FakeDb();
    const runs = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((who) => runMigrationsAsync(asyncDialect(db, who), FILES)));
    assert.deepEqual(runs.filter((r) => r.length > 0), [[1, 2, 3]]);
    assert.equal(db.log.filter((l) => l.includes(':apply')).length, 3);
    assert.deepEqual(db.ledger, [1, 2, 3]);
    // Lock sections never interleave.
    let holder: string | undefined;
    for (const entry of db.log) {
      const [who, what] = entry.split(':') as [string, string];
      if (what === 'lock') {
        assert.equal(holder, undefined, `${who} locked while ${String(holder)} held the lock`);
        holder = who;
      } else {
        assert.equal(who, holder, `${entry} outside its lock`);
        if (what === 'unlock') holder = undefined;
      }
    }
  });

  it('stays synchronous when every step is', () => {
    const db = new FakeDb();
    const out = runMigrations(syncDialect(db), FILES);
    assert.equal(isPromiseLike(out), false);
    assert.deepEqual(out, [1, 2, 3]);
    assert.deepEqual(runMigrationsSync(syncDialect(db), FILES), []);
    assert.deepEqual(db.log, ['apply 1', 'apply 2', 'apply 3']);
  });

  it('runMigrationsSync refuses a dialect that returns a promise', () => {
    const db = new FakeDb();
    const d = { ...syncDialect(db), appliedVersions: async () => [] };
    assert.throws(() => runMigrationsSync(d, FILES), TypeError);
  });
});

/** The SQLite dialect: `BEGIN IMMEDIATE` (a better-sqlite3 immediate transaction) is the lock. */
function sqliteDialect(db: Database.Database, spy: string[] = []): MigrationDialect<Database.Database> {
  return {
    withLock: (fn) => db.transaction(() => fn(db)).immediate(),
    ensureLedger: (c) => {
      spy.push('ledger');
      c.exec('CREATE TABLE IF NOT EXISTS sdj_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    },
    appliedVersions: (c) => {
      spy.push('read');
      return c.prepare('SELECT version FROM sdj_migrations').pluck().all() as number[];
    },
    apply: (c, m) => void c.exec(m.sql),
    record: (c, m) => void c.prepare('INSERT INTO sdj_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now()),
  };
}

/** The schema of a file, without the ledger (whose DDL is the dialect's). */
function schemaOf(db: Database.Database): unknown[] {
  return db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> 'sdj_migrations' ORDER BY type, name").all();
}

async function withFile(label: string, fn: (path: string) => Promise<void> | void): Promise<void> {
  const path = tempSqlitePath(label);
  try {
    await fn(path);
  } finally {
    removeSqliteFiles(path);
  }
}

describe('runMigrations (real SQLite, BEGIN IMMEDIATE)', () => {
  it("builds the driver's schema from its migrations; the driver then finds nothing to do", async () => {
    await withFile('migrator-same', async (path) => {
      const db = new Database(path);
      try {
        assert.deepEqual(runMigrationsSync(sqliteDialect(db), MIGRATIONS), MIGRATIONS.map((m) => m.version));
        assert.deepEqual(runMigrationsSync(sqliteDialect(db), MIGRATIONS), []);
        await withFile('migrator-ref', async (refPath) => {
          const ref = new SqliteStorage(refPath);
          await ref.migrate();
          await ref.close();
          const refDb = new Database(refPath, { readonly: true });
          assert.deepEqual(schemaOf(db), schemaOf(refDb));
          assert.ok(schemaOf(db).length > 5, 'the schema has its tables and indexes');
          refDb.close();
        });
        const storage = new SqliteStorage(path);
        await storage.migrate();
        await storage.close();
        assert.deepEqual(db.prepare('SELECT version, name FROM sdj_migrations ORDER BY version').all(), MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      } finally {
        db.close();
      }
    });
  });

  it('takes the lock before reading the ledger: a held write lock stops it before any read', async () => {
    await withFile('migrator-lock', (path) => {
      const holder = new Database(path);
      const db = new Database(path);
      try {
        db.pragma('busy_timeout = 0');
        holder.exec('BEGIN IMMEDIATE');
        const spy: string[] = [];
        assert.throws(() => runMigrationsSync(sqliteDialect(db, spy), MIGRATIONS), (e) => (e as { code?: string }).code === 'SQLITE_BUSY');
        assert.deepEqual(spy, []);
        holder.exec('COMMIT');
        assert.deepEqual(runMigrationsSync(sqliteDialect(db, spy), MIGRATIONS), MIGRATIONS.map((m) => m.version));
        assert.deepEqual(spy, ['ledger', 'read']);
      } finally {
        holder.close();
        db.close();
      }
    });
  });

  it('a failing migration rolls back the whole run, ledger included', async () => {
    await withFile('migrator-fail', (path) => {
      const db = new Database(path);
      try {
        const files: MigrationFile[] = [
          { version: 1, name: 'a', sql: 'CREATE TABLE a (x INTEGER)' },
          { version: 2, name: 'b', sql: 'CREATE TABLE b (x INTEGER); NOT SQL' },
        ];
        assert.throws(() => runMigrationsSync(sqliteDialect(db), files), /syntax error/);
        assert.deepEqual(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all(), []);
      } finally {
        db.close();
      }
    });
  });

  it('refuses a newer ledger and changes nothing', async () => {
    await withFile('migrator-newer', (path) => {
      const db = new Database(path);
      try {
        runMigrationsSync(sqliteDialect(db), MIGRATIONS);
        db.prepare('INSERT INTO sdj_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(9999, 'future', 0);
        const before = schemaOf(db);
        const extra: MigrationFile[] = [...MIGRATIONS, { version: 9000, name: 'x', sql: 'CREATE TABLE never (x INTEGER)' }];
        assert.throws(() => runMigrationsSync(sqliteDialect(db), extra), (e) => e instanceof SchemaTooNewError && e.found === 9999 && e.known === 9000);
        assert.deepEqual(schemaOf(db), before);
      } finally {
        db.close();
      }
    });
  });
});
