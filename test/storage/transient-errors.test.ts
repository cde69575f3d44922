/**
 * Each driver marks a `StorageError` transient from what its database really answers: a
 * connection the server ended, a deadlock, a lock held by another connection are transient
 * (the same call may succeed when tried again, and the engine retries fenced writes that fail
 * so); a syntax error, an oversize packet or a failed constraint are not. The errors here are
 * produced by real servers and real files, then passed through each driver's translation.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StorageError } from '../../src/errors.js';
import { translateError as translateMysql } from '../../src/storage/mysql/translate-error.js';
import { translateError as translatePostgres } from '../../src/storage/postgres/translate-error.js';
import { translateError as translateSqlite } from '../../src/storage/sqlite/translate-error.js';
import { mysqlServerUrl } from '../helpers/mysql-storage.js';
import { PG_URL } from '../helpers/postgres-storage.js';
import { driverSelected } from '../helpers/storages.js';

const require = createRequire(import.meta.url);

/** The error `p` rejects with (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail('expected the call to fail');
}

/** Whether the translated error is a transient `StorageError`. */
function transient(translated: unknown): boolean {
  assert.ok(translated instanceof StorageError, `a StorageError, got ${String(translated)}`);
  return translated.transient;
}

interface PgClient {
  connect(): Promise<void>;
  query(sql: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
  on(event: 'error', listener: (e: unknown) => void): void;
}

describe('transient storage errors (postgres)', { skip: !driverSelected('postgres') && 'STORAGE excludes postgres' }, () => {
  const pg = require('pg') as { Client: new (o: { connectionString: string }) => PgClient };
  const client = async (): Promise<PgClient> => {
    const c = new pg.Client({ connectionString: PG_URL });
    c.on('error', () => {}); // the terminated connection reports here too
    await c.connect();
    return c;
  };

  it('a backend terminated under a query (57P01) is transient', async () => {
    const [victim, killer] = [await client(), await client()];
    try {
      const pid = (await victim.query('select pg_backend_pid() as pid')).rows[0]!['pid'];
      const running = rejection(victim.query('select pg_sleep(30)'));
      await killer.query('select pg_terminate_backend($1)', [pid]);
      assert.equal(transient(translatePostgres(await running)), true);
    } finally {
      await killer.end();
      await victim.end().catch(() => {});
    }
  });

  it('the next query on a connection that was terminated is transient', async () => {
    const [victim, killer] = [await client(), await client()];
    try {
      const pid = (await victim.query('select pg_backend_pid() as pid')).rows[0]!['pid'];
      await killer.query('select pg_terminate_backend($1)', [pid]);
      await killer.query('select pg_sleep(0.2)'); // the victim's socket sees the close
      assert.equal(transient(translatePostgres(await rejection(victim.query('select 1')))), true);
    } finally {
      await killer.end();
      await victim.end().catch(() => {});
    }
  });

  it('a deadlock (40P01) is transient; a syntax error and a division by zero are not', async () => {
    const [a, b] = [await client(), await client()];
    const table = `sdj_transient_probe_${process.pid}`;
    try {
      await a.query(`drop table if exists ${table}`);
      await a.query(`create table ${table} (id int primary key, v int)`);
      await a.query(`insert into ${table} values (1, 0), (2, 0)`);
      await a.query('begin');
      await b.query('begin');
      await a.query(`update ${table} set v = 1 where id = 1`);
      await b.query(`update ${table} set v = 1 where id = 2`);
      const first = a.query(`update ${table} set v = 2 where id = 2`).then(() => undefined, (e: unknown) => e);
      const second = b.query(`update ${table} set v = 2 where id = 1`).then(() => undefined, (e: unknown) => e);
      const errors = (await Promise.all([first, second])).filter((e) => e !== undefined);
      assert.equal(errors.length, 1, 'the server aborted one side as a deadlock');
      assert.equal((errors[0] as { code?: string }).code, '40P01');
      assert.equal(transient(translatePostgres(errors[0])), true);
      await a.query('rollback');
      await b.query('rollback');
      assert.equal(transient(translatePostgres(await rejection(a.query('selec 1')))), false);
      assert.equal(transient(translatePostgres(await rejection(a.query('select 1/0')))), false);
    } finally {
      await a.query(`drop table if exists ${table}`).catch(() => {});
      await a.end();
      await b.end();
    }
  });
});

interface MysqlConnection {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  end(): Promise<void>;
  destroy(): void;
  on(event: 'error', listener: (e: unknown) => void): void;
}

describe('transient storage errors (mysql)', { skip: !driverSelected('mysql') && 'STORAGE excludes mysql' }, () => {
  const mysql = require('mysql2/promise') as { createConnection(uri: string): Promise<MysqlConnection> };
  const connect = async (): Promise<MysqlConnection> => {
    const c = await mysql.createConnection(mysqlServerUrl());
    c.on('error', () => {});
    return c;
  };

  it('a connection killed under a query is transient', async () => {
    const [victim, killer] = [await connect(), await connect()];
    try {
      const [rows] = (await victim.query('SELECT CONNECTION_ID() AS id')) as [{ id: number }[], unknown];
      const running = rejection(victim.query('SELECT SLEEP(30)'));
      await killer.query(`KILL CONNECTION ${rows[0]!.id}`);
      assert.equal(transient(translateMysql(await running)), true);
      assert.equal(transient(translateMysql(await rejection(victim.query('SELECT 1')))), true, 'and so is the next call on it');
    } finally {
      await killer.end();
      victim.destroy();
    }
  });

  it('a syntax error and an oversize packet are not transient', async () => {
    const c = await connect();
    try {
      assert.equal(transient(translateMysql(await rejection(c.query('SELEC 1')))), false);
      const [rows] = (await c.query('SELECT @@max_allowed_packet AS bytes')) as [{ bytes: number }[], unknown];
      const err = await rejection(c.query('SELECT LENGTH(?) AS n', ['x'.repeat(Number(rows[0]!.bytes) + 1024)]));
      assert.equal(transient(translateMysql(err)), false, `not transient: ${String(err)}`);
    } finally {
      c.destroy();
    }
  });
});

describe('transient storage errors (sqlite)', { skip: !driverSelected('sqlite') && 'STORAGE excludes sqlite' }, () => {
  const Database = require('better-sqlite3') as new (path: string, o?: { timeout?: number }) => {
    exec(sql: string): void;
    prepare(sql: string): { run(...a: unknown[]): unknown };
    close(): void;
  };

  it('a write lock held by another connection (SQLITE_BUSY) is transient; a syntax error is not', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdj-transient-'));
    const a = new Database(join(dir, 'db.sqlite'));
    const b = new Database(join(dir, 'db.sqlite'), { timeout: 0 });
    try {
      a.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER)');
      a.exec('BEGIN IMMEDIATE');
      let busy: unknown;
      try {
        b.prepare('INSERT INTO t VALUES (1)').run();
      } catch (e) {
        busy = e;
      }
      assert.match(String((busy as { code?: string })?.code), /^SQLITE_BUSY/);
      assert.equal(transient(translateSqlite(busy)), true);
      a.exec('ROLLBACK');
      let syntax: unknown;
      try {
        b.exec('SELEC 1');
      } catch (e) {
        syntax = e;
      }
      assert.equal(transient(translateSqlite(syntax)), false);
    } finally {
      a.close();
      b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
